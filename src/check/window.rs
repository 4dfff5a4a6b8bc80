//! Windows of measured runs. The first window gives the report its numbers (per-run deltas,
//! peak); confirmation windows are read without allocating, for the confirmation rule.

use crate::check::config::Config;
use crate::check::measure::Measure;
use crate::check::outcome::Outcome;
use crate::check::report::RunDelta;
use crate::check::resources::Counts;
use crate::check::settle;
use crate::counting::alloc;
use crate::counting::heap::{Heap, HeapSource, Meter, Scope};

/// Runs the body once; a failure (`Err`) stops the check with it.
pub(crate) fn run<R: Outcome>(body: &mut impl FnMut() -> R) -> Result<(), R> {
    let r = body();
    match r.failure() {
        Some(_) => Err(r),
        None => Ok(()),
    }
}

/// The first window of `runs` measured runs.
pub(crate) struct FirstWindow {
    /// The heap before the first measured run.
    pub(crate) before: Heap,
    /// The heap after each run.
    pub(crate) readings: Vec<Heap>,
    /// What each run changed.
    pub(crate) deltas: Vec<RunDelta>,
    /// The worst run's peak, where measured.
    pub(crate) peak_bytes: Option<u64>,
}

impl FirstWindow {
    /// The heap after the last run.
    pub(crate) fn after(&self) -> Heap {
        *self.readings.last().unwrap_or(&self.before)
    }

    /// The lowest and highest readings after a run.
    pub(crate) fn range(&self) -> Range {
        Range::of(&self.readings)
    }
}

/// Where peaks come from: the process-wide high-water mark, unless an enclosing check already
/// owns it; then, as on a shared test thread, the calling thread's own high-water mark.
enum PeakSource {
    Process(alloc::PeakWindow),
    Thread(alloc::ThreadPeak),
    None,
}

impl PeakSource {
    fn start(meter: &Meter) -> PeakSource {
        if meter.source != HeapSource::NoLeak {
            return PeakSource::None;
        }
        if meter.scope == Scope::Process {
            let w = alloc::PeakWindow::start(meter.exclude_main);
            if w.owns() {
                return PeakSource::Process(w);
            }
        }
        match alloc::ThreadPeak::start() {
            Some(t) => PeakSource::Thread(t),
            None => PeakSource::None,
        }
    }

    /// Restarts the high-water mark; returns the live value it starts from.
    fn reset(&self) -> Option<i64> {
        match self {
            PeakSource::Process(w) => Some(w.reset()),
            PeakSource::Thread(t) => Some(t.reset()),
            PeakSource::None => None,
        }
    }

    fn peak(&self) -> Option<i64> {
        match self {
            PeakSource::Process(w) => Some(w.peak()),
            PeakSource::Thread(t) => Some(t.peak()),
            PeakSource::None => None,
        }
    }
}

/// Runs the first window. Everything it allocates for its bookkeeping is allocated before the
/// first heap reading.
pub(crate) fn first<R: Outcome>(
    cfg: &Config,
    meter: &Meter,
    body: &mut impl FnMut() -> R,
) -> Result<FirstWindow, R> {
    let runs = cfg.runs as usize;
    let mut w = FirstWindow {
        before: Heap::default(),
        readings: Vec::with_capacity(runs),
        deltas: Vec::with_capacity(runs),
        peak_bytes: None,
    };
    let peaks = PeakSource::start(meter);
    w.before = meter.heap();
    let mut prev = w.before;
    for _ in 0..runs {
        let start = peaks.reset();
        run(body)?;
        let now = meter.heap();
        let peak = start.zip(peaks.peak()).map(|(s, p)| (p - s).max(0) as u64);
        w.deltas.push(RunDelta {
            bytes: now.bytes - prev.bytes,
            blocks: now.blocks - prev.blocks,
            peak_bytes: peak,
        });
        w.readings.push(now);
        prev = now;
    }
    drop(peaks);
    w.peak_bytes = w.deltas.iter().filter_map(|d| d.peak_bytes).max();
    Ok(w)
}

/// The lowest and highest of some heap readings, bytes and blocks each on their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) low: Heap,
    pub(crate) high: Heap,
    /// The largest fall from one reading to the next: how much memory comes back in one run.
    pub(crate) drop: Heap,
    prev: Option<Heap>,
}

impl Range {
    fn of(readings: &[Heap]) -> Range {
        let mut r = Range {
            low: Heap {
                bytes: i64::MAX,
                blocks: i64::MAX,
            },
            high: Heap {
                bytes: i64::MIN,
                blocks: i64::MIN,
            },
            drop: Heap::default(),
            prev: None,
        };
        for h in readings {
            r.add(*h);
        }
        r
    }

    fn add(&mut self, h: Heap) {
        if let Some(p) = self.prev {
            self.drop.bytes = self.drop.bytes.max(p.bytes - h.bytes);
            self.drop.blocks = self.drop.blocks.max(p.blocks - h.blocks);
        }
        self.prev = Some(h);
        self.low.bytes = self.low.bytes.min(h.bytes);
        self.low.blocks = self.low.blocks.min(h.blocks);
        self.high.bytes = self.high.bytes.max(h.bytes);
        self.high.blocks = self.high.blocks.max(h.blocks);
    }

    /// A range from `low` to `high` that never fell (for tests).
    #[cfg(test)]
    pub(crate) fn between(low: Heap, high: Heap) -> Range {
        Range {
            low,
            high,
            drop: Heap::default(),
            prev: None,
        }
    }

    /// How far the readings swing: highest minus lowest.
    pub(crate) fn swing(&self) -> Heap {
        Heap {
            bytes: self.high.bytes - self.low.bytes,
            blocks: self.high.blocks - self.low.blocks,
        }
    }
}

/// A confirmation window: the range of the heap readings after each run, and the counts at its
/// start and end. Read without allocating anything.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) range: Range,
    pub(crate) start: Counts,
    pub(crate) end: Counts,
    /// The heap after its last run.
    pub(crate) last: Heap,
}

/// Runs one confirmation window of `runs` runs. Before its last reading it waits for threads
/// its runs left exiting (see [`settle::await_thread_count`]).
pub(crate) fn confirmation<R: Outcome>(
    cfg: &Config,
    runs: u32,
    meter: &Meter,
    census_on: bool,
    body: &mut impl FnMut() -> R,
) -> Result<Window, R> {
    let start = Counts::read(census_on);
    let mut last = meter.heap();
    let mut range = Range::of(&[last]);
    for i in 0..runs {
        run(body)?;
        if i + 1 == runs {
            settle::await_thread_count(start[Measure::Threads], cfg);
        }
        last = meter.heap();
        range.add(last);
    }
    Ok(Window {
        range,
        start,
        end: Counts::read(census_on),
        last,
    })
}
