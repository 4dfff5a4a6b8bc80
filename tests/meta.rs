//! Tests of what a failing `#[no_leak]` test looks like from the outside: they run this test
//! binary again, with `NO_LEAK_META=1` and `--include-ignored`, on the fixtures of the `gated`
//! module, and assert on its exit status and output. The fixtures fail on purpose, so they are
//! `#[ignore]`d with the name of the test that runs them; run without `NO_LEAK_META` (as by
//! `cargo test -- --include-ignored`), a fixture fails at once and names that test.

use std::process::{Command, Output};

const GATE: &str = "NO_LEAK_META";

/// Fails unless a driver test of this file runs the calling fixture (it sets [`GATE`]), saying
/// which test to run instead.
#[track_caller]
fn fixture(driver: &str) {
    assert!(
        std::env::var_os(GATE).is_some(),
        "a fixture that fails on purpose: `{driver}` runs it with {GATE}=1 and checks how it \
         fails; run that test instead"
    );
}

/// Runs this test binary on `args`, fixtures included, outside nextest.
fn run(args: &[&str], envs: &[(&str, &str)]) -> (Output, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(args)
        .arg("--include-ignored")
        .env(GATE, "1")
        .env("RUST_BACKTRACE", "0")
        .env_remove("NEXTEST")
        .env_remove("NEXTEST_EXECUTION_MODE")
        .env_remove("NO_LEAK");
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

fn run_one(name: &str, envs: &[(&str, &str)]) -> (Output, String) {
    run(&[name, "--exact", "--test-threads=1"], envs)
}

/// Fixtures: tests that fail on purpose, each run by the driver test its `#[ignore]` names
/// (and all of them by `same_numbers_in_every_mode` and `json_lines_one_per_test_in_parallel`).
mod gated {
    use super::fixture;
    use no_leak::no_leak;
    use std::sync::Mutex;

    #[derive(Debug)]
    #[allow(dead_code)] // read through Debug
    pub struct MyError(pub u32);

    #[test]
    #[ignore = "fixture: run by `crashed_child_is_reported_with_its_signal`"]
    #[no_leak]
    fn aborts() {
        fixture("crashed_child_is_reported_with_its_signal");
        std::process::abort();
    }

    #[test]
    #[ignore = "fixture: run by `child_that_exits_without_a_verdict_is_reported`"]
    #[no_leak]
    fn exits_early() {
        fixture("child_that_exits_without_a_verdict_is_reported");
        std::process::exit(3);
    }

    #[test]
    #[ignore = "fixture: run by `err_result_fails_with_that_error`"]
    #[no_leak]
    fn returns_err() -> Result<(), MyError> {
        fixture("err_result_fails_with_that_error");
        Err(MyError(7))
    }

    #[test]
    #[ignore = "fixture: run by `body_panic_keeps_its_message_and_location`"]
    #[no_leak]
    fn panics_with_location() {
        fixture("body_panic_keeps_its_message_and_location");
        panic!("body says no");
    }

    static FILES: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());

    #[test]
    #[ignore = "fixture: run by `report_layout` and `json_lines_from_many_processes_at_once`"]
    #[no_leak(settle_ms = 300)]
    fn leaks_everything() {
        fixture("report_layout");
        Box::leak(vec![0u8; 24].into_boxed_slice());
        std::thread::Builder::new()
            .name("meta-sleeper".into())
            .spawn(|| loop {
                std::thread::park();
            })
            .unwrap();
        FILES
            .lock()
            .unwrap()
            .push(std::fs::File::open("Cargo.toml").unwrap());
    }

    #[test]
    #[ignore = "fixture: run by `same_numbers_in_every_mode` and `no_leak_off_runs_bodies_once_and_says_so_once`"]
    #[no_leak]
    fn leaks_a_box() {
        fixture("same_numbers_in_every_mode");
        Box::leak(Box::new(5u64));
    }

    /// Busy neighbours: allocate, leak, spawn threads and open files while other tests measure.
    #[test]
    #[ignore = "fixture: run by `same_numbers_in_every_mode`"]
    fn noisy_neighbour_1() {
        noise();
    }

    #[test]
    #[ignore = "fixture: run by `same_numbers_in_every_mode`"]
    fn noisy_neighbour_2() {
        noise();
    }

    fn noise() {
        fixture("same_numbers_in_every_mode");
        let end = std::time::Instant::now() + std::time::Duration::from_millis(700);
        let mut keep = Vec::new();
        while std::time::Instant::now() < end {
            keep.push(vec![0u8; 100]);
            std::mem::forget(String::from("noise"));
            let f = std::fs::File::open("Cargo.toml").unwrap();
            std::thread::spawn(move || drop(f)).join().unwrap();
            print!(".");
        }
    }
}

#[test]
fn crashed_child_is_reported_with_its_signal() {
    let (out, text) = run_one("gated::aborts", &[]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(
            "the isolated child process for `gated::aborts` was killed by signal 6 (SIGABRT)"
        ),
        "{text}"
    );
}

#[test]
fn child_that_exits_without_a_verdict_is_reported() {
    let (out, text) = run_one("gated::exits_early", &[]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("`gated::exits_early` exited with status 3 before reporting"),
        "{text}"
    );
}

#[test]
fn err_result_fails_with_that_error() {
    let (out, text) = run_one("gated::returns_err", &[]);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("Error: MyError(7)"), "{text}");
}

#[test]
fn body_panic_keeps_its_message_and_location() {
    let (out, text) = run_one("gated::panics_with_location", &[]);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("body says no"), "{text}");
    // The child's panic message, with the body's own file, is replayed.
    assert!(text.contains("tests/meta.rs:"), "{text}");
}

/// The whole failure as `cargo test` shows it, pinned in `tests/snapshots/report_layout.snap`.
/// What varies from run to run or with the machine is redacted; the layout, the dimensions, the
/// thread name, the fd target and the exact sizes of the test's own blocks are kept. Regenerate
/// after a deliberate change with `INSTA_UPDATE=always cargo test --test meta report_layout`.
#[test]
fn report_layout() {
    let (out, text) = run_one("gated::leaks_everything", &[]);
    assert!(!out.status.success(), "{text}");
    let failure: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("---- gated::leaks_everything stdout ----"))
        .take_while(|l| !l.starts_with("note: ") && !l.starts_with("failures:"))
        .collect();
    let failure = failure
        .join("\n")
        .replace(env!("CARGO_MANIFEST_DIR"), "[manifest]");
    insta::with_settings!({
        filters => vec![
            (r"tests/meta\.rs:\d+(:\d+)?", "tests/meta.rs:[line]"),
            (r"thread '([^']*)' \(\d+\) panicked", "thread '$1' panicked"),
            (r#"(?m)^(    - \d+ x "[^"]*") .*?( \(tids [^)]*\))$"#, "$1 [state]$2"),
            (r"\(tids [\d, ]+\)", "(tids [tids])"),
            (r"\(fds [\d, ]+\)", "(fds [fds])"),
            (r"(?m)^(  fds:       )\d+ -> \d+ ", "$1[n] -> [n] "),
            (r"(?m)^(  live:      ).*$", "$1[N] B, [N] blocks -> [N] B, [N] blocks"),
            (r"waited \d+ ms", "waited [N] ms"),
            // What the confirmation windows grew by includes std's one-time thread growth.
            (r"[+-]?\d+ B/[+-]?\d+ blocks", "[N] B/[N] blocks"),
            (r"max_bytes = \d+, max_blocks = \d+", "max_bytes = [N], max_blocks = [N]"),
            // All of the spawn line's blocks held by the thread, or most of them: that depends
            // on whether the newest thread had started (as in tests/corpus/reports.rs).
            (r" \(\d+ of \d+ blocks\)", ""),
            // Reached from the spawned thread's stack and the spawner's: either may be named.
            (r#"held by thread "[^"]*", via"#, r#"held by thread "[a thread]", via"#),
            (
                r"(?m)^(        )(?:unreachable: nothing points at it \(Box::leak, mem::forget, a lost raw pointer\)|held by: not determined \(not reached from any root, and the stack of .* could not be read \(running\)\))$",
                "$1[unreachable, or not determined while a thread's stack could not be read]",
            ),
            // A spawned thread's heap is std's own, whose size varies with the platform.
            (r"(?m)^(  heap:      )[+-]?\d+ B, [+-]?\d+ blocks", "$1[N] B, [N] blocks"),
            (r"(?m)^(  per run:   ).*(  \(B/blocks\))$", "$1[deltas]$2"),
            // The spawn site (the one of several blocks): what it holds races with the start of
            // the thread the diagnostic run spawns.
            (r"(?m)^(    - )\d+ B in (?:[2-9]|\d{2,}) blocks", "$1[N] B in [N] blocks"),
            // The thread spawned in the diagnostic run may not have made its own start-up
            // allocations (std's) yet when the sites are taken.
            (
                r"(?m)^    - \d+ B in \d+ blocks? with no frame of your code \(std internals\)\n(?:        .*\n)*",
                "",
            ),
            (r"by allocating line \(\d+ of \d+\)", "by allocating line ([n] of [n])"),
            // The title's heap growth includes the threads' own bookkeeping, and the sites beyond
            // the three listed are std's thread start-up allocations, when they were made.
            (r"(leaked [a-z, ]+: )[+-]?\d+ B, [+-]?\d+ blocks", "$1[N] B, [N] blocks"),
            (r"(?m)^    - and \d+ more sites? \([^)]*\)\n", ""),
        ],
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("report_layout", failure);
    });
}

#[test]
fn no_leak_off_runs_bodies_once_and_says_so_once() {
    let (out, text) = run(
        &["gated::leaks_", "--test-threads=1"],
        &[("NO_LEAK", "off")],
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("NO_LEAK=off").count(), 1, "{text}");
    assert!(text.contains("2 passed"), "{text}");
}

/// The same verdict and the same numbers under `cargo test` (parallel, with busy neighbours),
/// `--test-threads=1`, and nextest's process-per-test mode.
#[test]
fn same_numbers_in_every_mode() {
    fn summary(text: &str) -> Vec<String> {
        let mut lines = text
            .lines()
            .skip_while(|l| !l.starts_with("no_leak: `gated::leaks_a_box`"));
        let first = lines.next().map(str::to_string);
        let labelled = lines.filter(|l| {
            ["  heap:", "  per run:", "  threads:", "  fds:"]
                .iter()
                .any(|p| l.starts_with(p))
        });
        first
            .into_iter()
            .chain(labelled.take(4).map(str::to_string))
            .collect()
    }
    let (_, parallel) = run(&["gated::", "--test-threads=4"], &[]);
    let (_, serial) = run_one("gated::leaks_a_box", &[]);
    let (_, nextest) = run(
        &["gated::leaks_a_box", "--exact", "--nocapture"],
        &[
            ("NEXTEST", "1"),
            ("NEXTEST_EXECUTION_MODE", "process-per-test"),
        ],
    );
    let want = summary(&serial);
    assert_eq!(want.len(), 5, "{serial}");
    assert!(want[1].contains("+40 B, +5 blocks"), "{serial}");
    assert!(
        want[2].contains("+8/+1, +8/+1, +8/+1, +8/+1, +8/+1"),
        "{serial}"
    );
    let par: Vec<String> = summary(&parallel);
    assert_eq!(par, want, "parallel run differs:\n{parallel}");
    assert_eq!(summary(&nextest), want, "nextest mode differs:\n{nextest}");
}

/// `NO_LEAK_REPORT`: one JSON line per checked test, whole lines even when tests run in parallel
/// threads and in many processes at once.
#[test]
fn json_lines_one_per_test_in_parallel() {
    let path = std::env::temp_dir().join(format!("no_leak-meta-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let p = path.to_str().unwrap();
    // Parallel threads of one process (each test isolates itself in a child that writes).
    let (_, text) = run(&["gated::", "--test-threads=4"], &[("NO_LEAK_REPORT", p)]);
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .expect(&text)
        .lines()
        .map(str::to_string)
        .collect();
    let _ = std::fs::remove_file(&path);
    // aborts, exits_early, returns_err, panics_with_location, leaks_everything, leaks_a_box
    assert_eq!(lines.len(), 6, "{lines:#?}");
    for l in &lines {
        assert!(
            l.starts_with("{\"test\":\"gated::") && l.ends_with('}'),
            "not one whole object: {l}"
        );
    }
    // `verdict` is what libtest decided; `outcome` what the body did.
    let field = |test: &str, key: &str| {
        let l = lines
            .iter()
            .find(|l| l.starts_with(&format!("{{\"test\":\"gated::{test}\"")))
            .expect(test);
        l.split(&format!("\"{key}\":\""))
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    for (test, outcome) in [
        ("aborts", "crashed"),
        ("exits_early", "crashed"),
        ("returns_err", "error"),
        ("panics_with_location", "panic"),
        ("leaks_everything", "leak"),
        ("leaks_a_box", "leak"),
    ] {
        assert_eq!(field(test, "outcome"), outcome, "{test}");
        assert_eq!(field(test, "verdict"), "fail", "{test}");
    }
    let boxed = lines
        .iter()
        .find(|l| l.contains("gated::leaks_a_box"))
        .unwrap();
    assert!(boxed.contains("\"exceeded\":[\"heap\"]"), "{boxed}");
    assert!(boxed.contains("\"bytes\":{\"before\":"), "{boxed}");
    assert!(boxed.contains("\"net\":40}"), "{boxed}");
    assert!(
        boxed.contains("\"file\":\"tests/meta.rs\""),
        "sites name the file: {boxed}"
    );
}

#[test]
fn json_lines_from_many_processes_at_once() {
    let path = std::env::temp_dir().join(format!("no_leak-meta-many-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let p = path.to_str().unwrap().to_string();
    // Eight processes in nextest's process-per-test mode, all appending at the same time.
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                run(
                    &["gated::leaks_everything", "--exact", "--nocapture"],
                    &[
                        ("NEXTEST", "1"),
                        ("NEXTEST_EXECUTION_MODE", "process-per-test"),
                        ("NO_LEAK_REPORT", &p),
                    ],
                )
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "{text}");
    for l in lines {
        assert!(
            l.starts_with(
                "{\"test\":\"gated::leaks_everything\",\"verdict\":\"fail\",\"outcome\":\"leak\""
            ) && l.ends_with('}'),
            "{l}"
        );
    }
}
