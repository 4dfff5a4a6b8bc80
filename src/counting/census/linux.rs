//! The census on Linux: threads are the entries of `/proc/self/task`, fds the entries of
//! `/proc/self/fd`, a thread's name its `comm` and its state the letter of its `stat`.

use std::collections::BTreeSet;

use super::{FdInfo, ThreadInfo};

/// The ids of live threads, or `None` where threads cannot be counted. Threads already exiting
/// are not counted.
pub(super) fn thread_ids() -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    proc_dir::scan(c"/proc/self/task", |dir, name| {
        if let Ok(tid) = name.parse() {
            if !proc_dir::thread_exiting(dir, name) {
                out.insert(tid);
            }
        }
    })?;
    Some(out)
}

/// Name and state of one thread (best effort: a thread that exited meanwhile reads as `?`).
pub(super) fn thread_info(tid: u32) -> ThreadInfo {
    let base = format!("/proc/self/task/{tid}");
    let name = std::fs::read_to_string(format!("{base}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "?".into());
    let state = std::fs::read_to_string(format!("{base}/stat"))
        .ok()
        .and_then(|s| stat_fields(s.as_bytes())?.next().map(str::to_string))
        .map(|c| {
            let meaning = match c.as_str() {
                "R" => "running",
                "S" => "sleeping",
                "D" => "disk sleep",
                "Z" => "zombie",
                "T" | "t" => "stopped",
                "X" => "dead",
                _ => "",
            };
            if meaning.is_empty() {
                c
            } else {
                format!("{c} ({meaning})")
            }
        })
        .unwrap_or_else(|| "exited".into());
    ThreadInfo { tid, name, state }
}

/// The fields of a `/proc/.../stat` line after `comm`, starting with the state: `tid (comm) state
/// ppid ...`. `comm` may hold spaces and parentheses, so the fields start after the last `)`.
fn stat_fields(stat: &[u8]) -> Option<std::str::SplitAsciiWhitespace<'_>> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    Some(
        std::str::from_utf8(&stat[close + 1..])
            .ok()?
            .split_ascii_whitespace(),
    )
}

/// The calling thread's kernel id.
pub(super) fn current_thread_id() -> u32 {
    // SAFETY: gettid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// The main thread is the thread group leader: its tid is the pid.
pub(super) fn is_main_thread() -> bool {
    // SAFETY: getpid takes no arguments, cannot fail and touches no memory of ours.
    current_thread_id() == unsafe { libc::getpid() } as u32
}

/// Whether the main thread (the thread group leader) is asleep, where that can be known.
pub(super) fn main_thread_sleeping() -> Option<bool> {
    let stat = std::fs::read("/proc/self/stat").ok()?;
    Some(stat_fields(&stat)?.next() == Some("S"))
}

/// The open file descriptors, or `None` where they cannot be listed.
pub(super) fn fds() -> Option<BTreeSet<i32>> {
    let mut out = BTreeSet::new();
    proc_dir::scan(c"/proc/self/fd", |own, name| {
        if let Ok(fd) = name.parse::<i32>() {
            if fd != own {
                out.insert(fd);
            }
        }
    })?;
    Some(out)
}

/// What one descriptor points at.
pub(super) fn fd_info(fd: i32) -> FdInfo {
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "closed".into());
    FdInfo { fd, target }
}

/// Live threads not already exiting, counted without allocating.
pub(super) fn thread_count() -> Option<usize> {
    proc_dir::count(c"/proc/self/task", |dir, name| {
        name.parse::<u32>().is_ok() && !proc_dir::thread_exiting(dir, name)
    })
}

/// Open file descriptors, the directory's own left out, counted without allocating.
pub(super) fn fd_count() -> Option<usize> {
    proc_dir::count(c"/proc/self/fd", |own, name| {
        name.parse::<i32>().is_ok_and(|fd| fd != own)
    })
}

/// Threads that are exiting (state `Z`/`X` or `PF_EXITING`) but still listed, counted without
/// allocating: while there are any, counts can still change.
pub(super) fn exiting_thread_count() -> usize {
    proc_dir::count(c"/proc/self/task", |dir, name| {
        name.parse::<u32>().is_ok() && proc_dir::thread_exiting(dir, name)
    })
    .unwrap_or(0)
}

mod proc_dir {
    //! `/proc` directories read with `opendir`/`readdir` into no heap memory: the directory's own
    //! descriptor is known (and left out of fd counts), and a thread's `stat` is read into a
    //! stack buffer, so `stats()` can count without allocating.
    use std::ffi::CStr;

    /// Calls `each` with the open directory's own descriptor and every entry name of `path` (a
    /// `/proc` directory). `None` if the directory cannot be opened.
    pub(crate) fn scan(path: &CStr, mut each: impl FnMut(i32, &str)) -> Option<()> {
        // With the feature `ffi`, `opendir`'s buffer is no_leak's own, not the C heap's.
        #[cfg(feature = "ffi")]
        let _own = crate::counting::inner::Inside::enter();
        // SAFETY: `path` is NUL-terminated. The DIR pointer is checked for null, used only until
        // `closedir`, and each dirent is read before the next `readdir`, as readdir requires.
        unsafe {
            let dir = libc::opendir(path.as_ptr());
            if dir.is_null() {
                return None;
            }
            let own = libc::dirfd(dir);
            loop {
                let ent = libc::readdir(dir);
                if ent.is_null() {
                    break;
                }
                let name = CStr::from_ptr((*ent).d_name.as_ptr());
                if let Ok(name) = name.to_str() {
                    each(own, name);
                }
            }
            libc::closedir(dir);
        }
        Some(())
    }

    /// Counts the entries of `path` whose names `keep` accepts, given the directory's own fd.
    pub(crate) fn count(path: &CStr, mut keep: impl FnMut(i32, &str) -> bool) -> Option<usize> {
        let mut n = 0;
        scan(path, |own, name| n += usize::from(keep(own, name)))?;
        Some(n)
    }

    /// The kernel's `PF_EXITING` task flag.
    const PF_EXITING: u64 = 0x4;

    /// Whether thread `tid` (an entry of the `/proc/self/task` directory open as `dir`) is exiting
    /// or gone, by its `stat`: the same rule as the census (state `Z`/`X`/`x` or `PF_EXITING`),
    /// read into a stack buffer.
    pub(crate) fn thread_exiting(dir: i32, tid: &str) -> bool {
        // "<tid>/stat\0", relative to the task directory.
        let mut path = [0u8; 32];
        let suffix = b"/stat\0";
        if tid.len() + suffix.len() > path.len() {
            return false;
        }
        path[..tid.len()].copy_from_slice(tid.as_bytes());
        path[tid.len()..tid.len() + suffix.len()].copy_from_slice(suffix);
        let mut buf = [0u8; 512];
        // SAFETY: `path` is NUL-terminated, `read` writes at most `buf.len()` bytes into `buf`, and
        // the fd opened here is closed before return. A stale `dir` only makes `openat` fail.
        let len = unsafe {
            let fd = libc::openat(dir, path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return true;
            }
            let len = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
            len
        };
        if len <= 0 {
            return true;
        }
        parse_exiting(&buf[..len as usize])
    }

    /// Fields `state ppid pgrp session tty_nr tpgid flags`: they fit well within the first 512
    /// bytes of `stat` (`comm` is at most 16).
    pub(crate) fn parse_exiting(stat: &[u8]) -> bool {
        let Some(mut fields) = super::stat_fields(stat) else {
            return false;
        };
        let state = fields.next().unwrap_or("");
        let flags: u64 = fields.nth(5).and_then(|f| f.parse().ok()).unwrap_or(0);
        matches!(state, "Z" | "X" | "x") || flags & PF_EXITING != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse() {
        let live = b"123 (a (weird) name) S 1 123 123 0 -1 4194560 100 0 0 0";
        assert!(!proc_dir::parse_exiting(live));
        let exiting = b"123 (worker) S 1 123 123 0 -1 4194564 100 0 0 0";
        assert!(proc_dir::parse_exiting(exiting));
        let zombie = b"123 (worker) Z 1 123 123 0 -1 0 100 0 0 0";
        assert!(proc_dir::parse_exiting(zombie));
    }

    #[test]
    fn a_blocked_thread_is_sleeping() {
        let (tid, tx, h) = super::super::parked_thread("census-probe");
        assert!(thread_ids().unwrap().contains(&tid));
        let info = thread_info(tid);
        assert_eq!(info.name, "census-probe");
        assert!(
            info.state.starts_with('S') || info.state.starts_with('R'),
            "{info:?}"
        );
        drop(tx);
        h.join().unwrap();
        assert!(!thread_ids().unwrap().contains(&tid));
    }
}
