//! Runs the crate in `tests/stats_alloc_interop/` (stats_alloc as the global allocator, and a test
//! binary with no counting allocator at all) as part of `cargo test` at the root.
//!
//! That crate needs no_leak with its default feature off, which would be turned back on by
//! feature unification inside this workspace, so it is a workspace of its own and is tested by
//! a nested `cargo test`, with a target directory of its own.

mod nested;

#[test]
fn stats_alloc_interop_crate_passes() {
    let (ok, text) = nested::cargo(
        &["test"],
        "tests/stats_alloc_interop/Cargo.toml",
        "stats_alloc_interop",
    );
    assert!(ok, "the stats_alloc interop crate failed:\n{text}");
    let passed = nested::libtest_passed(&text);
    assert!(passed >= 15, "expected the interop tests to run:\n{text}");
}
