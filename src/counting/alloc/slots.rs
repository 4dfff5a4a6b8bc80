//! The slots: a fixed static array of cache-line-aligned records of counters, one owned by each
//! live thread. A thread claims a free slot the first time it allocates and gives it back when it
//! exits; the next thread to claim it keeps adding to the same counters. Threads without a slot
//! count in the shared overflow record. Also the readings over slots (the process-wide sum, the
//! calling thread's own) and each slot's cross-thread window depth.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::*};

use super::totals::{Counters, Totals};
use crate::counting::{remote, this_thread};

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
    pub(super) counters: Counters,
    /// Highest live bytes (allocated minus freed) since the owner last reset it, while `peak_on`.
    pub(super) peak_net: AtomicI64,
    /// The owner measures its own peak (see [`ThreadPeak`](super::ThreadPeak)).
    pub(super) peak_on: AtomicBool,
    /// 0 = free, 1 = owned.
    owned: AtomicU32,
    /// The OS thread id of the owner is the process id: the owner is the main thread.
    pub(super) is_main: AtomicBool,
    /// Cross-thread windows open on the owner (nested), written by the owner only.
    pub(super) window: AtomicU32,
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

    /// The slot's counters: what its owners allocated and freed themselves.
    #[inline]
    fn read(&self) -> Totals {
        self.counters.read()
    }

    /// The owner's reading: its counters, with the credits as frees.
    #[inline]
    pub(super) fn own(&self) -> Totals {
        let mut t = self.read();
        t.free_bytes = t.free_bytes.wrapping_add(self.credit.bytes.load(Relaxed));
        t.free_blocks = t.free_blocks.wrapping_add(self.credit.blocks.load(Relaxed));
        t
    }

    /// Another thread freed a block of `size` bytes that this slot's owner allocated.
    #[inline]
    pub(super) fn credit(&self, size: usize) {
        self.credit.bytes.fetch_add(size as u64, Relaxed);
        self.credit.blocks.fetch_add(1, Relaxed);
    }

    #[inline]
    pub(super) fn index(&self) -> u32 {
        let base = SLOT_TABLE.as_ptr() as usize;
        ((self as *const Slot as usize - base) / std::mem::size_of::<Slot>()) as u32
    }
}

const _: () = assert!(std::mem::size_of::<Slot>() == 128);

pub(crate) const SLOTS: usize = 512;
pub(super) static SLOT_TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
/// The record for threads without a slot. Shared, so updated with read-modify-write atomics
/// (contended, but only on rare paths).
pub(super) static OVERFLOW: Counters = Counters::new();
/// Set once any thread has claimed a slot: a `CountingAlloc` is the process's allocator.
static INSTALLED: AtomicBool = AtomicBool::new(false);

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
pub(super) fn slot_from(v: usize) -> Option<&'static Slot> {
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
pub(super) fn my_slot() -> Option<&'static Slot> {
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

/// Whether a `CountingAlloc` has counted anything in this process. Before the first allocation of
/// the process this is false even with the allocator installed; [`probe_installed`] settles it.
fn installed() -> bool {
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

/// The calling thread's counters alone, without the credits (tests).
#[cfg(test)]
pub(crate) fn thread_counters() -> Option<Totals> {
    my_slot().map(Slot::read)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
