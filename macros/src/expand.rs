//! Code generation.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::spanned::Spanned;
use syn::{Item, ItemFn, ReturnType};

use crate::{attr, valid};

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

    fn path(self) -> TokenStream {
        match self {
            Kind::Check => quote!(::no_leak::no_leak),
            Kind::Isolated => quote!(::no_leak::isolated),
        }
    }
}

pub fn entry(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed_args = match kind {
        Kind::Check => attr::parse(args.clone()).map(Some),
        Kind::Isolated => attr::parse_none(args.clone()).map(|()| None),
    };
    let item: Item = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(e) => return fallback(item, &[e]),
    };
    let f = match item {
        Item::Fn(f) => f,
        other => {
            // In source order: the attribute's own arguments first, then the item.
            let (span, what) = item_kind(&other);
            let mut errors: Vec<_> = parsed_args.err().into_iter().collect();
            errors.push(syn::Error::new(
                span,
                format!("{} goes on a test function, not on {what}", kind.written()),
            ));
            return fallback(other.into_token_stream(), &errors);
        }
    };
    // In source order: the attribute's own arguments first, then the function.
    let mut errors = Vec::new();
    let args = parsed_args.map_err(|e| errors.push(e)).ok();
    let asyncness = valid::check_async(&f, kind.written())
        .map_err(|e| errors.push(e))
        .ok();
    let has_args = valid::check_args(&f, kind.written())
        .map_err(|e| errors.push(e))
        .ok();
    if !errors.is_empty() {
        return fallback(f.into_token_stream(), &errors);
    }
    let (Some(asyncness), Some(has_args), Some(args)) = (asyncness, has_args, args) else {
        unreachable!("no errors means every check passed");
    };
    // Async under a runtime attribute, or arguments under #[rstest]: let that attribute expand
    // first, and come back as an attribute after it, onto the plain test function it generates.
    if let valid::Async::Runtime(i) = asyncness {
        return reattach(kind, args_tokens(&args_of(&args)), f, Some(i));
    }
    if has_args {
        return reattach(kind, args_tokens(&args_of(&args)), f, None);
    }
    generate(kind, args, f)
}

/// Each argument as `(key, value literal)`: an unsuffixed integer, or a float for
/// `max_slope_bytes`.
fn args_of(args: &Option<attr::Args>) -> Vec<(syn::Ident, proc_macro2::Literal)> {
    args.as_ref()
        .map(|a| {
            a.args
                .iter()
                .map(|a| {
                    let lit = match a.float {
                        Some(x) => proc_macro2::Literal::f64_unsuffixed(x),
                        None => proc_macro2::Literal::u64_unsuffixed(a.value),
                    };
                    (a.key.clone(), lit)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn args_tokens(args: &[(syn::Ident, proc_macro2::Literal)]) -> TokenStream {
    let items = args.iter().map(|(k, lit)| quote!(#k = #lit));
    quote!(#(#items),*)
}

/// Puts our attribute back on `f`: right after the runtime attribute at `after`, or at the end
/// of the attribute list (after `#[rstest]` and its `#[case]`s, so rstest copies it onto every
/// case).
fn reattach(kind: Kind, args: TokenStream, mut f: ItemFn, after: Option<usize>) -> TokenStream {
    let path = kind.path();
    let ours: syn::Attribute = if args.is_empty() {
        syn::parse_quote!(#[#path])
    } else {
        syn::parse_quote!(#[#path(#args)])
    };
    match after {
        Some(i) => f.attrs.insert(i + 1, ours),
        None => f.attrs.push(ours),
    }
    f.into_token_stream()
}

fn generate(kind: Kind, args: Option<attr::Args>, f: ItemFn) -> TokenStream {
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
    // The runner's `R: Outcome` bound is what rejects a bad return type. Naming `R` explicitly,
    // with the return type as the user wrote it, makes rustc point the error at that type rather
    // than at the attribute.
    let callee = match kind {
        Kind::Check => quote!(::no_leak::__private::run_test::<#ret>),
        Kind::Isolated => quote!(::no_leak::__private::run_isolated::<#ret>),
    };
    let call = match kind {
        Kind::Check => {
            let setters = args_of(&args).into_iter().map(|(k, lit)| quote!(.#k(#lit)));
            let name = sig.ident.to_string();
            let should_panic = should_panic_of(&attrs);
            quote! {
                #callee(
                    ::no_leak::__private::TestFn {
                        module_path: ::core::module_path!(),
                        name: #name,
                        should_panic: #should_panic,
                    },
                    ::no_leak::Config::new() #(#setters)*,
                    || -> #ret #block,
                )
            }
        }
        Kind::Isolated => quote! {
            #callee(|| -> #ret #block)
        },
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            #call
        }
    }
}

/// The test's `#[should_panic]`, as the runtime's `ShouldPanic`.
fn should_panic_of(attrs: &[syn::Attribute]) -> TokenStream {
    let sp = quote!(::no_leak::__private::ShouldPanic);
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
fn fallback(item: TokenStream, errors: &[syn::Error]) -> TokenStream {
    let errors = errors.iter().map(syn::Error::to_compile_error);
    quote! {
        #(#errors)*
        #item
    }
}
