//! The leak corpus: every leaky pattern is caught in the right dimension, every fixed twin passes.
//!
//! Each leaky test goes through the real `#[no_leak]` attribute (isolation, settling, report) and
//! asserts the report's first line with `#[should_panic(expected = "leaked: <dimensions>")]`, so it
//! passes exactly when the leak is caught in those dimensions and no others. Each fixed twin is a
//! plain `#[no_leak]` test. The `numbers` module checks exact figures through the closure API in an
//! isolated test.
//!
//! Patterns live in `corpus/patterns.rs`.

#[path = "corpus/patterns.rs"]
mod patterns;

use no_leak::no_leak;
use patterns::*;
use std::time::Duration;

mod thread_never_exits {
    use super::*;

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap, threads")]
    fn leaky() {
        spawn_forever_thread();
    }

    #[test]
    #[no_leak]
    fn fixed_cancel_and_join() {
        spawn_cancellable_thread();
    }
}

mod thread_blocked_on_channel {
    use super::*;

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap, threads")]
    fn leaky() {
        blocked_sender();
    }

    #[test]
    #[no_leak]
    fn fixed_buffered() {
        assert_eq!(buffered_sender(), 42);
    }

    #[test]
    #[no_leak]
    fn fixed_closed() {
        closed_channel_sender();
    }
}

mod rc_cycle {
    use super::*;

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap\n")]
    fn leaky() {
        patterns::rc_cycle();
    }

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap\n")]
    fn leaky_arc() {
        arc_cycle();
    }

    #[test]
    #[no_leak]
    fn fixed_weak_parent() {
        weak_parent();
    }
}

mod closure_captures_owner {
    use super::*;

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap\n")]
    fn leaky() {
        patterns::closure_captures_owner();
    }

    #[test]
    #[no_leak]
    fn fixed_weak_capture() {
        closure_captures_weak();
    }
}

mod global_cache {
    use super::*;

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap\n")]
    fn leaky_only_grows() {
        unbounded_cache_insert();
    }

    #[test]
    #[no_leak]
    fn fixed_bounded() {
        bounded_cache_insert();
    }

    #[test]
    #[no_leak]
    fn fixed_ttl() {
        ttl_cache_insert();
    }
}

mod ttl_cleanup_thread {
    use super::*;

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap, threads")]
    fn leaky_never_stops() {
        let c = LeakyTtlCache::new(Duration::from_millis(1));
        c.insert(1, vec![0; 100]);
    }

    #[test]
    #[no_leak]
    fn fixed_stopped_on_drop() {
        let c = TtlCache::new(Duration::from_millis(1));
        c.insert(1, vec![0; 100]);
    }
}

mod subscribers {
    use super::*;

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap\n")]
    fn leaky_only_grow() {
        handle_request_leaky();
    }

    #[test]
    #[no_leak]
    fn fixed_unsubscribe_on_drop() {
        handle_request_fixed();
    }
}

mod workers_stop_signal {
    use super::*;

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap, threads")]
    fn leaky_never_stopped() {
        start_worker_leaky();
    }

    #[test]
    #[no_leak]
    fn fixed_stopped_and_joined() {
        start_worker_fixed();
    }
}

mod box_leak_and_forget {
    use super::*;

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap\n")]
    fn leaky_box_leak() {
        let s = box_leak();
        assert_eq!(s[0], 7);
    }

    #[test]
    #[no_leak]
    fn fixed_box_reclaimed() {
        box_leak_reclaimed();
    }

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap\n")]
    fn leaky_mem_forget() {
        forget_vec();
    }

    #[test]
    #[no_leak]
    fn fixed_manually_drop() {
        manually_drop_released();
    }
}

mod thread_locals {
    use super::*;

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap\n")]
    fn leaky_accumulates() {
        thread_local_accumulates();
    }

    #[test]
    #[no_leak]
    fn fixed_bounded() {
        thread_local_bounded();
    }
}

mod files_and_sockets_in_statics {
    use super::*;

    // The static Vec also grows its buffer while it fills (when its capacity doubles, which comes
    // once in each confirmation window), so the heap is over its bound too.
    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap, fds\n")]
    fn leaky_file() {
        park_file_in_static();
    }

    #[test]
    #[no_leak]
    fn fixed_file_closed() {
        assert!(file_closed() > 0);
    }

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap, fds\n")]
    fn leaky_socket() {
        park_socket_in_static();
    }

    #[test]
    #[no_leak]
    fn fixed_socket_closed() {
        assert!(socket_closed() > 0);
    }
}

mod other_threads {
    use super::*;

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked: heap\n")]
    fn leaky_on_joined_thread() {
        leak_on_joined_thread();
    }

    #[test]
    #[no_leak]
    fn fixed_joined_thread_frees() {
        assert_eq!(work_on_joined_thread(), 48);
    }
}

/// Code that must never be reported.
mod false_positive_guards {
    use super::*;

    #[test]
    #[no_leak]
    fn lazy_one_time_init() {
        assert_eq!(lazy_init(), 1);
    }

    #[test]
    #[no_leak]
    fn printing() {
        print_lots();
    }

    #[test]
    #[no_leak]
    fn large_transient_allocation() {
        assert_eq!(big_transient(), 1);
    }

    #[test]
    #[no_leak]
    fn detached_thread_exits_soon_after() {
        detached_short_thread();
    }
}

/// Exact figures, through the closure API inside an isolated test (whole-process counts).
mod numbers {
    use super::*;
    use no_leak::{Config, Dimension};

    #[test]
    #[no_leak::isolated]
    fn box_leak_is_16_bytes_and_1_block_every_run() {
        let r = Config::new().measure(|| {
            box_leak();
        });
        assert_eq!(r.exceeded(), [Dimension::Heap], "{r}");
        assert_eq!(r.net_bytes(), Some(5 * 16), "{r}");
        assert_eq!(r.net_blocks(), Some(5), "{r}");
        assert!(
            r.per_run().iter().all(|d| d.bytes == 16 && d.blocks == 1),
            "{r}"
        );
        assert!(
            r.to_string()
                .contains("+16/+1, +16/+1, +16/+1, +16/+1, +16/+1"),
            "{r}"
        );
    }

    #[test]
    #[no_leak::isolated]
    fn forever_thread_is_one_thread_per_run_and_named() {
        let r = Config::new()
            .runs(3)
            .settle_ms(250)
            .measure(spawn_forever_thread);
        assert_eq!(r.exceeded(), [Dimension::Heap, Dimension::Threads], "{r}");
        assert_eq!(r.net_threads(), Some(3), "{r}");
        assert_eq!(r.new_threads().len(), 3, "{r}");
        assert!(r.new_threads().iter().all(|t| t.name == "forever"), "{r}");
        assert!(
            r.settle_gave_up() && r.settle_wait() >= Duration::from_millis(250),
            "{r}"
        );
        // A sleeping thread may be caught awake (R) at the census: only the name is fixed.
        assert!(r.to_string().contains("- 3 x \"forever\" "), "{r}");
    }

    #[test]
    #[no_leak::isolated]
    fn parked_socket_is_one_fd_per_run_and_described() {
        let r = Config::new()
            .runs(4)
            .settle_ms(250)
            .measure(park_socket_in_static);
        assert!(r.exceeds(Dimension::Fds), "{r}");
        assert_eq!(r.net_fds(), Some(4), "{r}");
        assert!(
            r.new_fds().iter().all(|f| f.target.starts_with("socket:[")),
            "{r}"
        );
    }

    #[test]
    #[no_leak::isolated]
    fn joined_thread_leak_counts_exactly() {
        let r = Config::new().measure(leak_on_joined_thread);
        assert_eq!(r.exceeded(), [Dimension::Heap], "{r}");
        assert!(
            r.per_run().iter().all(|d| d.bytes == 48 && d.blocks == 1),
            "{r}"
        );
    }

    #[test]
    #[no_leak::isolated]
    fn fixed_twins_measure_zero() {
        for (name, f) in [
            ("cancellable thread", spawn_cancellable_thread as fn()),
            ("weak parent", weak_parent),
            ("bounded cache", bounded_cache_insert),
            ("ttl cache", ttl_cache_insert),
            ("subscription", handle_request_fixed),
            ("worker stopped", start_worker_fixed),
        ] {
            let r = Config::new().name(name).measure(f);
            assert!(!r.is_leak(), "{r}");
            assert_eq!((r.net_bytes(), r.net_blocks()), (Some(0), Some(0)), "{r}");
            assert_eq!(r.net_threads(), Some(0), "{r}");
            assert_eq!(r.net_fds(), Some(0), "{r}");
            assert!(
                r.settle_wait().is_zero(),
                "a passing check never waits: {r}"
            );
        }
    }

    #[test]
    #[no_leak::isolated]
    fn one_byte_per_run_is_caught() {
        let r = Config::new().measure(|| {
            Box::leak(Box::new(1u8));
        });
        assert!(r.is_leak(), "{r}");
        assert_eq!((r.net_bytes(), r.net_blocks()), (Some(5), Some(5)), "{r}");
    }
}
