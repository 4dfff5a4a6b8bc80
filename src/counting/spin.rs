//! The spin lock of the counting layer: the cross-thread table (`remote`) and the interposed
//! `mmap` family's table of ranges (`mapped`) both sit behind one.
//!
//! What it must satisfy, everywhere it is taken:
//! - **Nothing allocates**, on any platform: it is taken inside the global allocator and inside
//!   `mmap`. The lock is one atomic word; waiters spin, then yield to the scheduler.
//! - **Before `main`, in threads C created, in exiting threads**: no thread-local, no lazy std
//!   state; [`SpinLock::new`] is `const`, so the lock can be a `static`.
//! - **Fork children**: the word holds a token of the process whose thread holds the lock (its
//!   pid on Unix). A waiter that finds another process's token knows the holder is a thread of
//!   its parent that does not exist in this child (a fork copies only the forking thread), and
//!   takes the lock over. The value is then as that thread left it, possibly mid-update: what
//!   was being recorded at the fork may be lost or half done, so the child's count may be off by
//!   it (where a lock left held would have hung the child at its next map or window).
//!
//! The pid is cached, so that an uncontended lock costs one compare-and-swap and no system call
//! (`getpid` is one on glibc 2.25 and later, 250 ns where this was written, and `remote` locks on
//! every allocation of a window thread). A `pthread_atfork` child handler clears the cache, so a
//! child of `fork` learns its own pid again before its first lock. A waiter that spins long asks
//! the kernel for the pid itself, so a stale cache (a child handler of another library taking the
//! lock before ours ran) cannot keep it waiting on a dead thread.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering::*};

/// Spins before waiters start yielding to the scheduler.
const SPINS: u32 = 100;

/// A lock of one atomic word, for use inside the allocator and the interposers (see the module
/// doc). The word is 0 when free, else the token of the process whose thread holds it.
pub(crate) struct SpinLock<T> {
    word: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a `SpinGuard`, and the word admits one guard at a time
// per process (a fork child has a copy of the value of its own), so sharing the lock hands the
// value to one thread at a time: `T: Send` is enough.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        SpinLock {
            word: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, waiting while a thread of this process holds it; one of the parent
    /// process's, in a fork child, is taken over.
    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        let me = process::token();
        if self
            .word
            .compare_exchange_weak(0, me, Acquire, Relaxed)
            .is_err()
        {
            self.lock_contended(me);
        }
        SpinGuard { lock: self }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self, mut me: u32) {
        let mut spins = 0u32;
        loop {
            let holder = self.word.load(Relaxed);
            // Free (0), or held by a thread of another process: the parent's, gone in this child.
            if holder != me
                && self
                    .word
                    .compare_exchange_weak(holder, me, Acquire, Relaxed)
                    .is_ok()
            {
                return;
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                // Long: the holder may be descheduled (yield: a system call, no allocation), or
                // this may be a fork child whose cached token is still the parent's.
                std::thread::yield_now();
                me = process::token_from_kernel();
            }
        }
    }

    /// As if a thread of process `token` held the lock (tests: a thread of the parent, at a
    /// fork).
    #[cfg(all(test, unix))]
    pub(crate) fn pretend_held_by(&self, token: u32) {
        self.word.store(token, Release);
    }
}

/// Holds the lock; dropping it unlocks.
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the word, so no other reference to the value exists in this
        // process.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.word.store(0, Release);
    }
}

/// The token of the calling process: its pid, cached.
#[cfg(unix)]
mod process {
    use std::sync::atomic::{AtomicU32, AtomicU8, Ordering::*};

    /// The pid, or 0 while not known (at start, and in a fork child until its first lock).
    pub(super) static PID: AtomicU32 = AtomicU32::new(0);
    /// The child handler: 0 not registered, 1 registering, 2 registered, 3 registration failed
    /// (the pid is then never cached: every lock asks the kernel).
    static ATFORK: AtomicU8 = AtomicU8::new(0);

    #[inline(always)]
    pub(super) fn token() -> u32 {
        match PID.load(Relaxed) {
            0 => learn(),
            pid => pid,
        }
    }

    /// The pid from the kernel (a system call; allocation-free).
    pub(super) fn token_from_kernel() -> u32 {
        // SAFETY: getpid has no preconditions.
        unsafe { libc::getpid() as u32 }
    }

    /// Asks the kernel, and caches the answer once the child handler that clears it is in place.
    /// Registering the handler may allocate (on glibc not for the first 48 handlers); a lock taken
    /// meanwhile, on this thread or another, goes on without caching.
    #[cold]
    #[inline(never)]
    fn learn() -> u32 {
        let pid = token_from_kernel();
        let state = match ATFORK.compare_exchange(0, 1, Acquire, Acquire) {
            Ok(_) => {
                // SAFETY: registers a handler that only stores to an atomic: async-signal-safe,
                // as a child handler must be.
                let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) };
                let state = if rc == 0 { 2 } else { 3 };
                ATFORK.store(state, Release);
                state
            }
            Err(state) => state,
        };
        if state == 2 {
            PID.store(pid, Relaxed);
        }
        pid
    }

    /// Run by `fork` in the child, before `fork` returns there.
    extern "C" fn forget_in_child() {
        PID.store(0, Relaxed);
    }
}

/// No `fork`: one process, one token.
#[cfg(not(unix))]
mod process {
    #[inline(always)]
    pub(super) fn token() -> u32 {
        1
    }

    pub(super) fn token_from_kernel() -> u32 {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_under_contention() {
        static COUNTER: SpinLock<(u64, u64)> = SpinLock::new((0, 0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20_000 {
                        let mut g = COUNTER.lock();
                        // Two fields moved apart and back inside the lock: another holder at the
                        // same time would see them differ.
                        g.0 += 1;
                        assert_eq!(g.0, g.1 + 1, "another thread held the lock too");
                        g.1 += 1;
                    }
                });
            }
        });
        assert_eq!(*COUNTER.lock(), (80_000, 80_000));
    }

    #[test]
    fn a_guard_unlocks_when_dropped() {
        let lock = SpinLock::new(7u32);
        *lock.lock() += 1;
        assert_eq!(*lock.lock(), 8, "taken again: the first guard let go");
    }

    #[test]
    fn the_token_is_the_process_id() {
        #[cfg(unix)]
        // SAFETY: getpid has no preconditions.
        assert_eq!(process::token(), unsafe { libc::getpid() } as u32);
        assert_eq!(process::token(), process::token_from_kernel());
    }

    /// Waits for a child forked by a test; true if it exited with status 0.
    #[cfg(unix)]
    fn child_succeeded(pid: libc::pid_t) -> bool {
        let mut status = 0;
        // SAFETY: waits for the child the caller forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }

    /// In the child of a fork: takes `lock` (ending the child by SIGALRM if it waits 10 s) and
    /// exits with status 0 if the value is `expect`. Calls only what allocates nothing.
    #[cfg(unix)]
    fn child_takes(lock: &SpinLock<u32>, expect: u32) -> ! {
        // SAFETY: alarm has no preconditions; its default action ends this child.
        unsafe { libc::alarm(10) };
        let ok = *lock.lock() == expect;
        // SAFETY: ends the child at once, running nothing of the parent's (no atexit, no
        // destructors), so the forked copy of the test harness never runs.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) }
    }

    /// A thread of the parent holds the lock at the fork: the child takes it over.
    #[cfg(unix)]
    #[test]
    fn a_fork_child_takes_over_a_lock_its_parents_thread_held() {
        use std::sync::Barrier;
        static LOCK: SpinLock<u32> = SpinLock::new(5);
        let (held, forked) = (Barrier::new(2), Barrier::new(2));
        std::thread::scope(|s| {
            s.spawn(|| {
                let _guard = LOCK.lock();
                held.wait();
                forked.wait();
            });
            held.wait();
            // SAFETY: the child calls only what allocates nothing (`child_takes`), then `_exit`.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                child_takes(&LOCK, 5);
            }
            forked.wait();
            assert!(child_succeeded(pid), "the child took the lock over");
        });
        assert_eq!(*LOCK.lock(), 5, "the parent's holder let go");
    }

    /// A token left by another process whose cache this child still has (as before the child
    /// handler ran): the waiter asks the kernel and takes the lock over.
    #[cfg(unix)]
    #[test]
    fn a_fork_child_with_a_stale_token_takes_over() {
        static LOCK: SpinLock<u32> = SpinLock::new(9);
        let parent = process::token();
        // SAFETY: the child calls only what allocates nothing, then `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            process::PID.store(parent, Relaxed);
            LOCK.pretend_held_by(parent);
            child_takes(&LOCK, 9);
        }
        assert!(child_succeeded(pid), "the child took the lock over");
    }
}
