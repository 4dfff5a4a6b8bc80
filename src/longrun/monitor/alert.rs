//! What the monitor reports: [`Alert`]s and their kinds, and how they read.

use std::fmt;
use std::time::{Duration, SystemTime};

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
    /// Live heap bytes rose steadily over the last `window` samples: the least-squares slope
    /// reached `max_slope_bytes_per_sec` (the growth allowed) and the line explains at least `min_r_squared` of the
    /// variance.
    BytesTrend,
    /// Bytes in anonymous `mmap` made outside the allocator grew more than `max_mapped_bytes`
    /// over the baseline (cargo feature `ffi`).
    MappedGrowth,
}

pub(super) const KINDS: usize = 6;

impl AlertKind {
    pub(super) const ALL: [AlertKind; KINDS] = [
        AlertKind::BytesGrowth,
        AlertKind::BlocksGrowth,
        AlertKind::ThreadsGrowth,
        AlertKind::FdsGrowth,
        AlertKind::BytesTrend,
        AlertKind::MappedGrowth,
    ];

    pub(super) fn index(self) -> usize {
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

/// A condition the [`Monitor`](super::Monitor) found, passed to the alert callback.
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
    pub current: i64,
    /// The same value in the baseline sample.
    pub baseline: i64,
    /// The bound that was crossed: the allowed growth over the baseline for the growth kinds,
    /// `max_slope_bytes_per_sec` (bytes per second) for [`AlertKind::BytesTrend`].
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
    /// `current - baseline`.
    pub fn growth(&self) -> i64 {
        self.current.saturating_sub(self.baseline)
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AlertKind::BytesGrowth => {
                self.bytes_growth(f, "heap bytes")?;
                if let Some(s) = self.slope_per_sec {
                    write!(f, ", {} {}/s", rising(s), Bytes(s.abs()))?;
                }
            }
            AlertKind::MappedGrowth => self.bytes_growth(f, "mapped bytes")?,
            AlertKind::BytesTrend => self.bytes_trend(f)?,
            AlertKind::BlocksGrowth | AlertKind::ThreadsGrowth | AlertKind::FdsGrowth => {
                let what = match self.kind {
                    AlertKind::BlocksGrowth => "heap blocks",
                    AlertKind::ThreadsGrowth => "threads",
                    _ => "fds",
                };
                write!(
                    f,
                    "{what} {:+} over baseline ({} -> {}, allowed +{})",
                    self.growth(),
                    self.baseline,
                    self.current,
                    self.threshold
                )?;
                if let (AlertKind::BlocksGrowth, Some(s)) = (self.kind, self.slope_per_sec) {
                    write!(f, ", {} {:.0}/s", rising(s), s.abs())?;
                }
            }
        }
        write!(f, " [t+{:.2}s]", self.elapsed.as_secs_f64())
    }
}

impl Alert {
    /// `<what> +12.0 KiB over baseline (... -> ..., allowed +...)`.
    fn bytes_growth(&self, f: &mut fmt::Formatter<'_>, what: &str) -> fmt::Result {
        let growth = self.growth();
        write!(
            f,
            "{what} {}{} over baseline ({} -> {}, allowed +{})",
            if growth < 0 { "-" } else { "+" },
            Bytes(growth.unsigned_abs() as f64),
            Bytes(self.baseline as f64),
            Bytes(self.current as f64),
            Bytes(self.threshold),
        )
    }

    /// `heap bytes rising steadily at 12.0 KiB/s (R² 0.98): ..., baseline ...`.
    fn bytes_trend(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        )
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
