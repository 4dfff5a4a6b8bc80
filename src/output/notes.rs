//! One-line notes written straight to the process's stderr, past libtest's output capture, so
//! that they are seen even when the test passes.

/// Says once per process, past libtest's output capture, that a passing check on a shared test
/// thread did not see other threads, threads or fds: a pass there is never silent about its scope.
pub(crate) fn announce_calling_thread_scope() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "no_leak: note: check() on a test thread that shares its process counts only the heap of \
             the calling thread; other threads' heap, threads and fds are not measured. For \
             whole-process checks put #[no_leak::isolated] on the test or run `cargo nextest run`."
        );
    });
}
