//! The `#[no_leak]` and `#[no_leak::isolated]` attributes. Use them through the `no_leak` crate,
//! which re-exports both and documents them.
//!
//! The crate is split by job:
//! - `table.rs`: the one table of arguments (name, value kind, minimum, meaning), from which the
//!   per-key rules and the messages come; a test checks it against the table in the docs of
//!   `Config`.
//! - `attr.rs`: the token syntax of the arguments (commas, keys, `=`); `value.rs`: one value, by
//!   its key's row of the table.
//! - `valid.rs`: checks on the function, and what its other attributes are (test attributes,
//!   runtime attributes, `#[rstest]`, our own).
//! - `above.rs`: whether a test attribute written above has already expanded (it leaves nothing
//!   a macro can see, so the source is read).
//! - `expand.rs`: the generated code for a function; `module.rs`: `#[no_leak]` on an inline
//!   module, which puts the attribute on every test inside.
//!
//! On an error the item is emitted unchanged next to the `compile_error!`, so one mistake gives
//! one error.
//!
//! Generated code names no_leak as `::no_leak`, or by the path of the argument `crate = path`
//! (`table::CRATE`), for a crate that re-exports no_leak to users who do not depend on it.
//!
//! A function with `#[no_leak]` is a test: when no test attribute is written on it (above or
//! below), the expansion writes `#[test]` (in a test build; elsewhere the function stays, unused).
//! When the source cannot be read to tell whether a `#[test]` above has already expanded (a
//! rustc older than 1.88, an IDE, attributes passed through a `macro_rules!` repetition), nothing
//! is written, so that no test is ever registered twice.

mod above;
mod attr;
mod expand;
mod module;
mod table;
mod valid;
mod value;

use proc_macro::TokenStream;

/// See `no_leak::no_leak`.
#[proc_macro_attribute]
pub fn no_leak(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(expand::Kind::Check, args.into(), item.into()).into()
}

/// See `no_leak::isolated`.
#[proc_macro_attribute]
pub fn isolated(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(expand::Kind::Isolated, args.into(), item.into()).into()
}
