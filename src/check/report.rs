//! The result of a measurement, as data. Its text (the failure message people read in CI logs)
//! is written by `output::text`.

use std::time::Duration;

use crate::check::config::Config;
pub use crate::check::measure::{Dimension, Measure, PerMeasure};
use crate::check::resources::Counts;
use crate::counting::census::{FdInfo, ThreadInfo};
use crate::counting::heap::{HeapSource, Scope};
use crate::diagnosis::sites::Site;
use crate::longrun::soak::SoakReport;

/// A count before the measured runs and after them (after settling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Net change of each measure over the window; `None` where not measured. The heap's (bytes
    /// and blocks) is always measured.
    pub net: PerMeasure<Option<i64>>,
}

impl WindowGrowth {
    /// The window's growth from the counts at its start (`from`) to those at its end (`to`); a
    /// measure read at only one of them is `None`.
    pub(crate) fn between(runs: u32, from: &Counts, to: &Counts) -> WindowGrowth {
        WindowGrowth {
            runs,
            net: from.zip(*to).map(|_, (a, b)| Some(b? - a?)),
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
    pub run: u32,
}

/// The outcome of a measurement, as a record: every part is a public field (its parts are
/// records too: [`Count`], [`RunDelta`], [`WindowGrowth`], [`OneTime`]); the methods give derived
/// answers. `Display` gives the same text as the panic of a failed check.
///
/// Every count that was not measured reads as `None`, with the reason in
/// [`not_measured_reason`](Report::not_measured_reason).
///
/// ```
/// use no_leak::report::Measure;
///
/// let r = no_leak::Config::new().measure(|| drop(vec![1u8; 64]));
/// assert!(!r.is_leak(), "{r}");
/// assert_eq!(r.net(Measure::Bytes), Some(0), "{r}");
/// assert!(!r.over_bound.any(), "nothing grew beyond its bound: {r}");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Report {
    /// The test (or [`Config::name`]) this report is about.
    pub name: String,
    /// The configuration it ran with.
    pub config: Config,
    /// Where the counts come from.
    pub scope: Scope,
    /// Which allocator counted the heap.
    pub heap_source: HeapSource,
    /// Each measure before and after the measured runs (after settling, if the check waited);
    /// `None` where not measured. See [`count`](Report::count) and [`net`](Report::net).
    pub counts: PerMeasure<Option<Count>>,
    /// The measures whose growth over the measured runs (the first window, after settling)
    /// exceeded their bounds: the decision the dimensions in [`exceeded`](Report::exceeded) and
    /// [`one_time`](Report::one_time) start from, before confirmation. All false in soak mode,
    /// which decides by trend.
    pub over_bound: PerMeasure<bool>,
    /// One entry per measured run.
    pub per_run: Vec<RunDelta>,
    /// The worst run's peak (see [`Config::max_peak_bytes`]); `None` if not measured.
    pub peak_bytes: Option<u64>,
    /// Threads alive after the runs that were not alive before them.
    pub new_threads: Vec<ThreadInfo>,
    /// Descriptors open after the runs that were not open before them.
    pub new_fds: Vec<FdInfo>,
    /// Dimensions that were not measured, each with the reason (see
    /// [`not_measured_reason`](Report::not_measured_reason)).
    pub not_measured: Vec<(Dimension, String)>,
    /// How long the check waited for counts to settle (zero when it passed at once).
    pub settle_wait: Duration,
    /// The counts were still over a bound when `settle_ms` ran out.
    pub settle_gave_up: bool,
    /// The dimensions over their bounds, in report order.
    pub exceeded: Vec<Dimension>,
    /// Where the memory live after one more run (the diagnostic run, made only after a heap or
    /// thread leak was found) was allocated, biggest first.
    pub sites: Vec<Site>,
    /// Why `sites` is empty or partial, if it is.
    pub sites_note: Option<String>,
    /// Soak mode's samples and trends (see [`Config::soak`]); `None` outside soak mode.
    pub soak: Option<SoakReport>,
    /// When the first window exceeded a bound, what each confirmation window changed: a leak
    /// grows again in every one of them (see the crate docs on confirmation).
    pub confirmations: Vec<WindowGrowth>,
    /// Growth of the first window that did not repeat in the confirmation windows: the check
    /// passed, and this says what grew once.
    pub one_time: Option<OneTime>,
    /// Why nothing could be measured, if so: the check fails rather than pass on zeros.
    pub unmeasurable: Option<String>,
    /// `NO_LEAK=off` was set: the body ran once and nothing was measured.
    pub off: bool,
    /// With the cargo feature `ffi`: why the C heap (`malloc` and its family) is not counted in
    /// this process, if it is not (not Linux with glibc, or another `malloc` takes the calls).
    /// `None` when it is counted, and always without the feature.
    pub c_heap_not_measured: Option<&'static str>,
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
            counts: PerMeasure::splat(None),
            over_bound: PerMeasure::splat(false),
            per_run: Vec::new(),
            peak_bytes: None,
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

    /// `m` before and after the measured runs (`counts[m]`); `None` if not measured.
    pub fn count(&self, m: Measure) -> Option<Count> {
        self.counts[m]
    }

    /// Net growth of `m` over the measured runs; `None` if not measured.
    pub fn net(&self, m: Measure) -> Option<i64> {
        self.counts[m].map(|c| c.net())
    }

    /// How many times the body ran before the diagnostic run: warmup, the first window and the
    /// confirmation windows.
    pub(crate) fn runs_before_diagnosis(&self) -> u32 {
        let windows: u32 = self.confirmations.iter().map(|w| w.runs).sum();
        self.config.warmup + self.config.runs + windows
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The hint offers the bounds of the measures the check found over (recorded on the report),
    /// not what the text would decide again from the counts.
    #[test]
    fn the_text_offers_the_bounds_of_the_recorded_measures() {
        let mut r = Report::new("t".into(), Config::new(), Scope::Process);
        r.counts[Measure::Bytes] = Some((100, 180).into());
        r.counts[Measure::Blocks] = Some((10, 15).into());
        r.exceeded = vec![Dimension::Heap];
        r.over_bound[Measure::Blocks] = true;
        let text = r.to_string();
        assert!(text.contains("#[no_leak(max_blocks = 5)]"), "{text}");
        r.over_bound[Measure::Bytes] = true;
        let text = r.to_string();
        assert!(
            text.contains("#[no_leak(max_bytes = 80, max_blocks = 5)]"),
            "{text}"
        );
    }

    #[test]
    fn a_window_measures_growth_only_where_read_at_both_ends() {
        let mut from = Counts::splat(None);
        let mut to = Counts::splat(None);
        (from[Measure::Bytes], to[Measure::Bytes]) = (Some(100), Some(164));
        (from[Measure::Fds], to[Measure::Fds]) = (Some(7), Some(5));
        to[Measure::Threads] = Some(3);
        let w = WindowGrowth::between(8, &from, &to);
        assert_eq!(w.runs, 8);
        assert_eq!(w.net[Measure::Bytes], Some(64));
        assert_eq!(w.net[Measure::Fds], Some(-2));
        assert_eq!(w.net[Measure::Threads], None);
        assert_eq!(w.net[Measure::Blocks], None);
    }
}
