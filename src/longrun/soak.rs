//! Soak mode: many iterations (or a duration), sampled, with a fitted trend.
//!
//! A leak of one block every hundred iterations slips past a handful of measured runs. A soak runs
//! the body for many iterations, samples live heap bytes and blocks, threads and fds (about 200
//! samples, after a warmup of the first tenth), and fits a least-squares line to the live bytes.
//!
//! The verdict needs two things, so that it neither misses slow leaks nor flags steady workloads:
//! - the fitted slope is above `max_slope_bytes_per_iteration` (default 0), and
//! - the growth is sustained: the lowest live value of each quarter of the samples (its *floor*)
//!   is higher than the previous quarter's. A bounded cache churning its entries has a sawtooth
//!   whose floors stay level; a one-time step (a table that grows once) raises one floor only; a
//!   leak raises all of them.
//!
//! Threads, fds and mapped bytes (feature `ffi`) are flagged when their floors rise quarter after
//! quarter (a positive trend).
//!
//! This is the stage itself, over two callbacks (run the body once; read the counts), so that it
//! needs nothing from the check that runs it: `crate::check::soak` passes the body, the meter and
//! the bounds, and turns what it finds into the check's report. A failing soak writes its plot
//! here, once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::longrun::plot;
use crate::longrun::trend::least_squares;

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
#[non_exhaustive]
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
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trend {
    /// Growth per iteration (least squares), in the series' unit (bytes, blocks, threads, ...).
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
    /// Iterations before the first sample (the soak's own warmup, the first tenth).
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
    /// The SVG plot of the samples, written once when the soak fails (cargo feature `plot`).
    pub plot: Option<PathBuf>,
}

/// The bounds a soak is judged by.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// The allowed trend of live heap bytes, in bytes per iteration.
    pub(crate) max_slope_bytes_per_iteration: f64,
    /// The allowed growth of mapped bytes from the first sample to the last.
    pub(crate) max_mapped_bytes: u64,
}

/// The series a soak finds leaking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Leaking {
    pub(crate) heap: bool,
    pub(crate) threads: bool,
    pub(crate) fds: bool,
    pub(crate) mapped: bool,
}

impl Leaking {
    /// Whether anything leaks: the soak failed.
    pub(crate) fn any(self) -> bool {
        self.heap || self.threads || self.fds || self.mapped
    }
}

/// The samples of a soak, and how many iterations it ran (and warmed up).
struct Sampled {
    samples: Vec<SoakSample>,
    iterations: u64,
    warmup_iterations: u64,
}

/// Runs the soak named `name` (the check's warmup runs are done): `step` runs the body once (an
/// `Err` ends the soak with it), `sample` reads the counts after the given iteration. Returns
/// what the soak measured and what leaks; a failing soak has written its plot.
pub(crate) fn run<E>(
    name: &str,
    length: SoakLength,
    bounds: Bounds,
    mut step: impl FnMut() -> Result<(), E>,
    mut sample: impl FnMut(u64) -> SoakSample,
) -> Result<(SoakReport, Leaking), E> {
    let started = Instant::now();
    let sampled = match length {
        SoakLength::Iterations(n) => for_iterations(n, &mut step, &mut sample)?,
        SoakLength::Duration(d) => for_duration(d, &mut step, &mut sample)?,
    };
    let samples = sampled.samples;
    let mut soak = SoakReport {
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
    let leaking = leaking(bounds, &soak);
    if leaking.any() {
        soak.plot = plot::write_soak(name, &soak);
    }
    Ok((soak, leaking))
}

/// `n` iterations, the first tenth unsampled, then about [`SAMPLES`] samples.
fn for_iterations<E>(
    n: u64,
    step: &mut impl FnMut() -> Result<(), E>,
    sample: &mut impl FnMut(u64) -> SoakSample,
) -> Result<Sampled, E> {
    let warm = n / 10;
    let every = ((n - warm) / SAMPLES).max(1);
    let mut samples = Vec::with_capacity(SAMPLES as usize + 8);
    for i in 1..=n {
        step()?;
        if i > warm && ((i - warm).is_multiple_of(every) || i == n) {
            samples.push(sample(i));
        }
    }
    Ok(Sampled {
        samples,
        iterations: n,
        warmup_iterations: warm,
    })
}

/// Iterations for `d`, the first tenth unsampled, then a sample about every 1/[`SAMPLES`] of it.
fn for_duration<E>(
    d: Duration,
    step: &mut impl FnMut() -> Result<(), E>,
    sample: &mut impl FnMut(u64) -> SoakSample,
) -> Result<Sampled, E> {
    let started = Instant::now();
    let (warm, every) = (d / 10, (d - d / 10) / SAMPLES as u32);
    let mut samples = Vec::with_capacity(SAMPLES as usize + 8);
    let (mut i, mut warmup_iterations, mut next) = (0, 0, warm);
    loop {
        step()?;
        i += 1;
        let t = started.elapsed();
        if t < warm {
            warmup_iterations = i;
        } else if t >= next || t >= d {
            samples.push(sample(i));
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

/// What a soak finds leaking: live bytes trending up faster than `max_slope_bytes_per_iteration`
/// and sustained; threads, fds or mapped bytes trending up and sustained (mapped bytes also
/// beyond `max_mapped_bytes`).
fn leaking(bounds: Bounds, soak: &SoakReport) -> Leaking {
    let rising = |t: Option<Trend>| t.is_some_and(|t| t.slope > 0.0 && t.sustained());
    let max_slope = bounds.max_slope_bytes_per_iteration;
    // Mapped bytes also have a bound in soak mode: their growth from the first sample to the
    // last (what the report's hint offers as `max_mapped_bytes`).
    let mapped = soak.samples.first().zip(soak.samples.last());
    let mapped = mapped.and_then(|(a, b)| a.mapped.zip(b.mapped));
    let over = mapped
        .is_some_and(|(a, b)| i128::from(b) - i128::from(a) > i128::from(bounds.max_mapped_bytes));
    Leaking {
        heap: soak
            .bytes
            .is_some_and(|t| t.slope > max_slope && t.sustained()),
        threads: rising(soak.threads),
        fds: rising(soak.fds),
        mapped: over && rising(soak.mapped),
    }
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

    /// A soak of `n` iterations whose live bytes are `bytes(iteration)`, with a plot directory of
    /// its own.
    fn soak(name: &str, bytes: impl Fn(u64) -> i64) -> (SoakReport, Leaking) {
        let sample = |i: u64| SoakSample {
            iteration: i,
            ..samples(&[bytes(i)])[0]
        };
        let bounds = Bounds {
            max_slope_bytes_per_iteration: 0.0,
            max_mapped_bytes: 0,
        };
        let length = SoakLength::Iterations(2_000);
        run::<()>(name, length, bounds, || Ok(()), sample).unwrap()
    }

    #[test]
    fn only_a_failing_soak_writes_its_plot() {
        let (soak_report, leaking) = soak("longrun::soak::leaky", |i| 1000 + 16 * (i as i64 / 100));
        assert!(leaking.heap && leaking.any(), "{soak_report:?}");
        assert_eq!(soak_report.plot.is_some(), cfg!(feature = "plot"));
        if let Some(path) = &soak_report.plot {
            let _ = std::fs::remove_file(path);
        }
        let (soak_report, leaking) = soak("longrun::soak::steady", |i| 1000 + 300 * (i as i64 % 7));
        assert!(!leaking.any(), "{soak_report:?}");
        assert_eq!(soak_report.plot, None);
    }
}
