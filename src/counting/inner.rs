//! Whether the calling thread is inside the allocator that [`CountingAlloc`] wraps.
//!
//! With the cargo feature `ffi`, no_leak also counts the C heap (`malloc` and its family) and
//! anonymous `mmap`. An allocator that `CountingAlloc` wraps may itself call `malloc` or `mmap`
//! (jemalloc and mimalloc map their arenas; a wrapper of `System` calls `malloc`): those calls are
//! the Rust allocation already counted once, so the C-side counters leave them out while this
//! flag is up. `CountingAlloc<System>` never raises it: it calls glibc's `__libc_*` functions
//! directly, which no interposer sees.
//!
//! no_leak raises it too around its own calls into C that allocate (the `opendir` buffer of an
//! allocation-free `/proc` scan), so that they count neither as Rust heap nor as C heap.
//!
//! [`CountingAlloc`]: crate::CountingAlloc

use crate::counting::this_thread;

/// Raises the flag for the life of the guard.
pub(crate) struct Inside(());

impl Inside {
    #[inline(always)]
    pub(crate) fn enter() -> Inside {
        this_thread::with(|t| t.inside.set(t.inside.get().saturating_add(1)));
        Inside(())
    }
}

impl Drop for Inside {
    #[inline(always)]
    fn drop(&mut self) {
        this_thread::with(|t| t.inside.set(t.inside.get().saturating_sub(1)));
    }
}

/// Whether the calling thread is inside the wrapped allocator right now (read by the
/// interposers, which exist on glibc only).
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
#[inline(always)]
pub(crate) fn inside() -> bool {
    this_thread::with(|t| t.inside.get() != 0)
}
