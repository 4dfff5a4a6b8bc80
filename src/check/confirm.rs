//! The confirmation rule: growth has to repeat to fail.
//!
//! Real libraries grow once and then hold: a regex cache pool fills its slots, a hash table
//! doubles after many rounds of churn, a lock table is created on the first real park. Such
//! one-time growth can land in a measured run however long the warmup. So when the first window
//! exceeds a bound, the check runs up to [`WINDOWS`] more windows of `runs` runs each, and a
//! dimension is a leak only if it grows again in every one of them:
//!
//! - heap (bytes, and blocks, each with its own bound): the *floor* of a window (the lowest
//!   reading after any of its runs) rises above the previous window's floor by more than the
//!   bound, window after window; and the total rise of the floor, from the first window to the
//!   last, is more than the widest swing seen within a window. A leak raises every floor; a
//!   one-time step raises one; deferred frees that land a run or two late make the readings
//!   swing around a level whose floor stays put.
//! - threads, fds, tasks: the count at the end of the window exceeds the count at its start by
//!   more than the bound.
//!
//! A dimension that does not grow in some window was one-time growth: it is dropped, and the
//! report says so. A leak is caught when it grows at least once in every window of `runs` runs;
//! a slower one needs more `runs` (or a soak).

use crate::check::config::Config;
use crate::check::growth::{grew, Dims};
use crate::check::outcome::Outcome;
use crate::check::report::{Dimension, WindowGrowth};
use crate::check::resources::Counts;
use crate::check::window::{self, Range};
use crate::counting::heap::{Heap, Meter};

/// Confirmation windows run after a first window that exceeded a bound.
pub(crate) const WINDOWS: usize = 2;

/// What the confirmation windows found.
pub(crate) struct Confirmation {
    /// The dimensions that grew in every window.
    pub(crate) repeating: Dims,
    /// What each confirmation window changed.
    pub(crate) windows: Vec<WindowGrowth>,
}

/// Runs confirmation windows for the dimensions in `over` (which the first window exceeded).
/// `start` is the heap reading the first confirmation window starts from, and the range of the
/// first window's readings.
pub(crate) fn confirm<R: Outcome>(
    cfg: &Config,
    meter: &Meter,
    census_on: bool,
    (start, first): (Heap, Range),
    over: Dims,
    body: &mut impl FnMut() -> R,
) -> Result<Confirmation, R> {
    let mut heap = HeapRule::new(start, first);
    let mut repeating = over;
    let mut windows = Vec::with_capacity(WINDOWS);
    let mut last = start;
    while windows.len() < WINDOWS && !repeating.is_empty() {
        let w = window::confirmation(cfg.runs, meter, census_on, body)?;
        if !heap.rose(cfg, w.range) {
            repeating = repeating.without(Dimension::Heap);
        }
        repeating = repeating.and(resources_grown(cfg, &w.start, &w.end).with(Dimension::Heap));
        windows.push(WindowGrowth::between(last, w.last, &w.start, &w.end));
        last = w.last;
    }
    if !heap.beyond_swing() {
        repeating = repeating.without(Dimension::Heap);
    }
    Ok(Confirmation { repeating, windows })
}

/// Threads, fds and tasks that grew beyond their bounds from `start` to `end`.
fn resources_grown(cfg: &Config, start: &Counts, end: &Counts) -> Dims {
    let bounds = [cfg.max_threads, cfg.max_fds, cfg.max_tasks];
    let names = [Dimension::Threads, Dimension::Fds, Dimension::Tasks];
    let mut dims = Dims::default();
    for ((pair, max), dim) in start.pairs(end).into_iter().zip(bounds).zip(names) {
        if pair.is_some_and(|(b, a)| grew(b, a, max)) {
            dims = dims.with(dim);
        }
    }
    dims
}

/// The heap's floors, window after window, for bytes and blocks each.
struct HeapRule {
    first_floor: Heap,
    floor: Heap,
    widest_swing: Heap,
    /// Whether bytes (and blocks) have risen in every window so far.
    bytes_rising: bool,
    blocks_rising: bool,
}

impl HeapRule {
    /// Starts from the reading `start` (the first floor) and the first window's range (its swing).
    fn new(start: Heap, first: Range) -> HeapRule {
        HeapRule {
            first_floor: start,
            floor: start,
            widest_swing: first.swing(),
            bytes_rising: true,
            blocks_rising: true,
        }
    }

    /// Takes the next window's range; whether either series still rises.
    fn rose(&mut self, cfg: &Config, next: Range) -> bool {
        self.bytes_rising &= grew(self.floor.bytes, next.low.bytes, cfg.max_bytes);
        self.blocks_rising &= grew(self.floor.blocks, next.low.blocks, cfg.max_blocks);
        self.floor = next.low;
        let swing = next.swing();
        self.widest_swing.bytes = self.widest_swing.bytes.max(swing.bytes);
        self.widest_swing.blocks = self.widest_swing.blocks.max(swing.blocks);
        self.bytes_rising || self.blocks_rising
    }

    /// Whether a series that rose in every window rose, in all, by more than the readings swing
    /// within a window: growth beyond what fluctuation explains.
    fn beyond_swing(&self) -> bool {
        let rise_bytes = self.floor.bytes - self.first_floor.bytes;
        let rise_blocks = self.floor.blocks - self.first_floor.blocks;
        (self.bytes_rising && rise_bytes > self.widest_swing.bytes)
            || (self.blocks_rising && rise_blocks > self.widest_swing.blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(low: i64, high: i64) -> Range {
        let h = |b| Heap {
            bytes: b,
            blocks: b / 16,
        };
        Range {
            low: h(low),
            high: h(high),
        }
    }

    #[test]
    fn a_leak_rises_in_every_window_beyond_its_swing() {
        // 16 B a run, 5 runs a window: floors 16, 96, 176; swing 64 in each.
        let cfg = Config::new();
        let mut rule = HeapRule::new(range(80, 80).low, range(16, 80));
        assert!(rule.rose(&cfg, range(96, 160)));
        assert!(rule.rose(&cfg, range(176, 240)));
        assert!(rule.beyond_swing());
    }

    #[test]
    fn a_one_time_step_does_not_rise_again() {
        let cfg = Config::new();
        let mut rule = HeapRule::new(range(35_000, 35_000).low, range(35_000, 35_000));
        assert!(!rule.rose(&cfg, range(35_000, 35_000)));
    }

    #[test]
    fn a_swing_around_a_level_is_not_growth() {
        // Deferred frees: readings swing by 8 KB; the floors creep up by a little.
        let cfg = Config::new();
        let mut rule = HeapRule::new(range(100_000, 0).low, range(100_000, 108_000));
        assert!(rule.rose(&cfg, range(100_016, 108_100)));
        assert!(rule.rose(&cfg, range(100_032, 107_900)));
        assert!(!rule.beyond_swing(), "a 32 B rise inside an 8 KB swing");
    }
}
