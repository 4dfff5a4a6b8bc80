//! Parsing `#[no_leak(key = value, ...)]` into [`Args`].

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, Meta, Token};

/// The keys `#[no_leak]` accepts, in the order the docs list them.
pub const KEYS: &[&str] = &[
    "warmup",
    "runs",
    "max_bytes",
    "max_blocks",
    "max_threads",
    "max_fds",
    "max_peak_bytes",
    "settle_ms",
];

/// One parsed argument: the key as written (for spans) and its value.
pub struct Arg {
    pub key: syn::Ident,
    pub value: u64,
}

/// The arguments, each at most once.
#[derive(Default)]
pub struct Args {
    pub args: Vec<Arg>,
}

impl Args {
    fn set(&mut self, key: syn::Ident, value: u64, errors: &mut Vec<syn::Error>) {
        if let Some(prev) = self.args.iter().find(|a| a.key == key) {
            let mut e = syn::Error::new(key.span(), format!("duplicate argument `{key}`"));
            e.combine(syn::Error::new(prev.key.span(), format!("`{key}` is first set here")));
            errors.push(e);
            return;
        }
        self.args.push(Arg { key, value });
    }
}

fn expected(key: &str) -> String {
    format!("expected `{key} = <integer>`")
}

/// Parses the attribute's arguments, collecting every error.
pub fn parse(tokens: TokenStream) -> Result<Args, syn::Error> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)?;
    let mut args = Args::default();
    let mut errors = Vec::new();
    for meta in metas {
        let Some(key) = meta.path().get_ident().cloned() else {
            errors.push(syn::Error::new(
                meta.path().span(),
                format!("unknown argument; expected one of: {}", KEYS.join(", ")),
            ));
            continue;
        };
        let name = key.to_string();
        if !KEYS.contains(&name.as_str()) {
            errors.push(syn::Error::new(
                key.span(),
                format!("unknown argument `{name}`; expected one of: {}", KEYS.join(", ")),
            ));
            continue;
        }
        let value = match &meta {
            Meta::NameValue(nv) => &nv.value,
            Meta::Path(_) => {
                errors.push(syn::Error::new(key.span(), expected(&name)));
                continue;
            }
            Meta::List(list) => {
                errors.push(syn::Error::new(list.delimiter.span().join(), expected(&name)));
                continue;
            }
        };
        let lit = match value {
            Expr::Lit(ExprLit { lit: Lit::Int(lit), .. }) => lit,
            other => {
                errors.push(syn::Error::new(
                    other.span(),
                    format!("expected an integer literal for `{name}`, e.g. `{name} = 5`"),
                ));
                continue;
            }
        };
        if !lit.suffix().is_empty() {
            errors.push(syn::Error::new(
                lit.span(),
                format!("`{name}` takes a plain integer without a type suffix"),
            ));
            continue;
        }
        let parsed = if name == "warmup" || name == "runs" {
            lit.base10_parse::<u32>().map(u64::from)
        } else {
            lit.base10_parse::<u64>()
        };
        let v = match parsed {
            Ok(v) => v,
            Err(e) => {
                errors.push(syn::Error::new(lit.span(), format!("`{name}`: {e}")));
                continue;
            }
        };
        if (name == "warmup" || name == "runs") && v == 0 {
            let why = if name == "warmup" {
                "`warmup` must be at least 1: lazy initialisation in the first run would read as a leak"
            } else {
                "`runs` must be at least 1: nothing would be measured"
            };
            errors.push(syn::Error::new(lit.span(), why));
            continue;
        }
        args.set(key, v, &mut errors);
    }
    combine(errors).map(|()| args)
}

/// `#[no_leak::isolated]` takes no arguments.
pub fn parse_none(tokens: TokenStream) -> Result<(), syn::Error> {
    if tokens.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(tokens, "#[no_leak::isolated] takes no arguments"))
    }
}

/// Folds many errors into one, or `Ok` if there are none.
pub fn combine(errors: Vec<syn::Error>) -> Result<(), syn::Error> {
    let mut it = errors.into_iter();
    match it.next() {
        None => Ok(()),
        Some(mut first) => {
            for e in it {
                first.combine(e);
            }
            Err(first)
        }
    }
}
