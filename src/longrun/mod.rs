//! The long-running stage: what watches a program, or a body, over many iterations or a long
//! time, and fits a trend to what it sees.
//!
//! - `trend.rs`: the least-squares fit every mode shares.
//! - `soak.rs`: soak mode, the samples and trends of one long check (the check engine runs it;
//!   `crate::check::soak` adapts its config and report); `plot.rs`: a failing soak's SVG plot.
//! - `monitor/`: the runtime monitor (`no_leak::monitor`).
//! - `profile/`: heap profiles (`no_leak::profile`) and their pprof output.
//!
//! It sits above `counting` and `diagnosis` and below `check`: it imports neither the check nor
//! anything above it.

pub mod monitor;
#[cfg(feature = "plot")]
pub(crate) mod plot;
#[cfg(not(feature = "plot"))]
pub(crate) mod plot {
    //! Without the cargo feature `plot`, no plot is drawn; the soak report says how to get one.

    /// Nothing is written without the feature.
    pub(crate) fn write_soak(
        _name: &str,
        _soak: &crate::longrun::soak::SoakReport,
    ) -> Option<std::path::PathBuf> {
        None
    }
}
pub mod profile;
pub(crate) mod soak;
pub(crate) mod trend;
