//! Windows through the allocator: frees and reallocs on other threads credit the owner once,
//! nested windows, a window left open at thread exit, a thread's peak with credits.

use std::sync::atomic::Ordering::SeqCst;

use super::{remembered, Window};
use crate::counting::alloc::{thread_counters, thread_totals, ThreadPeak};

/// A helper thread that frees (or grows) whatever the test hands it, synchronised by barriers
/// (which never allocate), so that nothing else moves the counters in between.
struct Helper {
    hand: std::sync::Arc<(std::sync::Barrier, std::sync::atomic::AtomicUsize)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Helper {
    /// `work` gets each pointer handed over, on the helper thread.
    fn new(work: fn(usize)) -> Helper {
        let hand = std::sync::Arc::new((
            std::sync::Barrier::new(2),
            std::sync::atomic::AtomicUsize::new(0),
        ));
        let h = hand.clone();
        let thread = std::thread::spawn(move || loop {
            h.0.wait();
            let p = h.1.load(SeqCst);
            if p == 0 {
                return;
            }
            work(p);
            h.0.wait();
        });
        Helper {
            hand,
            thread: Some(thread),
        }
    }

    /// Hands `p` over and waits until the helper is done with it.
    fn run(&self, p: usize) {
        self.hand.1.store(p, SeqCst);
        self.hand.0.wait();
        self.hand.0.wait();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.hand.1.store(0, SeqCst);
        self.hand.0.wait();
        self.thread.take().unwrap().join().unwrap();
    }
}

fn free_box48(p: usize) {
    // SAFETY: `p` came from `Box::into_raw` of a `Box<[u8; 48]>` and is freed once, here.
    drop(unsafe { Box::from_raw(p as *mut [u8; 48]) });
}

#[test]
fn free_on_another_thread_credits_the_window_owner_once() {
    let helper = Helper::new(free_box48);
    let window = Window::open().unwrap();
    let (counters, own) = (thread_counters().unwrap(), thread_totals().unwrap());
    let p = Box::into_raw(Box::new([1u8; 48])) as usize;
    assert!(remembered(p));
    helper.run(p);
    assert!(!remembered(p), "the free forgot it");
    let (counters2, own2) = (thread_counters().unwrap(), thread_totals().unwrap());
    // The owner's counters saw the allocation only; the free was the helper's.
    assert_eq!(counters2.alloc_bytes - counters.alloc_bytes, 48);
    assert_eq!(counters2.free_bytes, counters.free_bytes);
    // The owner's reading also has the credit: back where it started.
    assert_eq!(own2.live_bytes(), own.live_bytes());
    assert_eq!(own2.live_blocks(), own.live_blocks());
    assert_eq!(own2.free_blocks - own.free_blocks, 1);
    drop(window);
    // Closed: a block allocated now is not remembered, and its free elsewhere not credited.
    let q = Box::into_raw(Box::new([2u8; 48])) as usize;
    assert!(!remembered(q));
    let before = thread_totals().unwrap();
    helper.run(q);
    assert_eq!(thread_totals().unwrap().free_bytes, before.free_bytes);
}

#[test]
fn block_from_before_the_window_is_not_credited() {
    let helper = Helper::new(free_box48);
    let p = Box::into_raw(Box::new([3u8; 48])) as usize;
    let window = Window::open().unwrap();
    let before = thread_totals().unwrap();
    helper.run(p);
    assert_eq!(thread_totals().unwrap(), before);
    drop(window);
}

#[test]
fn free_on_the_owner_thread_forgets_without_credit() {
    let _window = Window::open().unwrap();
    let before = thread_totals().unwrap();
    let b = std::hint::black_box(Box::new([4u8; 48]));
    let p = &*b as *const [u8; 48] as usize;
    assert!(remembered(p));
    drop(b);
    assert!(!remembered(p));
    let after = thread_totals().unwrap();
    assert_eq!(
        after.free_bytes - before.free_bytes,
        48,
        "counted once, as its own"
    );
    assert_eq!(after.live_bytes(), before.live_bytes());
}

fn grow_vec(p: usize) {
    // SAFETY: `p` came from `Box::into_raw` of a `Box<Vec<u8>>`; the vector is grown (a
    // realloc of its buffer) and freed once, here.
    let mut v = unsafe { Box::from_raw(p as *mut Vec<u8>) };
    v.reserve_exact(4000);
    drop(v);
}

#[test]
fn realloc_on_another_thread_credits_the_old_block() {
    let helper = Helper::new(grow_vec);
    let _window = Window::open().unwrap();
    let before = thread_totals().unwrap();
    let v: Vec<u8> = Vec::with_capacity(100);
    let p = Box::into_raw(Box::new(v)) as usize;
    helper.run(p);
    // Both blocks (the Vec's header box and its 100-byte buffer, grown there) were freed by
    // the helper: the buffer through realloc.
    let after = thread_totals().unwrap();
    assert_eq!(after.live_bytes(), before.live_bytes());
    assert_eq!(after.live_blocks(), before.live_blocks());
    assert_eq!(after.free_bytes - before.free_bytes, 100 + 24);
}

#[test]
fn realloc_on_the_owner_thread_remembers_the_new_block() {
    let helper = Helper::new(|p| {
        // SAFETY: `p` came from `Box::into_raw` of a `Box<Vec<u8>>`, freed once, here.
        drop(unsafe { Box::from_raw(p as *mut Vec<u8>) })
    });
    let _window = Window::open().unwrap();
    let mut v: Vec<u8> = Vec::with_capacity(16);
    let old = v.as_ptr() as usize;
    assert!(remembered(old));
    v.reserve_exact(10_000);
    let new = v.as_ptr() as usize;
    assert!(remembered(new));
    assert!(old == new || !remembered(old));
    let before = thread_totals().unwrap();
    let p = Box::into_raw(Box::new(v)) as usize;
    helper.run(p);
    let after = thread_totals().unwrap();
    assert!(!remembered(new));
    // The box allocated after `before` and its buffer from before it: both credited.
    assert_eq!(after.free_bytes - before.free_bytes, 24 + 10_000);
}

#[test]
fn nested_windows_keep_entries_until_the_outermost_closes() {
    let outer = Window::open().unwrap();
    let b = std::hint::black_box(Box::new([5u8; 48]));
    let p = &*b as *const [u8; 48] as usize;
    let inner = Window::open().unwrap();
    drop(inner);
    assert!(
        remembered(p),
        "the inner window does not drop the outer's entries"
    );
    drop(outer);
    assert!(!remembered(p), "closing the outermost drops them");
    drop(b);
}

#[test]
fn window_left_open_at_thread_exit_drops_its_entries() {
    let p = std::thread::spawn(|| {
        std::mem::forget(Window::open().unwrap());
        let p = Box::into_raw(Box::new([6u8; 48])) as usize;
        assert!(remembered(p));
        p
    })
    .join()
    .unwrap();
    // The thread exited with its window open; its slot's release dropped the entry (the
    // block is still allocated, so no other thread can have been given its address).
    assert!(!remembered(p));
    free_box48(p);
}

#[test]
fn thread_peak_counts_credits() {
    let helper = Helper::new(free_box48);
    let _window = Window::open().unwrap();
    let peak = ThreadPeak::start().unwrap();
    let start = peak.reset();
    let p = Box::into_raw(Box::new([7u8; 48])) as usize;
    helper.run(p);
    // Freed elsewhere: the next allocation's high-water mark starts from the lower level.
    let q = Box::into_raw(Box::new([7u8; 48])) as usize;
    assert_eq!(peak.peak() - start, 48, "peak is one block, not two");
    free_box48(q);
}
