//! The async leak corpus: every leaky pattern is caught in the right dimension, every fixed twin
//! passes. Needs the cargo feature `tokio` (this package's own dev-dependency on itself turns it
//! on, so a plain `cargo test` runs this file).
//!
//! As in `tests/corpus.rs`, each leaky test goes through the real `#[no_leak]` attribute, here
//! stacked with `#[tokio::test]` (isolation, a fresh runtime per run, settling, report) and
//! asserts the report's first line with `#[should_panic(expected = "leaked <dimensions>: ")]`; each
//! fixed twin is a plain `#[no_leak] #[tokio::test]`. The `numbers` module checks exact figures
//! through `Config::measure_async` in isolated tests, and `stacking` the attribute orders and
//! flavors.
//!
//! Patterns live in `async_corpus/patterns.rs`. The leaky tasks go to [`service`], a long-lived
//! runtime registered with `no_leak::watch_runtime`; a task left on the test's own runtime dies
//! with it after every run, and is no leak.

#[path = "async_corpus/patterns.rs"]
mod patterns;

use no_leak::no_leak;
use patterns::*;

mod task_never_ends {
    use super::*;

    #[no_leak]
    #[tokio::test]
    #[should_panic(expected = "leaked heap, tasks: ")]
    async fn leaky() {
        spawn_forever_task(service());
    }

    #[no_leak]
    #[tokio::test]
    async fn fixed_cancelled_and_awaited() {
        cancel_and_await_task(service()).await;
    }

    #[no_leak]
    #[tokio::test]
    async fn fixed_cancelled_on_drop() {
        cancel_on_drop_task(service());
    }
}

mod task_blocked_on_full_channel {
    use super::*;

    // The parked receivers' Vec grows too, so the heap is over its bound as well.
    #[no_leak]
    #[tokio::test]
    #[should_panic(expected = "leaked heap, tasks: ")]
    async fn leaky() {
        blocked_task_sender(service());
    }

    #[no_leak]
    #[tokio::test]
    async fn fixed_closed() {
        assert!(closed_channel_task_sender(service()).await);
    }
}

mod detached_task_holds_arc_cycle {
    use super::*;

    #[no_leak]
    #[tokio::test]
    #[should_panic(expected = "leaked heap, tasks: ")]
    async fn leaky() {
        let conn = connect_leaky(service());
        drop(conn);
    }

    #[no_leak]
    #[tokio::test]
    async fn fixed_join_set() {
        let client = connect_fixed(service());
        drop(client);
    }
}

mod spawn_blocking_never_returns {
    use super::*;

    // Blocking tasks are not counted by `num_alive_tasks`: the stuck work shows as a thread.
    #[no_leak]
    #[tokio::test]
    #[should_panic(expected = "leaked heap, threads: ")]
    async fn leaky() {
        spawn_blocking_forever(service());
    }

    #[no_leak]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fixed_ends_and_is_awaited() {
        blocking_work_cancelled().await;
    }
}

mod tasks_on_the_test_runtime {
    use super::*;

    // Each run gets a fresh runtime, so a task left on it dies with it.
    #[no_leak]
    #[tokio::test]
    async fn die_with_it() {
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            0,
            "a fresh runtime"
        );
        tokio::spawn(std::future::pending::<()>());
        tokio::spawn(async { tokio::time::sleep(std::time::Duration::from_secs(3600)).await });
    }

    #[no_leak]
    #[tokio::test(flavor = "multi_thread")]
    async fn die_with_it_multi_thread() {
        tokio::spawn(std::future::pending::<()>());
    }

    // Tasks on a runtime nobody watches are not counted, but what they hold is.
    #[no_leak]
    #[tokio::test]
    #[should_panic(expected = "leaked heap: ")]
    async fn unwatched_runtime_shows_in_heap() {
        spawn_forever_task(unwatched());
    }
}

/// `#[no_leak]` before or after `#[tokio::test]`, each flavor, with the attributes tests carry.
mod stacking {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code)] // read through Debug
    struct MyError(u32);

    #[tokio::test]
    #[no_leak]
    async fn no_leak_after_tokio_test() {
        tokio::task::yield_now().await;
    }

    #[no_leak]
    #[tokio::test]
    async fn no_leak_before_tokio_test() {
        tokio::task::yield_now().await;
    }

    #[no_leak]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multi_thread_before() {
        let sum = tokio::spawn(async { (0..100u64).sum::<u64>() })
            .await
            .unwrap();
        assert_eq!(sum, 4950);
    }

    #[tokio::test(flavor = "multi_thread")]
    #[no_leak]
    async fn multi_thread_after() {
        let sum = tokio::spawn(async { (0..100u64).sum::<u64>() })
            .await
            .unwrap();
        assert_eq!(sum, 4950);
    }

    #[tokio::test(flavor = "multi_thread")]
    #[no_leak]
    #[should_panic(expected = "leaked heap, tasks: ")]
    async fn multi_thread_after_catches_a_leak() {
        spawn_forever_task(service());
    }

    #[no_leak(max_tasks = 5, max_bytes = 100000, max_blocks = 100, settle_ms = 50)]
    #[tokio::test]
    async fn max_tasks_bounds_accept_growth_within_them() {
        spawn_forever_task(service());
    }

    #[no_leak(max_tasks = 4, max_bytes = 100000, max_blocks = 100, settle_ms = 50)]
    #[tokio::test]
    #[should_panic(expected = "leaked tasks: ")]
    async fn max_tasks_is_a_bound() {
        spawn_forever_task(service());
    }

    #[no_leak]
    #[tokio::test]
    #[should_panic(expected = "the body's own message")]
    async fn should_panic_sees_the_body_message() {
        tokio::task::yield_now().await;
        panic!("the body's own message: {}", 42);
    }

    #[no_leak]
    #[tokio::test]
    async fn result_ok_passes() -> Result<(), MyError> {
        let n = tokio::spawn(async { 10u32 }).await.unwrap();
        if n == 10 {
            Ok(())
        } else {
            Err(MyError(n))
        }
    }

    #[no_leak::isolated]
    #[tokio::test]
    async fn isolated_before_tokio_test() {
        tokio::task::yield_now().await;
    }
}

/// Exact figures, through the closure API inside isolated tests (whole-process counts).
mod numbers {
    use super::*;
    use no_leak::{Config, Dimension, Measure};
    use std::time::Duration;

    #[test]
    #[no_leak::isolated]
    fn forever_task_is_one_task_per_run() {
        let rt = service();
        let r = Config::new()
            .runs(3)
            .settle(Duration::from_millis(250))
            .measure_async(|| async { spawn_forever_task(rt) });
        assert_eq!(r.exceeded, [Dimension::Heap, Dimension::Tasks], "{r}");
        assert_eq!(r.net(Measure::Tasks), Some(3), "{r}");
        assert_eq!(r.net(Measure::Threads), Some(0), "{r}");
        assert_eq!(r.net(Measure::Fds), Some(0), "{r}");
        let t = r.count(Measure::Tasks).unwrap();
        assert_eq!(t.before, 3, "the warmup's tasks are still alive: {r}");
        assert!(
            r.settle_gave_up && r.settle_wait >= Duration::from_millis(250),
            "{r}"
        );
        assert!(
            r.to_string()
                .contains("  tasks:     3 -> 6 (+3, bound: 0)\n"),
            "{r}"
        );
        assert!(r.to_string().contains("max_tasks = 3)]"), "{r}");
    }

    #[test]
    #[no_leak::isolated]
    fn each_leaky_task_pattern_is_one_task_per_run() {
        let rt = service();
        for (name, leak) in [
            (
                "forever task",
                spawn_forever_task as fn(&'static tokio::runtime::Handle),
            ),
            ("blocked sender", blocked_task_sender),
            ("arc cycle", |rt| drop(connect_leaky(rt))),
        ] {
            let r = Config::new()
                .name(name)
                .settle(Duration::from_millis(100))
                .measure_async(|| async { leak(rt) });
            assert_eq!(r.exceeded, [Dimension::Heap, Dimension::Tasks], "{r}");
            assert_eq!(r.net(Measure::Tasks), Some(5), "{r}");
            assert_eq!(r.net(Measure::Threads), Some(0), "{r}");
            assert!(r.net(Measure::Blocks).unwrap() >= 5, "{r}");
        }
    }

    #[test]
    #[no_leak::isolated]
    fn stuck_blocking_work_is_one_thread_per_run() {
        let rt = service();
        let r = Config::new()
            .runs(4)
            .settle(Duration::from_millis(250))
            .measure_async(|| async { spawn_blocking_forever(rt) });
        assert_eq!(r.exceeded, [Dimension::Heap, Dimension::Threads], "{r}");
        assert_eq!(r.net(Measure::Threads), Some(4), "{r}");
        assert_eq!(
            r.net(Measure::Tasks),
            Some(0),
            "blocking tasks are not counted: {r}"
        );
        assert_eq!(r.new_threads.len(), 4, "{r}");
        assert!(
            r.new_threads.iter().all(|t| t.name == SERVICE_THREADS),
            "{r}"
        );
    }

    // A `spawn_blocking` that never returns on measure_async's own runtime does not hang the
    // check: the runtime's shutdown waits at most settle_ms in all, and leaves the thread behind.
    #[test]
    #[no_leak::isolated]
    fn stuck_blocking_work_on_the_per_run_runtime_is_left_behind_and_caught() {
        let started = std::time::Instant::now();
        let r = Config::new()
            .warmup(1)
            .runs(2)
            .settle(Duration::from_millis(200))
            .measure_async(|| async {
                tokio::task::spawn_blocking(|| loop {
                    std::thread::sleep(Duration::from_millis(20));
                });
            });
        assert!(r.exceeds(Dimension::Threads), "{r}");
        assert_eq!(r.net(Measure::Threads), Some(2), "{r}");
        // A hang detector, not a timing: the check waits about settle_ms (200 ms) in all, a hang
        // would never end, and a loaded CI machine has taken over 5 s for the whole test.
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "took {:?}: the check waited on the stuck thread",
            started.elapsed()
        );
    }

    /// Measures a fixed twin: nothing grew.
    ///
    /// The counts before the measured runs can still include the last warmup run's task, and its
    /// memory, when the service's worker has not yet dropped a task whose end the body already
    /// awaited (tokio wakes the awaiting side first). That only lowers the net, so the heap and
    /// tasks are checked for no growth; threads and fds for exactly none.
    fn assert_clean<Fut: std::future::Future<Output = ()>>(name: &str, body: impl FnMut() -> Fut) {
        let r = Config::new().name(name).measure_async(body);
        assert!(!r.is_leak(), "{r}");
        // A runtime's worker may free what a run dropped later than settling waits (an aborted
        // task's timer entry goes at its deadline): then the growth did not repeat in the
        // confirmation windows, and the report says it was one-time.
        assert!(
            (r.net(Measure::Bytes).unwrap() <= 0 && r.net(Measure::Blocks).unwrap() <= 0)
                || r.one_time.as_ref().is_some(),
            "{r}"
        );
        assert_eq!(r.net(Measure::Threads), Some(0), "{r}");
        assert_eq!(r.net(Measure::Fds), Some(0), "{r}");
        assert!(r.net(Measure::Tasks).is_some_and(|n| n <= 0), "{r}");
    }

    #[test]
    #[no_leak::isolated]
    fn fixed_twins_measure_zero() {
        let rt = service();
        assert_clean("cancelled and awaited", || cancel_and_await_task(rt));
        assert_clean("cancelled on drop", || async { cancel_on_drop_task(rt) });
        assert_clean("closed channel", || async {
            assert!(closed_channel_task_sender(rt).await)
        });
        assert_clean("join set", || async { drop(connect_fixed(rt)) });
        assert_clean("blocking work cancelled", blocking_work_cancelled);
        // And none of them left a task behind on the service runtime.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while rt.metrics().num_alive_tasks() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "a task was left behind"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    #[no_leak::isolated]
    fn tasks_on_the_per_run_runtime_die_with_it() {
        let r = Config::new().measure_async(|| async {
            tokio::spawn(std::future::pending::<()>());
            tokio::spawn(async { vec![0u8; 100] });
        });
        assert!(!r.is_leak(), "{r}");
        assert_eq!(
            (r.net(Measure::Bytes), r.net(Measure::Blocks)),
            (Some(0), Some(0)),
            "{r}"
        );
        assert_eq!(r.net(Measure::Threads), Some(0), "{r}");
    }

    #[test]
    #[no_leak::isolated]
    fn unwatched_runtime_is_heap_only() {
        let rt = unwatched();
        let r = Config::new()
            .settle(Duration::from_millis(100))
            .measure_async(|| async { spawn_forever_task(rt) });
        assert_eq!(r.exceeded, [Dimension::Heap], "{r}");
        assert_eq!(r.net(Measure::Tasks), None, "{r}");
        assert!(
            r.not_measured_reason(Dimension::Tasks)
                .is_some_and(|why| why.contains("watch_runtime")),
            "{r}"
        );
        // No runtime watched, no bound on tasks: the report does not mention them.
        assert!(!r.to_string().contains("tasks:"), "{r}");
    }

    #[test]
    #[no_leak::isolated]
    fn watching_is_idempotent_and_can_be_undone() {
        let rt = unwatched();
        assert!(no_leak::watch_runtime(rt));
        assert!(!no_leak::watch_runtime(rt), "already watched");
        let r = Config::new()
            .runs(2)
            .settle(Duration::from_millis(100))
            .measure(|| spawn_forever_task(rt));
        assert_eq!(r.net(Measure::Tasks), Some(2), "counted once: {r}");
        assert!(no_leak::unwatch_runtime(rt));
        assert!(!no_leak::unwatch_runtime(rt));
        let r = Config::new()
            .runs(2)
            .settle(Duration::from_millis(100))
            .measure(|| spawn_forever_task(rt));
        assert_eq!(r.net(Measure::Tasks), None, "{r}");
    }

    // The runtime current on the checking thread is watched without registering it.
    #[no_leak::isolated]
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_current_runtime_is_watched() {
        let r = Config::new()
            .runs(3)
            .settle(Duration::from_millis(100))
            .measure(|| {
                tokio::spawn(std::future::pending::<()>());
            });
        assert_eq!(r.net(Measure::Tasks), Some(3), "{r}");
        assert!(r.exceeds(Dimension::Tasks), "{r}");
        // Registered as well: still counted once.
        no_leak::watch_runtime(&tokio::runtime::Handle::current());
        let r = Config::new()
            .runs(2)
            .settle(Duration::from_millis(100))
            .measure(|| {
                tokio::spawn(std::future::pending::<()>());
            });
        assert_eq!(r.net(Measure::Tasks), Some(2), "{r}");
    }

    #[test]
    #[no_leak::isolated]
    fn check_async_panics_with_the_report() {
        let rt = service();
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Config::new()
                .name("async leak")
                .settle(Duration::from_millis(50))
                .check_async(|| async { spawn_forever_task(rt) })
        }))
        .expect_err("a leak panics");
        let msg = err.downcast_ref::<String>().expect("a formatted message");
        assert!(
            msg.starts_with("no_leak: `async leak` leaked heap, tasks: "),
            "{msg}"
        );
        Config::new().check_async(|| async { tokio::task::yield_now().await });
    }
}
