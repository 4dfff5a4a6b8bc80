//! The environment a check runs in: the switches users set, and whether this process is quiet.

use std::sync::OnceLock;

use crate::counting::heap::Scope;

/// Set in a child process of the test binary: its role, the one test it runs, and its result file
/// (written and read by `isolation`; every `NO_LEAK*` variable is listed in `isolation::vars`).
pub(crate) const CHILD_VAR: &str = "NO_LEAK_CHILD";
/// The suite-wide warmup runs (see [`Settings`]).
pub(crate) const WARMUP_VAR: &str = "NO_LEAK_WARMUP";
/// The suite-wide measured runs (see [`Settings`]).
pub(crate) const RUNS_VAR: &str = "NO_LEAK_RUNS";
/// The suite-wide settling time (see [`Settings`]).
pub(crate) const SETTLE_MS_VAR: &str = "NO_LEAK_SETTLE_MS";

/// Why threads, fds and tasks are not measured on a shared test thread.
pub(crate) const SHARED_PROCESS: &str = "other tests share this process; isolate the test \
    (#[no_leak] or #[no_leak::isolated]) or run it under `cargo nextest run`";

/// The name of the variable that switches every check off.
pub(crate) const OFF_VAR: &str = "NO_LEAK";
/// How many allocation sites a report lists: a number, or `all` (default: three).
pub(crate) const SITES_VAR: &str = "NO_LEAK_SITES";

pub(crate) fn is_off() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    *OFF.get_or_init(|| {
        let off = std::env::var(OFF_VAR).is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        if off {
            // Straight to the process's stderr, past libtest's per-test capture, so it is seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "no_leak: NO_LEAK=off: bodies run once, and nothing is measured"
            );
        }
        off
    })
}

/// True when this process runs a single test and nothing else: a child started by no_leak's
/// isolation, or a nextest process-per-test.
pub(crate) fn quiet_process() -> bool {
    static QUIET: OnceLock<bool> = OnceLock::new();
    *QUIET.get_or_init(|| {
        std::env::var_os(CHILD_VAR).is_some()
            || std::env::var("NEXTEST_EXECUTION_MODE").is_ok_and(|v| v == "process-per-test")
    })
}

pub(crate) fn on_main_thread() -> bool {
    std::thread::current().name() == Some("main")
}

/// The scope a check started on the calling thread gets.
pub(crate) fn detect_scope() -> Scope {
    if quiet_process() || on_main_thread() {
        Scope::Process
    } else {
        Scope::CallingThread
    }
}

/// Suite-wide settings from the environment: they replace the defaults, never a test's own
/// arguments (see the argument table on [`Config`](crate::Config)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) warmup: Option<u32>,
    pub(crate) runs: Option<u32>,
    pub(crate) settle_ms: Option<u64>,
    /// How many allocation sites a report lists (`all`: every one).
    pub(crate) sites: Option<usize>,
}

/// The settings of this process's environment, read once; `Err` says which variable is not valid
/// and why.
pub(crate) fn settings() -> Result<Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| settings_from(|name| std::env::var_os(name)))
        .clone()
}

/// Parses the settings from `var` (the environment, or a test's stand-in).
pub(crate) fn settings_from(
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Settings, String> {
    Ok(Settings {
        warmup: whole(&var, WARMUP_VAR, 1)?.map(|n| n as u32),
        runs: whole(&var, RUNS_VAR, 1)?.map(|n| n as u32),
        settle_ms: whole(&var, SETTLE_MS_VAR, 0)?,
        sites: match var(SITES_VAR) {
            Some(v) if v == "all" => Some(usize::MAX),
            _ => whole(&var, SITES_VAR, 1)
                .map_err(|why| why.replace("; fix it", ", or `all`; fix it"))?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        },
    })
}

/// The whole number in variable `name`, at least `min` (and at most `u32::MAX` for counts).
fn whole(
    var: &impl Fn(&str) -> Option<std::ffi::OsString>,
    name: &str,
    min: u64,
) -> Result<Option<u64>, String> {
    let Some(raw) = var(name) else {
        return Ok(None);
    };
    let text = raw.to_string_lossy();
    let max = if min == 1 {
        u64::from(u32::MAX)
    } else {
        u64::MAX
    };
    match text.trim().parse::<u64>() {
        Ok(n) if n >= min && n <= max => Ok(Some(n)),
        _ => Err(format!(
            "no_leak: {name}={text:?} is not valid: it takes a whole number from {min} to {max}; \
             fix it or unset it"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(value: &str) -> Result<Option<usize>, String> {
        let var = |name: &str| (name == SITES_VAR).then(|| value.into());
        settings_from(var).map(|s| s.sites)
    }

    #[test]
    fn the_number_of_sites_is_a_whole_number_or_all() {
        assert_eq!(sites("10"), Ok(Some(10)));
        assert_eq!(sites("all"), Ok(Some(usize::MAX)));
        for bad in ["0", "three", "-1", ""] {
            let why = sites(bad).unwrap_err();
            assert!(
                why.contains("NO_LEAK_SITES=") && why.contains("or `all`"),
                "{why}"
            );
        }
        assert_eq!(settings_from(|_| None).map(|s| s.sites), Ok(None));
    }
}
