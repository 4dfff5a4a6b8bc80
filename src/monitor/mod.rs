//! [`Monitor`]: watches a running program for leaks in the background.
//!
//! A sampling thread takes a [`Stats`] snapshot every `interval`, keeps the last `history` samples
//! in a ring buffer allocated up front, and checks each new sample against the baseline (the first
//! sample, or the first after `warmup`) and against a least-squares trend over the last `window`
//! samples. Conditions that start to hold are passed to the alert callback as typed [`Alert`]s.
//!
//! Sampling allocates nothing: the snapshot is allocation-free, the ring and the regression's
//! scratch space are allocated when the monitor starts, and the alerts of one sample are collected
//! in a fixed array. So the monitor does not disturb the heap it measures.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::check::trend::{least_squares, Fit};
pub use crate::counting::alloc::Totals;
use crate::counting::stats::stats;
pub use crate::counting::stats::{track_peak, PeakTracking, Stats};

/// What an [`Alert`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AlertKind {
    /// Live heap bytes grew more than `max_bytes` over the baseline.
    BytesGrowth,
    /// Live heap blocks grew more than `max_blocks` over the baseline.
    BlocksGrowth,
    /// Live OS threads grew more than `max_threads` over the baseline.
    ThreadsGrowth,
    /// Open file descriptors grew more than `max_fds` over the baseline.
    FdsGrowth,
    /// Live heap bytes rose steadily over the last `window` samples: the least-squares slope is at
    /// least `min_slope_bytes_per_sec` and the line explains at least `min_r_squared` of the
    /// variance.
    BytesTrend,
    /// Bytes in anonymous `mmap` made outside the allocator grew more than `max_mapped_bytes`
    /// over the baseline (cargo feature `ffi`).
    MappedGrowth,
}

const KINDS: usize = 6;

impl AlertKind {
    const ALL: [AlertKind; KINDS] = [
        AlertKind::BytesGrowth,
        AlertKind::BlocksGrowth,
        AlertKind::ThreadsGrowth,
        AlertKind::FdsGrowth,
        AlertKind::BytesTrend,
        AlertKind::MappedGrowth,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// A short lowercase name: `bytes growth`, `blocks growth`, `threads growth`, `fds growth`,
    /// `bytes trend`, `mapped growth`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::BytesGrowth => "bytes growth",
            AlertKind::BlocksGrowth => "blocks growth",
            AlertKind::ThreadsGrowth => "threads growth",
            AlertKind::FdsGrowth => "fds growth",
            AlertKind::BytesTrend => "bytes trend",
            AlertKind::MappedGrowth => "mapped growth",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition the [`Monitor`] found, passed to the alert callback.
///
/// `Display` writes one line for humans:
///
/// ```text
/// heap bytes +262.0 KiB over baseline (218.8 KiB -> 480.8 KiB, allowed +256.0 KiB), rising 290.8 KiB/s [t+1.40s]
/// heap bytes rising steadily at 290.8 KiB/s (R² 1.00): 494.4 KiB, baseline 218.8 KiB [t+1.45s]
/// heap blocks +1024 over baseline (482 -> 1506, allowed +1000), rising 938/s [t+1.60s]
/// threads +3 over baseline (2 -> 5, allowed +2) [t+0.03s]
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Alert {
    /// Which condition.
    pub kind: AlertKind,
    /// The value now: live bytes for the bytes kinds, live blocks, threads, fds or mapped bytes.
    pub current: u64,
    /// The same value in the baseline sample.
    pub baseline: u64,
    /// The bound that was crossed: the allowed growth over the baseline for the growth kinds, the
    /// minimum slope in bytes per second for [`AlertKind::BytesTrend`].
    pub threshold: f64,
    /// Least-squares slope of the value per second over the last `window` samples (fewer just
    /// after the baseline), in the value's unit; `None` with fewer than two samples.
    pub slope_per_sec: Option<f64>,
    /// How well that line fits (R², 0 to 1), with the slope.
    pub r_squared: Option<f64>,
    /// When, since the monitor started.
    pub elapsed: Duration,
    /// When, on the wall clock (the monitor's start plus `elapsed`).
    pub at: SystemTime,
}

impl Alert {
    /// `current - baseline`, signed.
    pub fn growth(&self) -> i128 {
        i128::from(self.current) - i128::from(self.baseline)
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.elapsed.as_secs_f64();
        let growth = self.growth();
        match self.kind {
            AlertKind::BytesGrowth => {
                write!(
                    f,
                    "heap bytes {}{} over baseline ({} -> {}, allowed +{})",
                    if growth < 0 { "-" } else { "+" },
                    Bytes(growth.unsigned_abs() as f64),
                    Bytes(self.baseline as f64),
                    Bytes(self.current as f64),
                    Bytes(self.threshold),
                )?;
                if let Some(s) = self.slope_per_sec {
                    write!(f, ", {} {}/s", rising(s), Bytes(s.abs()))?;
                }
            }
            AlertKind::MappedGrowth => {
                write!(
                    f,
                    "mapped bytes {}{} over baseline ({} -> {}, allowed +{})",
                    if growth < 0 { "-" } else { "+" },
                    Bytes(growth.unsigned_abs() as f64),
                    Bytes(self.baseline as f64),
                    Bytes(self.current as f64),
                    Bytes(self.threshold),
                )?;
            }
            AlertKind::BytesTrend => {
                write!(
                    f,
                    "heap bytes rising steadily at {}/s",
                    Bytes(self.slope_per_sec.unwrap_or(0.0))
                )?;
                if let Some(r2) = self.r_squared {
                    write!(f, " (R² {r2:.2})")?;
                }
                write!(
                    f,
                    ": {}, baseline {}",
                    Bytes(self.current as f64),
                    Bytes(self.baseline as f64)
                )?;
            }
            AlertKind::BlocksGrowth | AlertKind::ThreadsGrowth | AlertKind::FdsGrowth => {
                let what = match self.kind {
                    AlertKind::BlocksGrowth => "heap blocks",
                    AlertKind::ThreadsGrowth => "threads",
                    _ => "fds",
                };
                write!(
                    f,
                    "{what} {growth:+} over baseline ({} -> {}, allowed +{})",
                    self.baseline, self.current, self.threshold
                )?;
                if let (AlertKind::BlocksGrowth, Some(s)) = (self.kind, self.slope_per_sec) {
                    write!(f, ", {} {:.0}/s", rising(s), s.abs())?;
                }
            }
        }
        write!(f, " [t+{t:.2}s]")
    }
}

fn rising(slope: f64) -> &'static str {
    if slope < 0.0 {
        "falling"
    } else {
        "rising"
    }
}

/// A byte count for humans: `812 B`, `12.4 KiB`, `3.21 MiB`.
struct Bytes(f64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        const K: f64 = 1024.0;
        if b < K {
            write!(f, "{b:.0} B")
        } else if b < K * K {
            write!(f, "{:.1} KiB", b / K)
        } else if b < K * K * K {
            write!(f, "{:.2} MiB", b / (K * K))
        } else {
            write!(f, "{:.2} GiB", b / (K * K * K))
        }
    }
}

/// One sample the [`Monitor`] took.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// When, since the monitor started.
    pub elapsed: Duration,
    /// The process snapshot.
    pub stats: Stats,
}

/// The default sampling interval: 1 s.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The default trend window: the last 30 samples.
const DEFAULT_WINDOW: usize = 30;
/// The default number of samples kept: 600 (10 minutes at the default interval).
const DEFAULT_HISTORY: usize = 600;

#[derive(Clone, Copy, Debug)]
struct Settings {
    interval: Duration,
    window: usize,
    history: usize,
    warmup: Duration,
    max_bytes: u64,
    max_blocks: u64,
    max_threads: u64,
    max_fds: u64,
    max_mapped_bytes: u64,
    min_slope_bytes_per_sec: f64,
    min_r_squared: f64,
    manual: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interval: DEFAULT_INTERVAL,
            window: DEFAULT_WINDOW,
            history: DEFAULT_HISTORY,
            warmup: Duration::ZERO,
            max_bytes: 64 << 20,
            max_blocks: 100_000,
            max_threads: 16,
            max_fds: 64,
            max_mapped_bytes: 64 << 20,
            min_slope_bytes_per_sec: 1024.0,
            min_r_squared: 0.9,
            manual: false,
        }
    }
}

type Callback = Box<dyn FnMut(Alert) + Send>;

/// Configures and starts a [`Monitor`]; from [`Monitor::builder`].
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`interval`](Self::interval) | 1 s | time between samples |
/// | [`window`](Self::window) | 30 samples | samples the trend is fitted over; also how long a condition must stay away before it can alert again |
/// | [`history`](Self::history) | 600 samples | samples kept for [`Monitor::samples`] (at least `window`) |
/// | [`warmup`](Self::warmup) | 0 | time before the baseline is taken; nothing is checked before it |
/// | [`max_bytes`](Self::max_bytes) | 64 MiB | allowed growth of live heap bytes over the baseline |
/// | [`max_blocks`](Self::max_blocks) | 100 000 | allowed growth of live heap blocks |
/// | [`max_threads`](Self::max_threads) | 16 | allowed growth of live OS threads |
/// | [`max_fds`](Self::max_fds) | 64 | allowed growth of open file descriptors |
/// | [`max_mapped_bytes`](Self::max_mapped_bytes) | 64 MiB | allowed growth of bytes in anonymous `mmap` made outside the allocator (feature `ffi`) |
/// | [`min_slope_bytes_per_sec`](Self::min_slope_bytes_per_sec) | 1024 | smallest fitted slope that counts as a trend |
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
    pub fn warmup(mut self, warmup: Duration) -> Self {
        self.settings.warmup = warmup;
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

    /// The smallest least-squares slope of live bytes, in bytes per second, that counts as a
    /// trend (default 1024). `f64::INFINITY` switches the trend check off.
    pub fn min_slope_bytes_per_sec(mut self, bytes_per_sec: f64) -> Self {
        self.settings.min_slope_bytes_per_sec = bytes_per_sec;
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
    /// been taken: without a warmup, that sample is the baseline, so whatever the caller does
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

/// Watches the running process for leaks: a background thread samples [`stats`] at an interval
/// and calls an alert callback when live heap bytes, heap blocks, threads, fds or mapped bytes grow beyond their
/// bounds over a baseline, or when live bytes rise steadily.
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
/// slope is at least `min_slope_bytes_per_sec` *and* R² is at least `min_r_squared`. R² is what
/// keeps it quiet on noise (R² near 0) and on a bounded cache's sawtooth, as long as the window
/// spans two of its cycles (R² at most 1/4 whatever the phase); a steady leak is a line (R² near
/// 1), and `min_slope_bytes_per_sec` ignores lines too flat to matter. This replaces the common
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Shared {
    settings: Settings,
    start: Instant,
    start_wall: SystemTime,
    state: Mutex<State>,
    control: Mutex<Control>,
    /// Wakes the sampler to stop, and the starter once the first sample is taken.
    wake: Condvar,
    on_alert: Mutex<Callback>,
}

struct Control {
    stop: bool,
    ready: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Takes and checks one sample (at `at`, or now), then passes its alerts to the callback,
    /// outside the state lock. Allocates nothing.
    fn sample(&self, at: Option<Duration>) -> Alerts {
        let alerts = {
            let mut st = self.state();
            let stats = stats();
            let elapsed = match at {
                Some(t) => {
                    assert!(
                        t >= st.last_elapsed,
                        "Monitor::sample_at({t:?}) is before the previous sample ({:?})",
                        st.last_elapsed
                    );
                    t
                }
                // Monotonic even when manual and real-time samples mix.
                None => self.start.elapsed().max(st.last_elapsed),
            };
            let at = self.start_wall + elapsed;
            st.record(Sample { elapsed, stats }, &self.settings, at)
        };
        if !alerts.is_empty() {
            let mut callback = lock(&self.on_alert);
            for &alert in alerts.iter() {
                callback(alert);
            }
        }
        alerts
    }
}

/// Sets `ready` when dropped, so that `start` never waits for a sampler that died early.
struct Ready<'a>(&'a Shared);

impl Drop for Ready<'_> {
    fn drop(&mut self) {
        lock(&self.0.control).ready = true;
        self.0.wake.notify_all();
    }
}

/// The sampling thread: a sample at once (the baseline), then one every `interval` on a fixed
/// schedule (no drift; after a stall it resumes from now rather than catching up in a burst),
/// until asked to stop.
fn sampler(shared: Arc<Shared>) {
    let interval = shared.settings.interval;
    let mut next = Instant::now();
    {
        let _ready = Ready(&shared);
        shared.sample(None);
    }
    loop {
        next += interval;
        let mut ctl = lock(&shared.control);
        loop {
            if ctl.stop {
                return;
            }
            let now = Instant::now();
            if now >= next {
                break;
            }
            ctl = shared
                .wake
                .wait_timeout(ctl, next - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(ctl);
        let now = Instant::now();
        if now >= next + interval {
            next = now;
        }
        shared.sample(None);
    }
}

/// The alerts one sample raised: at most one per kind, in a fixed array.
#[derive(Clone, Copy)]
struct Alerts {
    items: [Option<Alert>; KINDS],
}

impl Alerts {
    fn is_empty(&self) -> bool {
        self.items.iter().all(Option::is_none)
    }

    fn iter(&self) -> impl Iterator<Item = &Alert> {
        self.items.iter().flatten()
    }

    fn to_vec(self) -> Vec<Alert> {
        self.iter().copied().collect()
    }
}

/// Alert state of one kind: raised once when its condition starts to hold, cleared after `window`
/// samples in a row without it.
#[derive(Clone, Copy, Default)]
struct Episode {
    active: bool,
    quiet: usize,
}

impl Episode {
    /// Feeds one sample's verdict; true when this starts a new episode (raise the alert).
    fn update(&mut self, holds: bool, clear_after: usize) -> bool {
        if holds {
            self.quiet = 0;
            let fire = !self.active;
            self.active = true;
            fire
        } else {
            if self.active {
                self.quiet += 1;
                if self.quiet >= clear_after {
                    *self = Episode::default();
                }
            }
            false
        }
    }
}

struct State {
    ring: Ring,
    baseline: Option<Sample>,
    /// Samples since the baseline, the baseline included.
    since_baseline: usize,
    taken: u64,
    alerts: u64,
    last_elapsed: Duration,
    episodes: [Episode; KINDS],
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl State {
    fn new(settings: &Settings) -> State {
        State {
            ring: Ring::with_capacity(settings.history),
            baseline: None,
            since_baseline: 0,
            taken: 0,
            alerts: 0,
            last_elapsed: Duration::ZERO,
            episodes: [Episode::default(); KINDS],
            xs: Vec::with_capacity(settings.window),
            ys: Vec::with_capacity(settings.window),
        }
    }

    /// Fits `value` over the last `n` samples against time in seconds. Reuses the scratch
    /// vectors, whose capacity is `window`: no allocation.
    fn fit(&mut self, n: usize, value: impl Fn(&Stats) -> Option<u64>) -> Option<Fit> {
        self.xs.clear();
        self.ys.clear();
        for s in self.ring.iter_last(n) {
            if let Some(v) = value(&s.stats) {
                self.xs.push(s.elapsed.as_secs_f64());
                self.ys.push(v as f64);
            }
        }
        (self.xs.len() >= 2).then(|| least_squares(&self.xs, &self.ys))
    }

    fn record(&mut self, sample: Sample, cfg: &Settings, at: SystemTime) -> Alerts {
        let mut out = Alerts {
            items: [None; KINDS],
        };
        self.ring.push(sample);
        self.taken += 1;
        self.last_elapsed = sample.elapsed;
        let Some(base) = self.baseline else {
            if sample.elapsed >= cfg.warmup {
                self.baseline = Some(sample);
                self.since_baseline = 1;
            }
            return out;
        };
        self.since_baseline += 1;
        let n = self.since_baseline.min(cfg.window);
        let bytes_fit = self.fit(n, |s| Some(s.live_bytes));
        let trend = n == cfg.window
            && bytes_fit.is_some_and(|f| {
                f.slope >= cfg.min_slope_bytes_per_sec && f.r_squared >= cfg.min_r_squared
            });
        for kind in AlertKind::ALL {
            let (holds, now, then, threshold) =
                reading(kind, &sample.stats, &base.stats, cfg, trend);
            if !self.episodes[kind.index()].update(holds, cfg.window) {
                continue;
            }
            let fit = match kind {
                AlertKind::BytesGrowth | AlertKind::BytesTrend => bytes_fit,
                _ => self.fit(n, |s| value_of(kind, s)),
            };
            self.alerts += 1;
            out.items[kind.index()] = Some(Alert {
                kind,
                current: now,
                baseline: then,
                threshold,
                slope_per_sec: fit.map(|f| f.slope),
                r_squared: fit.map(|f| f.r_squared),
                elapsed: sample.elapsed,
                at,
            });
        }
        out
    }
}

/// The value an alert kind watches in one sample, where measured.
fn value_of(kind: AlertKind, s: &Stats) -> Option<u64> {
    let count = |c: Option<usize>| c.map(|c| c as u64);
    match kind {
        AlertKind::BytesGrowth | AlertKind::BytesTrend => Some(s.live_bytes),
        AlertKind::BlocksGrowth => Some(s.live_blocks),
        AlertKind::ThreadsGrowth => count(s.threads),
        AlertKind::FdsGrowth => count(s.fds),
        AlertKind::MappedGrowth => s.mapped_bytes,
    }
}

/// For one alert kind: whether its condition holds now, the current and baseline values, and its
/// threshold. `trend` is whether the bytes' fit over the window is a trend.
fn reading(
    kind: AlertKind,
    cur: &Stats,
    base: &Stats,
    cfg: &Settings,
    trend: bool,
) -> (bool, u64, u64, f64) {
    let max = match kind {
        AlertKind::BytesGrowth => cfg.max_bytes,
        AlertKind::BlocksGrowth => cfg.max_blocks,
        AlertKind::ThreadsGrowth => cfg.max_threads,
        AlertKind::FdsGrowth => cfg.max_fds,
        AlertKind::MappedGrowth => cfg.max_mapped_bytes,
        AlertKind::BytesTrend => {
            let threshold = cfg.min_slope_bytes_per_sec;
            return (trend, cur.live_bytes, base.live_bytes, threshold);
        }
    };
    match (value_of(kind, cur), value_of(kind, base)) {
        (Some(now), Some(then)) => (now.saturating_sub(then) > max, now, then, max as f64),
        _ => (false, 0, 0, max as f64),
    }
}

/// A ring buffer of samples with its capacity allocated up front.
struct Ring {
    buf: Vec<Sample>,
    /// Where the next sample goes once the buffer is full.
    next: usize,
}

impl Ring {
    fn with_capacity(cap: usize) -> Ring {
        Ring {
            buf: Vec::with_capacity(cap.max(1)),
            next: 0,
        }
    }

    fn push(&mut self, s: Sample) {
        if self.buf.len() < self.buf.capacity() {
            self.buf.push(s);
        } else {
            self.buf[self.next] = s;
            self.next = (self.next + 1) % self.buf.len();
        }
    }

    /// The last `n` samples (all, if fewer), oldest first.
    fn iter_last(&self, n: usize) -> impl Iterator<Item = Sample> + '_ {
        let len = self.buf.len();
        let n = n.min(len);
        // Once full, the oldest sample is at `next`; before that, at 0 (and `next` is 0).
        (len - n..len).map(move |i| self.buf[(self.next + i) % len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting::alloc::Totals;
    use crate::counting::heap::HeapSource;

    fn sample(t_ms: u64, bytes: u64) -> Sample {
        Sample {
            elapsed: Duration::from_millis(t_ms),
            stats: Stats {
                heap_source: HeapSource::NoLeak,
                live_bytes: bytes,
                live_blocks: bytes / 100,
                totals: Totals::default(),
                peak_bytes: None,
                threads: Some(4),
                fds: Some(5),
                mapped_bytes: Some(4096),
            },
        }
    }

    fn settings() -> Settings {
        Settings {
            window: 10,
            history: 16,
            max_bytes: 50_000,
            max_blocks: u64::MAX,
            min_slope_bytes_per_sec: 10_000.0,
            ..Settings::default()
        }
    }

    fn feed(
        st: &mut State,
        cfg: &Settings,
        samples: impl IntoIterator<Item = Sample>,
    ) -> Vec<Alert> {
        samples
            .into_iter()
            .flat_map(|s| st.record(s, cfg, SystemTime::UNIX_EPOCH).to_vec())
            .collect()
    }

    #[test]
    fn ring_keeps_the_latest_in_order() {
        let mut r = Ring::with_capacity(4);
        assert_eq!(r.iter_last(10).count(), 0);
        for i in 0..3 {
            r.push(sample(i, i));
        }
        let got: Vec<u64> = r.iter_last(10).map(|s| s.stats.live_bytes).collect();
        assert_eq!(got, [0, 1, 2]);
        for i in 3..11 {
            r.push(sample(i, i));
        }
        let got: Vec<u64> = r.iter_last(10).map(|s| s.stats.live_bytes).collect();
        assert_eq!(got, [7, 8, 9, 10]);
        let got: Vec<u64> = r.iter_last(2).map(|s| s.stats.live_bytes).collect();
        assert_eq!(got, [9, 10]);
        assert_eq!(r.buf.capacity(), 4);
    }

    #[test]
    fn mapped_growth_alerts_over_its_bound() {
        let cfg = Settings {
            max_mapped_bytes: 1 << 20,
            ..settings()
        };
        let mut st = State::new(&cfg);
        // 256 KiB more mapped every 100 ms; the heap stays flat.
        let alerts = feed(
            &mut st,
            &cfg,
            (0..20).map(|i| {
                let mut s = sample(i * 100, 1_000_000);
                s.stats.mapped_bytes = Some(i * (256 << 10));
                s
            }),
        );
        let kinds: Vec<AlertKind> = alerts.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [AlertKind::MappedGrowth]);
        let a = alerts[0];
        assert_eq!((a.current, a.baseline), (5 * (256 << 10), 0));
        assert_eq!(
            a.to_string(),
            "mapped bytes +1.25 MiB over baseline (0 B -> 1.25 MiB, allowed +1.00 MiB) [t+0.50s]"
        );
    }

    #[test]
    fn a_steady_leak_alerts_once_per_kind() {
        let cfg = settings();
        let mut st = State::new(&cfg);
        // 2 KiB every 100 ms: 20 KiB/s.
        let alerts = feed(
            &mut st,
            &cfg,
            (0..100).map(|i| sample(i * 100, 1_000_000 + i * 2048)),
        );
        let kinds: Vec<AlertKind> = alerts.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [AlertKind::BytesTrend, AlertKind::BytesGrowth]);
        let trend = alerts[0];
        // The trend needs a full window: the 10th sample after the baseline, the baseline included.
        assert_eq!(trend.elapsed, Duration::from_millis(900));
        assert!((trend.slope_per_sec.unwrap() - 20_480.0).abs() < 1e-6);
        assert!(trend.r_squared.unwrap() > 0.999_999);
        // Growth passes 50 000 bytes at the 25th step (51 200 bytes).
        let growth = alerts[1];
        assert_eq!(growth.elapsed, Duration::from_millis(2500));
        assert_eq!((growth.current, growth.baseline), (1_051_200, 1_000_000));
    }

    #[test]
    fn a_condition_must_clear_for_a_window_before_it_alerts_again() {
        let cfg = Settings {
            min_slope_bytes_per_sec: f64::INFINITY,
            ..settings()
        };
        let mut st = State::new(&cfg);
        let mut t = 0;
        let mut next = |bytes| {
            t += 100;
            sample(t, bytes)
        };
        let mut run = |st: &mut State, bytes: &[u64]| {
            let v: Vec<Sample> = bytes.iter().map(|&b| next(b)).collect();
            feed(st, &cfg, v).len()
        };
        assert_eq!(run(&mut st, &[0]), 0); // baseline
        assert_eq!(run(&mut st, &[60_000]), 1);
        // Hovering around the bound: no flapping.
        assert_eq!(run(&mut st, &[40_000, 60_000, 40_000, 60_000]), 0);
        // Nine quiet samples are not enough to clear, so the next excursion is the same episode.
        assert_eq!(run(&mut st, &[0; 9]), 0);
        assert_eq!(run(&mut st, &[60_000]), 0);
        // Ten quiet samples clear it; the next excursion alerts again.
        assert_eq!(run(&mut st, &[0; 10]), 0);
        assert_eq!(run(&mut st, &[60_000]), 1);
    }

    #[test]
    fn warmup_moves_the_baseline() {
        let cfg = Settings {
            warmup: Duration::from_millis(500),
            ..settings()
        };
        let mut st = State::new(&cfg);
        // Start-up fills a cache to 400 KB, then the program is steady.
        let alerts = feed(
            &mut st,
            &cfg,
            (0..40).map(|i| sample(i * 100, 100_000 * i.min(4))),
        );
        assert!(alerts.is_empty(), "{alerts:?}");
        assert_eq!(st.baseline.unwrap().elapsed, Duration::from_millis(500));
        assert_eq!(st.taken, 40);
    }

    #[test]
    fn sampling_allocates_nothing_on_this_thread() {
        // Other unit tests share this process and move its counts, so thresholds no workload can
        // reach keep every alert (and the Vec it would fill) out of the picture.
        let m = Monitor::builder()
            .manual()
            .window(8)
            .history(8)
            .max_bytes(u64::MAX)
            .max_blocks(u64::MAX)
            .max_threads(u64::MAX)
            .max_fds(u64::MAX)
            .min_slope_bytes_per_sec(f64::MAX)
            .on_alert(|_| {})
            .start();
        for _ in 0..20 {
            m.sample_now();
        }
        let before = crate::counting::alloc::thread_totals().expect("the test thread owns a slot");
        for _ in 0..50 {
            // No alerts, so no Vec is filled.
            std::hint::black_box(m.sample_now());
        }
        let after = crate::counting::alloc::thread_totals().unwrap();
        assert_eq!(after.alloc_blocks, before.alloc_blocks);
        assert_eq!(m.sample_count(), 71);
    }

    #[test]
    fn alerts_read_well() {
        let a = Alert {
            kind: AlertKind::BytesGrowth,
            current: 3 << 20,
            baseline: 1 << 20,
            threshold: (1 << 20) as f64,
            slope_per_sec: Some(512.0 * 1024.0),
            r_squared: Some(0.97),
            elapsed: Duration::from_millis(2950),
            at: SystemTime::UNIX_EPOCH,
        };
        assert_eq!(
            a.to_string(),
            "heap bytes +2.00 MiB over baseline (1.00 MiB -> 3.00 MiB, allowed +1.00 MiB), rising 512.0 KiB/s [t+2.95s]"
        );
        let t = Alert {
            kind: AlertKind::BytesTrend,
            threshold: 1024.0,
            ..a
        };
        assert_eq!(
            t.to_string(),
            "heap bytes rising steadily at 512.0 KiB/s (R² 0.97): 3.00 MiB, baseline 1.00 MiB [t+2.95s]"
        );
        let th = Alert {
            kind: AlertKind::ThreadsGrowth,
            current: 9,
            baseline: 3,
            threshold: 2.0,
            ..a
        };
        assert_eq!(
            th.to_string(),
            "threads +6 over baseline (3 -> 9, allowed +2) [t+2.95s]"
        );
    }
}
