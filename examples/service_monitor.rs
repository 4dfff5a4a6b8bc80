//! A small "service" watched by `no_leak::monitor::Monitor` while it runs.
//!
//! The service publishes events to subscribers. Clients come and go: each subscribes, waits for
//! one event and leaves. The leaky version forgets to prune the subscriber list: when a send fails
//! because the client has gone, its sender stays in the list, holding the channel's memory, so the
//! list grows by every client that ever connected (the Go tutorial's `LeakyService`). The fixed
//! version drops a subscriber as soon as a send to it fails.
//!
//! ```sh
//! cargo run --example service_monitor            # the leaky service: the monitor alerts
//! cargo run --example service_monitor -- --fixed # the fixed service: no alerts
//! ```
//!
//! Runs for about 4 seconds and exits with status 1 if the monitor did not do its job (no alert
//! on the leaky service, or any alert on the fixed one).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use no_leak::monitor::{Alert, Monitor};

/// An event bus: every published event goes to every subscriber.
struct Service {
    subscribers: Mutex<Vec<Sender<Arc<str>>>>,
    /// Whether subscribers that have gone are pruned.
    fixed: bool,
    published: AtomicU64,
}

impl Service {
    fn new(fixed: bool) -> Service {
        Service {
            subscribers: Mutex::new(Vec::new()),
            fixed,
            published: AtomicU64::new(0),
        }
    }

    fn subscribe(&self) -> Receiver<Arc<str>> {
        let (tx, rx) = mpsc::channel();
        self.subscribers.lock().unwrap().push(tx);
        rx
    }

    fn publish(&self, event: &str) {
        let event: Arc<str> = event.into();
        let mut subscribers = self.subscribers.lock().unwrap();
        if self.fixed {
            // A failed send means the receiver is gone: drop the subscriber.
            subscribers.retain(|tx| tx.send(Arc::clone(&event)).is_ok());
        } else {
            // The bug: a failed send is ignored, and the sender stays in the list forever.
            for tx in subscribers.iter() {
                let _ = tx.send(Arc::clone(&event));
            }
        }
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    fn subscriber_count(&self) -> usize {
        self.subscribers.lock().unwrap().len()
    }
}

fn kib(bytes: i64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn main() {
    let fixed = std::env::args().any(|a| a == "--fixed");
    let which = if fixed { "fixed" } else { "leaky" };
    println!("service_monitor: the {which} service, watched for 4 s (baseline after 0.5 s)");

    let service = Arc::new(Service::new(fixed));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    // One publisher, an event every 2 ms.
    {
        let (service, stop) = (Arc::clone(&service), Arc::clone(&stop));
        workers.push(thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                service.publish(&format!("tick {n}"));
                n += 1;
                thread::sleep(Duration::from_millis(2));
            }
        }));
    }
    // Two kinds of clients coming and going: each subscribes, takes one event and leaves.
    for _ in 0..2 {
        let (service, stop) = (Arc::clone(&service), Arc::clone(&stop));
        workers.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let events = service.subscribe();
                let _ = events.recv_timeout(Duration::from_millis(20));
                drop(events);
                thread::sleep(Duration::from_millis(3));
            }
        }));
    }

    // Alerts are printed as they arrive and kept for the summary (room allocated up front, so
    // that keeping them does not move the heap the monitor watches).
    let raised: Arc<Mutex<Vec<Alert>>> = Arc::new(Mutex::new(Vec::with_capacity(64)));
    let keep = Arc::clone(&raised);
    let started = Instant::now();
    let monitor = Monitor::builder()
        .interval(Duration::from_millis(50))
        .window(20) // the trend is fitted over the last second
        .baseline_after(Duration::from_millis(500))
        .max_bytes(256 << 10)
        .max_blocks(1000)
        .max_threads(4)
        .max_fds(8)
        .max_slope_bytes_per_sec(16.0 * 1024.0)
        .on_alert(move |alert| {
            println!("  ALERT {}: {alert}", alert.kind);
            keep.lock().unwrap().push(alert);
        })
        .start();

    for second in 1..=4 {
        thread::sleep(
            (started + Duration::from_secs(second)).saturating_duration_since(Instant::now()),
        );
        if let Some(s) = monitor.latest() {
            println!(
                "  t={second}s  subscribers in the list: {:>5}  live heap: {:>10}  threads: {}  fds: {}",
                service.subscriber_count(),
                kib(s.stats.live_bytes),
                s.stats.threads.map_or("-".into(), |t: i64| t.to_string()),
                s.stats.fds.map_or("-".into(), |f: i64| f.to_string()),
            );
        }
    }

    let baseline = monitor
        .baseline()
        .expect("the baseline is taken after 0.5 s");
    let samples = monitor.stop();
    let last = samples.last().expect("samples were taken");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }

    let (b, l) = (baseline.stats, last.stats);
    let span = (last.elapsed - baseline.elapsed).as_secs_f64();
    let count = |c: Option<i64>| c.map_or("-".to_string(), |c| c.to_string());
    println!(
        "summary: {} samples, baseline at t={:.2}s, last at t={:.2}s",
        samples.len(),
        baseline.elapsed.as_secs_f64(),
        last.elapsed.as_secs_f64(),
    );
    println!(
        "  live heap: {} -> {} ({:+.1} KiB/s), blocks: {} -> {}",
        kib(b.live_bytes),
        kib(l.live_bytes),
        (l.live_bytes as f64 - b.live_bytes as f64) / 1024.0 / span,
        b.live_blocks,
        l.live_blocks
    );
    println!(
        "  threads: {} -> {}, fds: {} -> {}, events published: {}",
        count(b.threads),
        count(l.threads),
        count(b.fds),
        count(l.fds),
        service.published.load(Ordering::Relaxed)
    );
    let raised = raised.lock().unwrap();
    let alerts = raised.len();
    let list: Vec<String> = raised
        .iter()
        .map(|a| format!("{} at t={:.2}s", a.kind, a.elapsed.as_secs_f64()))
        .collect();
    println!(
        "  alerts: {}",
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(", ")
        }
    );

    let ok = if fixed { alerts == 0 } else { alerts > 0 };
    if !ok {
        eprintln!(
            "service_monitor: expected {} alerts on the {which} service, got {alerts}",
            if fixed { "no" } else { "some" }
        );
        std::process::exit(1);
    }
}
