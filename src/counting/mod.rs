//! What is counted, and nothing else: the counting allocator and its hooks, the capture table,
//! the `/proc` census of threads and fds, tokio tasks, and the allocation-free [`stats`] snapshot.
//!
//! The lowest layer: it imports from no other module of the crate.
//!
//! [`stats`]: crate::stats

pub(crate) mod alloc;
#[cfg(feature = "ffi")]
pub(crate) mod c_heap;
pub(crate) mod capture;
pub(crate) mod census;
pub(crate) mod heap;
#[cfg(feature = "ffi")]
pub(crate) mod inner;
pub(crate) mod mapped;
pub(crate) mod remote;
pub(crate) mod spin;
pub(crate) mod stats;
pub(crate) mod tasks;
pub(crate) mod this_thread;
