//! Where a `#[no_leak]` test runs, and every child process of the test binary.
//!
//! `runner` is what the attributes expand to call. Under plain `cargo test` (many tests share the
//! process) a test runs again alone in a child process; under nextest, or in that child, it
//! measures in place.
//!
//! # Roles
//!
//! A child is started for one reason, its [`Role`](role::Role):
//! - `Verdict` (`child`): measure the test alone and pass its verdict back. Its stdout and stderr
//!   are replayed by the parent, without libtest's own lines. No timeout: a test may be slow, and
//!   libtest has none either.
//! - `Retain { runs }` (`retain`): run the body `runs` times (as often as the failing check did
//!   before its diagnostic run), once more with capture on, and pass back who holds each heap
//!   site (`diagnosis::retention` classifies). Its output is thrown away, it writes no JSON line
//!   (`NO_LEAK_REPORT` is removed from its environment), and it is killed after 60 s (capture
//!   makes every allocation slow); the sites then say so.
//!
//! # The child
//!
//! [`spawn::run`] starts `<exe> <test> --exact --test-threads=1 --nocapture --include-ignored`
//! (libtest names each test's thread after the test, so `<test>` is the thread's name) with no
//! standard input. One variable, `NO_LEAK_CHILD`, carries the role, the test and the result file
//! (`role::Assignment`); the child reads it once and takes the role only on the thread of that
//! test (`role::for_this_thread`). Every other `NO_LEAK*` variable, and which children inherit
//! it, is listed in `vars`: a child never inherits an outer child's role.
//!
//! The result file is `no_leak-<pid>-<sequence>-<nanoseconds>.<role>` in the temporary directory,
//! removed once the child has ended, however it ended (killed on its timeout included). What is
//! in it is written in one format for every role (`wire`). A child that wrote nothing ran no test
//! by that name, or crashed: the parent says which, with the status and the last lines of its
//! stderr.
//!
//! # A failing test under `cargo test`
//!
//! 1. The parent's test thread plans `Isolate` and starts a `Verdict` child for its test.
//! 2. The child plans `Child(Verdict)`, and measures (`check::engine::measure`). The growth
//!    repeats: the diagnostic run captures the sites; a heap leak records on the report that
//!    holders are wanted (`Report::holders_wanted`), and after how many runs.
//! 3. The child (`runner`) starts a `Retain` child of its own for the same test, which plans
//!    `Child(Retain)`, runs the body and the scan, writes its sites and exits. The child merges
//!    their holders into its report's sites (`diagnosis::retention::attach`); outside Linux no
//!    retain child is started and every site says why ("not determined (the retention scan runs
//!    on Linux only ...)").
//! 4. The child ends the check (`verdict::end`: the report, the JSON line), writes the verdict to
//!    its result file and exits; the parent replays its output and panics with the report.
//!
//! Under nextest the test's own process takes steps 2 to 4 in place. A closure check
//! (`no_leak::check`) is never re-run in a child, so its sites have no holder.

pub(crate) mod child;
pub(crate) mod retain;
pub(crate) mod role;
pub(crate) mod runner;
pub(crate) mod spawn;
pub(crate) mod vars;
pub(crate) mod wire;
