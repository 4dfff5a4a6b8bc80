//! `#[no_leak(...)]` on an inline module: every test function inside becomes a leak check.
//!
//! The module's attribute expands before anything inside it, so every attribute of every item is
//! still visible here. A function with a test attribute (`#[test]`, `#[tokio::test]`,
//! `#[rstest]`, ...) gets `#[no_leak(<the module's arguments>)]` as its first attribute, and
//! expands from there as if it had been written on it. A test with its own `#[no_leak(...)]`
//! keeps it, with the module's arguments merged in per key (the test's keys win). Nested inline
//! modules are handled alike, a nested module's own `#[no_leak(...)]` merging over the outer's.
//! Helpers (functions without a test attribute), `#[no_leak::isolated]` tests and other items are
//! left alone.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Attribute, Item, ItemFn, ItemMod};

use crate::attr::{self, Args};
use crate::expand::{attribute, fallback, Kind};
use crate::valid;

pub fn expand(args: syn::Result<Args>, mut m: ItemMod) -> TokenStream {
    let args = match args {
        Ok(args) => args,
        Err(e) => return fallback(m.into_token_stream(), &[e]),
    };
    let Some((brace, items)) = m.content.take() else {
        let (mod_token, ident, semi) = (&m.mod_token, &m.ident, &m.semi);
        let error = syn::Error::new_spanned(
            quote::quote!(#mod_token #ident #semi),
            format!(
                "#[no_leak] cannot see the tests of `mod {};` in another file; write the module \
                 inline (`mod {} {{ ... }}`), or put #[no_leak] on the tests in that file",
                m.ident, m.ident
            ),
        );
        return fallback(m.into_token_stream(), &[error]);
    };
    let items = items.into_iter().map(|i| item(i, &args)).collect();
    m.content = Some((brace, items));
    m.into_token_stream()
}

fn item(item: Item, args: &Args) -> Item {
    match item {
        Item::Fn(f) => Item::Fn(function(f, args)),
        Item::Mod(m) if m.content.is_some() => Item::Mod(nested(m, args)),
        other => other,
    }
}

fn function(mut f: ItemFn, args: &Args) -> ItemFn {
    let krate = args.krate.as_ref();
    if f.attrs.iter().any(|a| valid::is_isolated_attr(a, krate)) {
        return f;
    }
    if merge_into_own(&mut f.attrs, args) {
        return f;
    }
    if f.attrs.iter().any(valid::is_test_attr) {
        // First, so that it sees the test attribute below it, as written by hand.
        f.attrs
            .insert(0, attribute(Kind::Check, &Some(args.clone())));
    }
    f
}

/// A nested module: with its own `#[no_leak(...)]`, that attribute gets the outer arguments
/// merged in and expands the module itself; without one, its items are handled here.
fn nested(mut m: ItemMod, args: &Args) -> ItemMod {
    if merge_into_own(&mut m.attrs, args) {
        return m;
    }
    if let Some((brace, items)) = m.content.take() {
        let items = items.into_iter().map(|i| item(i, args)).collect();
        m.content = Some((brace, items));
    }
    m
}

/// If `attrs` hold a `#[no_leak(...)]` of their own, merges `args` under its keys and says so.
/// An attribute whose arguments do not parse is left as written, to report its own errors.
fn merge_into_own(attrs: &mut [Attribute], args: &Args) -> bool {
    let krate = args.krate.as_ref();
    let Some(own) = attrs.iter_mut().find(|a| valid::is_no_leak_attr(a, krate)) else {
        return false;
    };
    let parsed = match &own.meta {
        syn::Meta::Path(_) => Ok(Args::default()),
        syn::Meta::List(list) => attr::parse(list.tokens.clone()),
        syn::Meta::NameValue(_) => return true,
    };
    if let Ok(own_args) = parsed {
        let mut merged = attribute(Kind::Check, &Some(own_args.over(args)));
        // Where the attribute is written: `above.rs` reads the source above it.
        merged.pound_token = own.pound_token;
        merged.bracket_token = own.bracket_token;
        *own = merged;
    }
    true
}
