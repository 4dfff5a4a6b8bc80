//! The leak patterns of the corpus, as library-like code: each leaky version next to its fix.
//!
//! The patterns follow the Go tutorial this project grew out of (goroutines that never exit,
//! channels nobody drains, reference cycles, caches that only grow, TTL caches whose cleanup never
//! stops, subscriber lists, workers that never get their stop signal), translated into idiomatic
//! Rust, plus the leaks that are Rust's own (`Box::leak`, `mem::forget`, thread-locals, files and
//! sockets parked in statics).

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// 1. A thread that never exits (Go: a goroutine with no exit condition).

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

// ---------------------------------------------------------------------------------------------
// 2. A thread blocked forever on a channel (Go: sending on an unbuffered channel nobody reads).

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
static PARKED_RECEIVERS: Mutex<Vec<mpsc::Receiver<u64>>> = Mutex::new(Vec::new());

/// Fixed: a buffered channel, so the send completes, and the thread is joined.
pub fn buffered_sender() -> u64 {
    let (tx, rx) = mpsc::sync_channel::<u64>(1);
    let h = thread::Builder::new()
        .name("buffered-send".into())
        .spawn(move || {
            let _ = tx.send(42);
        })
        .unwrap();
    h.join().unwrap();
    rx.recv().unwrap()
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

// ---------------------------------------------------------------------------------------------
// 3. Rc parent-child cycles.

pub struct StrongNode {
    pub data: Vec<u8>,
    pub parent: RefCell<Option<Rc<StrongNode>>>,
    pub children: RefCell<Vec<Rc<StrongNode>>>,
}

/// Leaky: the child holds its parent with a strong `Rc`, the parent holds the child: a cycle
/// that no drop ever frees.
pub fn rc_cycle() {
    let parent = Rc::new(StrongNode {
        // leak-site
        data: vec![0; 64], // leak-site
        parent: RefCell::new(None),
        children: RefCell::new(Vec::new()),
    });
    let child = Rc::new(StrongNode {
        // leak-site
        data: vec![0; 32], // leak-site
        parent: RefCell::new(Some(parent.clone())),
        children: RefCell::new(Vec::new()),
    });
    parent.children.borrow_mut().push(child); // leak-site
}

pub struct WeakNode {
    pub data: Vec<u8>,
    pub parent: RefCell<Weak<WeakNode>>,
    pub children: RefCell<Vec<Rc<WeakNode>>>,
}

/// Fixed: children point at their parent with `Weak`.
pub fn weak_parent() {
    let parent = Rc::new(WeakNode {
        data: vec![0; 64],
        parent: RefCell::new(Weak::new()),
        children: RefCell::new(Vec::new()),
    });
    let child = Rc::new(WeakNode {
        data: vec![0; 32],
        parent: RefCell::new(Rc::downgrade(&parent)),
        children: RefCell::new(Vec::new()),
    });
    parent.children.borrow_mut().push(child);
}

/// The same cycle across threads, with `Arc`.
pub fn arc_cycle() {
    struct Node {
        other: Mutex<Option<Arc<Node>>>,
    }
    let a = Arc::new(Node {
        // leak-site
        other: Mutex::new(None),
    });
    let b = Arc::new(Node {
        // leak-site
        other: Mutex::new(Some(a.clone())),
    });
    *a.other.lock().unwrap() = Some(b);
}

// ---------------------------------------------------------------------------------------------
// 4. A closure that captures its owner.

pub struct Button {
    pub label: String,
    pub on_click: RefCell<Option<Box<dyn Fn() -> usize>>>,
}

/// Leaky: the callback stored in the button captures an `Rc` of the button itself.
pub fn closure_captures_owner() {
    let button = Rc::new(Button {
        // leak-site
        label: "ok".repeat(8), // leak-site
        on_click: RefCell::new(None),
    });
    let me = button.clone();
    *button.on_click.borrow_mut() = Some(Box::new(move || me.label.len())); // leak-site
}

/// Fixed: the callback captures a `Weak`.
pub fn closure_captures_weak() {
    let button = Rc::new(Button {
        label: "ok".repeat(8),
        on_click: RefCell::new(None),
    });
    let me = Rc::downgrade(&button);
    *button.on_click.borrow_mut() =
        Some(Box::new(move || me.upgrade().map_or(0, |b| b.label.len())));
}

// ---------------------------------------------------------------------------------------------
// 5. A global cache that only grows, versus a bounded one and a TTL one.

static UNBOUNDED: Mutex<Option<HashMap<u64, Vec<u8>>>> = Mutex::new(None);
static NEXT_KEY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Leaky: every call caches under a new key and nothing is ever removed.
pub fn unbounded_cache_insert() {
    let k = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    UNBOUNDED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(k, vec![0; 1024]); // leak-site
}

/// A cache that keeps at most `cap` entries, evicting the oldest.
pub struct BoundedCache {
    cap: usize,
    map: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
}

impl BoundedCache {
    pub fn new(cap: usize) -> Self {
        // Room for four times the entries: the table then never needs to grow, only to rehash in
        // place, so steady churn allocates nothing.
        BoundedCache {
            cap,
            map: HashMap::with_capacity(cap * 4 + 4),
            order: VecDeque::with_capacity(cap + 1),
        }
    }

    pub fn insert(&mut self, k: u64, v: Vec<u8>) {
        if self.map.insert(k, v).is_none() {
            self.order.push_back(k);
        }
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}

static BOUNDED: Mutex<Option<BoundedCache>> = Mutex::new(None);

/// Fixed: the global cache is bounded; once full, each insert evicts one entry.
pub fn bounded_cache_insert() {
    let k = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    BOUNDED
        .lock()
        .unwrap()
        .get_or_insert_with(|| BoundedCache::new(2))
        .insert(k, vec![0; 1024]);
}

/// A cache whose entries expire; expired entries are purged on every insert.
pub struct PurgingTtlCache {
    ttl: Duration,
    map: HashMap<u64, (Instant, Vec<u8>)>,
}

impl PurgingTtlCache {
    pub fn new(ttl: Duration) -> Self {
        PurgingTtlCache {
            ttl,
            map: HashMap::with_capacity(8),
        }
    }

    pub fn insert(&mut self, k: u64, v: Vec<u8>) {
        let now = Instant::now();
        let ttl = self.ttl;
        self.map.retain(|_, (at, _)| now.duration_since(*at) < ttl);
        self.map.insert(k, (now, v));
    }
}

static TTL: Mutex<Option<PurgingTtlCache>> = Mutex::new(None);

/// Fixed, the TTL way: entries older than the TTL are purged (the TTL is shorter than a run).
pub fn ttl_cache_insert() {
    let k = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    let mut g = TTL.lock().unwrap();
    let cache = g.get_or_insert_with(|| PurgingTtlCache::new(Duration::ZERO));
    cache.insert(k, vec![0; 1024]);
}

// ---------------------------------------------------------------------------------------------
// 6. A TTL cache whose cleanup thread never stops, versus one stopped on Drop.

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
        self.inner
            .map
            .lock()
            .unwrap()
            .insert(k, (Instant::now(), v));
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

// ---------------------------------------------------------------------------------------------
// 7. Subscriber lists that only grow.

type Listener = Box<dyn Fn(&str) + Send>;

/// Leaky: `subscribe` appends to a long-lived list; nothing ever removes a listener.
pub struct LeakyBus {
    listeners: Mutex<Vec<Listener>>,
}

impl LeakyBus {
    pub const fn new() -> Self {
        LeakyBus {
            listeners: Mutex::new(Vec::new()),
        }
    }

    pub fn subscribe(&self, f: Listener) {
        self.listeners.lock().unwrap().push(f); // leak-site
    }

    pub fn publish(&self, msg: &str) {
        for l in self.listeners.lock().unwrap().iter() {
            l(msg);
        }
    }
}

pub static LEAKY_BUS: LeakyBus = LeakyBus::new();

/// A request handler that subscribes for the duration of one request.
pub fn handle_request_leaky() {
    let buf = Arc::new(Mutex::new(Vec::<u8>::with_capacity(64))); // leak-site
    let b = buf.clone();
    LEAKY_BUS.subscribe(Box::new(move |m| {
        // leak-site: the closure; and the buffer it holds grows as later requests publish
        b.lock().unwrap().extend_from_slice(m.as_bytes()) // leak-site
    }));
    LEAKY_BUS.publish("hello");
}

/// Fixed: `subscribe` returns a guard that unsubscribes when dropped.
pub struct Bus {
    listeners: Mutex<Vec<(u64, Listener)>>,
    next: std::sync::atomic::AtomicU64,
}

pub struct Subscription<'a> {
    bus: &'a Bus,
    id: u64,
}

impl Bus {
    pub const fn new() -> Self {
        Bus {
            listeners: Mutex::new(Vec::new()),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn subscribe(&self, f: Listener) -> Subscription<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.listeners.lock().unwrap().push((id, f));
        Subscription { bus: self, id }
    }

    pub fn publish(&self, msg: &str) {
        for (_, l) in self.listeners.lock().unwrap().iter() {
            l(msg);
        }
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        self.bus
            .listeners
            .lock()
            .unwrap()
            .retain(|(id, _)| *id != self.id);
    }
}

pub static BUS: Bus = Bus::new();

pub fn handle_request_fixed() {
    let buf = Arc::new(Mutex::new(Vec::<u8>::with_capacity(64)));
    let b = buf.clone();
    let _sub = BUS.subscribe(Box::new(move |m| {
        b.lock().unwrap().extend_from_slice(m.as_bytes())
    }));
    BUS.publish("hello");
}

// ---------------------------------------------------------------------------------------------
// 8. Workers whose stop signal never comes.

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

// ---------------------------------------------------------------------------------------------
// 9. Rust's own: Box::leak, mem::forget, thread-locals, files and sockets in statics.

/// Leaky: `Box::leak` hands out a `&'static` and never frees.
pub fn box_leak() -> &'static [u8] {
    Box::leak(vec![7u8; 16].into_boxed_slice()) // leak-site
}

/// Fixed: the box is turned back and dropped.
pub fn box_leak_reclaimed() {
    let r: &'static mut [u8] = Box::leak(vec![7u8; 16].into_boxed_slice());
    // SAFETY: `r` came from `Box::leak` just above and is not used after this.
    drop(unsafe { Box::from_raw(r as *mut [u8]) });
}

/// Leaky: `mem::forget` skips the destructor.
pub fn forget_vec() {
    std::mem::forget(vec![0u64; 8]); // leak-site
}

/// Fixed: `ManuallyDrop` taken back with `into_inner` and dropped.
pub fn manually_drop_released() {
    let v = std::mem::ManuallyDrop::new(vec![0u64; 8]);
    drop(std::mem::ManuallyDrop::into_inner(v));
}

thread_local! {
    static HISTORY: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static RECENT: RefCell<VecDeque<String>> = const { RefCell::new(VecDeque::new()) };
}

/// Leaky: a thread-local log that every call appends to; the test thread lives on, so it grows.
pub fn thread_local_accumulates() {
    HISTORY.with(|h| h.borrow_mut().push("request served".to_string())); // leak-site
}

/// Fixed: the thread-local keeps only the last few entries.
pub fn thread_local_bounded() {
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        r.push_back("request served".to_string());
        while r.len() > 2 {
            r.pop_front();
        }
    });
}

static OPEN_FILES: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());

/// Leaky: every call opens a file and parks it in a static.
pub fn park_file_in_static() {
    let f = std::fs::File::open("/proc/self/stat")
        .or_else(|_| std::fs::File::open("Cargo.toml"))
        .unwrap();
    OPEN_FILES.lock().unwrap().push(f); // leak-site
}

/// Fixed: the file is used and closed.
pub fn file_closed() -> usize {
    use std::io::Read;
    let mut f = std::fs::File::open("Cargo.toml").unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s.len()
}

static LISTENERS: Mutex<Vec<std::net::TcpListener>> = Mutex::new(Vec::new());

/// Leaky: every call binds a socket on loopback and parks it in a static.
pub fn park_socket_in_static() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    LISTENERS.lock().unwrap().push(l); // leak-site
}

/// Fixed: the socket is closed when it goes out of scope.
pub fn socket_closed() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Leaky: a thread the body spawns and joins leaks a block: joined threads' leaks count.
pub fn leak_on_joined_thread() {
    thread::spawn(|| {
        std::mem::forget(vec![1u8; 48]); // leak-site
    })
    .join()
    .unwrap();
}

/// Fixed: the joined thread frees what it allocates; the result travels back and is dropped.
pub fn work_on_joined_thread() -> usize {
    thread::spawn(|| vec![1u8; 48]).join().unwrap().len()
}

// ---------------------------------------------------------------------------------------------
// False-positive guards: code that must never be reported.

/// One-time lazy initialisation: allocates on the first call only.
pub fn lazy_init() -> usize {
    static TABLE: std::sync::OnceLock<HashMap<&'static str, Vec<u32>>> = std::sync::OnceLock::new();
    TABLE
        .get_or_init(|| {
            let mut m = HashMap::new();
            m.insert("primes", vec![2, 3, 5, 7, 11, 13]);
            m
        })
        .len()
}

/// Printing in the body.
pub fn print_lots() {
    for i in 0..20 {
        println!("line {i}: {}", "x".repeat(i));
        eprintln!("err line {i}");
    }
}

/// A large transient allocation.
pub fn big_transient() -> u8 {
    let v = vec![1u8; 64 * 1024 * 1024];
    std::hint::black_box(&v)[12345]
}

/// A detached thread that exits shortly after the body returns.
pub fn detached_short_thread() {
    thread::Builder::new()
        .name("short-lived".into())
        .spawn(|| thread::sleep(Duration::from_millis(30)))
        .unwrap();
}
