//! glibc's own allocator, called by its exported `__libc_*` names: no interposer sees these
//! calls. Two users: `CountingAlloc<System>` (the Rust heap, counted by `CountingAlloc` itself,
//! with std's `System` rules replicated), and no_leak's own storage ([`Untracked`]).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_free(ptr: *mut c_void);
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    fn __libc_valloc(size: usize) -> *mut c_void;
    fn __libc_pvalloc(size: usize) -> *mut c_void;
}

/// The alignment std's `System` relies on `malloc` to give (its `MIN_ALIGN`): 16 on 64-bit
/// targets, 8 on 32-bit ones.
const MIN_ALIGN: usize = 2 * std::mem::size_of::<usize>();

/// glibc's chunk header flag: the chunk was mapped on its own with `mmap`.
const IS_MMAPPED: usize = 0x2;
/// The low bits of a chunk's size field that are flags, not size.
const FLAG_BITS: usize = 0x7;

/// A live block's chunk header: the word before the block, its chunk's size with the low
/// `FLAG_BITS` as flags.
///
/// # Safety
/// `p` is non-null and a live block returned by glibc's `malloc` family.
#[inline(always)]
unsafe fn header(p: *mut c_void) -> usize {
    // SAFETY: the caller guarantees `p` is a live glibc block: the word before it is its
    // chunk's size field, readable and aligned.
    unsafe { *(p as *const usize).sub(1) }
}

/// The size of a live block's chunk in glibc's heap: the bytes the block takes, glibc's header
/// included (what a leak of it costs). What a C block counts at: the same number at allocation
/// and at free (only flag bits of the header change while a block is live), and two
/// instructions on the C heap's hot path.
///
/// # Safety
/// As [`header`].
#[inline(always)]
pub(crate) unsafe fn chunk_size(p: *mut c_void) -> usize {
    // SAFETY: as the caller guarantees.
    unsafe { header(p) & !FLAG_BITS }
}

/// The usable size of a live block: what glibc's `malloc_usable_size` computes, from the chunk
/// header (the `malloc_usable_size` interposer returns it).
///
/// # Safety
/// As [`header`].
#[inline(always)]
pub(crate) unsafe fn usable_size(p: *mut c_void) -> usize {
    // SAFETY: as the caller guarantees.
    let size = unsafe { header(p) };
    // A chunk's header is one word (the previous chunk's tail lends the other); a mapped chunk
    // has both words of its own.
    let word = std::mem::size_of::<usize>();
    let overhead = if size & IS_MMAPPED != 0 {
        2 * word
    } else {
        word
    };
    // A live chunk is at least four words long: no underflow.
    (size & !FLAG_BITS) - overhead
}

// Thin, safe-to-call-as-FFI wrappers, so the interposers read as one line each.

/// # Safety: as glibc's `malloc`.
#[inline(always)]
pub(crate) unsafe fn malloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    unsafe { __libc_malloc(size) }
}

/// # Safety: as glibc's `free`.
#[inline(always)]
pub(crate) unsafe fn free(p: *mut c_void) {
    // SAFETY: forwarded unchanged.
    unsafe { __libc_free(p) }
}

/// # Safety: as glibc's `calloc`.
#[inline(always)]
pub(crate) unsafe fn calloc(n: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    unsafe { __libc_calloc(n, size) }
}

/// # Safety: as glibc's `realloc`.
#[inline(always)]
pub(crate) unsafe fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    unsafe { __libc_realloc(p, size) }
}

/// # Safety: as glibc's `memalign`.
#[inline(always)]
pub(crate) unsafe fn memalign(align: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    unsafe { __libc_memalign(align, size) }
}

/// # Safety: as glibc's `valloc`.
#[inline(always)]
pub(crate) unsafe fn valloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    unsafe { __libc_valloc(size) }
}

/// # Safety: as glibc's `pvalloc`.
#[inline(always)]
pub(crate) unsafe fn pvalloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded unchanged.
    unsafe { __libc_pvalloc(size) }
}

/// Whether std's `System` would call plain `malloc` for `layout` (else `memalign`).
#[inline(always)]
fn plain(layout: &Layout) -> bool {
    layout.align() <= MIN_ALIGN && layout.align() <= layout.size()
}

/// `System.alloc`, by glibc's own names.
///
/// # Safety: as [`GlobalAlloc::alloc`].
#[inline(always)]
pub(crate) unsafe fn rust_alloc(layout: Layout) -> *mut u8 {
    // SAFETY: both calls accept any size; the alignment is a power of two (a `Layout`'s).
    unsafe {
        if plain(&layout) {
            __libc_malloc(layout.size()) as *mut u8
        } else {
            __libc_memalign(layout.align(), layout.size()) as *mut u8
        }
    }
}

/// `System.alloc_zeroed`.
///
/// # Safety: as [`GlobalAlloc::alloc_zeroed`].
#[inline(always)]
pub(crate) unsafe fn rust_alloc_zeroed(layout: Layout) -> *mut u8 {
    if plain(&layout) {
        // SAFETY: calloc accepts any size.
        unsafe { __libc_calloc(layout.size(), 1) as *mut u8 }
    } else {
        // SAFETY: as `rust_alloc`; the block is `layout.size()` bytes long, all writable.
        unsafe {
            let p = rust_alloc(layout);
            if !p.is_null() {
                std::ptr::write_bytes(p, 0, layout.size());
            }
            p
        }
    }
}

/// `System.dealloc`.
///
/// # Safety: as [`GlobalAlloc::dealloc`].
#[inline(always)]
pub(crate) unsafe fn rust_dealloc(ptr: *mut u8) {
    // SAFETY: `ptr` came from `rust_alloc*` or `rust_realloc`, all glibc blocks.
    unsafe { __libc_free(ptr as *mut c_void) }
}

/// `System.realloc`: `realloc` for plainly aligned blocks, else allocate, copy and free.
///
/// # Safety: as [`GlobalAlloc::realloc`].
#[inline(always)]
pub(crate) unsafe fn rust_realloc(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    if layout.align() <= MIN_ALIGN && layout.align() <= new_size {
        // SAFETY: `ptr` is a live glibc block; the caller guarantees `new_size` is valid.
        return unsafe { __libc_realloc(ptr as *mut c_void, new_size) as *mut u8 };
    }
    // SAFETY: the new layout is valid (the caller's contract); both blocks are live while the
    // smaller of the two lengths is copied, and the old one is freed once.
    unsafe {
        let new = rust_alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            __libc_free(ptr as *mut c_void);
        }
        new
    }
}

/// glibc's allocator with std's `System` rules, seen by no interposer: for no_leak's own storage
/// (the cross-thread table), which must count neither as Rust heap nor as C heap.
pub(crate) struct Untracked;

// SAFETY: each method is the `System` rule for the same call, on glibc's allocator, which
// returns blocks of at least the size and alignment asked for, or null.
unsafe impl GlobalAlloc for Untracked {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { rust_alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc_zeroed`'s contract.
        unsafe { rust_alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block of this allocator.
        unsafe { rust_dealloc(ptr) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { rust_realloc(ptr, layout, new_size) }
    }
}
