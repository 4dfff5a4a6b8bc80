//! The `tasks` dimension: alive async tasks on watched runtimes (cargo feature `tokio`).

/// Alive tasks summed over the watched runtimes, or `None` when no runtime is watched.
pub(crate) fn alive_tasks() -> Option<i64> {
    None
}

/// Why tasks were not measured.
pub(crate) fn not_watched_reason() -> &'static str {
    "no async runtime is watched (cargo feature `tokio`)"
}
