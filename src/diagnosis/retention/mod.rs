//! Retention: who holds the memory that leaked. Every heap site of a failing `#[no_leak]` report
//! gets a [`HeldBy`]: a static (named), a thread's stack or thread-locals, a reference cycle, or
//! nothing at all (`Box::leak`, `mem::forget`, a lost raw pointer).
//!
//! How. A chain to a static usually runs through blocks allocated long before the diagnostic run
//! (a registry's `Vec` buffer from the first warmup run), which the diagnostic run's capture never
//! saw. So after a heap leak is found, the test runs once more in a fresh child process (see
//! [`run`]; isolation starts it) with capture on from the body's first run: the same warmup and
//! measured runs, then the diagnostic run. There, with every block the body made known, the scan copies the words of
//! every live captured block and of every root (the writable segments of the loaded objects, each
//! live thread's stack and thread-locals, see [`roots`]) and builds the points-to graph: a word
//! whose value lies inside a live block is an edge, as in LeakSanitizer (see [`graph`]). Only a
//! test that already failed pays for it.
//!
//! Safe while the program runs:
//! - Memory is copied with `process_vm_readv` ([`memory`]): another thread may write, free or
//!   unmap what is being read; the copy races with the write (a word may come out torn) but never
//!   faults and never forms a reference.
//! - The copy is made with the capture table's lock held, so no allocation or free can be recorded
//!   meanwhile. A free does release its memory before it is recorded; a block freed during the copy
//!   is therefore read as whatever its memory held, and dropped from the graph afterwards (only
//!   blocks still live, with the same capture number, once capture ends are classified).
//! - Nothing that takes the backtrace crate's lock runs while the table's lock is held (statics are
//!   named from the executable's symbol table, [`symbols`], without any lock; stacks are resolved
//!   after capture has ended), so a thread that captures or symbolizes cannot deadlock the scan.
//!
//! Honest limits (conservative scanning):
//! - Any word that happens to hold an address inside a block counts as a pointer: a stale value in
//!   a live block's unused capacity, in a static, or in a caller's stack frame can make a block
//!   look held (by a static or a thread) when nothing uses it any more, and can join an unreachable
//!   block to a cycle. Errors go that way: towards "held"; a block shown as unreachable really had
//!   no word pointing at it.
//! - A pointer kept only in a CPU register, or disguised (tagged, XOR-ed, compressed), is not seen:
//!   its block can look unreachable.
//! - A thread whose stack cannot be read (one that kept running while it was looked at) could hold
//!   anything no other root reaches: those blocks are "not determined", never guessed. The main
//!   thread's thread-locals (allocated by the loader, not on its stack) are not scanned.
//! - Outside Linux, or where `process_vm_readv` is not allowed, every site is "not determined".

mod graph;
mod memory;
mod roots;
mod run;
mod symbols;

pub(crate) use memory::unsupported_here;
pub(crate) use run::{attach, classify};

use std::collections::HashMap;

use crate::counting::capture::{self, Block, Capture};
use crate::diagnosis::sites::{site_of, sort_sites, Frame, Resolver, Site};
use graph::{Class, Graph, Span};

/// Who holds the memory of one allocation site (see [`Site::held_by`]).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldBy {
    /// The holder.
    pub holder: Holder,
    /// The blocks between the holder and this site's block, holder's side first, by allocating
    /// line (empty when the holder points at the block itself, or the block is in the cycle).
    pub via: Vec<Frame>,
    /// How many of the site's blocks this holder holds (the site's other blocks have other
    /// holders; the holder of most blocks is the one given).
    pub blocks: u64,
}

/// What holds leaked memory.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// Reachable from this static or global, named as Rust writes its path
    /// (`my_crate::memo::M`).
    Static(String),
    /// Reachable only from this thread's stack or thread-locals (its name).
    Thread(String),
    /// Part of (or held only by) a set of blocks that point at each other and that nothing else
    /// reaches: an `Rc`/`Arc` cycle. The allocating line of each member.
    Cycle(Vec<Frame>),
    /// Nothing points at it (or only blocks nothing points at): `Box::leak`, `mem::forget`, a
    /// lost raw pointer.
    Unreachable,
    /// Could not be told, and why.
    NotDetermined(String),
}

impl Holder {
    /// The JSON `kind`: `static`, `thread`, `cycle`, `unreachable`, `not_determined`.
    pub fn kind(&self) -> &'static str {
        match self {
            Holder::Static(_) => "static",
            Holder::Thread(_) => "thread",
            Holder::Cycle(_) => "cycle",
            Holder::Unreachable => "unreachable",
            Holder::NotDetermined(_) => "not_determined",
        }
    }
}

/// At most this many blocks of a chain, and members of a cycle, are named.
const MAX_FRAMES: usize = 8;

/// A scan's result: each live block, its class, and the block it was reached from.
struct Scanned {
    blocks: Vec<Block>,
    class: Vec<Class>,
    parent: Vec<Option<u32>>,
    threads: Vec<String>,
    unreadable: Vec<String>,
}

/// Scans while `capture` runs and ends it. `entry` is an address in a frame of the calling thread
/// above every frame the body ran in.
fn scan(capture: Capture, entry: usize) -> Scanned {
    let roots = capture::without_capture(|| roots::gather(entry));
    let (blocks, contents, regions) = capture.with_table(|map| {
        let mut blocks: Vec<Block> = map.values().copied().collect();
        blocks.sort_unstable_by_key(|b| b.addr);
        // Stale entries may overlap live ones: keep the first of overlapping blocks.
        let mut end = 0;
        blocks.retain(|b| {
            let keep = b.addr >= end;
            end = end.max(b.addr + b.size);
            keep
        });
        let contents: Vec<_> = blocks
            .iter()
            .map(|b| memory::copy(b.addr, b.size))
            .collect();
        let regions: Vec<_> = (roots.regions.iter())
            .map(|r| (*r, memory::copy(r.start, r.len)))
            .collect();
        (blocks, contents, regions)
    });
    let live: HashMap<usize, u64> = capture.finish().iter().map(|b| (b.addr, b.seq)).collect();
    let (mut kept, mut kept_contents) = (Vec::new(), Vec::new());
    for (b, c) in blocks.into_iter().zip(contents) {
        if live.get(&b.addr) == Some(&b.seq) {
            kept.push(b);
            kept_contents.push(c);
        }
    }
    let spans = kept
        .iter()
        .map(|b| Span {
            addr: b.addr,
            size: b.size,
        })
        .collect();
    let g = Graph::build(spans, &kept_contents, &regions);
    let (class, parent) = g.classify(!roots.unreadable.is_empty());
    Scanned {
        blocks: kept,
        class,
        parent,
        threads: roots.threads,
        unreadable: roots.unreadable,
    }
}

/// The sites of the blocks captured in `[first, end)` (the diagnostic run), each with its holder.
fn sites_held(s: &Scanned, first: u64, end: u64) -> Vec<Site> {
    let mut resolver = Resolver::new();
    let statics = symbols::Statics::load(roots::exe_bias());
    let frame_of = |i: usize, resolver: &mut Resolver| {
        let frames: Vec<Frame> = (resolver.frames(s.blocks[i].stack.ips()).into_iter())
            .map(|(_, f)| f)
            .collect();
        site_of(&frames, s.blocks[i].c_heap)
    };
    let mut sites: Vec<(Site, Vec<usize>)> = Vec::new();
    for i in (0..s.blocks.len()).filter(|&i| (first..end).contains(&s.blocks[i].seq)) {
        let site = frame_of(i, &mut resolver);
        let size = s.blocks[i].size as u64;
        match (sites.iter_mut()).find(|(t, _)| t.frame == site.frame && t.c_heap == site.c_heap) {
            Some((t, members)) => {
                (t.bytes, t.blocks) = (t.bytes + size, t.blocks + 1);
                t.spawns_thread |= site.spawns_thread;
                members.push(i);
            }
            None => sites.push((
                Site {
                    bytes: size,
                    blocks: 1,
                    ..site
                },
                vec![i],
            )),
        }
    }
    let name = |i: usize, r: &mut Resolver| frame_of(i, r).frame;
    let mut out: Vec<Site> = Vec::new();
    for (mut site, members) in sites {
        site.held_by = Some(holder_of_site(s, &members, &statics, &mut |i| {
            name(i, &mut resolver)
        }));
        out.push(site);
    }
    sort_sites(&mut out);
    out
}

/// The holder of most of a site's blocks, with the chain of its first such block.
fn holder_of_site(
    s: &Scanned,
    members: &[usize],
    statics: &symbols::Statics,
    frame: &mut dyn FnMut(usize) -> Option<Frame>,
) -> HeldBy {
    let mut tally: Vec<(Holder, usize, u64)> = Vec::new();
    for &i in members {
        let h = holder_of_block(s, i, statics, frame);
        match tally.iter_mut().find(|(t, _, _)| *t == h) {
            Some(t) => t.2 += 1,
            None => tally.push((h, i, 1)),
        }
    }
    let (holder, first, blocks) = tally
        .into_iter()
        .max_by_key(|t| t.2)
        .expect("a site has a block");
    HeldBy {
        holder,
        via: chain(&s.parent, first, frame),
        blocks,
    }
}

/// The allocating lines of the blocks between a root and block `first` (its parents, outermost
/// first). Blocks allocated at one line and pointing at each other (a spawned thread's closure
/// and the state it shares, say) are one step: how many of them the scan walks through depends
/// on where the holder is at that moment, and "a.rs:3 -> a.rs:3" says no more than "a.rs:3".
fn chain(
    parent: &[Option<u32>],
    first: usize,
    frame: &mut dyn FnMut(usize) -> Option<Frame>,
) -> Vec<Frame> {
    let mut blocks = Vec::new();
    let mut at = parent[first];
    while let Some(p) = at {
        blocks.push(p as usize);
        at = parent[p as usize];
    }
    blocks.reverse();
    let mut via: Vec<Frame> = (blocks.into_iter().take(MAX_FRAMES))
        .filter_map(frame)
        .collect();
    via.dedup();
    via
}

fn holder_of_block(
    s: &Scanned,
    i: usize,
    statics: &symbols::Statics,
    frame: &mut dyn FnMut(usize) -> Option<Frame>,
) -> Holder {
    match s.class[i] {
        Class::Static { at } => Holder::Static(statics.describe(at)),
        Class::Thread(t) => Holder::Thread(s.threads[t].clone()),
        Class::Cycle(c) => {
            let mut members: Vec<Frame> = Vec::new();
            let in_cycle = (0..s.blocks.len())
                .filter(|&j| s.class[j] == Class::Cycle(c) && s.parent[j].is_none());
            for f in in_cycle.filter_map(&mut *frame) {
                if !members.contains(&f) && members.len() < MAX_FRAMES {
                    members.push(f);
                }
            }
            Holder::Cycle(members)
        }
        Class::Unreachable => Holder::Unreachable,
        Class::NotDetermined => Holder::NotDetermined(format!(
            "not reached from any root, and the stack of {} could not be read (running)",
            s.unreadable
                .iter()
                .map(|n| format!("thread \"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::counting::capture::Who;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// A chain names each allocating line once where blocks of one line follow each other, and
    /// keeps the order from the root.
    #[test]
    fn a_chain_names_consecutive_blocks_of_one_line_once() {
        // Block 4's parents: 3, 2, 1, 0 (a root's child). Blocks 0 and 1 are from line 10, 2 from
        // line 20, 3 from line 10 again.
        let parent = [None, Some(0), Some(1), Some(2), Some(3)];
        let line = |b: usize| [10, 10, 20, 10, 99][b];
        let mut frame = |b: usize| {
            Some(Frame {
                function: "f".into(),
                file: Some("a.rs".into()),
                line: Some(line(b)),
            })
        };
        let lines: Vec<u32> = chain(&parent, 4, &mut frame)
            .iter()
            .map(|f| f.line.unwrap())
            .collect();
        assert_eq!(lines, [10, 20, 10]);
        assert!(chain(&parent, 0, &mut frame).is_empty());
    }

    // Boxes on purpose: each is a block of its own for the scan to find.
    #[allow(clippy::vec_box)]
    static HELD: Mutex<Vec<Box<[u8; 40]>>> = Mutex::new(Vec::new());

    /// Makes room in `HELD` for one more: its buffer is reallocated, and captured.
    #[inline(never)]
    fn grow() {
        let mut held = HELD.lock().unwrap();
        let more = held.capacity() + 1 - held.len();
        held.reserve_exact(more);
    }

    #[inline(never)]
    fn hold_one() {
        let b = Box::new([1u8; 40]);
        HELD.lock().unwrap().push(b);
    }

    /// Aborts the process if `f` has not returned within `limit`: a deadlock fails loudly
    /// instead of hanging the suite.
    fn watchdog<R>(limit: Duration, f: impl FnOnce() -> R) -> R {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let dog = std::thread::spawn(move || {
            let start = Instant::now();
            while !d.load(SeqCst) {
                if start.elapsed() > limit {
                    eprintln!("watchdog: the scan did not end within {limit:?}: deadlock");
                    std::process::abort();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let r = f();
        done.store(true, SeqCst);
        dog.join().unwrap();
        r
    }

    /// Scans at least `rounds` times while `noise` runs on another thread (until told to stop), and checks
    /// each time that the block held by `HELD` is named as held by it. Returns how many rounds
    /// of noise ran while the scans did.
    fn scans_during(rounds: usize, noise: fn(&AtomicBool, &AtomicU64)) -> u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), count.clone());
        let t = std::thread::spawn(move || noise(&s, &c));
        while count.load(SeqCst) == 0 {
            std::thread::yield_now();
        }
        let before = count.load(SeqCst);
        // At least `rounds` scans, and more until the noise has run meanwhile (on a loaded
        // machine it may not get a core during the first ones).
        for round in 0.. {
            if round >= rounds && (count.load(SeqCst) > before || round >= 200) {
                break;
            }
            let marker = 0u8;
            let entry = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
            let capture = Capture::start_within(Who::All, Duration::from_secs(20)).unwrap();
            grow();
            let first = capture::next_seq();
            hold_one();
            let end = capture::next_seq();
            let scanned = watchdog(Duration::from_secs(60), || scan(capture, entry));
            let sites = sites_held(&scanned, first, end);
            let mine = (sites.iter())
                .find(|s| {
                    s.frame
                        .as_ref()
                        .is_some_and(|f| f.function.ends_with("hold_one"))
                })
                .unwrap_or_else(|| panic!("no site for hold_one in {sites:#?}"));
            let held = mine.held_by.as_ref().unwrap();
            assert_eq!(
                held.holder,
                Holder::Static("no_leak::diagnosis::retention::tests::HELD".into()),
                "{mine:#?}"
            );
            let via: Vec<&str> = held.via.iter().map(|f| f.function.as_str()).collect();
            assert_eq!(
                via,
                ["no_leak::diagnosis::retention::tests::grow"],
                "through the Vec's buffer: {mine:#?}"
            );
        }
        let during = count.load(SeqCst) - before;
        stop.store(true, SeqCst);
        t.join().unwrap();
        during
    }

    #[test]
    fn a_thread_freeing_in_a_loop_during_the_scan() {
        fn churn(stop: &AtomicBool, count: &AtomicU64) {
            while !stop.load(SeqCst) {
                // Big enough to be unmapped on free, and small ones reused at once.
                let big = std::hint::black_box(vec![1u8; 300_000]);
                let small: Vec<Box<u64>> = (0..64).map(Box::new).collect();
                drop(std::hint::black_box(small));
                drop(big);
                count.fetch_add(1, SeqCst);
            }
        }
        let during = scans_during(5, churn);
        assert!(during > 0, "the freeing thread ran while the scans did");
    }

    #[test]
    fn a_thread_symbolizing_during_the_scan() {
        fn symbolize(stop: &AtomicBool, count: &AtomicU64) {
            while !stop.load(SeqCst) {
                // Unwinds and resolves: takes the backtrace crate's lock, and allocates under it.
                let bt = backtrace::Backtrace::new();
                std::hint::black_box(bt);
                count.fetch_add(1, SeqCst);
            }
        }
        let during = scans_during(3, symbolize);
        assert!(during > 0, "the symbolizing thread ran while the scans did");
    }
}
