//! What no_leak says outside a report: the calling-thread scope note, written once when the
//! process exits, and the one-line form of a report that a check on the same thread and line
//! already printed in full (a property test's shrink steps).

use std::cell::RefCell;
use std::panic::{Location, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

/// The note on the scope of closure checks on shared test threads.
const SCOPE_NOTE: &str = "no_leak: note: check() on a test thread that shares its process counts \
    only what that thread allocated and what was freed of it; heap allocated on other threads, \
    threads and fds are not measured. For whole-process checks put #[no_leak::isolated] on the \
    test or run `cargo nextest run`.\n";

static SCOPE_NOTE_DUE: AtomicBool = AtomicBool::new(false);

/// Says, once, when the process exits, that a passing check on a shared test thread did not see
/// other threads' heap, threads or fds: a pass there is never silent about its scope. At exit,
/// after libtest's summary, so it never splits libtest's `test name ... ok` lines.
pub(crate) fn announce_calling_thread_scope() {
    static REGISTER: Once = Once::new();
    SCOPE_NOTE_DUE.store(true, Ordering::Relaxed);
    REGISTER.call_once(|| {
        // SAFETY: `write_scope_note` is an `extern "C" fn()` that touches only a static and
        // writes a static string to fd 2; it is safe to run at any point of `exit`.
        unsafe { libc::atexit(write_scope_note) };
    });
}

extern "C" fn write_scope_note() {
    if SCOPE_NOTE_DUE.swap(false, Ordering::Relaxed) {
        // SAFETY: the pointer and length describe a static string; fd 2 may be closed, in which
        // case `write` fails and nothing happens.
        unsafe { libc::write(2, SCOPE_NOTE.as_ptr().cast(), SCOPE_NOTE.len() as _) };
    }
}

thread_local! {
    /// Where checks on this thread have already panicked with a full report.
    static REPORTED_AT: RefCell<Vec<(String, u32, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Installs, once, a panic hook in front of the current one: when a check on this thread and at
/// this line panics with a report again (proptest runs a failing property again at every shrink
/// step), it prints the report's first line instead of the whole report. Every other panic goes
/// to the previous hook unchanged. proptest's own final message still carries the full report of
/// the minimal case.
pub(crate) fn shorten_repeated_reports() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !print_short_if_repeated(info) {
                previous(info);
            }
        }));
    });
}

fn print_short_if_repeated(info: &PanicHookInfo<'_>) -> bool {
    let Some(message) = report_text(info) else {
        return false;
    };
    let Some(at) = info.location().map(key) else {
        return false;
    };
    let repeated = REPORTED_AT
        .try_with(|seen| {
            let mut seen = seen.borrow_mut();
            let again = seen.contains(&at);
            if !again {
                seen.push(at.clone());
            }
            again
        })
        .unwrap_or(false);
    if repeated {
        let first = message.lines().next().unwrap_or(message);
        eprintln!(
            "{first} (again at {}:{}:{}; the full report was printed above)",
            at.0, at.1, at.2
        );
    }
    repeated
}

fn key(l: &Location<'_>) -> (String, u32, u32) {
    (l.file().to_string(), l.line(), l.column())
}

/// The panic's message, if it is a no_leak report.
fn report_text<'a>(info: &'a PanicHookInfo<'_>) -> Option<&'a str> {
    let p = info.payload();
    let text = p
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| p.downcast_ref::<&str>().copied())?;
    (text.starts_with("no_leak: `") && text.contains("` leaked ")).then_some(text)
}
