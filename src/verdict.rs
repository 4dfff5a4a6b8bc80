//! How a check ends. Every check ends here, whatever started it (`check`, `check_async`, a
//! `#[no_leak]` test in place, in an isolated child, or in the parent that started the child, a
//! soak, a failing property): [`end`] decides the [`Verdict`], writes the `NO_LEAK_REPORT` line
//! and prints the calling-thread scope note, and [`Ending::conclude`] turns it into what the test
//! does: return, panic with the report, or re-raise the body's panic. A failing soak's plot is
//! written by the soak itself; the report only names it.

use std::any::Any;
use std::panic::resume_unwind;

use crate::check::outcome::Outcome;
use crate::check::report::Report;
use crate::counting::heap::Scope;
use crate::output::{github, jsonl, notes};

/// What a test body came to, in a form that can cross from an isolated child to its parent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No leak, no failure.
    Pass,
    /// A leak (or an unmeasurable heap): the report text.
    Leak(String),
    /// The body panicked: its message.
    Panic(String),
    /// The body returned `Err`: its Debug text.
    Error(String),
    /// The isolated child ended without a verdict: why.
    Crashed(String),
}

impl Verdict {
    /// The word JSON lines use.
    pub(crate) fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Leak(_) => "leak",
            Verdict::Panic(_) => "panic",
            Verdict::Error(_) => "error",
            Verdict::Crashed(_) => "crashed",
        }
    }
}

/// What `#[should_panic]` on a test asks for: the harness passes the test only if it panics
/// (with `expected` in its message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShouldPanic {
    /// No `#[should_panic]`.
    No,
    /// `#[should_panic]`.
    Yes,
    /// `#[should_panic(expected = "...")]`.
    Expected(&'static str),
}

impl ShouldPanic {
    /// Whether the test harness passes a test whose body came to `verdict`.
    fn harness_passes(self, verdict: &Verdict) -> bool {
        let message = match verdict {
            Verdict::Pass | Verdict::Error(_) => None,
            Verdict::Leak(m) | Verdict::Panic(m) | Verdict::Crashed(m) => Some(m),
        };
        match self {
            ShouldPanic::No => *verdict == Verdict::Pass,
            ShouldPanic::Yes => message.is_some(),
            ShouldPanic::Expected(want) => message.is_some_and(|m| m.contains(want)),
        }
    }
}

/// Which checks record a JSON line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A `#[no_leak]` test: always, pass or fail.
    Test(ShouldPanic),
    /// A closure check (`check`, `check_async`): only when it fails.
    Closure,
}

impl Kind {
    fn is_test(self) -> bool {
        matches!(self, Kind::Test(_))
    }

    /// What the test harness decides: `pass` or `fail`.
    fn harness(self, verdict: &Verdict) -> &'static str {
        let should_panic = match self {
            Kind::Test(s) => s,
            Kind::Closure => ShouldPanic::No,
        };
        if should_panic.harness_passes(verdict) {
            "pass"
        } else {
            "fail"
        }
    }
}

/// What happened, as the caller saw it.
pub(crate) enum Came<R> {
    /// The body ran and was measured.
    Measured(Box<Report>),
    /// The body returned a failure (`Err`): it was not run again.
    Failed(R),
    /// The body panicked.
    Panicked(Box<dyn Any + Send>),
    /// An isolated child already ended the check, and said this.
    FromChild(Verdict),
    /// An isolated child ended without a verdict.
    ChildCrashed(String),
}

/// A decided check, ready to be concluded on the test's thread.
pub(crate) struct Ending<R> {
    pub(crate) verdict: Verdict,
    body: Option<R>,
    payload: Option<Box<dyn Any + Send>>,
}

/// Decides the verdict of the check named `name` and records it (JSON line, GitHub annotation,
/// scope note; a failing soak wrote its plot already, and the report names it). `#[track_caller]`: where the check was written is its caller's
/// caller (the test, or the `check` call).
#[track_caller]
pub(crate) fn end<R: Outcome>(kind: Kind, name: &str, came: Came<R>) -> Ending<R> {
    let mut ending = Ending {
        verdict: Verdict::Pass,
        body: None,
        payload: None,
    };
    let line = match came {
        Came::Measured(report) => {
            if report.is_leak() {
                github::annotate(&report, std::panic::Location::caller());
                if kind == Kind::Closure {
                    notes::shorten_repeated_reports();
                }
                ending.verdict = Verdict::Leak(report.to_string());
            } else if report.scope == Scope::CallingThread && !report.off {
                notes::announce_calling_thread_scope();
            }
            let wanted = (kind.is_test() || report.is_leak()) && jsonl::enabled();
            wanted.then(|| {
                jsonl::report_line(
                    &report,
                    jsonl::outcome(&report),
                    kind.harness(&ending.verdict),
                )
            })
        }
        Came::Failed(r) => {
            ending.verdict = Verdict::Error(r.failure().unwrap_or_default());
            ending.body = Some(r);
            None
        }
        Came::Panicked(payload) => {
            ending.verdict = Verdict::Panic(panic_message(&*payload));
            ending.payload = Some(payload);
            None
        }
        Came::FromChild(verdict) => {
            // The child recorded its own line.
            ending.verdict = verdict;
            return ending;
        }
        Came::ChildCrashed(why) => {
            ending.verdict = Verdict::Crashed(why);
            None
        }
    };
    let line = line.or_else(|| match &ending.verdict {
        Verdict::Error(m) | Verdict::Panic(m) | Verdict::Crashed(m)
            if kind.is_test() && jsonl::enabled() =>
        {
            let verdict = kind.harness(&ending.verdict);
            Some(jsonl::failure_line(name, ending.verdict.word(), verdict, m))
        }
        _ => None,
    });
    if let Some(line) = line {
        jsonl::append(&line);
    }
    ending
}

impl<R: Outcome> Ending<R> {
    /// Ends the test on this thread: returns on a pass or an `Err` (the harness prints it),
    /// panics with the report on a leak, and re-raises the body's panic unchanged.
    #[track_caller]
    pub(crate) fn conclude(self) -> R {
        if let Some(payload) = self.payload {
            resume_unwind(payload);
        }
        if let Some(body) = self.body {
            return body;
        }
        match self.verdict {
            Verdict::Pass => R::success(),
            Verdict::Leak(report) => panic!("{report}"),
            // An isolated child already printed the panic with its location; re-raise the same
            // message without the panic hook, so `#[should_panic(expected = ...)]` sees exactly
            // the body's.
            Verdict::Panic(msg) => resume_unwind(Box::new(msg)),
            Verdict::Error(err) => panic!("Error: {err}"),
            Verdict::Crashed(why) => panic!("{why}"),
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}
