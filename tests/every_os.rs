//! The corpus every OS runs: leaky patterns and their fixed twins in heap, threads and fds
//! (handles on Windows), through the attribute, a `#[no_leak]` module and the closure API. It
//! uses nothing of any one OS, so the same file runs under `cargo test` on Linux, macOS and
//! Windows (here under Wine: `.ci/wine --test every_os`).
//!
//! Each leaky pattern is asserted to be caught in exactly its dimensions (the whole title line),
//! with the OS's words for what it cannot determine; each fixed twin passes and measures exactly
//! zero in every dimension.

use std::sync::Mutex;

use no_leak::{no_leak, Config, Dimension, Measure};

#[path = "common/mod.rs"]
mod common;
use common::assert_measures_zero;

/// A temporary file of this process's own, for the fd patterns.
fn scratch_file() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("no_leak-every-os-{}", std::process::id()));
    if !path.exists() {
        std::fs::write(&path, b"every os").unwrap();
    }
    path
}

mod heap {
    use super::*;

    static REGISTRY: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    /// Leaky: every call parks a buffer in a static registry nobody prunes.
    pub fn register_forever() {
        REGISTRY.lock().unwrap().push(vec![7u8; 100]);
    }

    /// Fixed: the registry keeps the newest entry only.
    pub fn register_newest() {
        let mut r = REGISTRY.lock().unwrap();
        r.clear();
        r.shrink_to_fit();
        drop(r);
    }

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked heap: ")]
    fn registry_leaks() {
        register_forever();
    }

    #[test]
    #[no_leak]
    #[cfg_attr(target_os = "linux", should_panic(expected = "held by static"))]
    #[cfg_attr(
        not(target_os = "linux"),
        should_panic(expected = "held by: not determined (the retention scan runs on Linux only")
    )]
    fn registry_leak_names_its_holder_or_says_why_not() {
        register_forever();
    }

    #[test]
    #[no_leak::isolated]
    fn registry_fixed_measures_zero() {
        assert_measures_zero("register_newest", register_newest);
    }

    /// Leaky: `Box::leak`, 16 bytes in 1 block per run, exactly.
    pub fn box_leak() {
        Box::leak(Box::new([1u64; 2]));
    }

    #[test]
    #[no_leak::isolated]
    fn box_leak_is_exactly_16_bytes_per_run() {
        let r = Config::new().measure(box_leak);
        assert_eq!(r.exceeded, [Dimension::Heap], "{r}");
        assert!(
            r.per_run.iter().all(|d| (d.bytes, d.blocks) == (16, 1)),
            "{r}"
        );
    }

    /// Leaky: two `Rc`s pointing at each other.
    pub fn rc_cycle() {
        use std::cell::RefCell;
        use std::rc::Rc;
        struct Node(RefCell<Option<Rc<Node>>>);
        let a = Rc::new(Node(RefCell::new(None)));
        let b = Rc::new(Node(RefCell::new(Some(a.clone()))));
        *a.0.borrow_mut() = Some(b);
    }

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked heap: ")]
    fn rc_cycle_leaks() {
        rc_cycle();
    }
}

mod threads {
    use super::*;
    use std::sync::mpsc;
    use std::thread;

    static PARKED: Mutex<Vec<mpsc::Sender<()>>> = Mutex::new(Vec::new());

    /// Leaky: a named thread waits for a message that never comes (its sender is kept).
    pub fn park_a_thread() {
        let (tx, rx) = mpsc::channel::<()>();
        PARKED.lock().unwrap().push(tx);
        thread::Builder::new()
            .name("parked-forever".into())
            .spawn(move || {
                rx.recv().ok();
            })
            .unwrap();
    }

    /// Fixed: the worker is told to stop and joined.
    pub fn join_the_worker() {
        let (tx, rx) = mpsc::channel::<()>();
        let h = thread::Builder::new()
            .name("joined".into())
            .spawn(move || {
                rx.recv().ok();
            })
            .unwrap();
        drop(tx);
        h.join().unwrap();
    }

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked heap, threads: ")]
    fn parked_thread_leaks() {
        park_a_thread();
    }

    #[test]
    #[no_leak::isolated]
    fn parked_thread_is_one_per_run_and_named() {
        let r = Config::new().runs(3).measure(park_a_thread);
        assert_eq!(r.exceeded, [Dimension::Heap, Dimension::Threads], "{r}");
        assert_eq!(r.net(Measure::Threads), Some(3), "{r}");
        assert_eq!(r.new_threads.len(), 3, "{r}");
        assert!(
            r.new_threads.iter().all(|t| t.name == "parked-forever"),
            "{r}"
        );
        assert!(r.to_string().contains("parked-forever"), "{r}");
    }

    #[test]
    #[no_leak::isolated]
    fn joined_worker_measures_zero() {
        assert_measures_zero("join_the_worker", join_the_worker);
    }

    #[test]
    #[no_leak]
    fn joined_worker_passes() {
        join_the_worker();
    }
}

mod fds {
    use super::*;

    /// Leaky: the file's handle is forgotten, never closed.
    pub fn forget_a_file() {
        std::mem::forget(std::fs::File::open(scratch_file()).unwrap());
    }

    /// Fixed: the file is read and closed.
    pub fn read_and_close() {
        let text = std::fs::read(scratch_file()).unwrap();
        assert_eq!(text, b"every os");
    }

    /// Leaky: a listening socket forgotten.
    pub fn forget_a_socket() {
        std::mem::forget(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    }

    /// Fixed: the socket is dropped.
    pub fn drop_the_socket() {
        drop(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    }

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked fds: ")]
    fn forgotten_file_leaks() {
        forget_a_file();
    }

    #[test]
    #[no_leak::isolated]
    fn forgotten_file_is_one_per_run_and_named_by_its_path() {
        let r = Config::new().runs(3).measure(forget_a_file);
        assert_eq!(r.exceeded, [Dimension::Fds], "{r}");
        assert_eq!(r.net(Measure::Fds), Some(3), "{r}");
        let name = scratch_file()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(r.new_fds.iter().all(|f| f.target.contains(&name)), "{r}");
        let heading = if cfg!(windows) {
            "new handles:"
        } else {
            "new fds:"
        };
        assert!(r.to_string().contains(heading), "{r}");
    }

    #[test]
    #[no_leak::isolated]
    fn closed_file_measures_zero() {
        assert_measures_zero("read_and_close", read_and_close);
    }

    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked fds: ")]
    fn forgotten_socket_leaks() {
        forget_a_socket();
    }

    #[test]
    #[no_leak]
    fn dropped_socket_passes() {
        drop_the_socket();
    }
}

/// `#[no_leak]` on a module checks each of its tests.
#[no_leak]
mod whole_module {
    #[test]
    #[should_panic(expected = "leaked heap: ")]
    fn leaky() {
        std::mem::forget(vec![0u8; 32]);
    }

    #[test]
    fn clean() {
        drop(vec![0u8; 32]);
    }
}

mod closure_api {
    use super::*;

    #[test]
    fn check_catches_a_leak_in_the_heap_only() {
        let r = Config::new().measure(heap::register_forever);
        assert!(r.is_leak(), "{r}");
        assert!(r.exceeds(Dimension::Heap), "{r}");
        assert!(
            !r.exceeds(Dimension::Threads) && !r.exceeds(Dimension::Fds),
            "{r}"
        );
    }

    #[test]
    fn check_passes_the_fixed_twin() {
        no_leak::check(heap::register_newest);
    }

    #[test]
    #[should_panic(expected = "leaked heap: ")]
    fn check_panics_with_the_report() {
        no_leak::check(heap::box_leak);
    }
}
