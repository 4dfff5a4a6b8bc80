//! The C-heap corpus (feature `ffi`): leaks made through `malloc` and its family, by libc itself
//! and by a real C library built from source (zlib), each caught in the right dimensions with its
//! first site on the Rust line that called into C and marked as C heap; every fixed twin passes
//! and measures exactly zero.
//!
//! A pattern is a module with its leaky function, its fixed twin, and one `corpus!` table (the
//! same layout as the main corpus, `tests/corpus/main.rs`). Lines that call into C and leak end
//! in `// leak-site`.

mod common;

use std::time::Duration;

use no_leak::{Config, Dimension, Report};

macro_rules! corpus {
    (leaks $leaky:ident => $expected:literal; fixed $fixed:ident;) => {
        #[test]
        #[no_leak::no_leak]
        #[should_panic(expected = $expected)]
        fn leaks() {
            $leaky();
        }

        #[test]
        #[no_leak::isolated]
        fn first_site_is_marked_c_heap() {
            $crate::assert_first_site_marked($leaky, file!(), module_path!());
        }

        #[test]
        #[no_leak::no_leak]
        fn fixed_passes() {
            $fixed();
        }

        #[test]
        #[no_leak::isolated]
        fn fixed_measures_zero() {
            $crate::assert_measures_zero(stringify!($fixed), $fixed);
        }
    };
}

fn quick() -> Config {
    Config::new().settle(Duration::from_millis(50))
}

/// The lines (1-based) marked `// leak-site` inside `mod <module> {` of this file.
fn marked_lines(module: &str) -> Vec<u32> {
    let src = include_str!("c_heap.rs");
    let lines: Vec<&str> = src.lines().collect();
    let header = format!("mod {module} {{");
    let start = lines
        .iter()
        .position(|l| l.trim_start().trim_start_matches("pub ") == header)
        .unwrap_or_else(|| panic!("no `{header}`"));
    let out: Vec<u32> = (lines.iter().enumerate().skip(start + 1))
        .take_while(|(_, l)| **l != "}")
        .filter(|(_, l)| l.ends_with("// leak-site"))
        .map(|(i, _)| i as u32 + 1)
        .collect();
    assert!(!out.is_empty(), "no leak-site marks in mod {module}");
    out
}

/// `body`, measured, has its first site on a marked line of its module, marked as C heap, in
/// the report's getters and in its text.
fn assert_first_site_marked(body: fn(), file: &str, module_path: &str) {
    let module = module_path.rsplit("::").next().unwrap();
    let report = quick().name(module_path).measure(body);
    assert!(report.is_leak(), "{report}");
    assert!(report.exceeds(Dimension::Heap), "{report}");
    let site = report.sites.first().expect("sites");
    assert!(site.c_heap, "the first site is C heap:\n{report}");
    let frame = site.frame.as_ref().expect("resolved");
    assert_eq!(frame.file.as_deref(), Some(file), "{report}");
    let line = frame.line.unwrap();
    let want = marked_lines(module);
    assert!(want.contains(&line), "line {line}, want {want:?}\n{report}");
    let text = report.to_string();
    assert!(
        text.contains(&format!("of C heap at {file}:{line} (")),
        "{text}"
    );
    assert_eq!(report.c_heap_not_measured, None, "{report}");
}

fn assert_measures_zero(name: &str, f: fn()) {
    common::assert_zero(&Config::new().name(name).measure(f));
}

/// `strdup` without `free`.
mod strdup {
    pub fn leaky() {
        // SAFETY: a NUL-terminated string; the copy is never freed (the leak).
        let p = unsafe { libc::strdup(c"a string copied by C".as_ptr()) }; // leak-site
        assert!(!p.is_null());
    }

    pub fn fixed() {
        // SAFETY: a NUL-terminated string; the copy is freed once.
        unsafe {
            let p = libc::strdup(c"a string copied by C".as_ptr());
            libc::free(p.cast());
        }
    }

    corpus! {
        leaks leaky => "leaked heap: ";
        fixed fixed;
    }
}

/// `regcomp` without `regfree`: the compiled pattern's tables stay.
mod regcomp {
    fn compile(re: &mut libc::regex_t) {
        // SAFETY: `re` is writable, the pattern NUL-terminated.
        let rc = unsafe { libc::regcomp(re, c"^(ab|cd)+[0-9]*$".as_ptr(), libc::REG_EXTENDED) }; // leak-site
        assert_eq!(rc, 0);
    }

    pub fn leaky() {
        // SAFETY: all-zero is a valid `regex_t` before `regcomp` fills it.
        let mut re: libc::regex_t = unsafe { std::mem::zeroed() };
        compile(&mut re);
    }

    pub fn fixed() {
        // SAFETY: as in `leaky`; the compiled pattern is freed once.
        let mut re: libc::regex_t = unsafe { std::mem::zeroed() };
        compile(&mut re);
        unsafe { libc::regfree(&mut re) };
    }

    corpus! {
        leaks leaky => "leaked heap: ";
        fixed fixed;
    }
}

/// `getaddrinfo` without `freeaddrinfo`.
mod getaddrinfo {
    fn resolve() -> *mut libc::addrinfo {
        let mut res = std::ptr::null_mut();
        // SAFETY: NUL-terminated host name, no service, no hints, `res` writable.
        let (host, none) = (c"localhost".as_ptr(), std::ptr::null());
        let rc = unsafe { libc::getaddrinfo(host, none, std::ptr::null(), &mut res) }; // leak-site
        assert_eq!(rc, 0);
        res
    }

    pub fn leaky() {
        assert!(!resolve().is_null());
    }

    pub fn fixed() {
        // SAFETY: the list came from `getaddrinfo` and is freed once.
        unsafe { libc::freeaddrinfo(resolve()) };
    }

    corpus! {
        leaks leaky => "leaked heap: ";
        fixed fixed;
    }
}

/// `fopen` without `fclose`: the `FILE` (C heap) and its descriptor.
mod fopen {
    fn open() -> *mut libc::FILE {
        // SAFETY: both strings are NUL-terminated.
        let f = unsafe { libc::fopen(c"/proc/self/status".as_ptr(), c"r".as_ptr()) }; // leak-site
        assert!(!f.is_null());
        f
    }

    pub fn leaky() {
        open();
    }

    pub fn fixed() {
        // SAFETY: the stream came from `fopen` and is closed once.
        unsafe { libc::fclose(open()) };
    }

    corpus! {
        leaks leaky => "leaked heap, fds: ";
        fixed fixed;
    }
}

/// zlib (built from source by `libz-sys`): a wrapper whose `Drop` forgets `deflateEnd`.
mod zlib {
    use libz_sys as z;

    /// A compressor around zlib's stream.
    pub struct Deflater {
        stream: Box<z::z_stream>,
        end_on_drop: bool,
    }

    impl Deflater {
        pub fn new(end_on_drop: bool) -> Deflater {
            // All-zero `zalloc`/`zfree`/`opaque` ask zlib for its defaults (calloc and free),
            // which `deflateInit_` fills in: only then is the stream a valid `z_stream`.
            let mut raw = Box::new(std::mem::MaybeUninit::<z::z_stream>::zeroed());
            let size = std::mem::size_of::<z::z_stream>() as i32;
            // SAFETY: the stream is writable and stays at this address (boxed) until `deflateEnd`.
            let rc = unsafe { z::deflateInit_(raw.as_mut_ptr(), 6, z::zlibVersion(), size) }; // leak-site
            assert_eq!(rc, z::Z_OK);
            // SAFETY: initialised: zlib set the allocator functions, every other field is plain.
            let stream = unsafe { Box::from_raw(Box::into_raw(raw).cast::<z::z_stream>()) };
            Deflater {
                stream,
                end_on_drop,
            }
        }

        /// Compresses `input` in one call, returning the compressed bytes.
        pub fn compress(&mut self, input: &[u8]) -> Vec<u8> {
            let mut out = vec![0u8; input.len() + 64];
            let s = &mut *self.stream;
            s.next_in = input.as_ptr() as *mut u8;
            s.avail_in = input.len() as u32;
            s.next_out = out.as_mut_ptr();
            s.avail_out = out.len() as u32;
            // SAFETY: the input and output buffers outlive the call and their lengths are right.
            let rc = unsafe { z::deflate(s, z::Z_FINISH) };
            assert_eq!(rc, z::Z_STREAM_END);
            out.truncate(s.total_out as usize);
            out
        }
    }

    impl Drop for Deflater {
        fn drop(&mut self) {
            if self.end_on_drop {
                // SAFETY: the stream was initialised by `deflateInit_` and is ended once.
                unsafe { z::deflateEnd(&mut *self.stream) };
            }
        }
    }

    fn round(end_on_drop: bool) {
        let mut d = Deflater::new(end_on_drop);
        let packed = d.compress(&[b'z'; 4096]);
        assert!(packed.len() < 100);
    }

    pub fn leaky() {
        round(false);
    }

    pub fn fixed() {
        round(true);
    }

    corpus! {
        leaks leaky => "leaked heap: ";
        fixed fixed;
    }
}

/// `setenv` with a new value on every call: glibc keeps every string it was ever given (so that
/// a pointer `getenv` returned stays valid), so the environment grows by one string a call. The
/// holder is glibc's own static, named by its object. The fixed twin sets one value again and
/// again, which glibc stores once.
mod setenv {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

    static CALLS: AtomicU32 = AtomicU32::new(0);

    pub fn leaky() {
        let n = CALLS.fetch_add(1, Relaxed);
        // SAFETY: only this test's process reads or writes the environment while it runs (an
        // isolated child).
        unsafe { std::env::set_var("NO_LEAK_SETENV", format!("call {n}")) }; // leak-site
    }

    pub fn fixed() {
        // SAFETY: as above.
        unsafe { std::env::set_var("NO_LEAK_SETENV", "one value") };
    }

    corpus! {
        leaks leaky => "leaked heap: ";
        fixed fixed;
    }

    #[test]
    #[no_leak::no_leak]
    #[should_panic(expected = "held by static <a static of libc.so.6 at 0x")]
    fn is_held_by_glibc() {
        leaky();
    }
}

/// `CString::into_raw` handed to C (`strlen`) and never reclaimed: Rust heap, counted once.
mod cstring_into_raw {
    const TEXT: &str = "handed to C and never taken back";

    pub fn leaky() {
        let raw = std::ffi::CString::new(TEXT).unwrap().into_raw();
        // SAFETY: `raw` is a NUL-terminated string; it is never reclaimed (the leak).
        assert_eq!(unsafe { libc::strlen(raw) }, TEXT.len());
    }

    #[test]
    #[no_leak::isolated]
    fn is_counted_once_as_rust_heap() {
        let r = super::quick().measure(leaky);
        assert_eq!(r.exceeded, [super::Dimension::Heap], "{r}");
        // The string and its NUL, once per run: not twice (Rust heap and C heap).
        let want = TEXT.len() as i64 + 1;
        assert!(
            r.per_run.iter().all(|d| d.bytes == want && d.blocks == 1),
            "{r}"
        );
        assert!(!r.sites[0].c_heap, "Rust heap, not C heap:\n{r}");
    }
}

/// Rust code calling `malloc` directly counts as C heap, exactly: the block's chunk (its usable
/// size and glibc's one-word header), once.
#[test]
#[no_leak::isolated]
fn libc_malloc_counts_its_chunk_every_run() {
    fn leak() {
        // SAFETY: a plain allocation, never freed (the leak).
        let p = unsafe { libc::malloc(100) };
        assert!(!p.is_null());
    }
    let r: Report = quick().measure(leak);
    assert_eq!(r.exceeded, [Dimension::Heap], "{r}");
    // SAFETY: the block is glibc's, live while its usable size is read, then freed.
    let usable = unsafe {
        let p = libc::malloc(100);
        let n = libc::malloc_usable_size(p);
        libc::free(p);
        n as i64
    };
    assert!(usable >= 100);
    let chunk = usable + std::mem::size_of::<usize>() as i64;
    assert!(
        r.per_run
            .iter()
            .all(|d| d.bytes == chunk && d.blocks == 1),
        "{r}"
    );
}

/// A heap profile names C-heap sites at the Rust line that called into C, marked as C heap.
#[test]
#[no_leak::isolated]
fn heap_profile_marks_c_sites() {
    let profiler = no_leak::profile::start().expect("a profiler");
    // SAFETY: NUL-terminated; the copy is freed once, after the snapshot.
    let p = unsafe { libc::strdup(c"profiled".as_ptr()) }; // profiled-site
    let snap = profiler.snapshot();
    // SAFETY: `p` came from strdup and is freed once.
    unsafe { libc::free(p.cast()) };
    let line = (include_str!("c_heap.rs").lines())
        .position(|l| l.ends_with("// profiled-site"))
        .unwrap() as u32
        + 1;
    let site = snap
        .site_at(file!(), line)
        .expect("the strdup line is a site");
    assert!(site.c_heap, "{site:?}");
}
