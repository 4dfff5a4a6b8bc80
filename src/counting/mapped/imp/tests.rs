//! Tests of the interposed calls. Other tests of this binary map and unmap at the same time, so
//! these look at the ranges they made themselves (their addresses), not at the total.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::*;

const MIB: usize = 1 << 20;

fn table(cap: usize) -> Table {
    let slots: &'static mut [Range] = Vec::leak(vec![Range::default(); cap]);
    let mut t = Table::empty();
    // SAFETY: a leaked buffer of `cap` ranges, used by this table only.
    unsafe { t.attach(slots.as_mut_ptr(), cap) };
    t
}

/// Counted bytes in `[p, p + len)` of the process's table.
fn counted_at(p: *mut c_void, len: usize) -> u64 {
    with_table(|t| t.counted(p as usize, p as usize + len))
}

/// The sum of the table's ranges equals the counter (read with the lock held).
fn consistent() -> bool {
    with_table(|t| {
        let sum: u64 = t.ranges().iter().map(|r| (r.end - r.start) as u64).sum();
        t.lost > 0 || sum as i64 == LIVE.load(Ordering::Relaxed)
    })
}

/// An anonymous private read-write map of `len` bytes through the interposer.
fn anon(len: usize) -> *mut c_void {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a fresh map at an address the kernel picks.
    let p = unsafe {
        mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    p
}

fn unmap(p: *mut c_void, len: usize) {
    // SAFETY: callers unmap only maps they made in the test.
    assert_eq!(unsafe { munmap(p, len) }, 0);
}

#[test]
fn the_binary_calls_this_mmap() {
    assert!(interposed(), "the test binary's mmap is no_leak's");
    assert!(live().is_some());
}

#[test]
fn anonymous_maps_are_counted_and_partial_unmaps_taken_off() {
    let p = anon(MIB);
    assert_eq!(counted_at(p, MIB), MIB as u64);
    let page = page();
    // SAFETY: within the map made above.
    let middle = unsafe { p.cast::<u8>().add(MIB / 2) }.cast::<c_void>();
    unmap(middle, page);
    assert_eq!(counted_at(p, MIB), (MIB - page) as u64);
    unmap(p, page);
    assert_eq!(counted_at(p, MIB), (MIB - 2 * page) as u64);
    unmap(p, MIB);
    assert_eq!(counted_at(p, MIB), 0);
    assert!(consistent());
}

#[test]
fn a_length_that_is_not_a_page_multiple_counts_whole_pages() {
    let p = anon(100);
    assert_eq!(counted_at(p, page()), page() as u64);
    unmap(p, 100);
    assert_eq!(counted_at(p, page()), 0);
}

#[test]
fn file_maps_and_the_allocators_own_maps_are_not_counted() {
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    use std::os::unix::io::AsRawFd;
    // SAFETY: a fresh read-only private map of an open file.
    let p = unsafe {
        mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    assert_eq!(counted_at(p, 4096), 0, "file-backed");
    unmap(p, 4096);
    let q = {
        let _inside = crate::counting::inner::Inside::enter();
        anon(64 << 10)
    };
    assert_eq!(
        counted_at(q, 64 << 10),
        0,
        "made inside the wrapped allocator"
    );
    unmap(q, 64 << 10);
}

#[test]
fn a_fixed_file_map_over_counted_memory_replaces_it() {
    let p = anon(4 * page());
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    use std::os::unix::io::AsRawFd;
    let flags = libc::MAP_PRIVATE | libc::MAP_FIXED;
    // SAFETY: MAP_FIXED over the second page of the map made above, which nothing else uses.
    let q = unsafe {
        let at = p.cast::<u8>().add(page()).cast();
        mmap(at, page(), libc::PROT_READ, flags, file.as_raw_fd(), 0)
    };
    assert_ne!(q, libc::MAP_FAILED);
    assert_eq!(counted_at(p, 4 * page()), 3 * page() as u64);
    unmap(p, 4 * page());
    assert_eq!(counted_at(p, 4 * page()), 0);
}

#[test]
fn mremap_grows_shrinks_and_moves_what_was_counted() {
    let page = page();
    let p = anon(2 * page);
    // SAFETY: mremap of the map made above, which nothing else uses.
    let q = unsafe {
        mremap(
            p,
            2 * page,
            64 * page,
            libc::MREMAP_MAYMOVE,
            core::ptr::null_mut(),
        )
    };
    assert_ne!(q, libc::MAP_FAILED);
    if q != p {
        assert_eq!(counted_at(p, 2 * page), 0, "moved away");
    }
    assert_eq!(counted_at(q, 64 * page), 64 * page as u64);
    // SAFETY: shrinking in place the map made above.
    let r = unsafe { mremap(q, 64 * page, 16 * page, 0, core::ptr::null_mut()) };
    assert_eq!(r, q);
    assert_eq!(counted_at(q, 64 * page), 16 * page as u64);
    unmap(q, 16 * page);
    assert!(consistent());
}

#[test]
fn mremap_fixed_moves_onto_a_chosen_address() {
    let page = page();
    let (src, dst) = (anon(2 * page), anon(8 * page));
    let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
    // SAFETY: moves the first map onto the second, both made above.
    let q = unsafe { mremap(src, 2 * page, 4 * page, flags, dst) };
    assert_eq!(q, dst);
    assert_eq!(counted_at(src, 2 * page), 0);
    assert_eq!(
        counted_at(dst, 8 * page),
        8 * page as u64,
        "4 moved pages, 4 left of the old map"
    );
    unmap(dst, 8 * page);
    assert_eq!(counted_at(dst, 8 * page), 0);
}

#[test]
fn mremap_dontunmap_keeps_the_old_range_counted() {
    let page = page();
    let p = anon(2 * page);
    let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_DONTUNMAP;
    // SAFETY: moves the pages of the map made above to a new range, keeping the old one mapped;
    // the fifth argument is garbage on purpose: without MREMAP_FIXED it is not passed on.
    let q = unsafe { mremap(p, 2 * page, 2 * page, flags, 0x1000 as *mut c_void) };
    if q == libc::MAP_FAILED {
        // A kernel before 5.7 has no MREMAP_DONTUNMAP; nothing moved.
        assert_eq!(counted_at(p, 2 * page), 2 * page as u64);
    } else {
        assert_ne!(q, p);
        assert_eq!(
            counted_at(p, 2 * page),
            2 * page as u64,
            "the old range stays"
        );
        assert_eq!(counted_at(q, 2 * page), 2 * page as u64, "the new range");
        unmap(q, 2 * page);
    }
    unmap(p, 2 * page);
    assert!(consistent());
}

#[test]
fn moves_in_the_table() {
    let mut t = table(8);
    // Grown in place.
    t.map(0x10000, 0x12000);
    let grown = Moved {
        old: (0x10000, 0x12000),
        new: (0x10000, 0x18000),
    };
    assert_eq!(grown.apply(&mut t, libc::MREMAP_MAYMOVE), 0x6000);
    assert_eq!(
        t.ranges(),
        [Range {
            start: 0x10000,
            end: 0x18000
        }]
    );
    // Moved onto counted memory (MREMAP_FIXED): the destination's old range is replaced.
    t.map(0x40000, 0x48000);
    let moved = Moved {
        old: (0x10000, 0x18000),
        new: (0x44000, 0x46000),
    };
    let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
    assert_eq!(moved.apply(&mut t, flags), -0x8000);
    assert_eq!(t.counted(0, usize::MAX), 0x8000);
    // An uncounted map moved onto counted memory takes that memory off.
    let foreign = Moved {
        old: (0x90000, 0x91000),
        new: (0x40000, 0x41000),
    };
    assert_eq!(foreign.apply(&mut t, flags), -0x1000);
    // MREMAP_DONTUNMAP: the old range stays mapped and counted.
    let copy = Moved {
        old: (0x44000, 0x46000),
        new: (0x60000, 0x62000),
    };
    let dont = libc::MREMAP_MAYMOVE | libc::MREMAP_DONTUNMAP;
    assert_eq!(copy.apply(&mut t, dont), 0x2000);
    assert_eq!(t.counted(0x44000, 0x46000), 0x2000);
}

#[test]
fn a_signal_stack_is_the_threads_not_mapped() {
    let mut t = table(8);
    let page = page();
    t.map(0x100000, 0x100000 + 3 * page);
    assert_eq!(
        attribute_to_thread(&mut t, 0x100000 + page, 2 * page),
        3 * page as u64
    );
    assert_eq!(t.counted(0, usize::MAX), 0);
    // A stack inside a big map takes only its own pages.
    t.map(0x200000, 0x200000 + 64 * page);
    assert_eq!(
        attribute_to_thread(&mut t, 0x200000 + 8 * page, 2 * page),
        2 * page as u64
    );
    assert_eq!(t.counted(0, usize::MAX), 62 * page as u64);
}

/// Checked while the thread lives: its signal stack is mapped then, so no other map can be at
/// that address. (Checked after `join`, a parallel test's fresh map at the reused address made
/// this fail now and then.)
#[test]
fn a_spawned_threads_signal_stack_is_not_counted() {
    let (sp, counted) = std::thread::spawn(|| {
        // SAFETY: stack_t is plain data (a pointer, an int and a size): all zeroes is valid.
        let mut now: stack_t = unsafe { core::mem::zeroed() };
        // SAFETY: reads this thread's signal stack into a local.
        assert_eq!(unsafe { sigaltstack(core::ptr::null(), &mut now) }, 0);
        let sp = now.ss_sp as usize;
        (sp, with_table(|t| t.containing(sp)))
    })
    .join()
    .unwrap();
    assert_ne!(sp, 0, "std gives every thread it starts a signal stack");
    assert_eq!(counted, None);
}

#[test]
fn a_thread_maps_and_unmaps_while_another_reads() {
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let mapper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let p = anon(3 * page());
                unmap(p, 3 * page());
            }
        })
    };
    for _ in 0..2000 {
        assert!(live().unwrap() >= 0);
        assert!(consistent());
    }
    stop.store(true, Ordering::Relaxed);
    mapper.join().unwrap();
}

#[test]
fn a_fork_child_maps_even_with_the_lock_left_held_by_its_parent() {
    // SAFETY: the child calls only what allocates nothing and takes no lock but the table's, then
    // leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // As if a thread of the parent held the lock at the fork.
        // SAFETY: getppid has no preconditions.
        TABLE.pretend_held_by(unsafe { libc::getppid() } as u32);
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: a fresh map at an address the kernel picks, unmapped below.
        let p = unsafe { mmap(core::ptr::null_mut(), MIB, libc::PROT_READ, flags, -1, 0) };
        let ok = p != libc::MAP_FAILED
            && counted_at(p, MIB) == MIB as u64
            // SAFETY: the map made above.
            && unsafe { munmap(p, MIB) } == 0
            && counted_at(p, MIB) == 0;
        // SAFETY: ends the child at once, running nothing of the parent's (no atexit, no
        // destructors), so the forked copy of the test harness never runs.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status}"
    );
}

static C_THREAD_OK: AtomicBool = AtomicBool::new(false);

extern "C" fn c_thread(_: *mut c_void) -> *mut c_void {
    let p = anon(MIB);
    let ok = counted_at(p, MIB) == MIB as u64;
    unmap(p, MIB);
    C_THREAD_OK.store(ok && counted_at(p, MIB) == 0, Ordering::Relaxed);
    core::ptr::null_mut()
}

#[test]
fn a_thread_created_in_c_maps() {
    let mut t: libc::pthread_t = 0;
    // SAFETY: starts a thread on `c_thread`, which takes no argument, and joins it.
    unsafe {
        assert_eq!(
            libc::pthread_create(&mut t, core::ptr::null(), c_thread, core::ptr::null_mut()),
            0
        );
        assert_eq!(libc::pthread_join(t, core::ptr::null_mut()), 0);
    }
    assert!(C_THREAD_OK.load(Ordering::Relaxed));
}

static AT_EXIT_OK: AtomicBool = AtomicBool::new(false);

struct MapsOnExit;

impl Drop for MapsOnExit {
    fn drop(&mut self) {
        let p = anon(2 * page());
        let ok = counted_at(p, 2 * page()) == 2 * page() as u64;
        unmap(p, 2 * page());
        AT_EXIT_OK.store(ok && counted_at(p, 2 * page()) == 0, Ordering::Relaxed);
    }
}

thread_local! {
    static ON_EXIT: MapsOnExit = const { MapsOnExit };
}

#[test]
fn a_thread_maps_while_it_exits() {
    std::thread::spawn(|| ON_EXIT.with(|_| ())).join().unwrap();
    assert!(AT_EXIT_OK.load(Ordering::Relaxed));
}

/// Where the map made before `main` lies (0: not made).
static BEFORE_MAIN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn map_before_main() {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a fresh map, made from a constructor before main; the test below unmaps it.
    let p = unsafe {
        mmap(
            core::ptr::null_mut(),
            3 * 4096,
            libc::PROT_READ,
            flags,
            -1,
            0,
        )
    };
    if p != libc::MAP_FAILED {
        BEFORE_MAIN.store(p as usize, Ordering::Relaxed);
    }
}

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = map_before_main;

#[test]
fn a_map_made_before_main_is_counted() {
    let p = BEFORE_MAIN.load(Ordering::Relaxed) as *mut c_void;
    assert!(!p.is_null(), "the constructor ran");
    assert_eq!(counted_at(p, 3 * 4096), 3 * 4096);
    unmap(p, 3 * 4096);
    assert_eq!(counted_at(p, 3 * 4096), 0);
}
