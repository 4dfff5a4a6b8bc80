//! The hot path: counting one allocation or free in the calling thread's slot, and the cold
//! paths it branches to (claiming a slot, the overflow record, the hooks).

use std::sync::atomic::Ordering::*;

use super::hooks::{
    covers, CAPTURE_ALL, CAPTURE_BITS, CAPTURE_NOT_MAIN, CAPTURE_THREAD, HOOKS, PEAK_ALL,
    PEAK_NOT_MAIN, PEAK_THREADS, REMOTE,
};
use super::peak;
use super::slots::{my_slot, slot_from, Slot, OVERFLOW, SLOT_TABLE};
use crate::counting::{remote, this_thread};

/// Counts an allocation (`ALLOC`) or a free. The hot path: one thread-local load, two plain adds
/// on the thread's own line, and one relaxed load of the read-mostly hook byte. Everything else is
/// out of line.
#[inline(always)]
pub(super) fn count<const ALLOC: bool>(ptr: *mut u8, size: usize) {
    count_as::<ALLOC, false>(ptr, size)
}

/// Counts a block of the C heap (the `ffi` interposers of the malloc family) on the hot path if
/// it can, and says whether it did: when it returns false (no slot, a hook on, or inside the
/// wrapped allocator) the caller calls [`count_c_slow`]. `size` reads the block's size; it is
/// called after the tests.
///
/// Leaner than [`count`], because glibc's own `malloc`/`free` pair is only a few dozen
/// instructions: one thread-local address, one test for "a slot" and one for "not inside, no
/// hook", the size and the two adds. Nothing here calls, so the interposers need no stack frame
/// for it and can end in a tail call.
#[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
#[inline(always)]
pub(crate) fn count_c_fast<const ALLOC: bool>(size: impl FnOnce() -> usize) -> bool {
    let (v, inside) = this_thread::with(|t| (t.slot.get(), t.inside.get()));
    match slot_from(v) {
        Some(s) if inside | HOOKS.0.load(Relaxed) == 0 => {
            s.counters.add_owned::<ALLOC>(size() as u64);
            true
        }
        _ => false,
    }
}

/// Counts a block of the C heap off the hot path ([`count_c_fast`] said no): nothing inside the
/// wrapped allocator (that is a Rust block, already counted), else exactly as a Rust block
/// ([`count_as`]), in the calling thread's slot, marked as C heap for capture.
#[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
#[cold]
#[inline(never)]
pub(crate) fn count_c_slow<const ALLOC: bool>(ptr: *mut u8, size: usize) {
    if !crate::counting::inner::inside() {
        count_as::<ALLOC, true>(ptr, size)
    }
}

/// [`count`], for the Rust heap or (`C_HEAP`) the C heap.
#[inline(always)]
fn count_as<const ALLOC: bool, const C_HEAP: bool>(ptr: *mut u8, size: usize) {
    let slot = match slot_from(this_thread::with(|t| t.slot.get())) {
        Some(s) => {
            s.counters.add_owned::<ALLOC>(size as u64);
            Some(s)
        }
        None => count_slow::<ALLOC>(size),
    };
    let hooks = HOOKS.0.load(Relaxed);
    if hooks != 0 {
        if ALLOC {
            hooks_on_alloc(hooks, slot, ptr, size, C_HEAP);
        } else {
            hooks_on_free(hooks, slot, ptr, size);
        }
    }
}

/// A thread without a slot yet claims one; one that has none counts in the overflow record.
#[cold]
#[inline(never)]
fn count_slow<const ALLOC: bool>(size: usize) -> Option<&'static Slot> {
    let slot = my_slot();
    match slot {
        Some(s) => s.counters.add_owned::<ALLOC>(size as u64),
        None => OVERFLOW.add_shared::<ALLOC>(size as u64),
    }
    slot
}

#[cold]
fn hooks_on_alloc(hooks: u8, slot: Option<&Slot>, ptr: *mut u8, size: usize, c_heap: bool) {
    if hooks & REMOTE != 0 {
        if let Some(s) = slot.filter(|s| s.window.load(Relaxed) != 0) {
            remote::remember(s.index(), ptr as usize, size);
        }
    }
    if hooks & PEAK_THREADS != 0 {
        if let Some(s) = slot {
            peak::track_thread(s);
        }
    }
    if covers(hooks, PEAK_ALL, PEAK_NOT_MAIN, slot) {
        peak::process_alloc(size);
    }
    if hooks & CAPTURE_BITS != 0
        && (covers(hooks, CAPTURE_ALL, CAPTURE_NOT_MAIN, slot)
            || (hooks & CAPTURE_THREAD != 0 && crate::counting::capture::thread_wants_capture()))
    {
        crate::counting::capture::on_alloc(ptr as usize, size, c_heap);
    }
}

#[cold]
fn hooks_on_free(hooks: u8, slot: Option<&Slot>, ptr: *mut u8, size: usize) {
    if hooks & REMOTE != 0 {
        remote::forget(ptr as usize, slot.map(Slot::index), |owner, size| {
            SLOT_TABLE[owner as usize].credit(size)
        });
    }
    if covers(hooks, PEAK_ALL, PEAK_NOT_MAIN, slot) {
        peak::process_free(size);
    }
    if hooks & CAPTURE_BITS != 0 {
        // Whichever thread frees it, a block freed is no longer live.
        crate::counting::capture::on_free(ptr as usize);
    }
}
