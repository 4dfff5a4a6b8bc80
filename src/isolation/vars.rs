//! Every `NO_LEAK*` environment variable the crate reads or sets, in one list, and which of them
//! a child process of the test binary inherits (see [`dropped_for`]).

use crate::check::env::{CHILD_VAR, OFF_VAR, RUNS_VAR, SETTLE_MS_VAR, SITES_VAR, WARMUP_VAR};
use crate::isolation::role::Role;

/// Which children inherit a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Passes {
    /// A user's setting: every child inherits it.
    Always,
    /// Where results go: only a child whose role reports (see [`Role::reports`]) inherits it.
    ToReporting,
    /// A child's role: never inherited; the spawn sets the child's own.
    Never,
}

/// One variable: its name, and which children inherit it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Var {
    pub(crate) name: &'static str,
    pub(crate) passes: Passes,
}

/// Every `NO_LEAK*` variable of the crate, each after a line on who reads it and what for.
pub(crate) const VARS: &[Var] = &[
    // check::env: `off` switches every check off.
    Var {
        name: OFF_VAR,
        passes: Passes::Always,
    },
    // check::env: the suite-wide warmup runs.
    Var {
        name: WARMUP_VAR,
        passes: Passes::Always,
    },
    // check::env: the suite-wide measured runs.
    Var {
        name: RUNS_VAR,
        passes: Passes::Always,
    },
    // check::env: the suite-wide settling time.
    Var {
        name: SETTLE_MS_VAR,
        passes: Passes::Always,
    },
    // output::text: how many allocation sites a report lists.
    Var {
        name: SITES_VAR,
        passes: Passes::Always,
    },
    // output::jsonl: the file the JSON lines are appended to.
    Var {
        name: crate::output::jsonl::VAR,
        passes: Passes::ToReporting,
    },
    // output::plot: where soak plots go.
    Var {
        name: "NO_LEAK_PLOT_DIR",
        passes: Passes::Always,
    },
    // isolation::role (and check::env's quiet process): a child's role.
    Var {
        name: CHILD_VAR,
        passes: Passes::Never,
    },
];

/// The variables a child with `role` must not inherit: every role variable (the spawn sets the
/// child's own, so a grandchild never takes its parent's role), and where results go for a role
/// that does not report.
pub(crate) fn dropped_for(role: Role) -> impl Iterator<Item = &'static str> {
    VARS.iter()
        .filter(move |v| match v.passes {
            Passes::Always => false,
            Passes::ToReporting => !role.reports(),
            Passes::Never => true,
        })
        .map(|v| v.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `"NO_LEAK..."` string in the crate's source names a variable of the list.
    #[test]
    fn the_list_names_every_variable_of_the_source() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        let mut dirs = vec![src];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (at, _) in text.match_indices("\"NO_LEAK") {
                        let name: String = text[at + 1..]
                            .chars()
                            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                            .collect();
                        found.push((name, path.display().to_string()));
                    }
                }
            }
        }
        assert!(
            found.iter().any(|(n, _)| n == "NO_LEAK_PLOT_DIR"),
            "{found:?}"
        );
        for (name, file) in &found {
            assert!(
                VARS.iter().any(|v| v.name == name),
                "{file} names {name}, which isolation::vars::VARS does not list"
            );
        }
    }

    #[test]
    fn a_retain_child_drops_the_role_and_where_results_go() {
        let dropped: Vec<_> = dropped_for(Role::Retain { runs: 3 }).collect();
        assert_eq!(dropped, [crate::output::jsonl::VAR, CHILD_VAR]);
        let dropped: Vec<_> = dropped_for(Role::Verdict).collect();
        assert_eq!(dropped, [CHILD_VAR]);
    }
}
