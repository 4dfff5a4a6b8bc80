//! UI tests: every compile error of `#[no_leak]` and `#[no_leak::isolated]`, pinned with its
//! message and span in `tests/ui/*.stderr`. Regenerate with
//! `TRYBUILD=overwrite cargo test --test compile_fail`, then read the diff.
//!
//! trybuild builds each case as a binary, not a test, where `#[test]` removes its function before
//! `#[no_leak]` would see it; so the cases leave `#[test]` out.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
