//! Rust's own leaks: `Box::leak`, `mem::forget`, and files and sockets parked in statics.

/// `Box::leak` hands out a `&'static` and never frees.
pub mod box_leak {
    /// Leaky: 16 bytes in one block, every call.
    pub fn box_leak() {
        let s: &'static [u8] = Box::leak(vec![7u8; 16].into_boxed_slice()); // leak-site
        assert_eq!((s.len(), s[0]), (16, 7));
    }

    /// Fixed: the box is turned back and dropped.
    pub fn box_leak_reclaimed() {
        let r: &'static mut [u8] = Box::leak(vec![7u8; 16].into_boxed_slice());
        // SAFETY: `r` came from `Box::leak` just above and is not used after this.
        drop(unsafe { Box::from_raw(r as *mut [u8]) });
    }

    corpus! {
        leaks box_leak => "leaked heap: ",
            held "unreachable: nothing points at it";
        fixed box_leak_reclaimed;
    }
}

/// `mem::forget` skips the destructor.
pub mod mem_forget {
    /// Leaky: the Vec's buffer is never freed.
    pub fn forget_vec() {
        std::mem::forget(vec![0u64; 8]); // leak-site
    }

    /// Fixed: `ManuallyDrop` taken back with `into_inner` and dropped.
    pub fn manually_drop_released() {
        let v = std::mem::ManuallyDrop::new(vec![0u64; 8]);
        drop(std::mem::ManuallyDrop::into_inner(v));
    }

    corpus! {
        leaks forget_vec => "leaked heap: ",
            held "unreachable: nothing points at it";
        fixed manually_drop_released;
    }
}

/// A file parked in a static. The static Vec also grows its buffer while it fills, so the heap is
/// over its bound too.
pub mod file_in_static {
    use std::io::Read;
    use std::sync::Mutex;

    static OPEN_FILES: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());

    /// Leaky: every call opens a file and parks it in a static.
    pub fn park_file_in_static() {
        let f = std::fs::File::open("/proc/self/stat")
            .or_else(|_| std::fs::File::open("Cargo.toml"))
            .unwrap();
        OPEN_FILES.lock().unwrap().push(f); // leak-site
    }

    /// Fixed: the file is used and closed.
    pub fn file_closed() {
        let mut f = std::fs::File::open("Cargo.toml").unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert!(!s.is_empty());
    }

    corpus! {
        leaks park_file_in_static => "leaked heap, fds: ",
            held "held by static corpus::rust_own::file_in_static::OPEN_FILES";
        fixed file_closed;
    }
}

/// A socket parked in a static (the static Vec grows too, as for files).
pub mod socket_in_static {
    use std::net::TcpListener;
    use std::sync::Mutex;

    static LISTENERS: Mutex<Vec<TcpListener>> = Mutex::new(Vec::new());

    /// Leaky: every call binds a socket on loopback and parks it in a static.
    pub fn park_socket_in_static() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        LISTENERS.lock().unwrap().push(l); // leak-site
    }

    /// Fixed: the socket is closed when it goes out of scope.
    pub fn socket_closed() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(l.local_addr().unwrap().port() > 0);
    }

    corpus! {
        leaks park_socket_in_static => "leaked heap, fds: ",
            held "held by static corpus::rust_own::socket_in_static::LISTENERS";
        fixed socket_closed;
    }
}
