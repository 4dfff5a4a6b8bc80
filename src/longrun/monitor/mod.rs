//! [`Monitor`]: watches a running program for leaks in the background.
//!
//! A sampling thread takes a [`Stats`] snapshot every `interval`, keeps the last `history` samples
//! in a ring buffer allocated up front, and checks each new sample against the baseline (the first
//! sample, or the first after `baseline_after`) and against a least-squares trend over the last `window`
//! samples. Conditions that start to hold are passed to the alert callback as typed [`Alert`]s.
//!
//! Sampling allocates nothing: the snapshot is allocation-free, the ring and the regression's
//! scratch space are allocated when the monitor starts, and the alerts of one sample are collected
//! in a fixed array. So the monitor does not disturb the heap it measures.

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

mod alert;
mod builder;
mod ring;
mod rules;
mod sampler;
#[cfg(test)]
mod tests;

pub use crate::counting::alloc::Totals;
pub use crate::counting::stats::{track_peak, PeakTracking, Stats};
pub use alert::{Alert, AlertKind};
pub use builder::MonitorBuilder;
use sampler::{lock, Shared};

/// One sample the [`Monitor`] took.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// When, since the monitor started.
    pub elapsed: Duration,
    /// The process snapshot.
    pub stats: Stats,
}

/// Watches the running process for leaks: a background thread samples [`stats`](crate::stats)
/// at an interval and calls an alert callback when live heap bytes, heap blocks, threads, fds or
/// mapped bytes grow beyond their bounds over a baseline, or when live bytes rise steadily.
///
/// ```no_run
/// use std::time::Duration;
/// use no_leak::monitor::{AlertKind, Monitor};
///
/// let monitor = Monitor::builder()
///     .interval(Duration::from_millis(500))
///     .window(20) // the trend is fitted over the last 10 s
///     .max_bytes(256 << 20)
///     .max_threads(8)
///     .on_alert(|alert| {
///         eprintln!("leak suspected: {alert}");
///         if alert.kind == AlertKind::BytesTrend { /* page someone */ }
///     })
///     .start();
/// // ... run the service ...
/// let samples = monitor.stop();
/// ```
///
/// **The checks.** Each sample after the baseline is compared with it: growth of live bytes,
/// live blocks, threads or fds by more than the configured bound raises the matching growth alert.
/// The trend check fits a least-squares line to live bytes over the last `window` samples (once
/// that many have been taken since the baseline) and raises [`AlertKind::BytesTrend`] when the
/// slope reaches `max_slope_bytes_per_sec` (the growth allowed) *and* R² is at least `min_r_squared`. R² is what
/// keeps it quiet on noise (R² near 0) and on a bounded cache's sawtooth, as long as the window
/// spans two of its cycles (R² at most 1/4 whatever the phase); a steady leak is a line (R² near
/// 1), and `max_slope_bytes_per_sec` lets lines too flat to matter pass. This replaces the common
/// "the last 4 of 5 samples rose" rule, which a bounded cache trips on every refill (any 5
/// samples of a rising edge), flat noise trips by chance (5 independent values come out in rising
/// order once in 120 windows: every two minutes at one sample per second), and a real leak
/// smaller than the noise between two samples rarely trips at all.
///
/// **Alerting once.** An alert is raised when its condition starts to hold; while it keeps holding
/// it is not raised again. The condition clears after `window` consecutive samples without it, and
/// the next time it holds it is raised again. So a leak gives one alert per kind, and a value
/// hovering around its bound does not flap.
///
/// **The monitor's own footprint.** Its thread, ring buffer and scratch space exist before the
/// baseline is taken, and sampling allocates nothing, so the monitor never shows in its own
/// numbers. Dropping the monitor (or [`stop`](Self::stop)) stops and joins its thread and frees
/// everything: a `#[no_leak]` test that starts and drops a monitor passes.
///
/// The heap numbers need a counting allocator ([`CountingAlloc`](crate::CountingAlloc), which the
/// default feature installs, or stats_alloc with the feature `stats_alloc`); without one they stay
/// 0 and never alert. Threads and fds are measured on Linux only.
pub struct Monitor {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    _peak: Option<PeakTracking>,
}

impl Monitor {
    /// A builder with the defaults (see [`MonitorBuilder`]).
    pub fn builder() -> MonitorBuilder {
        MonitorBuilder::default()
    }

    /// Takes a sample now, on the calling thread, checks it, passes any alerts to the callback
    /// (on this thread) and returns them too. Works with or without the sampling thread.
    pub fn sample_now(&self) -> Vec<Alert> {
        self.shared.sample(None).to_vec()
    }

    /// Takes a sample now but records it as taken at `elapsed` after the start, then checks it
    /// like [`sample_now`](Self::sample_now): a manual clock, so that the trend's time axis is
    /// exactly what a test or simulation says, whatever the scheduler does.
    ///
    /// Panics unless the monitor is [`manual`](MonitorBuilder::manual), or if `elapsed` is before
    /// the previous sample.
    pub fn sample_at(&self, elapsed: Duration) -> Vec<Alert> {
        assert!(
            self.shared.settings.manual,
            "Monitor::sample_at needs a manual monitor (MonitorBuilder::manual)"
        );
        self.shared.sample(Some(elapsed)).to_vec()
    }

    /// The samples kept, oldest first: at most `history` of them.
    pub fn samples(&self) -> Vec<Sample> {
        self.shared.state().ring.iter_last(usize::MAX).collect()
    }

    /// The baseline sample, once taken.
    pub fn baseline(&self) -> Option<Sample> {
        self.shared.state().baseline
    }

    /// The latest sample.
    pub fn latest(&self) -> Option<Sample> {
        self.shared.state().ring.iter_last(1).next()
    }

    /// How many samples have been taken, including those no longer kept.
    pub fn sample_count(&self) -> u64 {
        self.shared.state().taken
    }

    /// How many alerts have been raised so far.
    pub fn alert_count(&self) -> u64 {
        self.shared.state().alerts
    }

    /// When the monitor started, on the wall clock.
    pub fn started_at(&self) -> SystemTime {
        self.shared.start_wall
    }

    /// Stops and joins the sampling thread and returns the samples kept, oldest first. If the
    /// alert callback panicked on the sampling thread, the panic is re-raised here.
    pub fn stop(mut self) -> Vec<Sample> {
        if let Err(payload) = self.halt() {
            std::panic::resume_unwind(payload);
        }
        self.samples()
    }

    fn halt(&mut self) -> std::thread::Result<()> {
        let Some(handle) = self.thread.take() else {
            return Ok(());
        };
        lock(&self.shared.control).stop = true;
        self.shared.wake.notify_all();
        handle.join()
    }
}

impl Drop for Monitor {
    /// Stops and joins the sampling thread. A panic of the alert callback is not re-raised here
    /// (the panic hook has already printed it); use [`Monitor::stop`] to see it.
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("settings", &self.shared.settings)
            .field("samples", &self.sample_count())
            .field("alerts", &self.alert_count())
            .finish_non_exhaustive()
    }
}
