//! Where a program can hold memory from: its statics (the writable segments of every loaded
//! object) and each live thread's stack and thread-locals.
//!
//! How a thread's stack is found (Linux):
//! - The calling thread: from the stack pointer at the start of the scan up to the top of its
//!   stack block (`pthread_getattr_np`). glibc puts a thread's static thread-local block and its
//!   descriptor at the top of that block, so its thread-locals are covered.
//! - Every other thread: `/proc/self/task/<tid>/syscall` gives the stack pointer of a thread
//!   blocked in the kernel; the mapping that contains it (`/proc/self/maps`) is its stack block.
//!   A thread that keeps running (never blocked while it is looked at) has no readable stack
//!   pointer: it is listed as unreadable, and what only it might hold is "not determined".
//! - The main thread's thread-locals live outside its stack (the loader allocates them): they are
//!   not scanned. Under libtest the main thread is the harness; tests run on threads of their own.

use std::collections::BTreeMap;

/// What a root region is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Root {
    /// A writable segment of a loaded object: statics and globals.
    Static,
    /// The stack and thread-locals of the thread at this index of [`Roots::threads`].
    Thread(usize),
}

/// A region to read words from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) root: Root,
}

/// Every root region found, and the threads they belong to.
#[derive(Debug, Default)]
pub(crate) struct Roots {
    pub(crate) regions: Vec<Region>,
    /// Thread names, by [`Root::Thread`] index.
    pub(crate) threads: Vec<String>,
    /// Threads whose stack could not be located, by name.
    pub(crate) unreadable: Vec<String>,
}

/// Finds the roots. `entry_sp` is an address in the calling thread's frame at the start of the
/// scan: the calling thread's stack is read from there up (deeper frames are the scan's own, or
/// stale ones of calls already returned).
pub(crate) fn gather(entry_sp: usize) -> Roots {
    let mut roots = Roots::default();
    for (start, len) in static_segments() {
        roots.regions.push(Region {
            start,
            len,
            root: Root::Static,
        });
    }
    let me = current_thread_name();
    if let Some(top) = own_stack_top() {
        roots.threads.push(me);
        roots.regions.push(Region {
            start: entry_sp,
            len: top.saturating_sub(entry_sp),
            root: Root::Thread(0),
        });
    } else {
        roots.unreadable.push(me);
    }
    other_threads(&mut roots);
    roots
}

fn current_thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string()
}

/// The writable `PT_LOAD` segments of every loaded object: `.data`, `.bss` and friends.
#[cfg(target_os = "linux")]
fn static_segments() -> Vec<(usize, usize)> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `&mut Vec` passed to `dl_iterate_phdr` below, which outlives the
        // call; `info` and its `dlpi_phnum` program headers are valid for this callback, as
        // `dl_iterate_phdr` documents.
        unsafe {
            let out = &mut *data.cast::<Vec<(usize, usize)>>();
            let info = &*info;
            for i in 0..usize::from(info.dlpi_phnum) {
                let ph = &*info.dlpi_phdr.add(i);
                if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_W != 0 {
                    let start = (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize);
                    out.push((start, ph.p_memsz as usize));
                }
            }
        }
        0
    }
    let mut out: Vec<(usize, usize)> = Vec::new();
    // SAFETY: `each` only reads the headers it is given and writes to `out`, passed as `data`.
    unsafe { libc::dl_iterate_phdr(Some(each), std::ptr::addr_of_mut!(out).cast()) };
    out
}

/// The load address of the executable (`dlpi_addr` of the first object `dl_iterate_phdr`
/// reports), which symbol-table addresses are relative to.
#[cfg(target_os = "linux")]
pub(crate) fn exe_bias() -> usize {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `&mut usize` passed below; `info` is valid for this callback.
        unsafe { *data.cast::<usize>() = (*info).dlpi_addr as usize };
        1 // stop after the first object: the executable
    }
    let mut bias = 0usize;
    // SAFETY: `first` writes only to `bias`, passed as `data`.
    unsafe { libc::dl_iterate_phdr(Some(first), std::ptr::addr_of_mut!(bias).cast()) };
    bias
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn exe_bias() -> usize {
    0
}

#[cfg(not(target_os = "linux"))]
fn static_segments() -> Vec<(usize, usize)> {
    Vec::new()
}

/// The top (highest address, exclusive) of the calling thread's stack block.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn own_stack_top() -> Option<usize> {
    // SAFETY: `attr` is initialised by `pthread_getattr_np` before it is read, and destroyed
    // once; `addr` and `size` are plain out-parameters.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        ok.then(|| addr as usize + size)
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn own_stack_top() -> Option<usize> {
    None
}

/// A mapping of `/proc/self/maps`: (start, end, readable and writable).
type Mappings = BTreeMap<usize, (usize, bool)>;

fn mappings() -> Mappings {
    let text = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut out = Mappings::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
            out.insert(a, (b, perms.starts_with("rw")));
        }
    }
    out
}

/// The writable mapping that contains `addr`.
fn mapping_of(maps: &Mappings, addr: usize) -> Option<(usize, usize)> {
    let (&start, &(end, rw)) = maps.range(..=addr).next_back()?;
    (addr < end && rw).then_some((start, end))
}

/// Bytes below a thread's stack pointer that a leaf function may use without moving it.
const RED_ZONE: usize = 128;

/// Every thread but the calling one, from `/proc/self/task`.
fn other_threads(roots: &mut Roots) {
    let me = crate::counting::census::current_thread_id();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    let mut tids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&t| t != me)
        .collect();
    tids.sort_unstable();
    let maps = mappings();
    for tid in tids {
        let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
            .map(|s| s.trim_end().to_string())
            .unwrap_or_else(|_| format!("tid {tid}"));
        let stack = blocked_stack_pointer(tid).and_then(|sp| {
            let (lo, hi) = mapping_of(&maps, sp)?;
            Some((sp.saturating_sub(RED_ZONE).max(lo), hi))
        });
        match stack {
            Some((lo, hi)) => {
                roots.regions.push(Region {
                    start: lo,
                    len: hi - lo,
                    root: Root::Thread(roots.threads.len()),
                });
                roots.threads.push(name);
            }
            // Gone meanwhile: it holds nothing any more.
            None if !std::path::Path::new(&format!("/proc/self/task/{tid}")).exists() => {}
            None => roots.unreadable.push(name),
        }
    }
}

/// The stack pointer of thread `tid` while it is blocked in the kernel, from
/// `/proc/self/task/<tid>/syscall` (`<nr> <args...> <sp> <pc>`, or `running`). A thread caught
/// running is looked at again a few times.
fn blocked_stack_pointer(tid: u32) -> Option<usize> {
    let path = format!("/proc/self/task/{tid}/syscall");
    // About 150 ms in all: on a loaded machine a busy thread may take that long to block once.
    for attempt in 0..50 {
        let text = std::fs::read_to_string(&path).ok()?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() >= 3 {
            let sp = fields[fields.len() - 2].trim_start_matches("0x");
            return usize::from_str_radix(sp, 16).ok();
        }
        std::thread::sleep(std::time::Duration::from_micros(200 << attempt.min(4)));
    }
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    static MARK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(7);

    #[test]
    fn statics_are_in_a_static_segment() {
        let addr = std::ptr::addr_of!(MARK) as usize;
        let segs = static_segments();
        assert!(
            segs.iter().any(|&(s, l)| (s..s + l).contains(&addr)),
            "{addr:#x} not in {segs:x?}"
        );
    }

    #[test]
    fn a_blocked_thread_has_its_stack_found() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<usize>();
        let t = std::thread::Builder::new()
            .name("retention-probe".into())
            .spawn(move || {
                let local = 0u64;
                ready_tx
                    .send(std::hint::black_box(&local) as *const u64 as usize)
                    .unwrap();
                rx.recv().unwrap();
            })
            .unwrap();
        let local = ready_rx.recv().unwrap();
        let mut here = 0u8;
        let roots = gather(std::hint::black_box(&mut here) as *mut u8 as usize);
        tx.send(()).unwrap();
        t.join().unwrap();
        let i = roots
            .threads
            .iter()
            .position(|n| n == "retention-probe")
            .unwrap_or_else(|| panic!("{roots:?}"));
        let region = roots
            .regions
            .iter()
            .find(|r| r.root == Root::Thread(i))
            .unwrap();
        assert!(
            (region.start..region.start + region.len).contains(&local),
            "{local:#x} not in {region:x?}"
        );
    }
}
