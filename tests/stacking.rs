//! `#[no_leak]` keeps the body's own outcome and stacks with the attributes tests already use.

use no_leak::no_leak;
use rstest::{fixture, rstest};
use serial_test::serial;

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct MyError(u32);

// ---- The body's own outcome ----------------------------------------------------------------

#[test]
#[no_leak]
#[should_panic(expected = "the body's own message")]
fn should_panic_sees_the_body_message() {
    panic!("the body's own message: {}", 42);
}

#[test]
#[should_panic(expected = "the body's own message")]
#[no_leak]
fn should_panic_written_before_no_leak() {
    panic!("the body's own message");
}

#[test]
#[no_leak]
fn result_ok_passes() -> Result<(), MyError> {
    let v: Vec<u32> = (0..10).collect();
    if v.len() == 10 {
        Ok(())
    } else {
        Err(MyError(v.len() as u32))
    }
}

#[test]
#[no_leak]
fn question_mark_works() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

static PANICKED_RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[test]
#[no_leak]
#[should_panic(expected = "first run fails")]
fn diverging_body_compiles_and_is_not_rerun() {
    // Counts runs in the process that runs the body; it panics on the first, so it must never be
    // run again (a second run would panic with another message).
    let n = PANICKED_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(n, 0, "the body ran again after failing");
    panic!("first run fails")
}

#[test]
#[no_leak(
    warmup = 3,
    runs = 10,
    max_bytes = 64,
    max_blocks = 1,
    max_threads = 0,
    max_fds = 0,
    settle_ms = 1500
)]
fn tolerant() -> Result<(), MyError> {
    Ok(())
}

static TOLERATED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

#[test]
#[no_leak(max_bytes = 64, max_blocks = 1)]
fn bounds_accept_growth_within_them() {
    // Reserves once (in warmup) a 64-byte buffer; at most one reallocation afterwards is within
    // the bounds.
    TOLERATED.lock().unwrap().reserve(64);
}

// ---- rstest ----------------------------------------------------------------------------------

#[fixture]
fn buffer() -> Vec<u8> {
    vec![0; 128]
}

#[rstest]
#[case(1)]
#[case(2)]
#[case(3)]
#[no_leak]
fn rstest_cases_after(#[case] n: usize, buffer: Vec<u8>) {
    assert_eq!(buffer.len(), 128);
    let v = vec![n; n];
    assert_eq!(v.len(), n);
}

#[no_leak]
#[rstest]
#[case(4)]
#[case(5)]
fn rstest_cases_before(#[case] n: usize) {
    let v = vec![n; n];
    assert_eq!(v.len(), n);
}

#[rstest]
#[case(16)]
#[case(32)]
#[no_leak]
#[should_panic(expected = "leaked heap: ")]
fn rstest_leaky_cases_are_caught(#[case] n: usize) {
    std::mem::forget(vec![0u8; n]);
}

#[rstest]
#[no_leak(runs = 3)]
fn rstest_fixture_built_afresh_each_run(buffer: Vec<u8>) {
    assert_eq!(buffer.len(), 128);
}

// ---- serial_test -----------------------------------------------------------------------------

#[test]
#[serial]
#[no_leak]
fn serial_then_no_leak() {
    let v = vec![1u8; 10];
    drop(v);
}

#[test]
#[no_leak]
#[serial]
fn no_leak_then_serial() {
    let s = String::from("serial");
    assert_eq!(s.len(), 6);
}

#[test]
#[serial]
#[no_leak]
#[should_panic(expected = "leaked heap: ")]
fn serial_leak_is_caught() {
    Box::leak(Box::new([0u8; 8]));
}

// ---- ignored tests run isolated too ---------------------------------------------------------

#[test]
#[ignore = "runs with --include-ignored"]
#[no_leak]
fn ignored_test_isolates_with_include_ignored() {
    drop(vec![0u8; 8]);
}

// ---- Nesting -----------------------------------------------------------------------------------

#[test]
#[no_leak]
fn check_inside_no_leak_is_an_ordinary_check() {
    no_leak::check(|| drop(vec![0u8; 32]));
}

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap: ")]
fn leaky_check_inside_no_leak_fails_with_its_report() {
    no_leak::check(|| std::mem::forget(vec![0u8; 32]));
}

#[test]
fn check_inside_check() {
    let runs = std::cell::Cell::new(0);
    no_leak::check(|| {
        no_leak::check(|| {
            runs.set(runs.get() + 1);
            drop(vec![0u8; 32]);
        })
    });
    // The inner check runs (3 + 5) times per run of the outer one, which runs 3 + 5 times.
    assert_eq!(runs.get(), 8 * 8);
}

#[test]
fn leaky_inner_check_panics_inside_the_outer() {
    let r = std::panic::catch_unwind(|| {
        no_leak::check(|| {
            no_leak::Config::new()
                .name("inner")
                .check(|| std::mem::forget(vec![1u8; 4]))
        })
    });
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<String>().unwrap();
    assert!(msg.starts_with("no_leak: `inner` leaked heap: "), "{msg}");
}

#[test]
#[no_leak(max_bytes = 18446744073709551615, max_blocks = 18446744073709551615)]
fn largest_bounds_accept_everything() {
    std::mem::forget(vec![0u8; 8]);
}

#[test]
fn hint_names_the_bound_that_is_exceeded() {
    // Bytes within their bound, blocks over theirs.
    let r = no_leak::Config::new()
        .max_bytes(1_000_000)
        .measure(|| std::mem::forget(Box::new(0u8)));
    assert!(
        r.to_string()
            .contains("allow it: #[no_leak(max_blocks = 5)]"),
        "{r}"
    );
    let r = no_leak::Config::new().measure(|| std::mem::forget(vec![0u8; 64]));
    assert!(
        r.to_string()
            .contains("allow it: #[no_leak(max_bytes = 320, max_blocks = 5)]"),
        "{r}"
    );
}
