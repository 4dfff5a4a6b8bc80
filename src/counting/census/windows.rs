//! The census on Windows: threads from a Toolhelp32 snapshot of the system's threads, kept where
//! their owner is this process; the `fds` dimension counts the process's open handles
//! (`GetProcessHandleCount`), lists them by probing handle values (`GetHandleInformation`), and
//! names what a handle is (a file's path, a pipe, a console, or the kernel object's type).
//!
//! A thread's name is its description (`GetThreadDescription`, which Rust's `Builder::name` sets).
//! Windows gives no cheap scheduler state, so [`ThreadInfo::state`] is empty.
//!
//! Exiting threads: a thread whose exit code is no longer `STILL_ACTIVE` has ended but can still be
//! listed while a handle to it is open; it is not counted. The census's own handles (the snapshot,
//! a thread opened to read its exit code or name) are closed before the handle count is read, so
//! they are never counted.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use windows_sys::Win32::Foundation::{
    CloseHandle, GetHandleInformation, LocalFree, HANDLE, INVALID_HANDLE_VALUE, STILL_ACTIVE,
};
use windows_sys::Win32::Storage::FileSystem::{
    GetFileType, GetFinalPathNameByHandleW, FILE_NAME_NORMALIZED, FILE_TYPE_CHAR, FILE_TYPE_DISK,
    FILE_TYPE_PIPE,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetCurrentProcessId, GetCurrentThreadId, GetExitCodeThread,
    GetProcessHandleCount, GetThreadDescription, OpenThread, THREAD_QUERY_LIMITED_INFORMATION,
};

use super::{FdInfo, ThreadInfo};

/// Calls `each` with the id of every thread of this process that is still running (not exiting).
/// `None` if no snapshot could be taken. Allocates nothing on the Rust heap.
fn each_live_thread(mut each: impl FnMut(u32)) -> Option<()> {
    // SAFETY: the snapshot handle is checked and closed once; `entry` is a plain struct whose size
    // field is set before the first call, as Thread32First requires.
    unsafe {
        let snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
        if snapshot == INVALID_HANDLE_VALUE {
            return None;
        }
        let me = GetCurrentProcessId();
        let mut entry: THREADENTRY32 = std::mem::zeroed();
        entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
        let mut more = Thread32First(snapshot, &mut entry) != 0;
        while more {
            if entry.th32OwnerProcessID == me && !thread_ended(entry.th32ThreadID) {
                each(entry.th32ThreadID);
            }
            more = Thread32Next(snapshot, &mut entry) != 0;
        }
        CloseHandle(snapshot);
    }
    Some(())
}

/// A thread handle opened for reading, closed when dropped.
struct OpenedThread(HANDLE);

impl OpenedThread {
    fn open(tid: u32) -> Option<OpenedThread> {
        // SAFETY: OpenThread has no memory preconditions; a null result is checked.
        let h = unsafe { OpenThread(THREAD_QUERY_LIMITED_INFORMATION, 0, tid) };
        (!h.is_null()).then_some(OpenedThread(h))
    }

    /// Whether the thread has ended: its exit code is set.
    fn ended(&self) -> bool {
        let mut code = 0u32;
        // SAFETY: `self.0` is an open thread handle; `code` is a plain out-parameter.
        let ok = unsafe { GetExitCodeThread(self.0, &mut code) } != 0;
        !ok || code != STILL_ACTIVE as u32
    }
}

impl Drop for OpenedThread {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by `open` and is closed exactly once.
        unsafe { CloseHandle(self.0) };
    }
}

/// Whether thread `tid` has ended, or can no longer be opened.
fn thread_ended(tid: u32) -> bool {
    OpenedThread::open(tid).is_none_or(|t| t.ended())
}

pub(super) fn thread_ids() -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    each_live_thread(|tid| {
        out.insert(tid);
    })?;
    Some(out)
}

pub(super) fn thread_info(tid: u32) -> ThreadInfo {
    let name = match OpenedThread::open(tid) {
        Some(thread) if !thread.ended() => description(&thread).unwrap_or_default(),
        _ => "?".into(),
    };
    ThreadInfo {
        tid,
        name,
        state: String::new(),
    }
}

/// The thread's description (its name), if it has one.
fn description(thread: &OpenedThread) -> Option<String> {
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: on success GetThreadDescription stores a NUL-terminated wide string it allocated
    // with LocalAlloc in `text`; it is read up to its NUL, copied, and freed with LocalFree once.
    unsafe {
        if GetThreadDescription(thread.0, &mut text) < 0 || text.is_null() {
            return None;
        }
        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
        let name = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
        LocalFree(text.cast());
        Some(name)
    }
}

pub(super) fn current_thread_id() -> u32 {
    // SAFETY: GetCurrentThreadId has no preconditions.
    unsafe { GetCurrentThreadId() }
}

/// The id of the thread that ran the C runtime's initializers: the main thread. 0 until then.
static MAIN_THREAD_ID: AtomicU32 = AtomicU32::new(0);

/// Runs before `main` on the main thread, as the C runtime runs every `.CRT$XCU` entry (both the
/// MSVC and the MinGW runtime do). `#[used]` keeps it through linking; it sits in the module whose
/// [`is_main_thread`] reads `MAIN_THREAD_ID`, so the object that holds it is always linked.
#[used]
#[link_section = ".CRT$XCU"]
static RECORD_MAIN_THREAD: unsafe extern "C" fn() = record_main_thread;

unsafe extern "C" fn record_main_thread() {
    MAIN_THREAD_ID.store(current_thread_id(), Relaxed);
}

pub(super) fn is_main_thread() -> bool {
    let main = MAIN_THREAD_ID.load(Relaxed);
    main != 0 && main == current_thread_id()
}

pub(super) fn main_thread_sleeping() -> Option<bool> {
    None
}

/// The process's open handle count: `GetProcessHandleCount`. Wine 8's is a stub that answers 0,
/// which no Windows process has (its standard handles alone are three): there the process's
/// entries in the system's handle list are counted instead (see [`system_list`]).
fn handle_count() -> Option<usize> {
    let mut n = 0u32;
    // SAFETY: the current-process pseudo-handle needs no closing; `n` is a plain out-parameter.
    let ok = unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut n) } != 0;
    match (ok, n) {
        (true, 0) => system_list::own_handle_count(),
        (true, n) => Some(n as usize),
        (false, _) => None,
    }
}

mod system_list {
    //! The system's handle list (`NtQuerySystemInformation` with `SystemExtendedHandleInformation`,
    //! whose layout is the one Windows and Wine share), read into memory from the process heap
    //! directly: not through the Rust allocator, so a count allocates nothing that is counted.
    use std::ffi::c_void;

    use windows_sys::Wdk::System::SystemInformation::NtQuerySystemInformation;
    use windows_sys::Win32::Foundation::STATUS_INFO_LENGTH_MISMATCH;
    use windows_sys::Win32::System::Memory::{GetProcessHeap, HeapAlloc, HeapFree};
    use windows_sys::Win32::System::Threading::GetCurrentProcessId;

    const SYSTEM_EXTENDED_HANDLE_INFORMATION: i32 = 64;

    /// One entry of the list (`SYSTEM_HANDLE_TABLE_ENTRY_INFO_EX`).
    #[repr(C)]
    struct Entry {
        object: *mut c_void,
        process_id: usize,
        handle_value: usize,
        granted_access: u32,
        creator_back_trace_index: u16,
        object_type_index: u16,
        handle_attributes: u32,
        reserved: u32,
    }

    /// The open handles of this process in the system's list, or `None` if it cannot be read.
    pub(super) fn own_handle_count() -> Option<usize> {
        let mut size = 64 * 1024;
        for _ in 0..8 {
            let mut needed = 0u32;
            // SAFETY: the block is `size` bytes from the process heap, freed below on every path;
            // NtQuerySystemInformation writes at most `size` bytes into it. On success it begins
            // with the entry count and a reserved word, then that many entries, all within the
            // block (the call fails rather than writing a partial list).
            unsafe {
                let heap = GetProcessHeap();
                let buf = HeapAlloc(heap, 0, size);
                if buf.is_null() {
                    return None;
                }
                let status = NtQuerySystemInformation(
                    SYSTEM_EXTENDED_HANDLE_INFORMATION,
                    buf,
                    size as u32,
                    &mut needed,
                );
                let count = (status >= 0).then(|| {
                    let n = *buf.cast::<usize>();
                    let first = buf.cast::<usize>().add(2).cast::<Entry>();
                    let me = GetCurrentProcessId() as usize;
                    (0..n).filter(|&i| (*first.add(i)).process_id == me).count()
                });
                HeapFree(heap, 0, buf);
                match (count, status) {
                    (Some(n), _) => return Some(n),
                    (None, STATUS_INFO_LENGTH_MISMATCH) => {
                        size = (needed as usize).max(size * 2) + 64 * 1024;
                    }
                    (None, _) => return None,
                }
            }
        }
        None
    }
}

/// Handle values are multiples of 4 from 4 up, below the handle table's size, which grows with
/// the most handles ever open at once. The probe goes on past the last handle it finds by this
/// many values (a handle another thread opened meanwhile may lie above the ones counted), and
/// stops at this many values past the count whatever it has found (a handle the count includes
/// but no probe can see must not make it run on forever).
const PROBE_SLACK: usize = 1 << 10;
const PROBE_LIMIT: usize = 1 << 16;

/// The values of the open handles, found by asking the handle table about each value in turn.
fn probe_handles(count: usize) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    let (mut value, mut last_found) = (4usize, 0usize);
    while (out.len() < count || value / 4 < last_found / 4 + PROBE_SLACK)
        && value / 4 < count + PROBE_LIMIT
    {
        let mut flags = 0u32;
        // SAFETY: GetHandleInformation only looks the value up in the process's handle table and
        // fails for a value that is not an open handle; `flags` is a plain out-parameter.
        if unsafe { GetHandleInformation(value as HANDLE, &mut flags) } != 0 {
            out.insert(value as i32);
            last_found = value;
        }
        value += 4;
    }
    out
}

/// The open handles. Other threads open and close handles while the table is probed: the list
/// is taken again (up to 5 times) until it agrees with the count read before and after it.
pub(super) fn fds() -> Option<BTreeSet<i32>> {
    let mut found = BTreeSet::new();
    for _ in 0..5 {
        let count = handle_count()?;
        found = probe_handles(count);
        if found.len() == count && handle_count()? == count {
            break;
        }
    }
    Some(found)
}

pub(super) fn fd_info(fd: i32) -> FdInfo {
    let handle = fd as usize as HANDLE;
    let mut flags = 0u32;
    // SAFETY: as in `fds`.
    let target = if unsafe { GetHandleInformation(handle, &mut flags) } == 0 {
        "closed".into()
    } else {
        describe_handle(handle)
    };
    FdInfo { fd, target }
}

/// What an open handle is: a file's path, `pipe`, `console`, or the object's type (`Event`,
/// `Thread`, `Key`, ...).
fn describe_handle(handle: HANDLE) -> String {
    // SAFETY: `handle` is open (checked by the caller); GetFileType only queries it.
    match unsafe { GetFileType(handle) } {
        FILE_TYPE_DISK => file_path(handle).unwrap_or_else(|| "file".into()),
        FILE_TYPE_PIPE => "pipe or socket".into(),
        FILE_TYPE_CHAR => "console or character device".into(),
        _ => object_type(handle).unwrap_or_else(|| "handle".into()),
    }
}

/// The path of the file open as `handle`.
fn file_path(handle: HANDLE) -> Option<String> {
    let mut buf = [0u16; 1024];
    // SAFETY: the buffer's length in characters is passed; the function writes at most that many.
    let len = unsafe {
        GetFinalPathNameByHandleW(
            handle,
            buf.as_mut_ptr(),
            buf.len() as u32,
            FILE_NAME_NORMALIZED,
        )
    } as usize;
    (len > 0 && len < buf.len()).then(|| {
        let path = String::from_utf16_lossy(&buf[..len]);
        path.strip_prefix(r"\\?\")
            .map_or(path.clone(), str::to_string)
    })
}

/// The kernel object type of `handle` (`Event`, `Thread`, `Key`, `Semaphore`, ...), from
/// `NtQueryObject`'s documented `ObjectTypeInformation`.
fn object_type(handle: HANDLE) -> Option<String> {
    use windows_sys::Wdk::Foundation::{NtQueryObject, ObjectTypeInformation};
    use windows_sys::Win32::System::WindowsProgramming::PUBLIC_OBJECT_TYPE_INFORMATION;
    // The type name follows the structure in the same buffer: room for both, 8-byte aligned.
    let mut buf = [0u64; 128];
    let mut len = 0u32;
    // SAFETY: the buffer and its size in bytes are passed; NtQueryObject writes within it. On
    // success it holds a PUBLIC_OBJECT_TYPE_INFORMATION whose TypeName points into the buffer
    // and holds `Length` bytes of UTF-16.
    unsafe {
        let status = NtQueryObject(
            handle,
            ObjectTypeInformation,
            buf.as_mut_ptr().cast(),
            std::mem::size_of_val(&buf) as u32,
            &mut len,
        );
        if status < 0 {
            return None;
        }
        let info = &*buf.as_ptr().cast::<PUBLIC_OBJECT_TYPE_INFORMATION>();
        let name = &info.TypeName;
        if name.Buffer.is_null() || name.Length == 0 {
            return None;
        }
        let chars = std::slice::from_raw_parts(name.Buffer, usize::from(name.Length) / 2);
        Some(String::from_utf16_lossy(chars))
    }
}

pub(super) fn thread_count() -> Option<usize> {
    let mut n = 0;
    each_live_thread(|_| n += 1)?;
    Some(n)
}

pub(super) fn fd_count() -> Option<usize> {
    handle_count()
}

/// Threads that have ended but are still listed are left out of every count, and Windows frees a
/// thread's stack and thread-locals before its exit code is set: nothing is left to change.
pub(super) fn exiting_thread_count() -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_thread_was_recorded_before_main() {
        assert_ne!(MAIN_THREAD_ID.load(Relaxed), 0);
        assert_ne!(MAIN_THREAD_ID.load(Relaxed), current_thread_id());
    }

    #[test]
    fn an_event_handle_is_named_by_its_type() {
        use windows_sys::Win32::System::Threading::CreateEventW;
        // SAFETY: a plain unnamed event, closed below.
        let event = unsafe { CreateEventW(std::ptr::null(), 0, 0, std::ptr::null()) };
        assert!(!event.is_null());
        assert!(fds().unwrap().contains(&(event as i32)));
        assert_eq!(fd_info(event as i32).target, "Event");
        // SAFETY: opened above, closed once.
        unsafe { CloseHandle(event) };
        assert_eq!(fd_info(event as i32).target, "closed");
    }

    #[test]
    fn an_ended_thread_is_not_counted_while_its_handle_is_open() {
        use std::os::windows::io::AsRawHandle;
        let h = std::thread::spawn(current_thread_id);
        // Wait until it has ended without joining: the JoinHandle keeps its handle open.
        let raw = h.as_raw_handle() as HANDLE;
        let mut code = STILL_ACTIVE as u32;
        while code == STILL_ACTIVE as u32 {
            std::thread::yield_now();
            // SAFETY: the JoinHandle owns the open handle for the whole loop.
            unsafe { GetExitCodeThread(raw, &mut code) };
        }
        let tid = {
            // The thread's id, from the std handle.
            use windows_sys::Win32::System::Threading::GetThreadId;
            // SAFETY: as above.
            unsafe { GetThreadId(raw) }
        };
        assert!(!thread_ids().unwrap().contains(&tid));
        assert_eq!(h.join().unwrap(), tid);
    }
}
