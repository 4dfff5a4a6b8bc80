//! Frees on other threads, for checks in calling-thread scope.
//!
//! On a test thread that shares its process with other tests, a check counts only the calling
//! thread's own slot. A block that thread allocates and another thread frees (a job run by a
//! worker, a channel message dropped by the receiver, the closure of a spawned thread) would
//! then stay live in the count forever. While a [`Window`] is open on a thread, every block that
//! thread allocates is remembered here (address -> size, owner slot); a free of a remembered
//! block on any other thread credits the owner (see `alloc::slots::Slot::credit`) and forgets the
//! entry. The owner's reading is its own counters plus those credits; the process-wide sum reads
//! the counters only, so nothing is counted twice.
//!
//! What a window sees, exactly: its thread's allocations from the moment it opens, and the frees
//! of those blocks on any thread. What it does not see: blocks allocated before it opened (a
//! free of one on another thread changes nothing: it was live in the owner's count at the start
//! and stays so), and allocations made by other threads (not counted at all; a block another
//! thread allocated and the owner frees counts as a free of the owner's).
//!
//! The traps, and how they are avoided:
//! - Re-entrancy: the table never allocates through the global allocator. Its storage comes
//!   straight from `System` (never counted, never captured, never re-entering these hooks),
//!   and its lock is the counting layer's spin lock ([`spin`](crate::counting::spin); std's
//!   `Mutex` may allocate on first use on some platforms). So no re-entrancy guard is needed:
//!   nothing under the lock can call back.
//! - Lock order: the capture table's lock may be held while this lock is taken (capture's own
//!   map allocates on a window thread), never the other way round, since nothing done under this
//!   lock allocates or captures.
//! - Address reuse: the allocator forgets a block *before* handing it back to the inner
//!   allocator, so its address cannot be given out again (and remembered anew) while the old
//!   entry still exists.
//! - Thread exit: frees during thread-local teardown come from a thread without a slot and
//!   credit the owner like any other thread's. A window thread that exits with its window open
//!   (the guard was leaked) has its entries dropped by its slot's release, before the slot can be
//!   reused.
//! - Closing: a window's entries are dropped when it closes; a free after that changes nothing.
//! - Full table: at most [`MAX_LIVE`] blocks are remembered at once. A block beyond that is not
//!   remembered, so a free of it on another thread is not credited: the check can then report it
//!   as leaked (a false alarm, never a missed leak), and the window prints a note saying so.
//!
//! Cost: the allocator's hot path pays nothing while no window is open in the process (the hook
//! bit is off). While one is open, the window thread's allocations and frees take the lock; other
//! threads' frees first read one byte of a counting filter keyed by address, and take the lock
//! only when it says the block may be remembered (`cargo run --release --example alloc_ratio`
//! prints both costs).
//!
//! The table itself (storage, probing, the filter) is [`table`]; this module keeps the one
//! process-wide instance and the windows.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering::*};

use crate::counting::alloc::{self, SLOTS};
use crate::counting::spin::SpinLock;

mod table;
#[cfg(test)]
mod tests;

use table::{hash, Filter, Table};

/// Blocks remembered at once, over all windows, at most (the table's load stays at most 1/2).
pub(crate) const MAX_LIVE: usize = MAX_CAP / 2;
const MAX_CAP: usize = 1 << 22;

static FILTER: Filter = Filter::new();
static STATE: SpinLock<Table> = SpinLock::new(Table::new(MAX_CAP, &FILTER));
/// Per owner slot: blocks that could not be remembered (table full), ever.
static MISSED: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// Called by the allocator for a block allocated on a thread whose window is open.
#[cold]
#[inline(never)]
pub(crate) fn remember(owner: u32, addr: usize, size: usize) {
    if !STATE.lock().insert(addr, size, owner) {
        MISSED[owner as usize].fetch_add(1, Relaxed);
    }
}

/// Called by the allocator for every free while some window is open, before the block goes back
/// to the inner allocator. `freer` is the freeing thread's slot, if it has one. If the block was
/// remembered for another owner, `credit(owner, size)` runs, under the lock: so a credit can
/// never land on a slot after its window closed and another thread took the slot over.
#[cold]
#[inline(never)]
pub(crate) fn forget(addr: usize, freer: Option<u32>, credit: impl FnOnce(u32, usize)) {
    if !FILTER.may_hold(hash(addr)) {
        return;
    }
    let mut table = STATE.lock();
    if let Some((owner, size)) = table.remove(addr) {
        if freer != Some(owner) {
            credit(owner, size);
        }
    }
}

/// Ends `owner`'s outermost window: drops its entries, and the hook when no window is left.
pub(crate) fn close(owner: u32) {
    let mut table = STATE.lock();
    table.remove_owner(owner);
    table.windows -= 1;
    if table.windows == 0 {
        alloc::remote_hook(false);
        table.idle();
    }
}

/// While a window lives, the calling thread's allocations are remembered and frees of them on
/// other threads count as freed in its reading (`alloc::thread_totals`). Windows nest on one
/// thread (the outermost one owns the entries) and open on many threads at once. Not `Send`:
/// it belongs to the thread that opened it.
pub(crate) struct Window {
    owner: u32,
    missed_at_open: u64,
    _thread: PhantomData<*const ()>,
}

impl Window {
    /// Opens a window on the calling thread; `None` if the thread has no slot (it is not counted
    /// on its own, so calling-thread readings are not available anyway).
    pub(crate) fn open() -> Option<Window> {
        let (owner, outermost) = alloc::enter_window()?;
        if outermost {
            let mut table = STATE.lock();
            table.windows += 1;
            if table.windows == 1 {
                alloc::remote_hook(true);
            }
        }
        Some(Window {
            owner,
            missed_at_open: MISSED[owner as usize].load(Relaxed),
            _thread: PhantomData,
        })
    }

    /// Blocks allocated on this thread while the window was open that could not be remembered.
    pub(crate) fn missed(&self) -> u64 {
        MISSED[self.owner as usize].load(Relaxed) - self.missed_at_open
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if alloc::leave_window(self.owner) {
            close(self.owner);
        }
        let missed = self.missed();
        if missed > 0 {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "no_leak: {missed} blocks allocated on this thread during a check could not be \
                 remembered (more than {MAX_LIVE} live at once): a free of one on another thread \
                 was not counted, so the check may report it as leaked"
            );
        }
    }
}

/// Whether a remembered entry exists for `addr` (tests).
#[cfg(test)]
pub(crate) fn remembered(addr: usize) -> bool {
    STATE.lock().contains(addr)
}
