//! The `#[no_leak]` and `#[no_leak::isolated]` attributes. Use them through the `no_leak` crate,
//! which re-exports both and documents them.
//!
//! The crate is split by job: `attr.rs` parses the arguments, `valid.rs` checks the function the
//! attribute sits on, and `expand.rs` writes the generated code. On an error the function is
//! emitted unchanged next to the `compile_error!`, so one mistake gives one error.

mod attr;
mod expand;
mod valid;

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
