//! The measurement engine: warmup, measured runs, settling, verdict.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::check::config::Config;
use crate::check::env::{is_off, on_main_thread, quiet_process, SHARED_PROCESS};
use crate::check::outcome::Outcome;
use crate::check::report::{Count, Dimension, Report, RunDelta};
use crate::counting::alloc;
use crate::counting::census;
use crate::counting::heap::{heap_source, heap_unmeasurable, Heap, HeapSource, Meter, Scope};

/// Runs `body` per `cfg` and measures it. Returns `Err(r)` with the first failing result of a
/// fallible body (it is not run again). A panic in `body` propagates.
pub(crate) fn measure<R: Outcome>(
    cfg: &Config,
    scope: Scope,
    mut body: impl FnMut() -> R,
) -> Result<Report, R> {
    let name = cfg.name.clone().unwrap_or_else(|| {
        std::thread::current()
            .name()
            .unwrap_or("<unnamed thread>")
            .to_string()
    });
    let mut report = Report::new(name, cfg.clone(), scope);
    if is_off() {
        let r = body();
        if r.failure().is_some() {
            return Err(r);
        }
        report.off = true;
        return Ok(report);
    }
    let source = heap_source();
    report.heap_source = source;
    if let Some(why) = heap_unmeasurable(source, scope) {
        report.unmeasurable = Some(why);
        return Ok(report);
    }
    let exclude_main = scope == Scope::Process && !on_main_thread() && quiet_process();
    let meter = Meter {
        scope,
        source,
        exclude_main,
    };
    let census_on = scope == Scope::Process;

    // Cross-thread frees: from the first warmup to the last measured run, a free on another thread
    // of a block this thread allocated counts as freed in the calling-thread reading.
    let remote = (scope == Scope::CallingThread && source == HeapSource::NoLeak)
        .then(crate::counting::remote::Window::open)
        .flatten();
    for _ in 0..cfg.warmup {
        let r = body();
        if r.failure().is_some() {
            return Err(r);
        }
    }

    if source == HeapSource::StatsAlloc && exclude_main {
        wait_for_quiet_harness(&meter);
    }
    if cfg.soak.is_some() {
        return crate::check::soak::run(cfg, scope, &meter, census_on, report, body);
    }

    // Everything allocated for the bookkeeping is allocated here, before the window opens.
    let mut before = Census::take(census_on);
    if before.tasks.is_some() {
        // An async task the last warmup run awaited can still be alive for a moment (the runtime
        // wakes the awaiting side before it drops the task): wait until two readings agree.
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(1));
            let again = Census::take(census_on);
            let stable = again.tasks == before.tasks;
            before = again;
            if stable {
                break;
            }
        }
    }
    let mut deltas: Vec<RunDelta> = Vec::with_capacity(cfg.runs as usize);
    // The process-wide high-water mark, unless an enclosing check already owns it: then, as on a
    // shared test thread, the calling thread's own high-water mark.
    let peak_window = (scope == Scope::Process && source == HeapSource::NoLeak)
        .then(|| alloc::PeakWindow::start(exclude_main))
        .filter(alloc::PeakWindow::owns);
    let thread_peak = (peak_window.is_none() && source == HeapSource::NoLeak)
        .then(alloc::ThreadPeak::start)
        .flatten();

    let heap_before = meter.heap();
    let mut prev = heap_before;
    for _ in 0..cfg.runs {
        let start_peak = match (&peak_window, &thread_peak) {
            (Some(w), _) => Some(w.reset()),
            (None, Some(t)) => Some(t.reset()),
            (None, None) => None,
        };
        let r = body();
        if r.failure().is_some() {
            return Err(r);
        }
        let now = meter.heap();
        let peak = start_peak.and_then(|s| {
            let p = match (&peak_window, &thread_peak) {
                (Some(w), _) => w.peak(),
                (None, Some(t)) => t.peak(),
                (None, None) => return None,
            };
            Some((p - s).max(0) as u64)
        });
        deltas.push(RunDelta {
            bytes: now.bytes - prev.bytes,
            blocks: now.blocks - prev.blocks,
            peak_bytes: peak,
        });
        prev = now;
    }
    drop(peak_window);
    drop(thread_peak);
    drop(remote);
    let peak_bytes = deltas.iter().filter_map(|d| d.peak_bytes).max();

    // Settling re-reads the heap, so until the verdict is final the set of this function's own live
    // allocations must stay what it was when `heap_before` was read: a census taken after the
    // window is dropped before each re-read, and the report is only filled in at the end.
    let mut heap_after = prev;
    let mut after = Census::take(census_on);
    let over = |heap: Heap, after: &Census| {
        let grew = |b: i64, a: i64, max: u64| i128::from(a - b) > i128::from(max);
        grew(heap_before.bytes, heap.bytes, cfg.max_bytes)
            || grew(heap_before.blocks, heap.blocks, cfg.max_blocks)
            || before
                .counts(after)
                .iter()
                .zip([cfg.max_threads, cfg.max_fds, cfg.max_tasks])
                .any(|(c, max)| c.is_some_and(|(b, a)| grew(b, a, max)))
    };
    let mut settle_wait = Duration::ZERO;
    let mut gave_up = false;
    // Waiting can only change the numbers when other threads can: in the process scope.
    if scope == Scope::Process && over(heap_after, &after) {
        let started = Instant::now();
        let limit = Duration::from_millis(cfg.settle_ms);
        let mut pause = Duration::from_millis(1);
        loop {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                gave_up = true;
                break;
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(50));
            drop(after);
            heap_after = meter.heap();
            after = Census::take(census_on);
            if !over(heap_after, &after) {
                break;
            }
        }
        settle_wait = started.elapsed();
    }

    // The verdict is final: now the report may allocate.
    report.per_run = deltas;
    report.peak_bytes = peak_bytes;
    report.settle_wait = settle_wait;
    report.settle_gave_up = gave_up;
    report.bytes = Some((heap_before.bytes, heap_after.bytes).into());
    report.blocks = Some((heap_before.blocks, heap_after.blocks).into());
    let [threads, fds, tasks] = before.counts(&after).map(|c| c.map(Count::from));
    (report.threads, report.fds, report.tasks) = (threads, fds, tasks);
    if let (Some(b), Some(a)) = (&before.threads, &after.threads) {
        report.new_threads = a.difference(b).map(|&t| census::thread_info(t)).collect();
    }
    if let (Some(b), Some(a)) = (&before.fds, &after.fds) {
        report.new_fds = a.difference(b).map(|&f| census::fd_info(f)).collect();
    }
    if peak_bytes.is_none() {
        report
            .not_measured
            .push((Dimension::Peak, peak_reason(scope, source)));
    }
    if !census_on {
        let why = SHARED_PROCESS;
        for dim in [Dimension::Threads, Dimension::Fds, Dimension::Tasks] {
            report.not_measured.push((dim, why.into()));
        }
    } else {
        if before.threads.is_none() {
            report
                .not_measured
                .push((Dimension::Threads, "not available on this platform".into()));
        }
        if before.fds.is_none() {
            report
                .not_measured
                .push((Dimension::Fds, "not available on this platform".into()));
        }
        if before.tasks.is_none() {
            report.not_measured.push((
                Dimension::Tasks,
                crate::counting::tasks::not_watched_reason().into(),
            ));
        }
    }
    report.evaluate();
    if source == HeapSource::NoLeak
        && (report.exceeds(Dimension::Heap) || report.exceeds(Dimension::Threads))
    {
        diagnose(&mut report, scope, exclude_main, &mut body);
    }
    Ok(report)
}

/// stats_alloc counts every thread, and libtest's main thread allocates (and keeps a few blocks)
/// while it starts a test, sometimes a millisecond or two into the body. no_leak's own allocator
/// leaves the main thread out; with stats_alloc, wait until the main thread sleeps and the counts
/// stay still for a few 2 ms steps (at most 500 ms) before opening the window.
fn wait_for_quiet_harness(meter: &Meter) {
    let started = Instant::now();
    let mut quiet_steps = 0;
    while quiet_steps < 5 && started.elapsed() < Duration::from_millis(500) {
        let main_asleep = census::main_thread_sleeping().unwrap_or(true);
        let before = meter.heap();
        std::thread::sleep(Duration::from_millis(2));
        let after = meter.heap();
        let still = (before.bytes, before.blocks) == (after.bytes, after.blocks);
        quiet_steps = if main_asleep && still {
            quiet_steps + 1
        } else {
            0
        };
    }
}

/// The diagnostic run: once more, with allocation sites captured, after a leak was found.
pub(crate) fn diagnose<R>(
    report: &mut Report,
    scope: Scope,
    exclude_main: bool,
    body: &mut impl FnMut() -> R,
) {
    use crate::counting::capture::{Capture, Who};
    let who = match (scope, exclude_main) {
        (Scope::CallingThread, _) => Who::CallingThread,
        (Scope::Process, true) => Who::NotMain,
        (Scope::Process, false) => Who::All,
    };
    // Diagnostic runs of parallel tests take turns; a heap profiler may hold capture for long,
    // so wait a while, never forever.
    let Some(capture) = Capture::start_within(who, Duration::from_secs(10)) else {
        report.sites_note = Some(
            "not captured: another capture (a diagnostic run on this thread, or a heap profiler) \
             was running"
                .into(),
        );
        return;
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(body())));
    let blocks = capture.finish();
    report.sites = crate::diagnosis::sites::group(&blocks);
    report.sites_note = if outcome.is_err() {
        Some("the diagnostic run panicked; sites are those live when it did".into())
    } else if report.sites.is_empty() {
        Some(
            "one more run left nothing live: the leak did not reproduce in the diagnostic run"
                .into(),
        )
    } else {
        None
    };
}

/// Threads, fds and async tasks at one moment.
pub(crate) struct Census {
    pub(crate) threads: Option<BTreeSet<u32>>,
    pub(crate) fds: Option<BTreeSet<i32>>,
    pub(crate) tasks: Option<i64>,
}

impl Census {
    pub(crate) fn take(on: bool) -> Census {
        if !on {
            return Census {
                threads: None,
                fds: None,
                tasks: None,
            };
        }
        Census {
            threads: census::thread_ids(),
            fds: census::fds(),
            tasks: crate::counting::tasks::alive_tasks(),
        }
    }

    /// (before, after) counts of threads, fds and tasks, where both are known.
    fn counts(&self, after: &Census) -> [Option<(i64, i64)>; 3] {
        let len = |b: Option<usize>, a: Option<usize>| b.zip(a).map(|(b, a)| (b as i64, a as i64));
        [
            len(
                self.threads.as_ref().map(|s| s.len()),
                after.threads.as_ref().map(|s| s.len()),
            ),
            len(
                self.fds.as_ref().map(|s| s.len()),
                after.fds.as_ref().map(|s| s.len()),
            ),
            self.tasks.zip(after.tasks),
        ]
    }
}

fn peak_reason(scope: Scope, source: HeapSource) -> String {
    match (source, scope) {
        (HeapSource::StatsAlloc, _) => "stats_alloc keeps no high-water mark".into(),
        _ => "not available here".into(),
    }
}
