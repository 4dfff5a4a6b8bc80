//! Turn ordinary `cargo test` tests into leak checks.
//!
//! Rust prevents use-after-free but not leaks: `Rc`/`Arc` cycles, caches that only grow, listener
//! lists nobody prunes, `Box::leak`, `mem::forget`, threads that never exit and files parked in
//! statics all pass the borrow checker. `#[no_leak]` runs a test body a few times and fails the
//! test when live heap bytes, heap blocks, OS threads or open file descriptors grow.
//!
//! ```no_run
//! use no_leak::no_leak;
//!
//! #[test]
//! #[no_leak]
//! fn cache_drops_entries() {
//!     let mut cache = std::collections::HashMap::new();
//!     cache.insert(1, vec![0u8; 64]);
//!     cache.clear();
//! }
//! ```
//!
//! These docs hold the model: what is counted, isolation, warmup and runs, settling, confirmation,
//! the closure API and the limits, then the arguments. The repository's `README.md` is the front
//! door; its `docs/` folder holds the reference (reports, CI, soak and monitor, heap profiles, the
//! C heap, async, every OS, the corpus, allocator cost).
//!
//! # The model
//!
//! **What is counted.** These dimensions, each as net growth over the measured runs:
//! - `heap`: live bytes and live blocks, from every thread of the process, counted by
//!   [`CountingAlloc`], which the default feature `global-allocator` installs. A block allocated
//!   on a thread the body spawned and joined counts; so does one freed by such a thread. With the
//!   cargo feature `ffi` on Linux with glibc, the C heap too: every call of the malloc family
//!   made by C code or by Rust code calling libc directly, at its chunk size (glibc's header
//!   included), in the calling thread's count; its allocation sites name the Rust line that
//!   called into C and are marked as C heap. Rust allocations are counted once either way.
//!   Elsewhere the report says the C heap is not measured ([`Report::c_heap_not_measured`]).
//! - `threads`: live OS threads, those already exiting left out (`/proc/self/task` on Linux, the
//!   task's Mach threads on macOS, a Toolhelp32 snapshot on Windows).
//! - `fds`: open file descriptors (`/proc/self/fd` on Linux, `proc_pidinfo` on macOS); on
//!   Windows, open handles (`GetProcessHandleCount`), so that `max_fds` means the same everywhere.
//! - `peak` (only when `max_peak_bytes` is set): within each run, the highest live heap above the
//!   live heap at the start of that run; the worst run counts.
//! - `tasks` (cargo feature `tokio`): alive tasks on the watched tokio runtimes (see **Async**).
//! - `mapped` (cargo feature `ffi`, Linux with glibc on x86-64 or aarch64): live bytes of
//!   anonymous `mmap` made outside the allocator (memmap2's `MmapMut::map_anon`, `libc::mmap`, C
//!   code linked into the test binary), in whole pages, partial `munmap` and `mremap` included.
//!   File-backed maps are not counted, nor are the maps of the allocator itself (glibc's malloc
//!   maps its large chunks with calls no interposer sees; what a wrapped allocator maps for its
//!   arenas is already heap). Process-wide, like threads and fds: measured where the whole process
//!   is, "not measured" on a shared test thread. The signal stack std maps for every thread it
//!   starts belongs to the thread: a thread that never exits leaks in `threads` (and `heap`), not
//!   also in `mapped`. The report shows it as `mapped:    3088 KiB -> 8208 KiB (+5 MiB, bound: 0 B)`;
//!   without the feature it is left out.
//!
//! Where a dimension cannot be measured (threads and fds on an OS other than Linux, macOS and
//! Windows; the C heap and `mapped` off Linux with glibc) the report says "not measured" and why,
//! instead of guessing. Who holds leaked memory (`held by`) is found on Linux only; elsewhere the
//! report says `held by: not determined (the retention scan runs on Linux only, not on macOS)`.
//! With no counting allocator at all, every check fails and says how to install one; it never
//! passes on zeros.
//!
//! **Isolation.** `cargo test` runs many tests on many threads of one process, and libtest's own
//! threads allocate as tests start and finish, so a process-wide count would see other tests' work.
//! A `#[no_leak]` test therefore runs itself alone: it re-executes the test binary as
//! `<exe> <name> --exact --test-threads=1 --nocapture --include-ignored` (libtest names every test
//! thread after its test), measures there with the harness's main thread left out, and reports back
//! through a file; the child's output is replayed into the test's captured output. This costs a few
//! milliseconds per test (4.3 ms for a trivial body in a debug build: child process, census and 8
//! runs). Under `cargo nextest run` every test already has its own process
//! (`NEXTEST_EXECUTION_MODE=process-per-test`), and no child is started. The verdict, and the
//! numbers, are the same under `cargo test`, `cargo test -- --test-threads=1` and
//! `cargo nextest run` (`tests/meta.rs` checks this with busy neighbour tests running alongside). A
//! crashed child fails the test with its signal on Unix (`killed by signal 6 (SIGABRT)`) and its
//! exception on Windows (`crashed with exception 0xC0000005 (access violation)`).
//!
//! **Warmup and runs.** The body runs `warmup` times unmeasured, so that lazy statics,
//! thread-locals, stdout buffers and pools started on first use settle. Before the measured runs
//! start, threads the warmup left on their way out (a `thread::scope` returns before its threads
//! have run their thread-local destructors) are given up to 100 ms to go, so that what they free
//! lands before the window, not inside it. Then the body runs `runs` times measured (the *first
//! window*), and the net growth is compared with the bounds, which default to 0. Within the bounds,
//! the check passed. A bounded cache grows until it is full: warm up past its capacity. A body that
//! panics or returns `Err` is not run again, and the test fails with the body's own message, so
//! `#[should_panic(expected = "...")]` behaves as without `#[no_leak]`.
//!
//! **Settling.** When a bound is exceeded, the check re-reads with back-off (1 ms doubling to
//! 50 ms) while something can still change: a thread or task over its bound, a thread that is new
//! or exiting, or readings that have not held still for about 15 ms (another thread may still be
//! freeing what the run dropped; the workers of watched tokio runtimes are woken, so that an idle
//! I/O driver releases the records of dropped sockets). It stops as soon as the counts are back
//! within bounds, and never waits longer than the settle time (`settle_ms`, `Config::settle`). A
//! passing test never waits; a heap-only leak waits about 15 ms; a thread that never exits makes the
//! check wait the whole settle time.
//!
//! **Confirmation: growth has to repeat.** Popular crates grow once and then hold: regex's cache
//! pool fills its slots as new threads use a `Regex`, hashbrown doubles a table once after many
//! rounds of churn, parking_lot creates its parking table on the first real park, rayon's workers
//! allocate their epoch records the first time they get work. Such growth can land in a measured
//! run however long the warmup. So a first window still over its bounds after settling is
//! confirmed: the check runs up to two more windows, each with as many runs as all the runs before
//! it (8, then 16 with the defaults), and a dimension leaks only if it grows beyond its bound again
//! in every one of them. For the heap, the total growth over those windows must also exceed the
//! widest swing within a window and twice the largest fall between two readings, so that deferred
//! frees that land a run or two late (crossbeam-epoch garbage, tokio's driver records) are
//! fluctuation, not growth. What did not repeat is reported as one-time growth (how much and in
//! which run: `Report::one_time`, the JSON line), and the check passes. A leak that grows at least
//! once in the first window and once in each doubling of the runs after it is caught: one that
//! grows every run, every few runs, or a collection that only grows (its reallocations come once
//! per doubling). A leak that grows less often than once a window looks one-time: raise `runs`, or
//! soak. A failing check has run 32 times with the defaults before it reports.
//!
//! **Where it leaked.** After the counts have shown a heap or thread leak, the body runs once more
//! (the *diagnostic run*) with stack capture on, and the report lists the allocation sites of the
//! memory still live, each as `file.rs:LINE (function)` with a caller, the user's own code first;
//! std, core, alloc, dependencies and no_leak itself are folded away. A passing check captures
//! nothing and pays nothing for this. Leaked threads are listed with their names, states and spawn
//! sites, new fds with what they point at, and who holds the memory (a static, a thread, a cycle,
//! or nothing) is found by a conservative scan of the memory of one more isolated run (Linux).
//!
//! **The closure API.** [`check`], [`Config::check`] and [`Config::measure`] measure a closure in
//! place, without a child process, so they fit inside property tests (256 proptest cases with
//! `check` on each cost 3.1x the property without it on a shared test thread, 5.5x with
//! whole-process counting: `cargo run --example proptest_cost`). In a quiet process (the isolated
//! child, a nextest process, a program's main thread) they count the whole process, exactly like
//! `#[no_leak]`. On a test thread that shares its process with other tests they count only the heap
//! work done on the calling thread (exact, whatever the other tests do), the report says that
//! threads and fds were not measured, and the first such check prints a note saying so. Put
//! [`isolated`] on the enclosing test to run it alone in a child process, so that checks inside it
//! count everything.
//!
//! **Nesting.** A check inside another check (or inside a `#[no_leak]` body) is an ordinary
//! check: it runs its own warmup and runs, with the same scope, and panics on its own leaks. The
//! outer check counts whatever the inner one leaves behind. Runs multiply: the inner body runs
//! `(warmup + runs)` times per outer run.
//!
//! **Switching off.** With `NO_LEAK=off` in the environment, every body runs once, nothing is
//! measured, and a line on stderr says so once per process.
//!
//! ## Limits
//!
//! - Allocation counting sees growth only when it allocates: a `Vec` that fills capacity it
//!   already had shows no growth until it reallocates. Use more `runs` for slow leaks.
//! - A leak that grows less than once per window (see **Confirmation**) is taken for one-time
//!   growth; use more `runs`, or a soak. A soak in turn needs at least one leak event per quarter
//!   of its samples.
//! - Memory obtained outside the global allocator (`mmap`, C libraries' `malloc`) is not counted
//!   without the cargo feature `ffi`. With it (Linux with glibc), the C heap counts in `heap` at
//!   chunk size, not at the size asked for, and anonymous `mmap` in `mapped` (x86-64 or aarch64;
//!   not file-backed maps; whole-process scope only). Where another definition of `mmap` wins at
//!   link time, `mapped` says "not measured"; maps made with a raw `syscall(SYS_mmap, ...)` are not
//!   seen; a `mapped` leak has no allocation sites. The repository's `docs/c-heap.md` has the
//!   details and the costs.
//! - With the closure API on a shared test thread, only the calling thread's allocations are
//!   counted. A block it allocated and another thread freed counts as freed (remembered in a table
//!   while the check runs; 2.9x the cost of an alloc+free on that thread, 1.7x on the others while
//!   it is open, nothing when no check is open). Blocks allocated on other threads are not seen,
//!   and one allocated elsewhere and freed on the calling thread lowers its count, which can hide a
//!   leak of the same size. `#[no_leak::isolated]` (or nextest) counts the whole process.
//! - Another check in the same process can hide a small leak there too: no_leak's symbol caches,
//!   filled by one check's diagnostic run, are released when a check with another name starts, and
//!   a release that lands inside this check's window lowers its count (this repository's
//!   `tests/diagnostic_run.rs` runs its closure checks one at a time with `#[serial]` for that reason).
//! - Process-wide counts see every thread of the process: a background thread of the test's own
//!   that allocates or frees during the runs moves them too.
//! - Isolation re-executes the test binary; a custom test harness that does not accept libtest's
//!   arguments is measured in process instead (a test thread not named after a test, or `main`).
//! - Threads and fds are counted on Linux, macOS and Windows; elsewhere they are "not measured".
//!   Windows gives a thread no cheap scheduler state: its leaked threads show name and id only.
//!   Who holds leaked memory is found on Linux only.
//! - A failing check runs its body 32 times with the defaults (3 warmup, 5 measured, 8 and 16 to
//!   confirm) plus once more to find the allocation sites, and a thread that never exits makes it
//!   wait the settle time: failures are slower than passes, by design.
//! - The symbolizer's caches (tens of MB of parsed debug info in a debug test binary) are kept while
//!   failing checks follow each other (a property's shrink steps), and given back by the next check
//!   that starts a second or more after the last report.
//! - Allocation sites need debug info (line tables) to name files and lines; a release profile
//!   without it shows function names only.
//!
//! # Arguments and defaults
//!
//! `#[no_leak(key = value, ...)]`; [`Config`] has a builder method for each key but `crate`, and
//! its docs give each value's kind and minimum. A value out of range, a misspelt key, a key given
//! twice, or a zero where one is not allowed is a compile error on the token written, as is
//! `#[no_leak]` on a non-function, on an `async fn` without a runtime attribute, or on a function
//! with arguments that is not under `#[rstest]`. With the defaults a leak of 1 byte per run fails
//! and the clean corpus never does.
//!
//! | argument | default | meaning |
//! |---|---|---|
//! | `warmup` | 3 | unmeasured runs first, at least 1 (`NO_LEAK_WARMUP`) |
//! | `runs` | 5 | measured runs, at least 1; net growth over all of them is compared with the bounds (`NO_LEAK_RUNS`) |
//! | `max_bytes` | 0 | allowed net growth of live heap bytes |
//! | `max_blocks` | 0 | allowed net growth of live heap blocks |
//! | `max_threads` | 0 | allowed net growth of live OS threads |
//! | `max_fds` | 0 | allowed net growth of open file descriptors (handles on Windows) |
//! | `max_tasks` | 0 | allowed net growth of alive tasks on watched tokio runtimes (feature `tokio`) |
//! | `max_mapped_bytes` | 0 | allowed net growth of anonymous `mmap` bytes made outside the allocator (feature `ffi`) |
//! | `max_peak_bytes` | unbounded | bound on the highest live heap within a run, above its start |
//! | `settle_ms` | 1000 | how long to wait for threads on their way out before reporting (`Config::settle(Duration)`; `NO_LEAK_SETTLE_MS`) |
//! | `soak` | off | soak mode: this many iterations, at least 40; fail on a sustained trend |
//! | `soak_ms` | off | soak mode for this many milliseconds, at least 10 (`Config::soak_for(Duration)`) |
//! | `max_slope_bytes_per_iteration` | 0.0 | in soak mode, allowed trend of live bytes per iteration |
//! | `crate` | `::no_leak` | the path the generated code names no_leak by, for a crate that re-exports it: `crate = my::no_leak` (attribute only) |
//!
//! The environment variables set a value for a whole run (CI), replacing the default but never a
//! value a test wrote.
//!
//! # Where the attribute goes
//!
//! **A function with `#[no_leak]` is a test.** Write it with `#[test]` (above or below), with a
//! runtime attribute such as `#[tokio::test]`, under `#[rstest]`, or alone: with no test
//! attribute on it, `#[no_leak]` makes it a test itself, as `#[tokio::test]` does. It is never
//! registered twice. (A `#[test]` written above has already expanded when `#[no_leak]` runs and
//! leaves nothing on the function; `#[no_leak]` reads the source above it to find it, on rustc
//! 1.88 and later. Where the source cannot be read, such as on an older rustc, or with the
//! attributes passed through a `macro_rules!` repetition, it writes no `#[test]`: write one.)
//! So a `#[no_leak]` function returns what a test returns, `()` or `Result<(), E: Debug>`, and
//! is not a helper to call: called from another test (any thread other than its own test's, or a
//! program's main thread), it panics at once and says so. To check a helper inside a test, leave
//! it undecorated and wrap the call: `no_leak::check(|| helper())`. The same holds for
//! [`isolated`].
//!
//! **It works with** `#[should_panic(expected = ...)]`, `-> Result<(), E>` tests, `?` and
//! `#[ignore]`; `#[rstest]` (written after `#[rstest]` and its `#[case]`s it is copied onto every
//! case; written before, it moves itself there; fixtures are built afresh in every run);
//! serial_test's `#[serial]`, in either order; and proptest: `check` inside `proptest!`, where a
//! leaking case fails the property, proptest shrinks it, and the failure shows
//! `minimal failing input` together with the report (`tests/cache_properties.rs`).
//!
//! **On an inline module**, `#[no_leak(...)]` checks every test function inside it (those with
//! `#[test]`, `#[tokio::test]`, `#[rstest]`, ...), nested inline modules included. A test with
//! its own `#[no_leak(...)]` merges it with the module's per key: the test's keys win, the
//! module's others stay (a nested module's own `#[no_leak(...)]` merges over the outer one's the
//! same way). `#[ignore]`d tests stay ignored (and are checked when run), helpers (functions
//! without a test attribute) and `#[no_leak::isolated]` tests are left as they are. The attribute
//! is recognised as `no_leak`, `no_leak::no_leak` or `no_leak::isolated`, not under another name
//! it was imported as. A module in a file of its own (`mod tests;`) cannot be read by an attribute
//! on stable Rust; put the attribute on the tests in that file.
//!
//! ```no_run
//! #[no_leak::no_leak(runs = 10)]
//! mod tests {
//!     fn fill() -> Vec<u8> {
//!         vec![0u8; 64] // a helper: left alone
//!     }
//!
//!     #[test]
//!     fn cache_drops_entries() {
//!         drop(fill());
//!     }
//!
//!     #[test]
//!     #[no_leak::no_leak(max_bytes = 64)] // runs = 10 still applies
//!     fn pool_keeps_one_buffer() {
//!         drop(fill());
//!     }
//! }
//! ```
//!
//! # Async
//!
//! `#[no_leak]` stacks with `#[tokio::test]` in either order, any flavor: every run gets the fresh
//! runtime `#[tokio::test]` builds, so what dies with that runtime is not a leak, and what survives
//! its drop (threads, memory in statics, tasks on other runtimes) is. With the cargo feature
//! `tokio`, the `tasks` dimension counts alive tasks (tokio's `RuntimeMetrics::num_alive_tasks`) on
//! the watched runtimes, and settles like threads do (bound: `max_tasks`, default 0). Watched are
//! the runtimes registered with `no_leak::watch_runtime(&handle)` (a service's long-lived runtime:
//! register it where it is built) and the runtime current on the thread that runs the check.
//! `Config::check_async` and `Config::measure_async` measure an async closure, each run on a fresh
//! current-thread runtime. The repository's `docs/async.md` has the details and the limits.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # mod example {
//! use no_leak::no_leak;
//!
//! #[no_leak]
//! #[tokio::test(flavor = "multi_thread")]
//! async fn pinger_stops_when_its_channel_closes() {
//!     let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
//!     let pinger = tokio::spawn(async move { while rx.recv().await.is_some() {} });
//!     tx.send(1).await.unwrap();
//!     drop(tx);
//!     pinger.await.unwrap();
//! }
//! # }
//! ```
//!
//! # Soak mode
//!
//! A leak of one block every hundred iterations slips past a handful of runs.
//! `#[no_leak(soak = 10000)]` (or [`Config::soak`]; `soak_ms`, `Config::soak_for`, for a duration)
//! runs the body that many times after the warmup runs, samples live heap bytes and blocks,
//! threads and fds about 200 times (after a warmup of the first tenth), and fits a least-squares
//! line. It fails when the slope of live bytes exceeds `max_slope_bytes_per_iteration` (default 0)
//! and the growth is sustained (the lowest value of each quarter of the samples rises quarter after
//! quarter, which a bounded cache's sawtooth or a one-time step never does), and when threads or
//! fds rise the same way. The report gives the slope, R², the floors and a few samples, and with
//! the feature `plot` writes an SVG of the samples with the trend line (to `target/no_leak/`, or
//! `NO_LEAK_PLOT_DIR`).
//!
//! # Reports in CI
//!
//! With `NO_LEAK_REPORT=<path>`, every `#[no_leak]` test (and every failing `check`) appends one
//! JSON line to `<path>`, safely from many threads and processes at once. `NO_LEAK_WARMUP`,
//! `NO_LEAK_RUNS` and `NO_LEAK_SETTLE_MS` set those values for every check of a run, where the test
//! did not write its own; a value that is not a whole number in range fails every check with the
//! reason. Under GitHub Actions (`GITHUB_ACTIONS=true`) a failing check also prints an
//! `::error file=...,line=...` workflow command at the first line of the user's code in its report,
//! so the leak shows on the pull request's diff.
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `global-allocator` | on | installs `CountingAlloc<System>` as the global allocator |
//! | `tokio` | off | the `tasks` dimension, `watch_runtime`, `Config::check_async` |
//! | `ffi` | off | Linux/glibc: the C heap (`malloc` and its family) counted in `heap`, and the `mapped` dimension (anonymous `mmap` outside the allocator) |
//! | `pprof` | off | `profile::Snapshot::write_pprof` (gzip `profile.proto`) |
//! | `plot` | off | an SVG plot of a failing soak's samples (plotters) |
//! | `stats_alloc` | off | heap counts from `stats_alloc::INSTRUMENTED_SYSTEM` instead |
//!
//! # Setup
//!
//! ```toml
//! [dev-dependencies]
//! no_leak = { path = "../no_leak" }   # until it is published; then: no_leak = "0.1"
//! ```
//!
//! The default feature `global-allocator` installs `CountingAlloc<System>` as the global allocator
//! of every test binary that links no_leak. With an allocator of your own (jemalloc, mimalloc),
//! turn the feature off and wrap yours in [`CountingAlloc`]. If your tests already install
//! `stats_alloc::INSTRUMENTED_SYSTEM`, turn the feature off and enable the feature `stats_alloc`:
//! heap counts then come from stats_alloc (process-wide only, so the closure API needs isolation,
//! and `peak` is not measured). The repository's `docs/setup.md` shows both.
//!
//! # Monitoring a running program
//!
//! [`Monitor`](monitor::Monitor) watches a program while it runs: a background thread samples
//! [`stats`] (a `Stats`: live heap bytes and blocks, allocation totals, threads, fds) at an
//! interval, compares each sample with a baseline, fits a least-squares line through live bytes over
//! the last `window` samples, and passes a typed [`Alert`](monitor::Alert) to a callback when live
//! bytes, blocks, threads or fds grow beyond their bounds or live bytes rise steadily (slope and R²
//! both over their thresholds, so that noise and a bounded cache's sawtooth stay quiet). Each
//! condition alerts once until it clears. Sampling allocates nothing, and dropping the monitor stops
//! and joins its thread. [`track_peak`](monitor::track_peak) adds the process-wide peak, at the
//! cost of a shared atomic on every allocation while it is on. `cargo run --example
//! service_monitor` shows it catching a leaking subscriber list.
//!
//! ```no_run
//! let monitor = no_leak::monitor::Monitor::builder()
//!     .interval(std::time::Duration::from_millis(500))
//!     .max_threads(8)
//!     .on_alert(|alert| eprintln!("leak suspected: {alert}"))
//!     .start();
//! // ... run the service ...
//! drop(monitor);
//! ```
//!
//! # Heap profiles
//!
//! [`profile`] answers "what is growing?" the way `go tool pprof -base heap1.pb.gz heap2.pb.gz`
//! does: [`profile::start`] captures the stack of every allocation of every thread (one profiler
//! per process; slow while it runs), [`Profiler::snapshot`](profile::Profiler::snapshot) groups
//! the memory live now by allocating line and by whole stack, and
//! [`Snapshot::diff`](profile::Snapshot::diff) lists the sites that grew since a base snapshot,
//! biggest first. With the cargo feature `pprof`, `Snapshot::write_pprof` writes a
//! gzip-compressed pprof `profile.proto` (`inuse_objects`, `inuse_space`) that `go tool pprof`
//! opens. `cargo run --example heap_profile` shows a growing cache named among steady churn.
//!
//! ```no_run
//! let profiler = no_leak::profile::start().unwrap();
//! let base = profiler.snapshot();
//! // ... run the workload ...
//! let diff = profiler.snapshot().diff(&base);
//! println!("{diff}"); // the biggest growers first, as `file:line (function)`
//! ```

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The layers, lowest first: backoff and loader (utilities), counting, diagnosis, longrun (soak,
// monitor, profiles, their trend), check, output, verdict, isolation, closure. Imports only point
// down (see ARCHITECTURE.md).
mod backoff;
mod check;
mod closure;
mod counting;
mod diagnosis;
mod isolation;
mod loader;
mod longrun;
mod output;
mod verdict;

pub use check::config::Config;
pub use check::report::{Dimension, Measure, Report};
pub use counting::alloc::CountingAlloc;
pub use counting::alloc::Totals;
pub use counting::heap::HeapSource;
pub use counting::stats::{stats, Stats};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use counting::tasks::{unwatch_runtime, watch_runtime};
pub use longrun::{monitor, profile};

/// The parts of a [`Report`]: counts, per-run deltas, the scope and heap source, new threads and
/// fds, and allocation sites.
pub mod report {
    pub use crate::check::report::{
        Count, Dimension, Measure, OneTime, PerMeasure, Report, RunDelta, WindowGrowth,
    };
    pub use crate::counting::census::{FdInfo, ThreadInfo};
    pub use crate::counting::heap::{HeapSource, Scope};
    pub use crate::diagnosis::retention::{HeldBy, Holder};
    pub use crate::diagnosis::sites::{Frame, Site};
}

/// Soak mode's results: the samples and the fitted trends (see [`Config::soak`]).
pub mod soak {
    pub use crate::longrun::soak::{SoakReport, SoakSample, Trend};
}

/// Marks a test as a leak check (and makes the function a test, if no test attribute is written
/// on it), or every test of an inline module. See the [crate documentation](crate) for the model,
/// where the attribute goes, and the arguments.
///
/// ```no_run
/// # use no_leak::no_leak;
/// #[derive(Debug)]
/// struct MyError;
///
/// #[test]
/// #[no_leak(warmup = 3, runs = 10, max_bytes = 64, max_blocks = 1, max_threads = 0, max_fds = 0, settle_ms = 1500)]
/// fn tolerant() -> Result<(), MyError> {
///     Ok(())
/// }
/// ```
pub use no_leak_macros::no_leak;

/// Runs a test alone in a child process of the test binary (not at all under nextest, where it
/// already is alone), once, unmeasured. Closure checks inside it then count the whole process:
/// every thread's heap, threads and fds.
///
/// ```no_run
/// #[test]
/// #[no_leak::isolated]
/// fn whole_process_is_counted() {
///     no_leak::check(|| {
///         std::thread::spawn(|| drop(vec![0u8; 10])).join().unwrap();
///     });
/// }
/// ```
pub use no_leak_macros::isolated;

pub use closure::check;

/// Checks `body` with the default [`Config`]: runs it 3 times, then 5 times measured, and panics
/// with the report if it leaked. See [`Config::check`].
///
/// ```
/// no_leak::check(|| {
///     let s = format!("{}", 42);
///     assert_eq!(s, "42");
/// });
/// ```
#[cfg(feature = "global-allocator")]
#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

/// Used by the code `#[no_leak]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::check::outcome::Outcome;
    pub use crate::isolation::runner::{run_isolated, run_test, TestFn};
    pub use crate::verdict::ShouldPanic;
}
