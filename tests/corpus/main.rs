//! The leak corpus: every leaky pattern is caught in exactly the right dimensions, at the line
//! that leaks, and every fixed twin passes and measures exactly zero.
//!
//! # Layout
//!
//! A pattern is a module of its own (in `threads.rs`, `cycles.rs`, `growth.rs`, `rust_own.rs`):
//! library-like code, the leaky version next to its fixes, and at its end one [`corpus!`] table
//! that names them:
//!
//! ```text
//! pub mod rc_cycle {
//!     pub fn rc_cycle() { ... }      // lines that allocate leaked memory end in `// leak-site`
//!     pub fn weak_parent() { ... }
//!
//!     corpus! {
//!         leaks rc_cycle => "leaked heap: ", held "in a cycle of blocks allocated at";
//!         fixed weak_parent;
//!     }
//! }
//! ```
//!
//! That is the one edit a new pattern needs. The table generates, for each entry:
//! - `leaks f => "leaked <dims>: "`: `f::leaks`, a `#[no_leak]` test that passes exactly when
//!   the report's first line names those dimensions and no others, and `f::first_site_is_marked`,
//!   which checks that the report's first allocation site is a `// leak-site` line of the
//!   pattern's module. A pattern module has one leaky entry, so its marks are its own.
//!   A leak in `heap` also names who holds it: `leaks f => "leaked heap: ", held "in a cycle";`
//!   adds `f::held_by`, a `#[no_leak]` test that passes exactly when the report contains that
//!   retention line (`held by static <path>`, `in a cycle`, `held by thread "<name>"`,
//!   `unreachable`). An entry that leaks heap without `held` does not compile.
//! - `fixed f`: `f::passes`, a plain `#[no_leak]` test, and `f::measures_zero`, which measures
//!   `f` in an isolated process and wants zero bytes, blocks, threads and fds, without waiting.
//! - `guard f` (`guards.rs`: code that must never be reported): `f::is_not_reported`.
//!
//! `numbers.rs` pins exact figures, `leaking_line.rs` what the report says about threads and scopes,
//! and `reports.rs` whole failure reports as insta snapshots in `tests/snapshots/`.
//!
//! # Regenerating the snapshots
//!
//! After a deliberate change of the report text, rewrite the snapshots and review the diff:
//!
//! ```text
//! INSTA_UPDATE=always cargo test --test corpus reports::
//! git diff tests/snapshots/
//! ```
//!
//! (`INSTA_FORCE_PASS=1` with the default `INSTA_UPDATE` writes `.snap.new` files next to them
//! instead, for a look before accepting.)

// The patterns are library-like code: some fields and methods are there for the picture only.
#![allow(dead_code)]

/// The tests of a pattern module; see the crate docs. Each entry is `leaks f => "leaked <dims>: ";`,
/// `fixed f;` or `guard f;`, where `f` is a `fn()` of the module.
macro_rules! corpus {
    ($($kind:ident $f:ident $(=> $expected:literal $(, held $held:literal)?)?;)+) => {
        $(corpus!(@ $kind $f $(=> $expected $(, held $held)?)?);)+
    };
    (@ leaks $f:ident => $expected:literal $(, held $held:literal)?) => {
        mod $f {
            const _: () = $crate::assert_title($expected, corpus!(@some $($held)?));
            $(
                #[test]
                #[no_leak::no_leak]
                #[should_panic(expected = $held)]
                fn held_by() {
                    super::$f();
                }
            )?

            #[test]
            #[no_leak::no_leak]
            #[should_panic(expected = $expected)]
            fn leaks() {
                super::$f();
            }

            #[test]
            #[no_leak::isolated]
            fn first_site_is_marked() {
                $crate::leaking_line::assert_first_site_marked(super::$f, file!(), module_path!());
            }
        }
    };
    (@some) => { None };
    (@some $held:literal) => { Some($held) };
    (@ fixed $f:ident) => {
        mod $f {
            #[test]
            #[no_leak::no_leak]
            fn passes() {
                super::$f();
            }

            #[test]
            #[no_leak::isolated]
            fn measures_zero() {
                $crate::common::assert_measures_zero(stringify!($f), super::$f);
            }
        }
    };
    (@ guard $f:ident) => {
        mod $f {
            #[test]
            #[no_leak::no_leak]
            fn is_not_reported() {
                super::$f();
            }
        }
    };
}

#[path = "../common/mod.rs"]
mod common;
mod cycles;
mod growth;
mod guards;
mod leaking_line;
mod numbers;
mod reports;
mod rust_own;
mod threads;

/// A `leaks` entry's expectation is the title's list of dimensions: `leaked `, the dimensions,
/// then `: ` (where the growth follows), so that a leak in one more dimension fails the test.
///
/// A title with `heap` needs a `held` line, and one without must not have one.
pub const fn assert_title(expected: &str, held: Option<&str>) {
    assert!(
        mentions_heap(expected) == held.is_some(),
        "a heap leak, and only a heap leak, names its holder: `leaks f => \"leaked heap: \", held \"...\";`"
    );
    let (b, prefix) = (expected.as_bytes(), b"leaked ");
    assert!(b.len() > prefix.len() + 2, "write \"leaked <dims>: \"");
    let mut i = 0;
    while i < prefix.len() {
        assert!(b[i] == prefix[i], "the expectation starts with \"leaked \"");
        i += 1;
    }
    assert!(
        b[b.len() - 2] == b':' && b[b.len() - 1] == b' ',
        "the expectation ends with \": \""
    );
}

const fn mentions_heap(title: &str) -> bool {
    let (b, heap) = (title.as_bytes(), b"heap");
    let mut i = 0;
    while i + heap.len() <= b.len() {
        let mut j = 0;
        while j < heap.len() && b[i + j] == heap[j] {
            j += 1;
        }
        if j == heap.len() {
            return true;
        }
        i += 1;
    }
    false
}
