//! Exact figures, through the closure API inside isolated tests (whole-process counts).

use std::time::Duration;

use no_leak::{Config, Dimension, Measure};

use crate::rust_own::{box_leak::box_leak, socket_in_static::park_socket_in_static};
use crate::threads::joined_thread::leak_on_joined_thread;
use crate::threads::thread_never_exits::spawn_forever_thread;

#[test]
#[no_leak::isolated]
fn box_leak_is_16_bytes_and_1_block_every_run() {
    let r = Config::new().measure(box_leak);
    assert_eq!(r.exceeded, [Dimension::Heap], "{r}");
    assert_eq!(r.net(Measure::Bytes), Some(5 * 16), "{r}");
    assert_eq!(r.net(Measure::Blocks), Some(5), "{r}");
    assert!(
        r.per_run.iter().all(|d| d.bytes == 16 && d.blocks == 1),
        "{r}"
    );
    assert!(
        r.to_string()
            .contains("+16/+1, +16/+1, +16/+1, +16/+1, +16/+1"),
        "{r}"
    );
}

#[test]
#[no_leak::isolated]
fn forever_thread_is_one_thread_per_run_and_named() {
    let r = Config::new()
        .runs(3)
        .settle(Duration::from_millis(250))
        .measure(spawn_forever_thread);
    assert_eq!(r.exceeded, [Dimension::Heap, Dimension::Threads], "{r}");
    assert_eq!(r.net(Measure::Threads), Some(3), "{r}");
    assert_eq!(r.new_threads.len(), 3, "{r}");
    assert!(r.new_threads.iter().all(|t| t.name == "forever"), "{r}");
    assert!(
        r.settle_gave_up && r.settle_wait >= Duration::from_millis(250),
        "{r}"
    );
    // A sleeping thread may be caught awake (R) at the census: only the name is fixed.
    assert!(r.to_string().contains("- 3 x \"forever\" "), "{r}");
}

#[test]
#[no_leak::isolated]
fn parked_socket_is_one_fd_per_run_and_described() {
    let r = Config::new()
        .runs(4)
        .settle(Duration::from_millis(250))
        .measure(park_socket_in_static);
    assert!(r.exceeds(Dimension::Fds), "{r}");
    assert_eq!(r.net(Measure::Fds), Some(4), "{r}");
    assert!(
        r.new_fds.iter().all(|f| f.target.starts_with("socket:[")),
        "{r}"
    );
}

#[test]
#[no_leak::isolated]
fn joined_thread_leak_counts_exactly() {
    let r = Config::new().measure(leak_on_joined_thread);
    assert_eq!(r.exceeded, [Dimension::Heap], "{r}");
    assert!(
        r.per_run.iter().all(|d| d.bytes == 48 && d.blocks == 1),
        "{r}"
    );
}

#[test]
#[no_leak::isolated]
fn one_byte_per_run_is_caught() {
    let r = Config::new().measure(|| {
        Box::leak(Box::new(1u8));
    });
    assert!(r.is_leak(), "{r}");
    assert_eq!(
        (r.net(Measure::Bytes), r.net(Measure::Blocks)),
        (Some(5), Some(5)),
        "{r}"
    );
}
