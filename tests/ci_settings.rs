//! What a CI run sees: suite-wide settings from the environment, GitHub annotations, JSON lines
//! whose verdict is libtest's, and the calling-thread scope note written once at exit. Each test
//! runs this test binary again on a test of the `subjects` module, with `NO_LEAK_CI_META=1`,
//! `--include-ignored` and the environment under test, and asserts on what it printed or wrote.
//! The subjects that only mean something under a driver are `#[ignore]`d with the name of the
//! test that runs them; run without `NO_LEAK_CI_META` (as by `cargo test -- --include-ignored`),
//! they fail at once and name that test.

use std::process::{Command, Output};

const GATE: &str = "NO_LEAK_CI_META";

/// Fails unless a driver test of this file runs the calling subject (it sets [`GATE`]), saying
/// which test to run instead.
#[track_caller]
fn fixture(driver: &str) {
    assert!(
        std::env::var_os(GATE).is_some(),
        "a fixture: `{driver}` runs it with {GATE}=1 and the environment under test, and checks \
         what it prints; run that test instead"
    );
}

/// Runs this binary on the test `name` alone, outside nextest, with `envs`.
fn run(name: &str, extra: &[&str], envs: &[(&str, &str)]) -> (Output, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--include-ignored"])
        .args(extra)
        .env(GATE, "1")
        .env("RUST_BACKTRACE", "0")
        .env_remove("NEXTEST")
        .env_remove("NEXTEST_EXECUTION_MODE")
        .env_remove("NO_LEAK")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("NO_LEAK_REPORT");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// The tests the others run: fixtures, `#[ignore]`d, and two tests that also pass on their own.
mod subjects {
    use super::fixture;
    use no_leak::no_leak;

    /// Leaks one box per run.
    #[test]
    #[ignore = "fixture: run by `github_actions_get_an_annotation_at_the_leaking_line` and `no_annotation_outside_github_actions`"]
    #[no_leak]
    fn leaks_a_box() {
        fixture("github_actions_get_an_annotation_at_the_leaking_line");
        std::mem::forget(Box::new(7u64)); // the annotated line
    }

    /// Says how many runs and warmup runs it was given.
    #[test]
    #[ignore = "fixture: run by `environment_sets_warmup_and_runs_for_tests_that_did_not` and `a_bad_environment_value_fails_with_the_reason`"]
    #[no_leak]
    fn counts_its_runs() {
        use std::sync::atomic::{AtomicU32, Ordering};
        static CALLS: AtomicU32 = AtomicU32::new(0);
        fixture("environment_sets_warmup_and_runs_for_tests_that_did_not");
        println!("call {}", CALLS.fetch_add(1, Ordering::SeqCst) + 1);
    }

    /// Writes its own runs: the environment must not override them.
    #[test]
    #[ignore = "fixture: run by `environment_never_overrides_a_tests_own_arguments`"]
    #[no_leak(runs = 2, warmup = 1)]
    fn counts_its_own_runs() {
        use std::sync::atomic::{AtomicU32, Ordering};
        static CALLS: AtomicU32 = AtomicU32::new(0);
        fixture("environment_never_overrides_a_tests_own_arguments");
        println!("call {}", CALLS.fetch_add(1, Ordering::SeqCst) + 1);
    }

    /// Leaks, and says so with `should_panic`: libtest passes it, here and under
    /// `json_verdict_is_what_libtest_decided_for_should_panic`.
    #[test]
    #[no_leak]
    #[should_panic(expected = "leaked heap")]
    fn leak_expected() {
        std::mem::forget(Box::new(1u8));
    }

    /// A passing closure check on a shared test thread (the scope note's case), here and under
    /// `scope_note_comes_once_at_exit_and_never_splits_a_test_line`.
    #[test]
    fn checks_on_a_shared_thread() {
        no_leak::check(|| drop(vec![0u8; 16]));
    }
}

/// The last `call N` the subject printed.
fn calls(text: &str) -> u32 {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("call ")?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn environment_sets_warmup_and_runs_for_tests_that_did_not() {
    let envs = [("NO_LEAK_WARMUP", "2"), ("NO_LEAK_RUNS", "3")];
    let (out, text) = run("subjects::counts_its_runs", &["--nocapture"], &envs);
    assert!(out.status.success(), "{text}");
    assert_eq!(calls(&text), 2 + 3, "{text}");
    let (out, text) = run("subjects::counts_its_runs", &["--nocapture"], &[]);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        calls(&text),
        3 + 5,
        "the defaults without the variables: {text}"
    );
}

#[test]
fn environment_never_overrides_a_tests_own_arguments() {
    let envs = [("NO_LEAK_WARMUP", "4"), ("NO_LEAK_RUNS", "9")];
    let (out, text) = run("subjects::counts_its_own_runs", &["--nocapture"], &envs);
    assert!(out.status.success(), "{text}");
    assert_eq!(calls(&text), 1 + 2, "{text}");
}

#[test]
fn a_bad_environment_value_fails_with_the_reason() {
    let (out, text) = run("subjects::counts_its_runs", &[], &[("NO_LEAK_RUNS", "ten")]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("no_leak: NO_LEAK_RUNS=\"ten\" is not valid: it takes a whole number from 1"),
        "{text}"
    );
    let (out, text) = run("subjects::counts_its_runs", &[], &[("NO_LEAK_WARMUP", "0")]);
    assert!(
        !out.status.success(),
        "zero warmup runs is refused too: {text}"
    );
}

#[test]
fn github_actions_get_an_annotation_at_the_leaking_line() {
    let root = env!("CARGO_MANIFEST_DIR");
    let envs = [("GITHUB_ACTIONS", "true"), ("GITHUB_WORKSPACE", root)];
    let (out, text) = run("subjects::leaks_a_box", &[], &envs);
    assert!(!out.status.success(), "{text}");
    let line = include_str!("ci_settings.rs")
        .lines()
        .position(|l| l.ends_with("// the annotated line"))
        .unwrap()
        + 1;
    let want = format!(
        "::error file=tests/ci_settings.rs,line={line},title=subjects%3A%3Aleaks_a_box leaked%3A heap::+40 B, +5 blocks over 5 runs"
    );
    let annotation = text
        .lines()
        .find(|l| l.starts_with("::error "))
        .expect(&text);
    assert!(annotation.starts_with(&want), "{annotation}\nwant {want}");
    assert_eq!(
        text.matches("::error ").count(),
        1,
        "once, not again by the parent: {text}"
    );
}

#[test]
fn no_annotation_outside_github_actions() {
    let (out, text) = run("subjects::leaks_a_box", &[], &[]);
    assert!(!out.status.success(), "{text}");
    assert!(!text.contains("::error"), "{text}");
}

#[test]
fn json_verdict_is_what_libtest_decided_for_should_panic() {
    let path = std::env::temp_dir().join(format!("no_leak-ci-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (out, text) = run(
        "subjects::leak_expected",
        &[],
        &[("NO_LEAK_REPORT", path.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "should_panic makes the leak a pass: {text}"
    );
    let line = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        line.starts_with(
            "{\"test\":\"subjects::leak_expected\",\"verdict\":\"pass\",\"outcome\":\"leak\""
        ),
        "{line}"
    );
}

#[test]
fn scope_note_comes_once_at_exit_and_never_splits_a_test_line() {
    let (out, text) = run(
        "subjects::checks_on_a_shared_thread",
        &["--test-threads=1"],
        &[],
    );
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("test subjects::checks_on_a_shared_thread ... ok\n"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("no_leak: note:").count(), 1, "{stderr}");
    let (_, off) = run(
        "subjects::checks_on_a_shared_thread",
        &[],
        &[("NO_LEAK", "off")],
    );
    assert!(
        !off.contains("no_leak: note:"),
        "nothing was measured: {off}"
    );
}
