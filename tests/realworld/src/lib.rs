//! Nothing here: the corpus is in `tests/`, one file per family of crates.
