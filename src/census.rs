//! The census of live OS threads and open file descriptors.
//!
//! On Linux threads are the entries of `/proc/self/task` and fds the entries of `/proc/self/fd`.
//! Elsewhere both return `None`, and reports say "not measured" rather than guess.
//!
//! Taking a census allocates (directory reads, strings), so the engine never takes one inside a
//! window whose heap it counts.

use std::collections::BTreeSet;

/// One OS thread, as seen in a census.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Kernel thread id.
    pub tid: u32,
    /// The thread's name (`comm`: the first 15 bytes of the Rust thread name).
    pub name: String,
    /// Scheduler state letter from `stat` (`R`, `S`, `D`, `Z`, ...) with its meaning.
    pub state: String,
}

/// One open file descriptor, as seen in a census.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdInfo {
    /// The descriptor number.
    pub fd: i32,
    /// What it points at: a path, `socket:[inode]`, `pipe:[inode]`, `anon_inode:[eventfd]`, ...
    pub target: String,
}

/// The kernel's `PF_EXITING` task flag: set as soon as a thread starts to exit.
#[cfg(target_os = "linux")]
const PF_EXITING: u64 = 0x4;

/// True if the thread is on its way out (or already gone). `pthread_join` returns as soon as the
/// exiting thread has released its memory, which is before the kernel removes it from
/// `/proc/self/task`: without this a thread that was joined a moment ago could still be counted.
#[cfg(target_os = "linux")]
fn exiting(tid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return true;
    };
    // "tid (comm) state ppid pgrp session tty_nr tpgid flags ...": comm may hold spaces and
    // parentheses, so count fields from the last ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    let state = fields.next().unwrap_or("");
    let flags: u64 = fields.nth(5).and_then(|f| f.parse().ok()).unwrap_or(0);
    matches!(state, "Z" | "X" | "x") || flags & PF_EXITING != 0
}

/// The ids of live threads, or `None` where threads cannot be counted. Threads already exiting
/// are not counted.
pub(crate) fn thread_ids() -> Option<BTreeSet<u32>> {
    #[cfg(target_os = "linux")]
    {
        let mut out = BTreeSet::new();
        for e in std::fs::read_dir("/proc/self/task").ok()? {
            let e = e.ok()?;
            if let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) {
                if !exiting(tid) {
                    out.insert(tid);
                }
            }
        }
        Some(out)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Name and state of one thread (best effort: a thread that exited meanwhile reads as `?`).
pub(crate) fn thread_info(tid: u32) -> ThreadInfo {
    let base = format!("/proc/self/task/{tid}");
    let name = std::fs::read_to_string(format!("{base}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "?".into());
    let state = std::fs::read_to_string(format!("{base}/stat"))
        .ok()
        .and_then(|s| {
            // "tid (comm) S ...": the comm may hold spaces and parentheses, so split at the last ')'.
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().next().map(str::to_string)
        })
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

/// Whether the main thread (the thread group leader) is asleep, where that can be known.
pub(crate) fn main_thread_sleeping() -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let rest = &stat[stat.rfind(')')? + 1..];
        Some(rest.trim_start().starts_with('S'))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The open file descriptors, or `None` where they cannot be listed.
pub(crate) fn fds() -> Option<BTreeSet<i32>> {
    #[cfg(target_os = "linux")]
    {
        // opendir/readdir directly, so that the directory's own descriptor is known and left out.
        let path = c"/proc/self/fd";
        let mut out = BTreeSet::new();
        // SAFETY: `path` is a valid NUL-terminated string. The DIR pointer is checked for null,
        // used only between opendir and closedir, and the dirent pointers readdir returns are
        // read before the next readdir call, as readdir requires.
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
                let name = std::ffi::CStr::from_ptr((*ent).d_name.as_ptr());
                if let Some(fd) = name.to_str().ok().and_then(|s| s.parse::<i32>().ok()) {
                    if fd != own {
                        out.insert(fd);
                    }
                }
            }
            libc::closedir(dir);
        }
        Some(out)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// What one descriptor points at.
pub(crate) fn fd_info(fd: i32) -> FdInfo {
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "closed".into());
    FdInfo { fd, target }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn fd_census_sees_a_new_file_and_its_path() {
        let before = fds().unwrap();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        let after = fds().unwrap();
        let new: Vec<_> = after.difference(&before).copied().collect();
        // Other tests may open files at the same time; ours is among the new ones.
        let ours: Vec<_> = new
            .iter()
            .map(|&fd| fd_info(fd))
            .filter(|i| i.target.ends_with("/status"))
            .collect();
        assert!(!ours.is_empty(), "new fds: {new:?}");
        drop(f);
    }

    #[test]
    fn thread_census_names_a_live_thread() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let h = std::thread::Builder::new()
            .name("census-probe".into())
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
                ready_tx.send(tid).unwrap();
                rx.recv().ok();
            })
            .unwrap();
        let tid = ready_rx.recv().unwrap();
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
