//! Bounded caches in statics, churned the way a request cache is: every round evicts one entry
//! and inserts a fresh one, thousands of rounds per run.
//!
//! - `clean_lru_crate_cache_churn`: `lru::LruCache` with capacity 64 behind a `Mutex` in a
//!   static (a session or DNS cache), 5,000 `put`s of new keys per run.
//! - `clean_hashmap_explicit_eviction`: a std `HashMap` plus a `VecDeque` of insertion order,
//!   evicting the oldest entry past 64 (a hand-rolled FIFO cache).
//! - `leak_lru_that_never_evicts`: the hand-rolled cache with its eviction forgotten: "capacity"
//!   is stored and never checked.
//! - `clean_dashmap_insert_remove_churn`: a static `DashMap` of in-flight requests, each inserted
//!   when it starts and removed when it ends, 2,000 per run.
//! - `leak_dashmap_entries_never_removed`: the same map when the removal is forgotten.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use dashmap::DashMap;
use lru::LruCache;
use no_leak::no_leak;

const ROUNDS: u64 = 5_000;
const CAPACITY: usize = 64;

static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

fn next_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

static LRU: LazyLock<Mutex<LruCache<u64, Vec<u8>>>> =
    LazyLock::new(|| Mutex::new(LruCache::new(NonZeroUsize::new(CAPACITY).unwrap())));

#[test]
#[no_leak]
fn clean_lru_crate_cache_churn() {
    let mut cache = LRU.lock().unwrap();
    for _ in 0..ROUNDS {
        let k = next_key();
        cache.put(k, vec![0u8; 32]);
        assert!(cache.get(&k).is_some());
    }
    assert_eq!(cache.len(), CAPACITY);
}

/// A hand-rolled FIFO cache: a map plus the order keys came in.
struct FifoCache {
    map: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
    capacity: usize,
    evicts: bool,
}

impl FifoCache {
    fn new(capacity: usize, evicts: bool) -> Self {
        FifoCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            evicts,
        }
    }

    fn insert(&mut self, k: u64, v: Vec<u8>) {
        if self.evicts && self.map.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        self.order.push_back(k);
        self.map.insert(k, v);
    }
}

static FIFO: LazyLock<Mutex<FifoCache>> =
    LazyLock::new(|| Mutex::new(FifoCache::new(CAPACITY, true)));

#[test]
#[no_leak]
fn clean_hashmap_explicit_eviction() {
    let mut cache = FIFO.lock().unwrap();
    for _ in 0..ROUNDS {
        cache.insert(next_key(), vec![0u8; 32]);
    }
    assert_eq!(cache.map.len(), CAPACITY);
}

static NEVER_EVICTS: LazyLock<Mutex<FifoCache>> =
    LazyLock::new(|| Mutex::new(FifoCache::new(CAPACITY, false)));

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap: ")]
fn leak_lru_that_never_evicts() {
    let mut cache = NEVER_EVICTS.lock().unwrap();
    for _ in 0..100 {
        cache.insert(next_key(), vec![0u8; 32]);
    }
    assert!(cache.map.len() >= 100);
    assert!(cache.capacity == CAPACITY);
}

static IN_FLIGHT: LazyLock<DashMap<u64, String>> = LazyLock::new(DashMap::new);

#[test]
#[no_leak]
fn clean_dashmap_insert_remove_churn() {
    for _ in 0..2_000 {
        let id = next_key();
        IN_FLIGHT.insert(id, format!("GET /items/{id}"));
        assert!(IN_FLIGHT.contains_key(&id));
        IN_FLIGHT.remove(&id);
    }
    assert!(IN_FLIGHT.is_empty());
}

static SESSIONS: LazyLock<DashMap<u64, String>> = LazyLock::new(DashMap::new);

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap: ")]
fn leak_dashmap_entries_never_removed() {
    for _ in 0..100 {
        let id = next_key();
        SESSIONS.insert(id, format!("session-{id}"));
    }
}
