//! Correct code that calls into glibc passes with the feature `ffi` on, at the default settings.
//!
//! With the C heap counted, glibc's own caches come into view: the time zone it loads once, the
//! NSS and gconv modules it opens once, the buffers `opendir` and `qsort` take and give back,
//! the environment strings `setenv` keeps. None of these is a leak of the caller's, and a leak
//! checker that flags them would be turned off. Each test here is one such call, used correctly,
//! as a plain `#[no_leak]` test: it must pass (and it is run 30 times in a row for the gate).

use std::ffi::CStr;

/// `localtime_r`: the first call loads the time zone (`/etc/localtime`) and keeps it.
#[test]
#[no_leak::no_leak]
fn localtime_r_loads_the_zone_once() {
    // SAFETY: `tm` is plain data; `localtime_r` fills it from a valid `time_t`.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        assert!(!libc::localtime_r(&now, &mut tm).is_null());
        assert!(tm.tm_year > 100);
    }
}

/// `strftime` with a locale-dependent format, after `localtime_r`.
#[test]
#[no_leak::no_leak]
fn strftime_formats_into_a_buffer() {
    let mut buf = [0u8; 64];
    // SAFETY: `tm` is plain data filled by `localtime_r`; `buf` is writable for its length and the
    // format is NUL-terminated.
    let n = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        libc::strftime(buf.as_mut_ptr().cast(), buf.len(), c"%c %Z".as_ptr(), &tm)
    };
    assert!(n > 0);
}

/// `getpwuid_r`: NSS opens its modules once and keeps them.
#[test]
#[no_leak::no_leak]
fn getpwuid_r_looks_up_the_current_user() {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `pwd` is plain data; `buf` is writable for its length; `result` is written by
    // the call and points into `pwd` or is null.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        assert_eq!(rc, 0);
        if !result.is_null() {
            assert!(!CStr::from_ptr(pwd.pw_name).to_bytes().is_empty());
        }
    }
}

/// `iconv_open`, `iconv`, `iconv_close`: gconv loads its conversion modules once.
#[test]
#[no_leak::no_leak]
fn iconv_converts_and_closes() {
    let input = *b"caf\xe9";
    let mut out = [0u8; 16];
    // SAFETY: the names are NUL-terminated; the buffers are valid for the lengths passed; the
    // descriptor is checked and closed once.
    unsafe {
        let cd = libc::iconv_open(c"UTF-8".as_ptr(), c"ISO-8859-1".as_ptr());
        assert_ne!(cd as isize, -1);
        let (mut inp, mut inleft) = (input.as_ptr() as *mut libc::c_char, input.len());
        let (mut outp, mut outleft) = (out.as_mut_ptr() as *mut libc::c_char, out.len());
        let rc = libc::iconv(cd, &mut inp, &mut inleft, &mut outp, &mut outleft);
        assert_eq!(rc, 0);
        assert_eq!(&out[..out.len() - outleft], "café".as_bytes());
        assert_eq!(libc::iconv_close(cd), 0);
    }
}

/// `qsort` of a large array: glibc sorts through a buffer it mallocs and frees.
#[test]
#[no_leak::no_leak]
fn qsort_of_a_large_array_gives_its_buffer_back() {
    extern "C" fn cmp(a: *const libc::c_void, b: *const libc::c_void) -> libc::c_int {
        // SAFETY: qsort passes pointers to two elements of the `u64` array.
        let (a, b) = unsafe { (*(a as *const u64), *(b as *const u64)) };
        a.cmp(&b) as libc::c_int
    }
    let mut v: Vec<u64> = (0..100_000u64)
        .map(|i| i.wrapping_mul(2654435761) % 1000)
        .collect();
    // SAFETY: the pointer, count and element size describe `v`; `cmp` compares two `u64`s.
    unsafe { libc::qsort(v.as_mut_ptr().cast(), v.len(), 8, Some(cmp)) };
    assert!(v.windows(2).all(|w| w[0] <= w[1]));
}

/// `newlocale` and `freelocale`.
#[test]
#[no_leak::no_leak]
fn newlocale_is_freed() {
    // SAFETY: the name is NUL-terminated; the locale is checked and freed once.
    unsafe {
        let loc = libc::newlocale(libc::LC_ALL_MASK, c"C".as_ptr(), std::ptr::null_mut());
        assert!(!loc.is_null());
        libc::freelocale(loc);
    }
}

/// std's `read_dir` (glibc's `opendir`, `readdir`, `closedir`).
#[test]
#[no_leak::no_leak]
fn read_dir_through_glibc() {
    let n = std::fs::read_dir(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .count();
    assert!(n > 0);
}

/// std's `to_socket_addrs` (glibc's `getaddrinfo` and `freeaddrinfo`).
#[test]
#[no_leak::no_leak]
fn std_resolves_localhost() {
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = "localhost:80".to_socket_addrs().unwrap().collect();
    assert!(!addrs.is_empty());
}

/// `setenv` of the same value every run: glibc keeps one copy of each string it was given.
#[test]
#[no_leak::no_leak]
fn setenv_of_the_same_value() {
    // SAFETY: only this test's process (an isolated child) reads or writes the environment
    // while it runs.
    unsafe { std::env::set_var("NO_LEAK_CLEAN_C", "same value") };
    assert_eq!(std::env::var("NO_LEAK_CLEAN_C").unwrap(), "same value");
}

/// A child process, run to its end (std's `posix_spawn` path).
#[test]
#[no_leak::no_leak]
fn a_child_process_is_waited_for() {
    let status = std::process::Command::new("true").status().unwrap();
    assert!(status.success());
}

/// A thread spawned and joined: glibc's per-thread blocks go back (or to its stack cache).
#[test]
#[no_leak::no_leak]
fn a_joined_thread() {
    let v = std::thread::spawn(|| vec![1u8; 100]).join().unwrap();
    assert_eq!(v.len(), 100);
}

/// `fopen`, a formatted write through stdio's buffer, `fclose`.
#[test]
#[no_leak::no_leak]
fn stdio_writes_through_its_buffer() {
    let path = std::env::temp_dir().join(format!("no_leak_clean_c_{}", std::process::id()));
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: the path and mode are NUL-terminated; the stream is checked and closed once.
    unsafe {
        let f = libc::fopen(cpath.as_ptr(), c"w".as_ptr());
        assert!(!f.is_null());
        assert!(libc::fputs(c"a line\n".as_ptr(), f) >= 0);
        assert_eq!(libc::fclose(f), 0);
    }
    std::fs::remove_file(&path).unwrap();
}
