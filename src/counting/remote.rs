//! Frees on other threads, for checks in calling-thread scope.
//!
//! On a test thread that shares its process with other tests, a check counts only the calling
//! thread's own slot. A block that thread allocates and another thread frees (a job run by a
//! worker, a channel message dropped by the receiver, the closure of a spawned thread) would
//! then stay live in the count forever. While a [`Window`] is open on a thread, every block that
//! thread allocates is remembered here (address -> size, owner slot); a free of a remembered
//! block on any other thread credits the owner (see `alloc::Slot::credit`) and forgets the
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
//!   straight from [`System`] (never counted, never captured, never re-entering these hooks),
//!   and its lock is a spin lock of a few atomics (std's `Mutex` may allocate on first use on
//!   some platforms). So no re-entrancy guard is needed: nothing under the lock can call back.
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

use std::alloc::{GlobalAlloc, Layout};

#[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
use crate::counting::c_heap::glibc::Untracked as System;
/// The table's storage: `System`, or with the feature `ffi` on glibc the same calls by glibc's
/// own names, so that the C heap's interposers do not count it either.
#[cfg(not(all(feature = "ffi", target_os = "linux", target_env = "gnu")))]
use std::alloc::System;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::*};

use crate::counting::alloc::{self, SLOTS};

/// Blocks remembered at once, over all windows, at most (the table's load stays at most 1/2).
pub(crate) const MAX_LIVE: usize = MAX_CAP / 2;
const MAX_CAP: usize = 1 << 22;
/// The capacity a table starts with when the first window opens (64 KiB of entries).
const FIRST_CAP: usize = 1 << 12;
const FILTER_BITS: u32 = 16;
/// Entries pack the owner's slot index in the low bits and the size above.
const OWNER_BITS: u32 = 16;
const _: () = assert!(SLOTS < 1 << OWNER_BITS);

/// A lock of one atomic flag, for use inside the allocator: it never allocates, on any platform.
/// Waiters spin briefly, then yield to the scheduler.
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a `SpinGuard`, and the flag admits one guard at a
// time, so sharing the lock hands the value to one thread at a time: `T: Send` is enough.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Acquire, Relaxed)
            .is_err()
        {
            while self.locked.load(Relaxed) {
                if spins < 100 {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    // sched_yield: no allocation, lets a descheduled holder run.
                    std::thread::yield_now();
                }
            }
        }
        SpinGuard { lock: self }
    }
}

/// Holds the lock; dropping it unlocks.
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the flag, so no other reference to the value exists.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Release);
    }
}

fn hash(addr: usize) -> u64 {
    (addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A counting filter over addresses, read without the lock: a zero byte proves that no
/// remembered block hashes there. Written only under the lock; a byte that reaches 255 sticks
/// there until the table is empty, so every byte is either exact or 255, never below the true
/// count.
pub(crate) struct Filter([AtomicU8; 1 << FILTER_BITS]);

impl Filter {
    pub(crate) const fn new() -> Self {
        Filter([const { AtomicU8::new(0) }; 1 << FILTER_BITS])
    }

    fn byte(&self, h: u64) -> &AtomicU8 {
        &self.0[(h >> (64 - FILTER_BITS)) as usize]
    }

    /// Whether a block with hash `h` may be remembered. A free on another thread is ordered after
    /// the allocation it frees (the block was handed over), so it sees the increment made when
    /// the block was remembered, or a later value, which stays non-zero while the entry lives.
    fn may_hold(&self, h: u64) -> bool {
        self.byte(h).load(Relaxed) != 0
    }

    /// Under the lock. Returns true if the byte is (now) stuck at 255.
    fn add(&self, h: u64) -> bool {
        let b = self.byte(h);
        let v = b.load(Relaxed);
        if v < u8::MAX {
            b.store(v + 1, Relaxed);
        }
        v >= u8::MAX - 1
    }

    /// Under the lock.
    fn sub(&self, h: u64) {
        let b = self.byte(h);
        let v = b.load(Relaxed);
        if v < u8::MAX {
            // Never 0 here: the entry being removed was counted.
            b.store(v.saturating_sub(1), Relaxed);
        }
    }

    /// Under the lock, with no entry left.
    fn clear(&self) {
        for b in &self.0 {
            b.store(0, Relaxed);
        }
    }
}

/// One remembered block. `addr == 0` marks an empty place (no block lives at address 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct Entry {
    addr: usize,
    size_owner: u64,
}

const EMPTY: Entry = Entry {
    addr: 0,
    size_owner: 0,
};

impl Entry {
    fn owner(self) -> u32 {
        (self.size_owner & ((1 << OWNER_BITS) - 1)) as u32
    }

    fn size(self) -> usize {
        (self.size_owner >> OWNER_BITS) as usize
    }
}

/// Remembered blocks: an open-addressing table (linear probing, deletion by backward shift, so
/// no tombstones) whose storage comes from [`System`], plus the windows' bookkeeping. Only ever
/// used under [`STATE`]'s lock (or owned by a test).
pub(crate) struct Table {
    /// `cap` entries from `System`, all-zero bytes when empty; null while `cap == 0`.
    entries: *mut Entry,
    cap: usize,
    len: usize,
    max_cap: usize,
    /// Live entries per owner slot.
    per_owner: [u32; SLOTS],
    /// Open (outermost) windows.
    windows: u32,
    /// Some filter byte is stuck at 255.
    saturated: bool,
    filter: &'static Filter,
}

// SAFETY: `entries` is storage this table owns alone (no other pointer to it is kept), so moving
// the table to another thread moves the storage with it.
unsafe impl Send for Table {}

impl Table {
    pub(crate) const fn new(max_cap: usize, filter: &'static Filter) -> Table {
        Table {
            entries: std::ptr::null_mut(),
            cap: 0,
            len: 0,
            max_cap,
            per_owner: [0; SLOTS],
            windows: 0,
            saturated: false,
            filter,
        }
    }

    fn places(&mut self) -> &mut [Entry] {
        if self.cap == 0 {
            return &mut [];
        }
        // SAFETY: `entries` points to `cap` entries allocated (zeroed: all-zero bytes are a valid
        // `Entry`) by `alloc_places` and owned by this table; `&mut self` makes this the only
        // reference to them.
        unsafe { std::slice::from_raw_parts_mut(self.entries, self.cap) }
    }

    fn home(&self, addr: usize) -> usize {
        (hash(addr) >> (64 - self.cap.trailing_zeros())) as usize
    }

    fn find(&mut self, addr: usize) -> Option<usize> {
        if self.cap == 0 {
            return None;
        }
        let mask = self.cap - 1;
        let mut i = self.home(addr);
        let places = self.places();
        loop {
            match places[i].addr {
                0 => return None,
                a if a == addr => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Puts `e` in the first empty place of its probe sequence (the table has room, `e.addr` is
    /// not in it).
    fn place(&mut self, e: Entry) {
        let mask = self.cap - 1;
        let mut i = self.home(e.addr);
        let places = self.places();
        while places[i].addr != 0 {
            i = (i + 1) & mask;
        }
        places[i] = e;
    }

    /// Makes room for one more entry, growing if the load would pass 1/2. False if the table is
    /// at `max_cap` or `System` has no memory.
    fn make_room(&mut self) -> bool {
        if (self.len + 1) * 2 <= self.cap {
            return true;
        }
        let cap = if self.cap == 0 {
            FIRST_CAP.min(self.max_cap)
        } else {
            self.cap * 2
        };
        cap <= self.max_cap && self.resize(cap)
    }

    /// Moves every entry into new storage of `cap` places (a power of two, at least `2 * len`).
    fn resize(&mut self, cap: usize) -> bool {
        let Ok(layout) = Layout::array::<Entry>(cap) else {
            return false;
        };
        // SAFETY: `layout` has a non-zero size (cap >= 1, `Entry` is 16 bytes).
        let fresh = unsafe { System.alloc_zeroed(layout) } as *mut Entry;
        if fresh.is_null() {
            return false;
        }
        let (old, old_cap) = (self.entries, self.cap);
        self.entries = fresh;
        self.cap = cap;
        if old_cap > 0 {
            for i in 0..old_cap {
                // SAFETY: `old` holds `old_cap` entries, still allocated until freed below.
                let e = unsafe { *old.add(i) };
                if e.addr != 0 {
                    self.place(e);
                }
            }
            // SAFETY: `old` came from `System.alloc_zeroed` with the layout of `old_cap` entries.
            unsafe { System.dealloc(old as *mut u8, Layout::array::<Entry>(old_cap).unwrap()) };
        }
        true
    }

    /// Remembers a block. False if it cannot (table full, or a size too large to pack).
    pub(crate) fn insert(&mut self, addr: usize, size: usize, owner: u32) -> bool {
        if (size as u64) >> (64 - OWNER_BITS) != 0 {
            return false;
        }
        let e = Entry {
            addr,
            size_owner: (size as u64) << OWNER_BITS | u64::from(owner),
        };
        // The allocator forgets a block before freeing it, so an address is never remembered
        // twice; should it be, the newer block replaces the older.
        if let Some(i) = self.find(addr) {
            let old = self.places()[i];
            self.per_owner[old.owner() as usize] -= 1;
            self.per_owner[owner as usize] += 1;
            self.places()[i] = e;
            return true;
        }
        if !self.make_room() {
            return false;
        }
        self.place(e);
        self.len += 1;
        self.per_owner[owner as usize] += 1;
        self.saturated |= self.filter.add(hash(addr));
        true
    }

    /// Forgets a block: its (owner, size) if it was remembered.
    pub(crate) fn remove(&mut self, addr: usize) -> Option<(u32, usize)> {
        let i = self.find(addr)?;
        let e = self.places()[i];
        self.remove_at(i);
        Some((e.owner(), e.size()))
    }

    /// Removes the entry at `hole`, shifting later entries of the same run back so that every
    /// entry stays reachable from its home place.
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.cap - 1;
        let gone = self.places()[hole];
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.places()[j];
            if e.addr == 0 {
                break;
            }
            // `e` may fill the hole if the hole lies on its probe path (home ..= j).
            let home = self.home(e.addr);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.places()[hole] = e;
                hole = j;
            }
        }
        self.places()[hole] = EMPTY;
        self.len -= 1;
        self.per_owner[gone.owner() as usize] -= 1;
        self.filter.sub(hash(gone.addr));
        self.after_removal();
    }

    /// Drops every entry of `owner`.
    pub(crate) fn remove_owner(&mut self, owner: u32) {
        let mut i = 0;
        // Removal shifts later entries back, never from at or after `i` to before it (a run ends
        // at an empty place, so it cannot wrap back to `i`): every place before `i` is checked.
        while self.per_owner[owner as usize] > 0 && i < self.cap {
            let e = self.places()[i];
            if e.addr != 0 && e.owner() == owner {
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
    }

    fn after_removal(&mut self) {
        if self.len == 0 && self.saturated {
            self.filter.clear();
            self.saturated = false;
        }
    }

    /// With no window open: gives back storage grown past the first size.
    fn idle(&mut self) {
        if self.len == 0 && self.cap > FIRST_CAP {
            // SAFETY: `entries` came from `System.alloc_zeroed` with the layout of `cap` entries,
            // and nothing refers to it once `cap` is 0.
            unsafe {
                System.dealloc(
                    self.entries as *mut u8,
                    Layout::array::<Entry>(self.cap).unwrap(),
                )
            };
            self.entries = std::ptr::null_mut();
            self.cap = 0;
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub(crate) fn contains(&mut self, addr: usize) -> bool {
        self.find(addr).is_some()
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: as in `idle`; the table is going away.
            unsafe {
                System.dealloc(
                    self.entries as *mut u8,
                    Layout::array::<Entry>(self.cap).unwrap(),
                )
            };
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn table(max_cap: usize) -> Table {
        Table::new(max_cap, Box::leak(Box::new(Filter::new())))
    }

    #[test]
    fn spin_lock_excludes() {
        static COUNTER: SpinLock<u64> = SpinLock::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        *COUNTER.lock() += 1;
                    }
                });
            }
        });
        assert_eq!(*COUNTER.lock(), 40_000);
    }

    #[test]
    fn insert_remove_and_owner_counts() {
        let mut t = table(1 << 10);
        assert!(t.insert(0x1000, 24, 3));
        assert!(t.insert(0x2000, 1 << 40, 4));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(0x1000), Some((3, 24)));
        assert_eq!(t.remove(0x1000), None);
        assert_eq!(t.remove(0x2000), Some((4, 1 << 40)));
        assert_eq!(t.per_owner[3] + t.per_owner[4], 0);
        assert!(t.filter.0.iter().all(|b| b.load(Relaxed) == 0));
    }

    #[test]
    fn full_table_refuses_and_keeps_what_it_has() {
        // max_cap 8 holds 4 entries at load 1/2.
        let mut t = table(8);
        for a in 1..=4 {
            assert!(t.insert(a * 16, a, 1), "entry {a}");
        }
        assert!(!t.insert(5 * 16, 5, 1), "the fifth does not fit");
        assert_eq!(t.len(), 4);
        for a in 1..=4 {
            assert_eq!(t.remove(a * 16), Some((1, a)));
        }
        assert!(t.insert(5 * 16, 5, 1), "room again");
    }

    #[test]
    fn too_large_a_size_is_refused() {
        let mut t = table(1 << 10);
        assert!(!t.insert(0x40, 1 << 48, 0));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn filter_bytes_stick_at_255_until_the_table_is_empty() {
        // 300 addresses that share one filter byte (found by search: 1 in 65,536 do).
        let byte = |a: usize| (hash(a) >> (64 - FILTER_BITS)) as usize;
        let target = byte(16);
        let same: Vec<usize> = (1..)
            .map(|k: usize| k * 16)
            .filter(|&a| byte(a) == target)
            .take(300)
            .collect();
        let mut t = table(1 << 10);
        for &a in &same {
            assert!(t.insert(a, 1, 0));
        }
        let f = |t: &Table| t.filter.0[target].load(Relaxed);
        assert_eq!(f(&t), 255);
        for &a in &same[..299] {
            t.remove(a);
            assert!(f(&t) > 0, "never below the true count");
        }
        t.remove(same[299]);
        assert_eq!(f(&t), 0, "cleared once the table is empty");
    }

    #[test]
    fn remove_owner_drops_only_that_owners_entries() {
        let mut t = table(1 << 12);
        for a in 1..=1000usize {
            assert!(t.insert(a * 16, a, (a % 3) as u32));
        }
        t.remove_owner(1);
        for a in 1..=1000usize {
            assert_eq!(t.contains(a * 16), a % 3 != 1, "{a}");
        }
        assert_eq!(t.per_owner[1], 0);
        assert_eq!(t.len(), 1000 - 334);
    }

    proptest::proptest! {
        /// The table agrees with a HashMap model under any mix of inserts, removes and owner
        /// removals, on few distinct addresses (so that runs collide and wrap).
        #[test]
        fn table_matches_a_model(ops in proptest::collection::vec((0u8..3, 1usize..200, 0u32..4), 1..400)) {
            let mut t = table(1 << 9);
            let mut model: HashMap<usize, (u32, usize)> = HashMap::new();
            for (op, a, owner) in ops {
                let addr = a * 16;
                match op {
                    0 => {
                        if t.insert(addr, a, owner) {
                            model.insert(addr, (owner, a));
                        } else {
                            proptest::prop_assert!(model.len() >= (1 << 9) / 2);
                        }
                    }
                    1 => proptest::prop_assert_eq!(t.remove(addr), model.remove(&addr)),
                    _ => {
                        t.remove_owner(owner);
                        model.retain(|_, v| v.0 != owner);
                    }
                }
                proptest::prop_assert_eq!(t.len(), model.len());
            }
            for a in 1..200usize {
                proptest::prop_assert_eq!(t.contains(a * 16), model.contains_key(&(a * 16)));
            }
        }
    }
}
