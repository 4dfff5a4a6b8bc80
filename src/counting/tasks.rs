//! The `tasks` dimension: alive async tasks on watched runtimes (cargo feature `tokio`).
//!
//! Two kinds of runtime are watched, and their alive tasks
//! ([`RuntimeMetrics::num_alive_tasks`](tokio::runtime::RuntimeMetrics::num_alive_tasks)) summed:
//!
//! - every runtime registered with [`watch_runtime`] (a registry of handles in a static; a runtime
//!   that has been dropped since counts 0, because its tasks were dropped with it);
//! - the runtime current on the calling thread ([`Handle::try_current`]), if there is one and it
//!   is not registered already, so a check run from inside a runtime watches that runtime.
//!
//! The engine takes a census before the measured runs and after them, on the calling thread, so
//! "current on the calling thread" is the same runtime at both ends of one check.
//!
//! A census must not allocate anything that outlives it: the heap is read around it. Reading the
//! registry and the metrics allocates nothing.

#[cfg(feature = "tokio")]
mod watched {
    use std::sync::{Mutex, MutexGuard, PoisonError};
    use tokio::runtime::Handle;

    /// The registered runtimes, at most one handle per runtime.
    static WATCHED: Mutex<Vec<Handle>> = Mutex::new(Vec::new());

    fn registry() -> MutexGuard<'static, Vec<Handle>> {
        // A panic while the lock is held cannot leave the list half-changed.
        WATCHED.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn watch(handle: &Handle) -> bool {
        let mut list = registry();
        let id = handle.id();
        if list.iter().any(|h| h.id() == id) {
            return false;
        }
        list.push(handle.clone());
        true
    }

    pub(crate) fn unwatch(handle: &Handle) -> bool {
        let mut list = registry();
        let id = handle.id();
        let before = list.len();
        list.retain(|h| h.id() != id);
        list.len() != before
    }

    /// Wakes the workers of every registered runtime with an empty task each. A tokio I/O driver
    /// releases the records of dropped sockets only when it next turns, which an idle runtime
    /// never does (it wakes itself only after 16 of them); a worker that wakes turns it when it
    /// parks again.
    pub(crate) fn nudge() {
        let list = registry();
        for h in list.iter() {
            for _ in 0..h.metrics().num_workers().max(1) {
                drop(h.spawn(async {}));
            }
        }
    }

    pub(crate) fn alive_tasks() -> Option<i64> {
        let current = Handle::try_current().ok();
        let list = registry();
        if list.is_empty() && current.is_none() {
            return None;
        }
        let mut alive: usize = list.iter().map(|h| h.metrics().num_alive_tasks()).sum();
        if let Some(current) = current {
            let id = current.id();
            if !list.iter().any(|h| h.id() == id) {
                alive += current.metrics().num_alive_tasks();
            }
        }
        Some(alive as i64)
    }
}

/// Watches `handle`'s runtime: from now on every check in this process counts its alive tasks
/// in the `tasks` dimension (bound: [`Config::max_tasks`](crate::Config::max_tasks), default 0).
/// Returns `false` if that runtime was already watched (watching is idempotent).
///
/// Register the runtimes that outlive a test body, where a task left behind keeps running: the
/// runtime a service keeps in a static, or the one whose [`Handle`](tokio::runtime::Handle) it
/// passes around. Register where the runtime is built, so it is watched before the first
/// measured run. A runtime that is dropped later counts 0 (its tasks are dropped with it), but its
/// handle stays in the registry until [`unwatch_runtime`]; don't register a fresh runtime on every
/// run of a measured body. The runtime current on the thread that runs a check is watched without
/// registration. Like threads and fds, tasks are counted only where the whole process is (a
/// `#[no_leak]` test, a check inside `#[no_leak::isolated]`, nextest, `main`). Needs the cargo
/// feature `tokio`.
///
/// ```
/// use std::sync::LazyLock;
/// use tokio::runtime::{Builder, Runtime};
///
/// static SERVICE: LazyLock<Runtime> = LazyLock::new(|| {
///     let rt = Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
///     no_leak::watch_runtime(rt.handle());
///     rt
/// });
///
/// let report = no_leak::Config::new().settle(std::time::Duration::from_millis(100)).measure(|| {
///     // Never ends: one more alive task on SERVICE per run.
///     SERVICE.spawn(std::future::pending::<()>());
/// });
/// assert_eq!(report.net(no_leak::report::Measure::Tasks), Some(5), "{report}");
/// ```
#[cfg(feature = "tokio")]
pub fn watch_runtime(handle: &tokio::runtime::Handle) -> bool {
    watched::watch(handle)
}

/// Stops watching `handle`'s runtime (see [`watch_runtime`]). Returns `false` if it was not
/// registered. The runtime current on a checking thread is still watched there.
#[cfg(feature = "tokio")]
pub fn unwatch_runtime(handle: &tokio::runtime::Handle) -> bool {
    watched::unwatch(handle)
}

/// Alive tasks summed over the watched runtimes, or `None` when no runtime is watched.
pub(crate) fn alive_tasks() -> Option<i64> {
    #[cfg(feature = "tokio")]
    {
        watched::alive_tasks()
    }
    #[cfg(not(feature = "tokio"))]
    {
        None
    }
}

/// Wakes the watched runtimes' workers, so that what their drivers release only on their next turn
/// (a dropped socket's record) is released; nothing without the feature `tokio`.
pub(crate) fn nudge_watched() {
    #[cfg(feature = "tokio")]
    watched::nudge();
}

/// Why tasks were not measured.
pub(crate) fn not_watched_reason() -> &'static str {
    if cfg!(feature = "tokio") {
        "no tokio runtime is watched: register yours with no_leak::watch_runtime(&handle), or run \
         the check on a thread inside it"
    } else {
        "no async runtime is watched (cargo feature `tokio` is off)"
    }
}
