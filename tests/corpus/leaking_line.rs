//! The report points at the leaking line: every `leaks` entry's first allocation site is a
//! `// leak-site` line of its pattern's module, leaked threads show where they were spawned, and
//! a check on a shared test thread finds sites too.

use std::time::Duration;

use no_leak::{Config, Dimension, Report};

use crate::rust_own::mem_forget::forget_vec;
use crate::threads::joined_thread::leak_on_joined_thread;
use crate::threads::workers_stop_signal::start_worker_leaky;

fn quick() -> Config {
    Config::new().settle(Duration::from_millis(50))
}

/// The source of `file` (a path relative to the package, as `file!()` gives it).
fn source(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines (1-based) marked `// leak-site` inside `mod <module> {` of `file`, up to the line
/// that closes it at its own indentation.
pub fn marked_lines(file: &str, module: &str) -> Vec<u32> {
    let src = source(file);
    let lines: Vec<&str> = src.lines().collect();
    let header = format!("mod {module} {{");
    let start = lines
        .iter()
        .position(|l| l.trim_start().trim_start_matches("pub ") == header)
        .unwrap_or_else(|| panic!("no `{header}` in {file}"));
    let indent = lines[start].len() - lines[start].trim_start().len();
    let close = format!("{}}}", " ".repeat(indent));
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        if *l == close {
            break;
        }
        if l.trim() == "// leak-site" {
            // rustfmt moves a comment after an opening brace to a line of its own: it marks
            // the line above.
            out.push(i as u32);
        } else if l.ends_with("// leak-site") {
            out.push(i as u32 + 1);
        }
    }
    assert!(
        !out.is_empty(),
        "no leak-site marks in mod {module} of {file}"
    );
    out
}

/// The pattern module of a `leaks` entry: the module around the entry's own `mod <fn>`.
fn pattern_module(module_path: &str) -> &str {
    let segments: Vec<&str> = module_path.split("::").collect();
    segments[segments.len() - 2]
}

/// What a `leaks` entry checks: `body`, measured, has its first site on a marked line of its
/// pattern's module in `file`, and the text names that line.
pub fn assert_first_site_marked(body: fn(), file: &str, module_path: &str) {
    let module = pattern_module(module_path);
    let report = quick().name(module_path).measure(body);
    assert_first_site(&report, file, &marked_lines(file, module));
}

fn assert_first_site(report: &Report, file: &str, want: &[u32]) {
    let name = &report.name;
    assert!(report.is_leak(), "{name}: {report}");
    let site = report
        .sites
        .first()
        .unwrap_or_else(|| panic!("{name}: no sites\n{report}"));
    let frame = site
        .frame
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: unresolved\n{report}"));
    assert_eq!(frame.file.as_deref(), Some(file), "{name}\n{report}");
    let line = frame.line.unwrap();
    assert!(
        want.contains(&line),
        "{name}: first site is line {line}, want one of {want:?}\n{report}"
    );
    // The text names it too.
    assert!(
        report.to_string().contains(&format!("at {file}:{line} (")),
        "{report}"
    );
}

#[test]
#[no_leak::isolated]
fn leak_on_another_thread_points_inside_that_thread() {
    let report = quick().measure(leak_on_joined_thread);
    let frame = report.sites[0].frame.as_ref().unwrap();
    assert!(
        frame
            .function
            .contains("leak_on_joined_thread::{{closure}}"),
        "{report}"
    );
    assert!(!report.sites[0].spawns_thread, "{report}");
}

#[test]
#[no_leak::isolated]
fn leaked_threads_show_where_they_were_spawned() {
    const FILE: &str = "tests/corpus/threads.rs";
    let report = quick().measure(start_worker_leaky);
    assert!(report.exceeds(Dimension::Threads), "{report}");
    let src = source(FILE);
    let spawn_line = marked_lines(FILE, "workers_stop_signal")
        .into_iter()
        .find(|&l| src.lines().nth(l as usize - 1).unwrap().contains(".spawn("))
        .unwrap();
    let text = report.to_string();
    assert!(
        text.contains(&format!(
            "spawned at {FILE}:{spawn_line} (corpus::threads::workers_stop_signal::start_worker)"
        )),
        "{text}"
    );
}

#[test]
fn calling_thread_scope_finds_sites_too() {
    let report = quick()
        .name("mem forget, shared process")
        .measure(forget_vec);
    let file = "tests/corpus/rust_own.rs";
    assert_first_site(&report, file, &marked_lines(file, "mem_forget"));
}
