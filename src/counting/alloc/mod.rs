//! The counting allocator.
//!
//! [`CountingAlloc`] wraps any [`GlobalAlloc`] and counts every allocation and free. It keeps its
//! counters in *slots*: a fixed static array of cache-line-aligned records, one owned by each live
//! thread. A thread claims a free slot the first time it allocates and gives it back when it exits;
//! the next thread to claim it keeps adding to the same counters. So
//!
//! * the hot path touches only the calling thread's own cache line (no lock, no allocation, no
//!   contended atomic: each counter is written by one thread at a time with a plain load and store);
//! * the sum over all slots is the exact process-wide total at any moment, including what threads
//!   that have already exited allocated and freed;
//! * one slot read on its own is the exact count of work done on the thread that owns it, which is
//!   what a closure check uses while other tests share the process.
//!
//! Threads that find no free slot, and allocations made while a thread is claiming or after it gave
//! its slot back (late thread-local destructors), go to a shared overflow record updated with
//! atomic read-modify-write operations: rare, and still exact.
//!
//! A thread's own reading ([`thread_totals`]) adds the *credits* in its slot: frees, on other
//! threads, of blocks it allocated while a cross-thread window was open (see
//! [`remote`](crate::counting::remote)). Credits live on the slot's second cache line, written
//! with atomic adds by the freeing threads; the process-wide sum never reads them, so no free is
//! counted twice.
//!
//! The hot path (no hook on) is one thread-local load, two plain adds on the thread's own line and
//! one relaxed load of the hook byte. To check it in the generated code, build
//! `cargo build --release --example alloc_ratio` and disassemble `workloads::pair` for
//! `CountingAlloc` (`objdump -d -C target/release/examples/alloc_ratio`): between the calls to
//! `malloc` and `free` there is a `%fs:` load, a compare, `addq`/`incq` on the slot, and a
//! `movzbl`/`test` of the hook byte; everything else sits behind a not-taken branch.
//!
//! There is no per-allocation header: sizes come from the [`Layout`] passed to `dealloc`.
//!
//! Here: [`CountingAlloc`] and its [`GlobalAlloc`] impl. The rest, one job a file: `count` (the
//! hot path and the cold paths it branches to), `slots` (the slots, the overflow record, claiming
//! and releasing, the readings over slots), `totals` (a slot's counters and [`Totals`]), `hooks`
//! (the hook byte), `peak` (peak tracking).

use std::alloc::{GlobalAlloc, Layout, System};

use count::count;

mod count;
mod hooks;
mod peak;
mod slots;
mod totals;

#[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
pub(crate) use count::{count_c_fast, count_c_slow};
pub(crate) use hooks::{
    capture_off, capture_on, remote_hook, CAPTURE_ALL, CAPTURE_NOT_MAIN, CAPTURE_THREAD,
};
pub(crate) use peak::{PeakWindow, ThreadPeak};
#[cfg(test)]
pub(crate) use slots::thread_counters;
pub(crate) use slots::{
    enter_window, leave_window, probe_installed, process_totals, thread_totals, SLOTS,
};
pub use totals::Totals;

/// A [`GlobalAlloc`] that counts live bytes and blocks for no_leak, then forwards to `A`.
///
/// The default cargo feature `global-allocator` installs `CountingAlloc<System>`. To count on top
/// of another allocator, turn that feature off and wrap yours:
///
/// ```
/// use no_leak::CountingAlloc;
/// use std::alloc::System; // or mimalloc::MiMalloc, tikv_jemallocator::Jemalloc, ...
///
/// // In a binary or test crate of your own, with `default-features = false`:
/// // #[global_allocator]
/// static GLOBAL: CountingAlloc<System> = CountingAlloc::new(System);
/// ```
pub struct CountingAlloc<A = System> {
    inner: A,
}

impl<A> CountingAlloc<A> {
    /// Wraps `inner`. `const`, so it can initialise a `static`.
    pub const fn new(inner: A) -> Self {
        CountingAlloc { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

// The calls into the wrapped allocator. With the feature `ffi` on glibc, `System` is called by
// glibc's own `__libc_*` names (std's `System` rules replicated), so the C-heap interposers never
// see the Rust heap and the hot path costs what it costs without the feature; any other wrapped
// allocator runs with `inner::Inside` raised, so that what it does through `malloc` is not counted
// again as C heap. `TypeId` needs `A: 'static`, which the feature adds to the bounds (every
// global allocator is a `static`, so this costs users nothing); the comparison is a constant.
macro_rules! inner_calls {
    ($($bound:tt)*) => {
        impl<A: GlobalAlloc $($bound)*> CountingAlloc<A> {
            #[inline(always)]
            unsafe fn inner_alloc(&self, layout: Layout) -> *mut u8 {
                #[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
                if is_system::<A>() {
                    // SAFETY: the caller upholds `alloc`'s contract.
                    return unsafe { crate::counting::c_heap::glibc::rust_alloc(layout) };
                }
                let _inside = enter_inner();
                // SAFETY: the caller upholds `alloc`'s contract.
                unsafe { self.inner.alloc(layout) }
            }

            #[inline(always)]
            unsafe fn inner_alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                #[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
                if is_system::<A>() {
                    // SAFETY: the caller upholds `alloc_zeroed`'s contract.
                    return unsafe { crate::counting::c_heap::glibc::rust_alloc_zeroed(layout) };
                }
                let _inside = enter_inner();
                // SAFETY: the caller upholds `alloc_zeroed`'s contract.
                unsafe { self.inner.alloc_zeroed(layout) }
            }

            #[inline(always)]
            unsafe fn inner_dealloc(&self, ptr: *mut u8, layout: Layout) {
                #[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
                if is_system::<A>() {
                    // SAFETY: `ptr` is a block of `System`, that is of glibc.
                    return unsafe { crate::counting::c_heap::glibc::rust_dealloc(ptr) };
                }
                let _inside = enter_inner();
                // SAFETY: the caller upholds `dealloc`'s contract.
                unsafe { self.inner.dealloc(ptr, layout) }
            }

            #[inline(always)]
            unsafe fn inner_realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
                #[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
                if is_system::<A>() {
                    // SAFETY: the caller upholds `realloc`'s contract.
                    return unsafe { crate::counting::c_heap::glibc::rust_realloc(ptr, layout, new) };
                }
                let _inside = enter_inner();
                // SAFETY: the caller upholds `realloc`'s contract.
                unsafe { self.inner.realloc(ptr, layout, new) }
            }
        }

        // SAFETY: every method forwards to `inner` (or, for `System`, to the same glibc calls
        // `System` makes) with the caller's arguments unchanged and returns its result unchanged,
        // so `CountingAlloc<A>` upholds exactly the contract `A` upholds. The counting around the
        // calls never allocates through the global allocator (it touches static atomics, const
        // thread-locals, and the cross-thread table, whose storage bypasses every counter) and
        // never unwinds.
        //
        // A free is counted *before* the block goes back to `inner`: while a hook is on, counting
        // it may retire a record of the block (the cross-thread table, the capture table), which
        // must happen before `inner` can hand the same address to another thread that records it
        // anew.
        unsafe impl<A: GlobalAlloc $($bound)*> GlobalAlloc for CountingAlloc<A> {
            #[inline]
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                // SAFETY: forwarded; the caller guarantees `layout` has a non-zero size.
                let p = unsafe { self.inner_alloc(layout) };
                if !p.is_null() {
                    count::<true>(p, layout.size());
                }
                p
            }

            #[inline]
            unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                // SAFETY: as for `alloc`.
                let p = unsafe { self.inner_alloc_zeroed(layout) };
                if !p.is_null() {
                    count::<true>(p, layout.size());
                }
                p
            }

            #[inline]
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                count::<false>(ptr, layout.size());
                // SAFETY: forwarded; `ptr` came from this allocator with `layout`.
                unsafe { self.inner_dealloc(ptr, layout) };
            }

            #[inline]
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                // Counted as a free of the old block and an allocation of the new one: live
                // blocks stay the same, live bytes move by the difference. The free first, as in
                // `dealloc`.
                count::<false>(ptr, layout.size());
                // SAFETY: forwarded; the caller upholds `realloc`'s contract for `inner` as well.
                let p = unsafe { self.inner_realloc(ptr, layout, new_size) };
                if p.is_null() {
                    // The old block is still live: it counts again as allocated, by this thread.
                    count::<true>(ptr, layout.size());
                } else {
                    count::<true>(p, new_size);
                }
                p
            }
        }
    };
}

#[cfg(feature = "ffi")]
inner_calls!(+ 'static);
#[cfg(not(feature = "ffi"))]
inner_calls!();

/// Whether the wrapped allocator is std's `System` (a constant once monomorphised).
#[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
#[inline(always)]
fn is_system<A: 'static>() -> bool {
    std::any::TypeId::of::<A>() == std::any::TypeId::of::<System>()
}

/// Raises the inside-the-wrapped-allocator flag (feature `ffi`); nothing without it.
#[cfg(feature = "ffi")]
#[inline(always)]
fn enter_inner() -> crate::counting::inner::Inside {
    crate::counting::inner::Inside::enter()
}

/// Without the feature `ffi`, no flag.
#[cfg(not(feature = "ffi"))]
struct NoFlag;

#[cfg(not(feature = "ffi"))]
#[inline(always)]
fn enter_inner() -> NoFlag {
    NoFlag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counters_see_exact_allocation() {
        let before = thread_totals().expect("the test thread owns a slot");
        let b = std::hint::black_box(Box::new([0u8; 24]));
        let mid = thread_totals().unwrap();
        drop(b);
        let after = thread_totals().unwrap();
        assert_eq!(mid.alloc_bytes - before.alloc_bytes, 24);
        assert_eq!(mid.alloc_blocks - before.alloc_blocks, 1);
        assert_eq!(after.free_bytes - mid.free_bytes, 24);
        assert_eq!(after.live_bytes(), before.live_bytes());
    }

    /// An allocator other than `System` that calls `malloc`: what it does is the Rust block,
    /// counted once by `CountingAlloc`, not again by the C heap's interposers.
    #[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_wrapped_allocator_calling_malloc_is_counted_once() {
        struct ViaMalloc;
        // SAFETY: malloc's blocks are aligned to 16, enough for the layouts used here.
        unsafe impl GlobalAlloc for ViaMalloc {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                // SAFETY: any size is valid for malloc.
                unsafe { libc::malloc(layout.size()) as *mut u8 }
            }
            unsafe fn dealloc(&self, ptr: *mut u8, _: Layout) {
                // SAFETY: `ptr` came from `alloc`, freed once.
                unsafe { libc::free(ptr.cast()) }
            }
        }
        static A: CountingAlloc<ViaMalloc> = CountingAlloc::new(ViaMalloc);
        let l = Layout::from_size_align(40, 8).unwrap();
        let before = thread_totals().unwrap();
        // SAFETY: a valid layout; the block is freed once with it.
        let p = unsafe { A.alloc(l) };
        let mid = thread_totals().unwrap();
        // SAFETY: as above.
        unsafe { A.dealloc(p, l) };
        let after = thread_totals().unwrap();
        assert_eq!(mid.alloc_bytes - before.alloc_bytes, 40);
        assert_eq!(mid.alloc_blocks - before.alloc_blocks, 1);
        assert_eq!(after.free_bytes - mid.free_bytes, 40);
        assert_eq!(after.live_blocks(), before.live_blocks());
    }

    #[test]
    fn realloc_keeps_block_count_and_moves_bytes() {
        let mut v: Vec<u8> = Vec::with_capacity(8);
        v.push(1);
        let before = thread_totals().unwrap();
        v.reserve_exact(100);
        let after = thread_totals().unwrap();
        assert_eq!(after.live_blocks(), before.live_blocks());
        assert_eq!(
            after.live_bytes() - before.live_bytes(),
            v.capacity() as i64 - 8
        );
    }
}
