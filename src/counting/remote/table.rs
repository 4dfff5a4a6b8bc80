//! The cross-thread table: remembered blocks (address -> size, owner slot) in an open-addressing
//! hash table whose storage bypasses every counter, and the counting filter that lets a free on
//! another thread skip the lock when no remembered block can be at its address. Pure
//! bookkeeping, used under the lock of [`remote`](super)'s one instance (or owned by a test).

use std::alloc::{GlobalAlloc, Layout};

#[cfg(all(feature = "ffi", target_os = "linux", target_env = "gnu"))]
use crate::counting::c_heap::glibc::Untracked as System;
/// The table's storage: `System`, or with the feature `ffi` on glibc the same calls by glibc's
/// own names, so that the C heap's interposers do not count it either.
#[cfg(not(all(feature = "ffi", target_os = "linux", target_env = "gnu")))]
use std::alloc::System;
use std::sync::atomic::{AtomicU8, Ordering::*};

use crate::counting::alloc::SLOTS;

/// The capacity a table starts with when the first window opens (64 KiB of entries).
const FIRST_CAP: usize = 1 << 12;
const FILTER_BITS: u32 = 16;
/// Entries pack the owner's slot index in the low bits and the size above.
const OWNER_BITS: u32 = 16;
const _: () = assert!(SLOTS < 1 << OWNER_BITS);

#[inline]
pub(super) fn hash(addr: usize) -> u64 {
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

    #[inline]
    fn byte(&self, h: u64) -> &AtomicU8 {
        &self.0[(h >> (64 - FILTER_BITS)) as usize]
    }

    /// Whether a block with hash `h` may be remembered. A free on another thread is ordered after
    /// the allocation it frees (the block was handed over), so it sees the increment made when
    /// the block was remembered, or a later value, which stays non-zero while the entry lives.
    #[inline]
    pub(super) fn may_hold(&self, h: u64) -> bool {
        self.byte(h).load(Relaxed) != 0
    }

    /// Under the lock. Returns true if the byte is (now) stuck at 255.
    #[inline]
    fn add(&self, h: u64) -> bool {
        let b = self.byte(h);
        let v = b.load(Relaxed);
        if v < u8::MAX {
            b.store(v + 1, Relaxed);
        }
        v >= u8::MAX - 1
    }

    /// Under the lock.
    #[inline]
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
    #[inline]
    fn owner(self) -> u32 {
        (self.size_owner & ((1 << OWNER_BITS) - 1)) as u32
    }

    #[inline]
    fn size(self) -> usize {
        (self.size_owner >> OWNER_BITS) as usize
    }
}

/// Remembered blocks: an open-addressing table (linear probing, deletion by backward shift, so
/// no tombstones) whose storage comes from [`System`], plus the windows' bookkeeping. Only ever
/// used under the lock of `remote`'s `STATE` (or owned by a test).
pub(crate) struct Table {
    /// `cap` entries from `System`, all-zero bytes when empty; null while `cap == 0`.
    entries: *mut Entry,
    cap: usize,
    len: usize,
    max_cap: usize,
    /// Live entries per owner slot.
    per_owner: [u32; SLOTS],
    /// Open (outermost) windows.
    pub(super) windows: u32,
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

    #[inline]
    fn places(&mut self) -> &mut [Entry] {
        if self.cap == 0 {
            return &mut [];
        }
        // SAFETY: `entries` points to `cap` entries allocated (zeroed: all-zero bytes are a valid
        // `Entry`) by `alloc_places` and owned by this table; `&mut self` makes this the only
        // reference to them.
        unsafe { std::slice::from_raw_parts_mut(self.entries, self.cap) }
    }

    #[inline]
    fn home(&self, addr: usize) -> usize {
        (hash(addr) >> (64 - self.cap.trailing_zeros())) as usize
    }

    #[inline]
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
    #[inline]
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
    #[inline]
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
    #[inline]
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
    #[inline]
    pub(crate) fn remove(&mut self, addr: usize) -> Option<(u32, usize)> {
        let i = self.find(addr)?;
        let e = self.places()[i];
        self.remove_at(i);
        Some((e.owner(), e.size()))
    }

    /// Removes the entry at `hole`, shifting later entries of the same run back so that every
    /// entry stays reachable from its home place.
    #[inline]
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

    #[inline]
    fn after_removal(&mut self) {
        if self.len == 0 && self.saturated {
            self.filter.clear();
            self.saturated = false;
        }
    }

    /// With no window open: gives back storage grown past the first size.
    pub(super) fn idle(&mut self) {
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

#[cfg(test)]
mod tests;
