//! The environment a check runs in: the switches users set, and whether this process is quiet.

use std::sync::OnceLock;

use crate::counting::heap::Scope;

/// Set in an isolated child process: the name of the one test it runs.
pub(crate) const CHILD_VAR: &str = "NO_LEAK_CHILD";
/// Set in an isolated child process: where to write the verdict.
pub(crate) const RESULT_VAR: &str = "NO_LEAK_RESULT";

/// Why threads, fds and tasks are not measured on a shared test thread.
pub(crate) const SHARED_PROCESS: &str = "other tests share this process; isolate the test \
    (#[no_leak] or #[no_leak::isolated]) or run it under `cargo nextest run`";

/// The name of the variable that switches every check off.
pub(crate) const OFF_VAR: &str = "NO_LEAK";

pub(crate) fn is_off() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    *OFF.get_or_init(|| {
        let off = std::env::var(OFF_VAR).is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        if off {
            // Straight to the process's stderr, past libtest's per-test capture, so it is seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "no_leak: NO_LEAK=off: bodies run once, and nothing is measured"
            );
        }
        off
    })
}

/// True when this process runs a single test and nothing else: a child started by no_leak's
/// isolation, or a nextest process-per-test.
pub(crate) fn quiet_process() -> bool {
    static QUIET: OnceLock<bool> = OnceLock::new();
    *QUIET.get_or_init(|| {
        std::env::var_os(CHILD_VAR).is_some()
            || std::env::var("NEXTEST_EXECUTION_MODE").is_ok_and(|v| v == "process-per-test")
    })
}

pub(crate) fn on_main_thread() -> bool {
    std::thread::current().name() == Some("main")
}

/// The scope a check started on the calling thread gets.
pub(crate) fn detect_scope() -> Scope {
    if quiet_process() || on_main_thread() {
        Scope::Process
    } else {
        Scope::CallingThread
    }
}
