//! False-positive guards: code that must never be reported.

use std::collections::HashMap;
use std::thread;
use std::time::Duration;

/// One-time lazy initialisation: allocates on the first call only.
pub fn lazy_one_time_init() {
    static TABLE: std::sync::OnceLock<HashMap<&'static str, Vec<u32>>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut m = HashMap::new();
        m.insert("primes", vec![2, 3, 5, 7, 11, 13]);
        m
    });
    assert_eq!(table.len(), 1);
}

/// Printing in the body.
pub fn printing() {
    for i in 0..20 {
        println!("line {i}: {}", "x".repeat(i));
        eprintln!("err line {i}");
    }
}

/// A large transient allocation.
pub fn large_transient_allocation() {
    let v = vec![1u8; 64 * 1024 * 1024];
    assert_eq!(std::hint::black_box(&v)[12345], 1);
}

/// A detached thread that exits shortly after the body returns.
pub fn detached_thread_exits_soon_after() {
    thread::Builder::new()
        .name("short-lived".into())
        .spawn(|| thread::sleep(Duration::from_millis(30)))
        .unwrap();
}

corpus! {
    guard lazy_one_time_init;
    guard printing;
    guard large_transient_allocation;
    guard detached_thread_exits_soon_after;
}
