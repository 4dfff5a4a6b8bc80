//! Taking a snapshot: the live blocks the capture holds, grouped by site and by folded stack.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::Profiler;
use crate::counting::capture::Block;
use crate::diagnosis::sites::{self, Frame, Site};

/// Live memory allocated along one stack.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackSample {
    /// Bytes live from this stack.
    pub bytes: i64,
    /// Blocks live from this stack.
    pub blocks: i64,
    /// The stack, innermost first, with the frames of std, core, alloc and no_leak folded away:
    /// the first frame is the site (the first frame in the user's own code; when there is none,
    /// the first outside std), the rest its callers. A stack with no frame outside std is kept
    /// whole.
    pub frames: Vec<Frame>,
    /// The instruction address each frame was resolved from (inlined frames share one).
    pub addresses: Vec<u64>,
}

/// The live heap at one moment: what was allocated since the profiler started and is not freed
/// yet, by site and by stack. From [`Profiler::snapshot`].
///
/// Its `Display` is a top table like `pprof -top`, biggest sites first: ten rows, `{:.N}` for
/// `N` rows, `{:#}` for all.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Live bytes in the snapshot.
    pub bytes: i64,
    /// Live blocks in the snapshot.
    pub blocks: i64,
    /// Live memory by site (the first frame in the user's own code), biggest first.
    pub sites: Vec<Site>,
    /// Live memory by whole (folded) stack, biggest first.
    pub stacks: Vec<StackSample>,
    /// When the snapshot was taken, on the wall clock.
    pub taken: SystemTime,
    /// How long the profiler had been running when the snapshot was taken.
    pub since_start: Duration,
}

impl Snapshot {
    /// The site allocating at `file:line` (`file` as in [`Frame::file`]: relative to the current
    /// directory when below it), if anything from there is live.
    pub fn site_at(&self, file: &str, line: u32) -> Option<&Site> {
        self.sites.iter().find(|s| {
            s.frame
                .as_ref()
                .is_some_and(|f| f.file.as_deref() == Some(file) && f.line == Some(line))
        })
    }
}

/// A distinct stack and heap (Rust or C, feature `ffi`).
type Key<'a> = (&'a [usize], bool);

/// Live (bytes, blocks).
type Live = (u64, u64);

impl Profiler {
    /// The snapshot, taken with capture off for this thread (see [`Profiler::snapshot`]).
    pub(super) fn take(&self) -> Snapshot {
        let taken = SystemTime::now();
        let since_start = self.started.elapsed();
        let blocks = self.capture.live();
        let distinct = by_stack(&blocks);
        let mut resolver = self.resolver.borrow_mut();
        let mut stacks: HashMap<Vec<(usize, Frame)>, Live> = HashMap::new();
        let mut sites: Vec<Site> = Vec::new();
        // Each distinct stack is resolved once.
        for ((ips, c_heap), (bytes, count)) in distinct {
            let frames = resolver.frames(ips);
            let plain: Vec<Frame> = frames.iter().map(|(_, f)| f.clone()).collect();
            add_to_site(&mut sites, sites::site_of(&plain, c_heap), bytes, count);
            let e = stacks.entry(sites::fold(frames)).or_default();
            e.0 += bytes;
            e.1 += count;
        }
        sites::sort_sites(&mut sites);
        Snapshot {
            bytes: sites.iter().map(|s| s.bytes as i64).sum(),
            blocks: sites.iter().map(|s| s.blocks as i64).sum(),
            sites,
            stacks: stack_samples(stacks),
            taken,
            since_start,
        }
    }
}

/// The live blocks by distinct stack and heap, in a stable order.
fn by_stack(blocks: &[Block]) -> Vec<(Key<'_>, Live)> {
    let mut by_stack: HashMap<Key, Live> = HashMap::new();
    for b in blocks {
        let e = by_stack.entry((b.stack.ips(), b.c_heap)).or_default();
        e.0 += b.size as u64;
        e.1 += 1;
    }
    let mut distinct: Vec<(Key, Live)> = by_stack.into_iter().collect();
    distinct.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    distinct
}

/// Adds `bytes` in `count` blocks to the row of `site` (same frame, same heap), or a new row.
fn add_to_site(sites: &mut Vec<Site>, site: Site, bytes: u64, count: u64) {
    match (sites.iter_mut()).find(|s| s.frame == site.frame && s.c_heap == site.c_heap) {
        Some(s) => {
            s.bytes += bytes;
            s.blocks += count;
            s.spawns_thread |= site.spawns_thread;
        }
        None => sites.push(Site {
            bytes,
            blocks: count,
            ..site
        }),
    }
}

/// The folded stacks as samples, biggest first.
fn stack_samples(stacks: HashMap<Vec<(usize, Frame)>, Live>) -> Vec<StackSample> {
    let mut stacks: Vec<StackSample> = stacks
        .into_iter()
        .map(|(frames, (bytes, blocks))| {
            let (addresses, frames) = frames.into_iter().map(|(a, f)| (a as u64, f)).unzip();
            StackSample {
                bytes: bytes as i64,
                blocks: blocks as i64,
                frames,
                addresses,
            }
        })
        .collect();
    stacks.sort_by(|a, b| {
        (b.bytes, b.blocks)
            .cmp(&(a.bytes, a.blocks))
            .then_with(|| a.addresses.cmp(&b.addresses))
    });
    stacks
}
