//! The measurement engine: warmup, the first window of measured runs, confirmation when it
//! exceeds a bound, settling, the verdict, and the diagnostic run of a failing check.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::check::config::Config;
use crate::check::confirm::{self, Confirmation};
use crate::check::env::{is_off, on_main_thread, quiet_process, SHARED_PROCESS};
use crate::check::growth::{Baseline, Dims};
use crate::check::measure::PerMeasure;
use crate::check::outcome::Outcome;
use crate::check::report::{Count, Dimension, OneTime, Report};
use crate::check::resources::{Counts, Resources};
use crate::check::settle::{self, Settled};
use crate::check::window::{self, run, FirstWindow};
use crate::counting::census;
use crate::counting::heap::{heap_source, heap_unmeasurable, Heap, HeapSource, Meter, Scope};

/// Runs `body` per `cfg` and measures it. Returns `Err(r)` with the first failing result of a
/// fallible body (it is not run again). A panic in `body` propagates.
pub(crate) fn measure<R: Outcome>(
    cfg: &Config,
    scope: Scope,
    mut body: impl FnMut() -> R,
) -> Result<Report, R> {
    let cfg = &cfg.with_environment();
    let name = cfg.name.clone().unwrap_or_else(|| {
        let t = std::thread::current();
        t.name().unwrap_or("<unnamed thread>").to_string()
    });
    crate::diagnosis::sites::release_symbols_if_idle(&name);
    let mut report = Report::new(name, cfg.clone(), scope);
    if is_off() {
        run(&mut body)?;
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
    let threads_at_start = if census_on {
        census::thread_ids()
    } else {
        None
    };
    // Cross-thread frees: from the first warmup run to the end of the check, a free on another
    // thread of a block this thread allocated counts as freed in the calling-thread reading.
    let _remote = (scope == Scope::CallingThread && source == HeapSource::NoLeak)
        .then(crate::counting::remote::Window::open)
        .flatten();
    for _ in 0..cfg.warmup {
        run(&mut body)?;
    }
    if source == HeapSource::StatsAlloc && exclude_main {
        wait_for_quiet_harness(&meter);
    }
    if cfg.soak.is_some() {
        return crate::check::soak::run(cfg, &meter, census_on, report, body);
    }
    settle::await_warmup_threads(threads_at_start.as_ref(), cfg);
    drop(threads_at_start);
    measure_windows(cfg, &meter, report, &mut body)
}

/// The first window, and, when it exceeds a bound, confirmation and settling; then the report.
fn measure_windows<R: Outcome>(
    cfg: &Config,
    meter: &Meter,
    mut report: Report,
    body: &mut impl FnMut() -> R,
) -> Result<Report, R> {
    let census_on = meter.scope == Scope::Process;
    // Everything allocated for the bookkeeping is allocated before the window opens, and
    // nothing between heap readings until the census after settling.
    let before = Resources::take_settled(census_on);
    let first = window::first(cfg, meter, body)?;
    let baseline = Baseline {
        cfg,
        counts: before.counts().with_heap(first.before),
    };
    let (heap_after, counts_after, over) = last_readings(&baseline, meter, &first, &mut report);
    // The one decision of which measures grew: the report keeps it; confirmation narrows the
    // dimensions it gives.
    report.over_bound = over;
    let mut leaked = Dims::of(&over);
    let after = Resources::take(census_on);
    if !leaked.is_empty() {
        // The census stays allocated: confirmation starts from a reading that includes it.
        let start = confirm::Start {
            reading: meter.heap(),
            first: first.range(),
            first_growth: Heap {
                bytes: heap_after.bytes - first.before.bytes,
                blocks: heap_after.blocks - first.before.blocks,
            },
        };
        let Confirmation { repeating, windows } =
            confirm::confirm(cfg, meter, census_on, start, leaked, body)?;
        report.confirmations = windows;
        report.one_time = one_time(&first, leaked.minus(repeating));
        leaked = repeating;
    }
    if peak_over(&first, cfg) {
        leaked = leaked.with(Dimension::Peak);
    }
    fill(
        &mut report,
        &first,
        (heap_after, counts_after),
        &before,
        &after,
    );
    report.exceeded = leaked.list();
    note_unmeasured(&mut report, &before);
    if meter.source == HeapSource::NoLeak
        && (report.exceeds(Dimension::Heap) || report.exceeds(Dimension::Threads))
    {
        diagnose(&mut report, meter, body);
    } else if report.exceeds(Dimension::Mapped) {
        report.sites_note = Some(
            "not traced for mapped memory: look for maps (memmap2, mmap) that are never unmapped"
                .into(),
        );
    }
    Ok(report)
}

/// The readings after the first window, and the measures over their bounds in them: read again
/// after settling (see [`settle::settle`]) when any is. Allocates nothing.
fn last_readings(
    baseline: &Baseline,
    meter: &Meter,
    first: &FirstWindow,
    report: &mut Report,
) -> (Heap, Counts, PerMeasure<bool>) {
    let census_on = meter.scope == Scope::Process;
    let (heap, counts) = (first.after(), Counts::read(census_on));
    let over = baseline.over(&counts.with_heap(heap));
    if !over.any() {
        return (heap, counts, over);
    }
    let settled = settle::settle(baseline, meter, census_on);
    note_settling(report, &settled);
    (settled.heap, settled.counts, settled.over)
}

/// Whether the first window's worst run peaked above `max_peak_bytes`.
fn peak_over(first: &FirstWindow, cfg: &Config) -> bool {
    first
        .peak_bytes
        .zip(cfg.max_peak_bytes)
        .is_some_and(|(p, max)| p > max)
}

fn note_settling(report: &mut Report, settled: &Settled) {
    report.settle_wait = settled.waited;
    report.settle_gave_up = settled.gave_up;
}

/// The first window's growth in `dims`, which did not repeat.
fn one_time(first: &FirstWindow, dims: Dims) -> Option<OneTime> {
    if dims.is_empty() {
        return None;
    }
    let (_, run) = first
        .deltas
        .iter()
        .zip(1..)
        .max_by_key(|(d, _)| d.bytes)
        .unwrap_or((&first.deltas[0], 1));
    Some(OneTime {
        dimensions: dims.list(),
        bytes: first.after().bytes - first.before.bytes,
        blocks: first.after().blocks - first.before.blocks,
        run,
    })
}

/// The first window's numbers (after settling, if it settled), and the threads and fds it left
/// behind.
fn fill(
    report: &mut Report,
    first: &FirstWindow,
    (heap, counts): (Heap, Counts),
    before: &Resources,
    after: &Resources,
) {
    report.per_run = first.deltas.clone();
    report.peak_bytes = first.peak_bytes;
    let start = before.counts().with_heap(first.before);
    let end = counts.with_heap(heap);
    report.counts = start.zip(end).map(|_, (b, a)| b.zip(a).map(Count::from));
    // Only those still alive now: a thread that has exited since is not left behind.
    let alive_now = census::thread_ids();
    if let (Some(b), Some(a)) = (&before.threads, &after.threads) {
        let still = |t: &&u32| {
            alive_now
                .as_ref()
                .is_none_or(|n: &BTreeSet<u32>| n.contains(t))
        };
        let new: Vec<u32> = a.difference(b).filter(still).copied().collect();
        report.new_threads = named_threads(&new);
    }
    if let (Some(b), Some(a)) = (&before.fds, &after.fds) {
        report.new_fds = a.difference(b).map(|&f| census::fd_info(f)).collect();
    }
}

/// Name and state of each thread. A thread names itself once it first runs: until then it shows
/// the name of the thread that spawned it (Linux) or none (macOS, Windows), so on a loaded machine
/// a thread not yet scheduled is read again for up to 100 ms.
fn named_threads(tids: &[u32]) -> Vec<crate::counting::census::ThreadInfo> {
    let own = census::thread_info(census::current_thread_id()).name;
    let unnamed = |t: &crate::counting::census::ThreadInfo| t.name.is_empty() || t.name == own;
    let mut infos: Vec<_> = tids.iter().map(|&t| census::thread_info(t)).collect();
    let mut wait = crate::backoff::Backoff::new(Duration::from_millis(100));
    while infos.iter().any(unnamed) && wait.pause() {
        infos = tids.iter().map(|&t| census::thread_info(t)).collect();
    }
    infos
}

/// Why each unmeasured dimension was not measured.
fn note_unmeasured(report: &mut Report, before: &Resources) {
    if report.peak_bytes.is_none() {
        let why = peak_reason(report.heap_source);
        report.not_measured.push((Dimension::Peak, why));
    }
    let platform = "not counted on this OS (no_leak counts them on Linux, macOS and Windows)";
    if report.scope == Scope::CallingThread {
        // What this build can never measure says so, not "isolate the test", which would not
        // help.
        let never = |dim| match dim {
            Dimension::Threads | Dimension::Fds if !crate::counting::census::COUNTED_HERE => {
                Some(platform)
            }
            Dimension::Mapped => crate::counting::mapped::never_measured_reason(),
            _ => None,
        };
        for dim in [
            Dimension::Threads,
            Dimension::Fds,
            Dimension::Tasks,
            Dimension::Mapped,
        ] {
            let why = never(dim).unwrap_or(SHARED_PROCESS);
            report.not_measured.push((dim, why.into()));
        }
        return;
    }
    if before.threads.is_none() {
        report
            .not_measured
            .push((Dimension::Threads, platform.into()));
    }
    if before.fds.is_none() {
        report.not_measured.push((Dimension::Fds, platform.into()));
    }
    if before.tasks.is_none() {
        let why = crate::counting::tasks::not_watched_reason();
        report.not_measured.push((Dimension::Tasks, why.into()));
    }
    if before.mapped.is_none() {
        let why = crate::counting::mapped::not_measured_reason();
        report.not_measured.push((Dimension::Mapped, why.into()));
    }
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
pub(crate) fn diagnose<R>(report: &mut Report, meter: &Meter, body: &mut impl FnMut() -> R) {
    use crate::counting::capture::{Capture, Who};
    let who = match (meter.scope, meter.exclude_main) {
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
    crate::diagnosis::sites::symbols_used(&report.name);
    // Who holds each heap site's memory is found by a run in a fresh process, which only
    // isolation can start (for a `#[no_leak]` test): record that it is wanted, and after how many
    // runs.
    if report.exceeds(Dimension::Heap) && !report.sites.is_empty() {
        report.holders_wanted = Some(report.runs_before_diagnosis());
    }
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

fn peak_reason(source: HeapSource) -> String {
    match source {
        HeapSource::StatsAlloc => "stats_alloc keeps no high-water mark".into(),
        _ => "not available here".into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Dimension, Measure};

    /// Which measures grew is decided once, over the first window, and the report keeps the
    /// decision: here bytes grew beyond their bound and blocks did not, once, in the first
    /// measured run; confirmation then finds it one-time growth.
    #[test]
    fn the_report_keeps_which_measures_grew() {
        let mut kept: Vec<Box<[u8; 16]>> = Vec::with_capacity(4);
        let mut n = 0;
        let r = Config::new().max_blocks(1).measure(|| {
            n += 1;
            if n == 4 {
                kept.push(Box::new([0; 16]));
            }
        });
        assert!(r.over_bound[Measure::Bytes], "{r}");
        assert!(!r.over_bound[Measure::Blocks], "within max_blocks: {r}");
        assert_eq!(r.net(Measure::Bytes), Some(16), "{r}");
        assert_eq!(r.exceeded, [], "{r}");
        let once = r.one_time.as_ref().expect("one-time growth");
        assert_eq!(
            (once.dimensions.as_slice(), once.run),
            (&[Dimension::Heap][..], 1)
        );
    }

    /// A check that shares its process (a lib test under `cargo test`) says "isolate the test"
    /// for what isolation would measure, and what no scope can measure in this build says why
    /// instead. (Under nextest the check has the process to itself: what it measures has no
    /// reason, and what this build cannot measure still says why.)
    #[test]
    fn the_reason_a_dimension_is_not_measured_is_one_that_helps() {
        let r = Config::new().max_mapped_bytes(1).measure(|| ());
        let mapped = r.not_measured_reason(Dimension::Mapped);
        match crate::counting::mapped::never_measured_reason() {
            Some(why) => assert_eq!(mapped, Some(why)),
            None => {
                if let Some(m) = mapped {
                    assert!(m.contains("isolate the test"), "{m}");
                }
            }
        }
        if cfg!(not(feature = "ffi")) {
            assert!(mapped.unwrap().contains("feature `ffi`"), "{mapped:?}");
        }
        if let (true, Some(fds)) = (
            crate::counting::census::COUNTED_HERE,
            r.not_measured_reason(Dimension::Fds),
        ) {
            assert!(fds.contains("isolate the test"), "{fds}");
        }
    }
}
