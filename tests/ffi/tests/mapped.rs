//! The mapped corpus (feature `ffi`): anonymous maps made outside the allocator (memmap2, `libc`
//! directly) and forgotten are caught in `mapped`, and in `mapped` only; every fixed twin passes
//! and measures exactly zero. Then the places an interposed `mmap` must keep working: threads
//! (std's signal stacks are the thread's, not `mapped`), a thread created in C, a fork child, a
//! constructor that runs before `main`, and the scopes where `mapped` is not measured.
//!
//! A pattern is a module with its leaky function, its fixed twin, the bytes the leaky one leaves
//! mapped per call, and one `corpus!` line (the layout of the main corpus, `tests/corpus/`).

mod common;

use std::ptr;
use std::time::Duration;

use no_leak::{Config, Dimension, Measure};

const MIB: usize = 1 << 20;

macro_rules! corpus {
    (leaks $leaky:ident => $expected:literal, $per_run:expr; fixed $fixed:ident;) => {
        #[test]
        #[no_leak::no_leak]
        #[should_panic(expected = $expected)]
        fn leaks() {
            $leaky();
        }

        #[test]
        #[no_leak::isolated]
        fn leaks_in_mapped_only() {
            $crate::assert_mapped_leak(stringify!($leaky), $leaky, $per_run);
        }

        #[test]
        #[no_leak::no_leak]
        fn fixed_passes() {
            $fixed();
        }

        #[test]
        #[no_leak::isolated]
        fn fixed_measures_zero() {
            $crate::assert_measures_zero(stringify!($fixed), $fixed);
        }
    };
}

fn quick() -> Config {
    Config::new().settle(Duration::from_millis(50))
}

/// `body` leaks `per_run` mapped bytes every run, in `mapped` and nowhere else; the report says
/// so in its numbers, its text and its hint.
fn assert_mapped_leak(name: &str, body: fn(), per_run: usize) {
    let r = quick().name(name).measure(body);
    assert_eq!(r.exceeded, [Dimension::Mapped], "{r}");
    let net = (5 * per_run) as i64;
    assert_eq!(r.net(Measure::Mapped), Some(net), "{r}");
    assert_eq!((r.net(Measure::Bytes), r.net(Measure::Blocks)), (Some(0), Some(0)), "{r}");
    let text = r.to_string();
    assert!(
        text.contains(&format!("no_leak: `{name}` leaked mapped: ")),
        "{text}"
    );
    assert!(text.contains("  mapped:    "), "{text}");
    assert!(
        text.contains("  sites:     not traced for mapped memory"),
        "{text}"
    );
    assert!(
        text.contains(&format!("max_mapped_bytes = {net}")),
        "{text}"
    );
    let windows = &r.confirmations;
    assert_eq!(windows.len(), 2, "{r}");
    assert!(
        windows
            .iter()
            .all(|w| w.net[Measure::Mapped] == Some(w.runs as i64 * per_run as i64)),
        "{r}"
    );
}

/// `body` passes and measures exactly zero, mapped bytes included, without waiting.
fn assert_measures_zero(name: &str, body: fn()) {
    let r = quick().name(name).measure(body);
    common::assert_zero(&r);
    assert_eq!(r.net(Measure::Mapped), Some(0), "{r}");
    assert!(
        r.settle_wait.is_zero(),
        "a passing check never waits: {r}"
    );
}

/// An anonymous private read-write map of `len` bytes, through `libc::mmap`.
fn anon(len: usize) -> *mut libc::c_void {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a fresh map at an address the kernel picks.
    let p = unsafe { libc::mmap(ptr::null_mut(), len, prot, flags, -1, 0) };
    assert_ne!(p, libc::MAP_FAILED);
    p
}

fn unmap(p: *mut libc::c_void, len: usize) {
    // SAFETY: callers unmap only maps they made.
    assert_eq!(unsafe { libc::munmap(p, len) }, 0);
}

mod memmap2_anon {
    use super::*;

    /// A 1 MiB anonymous map, written to and forgotten.
    pub fn forgotten() {
        let mut m = memmap2::MmapMut::map_anon(MIB).unwrap(); // leak-site
        m[0] = 1;
        std::mem::forget(m);
    }

    pub fn dropped() {
        let mut m = memmap2::MmapMut::map_anon(MIB).unwrap();
        m[0] = 1;
        drop(m);
    }

    corpus! {
        leaks forgotten => "leaked mapped: ", MIB;
        fixed dropped;
    }
}

mod libc_mmap {
    use super::*;

    pub fn forgotten() {
        let p = anon(64 << 10); // leak-site
        std::hint::black_box(p);
    }

    pub fn unmapped() {
        unmap(anon(64 << 10), 64 << 10);
    }

    corpus! {
        leaks forgotten => "leaked mapped: ", 64 << 10;
        fixed unmapped;
    }
}

mod partial_unmap {
    use super::*;

    /// Unmaps only the first half of the map.
    pub fn leaves_half() {
        let p = anon(MIB); // leak-site
        unmap(p, MIB / 2);
    }

    /// Unmaps it in two halves, the back one first.
    pub fn both_halves() {
        let p = anon(MIB);
        // SAFETY: the middle of the map made above.
        let back = unsafe { p.cast::<u8>().add(MIB / 2) }.cast();
        unmap(back, MIB / 2);
        unmap(p, MIB / 2);
    }

    corpus! {
        leaks leaves_half => "leaked mapped: ", MIB / 2;
        fixed both_halves;
    }
}

mod mremap_grown {
    use super::*;

    fn grow(p: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: grows the map made by the caller, which nothing else uses.
        let q = unsafe { libc::mremap(p, 64 << 10, MIB, libc::MREMAP_MAYMOVE) };
        assert_ne!(q, libc::MAP_FAILED);
        q
    }

    /// Grows a map to 1 MiB and unmaps it with its old size.
    pub fn unmapped_with_the_old_size() {
        let q = grow(anon(64 << 10)); // leak-site
        unmap(q, 64 << 10);
    }

    pub fn unmapped_with_the_new_size() {
        unmap(grow(anon(64 << 10)), MIB);
    }

    corpus! {
        leaks unmapped_with_the_old_size => "leaked mapped: ", MIB - (64 << 10);
        fixed unmapped_with_the_new_size;
    }
}

mod threads {
    use super::*;

    /// Threads spawned and joined: their signal stacks come and go with them.
    #[test]
    #[no_leak::no_leak]
    fn joined_threads_pass() {
        let handles: Vec<_> = (0..4).map(|_| std::thread::spawn(anon_roundtrip)).collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
    }

    fn anon_roundtrip() {
        unmap(anon(3 << 12), 3 << 12);
    }

    /// A thread that never exits leaks in threads (and the heap std keeps for it), not in
    /// `mapped`: its signal stack is the thread's.
    #[test]
    #[no_leak::isolated]
    fn a_leaked_thread_is_not_mapped() {
        let r = quick().measure(|| {
            std::thread::spawn(|| loop {
                std::thread::park();
            });
        });
        assert_eq!(r.exceeded, [Dimension::Heap, Dimension::Threads], "{r}");
        assert_eq!(r.net(Measure::Mapped), Some(0), "{r}");
    }

    struct MapsOnExit;

    impl Drop for MapsOnExit {
        fn drop(&mut self) {
            std::hint::black_box(anon(MIB));
        }
    }

    thread_local! {
        static ON_EXIT: MapsOnExit = const { MapsOnExit };
    }

    /// A thread whose thread-local destructor maps 1 MiB as the thread exits, and forgets it:
    /// counted like any other map.
    #[test]
    #[no_leak::isolated]
    fn a_map_made_while_a_thread_exits_is_counted() {
        let r = quick().measure(|| {
            std::thread::spawn(|| ON_EXIT.with(|_| ())).join().unwrap();
        });
        assert_eq!(r.exceeded, [Dimension::Mapped], "{r}");
        assert_eq!(r.net(Measure::Mapped), Some(5 * MIB as i64), "{r}");
    }

    static C_THREAD_MAPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    extern "C" fn c_thread(_: *mut libc::c_void) -> *mut libc::c_void {
        C_THREAD_MAPPED.store(anon(MIB) as usize, std::sync::atomic::Ordering::Relaxed);
        ptr::null_mut()
    }

    fn run_c_thread() {
        let mut t: libc::pthread_t = 0;
        // SAFETY: starts a thread on `c_thread`, which takes no argument, and joins it.
        unsafe {
            assert_eq!(
                libc::pthread_create(&mut t, ptr::null(), c_thread, ptr::null_mut()),
                0
            );
            assert_eq!(libc::pthread_join(t, ptr::null_mut()), 0);
        }
    }

    /// A thread created with `pthread_create` maps and forgets 1 MiB: counted like any other.
    #[test]
    #[no_leak::isolated]
    fn a_c_thread_that_forgets_a_map_leaks_in_mapped() {
        let r = quick().measure(run_c_thread);
        assert_eq!(r.exceeded, [Dimension::Mapped], "{r}");
        assert_eq!(r.net(Measure::Mapped), Some(5 * MIB as i64), "{r}");
    }
}

mod processes {
    use super::*;

    /// A fork child maps, forgets and leaves with `_exit`: its maps are its own, and the parent
    /// passes.
    #[test]
    #[no_leak::no_leak]
    fn a_fork_child_maps_and_exits() {
        // SAFETY: the child calls only mmap (no allocation, no lock but no_leak's own, which a
        // child may take over) and _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
            // SAFETY: a fresh map in the child, left to the kernel at _exit.
            let p = unsafe { libc::mmap(ptr::null_mut(), MIB, libc::PROT_READ, flags, -1, 0) };
            // SAFETY: ends the child without running anything of the parent's.
            unsafe { libc::_exit(if p == libc::MAP_FAILED { 1 } else { 0 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status}"
        );
    }

    /// Where the constructor's map lies (0: not made).
    static BEFORE_MAIN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    extern "C" fn map_before_main() {
        BEFORE_MAIN.store(anon(4 << 12) as usize, std::sync::atomic::Ordering::Relaxed);
    }

    #[used]
    #[link_section = ".init_array"]
    static CONSTRUCTOR: extern "C" fn() = map_before_main;

    /// A map made before `main` (by a constructor) is counted: unmapping it in the measured run
    /// shrinks `mapped` by exactly its size.
    #[test]
    #[no_leak::isolated]
    fn a_map_made_before_main_is_counted() {
        let p = BEFORE_MAIN.load(std::sync::atomic::Ordering::Relaxed) as *mut libc::c_void;
        assert!(!p.is_null(), "the constructor ran");
        let mut calls = 0;
        let r = quick().warmup(1).runs(1).measure(|| {
            calls += 1;
            if calls == 2 {
                unmap(p, 4 << 12);
            }
        });
        assert_eq!(r.net(Measure::Mapped), Some(-(4 << 12)), "{r}");
    }
}

mod scopes {
    use super::*;

    /// `max_mapped_bytes` accepts growth within it, written in the attribute.
    #[test]
    #[no_leak::no_leak(max_mapped_bytes = 5242880)]
    fn a_bound_accepts_growth_within_it() {
        memmap2_anon::forgotten();
    }

    /// On a test thread that shares its process, `mapped` is not measured (it is process-wide),
    /// and the report leaves it out.
    #[test]
    fn a_shared_test_thread_does_not_measure_mapped() {
        let r = quick().measure(memmap2_anon::forgotten);
        if r.scope == no_leak::report::Scope::CallingThread {
            assert_eq!(r.count(Measure::Mapped), None, "{r}");
            assert!(r.not_measured_reason(Dimension::Mapped).is_some(), "{r}");
            assert!(!r.to_string().contains("mapped:"), "{r}");
            assert!(!r.is_leak(), "{r}");
        } else {
            // Under nextest each test has its process: it is measured, and leaks.
            assert_eq!(r.exceeded, [Dimension::Mapped], "{r}");
        }
    }

    /// A map made once, in a measured run, and kept (an arena made on first real use) grows in
    /// the first window only: one-time growth, not a leak, and the report says so.
    #[test]
    #[no_leak::isolated]
    fn a_map_made_once_is_one_time_growth() {
        let mut calls = 0;
        let r = quick().measure(|| {
            calls += 1;
            if calls == 5 {
                std::mem::forget(memmap2::MmapMut::map_anon(MIB).unwrap());
            }
        });
        assert!(!r.is_leak(), "{r}");
        let once = r.one_time.as_ref().expect("one-time growth");
        assert_eq!(once.dimensions, [Dimension::Mapped], "{r}");
        assert!(
            r.to_string().contains("; mapped +1 MiB) and not again"),
            "{r}"
        );
    }

    /// The JSON line (`NO_LEAK_REPORT`) names the dimension and gives its counts, in the line and
    /// in each confirmation window.
    #[test]
    #[no_leak::isolated]
    fn the_json_line_gives_mapped() {
        let path =
            std::env::temp_dir().join(format!("no_leak-mapped-{}.jsonl", std::process::id()));
        std::env::set_var("NO_LEAK_REPORT", &path);
        let caught = std::panic::catch_unwind(|| quick().check(libc_mmap::forgotten));
        std::env::remove_var("NO_LEAK_REPORT");
        assert!(caught.is_err(), "the check fails");
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let line = text.lines().last().expect("a line");
        assert!(line.contains("\"exceeded\":[\"mapped\"]"), "{line}");
        let net = 5 * (64 << 10);
        assert!(line.contains("\"mapped\":{\"before\":"), "{line}");
        assert!(
            line.contains(&format!(",\"net\":{net}}},\"settle_wait_ms\"")),
            "{line}"
        );
        assert!(
            line.contains(&format!("\"mapped\":{}}}", 8 * (64 << 10))),
            "{line}"
        );
    }

    /// A soak catches maps forgotten every few iterations, in `mapped`.
    #[test]
    #[no_leak::no_leak(soak = 2000)]
    #[should_panic(expected = "leaked mapped: ")]
    fn a_soak_catches_a_map_forgotten_every_10_iterations() {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        if N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(10)
        {
            std::hint::black_box(anon(4096));
        }
    }

    #[test]
    #[no_leak::no_leak(soak = 2000)]
    fn a_soak_of_dropped_maps_passes() {
        memmap2_anon::dropped();
    }
}
