//! What was left behind, by name and place: new threads, new fds, and the allocation sites of the
//! diagnostic run with who holds their memory.

use std::fmt;

use super::units::blocks;
use super::Out;
use crate::check::report::Report;
use crate::counting::census::ThreadInfo;
use crate::diagnosis::retention::{HeldBy, Holder};
use crate::diagnosis::sites::{Frame, Site};

/// Sites (and thread spawn sites) listed when `NO_LEAK_SITES` does not say otherwise; the rest are
/// counted on one line. The JSON line (`NO_LEAK_REPORT`) has all of them.
pub(crate) const DEFAULT_SITES: usize = 3;

/// At most this many lines list new threads or fds; the rest are counted.
const MAX_GROUPS: usize = 8;

/// At most this many blocks of a chain are named; the rest are "...".
const MAX_VIA: usize = 3;

/// How many sites a report lists: `NO_LEAK_SITES` (a number, or `all`; read and checked with the
/// other settings, see `check::env::settings`), else [`DEFAULT_SITES`].
fn sites_shown() -> usize {
    crate::check::env::settings()
        .ok()
        .and_then(|s| s.sites)
        .unwrap_or(DEFAULT_SITES)
}

/// One line per thread name, with the states summed up when they differ, then the spawn sites.
pub(super) fn write_new_threads(f: Out, r: &Report) -> fmt::Result {
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
        desc.push(' ');
        desc.push_str(&states(&of_group));
    }
    write_groups(f, &groups, "tid", "tids")?;
    let (mut seen, shown) = (Vec::new(), sites_shown());
    let spawned = r.sites.iter().filter(|s| s.spawns_thread);
    for fr in spawned.filter_map(|s| s.frame.as_ref()) {
        if !seen.contains(&fr) && seen.len() < shown {
            writeln!(f, "    spawned at {} ({})", fr.location(), fr.function)?;
            seen.push(fr);
        }
    }
    Ok(())
}

/// `sleeping`, or `3 sleeping, 1 running` when the threads of one name differ.
fn states(threads: &[&ThreadInfo]) -> String {
    let states = group(threads, |t| t.state.clone(), |_| String::new());
    match states.as_slice() {
        [(one, _)] => one.clone(),
        many => many
            .iter()
            .map(|(s, n)| format!("{} {s}", n.len()))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

pub(super) fn write_new_fds(f: Out, r: &Report) -> fmt::Result {
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

pub(super) fn write_sites(f: Out, r: &Report) -> fmt::Result {
    if !r.sites.is_empty() {
        let shown = r.sites.len().min(sites_shown());
        writeln!(
            f,
            "  sites:     live after one more run, by allocating line ({shown} of {}):",
            r.sites.len()
        )?;
        for s in &r.sites[..shown] {
            write_site(f, s)?;
        }
        write_rest(f, &r.sites[shown..])?;
    }
    match &r.sites_note {
        Some(note) => writeln!(f, "  sites:     {note}"),
        None => Ok(()),
    }
}

/// The sites not listed, counted on one line.
fn write_rest(f: Out, rest: &[Site]) -> fmt::Result {
    if rest.is_empty() {
        return Ok(());
    }
    let bytes: u64 = rest.iter().map(|s| s.bytes).sum();
    let count: u64 = rest.iter().map(|s| s.blocks).sum();
    let sites = if rest.len() == 1 { "site" } else { "sites" };
    writeln!(
        f,
        "    - and {} more {sites} ({bytes} B in {}; NO_LEAK_SITES=all lists them)",
        rest.len(),
        blocks(count)
    )
}

/// A site: its line, who holds its memory, and the one caller that says which call it was.
fn write_site(f: Out, s: &Site) -> fmt::Result {
    let c = if s.c_heap { " of C heap" } else { "" };
    let amount = format!("{} B in {}{c}", s.bytes, blocks(s.blocks));
    match &s.frame {
        Some(fr) => writeln!(f, "    - {amount} at {} ({})", fr.location(), fr.function)?,
        None => writeln!(
            f,
            "    - {amount} with no frame of your code (std internals)"
        )?,
    }
    if let Some(h) = &s.held_by {
        writeln!(f, "        {}", held_by(h, s.blocks))?;
    }
    if let Some(caller) = s.context.first() {
        writeln!(
            f,
            "        from {} ({})",
            caller.location(),
            caller.function
        )?;
    }
    Ok(())
}

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

fn write_groups(f: Out, groups: &[(String, Vec<String>)], one: &str, many: &str) -> fmt::Result {
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
