//! Why a check failed, beyond the numbers: the allocation sites of leaked memory, and heap
//! profiles. Built on [`crate::counting::capture`]; used by the engine's diagnostic run and by
//! [`crate::profile`].

pub mod profile;
pub(crate) mod retention;
pub(crate) mod sites;
