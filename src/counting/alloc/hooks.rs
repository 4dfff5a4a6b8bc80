//! The hook byte and its bits (peak, capture, cross-thread), and turning them on and off. What a
//! hook does when its bit is on is `count`'s cold path.

use std::sync::atomic::{AtomicU8, Ordering::*};

use super::slots::Slot;

/// Optional hooks, off by default, as bits: while one is on, allocations and frees take a cold
/// path besides counting. The hot path pays one relaxed load of this read-mostly byte.
///
/// Peak bits: every allocation also updates `peak`'s `LIVE` and `PEAK`, an exact process-wide
/// high-water mark (a contended atomic, paid only while a quiet process measures peak). Capture
/// bits: every allocation records its stack (see `sites`), only during a diagnostic run after a
/// leak was found.
/// `*_ALL` covers every thread; `*_NOT_MAIN` leaves out the main thread (libtest's harness);
/// `CAPTURE_THREAD` only the threads that asked for it.
///
/// On a line of its own (128 bytes, as a slot: the adjacent-line prefetcher pairs lines), so
/// that no write to a neighbouring static (the peak counters, the cross-thread filter) makes every
/// thread's next allocation miss on it.
pub(super) static HOOKS: HookByte = HookByte(AtomicU8::new(0));

/// The hook byte, alone on its line.
#[repr(C, align(128))]
pub(super) struct HookByte(pub(super) AtomicU8);

pub(super) const PEAK_ALL: u8 = 1;
pub(super) const PEAK_NOT_MAIN: u8 = 2;
pub(super) const PEAK_BITS: u8 = PEAK_ALL | PEAK_NOT_MAIN;
pub(crate) const CAPTURE_ALL: u8 = 4;
pub(crate) const CAPTURE_NOT_MAIN: u8 = 8;
pub(crate) const CAPTURE_THREAD: u8 = 16;
pub(super) const CAPTURE_BITS: u8 = CAPTURE_ALL | CAPTURE_NOT_MAIN | CAPTURE_THREAD;
/// Some thread measures its own peak ([`ThreadPeak`](super::ThreadPeak)): slots with `peak_on`
/// track it.
pub(super) const PEAK_THREADS: u8 = 32;
/// Some thread has a cross-thread window open (see `remote`): slots with `window` remember their
/// allocations, and every free looks for a remembered block.
pub(super) const REMOTE: u8 = 64;

/// Whether a hook whose bits in `hooks` are `all`/`not_main` covers this thread.
#[inline]
pub(super) fn covers(hooks: u8, all: u8, not_main: u8, slot: Option<&Slot>) -> bool {
    hooks & all != 0 || (hooks & not_main != 0 && !slot.is_some_and(|s| s.is_main.load(Relaxed)))
}

/// Turns capture hooks on (one of the `CAPTURE_*` bits).
pub(crate) fn capture_on(bit: u8) {
    HOOKS.0.fetch_or(bit, SeqCst);
}

/// Turns every capture hook off.
pub(crate) fn capture_off() {
    HOOKS.0.fetch_and(!CAPTURE_BITS, SeqCst);
}

/// Turns the cross-thread hook on or off (by `remote`, under its lock, as windows come and go).
pub(crate) fn remote_hook(on: bool) {
    if on {
        HOOKS.0.fetch_or(REMOTE, SeqCst);
    } else {
        HOOKS.0.fetch_and(!REMOTE, SeqCst);
    }
}
