//! The sampling: one sample taken and checked, and the thread that takes one every `interval`.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::builder::{Callback, Settings};
use super::rules::{Alerts, State};
use super::Sample;
use crate::counting::stats::stats;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) struct Shared {
    pub(super) settings: Settings,
    pub(super) start: Instant,
    pub(super) start_wall: SystemTime,
    pub(super) state: Mutex<State>,
    pub(super) control: Mutex<Control>,
    /// Wakes the sampler to stop, and the starter once the first sample is taken.
    pub(super) wake: Condvar,
    pub(super) on_alert: Mutex<Callback>,
}

pub(super) struct Control {
    pub(super) stop: bool,
    pub(super) ready: bool,
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Takes and checks one sample (at `at`, or now), then passes its alerts to the callback,
    /// outside the state lock. Allocates nothing.
    pub(super) fn sample(&self, at: Option<Duration>) -> Alerts {
        let alerts = {
            let mut st = self.state();
            let stats = stats();
            let elapsed = match at {
                Some(t) => {
                    assert!(
                        t >= st.last_elapsed,
                        "Monitor::sample_at({t:?}) is before the previous sample ({:?})",
                        st.last_elapsed
                    );
                    t
                }
                // Monotonic even when manual and real-time samples mix.
                None => self.start.elapsed().max(st.last_elapsed),
            };
            let at = self.start_wall + elapsed;
            st.record(Sample { elapsed, stats }, &self.settings, at)
        };
        if !alerts.is_empty() {
            let mut callback = lock(&self.on_alert);
            for &alert in alerts.iter() {
                callback(alert);
            }
        }
        alerts
    }
}

/// Sets `ready` when dropped, so that `start` never waits for a sampler that died early.
struct Ready<'a>(&'a Shared);

impl Drop for Ready<'_> {
    fn drop(&mut self) {
        lock(&self.0.control).ready = true;
        self.0.wake.notify_all();
    }
}

/// The sampling thread: a sample at once (the baseline), then one every `interval` on a fixed
/// schedule (no drift; after a stall it resumes from now rather than catching up in a burst),
/// until asked to stop.
pub(super) fn sampler(shared: Arc<Shared>) {
    let interval = shared.settings.interval;
    let mut next = Instant::now();
    {
        let _ready = Ready(&shared);
        shared.sample(None);
    }
    loop {
        next += interval;
        let mut ctl = lock(&shared.control);
        loop {
            if ctl.stop {
                return;
            }
            let now = Instant::now();
            if now >= next {
                break;
            }
            ctl = shared
                .wake
                .wait_timeout(ctl, next - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(ctl);
        let now = Instant::now();
        if now >= next + interval {
            next = now;
        }
        shared.sample(None);
    }
}
