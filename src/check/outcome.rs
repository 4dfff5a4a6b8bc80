//! What a test body returns, and whether that is a failure.

/// A body's result: `()` always succeeds; `Result` fails on `Err`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the return type of a test, and `#[no_leak]` (or `#[no_leak::isolated]`) makes the function a test",
    label = "a test returns `()` or `Result<(), E>` with `E: Debug`",
    note = "to check a helper that returns a value, leave it undecorated and call it from a test inside `no_leak::check(|| {{ helper(); }})`"
)]
pub trait Outcome: Sized {
    /// The failure, as the test harness would print it, if this is one.
    fn failure(&self) -> Option<String>;
    /// A value that means success.
    fn success() -> Self;
}

impl Outcome for () {
    fn failure(&self) -> Option<String> {
        None
    }
    fn success() -> Self {}
}

impl<E: std::fmt::Debug> Outcome for Result<(), E> {
    fn failure(&self) -> Option<String> {
        self.as_ref().err().map(|e| format!("{e:?}"))
    }
    fn success() -> Self {
        Ok(())
    }
}
