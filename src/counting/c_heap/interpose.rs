//! The malloc family, defined in the test binary (glibc's documented way to replace malloc):
//! every call made by C code, or by Rust code calling libc directly, lands here, is counted in
//! the calling thread's slot as C heap, and is forwarded to glibc's own implementation.
//!
//! Safe at any point of a process's or thread's life: before `main` (constructors), during
//! thread-local teardown, on threads C code created, in a forked child. Counting reads only
//! const thread-locals without destructors (always accessible) and static atomics; a thread with
//! no slot (claiming, exiting) counts in the shared overflow record. Calls made inside an
//! allocator that `CountingAlloc` wraps (see `inner`) are forwarded without counting.

use std::ffi::{c_int, c_void};

use super::glibc;
use crate::counting::alloc;

/// The address of this module's `malloc`. Not inlined, so that a call from elsewhere makes the
/// linker take this module's object file, interposers included, into every binary that counts:
/// a second definition of `malloc` (another crate's override) then fails the link loudly instead
/// of silently taking the calls.
#[inline(never)]
pub(crate) fn our_malloc() -> usize {
    std::hint::black_box(malloc as *const ()) as usize
}

/// Counts a C block about to be freed (`p` non-null): before glibc gets it back, as
/// `CountingAlloc` does, so that its address cannot be handed out again first.
#[inline(always)]
fn counted_free(p: *mut c_void) {
    // SAFETY: the caller of `free`/`realloc` guarantees `p` is a live block of this heap.
    if !alloc::count_c_fast::<false>(|| unsafe { glibc::chunk_size(p) }) {
        // SAFETY: as above.
        alloc::count_c_slow::<false>(p as *mut u8, unsafe { glibc::chunk_size(p) });
    }
}

/// Counts `p` if it is a block (just returned by glibc's allocator), and returns it. The slow
/// count is a tail call, so the hot path needs no stack frame of its own.
#[inline(always)]
fn allocated(p: *mut c_void) -> *mut c_void {
    // SAFETY: a non-null `p` was just returned by glibc's allocator.
    if p.is_null() || alloc::count_c_fast::<true>(|| unsafe { glibc::chunk_size(p) }) {
        return p;
    }
    allocated_slow(p)
}

/// `extern "C"`, as `free_slow`: a callee that can unwind would need an abort-on-unwind pad in
/// the caller (an `extern "C"` function may not unwind), and that pad blocks the tail call.
#[cold]
#[inline(never)]
extern "C" fn allocated_slow(p: *mut c_void) -> *mut c_void {
    // SAFETY: as in `allocated`.
    alloc::count_c_slow::<true>(p as *mut u8, unsafe { glibc::chunk_size(p) });
    p
}

/// # Safety
/// As C's `malloc`.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    allocated(unsafe { glibc::malloc(size) })
}

/// # Safety
/// As C's `free`: `p` is null or a live block of this heap.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: the caller guarantees `p` is a live block.
    if !alloc::count_c_fast::<false>(|| unsafe { glibc::chunk_size(p) }) {
        // SAFETY: as above.
        return unsafe { free_slow(p) };
    }
    // SAFETY: forwarded unchanged.
    unsafe { glibc::free(p) }
}

/// `free` off its hot path: the whole of it in a tail call, so that the hot path keeps no
/// register alive across a call and needs no stack frame.
///
/// # Safety
/// As `free`, with `p` non-null.
#[cold]
#[inline(never)]
unsafe extern "C" fn free_slow(p: *mut c_void) {
    // SAFETY: as the caller guarantees.
    unsafe {
        alloc::count_c_slow::<false>(p as *mut u8, glibc::chunk_size(p));
        glibc::free(p)
    }
}

/// # Safety
/// As C's `calloc`.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    allocated(unsafe { glibc::calloc(n, size) })
}

/// # Safety
/// As C's `realloc`: `p` is null or a live block of this heap.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        // SAFETY: `realloc(NULL, n)` is `malloc(n)`.
        return unsafe { malloc(size) };
    }
    // A free of the old block and an allocation of the new one, the free first.
    counted_free(p);
    // SAFETY: forwarded unchanged.
    let q = unsafe { glibc::realloc(p, size) };
    if q.is_null() && size != 0 {
        // Failed: the old block is still live. (`realloc(p, 0)` frees it and returns null.)
        allocated(p);
    }
    allocated(q)
}

/// # Safety
/// As glibc's `memalign`.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    allocated(unsafe { glibc::memalign(align, size) })
}

/// # Safety
/// As C's `aligned_alloc`.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    // glibc's rule: the alignment must be a power of two.
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    }
    // SAFETY: forwarded, with a power-of-two alignment.
    allocated(unsafe { glibc::memalign(align, size) })
}

/// # Safety
/// As POSIX's `posix_memalign`: `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    let word = std::mem::size_of::<*mut c_void>();
    if !align.is_multiple_of(word) || !(align / word).is_power_of_two() {
        return libc::EINVAL;
    }
    // SAFETY: forwarded, with a valid alignment.
    let p = allocated(unsafe { glibc::memalign(align, size) });
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller guarantees `out` is writable.
    unsafe { *out = p };
    0
}

/// # Safety
/// As glibc's `valloc`.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    allocated(unsafe { glibc::valloc(size) })
}

/// # Safety
/// As glibc's `pvalloc`.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    allocated(unsafe { glibc::pvalloc(size) })
}

/// # Safety
/// As glibc's `malloc_usable_size`: `p` is null or a live block of this heap.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    // SAFETY: the caller guarantees `p` is a live block.
    unsafe { glibc::usable_size(p) }
}

fn set_errno(e: c_int) {
    // SAFETY: `__errno_location` returns the calling thread's errno, always valid.
    unsafe { *libc::__errno_location() = e };
}
