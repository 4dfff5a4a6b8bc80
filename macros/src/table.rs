//! The one table of `#[no_leak(...)]` arguments: each key's name, value kind, minimum, meaning,
//! and how the generated code applies it to `Config`.
//!
//! The parser's per-key rules (which literal a key takes, its range, its minimum) and the error
//! messages (the list of valid keys, "must be at least N") all come from [`ARGS`]. A unit test
//! checks it against the user-facing table in the docs of `Config` (`src/check/config.rs`).

/// What a key's value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// An integer that fits in a `u32` (`Config` takes a `u32`).
    U32,
    /// An integer that fits in a `u64`.
    U64,
    /// A finite number, written as a float or an integer.
    Float,
}

impl Value {
    /// How the error messages write a placeholder for the value.
    pub fn placeholder(self) -> &'static str {
        match self {
            Value::U32 | Value::U64 => "<integer>",
            Value::Float => "<number>",
        }
    }

    /// The largest value the key takes, for "too large" errors.
    pub fn max(self) -> u64 {
        match self {
            Value::U32 => u64::from(u32::MAX),
            Value::U64 | Value::Float => u64::MAX,
        }
    }
}

/// How the generated code applies a key's value to `Config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Apply {
    /// `.name(value)`: the builder method of the key's own name.
    Method,
    /// `.method(::core::time::Duration::from_millis(value))`: the key is a time with its unit in
    /// its name (`settle_ms`), and the method takes a `Duration`.
    Millis(&'static str),
}

#[cfg(test)]
impl Apply {
    /// The name of the `Config` method the key `name` calls.
    pub fn method(self, name: &'static str) -> &'static str {
        match self {
            Apply::Method => name,
            Apply::Millis(method) => method,
        }
    }
}

/// One argument of `#[no_leak(...)]`.
#[derive(Debug)]
pub struct Arg {
    /// The key.
    pub name: &'static str,
    pub value: Value,
    /// How the key's value reaches `Config`: the builder method of the same name, unless a time.
    pub apply: Apply,
    /// The smallest value allowed.
    pub min: u64,
    /// Why a smaller value is refused (completes "`name` must be at least N: ..."); empty when
    /// the minimum is 0.
    pub why_min: &'static str,
    /// A short example value for messages.
    pub example: &'static str,
    /// What the argument means, as the docs of `Config` say it.
    pub meaning: &'static str,
}

const fn arg(name: &'static str, value: Value, meaning: &'static str) -> Arg {
    Arg {
        name,
        value,
        apply: Apply::Method,
        min: 0,
        why_min: "",
        example: "5",
        meaning,
    }
}

/// Every argument, in the order the docs of `Config` list them.
pub const ARGS: &[Arg] = &[
    Arg {
        min: 1,
        why_min: "lazy initialisation in the first run would read as a leak",
        ..arg(
            "warmup",
            Value::U32,
            "unmeasured runs first, so lazy statics, thread-locals and pools settle",
        )
    },
    Arg {
        min: 1,
        why_min: "with no measured run nothing would be checked",
        ..arg(
            "runs",
            Value::U32,
            "measured runs; net growth over all of them is compared with the bounds",
        )
    },
    arg(
        "max_bytes",
        Value::U64,
        "allowed net growth of live heap bytes",
    ),
    arg(
        "max_blocks",
        Value::U64,
        "allowed net growth of live heap blocks",
    ),
    arg(
        "max_threads",
        Value::U64,
        "allowed net growth of live OS threads",
    ),
    arg(
        "max_fds",
        Value::U64,
        "allowed net growth of open file descriptors",
    ),
    arg(
        "max_tasks",
        Value::U64,
        "allowed net growth of alive tasks on watched tokio runtimes (feature `tokio`)",
    ),
    arg(
        "max_mapped_bytes",
        Value::U64,
        "allowed net growth of bytes in anonymous `mmap` made outside the allocator (feature `ffi`)",
    ),
    arg(
        "max_peak_bytes",
        Value::U64,
        "bound on the highest live heap within a run, above its start",
    ),
    Arg {
        apply: Apply::Millis("settle"),
        ..arg(
            "settle_ms",
            Value::U64,
            "how long to poll, with back-off, for threads still on their way out before reporting",
        )
    },
    Arg {
        min: 40,
        why_min: "fewer iterations cannot fit a trend (10000 is typical)",
        example: "10000",
        ..arg(
            "soak",
            Value::U64,
            "soak mode: this many iterations, fail on a sustained trend",
        )
    },
    Arg {
        min: 10,
        why_min: "a shorter soak cannot fit a trend",
        example: "2000",
        apply: Apply::Millis("soak_for"),
        ..arg(
            "soak_ms",
            Value::U64,
            "soak mode for this many milliseconds",
        )
    },
    Arg {
        example: "0.5",
        ..arg(
            "max_slope_bytes_per_iteration",
            Value::Float,
            "in soak mode, allowed trend of live bytes per iteration",
        )
    },
];

/// The argument named `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Arg> {
    ARGS.iter().find(|a| a.name == name)
}

/// "`warmup`, `runs`, ...", for messages.
pub fn valid_keys() -> String {
    ARGS.iter()
        .map(|a| format!("`{}`", a.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The argument closest to a misspelt key, if it is close enough to be a typo.
pub fn closest(name: &str) -> Option<&'static Arg> {
    ARGS.iter()
        .map(|a| (edit_distance(name, a.name), a))
        .filter(|&(d, a)| d <= 2.max(a.name.len() / 4) && d < a.name.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The attribute's one argument that is not a `Config` setting (so it is neither in [`ARGS`] nor
/// in the table in the docs of `Config`): `crate = path`, the path the generated code names
/// no_leak by, for a crate that re-exports no_leak and whose users do not depend on it
/// themselves. Written `#[no_leak(crate = my_reexport::no_leak)]` (or as a string,
/// `crate = "my_reexport::no_leak"`, as serde and tokio take it), also on
/// `#[no_leak::isolated(crate = ...)]` and on a module, whose tests inherit it. The default is
/// `::no_leak`. The path is used where the test functions are: in the module form, inside the
/// module, so a path relative to the module's parent needs `super::` or `crate::`.
pub const CRATE: &str = "crate";

/// An example value of `crate`, for messages.
pub const CRATE_EXAMPLE: &str = "my_reexport::no_leak";

/// What `crate` means, for messages.
pub const CRATE_MEANING: &str =
    "the path to no_leak, for a crate that re-exports it; the default is `::no_leak`";

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the argument table in the docs of `Config`.
    fn doc_rows() -> Vec<Vec<String>> {
        let source = include_str!("../../src/check/config.rs");
        let header = "/// | argument | value | default | minimum | environment | meaning |";
        let start = source
            .find(header)
            .expect("the argument table in the docs of `Config`");
        source[start..]
            .lines()
            .skip(2) // the header and the `|---|` line
            .take_while(|l| l.starts_with("/// |"))
            .map(|l| {
                let cells = l.trim_start_matches("///").trim().trim_matches('|');
                cells.split('|').map(|c| c.trim().to_string()).collect()
            })
            .collect()
    }

    /// `[`warmup`](Config::warmup)` -> (`warmup`, `warmup`): the key and the method it links to.
    fn doc_name(cell: &str) -> (&str, &str) {
        let inner = cell
            .strip_prefix("[`")
            .and_then(|c| c.split_once("`](Config::"));
        let (name, rest) = inner.expect("a name cell as [`name`](Config::method)");
        (name, rest.trim_end_matches(')'))
    }

    #[test]
    fn table_matches_the_config_docs_in_order_kind_minimum_and_meaning() {
        let rows = doc_rows();
        let doc_names: Vec<&str> = rows.iter().map(|r| doc_name(&r[0]).0).collect();
        let names: Vec<&str> = ARGS.iter().map(|a| a.name).collect();
        assert_eq!(names, doc_names, "same keys in the same order");
        for (arg, row) in ARGS.iter().zip(&rows) {
            assert_eq!(row.len(), 6, "{row:?}");
            let kind = match arg.value {
                Value::U32 | Value::U64 => "integer",
                Value::Float => "float",
            };
            assert_eq!(kind, row[1], "value kind of `{}`", arg.name);
            let min: f64 = row[3].parse().expect("a number in the minimum column");
            assert_eq!(arg.min as f64, min, "minimum of `{}`", arg.name);
            assert_eq!(arg.meaning, row[5], "meaning of `{}`", arg.name);
            assert_eq!(arg.min == 0, arg.why_min.is_empty(), "{}", arg.name);
            let method = arg.apply.method(arg.name);
            assert_eq!(
                method,
                doc_name(&row[0]).1,
                "the method `{}` calls",
                arg.name
            );
            let millis = matches!(arg.apply, Apply::Millis(_));
            assert_eq!(
                millis,
                arg.name.ends_with("_ms"),
                "a time key: {}",
                arg.name
            );
        }
    }

    #[test]
    fn closest_suggests_a_typo_and_not_an_unrelated_word() {
        assert_eq!(closest("warmpu").map(|a| a.name), Some("warmup"));
        assert_eq!(closest("max_byte").map(|a| a.name), Some("max_bytes"));
        assert!(closest("timeout").is_none());
    }
}
