//! What people and machines read: the text report (the panic message), the `NO_LEAK_REPORT`
//! JSON lines, the soak SVG plot, and the one-line notes on stderr.

pub(crate) mod github;
pub(crate) mod jsonl;
pub(crate) mod notes;
#[cfg(feature = "plot")]
pub(crate) mod plot;
#[cfg(not(feature = "plot"))]
pub(crate) mod plot {
    //! Without the cargo feature `plot`, no plot is drawn; the soak report says how to get one.

    /// Nothing is written without the feature.
    pub(crate) fn write_soak(
        _name: &str,
        _soak: &crate::check::soak::SoakReport,
    ) -> Option<std::path::PathBuf> {
        None
    }
}
pub(crate) mod text;
