//! A soak's part of the report: the trends per dimension, a few samples, and the plot.

use std::fmt;

use super::units::size;
use super::Out;
use crate::check::report::Report;
use crate::longrun::soak::{SoakReport, Trend};

fn floors(t: &Trend) -> String {
    t.floors
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn write_soak(f: Out, soak: &SoakReport, r: &Report) -> fmt::Result {
    writeln!(
        f,
        "  soak:      {} iterations in {} ms ({} warmup), {} samples",
        soak.iterations,
        soak.elapsed.as_millis(),
        soak.warmup_iterations,
        soak.samples.len()
    )?;
    write_trends(f, soak, r)?;
    write_samples(f, soak, r)
}

/// One line per dimension: its slope, and its floors by quarter.
fn write_trends(f: Out, soak: &SoakReport, r: &Report) -> fmt::Result {
    let c = &r.config;
    if let Some(t) = &soak.bytes {
        writeln!(
            f,
            "  heap:      {:+.4} B/iteration (R\u{b2} {:.2}; bound: {} B/iteration); floors by quarter: {} B{}",
            t.slope,
            t.r_squared,
            c.max_slope_bytes_per_iteration,
            floors(t),
            if t.sustained() { " (rising)" } else { "" }
        )?;
    }
    if let Some(t) = &soak.blocks {
        writeln!(
            f,
            "  blocks:    {:+.4}/iteration; floors by quarter: {}",
            t.slope,
            floors(t)
        )?;
    }
    for (label, t) in [("threads:", &soak.threads), ("fds:", &soak.fds)] {
        if let Some(t) = t {
            writeln!(
                f,
                "  {label:<10} {:+.5}/iteration; floors by quarter: {}{}",
                t.slope,
                floors(t),
                if t.sustained() { " (rising)" } else { "" }
            )?;
        }
    }
    if let Some(t) = &soak.mapped {
        let floors: Vec<String> = t.floors.iter().map(|&v| size(v)).collect();
        writeln!(
            f,
            "  mapped:    {:+.1} B/iteration; floors by quarter: {}{}",
            t.slope,
            floors.join(", "),
            if t.sustained() { " (rising)" } else { "" }
        )?;
    }
    Ok(())
}

/// Six samples spread over the soak, and the plot (or how to get one).
fn write_samples(f: Out, soak: &SoakReport, r: &Report) -> fmt::Result {
    let n = soak.samples.len();
    if n > 0 {
        let picks: Vec<String> = (0..n.min(6))
            .map(|i| &soak.samples[i * (n - 1) / (n.min(6) - 1).max(1)])
            .map(|s| format!("{}: {} B", s.iteration, s.bytes))
            .collect();
        writeln!(f, "  samples:   {}", picks.join(", "))?;
    }
    match &soak.plot {
        Some(p) => writeln!(f, "  plot:      {}", p.display())?,
        None if cfg!(not(feature = "plot")) && !r.exceeded.is_empty() => writeln!(
            f,
            "  plot:      turn on no_leak's cargo feature `plot` for an SVG of these samples"
        )?,
        None => {}
    }
    Ok(())
}
