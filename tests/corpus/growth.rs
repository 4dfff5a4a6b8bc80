//! Memory that only grows: a global cache with no eviction, a subscriber list nobody prunes, a
//! thread-local log; versus a bounded cache, a TTL cache, guards that unsubscribe, and a bounded
//! thread-local.

/// A global cache that only grows, versus a bounded one and a TTL one.
pub mod global_cache {
    use std::collections::{HashMap, VecDeque};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    static UNBOUNDED: Mutex<Option<HashMap<u64, Vec<u8>>>> = Mutex::new(None);
    static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

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

    corpus! {
        leaks unbounded_cache_insert => "leaked heap: ",
            held "held by static corpus::growth::global_cache::UNBOUNDED";
        fixed bounded_cache_insert;
        fixed ttl_cache_insert;
    }
}

/// Subscriber lists that only grow.
pub mod subscribers {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

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
        next: AtomicU64,
    }

    pub struct Subscription<'a> {
        bus: &'a Bus,
        id: u64,
    }

    impl Bus {
        pub const fn new() -> Self {
            Bus {
                listeners: Mutex::new(Vec::new()),
                next: AtomicU64::new(0),
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

    corpus! {
        leaks handle_request_leaky => "leaked heap: ",
            held "held by static corpus::growth::subscribers::LEAKY_BUS";
        fixed handle_request_fixed;
    }
}

/// A thread-local that every call appends to.
pub mod thread_locals {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    thread_local! {
        static HISTORY: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
        static RECENT: RefCell<VecDeque<String>> = const { RefCell::new(VecDeque::new()) };
    }

    /// Leaky: a thread-local log that every call appends to; the test thread lives on, so it
    /// grows.
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

    corpus! {
        leaks thread_local_accumulates => "leaked heap: ",
            held "held by thread \"growth::thread_locals::thread_local_accumulates::held_by\"";
        fixed thread_local_bounded;
    }
}
