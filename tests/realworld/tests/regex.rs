//! regex, used the way parsers and log scanners use it.
//!
//! - `clean_static_regex_on_test_thread`: a `static LazyLock<Regex>` matched on the calling
//!   thread (the usual "compile once" idiom).
//! - `clean_static_regex_from_scoped_threads`: the same static regex used from two fresh
//!   `std::thread::scope` threads per run (a parallel log scan that starts its threads per call).
//! - `clean_regex_cache_fixed_keys`: a compiled-regex cache in a static map keyed by a fixed set
//!   of user-supplied patterns (a router, a config with filters): it fills once and stays.
//! - `leak_regex_cache_keyed_by_counter`: the same cache keyed by something that never repeats
//!   (a request id baked into the pattern): every call compiles and keeps one more regex.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use no_leak::no_leak;
use regex::Regex;

static LOG_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}) (?P<level>[A-Z]+) (?P<msg>.*)$")
        .unwrap()
});

const LINES: [&str; 4] = [
    "2026-12-01T10:00:00 INFO service started",
    "2026-12-01T10:00:01 WARN slow request id=17",
    "not a log line",
    "2026-12-01T10:00:02 ERROR upstream closed",
];

fn count_errors(lines: &[&str]) -> usize {
    lines
        .iter()
        .filter_map(|l| LOG_LINE.captures(l))
        .filter(|c| &c["level"] == "ERROR")
        .count()
}

#[test]
#[no_leak]
fn clean_static_regex_on_test_thread() {
    assert_eq!(count_errors(&LINES), 1);
}

#[test]
#[no_leak]
fn clean_static_regex_from_scoped_threads() {
    std::thread::scope(|s| {
        let a = s.spawn(|| count_errors(&LINES[..2]));
        let b = s.spawn(|| count_errors(&LINES[2..]));
        assert_eq!(a.join().unwrap() + b.join().unwrap(), 1);
    });
}

static CACHE: LazyLock<Mutex<HashMap<String, Regex>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn cached_is_match(pattern: &str, haystack: &str) -> bool {
    let mut cache = CACHE.lock().unwrap();
    let re = cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).unwrap());
    re.is_match(haystack)
}

#[test]
#[no_leak]
fn clean_regex_cache_fixed_keys() {
    for (pattern, haystack, expected) in [
        (r"^/users/\d+$", "/users/42", true),
        (r"^/items/[a-z]+$", "/items/42", false),
        (r"^/health$", "/health", true),
    ] {
        assert_eq!(cached_is_match(pattern, haystack), expected);
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

#[test]
#[no_leak]
#[should_panic(expected = "leaked heap: ")]
fn leak_regex_cache_keyed_by_counter() {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let pattern = format!(r"request id={id}\b");
    assert!(cached_is_match(
        &pattern,
        &format!("slow request id={id} took 3s")
    ));
}
