//! What people and machines read: the text report (the panic message), the `NO_LEAK_REPORT`
//! JSON lines, and the one-line notes on stderr.

pub(crate) mod github;
pub(crate) mod jsonl;
pub(crate) mod notes;
pub(crate) mod text;
