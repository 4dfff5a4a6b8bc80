//! What `#[no_leak]` and `#[no_leak::isolated]` expand to call.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::config::Config;
use crate::engine::{self, Outcome, Scope};
use crate::isolate::{self, Verdict};
use crate::jsonl;

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
    if let Some(path) = isolate::child_result_path() {
        return Plan::Child(path);
    }
    if engine::quiet_process() {
        return Plan::Here;
    }
    match std::thread::current().name() {
        Some(name) if name != "main" => Plan::Isolate(name.to_string()),
        _ => Plan::Here,
    }
}

/// Turns a child's verdict into this test's outcome.
#[track_caller]
fn conclude<R: Outcome>(verdict: Result<Verdict, String>) -> R {
    match verdict {
        Ok(Verdict::Pass) => R::success(),
        Ok(Verdict::Leak(report)) => panic!("{report}"),
        // The child already printed the panic with its location; re-raise the same message
        // without the panic hook, so `#[should_panic(expected = ...)]` sees exactly the body's.
        Ok(Verdict::Panic(msg)) => std::panic::resume_unwind(Box::new(msg)),
        Ok(Verdict::Error(err)) => panic!("Error: {err}"),
        Err(why) => panic!("{why}"),
    }
}

fn verdict_of<R: Outcome>(
    result: std::thread::Result<Result<Option<crate::Report>, R>>,
) -> Verdict {
    match result {
        Ok(Ok(Some(report))) if report.is_leak() => Verdict::Leak(report.to_string()),
        Ok(Ok(_)) => Verdict::Pass,
        Ok(Err(r)) => Verdict::Error(r.failure().unwrap_or_default()),
        Err(payload) => Verdict::Panic(isolate::panic_message(&*payload)),
    }
}

/// Measures in this process, keeping a body's panic as a value, and records the outcome for
/// `NO_LEAK_REPORT`.
fn measure_here<R: Outcome>(
    config: &Config,
    body: &mut impl FnMut() -> R,
) -> std::thread::Result<Result<crate::Report, R>> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        engine::measure(config, Scope::Process, &mut *body)
    }));
    if jsonl::enabled() {
        let name = || {
            std::thread::current()
                .name()
                .unwrap_or("<unnamed>")
                .to_string()
        };
        let line = match &result {
            Ok(Ok(report)) => jsonl::report_line(report, jsonl::verdict(report)),
            Ok(Err(r)) => jsonl::failure_line(&name(), "error", &r.failure().unwrap_or_default()),
            Err(payload) => {
                jsonl::failure_line(&name(), "panic", &isolate::panic_message(&**payload))
            }
        };
        jsonl::append(&line);
    }
    result
}

/// The body of a `#[no_leak]` test.
#[track_caller]
pub fn run_test<R: Outcome>(config: Config, mut body: impl FnMut() -> R) -> R {
    if engine::is_off() {
        return body();
    }
    match plan() {
        Plan::Child(path) => {
            let result = measure_here(&config, &mut body).map(|r| r.map(Some));
            isolate::finish_child(&path, &verdict_of(result))
        }
        Plan::Here => match measure_here(&config, &mut body) {
            Ok(Ok(report)) if report.is_leak() => panic!("{report}"),
            Ok(Ok(_)) => R::success(),
            Ok(Err(r)) => r,
            Err(payload) => std::panic::resume_unwind(payload),
        },
        Plan::Isolate(name) => {
            let verdict = isolate::run_in_child(&name);
            if let Err(why) = &verdict {
                // The child could not say anything itself.
                jsonl::append(&jsonl::failure_line(&name, "crashed", why));
            }
            conclude(verdict)
        }
    }
}

/// The body of a `#[no_leak::isolated]` test: run once, alone in its own process.
#[track_caller]
pub fn run_isolated<R: Outcome>(body: impl FnOnce() -> R) -> R {
    if engine::is_off() {
        return body();
    }
    match plan() {
        Plan::Child(path) => {
            let result = catch_unwind(AssertUnwindSafe(|| {
                let r = body();
                if r.failure().is_some() {
                    Err(r)
                } else {
                    Ok(None)
                }
            }));
            isolate::finish_child(&path, &verdict_of(result))
        }
        Plan::Here => body(),
        Plan::Isolate(name) => conclude(isolate::run_in_child(&name)),
    }
}
