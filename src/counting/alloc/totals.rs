//! The counters a slot (or the overflow record) keeps, and [`Totals`], their reading.

use std::sync::atomic::{AtomicU64, Ordering::*};

/// Monotonic counters: everything a thread (or the overflow record) allocated and freed.
pub(super) struct Counters {
    alloc_bytes: AtomicU64,
    alloc_blocks: AtomicU64,
    free_bytes: AtomicU64,
    free_blocks: AtomicU64,
}

impl Counters {
    pub(super) const fn new() -> Self {
        Counters {
            alloc_bytes: AtomicU64::new(0),
            alloc_blocks: AtomicU64::new(0),
            free_bytes: AtomicU64::new(0),
            free_blocks: AtomicU64::new(0),
        }
    }

    /// The (bytes, blocks) pair an allocation (`ALLOC`) or a free moves.
    #[inline(always)]
    fn pair<const ALLOC: bool>(&self) -> (&AtomicU64, &AtomicU64) {
        if ALLOC {
            (&self.alloc_bytes, &self.alloc_blocks)
        } else {
            (&self.free_bytes, &self.free_blocks)
        }
    }

    /// Counts an allocation or a free by the only thread that writes these counters: a plain load
    /// and store, which compile to ordinary moves. Readers on other threads see either the old or
    /// the new value, never a torn one.
    #[inline(always)]
    pub(super) fn add_owned<const ALLOC: bool>(&self, size: u64) {
        let (bytes, blocks) = self.pair::<ALLOC>();
        bytes.store(bytes.load(Relaxed).wrapping_add(size), Relaxed);
        blocks.store(blocks.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Counts an allocation or a free on counters several threads write: read-modify-write.
    pub(super) fn add_shared<const ALLOC: bool>(&self, size: u64) {
        let (bytes, blocks) = self.pair::<ALLOC>();
        bytes.fetch_add(size, Relaxed);
        blocks.fetch_add(1, Relaxed);
    }

    #[inline]
    pub(super) fn read(&self) -> Totals {
        Totals {
            alloc_bytes: self.alloc_bytes.load(Relaxed),
            alloc_blocks: self.alloc_blocks.load(Relaxed),
            free_bytes: self.free_bytes.load(Relaxed),
            free_blocks: self.free_blocks.load(Relaxed),
        }
    }
}

/// Monotonic counters: everything allocated and freed so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Bytes ever allocated (a `realloc` counts as a free plus an allocation).
    pub alloc_bytes: u64,
    /// Blocks ever allocated.
    pub alloc_blocks: u64,
    /// Bytes ever freed.
    pub free_bytes: u64,
    /// Blocks ever freed.
    pub free_blocks: u64,
}

impl Totals {
    #[inline]
    pub(super) fn add(&mut self, o: Totals) {
        self.alloc_bytes = self.alloc_bytes.wrapping_add(o.alloc_bytes);
        self.alloc_blocks = self.alloc_blocks.wrapping_add(o.alloc_blocks);
        self.free_bytes = self.free_bytes.wrapping_add(o.free_bytes);
        self.free_blocks = self.free_blocks.wrapping_add(o.free_blocks);
    }

    /// Live bytes: allocated minus freed.
    #[inline]
    pub fn live_bytes(&self) -> i64 {
        self.alloc_bytes.wrapping_sub(self.free_bytes) as i64
    }

    /// Live blocks: allocated minus freed.
    #[inline]
    pub fn live_blocks(&self) -> i64 {
        self.alloc_blocks.wrapping_sub(self.free_blocks) as i64
    }
}
