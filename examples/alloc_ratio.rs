//! How much no_leak's counting allocator costs, as a ratio to the system allocator, in one run.
//!
//! ```text
//! cargo run --release --example alloc_ratio [-- --iters N --rounds R --max-ratio X]
//! ```
//!
//! Three allocators are called directly through `GlobalAlloc` on static instances (a binary has
//! one global allocator, so they cannot all be installed): `System`, `no_leak::CountingAlloc<System>`
//! and `stats_alloc::StatsAlloc<System>`. Two workloads on 32-byte blocks, per thread:
//!
//! * `pair`: `N` times, allocate one block and free it (default `N` = 20,000,000);
//! * `batch`: `N / 1000` times, allocate 1000 blocks, then free them all.
//!
//! each at 1 thread and at 2 threads running at once (released together by a barrier; the slower
//! thread's time counts). Timing on a shared machine is noisy, so every (workload, threads) cell is
//! measured `R` times (default 7), the three allocators interleaved within each round and their
//! order rotated from round to round, and the median per allocator is used.
//!
//! Prints a table of median ns per allocate+free and the ratios to the system allocator. Exits
//! with status 1 if no_leak's ratio exceeds `X` (default 1.10) in any cell, so a script can gate
//! on it; status 2 for bad arguments.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use no_leak::CountingAlloc;
use stats_alloc::StatsAlloc;

static SYS: System = System;
static OURS: CountingAlloc<System> = CountingAlloc::new(System);
static STATS: StatsAlloc<System> = StatsAlloc::system();

const BLOCK: usize = 32;
const BATCH: usize = 1000;

fn layout() -> Layout {
    Layout::from_size_align(BLOCK, 8).unwrap()
}

/// `iters` allocate+free pairs.
#[inline(never)]
fn pair<A: GlobalAlloc>(a: &A, iters: u64) {
    let layout = layout();
    for i in 0..iters {
        // SAFETY: `layout` has a non-zero size; the block is freed with the same allocator and
        // layout, once.
        unsafe {
            let p = a.alloc(layout);
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            p.write(i as u8);
            a.dealloc(black_box(p), layout);
        }
    }
}

/// `iters` batches: allocate `BATCH` blocks, then free them all.
#[inline(never)]
fn batch<A: GlobalAlloc>(a: &A, iters: u64, slots: &mut [*mut u8]) {
    let layout = layout();
    for _ in 0..iters {
        for (i, s) in slots.iter_mut().enumerate() {
            // SAFETY: as in `pair`.
            unsafe {
                let p = a.alloc(layout);
                if p.is_null() {
                    std::alloc::handle_alloc_error(layout);
                }
                p.write(i as u8);
                *s = p;
            }
        }
        for s in black_box(&mut *slots).iter() {
            // SAFETY: each pointer came from `a.alloc(layout)` just above and is freed once.
            unsafe { a.dealloc(*s, layout) };
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Pair,
    Batch,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Pair => "pair",
            Workload::Batch => "batch",
        }
    }

    /// Runs about `blocks` allocate+free operations on the calling thread; returns the time taken
    /// and the exact number of blocks.
    fn time<A: GlobalAlloc>(self, a: &A, blocks: u64) -> (Duration, u64) {
        let mut slots = vec![std::ptr::null_mut::<u8>(); BATCH];
        let start = Instant::now();
        let done = match self {
            Workload::Pair => {
                pair(a, blocks);
                blocks
            }
            Workload::Batch => {
                let batches = (blocks / BATCH as u64).max(1);
                batch(a, batches, &mut slots);
                batches * BATCH as u64
            }
        };
        (start.elapsed(), done)
    }
}

/// ns per allocate+free, per thread, with `threads` threads started together; the slowest
/// thread's figure.
fn ns_per_op<A: GlobalAlloc + Sync>(a: &A, w: Workload, threads: usize, blocks: u64) -> f64 {
    let per_op = |(t, n): (Duration, u64)| t.as_nanos() as f64 / n as f64;
    if threads == 1 {
        w.time(a, 1000);
        return per_op(w.time(a, blocks));
    }
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    // Warm this thread's allocator state (and its no_leak slot) outside the clock.
                    w.time(a, 1000);
                    barrier.wait();
                    per_op(w.time(a, blocks))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold(0.0, f64::max)
    })
}

#[derive(Clone, Copy)]
enum Which {
    System,
    NoLeak,
    StatsAlloc,
}

const ALL: [Which; 3] = [Which::System, Which::NoLeak, Which::StatsAlloc];

fn measure(which: Which, w: Workload, threads: usize, blocks: u64) -> f64 {
    match which {
        Which::System => ns_per_op(&SYS, w, threads, blocks),
        Which::NoLeak => ns_per_op(&OURS, w, threads, blocks),
        Which::StatsAlloc => ns_per_op(&STATS, w, threads, blocks),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Args {
    blocks: u64,
    rounds: usize,
    max_ratio: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        blocks: 20_000_000,
        rounds: 7,
        max_ratio: 1.10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--iters" => a.blocks = value()?.parse().map_err(|e| format!("--iters: {e}"))?,
            "--rounds" => a.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--max-ratio" => {
                a.max_ratio = value()?.parse().map_err(|e| format!("--max-ratio: {e}"))?
            }
            "-h" | "--help" => {
                return Err("usage: alloc_ratio [--iters N] [--rounds R] [--max-ratio X]".into())
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if a.blocks < BATCH as u64 || a.rounds == 0 {
        return Err("--iters must be at least 1000 and --rounds at least 1".into());
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("alloc_ratio: {e}");
            std::process::exit(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("alloc_ratio: warning: a debug build; use `--release` for meaningful figures");
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "alloc_ratio: {} alloc+free of {BLOCK}-byte blocks per thread per measurement, {} rounds, \
         {cpus} CPUs",
        args.blocks, args.rounds
    );

    let cells: Vec<(Workload, usize)> = [Workload::Pair, Workload::Batch]
        .into_iter()
        .flat_map(|w| [1usize, 2].map(|t| (w, t)))
        .collect();
    // samples[cell][allocator][round], ns per allocate+free.
    let mut samples = vec![[Vec::new(), Vec::new(), Vec::new()]; cells.len()];

    // One short unrecorded pass of everything: page in code, grow the heaps.
    for &(w, t) in &cells {
        for which in ALL {
            measure(which, w, t, args.blocks / 20);
        }
    }
    let started = Instant::now();
    for round in 0..args.rounds {
        for (c, &(w, t)) in cells.iter().enumerate() {
            // Rotate the order so that no allocator always runs first (or right after another).
            for k in 0..ALL.len() {
                let i = (k + round) % ALL.len();
                samples[c][i].push(measure(ALL[i], w, t, args.blocks));
            }
        }
    }
    println!(
        "{} rounds in {:.1} s",
        args.rounds,
        started.elapsed().as_secs_f64()
    );

    println!();
    println!("median ns per alloc+free (per thread), and ratio to the system allocator");
    println!(
        "{:<8} {:>7} | {:>8} {:>8} {:>11} | {:>14} {:>18} | {:>18}",
        "workload",
        "threads",
        "system",
        "no_leak",
        "stats_alloc",
        "no_leak/system",
        "stats_alloc/system",
        "no_leak per round"
    );
    let mut worst: f64 = 0.0;
    let mut failed = Vec::new();
    for (c, &(w, t)) in cells.iter().enumerate() {
        let [sys, ours, stats] = [0, 1, 2].map(|i| median(&samples[c][i]));
        let ratio = ours / sys;
        // The same ratio within each round (neighbours in time), as a spread.
        let per_round: Vec<f64> = samples[c][1]
            .iter()
            .zip(&samples[c][0])
            .map(|(o, s)| o / s)
            .collect();
        let lo = per_round.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = per_round.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<8} {:>7} | {:>8.2} {:>8.2} {:>11.2} | {:>13.3}x {:>17.3}x | {:>7.2}x..{:.2}x",
            w.name(),
            t,
            sys,
            ours,
            stats,
            ratio,
            stats / sys,
            lo,
            hi
        );
        worst = worst.max(ratio);
        if ratio > args.max_ratio {
            failed.push(format!("{} at {} thread(s): {ratio:.3}x", w.name(), t));
        }
    }
    println!();
    if failed.is_empty() {
        println!(
            "PASS: no_leak within {:.2}x of the system allocator everywhere (worst {worst:.3}x)",
            args.max_ratio
        );
    } else {
        println!(
            "FAIL: no_leak above {:.2}x of the system allocator: {}",
            args.max_ratio,
            failed.join("; ")
        );
        std::process::exit(1);
    }
}
