//! no_leak with `stats_alloc::INSTRUMENTED_SYSTEM` as the global allocator: no_leak's own
//! allocator is off (`default-features = false`) and its feature `stats_alloc` is on, so heap counts
//! come from stats_alloc's process-wide counters.
//!
//! stats_alloc cannot tell threads apart, so a check is exact only where the process is quiet:
//! `#[no_leak]` (which runs the test alone in a child process), `#[no_leak::isolated]`, or a
//! nextest process. On a plain `#[test]` thread that shares the process with other tests, the
//! closure API must fail and say why, never pass on numbers it cannot trust.

use std::hint::black_box;

use no_leak::report::{HeapSource, Scope};
use no_leak::{no_leak, Config, Dimension, Measure};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// True under `cargo nextest run`, where every test has a process of its own.
fn under_nextest() -> bool {
    std::env::var("NEXTEST_EXECUTION_MODE").is_ok_and(|v| v == "process-per-test")
}

#[test]
#[no_leak]
fn clean_test_passes() {
    let v = black_box(vec![1u8; 100]);
    let s = format!("{}", v.len());
    assert_eq!(s, "100");
}

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap")]
fn box_leak_is_caught() {
    Box::leak(black_box(Box::new([0u8; 8])));
}

#[test]
#[no_leak(max_bytes = 1000000, max_blocks = 1000, settle_ms = 50)]
#[should_panic(expected = "leaked threads")]
fn thread_leak_is_caught() {
    std::thread::Builder::new()
        .name("parked-forever".into())
        .spawn(|| loop {
            std::thread::park();
        })
        .unwrap();
}

#[test]
#[no_leak]
#[should_panic(expected = "boom")]
fn body_panic_passes_through() {
    panic!("boom");
}

#[test]
#[no_leak::isolated]
fn closure_measures_exact_numbers_when_isolated() {
    let report = Config::new().measure(|| {
        std::mem::forget(black_box(vec![0u8; 16]));
    });
    assert_eq!(report.heap_source, HeapSource::StatsAlloc, "{report}");
    assert_eq!(report.scope, Scope::Process, "{report}");
    assert!(report.unmeasurable.is_none(), "{report}");
    assert!(report.is_leak(), "{report}");
    assert!(report.exceeds(Dimension::Heap), "{report}");
    assert_eq!(report.net(Measure::Bytes), Some(80), "{report}");
    assert_eq!(report.net(Measure::Blocks), Some(5), "{report}");
    assert_eq!(
        report
            .per_run
            .iter()
            .map(|d| (d.bytes, d.blocks))
            .collect::<Vec<_>>(),
        [(16, 1); 5]
    );
    // stats_alloc keeps no high-water mark: peak is reported as not measured, with the reason.
    assert_eq!(report.peak_bytes, None, "{report}");
    assert!(
        report.per_run.iter().all(|d| d.peak_bytes.is_none()),
        "{report}"
    );
    let why = report
        .not_measured_reason(Dimension::Peak)
        .unwrap_or_default();
    assert!(
        why.contains("stats_alloc"),
        "peak reason: {why:?}\n{report}"
    );
    // Threads and fds are measured in a quiet process.
    assert_eq!(report.net(Measure::Threads), Some(0), "{report}");
    assert_eq!(report.net(Measure::Fds), Some(0), "{report}");
    assert!(report.to_string().contains("leaked heap"), "{report}");
}

#[test]
#[no_leak::isolated]
fn closure_passes_clean_body_when_isolated() {
    let report = Config::new().measure(|| {
        let v = black_box(vec![7u8; 64]);
        let mut w = v.clone();
        w.extend_from_slice(&v);
        drop(black_box(w));
    });
    assert_eq!(report.heap_source, HeapSource::StatsAlloc, "{report}");
    assert!(!report.is_leak(), "{report}");
    assert_eq!(report.net(Measure::Bytes), Some(0), "{report}");
    assert_eq!(report.net(Measure::Blocks), Some(0), "{report}");
    // check() agrees.
    no_leak::check(|| drop(black_box(Box::new(1u64))));
}

#[test]
#[no_leak::isolated]
fn realloc_is_counted_when_isolated() {
    // stats_alloc counts a realloc's size change in its byte counters, not as an allocation.
    let mut kept: Vec<Vec<u8>> = Vec::with_capacity(16);
    let report = Config::new().measure(|| {
        let mut v: Vec<u8> = Vec::with_capacity(8);
        v.push(1);
        v.reserve_exact(100); // realloc 8 -> 101 bytes
        kept.push(black_box(v));
    });
    assert_eq!(report.net(Measure::Blocks), Some(5), "{report}");
    assert_eq!(report.net(Measure::Bytes), Some(5 * 101), "{report}");
    drop(kept);
}

#[test]
fn closure_on_shared_test_thread_is_unmeasurable_not_a_pass() {
    let mut ran = 0;
    let report = Config::new().measure(|| ran += 1);
    if under_nextest() {
        // nextest gives this test a process of its own: stats_alloc's counts are exact here.
        assert_eq!(report.scope, Scope::Process, "{report}");
        assert!(!report.is_leak(), "{report}");
        return;
    }
    assert_eq!(report.scope, Scope::CallingThread, "{report}");
    assert_eq!(report.heap_source, HeapSource::StatsAlloc, "{report}");
    assert!(report.unmeasurable.is_some(), "{report}");
    assert!(
        report.is_leak(),
        "an unmeasurable check must not pass: {report}"
    );
    assert!(
        report.count(Measure::Bytes).is_none() && report.count(Measure::Blocks).is_none(),
        "{report}"
    );
    let text = report.to_string();
    for needle in [
        "cannot be checked",
        "stats_alloc counts process-wide only",
        "other tests share this process",
        "#[no_leak::isolated]",
        "cargo nextest run",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The unmeasurable body is not run at all (its result could not be judged).
    assert_eq!(ran, 0);
}

#[test]
fn check_on_shared_test_thread_fails_with_the_reason() {
    let result = std::panic::catch_unwind(|| no_leak::check(|| drop(black_box(Box::new(1u8)))));
    if under_nextest() {
        assert!(
            result.is_ok(),
            "a quiet nextest process can be measured exactly"
        );
        return;
    }
    let payload = result.expect_err("check must fail where stats_alloc cannot count");
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        msg.contains("stats_alloc counts process-wide only"),
        "{msg}"
    );
    assert!(msg.contains("#[no_leak::isolated]"), "{msg}");
}
