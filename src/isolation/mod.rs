//! Where a `#[no_leak]` test runs: alone in a child process of the test binary under `cargo
//! test`, in place under nextest. `runner` is what the attribute expands to call; `child` starts
//! the child process and passes the verdict back.

pub(crate) mod child;
pub(crate) mod runner;
