//! One check: its configuration, the environment it runs in, the engine (warmup, measured runs,
//! settling, the diagnostic run), soak mode and its trend fit, and the report's data.
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
pub(crate) mod trend;
pub(crate) mod window;
