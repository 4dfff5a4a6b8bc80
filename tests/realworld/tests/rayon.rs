//! rayon, used the way data-parallel code uses it.
//!
//! - `clean_global_pool_par_sum`: `v.par_iter().map(..).sum()` on the global pool, the
//!   one-liner that replaces a `for` loop in most rayon code.
//! - `clean_global_pool_par_collect`: `par_iter().map(..).collect::<Vec<String>>()`, results
//!   allocated on workers and freed by the caller.
//! - `clean_pool_built_and_dropped_per_call`: a library that builds its own `ThreadPool` for one
//!   call (to bound its parallelism) and drops it when done.
//! - `leak_results_in_static_mutex`: workers push results into a global `Mutex<Vec<_>>` that
//!   nobody drains (a "collect results here" static).
//! - `leak_pool_forgotten_per_call`: a pool built per call and `mem::forget`-ed (or stored in a
//!   leaked struct): its threads live on.
//! - `clean_rayon_spawn_fire_and_forget_finishes`: `rayon::spawn` of a background job that
//!   reports completion on a channel the caller waits on.
//! - `leak_rayon_spawn_never_finishes`: a `rayon::spawn`ed job waiting for a wake-up whose sender
//!   was parked in a static: the job and what it captured stay on the global pool forever.
//! - `clean_check_*`: the closure API, `no_leak::check(|| ..)` in a plain `#[test]`, with bodies
//!   that hand work to the global pool: a block allocated on the calling thread and freed by a
//!   worker (`rayon::scope` + `spawn` moving a buffer in), and `rayon::join` on owned buffers.

use std::sync::{LazyLock, Mutex};

use no_leak::no_leak;
use rayon::prelude::*;

#[test]
#[no_leak]
fn clean_global_pool_par_sum() {
    let v: Vec<u64> = (0..10_000).collect();
    let sum: u64 = v.par_iter().map(|x| x * 2).sum();
    assert_eq!(sum, 2 * (9_999 * 10_000 / 2));
}

#[test]
#[no_leak]
fn clean_global_pool_par_collect() {
    let names: Vec<String> = (0..2_000u32)
        .into_par_iter()
        .map(|i| format!("item-{i}"))
        .collect();
    assert_eq!(names.len(), 2_000);
    assert_eq!(names[1_999], "item-1999");
}

#[test]
#[no_leak]
fn clean_pool_built_and_dropped_per_call() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let sum: u64 = pool.install(|| (0..10_000u64).into_par_iter().map(|x| x % 7).sum());
    assert_eq!(sum, (0..10_000u64).map(|x| x % 7).sum());
    drop(pool);
}

static RESULTS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap: ")]
fn leak_results_in_static_mutex() {
    (0..256u64).into_par_iter().for_each(|x| {
        RESULTS.lock().unwrap().push(x * x);
    });
}

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap, threads: ")]
fn leak_pool_forgotten_per_call() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let sum: u64 = pool.install(|| (0..1_000u64).into_par_iter().sum());
    assert_eq!(sum, 499_500);
    std::mem::forget(pool);
}

// The closure API on a plain test thread: under `cargo test` it counts only the calling thread's
// heap work, under nextest (a quiet process) the whole process.

#[test]
fn clean_check_scope_spawn_frees_on_worker() {
    no_leak::check(|| {
        let buf = vec![7u8; 4096];
        rayon::scope(|s| {
            s.spawn(move |_| {
                assert_eq!(buf.iter().map(|&b| b as u64).sum::<u64>(), 7 * 4096);
                drop(buf); // allocated on the calling thread, freed on a worker
            });
        });
    });
}

#[test]
fn clean_check_join_owned_halves() {
    no_leak::check(|| {
        let left: Vec<u64> = (0..5_000).collect();
        let right: Vec<u64> = (5_000..10_000).collect();
        let (a, b) = rayon::join(
            move || left.into_iter().sum::<u64>(),
            move || right.into_iter().sum::<u64>(),
        );
        assert_eq!(a + b, 9_999 * 10_000 / 2);
    });
}

#[test]
fn clean_check_par_iter_sum() {
    no_leak::check(|| {
        let v: Vec<u64> = (0..10_000).collect();
        let sum: u64 = v.par_iter().map(|x| x * 2).sum();
        assert_eq!(sum, 2 * (9_999 * 10_000 / 2));
    });
}

#[test]
#[no_leak]
fn clean_rayon_spawn_fire_and_forget_finishes() {
    let (done, finished) = std::sync::mpsc::channel::<usize>();
    let payload = vec![1u8; 1024];
    rayon::spawn(move || {
        done.send(payload.len()).unwrap();
    });
    assert_eq!(finished.recv().unwrap(), 1024);
}

static NEVER: LazyLock<Mutex<Vec<std::sync::mpsc::Sender<()>>>> =
    LazyLock::new(|| Mutex::new(Vec::new()));

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap: ")]
fn leak_rayon_spawn_never_finishes() {
    let (keep, wait) = std::sync::mpsc::channel::<()>();
    NEVER.lock().unwrap().push(keep); // the job's wake-up is kept "for later" and never sent
    let payload = vec![1u8; 1024];
    rayon::spawn(move || {
        let _ = wait.recv();
        drop(payload);
    });
}
