//! A tour of no_leak: leaky workloads next to their fixes, and the report for each.
//!
//! Run it with `cargo run --example tour`. In a test you would write `#[test] #[no_leak]`; here the
//! closure API measures the same way (a program's main thread counts the whole process).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use no_leak::Config;

/// A session cache that only grows: every request caches its session and nothing evicts.
static SESSIONS: Mutex<Option<HashMap<u64, Vec<u8>>>> = Mutex::new(None);

fn handle_request_leaky(id: u64) {
    SESSIONS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(id, vec![0; 256]);
}

/// The fix: a cache bounded to 4 sessions, evicting the oldest.
/// The entries and their insertion order.
type Bounded = (HashMap<u64, Vec<u8>>, VecDeque<u64>);
static BOUNDED: Mutex<Option<Bounded>> = Mutex::new(None);

fn handle_request_fixed(id: u64) {
    let mut g = BOUNDED.lock().unwrap();
    let (map, order) =
        g.get_or_insert_with(|| (HashMap::with_capacity(32), VecDeque::with_capacity(8)));
    map.insert(id, vec![0; 256]);
    order.push_back(id);
    while order.len() > 4 {
        let old = order.pop_front().unwrap();
        map.remove(&old);
    }
}

/// A background poller nobody stops.
fn start_poller_leaky() {
    thread::Builder::new()
        .name("poller".into())
        .spawn(|| loop {
            thread::sleep(Duration::from_millis(20));
        })
        .unwrap();
}

/// The fix: a stop flag and a join.
fn start_poller_fixed() {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = thread::Builder::new()
        .name("poller".into())
        .spawn(move || {
            while !s.load(Ordering::Acquire) {
                thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap();
    stop.store(true, Ordering::Release);
    h.join().unwrap();
}

fn show(title: &str, config: Config, body: impl FnMut()) -> bool {
    println!("== {title}");
    let report = config.measure(body);
    println!("{report}\n");
    report.is_leak()
}

fn main() {
    let mut id = 0u64;
    let mut next = move || {
        id += 1;
        id
    };
    let cache_leaks = show(
        "a session cache that only grows",
        Config::new().name("session_cache_leaky"),
        || handle_request_leaky(next()),
    );
    let mut id = 0u64;
    // A bounded cache grows until it is full: warm up past its capacity, so that the measured runs
    // see it churn, not fill.
    let cache_fixed = show(
        "the same cache, bounded to 4 entries (warmup = 5 fills it first)",
        Config::new().name("session_cache_bounded").warmup(5),
        || {
            id += 1;
            handle_request_fixed(id)
        },
    );
    let poller_leaks = show(
        "a poller thread nobody stops",
        Config::new()
            .name("poller_leaky")
            .settle(Duration::from_millis(300)),
        start_poller_leaky,
    );
    let poller_fixed = show(
        "the poller, stopped and joined",
        Config::new().name("poller_fixed"),
        start_poller_fixed,
    );

    println!("In a test suite the same checks are one attribute:\n");
    println!("    #[test]\n    #[no_leak]\n    fn cache_evicts() {{ ... }}\n");
    let expected = cache_leaks && !cache_fixed && poller_leaks && !poller_fixed;
    println!(
        "tour: leaky workloads caught: {}, fixed workloads passed: {}",
        (cache_leaks as u8) + (poller_leaks as u8),
        (!cache_fixed as u8) + (!poller_fixed as u8)
    );
    if !expected {
        eprintln!("tour: unexpected verdicts");
        std::process::exit(1);
    }
}
