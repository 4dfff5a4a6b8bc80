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
    let ours = interpose::our_malloc();
    let resolved = resolve("malloc")?;
    if resolved == ours {
        return None;
    }
    Some(format!(
        "`malloc` resolves to {} ({resolved:#x}), not to no_leak's: another malloc replacement \
         (LD_PRELOAD, or a library loaded before the test binary's symbols) takes the calls",
        object_of(resolved)
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

/// The file name of the loaded object that contains `addr`, by `dladdr`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn object_of(addr: usize) -> String {
    // SAFETY: `dladdr` only reads the loader's tables and fills `info`, which it may leave
    // partly null; `dli_fname` is checked before use and points to a NUL-terminated string owned
    // by the loader for the object's lifetime.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(addr as *const libc::c_void, &mut info) == 0 || info.dli_fname.is_null() {
            return "an unknown object".into();
        }
        let name = std::ffi::CStr::from_ptr(info.dli_fname).to_string_lossy();
        format!("`{name}`")
    }
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

    #[test]
    fn usable_size_matches_glibc_for_small_large_and_mapped_blocks() {
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
                assert_eq!(interpose::malloc_usable_size(p), real(p));
                glibc::free(p);
                let q = glibc::memalign(4096, size);
                assert_eq!(glibc::usable_size(q), real(q), "memalign size {size}");
                glibc::free(q);
            }
        }
    }

    #[test]
    fn malloc_resolves_to_ours() {
        assert_eq!(not_measured(), None);
        assert_eq!(resolve("malloc"), Some(interpose::our_malloc()));
        assert!(object_of(resolve("strlen").unwrap()).contains("libc"));
    }
}
