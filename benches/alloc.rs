//! What counting costs: the system allocator, `no_leak::CountingAlloc<System>` and
//! `stats_alloc::StatsAlloc<System>` side by side, on small blocks, at 1 and 2 threads.
//!
//! A binary has one global allocator, so the three are called directly, through
//! `GlobalAlloc::alloc`/`dealloc` on static instances. (This bench links no_leak with its default
//! features, so `CountingAlloc<System>` is also the global allocator; that only matters for the
//! bookkeeping around the loops, never inside them. `OURS` shares no_leak's per-thread slots with
//! the global instance, exactly as a second `CountingAlloc` in a real program would.)
//!
//! Workloads, per thread:
//! * `pair`: allocate one 32-byte block and free it, repeatedly;
//! * `batch`: allocate 1000 32-byte blocks, then free them all.
//!
//! With 2 threads, both threads run the same loop at the same time (released together by a
//! barrier), each on its own blocks; the time reported is the slower thread's. Contention on
//! shared counters shows up there.
//!
//! `cargo bench --bench alloc`; about a minute. For a quick pass/fail ratio table without
//! criterion, see `cargo run --release --example alloc_ratio`.

use std::alloc::GlobalAlloc;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[path = "workloads/mod.rs"]
mod workloads;
use workloads::{batch, pair, Workload, BATCH, BLOCK, OURS, STATS, SYS};

impl Workload {
    /// Blocks allocated and freed per iteration, per thread.
    fn blocks(self) -> u64 {
        match self {
            Workload::Pair => 1,
            Workload::Batch => BATCH as u64,
        }
    }

    /// Runs `iters` iterations on the calling thread and returns how long they took.
    fn time<A: GlobalAlloc>(self, a: &A, iters: u64) -> Duration {
        let mut slots = vec![std::ptr::null_mut::<u8>(); BATCH];
        let start = Instant::now();
        match self {
            Workload::Pair => pair(a, iters),
            Workload::Batch => batch(a, iters, &mut slots),
        }
        start.elapsed()
    }
}

/// `iters` iterations on each of `threads` threads started together; the slowest thread's time.
fn run<A: GlobalAlloc + Sync>(a: &A, w: Workload, threads: usize, iters: u64) -> Duration {
    if threads == 1 {
        return w.time(a, iters);
    }
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    // Warm this thread's allocator state (and its no_leak slot) outside the clock.
                    w.time(a, 16);
                    barrier.wait();
                    w.time(a, iters)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

fn bench(c: &mut Criterion) {
    for w in [Workload::Pair, Workload::Batch] {
        for threads in [1usize, 2] {
            let mut g = c.benchmark_group(format!("{}_{}B/{}thread", w.name(), BLOCK, threads));
            g.throughput(Throughput::Elements(w.blocks() * threads as u64));
            g.bench_function(BenchmarkId::from_parameter("system"), |b| {
                b.iter_custom(|iters| run(&SYS, w, threads, iters))
            });
            g.bench_function(BenchmarkId::from_parameter("no_leak"), |b| {
                b.iter_custom(|iters| run(&OURS, w, threads, iters))
            });
            g.bench_function(BenchmarkId::from_parameter("stats_alloc"), |b| {
                b.iter_custom(|iters| run(&STATS, w, threads, iters))
            });
            g.finish();
        }
    }
}

fn config() -> Criterion {
    // 12 benchmarks x (1 s warmup + 2 s measuring + analysis): about a minute in all.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
