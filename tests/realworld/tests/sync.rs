//! Synchronisation crates, used the way worker pools and config reloaders use them.
//!
//! - `clean_parking_lot_contended_mutex`: a `parking_lot::Mutex` shared by 4 scoped threads that
//!   hold it long enough for the others to really park (a shared counter under contention).
//! - `clean_crossbeam_workers_until_closed`: a job queue on `crossbeam-channel`, two workers
//!   blocked in `recv` until the sender is dropped, then joined.
//! - `leak_crossbeam_worker_never_stopped`: a worker whose sender is kept in a global registry,
//!   so its channel never closes and the worker never exits.
//! - `clean_arc_swap_config_swap`: a lock-free config (`ArcSwap` in a static), reloaded by one
//!   thread while two readers `load()` it.
//! - `clean_thread_local_crate_on_pool_workers`: a per-thread scratch buffer in a static
//!   `thread_local::ThreadLocal`, used from rayon's global pool workers.
//! - `clean_std_thread_local_on_pool_workers`: the same with std's `thread_local!`.

use std::cell::RefCell;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use no_leak::no_leak;
use rayon::prelude::*;

#[test]
#[no_leak]
fn clean_parking_lot_contended_mutex() {
    let counter = parking_lot::Mutex::new(0u64);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    let mut c = counter.lock();
                    *c += 1;
                    // Hold the lock past parking_lot's spin, so the waiters park.
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
        }
    });
    assert_eq!(*counter.lock(), 80);
}

#[test]
#[no_leak]
fn clean_crossbeam_workers_until_closed() {
    let (jobs, queue) = crossbeam_channel::unbounded::<Vec<u8>>();
    let (done, results) = crossbeam_channel::unbounded::<usize>();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let queue = queue.clone();
            let done = done.clone();
            s.spawn(move || {
                for job in queue.iter() {
                    done.send(job.len()).unwrap();
                }
            });
        }
        for i in 0..50 {
            jobs.send(vec![0u8; i]).unwrap();
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1)); // let the workers block on recv
            }
        }
        drop(jobs);
    });
    drop(done);
    assert_eq!(results.iter().sum::<usize>(), (0..50).sum());
}

static KEEP_SENDERS: Mutex<Vec<crossbeam_channel::Sender<Vec<u8>>>> = Mutex::new(Vec::new());

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap, threads: ")]
fn leak_crossbeam_worker_never_stopped() {
    let (jobs, queue) = crossbeam_channel::unbounded::<Vec<u8>>();
    std::thread::Builder::new()
        .name("job-worker".into())
        .spawn(move || {
            for job in queue.iter() {
                std::hint::black_box(job);
            }
        })
        .unwrap();
    jobs.send(vec![1, 2, 3]).unwrap();
    KEEP_SENDERS.lock().unwrap().push(jobs); // "for later": the channel never closes
}

#[derive(Debug)]
struct Config {
    endpoint: String,
    retries: u32,
}

static CONFIG: LazyLock<ArcSwap<Config>> = LazyLock::new(|| {
    ArcSwap::from_pointee(Config {
        endpoint: "http://127.0.0.1:1/v0".into(),
        retries: 3,
    })
});

#[test]
#[no_leak]
fn clean_arc_swap_config_swap() {
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut seen = 0;
                for _ in 0..200 {
                    let cfg = CONFIG.load();
                    seen += cfg.retries as usize + cfg.endpoint.len();
                }
                assert!(seen > 0);
            });
        }
        s.spawn(|| {
            for v in 0..20u32 {
                CONFIG.store(Arc::new(Config {
                    endpoint: format!("http://127.0.0.1:1/v{v}"),
                    retries: 3,
                }));
            }
        });
    });
    assert_eq!(CONFIG.load().endpoint, "http://127.0.0.1:1/v19");
}

static SCRATCH: LazyLock<thread_local::ThreadLocal<RefCell<Vec<u8>>>> =
    LazyLock::new(thread_local::ThreadLocal::new);

fn checksum_with_scratch(buf: &RefCell<Vec<u8>>, i: u32) -> u64 {
    let mut buf = buf.borrow_mut();
    buf.clear();
    buf.extend_from_slice(format!("record-{i}").as_bytes());
    buf.iter().map(|&b| b as u64).sum()
}

#[test]
#[no_leak]
fn clean_thread_local_crate_on_pool_workers() {
    let total: u64 = (0..2_000u32)
        .into_par_iter()
        .map(|i| checksum_with_scratch(SCRATCH.get_or(|| RefCell::new(Vec::with_capacity(64))), i))
        .sum();
    assert!(total > 0);
}

thread_local! {
    static STD_SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(64));
}

#[test]
#[no_leak]
fn clean_std_thread_local_on_pool_workers() {
    let total: u64 = (0..2_000u32)
        .into_par_iter()
        .map(|i| STD_SCRATCH.with(|buf| checksum_with_scratch(buf, i)))
        .sum();
    assert!(total > 0);
}
