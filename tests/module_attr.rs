//! `#[no_leak]` on an inline module checks every test function inside it, nested modules
//! included; a test's own `#[no_leak(...)]` merges over the module's arguments per key; helpers,
//! `#[no_leak::isolated]` tests and `#[ignore]` stay as they are.

use std::process::Command;

use no_leak::no_leak;

/// Runs this test binary with `args` and returns whether it passed, and its output.
fn run_self(args: &[&str]) -> (bool, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("NO_LEAK")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Leaks exactly one block of 8 bytes each time it is called.
fn leak_one_word() {
    Box::leak(Box::new(0u64));
}

#[no_leak]
mod leaky_and_clean {
    use rstest::rstest;

    /// Called by the tests below: with `#[no_leak]` on it, a call would panic.
    fn helper_stays_a_helper() -> Vec<u8> {
        vec![0u8; 16]
    }

    #[test]
    #[should_panic(expected = "leaked heap: ")]
    fn leaky() {
        std::mem::forget(helper_stays_a_helper());
    }

    #[test]
    fn clean() {
        drop(helper_stays_a_helper());
    }

    #[test]
    #[ignore = "run by `an_ignored_test_stays_ignored_and_is_checked`"]
    fn ignored_leaky() {
        std::mem::forget(vec![0u8; 8]);
    }

    static ISOLATED_RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

    #[test]
    #[no_leak::isolated]
    fn isolated_is_left_alone() {
        // Under #[no_leak] too, this body would run warmup + runs times.
        let runs = ISOLATED_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(runs, 0, "the body of an isolated test ran again");
    }

    #[tokio::test]
    #[should_panic(expected = "leaked heap: ")]
    async fn leaky_async() {
        std::mem::forget(vec![0u8; 8]);
    }

    #[tokio::test]
    async fn clean_async() {
        tokio::task::yield_now().await;
    }

    #[rstest]
    #[case(8)]
    #[case(16)]
    #[should_panic(expected = "leaked heap: ")]
    fn leaky_cases(#[case] n: usize) {
        std::mem::forget(vec![0u8; n]);
    }

    mod nested {
        #[test]
        #[should_panic(expected = "leaked heap: ")]
        fn leaky_in_a_nested_module() {
            std::mem::forget(vec![0u8; 8]);
        }

        #[test]
        fn clean_in_a_nested_module() {
            drop(vec![0u8; 8]);
        }
    }
}

// Each test leaks one 8-byte block per run: 80 bytes in 10 runs, 40 in 5.
#[no_leak(runs = 10)]
mod arguments_merge_per_key {
    use super::*;

    #[test]
    #[no_leak(max_bytes = 80, max_blocks = 10)]
    fn the_tests_bounds_win() {
        leak_one_word();
    }

    #[test]
    #[no_leak(max_bytes = 40, max_blocks = 5)]
    #[should_panic(expected = "leaked heap: ")]
    fn the_modules_runs_stay() {
        leak_one_word();
    }

    #[test]
    #[no_leak(runs = 5, max_bytes = 40, max_blocks = 5)]
    fn the_tests_runs_win() {
        leak_one_word();
    }

    #[test]
    #[should_panic(expected = "leaked heap: ")]
    fn without_its_own_the_modules_arguments_apply() {
        leak_one_word();
    }

    #[no_leak(max_bytes = 80, max_blocks = 10)]
    mod nested_with_its_own {
        use super::*;

        #[test]
        fn nested_bounds_and_outer_runs() {
            leak_one_word();
        }

        #[test]
        #[no_leak(max_bytes = 40, max_blocks = 5)]
        #[should_panic(expected = "leaked heap: ")]
        fn the_innermost_keys_win() {
            leak_one_word();
        }
    }
}

#[test]
fn an_ignored_test_stays_ignored_and_is_checked() {
    let name = "leaky_and_clean::ignored_leaky";
    let (ok, listed) = run_self(&["--list", "--ignored"]);
    assert!(ok, "{listed}");
    assert!(
        listed.lines().any(|l| l == format!("{name}: test")),
        "{listed}"
    );
    let (ok, out) = run_self(&[name, "--exact", "--include-ignored", "--test-threads=1"]);
    assert!(!ok, "the ignored leaky test passed:\n{out}");
    assert!(out.contains("leaked heap: "), "{out}");
}

#[test]
fn every_test_is_registered_once_and_helpers_not_at_all() {
    let (ok, listed) = run_self(&["--list"]);
    assert!(ok, "{listed}");
    let mut names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "a test is registered twice:\n{listed}");
    // Every test function of this file, and each rstest case, once.
    assert_eq!(count, 18, "{listed}");
    assert!(!listed.contains("helper_stays_a_helper"), "{listed}");
    assert!(listed.contains("leaky_and_clean::clean: test"), "{listed}");
}
