//! The result of a measurement, as data. Its text (the failure message people read in CI logs)
//! is written by `output::text`.

use std::fmt;
use std::time::Duration;

use crate::check::config::Config;
use crate::check::resources::Counts;
use crate::counting::census::{FdInfo, ThreadInfo};
use crate::counting::heap::{Heap, HeapSource, Scope};
use crate::diagnosis::sites::Site;
use crate::longrun::soak::SoakReport;

/// A measured dimension.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    /// Live heap bytes and blocks.
    Heap,
    /// The highest live heap within a run.
    Peak,
    /// Live OS threads.
    Threads,
    /// Open file descriptors.
    Fds,
    /// Alive async tasks on the watched runtimes (cargo feature `tokio`).
    Tasks,
    /// Live bytes of anonymous `mmap` made outside the allocator (cargo feature `ffi`).
    Mapped,
}

impl Dimension {
    /// The word reports use: `heap`, `peak`, `threads`, `fds`, `tasks`, `mapped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Heap => "heap",
            Dimension::Peak => "peak",
            Dimension::Threads => "threads",
            Dimension::Fds => "fds",
            Dimension::Tasks => "tasks",
            Dimension::Mapped => "mapped",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A count before the measured runs and after them (after settling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    /// Before the first measured run.
    pub before: i64,
    /// After the last measured run, and after settling if the check waited.
    pub after: i64,
}

impl From<(i64, i64)> for Count {
    /// `(before, after)`.
    fn from((before, after): (i64, i64)) -> Count {
        Count { before, after }
    }
}

impl Count {
    /// `after - before`.
    pub fn net(&self) -> i64 {
        self.after - self.before
    }
}

/// What one measured run changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunDelta {
    /// Net change of live heap bytes over this run.
    pub bytes: i64,
    /// Net change of live heap blocks over this run.
    pub blocks: i64,
    /// The highest live heap within this run above the live heap at its start, where measured.
    pub peak_bytes: Option<u64>,
}

/// What one confirmation window changed (see [`Report::confirmations`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowGrowth {
    /// Runs in the window.
    pub runs: u32,
    /// Net change of live heap bytes over the window.
    pub bytes: i64,
    /// Net change of live heap blocks over the window.
    pub blocks: i64,
    /// Net change of live threads, where measured.
    pub threads: Option<i64>,
    /// Net change of open fds, where measured.
    pub fds: Option<i64>,
    /// Net change of alive tasks, where measured.
    pub tasks: Option<i64>,
    /// Net change of mapped bytes, where measured.
    pub mapped: Option<i64>,
}

impl WindowGrowth {
    pub(crate) fn between(
        runs: u32,
        (start, end): (Heap, Heap),
        from: &Counts,
        to: &Counts,
    ) -> WindowGrowth {
        let net = |p: Option<(i64, i64)>| p.map(|(a, b)| b - a);
        let [threads, fds, tasks, mapped] = from.pairs(to).map(net);
        WindowGrowth {
            runs,
            bytes: end.bytes - start.bytes,
            blocks: end.blocks - start.blocks,
            threads,
            fds,
            tasks,
            mapped,
        }
    }
}

/// Growth in the first window that did not repeat in the confirmation windows: not a leak (see
/// [`Report::one_time`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OneTime {
    /// The dimensions that grew once and then held.
    pub dimensions: Vec<Dimension>,
    /// Net live heap bytes the first window gained.
    pub bytes: i64,
    /// Net live heap blocks the first window gained.
    pub blocks: i64,
    /// The measured run (from 1) that gained the most heap bytes.
    pub run: usize,
}

/// The outcome of a measurement. `Display` gives the same text as the panic of a failed check.
///
/// Every dimension that was not measured reads as `None`, with the reason in
/// [`not_measured_reason`](Report::not_measured_reason).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Report {
    /// The test (or [`Config::name`]) this report is about.
    pub(crate) name: String,
    /// The configuration it ran with.
    pub(crate) config: Config,
    /// Where the counts come from.
    pub(crate) scope: Scope,
    /// Which allocator counted the heap.
    pub(crate) heap_source: HeapSource,
    /// Live heap bytes before and after; `None` if the heap was not measured.
    pub(crate) bytes: Option<Count>,
    /// Live heap blocks before and after; `None` if the heap was not measured.
    pub(crate) blocks: Option<Count>,
    /// One entry per measured run.
    pub(crate) per_run: Vec<RunDelta>,
    /// The worst run's peak (see [`Config::max_peak_bytes`]); `None` if not measured.
    pub(crate) peak_bytes: Option<u64>,
    /// Live OS threads before and after; `None` if not measured.
    pub(crate) threads: Option<Count>,
    /// Open file descriptors before and after; `None` if not measured.
    pub(crate) fds: Option<Count>,
    /// Alive async tasks on the watched runtimes before and after; `None` if not measured.
    pub(crate) tasks: Option<Count>,
    /// Live bytes of anonymous maps made outside the allocator before and after; `None` if not
    /// measured.
    pub(crate) mapped: Option<Count>,
    /// Threads alive after the runs that were not alive before them.
    pub(crate) new_threads: Vec<ThreadInfo>,
    /// Descriptors open after the runs that were not open before them.
    pub(crate) new_fds: Vec<FdInfo>,
    /// Dimensions that were not measured, each with the reason.
    pub(crate) not_measured: Vec<(Dimension, String)>,
    /// How long the check waited for counts to settle (zero when it passed at once).
    pub(crate) settle_wait: Duration,
    /// The counts were still over a bound when `settle_ms` ran out.
    pub(crate) settle_gave_up: bool,
    /// The dimensions over their bounds, in report order.
    pub(crate) exceeded: Vec<Dimension>,
    /// Where the memory live after one more run (the diagnostic run, made only after a heap or
    /// thread leak was found) was allocated, biggest first.
    pub(crate) sites: Vec<Site>,
    /// Why `sites` is empty or partial, if it is.
    pub(crate) sites_note: Option<String>,
    /// Soak mode's samples and trends (see [`Config::soak`]).
    pub(crate) soak: Option<SoakReport>,
    /// What each confirmation window changed, when the first window exceeded a bound.
    pub(crate) confirmations: Vec<WindowGrowth>,
    /// Growth of the first window that did not repeat.
    pub(crate) one_time: Option<OneTime>,
    /// Why nothing could be measured, if so: the check fails rather than pass on zeros.
    pub(crate) unmeasurable: Option<String>,
    /// `NO_LEAK=off` was set: the body ran once and nothing was measured.
    pub(crate) off: bool,
    /// With the feature `ffi`: why the C heap is not counted in this process, if it is not.
    pub(crate) c_heap_not_measured: Option<&'static str>,
    /// Set by the diagnostic run of a heap leak with sites: who holds each site's memory is
    /// wanted, from a run (`isolation::retain`) that runs the body this many times before its
    /// diagnostic run.
    pub(crate) holders_wanted: Option<u32>,
}

impl Report {
    pub(crate) fn new(name: String, config: Config, scope: Scope) -> Report {
        Report {
            name,
            config,
            scope,
            heap_source: HeapSource::Missing,
            bytes: None,
            blocks: None,
            per_run: Vec::new(),
            peak_bytes: None,
            threads: None,
            fds: None,
            tasks: None,
            mapped: None,
            new_threads: Vec::new(),
            new_fds: Vec::new(),
            not_measured: Vec::new(),
            settle_wait: Duration::ZERO,
            settle_gave_up: false,
            exceeded: Vec::new(),
            sites: Vec::new(),
            sites_note: None,
            soak: None,
            confirmations: Vec::new(),
            one_time: None,
            unmeasurable: None,
            off: false,
            c_heap_not_measured: c_heap_not_measured(),
            holders_wanted: None,
        }
    }

    /// True if any bound was exceeded, or if the heap could not be measured at all (a check never
    /// passes on zeros).
    pub fn is_leak(&self) -> bool {
        !self.exceeded.is_empty() || self.unmeasurable.is_some()
    }

    /// True if `dim` is over its bound.
    pub fn exceeds(&self, dim: Dimension) -> bool {
        self.exceeded.contains(&dim)
    }

    /// The test (or [`Config::name`]) this report is about.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration it ran with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the counts come from.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Which allocator counted the heap.
    pub fn heap_source(&self) -> HeapSource {
        self.heap_source
    }

    /// Live heap bytes before and after the measured runs; `None` if not measured.
    pub fn bytes(&self) -> Option<Count> {
        self.bytes
    }

    /// Live heap blocks before and after the measured runs; `None` if not measured.
    pub fn blocks(&self) -> Option<Count> {
        self.blocks
    }

    /// Net growth of live heap bytes over the measured runs; `None` if not measured.
    pub fn net_bytes(&self) -> Option<i64> {
        self.bytes.map(|c| c.net())
    }

    /// Net growth of live heap blocks over the measured runs; `None` if not measured.
    pub fn net_blocks(&self) -> Option<i64> {
        self.blocks.map(|c| c.net())
    }

    /// One entry per measured run.
    pub fn per_run(&self) -> &[RunDelta] {
        &self.per_run
    }

    /// The worst run's peak (see [`Config::max_peak_bytes`]); `None` if not measured.
    pub fn peak_bytes(&self) -> Option<u64> {
        self.peak_bytes
    }

    /// Live OS threads before and after; `None` if not measured.
    pub fn threads(&self) -> Option<Count> {
        self.threads
    }

    /// Open file descriptors before and after; `None` if not measured.
    pub fn fds(&self) -> Option<Count> {
        self.fds
    }

    /// Alive async tasks on the watched runtimes before and after; `None` if not measured.
    pub fn tasks(&self) -> Option<Count> {
        self.tasks
    }

    /// Live bytes of anonymous `mmap` made outside the allocator (cargo feature `ffi`), before
    /// and after; `None` if not measured.
    pub fn mapped(&self) -> Option<Count> {
        self.mapped
    }

    /// Net growth of mapped bytes; `None` if not measured.
    pub fn net_mapped(&self) -> Option<i64> {
        self.mapped.map(|c| c.net())
    }

    /// Net growth of live threads; `None` if not measured.
    pub fn net_threads(&self) -> Option<i64> {
        self.threads.map(|c| c.net())
    }

    /// Net growth of open fds; `None` if not measured.
    pub fn net_fds(&self) -> Option<i64> {
        self.fds.map(|c| c.net())
    }

    /// Net growth of alive async tasks; `None` if not measured.
    pub fn net_tasks(&self) -> Option<i64> {
        self.tasks.map(|c| c.net())
    }

    /// Threads alive after the runs that were not alive before them.
    pub fn new_threads(&self) -> &[ThreadInfo] {
        &self.new_threads
    }

    /// Descriptors open after the runs that were not open before them.
    pub fn new_fds(&self) -> &[FdInfo] {
        &self.new_fds
    }

    /// How long the check waited for counts to settle (zero when it passed at once).
    pub fn settle_wait(&self) -> Duration {
        self.settle_wait
    }

    /// The counts were still over a bound when `settle_ms` ran out.
    pub fn settle_gave_up(&self) -> bool {
        self.settle_gave_up
    }

    /// The dimensions over their bounds, in report order.
    pub fn exceeded(&self) -> &[Dimension] {
        &self.exceeded
    }

    /// Where the memory live after the diagnostic run (made only after a heap or thread leak was
    /// found) was allocated, biggest first.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// With the cargo feature `ffi`: why the C heap (`malloc` and its family) is not counted in
    /// this process, if it is not (not Linux with glibc, or another `malloc` takes the calls).
    /// `None` when it is counted, and always without the feature.
    pub fn c_heap_not_measured(&self) -> Option<&str> {
        self.c_heap_not_measured
    }

    /// Why [`sites`](Report::sites) is empty or partial, if it is.
    pub fn sites_note(&self) -> Option<&str> {
        self.sites_note.as_deref()
    }

    /// Soak mode's samples and trends (see [`Config::soak`]); `None` outside soak mode.
    pub fn soak(&self) -> Option<&SoakReport> {
        self.soak.as_ref()
    }

    /// How many times the body ran before the diagnostic run: warmup, the first window and the
    /// confirmation windows.
    pub(crate) fn runs_before_diagnosis(&self) -> u32 {
        let windows: u32 = self.confirmations.iter().map(|w| w.runs).sum();
        self.config.warmup + self.config.runs + windows
    }

    /// When the first window exceeded a bound, what each confirmation window changed: a leak
    /// grows again in every one of them (see the crate docs on confirmation).
    pub fn confirmations(&self) -> &[WindowGrowth] {
        &self.confirmations
    }

    /// Growth of the first window that did not repeat in the confirmation windows: the check
    /// passed, and this says what grew once.
    pub fn one_time(&self) -> Option<&OneTime> {
        self.one_time.as_ref()
    }

    /// Why nothing could be measured, if so: the check fails rather than pass on zeros.
    pub fn unmeasurable(&self) -> Option<&str> {
        self.unmeasurable.as_deref()
    }

    /// `NO_LEAK=off` was set: the body ran once and nothing was measured.
    pub fn is_off(&self) -> bool {
        self.off
    }

    /// Why `dim` was not measured, or `None` if it was.
    pub fn not_measured_reason(&self, dim: Dimension) -> Option<&str> {
        self.not_measured
            .iter()
            .find(|(d, _)| *d == dim)
            .map(|(_, why)| why.as_str())
    }
}

/// Why the C heap is not measured (feature `ffi`), decided once per process.
#[cfg(feature = "ffi")]
fn c_heap_not_measured() -> Option<&'static str> {
    crate::counting::c_heap::not_measured()
}

#[cfg(not(feature = "ffi"))]
fn c_heap_not_measured() -> Option<&'static str> {
    None
}
