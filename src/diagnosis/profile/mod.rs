//! Heap profiles: live memory by allocation site, and what grew between two snapshots.
//!
//! This is the `go tool pprof -base heap1.pb.gz heap2.pb.gz` workflow, in process: start a
//! [`Profiler`], take a [`Snapshot`] as the base, run the workload, take another, and
//! [`Snapshot::diff`] the two. The sites that grew come first, named by the line that allocated.
//!
//! ```no_run
//! let profiler = no_leak::profile::start().expect("no other profiler runs");
//! let mut cache = Vec::new();
//! let base = profiler.snapshot();
//! for i in 0..1000 {
//!     cache.push(vec![0u8; 512]); // grows
//!     drop(format!("request {i}")); // churn: freed at once
//! }
//! let now = profiler.snapshot();
//! let diff = now.diff(&base);
//! println!("{diff}"); // the line of `vec![0u8; 512]` first, +512000 B in +1000 blocks
//! ```
//!
//! **What a snapshot holds.** Every block allocated through no_leak's [`CountingAlloc`], on any
//! thread, *since the profiler started*, and not freed yet, exactly (no sampling): its size and
//! the stack that allocated it. Blocks allocated before [`start`] are not seen at all, so start
//! the profiler before the workload whose growth you want to see. A snapshot groups the blocks
//! two ways: by [`Site`], the first frame in the user's own code (as a leak report names it), and
//! by [`StackSample`], the whole stack with std's frames folded away, which is what a pprof
//! viewer draws its call graph from.
//!
//! **pprof files** (cargo feature `pprof`): `Snapshot::write_pprof` writes a gzip-compressed
//! pprof `profile.proto`, as Go's `/debug/pprof/heap` serves, with the sample types
//! `inuse_objects` (count) and `inuse_space` (bytes). `go tool pprof -top heap.pb.gz` lists it,
//! and `go tool pprof -top -base base.pb.gz heap.pb.gz` shows the growth between two snapshots.
//!
//! Lines come from debug info: test and dev builds have it; a release build needs
//! `debug = "line-tables-only"` (or more) in its cargo profile, or sites show functions only.
//!
//! **Cost.** While a profiler runs, every allocation of every thread unwinds its stack and
//! records it in a table (a global lock): allocation-heavy code runs many times slower. Taking a
//! snapshot symbolises each distinct address once per profiler. Profile a workload, not a
//! benchmark; a check's counts stay exact meanwhile.
//!
//! **One at a time.** A profiler shares the capture machinery with the diagnostic run of a
//! failing leak check, and only one capture runs per process: [`start`] fails with
//! [`StartError::Busy`] while another profiler, or a diagnostic run, is capturing. While a
//! profiler runs, a failing check on the profiler's thread reports its sites as "not captured",
//! and one on another thread waits for the profiler to end before its diagnostic run. Use
//! profiles in a program of their own or in a test under [`isolated`](crate::isolated), where the
//! whole process is yours.
//!
//! [`CountingAlloc`]: crate::CountingAlloc

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use crate::counting::capture::{without_capture, Capture, Who};
use crate::diagnosis::sites::{self, Frame, Resolver, Site};

#[cfg(feature = "pprof")]
mod pprof;
#[cfg(feature = "pprof")]
#[cfg_attr(docsrs, doc(cfg(feature = "pprof")))]
pub use pprof::proto;

/// Starts a heap profiler that captures the allocations of every thread of the process.
///
/// Fails at once, without waiting, if another profiler or a failing check's diagnostic run is
/// capturing allocation sites ([`StartError::Busy`]), or if no_leak's [`CountingAlloc`] is not the
/// global allocator ([`StartError::NoAllocator`]).
///
/// [`CountingAlloc`]: crate::CountingAlloc
pub fn start() -> Result<Profiler, StartError> {
    if !crate::counting::alloc::probe_installed() {
        return Err(StartError::NoAllocator);
    }
    let resolver = RefCell::new(without_capture(Resolver::new));
    let capture = Capture::try_start(Who::All).ok_or(StartError::Busy)?;
    Ok(Profiler {
        capture,
        resolver,
        started: Instant::now(),
    })
}

/// Why [`start`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// Another profiler, or the diagnostic run of a failing check, is capturing allocation sites.
    /// Only one capture runs at a time in a process.
    Busy,
    /// No allocation went through no_leak's `CountingAlloc`: with another global allocator (or
    /// stats_alloc's) there is nothing to capture.
    NoAllocator,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Busy => f.write_str(
                "another heap profiler or a leak check's diagnostic run is capturing allocation \
                 sites; only one capture runs at a time",
            ),
            StartError::NoAllocator => f.write_str(
                "no_leak's CountingAlloc is not the global allocator, so allocations cannot be \
                 captured (enable the default feature `global-allocator`, or wrap your allocator \
                 in no_leak::CountingAlloc)",
            ),
        }
    }
}

impl std::error::Error for StartError {}

/// A running heap profiler. Capture stops when it is dropped, on the thread that started it (it
/// is not `Send`).
pub struct Profiler {
    capture: Capture,
    /// Addresses resolved by earlier snapshots.
    resolver: RefCell<Resolver>,
    started: Instant,
}

impl fmt::Debug for Profiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profiler")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl Profiler {
    /// The memory live now, allocated since the profiler started, by site and by stack.
    ///
    /// What the snapshot itself allocates is not captured, so it never shows in later snapshots.
    pub fn snapshot(&self) -> Snapshot {
        without_capture(|| self.take())
    }

    /// How long the profiler has been running.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn take(&self) -> Snapshot {
        let taken = SystemTime::now();
        let elapsed = self.started.elapsed();
        let blocks = self.capture.live();
        // Each distinct stack is resolved once.
        // Keyed by stack and heap (Rust or C, feature `ffi`): (bytes, blocks).
        type Key<'a> = (&'a [usize], bool);
        let mut by_stack: HashMap<Key, (u64, u64)> = HashMap::new();
        for b in &blocks {
            let e = by_stack.entry((b.stack.ips(), b.c_heap)).or_default();
            e.0 += b.size as u64;
            e.1 += 1;
        }
        let mut distinct: Vec<(Key, (u64, u64))> = by_stack.into_iter().collect();
        distinct.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut resolver = self.resolver.borrow_mut();
        let mut stacks: HashMap<Vec<(usize, Frame)>, (u64, u64)> = HashMap::new();
        let mut sites: Vec<Site> = Vec::new();
        for ((ips, c_heap), (bytes, count)) in distinct {
            let frames = resolver.frames(ips);
            let plain: Vec<Frame> = frames.iter().map(|(_, f)| f.clone()).collect();
            let site = sites::site_of(&plain, c_heap);
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
            let e = stacks.entry(sites::fold(frames)).or_default();
            e.0 += bytes;
            e.1 += count;
        }
        sites::sort_sites(&mut sites);
        let mut stacks: Vec<StackSample> = stacks
            .into_iter()
            .map(|(frames, (bytes, blocks))| {
                let (addresses, frames) = frames.into_iter().map(|(a, f)| (a as u64, f)).unzip();
                StackSample {
                    bytes,
                    blocks,
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
        Snapshot {
            bytes: sites.iter().map(|s| s.bytes).sum(),
            blocks: sites.iter().map(|s| s.blocks).sum(),
            sites,
            stacks,
            taken,
            elapsed,
        }
    }
}

/// Live memory allocated along one stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackSample {
    /// Bytes live from this stack.
    pub bytes: u64,
    /// Blocks live from this stack.
    pub blocks: u64,
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
#[derive(Clone, Debug)]
pub struct Snapshot {
    bytes: u64,
    blocks: u64,
    sites: Vec<Site>,
    stacks: Vec<StackSample>,
    taken: SystemTime,
    elapsed: Duration,
}

impl Snapshot {
    /// Live bytes in the snapshot.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Live blocks in the snapshot.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Live memory by site (the first frame in the user's own code), biggest first.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// Live memory by whole (folded) stack, biggest first.
    pub fn stacks(&self) -> &[StackSample] {
        &self.stacks
    }

    /// When the snapshot was taken.
    pub fn taken(&self) -> SystemTime {
        self.taken
    }

    /// How long the profiler had been running when the snapshot was taken.
    pub fn since_start(&self) -> Duration {
        self.elapsed
    }

    /// The site allocating at `file:line` (`file` as in [`Frame::file`]: relative to the current
    /// directory when below it), if anything from there is live.
    pub fn site_at(&self, file: &str, line: u32) -> Option<&Site> {
        self.sites.iter().find(|s| {
            s.frame
                .as_ref()
                .is_some_and(|f| f.file.as_deref() == Some(file) && f.line == Some(line))
        })
    }

    /// What changed from `base` to this snapshot, site by site: the biggest growers first, then
    /// the sites that did not change, then those that shrank or vanished, the biggest shrink
    /// first. Like `go tool pprof -base base.pb.gz this.pb.gz`.
    pub fn diff(&self, base: &Snapshot) -> Diff {
        without_capture(|| {
            let mut rows: Vec<SiteDelta> = Vec::new();
            let mut index: HashMap<Option<&Frame>, usize> = HashMap::new();
            for s in &self.sites {
                index.insert(s.frame.as_ref(), rows.len());
                rows.push(SiteDelta {
                    frame: s.frame.clone(),
                    context: s.context.clone(),
                    base_bytes: 0,
                    base_blocks: 0,
                    bytes: s.bytes,
                    blocks: s.blocks,
                });
            }
            for s in &base.sites {
                match index.get(&s.frame.as_ref()) {
                    Some(&i) => {
                        rows[i].base_bytes = s.bytes;
                        rows[i].base_blocks = s.blocks;
                    }
                    None => rows.push(SiteDelta {
                        frame: s.frame.clone(),
                        context: s.context.clone(),
                        base_bytes: s.bytes,
                        base_blocks: s.blocks,
                        bytes: 0,
                        blocks: 0,
                    }),
                }
            }
            rows.sort_by(|a, b| {
                let (ka, kb) = (a.sort_key(), b.sort_key());
                ka.cmp(&kb).then_with(|| a.location().cmp(&b.location()))
            });
            Diff {
                base_bytes: base.bytes,
                base_blocks: base.blocks,
                bytes: self.bytes,
                blocks: self.blocks,
                between: self.elapsed.saturating_sub(base.elapsed),
                sites: rows,
            }
        })
    }
}

/// How one site changed between two snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteDelta {
    /// The site: the first frame in the user's own code (see [`Site::frame`]).
    pub frame: Option<Frame>,
    /// A few of its callers, innermost first.
    pub context: Vec<Frame>,
    /// Bytes live from this site in the base snapshot.
    pub base_bytes: u64,
    /// Blocks live from this site in the base snapshot.
    pub base_blocks: u64,
    /// Bytes live from this site in the later snapshot.
    pub bytes: u64,
    /// Blocks live from this site in the later snapshot.
    pub blocks: u64,
}

impl SiteDelta {
    /// Growth of live bytes (negative: shrank).
    pub fn delta_bytes(&self) -> i64 {
        self.bytes as i64 - self.base_bytes as i64
    }

    /// Growth of live blocks (negative: shrank).
    pub fn delta_blocks(&self) -> i64 {
        self.blocks as i64 - self.base_blocks as i64
    }

    /// Whether the site grew: more live bytes, or as many bytes in more blocks.
    pub fn grew(&self) -> bool {
        (self.delta_bytes(), self.delta_blocks()) > (0, 0)
    }

    /// Whether the site shrank or vanished.
    pub fn shrank(&self) -> bool {
        (self.delta_bytes(), self.delta_blocks()) < (0, 0)
    }

    /// `file:line` of the site, or `<unresolved>`.
    pub fn location(&self) -> String {
        self.frame
            .as_ref()
            .map_or_else(|| "<unresolved>".into(), Frame::location)
    }

    /// Growers by growth, descending; then unchanged; then shrinkers by shrink, descending.
    fn sort_key(&self) -> (u8, i64, i64) {
        let (b, n) = (self.delta_bytes(), self.delta_blocks());
        if self.grew() {
            (0, -b, -n)
        } else if self.shrank() {
            (2, b, n)
        } else {
            (1, -(self.bytes as i64), 0)
        }
    }
}

/// What changed between two snapshots, from [`Snapshot::diff`].
///
/// Its `Display` is a table like `go tool pprof -top -base`: the growers (ten rows; `{:.N}` for
/// `N`, `{:#}` for all), then the sites that shrank, and a count of those unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    /// Live bytes in the base snapshot.
    pub base_bytes: u64,
    /// Live blocks in the base snapshot.
    pub base_blocks: u64,
    /// Live bytes in the later snapshot.
    pub bytes: u64,
    /// Live blocks in the later snapshot.
    pub blocks: u64,
    /// Time between the two snapshots.
    pub between: Duration,
    /// Every site live in either snapshot: the biggest growers first, then the unchanged ones,
    /// then those that shrank or vanished, the biggest shrink first.
    pub sites: Vec<SiteDelta>,
}

impl Diff {
    /// Growth of live bytes over all sites.
    pub fn delta_bytes(&self) -> i64 {
        self.bytes as i64 - self.base_bytes as i64
    }

    /// Growth of live blocks over all sites.
    pub fn delta_blocks(&self) -> i64 {
        self.blocks as i64 - self.base_blocks as i64
    }

    /// The sites that grew, the biggest growth first.
    pub fn growing(&self) -> impl Iterator<Item = &SiteDelta> {
        self.sites.iter().take_while(|s| s.grew())
    }

    /// The sites that shrank or vanished, the biggest shrink first.
    pub fn shrinking(&self) -> impl Iterator<Item = &SiteDelta> {
        self.sites.iter().filter(|s| s.shrank())
    }

    /// The row of the site allocating at `file:line`, if it is live in either snapshot.
    pub fn site_at(&self, file: &str, line: u32) -> Option<&SiteDelta> {
        self.sites.iter().find(|s| {
            s.frame
                .as_ref()
                .is_some_and(|f| f.file.as_deref() == Some(file) && f.line == Some(line))
        })
    }
}

/// Rows a table shows unless `{:.N}` or `{:#}` says otherwise.
const TOP: usize = 10;

fn rows_wanted(f: &fmt::Formatter<'_>) -> usize {
    if f.alternate() {
        usize::MAX
    } else {
        f.precision().unwrap_or(TOP)
    }
}

fn site_name(frame: Option<&Frame>) -> String {
    match frame {
        Some(fr) => format!("{} ({})", fr.location(), fr.function),
        None => "<unresolved frame>".into(),
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn more_sites(n: usize) -> String {
    format!("{n} more {}", if n == 1 { "site" } else { "sites" })
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let want = rows_wanted(f);
        writeln!(
            f,
            "heap profile: {} B in {} live at {}, allocated in the {} ms since the profiler started",
            self.bytes,
            plural(self.blocks, "block", "blocks"),
            plural(self.sites.len() as u64, "site", "sites"),
            self.elapsed.as_millis()
        )?;
        if self.sites.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "{:>12} {:>6} {:>6} {:>8}  site",
            "bytes", "bytes%", "sum%", "blocks"
        )?;
        let mut sum = 0;
        for s in self.sites.iter().take(want) {
            sum += s.bytes;
            writeln!(
                f,
                "{:>12} {:>5.1}% {:>5.1}% {:>8}  {}",
                s.bytes,
                percent(s.bytes, self.bytes),
                percent(sum, self.bytes),
                s.blocks,
                site_name(s.frame.as_ref())
            )?;
        }
        if self.sites.len() > want {
            let rest = &self.sites[want..];
            writeln!(
                f,
                "  ... and {}: {} B in {}",
                more_sites(rest.len()),
                rest.iter().map(|s| s.bytes).sum::<u64>(),
                plural(rest.iter().map(|s| s.blocks).sum(), "block", "blocks"),
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let want = rows_wanted(f);
        writeln!(
            f,
            "heap diff: {:+} B, {:+} blocks in {} ms ({} B in {} -> {} B in {})",
            self.delta_bytes(),
            self.delta_blocks(),
            self.between.as_millis(),
            self.base_bytes,
            plural(self.base_blocks, "block", "blocks"),
            self.bytes,
            plural(self.blocks, "block", "blocks"),
        )?;
        let growing: Vec<&SiteDelta> = self.growing().collect();
        let shrinking: Vec<&SiteDelta> = self.shrinking().collect();
        let unchanged = self.sites.len() - growing.len() - shrinking.len();
        let header = |f: &mut fmt::Formatter<'_>, what: &str| {
            writeln!(
                f,
                "  {what}\n{:>12} {:>8} {:>12} {:>12}  site",
                "Δbytes", "Δblocks", "base bytes", "bytes"
            )
        };
        let rows = |f: &mut fmt::Formatter<'_>, list: &[&SiteDelta]| -> fmt::Result {
            for s in list.iter().take(want) {
                writeln!(
                    f,
                    "{:>+12} {:>+8} {:>12} {:>12}  {}",
                    s.delta_bytes(),
                    s.delta_blocks(),
                    s.base_bytes,
                    s.bytes,
                    site_name(s.frame.as_ref())
                )?;
            }
            if list.len() > want {
                let rest = &list[want..];
                writeln!(
                    f,
                    "  ... and {}: {:+} B",
                    more_sites(rest.len()),
                    rest.iter().map(|s| s.delta_bytes()).sum::<i64>()
                )?;
            }
            Ok(())
        };
        if growing.is_empty() {
            writeln!(f, "  grew:   no site")?;
        } else {
            header(f, "grew:")?;
            rows(f, &growing)?;
        }
        if !shrinking.is_empty() {
            header(f, "shrank or freed:")?;
            rows(f, &shrinking)?;
        }
        if unchanged > 0 {
            writeln!(
                f,
                "  unchanged: {}",
                plural(unchanged as u64, "site", "sites")
            )?;
        }
        Ok(())
    }
}
