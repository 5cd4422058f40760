//! `flapi_macros::project!("dir")`: expands a flapi project folder into the
//! same items `build.rs` generates for the default project. The folder is
//! relative to the calling crate's manifest, or, when no such folder
//! exists there, to the file that calls the macro (as `include_str!`). A thin shim over `flapi-codegen`;
//! each diagnostic becomes a `compile_error!` with file:line:col.

use std::path::PathBuf;

use proc_macro::TokenStream;
use quote::quote;
use syn::{LitStr, parse_macro_input};

#[proc_macro]
pub fn project(input: TokenStream) -> TokenStream {
    let path = parse_macro_input!(input as LitStr);
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut dir = manifest.join(path.value());
    if !dir.is_dir()
        && let Some(file) = proc_macro::Span::call_site().local_file()
        && let Some(beside) = file.parent().map(|p| p.join(path.value()))
        && beside.is_dir()
    {
        dir = beside;
    }
    let options = flapi_codegen::emit::EmitOptions { track_files: true };
    match flapi_codegen::generate(&dir, &options) {
        Ok(output) => output.tokens.into(),
        Err(diagnostics) => {
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == flapi_codegen::Severity::Error)
                .map(|d| {
                    let message = format!("{}/{d}", path.value());
                    quote!(::core::compile_error!(#message);)
                });
            quote!(#(#errors)*).into()
        }
    }
}
