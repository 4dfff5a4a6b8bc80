//! The verdict role: a `#[no_leak]` or `#[no_leak::isolated]` test run alone in a child process of
//! the test binary.
//!
//! `cargo test` runs many tests on many threads of one process, and libtest's own threads allocate
//! while tests start and finish. To measure one test exactly, the test runs again alone in a child
//! ([`spawn::run`] with [`Role::Verdict`]), which measures in process, writes its verdict to its
//! result file ([`finish_child`]) and exits at once, so its own libtest adds nothing. The parent
//! replays the child's output and turns the verdict into its own: the report on a leak, the
//! body's own panic message on a panic, the error on `Err`, and the signal when the child crashed.
//!
//! Under `cargo nextest run` every test already has a process of its own, so no child is started.

use crate::isolation::role::Role;
use crate::isolation::spawn::{self, Failure};
use crate::isolation::wire;
use crate::verdict::Verdict;

/// Writes the verdict for the parent and ends the child process.
pub(crate) fn finish_child(path: &std::path::Path, verdict: &Verdict) -> ! {
    spawn::finish(path, &wire::encode_verdict(verdict))
}

/// Runs the test named `name` (the calling test thread's name) alone in a child process and
/// returns its verdict. Failures to run it are errors with the reason.
pub(crate) fn run_in_child(name: &str) -> Result<Verdict, String> {
    let ran = spawn::run(name, Role::Verdict).map_err(|failure| match failure {
        Failure::NoExe(e) => format!("could not find the test binary to isolate `{name}`: {e}"),
        Failure::Start { exe, error } => format!(
            "could not start a child process for `{name}` ({}): {error}",
            exe.display()
        ),
        Failure::TimedOut(limit) => format!(
            "no_leak: the isolated child process for `{name}` ran longer than {limit:?} and was \
             killed"
        ),
    })?;
    match ran.result.as_deref().and_then(wire::decode_verdict) {
        Some(v) => Ok(v),
        None => Err(describe_failure(name, &ran.status, &ran.stderr)),
    }
}

fn describe_failure(name: &str, status: &std::process::ExitStatus, stderr: &[u8]) -> String {
    let how = describe_status(status);
    let tail: Vec<&str> = std::str::from_utf8(stderr)
        .unwrap_or("")
        .lines()
        .rev()
        .take(5)
        .collect();
    let mut msg =
        format!("no_leak: the isolated child process for `{name}` {how} before reporting");
    if !tail.is_empty() {
        msg.push_str("\n  its last stderr lines:");
        for l in tail.iter().rev() {
            msg.push_str("\n    ");
            msg.push_str(l);
        }
    }
    if status.success() {
        msg.push_str(
            "\n  hint: the child ran no test by this name: is the test name changed by a custom \
             harness or a test-filtering wrapper?",
        );
    }
    msg
}

#[cfg(unix)]
pub(crate) fn describe_status(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        let core = if status.core_dumped() {
            ", core dumped"
        } else {
            ""
        };
        format!("was killed by signal {sig} ({}{core})", signal_name(sig))
    } else {
        match status.code() {
            Some(0) => "exited successfully".into(),
            Some(c) => format!("exited with status {c}"),
            None => "ended".into(),
        }
    }
}

/// On Windows a crash ends the process with the exception's code as its exit status
/// (`0xC0000005`), and a Rust abort with `STATUS_STACK_BUFFER_OVERRUN` (`__fastfail`).
#[cfg(not(unix))]
pub(crate) fn describe_status(status: &std::process::ExitStatus) -> String {
    match status.code() {
        Some(0) => "exited successfully".into(),
        Some(c) => match exception_name(c as u32) {
            Some(name) => format!("crashed with exception 0x{:08X} ({name})", c as u32),
            None => format!("exited with status {c}"),
        },
        None => "ended".into(),
    }
}

#[cfg(not(unix))]
fn exception_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0xC000_0005 => "access violation",
        0xC000_001D => "illegal instruction",
        0xC000_0094 => "integer division by zero",
        0xC000_00FD => "stack overflow",
        0xC000_0409 => "fast fail: abort",
        0xC000_0374 => "heap corruption",
        0xC000_013A => "Ctrl+C",
        0x8000_0003 => "breakpoint",
        0xC000_0602 => "fail fast exception",
        _ => return None,
    })
}

#[cfg(unix)]
fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGPIPE => "SIGPIPE",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(windows)]
    #[test]
    fn exceptions_are_named() {
        use std::os::windows::process::ExitStatusExt;
        let s = std::process::ExitStatus::from_raw(0xC000_0005);
        assert_eq!(
            describe_status(&s),
            "crashed with exception 0xC0000005 (access violation)"
        );
        let s = std::process::ExitStatus::from_raw(3);
        assert_eq!(describe_status(&s), "exited with status 3");
    }

    #[cfg(unix)]
    #[test]
    fn signals_are_named() {
        use std::os::unix::process::ExitStatusExt;
        let s = std::process::ExitStatus::from_raw(libc::SIGSEGV);
        assert_eq!(describe_status(&s), "was killed by signal 11 (SIGSEGV)");
        let s = std::process::ExitStatus::from_raw(3 << 8);
        assert_eq!(describe_status(&s), "exited with status 3");
    }
}
