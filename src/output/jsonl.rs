//! Machine-readable results: with `NO_LEAK_REPORT=<path>`, every `#[no_leak]` test (and every
//! failing `check`) appends one JSON line to `<path>`.
//!
//! Lines are written with one `write` call on a file opened in append mode, under an exclusive
//! `flock`, so tests running in parallel threads or in many processes at once (nextest, isolated
//! children) never interleave their lines.

use std::fmt::Write as _;
use std::io::Write as _;

use crate::check::report::{Count, Measure, Report};
use crate::counting::heap::Scope;
use crate::diagnosis::retention::{HeldBy, Holder};
use crate::diagnosis::sites::Frame;

/// The variable naming the file to append to.
pub(crate) const VAR: &str = "NO_LEAK_REPORT";

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn count(c: Option<Count>) -> String {
    match c {
        Some(c) => format!(
            "{{\"before\":{},\"after\":{},\"net\":{}}}",
            c.before,
            c.after,
            c.net()
        ),
        None => "null".into(),
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("null".into(), |v| v.to_string())
}

/// One line for a measured test: `verdict` is what the test harness decided (`pass` or `fail`,
/// which `#[should_panic]` inverts), `outcome` what the body did.
pub(crate) fn report_line(r: &Report, outcome: &str, verdict: &str) -> String {
    let exceeded: Vec<String> = r.exceeded.iter().map(|d| string(d.as_str())).collect();
    let per_run: Vec<String> = r
        .per_run
        .iter()
        .map(|d| {
            format!(
                "{{\"bytes\":{},\"blocks\":{},\"peak_bytes\":{}}}",
                d.bytes,
                d.blocks,
                opt(d.peak_bytes)
            )
        })
        .collect();
    let sites: Vec<String> = r
        .sites
        .iter()
        .map(|s| {
            let (file, line, function) = match &s.frame {
                Some(f) => (f.file.as_deref().map_or("null".into(), string), opt(f.line), string(&f.function)),
                None => ("null".into(), "null".into(), "null".into()),
            };
            format!(
                "{{\"bytes\":{},\"blocks\":{},\"file\":{file},\"line\":{line},\"function\":{function},\"spawns_thread\":{},\"c_heap\":{},\"held_by\":{},\"callers\":[{}]}}",
                s.bytes, s.blocks, s.spawns_thread, s.c_heap, held_by(s.held_by.as_ref()),
                s.context.iter().map(frame).collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    format!(
        "{{\"test\":{},\"verdict\":{},\"outcome\":{},\"exceeded\":[{}],\"bytes\":{},\"blocks\":{},\"per_run\":[{}],\"peak_bytes\":{},\"threads\":{},\"fds\":{},\"tasks\":{},\"mapped\":{},\"settle_wait_ms\":{},\"warmup\":{},\"runs\":{},\"scope\":{},\"sites\":[{}],\"confirmations\":[{}],\"one_time\":{},\"message\":{}}}",
        string(&r.name),
        string(verdict),
        string(outcome),
        exceeded.join(","),
        count(r.count(Measure::Bytes)),
        count(r.count(Measure::Blocks)),
        per_run.join(","),
        opt(r.peak_bytes),
        count(r.count(Measure::Threads)),
        count(r.count(Measure::Fds)),
        count(r.count(Measure::Tasks)),
        count(r.count(Measure::Mapped)),
        r.settle_wait.as_millis(),
        r.config.warmup,
        r.config.runs,
        string(match r.scope {
            Scope::Process => "process",
            Scope::CallingThread => "calling_thread",
        }),
        sites.join(","),
        confirmations(r),
        one_time(r),
        if r.is_leak() { string(&r.to_string()) } else { "null".into() },
    )
}

/// What each confirmation window changed.
fn confirmations(r: &Report) -> String {
    let windows: Vec<String> = r
        .confirmations
        .iter()
        .map(|w| {
            format!(
                "{{\"runs\":{},\"bytes\":{},\"blocks\":{},\"threads\":{},\"fds\":{},\"tasks\":{},\"mapped\":{}}}",
                w.runs,
                w.net[Measure::Bytes].unwrap_or(0),
                w.net[Measure::Blocks].unwrap_or(0),
                opt(w.net[Measure::Threads]),
                opt(w.net[Measure::Fds]),
                opt(w.net[Measure::Tasks]),
                opt(w.net[Measure::Mapped])
            )
        })
        .collect();
    windows.join(",")
}

/// The first window's growth that did not repeat, or `null`.
fn one_time(r: &Report) -> String {
    let Some(o) = &r.one_time else {
        return "null".into();
    };
    let dims: Vec<String> = o.dimensions.iter().map(|d| string(d.as_str())).collect();
    format!(
        "{{\"dimensions\":[{}],\"bytes\":{},\"blocks\":{},\"run\":{}}}",
        dims.join(","),
        o.bytes,
        o.blocks,
        o.run
    )
}

fn frame(f: &Frame) -> String {
    format!(
        "{{\"file\":{},\"line\":{},\"function\":{}}}",
        f.file.as_deref().map_or("null".into(), string),
        opt(f.line),
        string(&f.function)
    )
}

/// A site's `held_by`: `{"kind": ..., <details>, "via": [frames], "blocks": n}`, or `null`.
fn held_by(h: Option<&HeldBy>) -> String {
    let Some(h) = h else {
        return "null".into();
    };
    let frames = |fs: &[Frame]| fs.iter().map(frame).collect::<Vec<_>>().join(",");
    let detail = match &h.holder {
        Holder::Static(name) | Holder::Thread(name) => format!(",\"name\":{}", string(name)),
        Holder::Cycle(members) => format!(",\"members\":[{}]", frames(members)),
        Holder::NotDetermined(why) => format!(",\"why\":{}", string(why)),
        _ => String::new(),
    };
    format!(
        "{{\"kind\":{}{detail},\"via\":[{}],\"blocks\":{}}}",
        string(h.holder.kind()),
        frames(&h.via),
        h.blocks
    )
}

/// One line for a test whose body failed, or whose child crashed, before a report existed.
pub(crate) fn failure_line(test: &str, outcome: &str, verdict: &str, message: &str) -> String {
    format!(
        "{{\"test\":{},\"verdict\":{},\"outcome\":{},\"message\":{}}}",
        string(test),
        string(verdict),
        string(outcome),
        string(message)
    )
}

/// Whether `NO_LEAK_REPORT` is set.
pub(crate) fn enabled() -> bool {
    std::env::var_os(VAR).is_some()
}

/// What the body came to, as a word.
pub(crate) fn outcome(r: &Report) -> &'static str {
    if r.off {
        "off"
    } else if r.unmeasurable.is_some() {
        "unmeasurable"
    } else if r.is_leak() {
        "leak"
    } else {
        "pass"
    }
}

/// Appends `line` to the file named by `NO_LEAK_REPORT`, if it is set.
pub(crate) fn append(line: &str) {
    let Some(path) = std::env::var_os(VAR) else {
        return;
    };
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let mut buf = line.as_bytes().to_vec();
        buf.push(b'\n');
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: the fd is open for the whole block; flock only takes an advisory lock on it,
            // released by the matching LOCK_UN (and in any case when the file is closed).
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
            let written = f.write_all(&buf);
            // SAFETY: as above.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
            written
        }
        #[cfg(not(unix))]
        {
            f.write_all(&buf)
        }
    })();
    if let Err(e) = result {
        let _ = writeln!(
            std::io::stderr(),
            "no_leak: could not append to {VAR}={}: {e}",
            std::path::Path::new(&path).display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_say_whether_they_are_c_heap() {
        use crate::counting::heap::Scope;
        let mut r = Report::new("t".into(), crate::Config::new(), Scope::Process);
        let site = |c_heap| crate::diagnosis::sites::Site {
            bytes: 8,
            blocks: 1,
            frame: None,
            context: Vec::new(),
            spawns_thread: false,
            c_heap,
            held_by: None,
        };
        r.sites = vec![site(true), site(false)];
        let line = report_line(&r, "leak", "fail");
        assert!(
            line.contains("\"spawns_thread\":false,\"c_heap\":true,"),
            "{line}"
        );
        assert!(
            line.contains("\"spawns_thread\":false,\"c_heap\":false,"),
            "{line}"
        );
    }

    #[test]
    fn every_site_is_listed_with_all_its_callers() {
        use crate::counting::heap::Scope;
        use crate::diagnosis::sites::{Frame, Site};
        let mut r = Report::new("t".into(), crate::Config::new(), Scope::Process);
        let frame = |line| Frame {
            function: "t::f".into(),
            file: Some("src/t.rs".into()),
            line: Some(line),
        };
        let site = Site {
            bytes: 8,
            blocks: 1,
            frame: Some(frame(1)),
            context: vec![frame(2), frame(3)],
            spawns_thread: false,
            c_heap: false,
            held_by: None,
        };
        r.sites = vec![site; 7];
        let line = report_line(&r, "leak", "fail");
        let callers = "\"callers\":[{\"file\":\"src/t.rs\",\"line\":2,\"function\":\"t::f\"},\
                       {\"file\":\"src/t.rs\",\"line\":3,\"function\":\"t::f\"}]";
        assert_eq!(line.matches(callers).count(), 7, "{line}");
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
