//! Peak tracking: the process-wide high-water mark of a quiet process ([`PeakWindow`]) and a
//! thread's own ([`ThreadPeak`]), fed by the hook paths while their bits are on.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering::*};

use super::hooks::{HOOKS, PEAK_ALL, PEAK_BITS, PEAK_NOT_MAIN, PEAK_THREADS};
use super::slots::{my_slot, Slot};

/// How many [`ThreadPeak`] windows are open.
static THREAD_PEAK_WINDOWS: AtomicU32 = AtomicU32::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

/// The thread-peak hook, for an allocation on `slot`'s owner: called only while some thread
/// measures its own peak.
#[cold]
pub(super) fn track_thread(slot: &Slot) {
    if slot.peak_on.load(Relaxed) {
        let net = slot.own().live_bytes();
        if net > slot.peak_net.load(Relaxed) {
            slot.peak_net.store(net, Relaxed);
        }
    }
}

/// The process-peak hook, for an allocation of `size` bytes on a thread the window covers.
#[inline]
pub(super) fn process_alloc(size: usize) {
    let live = LIVE.fetch_add(size as i64, Relaxed) + size as i64;
    PEAK.fetch_max(live, Relaxed);
}

/// The process-peak hook, for a free of `size` bytes on a thread the window covers.
#[inline]
pub(super) fn process_free(size: usize) {
    LIVE.fetch_sub(size as i64, Relaxed);
}

/// The calling thread measures its own high-water mark while this guard lives.
pub(crate) struct ThreadPeak {
    slot: &'static Slot,
}

impl ThreadPeak {
    /// Starts tracking, or `None` if the thread has no slot (or tracks already: an enclosing
    /// check owns the window).
    pub(crate) fn start() -> Option<ThreadPeak> {
        let slot = my_slot()?;
        if slot.peak_on.load(Relaxed) {
            return None;
        }
        slot.peak_on.store(true, Relaxed);
        THREAD_PEAK_WINDOWS.fetch_add(1, SeqCst);
        HOOKS.0.fetch_or(PEAK_THREADS, SeqCst);
        Some(ThreadPeak { slot })
    }

    /// Begins a run: the high-water mark restarts at the thread's live bytes now, returned.
    pub(crate) fn reset(&self) -> i64 {
        let net = self.slot.own().live_bytes();
        self.slot.peak_net.store(net, Relaxed);
        net
    }

    /// The highest live bytes since the last [`ThreadPeak::reset`].
    pub(crate) fn peak(&self) -> i64 {
        self.slot.peak_net.load(Relaxed)
    }
}

impl Drop for ThreadPeak {
    fn drop(&mut self) {
        self.slot.peak_on.store(false, Relaxed);
        if THREAD_PEAK_WINDOWS.fetch_sub(1, SeqCst) == 1 {
            HOOKS.0.fetch_and(!PEAK_THREADS, SeqCst);
            // A window opened between the decrement and the clear keeps its bit.
            if THREAD_PEAK_WINDOWS.load(SeqCst) > 0 {
                HOOKS.0.fetch_or(PEAK_THREADS, SeqCst);
            }
        }
    }
}

/// Process-wide peak tracking, for isolated measurement. `start` turns it on (if it is not on
/// already) and returns a guard that turns it off again.
pub(crate) struct PeakWindow {
    owner: bool,
}

impl PeakWindow {
    pub(crate) fn start(exclude_main: bool) -> PeakWindow {
        let bit = if exclude_main {
            PEAK_NOT_MAIN
        } else {
            PEAK_ALL
        };
        // Only one window at a time owns the peak counters (a nested check sees no peak).
        let owner = HOOKS
            .0
            .fetch_update(SeqCst, SeqCst, |h| (h & PEAK_BITS == 0).then_some(h | bit))
            .is_ok();
        PeakWindow { owner }
    }

    /// Whether this window measures (an enclosing one may own the counters).
    pub(crate) fn owns(&self) -> bool {
        self.owner
    }

    /// Begins a run: the high-water mark restarts at the current live value, which is returned.
    pub(crate) fn reset(&self) -> i64 {
        let live = LIVE.load(SeqCst);
        PEAK.store(live, SeqCst);
        live
    }

    /// The high-water mark since the last [`PeakWindow::reset`].
    pub(crate) fn peak(&self) -> i64 {
        PEAK.load(SeqCst)
    }
}

impl Drop for PeakWindow {
    fn drop(&mut self) {
        if self.owner {
            HOOKS.0.fetch_and(!PEAK_BITS, SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting::alloc::slots::SLOT_TABLE;

    #[test]
    fn thread_peak_tracks_high_water_mark() {
        let window = ThreadPeak::start().unwrap();
        assert!(ThreadPeak::start().is_none(), "one window per thread");
        let start = window.reset();
        let big = std::hint::black_box(vec![0u8; 4096]);
        drop(big);
        let peak = window.peak();
        assert!(peak - start >= 4096, "peak {} start {}", peak, start);
        drop(window);
        // Closed: allocations no longer move it.
        let before = SLOT_TABLE
            .iter()
            .map(|s| s.peak_net.load(Relaxed))
            .collect::<Vec<_>>();
        drop(std::hint::black_box(vec![0u8; 100_000]));
        let mine = my_slot().unwrap();
        let i = SLOT_TABLE
            .iter()
            .position(|s| std::ptr::eq(s, mine))
            .unwrap();
        assert_eq!(mine.peak_net.load(Relaxed), before[i]);
    }
}
