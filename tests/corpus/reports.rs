//! Whole failure reports, pinned as reviewed insta snapshots in `tests/snapshots/`, the one
//! folder of this package's snapshots.
//!
//! Each snapshot is the real panic text of a failing test of this binary: the binary runs again
//! on that one test (`<exe> <test> --exact --nocapture --test-threads=1`), where it passes
//! (`#[should_panic]`) and prints the panic on the way. Under `cargo test` that child isolates the
//! test in a grandchild, as every `#[no_leak]` test does; under `cargo nextest run` the child
//! inherits nextest's process-per-test mode and measures in place, so one snapshot pins both.
//!
//! What varies from run to run, or with the machine, is redacted; the exact figures of the
//! patterns (net bytes and blocks, per-run deltas, site sizes, thread and fd counts) are kept.
//! Source locations `tests/...rs:LINE` are shown as the text of that line, so a snapshot does not
//! change when code above the line moves. See the crate docs for the regeneration command.

use std::process::Command;

use no_leak::no_leak;

/// Redactions for every snapshot, applied in order.
const VARYING: &[(&str, &str)] = &[
    // Thread states: a sleeping thread may be caught running.
    (
        r#"(?m)^(    - (?:\d+ x|tid \d+) "[^"]*") .*?( \(tids [^)]*\))?$"#,
        "$1 [state]$2",
    ),
    (r"\(tids [\d, ]+\)", "(tids [tids])"),
    (r"- tid \d+ ", "- tid [tid] "),
    (r"\(fds [\d, ]+\)", "(fds [fds])"),
    (r"- fd \d+ ", "- fd [fd] "),
    (r"socket:\[\d+\]", "socket:[inode]"),
    (r"/proc/\d+/", "/proc/[pid]/"),
    // Open fds before and after depend on what the harness inherited; the net count stays.
    (r"(?m)^(  fds:       )\d+ -> \d+ ", "$1[n] -> [n] "),
    // Live totals include the harness's own heap.
    (
        r"(?m)^(  live:      )\d+ B, \d+ blocks -> \d+ B, \d+ blocks",
        "$1[N] B, [N] blocks -> [N] B, [N] blocks",
    ),
    (r"waited \d+ ms", "waited [N] ms"),
    (r"in \d+ ms \(", "in [N] ms ("),
    // What the confirmation windows grew by includes the harness's and the runtime's one-time
    // growth; that they grew, in how many runs, stays.
    (r"[+-]?\d+ B/[+-]?\d+ blocks", "[N] B/[N] blocks"),
    // libtest's thread id in the panic header (newer toolchains print it).
    (r"thread '([^']*)' \(\d+\) panicked", "thread '$1' panicked"),
];

/// Soak samples and floors are live totals, which include the harness's own heap and fds; the
/// slope and the thread floors stay.
const LIVE_TRENDS: &[(&str, &str)] = &[
    (
        r"(?m)^(  heap:      .*; floors by quarter: ).*? B",
        "$1[N], [N], [N], [N] B",
    ),
    (
        r"(?m)^(  (?:blocks|fds): .*; floors by quarter: ).*$",
        "$1[N], [N], [N], [N]",
    ),
    (r"(\d+): \d+ B", "$1: [N] B"),
];

/// Where the heap holds std's or tokio's own structures (a spawned thread's, a task's), their
/// sizes change with the platform and the toolchain: the heap totals are redacted, and so are the
/// sizes of the sites that spawn.
const RUNTIME_SIZES: &[(&str, &str)] = &[
    (
        r"(leaked [a-z, ]+: )[+-]?\d+ B, [+-]?\d+ blocks",
        "$1[N] B, [N] blocks",
    ),
    (
        r"(?m)^(  heap:      )[+-]?\d+ B, [+-]?\d+ blocks",
        "$1[N] B, [N] blocks",
    ),
    (r"(?m)^(  per run:   ).*(  \(B/blocks\))$", "$1[deltas]$2"),
    (
        r"max_bytes = \d+, max_blocks = \d+",
        "max_bytes = [N], max_blocks = [N]",
    ),
    (
        r"(?m)^(    - )\d+ B in \d+ blocks? (at [^`]*`[^`]*\.spawn\()",
        "$1[N] B in [N] blocks $2",
    ),
];

/// A thread spawned in the diagnostic run may or may not have made its own start-up allocations
/// (std's, with no frame of the user's code) when the sites are taken: those lines, and the count
/// of sites they change, are left out of snapshots of thread leaks.
const THREAD_START: &[(&str, &str)] = &[
    (
        r"(?m)^    - \d+ B in \d+ blocks? with no frame of your code \(std internals\)\n(?:        .*\n)*",
        "",
    ),
    (
        r"by allocating line \(\d+ of \d+\)",
        "by allocating line ([n] of [n])",
    ),
    // Whether every block of a spawn line has the thread as holder, or only most of them (the
    // line then ends in "(k of n blocks)"), depends on whether the newest thread had started:
    // until it has, the closure std boxed for it is reached from nowhere the scan reads.
    (r" \(\d+ of \d+ blocks\)", ""),
    // A spawned thread's own bookkeeping (its `Thread` and result packet) is reached from its
    // stack and from the spawning thread's: which one the scan names depends on where each stack
    // pointer was when it was read. That a thread holds it stays.
    (
        r#"held by thread "[^"]*", via"#,
        r#"held by thread "[a thread]", via"#,
    ),
    // On a loaded machine a running thread's stack may not be readable at scan time: then what
    // nothing readable reaches is "not determined" rather than "unreachable".
    (
        r"(?m)^(        )(?:unreachable: nothing points at it \(Box::leak, mem::forget, a lost raw pointer\)|held by: not determined \(not reached from any root, and the stack of .* could not be read \(running\)\))$",
        "$1[unreachable, or not determined while a thread's stack could not be read]",
    ),
];

/// How the child run is set up.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// As this test runs: under nextest the child measures in place, else it isolates itself.
    Inherit,
    /// A plain `cargo test` process whatever runs this test, so a check on the test thread
    /// shares its process with the harness.
    Shared,
}

/// The panic text that the test `name` of this binary prints when it fails.
fn panic_text(name: &str, mode: Mode) -> String {
    let plots = std::env::temp_dir().join(format!("no_leak-reports-{}", std::process::id()));
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("RUST_BACKTRACE", "0")
        .env("NO_LEAK_SITES", "all")
        .env("NO_LEAK_PLOT_DIR", &plots)
        .env_remove("NO_LEAK")
        .env_remove("NO_LEAK_REPORT");
    if mode == Mode::Shared {
        cmd.env_remove("NEXTEST")
            .env_remove("NEXTEST_EXECUTION_MODE");
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&plots);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`{name}` must fail as expected:\n{text}"
    );
    assert!(text.contains("1 passed"), "`{name}` did not run:\n{text}");
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !(l.starts_with("thread '") && l.contains(" panicked at ")))
        .take_while(|l| !l.starts_with("note: ") && !l.starts_with("test "))
        .collect();
    assert!(!lines.is_empty(), "no panic from `{name}`:\n{text}");
    lines
        .join("\n")
        .replace(&plots.display().to_string(), "[plot dir]")
}

/// `tests/FILE.rs:LINE` and `tests/FILE.rs:LINE:COL` shown as `tests/FILE.rs:[`text of the line`]`,
/// also inside a list (`at tests/a.rs:18, tests/a.rs:24, ...`).
fn with_source_lines(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("tests/") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ')' || c == ',')
            .unwrap_or(rest.len());
        let location = rest[..end].trim_end_matches(':');
        let mut parts = location.split(':');
        let (file, line) = (parts.next().unwrap(), parts.next());
        match line.and_then(|l| l.parse::<usize>().ok()) {
            Some(line) if file.ends_with(".rs") => {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
                let src = std::fs::read_to_string(&path).unwrap();
                let code = src.lines().nth(line - 1).unwrap().trim();
                out.push_str(&format!("{file}:[`{code}`]"));
                rest = &rest[location.len()..];
                rest = rest.strip_prefix(':').unwrap_or(rest);
            }
            _ => {
                out.push_str("tests/");
                rest = &rest["tests/".len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Pins the failure report of the test `name` as the snapshot `snapshot`.
fn assert_report(snapshot: &str, name: &str, mode: Mode, filters: &[&[(&str, &str)]]) {
    let text = panic_text(name, mode).replace(env!("CARGO_MANIFEST_DIR"), "[manifest]");
    let text = with_source_lines(&text);
    let filters: Vec<(&str, &str)> = filters.iter().flat_map(|f| f.iter().copied()).collect();
    insta::with_settings!({
        filters => filters,
        // Relative to this file: `tests/snapshots/`, next to the other tests' snapshots.
        snapshot_path => "../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => format!("the panic text of `{name}`"),
    }, {
        insta::assert_snapshot!(snapshot, text);
    });
}

#[test]
fn heap_rc_cycle() {
    let test = "cycles::rc_cycle::rc_cycle::leaks";
    assert_report("heap_rc_cycle", test, Mode::Inherit, &[VARYING]);
}

#[test]
fn heap_on_a_joined_thread() {
    let test = "threads::joined_thread::leak_on_joined_thread::leaks";
    assert_report("heap_on_a_joined_thread", test, Mode::Inherit, &[VARYING]);
}

#[test]
fn threads_forever() {
    let test = "threads::thread_never_exits::spawn_forever_thread::leaks";
    let filters = [VARYING, RUNTIME_SIZES, THREAD_START];
    assert_report("threads_forever", test, Mode::Inherit, &filters);
}

#[test]
fn fds_sockets() {
    let test = "rust_own::socket_in_static::park_socket_in_static::leaks";
    assert_report("fds_sockets", test, Mode::Inherit, &[VARYING]);
}

#[test]
fn fds_files() {
    let test = "rust_own::file_in_static::park_file_in_static::leaks";
    assert_report("fds_files", test, Mode::Inherit, &[VARYING]);
}

#[test]
fn heap_threads_fds() {
    let test = "reports::subjects::leaks_heap_threads_and_fds";
    let filters = [VARYING, RUNTIME_SIZES, THREAD_START];
    assert_report("heap_threads_fds", test, Mode::Inherit, &filters);
}

#[test]
fn peak() {
    let test = "reports::subjects::transient_64_mib_over_a_4_kib_peak_bound";
    assert_report("peak", test, Mode::Inherit, &[VARYING]);
}

#[test]
fn tasks() {
    let test = "reports::subjects::task_that_never_ends";
    let filters = [VARYING, RUNTIME_SIZES, THREAD_START];
    assert_report("tasks", test, Mode::Inherit, &filters);
}

#[test]
fn soak() {
    let test = "reports::subjects::soak_one_box_every_100_iterations";
    assert_report("soak", test, Mode::Inherit, &[VARYING, LIVE_TRENDS]);
}

#[test]
fn calling_thread_scope() {
    let test = "reports::subjects::check_on_a_shared_test_thread";
    assert_report("calling_thread_scope", test, Mode::Shared, &[VARYING]);
}

/// The failing tests whose reports are pinned above, where no corpus pattern fails that way.
mod subjects {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{LazyLock, Mutex};
    use tokio::runtime::{Builder, Runtime};

    static FILES: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());

    #[test]
    #[no_leak(settle_ms = 300)]
    #[should_panic(expected = "leaked heap, threads, fds: ")]
    fn leaks_heap_threads_and_fds() {
        Box::leak(vec![0u8; 24].into_boxed_slice());
        std::thread::Builder::new()
            .name("parked".into())
            .spawn(|| loop {
                std::thread::park();
            })
            .unwrap();
        let f = std::fs::File::open("Cargo.toml").unwrap();
        FILES.lock().unwrap().push(f);
    }

    #[test]
    #[no_leak(max_peak_bytes = 4096)]
    #[should_panic(expected = "leaked peak: ")]
    fn transient_64_mib_over_a_4_kib_peak_bound() {
        crate::guards::large_transient_allocation();
    }

    /// A long-lived runtime, watched.
    fn service() -> &'static Runtime {
        static RT: LazyLock<Runtime> = LazyLock::new(|| {
            let rt = Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("reports-service")
                .enable_time()
                .build()
                .expect("the service runtime");
            no_leak::watch_runtime(rt.handle());
            rt
        });
        &RT
    }

    #[test]
    #[no_leak(settle_ms = 300)]
    #[should_panic(expected = "leaked heap, tasks: ")]
    fn task_that_never_ends() {
        service().spawn(std::future::pending::<()>());
    }

    #[test]
    #[no_leak(soak = 2000)]
    #[should_panic(expected = "leaked heap: ")]
    fn soak_one_box_every_100_iterations() {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        if CALLS.fetch_add(1, Ordering::Relaxed).is_multiple_of(100) {
            Box::leak(Box::new(0u64));
        }
    }

    #[test]
    #[should_panic(expected = "leaked heap: ")]
    fn check_on_a_shared_test_thread() {
        no_leak::Config::new().check(crate::rust_own::mem_forget::forget_vec);
    }
}
