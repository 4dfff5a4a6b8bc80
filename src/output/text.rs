//! The text report: the panic message of a failed check, laid out for a person. The first line
//! says what leaked; numbers sit on labelled lines; the hint says what to do next.

use std::fmt;

use crate::check::report::{Dimension, Measure, Report, WindowGrowth};
use crate::check::soak::{SoakReport, Trend};
use crate::counting::census::ThreadInfo;
use crate::counting::heap::Scope;
use crate::diagnosis::retention::{HeldBy, Holder}; // -- retention
use crate::diagnosis::sites::{Frame, Site};

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

/// Bytes in the largest unit that writes them exactly: `5 MiB`, `24 KiB`, `100 B` (maps come in
/// whole pages, so mapped bytes read in KiB or MiB).
fn size(n: i64) -> String {
    const KIB: i64 = 1024;
    const MIB: i64 = 1024 * KIB;
    match n {
        0 => "0 B".into(),
        n if n % MIB == 0 => format!("{} MiB", n / MIB),
        n if n % KIB == 0 => format!("{} KiB", n / KIB),
        n => format!("{n} B"),
    }
}

fn signed_size(n: i64) -> String {
    if n > 0 {
        format!("+{}", size(n))
    } else {
        size(n)
    }
}

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
            Some(soak) => write_soak(f, soak, self)?,
            None => write_heap(f, self)?,
        }
        write_confirmations(f, self)?;
        write_one_time(f, self)?;
        write_peak(f, self)?;
        write_counts(f, self)?;
        write_c_heap(f, self)?;
        write_new_threads(f, self)?;
        write_new_fds(f, self)?;
        write_sites(f, self)?;
        write_settled(f, self)?;
        write_config(f, self)?;
        write_hint(f, self)
    }
}

fn write_title(f: Out, r: &Report) -> fmt::Result {
    if r.exceeded.is_empty() {
        writeln!(f, "no_leak: `{}` passed", r.name)
    } else {
        let dims: Vec<_> = r.exceeded.iter().map(|d| d.as_str()).collect();
        writeln!(f, "no_leak: `{}` leaked: {}", r.name, dims.join(", "))
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
        "  confirmed: grew again in {} more windows: {}",
        r.confirmations.len(),
        shown.join("; ")
    )
}

/// What one confirmation window changed, in the dimensions that leaked.
fn window_growth(r: &Report, w: &WindowGrowth) -> String {
    let mut parts = Vec::new();
    if r.exceeds(Dimension::Heap) {
        let heap = |m: Measure| w.net[m].unwrap_or(0);
        parts.push(format!(
            "{} B/{} blocks",
            signed(heap(Measure::Bytes)),
            signed(heap(Measure::Blocks))
        ));
    }
    for (dim, n) in [
        (Dimension::Threads, w.net[Measure::Threads]),
        (Dimension::Fds, w.net[Measure::Fds]),
        (Dimension::Tasks, w.net[Measure::Tasks]),
    ] {
        if let (true, Some(n)) = (r.exceeds(dim), n) {
            parts.push(format!("{} {dim}", signed(n)));
        }
    }
    if let (true, Some(n)) = (r.exceeds(Dimension::Mapped), w.net[Measure::Mapped]) {
        parts.push(format!("{} mapped", signed_size(n)));
    }
    parts.join(", ")
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

/// One line per thread name, with the states summed up when they differ, then the spawn sites.
fn write_new_threads(f: Out, r: &Report) -> fmt::Result {
    if r.new_threads.is_empty() {
        return Ok(());
    }
    writeln!(f, "  new threads:")?;
    let mut groups = group(
        &r.new_threads,
        |t| format!("\"{}\"", t.name),
        |t| t.tid.to_string(),
    );
    for (desc, tids) in groups.iter_mut() {
        let of_group: Vec<&ThreadInfo> = r
            .new_threads
            .iter()
            .filter(|t| tids.contains(&t.tid.to_string()))
            .collect();
        let states = group(&of_group, |t| t.state.clone(), |_| String::new());
        let states: Vec<String> = match states.as_slice() {
            [(one, _)] => vec![one.clone()],
            many => many
                .iter()
                .map(|(s, n)| format!("{} {s}", n.len()))
                .collect(),
        };
        desc.push(' ');
        desc.push_str(&states.join(", "));
    }
    write_groups(f, &groups, "tid", "tids")?;
    let mut seen = Vec::new();
    let spawned = r.sites.iter().filter(|s| s.spawns_thread);
    for fr in spawned.filter_map(|s| s.frame.as_ref()) {
        if !seen.contains(&fr) && seen.len() < MAX_SITES {
            writeln!(f, "    spawned at {} ({})", fr.location(), fr.function)?;
            seen.push(fr);
        }
    }
    Ok(())
}

fn write_new_fds(f: Out, r: &Report) -> fmt::Result {
    if r.new_fds.is_empty() {
        return Ok(());
    }
    let (one, many) = crate::counting::census::FD_WORDS;
    writeln!(f, "  new {many}:")?;
    let groups = group(
        &r.new_fds,
        |d| format!("-> {}", d.target),
        |d| d.fd.to_string(),
    );
    write_groups(f, &groups, one, many)
}

fn write_sites(f: Out, r: &Report) -> fmt::Result {
    if !r.sites.is_empty() {
        let shown = r.sites.len().min(MAX_SITES);
        writeln!(
            f,
            "  sites:     live after one more run, by allocating line ({shown} of {}):",
            r.sites.len()
        )?;
        for s in &r.sites[..shown] {
            write_site(f, s)?;
        }
    }
    match &r.sites_note {
        Some(note) => writeln!(f, "  sites:     {note}"),
        None => Ok(()),
    }
}

fn write_site(f: Out, s: &Site) -> fmt::Result {
    let blocks = if s.blocks == 1 { "block" } else { "blocks" };
    let c = if s.c_heap { " of C heap" } else { "" };
    match &s.frame {
        Some(fr) => writeln!(
            f,
            "    - {} B in {} {blocks}{c} at {} ({})",
            s.bytes,
            s.blocks,
            fr.location(),
            fr.function
        )?,
        None => writeln!(
            f,
            "    - {} B in {} {blocks}{c} with no frame of your code (std internals)",
            s.bytes, s.blocks
        )?,
    }
    // -- retention
    if let Some(h) = &s.held_by {
        writeln!(f, "        {}", held_by(h, s.blocks))?;
    }
    // -- end retention
    for c in &s.context {
        writeln!(f, "        from {} ({})", c.location(), c.function)?;
    }
    Ok(())
}

// -- retention
/// At most this many blocks of a chain are named; the rest are "...".
const MAX_VIA: usize = 3;

/// One line: who holds a site's memory, and through which blocks.
fn held_by(h: &HeldBy, site_blocks: u64) -> String {
    let locations = |frames: &[Frame]| {
        let mut l: Vec<String> = frames.iter().take(MAX_VIA).map(Frame::location).collect();
        if frames.len() > MAX_VIA {
            l.push("...".into());
        }
        l
    };
    let via = if h.via.is_empty() {
        String::new()
    } else {
        format!(", via {}", locations(&h.via).join(" -> "))
    };
    let mut line = match &h.holder {
        Holder::Static(name) => format!("held by static {name}{via}"),
        Holder::Thread(name) => format!("held by thread \"{name}\"{via}"),
        Holder::Cycle(members) if h.via.is_empty() => format!(
            "in a cycle of blocks allocated at {}",
            locations(members).join(", ")
        ),
        Holder::Cycle(members) => format!(
            "held by a cycle of blocks allocated at {}{via}",
            locations(members).join(", ")
        ),
        Holder::Unreachable if h.via.is_empty() => {
            "unreachable: nothing points at it (Box::leak, mem::forget, a lost raw pointer)".into()
        }
        Holder::Unreachable => format!("unreachable: held only by a block nothing points at{via}"),
        Holder::NotDetermined(why) => format!("held by: not determined ({why})"),
    };
    if h.blocks > 0 && h.blocks < site_blocks {
        line.push_str(&format!(" ({} of {site_blocks} blocks)", h.blocks));
    }
    line
}
// -- end retention

fn write_settled(f: Out, r: &Report) -> fmt::Result {
    if r.settle_wait.is_zero() {
        return Ok(());
    }
    let gave_up = if r.settle_gave_up {
        format!(" (gave up at settle_ms = {})", r.config.settle_ms)
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

fn write_hint(f: Out, r: &Report) -> fmt::Result {
    if r.exceeded.is_empty() {
        return Ok(());
    }
    let knobs: Vec<String> = r.exceeded.iter().flat_map(|&d| knobs(r, d)).collect();
    let why = if r.soak.is_some() {
        "the trend held over the whole soak"
    } else {
        "it grew again in every window, so it is not one-time growth"
    };
    write!(
        f,
        "\n  hint:      {why}; if this growth is expected, allow it: #[no_leak({})]; \
         NO_LEAK=off skips all checks",
        knobs.join(", ")
    )
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
            vec![format!("max_slope_bytes = {:.2}", slope.max(0.0) * 1.1)]
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

/// Groups items with the same description, keeping first-seen order: (description, ids).
fn group<T>(
    items: &[T],
    desc: impl Fn(&T) -> String,
    id: impl Fn(&T) -> String,
) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for it in items {
        let d = desc(it);
        match out.iter_mut().find(|(k, _)| *k == d) {
            Some((_, ids)) => ids.push(id(it)),
            None => out.push((d, vec![id(it)])),
        }
    }
    out
}

/// At most this many allocation sites are listed.
const MAX_SITES: usize = 5;

/// At most this many lines list new threads or fds; the rest are counted.
const MAX_GROUPS: usize = 8;

fn write_groups(
    f: &mut fmt::Formatter<'_>,
    groups: &[(String, Vec<String>)],
    one: &str,
    many: &str,
) -> fmt::Result {
    for (desc, ids) in groups.iter().take(MAX_GROUPS) {
        if ids.len() == 1 {
            writeln!(f, "    - {one} {} {desc}", ids[0])?;
        } else {
            writeln!(
                f,
                "    - {} x {desc} ({many} {})",
                ids.len(),
                ids.join(", ")
            )?;
        }
    }
    if groups.len() > MAX_GROUPS {
        let rest: usize = groups[MAX_GROUPS..].iter().map(|(_, ids)| ids.len()).sum();
        writeln!(f, "    - ... and {rest} more")?;
    }
    Ok(())
}

fn floors(t: &Trend) -> String {
    t.floors
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_soak(f: &mut fmt::Formatter<'_>, soak: &SoakReport, r: &Report) -> fmt::Result {
    let c = &r.config;
    writeln!(
        f,
        "  soak:      {} iterations in {} ms ({} warmup), {} samples",
        soak.iterations,
        soak.elapsed.as_millis(),
        soak.warmup_iterations,
        soak.samples.len()
    )?;
    if let Some(t) = &soak.bytes {
        writeln!(
            f,
            "  heap:      {:+.4} B/iteration (R\u{b2} {:.2}; bound: {} B/iteration); floors by quarter: {} B{}",
            t.slope,
            t.r_squared,
            c.max_slope_bytes,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::config::Config;

    fn report(cfg: Config, mapped: Option<(i64, i64)>) -> Report {
        let mut r = Report::new("t".into(), cfg, Scope::Process);
        r.counts[Measure::Bytes] = Some((100, 100).into());
        r.counts[Measure::Blocks] = Some((1, 1).into());
        r.counts[Measure::Mapped] = mapped.map(Into::into);
        if mapped.is_none() {
            let why = crate::counting::mapped::not_measured_reason();
            r.not_measured.push((Dimension::Mapped, why.into()));
        }
        r
    }

    #[test]
    fn sizes_are_written_in_the_largest_exact_unit() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(100), "100 B");
        assert_eq!(size(24 << 10), "24 KiB");
        assert_eq!(size(5 << 20), "5 MiB");
        assert_eq!(size((5 << 20) + 4096), "5124 KiB");
        assert_eq!(signed_size(4096), "+4 KiB");
        assert_eq!(signed_size(-4096), "-4 KiB");
    }

    #[test]
    fn mapped_shows_where_measured_with_its_hint() {
        let mut r = report(Config::new(), Some((16 << 10, (16 << 10) + (5 << 20))));
        r.exceeded = vec![Dimension::Mapped];
        let text = r.to_string();
        assert!(text.starts_with("no_leak: `t` leaked: mapped\n"), "{text}");
        assert!(
            text.contains("\n  mapped:    16 KiB -> 5136 KiB (+5 MiB, bound: 0 B)\n"),
            "{text}"
        );
        assert!(
            text.contains("#[no_leak(max_mapped_bytes = 5242880)]"),
            "{text}"
        );
    }

    #[test]
    fn mapped_is_left_out_where_not_measured_unless_bounded() {
        let text = report(Config::new(), None).to_string();
        assert!(!text.contains("mapped"), "{text}");
        let text = report(Config::new().max_mapped_bytes(4096), None).to_string();
        assert!(text.contains("\n  mapped:    not measured ("), "{text}");
    }
}

#[cfg(test)]
mod c_heap_tests {
    use super::*;

    #[test]
    fn c_sites_and_an_unmeasured_c_heap_are_said() {
        let mut r = Report::new("t".into(), crate::Config::new(), Scope::Process);
        r.c_heap_not_measured = Some("not glibc");
        r.sites = vec![Site {
            bytes: 16,
            blocks: 1,
            frame: Some(Frame {
                function: "t::f".into(),
                file: Some("src/t.rs".into()),
                line: Some(3),
            }),
            context: Vec::new(),
            spawns_thread: false,
            c_heap: true,
            held_by: None,
        }];
        let text = r.to_string();
        assert!(
            text.contains("  C heap:    not measured: not glibc\n"),
            "{text}"
        );
        assert!(
            text.contains("- 16 B in 1 block of C heap at src/t.rs:3 (t::f)"),
            "{text}"
        );
    }
}
