//! [`stats`]: a snapshot of the running process, and [`track_peak`], the opt-in process-wide
//! high-water mark.
//!
//! Taking a snapshot allocates nothing on the Rust heap: the heap counts are read from the counting
//! allocator's slots, and threads and fds are counted with `opendir`/`readdir`/`openat`/`read` on
//! `/proc` into buffers on the stack. So a snapshot never perturbs the heap it measures, and
//! [`Monitor`](crate::monitor::Monitor) can sample as often as it likes.

use std::sync::{Mutex, MutexGuard};

use crate::counting::alloc::{self, PeakWindow, Totals};
use crate::counting::heap::{self, HeapSource};

/// A snapshot of the current process, from [`stats`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Which counter the heap numbers come from. With [`HeapSource::Missing`] (no counting
    /// allocator installed) every heap field is 0 and means nothing.
    pub heap_source: HeapSource,
    /// Live heap bytes of the whole process: allocated minus freed, every thread included (in a
    /// test binary that includes libtest's harness thread, which allocates a little as each test
    /// starts).
    pub live_bytes: i64,
    /// Live heap blocks of the whole process.
    pub live_blocks: i64,
    /// Everything allocated and freed since the process started (a `realloc` counts as a free
    /// plus an allocation; under the `stats_alloc` source, as stats_alloc counts it).
    pub totals: Totals,
    /// The highest `live_bytes` since process-wide peak tracking was turned on with
    /// [`track_peak`], or `None` when it is not on.
    pub peak_bytes: Option<i64>,
    /// Live OS threads (threads already exiting are not counted); `None` on an OS other than
    /// Linux, macOS and Windows.
    pub threads: Option<i64>,
    /// Open file descriptors (open handles on Windows); `None` on an OS other than Linux, macOS
    /// and Windows.
    pub fds: Option<i64>,
    /// Live bytes of anonymous `mmap` made outside the allocator (whole pages), with the cargo
    /// feature `ffi` on Linux with glibc (x86-64, aarch64); `None` elsewhere.
    pub mapped_bytes: Option<i64>,
}

/// A snapshot of the current process: live heap bytes and blocks, allocation totals, the peak (with
/// [`track_peak`] on), live threads and open fds.
///
/// Cheap (a sum over the allocator's per-thread slots and the OS's thread and descriptor counts:
/// two `/proc` directory reads on Linux) and allocation-free. Heap numbers are exact when no other
/// thread allocates while they are read; otherwise they are off by at most what other threads
/// allocate or free during those few microseconds.
///
/// ```
/// let s = no_leak::stats();
/// assert!(s.live_bytes > 0);
/// assert!(s.totals.alloc_blocks as i64 >= s.live_blocks);
/// # #[cfg(any(target_os = "linux", target_os = "macos", windows))]
/// assert!(s.threads.unwrap() >= 1);
/// ```
pub fn stats() -> Stats {
    let heap_source = heap::heap_source();
    let totals = match heap_source {
        HeapSource::NoLeak => alloc::process_totals(false),
        #[cfg(feature = "stats_alloc")]
        HeapSource::StatsAlloc => {
            let s = stats_alloc::INSTRUMENTED_SYSTEM.stats();
            Totals {
                alloc_bytes: s.bytes_allocated as u64,
                alloc_blocks: s.allocations as u64,
                free_bytes: s.bytes_deallocated as u64,
                free_blocks: s.deallocations as u64,
            }
        }
        _ => Totals::default(),
    };
    let live_bytes = totals.live_bytes().max(0);
    let live_blocks = totals.live_blocks().max(0);
    let peak_bytes = (heap_source == HeapSource::NoLeak)
        .then(|| peak_state().peak())
        .flatten()
        // The current value is a lower bound of any high-water mark.
        .map(|p| p.max(live_bytes));
    Stats {
        heap_source,
        live_bytes,
        live_blocks,
        totals,
        peak_bytes,
        threads: crate::counting::census::thread_count().map(|n| n as i64),
        fds: crate::counting::census::fd_count().map(|n| n as i64),
        mapped_bytes: crate::counting::mapped::live_mapped_bytes().map(|n| n.max(0)),
    }
}

/// Turns process-wide peak tracking on until the returned guard is dropped: while it is on,
/// [`stats`] reports `peak_bytes`, the highest live heap since tracking started, and
/// [`Monitor`](crate::monitor::Monitor) samples include it.
///
/// **Cost.** Without tracking the allocator touches only the calling thread's own counters. While
/// tracking is on, every allocation and free of every thread also updates one shared atomic
/// counter (and a `fetch_max`), which contended threads pay for in cache-line traffic: a few
/// nanoseconds per allocation single-threaded, more under many allocating threads. Turn it on for
/// the stretch you want the peak of, not for a whole production run.
///
/// Guards nest: tracking stays on while any guard lives, and the peak is measured from when the
/// first of them started it. The allocator's process-wide peak counters are shared with leak
/// checks, which hold them while a whole-process check (`#[no_leak]`, or a closure check in a
/// quiet process) runs: inside such a check tracking cannot start ([`PeakTracking::is_active`] is
/// false and `peak_bytes` stays `None`; it starts on a later call once the check is over), and a
/// check that starts while tracking is on measures the calling thread's peak instead. Only
/// no_leak's own allocator tracks a peak; under other heap sources tracking is never active.
///
/// ```
/// let guard = no_leak::monitor::track_peak();
/// let before = no_leak::stats();
/// drop(std::hint::black_box(vec![0u8; 1 << 20]));
/// let after = no_leak::stats();
/// if guard.is_active() {
///     assert!(after.peak_bytes.unwrap() >= before.live_bytes + (1 << 20));
/// }
/// ```
#[must_use = "peak tracking stops when the guard is dropped"]
pub fn track_peak() -> PeakTracking {
    let mut st = peak_state();
    st.users += 1;
    st.try_start();
    PeakTracking { _private: () }
}

/// Keeps process-wide peak tracking on while it lives; from [`track_peak`].
#[derive(Debug)]
pub struct PeakTracking {
    _private: (),
}

impl PeakTracking {
    /// Whether the peak is being tracked (starting it now if it could not start before): false
    /// while a whole-process leak check holds the allocator's peak counters, or when no_leak's
    /// allocator is not the heap source.
    pub fn is_active(&self) -> bool {
        let mut st = peak_state();
        st.try_start();
        st.window.is_some()
    }
}

impl Drop for PeakTracking {
    fn drop(&mut self) {
        let mut st = peak_state();
        st.users -= 1;
        if st.users == 0 {
            // Dropping the window turns the allocator's peak hook off.
            st.window = None;
        }
    }
}

/// Who tracks the process-wide peak, and how to turn the allocator's relative counters into an
/// absolute high-water mark.
struct PeakState {
    /// Live [`PeakTracking`] guards.
    users: usize,
    /// The allocator's peak window, while this module owns it.
    window: Option<PeakWindow>,
    /// Live bytes of the process minus the allocator's `LIVE` counter, at the start: the
    /// allocator's counters are only updated while a window is on, so they are relative.
    offset: i64,
}

static PEAK_STATE: Mutex<PeakState> = Mutex::new(PeakState {
    users: 0,
    window: None,
    offset: 0,
});

fn peak_state() -> MutexGuard<'static, PeakState> {
    PEAK_STATE.lock().unwrap_or_else(|e| e.into_inner())
}

impl PeakState {
    /// Starts the window if someone wants it and it is not running yet (a leak check measuring
    /// peak may hold the counters; then this is retried on the next call).
    fn try_start(&mut self) {
        if self.users == 0 || self.window.is_some() || heap::heap_source() != HeapSource::NoLeak {
            return;
        }
        let window = PeakWindow::start(false);
        if !window.owns() {
            return;
        }
        // From now on every allocation moves LIVE and the slots together, so their difference is
        // fixed (up to allocations racing with these two reads).
        let live_counter = window.reset();
        let live_bytes = alloc::process_totals(false).live_bytes();
        self.offset = live_bytes - live_counter;
        self.window = Some(window);
    }

    fn peak(&self) -> Option<i64> {
        let w = self.window.as_ref()?;
        Some((self.offset + w.peak()).max(0))
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "macos", windows)))]
mod tests {
    use super::*;

    #[test]
    fn taking_a_snapshot_allocates_nothing_on_this_thread() {
        let _ = stats();
        let before = alloc::thread_totals().expect("the test thread owns a slot");
        for _ in 0..20 {
            std::hint::black_box(stats());
        }
        let after = alloc::thread_totals().unwrap();
        assert_eq!(after.alloc_blocks, before.alloc_blocks);
        assert_eq!(after.free_blocks, before.free_blocks);
    }

    #[test]
    fn counts_agree_with_the_census() {
        // Other tests start and stop threads and open files meanwhile: compare until a quiet
        // moment (the census unchanged around the snapshot) shows agreement.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let a = census::thread_ids().map(|t| t.len() as i64);
            let f = census::fds().map(|t| t.len() as i64);
            let s = stats();
            let b = census::thread_ids().map(|t| t.len() as i64);
            let g = census::fds().map(|t| t.len() as i64);
            if a == b && f == g && (s.threads, s.fds) == (a, f) {
                break;
            }
            // A systematic difference never agrees.
            assert!(
                std::time::Instant::now() < deadline,
                "census {a:?} threads, {f:?} fds; snapshot {:?} threads, {:?} fds",
                s.threads,
                s.fds
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    use crate::counting::census;
}
