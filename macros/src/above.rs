//! What is written above the attribute: whether a test attribute has already expanded.
//!
//! rustc expands the attributes of an item from the top down. By the time `#[no_leak]` runs under
//! a built-in `#[test]` written above it, that `#[test]` has expanded and left nothing on the
//! function that a macro can see: on rustc 1.95 the `rustc_test_marker` sits on the `const` it
//! generated next to the function, and the trace it leaves on the function is not passed to
//! attribute macros. `#[test] #[no_leak] fn f()` and `#[no_leak] fn f()` arrive as the same tokens.
//! The one place the difference remains is the source: this module reads the file the attribute
//! is written in (`Span::local_file`, stable since rustc 1.88) and lexes it up to the attribute,
//! to find the other attributes of the same item written above it.

use std::path::Path;

use proc_macro2::{LineColumn, Span};

use crate::valid;

/// Whether a test attribute is written above this one on the same item.
#[derive(Debug, PartialEq, Eq)]
pub enum Above {
    /// Yes: the item is already a test.
    Test,
    /// No: the attributes above (if any) are read, and none makes a test.
    NoTest,
    /// The source cannot be read or lexed here (a rustc older than 1.88, an IDE, attributes
    /// passed through a `macro_rules!` fragment).
    Unknown,
}

/// Looks above the attribute being expanded.
pub fn test_attr_above() -> Above {
    let span = Span::call_site();
    let (Some(file), start) = (span.local_file(), span.start()) else {
        return Above::Unknown;
    };
    match read_above(&file, start) {
        Some(attrs) if attrs.iter().any(|a| a.iter().any(valid::is_test_attr)) => Above::Test,
        Some(_) => Above::NoTest,
        None => Above::Unknown,
    }
}

/// The attributes written above position `at` of `file`, each parsed.
fn read_above(file: &Path, at: LineColumn) -> Option<Vec<Vec<syn::Attribute>>> {
    if at.line == 0 {
        return None; // no location on this compiler
    }
    let text = std::fs::read_to_string(file).ok()?;
    let offset = byte_offset(&text, at)?;
    let texts = attributes_before(&text, offset)?;
    texts
        .iter()
        .map(|t| syn::parse::Parser::parse_str(syn::Attribute::parse_outer, t).ok())
        .collect()
}

/// The byte offset of a line (1-based) and column (0-based, in characters).
fn byte_offset(text: &str, at: LineColumn) -> Option<usize> {
    let line_start = if at.line == 1 {
        0
    } else {
        text.match_indices('\n').nth(at.line - 2)?.0 + 1
    };
    let line = &text[line_start..];
    let column = match line.char_indices().nth(at.column) {
        Some((i, _)) => i,
        None if line.chars().count() == at.column => line.len(),
        None => return None,
    };
    Some(line_start + column)
}

/// The outer attributes (as written, `#[...]`) of the item whose attribute list contains
/// `offset`, written before it: `None` when `offset` is not at or inside an attribute, or when
/// something other than an item boundary (`;`, `{`, `}`, an inner attribute, the file's start)
/// comes before them, such as the `)*` of a `macro_rules!` repetition.
fn attributes_before(text: &str, offset: usize) -> Option<Vec<String>> {
    let mut lexer = Lexer {
        text: &text[..offset],
        at: 0,
    };
    let mut run: Option<Vec<String>> = Some(Vec::new());
    while let Some(token) = lexer.next() {
        match token {
            Token::Attr(start) => {
                let Some(end) = lexer.attribute_end() else {
                    // `offset` is inside this attribute: `#[cfg_attr(.., no_leak)]`.
                    return run;
                };
                if let Some(run) = run.as_mut() {
                    run.push(text[start..end].to_string());
                }
            }
            Token::InnerAttr => {
                lexer.attribute_end()?;
                run = Some(Vec::new());
            }
            Token::Boundary => run = Some(Vec::new()),
            Token::Other => run = None,
        }
    }
    // At `offset` itself the attribute being expanded must start.
    if text[offset..].starts_with('#') {
        run
    } else {
        None
    }
}

enum Token {
    /// `#[`, starting at this byte.
    Attr(usize),
    /// `#![`
    InnerAttr,
    /// `;`, `{` or `}`
    Boundary,
    /// Anything else.
    Other,
}

/// A lexer for just enough Rust to find attributes: it skips whitespace, comments, and string,
/// character and lifetime tokens, so that brackets and semicolons inside them do not count.
struct Lexer<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn next(&mut self) -> Option<Token> {
        self.skip_trivia();
        let rest = self.rest();
        let c = rest.chars().next()?;
        let start = self.at;
        if rest.starts_with("#[") {
            self.at += 2;
            return Some(Token::Attr(start));
        }
        if rest.starts_with("#![") {
            self.at += 3;
            return Some(Token::InnerAttr);
        }
        if self.skip_literal() {
            return Some(Token::Other);
        }
        self.at += c.len_utf8();
        Some(match c {
            ';' | '{' | '}' => Token::Boundary,
            _ => Token::Other,
        })
    }

    /// Past the `]` that closes the attribute just opened; `None` if the text ends first.
    fn attribute_end(&mut self) -> Option<usize> {
        let mut depth = 1usize;
        while depth > 0 {
            self.skip_trivia();
            if self.skip_literal() {
                continue;
            }
            let c = self.rest().chars().next()?;
            self.at += c.len_utf8();
            match c {
                '[' | '(' | '{' => depth += 1,
                ']' | ')' | '}' => depth -= 1,
                _ => {}
            }
        }
        Some(self.at)
    }

    fn skip_trivia(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.at += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.at += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if trimmed.starts_with("/*") {
                self.at += block_comment_len(trimmed);
            } else {
                return;
            }
        }
    }

    /// Skips a string, byte string, raw string, character or lifetime at the cursor.
    fn skip_literal(&mut self) -> bool {
        match literal_len(self.rest()) {
            Some(n) => {
                self.at += n;
                true
            }
            None => false,
        }
    }
}

/// The length of a (nested) block comment at the start of `s`, or all of `s` if unterminated.
fn block_comment_len(s: &str) -> usize {
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with("/*") {
            depth += 1;
            i += 2;
        } else if rest.starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    s.len()
}

/// The length of a string-like literal, character or lifetime at the start of `s`.
fn literal_len(s: &str) -> Option<usize> {
    let prefix = ["br", "cr", "r", "b", "c", ""]
        .into_iter()
        .find(|p| s.starts_with(p) && s[p.len()..].starts_with(['"', '#', '\'']))?;
    let body = &s[prefix.len()..];
    if prefix.ends_with('r') {
        let hashes = body.len() - body.trim_start_matches('#').len();
        let open = &body[hashes..];
        if !open.starts_with('"') {
            return None;
        }
        let close = format!("\"{}", "#".repeat(hashes));
        let end = open[1..]
            .find(&close)
            .map_or(open.len(), |i| i + 1 + close.len());
        return Some(prefix.len() + hashes + end);
    }
    match body.chars().next()? {
        '"' => Some(prefix.len() + quoted_len(body, '"')),
        '\'' => Some(prefix.len() + char_or_lifetime_len(body)),
        _ => None,
    }
}

/// `"..."` with escapes, from the opening quote; all of `s` if unterminated.
fn quoted_len(s: &str, quote: char) -> usize {
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            c if c == quote => return i + 1,
            _ => {}
        }
    }
    s.len()
}

/// `'x'`, `'\n'`, `'\u{..}'` or a lifetime `'a`, from the quote.
fn char_or_lifetime_len(s: &str) -> usize {
    let mut chars = s.char_indices().skip(1);
    match (chars.next(), chars.next()) {
        (Some((_, '\\')), _) => quoted_len(s, '\''),
        (Some(_), Some((i, '\''))) => i + 1,
        _ => {
            // A lifetime or label: the quote and the identifier after it.
            let ident = s[1..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(s.len() - 1);
            1 + ident
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attributes above the `#[no_leak]` marked by `@` in `source`.
    fn above(source: &str) -> Option<Vec<String>> {
        let offset = source.find('@').expect("a marker");
        let text = source.replace('@', "");
        attributes_before(&text, offset)
    }

    #[test]
    fn finds_the_attributes_of_the_same_item_above() {
        let src = "use x;\n#[test]\n/// doc\n#[should_panic(expected = \"]; {\")]\n@#[no_leak]\nfn f() {}";
        assert_eq!(
            above(src).unwrap(),
            ["#[test]", "#[should_panic(expected = \"]; {\")]"]
        );
    }

    #[test]
    fn stops_at_the_previous_item_and_skips_comments_strings_and_lifetimes() {
        let src = "#[test] fn g<'a>(x: &'a str) { let _ = ('}', r#\"#[test]\"#); /* #[test] */ }\n\
                   // #[test]\n@#[no_leak] fn f() {}";
        assert_eq!(above(src).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn inside_a_cfg_attr_reads_the_attributes_before_it() {
        let src = "mod m {\n    #[test]\n    #[cfg_attr(all(), @no_leak)]\n    fn f() {}\n}";
        assert_eq!(above(src).unwrap(), ["#[test]"]);
    }

    #[test]
    fn a_macro_repetition_before_the_attribute_is_unknown() {
        let src = "macro_rules! m { ($(#[$m:meta])*) => { $(#[$m])* @#[no_leak] fn f() {} } }";
        assert_eq!(above(src), None);
    }

    #[test]
    fn an_offset_that_is_not_an_attribute_is_unknown() {
        assert_eq!(above("fn @f() {}"), None);
    }

    #[test]
    fn line_and_column_map_to_bytes_with_multibyte_characters() {
        let text = "// é\n  #[test]";
        let at = LineColumn { line: 2, column: 2 };
        assert_eq!(&text[byte_offset(text, at).unwrap()..], "#[test]");
    }
}
