//! The knobs of a leak check, as a builder. Method names equal the `#[no_leak(...)]` arguments,
//! but for the times: the keys `settle_ms` and `soak_ms` call `settle` and `soak_for`.

use std::time::Duration;

use crate::check::measure::{Measure, PerMeasure};

/// How to check a body for leaks. Every bound defaults to 0: any net growth is a leak.
///
/// # Arguments
///
/// This is the one table of arguments: `#[no_leak(key = value, ...)]` takes each of them, and
/// `Config` has a builder method of each name (the keys with a unit, `settle_ms` and `soak_ms`,
/// call [`settle`](Config::settle) and [`soak_for`](Config::soak_for) with a `Duration`). The
/// macro's own table is checked against this one by a test, so the two never drift apart. Where an environment variable is named, it sets the
/// value for a whole test run (CI), overriding the default but never an argument a test wrote.
///
/// | argument | value | default | minimum | environment | meaning |
/// |---|---|---|---|---|---|
/// | [`warmup`](Config::warmup) | integer | 3 | 1 | `NO_LEAK_WARMUP` | unmeasured runs first, so lazy statics, thread-locals and pools settle |
/// | [`runs`](Config::runs) | integer | 5 | 1 | `NO_LEAK_RUNS` | measured runs; net growth over all of them is compared with the bounds |
/// | [`max_bytes`](Config::max_bytes) | integer | 0 | 0 | | allowed net growth of live heap bytes |
/// | [`max_blocks`](Config::max_blocks) | integer | 0 | 0 | | allowed net growth of live heap blocks |
/// | [`max_threads`](Config::max_threads) | integer | 0 | 0 | | allowed net growth of live OS threads |
/// | [`max_fds`](Config::max_fds) | integer | 0 | 0 | | allowed net growth of open file descriptors |
/// | [`max_tasks`](Config::max_tasks) | integer | 0 | 0 | | allowed net growth of alive tasks on watched tokio runtimes (feature `tokio`) |
/// | [`max_mapped_bytes`](Config::max_mapped_bytes) | integer | 0 | 0 | | allowed net growth of bytes in anonymous `mmap` made outside the allocator (feature `ffi`) |
/// | [`max_peak_bytes`](Config::max_peak_bytes) | integer | unbounded | 0 | | bound on the highest live heap within a run, above its start |
/// | [`settle_ms`](Config::settle) | integer | 1000 | 0 | `NO_LEAK_SETTLE_MS` | how long to poll, with back-off, for threads still on their way out before reporting |
/// | [`soak`](Config::soak) | integer | off | 40 | | soak mode: this many iterations, fail on a sustained trend |
/// | [`soak_ms`](Config::soak_for) | integer | off | 10 | | soak mode for this many milliseconds |
/// | [`max_slope_bytes_per_iteration`](Config::max_slope_bytes_per_iteration) | float | 0.0 | 0.0 | | in soak mode, allowed trend of live bytes per iteration |
///
/// [`name`](Config::name) (builder only) sets the name the report gives; it defaults to the name
/// of the running test (the thread's name).
///
/// ```
/// let report = no_leak::Config::new().warmup(2).runs(10).max_bytes(64).measure(|| {
///     let v = vec![1u8; 100];
///     drop(v);
/// });
/// assert!(!report.is_leak(), "{report}");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub(crate) warmup: u32,
    pub(crate) runs: u32,
    /// The bound on each measure's net growth (`max_bytes` ... `max_mapped_bytes`).
    pub(crate) bounds: PerMeasure<u64>,
    pub(crate) max_peak_bytes: Option<u64>,
    pub(crate) settle: Duration,
    pub(crate) name: Option<String>,
    pub(crate) soak: Option<crate::longrun::soak::SoakLength>,
    pub(crate) max_slope_bytes_per_iteration: f64,
    /// The settings a test wrote itself (bits of [`Explicit`]): the environment does not
    /// override them.
    pub(crate) explicit: u8,
}

/// Bits of [`Config::explicit`].
pub(crate) struct Explicit;

impl Explicit {
    pub(crate) const WARMUP: u8 = 1;
    pub(crate) const RUNS: u8 = 2;
    pub(crate) const SETTLE_MS: u8 = 4;
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// Default number of unmeasured warmup runs.
    pub const DEFAULT_WARMUP: u32 = 3;
    /// Default number of measured runs.
    pub const DEFAULT_RUNS: u32 = 5;
    /// Default time to wait for exiting threads and their frees before reporting a leak.
    pub const DEFAULT_SETTLE: Duration = Duration::from_secs(1);

    /// The defaults listed on [`Config`].
    pub const fn new() -> Config {
        Config {
            warmup: Config::DEFAULT_WARMUP,
            runs: Config::DEFAULT_RUNS,
            bounds: PerMeasure::splat(0),
            max_peak_bytes: None,
            settle: Config::DEFAULT_SETTLE,
            name: None,
            soak: None,
            max_slope_bytes_per_iteration: 0.0,
            explicit: 0,
        }
    }

    /// This configuration with the suite-wide settings of the environment (`NO_LEAK_WARMUP`,
    /// `NO_LEAK_RUNS`, `NO_LEAK_SETTLE_MS`) applied where the test did not set its own. Panics
    /// with the reason when one of them is set to a value that is not valid.
    pub(crate) fn with_environment(&self) -> Config {
        let env = crate::check::env::settings().unwrap_or_else(|why| panic!("{why}"));
        let mut c = self.clone();
        let mine = |bit: u8| self.explicit & bit != 0;
        if let (Some(n), false) = (env.warmup, mine(Explicit::WARMUP)) {
            c.warmup = n;
        }
        if let (Some(n), false) = (env.runs, mine(Explicit::RUNS)) {
            c.runs = n;
        }
        if let (Some(ms), false) = (env.settle_ms, mine(Explicit::SETTLE_MS)) {
            c.settle = Duration::from_millis(ms);
        }
        c
    }

    /// Unmeasured runs before the measured ones. Panics if `n` is 0: lazy initialisation on the
    /// first run would be reported as a leak.
    pub fn warmup(mut self, n: u32) -> Config {
        assert!(n >= 1, "no_leak: warmup must be at least 1 (got 0)");
        self.warmup = n;
        self.explicit |= Explicit::WARMUP;
        self
    }

    /// Measured runs. Panics if `n` is 0.
    pub fn runs(mut self, n: u32) -> Config {
        assert!(n >= 1, "no_leak: runs must be at least 1 (got 0)");
        self.runs = n;
        self.explicit |= Explicit::RUNS;
        self
    }

    /// Allowed net growth of live heap bytes over all measured runs together.
    pub fn max_bytes(mut self, n: u64) -> Config {
        self.bounds[Measure::Bytes] = n;
        self
    }

    /// Allowed net growth of live heap blocks over all measured runs together.
    pub fn max_blocks(mut self, n: u64) -> Config {
        self.bounds[Measure::Blocks] = n;
        self
    }

    /// Allowed net growth of live OS threads.
    pub fn max_threads(mut self, n: u64) -> Config {
        self.bounds[Measure::Threads] = n;
        self
    }

    /// Allowed net growth of open file descriptors.
    pub fn max_fds(mut self, n: u64) -> Config {
        self.bounds[Measure::Fds] = n;
        self
    }

    /// Allowed net growth of alive async tasks on the watched runtimes (cargo feature `tokio`).
    pub fn max_tasks(mut self, n: u64) -> Config {
        self.bounds[Measure::Tasks] = n;
        self
    }

    /// Allowed net growth of live bytes in anonymous `mmap` made outside the allocator (cargo
    /// feature `ffi`; measured where the whole process is, like threads and fds).
    pub fn max_mapped_bytes(mut self, n: u64) -> Config {
        self.bounds[Measure::Mapped] = n;
        self
    }

    /// Bound on the peak: within each measured run, the highest live heap above the live heap at
    /// the start of that run; the worst run counts. Unbounded unless set.
    pub fn max_peak_bytes(mut self, n: u64) -> Config {
        self.max_peak_bytes = Some(n);
        self
    }

    /// How long to wait, polling with back-off, for threads on their way out (and what they free)
    /// before a leak is reported (default 1 s; whole milliseconds, a fraction rounded up). A
    /// passing check never waits. The attribute's key is `settle_ms`, in milliseconds.
    pub fn settle(mut self, wait: std::time::Duration) -> Config {
        self.settle = wait;
        self.explicit |= Explicit::SETTLE_MS;
        self
    }

    /// Soak mode: after the warmup runs, run the body `iterations` times, sample live heap,
    /// threads and fds about 200 times (after a warmup of the first tenth), and fail on a
    /// sustained upward trend instead of comparing net growth with the bounds. See
    /// [`SoakReport`](crate::soak::SoakReport).
    pub fn soak(mut self, iterations: u64) -> Config {
        assert!(
            iterations >= 40,
            "no_leak: a soak needs at least 40 iterations (got {iterations})"
        );
        self.soak = Some(crate::longrun::soak::SoakLength::Iterations(iterations));
        self
    }

    /// Soak mode for a duration instead of a number of iterations (see [`soak`](Config::soak)).
    /// Panics below 10 ms. The attribute's key is `soak_ms`, in milliseconds.
    pub fn soak_for(mut self, length: std::time::Duration) -> Config {
        assert!(
            length >= std::time::Duration::from_millis(10),
            "no_leak: a soak needs at least 10 ms (got {length:?})"
        );
        self.soak = Some(crate::longrun::soak::SoakLength::Duration(length));
        self
    }

    /// In soak mode, the allowed trend of live heap bytes, in bytes per iteration (default 0:
    /// any sustained growth fails): a fitted slope above it, sustained, is a leak. Panics if
    /// negative.
    pub fn max_slope_bytes_per_iteration(mut self, bytes_per_iteration: f64) -> Config {
        assert!(
            bytes_per_iteration >= 0.0,
            "no_leak: max_slope_bytes_per_iteration cannot be negative"
        );
        self.max_slope_bytes_per_iteration = bytes_per_iteration;
        self
    }

    /// The bound on `m`'s net growth: what [`max_bytes`](Config::max_bytes) ...
    /// [`max_mapped_bytes`](Config::max_mapped_bytes) set (0 unless set).
    pub fn bound(&self, m: Measure) -> u64 {
        self.bounds[m]
    }

    /// The name the report gives. Defaults to the name of the running test (the thread's name).
    pub fn name(mut self, name: impl Into<String>) -> Config {
        self.name = Some(name.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let c = Config::new();
        assert_eq!((c.warmup, c.runs, c.settle), (3, 5, Duration::from_secs(1)));
        assert_eq!(c.bounds, PerMeasure::splat(0));
        assert_eq!(c.max_peak_bytes, None);
    }

    #[test]
    #[should_panic(expected = "warmup must be at least 1")]
    fn zero_warmup_is_refused() {
        let _ = Config::new().warmup(0);
    }

    #[test]
    #[should_panic(expected = "runs must be at least 1")]
    fn zero_runs_is_refused() {
        let _ = Config::new().runs(0);
    }
}
