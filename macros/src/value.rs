//! Reading one argument's value, by the rules its row of the table gives: the kind of literal,
//! its range and its minimum.

use proc_macro2::{Literal, Span, TokenTree};

use crate::attr::error_over;
use crate::table::{self, Value};

/// A value as the generated code writes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(u64),
    Float(f64),
}

impl Number {
    /// The value as an unsuffixed literal, so that it takes the type of the `Config` method.
    pub fn literal(self) -> Literal {
        match self {
            Number::Int(n) => Literal::u64_unsuffixed(n),
            Number::Float(x) => Literal::f64_unsuffixed(x),
        }
    }
}

/// Reads the tokens after `key =` (`eq` is the span of the `=`).
pub fn read(spec: &table::Arg, eq: Span, value: &[TokenTree]) -> syn::Result<Number> {
    let name = spec.name;
    match value {
        [] => Err(syn::Error::new(
            eq,
            format!(
                "`{name}` needs a value after `=`, e.g. `{name} = {}`",
                spec.example
            ),
        )),
        [TokenTree::Literal(l)] => literal(spec, value, l),
        [TokenTree::Punct(minus), TokenTree::Literal(l)]
            if minus.as_char() == '-'
                && matches!(
                    syn::Lit::new(l.clone()),
                    syn::Lit::Int(_) | syn::Lit::Float(_)
                ) =>
        {
            Err(error_over(value, format!("`{name}` cannot be negative")))
        }
        [TokenTree::Ident(i)] if i == "true" || i == "false" => {
            Err(wrong_kind(spec, value, "a boolean"))
        }
        [TokenTree::Ident(_)] => Err(wrong_kind(
            spec,
            value,
            "a name (constants are not evaluated in attributes; write the number)",
        )),
        [TokenTree::Literal(_), next @ (TokenTree::Literal(_) | TokenTree::Ident(_)), ..] => {
            Err(syn::Error::new(
                next.span(),
                format!("expected `,` before `{next}`: arguments are separated by commas"),
            ))
        }
        _ => Err(wrong_kind(spec, value, "an expression")),
    }
}

/// One literal token.
fn literal(spec: &table::Arg, value: &[TokenTree], l: &Literal) -> syn::Result<Number> {
    let name = spec.name;
    match syn::Lit::new(l.clone()) {
        syn::Lit::Int(int) if spec.value == Value::Float => {
            integer(spec, &int).map(|v| Number::Float(v as f64))
        }
        syn::Lit::Int(int) => integer(spec, &int).map(Number::Int),
        syn::Lit::Float(x) if spec.value == Value::Float && x.suffix().is_empty() => {
            match x.base10_parse::<f64>() {
                // Only a macro can write a negative literal as one token.
                Ok(v) if v < 0.0 => Err(error_over(value, format!("`{name}` cannot be negative"))),
                Ok(v) if v.is_finite() => Ok(Number::Float(v)),
                _ => Err(wrong_kind(spec, value, "a number too large to be finite")),
            }
        }
        syn::Lit::Str(s) if s.value().trim().parse::<f64>().is_ok() => Err(syn::Error::new(
            l.span(),
            format!(
                "`{name}` takes {}, not a string: write `{name} = {}`",
                kind_word(spec.value),
                s.value().trim()
            ),
        )),
        other => Err(wrong_kind(spec, value, describe_lit(&other))),
    }
}

/// An integer literal: no sign, no suffix, within the key's range and at least its minimum.
fn integer(spec: &table::Arg, lit: &syn::LitInt) -> syn::Result<u64> {
    let name = spec.name;
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
                "`{name}` takes a plain {} without a type suffix: write `{name} = {}`",
                kind_word(spec.value)
                    .trim_start_matches("an ")
                    .trim_start_matches("a "),
                lit.base10_digits()
            ),
        ));
    }
    let max = spec.value.max();
    let value = match lit.base10_parse::<u64>() {
        Ok(v) if v <= max => v,
        _ => {
            return Err(syn::Error::new(
                lit.span(),
                format!("`{name}` is too large: it must be at most {max}"),
            ))
        }
    };
    if value < spec.min {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{name}` must be at least {}: {}", spec.min, spec.why_min),
        ));
    }
    Ok(value)
}

fn kind_word(value: Value) -> &'static str {
    match value {
        Value::U32 | Value::U64 => "an integer",
        Value::Float => "a number",
    }
}

fn wrong_kind(spec: &table::Arg, value: &[TokenTree], found: &str) -> syn::Error {
    let name = spec.name;
    let what = match spec.value {
        Value::U32 | Value::U64 => "an integer literal",
        Value::Float => "a number",
    };
    error_over(
        value,
        format!(
            "`{name}` takes {what}, e.g. `{name} = {}`; found {found}",
            spec.example
        ),
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
