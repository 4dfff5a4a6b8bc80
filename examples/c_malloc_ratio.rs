//! What counting the C heap costs a C `malloc`/`free` pair (cargo feature `ffi`), as a ratio to
//! glibc's own `malloc`, in one run:
//!
//! ```text
//! cargo run --release --features ffi --example c_malloc_ratio [-- --iters N --rounds R --max-ratio X]
//! ```
//!
//! Both are called through function pointers from the same loop: no_leak's interposed `malloc`
//! and `free` (what C code in the test binary calls) and glibc's, looked up past the test binary
//! with `dlsym(RTLD_NEXT)`. `N` pairs of 32 bytes (default 20,000,000) per thread, at 1 and 2
//! threads (released together; the slower thread counts), `R` rounds (default 7), the two
//! interleaved and their order alternated; the figure is the median of the per-round ratios of
//! thread CPU time. Prints ratios only. Exits with status 1 if a ratio exceeds `X` (default 1.3),
//! 2 on bad arguments or when the C heap is not interposed (not glibc, or another malloc wins).

// Linked for its global allocator and the interposers, which a binary that names nothing of
// no_leak would leave out.
extern crate no_leak;

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

/// CPU ns per malloc+free pair of 32 bytes, `iters` times, on the calling thread.
#[inline(never)]
fn pairs(h: Heap, iters: u64) -> f64 {
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
    (thread_cpu_time() - start).as_nanos() as f64 / iters as f64
}

/// The slowest of `threads` threads started together.
fn run(h: Heap, threads: usize, iters: u64) -> f64 {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    pairs(h, 1000);
                    barrier.wait();
                    pairs(h, iters)
                })
            })
            .collect();
        hs.into_iter()
            .map(|t| t.join().unwrap())
            .fold(0.0, f64::max)
    })
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

fn main() {
    let (iters, rounds, max) = (
        arg("--iters", 20_000_000u64),
        arg("--rounds", 7usize),
        arg("--max-ratio", 1.3f64),
    );
    let (Some(ours), Some(glibc)) = (lookup(libc::RTLD_DEFAULT), lookup(libc::RTLD_NEXT)) else {
        eprintln!("c_malloc_ratio: malloc or free not found");
        std::process::exit(2);
    };
    if ours.malloc as usize == glibc.malloc as usize {
        eprintln!("c_malloc_ratio: malloc is not interposed (build with --features ffi on glibc)");
        std::process::exit(2);
    }
    println!("c_malloc_ratio: {iters} malloc+free pairs of 32 bytes per thread, {rounds} rounds");
    let mut failed = false;
    for threads in [1, 2] {
        run(ours, threads, iters / 20);
        run(glibc, threads, iters / 20);
        let ratios: Vec<f64> = (0..rounds)
            .map(|r| {
                let (o, g) = if r % 2 == 0 {
                    let o = run(ours, threads, iters);
                    (o, run(glibc, threads, iters))
                } else {
                    let g = run(glibc, threads, iters);
                    (run(ours, threads, iters), g)
                };
                o / g
            })
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
