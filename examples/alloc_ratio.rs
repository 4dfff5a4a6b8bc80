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
//! Then, unless `--no-window`, what a cross-thread window costs while it is open (a check in
//! calling-thread scope opens one from its first warmup run to its last measured run; see
//! `src/counting/remote.rs`), with `N / 10` operations per measurement, wall time, not gated:
//!
//! * `pair` on the window's own thread (every allocation remembered, every free forgotten);
//! * `pair` on another thread while a window is open elsewhere (each free reads the filter);
//! * `handoff`: one thread allocates 1000 blocks, another frees them, over and over (with the
//!   allocating thread in a window, every free is of a remembered block and credits it).
//!
//! Each row gives the system allocator, no_leak with no window open, and no_leak with the window,
//! measured side by side in every round.
//!
//! Prints a table of median ns per allocate+free and the ratios to the system allocator. Exits
//! with status 1 if no_leak's ratio exceeds `X` (default 1.10) on the `pair` workload at either
//! thread count, so a script can gate on it; status 2 for bad arguments. The `batch` workload is
//! reported but not gated: with allocations that cheap, the counting's few cycles per operation
//! come to 1.1-1.16x (measured), which docs/allocator-cost.md states.

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
    window: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        blocks: 20_000_000,
        rounds: 7,
        max_ratio: 1.10,
        window: true,
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
            "--no-window" => a.window = false,
            "-h" | "--help" => {
                return Err(
                    "usage: alloc_ratio [--iters N] [--rounds R] [--max-ratio X] [--no-window]"
                        .into(),
                )
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
    if args.window {
        window::report(args.blocks / 10, args.rounds);
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

/// What a cross-thread window costs while it is open.
mod window {
    use std::alloc::GlobalAlloc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Barrier};
    use std::time::Instant;

    use no_leak::report::Scope;

    use super::median;
    use crate::workloads::{layout, pair, BATCH, OURS, SYS};

    /// Runs `f` inside a check in calling-thread scope, on a thread named `window`: during the
    /// check's first warmup run, when its cross-thread window is open.
    fn in_window<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .name("window".into())
            .spawn(move || {
                let (mut f, mut out) = (Some(f), None);
                let r = no_leak::Config::new().measure(|| {
                    if let Some(f) = f.take() {
                        out = Some(f());
                    }
                });
                assert_eq!(r.scope, Scope::CallingThread, "no window without it");
                out.unwrap()
            })
            .unwrap()
            .join()
            .unwrap()
    }

    /// Wall ns per alloc+free of `pair` on a thread of its own.
    fn pair_ns<A: GlobalAlloc + Sync>(a: &'static A, n: u64, window: bool) -> f64 {
        let timed = move || {
            pair(a, 1000);
            let t = Instant::now();
            pair(a, n);
            t.elapsed().as_nanos() as f64 / n as f64
        };
        if window {
            in_window(timed)
        } else {
            std::thread::spawn(timed).join().unwrap()
        }
    }

    /// `pair_ns` on this thread while another thread has a window open.
    fn pair_elsewhere_ns(n: u64) -> f64 {
        let (open, done) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let (o, d) = (open.clone(), done.clone());
        let w = std::thread::spawn(move || {
            in_window(move || {
                o.wait();
                d.wait();
            })
        });
        open.wait();
        let ns = pair_ns(&OURS, n, false);
        done.wait();
        w.join().unwrap();
        ns
    }

    /// Wall ns per block: one thread allocates `BATCH` blocks, another frees them, `n / BATCH`
    /// times; the allocating thread in a window if `window`.
    fn handoff_ns<A: GlobalAlloc + Sync>(a: &'static A, n: u64, window: bool) -> f64 {
        let shared = Arc::new((
            Barrier::new(2),
            (0..BATCH).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>(),
        ));
        let batches = (n / BATCH as u64).max(1);
        let s = shared.clone();
        let freer = std::thread::spawn(move || {
            for _ in 0..batches {
                s.0.wait();
                for p in &s.1 {
                    // SAFETY: each pointer came from `a.alloc(layout())` on the other thread,
                    // handed over by the barrier, and is freed once.
                    unsafe { a.dealloc(p.load(SeqCst) as *mut u8, layout()) };
                }
                s.0.wait();
            }
        });
        let allocate = move || {
            let t = Instant::now();
            for _ in 0..batches {
                for p in &shared.1 {
                    // SAFETY: `layout()` has a non-zero size.
                    let b = unsafe { a.alloc(layout()) };
                    assert!(!b.is_null());
                    p.store(b as usize, SeqCst);
                }
                shared.0.wait();
                shared.0.wait();
            }
            t.elapsed().as_nanos() as f64 / (batches * BATCH as u64) as f64
        };
        let ns = if window {
            in_window(allocate)
        } else {
            allocate()
        };
        freer.join().unwrap();
        ns
    }

    /// Measures and prints the three rows, each `rounds` times side by side.
    pub fn report(n: u64, rounds: usize) {
        type Cell = (&'static str, fn(u64) -> [f64; 3]);
        let cells: [Cell; 3] = [
            ("pair, window thread", |n| {
                [
                    pair_ns(&SYS, n, false),
                    pair_ns(&OURS, n, false),
                    pair_ns(&OURS, n, true),
                ]
            }),
            ("pair, other thread", |n| {
                [
                    pair_ns(&SYS, n, false),
                    pair_ns(&OURS, n, false),
                    pair_elsewhere_ns(n),
                ]
            }),
            ("handoff", |n| {
                [
                    handoff_ns(&SYS, n, false),
                    handoff_ns(&OURS, n, false),
                    handoff_ns(&OURS, n, true),
                ]
            }),
        ];
        println!();
        println!(
            "while a cross-thread window is open: median wall ns per alloc+free, {n} per \
             measurement, {rounds} rounds"
        );
        println!(
            "{:<20} | {:>8} {:>8} {:>8} | {:>14} {:>14}",
            "workload", "system", "no_leak", "window", "window/no_leak", "window/system"
        );
        for (name, f) in cells {
            let samples: Vec<[f64; 3]> = (0..rounds).map(|_| f(n)).collect();
            let [sys, ours, win] = [0, 1, 2].map(|i| median(samples.iter().map(|s| s[i])));
            println!(
                "{name:<20} | {sys:>8.2} {ours:>8.2} {win:>8.2} | {:>13.2}x {:>13.2}x",
                win / ours,
                win / sys
            );
        }
    }
}
