//! What a child writes to its result file, in one format for every role: lines of a tag and its
//! fields, separated by tabs, with `\`, tab, newline and carriage return in a field written `\\`,
//! `\t`, `\n`, `\r`.
//!
//! - A verdict ([`Role::Verdict`](crate::isolation::role::Role)): one line, `pass`, or `leak`,
//!   `panic`, `error`, `crashed` with the message.
//! - Retention's sites ([`Role::Retain`](crate::isolation::role::Role)): per site a `site` line
//!   (its frame), a `held` line (kind, argument, blocks), then `member` lines (a cycle's members)
//!   and `via` lines, each frame as `function`, `file`, `line` (`-` for none); or one `error`
//!   line with the reason there are none.

use crate::diagnosis::retention::{HeldBy, Holder};
use crate::diagnosis::sites::{Frame, Site};
use crate::verdict::Verdict;

/// One line: `tag`, then each of `fields` after a tab.
pub(crate) fn line(tag: &str, fields: &[&str]) -> String {
    let mut out = escape(tag);
    for f in fields {
        out.push('\t');
        out.push_str(&escape(f));
    }
    out.push('\n');
    out
}

/// The tag and fields of one line written by [`line`] (without its newline); `None` if a field
/// has an escape this format does not write.
pub(crate) fn fields(line: &str) -> Option<(String, Vec<String>)> {
    let mut parts = line.split('\t').map(unescape);
    let tag = parts.next()??;
    let rest = parts.collect::<Option<Vec<String>>>()?;
    Some((tag, rest))
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\\' => match chars.next()? {
                '\\' => '\\',
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                _ => return None,
            },
            c => c,
        });
    }
    Some(out)
}

pub(crate) fn encode_verdict(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass => line("pass", &[]),
        Verdict::Leak(m) => line("leak", &[m]),
        Verdict::Panic(m) => line("panic", &[m]),
        Verdict::Error(m) => line("error", &[m]),
        Verdict::Crashed(m) => line("crashed", &[m]),
    }
}

pub(crate) fn decode_verdict(text: &str) -> Option<Verdict> {
    let (kind, fields) = fields(text.strip_suffix('\n')?)?;
    let message = || match <[String; 1]>::try_from(fields.clone()) {
        Ok([m]) => Some(m),
        Err(_) => None,
    };
    Some(match kind.as_str() {
        "pass" if fields.is_empty() => Verdict::Pass,
        "leak" => Verdict::Leak(message()?),
        "panic" => Verdict::Panic(message()?),
        "error" => Verdict::Error(message()?),
        "crashed" => Verdict::Crashed(message()?),
        _ => return None,
    })
}

fn frame_fields(f: Option<&Frame>) -> [String; 3] {
    match f {
        Some(f) => [
            f.function.clone(),
            f.file.clone().unwrap_or_else(|| "-".into()),
            f.line.map_or("-".into(), |l| l.to_string()),
        ],
        None => ["-".into(), "-".into(), "-".into()],
    }
}

fn frame_line(tag: &str, f: Option<&Frame>) -> String {
    let [function, file, at] = frame_fields(f);
    line(tag, &[&function, &file, &at])
}

fn parse_frame(fields: &[String]) -> Option<Frame> {
    let [function, file, at] = fields else {
        return None;
    };
    (function != "-").then(|| Frame {
        function: function.clone(),
        file: (file != "-").then(|| file.clone()),
        line: at.parse().ok(),
    })
}

/// Retention's result: each site with its holder, or why there are none.
pub(crate) fn encode_sites(found: &Result<Vec<Site>, String>) -> String {
    let sites = match found {
        Ok(sites) => sites,
        Err(why) => return line("error", &[why]),
    };
    let mut out = String::new();
    for s in sites {
        let Some(h) = &s.held_by else { continue };
        out.push_str(&frame_line("site", s.frame.as_ref()));
        let arg = match &h.holder {
            Holder::Static(n) | Holder::Thread(n) | Holder::NotDetermined(n) => n.as_str(),
            Holder::Cycle(_) | Holder::Unreachable => "-",
        };
        out.push_str(&line(
            "held",
            &[h.holder.kind(), arg, &h.blocks.to_string()],
        ));
        if let Holder::Cycle(members) = &h.holder {
            for m in members {
                out.push_str(&frame_line("member", Some(m)));
            }
        }
        for v in &h.via {
            out.push_str(&frame_line("via", Some(v)));
        }
    }
    out
}

fn held(fields: &[String]) -> HeldBy {
    let arg = fields.get(1).cloned().unwrap_or_else(|| "-".into());
    let holder = match fields.first().map(String::as_str) {
        Some("static") => Holder::Static(arg),
        Some("thread") => Holder::Thread(arg),
        Some("cycle") => Holder::Cycle(Vec::new()),
        Some("unreachable") => Holder::Unreachable,
        _ => Holder::NotDetermined(arg),
    };
    HeldBy {
        holder,
        via: Vec::new(),
        blocks: fields.get(2).and_then(|b| b.parse().ok()).unwrap_or(0),
    }
}

pub(crate) fn decode_sites(text: &str) -> Result<Vec<Site>, String> {
    let mut sites: Vec<Site> = Vec::new();
    for l in text.lines() {
        let unreadable = || format!("unreadable retention result line: {l}");
        let (tag, f) = fields(l).ok_or_else(unreadable)?;
        let last = sites.last_mut().and_then(|s| s.held_by.as_mut());
        match (tag.as_str(), last) {
            ("error", _) => return Err(f.concat()),
            ("site", _) => sites.push(Site {
                bytes: 0,
                blocks: 0,
                frame: parse_frame(&f),
                context: Vec::new(),
                spawns_thread: false,
                c_heap: false,
                held_by: None,
            }),
            ("held", _) => {
                let site = sites.last_mut().ok_or("a held line before any site")?;
                site.held_by = Some(held(&f));
            }
            ("member", Some(h)) => {
                if let (Holder::Cycle(m), Some(frame)) = (&mut h.holder, parse_frame(&f)) {
                    m.push(frame);
                }
            }
            ("via", Some(h)) => h.via.extend(parse_frame(&f)),
            _ => return Err(unreadable()),
        }
    }
    Ok(sites)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_any_field() {
        let odd = ["", "a\tb", "x\ny\r\n", "back\\slash\\t", "-", "ünïcödé"];
        let text = line("tag", &odd);
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        let (tag, got) = fields(text.trim_end_matches('\n')).unwrap();
        assert_eq!(tag, "tag");
        assert_eq!(got, odd);
        assert_eq!(fields("tag\tbad\\q"), None);
        assert_eq!(fields("tag\ttrailing\\"), None);
    }

    #[test]
    fn verdicts_round_trip() {
        for v in [
            Verdict::Pass,
            Verdict::Leak("no_leak: `x` leaked: heap\n  heap: +1 B\n".into()),
            Verdict::Panic("boom\nwith lines\tand a tab".into()),
            Verdict::Error("MyError(3)".into()),
            Verdict::Error(String::new()),
            Verdict::Crashed("was killed by signal 11 (SIGSEGV)".into()),
        ] {
            assert_eq!(decode_verdict(&encode_verdict(&v)), Some(v));
        }
        assert_eq!(decode_verdict("garbage"), None);
        assert_eq!(decode_verdict("leak\n"), None);
        assert_eq!(decode_verdict("judged\tx\n"), None);
    }

    fn frame(function: &str, line: u32) -> Frame {
        Frame {
            function: function.into(),
            file: Some("tests/x.rs".into()),
            line: Some(line),
        }
    }

    #[test]
    fn sites_round_trip() {
        let held = |holder, via| HeldBy {
            holder,
            via,
            blocks: 2,
        };
        let site = |f, h| Site {
            bytes: 0,
            blocks: 0,
            frame: Some(f),
            context: Vec::new(),
            spawns_thread: false,
            c_heap: false,
            held_by: Some(h),
        };
        let sites = vec![
            site(
                frame("x::a", 1),
                held(Holder::Static("x::REG".into()), vec![frame("x::b", 2)]),
            ),
            site(
                frame("x::c", 3),
                held(
                    Holder::Cycle(vec![frame("x::c", 3), frame("x::d", 4)]),
                    vec![],
                ),
            ),
            site(frame("x::e", 5), held(Holder::Unreachable, vec![])),
            site(
                frame("x::f", 6),
                held(Holder::Thread("worker\twith a tab".into()), vec![]),
            ),
            site(
                frame("x::g", 7),
                held(Holder::NotDetermined("why,\non two lines".into()), vec![]),
            ),
        ];
        let found = Ok(sites);
        assert_eq!(decode_sites(&encode_sites(&found)), found);
        let failed = Err("no luck\ton two\nlines".to_string());
        assert_eq!(decode_sites(&encode_sites(&failed)), failed);
        assert!(decode_sites("garbage\n").is_err());
        assert!(decode_sites("held\tstatic\tx\t1\n").is_err());
    }
}
