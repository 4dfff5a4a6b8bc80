//! Runs the crate in `tests/stats_alloc_interop/` (stats_alloc as the global allocator, and a test
//! binary with no counting allocator at all) as part of `cargo test` at the root.
//!
//! That crate needs no_leak with its default feature off, which would be turned back on by
//! feature unification inside this workspace, so it is a workspace of its own and is tested by
//! a nested `cargo test`, with a target directory of its own.

use std::process::Command;

#[test]
fn stats_alloc_interop_crate_passes() {
    let root = env!("CARGO_MANIFEST_DIR");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "test",
        "--manifest-path",
        "tests/stats_alloc_interop/Cargo.toml",
    ])
    .current_dir(root)
    .env(
        "CARGO_TARGET_DIR",
        format!("{root}/target/stats_alloc_interop"),
    )
    .env("RUST_BACKTRACE", "0");
    // The nested run is a plain `cargo test`, whatever runs this one.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("NEXTEST")
            || k.starts_with("NO_LEAK")
            || (k.starts_with("CARGO_") && k != "CARGO_HOME")
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env(
        "CARGO_TARGET_DIR",
        format!("{root}/target/stats_alloc_interop"),
    );
    let out = cmd.output().expect("run cargo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the stats_alloc interop crate failed:\n{text}"
    );
    let passed: usize = text
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 15, "expected the interop tests to run:\n{text}");
}
