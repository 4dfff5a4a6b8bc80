//! Runs the crate in `tests/ffi/` (no_leak with the feature `ffi`: the C heap counted) as part of
//! `cargo test` at the root, and under `cargo nextest run` when that is what runs this test, so
//! that its verdicts are checked under both runners.
//!
//! That crate turns `ffi` on, which replaces `malloc` in every test binary that links no_leak;
//! feature unification would turn it on for this whole workspace, so it is a workspace of its
//! own, tested by a nested cargo with a target directory of its own (`target/ffi`).

mod nested;

/// Tests the nested crate has (`tests/c_heap.rs`, `tests/clean_c.rs`, `tests/interposition.rs`,
/// `tests/mapped.rs`, and its library's).
const AT_LEAST: usize = 74;

#[test]
fn ffi_crate_passes() {
    let nextest = std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("NEXTEST"));
    let runner: &[&str] = if nextest {
        &["nextest", "run", "--no-fail-fast"]
    } else {
        &["test"]
    };
    let (ok, text) = nested::cargo(runner, "tests/ffi/Cargo.toml", "ffi");
    assert!(ok, "the ffi crate failed:\n{text}");
    let passed = if nextest {
        nextest_passed(&text)
    } else {
        nested::libtest_passed(&text)
    };
    assert!(
        passed >= AT_LEAST,
        "expected at least {AT_LEAST} tests to pass, {passed} did:\n{text}"
    );
}

/// nextest's summary: `Summary [ 1.2s] N tests run: N passed, ...`.
fn nextest_passed(text: &str) -> usize {
    text.lines()
        .filter(|l| l.trim_start().starts_with("Summary"))
        .filter_map(|l| l.split("tests run: ").nth(1))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum()
}
