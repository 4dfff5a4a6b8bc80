//! Running a crate of its own (a nested workspace under `tests/`) from a test at the root, with a
//! clean environment: nothing of the outer run's runner, cargo settings or no_leak settings leaks
//! into it. Shared by `stats_alloc_crate.rs` and `ffi_crate.rs` (`mod nested;`).

use std::process::Command;

/// Runs `cargo <args> --manifest-path <manifest>` from the repository root with the target
/// directory `target/<target>`; returns whether it succeeded, and its stdout and stderr.
pub fn cargo(args: &[&str], manifest: &str, target: &str) -> (bool, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args)
        .args(["--manifest-path", manifest])
        .current_dir(root)
        .env("RUST_BACKTRACE", "0");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("NEXTEST")
            || k.starts_with("NO_LEAK")
            || (k.starts_with("CARGO_") && k != "CARGO_HOME")
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CARGO_TARGET_DIR", format!("{root}/target/{target}"));
    let out = cmd.output().expect("run cargo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The sum of libtest's `test result: ok. N passed` lines.
pub fn libtest_passed(text: &str) -> usize {
    text.lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum()
}
