//! A least-recently-used cache, plus the two broken variants the property tests must catch.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// How a cache evicts. Only `Correct` is a working LRU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// Evicts the least recently used entry once over capacity, and frees it.
    Correct,
    /// Broken: never evicts, so it grows with every new key.
    Never,
    /// Broken: evicts, but parks evicted values in a process-wide "recycling" list that nothing
    /// ever empties.
    SideList,
}

/// Evicted values parked by `Eviction::SideList` ("kept for reuse", never reused).
static RECYCLED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A cache of byte values under `u64` keys that keeps at most `capacity` entries.
pub struct LruCache {
    capacity: usize,
    eviction: Eviction,
    map: HashMap<u64, Vec<u8>>,
    /// Keys from least to most recently used.
    order: VecDeque<u64>,
}

impl LruCache {
    /// A working LRU cache.
    pub fn new(capacity: usize) -> Self {
        Self::with_eviction(capacity, Eviction::Correct)
    }

    /// A cache with the given (possibly broken) eviction.
    pub fn with_eviction(capacity: usize, eviction: Eviction) -> Self {
        assert!(capacity > 0);
        LruCache {
            capacity,
            eviction,
            map: HashMap::with_capacity(capacity + 1),
            order: VecDeque::with_capacity(capacity + 1),
        }
    }

    fn touch(&mut self, key: u64) {
        if let Some(i) = self.order.iter().position(|k| *k == key) {
            self.order.remove(i);
        }
        self.order.push_back(key);
    }

    /// The value under `key`, marking it most recently used.
    pub fn get(&mut self, key: u64) -> Option<&[u8]> {
        if self.map.contains_key(&key) {
            self.touch(key);
        }
        self.map.get(&key).map(Vec::as_slice)
    }

    /// Inserts or replaces, then evicts the least recently used entries over capacity.
    pub fn put(&mut self, key: u64, value: Vec<u8>) {
        self.map.insert(key, value);
        self.touch(key);
        if self.eviction == Eviction::Never {
            return;
        }
        while self.order.len() > self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(v) = self.map.remove(&old) {
                if self.eviction == Eviction::SideList {
                    RECYCLED.lock().unwrap().push(v);
                }
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
