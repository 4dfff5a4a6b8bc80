//! The monitor's rules, on samples fed by hand.

use super::builder::Settings;
use super::ring::Ring;
use super::rules::State;
use super::*;
use crate::counting::alloc::Totals;
use crate::counting::heap::HeapSource;

fn sample(t_ms: u64, bytes: u64) -> Sample {
    Sample {
        elapsed: Duration::from_millis(t_ms),
        stats: Stats {
            heap_source: HeapSource::NoLeak,
            live_bytes: bytes as i64,
            live_blocks: (bytes / 100) as i64,
            totals: Totals::default(),
            peak_bytes: None,
            threads: Some(4),
            fds: Some(5),
            mapped_bytes: Some(4096),
        },
    }
}

fn settings() -> Settings {
    Settings {
        window: 10,
        history: 16,
        max_bytes: 50_000,
        max_blocks: u64::MAX,
        max_slope_bytes_per_sec: 10_000.0,
        ..Settings::default()
    }
}

fn feed(st: &mut State, cfg: &Settings, samples: impl IntoIterator<Item = Sample>) -> Vec<Alert> {
    samples
        .into_iter()
        .flat_map(|s| st.record(s, cfg, SystemTime::UNIX_EPOCH).to_vec())
        .collect()
}

#[test]
fn ring_keeps_the_latest_in_order() {
    let mut r = Ring::with_capacity(4);
    assert_eq!(r.iter_last(10).count(), 0);
    for i in 0..3 {
        r.push(sample(i, i));
    }
    let got: Vec<i64> = r.iter_last(10).map(|s| s.stats.live_bytes).collect();
    assert_eq!(got, [0, 1, 2]);
    for i in 3..11 {
        r.push(sample(i, i));
    }
    let got: Vec<i64> = r.iter_last(10).map(|s| s.stats.live_bytes).collect();
    assert_eq!(got, [7, 8, 9, 10]);
    let got: Vec<i64> = r.iter_last(2).map(|s| s.stats.live_bytes).collect();
    assert_eq!(got, [9, 10]);
    assert_eq!(r.buf.capacity(), 4);
}

#[test]
fn mapped_growth_alerts_over_its_bound() {
    let cfg = Settings {
        max_mapped_bytes: 1 << 20,
        ..settings()
    };
    let mut st = State::new(&cfg);
    // 256 KiB more mapped every 100 ms; the heap stays flat.
    let alerts = feed(
        &mut st,
        &cfg,
        (0..20).map(|i| {
            let mut s = sample(i * 100, 1_000_000);
            s.stats.mapped_bytes = Some((i * (256 << 10)) as i64);
            s
        }),
    );
    let kinds: Vec<AlertKind> = alerts.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [AlertKind::MappedGrowth]);
    let a = alerts[0];
    assert_eq!((a.current, a.baseline), (5 * (256 << 10), 0));
    assert_eq!(
        a.to_string(),
        "mapped bytes +1.25 MiB over baseline (0 B -> 1.25 MiB, allowed +1.00 MiB) [t+0.50s]"
    );
}

#[test]
fn a_steady_leak_alerts_once_per_kind() {
    let cfg = settings();
    let mut st = State::new(&cfg);
    // 2 KiB every 100 ms: 20 KiB/s.
    let alerts = feed(
        &mut st,
        &cfg,
        (0..100).map(|i| sample(i * 100, 1_000_000 + i * 2048)),
    );
    let kinds: Vec<AlertKind> = alerts.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [AlertKind::BytesTrend, AlertKind::BytesGrowth]);
    let trend = alerts[0];
    // The trend needs a full window: the 10th sample after the baseline, the baseline included.
    assert_eq!(trend.elapsed, Duration::from_millis(900));
    assert!((trend.slope_per_sec.unwrap() - 20_480.0).abs() < 1e-6);
    assert!(trend.r_squared.unwrap() > 0.999_999);
    // Growth passes 50 000 bytes at the 25th step (51 200 bytes).
    let growth = alerts[1];
    assert_eq!(growth.elapsed, Duration::from_millis(2500));
    assert_eq!((growth.current, growth.baseline), (1_051_200, 1_000_000));
}

#[test]
fn a_condition_must_clear_for_a_window_before_it_alerts_again() {
    let cfg = Settings {
        max_slope_bytes_per_sec: f64::INFINITY,
        ..settings()
    };
    let mut st = State::new(&cfg);
    let mut t = 0;
    let mut next = |bytes| {
        t += 100;
        sample(t, bytes)
    };
    let mut run = |st: &mut State, bytes: &[u64]| {
        let v: Vec<Sample> = bytes.iter().map(|&b| next(b)).collect();
        feed(st, &cfg, v).len()
    };
    assert_eq!(run(&mut st, &[0]), 0); // baseline
    assert_eq!(run(&mut st, &[60_000]), 1);
    // Hovering around the bound: no flapping.
    assert_eq!(run(&mut st, &[40_000, 60_000, 40_000, 60_000]), 0);
    // Nine quiet samples are not enough to clear, so the next excursion is the same episode.
    assert_eq!(run(&mut st, &[0; 9]), 0);
    assert_eq!(run(&mut st, &[60_000]), 0);
    // Ten quiet samples clear it; the next excursion alerts again.
    assert_eq!(run(&mut st, &[0; 10]), 0);
    assert_eq!(run(&mut st, &[60_000]), 1);
}

#[test]
fn baseline_after_moves_the_baseline() {
    let cfg = Settings {
        baseline_after: Duration::from_millis(500),
        ..settings()
    };
    let mut st = State::new(&cfg);
    // Start-up fills a cache to 400 KB, then the program is steady.
    let alerts = feed(
        &mut st,
        &cfg,
        (0..40).map(|i| sample(i * 100, 100_000 * i.min(4))),
    );
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_eq!(st.baseline.unwrap().elapsed, Duration::from_millis(500));
    assert_eq!(st.taken, 40);
}

#[test]
fn sampling_allocates_nothing_on_this_thread() {
    // Other unit tests share this process and move its counts, so thresholds no workload can
    // reach keep every alert (and the Vec it would fill) out of the picture.
    let m = Monitor::builder()
        .manual()
        .window(8)
        .history(8)
        .max_bytes(u64::MAX)
        .max_blocks(u64::MAX)
        .max_threads(u64::MAX)
        .max_fds(u64::MAX)
        .max_slope_bytes_per_sec(f64::MAX)
        .on_alert(|_| {})
        .start();
    for _ in 0..20 {
        m.sample_now();
    }
    let before = crate::counting::alloc::thread_totals().expect("the test thread owns a slot");
    for _ in 0..50 {
        // No alerts, so no Vec is filled.
        std::hint::black_box(m.sample_now());
    }
    let after = crate::counting::alloc::thread_totals().unwrap();
    assert_eq!(after.alloc_blocks, before.alloc_blocks);
    assert_eq!(m.sample_count(), 71);
}

#[test]
fn alerts_read_well() {
    let a = Alert {
        kind: AlertKind::BytesGrowth,
        current: 3 << 20,
        baseline: 1 << 20,
        threshold: (1 << 20) as f64,
        slope_per_sec: Some(512.0 * 1024.0),
        r_squared: Some(0.97),
        elapsed: Duration::from_millis(2950),
        at: SystemTime::UNIX_EPOCH,
    };
    assert_eq!(
        a.to_string(),
        "heap bytes +2.00 MiB over baseline (1.00 MiB -> 3.00 MiB, allowed +1.00 MiB), rising 512.0 KiB/s [t+2.95s]"
    );
    let t = Alert {
        kind: AlertKind::BytesTrend,
        threshold: 1024.0,
        ..a
    };
    assert_eq!(
        t.to_string(),
        "heap bytes rising steadily at 512.0 KiB/s (R² 0.97): 3.00 MiB, baseline 1.00 MiB [t+2.95s]"
    );
    let th = Alert {
        kind: AlertKind::ThreadsGrowth,
        current: 9,
        baseline: 3,
        threshold: 2.0,
        ..a
    };
    assert_eq!(
        th.to_string(),
        "threads +6 over baseline (3 -> 9, allowed +2) [t+2.95s]"
    );
}
