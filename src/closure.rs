//! The closure API: [`check`], [`Config::check`] and [`Config::measure`], and with the cargo
//! feature `tokio` their async twins [`Config::check_async`] and [`Config::measure_async`]. Each
//! measures in place (no child process) and ends through [`crate::verdict::end`].

use crate::check::config::Config;
use crate::check::engine;
use crate::check::env::detect_scope;
use crate::check::report::Report;
use crate::verdict::{self, Came, Kind};

/// Checks `body` with the default [`Config`]: runs it 3 times, then 5 times measured, and panics
/// with the report if it leaked. See [`Config::check`].
///
/// ```
/// no_leak::check(|| {
///     let s = format!("{}", 42);
///     assert_eq!(s, "42");
/// });
/// ```
#[track_caller]
pub fn check<F: FnMut()>(body: F) {
    Config::new().check(body)
}

impl Config {
    /// Runs `body` `warmup` times, then `runs` times measured, and panics with the report if it
    /// leaked. A panic in `body` propagates unchanged, and `body` is not run again after it.
    #[track_caller]
    pub fn check<F: FnMut()>(&self, body: F) {
        let report = self.measure(body);
        let name = report.name.clone();
        verdict::end::<()>(Kind::Closure, &name, Came::Measured(Box::new(report))).conclude()
    }

    /// Like [`check`](Config::check), but returns the [`Report`] instead of panicking on a leak.
    pub fn measure<F: FnMut()>(&self, mut body: F) -> Report {
        match engine::measure(self, detect_scope(), || {
            body();
        }) {
            Ok(r) => r,
            Err(()) => unreachable!("a unit body cannot fail"),
        }
    }
}

#[cfg(feature = "tokio")]
mod asynchronous {
    use std::future::Future;
    use std::time::{Duration, Instant};

    use tokio::runtime::{Builder, Runtime};

    use super::*;

    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    impl Config {
        /// Like [`check`](Config::check), for an async body: every run gets a fresh current-thread
        /// tokio runtime (as `#[tokio::test]` builds), the future `body()` returns is driven to
        /// completion on it, and the runtime is shut down after the run. Panics with the report if
        /// anything outlived the runs: heap, threads, fds, or tasks on a watched runtime (see
        /// [`watch_runtime`](crate::watch_runtime)).
        ///
        /// A task the body leaves on that per-run runtime is dropped with it, and is not a leak; one
        /// spawned onto a runtime that outlives the run (a service's runtime in a static, a
        /// [`Handle`](tokio::runtime::Handle) passed in) keeps running and is caught. Blocking work
        /// still running when a run's runtime shuts down is waited for, at most `settle_ms` over the
        /// whole check, and then left behind, where it shows as a thread: a `spawn_blocking` that
        /// never returns fails the check instead of hanging it.
        ///
        /// Call it from synchronous code (a plain `#[test]`, `main`), not from inside a runtime: tokio
        /// refuses to start a runtime on a thread that is already driving one. To measure a
        /// `#[tokio::test]` as a whole, put `#[no_leak]` on it.
        ///
        /// ```
        /// no_leak::Config::new().check_async(|| async {
        ///     let (tx, rx) = tokio::sync::oneshot::channel();
        ///     tokio::spawn(async move { tx.send(vec![1u8; 100]).unwrap() });
        ///     assert_eq!(rx.await.unwrap().len(), 100);
        ///     // Never ends, but dies with this run's runtime: not a leak.
        ///     tokio::spawn(std::future::pending::<()>());
        /// });
        /// ```
        #[track_caller]
        pub fn check_async<F, Fut>(&self, body: F)
        where
            F: FnMut() -> Fut,
            Fut: Future<Output = ()>,
        {
            let report = self.measure_async(body);
            let name = report.name.clone();
            verdict::end::<()>(Kind::Closure, &name, Came::Measured(Box::new(report))).conclude()
        }

        /// Like [`check_async`](Config::check_async), but returns the [`Report`] instead of
        /// panicking on a leak.
        ///
        /// ```
        /// let report = no_leak::Config::new().runs(3).measure_async(|| async {
        ///     tokio::task::yield_now().await;
        /// });
        /// assert!(!report.is_leak(), "{report}");
        /// ```
        pub fn measure_async<F, Fut>(&self, mut body: F) -> Report
        where
            F: FnMut() -> Fut,
            Fut: Future<Output = ()>,
        {
            // What is left of settle_ms for waiting on blocking work at runtime shutdowns.
            let mut budget = self.settle;
            self.measure(|| {
                let mut rt = PerRun::new(&mut budget);
                let fut = {
                    let _entered = rt.runtime().enter();
                    body()
                };
                rt.runtime().block_on(fut);
            })
        }
    }

    /// The runtime of one run. Shut down when dropped, also when the body panics, waiting for
    /// blocking work no longer than what is left of the check's budget.
    struct PerRun<'a> {
        rt: Option<Runtime>,
        budget: &'a mut Duration,
    }

    impl<'a> PerRun<'a> {
        fn new(budget: &'a mut Duration) -> PerRun<'a> {
            let rt = Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| {
                    panic!("no_leak: could not build a tokio runtime for a run: {e}")
                });
            PerRun {
                rt: Some(rt),
                budget,
            }
        }

        fn runtime(&mut self) -> &Runtime {
            self.rt.as_ref().expect("present until dropped")
        }
    }

    impl Drop for PerRun<'_> {
        fn drop(&mut self) {
            if let Some(rt) = self.rt.take() {
                let started = Instant::now();
                rt.shutdown_timeout(*self.budget);
                *self.budget = self.budget.saturating_sub(started.elapsed());
            }
        }
    }
}
