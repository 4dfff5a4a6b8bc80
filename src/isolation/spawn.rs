//! Starting a child process of the test binary: one test, alone, in a [`Role`], with a result
//! file of its own, a clean environment and, per role, a timeout.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::backoff::Backoff;
use crate::check::env::CHILD_VAR;
use crate::isolation::role::{Assignment, Output, Role};
use crate::isolation::vars;

/// How a child ended.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) status: ExitStatus,
    /// What the child wrote to its result file, if it wrote one.
    pub(crate) result: Option<String>,
    /// Its stderr (already replayed) for a role whose output is replayed; empty otherwise.
    pub(crate) stderr: Vec<u8>,
}

/// Why a child gave no result. Each role words it for its own report.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The test binary's path is not known.
    NoExe(std::io::Error),
    /// The child could not be started.
    Start { exe: PathBuf, error: std::io::Error },
    /// The child ran past its role's timeout and was killed.
    TimedOut(Duration),
}

/// Runs test `test` (a libtest test's name, its thread's name) alone in a child process with
/// `role`, and waits for it, at most for the role's timeout.
pub(crate) fn run(test: &str, role: Role) -> Result<Ran, Failure> {
    run_with(ResultFile::new(role), test, role, role.timeout())
}

/// [`run`] with the result file and the timeout given.
fn run_with(
    file: ResultFile,
    test: &str,
    role: Role,
    timeout: Option<Duration>,
) -> Result<Ran, Failure> {
    let exe = std::env::current_exe().map_err(Failure::NoExe)?;
    let started = command(&exe, test, role, file.path()).spawn();
    let (status, stdout, stderr) = match started.and_then(|child| collect(child, timeout)) {
        Ok(Some(ended)) => ended,
        Ok(None) => return Err(Failure::TimedOut(timeout.unwrap_or_default())),
        Err(error) => return Err(Failure::Start { exe, error }),
    };
    let result = std::fs::read_to_string(file.path()).ok();
    drop(file);
    let stderr = match role.output() {
        Output::Replay => {
            replay(test, &stdout, &stderr);
            stderr
        }
        Output::Discard => Vec::new(),
    };
    Ok(Ran {
        status,
        result,
        stderr,
    })
}

/// `<exe> <test> --exact --test-threads=1 --nocapture --include-ignored`, with no standard input.
/// libtest names every test's thread after the test, so `test` is the thread's name;
/// `--include-ignored` lets an ignored test that was asked for with `--ignored` run in the child.
/// The child inherits this process's environment but for the variables its role must not see
/// (see [`vars::dropped_for`]), and gets [`CHILD_VAR`] of its own.
fn command(exe: &Path, test: &str, role: Role, result: &Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args([
        test,
        "--exact",
        "--test-threads=1",
        "--nocapture",
        "--include-ignored",
    ])
    .stdin(Stdio::null());
    for name in vars::dropped_for(role) {
        cmd.env_remove(name);
    }
    let assignment = Assignment {
        role,
        test: test.to_string(),
        result: result.to_path_buf(),
    };
    cmd.env(CHILD_VAR, assignment.encode());
    let out = || match role.output() {
        Output::Replay => Stdio::piped(),
        Output::Discard => Stdio::null(),
    };
    cmd.stdout(out()).stderr(out());
    cmd
}

/// The exit status and piped output of a child that ended.
type Ended = (ExitStatus, Vec<u8>, Vec<u8>);

/// Waits for `child` and reads its piped output; `None` if it ran past `timeout` and was killed.
fn collect(mut child: Child, timeout: Option<Duration>) -> std::io::Result<Option<Ended>> {
    let Some(limit) = timeout else {
        let out = child.wait_with_output()?;
        return Ok(Some((out.status, out.stdout, out.stderr)));
    };
    // Pipes are drained while the child runs, or a child that writes much would block. On a
    // timeout the readers are left to end with the pipes.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        pipe.map(|mut p| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = p.read_to_end(&mut buf);
                buf
            })
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let Some(status) = wait_within(&mut child, limit)? else {
        return Ok(None);
    };
    let joined = |r: Option<std::thread::JoinHandle<Vec<u8>>>| {
        r.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    Ok(Some((status, joined(out), joined(err))))
}

/// The child's side: writes `result` to the result file its parent named, and ends the child
/// process at once (its own libtest adds nothing). A result that cannot be written ends it with
/// status 101 and the reason on stderr, which the parent reports.
pub(crate) fn finish(path: &Path, result: &str) -> ! {
    use std::io::Write;
    let written = std::fs::write(path, result);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    if let Err(e) = written {
        eprintln!(
            "no_leak: could not write the result to {}: {e}",
            path.display()
        );
        std::process::exit(101);
    }
    std::process::exit(0)
}

/// Waits for `child` to exit, polling with back-off; past `limit`, kills it (`None`).
fn wait_within(child: &mut Child, limit: Duration) -> std::io::Result<Option<ExitStatus>> {
    let mut wait = Backoff::new(limit);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if !wait.pause() {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
    }
}

/// The file a child writes its result to: `no_leak-<pid>-<sequence>-<nanoseconds>.<role>` in the
/// temporary directory, unique to this process, call and moment. Removed when dropped, however
/// the child ended.
struct ResultFile(PathBuf);

impl ResultFile {
    fn new(role: Role) -> ResultFile {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        ResultFile(std::env::temp_dir().join(format!(
            "no_leak-{}-{}-{nanos}.{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            role.kind()
        )))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ResultFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ffi::OsStr;

    use super::*;
    use crate::check::env::RUNS_VAR;
    use crate::isolation::{role, wire};

    /// The name of a helper test below, as libtest names its thread.
    fn helper(name: &str) -> String {
        let module = module_path!().split_once("::").unwrap().1;
        format!("{module}::{name}")
    }

    /// What a child started with `cmd` sees of `outer`, this process's environment.
    fn seen_by_child(cmd: &Command, outer: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = outer
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in cmd.get_envs() {
            let k = k.to_str().unwrap().to_string();
            match v {
                Some(v) => env.insert(k, v.to_str().unwrap().to_string()),
                None => env.remove(&k),
            };
        }
        env
    }

    #[test]
    fn a_child_has_its_own_role_and_never_an_outer_childs() {
        let outer_role = Assignment {
            role: Role::Verdict,
            test: "outer".into(),
            result: "/tmp/outer.verdict".into(),
        }
        .encode();
        let report = crate::output::jsonl::VAR;
        let outer = [
            (CHILD_VAR, outer_role.to_str().unwrap()),
            (report, "/tmp/report.jsonl"),
            (RUNS_VAR, "3"),
            ("PATH", "/bin"),
        ];
        for role in [Role::Verdict, Role::Retain { runs: 4 }] {
            let cmd = command(Path::new("exe"), "inner", role, Path::new("/tmp/in"));
            let args: Vec<_> = cmd.get_args().collect();
            assert_eq!(
                args,
                [
                    "inner",
                    "--exact",
                    "--test-threads=1",
                    "--nocapture",
                    "--include-ignored"
                ]
            );
            let env = seen_by_child(&cmd, &outer);
            let own = Assignment::decode(OsStr::new(&env[CHILD_VAR]));
            let expected = Assignment {
                role,
                test: "inner".into(),
                result: "/tmp/in".into(),
            };
            assert_eq!(own, Some(expected));
            assert_eq!(env.get(RUNS_VAR).map(String::as_str), Some("3"));
            assert_eq!(env.get("PATH").map(String::as_str), Some("/bin"));
            assert_eq!(env.contains_key(report), role.reports(), "{role:?}");
        }
    }

    /// A helper, run as a child by the tests below: with the verdict role it starts itself again
    /// as a retain grandchild, and writes its role and the grandchild's result.
    #[test]
    #[ignore = "a helper: the spawn tests run it as a child process"]
    fn helper_reports_its_role() {
        let Some((role, result)) = role::for_this_thread() else {
            // Run by hand: no role, nothing to do.
            assert!(std::env::var_os(CHILD_VAR).is_none());
            return;
        };
        let mut text = wire::line(role.kind(), &[&format!("{role:?}")]);
        if role == Role::Verdict {
            let me = helper("helper_reports_its_role");
            let ran = run(&me, Role::Retain { runs: 7 }).unwrap();
            text.push_str(&ran.result.unwrap_or_default());
        }
        std::fs::write(result, text).unwrap();
    }

    #[test]
    fn a_grandchild_takes_its_own_role_and_no_file_is_left() {
        let file = ResultFile::new(Role::Verdict);
        let path = file.path().to_path_buf();
        let me = helper("helper_reports_its_role");
        let ran = run_with(file, &me, Role::Verdict, None).unwrap();
        assert!(ran.status.success(), "{ran:?}");
        assert_eq!(
            ran.result.as_deref(),
            Some("verdict\tVerdict\nretain\tRetain { runs: 7 }\n")
        );
        assert!(!path.exists(), "{}", path.display());
    }

    #[test]
    fn a_child_that_ran_no_test_gives_no_result() {
        let ran = run("isolation::spawn::tests::no_such_test", Role::Verdict).unwrap();
        assert!(ran.status.success(), "{ran:?}");
        assert_eq!(ran.result, None);
    }

    /// A helper, run as a child by the test below: writes its result file, then sleeps past any
    /// timeout.
    #[test]
    #[ignore = "a helper: the spawn tests run it as a child process"]
    fn helper_sleeps() {
        let Some((_, result)) = role::for_this_thread() else {
            // Run by hand: no role, nothing to do.
            assert!(std::env::var_os(CHILD_VAR).is_none());
            return;
        };
        std::fs::write(result, "started").unwrap();
        std::thread::sleep(Duration::from_secs(120));
    }

    #[test]
    fn a_child_past_its_timeout_is_killed_and_its_file_removed() {
        for role in [Role::Retain { runs: 0 }, Role::Verdict] {
            let file = ResultFile::new(role);
            let path = file.path().to_path_buf();
            // There whether or not the child got as far as writing it.
            std::fs::write(&path, "stale").unwrap();
            let limit = Duration::from_millis(300);
            let started = std::time::Instant::now();
            let ran = run_with(file, &helper("helper_sleeps"), role, Some(limit));
            assert!(
                matches!(ran, Err(Failure::TimedOut(d)) if d == limit),
                "{ran:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(60));
            assert!(!path.exists(), "{}", path.display());
        }
    }

    #[test]
    fn result_files_are_named_apart() {
        let (a, b) = (
            ResultFile::new(Role::Verdict),
            ResultFile::new(Role::Verdict),
        );
        assert_ne!(a.path(), b.path());
        let name = a.path().file_name().unwrap().to_str().unwrap();
        let pid = format!("no_leak-{}-", std::process::id());
        assert!(
            name.starts_with(&pid) && name.ends_with(".verdict"),
            "{name}"
        );
    }
}
