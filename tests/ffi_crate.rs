//! Runs the crate in `tests/ffi/` (no_leak with the feature `ffi`: the C heap counted) as part of
//! `cargo test` at the root, and under `cargo nextest run` when that is what runs this test, so
//! that its verdicts are checked under both runners.
//!
//! That crate turns `ffi` on, which replaces `malloc` in every test binary that links no_leak;
//! feature unification would turn it on for this whole workspace, so it is a workspace of its
//! own, tested by a nested cargo with a target directory of its own (`target/ffi`).

use std::process::Command;

/// Tests the nested crate has (`tests/c_heap.rs`, `tests/interposition.rs`, `tests/mapped.rs`, and its library's).
const AT_LEAST: usize = 57;

#[test]
fn ffi_crate_passes() {
    let root = env!("CARGO_MANIFEST_DIR");
    let nextest = std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("NEXTEST"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    if nextest {
        cmd.args(["nextest", "run", "--no-fail-fast"]);
    } else {
        cmd.arg("test");
    }
    cmd.args(["--manifest-path", "tests/ffi/Cargo.toml"])
        .current_dir(root)
        .env("RUST_BACKTRACE", "0");
    // The nested run starts clean: nothing of this run's runner or settings leaks into it.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("NEXTEST")
            || k.starts_with("NO_LEAK")
            || (k.starts_with("CARGO_") && k != "CARGO_HOME")
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CARGO_TARGET_DIR", format!("{root}/target/ffi"));
    let out = cmd.output().expect("run cargo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the ffi crate failed:\n{text}");
    let passed = if nextest {
        nextest_passed(&text)
    } else {
        libtest_passed(&text)
    };
    assert!(
        passed >= AT_LEAST,
        "expected at least {AT_LEAST} tests to pass, {passed} did:\n{text}"
    );
}

/// The sum of libtest's `test result: ok. N passed` lines.
fn libtest_passed(text: &str) -> usize {
    text.lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum()
}

/// nextest's summary: `Summary [ 1.2s] N tests run: N passed, ...`.
fn nextest_passed(text: &str) -> usize {
    text.lines()
        .filter(|l| l.trim_start().starts_with("Summary"))
        .filter_map(|l| l.split("tests run: ").nth(1))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum()
}
