//! The C heap (cargo feature `ffi`): `malloc` and its family, called by C code or by Rust code
//! through libc, counted in the `heap` dimension like a Rust allocation, in the calling thread's
//! slot, marked as C heap for the capture of allocation sites.
//!
//! On Linux with glibc, `interpose` defines the malloc family in the test binary and forwards to
//! glibc's own implementation (`glibc`). No double counting: `CountingAlloc<System>` calls glibc's
//! `__libc_*` functions directly (no interposer sees the Rust heap), any other wrapped allocator
//! runs under `inner::Inside` (the interposers skip what it does), and no_leak's own storage
//! comes from [`glibc::Untracked`]. Elsewhere nothing is interposed and [`not_measured`] says why.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) mod glibc;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod interpose;

/// Links the interposers into the binary (see `interpose::our_malloc`); called once per thread,
/// on the allocator's cold path.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[inline]
pub(crate) fn link() {
    interpose::our_malloc();
}

use std::sync::OnceLock;

/// Why the C heap is not measured in this process, or `None` when it is. Decided once, at the
/// first check (it asks the dynamic linker).
pub(crate) fn not_measured() -> Option<&'static str> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(decide).as_deref()
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn decide() -> Option<String> {
    Some("the feature `ffi` counts it only on Linux with glibc".into())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn decide() -> Option<String> {
    verdict(resolve("malloc")?, interpose::our_malloc())
}

/// The note for `malloc` resolved at `resolved` when ours is at `ours`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn verdict(resolved: usize, ours: usize) -> Option<String> {
    if resolved == ours {
        return None;
    }
    Some(format!(
        "`malloc` resolves to {} ({resolved:#x}), not to no_leak's: another malloc replacement \
         (LD_PRELOAD, or a library loaded before the test binary's symbols) takes the calls",
        crate::loader::object_path(resolved)
            .map_or("an unknown object".into(), |path| format!("`{path}`"))
    ))
}

/// The address the dynamic linker gives `name` in the global scope.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn resolve(name: &str) -> Option<usize> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT searches the global scope; the result is
    // only compared as a number.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p as usize)
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;
    use std::ffi::c_void;

    /// glibc's own `malloc_usable_size`, not ours.
    fn real_usable_size() -> unsafe extern "C" fn(*mut c_void) -> usize {
        // SAFETY: the symbol name and version are NUL-terminated; the result is checked for null
        // and is glibc's `size_t malloc_usable_size(void *)`.
        unsafe {
            let p = libc::dlvsym(
                libc::RTLD_NEXT,
                c"malloc_usable_size".as_ptr(),
                c"GLIBC_2.2.5".as_ptr(),
            );
            assert!(!p.is_null(), "glibc's malloc_usable_size");
            std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*mut c_void) -> usize>(p)
        }
    }

    /// The two sizes read from the chunk header: the usable size is glibc's, and the chunk is the
    /// usable size and its header (one word, or two for a mapped chunk).
    #[test]
    fn usable_and_chunk_sizes_match_glibc_for_small_large_and_mapped_blocks() {
        let real = real_usable_size();
        let sizes = (0..600).chain((1..64).map(|k| k * 4093)).chain([
            128 * 1024 - 1,
            128 * 1024,
            200 * 1024,
            1 << 20,
            5 << 20,
        ]);
        for size in sizes {
            // SAFETY: each block is glibc's, live while both sizes are read, and freed once.
            unsafe {
                let p = glibc::malloc(size);
                assert!(!p.is_null());
                assert_eq!(glibc::usable_size(p), real(p), "size {size}");
                assert!(glibc::usable_size(p) >= size);
                let header = glibc::chunk_size(p) - real(p);
                assert!(
                    header == 8 || (header == 16 && size >= 128 * 1024),
                    "size {size}"
                );
                assert_eq!(interpose::malloc_usable_size(p), real(p));
                glibc::free(p);
                let q = glibc::memalign(4096, size);
                assert_eq!(glibc::usable_size(q), real(q), "memalign size {size}");
                assert!([8, 16].contains(&(glibc::chunk_size(q) - real(q))));
                glibc::free(q);
            }
        }
    }

    fn live() -> (i64, i64) {
        let t = crate::counting::alloc::thread_totals().expect("a slot");
        (t.live_bytes(), t.live_blocks())
    }

    extern "C" {
        fn pvalloc(size: usize) -> *mut c_void;
        fn valloc(size: usize) -> *mut c_void;
    }

    #[test]
    fn the_family_counts_chunk_sizes_once() {
        // SAFETY: every block is checked, freed once, and its chunk size read while live; the
        // libc calls resolve to the interposers (this test binary defines them).
        unsafe {
            let start = live();
            let p = libc::malloc(100);
            let n = glibc::chunk_size(p) as i64;
            assert_eq!(live(), (start.0 + n, start.1 + 1));
            let q = libc::realloc(p, 5000);
            let m = glibc::chunk_size(q) as i64;
            assert_eq!(
                live(),
                (start.0 + m, start.1 + 1),
                "a realloc moves bytes only"
            );
            assert!(libc::realloc(q, 0).is_null(), "glibc: realloc(p, 0) frees");
            assert_eq!(live(), start);
            let mut out = std::ptr::null_mut();
            assert_eq!(libc::posix_memalign(&mut out, 256, 300), 0);
            for b in [
                libc::calloc(3, 40),
                libc::memalign(64, 100),
                libc::aligned_alloc(64, 128),
                valloc(10),
                pvalloc(10),
                out,
            ] {
                assert!(!b.is_null());
                let before = live();
                let size = glibc::chunk_size(b) as i64;
                libc::free(b);
                assert_eq!(live(), (before.0 - size, before.1 - 1));
            }
            assert_eq!(live(), start);
        }
    }

    #[test]
    fn the_family_keeps_glibcs_error_rules() {
        // SAFETY: failed calls return null or an error and allocate nothing; the one block is
        // freed once.
        unsafe {
            let start = live();
            let mut out = std::ptr::null_mut();
            for align in [0, 3, 4, 24] {
                assert_eq!(libc::posix_memalign(&mut out, align, 10), libc::EINVAL);
            }
            assert!(libc::aligned_alloc(3, 10).is_null());
            assert_eq!(*libc::__errno_location(), libc::EINVAL);
            assert!(libc::malloc(usize::MAX / 2).is_null());
            assert_eq!(
                libc::posix_memalign(&mut out, 64, usize::MAX / 2),
                libc::ENOMEM
            );
            let p = libc::malloc(10);
            assert!(libc::realloc(p, usize::MAX / 2).is_null());
            let n = glibc::chunk_size(p) as i64;
            assert_eq!(
                live(),
                (start.0 + n, start.1 + 1),
                "a failed realloc keeps the block"
            );
            libc::free(p);
            libc::free(std::ptr::null_mut());
            assert_eq!(libc::malloc_usable_size(std::ptr::null_mut()), 0);
            assert_eq!(live(), start);
        }
    }

    #[test]
    fn rust_blocks_follow_systems_rules() {
        use std::alloc::{GlobalAlloc, Layout};
        let a = glibc::Untracked;
        for (size, align) in [(1, 1), (8, 8), (24, 16), (8, 32), (100, 64), (5000, 4096)] {
            let l = Layout::from_size_align(size, align).unwrap();
            // SAFETY: the layouts are valid; every block is written within its size, grown,
            // checked, and freed once with its current layout.
            unsafe {
                let p = a.alloc_zeroed(l);
                assert!(!p.is_null() && (p as usize).is_multiple_of(align));
                assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
                p.write_bytes(7, size);
                let q = a.realloc(p, l, size * 3);
                assert!(
                    !q.is_null() && (q as usize).is_multiple_of(align),
                    "{size} {align}"
                );
                assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 7));
                a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
            }
        }
    }

    #[test]
    fn a_foreign_malloc_is_named() {
        let strlen = resolve("strlen").unwrap();
        let why = verdict(strlen, interpose::our_malloc()).unwrap();
        assert!(why.contains("libc.so"), "{why}");
        assert_eq!(verdict(strlen, strlen), None);
    }

    #[test]
    fn malloc_resolves_to_ours() {
        assert_eq!(not_measured(), None);
        assert_eq!(resolve("malloc"), Some(interpose::our_malloc()));
    }
}

#[cfg(all(test, not(all(target_os = "linux", target_env = "gnu"))))]
mod off_glibc_tests {
    #[test]
    fn the_c_heap_is_not_measured_and_the_report_says_why() {
        let why = super::not_measured().expect("not measured off glibc");
        assert!(why.contains("only on Linux with glibc"), "{why}");
        let r = crate::Config::new().measure(|| ());
        let text = r.to_string();
        assert!(
            text.contains(
                "  C heap:    not measured: the feature `ffi` counts it only on Linux with glibc\n"
            ),
            "{text}"
        );
        // `mapped` is not measured either, and says so once it has a bound.
        assert_eq!(r.count(crate::report::Measure::Mapped), None);
        let r = crate::Config::new().max_mapped_bytes(1).measure(|| ());
        let text = r.to_string();
        assert!(
            text.contains("  mapped:    not measured (counted on Linux with glibc, on x86-64 and aarch64 only)\n"),
            "{text}"
        );
    }
}
