//! Leak patterns outside the Rust allocator (see the tests).
