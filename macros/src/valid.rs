//! Checks on the function an attribute sits on, and what its other attributes are.

use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, Meta};

use crate::attr::Krate;

/// What to do with an async function: it must sit under a runtime attribute.
pub enum Async {
    /// Not async.
    No,
    /// Async, with the runtime attribute at this index of `attrs`.
    Runtime(usize),
}

/// The last segment of each attribute path that makes a function a test: the built-in `#[test]`
/// (also as `::core::prelude::v1::test`, which `#[tokio::test]` writes), runtime attributes such
/// as `#[tokio::test]` and `#[test_log::test]`, and the case generators that write `#[test]` on
/// every case they generate.
const TEST_ATTRS: &[&str] = &[
    "test",
    "rstest",
    "test_case",
    "test_matrix",
    "quickcheck",
    "wasm_bindgen_test",
];

/// The last path segment of an attribute, e.g. `test` for `#[tokio::test]`.
fn last_segment(path: &syn::Path) -> Option<String> {
    path.segments.last().map(|s| s.ident.to_string())
}

/// An attribute that makes the function a test, directly or through `#[cfg_attr(.., test)]`.
pub fn is_test_attr(attr: &Attribute) -> bool {
    is_test_meta(&attr.meta)
}

fn is_test_meta(meta: &Meta) -> bool {
    if meta.path().is_ident("cfg_attr") {
        // `cfg_attr(predicate, attr, ...)`: whichever way the predicate goes, a test attribute
        // in it is the user's own decision about whether this is a test.
        let Meta::List(list) = meta else { return false };
        let parsed = list
            .parse_args_with(syn::punctuated::Punctuated::<Meta, syn::Token![,]>::parse_terminated);
        return parsed.is_ok_and(|metas| metas.iter().skip(1).any(is_test_meta));
    }
    last_segment(meta.path()).is_some_and(|s| TEST_ATTRS.contains(&s.as_str()))
}

/// `#[no_leak]` or `#[no_leak(...)]`, written as `no_leak`, `no_leak::no_leak` or
/// `::no_leak::no_leak`, or under the path of `crate = path` (`krate`).
pub fn is_no_leak_attr(attr: &Attribute, krate: Option<&Krate>) -> bool {
    is_ours(attr.path(), "no_leak", krate)
}

/// `#[no_leak::isolated]`, or `#[isolated]` imported from no_leak, or under the path of
/// `crate = path` (`krate`).
pub fn is_isolated_attr(attr: &Attribute, krate: Option<&Krate>) -> bool {
    is_ours(attr.path(), "isolated", krate)
}

fn is_ours(path: &syn::Path, name: &str, krate: Option<&Krate>) -> bool {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    if let Some((last, under)) = segments.split_last() {
        if krate.is_some_and(|k| *under == k.segments[..] && last == name) {
            return true;
        }
    }
    match segments.as_slice() {
        [only] => only == name && path.leading_colon.is_none(),
        [krate, last] => krate == "no_leak" && last == name,
        _ => false,
    }
}

/// A runtime test attribute: `#[tokio::test]`, `#[async_std::test]`, `#[actix_rt::test]`, ...
fn is_runtime_attr(attr: &Attribute) -> bool {
    attr.path().segments.len() >= 2 && last_segment(attr.path()).as_deref() == Some("test")
}

/// `#[rstest]` or `#[rstest::rstest]`.
pub fn is_rstest(attr: &Attribute) -> bool {
    last_segment(attr.path()).as_deref() == Some("rstest")
}

/// Checks an async function, and finds its runtime attribute.
pub fn check_async(f: &ItemFn, what: &str) -> syn::Result<Async> {
    let Some(token) = f.sig.asyncness else {
        return Ok(Async::No);
    };
    match f.attrs.iter().position(is_runtime_attr) {
        Some(i) => Ok(Async::Runtime(i)),
        None => Err(syn::Error::new(
            token.span(),
            format!(
                "{what} on an `async fn` needs a runtime attribute such as `#[tokio::test]` to \
                 drive it; add one (before or after {what})"
            ),
        )),
    }
}

/// Checks a function that takes arguments: only `#[rstest]` can supply them.
pub fn check_args(f: &ItemFn, what: &str) -> syn::Result<bool> {
    if f.sig.inputs.is_empty() {
        return Ok(false);
    }
    if f.attrs.iter().any(is_rstest) {
        return Ok(true);
    }
    Err(syn::Error::new_spanned(
        &f.sig.inputs,
        format!(
            "{what} test functions take no arguments; for cases and fixtures put `#[rstest]` on \
             the function"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(tokens: proc_macro2::TokenStream) -> Attribute {
        syn::parse_quote!(#[#tokens])
    }

    #[test]
    fn test_attributes_are_recognised_by_their_last_segment_and_inside_cfg_attr() {
        for yes in [
            quote::quote!(test),
            quote::quote!(::core::prelude::v1::test),
            quote::quote!(tokio::test(flavor = "multi_thread")),
            quote::quote!(rstest),
            quote::quote!(test_case(1; "one")),
            quote::quote!(cfg_attr(not(miri), test)),
        ] {
            assert!(is_test_attr(&attr(yes.clone())), "{yes}");
        }
        for no in [
            quote::quote!(should_panic),
            quote::quote!(ignore),
            quote::quote!(serial),
            quote::quote!(cfg_attr(test, ignore)),
            quote::quote!(cfg(test)),
            quote::quote!(no_leak),
        ] {
            assert!(!is_test_attr(&attr(no.clone())), "{no}");
        }
    }

    #[test]
    fn our_attributes_are_recognised_by_path() {
        let no_leak = |t| is_no_leak_attr(&attr(t), None);
        let isolated = |t| is_isolated_attr(&attr(t), None);
        assert!(no_leak(quote::quote!(no_leak(runs = 3))));
        assert!(no_leak(quote::quote!(::no_leak::no_leak)));
        assert!(!no_leak(quote::quote!(other::no_leak)));
        assert!(isolated(quote::quote!(no_leak::isolated)));
        assert!(!isolated(quote::quote!(no_leak::no_leak)));
    }

    #[test]
    fn our_attributes_are_recognised_under_the_path_of_crate() {
        let args = crate::attr::parse(quote::quote!(crate = my::reexport::no_leak)).unwrap();
        let krate = args.krate.as_ref();
        let no_leak = |t| is_no_leak_attr(&attr(t), krate);
        assert!(no_leak(quote::quote!(my::reexport::no_leak::no_leak(
            runs = 3
        ))));
        assert!(no_leak(quote::quote!(::my::reexport::no_leak::no_leak)));
        assert!(no_leak(quote::quote!(no_leak)), "imported by name");
        assert!(!no_leak(quote::quote!(reexport::no_leak::no_leak)));
        assert!(is_isolated_attr(
            &attr(quote::quote!(my::reexport::no_leak::isolated)),
            krate
        ));
    }
}
