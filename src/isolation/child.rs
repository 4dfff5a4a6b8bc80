//! Isolation: running one test alone in a child process of the test binary.
//!
//! `cargo test` runs many tests on many threads of one process, and libtest's own threads allocate
//! while tests start and finish. To measure one test exactly, the test re-executes the test binary
//! as `<exe> <name> --exact --test-threads=1 --nocapture --include-ignored`, where `<name>` is the
//! test thread's name (libtest names each test's thread after the test). The child sees
//! [`CHILD_VAR`] and measures in process; it writes its verdict to the file named by
//! [`RESULT_VAR`] and exits at once, so its own libtest adds nothing. The parent replays the
//! child's output and turns the verdict into its own: the report on a leak, the body's own panic
//! message on a panic, the error on `Err`, and the signal when the child crashed.
//!
//! Under `cargo nextest run` every test already has a process of its own, so no child is started.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::check::env::{CHILD_VAR, RESULT_VAR};
use crate::verdict::Verdict;

/// The wire format of a verdict passed from child to parent: a kind line, then the message.
fn encode(verdict: &Verdict) -> String {
    let (kind, message) = match verdict {
        Verdict::Pass => ("pass", ""),
        Verdict::Leak(m) => ("leak", m.as_str()),
        Verdict::Panic(m) => ("panic", m.as_str()),
        Verdict::Error(m) => ("error", m.as_str()),
        Verdict::Crashed(m) => ("crashed", m.as_str()),
    };
    format!("{kind}\n{message}")
}

fn decode(s: &str) -> Option<Verdict> {
    let (kind, rest) = s.split_once('\n')?;
    let rest = rest.to_string();
    Some(match kind {
        "pass" => Verdict::Pass,
        "leak" => Verdict::Leak(rest),
        "panic" => Verdict::Panic(rest),
        "error" => Verdict::Error(rest),
        "crashed" => Verdict::Crashed(rest),
        _ => return None,
    })
}

/// If this process is the child started for the test running on this thread, the file to write
/// the verdict to.
pub(crate) fn child_result_path() -> Option<PathBuf> {
    let name = std::env::var(CHILD_VAR).ok()?;
    if std::thread::current().name() != Some(name.as_str()) {
        return None;
    }
    std::env::var_os(RESULT_VAR).map(PathBuf::from)
}

/// Writes the verdict for the parent and ends the child process.
pub(crate) fn finish_child(path: &std::path::Path, verdict: &Verdict) -> ! {
    use std::io::Write;
    let written = std::fs::write(path, encode(verdict));
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    if let Err(e) = written {
        eprintln!(
            "no_leak: could not write the verdict to {}: {e}",
            path.display()
        );
        std::process::exit(101);
    }
    std::process::exit(0)
}

/// Runs the test named `name` (the calling test thread's name) alone in a child process and
/// returns its verdict. Failures to run it are errors with the reason.
pub(crate) fn run_in_child(name: &str) -> Result<Verdict, String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let exe = std::env::current_exe()
        .map_err(|e| format!("could not find the test binary to isolate `{name}`: {e}"))?;
    let result = std::env::temp_dir().join(format!(
        "no_leak-{}-{}-{}.verdict",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    ));
    let output = crate::rerun::one_test(&exe, name)
        .env(CHILD_VAR, name)
        .env(RESULT_VAR, &result)
        .output()
        .map_err(|e| {
            format!(
                "could not start a child process for `{name}` ({}): {e}",
                exe.display()
            )
        })?;
    let verdict = std::fs::read_to_string(&result).ok();
    let _ = std::fs::remove_file(&result);

    replay(name, &output.stdout, &output.stderr);

    match verdict.as_deref().and_then(decode) {
        Some(v) => Ok(v),
        None => Err(describe_failure(name, &output.status, &output.stderr)),
    }
}

/// Prints the child's output through this process's (captured) stdout and stderr, leaving out the
/// lines the child's own libtest printed.
fn replay(name: &str, stdout: &[u8], stderr: &[u8]) {
    let out = String::from_utf8_lossy(stdout);
    // libtest's own line: `test <name> ... ` or `test <name> - should panic ... `.
    let started = format!("test {name} ");
    let mut body = String::new();
    for line in out.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "running 1 test" || (bare.is_empty() && body.is_empty()) {
            continue;
        }
        let libtest = line
            .strip_prefix(&started)
            .and_then(|r| r.split_once("... "));
        if let Some((_, rest)) = libtest {
            body.push_str(rest);
            continue;
        }
        body.push_str(line);
    }
    if !body.is_empty() {
        print!("{body}");
    }
    if !stderr.is_empty() {
        eprint!("{}", String::from_utf8_lossy(stderr));
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

    #[test]
    fn verdicts_round_trip() {
        for v in [
            Verdict::Pass,
            Verdict::Leak("no_leak: `x` leaked: heap\n  heap: +1 B".into()),
            Verdict::Panic("boom\nwith lines".into()),
            Verdict::Error("MyError(3)".into()),
        ] {
            assert_eq!(decode(&encode(&v)), Some(v));
        }
        assert_eq!(decode("garbage"), None);
    }

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
