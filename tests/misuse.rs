//! `#[no_leak]` is never silently misused: a function carrying it is a test, registered exactly
//! once whatever the order of its attributes, and one called from another test panics at once,
//! saying how to fix it.

use std::process::Command;

use no_leak::no_leak;
use serial_test::serial;

/// The tests of this binary, as `--list` prints them (`name: test`), with `extra` arguments.
fn listed(extra: &[&str]) -> Vec<String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--list")
        .args(extra)
        .env_remove("NO_LEAK")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_string)
        .collect()
}

fn times_listed(name: &str) -> usize {
    listed(&[]).iter().filter(|n| *n == name).count()
}

// ---- A function with #[no_leak] is a test, in every order ---------------------------------

#[no_leak]
fn no_leak_alone_is_a_test() {
    drop(vec![0u8; 8]);
}

#[no_leak]
#[should_panic(expected = "leaked heap: ")]
fn no_leak_alone_catches_a_leak() {
    std::mem::forget(vec![0u8; 8]);
}

#[test]
#[no_leak]
fn test_above() {
    drop(vec![0u8; 8]);
}

#[no_leak]
#[test]
fn test_below() {
    drop(vec![0u8; 8]);
}

/// A doc comment and another attribute between `#[test]` and `#[no_leak]`.
#[test]
#[serial]
/// More docs.
#[no_leak]
fn test_above_with_attributes_between() {
    drop(vec![0u8; 8]);
}

#[cfg_attr(all(), test)]
#[no_leak]
fn test_above_through_cfg_attr() {
    drop(vec![0u8; 8]);
}

#[no_leak::isolated]
fn isolated_alone_is_a_test() {}

#[test]
#[no_leak::isolated]
fn isolated_under_test() {}

#[test]
fn every_no_leak_fn_is_registered_exactly_once() {
    for name in [
        "no_leak_alone_is_a_test",
        "no_leak_alone_catches_a_leak",
        "test_above",
        "test_below",
        "test_above_with_attributes_between",
        "test_above_through_cfg_attr",
        "isolated_alone_is_a_test",
        "isolated_under_test",
        "helper_with_no_leak",
        "helper_with_isolated",
    ] {
        assert_eq!(times_listed(name), 1, "`{name}` in {:?}", listed(&[]));
    }
}

// ---- A #[no_leak] fn called from another test ----------------------------------------------

thread_local! {
    static HELPER_BODY_RAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs as a test of its own, and is not to be called from others.
#[no_leak]
fn helper_with_no_leak() {
    HELPER_BODY_RAN.set(true);
    drop(vec![1u8; 4]);
}

#[no_leak::isolated]
fn helper_with_isolated() {}

#[test]
#[should_panic(
    expected = "no_leak: `#[no_leak]` fn `helper_with_no_leak` was called from \
                `calling_a_no_leak_fn_from_a_test_panics_with_the_fix`, not run as its own test; \
                #[no_leak] makes a function a test of its own, run by the test harness, not a \
                helper to call. Call an undecorated helper instead, and to check it for leaks \
                inside a test, wrap the call: `no_leak::check(|| helper_with_no_leak())`"
)]
fn calling_a_no_leak_fn_from_a_test_panics_with_the_fix() {
    helper_with_no_leak();
}

#[test]
fn the_called_helper_body_does_not_run_in_the_calling_test() {
    let r = std::panic::catch_unwind(helper_with_no_leak);
    assert!(r.is_err());
    // Neither here nor in a child process re-running this test did the helper's body run.
    assert!(!HELPER_BODY_RAN.get());
}

#[test]
#[should_panic(
    expected = "no_leak: `#[no_leak::isolated]` fn `helper_with_isolated` was called from \
                `calling_an_isolated_fn_from_a_test_panics`, not run as its own test;"
)]
fn calling_an_isolated_fn_from_a_test_panics() {
    helper_with_isolated();
}

#[test]
#[should_panic(expected = "was called from an unnamed thread, not run as its own test;")]
fn calling_a_no_leak_fn_from_a_spawned_thread_panics() {
    let r = std::thread::spawn(helper_with_no_leak).join();
    std::panic::resume_unwind(r.unwrap_err());
}
