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
//! thread's figure counts, so contention on shared counters shows).
//!
//! Timing on a shared machine is noisy, so:
//! * every (workload, threads) cell is measured `R` times (default 7), the three allocators
//!   interleaved within each round and their order rotated from round to round, and the median
//!   per allocator is used;
//! * the figure is the measuring thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID` on Linux; wall
//!   time elsewhere), so time spent descheduled by other processes does not count. Cache-line
//!   contention still does: a thread waiting for a line is running. The `on-CPU` column gives the
//!   median share of wall time the threads were actually running; well below 100% means the
//!   machine was busy, and at 2 threads it means the two did not always run at the same time, so
//!   contention is understated.
//!
//! Prints a table of median ns per allocate+free and the ratios to the system allocator. Exits
//! with status 1 if no_leak's ratio exceeds `X` (default 1.10) on the `pair` workload at either
//! thread count, so a script can gate on it; status 2 for bad arguments. The `batch` workload is
//! reported but not gated: with allocations that cheap, the counting's few cycles per operation
//! come to 1.1-1.16x (measured), which the README states.

use std::alloc::GlobalAlloc;
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[path = "../benches/workloads/mod.rs"]
mod workloads;
use workloads::{batch, pair, Workload, BATCH, BLOCK, OURS, STATS, SYS};

/// CPU time consumed by the calling thread.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Elsewhere: wall time since the first call, so on-CPU shares read as 100%.
#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// One thread's measurement.
#[derive(Clone, Copy)]
struct Timing {
    /// CPU ns per allocate+free.
    cpu_ns: f64,
    /// CPU time over wall time.
    on_cpu: f64,
}

impl Workload {
    /// Runs about `blocks` allocate+free operations on the calling thread.
    fn time<A: GlobalAlloc>(self, a: &A, blocks: u64) -> Timing {
        let mut slots = vec![std::ptr::null_mut::<u8>(); BATCH];
        let wall = Instant::now();
        let cpu = thread_cpu_time();
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
        let cpu = thread_cpu_time() - cpu;
        let wall = wall.elapsed();
        Timing {
            cpu_ns: cpu.as_nanos() as f64 / done as f64,
            on_cpu: (cpu.as_secs_f64() / wall.as_secs_f64()).min(1.0),
        }
    }
}

/// `threads` threads started together each run the workload: the slowest thread's CPU ns per
/// allocate+free, and the lowest on-CPU share.
fn run<A: GlobalAlloc + Sync>(a: &A, w: Workload, threads: usize, blocks: u64) -> Timing {
    if threads == 1 {
        w.time(a, 1000);
        return w.time(a, blocks);
    }
    let barrier = Barrier::new(threads);
    let timings: Vec<Timing> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    // Warm this thread's allocator state (and its no_leak slot) outside the clock.
                    w.time(a, 1000);
                    barrier.wait();
                    w.time(a, blocks)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    Timing {
        cpu_ns: timings.iter().map(|t| t.cpu_ns).fold(0.0, f64::max),
        on_cpu: timings.iter().map(|t| t.on_cpu).fold(1.0, f64::min),
    }
}

#[derive(Clone, Copy)]
enum Which {
    System,
    NoLeak,
    StatsAlloc,
}

const ALL: [Which; 3] = [Which::System, Which::NoLeak, Which::StatsAlloc];

fn measure(which: Which, w: Workload, threads: usize, blocks: u64) -> Timing {
    match which {
        Which::System => run(&SYS, w, threads, blocks),
        Which::NoLeak => run(&OURS, w, threads, blocks),
        Which::StatsAlloc => run(&STATS, w, threads, blocks),
    }
}

fn median(v: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.into_iter().collect();
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
    // samples[cell][allocator][round]
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
    println!("median CPU ns per alloc+free (per thread), and ratio to the system allocator");
    println!(
        "{:<8} {:>7} | {:>8} {:>8} {:>11} | {:>14} {:>18} | {:>17} | {:>6}",
        "workload",
        "threads",
        "system",
        "no_leak",
        "stats_alloc",
        "no_leak/system",
        "stats_alloc/system",
        "no_leak per round",
        "on-CPU"
    );
    let mut worst: f64 = 0.0;
    let mut failed = Vec::new();
    let mut busy = false;
    for (c, &(w, t)) in cells.iter().enumerate() {
        let cell = &samples[c];
        let [sys, ours, stats] = [0, 1, 2].map(|i| median(cell[i].iter().map(|s| s.cpu_ns)));
        let on_cpu = median(cell.iter().flatten().map(|s| s.on_cpu));
        busy |= on_cpu < 0.9;
        let ratio = ours / sys;
        // The same ratio within each round (neighbours in time), as a spread.
        let per_round: Vec<f64> = cell[1]
            .iter()
            .zip(&cell[0])
            .map(|(o, s)| o.cpu_ns / s.cpu_ns)
            .collect();
        let lo = per_round.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = per_round.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<8} {:>7} | {:>8.2} {:>8.2} {:>11.2} | {:>13.3}x {:>17.3}x | {:>6.2}x..{:.2}x | {:>5.0}%",
            w.name(),
            t,
            sys,
            ours,
            stats,
            ratio,
            stats / sys,
            lo,
            hi,
            on_cpu * 100.0
        );
        // The gate is the pair workload (one small block allocated and freed, over and over: the
        // benchmark the 1.10x budget is set for). The batch workload is reported, not gated: its
        // allocations are cheaper still (a thread-cache pop each), so the counter update's
        // store-to-load chain, a few cycles per operation, shows more.
        if w.name() == "pair" {
            worst = worst.max(ratio);
            if ratio > args.max_ratio {
                failed.push(format!("{} at {} thread(s): {ratio:.3}x", w.name(), t));
            }
        }
    }
    if busy {
        println!(
            "note: the machine was busy (on-CPU below 90%): at 2 threads the threads did not always \
             run at the same time, which understates contention"
        );
    }
    println!();
    if failed.is_empty() {
        println!(
            "PASS: no_leak within {:.2}x of the system allocator on pair at 1 and 2 threads (worst {worst:.3}x)",
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
