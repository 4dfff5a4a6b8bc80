//! The text report: the panic message of a failed check, laid out for a person. The title says
//! what leaked, by how much and where; numbers sit on labelled lines; the hint says what to do
//! next, on labelled lines too.

mod hint;
mod left_behind;
mod soak;
#[cfg(test)]
mod tests;
mod units;

use std::fmt;

use crate::check::report::{Dimension, Measure, Report, WindowGrowth};
use crate::counting::heap::Scope;
use crate::diagnosis::sites::Frame;
use units::{signed, signed_size, size};

type Out<'a, 'b> = &'a mut fmt::Formatter<'b>;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.off {
            return write!(f, "no_leak: `{}` not measured: NO_LEAK=off", self.name);
        }
        if let Some(why) = &self.unmeasurable {
            writeln!(
                f,
                "no_leak: `{}` cannot be checked: heap not measured",
                self.name
            )?;
            return write!(f, "  why: {}", why.replace('\n', "\n       "));
        }
        write_title(f, self)?;
        match &self.soak {
            Some(soak) => soak::write_soak(f, soak, self)?,
            None => write_heap(f, self)?,
        }
        write_confirmations(f, self)?;
        write_one_time(f, self)?;
        write_peak(f, self)?;
        write_counts(f, self)?;
        write_c_heap(f, self)?;
        left_behind::write_new_threads(f, self)?;
        left_behind::write_new_fds(f, self)?;
        left_behind::write_sites(f, self)?;
        write_settled(f, self)?;
        write_config(f, self)?;
        hint::write_hint(f, self)
    }
}

/// `no_leak: `t` leaked heap, threads: +664 B, +15 blocks, +2 threads at src/bus.rs:131`: what
/// leaked, by how much, and the line that allocated the most of it.
fn write_title(f: Out, r: &Report) -> fmt::Result {
    if r.exceeded.is_empty() {
        return writeln!(f, "no_leak: `{}` passed", r.name);
    }
    let dims: Vec<_> = r.exceeded.iter().map(|d| d.as_str()).collect();
    let growth: Vec<String> = r.exceeded.iter().filter_map(|&d| growth(r, d)).collect();
    write!(f, "no_leak: `{}` leaked {}", r.name, dims.join(", "))?;
    if !growth.is_empty() {
        write!(f, ": {}", growth.join(", "))?;
    }
    match where_it_leaked(r) {
        Some(at) => writeln!(f, " at {}", at.location()),
        None => writeln!(f),
    }
}

/// How much `dim` grew, in a few words for the title.
fn growth(r: &Report, dim: Dimension) -> Option<String> {
    if let Some(soak) = &r.soak {
        let trend = match dim {
            Dimension::Heap => soak.bytes.map(|t| format!("{:+.2} B/iteration", t.slope)),
            Dimension::Threads => soak
                .threads
                .map(|t| format!("{:+.4} threads/iteration", t.slope)),
            Dimension::Fds => soak.fds.map(|t| format!("{:+.4} fds/iteration", t.slope)),
            Dimension::Mapped => soak
                .mapped
                .map(|t| format!("{:+.1} mapped B/iteration", t.slope)),
            _ => None,
        };
        if trend.is_some() {
            return trend;
        }
    }
    match dim {
        Dimension::Peak => r.peak_bytes.map(|p| format!("peak {p} B")),
        _ => net_growth(dim, |m| r.net(m), ", "),
    }
}

/// The line that allocated the most of what leaked: for a heap leak the biggest site with a frame
/// that is not a thread's spawn (the threads' own line says where they were spawned), for a thread
/// leak without a heap leak the first spawn site.
fn where_it_leaked(r: &Report) -> Option<&Frame> {
    let first = |spawns: bool| {
        r.sites
            .iter()
            .filter(|s| s.spawns_thread == spawns)
            .find_map(|s| s.frame.as_ref())
    };
    if r.exceeds(Dimension::Heap) {
        first(false).or_else(|| first(true))
    } else if r.exceeds(Dimension::Threads) {
        first(true)
    } else {
        None
    }
}

fn write_heap(f: Out, r: &Report) -> fmt::Result {
    let (Some(b), Some(k)) = (r.count(Measure::Bytes), r.count(Measure::Blocks)) else {
        return Ok(());
    };
    let c = &r.config;
    writeln!(
        f,
        "  heap:      {} B, {} blocks over {} runs (bounds: {} B, {} blocks)",
        signed(b.net()),
        signed(k.net()),
        r.per_run.len(),
        c.bound(Measure::Bytes),
        c.bound(Measure::Blocks)
    )?;
    let per: Vec<String> = r
        .per_run
        .iter()
        .map(|d| format!("{}/{}", signed(d.bytes), signed(d.blocks)))
        .collect();
    writeln!(f, "  per run:   {}  (B/blocks)", per.join(", "))?;
    writeln!(
        f,
        "  live:      {} B, {} blocks -> {} B, {} blocks",
        b.before, k.before, b.after, k.after
    )
}

/// A failing check's confirmation windows: the growth repeated.
fn write_confirmations(f: Out, r: &Report) -> fmt::Result {
    if r.confirmations.is_empty() || r.exceeded.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = r
        .confirmations
        .iter()
        .map(|w| format!("{} in {} runs", window_growth(r, w), w.runs))
        .collect();
    writeln!(
        f,
        "  confirmed: grew again in {} more {}: {}",
        r.confirmations.len(),
        if r.confirmations.len() == 1 {
            "window"
        } else {
            "windows"
        },
        shown.join("; ")
    )
}

/// What one confirmation window changed, in the dimensions that leaked.
fn window_growth(r: &Report, w: &WindowGrowth) -> String {
    let parts: Vec<String> = r
        .exceeded
        .iter()
        .filter_map(|&dim| net_growth(dim, |m| w.net[m], "/"))
        .collect();
    parts.join(", ")
}

/// The net growth of `dim`, in a few words (`+664 B, +15 blocks`, `+5 threads`, `+4 KiB
/// mapped`); heap bytes and blocks are joined by `heap_joint`. `None` where not measured, and for
/// peak, which is no net growth.
fn net_growth(
    dim: Dimension,
    net: impl Fn(Measure) -> Option<i64>,
    heap_joint: &str,
) -> Option<String> {
    let (_, fds) = crate::counting::census::FD_WORDS;
    match dim {
        Dimension::Heap => Some(format!(
            "{} B{heap_joint}{} blocks",
            signed(net(Measure::Bytes)?),
            signed(net(Measure::Blocks)?)
        )),
        Dimension::Peak => None,
        Dimension::Threads => net(Measure::Threads).map(|n| format!("{} threads", signed(n))),
        Dimension::Fds => net(Measure::Fds).map(|n| format!("{} {fds}", signed(n))),
        Dimension::Tasks => net(Measure::Tasks).map(|n| format!("{} tasks", signed(n))),
        Dimension::Mapped => net(Measure::Mapped).map(|n| format!("{} mapped", signed_size(n))),
    }
}

/// A passing check whose first window grew once.
fn write_one_time(f: Out, r: &Report) -> fmt::Result {
    let Some(o) = &r.one_time else {
        return Ok(());
    };
    let dims: Vec<&str> = o.dimensions.iter().map(|d| d.as_str()).collect();
    let mapped = match r.count(Measure::Mapped) {
        Some(m) if o.dimensions.contains(&Dimension::Mapped) => {
            format!("; mapped {}", signed_size(m.net()))
        }
        _ => String::new(),
    };
    writeln!(
        f,
        "  one-time:  {} grew in the first window ({} B, {} blocks; most in run {}{mapped}) and \
         not again in {} more windows: not a leak; warmup = {} would absorb it",
        dims.join(", "),
        signed(o.bytes),
        signed(o.blocks),
        o.run,
        r.confirmations.len(),
        r.config.warmup + o.run
    )
}

fn write_peak(f: Out, r: &Report) -> fmt::Result {
    match (r.peak_bytes, r.config.max_peak_bytes) {
        (Some(p), Some(max)) => writeln!(f, "  peak:      {p} B in the worst run (bound: {max} B)"),
        (None, Some(_)) => writeln!(
            f,
            "  peak:      not measured ({})",
            r.not_measured_reason(Dimension::Peak).unwrap_or("unknown")
        ),
        _ => Ok(()),
    }
}

/// With the feature `ffi`, a line when the C heap is not counted.
fn write_c_heap(f: Out, r: &Report) -> fmt::Result {
    match r.c_heap_not_measured {
        Some(why) => writeln!(f, "  C heap:    not measured: {why}"),
        None => Ok(()),
    }
}

/// Threads, fds, tasks and mapped bytes: before -> after (net, bound), or why not measured.
fn write_counts(f: Out, r: &Report) -> fmt::Result {
    let c = &r.config;
    for (dim, measure) in [
        (Dimension::Threads, Measure::Threads),
        (Dimension::Fds, Measure::Fds),
        (Dimension::Tasks, Measure::Tasks),
    ] {
        let (count, bound) = (r.count(measure), c.bound(measure));
        // A soak shows threads and fds as trends.
        if r.soak.is_some() && dim != Dimension::Tasks {
            continue;
        }
        // Tasks are only shown where a runtime is watched, or a bound was asked for.
        if dim == Dimension::Tasks && count.is_none() && bound == 0 {
            continue;
        }
        let label = format!("{dim}:");
        match count {
            Some(n) => writeln!(
                f,
                "  {label:<10} {} -> {} ({}, bound: {bound})",
                n.before,
                n.after,
                signed(n.net())
            )?,
            None => writeln!(
                f,
                "  {label:<10} not measured ({})",
                r.not_measured_reason(dim).unwrap_or("unknown")
            )?,
        }
    }
    if r.soak.is_none() {
        write_mapped(f, r)?;
    }
    Ok(())
}

/// Mapped bytes, shown only where they are measured (feature `ffi`) or a bound was asked for.
fn write_mapped(f: Out, r: &Report) -> fmt::Result {
    let bound = r.config.bound(Measure::Mapped);
    match r.count(Measure::Mapped) {
        Some(n) => writeln!(
            f,
            "  mapped:    {} -> {} ({}, bound: {})",
            size(n.before),
            size(n.after),
            signed_size(n.net()),
            size(bound.try_into().unwrap_or(i64::MAX))
        ),
        None if bound > 0 => writeln!(
            f,
            "  mapped:    not measured ({})",
            r.not_measured_reason(Dimension::Mapped)
                .unwrap_or("unknown")
        ),
        None => Ok(()),
    }
}

fn write_settled(f: Out, r: &Report) -> fmt::Result {
    if r.settle_wait.is_zero() {
        return Ok(());
    }
    let gave_up = if r.settle_gave_up {
        format!(" (gave up at settle_ms = {})", r.config.settle.as_millis())
    } else {
        String::new()
    };
    writeln!(
        f,
        "  settled:   waited {} ms{gave_up}",
        r.settle_wait.as_millis()
    )
}

fn write_config(f: Out, r: &Report) -> fmt::Result {
    let scope = match r.scope {
        Scope::Process => "whole process",
        Scope::CallingThread => "calling thread only (other tests share this process)",
    };
    write!(
        f,
        "  config:    warmup = {}, runs = {}, counted: {scope}",
        r.config.warmup, r.config.runs
    )
}
