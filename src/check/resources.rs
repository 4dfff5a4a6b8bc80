//! Threads, fds, async tasks and mapped bytes at one moment: the whole sets (for the report's lists of new
//! threads and fds), or allocation-free counts (read inside a window, between heap readings).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::check::measure::{Measure, PerMeasure};
use crate::counting::heap::Heap;
use crate::counting::{census, mapped, tasks};

/// The live threads, open fds and alive tasks at one moment. Taking it allocates: never inside
/// a window whose heap is being read, unless it is dropped before the next heap reading.
pub(crate) struct Resources {
    pub(crate) threads: Option<BTreeSet<u32>>,
    pub(crate) fds: Option<BTreeSet<i32>>,
    pub(crate) tasks: Option<i64>,
    pub(crate) mapped: Option<i64>,
}

/// Every measure as a number, read without allocating; `None` where not read. [`Counts::read`]
/// reads threads, fds, tasks and mapped bytes, all process-wide (none is read on a shared test
/// thread); the heap's two come from a `Meter` reading, added with [`Counts::with_heap`].
pub(crate) type Counts = PerMeasure<Option<i64>>;

impl Counts {
    /// Reads the counts, or nothing when `on` is false (a shared process).
    pub(crate) fn read(on: bool) -> Counts {
        let mut c = Counts::splat(None);
        if !on {
            return c;
        }
        c[Measure::Threads] = census::thread_count().map(|n| n as i64);
        c[Measure::Fds] = census::fd_count().map(|n| n as i64);
        c[Measure::Tasks] = tasks::alive_tasks();
        c[Measure::Mapped] = mapped::live_mapped_bytes();
        c
    }

    /// These counts with a heap reading's bytes and blocks.
    pub(crate) fn with_heap(mut self, heap: Heap) -> Counts {
        self[Measure::Bytes] = Some(heap.bytes);
        self[Measure::Blocks] = Some(heap.blocks);
        self
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

    /// The census as numbers (no heap).
    pub(crate) fn counts(&self) -> Counts {
        let mut c = Counts::splat(None);
        c[Measure::Threads] = self.threads.as_ref().map(|s| s.len() as i64);
        c[Measure::Fds] = self.fds.as_ref().map(|s| s.len() as i64);
        c[Measure::Tasks] = self.tasks;
        c[Measure::Mapped] = self.mapped;
        c
    }
}
