//! The census of live OS threads and open file descriptors (handles on Windows).
//!
//! One module per OS, each with the same functions:
//! - Linux ([`linux`]): `/proc/self/task` and `/proc/self/fd`.
//! - macOS (`macos`): the task's Mach threads (`task_threads`) and `proc_pidinfo`'s list of
//!   descriptors.
//! - Windows (`windows`): a Toolhelp32 snapshot of the process's threads, and its open handles
//!   (`GetProcessHandleCount`), which play the part of fds.
//! - Anywhere else (`other`): nothing is counted, and reports say "not measured" rather than guess.
//!
//! The rules every OS keeps: a thread already exiting is not counted; the census's own descriptor
//! or handle is not counted; the `*_count` functions and [`exiting_thread_count`] allocate nothing
//! (they are read inside windows whose heap is counted). The set-valued functions allocate, so the
//! engine never takes them inside such a window.

use std::collections::BTreeSet;

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod os;
#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod os;
#[cfg(windows)]
#[path = "windows.rs"]
mod os;
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
#[path = "other.rs"]
mod os;

/// One OS thread, as seen in a census.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    /// The thread id as the OS's tools show it: the kernel's tid on Linux, the thread id on
    /// Windows, the low 32 bits of the 64-bit thread id on macOS.
    pub tid: u32,
    /// The thread's name: on Linux its `comm` (the first 15 bytes of the Rust thread name), on
    /// macOS its pthread name, on Windows its description. Empty for an unnamed thread.
    pub name: String,
    /// What the thread is doing, where the OS says: on Linux the scheduler's state letter from
    /// `stat` with its meaning (`S (sleeping)`), on macOS the Mach run state (`waiting`); empty
    /// where the OS gives none (Windows).
    pub state: String,
}

/// One open file descriptor (handle on Windows), as seen in a census.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdInfo {
    /// The descriptor number (the handle's value on Windows).
    pub fd: i32,
    /// What it points at: a path, `socket:[inode]`, `pipe:[inode]`, `anon_inode:[eventfd]`, ...
    /// on Linux; a path, `socket` or `pipe` on macOS; a path or the kind of object on Windows.
    pub target: String,
}

/// What reports call one and several of the `fds` dimension's objects on this OS: Windows counts
/// handles there.
pub(crate) const FD_WORDS: (&str, &str) = if cfg!(windows) {
    ("handle", "handles")
} else {
    ("fd", "fds")
};

/// Whether this OS's census counts threads and descriptors at all.
pub(crate) const COUNTED_HERE: bool = cfg!(any(target_os = "linux", target_os = "macos", windows));

/// The ids of live threads, or `None` where threads cannot be counted. Threads already exiting
/// are not counted.
pub(crate) fn thread_ids() -> Option<BTreeSet<u32>> {
    os::thread_ids()
}

/// Name and state of one thread (best effort: a thread that exited meanwhile reads as `?`).
pub(crate) fn thread_info(tid: u32) -> ThreadInfo {
    os::thread_info(tid)
}

/// The id of the calling thread, as [`thread_ids`] lists it.
pub(crate) fn current_thread_id() -> u32 {
    os::current_thread_id()
}

/// Whether the calling thread is the process's main thread. Allocates nothing and takes no lock:
/// the allocator asks it once per thread.
pub(crate) fn is_main_thread() -> bool {
    os::is_main_thread()
}

/// Whether the main thread is asleep, where that can be known.
pub(crate) fn main_thread_sleeping() -> Option<bool> {
    os::main_thread_sleeping()
}

/// The open file descriptors (handles on Windows), or `None` where they cannot be listed.
pub(crate) fn fds() -> Option<BTreeSet<i32>> {
    os::fds()
}

/// What one descriptor points at.
pub(crate) fn fd_info(fd: i32) -> FdInfo {
    os::fd_info(fd)
}

/// Live threads not already exiting, counted without allocating.
pub(crate) fn thread_count() -> Option<usize> {
    os::thread_count()
}

/// Open file descriptors (handles on Windows), the census's own left out, counted without
/// allocating.
pub(crate) fn fd_count() -> Option<usize> {
    os::fd_count()
}

/// Threads that are exiting but still listed, counted without allocating: while there are any,
/// counts can still change.
pub(crate) fn exiting_thread_count() -> usize {
    os::exiting_thread_count()
}

/// For the tests of every OS's census: a named thread blocked on a channel until the returned
/// sender is dropped, and its id.
#[cfg(all(test, any(target_os = "linux", target_os = "macos", windows)))]
fn parked_thread(
    name: &str,
) -> (
    u32,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let (id_tx, id_rx) = std::sync::mpsc::channel();
    let h = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            id_tx.send(current_thread_id()).unwrap();
            stop_rx.recv().ok();
        })
        .unwrap();
    (id_rx.recv().unwrap(), stop_tx, h)
}

#[cfg(all(test, any(target_os = "linux", target_os = "macos", windows)))]
mod tests {
    //! The contract every OS's census keeps, run wherever the census counts.
    use super::*;

    #[test]
    fn a_live_thread_is_listed_by_id_and_name_and_gone_after_join() {
        let (tid, stop, h) = parked_thread("census-probe");
        assert!(thread_ids().unwrap().contains(&tid));
        let info = thread_info(tid);
        assert_eq!(info.tid, tid);
        assert_eq!(info.name, "census-probe");
        drop(stop);
        h.join().unwrap();
        assert!(!thread_ids().unwrap().contains(&tid));
    }

    #[test]
    fn the_calling_thread_is_listed_and_is_not_main() {
        assert!(thread_ids().unwrap().contains(&current_thread_id()));
        // libtest runs every test on a thread of its own.
        assert!(!is_main_thread());
    }

    #[test]
    fn thread_count_sees_a_parked_thread_and_its_end() {
        // Other tests start and end threads meanwhile: retry until one pair of readings is clean.
        let clean = (0..50).any(|_| {
            let before = thread_count().unwrap();
            let (_, stop, h) = parked_thread("census-count");
            let during = thread_count().unwrap();
            drop(stop);
            h.join().unwrap();
            let after = thread_count().unwrap();
            during == before + 1 && after == before
        });
        assert!(clean, "the count never moved by exactly the parked thread");
    }

    #[test]
    fn a_new_file_is_listed_with_its_path_and_counted() {
        let path = std::env::temp_dir().join(format!("no_leak-census-{}", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let clean = (0..50).any(|_| {
            let (count_before, before) = (fd_count().unwrap(), fds().unwrap());
            let f = std::fs::File::open(&path).unwrap();
            let (count_during, during) = (fd_count().unwrap(), fds().unwrap());
            let ours = during
                .difference(&before)
                .any(|&fd| fd_info(fd).target.contains(&name));
            drop(f);
            ours && count_during == count_before + 1 && fd_count().unwrap() == count_before
        });
        std::fs::remove_file(&path).ok();
        assert!(clean, "the new file was never seen alone");
    }

    #[test]
    fn the_counts_allocate_nothing() {
        let Some(before) = crate::counting::alloc::thread_totals() else {
            return; // no counting allocator in this build
        };
        for _ in 0..10 {
            thread_count().unwrap();
            fd_count().unwrap();
            exiting_thread_count();
        }
        let after = crate::counting::alloc::thread_totals().unwrap();
        assert_eq!(before.alloc_blocks, after.alloc_blocks);
    }
}
