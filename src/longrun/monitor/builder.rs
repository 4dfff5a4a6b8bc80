//! The monitor's settings and their builder, and starting the monitor.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::rules::State;
use super::sampler::{lock, sampler, Control, Shared};
#[cfg(doc)]
use super::AlertKind;
use super::{track_peak, Alert, Monitor};

/// The default sampling interval: 1 s.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The default trend window: the last 30 samples.
const DEFAULT_WINDOW: usize = 30;
/// The default number of samples kept: 600 (10 minutes at the default interval).
const DEFAULT_HISTORY: usize = 600;

#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    pub(super) interval: Duration,
    pub(super) window: usize,
    pub(super) history: usize,
    pub(super) baseline_after: Duration,
    pub(super) max_bytes: u64,
    pub(super) max_blocks: u64,
    pub(super) max_threads: u64,
    pub(super) max_fds: u64,
    pub(super) max_mapped_bytes: u64,
    pub(super) max_slope_bytes_per_sec: f64,
    pub(super) min_r_squared: f64,
    pub(super) manual: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interval: DEFAULT_INTERVAL,
            window: DEFAULT_WINDOW,
            history: DEFAULT_HISTORY,
            baseline_after: Duration::ZERO,
            max_bytes: 64 << 20,
            max_blocks: 100_000,
            max_threads: 16,
            max_fds: 64,
            max_mapped_bytes: 64 << 20,
            max_slope_bytes_per_sec: 1024.0,
            min_r_squared: 0.9,
            manual: false,
        }
    }
}

pub(super) type Callback = Box<dyn FnMut(Alert) + Send>;

/// Configures and starts a [`Monitor`]; from [`Monitor::builder`].
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`interval`](Self::interval) | 1 s | time between samples |
/// | [`window`](Self::window) | 30 samples | samples the trend is fitted over; also how long a condition must stay away before it can alert again |
/// | [`history`](Self::history) | 600 samples | samples kept for [`Monitor::samples`] (at least `window`) |
/// | [`baseline_after`](Self::baseline_after) | 0 | time before the baseline is taken; nothing is checked before it |
/// | [`max_bytes`](Self::max_bytes) | 64 MiB | allowed growth of live heap bytes over the baseline |
/// | [`max_blocks`](Self::max_blocks) | 100 000 | allowed growth of live heap blocks |
/// | [`max_threads`](Self::max_threads) | 16 | allowed growth of live OS threads |
/// | [`max_fds`](Self::max_fds) | 64 | allowed growth of open file descriptors |
/// | [`max_mapped_bytes`](Self::max_mapped_bytes) | 64 MiB | allowed growth of bytes in anonymous `mmap` made outside the allocator (feature `ffi`) |
/// | [`max_slope_bytes_per_sec`](Self::max_slope_bytes_per_sec) | 1024 B/s | allowed steady growth of live heap bytes: a fitted slope at or above it (with R² at or above `min_r_squared`) is a trend |
/// | [`min_r_squared`](Self::min_r_squared) | 0.9 | smallest fit quality (R²) that counts as a trend |
/// | [`on_alert`](Self::on_alert) | print to stderr | what to do with an alert |
/// | [`track_peak`](Self::track_peak) | off | also track the process-wide peak (see [`track_peak`]) |
/// | [`manual`](Self::manual) | off | no sampling thread: the caller samples |
///
/// A growth bound of `u64::MAX` switches that check off.
#[must_use = "a builder does nothing until `start` is called"]
#[derive(Default)]
pub struct MonitorBuilder {
    settings: Settings,
    on_alert: Option<Callback>,
    track_peak: bool,
}

impl MonitorBuilder {
    /// Time between samples (default 1 s). Panics if zero.
    pub fn interval(mut self, interval: Duration) -> Self {
        assert!(!interval.is_zero(), "Monitor interval must not be zero");
        self.settings.interval = interval;
        self
    }

    /// How many of the latest samples the trend is fitted over (default 30, at least 3; panics
    /// below). Choose it so that the window spans at least two cycles of any legitimate pattern of
    /// the program (a cache that fills and is flushed, a batch that builds up and is sent): over
    /// two whole cycles a sawtooth's fit has an R² of at most about 1/4, far below the default
    /// `min_r_squared`; within one rising edge it looks exactly like a leak.
    pub fn window(mut self, samples: usize) -> Self {
        assert!(samples >= 3, "Monitor window must be at least 3 samples");
        self.settings.window = samples;
        self
    }

    /// How many samples to keep for [`Monitor::samples`] (default 600; raised to `window` if
    /// smaller). Allocated when the monitor starts.
    pub fn history(mut self, samples: usize) -> Self {
        self.settings.history = samples;
        self
    }

    /// Time to wait before taking the baseline (default 0): samples before it are kept but not
    /// checked, so start-up work (pools, caches filling to their bound) is not growth.
    pub fn baseline_after(mut self, after: Duration) -> Self {
        self.settings.baseline_after = after;
        self
    }

    /// Alert when live heap bytes exceed the baseline by more than this (default 64 MiB).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.settings.max_bytes = bytes;
        self
    }

    /// Alert when live heap blocks exceed the baseline by more than this (default 100 000).
    pub fn max_blocks(mut self, blocks: u64) -> Self {
        self.settings.max_blocks = blocks;
        self
    }

    /// Alert when live OS threads exceed the baseline by more than this (default 16). Linux only.
    pub fn max_threads(mut self, threads: u64) -> Self {
        self.settings.max_threads = threads;
        self
    }

    /// Alert when open file descriptors exceed the baseline by more than this (default 64). Linux
    /// only.
    pub fn max_fds(mut self, fds: u64) -> Self {
        self.settings.max_fds = fds;
        self
    }

    /// Alert when bytes in anonymous `mmap` made outside the allocator exceed the baseline by
    /// more than this (default 64 MiB). Cargo feature `ffi`, on Linux with glibc (x86-64, aarch64).
    pub fn max_mapped_bytes(mut self, bytes: u64) -> Self {
        self.settings.max_mapped_bytes = bytes;
        self
    }

    /// The steady growth of live heap bytes allowed, in bytes per second (default 1024): a
    /// least-squares slope at or above it (with R² at or above
    /// [`min_r_squared`](Self::min_r_squared)) raises [`AlertKind::BytesTrend`].
    /// `f64::INFINITY` switches the trend check off.
    pub fn max_slope_bytes_per_sec(mut self, bytes_per_sec: f64) -> Self {
        self.settings.max_slope_bytes_per_sec = bytes_per_sec;
        self
    }

    /// The smallest R² (0 to 1) of the fitted line that counts as a trend (default 0.9): how much
    /// of the ups and downs over the window the straight line explains. Noise has an R² near 0.
    pub fn min_r_squared(mut self, r_squared: f64) -> Self {
        self.settings.min_r_squared = r_squared;
        self
    }

    /// What to do with each alert (default: print it to stderr as
    /// `no_leak monitor: <alert>`). Called on the sampling thread (or on the thread calling
    /// [`Monitor::sample_now`]), one alert at a time; keep it short, sampling waits for it, and
    /// do not call the monitor's sampling methods from it. A panic in it ends the sampling
    /// thread, and [`Monitor::stop`] re-raises it.
    pub fn on_alert(mut self, f: impl FnMut(Alert) + Send + 'static) -> Self {
        self.on_alert = Some(Box::new(f));
        self
    }

    /// Also track the process-wide peak of live bytes while the monitor runs, so that every
    /// sample's `stats.peak_bytes` is set (default off). See [`track_peak`]
    /// for what that costs every allocation.
    pub fn track_peak(mut self, on: bool) -> Self {
        self.track_peak = on;
        self
    }

    /// Start no sampling thread: samples are taken only by [`Monitor::sample_now`] and
    /// [`Monitor::sample_at`], on the caller's thread. For tests and simulations that step a
    /// workload and the monitor in lockstep.
    pub fn manual(mut self) -> Self {
        self.settings.manual = true;
        self
    }

    /// Starts the monitor. Allocates its buffers, starts the sampling thread (named
    /// `no_leak-monitor`) unless [`manual`](Self::manual), and returns once the first sample has
    /// been taken: without [`baseline_after`](Self::baseline_after), that sample is the baseline, so whatever the caller does
    /// next is measured against it.
    pub fn start(self) -> Monitor {
        let mut settings = self.settings;
        settings.history = settings.history.max(settings.window);
        let peak = self.track_peak.then(track_peak);
        let shared = Arc::new(Shared {
            settings,
            start: Instant::now(),
            start_wall: SystemTime::now(),
            state: Mutex::new(State::new(&settings)),
            control: Mutex::new(Control {
                stop: false,
                ready: false,
            }),
            wake: Condvar::new(),
            on_alert: Mutex::new(self.on_alert.unwrap_or_else(|| {
                Box::new(|alert| {
                    use std::io::Write;
                    let _ = writeln!(std::io::stderr(), "no_leak monitor: {alert}");
                })
            })),
        });
        let thread = if settings.manual {
            // The manual clock starts at zero.
            shared.sample(Some(Duration::ZERO));
            None
        } else {
            let worker = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name("no_leak-monitor".into())
                .spawn(move || sampler(worker))
                .expect("no_leak: cannot start the monitor thread");
            let mut ctl = lock(&shared.control);
            while !ctl.ready {
                ctl = shared.wake.wait(ctl).unwrap_or_else(|e| e.into_inner());
            }
            drop(ctl);
            Some(handle)
        };
        Monitor {
            shared,
            thread,
            _peak: peak,
        }
    }
}
