//! Two caches and their leak checks: an LRU cache whose peak memory stays bounded by its
//! capacity, and a TTL cache whose cleanup thread stops when the cache drops.
//!
//! Run with `cargo run --example caches`. The property tests in `tests/cache_properties.rs` check
//! the same caches, and their deliberately broken variants, with proptest.

// The caches' full APIs are exercised by tests/cache_properties.rs, not all by this demo.
#[allow(dead_code)]
mod lru;
#[allow(dead_code)]
mod ttl;

use std::time::Duration;

use lru::{Eviction, LruCache};
use no_leak::Config;
use ttl::TtlCache;

const CAPACITY: usize = 4;
const MAX_VALUE: usize = 300;

fn fill(eviction: Eviction) {
    let mut c = LruCache::with_eviction(CAPACITY, eviction);
    for k in 0..32u64 {
        c.put(k % 12, vec![0; MAX_VALUE]);
        let _ = c.get(k % 5);
    }
}

fn main() {
    // Capacity 4, values of at most 300 B: at most 5 values are live at once (4 cached, one on
    // its way in), plus the table and the order list.
    let bound = ((CAPACITY + 1) * MAX_VALUE + 1024) as u64;
    for eviction in [Eviction::Correct, Eviction::Never, Eviction::SideList] {
        let r = Config::new()
            .name(format!("lru_{eviction:?}"))
            .max_peak_bytes(bound)
            .measure(|| fill(eviction));
        println!("{r}\n");
    }
    let r = Config::new().name("ttl_cache").measure(|| {
        let c = TtlCache::new(Duration::from_millis(5), Duration::from_millis(1));
        c.put(1, vec![1; 64]);
        assert_eq!(c.get(1).map(|v| v.len()), Some(64));
    });
    println!("{r}\n");
    let r = Config::new()
        .name("ttl_cache_never_stops")
        .settle(Duration::from_millis(250))
        .measure(|| {
            let c =
                TtlCache::broken_never_stops(Duration::from_millis(5), Duration::from_millis(1));
            c.put(1, vec![1; 64]);
        });
    println!("{r}");
}
