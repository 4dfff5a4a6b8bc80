//! No global allocator at all: no_leak's own is off (`default-features = false`) and nothing else
//! counts. Every check must fail, and say how to install a counting allocator, rather than pass on
//! zeros.

use std::hint::black_box;

use no_leak::report::HeapSource;
use no_leak::{no_leak, Config, Measure};

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// What the failure message must tell the user.
const INSTRUCTIONS: [&str; 5] = [
    "no counting allocator",
    "global-allocator",
    "#[global_allocator]",
    "no_leak::CountingAlloc::new(std::alloc::System)",
    "stats_alloc",
];

#[test]
#[no_leak]
#[should_panic(expected = "no counting allocator")]
fn no_leak_attribute_fails() {
    drop(black_box(vec![0u8; 10]));
}

#[test]
#[no_leak]
#[should_panic(expected = "no counting allocator")]
fn no_leak_attribute_fails_on_a_leak_too() {
    Box::leak(black_box(Box::new(1u8)));
}

#[test]
#[should_panic(expected = "no counting allocator")]
fn check_fails() {
    no_leak::check(|| drop(black_box(vec![0u8; 10])));
}

#[test]
fn check_message_says_how_to_install_one() {
    let payload = std::panic::catch_unwind(|| no_leak::check(|| {})).expect_err("must fail");
    let msg = panic_text(payload);
    for needle in INSTRUCTIONS {
        assert!(msg.contains(needle), "missing {needle:?} in:\n{msg}");
    }
}

#[test]
fn measure_reports_unmeasurable() {
    let report = Config::new().measure(|| drop(black_box(Box::new(1u64))));
    assert_eq!(report.heap_source, HeapSource::Missing, "{report}");
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
    for needle in INSTRUCTIONS {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
#[no_leak::isolated]
fn measure_reports_unmeasurable_when_isolated_too() {
    let report = Config::new().measure(|| {});
    assert_eq!(report.heap_source, HeapSource::Missing, "{report}");
    assert!(report.unmeasurable.is_some() && report.is_leak(), "{report}");
}
