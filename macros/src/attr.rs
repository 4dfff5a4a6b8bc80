//! Parsing `#[no_leak(key = value, ...)]` into [`Args`]: the token syntax (commas, keys, `=`).
//! What each key's value may be comes from the table in `table.rs`, read by `value.rs`.
//!
//! The arguments are read token by token rather than through `syn::Meta`, so that every error can
//! point at the token the user wrote (a negative value, a value with a type suffix, a missing `=`)
//! and say how to write it instead.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};

use crate::table;
use crate::value::{self, Number};

/// One parsed argument: the key as written (for spans) and its value.
#[derive(Clone)]
pub struct Arg {
    pub key: syn::Ident,
    pub value: Number,
}

/// The arguments, each at most once, in the order written.
#[derive(Clone, Default)]
pub struct Args {
    pub args: Vec<Arg>,
}

impl Args {
    /// These arguments over `base`: every key given here wins, and `base`'s other keys stay.
    pub fn over(&self, base: &Args) -> Args {
        let mut args = self.args.clone();
        let missing = base
            .args
            .iter()
            .filter(|b| !args.iter().any(|a| a.key == b.key));
        let missing: Vec<Arg> = missing.cloned().collect();
        args.extend(missing);
        Args { args }
    }
}

/// Parses the attribute's arguments, collecting every error (one per faulty argument).
pub fn parse(tokens: TokenStream) -> Result<Args, syn::Error> {
    let mut flat = Vec::new();
    flatten(tokens, &mut flat);
    let (pieces, commas) = split_at_commas(flat);

    let mut args = Args::default();
    let mut errors = Vec::new();
    let last = pieces.len() - 1;
    for (i, piece) in pieces.iter().enumerate() {
        if piece.is_empty() {
            // Nothing at all, or a trailing comma, is fine; an empty slot before a comma is not.
            if i < last {
                errors.push(syn::Error::new(
                    commas[i],
                    "unexpected `,`: expected `key = <integer>` before it",
                ));
            }
            continue;
        }
        match parse_arg(piece, &args) {
            Ok(arg) => args.args.push(arg),
            Err(e) => errors.push(e),
        }
    }
    combine(errors).map(|()| args)
}

/// Tokens that came through a `macro_rules!` fragment (`$n:literal`, `$e:expr`) arrive wrapped in
/// invisible groups; read through them.
fn flatten(tokens: TokenStream, out: &mut Vec<TokenTree>) {
    for tt in tokens {
        match tt {
            TokenTree::Group(g) if g.delimiter() == Delimiter::None => flatten(g.stream(), out),
            other => out.push(other),
        }
    }
}

/// The arguments between top-level commas, and each comma (for "stray comma" errors).
fn split_at_commas(flat: Vec<TokenTree>) -> (Vec<Vec<TokenTree>>, Vec<Span>) {
    let mut pieces: Vec<Vec<TokenTree>> = vec![Vec::new()];
    let mut commas: Vec<Span> = Vec::new();
    for tt in flat {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => {
                commas.push(p.span());
                pieces.push(Vec::new());
            }
            _ => pieces.last_mut().expect("never empty").push(tt),
        }
    }
    (pieces, commas)
}

fn tokens_of(tts: &[TokenTree]) -> TokenStream {
    tts.iter().cloned().collect()
}

/// An error spanning `tts` from their first to their last token.
pub fn error_over(tts: &[TokenTree], message: String) -> syn::Error {
    syn::Error::new_spanned(tokens_of(tts), message)
}

fn is_punct(tt: Option<&TokenTree>, c: char) -> bool {
    matches!(tt, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

/// One `key = value`, without its comma.
fn parse_arg(piece: &[TokenTree], earlier: &Args) -> syn::Result<Arg> {
    let (key, spec) = key_of(piece)?;
    if earlier.args.iter().any(|a| a.key == key) {
        return Err(syn::Error::new(
            key.span(),
            format!("duplicate argument `{key}`: it is already given earlier in this attribute"),
        ));
    }
    let tokens = value_tokens(piece, &key, spec)?;
    let value = value::read(spec, piece[1].span(), tokens)?;
    Ok(Arg { key, value })
}

/// The key at the start of `piece`, and its row of the table.
fn key_of(piece: &[TokenTree]) -> syn::Result<(syn::Ident, &'static table::Arg)> {
    let key = match &piece[0] {
        TokenTree::Ident(i) => i.clone(),
        other => {
            return Err(syn::Error::new(
                other.span(),
                format!(
                    "expected an argument such as `runs = 5`, found `{other}`; valid arguments: {}",
                    table::valid_keys()
                ),
            ))
        }
    };
    // A path such as `config::runs`: never a key.
    let mut path_len = 1;
    while is_punct(piece.get(path_len), ':')
        && is_punct(piece.get(path_len + 1), ':')
        && matches!(piece.get(path_len + 2), Some(TokenTree::Ident(_)))
    {
        path_len += 3;
    }
    if path_len > 1 {
        let path = &piece[..path_len];
        let written = tokens_of(path).to_string().replace(' ', "");
        let message = format!(
            "unknown argument `{written}`; valid arguments: {}",
            table::valid_keys()
        );
        return Err(error_over(path, message));
    }
    match table::find(&key.to_string()) {
        Some(spec) => Ok((key, spec)),
        None => Err(unknown_key(&key)),
    }
}

fn unknown_key(key: &syn::Ident) -> syn::Error {
    let hint = match table::closest(&key.to_string()) {
        Some(a) => format!("did you mean `{}`? ", a.name),
        None => String::new(),
    };
    syn::Error::new(
        key.span(),
        format!(
            "unknown argument `{key}`; {hint}valid arguments: {}",
            table::valid_keys()
        ),
    )
}

/// The tokens after `key =`.
fn value_tokens<'a>(
    piece: &'a [TokenTree],
    key: &syn::Ident,
    spec: &table::Arg,
) -> syn::Result<&'a [TokenTree]> {
    let placeholder = spec.value.placeholder();
    match piece.get(1) {
        Some(TokenTree::Punct(p)) if p.as_char() == '=' => Ok(&piece[2..]),
        None => Err(syn::Error::new(
            key.span(),
            format!(
                "`{key}` needs a value: write `{key} = {placeholder}` ({})",
                spec.meaning
            ),
        )),
        Some(TokenTree::Group(g)) => {
            let inner = g.stream().to_string();
            let inner = if inner.is_empty() {
                placeholder
            } else {
                &inner
            };
            Err(syn::Error::new(
                g.span(),
                format!("`{key}` takes its value after `=`: write `{key} = {inner}`"),
            ))
        }
        Some(other) => Err(syn::Error::new(
            other.span(),
            format!("expected `=` after `{key}`, found `{other}`; write `{key} = {placeholder}`"),
        )),
    }
}

/// `#[no_leak::isolated]` takes no arguments.
pub fn parse_none(tokens: TokenStream) -> Result<(), syn::Error> {
    if tokens.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            tokens,
            "#[no_leak::isolated] takes no arguments; to measure with warmup, runs and bounds, \
             use #[no_leak(...)] instead",
        ))
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
