//! Code generation for a function; `module.rs` handles `#[no_leak]` on an inline module.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::spanned::Spanned;
use syn::{Item, ItemFn, ReturnType};

use crate::above::{self, Above};
use crate::{attr, module, table, valid};

/// Which attribute is expanding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `#[no_leak(...)]`
    Check,
    /// `#[no_leak::isolated]`
    Isolated,
}

impl Kind {
    fn written(self) -> &'static str {
        match self {
            Kind::Check => "#[no_leak]",
            Kind::Isolated => "#[no_leak::isolated]",
        }
    }

    /// The attribute's path under `krate` (`::no_leak` unless `crate = path` says otherwise).
    fn path(self, krate: &TokenStream) -> TokenStream {
        match self {
            Kind::Check => quote!(#krate::no_leak),
            Kind::Isolated => quote!(#krate::isolated),
        }
    }
}

pub fn entry(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed_args = match kind {
        Kind::Check => attr::parse(args).map(Some),
        Kind::Isolated => attr::parse_isolated(args).map(Some),
    };
    let item: Item = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(e) => return fallback(item, &[e]),
    };
    match item {
        Item::Fn(f) => function(kind, parsed_args, f),
        Item::Mod(m) if kind == Kind::Check => {
            module::expand(parsed_args.map(Option::unwrap_or_default), m)
        }
        other => {
            // In source order: the attribute's own arguments first, then the item.
            let (span, what) = item_kind(&other);
            let mut errors: Vec<_> = parsed_args.err().into_iter().collect();
            let goes_on = match kind {
                Kind::Check => "a test function or an inline module of tests",
                Kind::Isolated => "a test function",
            };
            errors.push(syn::Error::new(
                span,
                format!("{} goes on {goes_on}, not on {what}", kind.written()),
            ));
            fallback(other.into_token_stream(), &errors)
        }
    }
}

/// `#[no_leak]` or `#[no_leak::isolated]` on a function.
fn function(kind: Kind, parsed_args: syn::Result<Option<attr::Args>>, f: ItemFn) -> TokenStream {
    // In source order: the attribute's own arguments first, then the function.
    let mut errors = Vec::new();
    let args = parsed_args.map_err(|e| errors.push(e)).ok();
    let asyncness = valid::check_async(&f, kind.written())
        .map_err(|e| errors.push(e))
        .ok();
    let has_args = valid::check_args(&f, kind.written())
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(args), Some(asyncness), Some(has_args)) = (args, asyncness, has_args) else {
        return fallback(f.into_token_stream(), &errors);
    };
    // Async under a runtime attribute, or arguments under #[rstest]: let that attribute expand
    // first, and come back as an attribute after it, onto the plain test function it generates.
    if let valid::Async::Runtime(i) = asyncness {
        return reattach(kind, &args, f, Some(i));
    }
    if has_args {
        return reattach(kind, &args, f, None);
    }
    generate(kind, args, f)
}

/// `key = value, ...`, as the generated attributes write the arguments (`crate = path` first).
fn args_tokens(args: &Option<attr::Args>) -> TokenStream {
    let krate = args.iter().flat_map(|a| &a.krate).map(|k| {
        let (key, path) = (&k.key, &k.path);
        quote!(#key = #path)
    });
    let items = args.iter().flat_map(|a| &a.args).map(|a| {
        let (key, lit) = (&a.key, a.value.literal());
        quote!(#key = #lit)
    });
    let items = krate.chain(items);
    quote!(#(#items),*)
}

/// `#[::no_leak::no_leak(args)]` (or `#[::no_leak::isolated]`), under the path `crate = path`
/// gives.
pub fn attribute(kind: Kind, args: &Option<attr::Args>) -> syn::Attribute {
    let path = kind.path(&attr::krate(args));
    let args = args_tokens(args);
    if args.is_empty() {
        syn::parse_quote!(#[#path])
    } else {
        syn::parse_quote!(#[#path(#args)])
    }
}

/// Puts our attribute back on `f`: right after the runtime attribute at `after`, or at the end
/// of the attribute list (after `#[rstest]` and its `#[case]`s, so rstest copies it onto every
/// case).
fn reattach(
    kind: Kind,
    args: &Option<attr::Args>,
    mut f: ItemFn,
    after: Option<usize>,
) -> TokenStream {
    let ours = attribute(kind, args);
    match after {
        Some(i) => f.attrs.insert(i + 1, ours),
        None => f.attrs.push(ours),
    }
    f.into_token_stream()
}

/// The test attribute to write when the function has none: `#[test]` in a test build. Elsewhere
/// the function stays, type-checked but unused, where a `#[test]` would remove it.
fn registration(f: &ItemFn) -> TokenStream {
    if f.attrs.iter().any(valid::is_test_attr) {
        return TokenStream::new();
    }
    match above::test_attr_above() {
        Above::NoTest => quote! {
            #[cfg_attr(test, ::core::prelude::v1::test)]
            #[cfg_attr(not(test), allow(dead_code))]
        },
        // Already a test, or the source cannot tell: write nothing, so that no test is
        // registered twice.
        Above::Test | Above::Unknown => TokenStream::new(),
    }
}

fn generate(kind: Kind, args: Option<attr::Args>, f: ItemFn) -> TokenStream {
    let register = registration(&f);
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = f;
    let ret = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    let name = sig.ident.to_string();
    let krate = attr::krate(&args);
    let should_panic = should_panic_of(&attrs, &krate);
    let test = quote! {
        #krate::__private::TestFn {
            module_path: ::core::module_path!(),
            name: #name,
            should_panic: #should_panic,
        }
    };
    // The runner's `R: Outcome` bound is what rejects a bad return type. Naming `R` explicitly,
    // with the return type as the user wrote it, makes rustc point the error at that type rather
    // than at the attribute.
    let call = match kind {
        Kind::Check => {
            let setters = args.iter().flat_map(|a| &a.args).map(setter);
            quote! {
                #krate::__private::run_test::<#ret>(
                    #test,
                    #krate::Config::new() #(#setters)*,
                    || -> #ret #block,
                )
            }
        }
        Kind::Isolated => quote! {
            #krate::__private::run_isolated::<#ret>(#test, || -> #ret #block)
        },
    };
    quote! {
        #register
        #(#attrs)*
        #vis #sig {
            #call
        }
    }
}

/// `.key(value)`, or for a time key `.method(::core::time::Duration::from_millis(value))`, as the
/// table says how the key is applied.
fn setter(a: &attr::Arg) -> TokenStream {
    let lit = a.value.literal();
    match table::find(&a.key.to_string()).map(|t| t.apply) {
        Some(table::Apply::Millis(method)) => {
            let method = syn::Ident::new(method, a.key.span());
            quote!(.#method(::core::time::Duration::from_millis(#lit)))
        }
        _ => {
            let key = &a.key;
            quote!(.#key(#lit))
        }
    }
}

/// The test's `#[should_panic]`, as the runtime's `ShouldPanic`.
fn should_panic_of(attrs: &[syn::Attribute], krate: &TokenStream) -> TokenStream {
    let sp = quote!(#krate::__private::ShouldPanic);
    let Some(attr) = attrs.iter().find(|a| a.path().is_ident("should_panic")) else {
        return quote!(#sp::No);
    };
    let expected = match &attr.meta {
        syn::Meta::NameValue(nv) => Some(nv.value.to_token_stream()),
        syn::Meta::List(list) => list
            .parse_args::<syn::MetaNameValue>()
            .ok()
            .filter(|nv| nv.path.is_ident("expected"))
            .map(|nv| nv.value.to_token_stream()),
        syn::Meta::Path(_) => None,
    };
    match expected {
        Some(e) => quote!(#sp::Expected(#e)),
        None => quote!(#sp::Yes),
    }
}

/// The span to blame when the attribute is not on a function (the item's keyword), and what the
/// item is, for the message.
fn item_kind(item: &Item) -> (Span, &'static str) {
    match item {
        Item::Struct(i) => (i.struct_token.span, "a struct"),
        Item::Enum(i) => (i.enum_token.span, "an enum"),
        Item::Union(i) => (i.union_token.span, "a union"),
        Item::Const(i) => (i.const_token.span, "a const"),
        Item::Static(i) => (i.static_token.span, "a static"),
        Item::Mod(i) => (i.mod_token.span, "a module"),
        Item::Impl(i) => (i.impl_token.span, "an impl block"),
        Item::Trait(i) => (i.trait_token.span, "a trait"),
        Item::TraitAlias(i) => (i.trait_token.span, "a trait alias"),
        Item::Type(i) => (i.type_token.span, "a type alias"),
        Item::Use(i) => (i.use_token.span, "a `use` declaration"),
        Item::ExternCrate(i) => (i.extern_token.span, "an `extern crate`"),
        Item::ForeignMod(i) => (i.abi.extern_token.span, "an `extern` block"),
        Item::Macro(i) => (i.mac.path.span(), "a macro invocation"),
        other => (other.span(), "this item"),
    }
}

/// The item unchanged, plus the errors: one mistake, one message.
pub fn fallback(item: TokenStream, errors: &[syn::Error]) -> TokenStream {
    let errors = errors.iter().map(syn::Error::to_compile_error);
    quote! {
        #(#errors)*
        #item
    }
}
