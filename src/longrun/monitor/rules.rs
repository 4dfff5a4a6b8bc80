//! The checks of each sample: growth over the baseline, the trend over the window, and alerting
//! once per episode.

use std::time::{Duration, SystemTime};

use super::alert::KINDS;
use super::builder::Settings;
use super::ring::Ring;
use super::{Alert, AlertKind, Sample, Stats};
use crate::longrun::trend::{least_squares, Fit};

/// The alerts one sample raised: at most one per kind, in a fixed array.
#[derive(Clone, Copy)]
pub(super) struct Alerts {
    pub(super) items: [Option<Alert>; KINDS],
}

impl Alerts {
    pub(super) fn is_empty(&self) -> bool {
        self.items.iter().all(Option::is_none)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Alert> {
        self.items.iter().flatten()
    }

    pub(super) fn to_vec(self) -> Vec<Alert> {
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

pub(super) struct State {
    pub(super) ring: Ring,
    pub(super) baseline: Option<Sample>,
    /// Samples since the baseline, the baseline included.
    since_baseline: usize,
    pub(super) taken: u64,
    pub(super) alerts: u64,
    pub(super) last_elapsed: Duration,
    episodes: [Episode; KINDS],
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl State {
    pub(super) fn new(settings: &Settings) -> State {
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
    fn fit(&mut self, n: usize, value: impl Fn(&Stats) -> Option<i64>) -> Option<Fit> {
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

    pub(super) fn record(&mut self, sample: Sample, cfg: &Settings, at: SystemTime) -> Alerts {
        let mut out = Alerts {
            items: [None; KINDS],
        };
        self.ring.push(sample);
        self.taken += 1;
        self.last_elapsed = sample.elapsed;
        let Some(base) = self.baseline else {
            if sample.elapsed >= cfg.baseline_after {
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
                f.slope >= cfg.max_slope_bytes_per_sec && f.r_squared >= cfg.min_r_squared
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
fn value_of(kind: AlertKind, s: &Stats) -> Option<i64> {
    match kind {
        AlertKind::BytesGrowth | AlertKind::BytesTrend => Some(s.live_bytes),
        AlertKind::BlocksGrowth => Some(s.live_blocks),
        AlertKind::ThreadsGrowth => s.threads,
        AlertKind::FdsGrowth => s.fds,
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
) -> (bool, i64, i64, f64) {
    let max = match kind {
        AlertKind::BytesGrowth => cfg.max_bytes,
        AlertKind::BlocksGrowth => cfg.max_blocks,
        AlertKind::ThreadsGrowth => cfg.max_threads,
        AlertKind::FdsGrowth => cfg.max_fds,
        AlertKind::MappedGrowth => cfg.max_mapped_bytes,
        AlertKind::BytesTrend => {
            let threshold = cfg.max_slope_bytes_per_sec;
            return (trend, cur.live_bytes, base.live_bytes, threshold);
        }
    };
    match (value_of(kind, cur), value_of(kind, base)) {
        (Some(now), Some(then)) => {
            let grew = i128::from(now) - i128::from(then) > i128::from(max);
            (grew, now, then, max as f64)
        }
        _ => (false, 0, 0, max as f64),
    }
}
