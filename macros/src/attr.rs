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
    /// `crate = path`, not a `Config` key (see [`table::CRATE`]).
    pub krate: Option<Krate>,
}

/// `crate = path`: the path the generated code names no_leak by.
#[derive(Clone)]
pub struct Krate {
    /// The `crate` key as written (for spans).
    pub key: syn::Ident,
    /// The path, as written (a string's content spanned at the string).
    pub path: TokenStream,
    /// Its names, without a leading `::`, to recognise `#[<path>::no_leak]`.
    pub segments: Vec<String>,
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
        let krate = self.krate.clone().or_else(|| base.krate.clone());
        Args { args, krate }
    }
}

/// The path the generated code names no_leak by: `crate = path`, or `::no_leak`.
pub fn krate(args: &Option<Args>) -> TokenStream {
    match args.as_ref().and_then(|a| a.krate.as_ref()) {
        Some(k) => k.path.clone(),
        None => quote::quote!(::no_leak),
    }
}

/// Parses the attribute's arguments, collecting every error (one per faulty argument).
pub fn parse(tokens: TokenStream) -> Result<Args, syn::Error> {
    parse_as(tokens, false)
}

/// `#[no_leak::isolated]` takes no arguments but `crate = path`.
pub fn parse_isolated(tokens: TokenStream) -> Result<Args, syn::Error> {
    parse_as(tokens, true)
}

fn parse_as(tokens: TokenStream, isolated: bool) -> Result<Args, syn::Error> {
    let mut flat = Vec::new();
    flatten(tokens, &mut flat);
    let (pieces, commas) = split_at_commas(flat);

    let mut args = Args::default();
    let mut errors = Vec::new();
    // What `#[no_leak::isolated]` does not take, from its first token to its last.
    let mut refused: Vec<TokenTree> = Vec::new();
    let last = pieces.len() - 1;
    for (i, piece) in pieces.iter().enumerate() {
        if piece.is_empty() {
            // Nothing at all, or a trailing comma, is fine; an empty slot before a comma is not.
            if i < last {
                let expected = if isolated {
                    "`crate = <path>`"
                } else {
                    "`key = <integer>`"
                };
                errors.push(syn::Error::new(
                    commas[i],
                    format!("unexpected `,`: expected {expected} before it"),
                ));
            }
            continue;
        }
        if is_crate_key(piece) {
            match parse_crate(piece, &args) {
                Ok(k) => args.krate = Some(k),
                Err(e) => errors.push(e),
            }
        } else if isolated {
            refused.extend(piece.iter().cloned());
        } else {
            match parse_arg(piece, &args) {
                Ok(arg) => args.args.push(arg),
                Err(e) => errors.push(e),
            }
        }
    }
    if !refused.is_empty() {
        errors.insert(
            0,
            error_over(
                &refused,
                format!(
                    "#[no_leak::isolated] takes no arguments but `{} = <path>`; to measure with \
                     warmup, runs and bounds, use #[no_leak(...)] instead",
                    table::CRATE
                ),
            ),
        );
    }
    combine(errors).map(|()| args)
}

/// `crate ...`: the one argument that is not a key of the table.
fn is_crate_key(piece: &[TokenTree]) -> bool {
    matches!(piece.first(), Some(TokenTree::Ident(i)) if i == table::CRATE)
}

/// `crate = path`, or `crate = "path"` as serde and tokio write it.
fn parse_crate(piece: &[TokenTree], earlier: &Args) -> syn::Result<Krate> {
    let TokenTree::Ident(key) = &piece[0] else {
        unreachable!("is_crate_key")
    };
    if earlier.krate.is_some() {
        return Err(syn::Error::new(
            key.span(),
            format!("duplicate argument `{key}`: it is already given earlier in this attribute"),
        ));
    }
    let value = value_tokens(piece, key, "<path>", table::CRATE_MEANING)?;
    let example = table::CRATE_EXAMPLE;
    let found = match value {
        [] => {
            return Err(syn::Error::new(
                piece[1].span(),
                format!("`{key}` needs a path after `=`, e.g. `{key} = {example}`"),
            ))
        }
        [TokenTree::Literal(l)] => match syn::Lit::new(l.clone()) {
            syn::Lit::Str(s) => {
                let written = s.value();
                let tokens: Option<Vec<TokenTree>> = written.parse::<TokenStream>().ok().map(|t| {
                    t.into_iter()
                        .map(|mut tt| {
                            tt.set_span(l.span());
                            tt
                        })
                        .collect()
                });
                return match tokens.as_deref().map(path_segments) {
                    Some(Ok(segments)) if !segments.is_empty() => Ok(Krate {
                        key: key.clone(),
                        path: tokens_of(tokens.as_deref().unwrap_or_default()),
                        segments,
                    }),
                    _ => Err(syn::Error::new(
                        l.span(),
                        format!(
                            "`{key}` takes a path, e.g. `{key} = {example}`; \"{written}\" is not one"
                        ),
                    )),
                };
            }
            syn::Lit::Int(_) | syn::Lit::Float(_) => "a number",
            _ => "a literal",
        },
        [TokenTree::Group(_), ..] => "a group",
        _ => "",
    };
    if !found.is_empty() {
        return Err(error_over(
            value,
            format!("`{key}` takes a path, e.g. `{key} = {example}`; found {found}"),
        ));
    }
    let segments = path_segments(value)?;
    Ok(Krate {
        key: key.clone(),
        path: tokens_of(value),
        segments,
    })
}

/// The names of a path written as tokens (`a::b`, `::a::b`, `crate::a`), or an error at the first
/// token that does not belong in one.
fn path_segments(tokens: &[TokenTree]) -> syn::Result<Vec<String>> {
    let example = table::CRATE_EXAMPLE;
    let is_colons = |i: usize| is_punct(tokens.get(i), ':') && is_punct(tokens.get(i + 1), ':');
    let mut segments = Vec::new();
    let mut at = if is_colons(0) { 2 } else { 0 };
    loop {
        match tokens.get(at) {
            Some(TokenTree::Ident(i)) => segments.push(i.to_string()),
            Some(other) => {
                return Err(syn::Error::new(
                    other.span(),
                    format!("expected a name in the path, found `{other}`; write a path such as `{example}`"),
                ))
            }
            None => {
                let colons = &tokens[tokens.len().saturating_sub(2)..];
                return Err(error_over(
                    colons,
                    format!("the path ends in `::`: write a name after it, as in `{example}`"),
                ));
            }
        }
        at += 1;
        match tokens.get(at) {
            None => return Ok(segments),
            Some(_) if is_colons(at) => at += 2,
            Some(next @ (TokenTree::Ident(_) | TokenTree::Literal(_))) => {
                return Err(syn::Error::new(
                    next.span(),
                    format!("expected `,` before `{next}`: arguments are separated by commas"),
                ))
            }
            Some(other) => {
                return Err(syn::Error::new(
                    other.span(),
                    format!(
                        "expected `::` or `,` after `{}`, found `{other}`; `crate` takes a plain \
                         path such as `{example}`",
                        segments.last().expect("one name read")
                    ),
                ))
            }
        }
    }
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
    let tokens = value_tokens(piece, &key, spec.value.placeholder(), spec.meaning)?;
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
    placeholder: &str,
    meaning: &str,
) -> syn::Result<&'a [TokenTree]> {
    match piece.get(1) {
        Some(TokenTree::Punct(p)) if p.as_char() == '=' => Ok(&piece[2..]),
        None => Err(syn::Error::new(
            key.span(),
            format!("`{key}` needs a value: write `{key} = {placeholder}` ({meaning})"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn krate_of(tokens: TokenStream) -> syn::Result<(String, Vec<String>)> {
        let args = parse(tokens)?;
        let k = args.krate.expect("a crate argument");
        Ok((k.path.to_string().replace(' ', ""), k.segments))
    }

    #[test]
    fn crate_takes_a_path_bare_or_as_a_string() {
        for (tokens, path, segments) in [
            (
                quote::quote!(crate = a::no_leak),
                "a::no_leak",
                vec!["a", "no_leak"],
            ),
            (quote::quote!(crate = ::a::b), "::a::b", vec!["a", "b"]),
            (
                quote::quote!(crate = crate::a),
                "crate::a",
                vec!["crate", "a"],
            ),
            (
                quote::quote!(crate = "a::no_leak"),
                "a::no_leak",
                vec!["a", "no_leak"],
            ),
            (quote::quote!(runs = 3, crate = x,), "x", vec!["x"]),
        ] {
            let want = (
                path.to_string(),
                segments.iter().map(|s| s.to_string()).collect(),
            );
            assert_eq!(krate_of(tokens.clone()).unwrap(), want, "{tokens}");
        }
    }

    #[test]
    fn crate_refuses_what_is_not_a_path() {
        for (tokens, message) in [
            (quote::quote!(crate), "`crate` needs a value"),
            (quote::quote!(crate =), "`crate` needs a path after `=`"),
            (quote::quote!(crate = 5), "found a number"),
            (quote::quote!(crate = a::), "the path ends in `::`"),
            (
                quote::quote!(crate = a::<T>),
                "expected a name in the path, found `<`",
            ),
            (quote::quote!(crate = a b), "expected `,` before `b`"),
            (
                quote::quote!(crate = a:b),
                "expected `::` or `,` after `a`, found `:`",
            ),
            (quote::quote!(crate = "a b"), "\"a b\" is not one"),
            (
                quote::quote!(crate = a, crate = b),
                "duplicate argument `crate`",
            ),
        ] {
            let error = parse(tokens.clone()).err().expect("an error").to_string();
            assert!(error.contains(message), "{tokens}: {error}");
        }
    }

    #[test]
    fn isolated_takes_only_crate() {
        let args = parse_isolated(quote::quote!(crate = a::no_leak)).unwrap();
        assert!(args.args.is_empty() && args.krate.is_some());
        let error = parse_isolated(quote::quote!(runs = 3)).err().unwrap();
        assert!(error
            .to_string()
            .contains("takes no arguments but `crate = <path>`"));
    }

    #[test]
    fn crate_is_inherited_by_over_unless_given() {
        let base = parse(quote::quote!(crate = a::no_leak, runs = 2)).unwrap();
        let own = parse(quote::quote!(runs = 3)).unwrap();
        let merged = own.over(&base);
        assert_eq!(merged.krate.unwrap().segments, ["a", "no_leak"]);
        let own = parse(quote::quote!(crate = b)).unwrap();
        assert_eq!(own.over(&base).krate.unwrap().segments, ["b"]);
    }
}
