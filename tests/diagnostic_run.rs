//! Allocation sites from a diagnostic run, and the traps of in-allocator stack capture. That the
//! first site of every leak pattern is its leaking line is checked by the corpus itself
//! (`tests/corpus/leaking_line.rs`).
//!
//! The closure checks here share one process and measure the calling thread only. They run one at
//! a time (`#[serial]`): the symbol caches one check's diagnostic run fills are released when a
//! check with another name starts, on whichever thread starts it, and a release landing inside
//! another check's window was seen to hide an 8-byte-a-run leak there (3 failures in 15 parallel
//! runs of this file, none in 12 serial ones). See the crate docs' limits.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use no_leak::{Config, Dimension};

const SOURCE: &str = include_str!("diagnostic_run.rs");

fn quick() -> Config {
    Config::new().settle(Duration::from_millis(50))
}

#[test]
#[serial_test::serial]
fn passing_checks_capture_nothing() {
    let report = Config::new().measure(|| drop(vec![0u8; 100]));
    assert!(!report.is_leak(), "{report}");
    assert!(
        report.sites.is_empty() && report.sites_note.is_none(),
        "{report:?}"
    );
}

#[test]
#[serial_test::serial]
fn a_leak_that_does_not_reproduce_says_so() {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    // Leaks during the 3 warmup runs, the first window's 5 runs and the confirmation windows' 8
    // and 16; the next, the diagnostic run, does not.
    let report = quick().measure(|| {
        if CALLS.fetch_add(1, Ordering::SeqCst) < 32 {
            std::mem::forget(vec![0u8; 8]);
        }
    });
    assert!(report.is_leak(), "{report}");
    assert!(report.sites.is_empty(), "{report}");
    assert!(
        report
            .to_string()
            .contains("the leak did not reproduce in the diagnostic run"),
        "{report}"
    );
}

/// Symbolisation cost: stacks are resolved once per distinct address, so 2000 leaked blocks from
/// one line are one site.
#[test]
#[serial_test::serial]
fn many_blocks_from_one_line_are_one_site() {
    let report = quick().runs(1).measure(|| {
        for _ in 0..2000 {
            std::mem::forget(Box::new(0u64));
        }
    });
    let site = &report.sites[0];
    assert_eq!((site.blocks, site.bytes), (2000, 16000), "{report}");
    assert_eq!(report.sites.len(), 1, "{report}");
}

/// Re-entrancy: the body itself captures and symbolises backtraces (allocating inside the
/// unwinder and symboliser, with their locks held) during the diagnostic run.
#[test]
#[serial_test::serial]
fn body_that_captures_backtraces_is_diagnosed() {
    let report = quick().measure(|| {
        let bt = backtrace::Backtrace::new();
        let std_bt = std::backtrace::Backtrace::force_capture().to_string();
        assert!(!bt.frames().is_empty() && !std_bt.is_empty());
        std::mem::forget(vec![0u8; 64]); // the forget line
    });
    assert!(report.exceeds(Dimension::Heap), "{report}");
    let line = SOURCE
        .lines()
        .position(|l| l.ends_with("// the forget line"))
        .unwrap()
        + 1;
    let site = report
        .sites
        .iter()
        .find(|s| s.frame.as_ref().and_then(|f| f.line) == Some(line as u32));
    let site = site.unwrap_or_else(|| panic!("no site at line {line}\n{report}"));
    assert_eq!((site.bytes, site.blocks), (64, 1), "{report}");
    assert_eq!(
        site.frame.as_ref().unwrap().file.as_deref(),
        Some("tests/diagnostic_run.rs"),
        "{report}"
    );
}

/// Lock order: while the diagnostic run captures on every thread, another thread symbolises
/// backtraces in a loop (holding the backtrace crate's lock while it allocates). dhat-rs
/// deadlocks here (its issue #38); the run must finish.
#[test]
#[no_leak::isolated]
fn diagnostic_run_does_not_deadlock_with_a_symbolising_thread() {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let symboliser = std::thread::spawn(move || {
        let mut n = 0;
        while !s.load(Ordering::Relaxed) {
            let bt = backtrace::Backtrace::new();
            n += bt.frames().len();
        }
        n
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The neighbour's own churn moves the whole-process count by a few KiB either way: leak
        // far more than that, so the verdict does not depend on it.
        let report = quick().name("with a symbolising neighbour").measure(|| {
            let _ = backtrace::Backtrace::new();
            std::mem::forget(vec![0u8; 100_000]);
        });
        tx.send(report).unwrap();
    });
    let report = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("diagnostic run deadlocked");
    stop.store(true, Ordering::Relaxed);
    assert!(symboliser.join().unwrap() > 0);
    assert!(report.exceeds(Dimension::Heap), "{report}");
    assert!(
        report
            .sites
            .iter()
            .any(|s| s.bytes == 100_000 && s.blocks == 1),
        "{report}"
    );
}

/// A check inside a diagnostic run (nested) does not start a second capture on the same thread.
#[test]
#[serial_test::serial]
fn nested_leaky_check_in_a_diagnostic_run_does_not_deadlock() {
    let report = quick().measure(|| {
        let inner = quick()
            .name("inner")
            .measure(|| std::mem::forget(vec![1u8; 8]));
        assert!(inner.is_leak());
    });
    assert!(report.is_leak(), "{report}");
}
