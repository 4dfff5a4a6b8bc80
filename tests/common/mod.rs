//! Helpers shared by the corpora (`tests/corpus`, `tests/every_os.rs`): each file includes this
//! module with `#[path]`.

use no_leak::{Config, Measure};

/// What every fixed twin of a corpus must measure: nothing, in every dimension, without
/// waiting (a passing check never waits).
pub fn assert_measures_zero(name: &str, f: fn()) {
    let r = Config::new().name(name).measure(f);
    assert!(!r.is_leak(), "{r}");
    assert_eq!(
        (r.net(Measure::Bytes), r.net(Measure::Blocks)),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(r.net(Measure::Threads), Some(0), "{r}");
    assert_eq!(r.net(Measure::Fds), Some(0), "{r}");
    assert!(r.settle_wait.is_zero(), "a passing check never waits: {r}");
}
