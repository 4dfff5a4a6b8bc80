//! The result of a measurement, and the failure message people read in CI logs.

use std::fmt;
use std::time::Duration;

use crate::census::{FdInfo, ThreadInfo};
use crate::config::Config;
use crate::engine::{HeapSource, Scope};
use crate::sites::Site;

/// A measured dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    /// Live heap bytes and blocks.
    Heap,
    /// The highest live heap within a run.
    Peak,
    /// Live OS threads.
    Threads,
    /// Open file descriptors.
    Fds,
    /// Alive async tasks on the watched runtimes (cargo feature `tokio`).
    Tasks,
}

impl Dimension {
    /// The word reports use: `heap`, `peak`, `threads`, `fds`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Heap => "heap",
            Dimension::Peak => "peak",
            Dimension::Threads => "threads",
            Dimension::Fds => "fds",
            Dimension::Tasks => "tasks",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A count before the measured runs and after them (after settling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    /// Before the first measured run.
    pub before: i64,
    /// After the last measured run, and after settling if the check waited.
    pub after: i64,
}

impl From<(i64, i64)> for Count {
    /// `(before, after)`.
    fn from((before, after): (i64, i64)) -> Count {
        Count { before, after }
    }
}

impl Count {
    /// `after - before`.
    pub fn net(&self) -> i64 {
        self.after - self.before
    }
}

/// What one measured run changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunDelta {
    /// Net change of live heap bytes over this run.
    pub bytes: i64,
    /// Net change of live heap blocks over this run.
    pub blocks: i64,
    /// The highest live heap within this run above the live heap at its start, where measured.
    pub peak_bytes: Option<u64>,
}

/// The outcome of a measurement. `Display` gives the same text as the panic of a failed check.
#[derive(Clone, Debug)]
pub struct Report {
    /// The test (or [`Config::name`]) this report is about.
    pub name: String,
    /// The configuration it ran with.
    pub config: Config,
    /// Where the counts come from.
    pub scope: Scope,
    /// Which allocator counted the heap.
    pub heap_source: HeapSource,
    /// Live heap bytes before and after; `None` if the heap was not measured.
    pub bytes: Option<Count>,
    /// Live heap blocks before and after; `None` if the heap was not measured.
    pub blocks: Option<Count>,
    /// One entry per measured run.
    pub per_run: Vec<RunDelta>,
    /// The worst run's peak (see [`Config::max_peak_bytes`]); `None` if not measured.
    pub peak_bytes: Option<u64>,
    /// Live OS threads before and after; `None` if not measured.
    pub threads: Option<Count>,
    /// Open file descriptors before and after; `None` if not measured.
    pub fds: Option<Count>,
    /// Alive async tasks on the watched runtimes before and after; `None` if not measured.
    pub tasks: Option<Count>,
    /// Threads alive after the runs that were not alive before them.
    pub new_threads: Vec<ThreadInfo>,
    /// Descriptors open after the runs that were not open before them.
    pub new_fds: Vec<FdInfo>,
    /// Dimensions that were not measured, each with the reason.
    pub not_measured: Vec<(Dimension, String)>,
    /// How long the check waited for counts to settle (zero when it passed at once).
    pub settle_wait: Duration,
    /// The counts were still over a bound when `settle_ms` ran out.
    pub settle_gave_up: bool,
    /// The dimensions over their bounds, in report order.
    pub exceeded: Vec<Dimension>,
    /// Where the memory live after one more run (the diagnostic run, made only after a heap or
    /// thread leak was found) was allocated, biggest first.
    pub sites: Vec<Site>,
    /// Why `sites` is empty or partial, if it is.
    pub sites_note: Option<String>,
    /// Soak mode's samples and trends (see [`Config::soak`]).
    pub soak: Option<crate::soak::SoakReport>,
    /// Why nothing could be measured, if so: the check fails rather than pass on zeros.
    pub unmeasurable: Option<String>,
    /// `NO_LEAK=off` was set: the body ran once and nothing was measured.
    pub off: bool,
}

impl Report {
    pub(crate) fn new(name: String, config: Config, scope: Scope) -> Report {
        Report {
            name,
            config,
            scope,
            heap_source: HeapSource::Missing,
            bytes: None,
            blocks: None,
            per_run: Vec::new(),
            peak_bytes: None,
            threads: None,
            fds: None,
            tasks: None,
            new_threads: Vec::new(),
            new_fds: Vec::new(),
            not_measured: Vec::new(),
            settle_wait: Duration::ZERO,
            settle_gave_up: false,
            exceeded: Vec::new(),
            sites: Vec::new(),
            sites_note: None,
            soak: None,
            unmeasurable: None,
            off: false,
        }
    }

    /// Recomputes [`Report::exceeded`] from the counts and the bounds.
    pub(crate) fn evaluate(&mut self) {
        let c = &self.config;
        let over =
            |n: Option<Count>, max: u64| n.is_some_and(|n| i128::from(n.net()) > i128::from(max));
        let mut ex = Vec::new();
        if over(self.bytes, c.max_bytes) || over(self.blocks, c.max_blocks) {
            ex.push(Dimension::Heap);
        }
        if let (Some(p), Some(max)) = (self.peak_bytes, c.max_peak_bytes) {
            if p > max {
                ex.push(Dimension::Peak);
            }
        }
        if over(self.threads, c.max_threads) {
            ex.push(Dimension::Threads);
        }
        if over(self.fds, c.max_fds) {
            ex.push(Dimension::Fds);
        }
        if over(self.tasks, c.max_tasks) {
            ex.push(Dimension::Tasks);
        }
        self.exceeded = ex;
    }

    /// True if any bound was exceeded, or if the heap could not be measured at all (a check never
    /// passes on zeros).
    pub fn is_leak(&self) -> bool {
        !self.exceeded.is_empty() || self.unmeasurable.is_some()
    }

    /// True if nothing could be measured (see [`Report::unmeasurable`]).
    pub fn is_unmeasurable(&self) -> bool {
        self.unmeasurable.is_some()
    }

    /// True if `dim` is over its bound.
    pub fn exceeds(&self, dim: Dimension) -> bool {
        self.exceeded.contains(&dim)
    }

    /// Net growth of live heap bytes over the measured runs (0 if not measured).
    pub fn net_bytes(&self) -> i64 {
        self.bytes.map_or(0, |c| c.net())
    }

    /// Net growth of live heap blocks over the measured runs (0 if not measured).
    pub fn net_blocks(&self) -> i64 {
        self.blocks.map_or(0, |c| c.net())
    }

    /// Net growth of live threads, or `None` if threads were not measured.
    pub fn net_threads(&self) -> Option<i64> {
        self.threads.map(|c| c.net())
    }

    /// Net growth of open fds, or `None` if fds were not measured.
    pub fn net_fds(&self) -> Option<i64> {
        self.fds.map(|c| c.net())
    }

    /// Net growth of alive async tasks, or `None` if tasks were not measured.
    pub fn net_tasks(&self) -> Option<i64> {
        self.tasks.map(|c| c.net())
    }

    /// Why `dim` was not measured, or `None` if it was.
    pub fn not_measured_reason(&self, dim: Dimension) -> Option<&str> {
        self.not_measured
            .iter()
            .find(|(d, _)| *d == dim)
            .map(|(_, why)| why.as_str())
    }
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
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
        if self.exceeded.is_empty() {
            write!(f, "no_leak: `{}` passed", self.name)?;
        } else {
            let dims: Vec<_> = self.exceeded.iter().map(|d| d.as_str()).collect();
            write!(f, "no_leak: `{}` leaked: {}", self.name, dims.join(", "))?;
        }
        writeln!(f)?;
        let runs = self.per_run.len();
        if let Some(soak) = &self.soak {
            write_soak(f, soak, c)?;
        } else if let (Some(b), Some(k)) = (self.bytes, self.blocks) {
            writeln!(
                f,
                "  heap:      {} B, {} blocks over {runs} runs (bounds: {} B, {} blocks)",
                signed(b.net()),
                signed(k.net()),
                c.max_bytes,
                c.max_blocks
            )?;
            let per: Vec<String> = self
                .per_run
                .iter()
                .map(|d| format!("{}/{}", signed(d.bytes), signed(d.blocks)))
                .collect();
            writeln!(f, "  per run:   {}  (B/blocks)", per.join(", "))?;
            writeln!(
                f,
                "  live:      {} B, {} blocks -> {} B, {} blocks",
                b.before, k.before, b.after, k.after
            )?;
        }
        match (self.peak_bytes, c.max_peak_bytes) {
            (Some(p), Some(max)) => {
                writeln!(f, "  peak:      {p} B in the worst run (bound: {max} B)")?
            }
            (None, Some(_)) => writeln!(
                f,
                "  peak:      not measured ({})",
                self.not_measured_reason(Dimension::Peak)
                    .unwrap_or("unknown")
            )?,
            _ => {}
        }
        for (dim, count, bound) in [
            (Dimension::Threads, self.threads, c.max_threads),
            (Dimension::Fds, self.fds, c.max_fds),
            (Dimension::Tasks, self.tasks, c.max_tasks),
        ] {
            // A soak shows threads and fds as trends.
            if self.soak.is_some() && dim != Dimension::Tasks {
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
                    self.not_measured_reason(dim).unwrap_or("unknown")
                )?,
            }
        }
        if !self.new_threads.is_empty() {
            writeln!(f, "  new threads:")?;
            // One line per thread name; states are summed up when they differ.
            let mut groups = group(
                &self.new_threads,
                |t| format!("\"{}\"", t.name),
                |t| t.tid.to_string(),
            );
            for (desc, tids) in groups.iter_mut() {
                let of_group: Vec<&ThreadInfo> = self
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
        }
        let spawned: Vec<&Site> = self.sites.iter().filter(|s| s.spawns_thread).collect();
        if !self.new_threads.is_empty() && !spawned.is_empty() {
            let mut seen = Vec::new();
            for fr in spawned.iter().filter_map(|s| s.frame.as_ref()) {
                if !seen.contains(&fr) && seen.len() < MAX_SITES {
                    writeln!(f, "    spawned at {} ({})", fr.location(), fr.function)?;
                    seen.push(fr);
                }
            }
        }
        if !self.new_fds.is_empty() {
            writeln!(f, "  new fds:")?;
            let groups = group(
                &self.new_fds,
                |d| format!("-> {}", d.target),
                |d| d.fd.to_string(),
            );
            write_groups(f, &groups, "fd", "fds")?;
        }
        if !self.sites.is_empty() {
            let shown = self.sites.len().min(MAX_SITES);
            writeln!(
                f,
                "  sites:     live after one more run, by allocating line ({shown} of {}):",
                self.sites.len()
            )?;
            for s in &self.sites[..shown] {
                let blocks = if s.blocks == 1 { "block" } else { "blocks" };
                match &s.frame {
                    Some(fr) => writeln!(
                        f,
                        "    - {} B in {} {blocks} at {} ({})",
                        s.bytes,
                        s.blocks,
                        fr.location(),
                        fr.function
                    )?,
                    None => writeln!(
                        f,
                        "    - {} B in {} {blocks} with no frame of your code (std internals)",
                        s.bytes, s.blocks
                    )?,
                }
                for c in &s.context {
                    writeln!(f, "        from {} ({})", c.location(), c.function)?;
                }
            }
        }
        if let Some(note) = &self.sites_note {
            writeln!(f, "  sites:     {note}")?;
        }
        if !self.settle_wait.is_zero() {
            writeln!(
                f,
                "  settled:   waited {} ms{}",
                self.settle_wait.as_millis(),
                if self.settle_gave_up {
                    format!(" (gave up at settle_ms = {})", c.settle_ms)
                } else {
                    String::new()
                }
            )?;
        }
        let scope = match self.scope {
            Scope::Process => "whole process",
            Scope::CallingThread => "calling thread only (other tests share this process)",
        };
        write!(
            f,
            "  config:    warmup = {}, runs = {}, counted: {scope}",
            c.warmup, c.runs
        )?;
        if !self.exceeded.is_empty() {
            write!(
                f,
                "\n  hint:      a real leak grows with runs; to accept growth, raise the bound, \
                 e.g. #[no_leak({} = N)]; NO_LEAK=off skips all checks",
                match self.exceeded[0] {
                    Dimension::Heap if self.soak.is_some() => "max_slope_bytes",
                    // Only the block count is over: name the bound that would accept it.
                    Dimension::Heap
                        if self.bytes.is_some_and(|b| b.net() <= c.max_bytes as i64) =>
                    {
                        "max_blocks"
                    }
                    Dimension::Heap => "max_bytes",
                    Dimension::Peak => "max_peak_bytes",
                    Dimension::Threads => "max_threads",
                    Dimension::Fds => "max_fds",
                    Dimension::Tasks => "max_tasks",
                }
            )?;
        }
        Ok(())
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

fn floors(t: &crate::soak::Trend) -> String {
    t.floors
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_soak(
    f: &mut fmt::Formatter<'_>,
    soak: &crate::soak::SoakReport,
    c: &Config,
) -> fmt::Result {
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
            t.r2,
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
    let n = soak.samples.len();
    if n > 0 {
        let picks: Vec<String> = (0..n.min(6))
            .map(|i| &soak.samples[i * (n - 1) / (n.min(6) - 1).max(1)])
            .map(|s| format!("{}: {} B", s.iteration, s.bytes))
            .collect();
        writeln!(f, "  samples:   {}", picks.join(", "))?;
    }
    if let Some(p) = &soak.plot {
        writeln!(f, "  plot:      {}", p.display())?;
    }
    Ok(())
}
