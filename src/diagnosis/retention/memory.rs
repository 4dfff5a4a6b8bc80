//! Reading this process's memory without trusting it: the words of regions that another thread
//! may free, unmap or write while they are read.
//!
//! Every read goes through `process_vm_readv` on this process: the kernel copies the bytes, and
//! memory unmapped under it (a big block freed and returned to the system, the stack of a thread
//! that just exited) makes the call fail with `EFAULT` instead of faulting. No reference to the
//! memory read is ever made, so a concurrent write is a race between the kernel's copy and that
//! write, never undefined behaviour here; a word being written during the copy can come out torn.

/// A copy of a region's words, as they were when read. `words[i]` was at `start + 8 * i`.
pub(crate) struct Copy {
    pub(crate) start: usize,
    pub(crate) words: Vec<usize>,
}

const WORD: usize = std::mem::size_of::<usize>();

/// Why this build can never scan memory, or `None` where it can (Linux). Checked before a
/// retention run is started, so no OS pays for a run whose scan could not work.
pub(crate) fn unsupported_here() -> Option<&'static str> {
    if cfg!(target_os = "linux") {
        None
    } else if cfg!(target_os = "macos") {
        Some("the retention scan runs on Linux only, not on macOS")
    } else if cfg!(windows) {
        Some("the retention scan runs on Linux only, not on Windows")
    } else {
        Some("the retention scan runs on Linux only")
    }
}

/// Whether this system lets a process read its own memory with `process_vm_readv` (a seccomp
/// filter can forbid it).
pub(crate) fn available() -> bool {
    let probe: usize = 0x5eed;
    let mut out = [0usize; 1];
    read_into(std::ptr::addr_of!(probe) as usize, &mut out) && out[0] == 0x5eed
}

/// Copies the words of `[start, start + len)` (rounded inward to whole aligned words). `None`
/// if the region (or its first page) could not be read: it was unmapped.
pub(crate) fn copy(start: usize, len: usize) -> Option<Copy> {
    let first = start.checked_add(WORD - 1)? / WORD * WORD;
    let end = start.checked_add(len)? / WORD * WORD;
    if end <= first {
        return Some(Copy {
            start: first,
            words: Vec::new(),
        });
    }
    let mut words = vec![0usize; (end - first) / WORD];
    read_into(first, &mut words).then_some(Copy {
        start: first,
        words,
    })
}

/// Reads `out.len()` words at `addr` into `out`; the words past a short read stay zero. False if
/// nothing could be read.
#[cfg(target_os = "linux")]
fn read_into(addr: usize, out: &mut [usize]) -> bool {
    let len = std::mem::size_of_val(out);
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: `local` describes `out`, a buffer we own and may write `len` bytes to; the kernel
    // writes only there. `remote` is only read, by the kernel, which checks every page and fails
    // with EFAULT on memory that is not mapped: nothing here dereferences `addr`.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    n > 0
}

#[cfg(not(target_os = "linux"))]
fn read_into(_addr: usize, _out: &mut [usize]) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn copies_words_of_live_memory() {
        assert!(available());
        let data: Vec<usize> = (0..100).collect();
        let c = copy(data.as_ptr() as usize, 100 * WORD).unwrap();
        assert_eq!(c.words, data);
        // An unaligned start is rounded up to the next word.
        let c = copy(data.as_ptr() as usize + 3, 10 * WORD).unwrap();
        assert_eq!(c.words, data[1..10]);
    }

    #[test]
    fn unreadable_memory_reads_as_none_not_a_fault() {
        // A page mapped with no access stands for memory unmapped under a read (an unmapped
        // address could be mapped again by another thread before the read).
        // SAFETY: an anonymous private mapping of one page with no access, unmapped at the end;
        // it is only ever read by the kernel, through `copy`.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        assert!(copy(p as usize, 4096).is_none());
        // SAFETY: the mapping made above, of that length.
        assert_eq!(unsafe { libc::munmap(p, 4096) }, 0);
        assert!(copy(8, 64).is_none(), "the null page");
    }
}
