//! Waiting for what can still change: threads that the warmup runs started and that are still on
//! their way out (before the window opens), and, after a confirmed leak, threads, fds and tasks
//! that may yet go away (before the verdict).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::check::config::Config;
use crate::check::growth::Baseline;
use crate::check::measure::{Measure, PerMeasure};
use crate::check::resources::Counts;
use crate::counting::heap::{Heap, Meter};
use crate::counting::{census, tasks};

/// The longest the window waits to open for threads the warmup started.
const BASELINE_PATIENCE: Duration = Duration::from_millis(100);

/// Polls that must see the readings unchanged before they count as still: with the back-off's
/// pauses of 1, 2, 4 and 8 ms, about 15 ms without a change.
const STILL_POLLS: u32 = 4;

/// Waits until the threads that the warmup runs started and left alive (`at_start` is the set
/// before the warmup) are gone, or hold still: an exiting thread frees its thread-locals after
/// `join` or `thread::scope` returned, and those frees must land before the window opens, not
/// inside it. Threads that stay (a pool started in the warmup) are long-lived, not exiting: the
/// wait ends once the set has not changed for a few polls, and never lasts more than
/// [`BASELINE_PATIENCE`] (or `settle_ms`, if shorter).
pub(crate) fn await_warmup_threads(at_start: Option<&BTreeSet<u32>>, cfg: &Config) {
    let Some(at_start) = at_start else {
        return;
    };
    let survivors = || -> Option<usize> {
        let now = census::thread_ids()?;
        Some(now.difference(at_start).count())
    };
    let Some(mut left) = survivors() else {
        return;
    };
    let patience = BASELINE_PATIENCE.min(cfg.settle);
    let mut wait = Backoff::new(patience);
    let mut still = 0;
    while left > 0 && still < STILL_POLLS && wait.pause() {
        let now = survivors().unwrap_or(0);
        still = if now == left { still + 1 } else { 0 };
        left = now;
    }
}

/// Waits, without allocating, until no more threads are alive than `threads` (the count when a
/// confirmation window started), or the count holds still for [`STILL_POLLS`] polls, or
/// [`BASELINE_PATIENCE`] (or `settle_ms`) runs out: a pool the window's last run dropped without
/// joining it is still exiting, and what its threads free as they go belongs to that run.
pub(crate) fn await_thread_count(threads: Option<i64>, cfg: &Config) {
    let Some(limit) = threads else {
        return;
    };
    let count = || census::thread_count().map_or(0, |n| n as i64);
    let mut now = count();
    let patience = BASELINE_PATIENCE.min(cfg.settle);
    let mut wait = Backoff::new(patience);
    let mut still = 0;
    while now > limit && still < STILL_POLLS && wait.pause() {
        let next = count();
        still = if next == now { still + 1 } else { 0 };
        now = next;
    }
}

/// The readings a verdict is given on, after settling.
pub(crate) struct Settled {
    /// The last readings.
    pub(crate) heap: Heap,
    pub(crate) counts: Counts,
    /// The measures still over their bounds.
    pub(crate) over: PerMeasure<bool>,
    pub(crate) waited: Duration,
    pub(crate) gave_up: bool,
}

/// Re-reads until the growth from `baseline` is back within bounds, or `settle_ms` runs out, or
/// nothing can change any more: no thread or task is over its bound, no thread is new or exiting
/// (see [`can_change`]), and the readings held still for [`STILL_POLLS`] polls (the process's
/// other threads, a runtime's workers, may still be freeing what the last run dropped). Reads
/// without allocating.
pub(crate) fn settle(baseline: &Baseline, meter: &Meter, census_on: bool) -> Settled {
    let read = || (meter.heap(), Counts::read(census_on));
    if census_on {
        tasks::nudge_watched();
    }
    let mut now = read();
    let mut over = baseline.over(&now.1.with_heap(now.0));
    let mut wait = Backoff::new(baseline.cfg.settle);
    let (mut gave_up, mut waited, mut still) = (false, Duration::ZERO, 0);
    while census_on && over.any() && (still < STILL_POLLS || can_change(baseline, &now.1, &over)) {
        if !wait.pause() {
            gave_up = true;
            break;
        }
        waited = wait.elapsed();
        let next = read();
        still = if next == now { still + 1 } else { 0 };
        now = next;
        over = baseline.over(&now.1.with_heap(now.0));
    }
    Settled {
        heap: now.0,
        counts: now.1,
        over,
        waited,
        gave_up,
    }
}

/// Whether waiting could change the readings: threads or tasks are over their bounds (a thread
/// may be on its way out, a task may be finishing on its runtime), a thread is alive that was not
/// before the window (it may yet exit, and free or close what it holds), or a thread is exiting.
/// Heap and fds held by nothing that can still run do not change by waiting.
fn can_change(baseline: &Baseline, now: &Counts, over: &PerMeasure<bool>) -> bool {
    if over[Measure::Threads] || over[Measure::Tasks] {
        return true;
    }
    let new_threads = baseline.counts[Measure::Threads]
        .zip(now[Measure::Threads])
        .is_some_and(|(b, a)| a > b);
    new_threads || census::exiting_thread_count() > 0
}
