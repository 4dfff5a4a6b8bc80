//! What `#[no_leak]` and `#[no_leak::isolated]` expand to call.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::check::config::Config;
use crate::check::engine;
use crate::check::env;
use crate::check::outcome::Outcome;
use crate::counting::heap::Scope;
use crate::isolation::role::{self, Role};
use crate::isolation::{child, retain};
use crate::verdict::{self, Came, Kind, ShouldPanic};

/// Where the test measures: here (the process is already quiet, or this is not a libtest test
/// thread), or in a child started for it.
enum Plan {
    /// This process is a child started for this test in this role: run, write the result to this
    /// file, exit.
    Child(Role, &'static std::path::Path),
    /// Run in this process.
    Here,
    /// Start a child for the test with this name.
    Isolate(String),
}

fn plan() -> Plan {
    if let Some((role, path)) = role::for_this_thread() {
        return Plan::Child(role, path);
    }
    if env::quiet_process() {
        return Plan::Here;
    }
    match std::thread::current().name() {
        Some(name) if name != "main" => Plan::Isolate(name.to_string()),
        _ => Plan::Here,
    }
}

fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string()
}

/// Measures `body` in this process and decides how the test ends.
fn measure_here<R: Outcome>(config: &Config, body: &mut impl FnMut() -> R) -> Came<R> {
    match catch_unwind(AssertUnwindSafe(|| {
        engine::measure(config, Scope::Process, &mut *body)
    })) {
        Ok(Ok(report)) => Came::Measured(Box::new(report)),
        Ok(Err(r)) => Came::Failed(r),
        Err(payload) => Came::Panicked(payload),
    }
}

/// Measures `#[no_leak]` test `name` in this process; when a heap leak wants its sites' holders,
/// a retain child finds them.
fn measure_test<R: Outcome>(name: &str, config: &Config, body: &mut impl FnMut() -> R) -> Came<R> {
    let mut came = measure_here(config, body);
    if let Came::Measured(report) = &mut came {
        retain::attach_holders(name, report);
    }
    came
}

/// Runs the test in a child process and takes its verdict.
fn in_child<R: Outcome>(name: &str) -> Came<R> {
    match child::run_in_child(name) {
        Ok(verdict) => Came::FromChild(verdict),
        Err(why) => Came::ChildCrashed(why),
    }
}

/// What the attribute knows about the test function it sits on.
#[derive(Clone, Copy, Debug)]
pub struct TestFn {
    /// `module_path!()` where the function is defined.
    pub module_path: &'static str,
    /// The function's name.
    pub name: &'static str,
    /// Its `#[should_panic]`, if any.
    pub should_panic: ShouldPanic,
}

impl TestFn {
    /// Whether `thread` (a libtest thread's name) is this function's own test: the module path
    /// without the crate's name, then `::` and the function's name (`tests::it`, or `it` at the
    /// root of an integration-test file).
    fn is_named(&self, thread: &str) -> bool {
        let module = self.module_path.split_once("::").map_or("", |(_, m)| m);
        match thread.strip_suffix(self.name) {
            Some("") => module.is_empty(),
            Some(prefix) => prefix.strip_suffix("::") == Some(module),
            None => false,
        }
    }

    /// Panics unless this function runs as its own test. `#[no_leak]` makes a function a test;
    /// called from another test it would measure, or re-run in a child process, the whole
    /// calling test rather than itself. A program's main thread may call it, and measures in
    /// place.
    #[track_caller]
    fn check_caller(&self, what: &str) {
        let thread = std::thread::current();
        let caller = match thread.name() {
            Some(name) if name == "main" || self.is_named(name) => return,
            Some(name) => format!("`{name}`"),
            None => "an unnamed thread".to_string(),
        };
        panic!(
            "no_leak: `{what}` fn `{}` was called from {caller}, not run as its own test; {what} makes a function a \
             test of its own, run by the test harness, not a helper to call. Call an undecorated \
             helper instead, and to check it for leaks inside a test, wrap the call: \
             `no_leak::check(|| {}())`",
            self.name, self.name
        );
    }
}

/// The body of a `#[no_leak]` test.
#[track_caller]
pub fn run_test<R: Outcome>(test: TestFn, config: Config, mut body: impl FnMut() -> R) -> R {
    test.check_caller("#[no_leak]");
    if env::is_off() {
        return body();
    }
    let kind = Kind::Test(test.should_panic);
    let name = test_name();
    match plan() {
        Plan::Child(Role::Retain { runs }, path) => {
            retain::run_child(runs, path, &mut || body().failure().is_none())
        }
        Plan::Child(Role::Verdict, path) => {
            let ending = verdict::end(kind, &name, measure_test(&name, &config, &mut body));
            child::finish_child(path, &ending.verdict)
        }
        Plan::Here => verdict::end(kind, &name, measure_test(&name, &config, &mut body)).conclude(),
        Plan::Isolate(name) => verdict::end(kind, &name, in_child::<R>(&name)).conclude(),
    }
}

/// The body of a `#[no_leak::isolated]` test: run once, alone in its own process.
#[track_caller]
pub fn run_isolated<R: Outcome>(test: TestFn, body: impl FnOnce() -> R) -> R {
    test.check_caller("#[no_leak::isolated]");
    if env::is_off() {
        return body();
    }
    match plan() {
        // Only a `#[no_leak]` test's report asks for holders.
        Plan::Child(Role::Retain { .. }, path) => retain::finish(
            path,
            &Err("only #[no_leak] tests are classified".to_string()),
        ),
        Plan::Child(Role::Verdict, path) => {
            let came = match catch_unwind(AssertUnwindSafe(body)) {
                Ok(r) if r.failure().is_some() => Came::Failed(r),
                Ok(_) => Came::FromChild(verdict::Verdict::Pass),
                Err(payload) => Came::Panicked(payload),
            };
            // An isolated test is not a leak check: it records no JSON line of its own.
            let ending = verdict::end(Kind::Closure, &test_name(), came);
            child::finish_child(path, &ending.verdict)
        }
        Plan::Here => body(),
        Plan::Isolate(name) => verdict::end(Kind::Closure, &name, in_child::<R>(&name)).conclude(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_fn(module_path: &'static str, name: &'static str) -> TestFn {
        TestFn {
            module_path,
            name,
            should_panic: ShouldPanic::No,
        }
    }

    #[test]
    fn a_test_thread_is_named_by_the_module_path_without_the_crate() {
        assert!(test_fn("no_leak::a::b", "it").is_named("a::b::it"));
        assert!(test_fn("corpus", "it").is_named("it"));
        assert!(test_fn("corpus::m", "case_1").is_named("m::case_1"));
        assert!(!test_fn("corpus", "it").is_named("m::it"));
        assert!(!test_fn("corpus::m", "it").is_named("it"));
        assert!(!test_fn("corpus::m", "it").is_named("xm::it"));
        assert!(!test_fn("corpus::m", "it").is_named("m::xit"));
        assert!(!test_fn("corpus", "helper").is_named("other"));
    }

    #[test]
    fn its_own_test_thread_passes_the_caller_check() {
        // This thread is named `isolation::runner::tests::its_own_test_thread_passes_...`.
        test_fn(
            module_path!(),
            "its_own_test_thread_passes_the_caller_check",
        )
        .check_caller("#[no_leak]");
    }

    #[test]
    fn another_test_thread_fails_the_caller_check_with_a_fix() {
        let r = std::panic::catch_unwind(|| {
            test_fn(module_path!(), "helper").check_caller("#[no_leak]")
        });
        let msg = r.unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert_eq!(
            msg,
            "no_leak: `#[no_leak]` fn `helper` was called from \
             `isolation::runner::tests::another_test_thread_fails_the_caller_check_with_a_fix`, \
             not run as its own test; #[no_leak] makes a function a test of its own, run by the test harness, not a helper \
             to call. Call an undecorated helper instead, and to check it for leaks inside a \
             test, wrap the call: `no_leak::check(|| helper())`"
        );
    }

    #[test]
    fn a_thread_named_main_passes_the_caller_check() {
        let r = std::thread::Builder::new()
            .name("main".to_string())
            .spawn(|| test_fn(module_path!(), "helper").check_caller("#[no_leak]"))
            .unwrap()
            .join();
        assert!(r.is_ok());
    }

    #[test]
    fn an_unnamed_thread_fails_the_caller_check() {
        let r = std::thread::spawn(|| test_fn(module_path!(), "helper").check_caller("#[no_leak]"))
            .join();
        let msg = r.unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("was called from an unnamed thread, not run as its own test;"),
            "{msg}"
        );
    }
}
