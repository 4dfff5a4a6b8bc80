//! The `mapped` dimension: live bytes of anonymous `mmap` made outside the allocator (cargo
//! feature `ffi`, Linux with glibc on x86-64 or aarch64).
//!
//! The test binary defines `mmap`, `mmap64`, `munmap`, `mremap` and `sigaltstack`, which the
//! linker prefers to glibc's for every caller in the binary (Rust code through the `libc` crate,
//! memmap2, std, C code linked in). Each forwards to the kernel with the raw system call (glibc's
//! `syscall` sets `errno` as the wrapper would), and keeps a table of the anonymous ranges it
//! counted, so that `munmap` and `mremap` take off exactly what was counted, partial unmaps and
//! moves included. glibc's own maps (malloc's large chunks, thread stacks) use internal calls that
//! no interposer sees, so the system allocator's memory is never counted twice; maps made while
//! the wrapped Rust allocator runs ([`inside`]) are its arenas, already counted as heap, and are
//! left out too.
//!
//! **Threads' signal stacks.** std maps a small signal stack (`sigaltstack`) for every thread it
//! starts and unmaps it when the thread exits. Those bytes belong to the thread: a range handed to
//! `sigaltstack` is taken off the count, so a leaked thread leaks in `threads` (and the heap), not
//! also in `mapped`, and a thread that is spawned and joined leaves nothing at any moment.
//!
//! The table's storage is one mapping made with the raw system call on first use, never grown or
//! freed; it is guarded by the counting layer's spin lock ([`spin`](crate::counting::spin)),
//! under which nothing allocates or takes another lock. A fork child finds a lock a thread of its
//! parent held at the fork, and takes it over (that thread does not exist in the child).
//!
//! [`inside`]: crate::counting::inner::inside

/// Live bytes of anonymous maps made outside the allocator, page-rounded; `None` where they are
/// not measured (feature `ffi` off, not Linux/glibc on x86-64 or aarch64, or the binary's `mmap`
/// is not ours).
/// Allocation-free.
pub(crate) fn live_mapped_bytes() -> Option<i64> {
    #[cfg(all(
        feature = "ffi",
        target_os = "linux",
        target_env = "gnu",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        imp::live()
    }
    #[cfg(not(all(
        feature = "ffi",
        target_os = "linux",
        target_env = "gnu",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        None
    }
}

/// Whether this build has the interposers: the feature `ffi`, on Linux with glibc, on x86-64 or
/// aarch64 (the condition `imp` is compiled under).
const INTERPOSED: bool = cfg!(all(
    feature = "ffi",
    target_os = "linux",
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64")
));

/// Why this build can never measure `mapped`, in any scope: the feature is off, or the platform
/// is not one the interposers exist on. `None` where it can.
pub(crate) fn never_measured_reason() -> Option<&'static str> {
    (!INTERPOSED).then(not_measured_reason)
}

/// Why [`live_mapped_bytes`] is `None` in this build.
pub(crate) fn not_measured_reason() -> &'static str {
    if cfg!(not(feature = "ffi")) {
        "turn on no_leak's cargo feature `ffi` to count anonymous mmap"
    } else if !INTERPOSED {
        "counted on Linux with glibc, on x86-64 and aarch64 only"
    } else {
        "this binary's mmap is not no_leak's (another definition of mmap won at link time)"
    }
}

/// The table of counted ranges: sorted, non-overlapping `[start, end)` byte ranges, stored in
/// memory that no allocator owns. Pure bookkeeping: it makes no system call.
#[cfg(any(
    test,
    all(
        feature = "ffi",
        target_os = "linux",
        target_env = "gnu",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )
))]
pub(crate) mod table {
    /// One counted range, `[start, end)`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub(crate) struct Range {
        pub(crate) start: usize,
        pub(crate) end: usize,
    }

    impl Range {
        fn len(self) -> u64 {
            (self.end - self.start) as u64
        }
    }

    /// Sorted, non-overlapping ranges in `cap` slots at `slots`.
    pub(crate) struct Table {
        slots: *mut Range,
        cap: usize,
        len: usize,
        /// Bytes dropped because the table was full (a range that could not be recorded, or the
        /// far piece of a split): the count is low by this much.
        pub(crate) lost: u64,
    }

    // SAFETY: `slots` is storage the table uses alone (`attach`'s contract), so moving the table
    // to another thread moves the storage with it.
    unsafe impl Send for Table {}

    impl Table {
        /// A table with no storage yet: every insertion fails until [`Table::attach`].
        pub(crate) const fn empty() -> Table {
            Table {
                slots: core::ptr::null_mut(),
                cap: 0,
                len: 0,
                lost: 0,
            }
        }

        /// Gives the table its storage.
        ///
        /// # Safety
        /// `slots` must be valid for reads and writes of `cap` ranges for the table's whole life,
        /// and used by nothing else.
        pub(crate) unsafe fn attach(&mut self, slots: *mut Range, cap: usize) {
            self.slots = slots;
            self.cap = cap;
        }

        #[cfg(test)]
        pub(crate) fn has_storage(&self) -> bool {
            !self.slots.is_null()
        }

        fn all(&self) -> &[Range] {
            if self.slots.is_null() {
                return &[];
            }
            // SAFETY: `attach`'s contract: `slots` is valid for `cap >= len` ranges, and only this
            // table uses it; the first `len` are initialised (every slot below `len` was written).
            unsafe { core::slice::from_raw_parts(self.slots, self.len) }
        }

        fn all_mut(&mut self) -> &mut [Range] {
            if self.slots.is_null() {
                return &mut [];
            }
            // SAFETY: as in `all`, and `&mut self` makes this the only access.
            unsafe { core::slice::from_raw_parts_mut(self.slots, self.cap) }
        }

        /// The counted ranges, in address order.
        #[cfg(test)]
        pub(crate) fn ranges(&self) -> &[Range] {
            self.all()
        }

        /// Counted bytes in `[start, end)`.
        pub(crate) fn counted(&self, start: usize, end: usize) -> u64 {
            let first = self.all().partition_point(|r| r.end <= start);
            self.all()[first..]
                .iter()
                .take_while(|r| r.start < end)
                .map(|r| (r.end.min(end) - r.start.max(start)) as u64)
                .sum()
        }

        /// The counted range that contains `addr`, if any.
        pub(crate) fn containing(&self, addr: usize) -> Option<Range> {
            let i = self.all().partition_point(|r| r.end <= addr);
            self.all().get(i).copied().filter(|r| r.start <= addr)
        }

        /// Inserts `range` at slot `i`; false when the table is full.
        fn insert_at(&mut self, i: usize, range: Range) -> bool {
            if self.len == self.cap {
                return false;
            }
            let len = self.len;
            let slots = self.all_mut();
            slots.copy_within(i..len, i + 1);
            slots[i] = range;
            self.len += 1;
            true
        }

        fn delete(&mut self, i: usize) {
            let len = self.len;
            self.all_mut().copy_within(i + 1..len, i);
            self.len -= 1;
        }

        /// Counts `[start, end)`, replacing whatever was counted there; returns the net change
        /// of counted bytes.
        pub(crate) fn map(&mut self, start: usize, end: usize) -> i64 {
            let removed = self.unmap(start, end) as i64;
            if start >= end {
                return -removed;
            }
            let range = Range { start, end };
            let i = self.all().partition_point(|r| r.end <= start);
            if self.insert_at(i, range) {
                range.len() as i64 - removed
            } else {
                self.lost += range.len();
                -removed
            }
        }

        /// Takes `[start, end)` off the table; returns the counted bytes taken off. A range
        /// covering both sides is split in two.
        pub(crate) fn unmap(&mut self, start: usize, end: usize) -> u64 {
            let mut removed = 0;
            let mut i = self.all().partition_point(|r| r.end <= start);
            while let Some(&r) = self.all().get(i) {
                if r.start >= end {
                    break;
                }
                removed += (r.end.min(end) - r.start.max(start)) as u64;
                let left = Range {
                    start: r.start,
                    end: start,
                };
                let right = Range {
                    start: end,
                    end: r.end,
                };
                match (r.start < start, r.end > end) {
                    (false, false) => {
                        self.delete(i);
                        continue;
                    }
                    (true, false) => self.all_mut()[i] = left,
                    (false, true) => self.all_mut()[i] = right,
                    (true, true) => {
                        self.all_mut()[i] = left;
                        if !self.insert_at(i + 1, right) {
                            // No slot for the far piece: it is no longer counted, and said lost.
                            removed += right.len();
                            self.lost += right.len();
                        }
                        break;
                    }
                }
                i += 1;
            }
            removed
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn table(cap: usize) -> Table {
            let slots: &'static mut [Range] = Vec::leak(vec![Range::default(); cap]);
            let mut t = Table::empty();
            // SAFETY: a leaked buffer of `cap` ranges, used by this table only.
            unsafe { t.attach(slots.as_mut_ptr(), cap) };
            t
        }

        fn r(start: usize, end: usize) -> Range {
            Range { start, end }
        }

        #[test]
        fn maps_are_counted_and_unmapped_exactly() {
            let mut t = table(8);
            assert_eq!(t.map(0x1000, 0x3000), 0x2000);
            assert_eq!(t.map(0x8000, 0x9000), 0x1000);
            assert_eq!(t.counted(0, usize::MAX), 0x3000);
            assert_eq!(t.unmap(0x1000, 0x3000), 0x2000);
            assert_eq!(t.ranges(), [r(0x8000, 0x9000)]);
            assert_eq!(t.unmap(0x4000, 0x5000), 0, "nothing counted there");
        }

        #[test]
        fn partial_unmaps_from_the_front_middle_and_back() {
            let mut t = table(8);
            t.map(0x10000, 0x20000);
            assert_eq!(t.unmap(0x10000, 0x12000), 0x2000, "front");
            assert_eq!(t.unmap(0x1e000, 0x20000), 0x2000, "back");
            assert_eq!(t.unmap(0x15000, 0x16000), 0x1000, "middle");
            assert_eq!(t.ranges(), [r(0x12000, 0x15000), r(0x16000, 0x1e000)]);
            assert_eq!(t.counted(0x10000, 0x20000), 0xb000);
        }

        #[test]
        fn an_unmap_across_several_ranges_takes_each_overlap() {
            let mut t = table(8);
            t.map(0x1000, 0x2000);
            t.map(0x3000, 0x5000);
            t.map(0x6000, 0x8000);
            assert_eq!(t.unmap(0x1800, 0x7000), 0x800 + 0x2000 + 0x1000);
            assert_eq!(t.ranges(), [r(0x1000, 0x1800), r(0x7000, 0x8000)]);
        }

        #[test]
        fn a_map_over_counted_ranges_replaces_them() {
            // MAP_FIXED over what was counted: the old overlap goes, the new range comes.
            let mut t = table(8);
            t.map(0x1000, 0x4000);
            assert_eq!(t.map(0x2000, 0x6000), 0x4000 - 0x2000);
            assert_eq!(t.ranges(), [r(0x1000, 0x2000), r(0x2000, 0x6000)]);
            assert_eq!(t.containing(0x2000), Some(r(0x2000, 0x6000)));
            assert_eq!(t.containing(0x1fff), Some(r(0x1000, 0x2000)));
            assert_eq!(t.containing(0x6000), None);
        }

        #[test]
        fn a_full_table_counts_what_it_can_and_says_what_it_lost() {
            let mut t = table(2);
            t.map(0x1000, 0x5000);
            t.map(0x8000, 0x9000);
            assert_eq!(t.map(0xa000, 0xb000), 0, "no slot");
            assert_eq!(t.lost, 0x1000);
            // A split needs a slot: the far piece is dropped and said lost.
            assert_eq!(t.unmap(0x2000, 0x3000), 0x1000 + 0x2000);
            assert_eq!(t.ranges(), [r(0x1000, 0x2000), r(0x8000, 0x9000)]);
            assert_eq!(t.lost, 0x3000);
        }

        #[test]
        fn an_empty_table_counts_nothing() {
            let mut t = Table::empty();
            assert!(!t.has_storage());
            assert_eq!(t.map(0x1000, 0x2000), 0);
            assert_eq!(t.unmap(0, usize::MAX), 0);
            assert_eq!(t.counted(0, usize::MAX), 0);
        }
    }
}

#[cfg(all(
    feature = "ffi",
    target_os = "linux",
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod imp;
