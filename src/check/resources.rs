//! Threads, fds, async tasks and mapped bytes at one moment: the whole sets (for the report's lists of new
//! threads and fds), or allocation-free counts (read inside a window, between heap readings).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::counting::{census, mapped, tasks};

/// The live threads, open fds and alive tasks at one moment. Taking it allocates: never inside
/// a window whose heap is being read, unless it is dropped before the next heap reading.
pub(crate) struct Resources {
    pub(crate) threads: Option<BTreeSet<u32>>,
    pub(crate) fds: Option<BTreeSet<i32>>,
    pub(crate) tasks: Option<i64>,
    pub(crate) mapped: Option<i64>,
}

/// Threads, fds, tasks and mapped bytes as numbers, read without allocating. All four are
/// process-wide: none is read on a shared test thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) threads: Option<i64>,
    pub(crate) fds: Option<i64>,
    pub(crate) tasks: Option<i64>,
    pub(crate) mapped: Option<i64>,
}

impl Counts {
    /// Reads the counts, or nothing when `on` is false (a shared process).
    pub(crate) fn read(on: bool) -> Counts {
        if !on {
            return Counts::default();
        }
        Counts {
            threads: census::thread_count().map(|n| n as i64),
            fds: census::fd_count().map(|n| n as i64),
            tasks: tasks::alive_tasks(),
            mapped: mapped::live_mapped_bytes(),
        }
    }

    /// `(self, later)` pairs of threads, fds, tasks and mapped bytes, where both are known.
    pub(crate) fn pairs(&self, later: &Counts) -> [Option<(i64, i64)>; 4] {
        [
            self.threads.zip(later.threads),
            self.fds.zip(later.fds),
            self.tasks.zip(later.tasks),
            self.mapped.zip(later.mapped),
        ]
    }
}

impl Resources {
    /// Takes the census, or an empty one when `on` is false (a shared process).
    pub(crate) fn take(on: bool) -> Resources {
        if !on {
            return Resources {
                threads: None,
                fds: None,
                tasks: None,
                mapped: None,
            };
        }
        Resources {
            threads: census::thread_ids(),
            fds: census::fds(),
            tasks: tasks::alive_tasks(),
            mapped: mapped::live_mapped_bytes(),
        }
    }

    /// Takes the census once an async task that the last warmup run awaited is gone: the runtime
    /// wakes the awaiting side before it drops the task, so two readings must agree.
    pub(crate) fn take_settled(on: bool) -> Resources {
        let mut now = Resources::take(on);
        if now.tasks.is_none() {
            return now;
        }
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(1));
            let again = Resources::take(on);
            let stable = again.tasks == now.tasks;
            now = again;
            if stable {
                break;
            }
        }
        now
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts {
            threads: self.threads.as_ref().map(|s| s.len() as i64),
            fds: self.fds.as_ref().map(|s| s.len() as i64),
            tasks: self.tasks,
            mapped: self.mapped,
        }
    }
}
