//! What `#[no_leak]` and `#[no_leak::isolated]` expand to call.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::check::config::Config;
use crate::check::engine;
use crate::check::env;
use crate::check::outcome::Outcome;
use crate::counting::heap::Scope;
use crate::isolation::child;
use crate::verdict::{self, Came, Kind, ShouldPanic};

/// Where the test measures: here (the process is already quiet, or this is not a libtest test
/// thread), or in a child started for it.
enum Plan {
    /// This process is the child started for this test: run, write the verdict, exit.
    Child(std::path::PathBuf),
    /// Run in this process.
    Here,
    /// Start a child for the test with this name.
    Isolate(String),
}

fn plan() -> Plan {
    if let Some(path) = child::child_result_path() {
        return Plan::Child(path);
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
        Ok(Ok(report)) => Came::Measured(report),
        Ok(Err(r)) => Came::Failed(r),
        Err(payload) => Came::Panicked(payload),
    }
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

/// The body of a `#[no_leak]` test.
#[track_caller]
pub fn run_test<R: Outcome>(test: TestFn, config: Config, mut body: impl FnMut() -> R) -> R {
    if env::is_off() {
        return body();
    }
    let kind = Kind::Test(test.should_panic);
    let name = test_name();
    // -- retention: a retention child runs the body with capture on and exits; elsewhere the
    // diagnostic run may start one for this test.
    if let Some(out) = crate::diagnosis::retention::child_output() {
        let runs = config.warmup + config.runs;
        crate::diagnosis::retention::run_child(runs, &out, &mut || body().failure().is_none());
    }
    let _retention = crate::diagnosis::retention::ForTest::enter(&name);
    // -- end retention
    match plan() {
        Plan::Child(path) => {
            let ending = verdict::end(kind, &name, measure_here(&config, &mut body));
            child::finish_child(&path, &ending.verdict)
        }
        Plan::Here => verdict::end(kind, &name, measure_here(&config, &mut body)).conclude(),
        Plan::Isolate(name) => verdict::end(kind, &name, in_child::<R>(&name)).conclude(),
    }
}

/// The body of a `#[no_leak::isolated]` test: run once, alone in its own process.
#[track_caller]
pub fn run_isolated<R: Outcome>(body: impl FnOnce() -> R) -> R {
    if env::is_off() {
        return body();
    }
    match plan() {
        Plan::Child(path) => {
            let came = match catch_unwind(AssertUnwindSafe(body)) {
                Ok(r) if r.failure().is_some() => Came::Failed(r),
                Ok(_) => Came::FromChild(verdict::Verdict::Pass),
                Err(payload) => Came::Panicked(payload),
            };
            // An isolated test is not a leak check: it records no JSON line of its own.
            let ending = verdict::end(Kind::Closure, &test_name(), came);
            child::finish_child(&path, &ending.verdict)
        }
        Plan::Here => body(),
        Plan::Isolate(name) => verdict::end(Kind::Closure, &name, in_child::<R>(&name)).conclude(),
    }
}
