//! Where interposing `malloc` bites (feature `ffi`): calls before `main`, during thread-local
//! teardown and after a thread gave its counting slot back, on threads C code created, in a
//! forked child, and from the capture path while C code allocates. Each must work, count
//! exactly, and never hang.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use no_leak::{Config, Dimension, Measure};

/// malloc, calloc, realloc and free on the calling thread; true if every block came back.
fn c_round_trip() -> bool {
    // SAFETY: each block is checked for null, used only within its size, and freed once.
    unsafe {
        let a = libc::malloc(64);
        let b = libc::calloc(4, 32);
        let c = libc::realloc(a, 4000);
        let ok = !b.is_null() && !c.is_null();
        libc::free(b);
        libc::free(if c.is_null() { a } else { c });
        ok
    }
}

// -- before main: an `.init_array` constructor.

static BEFORE_MAIN_OK: AtomicBool = AtomicBool::new(false);

extern "C" fn before_main() {
    BEFORE_MAIN_OK.store(c_round_trip(), SeqCst);
}

#[used]
#[link_section = ".init_array"]
static BEFORE_MAIN: extern "C" fn() = before_main;

#[test]
fn constructor_before_main_mallocs_and_frees() {
    assert!(
        BEFORE_MAIN_OK.load(SeqCst),
        "the constructor ran and got its blocks"
    );
}

// -- thread exit: a thread-local destructor, and a pthread key destructor (those run after every
// thread-local destructor, so after the thread gave its counting slot back).

static EXIT_CALLS: AtomicUsize = AtomicUsize::new(0);

struct CInDrop;

impl Drop for CInDrop {
    fn drop(&mut self) {
        assert!(c_round_trip());
        EXIT_CALLS.fetch_add(1, SeqCst);
    }
}

thread_local! {
    static TLS_DTOR: CInDrop = const { CInDrop };
}

unsafe extern "C" fn key_destructor(_value: *mut libc::c_void) {
    assert!(c_round_trip());
    EXIT_CALLS.fetch_add(1, SeqCst);
}

fn pthread_key() -> libc::pthread_key_t {
    static KEY: std::sync::OnceLock<libc::pthread_key_t> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key = 0;
        // SAFETY: `key` is writable; the destructor is a valid `extern "C"` function for the
        // life of the process.
        assert_eq!(
            unsafe { libc::pthread_key_create(&mut key, Some(key_destructor)) },
            0
        );
        key
    })
}

/// A thread whose exit runs C allocations in both kinds of destructor.
fn thread_with_c_at_exit() {
    let key = pthread_key();
    std::thread::spawn(move || {
        TLS_DTOR.with(|_| ());
        // SAFETY: the key exists; a non-null value makes its destructor run at thread exit.
        assert_eq!(
            unsafe { libc::pthread_setspecific(key, std::ptr::dangling::<libc::c_void>()) },
            0
        );
    })
    .join()
    .unwrap();
}

#[test]
#[no_leak::isolated]
fn thread_exit_destructors_malloc_and_free_and_measure_zero() {
    let before = EXIT_CALLS.load(SeqCst);
    let r = Config::new()
        .warmup(3)
        .runs(5)
        .measure(thread_with_c_at_exit);
    assert!(!r.is_leak(), "{r}");
    assert_eq!((r.net(Measure::Bytes), r.net(Measure::Blocks)), (Some(0), Some(0)), "{r}");
    assert!(
        EXIT_CALLS.load(SeqCst) - before >= 2 * 8,
        "both destructors ran every run"
    );
}

// -- threads created by C code (`pthread_create` directly).

extern "C" fn c_thread_leaky(_: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: a plain allocation, never freed (the leak).
    let p = unsafe { libc::malloc(200) };
    assert!(!p.is_null());
    std::ptr::null_mut()
}

extern "C" fn c_thread_fixed(_: *mut libc::c_void) -> *mut libc::c_void {
    assert!(c_round_trip());
    std::ptr::null_mut()
}

fn run_c_thread(start: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void) {
    // SAFETY: `t` is written by pthread_create before use, the start routine is a valid C
    // function, and the thread is joined once.
    unsafe {
        let mut t: libc::pthread_t = 0;
        let rc = libc::pthread_create(&mut t, std::ptr::null(), start, std::ptr::null_mut());
        assert_eq!(rc, 0);
        assert_eq!(libc::pthread_join(t, std::ptr::null_mut()), 0);
    }
}

#[test]
#[no_leak::no_leak]
#[should_panic(expected = "leaked heap: ")]
fn c_created_thread_leaks() {
    run_c_thread(c_thread_leaky);
}

#[test]
#[no_leak::no_leak]
fn c_created_thread_frees() {
    run_c_thread(c_thread_fixed);
}

// -- fork: the child allocates and frees, then `_exit`s, while the parent's threads allocate.

/// Waits for `pid` up to `limit`; kills it and returns false if it has not exited by then.
fn exited_within(pid: libc::pid_t, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is writable.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        }
        if start.elapsed() > limit {
            // SAFETY: `pid` is our child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn forked_child_mallocs_and_frees_without_deadlock() {
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    assert!(c_round_trip());
                    drop(std::hint::black_box(vec![0u8; 100]));
                }
            })
        })
        .collect();
    for _ in 0..20 {
        // SAFETY: the child only calls the malloc family, the Rust allocator (both safe after
        // fork in a glibc process: glibc resets its arena locks in the child) and `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let ok = c_round_trip() && std::hint::black_box(Box::new(7u64)).as_ref() == &7;
            // SAFETY: ends the child at once, running no atexit handler of the parent's.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        assert!(
            // A deadlock detector: a child that allocates once never needs this long, even on a
            // loaded machine; a deadlocked one would never exit.
            exited_within(pid, Duration::from_secs(120)),
            "the child hung or failed"
        );
    }
    stop.store(true, SeqCst);
    busy.into_iter().for_each(|t| t.join().unwrap());
}

// -- the capture path while C code allocates, on the check's thread and on others.

fn leaky_among_busy_c_code() {
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..200 {
                    assert!(c_round_trip());
                }
            });
        }
        // SAFETY: plain allocations, never freed (the leak): 4 KiB a run, well above what
        // glibc's own caches (the resolver's, first loaded here) move from run to run.
        let p = unsafe { libc::malloc(4096) };
        assert!(!p.is_null());
        // SAFETY: a NUL-terminated string; the copy is never freed (the leak).
        let p = unsafe { libc::strdup(c"captured while C code allocates".as_ptr()) };
        assert!(!p.is_null());
        let mut res = std::ptr::null_mut();
        // SAFETY: as in the corpus; the list is freed once.
        unsafe {
            let host = c"localhost".as_ptr();
            if libc::getaddrinfo(host, std::ptr::null(), std::ptr::null(), &mut res) == 0 {
                libc::freeaddrinfo(res);
            }
        }
    });
}

#[test]
#[no_leak::isolated]
fn capture_while_c_code_allocates_finishes() {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    // The watchdog: a capture that recursed or deadlocked would never come back.
    std::thread::spawn(move || {
        if wait.recv_timeout(Duration::from_secs(240)).is_err() {
            eprintln!("capture_while_c_code_allocates_finishes: no verdict after 240 s: hung");
            std::process::abort();
        }
    });
    let r = Config::new().settle(Duration::from_millis(50)).measure(leaky_among_busy_c_code);
    done.send(()).unwrap();
    assert_eq!(r.exceeded, [Dimension::Heap], "{r}");
    assert!(r.sites.iter().any(|s| s.c_heap), "{r}");
}
