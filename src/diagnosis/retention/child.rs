//! The retention run: the failing test once more, alone in a fresh child process, with capture on
//! from the body's first run, then the scan. The parent (the process that found the leak) starts
//! it as `<exe> <test name> --exact --test-threads=1 --nocapture --include-ignored` with
//! [`VAR`] set to `<test name>\t<result file>\t<runs>`; the child's `#[no_leak]` entry point sees
//! it (see [`child_output`]), runs the body `runs` times (as many as the failing check ran before
//! its diagnostic run, confirmation windows included, so that a buffer that only grew after many
//! runs is there to be classified) and the diagnostic run with capture on, writes each site with
//! its holder to the result file and exits. The parent matches the child's
//! sites to its own by allocating frame.

use std::cell::RefCell;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::counting::capture::{self, Capture, Who};
use crate::diagnosis::retention::{memory, scan, sites_held, HeldBy, Holder};
use crate::diagnosis::sites::{Frame, Site};

/// Set in a retention child: `<test name>\t<result file>\t<runs before the diagnostic run>`.
const VAR: &str = "NO_LEAK_RETAIN";

/// How long the parent waits for the retention run (capture makes every allocation slow).
const PATIENCE: Duration = Duration::from_secs(60);

thread_local! {
    /// The `#[no_leak]` test running on this thread: a retention run can re-execute it by name.
    static TEST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Marks the calling thread as running the `#[no_leak]` test `name` while it lives.
pub(crate) struct ForTest(());

impl ForTest {
    pub(crate) fn enter(name: &str) -> ForTest {
        TEST.with(|t| *t.borrow_mut() = Some(name.to_string()));
        ForTest(())
    }
}

impl Drop for ForTest {
    fn drop(&mut self) {
        let _ = TEST.try_with(|t| t.borrow_mut().take());
    }
}

/// Gives every site of a heap leak its holder, from a retention run of the test, which runs the
/// body `runs` times (as often as the check that found the leak did) before its diagnostic run. A
/// closure check outside a `#[no_leak]` test cannot be re-run alone in a child process: its sites
/// keep no holder (`held_by` is `None`, and the report prints no line for it).
pub(crate) fn attach(sites: &mut [Site], runs: u32) {
    let in_retention_run = std::env::var_os(VAR).is_some();
    if sites.is_empty() || (TEST.with(|t| t.borrow().is_none()) && !in_retention_run) {
        return;
    }
    let found = if let Some(why) = memory::unsupported_here() {
        Err(why.to_string())
    } else if in_retention_run {
        Err("a check inside a retention run is not classified".to_string())
    } else {
        match TEST.with(|t| t.borrow().clone()) {
            None => Err(
                "only #[no_leak] tests are classified (a closure check cannot be re-run \
                         alone in a child process)"
                    .to_string(),
            ),
            Some(name) => run_in_child(&name, runs),
        }
    };
    for site in sites.iter_mut() {
        site.held_by = Some(match &found {
            Ok(theirs) => theirs
                .iter()
                .find(|t| t.frame == site.frame)
                .and_then(|t| t.held_by.clone())
                .unwrap_or_else(|| not_determined("the retention run did not reproduce this site")),
            Err(why) => not_determined(why),
        });
    }
}

fn not_determined(why: &str) -> HeldBy {
    HeldBy {
        holder: Holder::NotDetermined(why.to_string()),
        via: Vec::new(),
        blocks: 0,
    }
}

/// In a retention child started for the test running on this thread: the result file, and how
/// many times to run the body before the diagnostic run.
pub(crate) fn child_output() -> Option<(PathBuf, u32)> {
    let v = std::env::var(VAR).ok()?;
    let mut fields = v.split('\t');
    let (name, path, runs) = (fields.next()?, fields.next()?, fields.next()?);
    let runs = runs.parse().ok()?;
    (std::thread::current().name() == Some(name)).then(|| (PathBuf::from(path), runs))
}

/// The retention child: runs `body` (`true`: it succeeded) `runs` times and once more with
/// capture on, classifies, writes the result to `out` and exits.
pub(crate) fn run_child(runs: u32, out: &Path, body: &mut dyn FnMut() -> bool) -> ! {
    let text = match classify(runs, body) {
        Ok(sites) => encode(&sites),
        Err(why) => format!("error\t{}\n", why.replace(['\n', '\t'], " ")),
    };
    let written = std::fs::write(out, text);
    let _ = std::io::stdout().flush();
    std::process::exit(if written.is_ok() { 0 } else { 101 })
}

#[inline(never)]
fn classify(runs: u32, body: &mut dyn FnMut() -> bool) -> Result<Vec<Site>, String> {
    // Everything the body ran in lies below this frame; the scan reads the stack from here up.
    let marker = 0u8;
    let entry = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
    if !memory::available() {
        return Err("this system does not let a process read its own memory \
                    (process_vm_readv)"
            .into());
    }
    let capture = Capture::start_within(Who::NotMain, Duration::from_secs(10))
        .ok_or("another capture session was running")?;
    let mut run = || match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut *body)) {
        Ok(true) => Ok(()),
        Ok(false) => Err("the body failed in the retention run".to_string()),
        Err(_) => Err("the body panicked in the retention run".to_string()),
    };
    for _ in 0..runs {
        run()?;
    }
    let first = capture::next_seq();
    run()?;
    let end = capture::next_seq();
    let scanned = scan(capture, entry);
    Ok(sites_held(&scanned, first, end))
}

/// Starts the retention child for test `name` and reads its sites.
fn run_in_child(name: &str, runs: u32) -> Result<Vec<Site>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("no test binary to re-run: {e}"))?;
    let out = std::env::temp_dir().join(format!(
        "no_leak-{}-{:?}.retain",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut child = crate::rerun::one_test(&exe, name)
        .env(VAR, format!("{name}\t{}\t{runs}", out.display()))
        .env_remove("NO_LEAK_REPORT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start the retention run: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() < PATIENCE => {
                std::thread::sleep(Duration::from_millis(5))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(&out);
                return Err(format!("the retention run took longer than {PATIENCE:?}"));
            }
        }
    };
    let text = std::fs::read_to_string(&out);
    let _ = std::fs::remove_file(&out);
    match text {
        Ok(t) => decode(&t),
        Err(_) => Err(format!(
            "the retention run ended without a result ({status})"
        )),
    }
}

fn frame_text(f: &Option<Frame>) -> String {
    match f {
        Some(f) => format!(
            "{}\t{}\t{}",
            f.function,
            f.file.as_deref().unwrap_or("-"),
            f.line.map_or("-".into(), |l| l.to_string())
        ),
        None => "-\t-\t-".into(),
    }
}

fn parse_frame(s: &str) -> Option<Frame> {
    let mut p = s.splitn(3, '\t');
    let (function, file, line) = (p.next()?, p.next()?, p.next()?);
    if function == "-" {
        return None;
    }
    Some(Frame {
        function: function.to_string(),
        file: (file != "-").then(|| file.to_string()),
        line: line.parse().ok(),
    })
}

/// The wire format: per site a `site` line, a `held` line (kind, argument, blocks), then `via`
/// and `member` lines, each frame as `function \t file \t line` (`-` for none).
fn encode(sites: &[Site]) -> String {
    let mut out = String::new();
    for s in sites {
        let Some(h) = &s.held_by else { continue };
        out.push_str(&format!("site\t{}\n", frame_text(&s.frame)));
        let arg = match &h.holder {
            Holder::Static(n) | Holder::Thread(n) | Holder::NotDetermined(n) => n.as_str(),
            Holder::Cycle(_) | Holder::Unreachable => "-",
        };
        out.push_str(&format!(
            "held\t{}\t{}\t{}\n",
            h.holder.kind(),
            arg,
            h.blocks
        ));
        if let Holder::Cycle(members) = &h.holder {
            for m in members {
                out.push_str(&format!("member\t{}\n", frame_text(&Some(m.clone()))));
            }
        }
        for v in &h.via {
            out.push_str(&format!("via\t{}\n", frame_text(&Some(v.clone()))));
        }
    }
    out
}

fn decode(text: &str) -> Result<Vec<Site>, String> {
    let mut sites: Vec<Site> = Vec::new();
    for line in text.lines() {
        let (tag, rest) = line.split_once('\t').unwrap_or((line, ""));
        let held = sites.last_mut().and_then(|s| s.held_by.as_mut());
        match (tag, held) {
            ("error", _) => return Err(rest.to_string()),
            ("site", _) => sites.push(Site {
                bytes: 0,
                blocks: 0,
                frame: parse_frame(rest),
                context: Vec::new(),
                spawns_thread: false,
                c_heap: false,
                held_by: None,
            }),
            ("held", _) => {
                let mut p = rest.splitn(3, '\t');
                let (kind, arg, blocks) = (p.next(), p.next().unwrap_or("-"), p.next());
                let holder = match kind {
                    Some("static") => Holder::Static(arg.into()),
                    Some("thread") => Holder::Thread(arg.into()),
                    Some("cycle") => Holder::Cycle(Vec::new()),
                    Some("unreachable") => Holder::Unreachable,
                    _ => Holder::NotDetermined(arg.into()),
                };
                let blocks = blocks.and_then(|b| b.parse().ok()).unwrap_or(0);
                let site = sites.last_mut().ok_or("a held line before any site")?;
                site.held_by = Some(HeldBy {
                    holder,
                    via: Vec::new(),
                    blocks,
                });
            }
            ("member", Some(h)) => {
                if let (Holder::Cycle(m), Some(f)) = (&mut h.holder, parse_frame(rest)) {
                    m.push(f);
                }
            }
            ("via", Some(h)) => h.via.extend(parse_frame(rest)),
            _ => return Err(format!("unreadable retention result line: {line}")),
        }
    }
    Ok(sites)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, line: u32) -> Frame {
        Frame {
            function: function.into(),
            file: Some("tests/x.rs".into()),
            line: Some(line),
        }
    }

    #[test]
    fn results_round_trip() {
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
                held(Holder::Thread("worker".into()), vec![]),
            ),
        ];
        assert_eq!(decode(&encode(&sites)), Ok(sites));
        assert_eq!(decode("error\tno luck\n"), Err("no luck".into()));
        assert!(decode("garbage\n").is_err());
    }
}
