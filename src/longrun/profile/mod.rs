//! Heap profiles: live memory by allocation site, and what grew between two snapshots.
//!
//! This is the `go tool pprof -base heap1.pb.gz heap2.pb.gz` workflow, in process: start a
//! [`Profiler`], take a [`Snapshot`] as the base, run the workload, take another, and
//! [`Snapshot::diff`] the two. The sites that grew come first, named by the line that allocated.
//!
//! ```no_run
//! let profiler = no_leak::profile::start().expect("no other profiler runs");
//! let mut cache = Vec::new();
//! let base = profiler.snapshot();
//! for i in 0..1000 {
//!     cache.push(vec![0u8; 512]); // grows
//!     drop(format!("request {i}")); // churn: freed at once
//! }
//! let now = profiler.snapshot();
//! let diff = now.diff(&base);
//! println!("{diff}"); // the line of `vec![0u8; 512]` first, +512000 B in +1000 blocks
//! ```
//!
//! **What a snapshot holds.** Every block allocated through no_leak's [`CountingAlloc`], on any
//! thread, *since the profiler started*, and not freed yet, exactly (no sampling): its size and
//! the stack that allocated it. Blocks allocated before [`start`] are not seen at all, so start
//! the profiler before the workload whose growth you want to see. A snapshot groups the blocks
//! two ways: by [`Site`](crate::report::Site), the first frame in the user's own code (as a leak report names it), and
//! by [`StackSample`], the whole stack with std's frames folded away, which is what a pprof
//! viewer draws its call graph from.
//!
//! **pprof files** (cargo feature `pprof`): `Snapshot::write_pprof` writes a gzip-compressed
//! pprof `profile.proto`, as Go's `/debug/pprof/heap` serves, with the sample types
//! `inuse_objects` (count) and `inuse_space` (bytes). `go tool pprof -top heap.pb.gz` lists it,
//! and `go tool pprof -top -base base.pb.gz heap.pb.gz` shows the growth between two snapshots.
//!
//! Lines come from debug info: test and dev builds have it; a release build needs
//! `debug = "line-tables-only"` (or more) in its cargo profile, or sites show functions only.
//!
//! **Cost.** While a profiler runs, every allocation of every thread unwinds its stack and
//! records it in a table (a global lock): allocation-heavy code runs many times slower. Taking a
//! snapshot symbolises each distinct address once per profiler. Profile a workload, not a
//! benchmark; a check's counts stay exact meanwhile.
//!
//! **One at a time.** A profiler shares the capture machinery with the diagnostic run of a
//! failing leak check, and only one capture runs per process: [`start`] fails with
//! [`StartError::Busy`] while another profiler, or a diagnostic run, is capturing. While a
//! profiler runs, a failing check on the profiler's thread reports its sites as "not captured",
//! and one on another thread waits for the profiler to end before its diagnostic run. Use
//! profiles in a program of their own or in a test under [`isolated`](crate::isolated), where the
//! whole process is yours.
//!
//! [`CountingAlloc`]: crate::CountingAlloc

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

use crate::counting::capture::{without_capture, Capture, Who};
use crate::diagnosis::sites::Resolver;

mod diff;
#[cfg(feature = "pprof")]
mod pprof;
#[cfg(feature = "pprof")]
#[cfg_attr(docsrs, doc(cfg(feature = "pprof")))]
pub mod proto;
mod snapshot;
mod table;

pub use diff::{Diff, SiteDelta};
pub use snapshot::{Snapshot, StackSample};

/// Starts a heap profiler that captures the allocations of every thread of the process.
///
/// Fails at once, without waiting, if another profiler or a failing check's diagnostic run is
/// capturing allocation sites ([`StartError::Busy`]), or if no_leak's [`CountingAlloc`] is not the
/// global allocator ([`StartError::NoAllocator`]).
///
/// [`CountingAlloc`]: crate::CountingAlloc
pub fn start() -> Result<Profiler, StartError> {
    if !crate::counting::alloc::probe_installed() {
        return Err(StartError::NoAllocator);
    }
    let resolver = RefCell::new(without_capture(Resolver::new));
    let capture = Capture::try_start(Who::All).ok_or(StartError::Busy)?;
    Ok(Profiler {
        capture,
        resolver,
        started: Instant::now(),
    })
}

/// Why [`start`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// Another profiler, or the diagnostic run of a failing check, is capturing allocation sites.
    /// Only one capture runs at a time in a process.
    Busy,
    /// No allocation went through no_leak's `CountingAlloc`: with another global allocator (or
    /// stats_alloc's) there is nothing to capture.
    NoAllocator,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Busy => f.write_str(
                "another heap profiler or a leak check's diagnostic run is capturing allocation \
                 sites; only one capture runs at a time",
            ),
            StartError::NoAllocator => f.write_str(
                "no_leak's CountingAlloc is not the global allocator, so allocations cannot be \
                 captured (enable the default feature `global-allocator`, or wrap your allocator \
                 in no_leak::CountingAlloc)",
            ),
        }
    }
}

impl std::error::Error for StartError {}

/// A running heap profiler. Capture stops when it is dropped, on the thread that started it (it
/// is not `Send`).
pub struct Profiler {
    capture: Capture,
    /// Addresses resolved by earlier snapshots.
    resolver: RefCell<Resolver>,
    started: Instant,
}

impl fmt::Debug for Profiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profiler")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl Profiler {
    /// The memory live now, allocated since the profiler started, by site and by stack.
    ///
    /// What the snapshot itself allocates is not captured, so it never shows in later snapshots.
    pub fn snapshot(&self) -> Snapshot {
        without_capture(|| self.take())
    }

    /// How long the profiler has been running.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}
