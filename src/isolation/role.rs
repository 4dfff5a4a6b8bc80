//! A child process's role, and the one variable ([`CHILD_VAR`]) that carries it with the test the
//! child runs and the file it writes its result to.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::check::env::CHILD_VAR;
use crate::isolation::wire;

/// How long a retain child may take (capture makes every allocation slow) before it is killed.
const RETAIN_PATIENCE: Duration = Duration::from_secs(60);

/// What a child process of the test binary is started for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Measure the test alone and pass its verdict back (isolation under plain `cargo test`).
    Verdict,
    /// Run the body `runs` times, once more with capture on, and pass back who holds each site
    /// (the retention run of a test that leaked heap).
    Retain {
        /// As many runs as the failing check made before its diagnostic run.
        runs: u32,
    },
}

/// What becomes of a child's stdout and stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// Printed through this process's (captured) stdout and stderr, libtest's own lines left out.
    Replay,
    /// Thrown away.
    Discard,
}

impl Role {
    /// How long the child may run before it is killed; `None`: as long as it takes (a test may
    /// be slow, and libtest has no timeout either).
    pub(crate) fn timeout(self) -> Option<Duration> {
        match self {
            Role::Verdict => None,
            Role::Retain { .. } => Some(RETAIN_PATIENCE),
        }
    }

    pub(crate) fn output(self) -> Output {
        match self {
            Role::Verdict => Output::Replay,
            Role::Retain { .. } => Output::Discard,
        }
    }

    /// Whether the child ends checks that write where results go (`NO_LEAK_REPORT`).
    pub(crate) fn reports(self) -> bool {
        match self {
            Role::Verdict => true,
            Role::Retain { .. } => false,
        }
    }

    /// One word, for the variable and the result file's name: `verdict`, `retain:<runs>`.
    fn word(self) -> String {
        match self {
            Role::Verdict => "verdict".into(),
            Role::Retain { runs } => format!("retain:{runs}"),
        }
    }

    fn from_word(word: &str) -> Option<Role> {
        match word.split_once(':') {
            None if word == "verdict" => Some(Role::Verdict),
            Some(("retain", runs)) => Some(Role::Retain {
                runs: runs.parse().ok()?,
            }),
            _ => None,
        }
    }

    /// The extension of the result file's name.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Role::Verdict => "verdict",
            Role::Retain { .. } => "retain",
        }
    }
}

/// What [`CHILD_VAR`] says: the role, the test, the result file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Assignment {
    pub(crate) role: Role,
    /// The test the child runs (its thread's name).
    pub(crate) test: String,
    /// Where the child writes its result.
    pub(crate) result: PathBuf,
}

impl Assignment {
    /// `<role>\t<test>\t<result file>`: the first two fields as [`wire`] writes them, the path as
    /// it is (it may not be UTF-8).
    pub(crate) fn encode(&self) -> OsString {
        let head = wire::line(&self.role.word(), &[&self.test]);
        let mut value = OsString::from(head.trim_end_matches('\n'));
        value.push("\t");
        value.push(&self.result);
        value
    }

    pub(crate) fn decode(value: &OsStr) -> Option<Assignment> {
        let bytes = value.as_encoded_bytes();
        let first = bytes.iter().position(|&b| b == b'\t')?;
        let second = first + 1 + bytes[first + 1..].iter().position(|&b| b == b'\t')?;
        let head = std::str::from_utf8(&bytes[..second]).ok()?;
        let (word, fields) = wire::fields(head)?;
        let [test] = <[String; 1]>::try_from(fields).ok()?;
        // SAFETY: the bytes follow an ASCII tab of `value`, a valid `OsStr`; its encoding may be
        // split right after any non-empty UTF-8 substring (see `OsStr::as_encoded_bytes`).
        let path = unsafe { OsStr::from_encoded_bytes_unchecked(&bytes[second + 1..]) };
        Some(Assignment {
            role: Role::from_word(&word)?,
            test,
            result: PathBuf::from(path),
        })
    }
}

/// If this process is a child started for the test running on the calling thread, its role and
/// result file. The variable is read once.
pub(crate) fn for_this_thread() -> Option<(Role, &'static Path)> {
    static ASSIGNED: OnceLock<Option<Assignment>> = OnceLock::new();
    let a = ASSIGNED
        .get_or_init(|| Assignment::decode(&std::env::var_os(CHILD_VAR)?))
        .as_ref()?;
    (std::thread::current().name() == Some(a.test.as_str())).then_some((a.role, &a.result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_round_trip() {
        for role in [
            Role::Verdict,
            Role::Retain { runs: 0 },
            Role::Retain { runs: u32::MAX },
        ] {
            let a = Assignment {
                role,
                test: "a::b::it".into(),
                result: std::env::temp_dir().join("no_leak-1-2-3.x\twith a tab"),
            };
            assert_eq!(Assignment::decode(&a.encode()), Some(a));
        }
        assert_eq!(Assignment::decode(OsStr::new("a::b::it")), None);
        assert_eq!(Assignment::decode(OsStr::new("retain:x\tit\t/tmp/f")), None);
        assert_eq!(Assignment::decode(OsStr::new("judge\tit\t/tmp/f")), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_result_file_need_not_be_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let a = Assignment {
            role: Role::Verdict,
            test: "it".into(),
            result: PathBuf::from(OsStr::from_bytes(b"/tmp/\xff\xfe/r")),
        };
        assert_eq!(Assignment::decode(&a.encode()), Some(a));
    }

    #[test]
    fn this_test_process_has_no_role() {
        assert_eq!(for_this_thread(), None);
    }
}
