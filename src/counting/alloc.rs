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

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering::*};

use crate::counting::{remote, this_thread};

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

/// Monotonic counters: everything a thread (or the overflow record) allocated and freed.
struct Counters {
    alloc_bytes: AtomicU64,
    alloc_blocks: AtomicU64,
    free_bytes: AtomicU64,
    free_blocks: AtomicU64,
}

impl Counters {
    const fn new() -> Self {
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
    fn add_owned<const ALLOC: bool>(&self, size: u64) {
        let (bytes, blocks) = self.pair::<ALLOC>();
        bytes.store(bytes.load(Relaxed).wrapping_add(size), Relaxed);
        blocks.store(blocks.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Counts an allocation or a free on counters several threads write: read-modify-write.
    fn add_shared<const ALLOC: bool>(&self, size: u64) {
        let (bytes, blocks) = self.pair::<ALLOC>();
        bytes.fetch_add(size, Relaxed);
        blocks.fetch_add(1, Relaxed);
    }

    fn read(&self) -> Totals {
        Totals {
            alloc_bytes: self.alloc_bytes.load(Relaxed),
            alloc_blocks: self.alloc_blocks.load(Relaxed),
            free_bytes: self.free_bytes.load(Relaxed),
            free_blocks: self.free_blocks.load(Relaxed),
        }
    }
}

/// Frees, on other threads, of blocks the slot's owner allocated inside a cross-thread window:
/// written by those threads with atomic adds (rare), on a line of its own so that they never
/// contend with the owner's counters.
#[repr(C, align(64))]
struct Credit {
    bytes: AtomicU64,
    blocks: AtomicU64,
}

/// Counters for one thread at a time. Only the owning thread writes them; any thread may read
/// them. Aligned to 128 bytes so that neighbouring slots, and the adjacent-line prefetcher, never
/// make two cores share a line.
#[repr(C, align(128))]
pub(crate) struct Slot {
    counters: Counters,
    /// Highest live bytes (allocated minus freed) since the owner last reset it, while `peak_on`.
    peak_net: AtomicI64,
    /// The owner measures its own peak (see [`ThreadPeak`]).
    peak_on: AtomicBool,
    /// 0 = free, 1 = owned.
    owned: AtomicU32,
    /// The OS thread id of the owner is the process id: the owner is the main thread.
    is_main: AtomicBool,
    /// Cross-thread windows open on the owner (nested), written by the owner only.
    window: AtomicU32,
    /// On the slot's second line.
    credit: Credit,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            counters: Counters::new(),
            peak_net: AtomicI64::new(0),
            peak_on: AtomicBool::new(false),
            owned: AtomicU32::new(0),
            is_main: AtomicBool::new(false),
            window: AtomicU32::new(0),
            credit: Credit {
                bytes: AtomicU64::new(0),
                blocks: AtomicU64::new(0),
            },
        }
    }

    /// The thread-peak hook: called only while some thread measures its own peak.
    #[cold]
    fn track_peak(&self) {
        if self.peak_on.load(Relaxed) {
            let net = self.own().live_bytes();
            if net > self.peak_net.load(Relaxed) {
                self.peak_net.store(net, Relaxed);
            }
        }
    }

    /// The slot's counters: what its owners allocated and freed themselves.
    fn read(&self) -> Totals {
        self.counters.read()
    }

    /// The owner's reading: its counters, with the credits as frees.
    fn own(&self) -> Totals {
        let mut t = self.read();
        t.free_bytes = t.free_bytes.wrapping_add(self.credit.bytes.load(Relaxed));
        t.free_blocks = t.free_blocks.wrapping_add(self.credit.blocks.load(Relaxed));
        t
    }

    /// Another thread freed a block of `size` bytes that this slot's owner allocated.
    fn credit(&self, size: usize) {
        self.credit.bytes.fetch_add(size as u64, Relaxed);
        self.credit.blocks.fetch_add(1, Relaxed);
    }

    fn index(&self) -> u32 {
        let base = SLOT_TABLE.as_ptr() as usize;
        ((self as *const Slot as usize - base) / std::mem::size_of::<Slot>()) as u32
    }
}

const _: () = assert!(std::mem::size_of::<Slot>() == 128);

pub(crate) const SLOTS: usize = 512;
static SLOT_TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
/// The record for threads without a slot. Shared, so updated with read-modify-write atomics
/// (contended, but only on rare paths).
static OVERFLOW: Counters = Counters::new();
/// Set once any thread has claimed a slot: a `CountingAlloc` is the process's allocator.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Optional hooks, off by default, as bits: while one is on, allocations and frees take a cold
/// path besides counting. The hot path pays one relaxed load of this read-mostly byte.
///
/// Peak bits: every allocation also updates [`LIVE`] and [`PEAK`], an exact process-wide high-water
/// mark (a contended atomic, paid only while a quiet process measures peak). Capture bits: every
/// allocation records its stack (see `sites`), only during a diagnostic run after a leak was found.
/// `*_ALL` covers every thread; `*_NOT_MAIN` leaves out the main thread (libtest's harness);
/// `CAPTURE_THREAD` only the threads that asked for it.
static HOOKS: AtomicU8 = AtomicU8::new(0);
const PEAK_ALL: u8 = 1;
const PEAK_NOT_MAIN: u8 = 2;
const PEAK_BITS: u8 = PEAK_ALL | PEAK_NOT_MAIN;
pub(crate) const CAPTURE_ALL: u8 = 4;
pub(crate) const CAPTURE_NOT_MAIN: u8 = 8;
pub(crate) const CAPTURE_THREAD: u8 = 16;
const CAPTURE_BITS: u8 = CAPTURE_ALL | CAPTURE_NOT_MAIN | CAPTURE_THREAD;
/// Some thread measures its own peak ([`ThreadPeak`]): slots with `peak_on` track it.
const PEAK_THREADS: u8 = 32;
/// Some thread has a cross-thread window open (see `remote`): slots with `window` remember their
/// allocations, and every free looks for a remembered block.
const REMOTE: u8 = 64;
/// How many [`ThreadPeak`] windows are open.
static THREAD_PEAK_WINDOWS: AtomicU32 = AtomicU32::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

/// Per-thread state: which slot this thread owns. Sentinels: `UNCLAIMED` (never allocated yet),
/// `BUSY` (claiming right now, so allocations made by the claim itself go to the overflow) and
/// `RELEASED` (the thread is exiting and gave its slot back).
const UNCLAIMED: usize = 0;
const BUSY: usize = 1;
const RELEASED: usize = 2;

thread_local! {
    static RELEASER: Releaser = const { Releaser };
}

/// Its destructor, run when the thread exits, hands the thread's slot back.
struct Releaser;

impl Drop for Releaser {
    fn drop(&mut self) {
        this_thread::with(|t| {
            let v = t.slot.replace(RELEASED);
            if let Some(slot) = slot_from(v) {
                // A window left open (its guard leaked): drop its entries before the slot can
                // pass to another thread, so that no credit meant for this one lands there.
                if slot.window.swap(0, Relaxed) != 0 {
                    remote::close(slot.index());
                }
                slot.is_main.store(false, Relaxed);
                slot.owned.store(0, Release);
            }
        });
    }
}

#[inline(always)]
fn slot_from(v: usize) -> Option<&'static Slot> {
    if v > RELEASED {
        // SAFETY: values above the sentinels are only ever written by `claim`, which stores the
        // address of an element of the static `SLOT_TABLE`; such a reference lives forever.
        Some(unsafe { &*(v as *const Slot) })
    } else {
        None
    }
}

#[cold]
#[inline(never)]
fn claim(cell: &Cell<usize>) -> Option<&'static Slot> {
    cell.set(BUSY);
    #[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
    crate::counting::c_heap::link();
    for slot in SLOT_TABLE.iter() {
        if slot.owned.load(Relaxed) == 0
            && slot.owned.compare_exchange(0, 1, Acquire, Relaxed).is_ok()
        {
            slot.is_main
                .store(crate::counting::census::is_main_thread(), Relaxed);
            // Registering the destructor may allocate on some platforms; the slot is BUSY, so such
            // allocations go to the overflow record instead of recursing into `claim`.
            if RELEASER.try_with(|_| ()).is_err() {
                // Thread-local storage is already being torn down: don't keep a slot we could
                // never give back.
                slot.owned.store(0, Release);
                cell.set(RELEASED);
                return None;
            }
            INSTALLED.store(true, Relaxed);
            cell.set(slot as *const Slot as usize);
            return Some(slot);
        }
    }
    // All slots taken: this thread counts in the overflow record for its whole life.
    INSTALLED.store(true, Relaxed);
    cell.set(RELEASED);
    None
}

/// The calling thread's slot, claiming one on first use; `None` if it has none (overflow).
#[cold]
#[inline(never)]
fn my_slot() -> Option<&'static Slot> {
    this_thread::with(|t| {
        let cell = &t.slot;
        let v = cell.get();
        if v == UNCLAIMED {
            claim(cell)
        } else {
            slot_from(v)
        }
    })
}

/// Counts an allocation (`ALLOC`) or a free. The hot path: one thread-local load, two plain adds
/// on the thread's own line, and one relaxed load of the read-mostly hook byte. Everything else is
/// out of line.
#[inline(always)]
fn count<const ALLOC: bool>(ptr: *mut u8, size: usize) {
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
        Some(s) if inside | HOOKS.load(Relaxed) == 0 => {
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
    let hooks = HOOKS.load(Relaxed);
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

/// Whether a hook whose bits in `hooks` are `all`/`not_main` covers this thread.
#[inline]
fn covers(hooks: u8, all: u8, not_main: u8, slot: Option<&Slot>) -> bool {
    hooks & all != 0 || (hooks & not_main != 0 && !slot.is_some_and(|s| s.is_main.load(Relaxed)))
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
            s.track_peak();
        }
    }
    if covers(hooks, PEAK_ALL, PEAK_NOT_MAIN, slot) {
        let live = LIVE.fetch_add(size as i64, Relaxed) + size as i64;
        PEAK.fetch_max(live, Relaxed);
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
        LIVE.fetch_sub(size as i64, Relaxed);
    }
    if hooks & CAPTURE_BITS != 0 {
        // Whichever thread frees it, a block freed is no longer live.
        crate::counting::capture::on_free(ptr as usize);
    }
}

/// Turns capture hooks on (one of the `CAPTURE_*` bits).
pub(crate) fn capture_on(bit: u8) {
    HOOKS.fetch_or(bit, SeqCst);
}

/// Turns every capture hook off.
pub(crate) fn capture_off() {
    HOOKS.fetch_and(!CAPTURE_BITS, SeqCst);
}

/// Turns the cross-thread hook on or off (by `remote`, under its lock, as windows come and go).
pub(crate) fn remote_hook(on: bool) {
    if on {
        HOOKS.fetch_or(REMOTE, SeqCst);
    } else {
        HOOKS.fetch_and(!REMOTE, SeqCst);
    }
}

/// The calling thread enters a cross-thread window: its slot's index, and whether the window is
/// the outermost one; `None` if the thread has no slot.
pub(crate) fn enter_window() -> Option<(u32, bool)> {
    let slot = my_slot()?;
    let depth = slot.window.load(Relaxed);
    slot.window.store(depth + 1, Relaxed);
    Some((slot.index(), depth == 0))
}

/// The calling thread, owner of slot `owner`, leaves a window; true if it was the outermost.
pub(crate) fn leave_window(owner: u32) -> bool {
    let slot = &SLOT_TABLE[owner as usize];
    let depth = slot.window.load(Relaxed);
    if depth == 0 {
        // Already closed by the slot's release (the thread is exiting).
        return false;
    }
    slot.window.store(depth - 1, Relaxed);
    depth == 1
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
    fn add(&mut self, o: Totals) {
        self.alloc_bytes = self.alloc_bytes.wrapping_add(o.alloc_bytes);
        self.alloc_blocks = self.alloc_blocks.wrapping_add(o.alloc_blocks);
        self.free_bytes = self.free_bytes.wrapping_add(o.free_bytes);
        self.free_blocks = self.free_blocks.wrapping_add(o.free_blocks);
    }

    /// Live bytes: allocated minus freed.
    pub fn live_bytes(&self) -> i64 {
        self.alloc_bytes.wrapping_sub(self.free_bytes) as i64
    }

    /// Live blocks: allocated minus freed.
    pub fn live_blocks(&self) -> i64 {
        self.alloc_blocks.wrapping_sub(self.free_blocks) as i64
    }
}

/// Whether a `CountingAlloc` has counted anything in this process. Before the first allocation of
/// the process this is false even with the allocator installed; [`probe_installed`] settles it.
pub(crate) fn installed() -> bool {
    INSTALLED.load(Relaxed)
}

/// Makes an allocation and reports whether a `CountingAlloc` saw it.
pub(crate) fn probe_installed() -> bool {
    if installed() {
        return true;
    }
    let b = std::hint::black_box(Box::new(0u64));
    drop(b);
    installed()
}

/// Sum over every slot and the overflow record. With `exclude_main`, the main thread's slot is left
/// out: under libtest the main thread is the harness, whose bookkeeping is not the test's.
pub(crate) fn process_totals(exclude_main: bool) -> Totals {
    let mut t = OVERFLOW.read();
    for slot in SLOT_TABLE.iter() {
        if exclude_main && slot.is_main.load(Relaxed) {
            continue;
        }
        t.add(slot.read());
    }
    t
}

/// The calling thread's own reading, or `None` if it has no slot: its counters, with frees on
/// other threads of the blocks it allocated inside a cross-thread window counted as its frees.
pub(crate) fn thread_totals() -> Option<Totals> {
    my_slot().map(Slot::own)
}

/// The calling thread measures its own high-water mark while this guard lives.
pub(crate) struct ThreadPeak {
    slot: &'static Slot,
}

impl ThreadPeak {
    /// Starts tracking, or `None` if the thread has no slot (or tracks already: an enclosing
    /// check owns the window).
    pub(crate) fn start() -> Option<ThreadPeak> {
        let slot = my_slot()?;
        if slot.peak_on.load(Relaxed) {
            return None;
        }
        slot.peak_on.store(true, Relaxed);
        THREAD_PEAK_WINDOWS.fetch_add(1, SeqCst);
        HOOKS.fetch_or(PEAK_THREADS, SeqCst);
        Some(ThreadPeak { slot })
    }

    /// Begins a run: the high-water mark restarts at the thread's live bytes now, returned.
    pub(crate) fn reset(&self) -> i64 {
        let net = self.slot.own().live_bytes();
        self.slot.peak_net.store(net, Relaxed);
        net
    }

    /// The highest live bytes since the last [`ThreadPeak::reset`].
    pub(crate) fn peak(&self) -> i64 {
        self.slot.peak_net.load(Relaxed)
    }
}

impl Drop for ThreadPeak {
    fn drop(&mut self) {
        self.slot.peak_on.store(false, Relaxed);
        if THREAD_PEAK_WINDOWS.fetch_sub(1, SeqCst) == 1 {
            HOOKS.fetch_and(!PEAK_THREADS, SeqCst);
            // A window opened between the decrement and the clear keeps its bit.
            if THREAD_PEAK_WINDOWS.load(SeqCst) > 0 {
                HOOKS.fetch_or(PEAK_THREADS, SeqCst);
            }
        }
    }
}

/// Process-wide peak tracking, for isolated measurement. `start` turns it on (if it is not on
/// already) and returns a guard that turns it off again.
pub(crate) struct PeakWindow {
    owner: bool,
}

impl PeakWindow {
    pub(crate) fn start(exclude_main: bool) -> PeakWindow {
        let bit = if exclude_main {
            PEAK_NOT_MAIN
        } else {
            PEAK_ALL
        };
        // Only one window at a time owns the peak counters (a nested check sees no peak).
        let owner = HOOKS
            .fetch_update(SeqCst, SeqCst, |h| (h & PEAK_BITS == 0).then_some(h | bit))
            .is_ok();
        PeakWindow { owner }
    }

    /// Whether this window measures (an enclosing one may own the counters).
    pub(crate) fn owns(&self) -> bool {
        self.owner
    }

    /// Begins a run: the high-water mark restarts at the current live value, which is returned.
    pub(crate) fn reset(&self) -> i64 {
        let live = LIVE.load(SeqCst);
        PEAK.store(live, SeqCst);
        live
    }

    /// The high-water mark since the last [`PeakWindow::reset`].
    pub(crate) fn peak(&self) -> i64 {
        PEAK.load(SeqCst)
    }
}

impl Drop for PeakWindow {
    fn drop(&mut self) {
        if self.owner {
            HOOKS.fetch_and(!PEAK_BITS, SeqCst);
        }
    }
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
    fn exited_threads_stay_in_process_totals() {
        // A thread allocates 1000 bytes it never frees, then exits and releases its slot.
        let before = process_totals(false);
        std::thread::spawn(|| {
            std::mem::forget(std::hint::black_box(vec![0u8; 1000]));
        })
        .join()
        .unwrap();
        let after = process_totals(false);
        // Other tests run in this process too, so only a lower bound can be asserted here; the
        // exact figure is asserted in isolated tests.
        assert!(after.alloc_bytes - before.alloc_bytes >= 1000);
    }

    #[test]
    fn slots_are_reused_after_thread_exit() {
        for _ in 0..(SLOTS * 2) {
            std::thread::spawn(|| drop(std::hint::black_box(Box::new(1u8))))
                .join()
                .unwrap();
        }
        // More threads than slots came and went: each gave its slot back, so there is still room.
        let owned = SLOT_TABLE
            .iter()
            .filter(|s| s.owned.load(Relaxed) == 1)
            .count();
        assert!(owned < SLOTS, "{owned} of {SLOTS} slots still owned");
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

    #[test]
    fn thread_peak_tracks_high_water_mark() {
        let window = ThreadPeak::start().unwrap();
        assert!(ThreadPeak::start().is_none(), "one window per thread");
        let start = window.reset();
        let big = std::hint::black_box(vec![0u8; 4096]);
        drop(big);
        let peak = window.peak();
        assert!(peak - start >= 4096, "peak {} start {}", peak, start);
        drop(window);
        // Closed: allocations no longer move it.
        let before = SLOT_TABLE
            .iter()
            .map(|s| s.peak_net.load(Relaxed))
            .collect::<Vec<_>>();
        drop(std::hint::black_box(vec![0u8; 100_000]));
        let mine = my_slot().unwrap();
        let i = SLOT_TABLE
            .iter()
            .position(|s| std::ptr::eq(s, mine))
            .unwrap();
        assert_eq!(mine.peak_net.load(Relaxed), before[i]);
    }

    /// A helper thread that frees (or grows) whatever the test hands it, synchronised by barriers
    /// (which never allocate), so that nothing else moves the counters in between.
    struct Helper {
        hand: std::sync::Arc<(std::sync::Barrier, std::sync::atomic::AtomicUsize)>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Helper {
        /// `work` gets each pointer handed over, on the helper thread.
        fn new(work: fn(usize)) -> Helper {
            let hand = std::sync::Arc::new((
                std::sync::Barrier::new(2),
                std::sync::atomic::AtomicUsize::new(0),
            ));
            let h = hand.clone();
            let thread = std::thread::spawn(move || loop {
                h.0.wait();
                let p = h.1.load(SeqCst);
                if p == 0 {
                    return;
                }
                work(p);
                h.0.wait();
            });
            Helper {
                hand,
                thread: Some(thread),
            }
        }

        /// Hands `p` over and waits until the helper is done with it.
        fn run(&self, p: usize) {
            self.hand.1.store(p, SeqCst);
            self.hand.0.wait();
            self.hand.0.wait();
        }
    }

    impl Drop for Helper {
        fn drop(&mut self) {
            self.hand.1.store(0, SeqCst);
            self.hand.0.wait();
            self.thread.take().unwrap().join().unwrap();
        }
    }

    fn free_box48(p: usize) {
        // SAFETY: `p` came from `Box::into_raw` of a `Box<[u8; 48]>` and is freed once, here.
        drop(unsafe { Box::from_raw(p as *mut [u8; 48]) });
    }

    #[test]
    fn free_on_another_thread_credits_the_window_owner_once() {
        let helper = Helper::new(free_box48);
        let slot = my_slot().unwrap();
        let window = remote::Window::open().unwrap();
        let (counters, own) = (slot.read(), slot.own());
        let p = Box::into_raw(Box::new([1u8; 48])) as usize;
        assert!(remote::remembered(p));
        helper.run(p);
        assert!(!remote::remembered(p), "the free forgot it");
        let (counters2, own2) = (slot.read(), slot.own());
        // The owner's counters saw the allocation only; the free was the helper's.
        assert_eq!(counters2.alloc_bytes - counters.alloc_bytes, 48);
        assert_eq!(counters2.free_bytes, counters.free_bytes);
        // The owner's reading also has the credit: back where it started.
        assert_eq!(own2.live_bytes(), own.live_bytes());
        assert_eq!(own2.live_blocks(), own.live_blocks());
        assert_eq!(own2.free_blocks - own.free_blocks, 1);
        drop(window);
        // Closed: a block allocated now is not remembered, and its free elsewhere not credited.
        let q = Box::into_raw(Box::new([2u8; 48])) as usize;
        assert!(!remote::remembered(q));
        let before = slot.own();
        helper.run(q);
        assert_eq!(slot.own().free_bytes, before.free_bytes);
    }

    #[test]
    fn block_from_before_the_window_is_not_credited() {
        let helper = Helper::new(free_box48);
        let slot = my_slot().unwrap();
        let p = Box::into_raw(Box::new([3u8; 48])) as usize;
        let window = remote::Window::open().unwrap();
        let before = slot.own();
        helper.run(p);
        assert_eq!(slot.own(), before);
        drop(window);
    }

    #[test]
    fn free_on_the_owner_thread_forgets_without_credit() {
        let slot = my_slot().unwrap();
        let _window = remote::Window::open().unwrap();
        let before = slot.own();
        let b = std::hint::black_box(Box::new([4u8; 48]));
        let p = &*b as *const [u8; 48] as usize;
        assert!(remote::remembered(p));
        drop(b);
        assert!(!remote::remembered(p));
        let after = slot.own();
        assert_eq!(
            after.free_bytes - before.free_bytes,
            48,
            "counted once, as its own"
        );
        assert_eq!(after.live_bytes(), before.live_bytes());
    }

    fn grow_vec(p: usize) {
        // SAFETY: `p` came from `Box::into_raw` of a `Box<Vec<u8>>`; the vector is grown (a
        // realloc of its buffer) and freed once, here.
        let mut v = unsafe { Box::from_raw(p as *mut Vec<u8>) };
        v.reserve_exact(4000);
        drop(v);
    }

    #[test]
    fn realloc_on_another_thread_credits_the_old_block() {
        let helper = Helper::new(grow_vec);
        let slot = my_slot().unwrap();
        let _window = remote::Window::open().unwrap();
        let before = slot.own();
        let v: Vec<u8> = Vec::with_capacity(100);
        let p = Box::into_raw(Box::new(v)) as usize;
        helper.run(p);
        // Both blocks (the Vec's header box and its 100-byte buffer, grown there) were freed by
        // the helper: the buffer through realloc.
        let after = slot.own();
        assert_eq!(after.live_bytes(), before.live_bytes());
        assert_eq!(after.live_blocks(), before.live_blocks());
        assert_eq!(after.free_bytes - before.free_bytes, 100 + 24);
    }

    #[test]
    fn realloc_on_the_owner_thread_remembers_the_new_block() {
        let helper = Helper::new(|p| {
            // SAFETY: `p` came from `Box::into_raw` of a `Box<Vec<u8>>`, freed once, here.
            drop(unsafe { Box::from_raw(p as *mut Vec<u8>) })
        });
        let slot = my_slot().unwrap();
        let _window = remote::Window::open().unwrap();
        let mut v: Vec<u8> = Vec::with_capacity(16);
        let old = v.as_ptr() as usize;
        assert!(remote::remembered(old));
        v.reserve_exact(10_000);
        let new = v.as_ptr() as usize;
        assert!(remote::remembered(new));
        assert!(old == new || !remote::remembered(old));
        let before = slot.own();
        let p = Box::into_raw(Box::new(v)) as usize;
        helper.run(p);
        let after = slot.own();
        assert!(!remote::remembered(new));
        // The box allocated after `before` and its buffer from before it: both credited.
        assert_eq!(after.free_bytes - before.free_bytes, 24 + 10_000);
    }

    #[test]
    fn nested_windows_keep_entries_until_the_outermost_closes() {
        let outer = remote::Window::open().unwrap();
        let b = std::hint::black_box(Box::new([5u8; 48]));
        let p = &*b as *const [u8; 48] as usize;
        let inner = remote::Window::open().unwrap();
        drop(inner);
        assert!(
            remote::remembered(p),
            "the inner window does not drop the outer's entries"
        );
        drop(outer);
        assert!(!remote::remembered(p), "closing the outermost drops them");
        drop(b);
    }

    #[test]
    fn window_left_open_at_thread_exit_drops_its_entries() {
        let p = std::thread::spawn(|| {
            std::mem::forget(remote::Window::open().unwrap());
            let p = Box::into_raw(Box::new([6u8; 48])) as usize;
            assert!(remote::remembered(p));
            p
        })
        .join()
        .unwrap();
        // The thread exited with its window open; its slot's release dropped the entry (the
        // block is still allocated, so no other thread can have been given its address).
        assert!(!remote::remembered(p));
        free_box48(p);
    }

    #[test]
    fn thread_peak_counts_credits() {
        let helper = Helper::new(free_box48);
        let _window = remote::Window::open().unwrap();
        let peak = ThreadPeak::start().unwrap();
        let start = peak.reset();
        let p = Box::into_raw(Box::new([7u8; 48])) as usize;
        helper.run(p);
        // Freed elsewhere: the next allocation's high-water mark starts from the lower level.
        let q = Box::into_raw(Box::new([7u8; 48])) as usize;
        assert_eq!(peak.peak() - start, 48, "peak is one block, not two");
        free_box48(q);
    }
}
