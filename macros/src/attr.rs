//! Parsing `#[no_leak(key = value, ...)]` into [`Args`].
//!
//! The arguments are read token by token rather than through `syn::Meta`, so that every error can
//! point at the token the user wrote (a negative value, a value with a type suffix, a missing `=`)
//! and say how to write it instead.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};

/// The keys `#[no_leak]` accepts, in the order the docs list them.
pub const KEYS: &[&str] = &[
    "warmup",
    "runs",
    "max_bytes",
    "max_blocks",
    "max_threads",
    "max_fds",
    "max_tasks",
    "max_peak_bytes",
    "settle_ms",
    "soak",
    "soak_ms",
    "max_slope_bytes",
];

/// One parsed argument: the key as written (for spans) and its value.
pub struct Arg {
    pub key: syn::Ident,
    pub value: u64,
    /// For `max_slope_bytes`, which takes a float: the value as written.
    pub float: Option<f64>,
}

/// The arguments, each at most once.
#[derive(Default)]
pub struct Args {
    pub args: Vec<Arg>,
}

/// Keys whose value is a `u32`; the others are `u64`.
fn is_count(name: &str) -> bool {
    name == "warmup" || name == "runs"
}

fn valid_keys() -> String {
    KEYS.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses the attribute's arguments, collecting every error (one per faulty argument).
pub fn parse(tokens: TokenStream) -> Result<Args, syn::Error> {
    let mut flat = Vec::new();
    flatten(tokens, &mut flat);

    // Split at top-level commas, remembering each comma for "stray comma" errors.
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

    let mut args = Args::default();
    let mut seen: Vec<syn::Ident> = Vec::new();
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
        match parse_arg(piece, &mut seen) {
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

fn tokens_of(tts: &[TokenTree]) -> TokenStream {
    tts.iter().cloned().collect()
}

/// An error spanning `tts` from their first to their last token.
fn error_over(tts: &[TokenTree], message: String) -> syn::Error {
    syn::Error::new_spanned(tokens_of(tts), message)
}

fn is_punct(tt: Option<&TokenTree>, c: char) -> bool {
    matches!(tt, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

/// One `key = <integer>`, without its comma.
fn parse_arg(piece: &[TokenTree], seen: &mut Vec<syn::Ident>) -> syn::Result<Arg> {
    let key = match &piece[0] {
        TokenTree::Ident(i) => i.clone(),
        other => {
            return Err(syn::Error::new(
                other.span(),
                format!(
                    "expected an argument such as `runs = 5`, found `{other}`; valid arguments: {}",
                    valid_keys()
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
        return Err(error_over(
            path,
            format!(
                "unknown argument `{written}`; valid arguments: {}",
                valid_keys()
            ),
        ));
    }

    let name = key.to_string();
    if !KEYS.contains(&name.as_str()) {
        let hint = match closest(&name) {
            Some(k) => format!("did you mean `{k}`? "),
            None => String::new(),
        };
        return Err(syn::Error::new(
            key.span(),
            format!(
                "unknown argument `{name}`; {hint}valid arguments: {}",
                valid_keys()
            ),
        ));
    }
    if seen.contains(&key) {
        return Err(syn::Error::new(
            key.span(),
            format!("duplicate argument `{name}`: it is already given earlier in this attribute"),
        ));
    }
    seen.push(key.clone());

    let value = match piece.get(1) {
        None => {
            return Err(syn::Error::new(
                key.span(),
                format!("`{name}` needs a value: write `{name} = <integer>`"),
            ))
        }
        Some(TokenTree::Punct(p)) if p.as_char() == '=' => &piece[2..],
        Some(TokenTree::Group(g)) => {
            let inner = g.stream().to_string();
            let inner = if inner.is_empty() {
                "<integer>".to_string()
            } else {
                inner
            };
            return Err(syn::Error::new(
                g.span(),
                format!("`{name}` takes its value after `=`: write `{name} = {inner}`"),
            ));
        }
        Some(other) => {
            return Err(syn::Error::new(
                other.span(),
                format!("expected `=` after `{name}`, found `{other}`; write `{name} = <integer>`"),
            ))
        }
    };
    // `max_slope_bytes` is a rate in bytes per iteration: a float or an integer.
    if name == "max_slope_bytes" {
        if let [TokenTree::Literal(l)] = value {
            let parsed = match syn::Lit::new(l.clone()) {
                syn::Lit::Float(x) if x.suffix().is_empty() => x.base10_parse::<f64>().ok(),
                syn::Lit::Int(x) if x.suffix().is_empty() => x.base10_parse::<f64>().ok(),
                _ => None,
            };
            return match parsed {
                Some(v) if v.is_finite() => Ok(Arg { key, value: 0, float: Some(v) }),
                _ => Err(syn::Error::new(
                    l.span(),
                    "`max_slope_bytes` takes a number of bytes per iteration, e.g. `max_slope_bytes = 0.5`",
                )),
            };
        }
    }
    let lit = match value {
        [] => {
            return Err(syn::Error::new(
                piece[1].span(),
                format!("`{name}` needs a value after `=`, e.g. `{name} = 5`"),
            ))
        }
        [TokenTree::Literal(l)] => match syn::Lit::new(l.clone()) {
            syn::Lit::Int(int) => int,
            syn::Lit::Str(s) if s.value().trim().parse::<u64>().is_ok() => {
                return Err(syn::Error::new(
                    l.span(),
                    format!(
                        "`{name}` takes an integer, not a string: write `{name} = {}`",
                        s.value().trim()
                    ),
                ))
            }
            other => return Err(not_an_integer(&name, value, describe_lit(&other))),
        },
        [TokenTree::Punct(minus), TokenTree::Literal(l)]
            if minus.as_char() == '-' && matches!(syn::Lit::new(l.clone()), syn::Lit::Int(_)) =>
        {
            return Err(error_over(value, format!("`{name}` cannot be negative")))
        }
        [TokenTree::Ident(i)] if i == "true" || i == "false" => {
            return Err(not_an_integer(&name, value, "a boolean"))
        }
        [TokenTree::Ident(_)] => {
            return Err(not_an_integer(
                &name,
                value,
                "a name (constants are not evaluated in attributes; write the number)",
            ))
        }
        [TokenTree::Literal(_), next @ (TokenTree::Literal(_) | TokenTree::Ident(_)), ..] => {
            return Err(syn::Error::new(
                next.span(),
                format!("expected `,` before `{next}`: arguments are separated by commas"),
            ))
        }
        _ => return Err(not_an_integer(&name, value, "an expression")),
    };

    if lit.base10_digits().starts_with('-') {
        // Only a macro can write a negative literal as one token.
        return Err(syn::Error::new(
            lit.span(),
            format!("`{name}` cannot be negative"),
        ));
    }
    if !lit.suffix().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`{name}` takes a plain integer without a type suffix: write `{name} = {}`",
                lit.base10_digits()
            ),
        ));
    }
    let parsed = if is_count(&name) {
        lit.base10_parse::<u32>()
            .map(u64::from)
            .map_err(|_| u64::from(u32::MAX))
    } else {
        lit.base10_parse::<u64>().map_err(|_| u64::MAX)
    };
    let value = match parsed {
        Ok(v) => v,
        Err(max) => {
            return Err(syn::Error::new(
                lit.span(),
                format!("`{name}` is too large: it must be at most {max}"),
            ))
        }
    };
    if is_count(&name) && value == 0 {
        let why = if name == "warmup" {
            "`warmup` must be at least 1: lazy initialisation in the first run would read as a leak"
        } else {
            "`runs` must be at least 1: with no measured run nothing would be checked"
        };
        return Err(syn::Error::new(lit.span(), why));
    }
    if name == "soak" && value < 40 {
        return Err(syn::Error::new(
            lit.span(),
            "`soak` needs at least 40 iterations to fit a trend (10000 is typical)",
        ));
    }
    if name == "soak_ms" && value < 10 {
        return Err(syn::Error::new(
            lit.span(),
            "`soak_ms` needs at least 10 ms",
        ));
    }
    Ok(Arg {
        key,
        value,
        float: None,
    })
}

fn not_an_integer(name: &str, value: &[TokenTree], found: &str) -> syn::Error {
    error_over(
        value,
        format!("`{name}` takes an integer literal, e.g. `{name} = 5`; found {found}"),
    )
}

fn describe_lit(lit: &syn::Lit) -> &'static str {
    match lit {
        syn::Lit::Str(_) => "a string",
        syn::Lit::ByteStr(_) => "a byte string",
        syn::Lit::CStr(_) => "a C string",
        syn::Lit::Byte(_) => "a byte",
        syn::Lit::Char(_) => "a character",
        syn::Lit::Float(_) => "a float",
        syn::Lit::Bool(_) => "a boolean",
        _ => "a literal that is not an integer",
    }
}

/// The valid key closest to a misspelt one, if it is close enough to be a typo.
fn closest(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|&(d, k)| d <= 2.max(k.len() / 4) && d < k.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
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
