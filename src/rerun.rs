//! The command that runs one test of this test binary alone: what isolation, and the retention
//! run of a failing test, start as a child process.

use std::path::Path;
use std::process::{Command, Stdio};

/// `<exe> <name> --exact --test-threads=1 --nocapture --include-ignored`, with no standard input.
/// libtest names every test's thread after the test, so `name` is the thread's name;
/// `--include-ignored` lets an ignored test that was asked for with `--ignored` run in the child.
pub(crate) fn one_test(exe: &Path, name: &str) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--test-threads=1",
        "--nocapture",
        "--include-ignored",
    ])
    .stdin(Stdio::null());
    cmd
}
