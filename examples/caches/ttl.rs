//! A cache whose entries expire, purged by a background cleanup thread.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

type Entries = Mutex<HashMap<u64, (Instant, Vec<u8>)>>;

/// A TTL cache. Its cleanup thread wakes every `sweep` to drop expired entries, and stops when the
/// cache is dropped, unless the cache was built with [`TtlCache::broken_never_stops`].
pub struct TtlCache {
    ttl: Duration,
    entries: Arc<Entries>,
    /// Closing this channel stops the cleanup thread.
    stop: Option<mpsc::Sender<()>>,
    cleanup: Option<JoinHandle<()>>,
    stoppable: bool,
}

fn purge(entries: &Entries, ttl: Duration) {
    let now = Instant::now();
    entries
        .lock()
        .unwrap()
        .retain(|_, (at, _)| now.duration_since(*at) < ttl);
}

impl TtlCache {
    /// A cache whose cleanup thread stops on drop.
    pub fn new(ttl: Duration, sweep: Duration) -> Self {
        Self::build(ttl, sweep, true)
    }

    /// Broken: the cleanup thread loops forever and keeps the entries alive after the cache drops.
    pub fn broken_never_stops(ttl: Duration, sweep: Duration) -> Self {
        Self::build(ttl, sweep, false)
    }

    fn build(ttl: Duration, sweep: Duration, stoppable: bool) -> Self {
        let entries: Arc<Entries> = Arc::new(Mutex::new(HashMap::new()));
        let shared = entries.clone();
        let (stop, stopped) = mpsc::channel::<()>();
        let worker = move || {
            if stoppable {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(sweep) {
                    purge(&shared, ttl);
                }
            } else {
                // The stop channel is ignored: nothing ends this loop.
                let _ignored = stopped;
                loop {
                    thread::sleep(sweep);
                    purge(&shared, ttl);
                }
            }
        };
        let cleanup = thread::Builder::new()
            .name("ttl-cleanup".into())
            .spawn(worker)
            .unwrap();
        TtlCache {
            ttl,
            entries,
            stop: Some(stop),
            cleanup: Some(cleanup),
            stoppable,
        }
    }

    /// Inserts or replaces `key`.
    pub fn put(&self, key: u64, value: Vec<u8>) {
        self.entries
            .lock()
            .unwrap()
            .insert(key, (Instant::now(), value));
    }

    /// A copy of the value under `key`, if present and not expired.
    pub fn get(&self, key: u64) -> Option<Vec<u8>> {
        let g = self.entries.lock().unwrap();
        g.get(&key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// Number of entries, expired ones not yet purged included.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for TtlCache {
    fn drop(&mut self) {
        // Closing the channel stops a stoppable worker at its next wake-up; then join it. The
        // broken worker ignores the channel, so its handle is dropped and the thread lives on.
        drop(self.stop.take());
        if let Some(h) = self.cleanup.take() {
            if self.stoppable {
                let _ = h.join();
            }
        }
    }
}
