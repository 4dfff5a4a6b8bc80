//! The `Display` of snapshots and diffs: top tables like `pprof -top`.

use std::fmt;

use super::{Diff, SiteDelta, Snapshot};
use crate::diagnosis::sites::Frame;

/// Rows a table shows unless `{:.N}` or `{:#}` says otherwise.
const TOP: usize = 10;

fn rows_wanted(f: &fmt::Formatter<'_>) -> usize {
    if f.alternate() {
        usize::MAX
    } else {
        f.precision().unwrap_or(TOP)
    }
}

fn site_name(frame: Option<&Frame>) -> String {
    match frame {
        Some(fr) => format!("{} ({})", fr.location(), fr.function),
        None => "<unresolved frame>".into(),
    }
}

fn percent(part: u64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn more_sites(n: usize) -> String {
    format!("{n} more {}", if n == 1 { "site" } else { "sites" })
}

fn plural(n: impl Into<i128>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let want = rows_wanted(f);
        writeln!(
            f,
            "heap profile: {} B in {} live at {}, allocated in the {} ms since the profiler started",
            self.bytes,
            plural(self.blocks, "block", "blocks"),
            plural(self.sites.len() as u64, "site", "sites"),
            self.since_start.as_millis()
        )?;
        if self.sites.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "{:>12} {:>6} {:>6} {:>8}  site",
            "bytes", "bytes%", "sum%", "blocks"
        )?;
        let mut sum = 0;
        for s in self.sites.iter().take(want) {
            sum += s.bytes;
            writeln!(
                f,
                "{:>12} {:>5.1}% {:>5.1}% {:>8}  {}",
                s.bytes,
                percent(s.bytes, self.bytes),
                percent(sum, self.bytes),
                s.blocks,
                site_name(s.frame.as_ref())
            )?;
        }
        if self.sites.len() > want {
            let rest = &self.sites[want..];
            writeln!(
                f,
                "  ... and {}: {} B in {}",
                more_sites(rest.len()),
                rest.iter().map(|s| s.bytes).sum::<u64>(),
                plural(
                    rest.iter().map(|s| s.blocks).sum::<u64>(),
                    "block",
                    "blocks"
                ),
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let want = rows_wanted(f);
        writeln!(
            f,
            "heap diff: {:+} B, {:+} blocks in {} ms ({} B in {} -> {} B in {})",
            self.delta_bytes(),
            self.delta_blocks(),
            self.between.as_millis(),
            self.base_bytes,
            plural(self.base_blocks, "block", "blocks"),
            self.bytes,
            plural(self.blocks, "block", "blocks"),
        )?;
        let growing: Vec<&SiteDelta> = self.growing().collect();
        let shrinking: Vec<&SiteDelta> = self.shrinking().collect();
        let unchanged = self.sites.len() - growing.len() - shrinking.len();
        if growing.is_empty() {
            writeln!(f, "  grew:   no site")?;
        } else {
            delta_rows(f, "grew:", &growing, want)?;
        }
        if !shrinking.is_empty() {
            delta_rows(f, "shrank or freed:", &shrinking, want)?;
        }
        if unchanged > 0 {
            writeln!(
                f,
                "  unchanged: {}",
                plural(unchanged as u64, "site", "sites")
            )?;
        }
        Ok(())
    }
}

/// A diff's table of `what` (growers or shrinkers): a header, `want` rows, and the rest summed.
fn delta_rows(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    list: &[&SiteDelta],
    want: usize,
) -> fmt::Result {
    writeln!(
        f,
        "  {what}\n{:>12} {:>8} {:>12} {:>12}  site",
        "Δbytes", "Δblocks", "base bytes", "bytes"
    )?;
    for s in list.iter().take(want) {
        writeln!(
            f,
            "{:>+12} {:>+8} {:>12} {:>12}  {}",
            s.delta_bytes(),
            s.delta_blocks(),
            s.base_bytes,
            s.bytes,
            site_name(s.frame.as_ref())
        )?;
    }
    if list.len() > want {
        let rest = &list[want..];
        writeln!(
            f,
            "  ... and {}: {:+} B",
            more_sites(rest.len()),
            rest.iter().map(|s| s.delta_bytes()).sum::<i64>()
        )?;
    }
    Ok(())
}
