//! The report points at the leaking line: allocation sites from a diagnostic run, thread spawn
//! sites, and the traps of in-allocator stack capture.
//!
//! Lines that allocate leaked memory in `corpus/patterns.rs` carry a `// leak-site` comment; for
//! every heap-leak pattern, the report's first site must be one of the marked lines of that
//! pattern.

#[path = "corpus/patterns.rs"]
mod patterns;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use no_leak::{Config, Dimension, Report};
use patterns::*;

const PATTERNS_FILE: &str = "tests/corpus/patterns.rs";
const SOURCE: &str = include_str!("corpus/patterns.rs");
const SITES_SOURCE: &str = include_str!("sites.rs");

/// The `// leak-site` lines inside the items that start with one of `headers` (an item ends at the
/// first line that closes it at its own indentation).
fn marked_lines(headers: &[&str]) -> Vec<u32> {
    let lines: Vec<&str> = SOURCE.lines().collect();
    let mut out = Vec::new();
    for h in headers {
        let start = lines
            .iter()
            .position(|l| l.trim_start().starts_with(h))
            .unwrap_or_else(|| panic!("no item {h}"));
        let indent = lines[start].len() - lines[start].trim_start().len();
        let close = format!("{}}}", " ".repeat(indent));
        for (i, l) in lines.iter().enumerate().skip(start) {
            if l.trim() == "// leak-site" {
                // rustfmt moves a comment after an opening brace to a line of its own: it marks
                // the line above.
                out.push(i as u32);
            } else if l.ends_with("// leak-site") {
                out.push(i as u32 + 1);
            }
            if i > start && *l == close {
                break;
            }
        }
    }
    assert!(!out.is_empty(), "no leak-site marks in {headers:?}");
    out
}

fn quick() -> Config {
    Config::new().settle_ms(50)
}

fn assert_first_site(name: &str, report: &Report, headers: &[&str]) {
    assert!(report.is_leak(), "{name}: {report}");
    let site = report
        .sites()
        .first()
        .unwrap_or_else(|| panic!("{name}: no sites\n{report}"));
    let frame = site
        .frame
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: unresolved\n{report}"));
    let want = marked_lines(headers);
    assert_eq!(
        frame.file.as_deref(),
        Some(PATTERNS_FILE),
        "{name}\n{report}"
    );
    let line = frame.line.unwrap();
    assert!(
        want.contains(&line),
        "{name}: first site is line {line}, want one of {want:?}\n{report}"
    );
    // The text names it too.
    assert!(
        report
            .to_string()
            .contains(&format!("at {PATTERNS_FILE}:{line} (")),
        "{report}"
    );
}

/// Every heap-leak pattern of the corpus: the first site is the allocating line.
#[test]
#[no_leak::isolated]
fn first_site_is_the_allocating_line_for_every_heap_pattern() {
    type Case = (&'static str, fn(), &'static [&'static str]);
    let cases: Vec<Case> = vec![
        (
            "thread that never exits",
            spawn_forever_thread,
            &["pub fn spawn_forever_thread"],
        ),
        (
            "thread blocked on a channel",
            blocked_sender,
            &["pub fn blocked_sender"],
        ),
        ("rc cycle", rc_cycle, &["pub fn rc_cycle"]),
        ("arc cycle", arc_cycle, &["pub fn arc_cycle"]),
        (
            "closure captures owner",
            closure_captures_owner,
            &["pub fn closure_captures_owner"],
        ),
        (
            "global cache only grows",
            unbounded_cache_insert,
            &["pub fn unbounded_cache_insert"],
        ),
        (
            "ttl cleanup thread never stops",
            || drop(LeakyTtlCache::new(Duration::from_millis(1))),
            &["impl LeakyTtlCache"],
        ),
        (
            "subscribers only grow",
            handle_request_leaky,
            &[
                "pub fn handle_request_leaky",
                "pub fn subscribe(&self, f: Listener)",
            ],
        ),
        (
            "workers never stopped",
            start_worker_leaky,
            &["pub fn start_worker_leaky", "fn start_worker(name: &str)"],
        ),
        (
            "box leak",
            || assert_eq!(box_leak().len(), 16),
            &["pub fn box_leak()"],
        ),
        ("mem forget", forget_vec, &["pub fn forget_vec"]),
        (
            "thread-local accumulates",
            thread_local_accumulates,
            &["pub fn thread_local_accumulates"],
        ),
        // The file and socket patterns leak fds. Their heap growth (the Vec that parks them) comes
        // only when its capacity doubles, which the one diagnostic run rarely sees.
        (
            "leak on a joined thread",
            leak_on_joined_thread,
            &["pub fn leak_on_joined_thread"],
        ),
    ];
    for (name, body, headers) in cases {
        let report = quick().name(name).measure(body);
        assert_first_site(name, &report, headers);
    }
}

#[test]
#[no_leak::isolated]
fn leak_on_another_thread_points_inside_that_thread() {
    let report = quick().measure(leak_on_joined_thread);
    let frame = report.sites()[0].frame.as_ref().unwrap();
    assert!(
        frame
            .function
            .contains("leak_on_joined_thread::{{closure}}"),
        "{report}"
    );
    assert!(!report.sites()[0].spawns_thread, "{report}");
}

#[test]
#[no_leak::isolated]
fn leaked_threads_show_where_they_were_spawned() {
    let report = quick().measure(start_worker_leaky);
    assert!(report.exceeds(Dimension::Threads), "{report}");
    let spawn_line = marked_lines(&["fn start_worker(name: &str)"])
        .into_iter()
        .find(|&l| {
            SOURCE
                .lines()
                .nth(l as usize - 1)
                .unwrap()
                .contains(".spawn(")
        })
        .unwrap();
    let text = report.to_string();
    assert!(
        text.contains(&format!("spawned at {PATTERNS_FILE}:{spawn_line} (corpus"))
            || text.contains(&format!("spawned at {PATTERNS_FILE}:{spawn_line} (sites")),
        "{text}"
    );
}

#[test]
fn calling_thread_scope_finds_sites_too() {
    let report = quick().measure(forget_vec);
    assert_first_site(
        "mem forget, shared process",
        &report,
        &["pub fn forget_vec"],
    );
}

#[test]
fn passing_checks_capture_nothing() {
    let report = Config::new().measure(|| drop(vec![0u8; 100]));
    assert!(!report.is_leak(), "{report}");
    assert!(
        report.sites().is_empty() && report.sites_note().is_none(),
        "{report:?}"
    );
}

#[test]
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
    assert!(report.sites().is_empty(), "{report}");
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
fn many_blocks_from_one_line_are_one_site() {
    let report = quick().runs(1).measure(|| {
        for _ in 0..2000 {
            std::mem::forget(Box::new(0u64));
        }
    });
    let site = &report.sites()[0];
    assert_eq!((site.blocks, site.bytes), (2000, 16000), "{report}");
    assert_eq!(report.sites().len(), 1, "{report}");
}

/// Re-entrancy: the body itself captures and symbolises backtraces (allocating inside the
/// unwinder and symboliser, with their locks held) during the diagnostic run.
#[test]
fn body_that_captures_backtraces_is_diagnosed() {
    let report = quick().measure(|| {
        let bt = backtrace::Backtrace::new();
        let std_bt = std::backtrace::Backtrace::force_capture().to_string();
        assert!(!bt.frames().is_empty() && !std_bt.is_empty());
        std::mem::forget(vec![0u8; 64]); // the forget line
    });
    assert!(report.exceeds(Dimension::Heap), "{report}");
    let line = SITES_SOURCE
        .lines()
        .position(|l| l.ends_with("// the forget line"))
        .unwrap()
        + 1;
    let site = report
        .sites()
        .iter()
        .find(|s| s.frame.as_ref().and_then(|f| f.line) == Some(line as u32));
    let site = site.unwrap_or_else(|| panic!("no site at line {line}\n{report}"));
    assert_eq!((site.bytes, site.blocks), (64, 1), "{report}");
    assert_eq!(
        site.frame.as_ref().unwrap().file.as_deref(),
        Some("tests/sites.rs"),
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
            .sites()
            .iter()
            .any(|s| s.bytes == 100_000 && s.blocks == 1),
        "{report}"
    );
}

/// A check inside a diagnostic run (nested) does not start a second capture on the same thread.
#[test]
fn nested_leaky_check_in_a_diagnostic_run_does_not_deadlock() {
    let report = quick().measure(|| {
        let inner = quick()
            .name("inner")
            .measure(|| std::mem::forget(vec![1u8; 8]));
        assert!(inner.is_leak());
    });
    assert!(report.is_leak(), "{report}");
}
