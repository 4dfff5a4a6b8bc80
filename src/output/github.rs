//! Leaks in the pull request: under GitHub Actions (`GITHUB_ACTIONS=true`), a failing check also
//! prints a workflow command that GitHub shows on the diff, at the first site in the user's code
//! (or, when there is none, where the check was written):
//!
//! ```text
//! ::error file=src/cache.rs,line=42,title=cache%3A%3Atests%3A%3Aevicts leaked%3A heap::+80 B, +5 blocks over 5 runs, growing again in every confirmation window; see the test's output for the report
//! ```

use std::io::Write;
use std::panic::Location;
use std::path::{Path, PathBuf};

use crate::check::report::{Dimension, Measure, Report};

/// Prints the annotation of a failing `report` to stdout, when running under GitHub Actions.
/// `written` is where the check was written, for a report with no site in the user's code.
pub(crate) fn annotate(report: &Report, written: &Location<'_>) {
    if std::env::var("GITHUB_ACTIONS").as_deref() != Ok("true") {
        return;
    }
    let line = annotation(report, written, workspace_root().as_deref());
    // Straight to the process's stdout, past libtest's capture: the runner reads it there.
    let _ = std::io::stdout().write_all(line.as_bytes());
}

/// The workflow command for a failing report, paths relative to `root`.
pub(crate) fn annotation(report: &Report, written: &Location<'_>, root: Option<&Path>) -> String {
    let site = report
        .sites
        .iter()
        .filter_map(|s| s.frame.as_ref())
        .find_map(|f| Some((f.file.clone()?, f.line?)));
    let (file, line) = site.unwrap_or_else(|| (written.file().to_string(), written.line()));
    let dims: Vec<&str> = report.exceeded.iter().map(|d| d.as_str()).collect();
    let title = format!("{} leaked: {}", report.name, dims.join(", "));
    format!(
        "::error file={},line={line},title={}::{}\n",
        escape_property(&relative(&file, root)),
        escape_property(&title),
        escape_data(&summary(report)),
    )
}

/// One line: what grew, by how much.
fn summary(r: &Report) -> String {
    let mut parts = Vec::new();
    if r.exceeds(Dimension::Heap) {
        if let (Some(b), Some(k)) = (r.net(Measure::Bytes), r.net(Measure::Blocks)) {
            parts.push(format!("{b:+} B, {k:+} blocks"));
        }
    }
    for (dim, n) in [
        (Dimension::Threads, r.net(Measure::Threads)),
        (Dimension::Fds, r.net(Measure::Fds)),
        (Dimension::Tasks, r.net(Measure::Tasks)),
    ] {
        if let (true, Some(n)) = (r.exceeds(dim), n) {
            parts.push(format!("{n:+} {dim}"));
        }
    }
    if let (true, Some(n)) = (r.exceeds(Dimension::Mapped), r.net(Measure::Mapped)) {
        parts.push(format!("{n:+} B mapped"));
    }
    if let (true, Some(p)) = (r.exceeds(Dimension::Peak), r.peak_bytes) {
        parts.push(format!("peak {p} B"));
    }
    format!(
        "{} over {} runs, growing again in every confirmation window; see the test's output for the report",
        parts.join(", "),
        r.per_run.len()
    )
}

/// The workspace the annotation's paths are relative to: `GITHUB_WORKSPACE` (the checkout), else
/// the current directory.
fn workspace_root() -> Option<PathBuf> {
    std::env::var_os("GITHUB_WORKSPACE")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
}

/// `file` (absolute, or relative to the current directory) relative to `root`.
fn relative(file: &str, root: Option<&Path>) -> String {
    let path = Path::new(file);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or(path.to_path_buf(), |d| d.join(path))
    };
    root.and_then(|r| absolute.strip_prefix(r).ok())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Escapes a workflow command's data (after `::`).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_and_data_are_escaped() {
        assert_eq!(escape_property("a::b, c"), "a%3A%3Ab%2C c");
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
    }

    #[test]
    fn paths_become_relative_to_the_workspace() {
        let root = std::env::current_dir().unwrap();
        assert_eq!(relative("src/lib.rs", Some(&root)), "src/lib.rs");
        let abs = root.join("tests/x.rs");
        assert_eq!(relative(abs.to_str().unwrap(), Some(&root)), "tests/x.rs");
        assert_eq!(relative("/elsewhere/y.rs", Some(&root)), "/elsewhere/y.rs");
    }
}
