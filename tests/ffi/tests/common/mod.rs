//! What every fixed twin of the ffi corpus measures: nothing grew, in any dimension the report
//! measured. Shared by `c_heap.rs` and `mapped.rs` (`mod common;`).

use no_leak::{Measure, Report};

/// The check passed and measured zero heap bytes and blocks, threads and fds.
pub fn assert_zero(r: &Report) {
    assert!(!r.is_leak(), "{r}");
    assert_eq!((r.net(Measure::Bytes), r.net(Measure::Blocks)), (Some(0), Some(0)), "{r}");
    assert_eq!((r.net(Measure::Threads), r.net(Measure::Fds)), (Some(0), Some(0)), "{r}");
}
