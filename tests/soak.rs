//! Soak mode: slow leaks that a handful of runs miss, caught by a sustained trend over many
//! iterations; steady workloads never flagged.

// Each leaked value must be a heap block of its own.
#![allow(clippy::vec_box)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use no_leak::{no_leak, Config, Dimension};

static SLOW: Mutex<Vec<Box<[u8; 16]>>> = Mutex::new(Vec::new());
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// One 16-byte block every 100 iterations, into a list that is pre-sized so that only the
/// blocks themselves grow the heap.
fn slow_leak() {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut v = SLOW.lock().unwrap();
    if v.capacity() == 0 {
        v.reserve(100_000);
    }
    if n.is_multiple_of(100) {
        v.push(Box::new([0u8; 16]));
    }
}

/// A bounded cache churning its entries: steady.
struct Churn {
    map: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
    next: u64,
}

impl Churn {
    fn new() -> Self {
        Churn {
            map: HashMap::with_capacity(64),
            order: VecDeque::with_capacity(17),
            next: 0,
        }
    }

    fn step(&mut self) {
        self.next += 1;
        // Values of varying size, so live bytes saw up and down.
        self.map
            .insert(self.next, vec![0u8; 16 + (self.next % 13) as usize * 40]);
        self.order.push_back(self.next);
        if self.order.len() > 16 {
            let old = self.order.pop_front().unwrap();
            self.map.remove(&old);
        }
    }
}

static THREADS: AtomicU64 = AtomicU64::new(0);

/// A thread that never exits, started every 500 iterations.
fn thread_every_500() {
    if THREADS.fetch_add(1, Ordering::Relaxed).is_multiple_of(500) {
        std::thread::spawn(|| loop {
            std::thread::park();
        });
    }
}

#[test]
#[no_leak::isolated]
fn one_block_per_100_iterations_is_caught_within_10000() {
    let r = Config::new().soak(10_000).measure(slow_leak);
    assert!(r.exceeds(Dimension::Heap), "{r}");
    let soak = r.soak.as_ref().unwrap();
    let t = soak.bytes.unwrap();
    assert!(
        t.slope > 0.14 && t.slope < 0.18,
        "16 B per 100 iterations is 0.16 B/iteration: {r}"
    );
    assert!(t.sustained() && t.r_squared > 0.9, "{r}");
    assert_eq!(soak.iterations, 10_000);
    assert!(soak.samples.len() >= 150, "{r}");
    let text = r.to_string();
    assert!(
        text.starts_with(
            "no_leak: `one_block_per_100_iterations_is_caught_within_10000` leaked heap: "
        ),
        "{text}"
    );
    assert!(text.contains("B/iteration (R²"), "{text}");
    // The plot was written, and it is an SVG with the trend.
    let plot = soak.plot.as_ref().expect("a failing soak writes a plot");
    assert!(
        text.contains(&format!("  plot:      {}", plot.display())),
        "{text}"
    );
    let svg = std::fs::read_to_string(plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("trend +0.1"),
        "{}",
        &svg[..200.min(svg.len())]
    );
}

#[test]
fn slow_leak_on_the_calling_thread_is_caught_in_a_shared_process() {
    static V: Mutex<Vec<Box<u128>>> = Mutex::new(Vec::new());
    let mut n = 0u64;
    let r = Config::new().soak(10_000).measure(|| {
        n += 1;
        let mut v = V.lock().unwrap();
        if v.capacity() == 0 {
            v.reserve(1000);
        }
        if n.is_multiple_of(100) {
            v.push(Box::new(0));
        }
    });
    assert!(r.exceeds(Dimension::Heap), "{r}");
}

#[test]
#[no_leak::isolated]
fn a_thread_every_500_iterations_is_caught() {
    let r = Config::new().soak(10_000).measure(thread_every_500);
    assert!(r.exceeds(Dimension::Threads), "{r}");
    let t = r.soak.as_ref().unwrap().threads.unwrap();
    assert!(t.sustained() && t.slope > 0.0015 && t.slope < 0.0025, "{r}");
}

#[test]
#[no_leak::isolated]
fn a_steady_churning_cache_is_never_flagged() {
    // 30 soaks in a row, none flagged.
    let mut flagged = Vec::new();
    for i in 0..30 {
        let mut cache = Churn::new();
        let r = Config::new()
            .name(format!("churn {i}"))
            .soak(10_000)
            .measure(|| cache.step());
        if r.is_leak() {
            flagged.push(r.to_string());
        }
    }
    assert!(
        flagged.is_empty(),
        "{} of 30 flagged:\n{}",
        flagged.len(),
        flagged.join("\n")
    );
}

#[test]
fn a_one_time_step_is_not_a_trend() {
    // A table that grows once, halfway through: the floor rises in one quarter only.
    let mut big: Option<Vec<u8>> = None;
    let mut n = 0;
    let r = Config::new().soak(4_000).measure(|| {
        n += 1;
        if n == 2_500 {
            big = Some(vec![0u8; 4096]);
        }
    });
    assert!(!r.is_leak(), "{r}");
    drop(big);
}

#[test]
fn slope_bound_tolerates_a_known_rate() {
    static V: Mutex<Vec<u8>> = Mutex::new(Vec::new());
    let r = Config::new()
        .soak(2_000)
        .max_slope_bytes_per_iteration(2.0)
        .measure(|| {
            let mut v = V.lock().unwrap();
            if v.capacity() == 0 {
                v.reserve(10_000);
            }
            v.push(1);
            // The Vec's buffer is reserved: pushing allocates nothing, so leak a byte-sized box.
            std::mem::forget(Box::new(0u8));
        });
    assert!(!r.is_leak(), "1 B per iteration is within a 2 B bound: {r}");
}

#[test]
fn soak_for_a_duration() {
    let r = Config::new()
        .soak_for(Duration::from_millis(300))
        .measure(|| {
            std::hint::black_box(vec![0u8; 64]);
        });
    let soak = r.soak.as_ref().unwrap();
    assert!(soak.elapsed >= Duration::from_millis(300), "{r}");
    // About 200 samples on a quiet machine; time-based sampling takes fewer when the thread is
    // descheduled, so only a floor is asserted.
    assert!(soak.samples.len() >= 20, "{r}");
    assert!(!r.is_leak(), "{r}");
}

#[test]
#[no_leak(soak = 10000)]
#[should_panic(expected = "leaked heap: ")]
fn attribute_soak_catches_a_slow_leak() {
    static N: AtomicU64 = AtomicU64::new(0);
    if N.fetch_add(1, Ordering::Relaxed).is_multiple_of(100) {
        std::mem::forget(Box::new([0u8; 16]));
    }
}

#[test]
#[no_leak(soak = 5000, max_slope_bytes_per_iteration = 0.5)]
fn attribute_soak_passes_a_steady_body() {
    std::hint::black_box(String::from("steady"));
}
