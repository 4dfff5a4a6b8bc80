//! Threads that outlive their work, and the memory they keep: the Go tutorial's goroutines that
//! never exit, channels nobody drains, TTL caches whose cleanup never stops and workers that never
//! get their stop signal, translated into Rust threads; and a leak made on a joined thread.

/// A thread that never exits (Go: a goroutine with no exit condition).
pub mod thread_never_exits {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    /// Leaky: the thread loops forever; nothing can stop it.
    pub fn spawn_forever_thread() {
        thread::Builder::new()
            .name("forever".into()) // leak-site
            .spawn(|| loop {
                // leak-site
                thread::sleep(Duration::from_millis(10));
            })
            .unwrap();
    }

    /// Fixed: a stop flag (Go: `context.WithCancel`) and a join (Go: `sync.WaitGroup`).
    pub fn spawn_cancellable_thread() {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let h = thread::Builder::new()
            .name("cancellable".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    thread::sleep(Duration::from_millis(1));
                }
            })
            .unwrap();
        stop.store(true, Ordering::Release);
        h.join().unwrap();
    }

    // A thread holds it; which one is named is not pinned: the spawned thread's own bookkeeping
    // is reached from its stack and, through stale words, from the spawning thread's (seen under
    // load: `held by thread "threads::thread"`, the test's own).
    corpus! {
        leaks spawn_forever_thread => "leaked heap, threads: ",
            held "held by thread \"";
        fixed spawn_cancellable_thread;
    }
}

/// A thread blocked forever on a channel (Go: sending on an unbuffered channel nobody reads).
pub mod thread_blocked_on_channel {
    use std::sync::{mpsc, Mutex};
    use std::thread;

    static PARKED_RECEIVERS: Mutex<Vec<mpsc::Receiver<u64>>> = Mutex::new(Vec::new());

    /// Leaky: a rendezvous channel; the receiver is kept alive but never receives, so the sender
    /// blocks forever.
    pub fn blocked_sender() {
        let (tx, rx) = mpsc::sync_channel::<u64>(0); // leak-site
        thread::Builder::new()
            .name("blocked-send".into()) // leak-site
            .spawn(move || {
                // leak-site
                let _ = tx.send(42);
            })
            .unwrap();
        // The receiver is parked where nobody reads it (a typical "result nobody waits for").
        PARKED_RECEIVERS.lock().unwrap().push(rx); // leak-site
    }

    /// Fixed: a buffered channel, so the send completes, and the thread is joined.
    pub fn buffered_sender() {
        let (tx, rx) = mpsc::sync_channel::<u64>(1);
        let h = thread::Builder::new()
            .name("buffered-send".into())
            .spawn(move || {
                let _ = tx.send(42);
            })
            .unwrap();
        h.join().unwrap();
        assert_eq!(rx.recv().unwrap(), 42);
    }

    /// Also fixed: the receiver is dropped, which closes the channel and fails the blocked send.
    pub fn closed_channel_sender() {
        let (tx, rx) = mpsc::sync_channel::<u64>(0);
        let h = thread::spawn(move || {
            let _ = tx.send(42);
        });
        drop(rx);
        h.join().unwrap();
    }

    corpus! {
        leaks blocked_sender => "leaked heap, threads: ",
            held "held by static corpus::threads::thread_blocked_on_channel::PARKED_RECEIVERS";
        fixed buffered_sender;
        fixed closed_channel_sender;
    }
}

/// A TTL cache whose cleanup thread never stops, versus one stopped on Drop.
pub mod ttl_cleanup_thread {
    use std::collections::HashMap;
    use std::sync::{mpsc, Arc, Mutex};
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    struct TtlInner {
        map: Mutex<HashMap<u64, (Instant, Vec<u8>)>>,
        ttl: Duration,
    }

    impl TtlInner {
        fn purge(&self) {
            let now = Instant::now();
            self.map
                .lock()
                .unwrap()
                .retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
        }
    }

    /// Leaky: `new` starts a cleanup thread that holds the cache's state and loops forever, so
    /// dropping the cache frees neither the thread nor the state.
    pub struct LeakyTtlCache {
        inner: Arc<TtlInner>,
    }

    impl LeakyTtlCache {
        pub fn new(ttl: Duration) -> Self {
            let inner = Arc::new(TtlInner {
                // leak-site
                map: Mutex::new(HashMap::new()),
                ttl,
            });
            let worker = inner.clone();
            thread::Builder::new()
                .name("ttl-cleanup".into()) // leak-site
                .spawn(move || loop {
                    // leak-site
                    thread::sleep(Duration::from_millis(5));
                    worker.purge();
                })
                .unwrap();
            LeakyTtlCache { inner }
        }

        pub fn insert(&self, k: u64, v: Vec<u8>) {
            // The table the first insert allocates lives as long as the cleanup thread.
            self.inner
                .map
                .lock()
                .unwrap()
                .insert(k, (Instant::now(), v)); // leak-site
        }
    }

    /// Fixed: the cleanup thread waits on a stop channel with a timeout, and `Drop` closes the
    /// channel and joins the thread.
    pub struct TtlCache {
        inner: Arc<TtlInner>,
        stop: Option<mpsc::Sender<()>>,
        cleanup: Option<JoinHandle<()>>,
    }

    impl TtlCache {
        pub fn new(ttl: Duration) -> Self {
            let inner = Arc::new(TtlInner {
                map: Mutex::new(HashMap::new()),
                ttl,
            });
            let worker = inner.clone();
            let (stop, stopped) = mpsc::channel::<()>();
            let cleanup = thread::Builder::new()
                .name("ttl-cleanup".into())
                .spawn(move || {
                    while let Err(mpsc::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(Duration::from_millis(5))
                    {
                        worker.purge();
                    }
                })
                .unwrap();
            TtlCache {
                inner,
                stop: Some(stop),
                cleanup: Some(cleanup),
            }
        }

        pub fn insert(&self, k: u64, v: Vec<u8>) {
            self.inner
                .map
                .lock()
                .unwrap()
                .insert(k, (Instant::now(), v));
        }
    }

    impl Drop for TtlCache {
        fn drop(&mut self) {
            drop(self.stop.take());
            if let Some(h) = self.cleanup.take() {
                let _ = h.join();
            }
        }
    }

    /// Leaky use: a cache made, filled and dropped; its cleanup thread goes on.
    pub fn leaky_cache_dropped() {
        let c = LeakyTtlCache::new(Duration::from_millis(1));
        c.insert(1, vec![0; 100]);
    }

    /// Fixed use: the same with the cache that stops its cleanup thread on drop.
    pub fn cache_stopped_on_drop() {
        let c = TtlCache::new(Duration::from_millis(1));
        c.insert(1, vec![0; 100]);
    }

    // A thread holds it (which one is named is not pinned, as for `thread_never_exits`).
    corpus! {
        leaks leaky_cache_dropped => "leaked heap, threads: ",
            held "held by thread \"";
        fixed cache_stopped_on_drop;
    }
}

/// Workers whose stop signal never comes.
pub mod workers_stop_signal {
    use std::sync::{mpsc, Mutex};
    use std::thread::{self, JoinHandle};
    use std::time::Duration;

    pub struct Worker {
        pub data: Vec<u8>,
        stop: mpsc::Sender<()>,
        handle: Option<JoinHandle<()>>,
    }

    fn start_worker(name: &str) -> Worker {
        let (stop, stopped) = mpsc::channel::<()>(); // leak-site
        let handle = thread::Builder::new()
            .name(name.into()) // leak-site
            .spawn(move || {
                // leak-site
                // Works until told to stop (or until the sender is gone).
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_millis(5))
                {}
            })
            .unwrap();
        Worker {
            data: vec![0; 256], // leak-site
            stop,
            handle: Some(handle),
        }
    }

    static SERVICE_WORKERS: Mutex<Vec<Worker>> = Mutex::new(Vec::new());

    /// Leaky: the service registers each worker in a long-lived list, and nothing ever sends the
    /// stop signal or removes the worker.
    pub fn start_worker_leaky() {
        let w = start_worker("svc-worker");
        SERVICE_WORKERS.lock().unwrap().push(w); // leak-site
    }

    impl Worker {
        pub fn stop(mut self) {
            let _ = self.stop.send(());
            if let Some(h) = self.handle.take() {
                h.join().unwrap();
            }
        }
    }

    /// Fixed: the worker is stopped and joined when its job is done.
    pub fn start_worker_fixed() {
        let w = start_worker("svc-worker");
        w.stop();
    }

    corpus! {
        leaks start_worker_leaky => "leaked heap, threads: ",
            held "held by static corpus::threads::workers_stop_signal::SERVICE_WORKERS";
        fixed start_worker_fixed;
    }
}

/// Another thread's leak: a thread the body spawns and joins, whose leaks count.
pub mod joined_thread {
    use std::thread;

    /// Leaky: a thread the body spawns and joins leaks a block: joined threads' leaks count.
    pub fn leak_on_joined_thread() {
        thread::spawn(|| {
            std::mem::forget(vec![1u8; 48]); // leak-site
        })
        .join()
        .unwrap();
    }

    /// Fixed: the joined thread frees what it allocates; the result travels back and is dropped.
    pub fn work_on_joined_thread() {
        assert_eq!(thread::spawn(|| vec![1u8; 48]).join().unwrap().len(), 48);
    }

    corpus! {
        leaks leak_on_joined_thread => "leaked heap: ",
            held "unreachable: nothing points at it";
        fixed work_on_joined_thread;
    }
}
