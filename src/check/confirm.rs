//! The confirmation rule: growth has to repeat to fail. The model (why, and what is caught) is in
//! the crate docs, *Confirmation*; these are the notes the code needs.
//!
//! After a first window that exceeded a bound, [`confirm`] runs up to [`WINDOWS`] more windows,
//! each with as many runs as all the runs before it (warmup included), and a dimension stays a
//! leak only while it grows again in every one of them. The doubling is what catches a
//! collection that only grows: it reallocates when its capacity doubles, once per window.
//!
//! - heap (bytes, and blocks, each with its own bound): the window's net growth (from the last
//!   reading before it to the reading after its last run) exceeds the bound, window after window;
//!   at no less than half the first window's rate per run ([`HeapRule::previous`]: a leak's
//!   growth keeps pace with the runs, while what grew once trickles off; a one-time step in the
//!   first window sets a pace a small leak beside it may not keep, the price of never failing
//!   correct code on the trickle); and, checked after the last window
//!   ([`HeapRule::beyond_swing`]), the total growth over the confirmation windows is more than
//!   the widest swing seen within any window and more than twice the largest fall from one
//!   reading to the next. Deferred frees that land a run or two late make the readings swing
//!   around a level, falling back as far as they rose, which no total growth beyond the swing
//!   explains.
//! - threads, fds, tasks, mapped bytes ([`resources_grown`]): the count at the end of the window
//!   exceeds the count at its start by more than the bound. Mapped bytes follow this rule, not
//!   the heap's: maps are few and page-sized or larger, and a map is given back by the `munmap`
//!   of whoever drops it, at once, not by a deferred free on another thread; so their readings do
//!   not swing around a level, and a map made once (an arena, a pool's first chunk) grows in one
//!   window only and is dropped as one-time growth like a thread pool.
//!
//! A dimension that does not grow in some window is dropped from `repeating` (the report calls
//! it one-time growth); the loop stops at the first window in which nothing still grows. With
//! the defaults (3 warmup runs, 5 measured) the windows have 8 and 16 runs: 32 runs in all.

use crate::check::config::Config;
use crate::check::growth::{self, grew, Dims};
use crate::check::measure::{Dimension, Measure};
use crate::check::outcome::Outcome;
use crate::check::report::WindowGrowth;
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

/// Where confirmation starts: the heap reading the first confirmation window starts from, and the
/// first window's readings and growth.
pub(crate) struct Start {
    pub(crate) reading: Heap,
    pub(crate) first: Range,
    pub(crate) first_growth: Heap,
}

/// Runs confirmation windows for the dimensions in `over` (which the first window exceeded).
pub(crate) fn confirm<R: Outcome>(
    cfg: &Config,
    meter: &Meter,
    census_on: bool,
    start: Start,
    over: Dims,
    body: &mut impl FnMut() -> R,
) -> Result<Confirmation, R> {
    let mut heap = HeapRule::new(start.reading, start.first);
    heap.previous = (start.first_growth, cfg.runs);
    let start = start.reading;
    let mut repeating = over;
    let mut windows = Vec::with_capacity(WINDOWS);
    let mut last = start;
    let mut runs_so_far = cfg.warmup + cfg.runs;
    while windows.len() < WINDOWS && !repeating.is_empty() {
        let runs = runs_so_far;
        runs_so_far = runs_so_far.saturating_mul(2);
        let w = window::confirmation(cfg, runs, meter, census_on, body)?;
        if !heap.rose(cfg, w.range, (w.last, runs)) {
            repeating = repeating.without(Dimension::Heap);
        }
        repeating = repeating.and(resources_grown(cfg, &w.start, &w.end).with(Dimension::Heap));
        // The heap's growth runs from the last reading before the window; the counts', from the
        // window's start.
        let (from, to) = (w.start.with_heap(last), w.end.with_heap(w.last));
        windows.push(WindowGrowth::between(runs, &from, &to));
        last = w.last;
    }
    if !heap.beyond_swing() {
        repeating = repeating.without(Dimension::Heap);
    }
    Ok(Confirmation { repeating, windows })
}

/// Threads, fds, tasks and mapped bytes that grew beyond their bounds from `start` to `end` (the
/// heap has its own rule: `start` and `end` have no heap readings).
fn resources_grown(cfg: &Config, start: &Counts, end: &Counts) -> Dims {
    Dims::of(&growth::over(&cfg.bounds, start, end))
}

/// The heap's growth, window after window, for bytes and blocks each.
struct HeapRule {
    start: Heap,
    last: Heap,
    widest_swing: Heap,
    largest_drop: Heap,
    /// The first window's growth and runs: the pace every later window must keep, at half rate.
    previous: (Heap, u32),
    /// Whether bytes (and blocks) have grown beyond their bound in every window so far.
    bytes_rising: bool,
    blocks_rising: bool,
}

impl HeapRule {
    /// Starts from the reading `start` and the first window's range (its swing).
    fn new(start: Heap, first: Range) -> HeapRule {
        HeapRule {
            start,
            last: start,
            widest_swing: first.swing(),
            largest_drop: first.drop,
            previous: (Heap::default(), 1),
            bytes_rising: true,
            blocks_rising: true,
        }
    }

    /// Takes the next window's readings (their range, the last one, and its runs); whether either
    /// series still grows.
    fn rose(&mut self, cfg: &Config, range: Range, (last, runs): (Heap, u32)) -> bool {
        let growth = Heap {
            bytes: last.bytes - self.last.bytes,
            blocks: last.blocks - self.last.blocks,
        };
        let (before, before_runs) = self.previous;
        let keeps_pace = |g: i64, prev: i64| {
            prev <= 0
                || 2 * i128::from(g) * i128::from(before_runs)
                    >= i128::from(prev) * i128::from(runs)
        };
        self.bytes_rising &= grew(self.last.bytes, last.bytes, cfg.bounds[Measure::Bytes])
            && keeps_pace(growth.bytes, before.bytes);
        self.blocks_rising &= grew(self.last.blocks, last.blocks, cfg.bounds[Measure::Blocks])
            && keeps_pace(growth.blocks, before.blocks);
        self.last = last;
        let swing = range.swing();
        self.widest_swing.bytes = self.widest_swing.bytes.max(swing.bytes);
        self.widest_swing.blocks = self.widest_swing.blocks.max(swing.blocks);
        self.largest_drop.bytes = self.largest_drop.bytes.max(range.drop.bytes);
        self.largest_drop.blocks = self.largest_drop.blocks.max(range.drop.blocks);
        self.bytes_rising || self.blocks_rising
    }

    /// Whether a series that grew in every window grew, in all, by more than the readings swing
    /// within a window and by more than twice their largest fall: growth beyond what fluctuation
    /// explains.
    fn beyond_swing(&self) -> bool {
        let bytes = self.last.bytes - self.start.bytes;
        let blocks = self.last.blocks - self.start.blocks;
        let beyond = |grown: i64, swing: i64, drop: i64| grown > swing && grown > 2 * drop;
        (self.bytes_rising && beyond(bytes, self.widest_swing.bytes, self.largest_drop.bytes))
            || (self.blocks_rising
                && beyond(blocks, self.widest_swing.blocks, self.largest_drop.blocks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heap(b: i64) -> Heap {
        Heap {
            bytes: b,
            blocks: b / 16,
        }
    }

    fn range(low: i64, high: i64) -> Range {
        Range::between(heap(low), heap(high))
    }

    #[test]
    fn a_leak_grows_in_every_window_beyond_its_swing() {
        // 16 B a run, 5 runs a window, swing 64 in each.
        let cfg = Config::new();
        let mut rule = HeapRule::new(heap(80), range(16, 80));
        assert!(rule.rose(&cfg, range(96, 160), (heap(160), 5)));
        assert!(rule.rose(&cfg, range(176, 240), (heap(240), 5)));
        assert!(rule.beyond_swing());
    }

    #[test]
    fn a_one_time_step_does_not_grow_again() {
        let cfg = Config::new();
        let mut rule = HeapRule::new(heap(35_000), range(35_000, 35_000));
        assert!(!rule.rose(&cfg, range(35_000, 35_000), (heap(35_000), 8)));
    }

    #[test]
    fn a_vec_that_doubles_in_each_window_is_growth() {
        // Capacity 8 KB -> 16 KB in one window, 16 KB -> 32 KB in the next.
        let cfg = Config::new();
        let mut rule = HeapRule::new(heap(8192), range(4096, 8192));
        assert!(rule.rose(&cfg, range(8192, 16384), (heap(16384), 8)));
        assert!(rule.rose(&cfg, range(16384, 32768), (heap(32768), 16)));
        assert!(rule.beyond_swing(), "24 KB of growth, 16 KB of swing");
    }

    #[test]
    fn growth_that_trickles_off_is_not_a_leak() {
        // 267 B in the first window's 5 runs, then 144 B in 8 runs and 135 B in 16.
        let cfg = Config::new();
        let mut rule = HeapRule::new(heap(267), range(0, 267));
        rule.previous = (heap(267), 5);
        assert!(
            !rule.rose(&cfg, range(267, 411), (heap(411), 8)),
            "a third of the pace"
        );
    }

    #[test]
    fn a_swing_around_a_level_is_not_growth() {
        // Deferred frees: readings swing by 8 KB; two windows happen to end a little higher.
        let cfg = Config::new();
        let mut rule = HeapRule::new(heap(100_000), range(100_000, 108_000));
        let first = rule.rose(&cfg, range(100_016, 108_100), (heap(104_000), 8));
        let second = rule.rose(&cfg, range(100_032, 107_900), (heap(106_000), 16));
        assert!(first, "4 KB in 8 runs is growth on its own");
        assert!(
            !second || !rule.beyond_swing(),
            "6 KB of growth inside an 8 KB swing"
        );
    }

    #[test]
    fn growth_that_falls_back_as_far_is_not_growth() {
        // One block comes and goes between runs, and two windows happen to end a block higher.
        let cfg = Config::new();
        let mut rule = HeapRule::new(heap(1600), range(1600, 1616));
        let mut fell = range(1616, 1632);
        fell.drop = heap(16);
        assert!(rule.rose(&cfg, fell, (heap(1616), 8)));
        assert!(rule.rose(&cfg, range(1632, 1632), (heap(1632), 16)));
        assert!(!rule.beyond_swing(), "2 blocks of growth, falls of 1 block");
    }
}
