//! The engine's side of soak mode: runs the soak stage ([`crate::longrun::soak`]) with the
//! config's length and bounds, the body and the meter, and fills the check's report from what it
//! found.

use crate::check::config::Config;
use crate::check::outcome::Outcome;
use crate::check::report::{Count, Dimension, Measure, Report};
use crate::check::resources::Counts;
use crate::check::window;
use crate::counting::heap::Meter;
use crate::longrun::soak::{self, Bounds, SoakSample};

/// One sample: the heap and the counts after `iteration` iterations.
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

/// Runs the soak (the config's warmup runs are done) and fills `report`.
pub(crate) fn run<R: Outcome>(
    cfg: &Config,
    meter: &Meter,
    census_on: bool,
    mut report: Report,
    mut body: impl FnMut() -> R,
) -> Result<Report, R> {
    let bounds = Bounds {
        max_slope_bytes_per_iteration: cfg.max_slope_bytes_per_iteration,
        max_mapped_bytes: cfg.bound(Measure::Mapped),
    };
    let name = report.name.clone();
    let (soak, leaking) = soak::run(
        &name,
        cfg.soak.expect("soak mode"),
        bounds,
        || window::run(&mut body),
        |i| sample(i, meter, census_on),
    )?;
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
    report.exceeded = [
        (Dimension::Heap, leaking.heap),
        (Dimension::Threads, leaking.threads),
        (Dimension::Fds, leaking.fds),
        (Dimension::Mapped, leaking.mapped),
    ]
    .into_iter()
    .filter_map(|(dim, leaks)| leaks.then_some(dim))
    .collect();
    report.soak = Some(soak);
    Ok(report)
}
