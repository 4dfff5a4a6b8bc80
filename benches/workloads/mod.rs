//! The allocator workloads shared by `benches/alloc.rs` (criterion) and
//! `examples/alloc_ratio.rs` (the side-by-side ratio gate): three allocators called directly
//! through `GlobalAlloc` on static instances, since a binary has one global allocator.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use no_leak::CountingAlloc;
use stats_alloc::StatsAlloc;

pub static SYS: System = System;
pub static OURS: CountingAlloc<System> = CountingAlloc::new(System);
pub static STATS: StatsAlloc<System> = StatsAlloc::system();

pub const BLOCK: usize = 32;
pub const BATCH: usize = 1000;

pub fn layout() -> Layout {
    Layout::from_size_align(BLOCK, 8).unwrap()
}

/// `iters` allocate+free pairs.
#[inline(never)]
pub fn pair<A: GlobalAlloc>(a: &A, iters: u64) {
    let layout = layout();
    for i in 0..iters {
        // SAFETY: `layout` has a non-zero size; the block is freed with the same allocator and
        // layout, once.
        unsafe {
            let p = a.alloc(layout);
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            p.write(i as u8);
            a.dealloc(black_box(p), layout);
        }
    }
}

/// `iters` batches: allocate `BATCH` blocks, then free them all.
#[inline(never)]
pub fn batch<A: GlobalAlloc>(a: &A, iters: u64, slots: &mut [*mut u8]) {
    let layout = layout();
    for _ in 0..iters {
        for (i, s) in slots.iter_mut().enumerate() {
            // SAFETY: as in `pair`.
            unsafe {
                let p = a.alloc(layout);
                if p.is_null() {
                    std::alloc::handle_alloc_error(layout);
                }
                p.write(i as u8);
                *s = p;
            }
        }
        for s in black_box(&mut *slots).iter() {
            // SAFETY: each pointer came from `a.alloc(layout)` just above and is freed once.
            unsafe { a.dealloc(*s, layout) };
        }
    }
}

/// The two workloads: `pair` (allocate one block, free it) and `batch` (allocate `BATCH`, then
/// free them all).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Pair,
    Batch,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Pair => "pair",
            Workload::Batch => "batch",
        }
    }
}
