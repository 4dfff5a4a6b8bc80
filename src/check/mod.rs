//! One check: its configuration, the environment it runs in, the engine (warmup, measured runs,
//! settling, the diagnostic run), the engine's side of soak mode (the soak itself is
//! [`crate::longrun::soak`]), and the report's data.
//!
//! It prints nothing and decides nothing about how a test ends: that is [`crate::verdict`].

pub(crate) mod config;
pub(crate) mod confirm;
pub(crate) mod engine;
pub(crate) mod env;
pub(crate) mod growth;
pub(crate) mod measure;
pub(crate) mod outcome;
pub(crate) mod report;
pub(crate) mod resources;
pub(crate) mod settle;
pub(crate) mod soak;
pub(crate) mod window;
