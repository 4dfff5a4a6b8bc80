//! What `check` costs inside a property test: a 256-case property run with and without
//! `no_leak::check` on every case, side by side, interleaved over several rounds.
//!
//! `cargo run --example proptest_cost` (debug, as tests run) or with `--release`.
//! Exits with status 1 if the median ratio exceeds 10x in either scope.

#[path = "caches/lru.rs"]
#[allow(dead_code)]
mod lru;

use std::time::{Duration, Instant};

use lru::{Eviction, LruCache};
use proptest::collection::vec;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn body(ops: &[(u64, usize)]) {
    let mut c = LruCache::with_eviction(4, Eviction::Correct);
    for &(k, n) in ops {
        c.put(k, vec![0; n]);
        let _ = c.get(k ^ 1);
    }
}

fn property(with_check: bool) -> Duration {
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strategy = vec((0u64..16, 0usize..=300), 0..48);
    let start = Instant::now();
    runner
        .run(&strategy, |ops| {
            if with_check {
                no_leak::Config::new()
                    .max_peak_bytes(2524)
                    .check(|| body(&ops));
            } else {
                body(&ops);
            }
            Ok(())
        })
        .unwrap();
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median ratio over `rounds` interleaved pairs, run on the calling thread.
fn ratio(rounds: usize) -> (Duration, Duration, f64) {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        without.push(property(false));
        with.push(property(true));
    }
    let (w, wo) = (median(with), median(without));
    (w, wo, w.as_secs_f64() / wo.as_secs_f64())
}

fn main() {
    let rounds = 7;
    // A spawned, named thread stands for a test thread in a shared `cargo test` process: `check`
    // counts the calling thread only. The main thread stands for an isolated or nextest process:
    // `check` counts the whole process and takes a census of threads and fds.
    let shared = std::thread::Builder::new()
        .name("shared_test_thread".into())
        .spawn(move || ratio(rounds))
        .unwrap()
        .join()
        .unwrap();
    let whole = ratio(rounds);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("256-case property, median of {rounds} interleaved rounds ({profile} build):");
    for (scope, (w, wo, r)) in [
        ("calling thread (shared cargo test process)", shared),
        ("whole process (isolated / nextest)", whole),
    ] {
        println!("  {scope:<45} without check {wo:>10.2?}  with check {w:>10.2?}  ratio {r:.2}x");
    }
    if shared.2 > 10.0 || whole.2 > 10.0 {
        eprintln!("proptest_cost: ratio above 10x");
        std::process::exit(1);
    }
}
