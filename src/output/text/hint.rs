//! The hint at the end of a failing report, on labelled lines: why this is a leak, the bounds
//! that would accept the growth if it is expected, and how to skip every check.

use std::fmt;

use super::Out;
use crate::check::report::{Dimension, Measure, Report};

pub(super) fn write_hint(f: Out, r: &Report) -> fmt::Result {
    if r.exceeded.is_empty() {
        return Ok(());
    }
    let knobs: Vec<String> = r.exceeded.iter().flat_map(|&d| knobs(r, d)).collect();
    let why = if r.soak.is_some() {
        "the trend held over the whole soak"
    } else {
        "it grew again in every window, so it is not one-time growth"
    };
    writeln!(f, "\n  hint:      {why}")?;
    writeln!(f, "  expected?  allow it: #[no_leak({})]", knobs.join(", "))?;
    write!(f, "  skip all:  NO_LEAK=off")
}

/// The bounds that would accept the growth seen in `dim`, with the values seen.
fn knobs(r: &Report, dim: Dimension) -> Vec<String> {
    let net = |m: Measure| r.net(m).map_or(0, |n| n.max(0));
    match dim {
        Dimension::Heap if r.soak.is_some() => {
            let slope = r
                .soak
                .as_ref()
                .and_then(|s| s.bytes)
                .map_or(0.0, |t| t.slope);
            vec![format!(
                "max_slope_bytes_per_iteration = {:.2}",
                slope.max(0.0) * 1.1
            )]
        }
        Dimension::Heap => {
            let mut v = Vec::new();
            if r.over_bound[Measure::Bytes] {
                v.push(format!("max_bytes = {}", net(Measure::Bytes)));
            }
            if r.over_bound[Measure::Blocks] {
                v.push(format!("max_blocks = {}", net(Measure::Blocks)));
            }
            v
        }
        Dimension::Peak => vec![format!("max_peak_bytes = {}", r.peak_bytes.unwrap_or(0))],
        Dimension::Threads => vec![format!("max_threads = {}", net(Measure::Threads))],
        Dimension::Fds => vec![format!("max_fds = {}", net(Measure::Fds))],
        Dimension::Tasks => vec![format!("max_tasks = {}", net(Measure::Tasks))],
        Dimension::Mapped => vec![format!("max_mapped_bytes = {}", net(Measure::Mapped))],
    }
}
