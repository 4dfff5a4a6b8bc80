//! The retain role: who holds each heap site's memory, found by running a failing `#[no_leak]`
//! test once more in a child process (see [`diagnosis::retention`](crate::diagnosis::retention)
//! for the classification itself).

use std::path::Path;

use crate::check::report::Report;
use crate::diagnosis::retention;
use crate::diagnosis::sites::Site;
use crate::isolation::role::Role;
use crate::isolation::spawn::{self, Failure};
use crate::isolation::wire;

/// Gives every site of `report`, the measured report of `#[no_leak]` test `test`, its holder, if
/// the check asked for holders (a heap leak with sites): from a retain child, which runs the body
/// as often as the check did before its diagnostic run, or "not determined" and why.
pub(crate) fn attach_holders(test: &str, report: &mut Report) {
    let Some(runs) = report.holders_wanted else {
        return;
    };
    let found = match retention::unsupported_here() {
        Some(why) => Err(why.to_string()),
        None => in_child(test, runs),
    };
    retention::attach(&mut report.sites, found);
}

/// Starts the retain child for test `test` and reads its sites.
fn in_child(test: &str, runs: u32) -> Result<Vec<Site>, String> {
    let ran = spawn::run(test, Role::Retain { runs }).map_err(|failure| match failure {
        Failure::NoExe(e) => format!("no test binary to re-run: {e}"),
        Failure::Start { error, .. } => format!("could not start the retention run: {error}"),
        Failure::TimedOut(limit) => format!("the retention run took longer than {limit:?}"),
    })?;
    match ran.result {
        Some(text) => wire::decode_sites(&text),
        None => Err(format!(
            "the retention run ended without a result ({})",
            ran.status
        )),
    }
}

/// The retain child: runs `body` (`true`: it succeeded) `runs` times and once more with capture
/// on, classifies, writes the result to `out` and exits.
pub(crate) fn run_child(runs: u32, out: &Path, body: &mut dyn FnMut() -> bool) -> ! {
    finish(out, &retention::classify(runs, body))
}

/// Writes `found` for the parent and ends the child process.
pub(crate) fn finish(out: &Path, found: &Result<Vec<Site>, String>) -> ! {
    spawn::finish(out, &wire::encode_sites(found))
}
