//! Calling-thread scope and frees on other threads.
//!
//! On a test thread that shares its process with other tests, a check counts the heap work of the
//! calling thread only. A block the calling thread allocates inside the check and another thread
//! frees inside it (a job run by a worker, a channel message dropped by the receiver, the closure
//! of a spawned thread) counts as freed: it is not a leak. A block allocated before the check and
//! freed elsewhere during it changes nothing, and a real leak on the calling thread is still
//! caught to the byte.
//!
//! Every test here needs calling-thread scope. Under `cargo nextest run` each test has a process
//! of its own, so a test runs itself again in a child process without nextest's variables, where
//! libtest shares the process as under plain `cargo test` (see [`in_shared_process`]).

use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};

use no_leak::report::Scope;
use no_leak::{Config, Measure, Report};

/// True when this test runs on a libtest thread that shares the process (plain `cargo test`):
/// then the caller runs the test. Under nextest it runs this test in a child process that
/// libtest shares, asserts that the child passed, and returns false.
fn in_shared_process() -> bool {
    if std::env::var("NEXTEST_EXECUTION_MODE").as_deref() != Ok("process-per-test") {
        return true;
    }
    let name = thread::current()
        .name()
        .expect("a libtest thread")
        .to_string();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--test-threads=1"])
        .env_remove("NEXTEST")
        .env_remove("NEXTEST_EXECUTION_MODE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in a shared process:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// Asserts calling-thread scope and exact net heap growth (bytes, blocks), per run too.
fn assert_net(r: &Report, bytes: i64, blocks: i64) {
    assert_eq!(r.scope, Scope::CallingThread, "{r}");
    assert_eq!(
        (r.net(Measure::Bytes), r.net(Measure::Blocks)),
        (Some(bytes), Some(blocks)),
        "{r}"
    );
    assert_eq!(r.per_run.len(), 5, "{r}");
}

// --- (1) a block allocated here and freed on a spawned thread -------------------------------

/// The block, and everything `thread::spawn` allocates here (the closure, the thread's handle
/// and result packet), is freed on the spawned thread or here, whichever lets go last.
#[test]
fn block_freed_on_a_spawned_thread_is_not_a_leak() {
    if !in_shared_process() {
        return;
    }
    let r = Config::new().measure(|| {
        let block = Box::new([7u8; 100]);
        thread::spawn(move || drop(std::hint::black_box(block)))
            .join()
            .unwrap();
    });
    assert_net(&r, 0, 0);
    assert!(
        r.per_run.iter().all(|d| (d.bytes, d.blocks) == (0, 0)),
        "{r}"
    );
    assert!(!r.is_leak(), "{r}");
}

/// The same through `no_leak::check`, which panics on a leak.
#[test]
fn check_passes_when_a_spawned_thread_frees_the_block() {
    if !in_shared_process() {
        return;
    }
    no_leak::check(|| {
        let v = vec![1u64; 64];
        thread::spawn(move || assert_eq!(std::hint::black_box(v).len(), 64))
            .join()
            .unwrap();
    });
}

/// A message through a fresh unbounded channel, dropped by the receiving thread: the message, the
/// channel's block and its shared state are all allocated here and freed by whichever side
/// drops last. (The receiver starts after the send, so it never waits: a waiting receiver
/// allocates the channel's waker list on its own thread, which this thread then frees; see
/// `block_allocated_elsewhere_and_freed_here_counts_as_freed_here`.)
#[test]
fn message_dropped_by_the_receiver_is_not_a_leak() {
    if !in_shared_process() {
        return;
    }
    let r = Config::new().measure(|| {
        let (tx, rx) = channel::<Vec<u8>>();
        tx.send(vec![3u8; 300]).unwrap();
        let receiver = thread::spawn(move || {
            let msg = rx.recv().unwrap();
            assert_eq!(msg.len(), 300);
        });
        drop(tx);
        receiver.join().unwrap();
    });
    assert_net(&r, 0, 0);
}

// --- (2) a rayon-like pool: jobs allocated here, run and freed by workers --------------------

type Job = Box<dyn FnOnce() -> u64 + Send>;

/// Worker threads that take boxed jobs from one queue and send back their results. Bounded
/// channels, created before any check: sending moves a job into a buffer that already exists.
struct Pool {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<u64>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(workers: usize) -> Pool {
        let (jobs, queue) = sync_channel::<Job>(64);
        let (done, results) = sync_channel::<u64>(64);
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..workers)
            .map(|_| {
                let (queue, done) = (queue.clone(), done.clone());
                thread::spawn(move || loop {
                    let job = queue.lock().unwrap().recv();
                    let Ok(job) = job else { return };
                    // Calling the job frees its box and whatever it captured, here.
                    let sum = job();
                    done.send(sum).unwrap();
                })
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            results,
            workers,
        }
    }

    /// Makes the calling thread wait once for a result, before any check: the channel's waker list
    /// and this thread's channel context are allocated the first time it really waits.
    fn warm(&self) {
        let job: Job = Box::new(|| {
            thread::sleep(std::time::Duration::from_millis(20));
            1
        });
        self.jobs.as_ref().unwrap().send(job).unwrap();
        assert_eq!(self.results.recv().unwrap(), 1);
    }

    /// Sums `chunks` vectors of `len` numbers, each summed by whichever worker takes it.
    fn sum_chunks(&self, chunks: u64, len: usize) -> u64 {
        for c in 0..chunks {
            let data: Vec<u64> = (0..len as u64).map(|i| i + c).collect();
            let job: Job = Box::new(move || data.iter().sum());
            self.jobs.as_ref().unwrap().send(job).unwrap();
        }
        (0..chunks).map(|_| self.results.recv().unwrap()).sum()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for w in self.workers.drain(..) {
            w.join().unwrap();
        }
    }
}

#[test]
fn jobs_run_and_freed_by_pool_workers_are_not_a_leak() {
    if !in_shared_process() {
        return;
    }
    let pool = Pool::new(2);
    pool.warm();
    let r = Config::new().measure(|| {
        assert_eq!(pool.sum_chunks(8, 50), 8 * 1225 + 50 * 28);
    });
    assert_net(&r, 0, 0);
    assert!(
        r.per_run.iter().all(|d| (d.bytes, d.blocks) == (0, 0)),
        "{r}"
    );
}

// --- (3) a real leak on the calling thread is still caught, exactly --------------------------

#[test]
fn leak_on_the_calling_thread_is_caught_with_exact_bytes_and_blocks() {
    if !in_shared_process() {
        return;
    }
    let pool = Pool::new(2);
    pool.warm();
    let mut kept: Vec<Box<[u8; 40]>> = Vec::with_capacity(64);
    let r = Config::new().measure(|| {
        // Work freed by the workers, and one 40-byte block per run kept here.
        assert_eq!(pool.sum_chunks(4, 10), 4 * 45 + 10 * 6);
        kept.push(Box::new([1u8; 40]));
    });
    assert_net(&r, 5 * 40, 5);
    assert!(
        r.per_run.iter().all(|d| (d.bytes, d.blocks) == (40, 1)),
        "{r}"
    );
    assert!(r.is_leak(), "{r}");
}

/// A block handed to another thread that keeps it is still live, so still a leak.
#[test]
fn block_kept_alive_by_another_thread_is_still_a_leak() {
    if !in_shared_process() {
        return;
    }
    let (tx, rx) = channel::<Box<[u8; 24]>>();
    let (kept_tx, kept_rx) = sync_channel::<()>(64);
    let keeper = thread::spawn(move || {
        let mut kept = Vec::with_capacity(64);
        for b in rx {
            if kept.is_empty() {
                // The first one comes before the check: make the sender wait for it, so that its
                // channel context and waker list exist before the check starts.
                thread::sleep(std::time::Duration::from_millis(20));
            }
            kept.push(b);
            kept_tx.send(()).unwrap();
        }
        kept.len()
    });
    tx.send(Box::new([0u8; 24])).unwrap();
    kept_rx.recv().unwrap();
    let r = Config::new().measure(|| {
        tx.send(Box::new([2u8; 24])).unwrap();
        kept_rx.recv().unwrap();
    });
    drop(tx);
    // One before the check, 3 warmup runs, 5 measured, 8 and 16 to confirm the leak, and the
    // diagnostic run.
    assert_eq!(keeper.join().unwrap(), 34);
    // The first window's boxes fit in the channel's first block (allocated in the first warmup run).
    assert_net(&r, 5 * 24, 5);
    assert!(r.is_leak(), "{r}");
}

// --- (4) blocks allocated before the check and freed elsewhere during it ---------------------

#[test]
fn blocks_allocated_before_the_check_and_freed_elsewhere_do_not_count() {
    if !in_shared_process() {
        return;
    }
    // 8 blocks (warmup 3 + runs 5), allocated before the check; each run hands one to a thread
    // that frees it. Calling-thread scope does not credit them: they were live at the start of
    // the measurement in this thread's count and stay so, and nothing new was allocated.
    let mut before: Vec<Box<[u8; 64]>> = (0..8).map(|_| Box::new([5u8; 64])).collect();
    let r = Config::new().measure(|| {
        if let Some(b) = before.pop() {
            thread::spawn(move || drop(std::hint::black_box(b)))
                .join()
                .unwrap();
        }
    });
    assert!(before.is_empty(), "every run handed one over");
    assert_net(&r, 0, 0);
}

/// The limit, pinned: calling-thread scope counts what this thread frees, whoever allocated it.
/// A block another thread allocated and this thread frees lowers this thread's count (it can
/// offset a leak of the same size here). A helper thread allocates a 64-byte box per run and
/// hands it over through a channel buffer that exists before the check.
#[test]
fn block_allocated_elsewhere_and_freed_here_counts_as_freed_here() {
    if !in_shared_process() {
        return;
    }
    let (ask_tx, ask_rx) = sync_channel::<()>(16);
    let (box_tx, box_rx) = sync_channel::<Box<[u8; 64]>>(16);
    let helper = thread::spawn(move || {
        for (i, ()) in ask_rx.into_iter().enumerate() {
            if i == 0 {
                thread::sleep(std::time::Duration::from_millis(20));
            }
            box_tx.send(Box::new([8u8; 64])).unwrap();
        }
    });
    // This thread waits once before the check (see `Pool::warm`).
    ask_tx.send(()).unwrap();
    drop(box_rx.recv().unwrap());
    let r = Config::new().measure(|| {
        ask_tx.send(()).unwrap();
        drop(box_rx.recv().unwrap());
    });
    drop(ask_tx);
    helper.join().unwrap();
    assert_net(&r, -5 * 64, -5);
    assert!(!r.is_leak(), "{r}");
}

// --- (5) several windows at once, on different threads ---------------------------------------

/// Four threads check at the same time, each handing blocks to helper threads that free them;
/// one of them also leaks 48 bytes a run. Each check sees exactly its own work.
#[test]
fn checks_on_several_threads_at_once_each_see_their_own_work() {
    if !in_shared_process() {
        return;
    }
    let start = Arc::new(Barrier::new(4));
    let checks: Vec<_> = (0..4)
        .map(|i| {
            let start = start.clone();
            thread::Builder::new()
                .name(format!("window-{i}"))
                .spawn(move || {
                    let mut kept = Vec::with_capacity(64);
                    start.wait();
                    Config::new().measure(|| {
                        let blocks: Vec<Box<[u8; 32]>> =
                            (0..16).map(|_| Box::new([0; 32])).collect();
                        thread::spawn(move || drop(std::hint::black_box(blocks)))
                            .join()
                            .unwrap();
                        if i == 0 {
                            kept.push(Box::new([9u8; 48]));
                        }
                    })
                })
                .unwrap()
        })
        .collect();
    for (i, c) in checks.into_iter().enumerate() {
        let r = c.join().unwrap();
        if i == 0 {
            assert_net(&r, 5 * 48, 5);
        } else {
            assert_net(&r, 0, 0);
        }
    }
}

/// A check nested in another on the same thread: both see the spawned thread's frees.
#[test]
fn nested_checks_both_see_frees_on_other_threads() {
    if !in_shared_process() {
        return;
    }
    let mut inner = None;
    let outer = Config::new().measure(|| {
        let r = Config::new().measure(|| {
            let b = Box::new([1u8; 200]);
            thread::spawn(move || drop(std::hint::black_box(b)))
                .join()
                .unwrap();
        });
        inner.get_or_insert(r);
    });
    assert_net(inner.as_ref().unwrap(), 0, 0);
    assert_eq!(outer.scope, Scope::CallingThread);
    assert!(!outer.is_leak(), "{outer}");
}
