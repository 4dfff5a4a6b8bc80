//! Allocation sites: which line allocated the memory that leaked.
//!
//! After the counts have shown a leak, the engine runs the body once more with capture on (see
//! [`crate::counting::capture`]). What is still live at the end is the memory that run leaked;
//! this module resolves its stacks (once per distinct address, after capture is off) and groups
//! the blocks by the first frame in the user's own code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::counting::capture::Block;

/// One resolved stack frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The function, demangled, without its hash.
    pub function: String,
    /// The source file, relative to the current directory when it is below it.
    pub file: Option<String>,
    /// The line in `file`.
    pub line: Option<u32>,
}

impl Frame {
    /// `file:line` when known, else the function.
    pub fn location(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            _ => "<unknown location>".into(),
        }
    }
}

/// Live memory allocated at one place in the user's code.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// Bytes still live from this site.
    pub bytes: u64,
    /// Blocks still live from this site.
    pub blocks: u64,
    /// The first frame in the user's own code (std, core, alloc, dependencies and no_leak folded
    /// away); `None` when no frame could be resolved.
    pub frame: Option<Frame>,
    /// A few frames of context: the callers of `frame`, innermost first.
    pub context: Vec<Frame>,
    /// The allocation was made while spawning a thread: `frame` is the spawn site.
    pub spawns_thread: bool,
    /// The blocks came from the C heap (`malloc` and its family, feature `ffi`): `frame` is the
    /// line of the user's code that called into C.
    pub c_heap: bool,
    /// Who holds this site's memory (a static, a thread, a cycle, nothing), for the heap sites of a
    /// failing `#[no_leak]` test; `None` where it was not looked for.
    pub held_by: Option<crate::diagnosis::retention::HeldBy>,
}

/// Frames of context kept under each site.
const CONTEXT: usize = 3;

/// When the symbolizer was last used, as milliseconds since [`symbol_epoch`]; 0 when its caches
/// are empty.
static SYMBOLS_USED_AT: AtomicU64 = AtomicU64::new(0);

/// A report idle this long gives the symbolizer's caches back.
const SYMBOLS_IDLE: Duration = Duration::from_secs(1);

fn symbol_epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The name of the check whose report last used the symbolizer, hashed.
static SYMBOLS_USED_BY: AtomicU64 = AtomicU64::new(0);

fn name_hash(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

/// Records that the symbolizer now holds parsed debug info (tens of MB in a debug test binary),
/// for the report of the check named `name`.
pub(crate) fn symbols_used(name: &str) {
    let ms = symbol_epoch().elapsed().as_millis() as u64;
    SYMBOLS_USED_BY.store(name_hash(name), Ordering::Relaxed);
    SYMBOLS_USED_AT.store(ms.max(1), Ordering::Relaxed);
}

/// Gives the symbolizer's caches back when no report has used them for [`SYMBOLS_IDLE`], or when
/// the check now starting (named `name`) is another than the one that used them: called as a
/// check starts, before anything is measured, so that the caches neither show in later checks'
/// live heap nor stay for the rest of the run, while the failing checks of one property (its
/// shrink steps, back to back under one name) keep them and are not slowed down by parsing debug
/// info again.
pub(crate) fn release_symbols_if_idle(name: &str) {
    let used = SYMBOLS_USED_AT.load(Ordering::Relaxed);
    if used == 0 {
        return;
    }
    let idle = (symbol_epoch().elapsed().as_millis() as u64).saturating_sub(used);
    let other = SYMBOLS_USED_BY.load(Ordering::Relaxed) != name_hash(name);
    if (other || idle >= SYMBOLS_IDLE.as_millis() as u64)
        && SYMBOLS_USED_AT
            .compare_exchange(used, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        backtrace::clear_symbol_cache();
    }
}

/// Groups live blocks by the first user frame of their stack, biggest first.
pub(crate) fn group(blocks: &[Block]) -> Vec<Site> {
    let mut resolver = Resolver::new();
    let mut sites: Vec<Site> = Vec::new();
    for block in blocks {
        let frames: Vec<Frame> = resolver
            .frames(block.stack.ips())
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        let site = site_of(&frames, block.c_heap);
        match sites
            .iter_mut()
            .find(|s| s.frame == site.frame && s.c_heap == site.c_heap)
        {
            Some(s) => {
                s.bytes += block.size as u64;
                s.blocks += 1;
                s.spawns_thread |= site.spawns_thread;
            }
            None => sites.push(Site {
                bytes: block.size as u64,
                blocks: 1,
                ..site
            }),
        }
    }
    sort_sites(&mut sites);
    sites
}

/// Sites with a frame of the user's code first, then biggest first (bytes, then blocks), ties by
/// location: memory that std's internals allocated on the test's threads (a leaked thread's own
/// bookkeeping) says less about where to look.
pub(crate) fn sort_sites(sites: &mut [Site]) {
    sites.sort_by(|a, b| {
        let unplaced = |s: &Site| s.frame.is_none();
        let size = |s: &Site| std::cmp::Reverse((s.bytes, s.blocks));
        (unplaced(a), size(a))
            .cmp(&(unplaced(b), size(b)))
            .then_with(|| {
                a.frame
                    .as_ref()
                    .map(Frame::location)
                    .cmp(&b.frame.as_ref().map(Frame::location))
            })
    });
}

/// The index in `frames` of the site frame: the first frame in the user's own code, else the first
/// outside std and no_leak. The second value is whether the first is a user frame. For a block of
/// the C heap (`c_heap`), the user's frame is the first one in Rust: the C library's own frames
/// (with or without debug info) are not where the user looks.
fn site_index<'a>(
    mut frames: impl Iterator<Item = &'a Frame> + Clone,
    c_heap: bool,
) -> Option<(usize, bool)> {
    let foreign = |f: &Frame| c_heap && !f.file.as_deref().is_some_and(|p| p.ends_with(".rs"));
    frames
        .clone()
        .position(|f| !is_internal(f) && !is_dependency(f) && !foreign(f))
        .map(|u| (u, true))
        .or_else(|| frames.position(|f| !is_internal(f)).map(|i| (i, false)))
}

/// The site of one resolved stack (innermost frame first), with zero bytes and blocks; `c_heap`:
/// the block came from the C heap.
pub(crate) fn site_of(frames: &[Frame], c_heap: bool) -> Site {
    let site = site_index(frames.iter(), c_heap);
    let first_user = site.and_then(|(i, user)| user.then_some(i));
    // Made by a spawn call: a spawn frame lies between the allocator and the user's frame
    // (allocations made *on* the new thread have the spawn frames outside the user's).
    let spawns_thread =
        first_user.is_some_and(|u| frames[..u].iter().any(|f| is_spawn(&f.function)));
    let frame = site.map(|(i, _)| frames[i].clone());
    // Context: the callers, one frame per function (closures folded into their function).
    let mut context: Vec<Frame> = Vec::new();
    let mut last = frame.as_ref().map(|f| base_name(&f.function).to_string());
    for f in frames
        .iter()
        .skip(first_user.map_or(frames.len(), |u| u + 1))
    {
        if context.len() == CONTEXT {
            break;
        }
        if is_internal(f) || is_dependency(f) || f.file.is_none() {
            continue;
        }
        let name = base_name(&f.function);
        if last.as_deref() != Some(name) {
            last = Some(name.to_string());
            context.push(f.clone());
        }
    }
    Site {
        bytes: 0,
        blocks: 0,
        frame,
        context,
        spawns_thread,
        c_heap,
        held_by: None,
    }
}

/// A resolved stack with std folded away, innermost first: the site frame (see [`site_of`]) and
/// its callers, leaving out frames of std, core, alloc, no_leak and the unwinder (dependencies'
/// frames stay: in a call graph they are the path from the user's code to the allocation). A
/// stack with no frame outside std is kept whole. Each frame comes with the address it was
/// resolved from.
pub(crate) fn fold(frames: Vec<(usize, Frame)>) -> Vec<(usize, Frame)> {
    let Some((start, _)) = site_index(frames.iter().map(|(_, f)| f), false) else {
        return frames;
    };
    frames
        .into_iter()
        .skip(start)
        .filter(|(_, f)| !is_internal(f))
        .collect()
}

/// Resolves instruction pointers into frames, each distinct address once. Resolving takes the
/// backtrace crate's lock: while capture is on, do it inside [`without_capture`].
pub(crate) struct Resolver {
    roots: Vec<String>,
    cache: HashMap<usize, Vec<Frame>>,
}

impl Resolver {
    pub(crate) fn new() -> Resolver {
        Resolver {
            roots: project_roots(),
            cache: HashMap::new(),
        }
    }

    /// Every frame of a stack, innermost first, with inlined frames expanded (innermost first
    /// too), each with the address it was resolved from. Nothing is folded.
    pub(crate) fn frames(&mut self, ips: &[usize]) -> Vec<(usize, Frame)> {
        let mut out = Vec::new();
        for &ip in ips {
            let roots = &self.roots;
            let fs = self.cache.entry(ip).or_insert_with(|| resolve(ip, roots));
            out.extend(fs.iter().map(|f| (ip, f.clone())));
        }
        out
    }
}

/// The folders a source path is shown relative to, each ending in `/`: the working directory
/// (where `cargo test` runs a package's tests) and `CARGO_MANIFEST_DIR` (which cargo sets for
/// them), written with `/`. Both, because the build's paths can differ from the runtime's: a
/// Windows binary built on Linux and run under Wine has `/work/x/src/lib.rs` in its debug info but
/// `Z:\work\x` as its working directory.
fn project_roots() -> Vec<String> {
    let cwd = std::env::current_dir()
        .ok()
        .map(|d| d.display().to_string());
    let manifest = std::env::var("CARGO_MANIFEST_DIR").ok();
    let mut roots: Vec<String> = Vec::new();
    for dir in cwd.into_iter().chain(manifest) {
        let dir = format!("{}/", with_slashes(&dir).trim_end_matches('/'));
        if !roots.contains(&dir) {
            roots.push(dir);
        }
    }
    roots
}

/// A path with `/` between its components, as reports show every path on every OS.
fn with_slashes(path: &str) -> String {
    if cfg!(windows) {
        path.replace('\\', "/")
    } else {
        path.to_string()
    }
}

/// `path` relative to the first of `roots` it lies in, with `/` between components.
fn relative_to(path: &str, roots: &[String]) -> String {
    let path = with_slashes(path);
    roots
        .iter()
        .find_map(|r| path.strip_prefix(r.as_str()))
        .map_or_else(|| path.clone(), str::to_string)
}

fn resolve(ip: usize, roots: &[String]) -> Vec<Frame> {
    let mut out = Vec::new();
    backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
        let function = sym
            .name()
            .map(|n| format!("{n:#}"))
            .unwrap_or_else(|| format!("{ip:#x}"));
        let file = sym
            .filename()
            .map(|p| relative_to(&p.display().to_string(), roots));
        out.push(Frame {
            function,
            file,
            line: sym.lineno(),
        });
    });
    if out.is_empty() {
        out.push(Frame {
            function: format!("{ip:#x}"),
            file: None,
            line: None,
        });
    }
    out
}

const INTERNAL_PREFIXES: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "backtrace::",
    "hashbrown::",
    "<std::",
    "<core::",
    "<alloc::",
    "<no_leak::",
    "<backtrace::",
    "<hashbrown::",
    "__rust",
    "__rdl",
    "__rg_",
    "_Unwind",
    "rust_begin_unwind",
    "__libc_start",
    "start_thread",
    "clone",
    "__clone",
    // Where Windows starts a thread or the process.
    "BaseThreadInitThunk",
    "RtlUserThreadStart",
    "mainCRTStartup",
    "__tmainCRTStartup",
];

/// Frames of std, core, alloc, no_leak and the unwinder.
fn is_internal(f: &Frame) -> bool {
    if let Some(file) = &f.file {
        // std's own sources, and the crates std vendors (its backtrace symboliser, hashbrown...).
        if file.starts_with("/rustc/")
            || file.starts_with("/rust/deps/")
            || file.contains("/library/std/")
            || file.contains("/library/core/")
            || file.contains("/library/alloc/")
        {
            return true;
        }
    }
    // The C heap's interposers (feature `ffi`): unmangled names, so known by their file.
    if (f.file.as_deref()).is_some_and(|p| p.ends_with("src/counting/c_heap/interpose.rs")) {
        return true;
    }
    let name = f.function.as_str();
    // no_leak's own frames, but not its unit tests.
    (name.starts_with("no_leak::") && !name.contains("::tests::"))
        || INTERNAL_PREFIXES.iter().any(|p| name.starts_with(p))
        || [" as core::", " as alloc::", " as std::"]
            .iter()
            .any(|p| name.contains(p) && f.file.is_none())
        || name.starts_with("<[")
}

/// Frames of crates from a registry or git dependency: the user's call into them is more useful.
fn is_dependency(f: &Frame) -> bool {
    f.file
        .as_deref()
        .is_some_and(|p| p.contains("/.cargo/registry/") || p.contains("/.cargo/git/"))
}

/// A function's name without trailing `::{{closure}}` parts.
fn base_name(function: &str) -> &str {
    let mut n = function;
    while let Some(stripped) = n.strip_suffix("::{{closure}}") {
        n = stripped;
    }
    n
}

fn is_spawn(function: &str) -> bool {
    function.starts_with("std::thread::Builder::spawn")
        || function.starts_with("std::thread::spawn")
        || function.starts_with("std::thread::scoped::")
        || function.contains("std::thread::lifecycle::spawn")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting::capture::{Capture, Who};

    #[test]
    fn a_source_path_is_shown_relative_to_the_project_with_slashes() {
        let roots = ["/work/x/".to_string(), "C:/p/".to_string()];
        assert_eq!(relative_to("/work/x/src/lib.rs", &roots), "src/lib.rs");
        assert_eq!(
            relative_to("/elsewhere/lib.rs", &roots),
            "/elsewhere/lib.rs"
        );
        if cfg!(windows) {
            assert_eq!(relative_to(r"C:\p\src\lib.rs", &roots), "src/lib.rs");
        }
    }

    #[inline(never)]
    fn leak_here() -> usize {
        Box::leak(Box::new([1u8; 40])).len() // site: leak_here
    }

    #[test]
    fn session_captures_calling_thread_and_names_the_line() {
        let cap =
            Capture::start_within(Who::CallingThread, std::time::Duration::from_secs(10)).unwrap();
        leak_here();
        let kept = vec![0u8; 10];
        drop(kept);
        let blocks = cap.finish();
        let sites = group(&blocks);
        let first = sites.first().expect("the leaked block is live");
        assert_eq!((first.bytes, first.blocks), (40, 1), "{sites:#?}");
        let frame = first.frame.as_ref().unwrap();
        assert_eq!(
            frame.file.as_deref(),
            Some("src/diagnosis/sites.rs"),
            "{frame:?}"
        );
        let want = include_str!("sites.rs")
            .lines()
            .position(|l| l.ends_with("// site: leak_here"))
            .unwrap()
            + 1;
        assert_eq!(frame.line, Some(want as u32), "{frame:?}");
        assert!(frame.function.ends_with("leak_here"), "{frame:?}");
    }

    #[test]
    fn nested_session_on_the_same_thread_is_refused() {
        let outer =
            Capture::start_within(Who::CallingThread, std::time::Duration::from_secs(10)).unwrap();
        assert!(
            Capture::start_within(Who::CallingThread, std::time::Duration::from_secs(10)).is_none()
        );
        drop(outer);
        assert!(
            Capture::start_within(Who::CallingThread, std::time::Duration::from_secs(10)).is_some()
        );
    }

    #[test]
    fn frees_on_another_thread_remove_entries() {
        let cap =
            Capture::start_within(Who::CallingThread, std::time::Duration::from_secs(10)).unwrap();
        let b = vec![0u8; 1234];
        std::thread::spawn(move || drop(b)).join().unwrap();
        let blocks = cap.finish();
        assert!(
            blocks.iter().all(|b| b.size != 1234),
            "the freed block is not live"
        );
    }
}
