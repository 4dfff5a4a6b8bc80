//! Soak mode: many iterations (or a duration), sampled, with a fitted trend.
//!
//! A leak of one block every hundred iterations slips past a handful of measured runs. A soak runs
//! the body for many iterations, samples live heap bytes and blocks, threads and fds (about 200
//! samples, after a warmup of the first tenth), and fits a least-squares line to the live bytes.
//!
//! The verdict needs two things, so that it neither misses slow leaks nor flags steady workloads:
//! - the fitted slope is above [`Config::max_slope_bytes`] (bytes per iteration, default 0), and
//! - the growth is sustained: the lowest live value of each quarter of the samples (its *floor*)
//!   is higher than the previous quarter's. A bounded cache churning its entries has a sawtooth
//!   whose floors stay level; a one-time step (a table that grows once) raises one floor only; a
//!   leak raises all of them.
//!
//! Threads, fds and mapped bytes (feature `ffi`) are flagged when their floors rise quarter after
//! quarter (a positive trend).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::check::config::Config;
use crate::check::growth::grew;
use crate::check::outcome::Outcome;
use crate::check::report::{Count, Dimension, Measure, Report};
use crate::check::resources::Counts;
use crate::check::trend::least_squares;
use crate::check::window;
use crate::counting::heap::Meter;

/// How long a soak runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum SoakLength {
    /// A number of iterations.
    Iterations(u64),
    /// A duration.
    Duration(Duration),
}

/// Samples taken over a soak (after its warmup).
const SAMPLES: u64 = 200;

/// One sample of a soak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoakSample {
    /// Iterations done when the sample was taken.
    pub iteration: u64,
    /// Live heap bytes.
    pub bytes: i64,
    /// Live heap blocks.
    pub blocks: i64,
    /// Live threads, where measured.
    pub threads: Option<i64>,
    /// Open fds, where measured.
    pub fds: Option<i64>,
    /// Live bytes of anonymous maps made outside the allocator, where measured (feature `ffi`).
    pub mapped: Option<i64>,
}

/// A fitted trend of one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trend {
    /// Growth per iteration (least squares).
    pub slope: f64,
    /// The fitted value at iteration 0.
    pub intercept: f64,
    /// How well the line fits, from 0 to 1.
    pub r_squared: f64,
    /// The lowest value in each quarter of the samples.
    pub floors: [i64; 4],
}

impl Trend {
    fn of(samples: &[SoakSample], value: impl Fn(&SoakSample) -> Option<i64>) -> Option<Trend> {
        let points: Vec<(f64, i64)> = samples
            .iter()
            .filter_map(|s| value(s).map(|v| (s.iteration as f64, v)))
            .collect();
        if points.len() < 4 {
            return None;
        }
        let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = points.iter().map(|p| p.1 as f64).collect();
        let fit = least_squares(&xs, &ys);
        let mut floors = [0i64; 4];
        let n = points.len();
        for (q, floor) in floors.iter_mut().enumerate() {
            let part = &points[q * n / 4..(q + 1) * n / 4];
            *floor = part.iter().map(|p| p.1).min().unwrap_or(0);
        }
        Some(Trend {
            slope: fit.slope,
            intercept: fit.intercept,
            r_squared: fit.r_squared,
            floors,
        })
    }

    /// Every quarter's floor above the previous one's.
    pub fn sustained(&self) -> bool {
        self.floors.windows(2).all(|w| w[1] > w[0])
    }
}

/// What a soak measured.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct SoakReport {
    /// Iterations run, warmup included.
    pub iterations: u64,
    /// Iterations before the first sample.
    pub warmup_iterations: u64,
    /// How long the soak took.
    pub elapsed: Duration,
    /// The samples, after the warmup.
    pub samples: Vec<SoakSample>,
    /// The trend of live heap bytes.
    pub bytes: Option<Trend>,
    /// The trend of live heap blocks.
    pub blocks: Option<Trend>,
    /// The trend of live threads, where measured.
    pub threads: Option<Trend>,
    /// The trend of open fds, where measured.
    pub fds: Option<Trend>,
    /// The trend of mapped bytes, where measured (feature `ffi`).
    pub mapped: Option<Trend>,
    /// The SVG plot of live bytes written for a failing soak.
    pub plot: Option<PathBuf>,
}

fn sample(iteration: u64, meter: &Meter, census_on: bool) -> SoakSample {
    let heap = meter.heap();
    let counts = Counts::read(census_on);
    SoakSample {
        iteration,
        bytes: heap.bytes,
        blocks: heap.blocks,
        threads: counts[Measure::Threads],
        fds: counts[Measure::Fds],
        mapped: counts[Measure::Mapped],
    }
}

/// The samples of a soak, and how many iterations it ran (and warmed up).
struct Sampled {
    samples: Vec<SoakSample>,
    iterations: u64,
    warmup_iterations: u64,
}

/// Runs the soak (the config's warmup runs are done) and fills `report`.
pub(crate) fn run<R: Outcome>(
    cfg: &Config,
    meter: &Meter,
    census_on: bool,
    mut report: Report,
    mut body: impl FnMut() -> R,
) -> Result<Report, R> {
    let started = Instant::now();
    let sampled = match cfg.soak.expect("soak mode") {
        SoakLength::Iterations(n) => for_iterations(n, meter, census_on, &mut body)?,
        SoakLength::Duration(d) => for_duration(d, meter, census_on, &mut body)?,
    };
    let samples = sampled.samples;
    let soak = SoakReport {
        iterations: sampled.iterations,
        warmup_iterations: sampled.warmup_iterations,
        elapsed: started.elapsed(),
        bytes: Trend::of(&samples, |s| Some(s.bytes)),
        blocks: Trend::of(&samples, |s| Some(s.blocks)),
        threads: Trend::of(&samples, |s| s.threads),
        fds: Trend::of(&samples, |s| s.fds),
        mapped: Trend::of(&samples, |s| s.mapped),
        samples,
        plot: None,
    };
    if let (Some(a), Some(b)) = (soak.samples.first(), soak.samples.last()) {
        report.counts[Measure::Bytes] = Some((a.bytes, b.bytes).into());
        report.counts[Measure::Blocks] = Some((a.blocks, b.blocks).into());
        report.counts[Measure::Threads] = a.threads.zip(b.threads).map(Count::from);
        report.counts[Measure::Fds] = a.fds.zip(b.fds).map(Count::from);
        report.counts[Measure::Mapped] = a.mapped.zip(b.mapped).map(Count::from);
    }
    if !census_on {
        let why = crate::check::env::SHARED_PROCESS;
        report.not_measured.push((Dimension::Threads, why.into()));
        report.not_measured.push((Dimension::Fds, why.into()));
        report.not_measured.push((Dimension::Mapped, why.into()));
    } else if report.counts[Measure::Mapped].is_none() {
        let why = crate::counting::mapped::not_measured_reason();
        report.not_measured.push((Dimension::Mapped, why.into()));
    }
    report.exceeded = exceeded(cfg, &soak);
    report.soak = Some(soak);
    Ok(report)
}

/// `n` iterations, the first tenth unsampled, then about [`SAMPLES`] samples.
fn for_iterations<R: Outcome>(
    n: u64,
    meter: &Meter,
    census_on: bool,
    body: &mut impl FnMut() -> R,
) -> Result<Sampled, R> {
    let warm = n / 10;
    let every = ((n - warm) / SAMPLES).max(1);
    let mut samples = Vec::with_capacity(SAMPLES as usize + 8);
    for i in 1..=n {
        window::run(body)?;
        if i > warm && ((i - warm).is_multiple_of(every) || i == n) {
            samples.push(sample(i, meter, census_on));
        }
    }
    Ok(Sampled {
        samples,
        iterations: n,
        warmup_iterations: warm,
    })
}

/// Iterations for `d`, the first tenth unsampled, then a sample about every 1/[`SAMPLES`] of it.
fn for_duration<R: Outcome>(
    d: Duration,
    meter: &Meter,
    census_on: bool,
    body: &mut impl FnMut() -> R,
) -> Result<Sampled, R> {
    let started = Instant::now();
    let (warm, every) = (d / 10, (d - d / 10) / SAMPLES as u32);
    let mut samples = Vec::with_capacity(SAMPLES as usize + 8);
    let (mut i, mut warmup_iterations, mut next) = (0, 0, warm);
    loop {
        window::run(body)?;
        i += 1;
        let t = started.elapsed();
        if t < warm {
            warmup_iterations = i;
        } else if t >= next || t >= d {
            samples.push(sample(i, meter, census_on));
            next = t + every;
        }
        if t >= d {
            return Ok(Sampled {
                samples,
                iterations: i,
                warmup_iterations,
            });
        }
    }
}

/// The dimensions a soak finds leaking: live bytes trending up faster than `max_slope_bytes`
/// and sustained; threads, fds or mapped bytes trending up and sustained (mapped bytes also
/// beyond `max_mapped_bytes`).
fn exceeded(cfg: &Config, soak: &SoakReport) -> Vec<Dimension> {
    let mut exceeded = Vec::new();
    let bytes = soak.bytes;
    if bytes.is_some_and(|t| t.slope > cfg.max_slope_bytes && t.sustained()) {
        exceeded.push(Dimension::Heap);
    }
    for (dim, trend) in [
        (Dimension::Threads, soak.threads),
        (Dimension::Fds, soak.fds),
    ] {
        if trend.is_some_and(|t| t.slope > 0.0 && t.sustained()) {
            exceeded.push(dim);
        }
    }
    // Mapped bytes also have a bound in soak mode: their growth from the first sample to the
    // last (what the report's hint offers as `max_mapped_bytes`).
    let mapped = soak.samples.first().zip(soak.samples.last());
    let mapped = mapped.and_then(|(a, b)| a.mapped.zip(b.mapped));
    let over = mapped.is_some_and(|(a, b)| grew(a, b, cfg.bounds[Measure::Mapped]));
    if over && soak.mapped.is_some_and(|t| t.slope > 0.0 && t.sustained()) {
        exceeded.push(Dimension::Mapped);
    }
    exceeded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[i64]) -> Vec<SoakSample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| SoakSample {
                iteration: i as u64 * 10,
                bytes: v,
                blocks: 0,
                threads: None,
                fds: None,
                mapped: None,
            })
            .collect()
    }

    #[test]
    fn a_staircase_leak_is_sustained() {
        // One 16-byte block every 10 samples.
        let v: Vec<i64> = (0..200).map(|i| 1000 + 16 * (i / 10)).collect();
        let t = Trend::of(&samples(&v), |s| Some(s.bytes)).unwrap();
        assert!(t.slope > 0.15 && t.slope < 0.17, "{t:?}");
        assert!(t.sustained(), "{t:?}");
    }

    #[test]
    fn a_sawtooth_is_not_sustained() {
        let v: Vec<i64> = (0..200).map(|i| 1000 + 300 * (i % 7)).collect();
        let t = Trend::of(&samples(&v), |s| Some(s.bytes)).unwrap();
        assert!(!t.sustained(), "{t:?}");
    }

    #[test]
    fn a_single_step_is_not_sustained() {
        let v: Vec<i64> = (0..200)
            .map(|i| if i < 120 { 1000 } else { 5000 })
            .collect();
        let t = Trend::of(&samples(&v), |s| Some(s.bytes)).unwrap();
        assert!(t.slope > 0.0, "{t:?}");
        assert!(!t.sustained(), "{t:?}");
    }
}
