//! What counting the C heap costs a C `malloc`/`free` pair (cargo feature `ffi`), as a ratio to
//! glibc's own `malloc`, in one run:
//!
//! ```text
//! cargo run --release --features ffi --example c_malloc_ratio [-- --iters N --rounds R --max-ratio X]
//! ```
//!
//! Both are called through function pointers from the same loop: no_leak's interposed `malloc`
//! and `free` (what C code in the test binary calls) and glibc's, looked up past the test binary
//! with `dlsym(RTLD_NEXT)`. `N` pairs of 32 bytes (default 20,000,000) per thread and per heap, at
//! 1 and 2 threads (released together), `R` rounds (default 7). Each thread runs both heaps in
//! alternating chunks of 100,000 pairs, so that the two see the same thread, arena and block
//! addresses (separate runs on fresh threads differed by up to 1.8x between rounds on a quiet
//! machine). A round's figure is its threads' CPU time through no_leak over their CPU time
//! through glibc; the result is the median over rounds. Prints ratios only. Exits with status 1
//! if a ratio exceeds `X` (default 1.3), 2 on bad arguments or when the C heap is not interposed
//! (not glibc, or another malloc wins).

// Linked for its global allocator and the interposers, which a binary that names nothing of
// no_leak would leave out.
extern crate no_leak;

/// The C heap is interposed on Linux with glibc only; elsewhere the example says so.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() {
    eprintln!("c_malloc_ratio: the C heap is counted on Linux with glibc only");
    std::process::exit(2);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn main() {
    glibc::main();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {

    use std::ffi::c_void;
    use std::sync::Barrier;
    use std::time::Duration;

    type Malloc = unsafe extern "C" fn(usize) -> *mut c_void;
    type Free = unsafe extern "C" fn(*mut c_void);

    #[derive(Clone, Copy)]
    struct Heap {
        malloc: Malloc,
        free: Free,
    }

    /// The `malloc` and `free` that the symbol lookup `handle` finds.
    fn lookup(handle: *mut c_void) -> Option<Heap> {
        // SAFETY: the names are NUL-terminated; a non-null result is the libc function of that name,
        // whose C signature is the one transmuted to.
        unsafe {
            let m = libc::dlsym(handle, c"malloc".as_ptr());
            let f = libc::dlsym(handle, c"free".as_ptr());
            if m.is_null() || f.is_null() {
                return None;
            }
            Some(Heap {
                malloc: std::mem::transmute::<*mut c_void, Malloc>(m),
                free: std::mem::transmute::<*mut c_void, Free>(f),
            })
        }
    }

    fn thread_cpu_time() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0);
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// `iters` malloc+free pairs of 32 bytes on the calling thread, and the thread CPU time they took.
    #[inline(never)]
    fn pairs(h: Heap, iters: u64) -> Duration {
        let start = thread_cpu_time();
        for i in 0..iters {
            // SAFETY: the block is checked for null, written within its 32 bytes, and freed once.
            unsafe {
                let p = (h.malloc)(std::hint::black_box(32)) as *mut u8;
                assert!(!p.is_null());
                p.write(i as u8);
                (h.free)(std::hint::black_box(p).cast());
            }
        }
        thread_cpu_time() - start
    }

    const CHUNK: u64 = 100_000;

    /// `iters` pairs through each heap on the calling thread, in alternating chunks (the order
    /// swapped every chunk): the CPU time through `ours` and through `glibc`.
    fn both(ours: Heap, glibc: Heap, iters: u64) -> (Duration, Duration) {
        let (mut o, mut g) = (Duration::ZERO, Duration::ZERO);
        for c in 0..iters.div_ceil(CHUNK) {
            let n = CHUNK.min(iters - c * CHUNK);
            if c % 2 == 0 {
                o += pairs(ours, n);
                g += pairs(glibc, n);
            } else {
                g += pairs(glibc, n);
                o += pairs(ours, n);
            }
        }
        (o, g)
    }

    /// One round on `threads` threads started together: their CPU time through `ours` over their
    /// CPU time through `glibc`.
    fn round(ours: Heap, glibc: Heap, threads: usize, iters: u64) -> f64 {
        let barrier = Barrier::new(threads);
        let (o, g) = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        both(ours, glibc, 1000);
                        barrier.wait();
                        both(ours, glibc, iters)
                    })
                })
                .collect();
            hs.into_iter()
                .map(|t| t.join().unwrap())
                .fold((Duration::ZERO, Duration::ZERO), |(o, g), (a, b)| {
                    (o + a, g + b)
                })
        });
        o.as_secs_f64() / g.as_secs_f64()
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }

    fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
        let args: Vec<String> = std::env::args().collect();
        match args.iter().position(|a| a == name) {
            Some(i) => args
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| {
                    eprintln!("c_malloc_ratio: {name} needs a value");
                    std::process::exit(2)
                }),
            None => default,
        }
    }

    pub fn main() {
        let (iters, rounds, max) = (
            arg("--iters", 20_000_000u64),
            arg("--rounds", 7usize),
            arg("--max-ratio", 1.3f64),
        );
        let (Some(ours), Some(glibc)) = (lookup(libc::RTLD_DEFAULT), lookup(libc::RTLD_NEXT))
        else {
            eprintln!("c_malloc_ratio: malloc or free not found");
            std::process::exit(2);
        };
        if ours.malloc as usize == glibc.malloc as usize {
            eprintln!(
                "c_malloc_ratio: malloc is not interposed (build with --features ffi on glibc)"
            );
            std::process::exit(2);
        }
        println!(
            "c_malloc_ratio: {iters} malloc+free pairs of 32 bytes per thread, {rounds} rounds"
        );
        let mut failed = false;
        for threads in [1, 2] {
            round(ours, glibc, threads, iters / 20);
            let ratios: Vec<f64> = (0..rounds)
                .map(|_| round(ours, glibc, threads, iters))
                .collect();
            let m = median(ratios.clone());
            let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
            println!(
                "threads {threads}: no_leak/glibc {m:.3}x (rounds: {})",
                shown.join(" ")
            );
            failed |= m > max;
        }
        if failed {
            println!("FAIL: above {max:.2}x");
            std::process::exit(1);
        }
        println!("PASS: within {max:.2}x");
    }
}
