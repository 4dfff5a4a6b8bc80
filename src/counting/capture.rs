//! Capture: the stack of every allocation made during a diagnostic run (or a heap profile), kept
//! in a table keyed by address; every free removes its entry.
//!
//! Capturing a stack on every allocation is slow (dhat-rs pays ~100x), so it never happens on the
//! passing path. The allocator calls [`on_alloc`] and [`on_free`] only while a [`Capture`] session
//! has turned its hook bits on.
//!
//! The traps of in-allocator capture, and how they are avoided:
//! - Re-entrancy: capturing a stack and inserting into the table may allocate. A thread-local
//!   flag, reset by an RAII guard, makes those nested allocations count but not capture.
//! - Lock order: the table's lock is never held while the unwinder (`backtrace::trace`, which
//!   takes the backtrace crate's lock) runs, and symbolisation happens only after capture is off
//!   (or inside [`without_capture`]), so no thread can hold one lock while waiting for the other
//!   (dhat-rs issue #38).
//! - One session at a time: sessions are serialised; a session nested in another on the same
//!   thread (a check inside a diagnostic run) is refused rather than deadlock.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::counting::alloc;

/// Frames kept per stack; the innermost ones (the allocator's) are folded away later.
const MAX_FRAMES: usize = 40;

#[derive(Clone, Copy)]
pub(crate) struct Stack {
    len: usize,
    ips: [usize; MAX_FRAMES],
}

impl Stack {
    pub(crate) fn ips(&self) -> &[usize] {
        &self.ips[..self.len]
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Block {
    pub(crate) size: usize,
    pub(crate) stack: Stack,
    /// The block's address.
    pub(crate) addr: usize,
    /// Capture order: blocks allocated later have higher numbers (see [`next_seq`]).
    pub(crate) seq: u64,
    /// Allocated through the C heap's `malloc` family (feature `ffi`), not the Rust allocator.
    pub(crate) c_heap: bool,
}

/// The capture order number the next captured block gets.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

/// The capture order number the next captured block will get: blocks with `seq >=` this value
/// were allocated after the call.
pub(crate) fn next_seq() -> u64 {
    NEXT_SEQ.load(Ordering::SeqCst)
}

/// Live captured blocks by address. `None` while no session runs.
static TABLE: Mutex<Option<HashMap<usize, Block>>> = Mutex::new(None);
/// Held for the whole of a capture session.
static SESSION: Mutex<()> = Mutex::new(());

thread_local! {
    /// Set while this thread is inside `on_alloc`/`on_free`: what it allocates there is not captured.
    static BUSY: Cell<bool> = const { Cell::new(false) };
    /// Set while this thread runs a calling-thread session (`CAPTURE_THREAD`).
    static WANTS: Cell<bool> = const { Cell::new(false) };
    /// Set while this thread holds `SESSION`.
    static IN_SESSION: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn thread_wants_capture() -> bool {
    WANTS.try_with(Cell::get).unwrap_or(false)
}

/// The re-entrancy guard: at most one per thread; dropping it clears the flag even on unwind.
struct Reentry;

impl Reentry {
    fn enter() -> Option<Reentry> {
        // `then`, not `then_some`: an eager `Reentry` would be dropped when the flag was
        // already set, and its `Drop` would clear the flag under the outer guard.
        BUSY.try_with(|b| (!b.replace(true)).then(|| Reentry))
            .ok()
            .flatten()
    }
}

impl Drop for Reentry {
    fn drop(&mut self) {
        let _ = BUSY.try_with(|b| b.set(false));
    }
}

/// Called by the allocator for a captured allocation (`c_heap`: by the C heap's interposers).
pub(crate) fn on_alloc(ptr: usize, size: usize, c_heap: bool) {
    let Some(_guard) = Reentry::enter() else {
        return;
    };
    let mut stack = Stack {
        len: 0,
        ips: [0; MAX_FRAMES],
    };
    // Unwind first, without the table's lock held (see the module docs on lock order).
    backtrace::trace(|frame| {
        let ip = frame.ip() as usize;
        if ip == 0 {
            return false;
        }
        stack.ips[stack.len] = ip;
        stack.len += 1;
        stack.len < MAX_FRAMES
    });
    if let Ok(mut table) = TABLE.lock() {
        if let Some(map) = table.as_mut() {
            let seq = NEXT_SEQ.fetch_add(1, Ordering::SeqCst);
            map.insert(
                ptr,
                Block {
                    size,
                    stack,
                    addr: ptr,
                    seq,
                    c_heap,
                },
            );
        }
    }
}

/// Called by the allocator for every free while a session runs.
pub(crate) fn on_free(ptr: usize) {
    let Some(_guard) = Reentry::enter() else {
        return;
    };
    if let Ok(mut table) = TABLE.lock() {
        if let Some(map) = table.as_mut() {
            map.remove(&ptr);
        }
    }
}

/// Which threads a session captures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    /// Every thread.
    All,
    /// Every thread but the main one (libtest's harness).
    NotMain,
    /// Only the thread that starts the session.
    CallingThread,
}

/// A capture session. Dropping it ends capture.
pub(crate) struct Capture {
    _session: std::sync::MutexGuard<'static, ()>,
    who: Who,
}

impl Capture {
    /// Starts capturing, waiting up to `patience` for another thread's session (a diagnostic run
    /// of a parallel test, or a heap profiler) to end. `None` if this thread runs a session
    /// already, or if the other one outlasts `patience`.
    pub(crate) fn start_within(who: Who, patience: std::time::Duration) -> Option<Capture> {
        let mut wait = crate::backoff::Backoff::new(patience);
        loop {
            if IN_SESSION.with(Cell::get) {
                return None;
            }
            if let Some(c) = Capture::try_start(who) {
                return Some(c);
            }
            if !wait.pause() {
                return None;
            }
        }
    }

    /// Starts capturing, or returns `None` at once if any thread already runs a session.
    pub(crate) fn try_start(who: Who) -> Option<Capture> {
        if IN_SESSION.with(Cell::get) {
            return None;
        }
        let session = match SESSION.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(Capture::begin(session, who))
    }

    fn begin(session: std::sync::MutexGuard<'static, ()>, who: Who) -> Capture {
        IN_SESSION.with(|s| s.set(true));
        // Allocate the table before capture is on.
        *TABLE.lock().unwrap_or_else(|e| e.into_inner()) = Some(HashMap::with_capacity(4096));
        let bit = match who {
            Who::All => alloc::CAPTURE_ALL,
            Who::NotMain => alloc::CAPTURE_NOT_MAIN,
            Who::CallingThread => {
                WANTS.with(|w| w.set(true));
                alloc::CAPTURE_THREAD
            }
        };
        alloc::capture_on(bit);
        Capture {
            _session: session,
            who,
        }
    }

    /// The captured blocks still live, without ending the session (for heap profiles).
    pub(crate) fn live(&self) -> Vec<Block> {
        let _guard = Reentry::enter();
        let table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        table
            .as_ref()
            .map(|m| m.values().copied().collect())
            .unwrap_or_default()
    }

    /// Runs `f` on the table of live captured blocks, with the table's lock held: while `f` runs,
    /// no thread can record an allocation or a free (they wait), so the set of blocks cannot
    /// change under `f`. What `f` allocates is counted but not captured. `f` must not take the
    /// backtrace crate's lock (a capturing thread may hold it while it waits for the table).
    pub(crate) fn with_table<R>(&self, f: impl FnOnce(&HashMap<usize, Block>) -> R) -> R {
        let _guard = Reentry::enter();
        let table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let empty = HashMap::new();
        f(table.as_ref().unwrap_or(&empty))
    }

    /// Ends capture and returns the captured blocks still live.
    pub(crate) fn finish(self) -> Vec<Block> {
        alloc::capture_off();
        let map = TABLE.lock().unwrap_or_else(|e| e.into_inner()).take();
        map.map(|m| m.into_values().collect()).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        alloc::capture_off();
        if let Ok(mut t) = TABLE.lock() {
            t.take();
        }
        if self.who == Who::CallingThread {
            WANTS.with(|w| w.set(false));
        }
        IN_SESSION.with(|s| s.set(false));
    }
}

/// Runs `f` with allocation capture off for this thread: what it allocates is counted but not
/// captured, and it may take the backtrace crate's lock while other threads capture (they wait
/// for it, and it never waits for the table's lock).
pub(crate) fn without_capture<R>(f: impl FnOnce() -> R) -> R {
    let _guard = Reentry::enter();
    f()
}
