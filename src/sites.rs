//! Allocation sites: which line allocated the memory that leaked.
//!
//! Capturing a stack on every allocation is slow (dhat-rs pays ~100x), so it never happens on the
//! passing path. Only after the counts have shown a heap leak does the engine run the body once
//! more with capture on (a *diagnostic run*): every allocation made during that run records its
//! stack in a table keyed by address, every free removes its entry, and what is left at the end is
//! the memory the run leaked, grouped by the first frame in the user's own code.
//!
//! The traps of in-allocator capture, and how they are avoided:
//! - Re-entrancy: capturing a stack and inserting into the table may allocate. A thread-local
//!   flag, reset by an RAII guard, makes those nested allocations count but not capture.
//! - Lock order: the table's lock is never held while the unwinder (`backtrace::trace`, which
//!   takes the backtrace crate's lock) runs, and symbolisation happens only after capture is off,
//!   so no thread can hold one lock while waiting for the other (dhat-rs issue #38).
//! - Symbolisation cost: stacks are stored as raw instruction pointers and resolved once per
//!   distinct address, after the run, only for a failing check.
//! - One diagnostic run at a time: sessions are serialised; a session nested in another on the
//!   same thread (a check inside a diagnostic run) is skipped rather than deadlock.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::alloc;

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

/// Called by the allocator for a captured allocation.
pub(crate) fn on_alloc(ptr: usize, size: usize) {
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
            map.insert(ptr, Block { size, stack });
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
        let deadline = std::time::Instant::now() + patience;
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            if IN_SESSION.with(Cell::get) {
                return None;
            }
            if let Some(c) = Capture::try_start(who) {
                return Some(c);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return None;
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(std::time::Duration::from_millis(50));
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
}

/// Frames of context kept under each site.
const CONTEXT: usize = 3;

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
        let site = site_of(&frames);
        match sites.iter_mut().find(|s| s.frame == site.frame) {
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

/// Biggest first (bytes, then blocks), ties by location.
pub(crate) fn sort_sites(sites: &mut [Site]) {
    sites.sort_by(|a, b| {
        (b.bytes, b.blocks).cmp(&(a.bytes, a.blocks)).then_with(|| {
            a.frame
                .as_ref()
                .map(Frame::location)
                .cmp(&b.frame.as_ref().map(Frame::location))
        })
    });
}

/// The index in `frames` of the site frame: the first frame in the user's own code, else the first
/// outside std and no_leak. The second value is whether the first is a user frame.
fn site_index<'a>(mut frames: impl Iterator<Item = &'a Frame> + Clone) -> Option<(usize, bool)> {
    frames
        .clone()
        .position(|f| !is_internal(f) && !is_dependency(f))
        .map(|u| (u, true))
        .or_else(|| frames.position(|f| !is_internal(f)).map(|i| (i, false)))
}

/// The site of one resolved stack (innermost frame first), with zero bytes and blocks.
pub(crate) fn site_of(frames: &[Frame]) -> Site {
    let site = site_index(frames.iter());
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
    }
}

/// A resolved stack with std folded away, innermost first: the site frame (see [`site_of`]) and
/// its callers, leaving out frames of std, core, alloc, no_leak and the unwinder (dependencies'
/// frames stay: in a call graph they are the path from the user's code to the allocation). A
/// stack with no frame outside std is kept whole. Each frame comes with the address it was
/// resolved from.
pub(crate) fn fold(frames: Vec<(usize, Frame)>) -> Vec<(usize, Frame)> {
    let Some((start, _)) = site_index(frames.iter().map(|(_, f)| f)) else {
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
    cwd: Option<String>,
    cache: HashMap<usize, Vec<Frame>>,
}

impl Resolver {
    pub(crate) fn new() -> Resolver {
        Resolver {
            cwd: std::env::current_dir()
                .ok()
                .map(|d| format!("{}/", d.display())),
            cache: HashMap::new(),
        }
    }

    /// Every frame of a stack, innermost first, with inlined frames expanded (innermost first
    /// too), each with the address it was resolved from. Nothing is folded.
    pub(crate) fn frames(&mut self, ips: &[usize]) -> Vec<(usize, Frame)> {
        let mut out = Vec::new();
        for &ip in ips {
            let cwd = self.cwd.as_deref();
            let fs = self.cache.entry(ip).or_insert_with(|| resolve(ip, cwd));
            out.extend(fs.iter().map(|f| (ip, f.clone())));
        }
        out
    }
}

/// Runs `f` with allocation capture off for this thread: what it allocates is counted but not
/// captured, and it may take the backtrace crate's lock while other threads capture (they wait
/// for it, and it never waits for the table's lock).
pub(crate) fn without_capture<R>(f: impl FnOnce() -> R) -> R {
    let _guard = Reentry::enter();
    f()
}

fn resolve(ip: usize, cwd: Option<&str>) -> Vec<Frame> {
    let mut out = Vec::new();
    backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
        let function = sym
            .name()
            .map(|n| format!("{n:#}"))
            .unwrap_or_else(|| format!("{ip:#x}"));
        let file = sym.filename().map(|p| {
            let p = p.display().to_string();
            match cwd {
                Some(c) if p.starts_with(c) => p[c.len()..].to_string(),
                _ => p,
            }
        });
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
        assert_eq!(frame.file.as_deref(), Some("src/sites.rs"), "{frame:?}");
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
