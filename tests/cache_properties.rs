//! Property tests of cache eviction code with the closure API, under plain `cargo test`.
//!
//! - The LRU cache keeps its peak memory within a bound set by its capacity, and dropping it frees
//!   everything: `check` on every proptest case, counting the calling thread (exact while other
//!   tests run).
//! - The TTL cache's cleanup thread exits when the cache drops: threads are only measurable with
//!   the whole process to ourselves, so that property runs under `#[no_leak::isolated]`.
//! - Each broken variant makes its property fail in the right dimension, and proptest shrinks the
//!   input to a minimal one.

#[path = "../examples/caches/lru.rs"]
#[allow(dead_code)]
mod lru;
#[path = "../examples/caches/ttl.rs"]
#[allow(dead_code)]
mod ttl;

use std::time::Duration;

use lru::{Eviction, LruCache};
use no_leak::report::Scope;
use no_leak::{Config, Dimension, Measure};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{
    Config as ProptestConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use ttl::TtlCache;

const CAPACITY: usize = 4;
const MAX_VALUE: usize = 300;
/// At most `CAPACITY` cached values plus the one being inserted, plus bookkeeping (the hash table
/// and the recency list, under 1 KiB for four entries).
const PEAK_BOUND: u64 = ((CAPACITY + 1) * MAX_VALUE + 1024) as u64;

/// A workload: `(key, value size)` puts, each followed by a get of a neighbouring key.
fn ops() -> impl Strategy<Value = Vec<(u64, usize)>> {
    vec((0u64..16, 0usize..=MAX_VALUE), 0..48)
}

fn run_lru(eviction: Eviction, ops: &[(u64, usize)]) {
    let mut cache = LruCache::with_eviction(CAPACITY, eviction);
    for &(k, n) in ops {
        cache.put(k, vec![0xAB; n]);
        let _ = cache.get(k ^ 1);
    }
    assert!(eviction != Eviction::Correct || cache.len() <= CAPACITY);
}

fn run_ttl(never_stops: bool, ops: &[(u64, usize)]) {
    let (ttl, sweep) = (Duration::from_millis(2), Duration::from_millis(1));
    let cache = if never_stops {
        TtlCache::broken_never_stops(ttl, sweep)
    } else {
        TtlCache::new(ttl, sweep)
    };
    for &(k, n) in ops {
        cache.put(k, vec![1; n]);
        let _ = cache.get(k);
    }
}

proptest! {
    #[test]
    fn lru_eviction_keeps_peak_within_capacity(ops in ops()) {
        Config::new().max_peak_bytes(PEAK_BOUND).check(|| run_lru(Eviction::Correct, &ops));
    }

    #[test]
    fn lru_drop_frees_everything(ops in ops()) {
        no_leak::check(|| run_lru(Eviction::Correct, &ops));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Threads and fds need the process to ourselves: the whole property runs in a child.
    #[test]
    #[no_leak::isolated]
    fn ttl_cleanup_thread_exits_when_cache_drops(ops in vec((0u64..16, 0usize..=64), 0..8)) {
        let report = Config::new().measure(|| run_ttl(false, &ops));
        prop_assert_eq!(report.scope, Scope::Process);
        prop_assert_eq!(report.net(Measure::Threads), Some(0), "{}", report);
        prop_assert!(!report.is_leak(), "{}", report);
    }
}

/// Runs a property with a fixed seed (so the verdict and the shrunk input never vary) and
/// returns proptest's failure: the reason (our report) and the minimal input.
fn must_fail(
    strategy: impl Strategy<Value = Vec<(u64, usize)>>,
    cases: u32,
    property: impl Fn(&[(u64, usize)]),
) -> (String, Vec<(u64, usize)>) {
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    match runner.run(&strategy, |ops| {
        property(&ops);
        Ok::<(), TestCaseError>(())
    }) {
        Err(TestError::Fail(reason, minimal)) => (reason.to_string(), minimal),
        other => panic!("the property should fail, got {other:?}"),
    }
}

#[test]
fn lru_that_never_evicts_fails_peak_with_shrunk_input() {
    let check = |ops: &[(u64, usize)]| {
        Config::new()
            .max_peak_bytes(PEAK_BOUND)
            .check(|| run_lru(Eviction::Never, ops))
    };
    let (reason, minimal) = must_fail(ops(), 64, check);
    assert!(reason.contains("leaked peak: "), "{reason}");
    assert!(
        reason.contains("in the worst run (bound: 2524 B)"),
        "{reason}"
    );
    // Shrunk: the minimal input fails, and without any one of its ops it passes.
    let leaks = |ops: &[(u64, usize)]| {
        Config::new()
            .max_peak_bytes(PEAK_BOUND)
            .measure(|| run_lru(Eviction::Never, ops))
            .exceeds(Dimension::Peak)
    };
    assert!(leaks(&minimal), "{minimal:?}");
    for i in 0..minimal.len() {
        let mut fewer = minimal.clone();
        fewer.remove(i);
        assert!(
            !leaks(&fewer),
            "not minimal: still fails without op {i} of {minimal:?}"
        );
    }
    // The same cache with eviction passes on that input.
    assert!(!Config::new()
        .max_peak_bytes(PEAK_BOUND)
        .measure(|| run_lru(Eviction::Correct, &minimal))
        .is_leak());
}

#[test]
fn lru_that_parks_evicted_values_fails_heap_with_shrunk_input() {
    let (reason, minimal) = must_fail(ops(), 64, |ops| {
        no_leak::check(|| run_lru(Eviction::SideList, ops))
    });
    assert!(reason.contains("leaked heap: "), "{reason}");
    // One eviction is the least that parks a value: capacity + 1 distinct keys.
    assert_eq!(minimal.len(), CAPACITY + 1, "{minimal:?}");
    let mut keys: Vec<u64> = minimal.iter().map(|(k, _)| *k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), CAPACITY + 1, "{minimal:?}");
}

#[test]
#[no_leak::isolated]
fn ttl_cleanup_thread_never_stopped_fails_threads_with_shrunk_input() {
    let (reason, minimal) = must_fail(vec((0u64..16, 0usize..=64), 0..8), 16, |ops| {
        Config::new()
            .settle(Duration::from_millis(100))
            .check(|| run_ttl(true, ops))
    });
    assert!(reason.contains("leaked heap, threads: "), "{reason}");
    assert!(reason.contains("\"ttl-cleanup\""), "{reason}");
    assert_eq!(
        minimal,
        vec![],
        "any input leaks the thread, so it shrinks to none"
    );
}

/// What the user sees: proptest's minimal failing input together with the no_leak report.
#[test]
fn failure_message_shows_minimal_input_and_report() {
    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 64,
            failure_persistence: None,
            rng_seed: proptest::test_runner::RngSeed::Fixed(7),
            ..ProptestConfig::default()
        })]
        fn lru_never_evicts(ops in ops()) {
            Config::new().max_peak_bytes(PEAK_BOUND).check(|| run_lru(Eviction::Never, &ops));
        }
    }
    let payload = std::panic::catch_unwind(lru_never_evicts).unwrap_err();
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap();
    assert!(msg.contains("minimal failing input: ops = ["), "{msg}");
    assert!(msg.contains("leaked peak"), "{msg}");
    assert!(msg.contains("  peak:"), "{msg}");
}

/// On a test thread that shares the process, the report says plainly what it did not measure.
#[test]
fn shared_process_report_says_what_was_not_measured() {
    if std::env::var("NEXTEST_EXECUTION_MODE").as_deref() == Ok("process-per-test") {
        // Under nextest the process is ours: everything is measured (asserted below instead).
        let r = Config::new().measure(|| run_lru(Eviction::Correct, &[(1, 10)]));
        assert_eq!(r.scope, Scope::Process);
        assert_eq!(r.net(Measure::Threads), Some(0));
        return;
    }
    let r = Config::new()
        .max_peak_bytes(PEAK_BOUND)
        .measure(|| run_lru(Eviction::Correct, &[(1, 10)]));
    assert_eq!(r.scope, Scope::CallingThread);
    assert_eq!(r.net(Measure::Threads), None);
    assert_eq!(r.net(Measure::Fds), None);
    assert!(r
        .not_measured_reason(Dimension::Threads)
        .unwrap()
        .contains("other tests share this process"));
    assert!(
        r.peak_bytes.is_some(),
        "peak is measured on the calling thread"
    );
    let text = r.to_string();
    assert!(
        text.contains("threads:   not measured (other tests share this process"),
        "{text}"
    );
    assert!(text.contains("counted: calling thread only"), "{text}");
}

mod with_rstest_and_serial {
    use super::*;
    use rstest::rstest;
    use serial_test::serial;

    #[rstest]
    #[case(Eviction::Correct, false)]
    #[case(Eviction::Never, true)]
    #[case(Eviction::SideList, true)]
    fn rstest_cases_call_check(#[case] eviction: Eviction, #[case] leaks: bool) {
        let ops: Vec<(u64, usize)> = (0..20).map(|k| (k, MAX_VALUE)).collect();
        let r = Config::new()
            .max_peak_bytes(PEAK_BOUND)
            .measure(|| run_lru(eviction, &ops));
        assert_eq!(r.is_leak(), leaks, "{r}");
    }

    #[test]
    #[serial]
    fn serial_test_calls_check() {
        Config::new()
            .max_peak_bytes(PEAK_BOUND)
            .check(|| run_lru(Eviction::Correct, &[(1, 300), (2, 300)]));
    }
}
