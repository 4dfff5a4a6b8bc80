//! The census on macOS: threads are the task's Mach threads (`task_threads`), a thread's id the
//! low 32 bits of its 64-bit thread id (`THREAD_IDENTIFIER_INFO`, the id `pthread_threadid_np`
//! gives), its name and state what `proc_pidinfo(PROC_PIDTHREADINFO)` reports. Descriptors are
//! `proc_pidinfo(PROC_PIDLISTFDS)`'s list; a descriptor's target is its path (`F_GETPATH`) or the
//! kind of object the list names (`socket`, `pipe`, `kqueue`, ...).
//!
//! Exiting threads: once a thread terminates, the kernel answers `KERN_TERMINATED` to
//! `thread_info` on it, though `task_threads` still lists it until it is reaped; a thread in that
//! state, or whose basic info says `TH_STATE_HALTED`, is exiting and not counted.
//!
//! The census opens no descriptor of its own (`proc_pidinfo` and `fcntl` take none), so there is
//! none to leave out. The thread ports and the array `task_threads` returns are released on every
//! path (`TaskThreads`'s `Drop`).
//!
//! Allocation: `task_threads`'s array is memory the kernel maps into the task (`vm_allocate`d),
//! not the Rust heap, and the descriptor list is read into a stack buffer of 1024 entries; only a
//! process whose descriptor table outgrows that reads it into a heap `Vec`, freed before the
//! function returns, so [`fd_count`] allocates nothing on the Rust heap unless the process has a
//! thousand-odd descriptors.

use std::collections::BTreeSet;
use std::ffi::c_int;
use std::mem::{size_of, size_of_val, MaybeUninit};

use libc::{mach_msg_type_number_t, proc_fdinfo, proc_threadinfo, thread_act_t};
use mach2::mach_port::mach_port_deallocate;
use mach2::traps::mach_task_self;

use super::{FdInfo, ThreadInfo};

/// The task's threads, as the send rights and the array `task_threads` returned; both are
/// released when dropped.
struct TaskThreads {
    list: libc::thread_act_array_t,
    count: mach_msg_type_number_t,
}

impl TaskThreads {
    /// The threads of this task, or `None` if the kernel refused to list them.
    fn new() -> Option<TaskThreads> {
        let mut list: libc::thread_act_array_t = std::ptr::null_mut();
        let mut count: mach_msg_type_number_t = 0;
        // SAFETY: `list` and `count` are plain out-parameters. On success the kernel has mapped an
        // array of `count` thread send rights into the task; the guard owns both from here on and
        // releases them exactly once, in `Drop`.
        let kr = unsafe { libc::task_threads(mach_task_self(), &mut list, &mut count) };
        (kr == libc::KERN_SUCCESS).then_some(TaskThreads { list, count })
    }

    /// The thread ports.
    fn ports(&self) -> &[thread_act_t] {
        if self.list.is_null() {
            return &[];
        }
        // SAFETY: `task_threads` returned `count` ports at `list`, which stays mapped until `Drop`.
        unsafe { std::slice::from_raw_parts(self.list, self.count as usize) }
    }
}

impl Drop for TaskThreads {
    fn drop(&mut self) {
        // SAFETY: each port is a send right `task_threads` gave this task, released once here; the
        // array is the region the kernel mapped for it (`count` ports long), unmapped once, after
        // the last read of it.
        unsafe {
            let task = mach_task_self();
            for &port in self.ports() {
                mach_port_deallocate(task, port);
            }
            if !self.list.is_null() {
                libc::vm_deallocate(
                    task,
                    self.list as libc::vm_address_t,
                    self.count as usize * size_of::<thread_act_t>(),
                );
            }
        }
    }
}

/// One `thread_info` flavor of the thread behind `port`; `None` if the call fails (the thread is
/// terminating or gone: `KERN_TERMINATED`).
///
/// # Safety
/// `T` must be the structure of `flavor`, made of integers only, and `count` its size in
/// `integer_t`s (the flavor's `*_COUNT`).
unsafe fn mach_thread_info<T>(
    port: thread_act_t,
    flavor: c_int,
    count: mach_msg_type_number_t,
) -> Option<T> {
    let mut info = MaybeUninit::<T>::zeroed();
    let mut count = count;
    // SAFETY: `info` has room for `count` integers of flavor `flavor` (the caller's promise); the
    // kernel writes at most that many. All-zero is a valid `T`, so it is initialized either way.
    unsafe {
        let kr = libc::thread_info(
            port,
            flavor as libc::thread_flavor_t,
            info.as_mut_ptr().cast(),
            &mut count,
        );
        (kr == libc::KERN_SUCCESS).then(|| info.assume_init())
    }
}

/// The thread's 64-bit id and its pthread handle (`THREAD_IDENTIFIER_INFO`).
fn identifier_info(port: thread_act_t) -> Option<libc::thread_identifier_info> {
    // SAFETY: THREAD_IDENTIFIER_INFO fills a `thread_identifier_info` (three u64s) of
    // THREAD_IDENTIFIER_INFO_COUNT integers.
    unsafe {
        mach_thread_info(
            port,
            libc::THREAD_IDENTIFIER_INFO,
            libc::THREAD_IDENTIFIER_INFO_COUNT,
        )
    }
}

/// Whether the thread behind `port` is exiting: `thread_info` fails on it (it is terminating) or
/// its run state is `TH_STATE_HALTED`.
fn exiting(port: thread_act_t) -> bool {
    // SAFETY: THREAD_BASIC_INFO fills a `thread_basic_info` (integers only) of
    // THREAD_BASIC_INFO_COUNT integers.
    let basic: Option<libc::thread_basic_info> =
        unsafe { mach_thread_info(port, libc::THREAD_BASIC_INFO, libc::THREAD_BASIC_INFO_COUNT) };
    basic.is_none_or(|b| b.run_state == libc::TH_STATE_HALTED)
}

/// The census's id of the thread behind `port` (the low 32 bits of its 64-bit thread id), or
/// `None` if it is exiting or gone.
fn live_thread_id(port: thread_act_t) -> Option<u32> {
    if exiting(port) {
        return None;
    }
    identifier_info(port).map(|i| i.thread_id as u32)
}

/// The ids of live threads, or `None` where threads cannot be counted. Threads already exiting
/// are not counted. An id is the low 32 bits of the thread's 64-bit id: thread ids are handed out
/// in increasing order system-wide, so two live threads of one process share the low 32 bits only
/// after some 4 billion threads were created on the machine.
pub(super) fn thread_ids() -> Option<BTreeSet<u32>> {
    let threads = TaskThreads::new()?;
    Some(
        threads
            .ports()
            .iter()
            .filter_map(|&port| live_thread_id(port))
            .collect(),
    )
}

/// Name and state of one thread (best effort: a thread that exited meanwhile reads as `?`, state
/// `exited`). The thread is found again by its id among the task's threads; its name (the pthread
/// name) and run state come from `proc_pidinfo(PROC_PIDTHREADINFO)`, which takes the thread's
/// pthread handle (`thread_identifier_info::thread_handle`).
pub(super) fn thread_info(tid: u32) -> ThreadInfo {
    let handle = TaskThreads::new().and_then(|threads| {
        threads.ports().iter().find_map(|&port| {
            let ident = identifier_info(port)?;
            (ident.thread_id as u32 == tid).then_some(ident.thread_handle)
        })
    });
    match handle.and_then(proc_thread_info) {
        Some(info) => ThreadInfo {
            tid,
            name: c_name(&info.pth_name),
            state: run_state_name(info.pth_run_state).into(),
        },
        None => ThreadInfo {
            tid,
            name: "?".into(),
            state: "exited".into(),
        },
    }
}

/// `proc_pidinfo(PROC_PIDTHREADINFO)` of the thread whose pthread handle is `handle`.
fn proc_thread_info(handle: u64) -> Option<proc_threadinfo> {
    let mut info = MaybeUninit::<proc_threadinfo>::zeroed();
    let size = size_of::<proc_threadinfo>() as c_int;
    // SAFETY: `info` has room for `size` bytes and proc_pidinfo writes at most that many; it
    // returns `size` only once it filled the whole structure. All-zero is a valid
    // `proc_threadinfo` (integers and a char array), so it is initialized either way.
    unsafe {
        let got = libc::proc_pidinfo(
            libc::getpid(),
            libc::PROC_PIDTHREADINFO,
            handle,
            info.as_mut_ptr().cast(),
            size,
        );
        (got == size).then(|| info.assume_init())
    }
}

/// A fixed-size C string (NUL-terminated unless it fills the array) as a `String`.
fn c_name(name: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The Mach run state (`TH_STATE_*`) as a word; empty if unknown.
fn run_state_name(state: c_int) -> &'static str {
    match state {
        libc::TH_STATE_RUNNING => "running",
        libc::TH_STATE_STOPPED => "stopped",
        libc::TH_STATE_WAITING => "waiting",
        libc::TH_STATE_UNINTERRUPTIBLE => "uninterruptible",
        libc::TH_STATE_HALTED => "halted",
        _ => "",
    }
}

/// The calling thread's id: the low 32 bits of its 64-bit thread id, as [`thread_ids`] lists it.
pub(super) fn current_thread_id() -> u32 {
    let mut id = 0u64;
    // SAFETY: a null (0) pthread_t asks for the calling thread's id; `id` is a plain
    // out-parameter. The call cannot fail for the calling thread.
    unsafe { libc::pthread_threadid_np(0, &mut id) };
    id as u32
}

/// Whether the calling thread is the main thread (`pthread_main_np`, which reads a flag of the
/// thread's own and allocates nothing).
pub(super) fn is_main_thread() -> bool {
    // SAFETY: pthread_main_np takes no arguments and cannot fail.
    unsafe { libc::pthread_main_np() != 0 }
}

/// Not known on macOS: no documented call names the main thread from another thread.
pub(super) fn main_thread_sleeping() -> Option<bool> {
    None
}

/// The open file descriptors, or `None` where they cannot be listed.
pub(super) fn fds() -> Option<BTreeSet<i32>> {
    with_fd_list(|list| list.iter().map(|f| f.proc_fd).collect())
}

/// What one descriptor points at: the path of a vnode (a file, a directory, a device under
/// `/dev`), else the kind of object the descriptor list names (`socket`, `pipe`, `kqueue`, ...);
/// `closed` if it is not open.
pub(super) fn fd_info(fd: i32) -> FdInfo {
    let target = match path_of(fd) {
        Some(path) => path,
        None => {
            let kind = with_fd_list(|list| {
                list.iter()
                    .find(|f| f.proc_fd == fd)
                    .map(|f| fd_kind(f.proc_fdtype))
            });
            match kind {
                Some(Some(kind)) => kind.into(),
                Some(None) => "closed".into(),
                None => "?".into(),
            }
        }
    };
    FdInfo { fd, target }
}

/// The path of the vnode `fd` points at (`fcntl(F_GETPATH)`); `None` for anything else (the call
/// fails with `EBADF` for sockets, pipes, kqueues and closed descriptors).
fn path_of(fd: i32) -> Option<String> {
    let mut buf = [0u8; libc::MAXPATHLEN as usize];
    // SAFETY: F_GETPATH writes a NUL-terminated path of at most MAXPATHLEN bytes into its
    // argument, and `buf` is MAXPATHLEN bytes long.
    let r = unsafe { libc::fcntl(fd, libc::F_GETPATH, buf.as_mut_ptr()) };
    if r == -1 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0)?;
    (len > 0).then(|| String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// The kind of object a `proc_fdinfo::proc_fdtype` names. (By `fstat` a kqueue would read as a
/// FIFO: the kernel gives it `S_IFIFO`.)
fn fd_kind(fdtype: u32) -> &'static str {
    match fdtype as c_int {
        libc::PROX_FDTYPE_VNODE => "vnode",
        libc::PROX_FDTYPE_SOCKET => "socket",
        libc::PROX_FDTYPE_PSHM => "posix shared memory",
        libc::PROX_FDTYPE_PSEM => "posix semaphore",
        libc::PROX_FDTYPE_KQUEUE => "kqueue",
        libc::PROX_FDTYPE_PIPE => "pipe",
        libc::PROX_FDTYPE_FSEVENTS => "fsevents",
        libc::PROX_FDTYPE_NETPOLICY => "netpolicy",
        libc::PROX_FDTYPE_CHANNEL => "channel",
        libc::PROX_FDTYPE_NEXUS => "nexus",
        _ => "unknown",
    }
}

/// Live threads not already exiting, counted without allocating: the same rule as
/// [`thread_ids`], so the two agree.
pub(super) fn thread_count() -> Option<usize> {
    let threads = TaskThreads::new()?;
    Some(
        threads
            .ports()
            .iter()
            .filter(|&&port| live_thread_id(port).is_some())
            .count(),
    )
}

/// Open file descriptors, counted without allocating while the descriptor table has at most
/// 1004 slots (the list's buffer then fits on the stack; see the module's notes). The census has
/// none of its own to leave out.
pub(super) fn fd_count() -> Option<usize> {
    with_fd_list(|list| list.len())
}

/// Threads that are exiting (terminating, or halted) but still listed, counted without
/// allocating: while there are any, counts can still change.
pub(super) fn exiting_thread_count() -> usize {
    TaskThreads::new().map_or(0, |threads| {
        threads
            .ports()
            .iter()
            .filter(|&&port| exiting(port))
            .count()
    })
}

/// How many `proc_fdinfo` entries are read into the stack before the heap is used.
const STACK_FDS: usize = 1024;

/// An unused entry of a descriptor list buffer.
const NO_FD: proc_fdinfo = proc_fdinfo {
    proc_fd: -1,
    proc_fdtype: 0,
};

/// Calls `f` with the process's open descriptors (`proc_pidinfo(PROC_PIDLISTFDS)`); `None` if
/// they cannot be listed.
///
/// A call with a null buffer gives the bytes the list needs (the descriptor table's size plus
/// room for 20 more). The buffer must have that room, not just room for the open descriptors:
/// older kernels look only at table slots below the buffer's length. The list is read into a stack
/// buffer when it fits, else into a heap `Vec` freed before returning; a list that fills its
/// buffer may have been cut short (the table grew meanwhile), so it is read again, sized anew.
fn with_fd_list<R>(f: impl FnOnce(&[proc_fdinfo]) -> R) -> Option<R> {
    // SAFETY: getpid takes no arguments and cannot fail.
    let pid = unsafe { libc::getpid() };
    let mut stack = [NO_FD; STACK_FDS];
    let mut heap = Vec::new();
    for _ in 0..4 {
        // SAFETY: with a null buffer of size 0 proc_pidinfo writes nothing; it returns the bytes
        // needed, or 0 on failure.
        let needed =
            unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDLISTFDS, 0, std::ptr::null_mut(), 0) };
        let entries = usize::try_from(needed).ok().filter(|&n| n > 0)? / size_of::<proc_fdinfo>();
        let buf: &mut [proc_fdinfo] = if entries <= STACK_FDS {
            &mut stack
        } else {
            heap.resize(entries, NO_FD);
            &mut heap
        };
        let n = list_fds(pid, buf)?;
        if n < buf.len() {
            return Some(f(&buf[..n]));
        }
    }
    None
}

/// Reads the open descriptors into `buf`; how many entries were filled (`buf.len()` means the list
/// may be cut short). `None` if the call failed.
fn list_fds(pid: c_int, buf: &mut [proc_fdinfo]) -> Option<usize> {
    let bytes = c_int::try_from(size_of_val(buf)).ok()?;
    // SAFETY: `buf` has room for `bytes` bytes and proc_pidinfo writes at most that many, as whole
    // `proc_fdinfo` entries; it returns the bytes written. (0 is also what a failure returns, and
    // reads as no descriptors; the failures that matter for our own pid, no permission or no such
    // process, fail the sizing call first.)
    let got = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDLISTFDS,
            0,
            buf.as_mut_ptr().cast(),
            bytes,
        )
    };
    usize::try_from(got)
        .ok()
        .map(|b| (b / size_of::<proc_fdinfo>()).min(buf.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Retries `check` for up to two seconds; whether it ever held.
    fn eventually(mut check: impl FnMut() -> bool) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn a_blocked_thread_is_waiting_and_exited_after_join() {
        let (tid, tx, h) = super::super::parked_thread("census-waiter");
        assert!(
            eventually(|| thread_info(tid).state == "waiting"),
            "{:?}",
            thread_info(tid)
        );
        assert_eq!(thread_info(tid).name, "census-waiter");
        drop(tx);
        h.join().unwrap();
        assert!(
            eventually(|| thread_info(tid).state == "exited"),
            "{:?}",
            thread_info(tid)
        );
        assert_eq!(thread_info(tid).name, "?");
    }

    #[test]
    fn the_calling_thread_is_running_under_its_name() {
        let info = thread_info(current_thread_id());
        assert_eq!(info.state, "running");
        // libtest names a test's thread after the test; macOS keeps up to 63 bytes of a name.
        let name = std::thread::current().name().unwrap_or("").to_string();
        assert!(
            !info.name.is_empty() && name.starts_with(&info.name),
            "{info:?} vs {name:?}"
        );
    }

    #[test]
    fn thread_count_agrees_with_thread_ids() {
        // Other tests start and end threads meanwhile: retry until two readings agree.
        assert!(eventually(|| {
            thread_count() == thread_ids().map(|t| t.len())
        }));
        exiting_thread_count();
    }

    #[test]
    fn pipe_ends_read_as_pipes_and_closed_once_closed() {
        let mut ends = [0; 2];
        // SAFETY: `ends` has room for the two descriptors pipe returns.
        assert_eq!(unsafe { libc::pipe(ends.as_mut_ptr()) }, 0);
        let listed = fds().unwrap();
        for fd in ends {
            assert!(listed.contains(&fd), "{fd} not in {listed:?}");
            assert_eq!(fd_info(fd).target, "pipe");
        }
        // A copy at 200 or above (below macOS's default limit of 256), where no other test's
        // descriptor lands, to see it closed. (The table then has some 400 slots: still within the
        // stack buffer, so the allocation-free counts stay so.)
        // SAFETY: F_DUPFD duplicates an open descriptor; every descriptor here is closed once.
        let high = unsafe { libc::fcntl(ends[0], libc::F_DUPFD, 200) };
        assert!(high >= 200, "F_DUPFD failed");
        assert_eq!(fd_info(high).target, "pipe");
        // SAFETY: see above.
        unsafe {
            libc::close(high);
            libc::close(ends[0]);
            libc::close(ends[1]);
        }
        assert_eq!(fd_info(high).target, "closed");
    }

    #[test]
    fn a_socket_reads_as_socket_and_a_device_by_its_path() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        assert_eq!(fd_info(sock.as_raw_fd()).target, "socket");
        let null = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(fd_info(null.as_raw_fd()).target, "/dev/null");
    }

    #[test]
    fn the_standard_descriptors_are_listed_when_open() {
        let listed = fds().unwrap();
        for fd in 0..3 {
            // SAFETY: F_GETFD only reads the descriptor's flags.
            let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
            assert_eq!(listed.contains(&fd), open, "fd {fd}");
        }
    }

    #[test]
    fn names_and_states_read_plainly() {
        let mut name = [0 as libc::c_char; libc::MAXTHREADNAMESIZE];
        for (i, b) in b"worker".iter().enumerate() {
            name[i] = *b as libc::c_char;
        }
        assert_eq!(c_name(&name), "worker");
        assert_eq!(run_state_name(libc::TH_STATE_WAITING), "waiting");
        assert_eq!(run_state_name(0), "");
        assert_eq!(fd_kind(libc::PROX_FDTYPE_KQUEUE as u32), "kqueue");
    }
}
