//! Reading live heap bytes and blocks: which counter supplies them, and over which scope.

use std::sync::OnceLock;

use crate::counting::alloc;

/// Where a measurement's counts come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The process is quiet (a child process of the test binary running one test, or a nextest
    /// process-per-test, or a program's main thread): every thread's heap counts, and threads and
    /// fds are measured. Under libtest the harness's main thread is left out of the heap count.
    Process,
    /// Other tests share this process: the heap counts only work done on the calling thread, and
    /// threads and fds are not measured.
    CallingThread,
}

/// Which counter supplies heap numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapSource {
    /// no_leak's [`CountingAlloc`](crate::CountingAlloc) is the global allocator.
    NoLeak,
    /// `stats_alloc::INSTRUMENTED_SYSTEM` is the global allocator (cargo feature `stats_alloc`).
    StatsAlloc,
    /// Nothing counts allocations in this process.
    Missing,
}

pub(crate) fn heap_source() -> HeapSource {
    static SOURCE: OnceLock<HeapSource> = OnceLock::new();
    *SOURCE.get_or_init(|| {
        if alloc::probe_installed() {
            return HeapSource::NoLeak;
        }
        #[cfg(feature = "stats_alloc")]
        {
            let before = stats_alloc::INSTRUMENTED_SYSTEM.stats().allocations;
            drop(std::hint::black_box(Box::new(0u64)));
            if stats_alloc::INSTRUMENTED_SYSTEM.stats().allocations > before {
                return HeapSource::StatsAlloc;
            }
        }
        HeapSource::Missing
    })
}

/// Live heap bytes and blocks at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Heap {
    pub(crate) bytes: i64,
    pub(crate) blocks: i64,
}

/// Reads the live heap over one scope from one source.
pub(crate) struct Meter {
    pub(crate) scope: Scope,
    pub(crate) source: HeapSource,
    pub(crate) exclude_main: bool,
}

impl Meter {
    pub(crate) fn heap(&self) -> Heap {
        match (self.source, self.scope) {
            (HeapSource::NoLeak, Scope::Process) => {
                let t = alloc::process_totals(self.exclude_main);
                Heap {
                    bytes: t.live_bytes(),
                    blocks: t.live_blocks(),
                }
            }
            (HeapSource::NoLeak, Scope::CallingThread) => {
                let t = alloc::thread_totals().unwrap_or_default();
                Heap {
                    bytes: t.live_bytes(),
                    blocks: t.live_blocks(),
                }
            }
            #[cfg(feature = "stats_alloc")]
            (HeapSource::StatsAlloc, _) => {
                let s = stats_alloc::INSTRUMENTED_SYSTEM.stats();
                Heap {
                    bytes: s.bytes_allocated.wrapping_sub(s.bytes_deallocated) as i64,
                    blocks: s.allocations.wrapping_sub(s.deallocations) as i64,
                }
            }
            _ => Heap {
                bytes: 0,
                blocks: 0,
            },
        }
    }
}

/// Why the heap cannot be measured here, if it cannot.
pub(crate) fn heap_unmeasurable(source: HeapSource, scope: Scope) -> Option<String> {
    match (source, scope) {
        (HeapSource::Missing, _) => Some(
            "no counting allocator is installed in this process, so the heap cannot be measured \
             (no_leak fails rather than pass on zeros).\n\
             fix: keep no_leak's default feature `global-allocator`, or install one yourself:\n  \
             #[global_allocator]\n  \
             static GLOBAL: no_leak::CountingAlloc<std::alloc::System> = \
             no_leak::CountingAlloc::new(std::alloc::System);\n\
             or, with stats_alloc as your global allocator, enable no_leak's feature `stats_alloc`"
                .into(),
        ),
        (HeapSource::StatsAlloc, Scope::CallingThread) => Some(
            "stats_alloc counts process-wide only, and other tests share this process, so the \
             heap cannot be measured exactly here.\n\
             fix: put #[no_leak::isolated] on the enclosing test, run under `cargo nextest run`, \
             or use no_leak's own allocator (it also counts per thread)"
                .into(),
        ),
        _ => None,
    }
}
