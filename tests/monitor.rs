//! The runtime monitor and `stats()`.
//!
//! The monitor counts the whole process, so every test here runs alone in a child process
//! (`#[no_leak::isolated]`, or `#[no_leak]` for the monitor's own leak checks): neighbour tests
//! would otherwise show in its numbers. Where timing matters the monitor is driven by hand
//! ([`MonitorBuilder::manual`] with [`Monitor::sample_at`]), so workload steps and samples move in
//! lockstep on an exact clock; the tests with the real sampling thread wait for what they expect
//! (with a deadline far beyond any normal run) or assert what no schedule can change. Tests that
//! assert exact heap figures first wait for libtest's harness thread to go to sleep
//! ([`settle_harness`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use no_leak::monitor::{Alert, AlertKind, Monitor, MonitorBuilder};
use no_leak::{no_leak, stats};

const MS: Duration = Duration::from_millis(1);
/// How long a test waits for something that normally takes milliseconds before it gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// Waits until libtest's main thread (the harness) sleeps, waiting for this test to end.
///
/// Right after it starts a test's thread, the harness records the running test: two small
/// allocations (144 bytes) that race with the first microseconds of the body. `#[no_leak]` leaves
/// the harness's thread out of its counts; `stats()` counts the whole process, so tests that
/// assert exact heap figures start once the harness is asleep (state `S`). Until the test ends it
/// only waits.
fn settle_harness() {
    #[cfg(target_os = "linux")]
    {
        let path = format!("/proc/self/task/{}/stat", std::process::id());
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stat = std::fs::read_to_string(&path).unwrap();
            let state = stat[stat.rfind(')').unwrap() + 1..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            if state == "S" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the harness never slept: {state}"
            );
            std::thread::sleep(MS);
        }
    }
}

/// A sink for alerts, and a callback that fills it. Its room is allocated up front, so that
/// collecting alerts does not move the heap the monitor measures.
fn collector() -> (Arc<Mutex<Vec<Alert>>>, impl FnMut(Alert) + Send + 'static) {
    let sink = Arc::new(Mutex::new(Vec::with_capacity(64)));
    let s = Arc::clone(&sink);
    (sink, move |a| s.lock().unwrap().push(a))
}

fn kinds(alerts: &[Alert]) -> Vec<AlertKind> {
    alerts.iter().map(|a| a.kind).collect()
}

/// Waits until the monitor has taken `n` more samples.
fn wait_samples(m: &Monitor, n: u64) {
    let target = m.sample_count() + n;
    let deadline = Instant::now() + PATIENCE;
    while m.sample_count() < target {
        assert!(Instant::now() < deadline, "the monitor stopped sampling");
        std::thread::sleep(MS);
    }
}

/// Threads that stay parked until released.
struct Parked {
    go: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Parked {
    fn new() -> Parked {
        Parked {
            go: Arc::new(AtomicBool::new(false)),
            handles: Vec::new(),
        }
    }

    fn spawn(&mut self) {
        let go = Arc::clone(&self.go);
        self.handles.push(std::thread::spawn(move || {
            while !go.load(Ordering::Acquire) {
                std::thread::park();
            }
        }));
    }

    fn release(self) {
        self.go.store(true, Ordering::Release);
        for h in self.handles {
            h.thread().unpark();
            h.join().unwrap();
        }
    }
}

mod snapshot {
    use super::*;

    #[test]
    #[no_leak::isolated]
    fn heap_counts_are_exact() {
        settle_harness();
        let before = stats();
        let b = std::hint::black_box(Box::new([7u8; 1000]));
        let mid = stats();
        drop(b);
        let after = stats();
        assert_eq!(mid.live_bytes - before.live_bytes, 1000);
        assert_eq!(mid.live_blocks - before.live_blocks, 1);
        assert_eq!(mid.totals.alloc_bytes - before.totals.alloc_bytes, 1000);
        assert_eq!(after.totals.free_bytes - mid.totals.free_bytes, 1000);
        assert_eq!(
            (after.live_bytes, after.live_blocks),
            (before.live_bytes, before.live_blocks)
        );
        assert_eq!(before.heap_source, no_leak::report::HeapSource::NoLeak);
        assert_eq!(before.peak_bytes, None, "peak is not tracked unless asked");
    }

    #[cfg(any(target_os = "linux", target_os = "macos", windows))]
    #[test]
    #[no_leak::isolated]
    fn threads_and_fds_are_exact() {
        settle_harness();
        let before = stats();
        let mut parked = Parked::new();
        for _ in 0..3 {
            parked.spawn();
        }
        let files: Vec<_> = (0..4)
            .map(|_| {
                std::fs::File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap()
            })
            .collect();
        let mid = stats();
        assert_eq!(mid.threads.unwrap(), before.threads.unwrap() + 3);
        assert_eq!(mid.fds.unwrap(), before.fds.unwrap() + 4);
        parked.release();
        drop(files);
        let after = stats();
        // Joined threads are exiting or gone: not counted, as in the leak census.
        assert_eq!(after.threads, before.threads);
        assert_eq!(after.fds, before.fds);
    }

    #[test]
    #[no_leak::isolated]
    fn peak_is_tracked_on_request() {
        settle_harness();
        let guard = no_leak::monitor::track_peak();
        assert!(guard.is_active());
        let before = stats();
        let big = std::hint::black_box(vec![0u8; 1 << 20]);
        drop(big);
        let after = stats();
        let expected = before
            .peak_bytes
            .unwrap()
            .max(before.live_bytes + (1 << 20));
        assert_eq!(after.peak_bytes, Some(expected));
        // Nested guards share the window; the last one turns it off.
        let inner = no_leak::monitor::track_peak();
        drop(guard);
        assert_eq!(stats().peak_bytes, Some(expected));
        drop(inner);
        assert_eq!(stats().peak_bytes, None);
    }

    #[test]
    #[no_leak::isolated]
    fn monitor_samples_carry_the_peak_when_asked() {
        settle_harness();
        let m = Monitor::builder().manual().track_peak(true).start();
        let big = std::hint::black_box(vec![0u8; 1 << 20]);
        drop(big);
        m.sample_now();
        let s = m.samples();
        let (first, last) = (s[0].stats, s[1].stats);
        assert!(last.peak_bytes.unwrap() >= first.live_bytes + (1 << 20));
        drop(m);
        assert_eq!(stats().peak_bytes, None);
    }
}

/// A monitor on a hand-driven clock with thresholds for these workloads.
fn manual(window: usize) -> MonitorBuilder {
    Monitor::builder()
        .manual()
        .window(window)
        .max_bytes(256 << 10)
        .max_blocks(1000)
        .max_threads(2)
        .max_fds(3)
        .max_slope_bytes_per_sec(64.0 * 1024.0)
}

mod leaking {
    use super::*;

    /// A leak of 16 KiB per step, one step and one sample every 10 ms of the monitor's clock:
    /// 1.6 MB/s.
    #[test]
    #[no_leak::isolated]
    fn bytes_growth_and_trend() {
        settle_harness();
        // Everything the test itself needs is allocated before the baseline.
        let mut leaked: Vec<Box<[u8]>> = Vec::with_capacity(100);
        let mut returned = Vec::with_capacity(64);
        let (alerts, on_alert) = collector();
        let m = manual(10).on_alert(on_alert).start();
        let base = m.baseline().unwrap().stats.live_bytes;
        for step in 1..=40u32 {
            leaked.push(vec![1u8; 16 << 10].into_boxed_slice());
            returned.extend(m.sample_at(step * 10 * MS));
        }
        let alerts = alerts.lock().unwrap().clone();
        assert_eq!(alerts, returned, "the callback saw what sample_at returned");
        // The trend needs a full window (the baseline and 9 more samples); the growth bound of
        // 256 KiB is passed by the 17th block. Each is raised once.
        assert_eq!(
            kinds(&alerts),
            [AlertKind::BytesTrend, AlertKind::BytesGrowth]
        );
        let (trend, growth) = (alerts[0], alerts[1]);
        assert_eq!(trend.elapsed, 90 * MS);
        let slope = trend.slope_per_sec.unwrap();
        assert!(
            (slope - 1_638_400.0).abs() < 1e-6 * 1_638_400.0,
            "{slope} B/s"
        );
        assert!(trend.r_squared.unwrap() > 0.999_999, "{trend:?}");
        assert_eq!(trend.baseline, base);
        assert_eq!(growth.elapsed, 170 * MS);
        assert_eq!(growth.current - growth.baseline, 17 * (16 << 10));
        assert!(growth
            .to_string()
            .starts_with("heap bytes +272.0 KiB over baseline"));
        assert_eq!(m.alert_count(), 2);
        drop(leaked);
    }

    #[test]
    #[no_leak::isolated]
    fn blocks_growth() {
        settle_harness();
        let mut leaked: Vec<Box<u64>> = Vec::with_capacity(2000);
        let m = manual(10)
            .max_bytes(u64::MAX)
            .max_slope_bytes_per_sec(f64::INFINITY)
            .max_blocks(500)
            .on_alert(|_| {})
            .start();
        let mut alerts = Vec::new();
        for step in 1..=20u32 {
            leaked.extend((0..100).map(Box::new));
            alerts.extend(m.sample_at(step * 10 * MS));
        }
        assert_eq!(kinds(&alerts), [AlertKind::BlocksGrowth]);
        assert_eq!(alerts[0].current - alerts[0].baseline, 600);
        assert!(alerts[0].slope_per_sec.unwrap() > 9_999.0);
    }

    #[cfg(any(target_os = "linux", target_os = "macos", windows))]
    #[test]
    #[no_leak::isolated]
    fn threads_growth() {
        settle_harness();
        let m = manual(10).on_alert(|_| {}).start();
        let mut parked = Parked::new();
        let mut alerts = Vec::new();
        for step in 1..=6u32 {
            parked.spawn();
            alerts.push(m.sample_at(step * 10 * MS));
        }
        // Bound 2: the third thread is one too many; the next ones are the same episode.
        let raised: Vec<_> = alerts.iter().map(|a| kinds(a)).collect();
        assert_eq!(
            raised,
            [
                vec![],
                vec![],
                vec![AlertKind::ThreadsGrowth],
                vec![],
                vec![],
                vec![]
            ]
        );
        let a = alerts[2][0];
        assert_eq!(a.current - a.baseline, 3);
        assert_eq!(
            a.to_string(),
            format!(
                "threads +3 over baseline ({} -> {}, allowed +2) [t+0.03s]",
                a.baseline, a.current
            )
        );
        parked.release();
    }

    #[cfg(any(target_os = "linux", target_os = "macos", windows))]
    #[test]
    #[no_leak::isolated]
    fn fds_growth() {
        settle_harness();
        let m = manual(10).on_alert(|_| {}).start();
        let mut files = Vec::new();
        let mut alerts = Vec::new();
        for step in 1..=8u32 {
            files.push(
                std::fs::File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap(),
            );
            alerts.extend(m.sample_at(step * 10 * MS));
        }
        assert_eq!(kinds(&alerts), [AlertKind::FdsGrowth]);
        assert_eq!(alerts[0].elapsed, 40 * MS);
        assert_eq!(alerts[0].current - alerts[0].baseline, 4);
    }

    /// The real sampling thread, every 2 ms, against a workload leaking 4 KiB per millisecond
    /// on its own schedule: both alerts arrive, whatever the scheduler does meanwhile.
    #[test]
    #[no_leak::isolated]
    fn caught_by_the_sampling_thread() {
        settle_harness();
        let (tx, rx) = mpsc::channel();
        let m = Monitor::builder()
            .interval(2 * MS)
            .window(20)
            .max_bytes(1 << 20)
            .max_slope_bytes_per_sec(256.0 * 1024.0)
            .on_alert(move |a| {
                let _ = tx.send(a);
            })
            .start();
        let mut leaked: Vec<Vec<u8>> = Vec::with_capacity(100_000);
        let mut seen = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        while !(seen.contains(&AlertKind::BytesGrowth) && seen.contains(&AlertKind::BytesTrend)) {
            assert!(
                Instant::now() < deadline,
                "no alerts after {PATIENCE:?}: {seen:?}"
            );
            leaked.push(vec![1u8; 4096]);
            std::thread::sleep(MS);
            seen.extend(rx.try_iter().map(|a| a.kind));
        }
        let samples = m.stop();
        assert!(samples.len() >= 20, "{} samples", samples.len());
        // The heap only grows: the growth condition never clears, so it was raised once.
        seen.extend(rx.try_iter().map(|a| a.kind));
        assert_eq!(
            seen.iter()
                .filter(|&&k| k == AlertKind::BytesGrowth)
                .count(),
            1
        );
        assert!(!seen.contains(&AlertKind::ThreadsGrowth) && !seen.contains(&AlertKind::FdsGrowth));
        drop(leaked);
    }
}

mod steady {
    use super::*;

    /// A bounded cache of `cap` entries of `size` bytes: each insert evicts the oldest.
    struct Bounded {
        cap: usize,
        size: usize,
        items: VecDeque<Vec<u8>>,
    }

    impl Bounded {
        fn full(cap: usize, size: usize) -> Bounded {
            let mut c = Bounded {
                cap,
                size,
                items: VecDeque::with_capacity(cap),
            };
            for _ in 0..cap {
                c.insert();
            }
            c
        }

        fn insert(&mut self) {
            if self.items.len() == self.cap {
                self.items.pop_front();
            }
            self.items.push_back(vec![0u8; self.size]);
        }
    }

    /// The real sampling thread every millisecond, with bounds that the leaking tests trip many
    /// times over, against a full bounded cache churning: not one alert, round after round.
    #[test]
    #[no_leak::isolated]
    fn churning_cache_is_quiet_with_the_sampling_thread() {
        settle_harness();
        let mut cache = Bounded::full(256, 256);
        for round in 0..10 {
            let (alerts, on_alert) = collector();
            let m = Monitor::builder()
                .interval(MS)
                .window(20)
                .max_bytes(64 << 10)
                .max_blocks(64)
                .max_threads(0)
                .max_fds(0)
                .max_slope_bytes_per_sec(256.0 * 1024.0)
                .on_alert(on_alert)
                .start();
            // At least 60 samples: the trend check runs on 40 full windows or more.
            let target = m.sample_count() + 60;
            let deadline = Instant::now() + PATIENCE;
            while m.sample_count() < target {
                assert!(Instant::now() < deadline, "the monitor stopped sampling");
                for _ in 0..10 {
                    cache.insert();
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            let samples = m.stop();
            let alerts = alerts.lock().unwrap();
            assert!(alerts.is_empty(), "round {round}: {alerts:?}");
            assert!(samples.len() >= 60);
        }
    }

    /// A batch buffer that fills by 4 KiB per step and is flushed every `tooth` steps: within a
    /// tooth it rises 400 KiB/s, as fast as a leak, but over a window spanning two teeth or more
    /// the line explains at most a quarter of it. Every tooth length, every phase, with a trend
    /// threshold as sensitive as 1 KiB/s; then the same monitor catches a leak of the same rate.
    #[test]
    #[no_leak::isolated]
    fn sawtooth_is_quiet_and_a_leak_of_the_same_rate_is_not() {
        settle_harness();
        let window = 25;
        for tooth in 2..=12 {
            for phase in 0..tooth {
                let m = Monitor::builder()
                    .manual()
                    .window(window)
                    .max_bytes(1 << 20)
                    .max_slope_bytes_per_sec(1024.0)
                    .on_alert(|_| {})
                    .start();
                let mut batch: Vec<Box<[u8]>> = Vec::with_capacity(tooth);
                let mut t = Duration::ZERO;
                let mut step = |batch: &mut Vec<Box<[u8]>>, i: usize| {
                    if (i + phase).is_multiple_of(tooth) {
                        batch.clear();
                    } else {
                        batch.push(vec![0u8; 4096].into_boxed_slice());
                    }
                    t += 10 * MS;
                    m.sample_at(t)
                };
                for i in 0..100 {
                    let alerts = step(&mut batch, i);
                    assert!(
                        alerts.is_empty(),
                        "tooth {tooth}, phase {phase}, step {i}: {alerts:?}"
                    );
                }
                // The same rate, never flushed.
                let raised: Vec<_> = (0..window)
                    .flat_map(|_| {
                        batch.push(vec![0u8; 4096].into_boxed_slice());
                        t += 10 * MS;
                        m.sample_at(t)
                    })
                    .map(|a| a.kind)
                    .collect();
                assert_eq!(
                    raised,
                    [AlertKind::BytesTrend],
                    "tooth {tooth}, phase {phase}"
                );
            }
        }
    }
}

mod lifecycle {
    use super::*;

    #[test]
    #[no_leak]
    fn monitor_thread_stops_on_drop() {
        let m = Monitor::builder().interval(MS).on_alert(|_| {}).start();
        drop(m);
    }

    /// Several samples and a stop that returns them: nothing of the monitor stays behind.
    #[test]
    #[no_leak]
    fn stopped_monitor_leaves_nothing() {
        let m = Monitor::builder()
            .interval(MS)
            .window(4)
            .history(8)
            .on_alert(|_| {})
            .start();
        wait_samples(&m, 10);
        let samples = m.stop();
        assert_eq!(samples.len(), 8);
        assert!(samples.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
    }

    #[test]
    #[no_leak]
    fn manual_monitor_leaves_nothing() {
        let m = manual(5).on_alert(|_| {}).start();
        for i in 1..=10 {
            m.sample_at(i * MS);
        }
        assert_eq!(m.samples().len(), 11);
    }

    /// The sampling thread allocates nothing per sample: over 50 samples the process's
    /// allocation count does not move (only this thread and the sampler run in this process).
    #[test]
    #[no_leak::isolated]
    fn sampling_thread_allocates_nothing() {
        settle_harness();
        let m = Monitor::builder().interval(MS).on_alert(|_| {}).start();
        wait_samples(&m, 5);
        let before = stats().totals;
        wait_samples(&m, 50);
        let after = stats().totals;
        assert_eq!(after.alloc_blocks, before.alloc_blocks);
        assert_eq!(after.free_blocks, before.free_blocks);
    }

    #[cfg(any(target_os = "linux", target_os = "macos", windows))]
    #[test]
    #[no_leak::isolated]
    fn stop_reraises_a_panicking_callback() {
        settle_harness();
        let m = Monitor::builder()
            .interval(MS)
            .max_threads(0)
            .on_alert(|a| panic!("callback saw {}", a.kind))
            .start();
        let mut parked = Parked::new();
        parked.spawn();
        // The sampler dies in the callback; wait until it has.
        let deadline = Instant::now() + PATIENCE;
        while m.alert_count() == 0 {
            assert!(Instant::now() < deadline);
            std::thread::sleep(MS);
        }
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.stop()));
        let msg = panic.unwrap_err();
        assert_eq!(
            msg.downcast_ref::<String>().map(String::as_str),
            Some("callback saw threads growth")
        );
        parked.release();
    }
}
