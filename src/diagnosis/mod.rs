//! Why a check failed, beyond the numbers: the allocation sites of leaked memory and who holds
//! it. Built on [`crate::counting::capture`]; used by the engine's diagnostic run and by the heap
//! profiles ([`crate::profile`]).

pub(crate) mod retention;
pub(crate) mod sites;
