//! The interposed `mmap` family (see the parent module for what is counted and why).
//!
//! Lock discipline: a call that can take counted memory away (`munmap`, `mremap`, `mmap` with
//! `MAP_FIXED`) holds the table's lock across its system call, so that no other thread can be
//! given the freed addresses, and record them, before this call has taken them off the table. A
//! plain `mmap` gets fresh addresses and records them after its system call.

use core::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use libc::{c_int, c_long, c_void, off_t, size_t, stack_t};

use super::table::{Range, Table};
use crate::counting::inner::inside;
use crate::counting::spin::SpinLock;

/// Ranges the table holds at most: 2^18 (4 MiB of address space, of which only the pages the
/// table has filled are ever touched).
const SLOTS: usize = 1 << 18;

/// Counted bytes: the sum of the table's ranges, changed only with the lock held.
static LIVE: AtomicI64 = AtomicI64::new(0);
/// Calls of this `mmap`: proof that the binary's `mmap` is this one.
static SEEN: AtomicU64 = AtomicU64::new(0);
/// 0: storage not mapped yet; 1: mapped; 2: the map failed (nothing can be counted).
static STORAGE: AtomicU8 = AtomicU8::new(0);

/// The table, behind the counting layer's spin lock (which a fork child takes over).
static TABLE: SpinLock<Table> = SpinLock::new(Table::empty());

/// The page size (from the auxiliary vector, which needs no allocation even before `main`).
fn page() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: getauxval reads the process's auxiliary vector; it has no preconditions.
    let p = match unsafe { libc::getauxval(libc::AT_PAGESZ) } as usize {
        0 => 4096,
        p => p,
    };
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// `[start, start + len)` with `len` rounded up to whole pages, as the kernel maps it.
fn span(start: usize, len: size_t) -> (usize, usize) {
    let len = len.saturating_add(page() - 1) & !(page() - 1);
    (start, start.saturating_add(len))
}

/// Runs `f` on the table with the lock held; the first call maps the table's storage. The lock
/// spins (yielding to the scheduler after a while): maps are rare and the lock is held for one
/// system call at most.
fn with_table<T>(f: impl FnOnce(&mut Table) -> T) -> T {
    let mut table = TABLE.lock();
    if STORAGE.load(Ordering::Relaxed) == 0 {
        attach_storage(&mut table);
    }
    f(&mut table)
}

/// Maps the table's storage with the raw system call: no allocator, no interposer, never freed.
fn attach_storage(table: &mut Table) {
    let bytes = SLOTS * core::mem::size_of::<Range>();
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: a fresh private anonymous map at an address the kernel picks: it touches no
    // existing memory.
    let p = unsafe {
        raw_mmap(
            core::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        STORAGE.store(2, Ordering::Relaxed);
        return;
    }
    // SAFETY: `p` is a fresh read-write map of `SLOTS` ranges (zeroed pages are valid `Range`s),
    // never unmapped, and used by this table only.
    unsafe { table.attach(p.cast::<Range>(), SLOTS) };
    STORAGE.store(1, Ordering::Relaxed);
}

/// `mmap` through the system call (glibc's `syscall` sets `errno` and returns -1, which is
/// `MAP_FAILED`, on an error).
///
/// # Safety
/// As `mmap`: a `MAP_FIXED` map replaces whatever was mapped at `addr`.
unsafe fn raw_mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    let args = [
        addr as c_long,
        len as c_long,
        prot as c_long,
        flags as c_long,
        fd as c_long,
        off as c_long,
    ];
    // SAFETY: the caller upholds `mmap`'s contract; the system call reads only its arguments.
    unsafe {
        libc::syscall(
            libc::SYS_mmap,
            args[0],
            args[1],
            args[2],
            args[3],
            args[4],
            args[5],
        ) as *mut c_void
    }
}

/// Applies a net change of counted bytes (the lock is held).
fn add(delta: i64) {
    LIVE.fetch_add(delta, Ordering::Relaxed);
}

/// Live counted bytes, or `None` when this binary's `mmap` is not this one or the table could
/// not be mapped. Allocation-free (the first call maps and unmaps one page to find out).
pub(crate) fn live() -> Option<i64> {
    (interposed() && STORAGE.load(Ordering::Relaxed) != 2).then(|| LIVE.load(Ordering::Relaxed))
}

/// Whether calls to `mmap` in this binary reach this one: maps a page through the `libc` crate's
/// `mmap` (resolved by the linker like every other caller's) and sees whether this one counted
/// the call.
fn interposed() -> bool {
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let before = SEEN.load(Ordering::Relaxed);
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a fresh one-page private anonymous map, unmapped right after; nothing else uses it.
    unsafe {
        let p = libc::mmap(core::ptr::null_mut(), page(), libc::PROT_READ, flags, -1, 0);
        if p != libc::MAP_FAILED {
            libc::munmap(p, page());
        }
    }
    let yes = SEEN.load(Ordering::Relaxed) > before;
    STATE.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
    yes
}

fn is_fixed(flags: c_int) -> bool {
    flags & libc::MAP_FIXED != 0
}

/// Whether a new map with these flags is counted: anonymous, and not the wrapped allocator's own.
fn counted(flags: c_int) -> bool {
    flags & libc::MAP_ANONYMOUS != 0 && !inside()
}

/// The body of `mmap` and `mmap64`.
///
/// # Safety
/// As `mmap`.
unsafe fn map(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    SEEN.fetch_add(1, Ordering::Relaxed);
    let count = counted(flags);
    if is_fixed(flags) {
        // It may replace counted memory: the lock is held across the call.
        return with_table(|t| {
            // SAFETY: this function's caller upholds `mmap`'s contract, as `raw_mmap` requires.
            let p = unsafe { raw_mmap(addr, len, prot, flags, fd, off) };
            if p != libc::MAP_FAILED {
                let (start, end) = span(p as usize, len);
                let delta = if count {
                    t.map(start, end)
                } else {
                    -(t.unmap(start, end) as i64)
                };
                add(delta);
            }
            p
        });
    }
    // SAFETY: as above.
    let p = unsafe { raw_mmap(addr, len, prot, flags, fd, off) };
    if p != libc::MAP_FAILED && count {
        let (start, end) = span(p as usize, len);
        with_table(|t| add(t.map(start, end)));
    }
    p
}

/// Interposes glibc's `mmap`: forwards to the kernel and counts anonymous maps.
///
/// # Safety
/// As `mmap(2)`.
#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: the caller upholds `mmap`'s contract, which is `map`'s.
    unsafe { map(addr, len, prot, flags, fd, off) }
}

/// Interposes glibc's `mmap64` (the same call on 64-bit targets).
///
/// # Safety
/// As `mmap(2)`.
#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: the caller upholds `mmap`'s contract, which is `map`'s.
    unsafe { map(addr, len, prot, flags, fd, off) }
}

/// Interposes glibc's `munmap`: forwards to the kernel and takes what it unmapped off the count.
///
/// # Safety
/// As `munmap(2)`.
#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: size_t) -> c_int {
    with_table(|t| {
        // SAFETY: the caller upholds `munmap`'s contract; the system call reads only its
        // arguments.
        let rc = unsafe { libc::syscall(libc::SYS_munmap, addr as c_long, len as c_long) } as c_int;
        if rc == 0 {
            let (start, end) = span(addr as usize, len);
            add(-(t.unmap(start, end) as i64));
        }
        rc
    })
}

/// Interposes glibc's `mremap`. glibc declares it variadic, with the new address as a fifth
/// argument read only with `MREMAP_FIXED`; on x86-64 and aarch64 Linux a variadic pointer
/// argument is passed where a fixed one is, so it is read as one. Without `MREMAP_FIXED` the
/// caller may have passed none (the register holds anything), and null is passed on, as glibc
/// does.
///
/// # Safety
/// As `mremap(2)`.
#[no_mangle]
pub unsafe extern "C" fn mremap(
    old: *mut c_void,
    old_len: size_t,
    new_len: size_t,
    flags: c_int,
    new_addr: *mut c_void,
) -> *mut c_void {
    let new_addr = if flags & libc::MREMAP_FIXED != 0 {
        new_addr
    } else {
        core::ptr::null_mut()
    };
    with_table(|t| {
        let args = [
            old as c_long,
            old_len as c_long,
            new_len as c_long,
            flags as c_long,
            new_addr as c_long,
        ];
        // SAFETY: the caller upholds `mremap`'s contract; the system call reads only its
        // arguments.
        let p = unsafe {
            libc::syscall(
                libc::SYS_mremap,
                args[0],
                args[1],
                args[2],
                args[3],
                args[4],
            )
        } as *mut c_void;
        if p != libc::MAP_FAILED {
            let moved = Moved {
                old: span(old as usize, old_len),
                new: span(p as usize, new_len),
            };
            add(moved.apply(t, flags));
        }
        p
    })
}

/// A successful `mremap`: the old range and the new one (page-rounded).
pub(crate) struct Moved {
    pub(crate) old: (usize, usize),
    pub(crate) new: (usize, usize),
}

impl Moved {
    /// Updates the table; returns the net change of counted bytes. What was counted of the old
    /// range moves to the new one (all of it when the old range was counted whole, grown or
    /// shrunk with it); whatever was counted where the new range now lies was replaced
    /// (`MREMAP_FIXED`). With `MREMAP_DONTUNMAP` the old range stays mapped, and counted.
    pub(crate) fn apply(&self, t: &mut Table, flags: c_int) -> i64 {
        let ((old_start, old_end), (new_start, new_end)) = (self.old, self.new);
        let was = t.counted(old_start, old_end);
        let mut delta = 0i64;
        if flags & libc::MREMAP_DONTUNMAP == 0 {
            delta -= t.unmap(old_start, old_end) as i64;
        }
        let keep_end = if was >= (old_end - old_start) as u64 {
            new_end
        } else {
            new_start + (was as usize).min(new_end - new_start)
        };
        if was > 0 {
            delta += t.map(new_start, keep_end);
        }
        delta - t.unmap(keep_end.max(new_start), new_end) as i64
    }
}

/// Interposes glibc's `sigaltstack`. A signal stack belongs to its thread: std maps one for every
/// thread it starts (and unmaps it as the thread exits), so the counted map it lies in is taken
/// off the count, and a leaked thread leaks in `threads`, not also in `mapped`.
///
/// # Safety
/// As `sigaltstack(2)`.
#[no_mangle]
pub unsafe extern "C" fn sigaltstack(ss: *const stack_t, old: *mut stack_t) -> c_int {
    // SAFETY: the caller upholds `sigaltstack`'s contract; the system call reads `*ss` and writes
    // `*old` only where they are non-null.
    let rc = unsafe { libc::syscall(libc::SYS_sigaltstack, ss as c_long, old as c_long) } as c_int;
    if rc == 0 && !ss.is_null() {
        // SAFETY: the kernel has just read `*ss` without a fault, and the caller keeps it valid.
        let s = unsafe { core::ptr::read(ss) };
        if s.ss_flags & libc::SS_DISABLE == 0 && !s.ss_sp.is_null() {
            with_table(|t| add(-(attribute_to_thread(t, s.ss_sp as usize, s.ss_size) as i64)));
        }
    }
    rc
}

/// Takes a signal stack at `[sp, sp + size)` off the table: the whole map it lies in when that
/// map is the stack and a few guard pages (as std makes it), else the stack's own pages.
pub(crate) fn attribute_to_thread(t: &mut Table, sp: usize, size: usize) -> u64 {
    let Some(r) = t.containing(sp) else {
        return 0;
    };
    if r.end - r.start <= size.saturating_add(4 * page()) {
        t.unmap(r.start, r.end)
    } else {
        let (_, end) = span(sp & !(page() - 1), size + (sp & (page() - 1)));
        t.unmap(sp & !(page() - 1), end)
    }
}

#[cfg(test)]
mod tests;
