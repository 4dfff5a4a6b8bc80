//! The calling thread's counting state: which slot it owns, and (cargo feature `ffi`) how deep
//! it is in calls into the allocator that `CountingAlloc` wraps.
//!
//! Both fields start at zero (`UNCLAIMED`, not inside) and live for the whole life of the thread,
//! from before `main` to after its last thread-local destructor: no lazy initialisation and no
//! destructor, so the allocator and the C heap's interposers can read them at any point.
//!
//! Where it is stored:
//! - By default, in a const Rust thread-local.
//! - With the feature `ffi` on x86_64 Linux with glibc, in a thread-local this module defines
//!   itself (`global_asm!`, in `.tbss`) and reaches by the initial-exec model: the thread
//!   pointer plus a link-time offset, two instructions. A Rust thread-local in a library is
//!   reached by the general-dynamic model; the linker turns that into the same two instructions
//!   in an executable, but the compiler has already planned for a call to `__tls_get_addr` and
//!   saved registers around it. On the C heap's hot path, where glibc's own `malloc`/`free` pair
//!   is a few dozen instructions, those saves were a tenth of the cost. The price: a shared
//!   object that contains no_leak with this feature needs static TLS space, as every
//!   initial-exec library does (a test binary is an executable and always has it).

use std::cell::Cell;

pub(crate) struct ThisThread {
    /// Which slot this thread owns, or a sentinel (see `alloc`).
    pub(crate) slot: Cell<usize>,
    /// How deep the thread is in calls into the wrapped allocator (see `inner`). A byte, as the
    /// hook byte, so that the two are tested together.
    #[cfg(feature = "ffi")]
    pub(crate) inside: Cell<u8>,
}

pub(crate) use storage::with;

#[cfg(not(all(
    feature = "ffi",
    target_os = "linux",
    target_env = "gnu",
    target_arch = "x86_64"
)))]
mod storage {
    use super::ThisThread;
    use std::cell::Cell;

    thread_local! {
        static THIS_THREAD: ThisThread = const {
            ThisThread {
                slot: Cell::new(0),
                #[cfg(feature = "ffi")]
                inside: Cell::new(0),
            }
        };
    }

    /// Runs `f` on the calling thread's state.
    #[inline(always)]
    pub(crate) fn with<R>(f: impl FnOnce(&ThisThread) -> R) -> R {
        THIS_THREAD.with(f)
    }
}

#[cfg(all(
    feature = "ffi",
    target_os = "linux",
    target_env = "gnu",
    target_arch = "x86_64"
))]
mod storage {
    use super::ThisThread;

    // 16 zero bytes of thread-local storage, aligned for `ThisThread` (checked below). Hidden:
    // never exported from a shared object, never interposed.
    std::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 3",
        ".globl __no_leak_this_thread",
        ".hidden __no_leak_this_thread",
        ".type __no_leak_this_thread, @object",
        ".size __no_leak_this_thread, 16",
        "__no_leak_this_thread:",
        ".zero 16",
        ".popsection",
    );
    const _: () = assert!(std::mem::size_of::<ThisThread>() <= 16);
    const _: () = assert!(std::mem::align_of::<ThisThread>() <= 8);

    /// Runs `f` on the calling thread's state.
    #[inline(always)]
    pub(crate) fn with<R>(f: impl FnOnce(&ThisThread) -> R) -> R {
        let p: usize;
        // SAFETY: `fs:[0]` is the thread pointer (glibc's TCB points at itself) and the GOT entry
        // holds the symbol's offset from it: their sum is this thread's copy of the symbol, valid
        // for the thread's whole life. The asm reads only those two words, which never change
        // while a thread runs, so it is pure, and `nomem` (no memory Rust can see or change
        // affects it) lets the compiler compute the address once per function, as it does for
        // its own thread-locals.
        unsafe {
            std::arch::asm!(
                "mov {p}, qword ptr [rip + __no_leak_this_thread@GOTTPOFF]",
                "add {p}, qword ptr fs:[0]",
                p = out(reg) p,
                options(pure, nomem, nostack),
            );
        }
        // SAFETY: the bytes are this thread's, zero-initialised by the loader (a valid
        // `ThisThread`: slot 0, depth 0, both `Cell`s), aligned and large enough (the asserts
        // above), and only ever used through `Cell`s on this thread; the borrow ends with `f`.
        f(unsafe { &*(p as *const ThisThread) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> usize {
        with(|t| t as *const ThisThread as usize)
    }

    /// Each thread has its own state, at one address for its whole life, aligned.
    #[test]
    fn the_state_is_per_thread() {
        let here = address();
        assert_eq!(here, address());
        assert_eq!(here % std::mem::align_of::<ThisThread>(), 0);
        let there = std::thread::spawn(address).join().unwrap();
        assert_ne!(here, there);
    }

    /// A new thread starts outside the wrapped allocator, and a depth set on one thread stays on
    /// it (`inside` only turns the C heap's counting off, so raising it here is harmless).
    #[cfg(feature = "ffi")]
    #[test]
    fn the_depth_starts_at_zero_and_stays_on_its_thread() {
        with(|t| t.inside.set(t.inside.get() + 1));
        let theirs = std::thread::spawn(|| with(|t| t.inside.get()))
            .join()
            .unwrap();
        assert_eq!(theirs, 0);
        assert_eq!(with(|t| t.inside.get()), 1);
        with(|t| t.inside.set(t.inside.get() - 1));
    }
}
