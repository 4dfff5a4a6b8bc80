//! Checks on the function an attribute sits on.

use syn::spanned::Spanned;
use syn::{Attribute, ItemFn};

/// What to do with an async function: it must sit under a runtime attribute.
pub enum Async {
    /// Not async.
    No,
    /// Async, with the runtime attribute at this index of `attrs`.
    Runtime(usize),
}

/// The last path segment of an attribute, e.g. `test` for `#[tokio::test]`.
fn last_segment(attr: &Attribute) -> Option<String> {
    attr.path().segments.last().map(|s| s.ident.to_string())
}

/// A runtime test attribute: `#[tokio::test]`, `#[async_std::test]`, `#[actix_rt::test]`, ...
fn is_runtime_attr(attr: &Attribute) -> bool {
    attr.path().segments.len() >= 2 && last_segment(attr).as_deref() == Some("test")
}

/// `#[rstest]` or `#[rstest::rstest]`.
pub fn is_rstest(attr: &Attribute) -> bool {
    last_segment(attr).as_deref() == Some("rstest")
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
