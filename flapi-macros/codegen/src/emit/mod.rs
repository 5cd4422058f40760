//! Phase 4, emit: the model as Rust tokens (`quote!`). Generated code
//! reaches the runtime only through `::flapi::runtime`; every item carries
//! a doc comment naming the YAML it came from.

pub mod openapi;

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};

use crate::resolve::model::{
    Access, AuditSink, AuthKey, AuthSettings, BindSource, DimValue, Dimension, Endpoint, Field,
    FieldIn, FieldType, KeySource, Password, Policy, Project, Prompt, PromptPart, SqlValidation,
};

pub struct EmitOptions {
    /// `include_bytes!` every file read, so a proc-macro expansion is
    /// redone when the project changes (build.rs uses rerun-if-changed).
    pub track_files: bool,
}

fn camel(text: &str) -> String {
    let mut out = String::new();
    for part in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'E');
    }
    out
}

fn ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

fn opt<T: quote::ToTokens>(value: Option<T>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

fn opt_str(value: Option<&str>) -> TokenStream {
    opt(value.map(text))
}

/// A string literal that reads well in the generated file: SQL and JSON
/// with newlines or quotes become raw strings (`r#"…"#`) shown as written.
fn text(value: &str) -> Literal {
    if !value.contains(['\n', '"', '\\']) || value.contains('\r') {
        return Literal::string(value);
    }
    let mut hashes = String::from("#");
    while value.contains(&format!("\"{hashes}")) {
        hashes.push('#');
    }
    format!("r{hashes}\"{value}\"{hashes}")
        .parse()
        .unwrap_or_else(|_| Literal::string(value))
}

fn args_type(endpoint: &Endpoint) -> Ident {
    format_ident!("{}Args", camel(&endpoint.id))
}

fn enum_type(endpoint: &Endpoint, field: &Field) -> Ident {
    format_ident!("{}{}", camel(&endpoint.id), camel(&field.name))
}

/// Variant names for enum values; unusable or clashing names fall back to
/// `V<index>`.
fn enum_variants(values: &[String]) -> Vec<Ident> {
    let mut names: Vec<String> = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let mut name = camel(value);
        if name == "E" || names.contains(&name) || syn::parse_str::<syn::Ident>(&name).is_err() {
            name = format!("V{i}");
        }
        names.push(name);
    }
    names.iter().map(|n| ident(n)).collect()
}

fn field_in(f: FieldIn) -> TokenStream {
    match f {
        FieldIn::Query => quote!(::flapi::runtime::FieldIn::Query),
        FieldIn::Path => quote!(::flapi::runtime::FieldIn::Path),
        FieldIn::Header => quote!(::flapi::runtime::FieldIn::Header),
        FieldIn::Body => quote!(::flapi::runtime::FieldIn::Body),
    }
}

/// The Rust type of a field's value (without `Option`).
fn value_type(endpoint: &Endpoint, field: &Field) -> TokenStream {
    match &field.ty {
        FieldType::Int { .. } => quote!(i64),
        FieldType::Double { .. } => quote!(f64),
        FieldType::Bool => quote!(bool),
        FieldType::String { .. } | FieldType::Email => quote!(::std::string::String),
        FieldType::Enum { .. } => {
            let t = enum_type(endpoint, field);
            quote!(#t)
        }
        FieldType::Date { .. } => quote!(::flapi::runtime::Date),
        FieldType::Time { .. } => quote!(::flapi::runtime::Time),
        FieldType::Timestamp { .. } => quote!(::flapi::runtime::Timestamp),
        FieldType::Uuid => quote!(::flapi::runtime::Uuid),
    }
}

/// A call that parses one field from the request into `Option<T>`.
fn parse_call(endpoint: &Endpoint, field: &Field, index: usize) -> TokenStream {
    let name = &field.name;
    let location = field_in(field.field_in);
    let default = opt_str(field.default.as_deref());
    let required = field.required;
    let raw = quote!(input.raw(#location, #name, #default));
    let args = quote!(::flapi::runtime::args);
    match &field.ty {
        FieldType::Int { min, max } => {
            let (min, max) = (
                opt(min.map(Literal::i64_suffixed)),
                opt(max.map(Literal::i64_suffixed)),
            );
            quote!(#args::int(&mut errors, #name, #raw, #required, #min, #max))
        }
        FieldType::Double { min, max } => {
            let (min, max) = (
                opt(min.map(Literal::f64_suffixed)),
                opt(max.map(Literal::f64_suffixed)),
            );
            quote!(#args::double(&mut errors, #name, #raw, #required, #min, #max))
        }
        FieldType::Bool => quote!(#args::boolean(&mut errors, #name, #raw, #required)),
        FieldType::String {
            pattern,
            min_length,
            max_length,
        } => {
            let pattern = match pattern {
                Some(_) => {
                    let p = pattern_static(endpoint, index);
                    quote!(::core::option::Option::Some(&#p))
                }
                None => quote!(::core::option::Option::None),
            };
            let (min, max) = (
                opt(min_length.map(Literal::u64_suffixed)),
                opt(max_length.map(Literal::u64_suffixed)),
            );
            quote!(#args::string(&mut errors, #name, #raw, #required, #pattern, #min, #max))
        }
        FieldType::Enum { .. } => {
            let t = enum_type(endpoint, field);
            quote!(#args::one_of(&mut errors, #name, #raw, #required, #t::ALLOWED, #t::from_value))
        }
        FieldType::Date { min, max } => {
            let (min, max) = (opt_str(min.as_deref()), opt_str(max.as_deref()));
            quote!(#args::date(&mut errors, #name, #raw, #required, #min, #max))
        }
        FieldType::Time { min, max } => {
            let (min, max) = (opt_str(min.as_deref()), opt_str(max.as_deref()));
            quote!(#args::time(&mut errors, #name, #raw, #required, #min, #max))
        }
        FieldType::Timestamp { min, max } => {
            let (min, max) = (opt_str(min.as_deref()), opt_str(max.as_deref()));
            quote!(#args::timestamp(&mut errors, #name, #raw, #required, #min, #max))
        }
        FieldType::Uuid => quote!(#args::uuid(&mut errors, #name, #raw, #required)),
        FieldType::Email => quote!(#args::email(&mut errors, #name, #raw, #required)),
    }
}

/// Module-level static (not an associated const: a const with a `OnceLock`
/// would be a fresh copy at every use, recompiling the regex per request).
fn pattern_static(endpoint: &Endpoint, index: usize) -> Ident {
    format_ident!(
        "{}_FIELD_{}_PATTERN",
        endpoint.id.to_ascii_uppercase(),
        index
    )
}

fn field_doc(field: &Field) -> String {
    let mut doc = format!(
        "`{}` ({} `{}`, {}{})",
        field.name,
        field.field_in.as_str(),
        field.ty.name(),
        if field.required {
            "required"
        } else {
            "optional"
        },
        field
            .default
            .as_ref()
            .map(|d| format!(", default `{d}`"))
            .unwrap_or_default()
    );
    if let Some(description) = &field.description {
        doc.push_str(": ");
        doc.push_str(description);
    }
    doc
}

fn emit_enum(endpoint: &Endpoint, field: &Field) -> TokenStream {
    let FieldType::Enum { values } = &field.ty else {
        return TokenStream::new();
    };
    let t = enum_type(endpoint, field);
    let variants = enum_variants(values);
    let doc = format!(
        "Allowed values of `{}` on `{}`.",
        field.name,
        endpoint.label()
    );
    let value_docs = values.iter().map(|v| format!("`{v}`"));
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum #t {
            #( #[doc = #value_docs] #variants, )*
        }

        impl #t {
            /// The values a request may send, in declaration order.
            pub const ALLOWED: &'static [&'static str] = &[#(#values),*];

            pub fn from_value(value: &str) -> ::core::option::Option<Self> {
                match value {
                    #( #values => ::core::option::Option::Some(Self::#variants), )*
                    _ => ::core::option::Option::None,
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    #( Self::#variants => #values, )*
                }
            }
        }

        impl ::flapi::runtime::ToBind for #t {
            fn to_bind(&self) -> ::flapi::runtime::BindValue {
                ::flapi::runtime::BindValue::Text(::std::string::String::from(self.as_str()))
            }
        }
    }
}

fn dimension_expr(endpoint: &Endpoint, dimension: &Dimension) -> TokenStream {
    match dimension {
        Dimension::Presence { field } => {
            let f = &endpoint.fields[*field];
            let name = ident(&f.rust_name);
            match (&f.ty, f.is_optional()) {
                (FieldType::Bool, true) => quote!(self.#name == ::core::option::Option::Some(true)),
                (FieldType::Bool, false) => quote!(self.#name),
                (FieldType::String { .. } | FieldType::Email, true) => {
                    quote!(self.#name.as_deref().is_some_and(|v| !v.is_empty()))
                }
                (_, true) => quote!(self.#name.is_some()),
                (_, false) => quote!(true),
            }
        }
        Dimension::Choice { field } => {
            let name = ident(&endpoint.fields[*field].rust_name);
            quote!(self.#name)
        }
    }
}

fn dimension_pattern(endpoint: &Endpoint, dimension: &Dimension, value: &DimValue) -> TokenStream {
    match (dimension, value) {
        (Dimension::Choice { field }, DimValue::Choice(choice)) => {
            let f = &endpoint.fields[*field];
            let t = enum_type(endpoint, f);
            let FieldType::Enum { values } = &f.ty else {
                return quote!(_);
            };
            let variants = enum_variants(values);
            let pattern = match choice {
                Some(i) => {
                    let v = &variants[*i];
                    quote!(#t::#v)
                }
                None => quote!(::core::option::Option::None),
            };
            if f.is_optional() && choice.is_some() {
                quote!(::core::option::Option::Some(#pattern))
            } else {
                pattern
            }
        }
        (_, DimValue::Present(p)) => quote!(#p),
        _ => quote!(_),
    }
}

fn bind_expr(endpoint: &Endpoint, bind: &BindSource) -> TokenStream {
    match bind {
        BindSource::Field(i) => {
            let name = ident(&endpoint.fields[*i].rust_name);
            quote!(::flapi::runtime::ToBind::to_bind(&self.#name))
        }
        BindSource::Env(name) => quote!(::flapi::runtime::BindValue::Env(#name)),
        BindSource::Auth(key) => {
            let key = match key {
                AuthKey::Subject => quote!(Subject),
                AuthKey::Email => quote!(Email),
                AuthKey::Roles => quote!(Roles),
                AuthKey::Kind => quote!(Kind),
                AuthKey::Claim(name) => quote!(Claim(#name)),
            };
            quote!(::flapi::runtime::BindValue::Auth(::flapi::runtime::AuthKey::#key))
        }
    }
}

fn emit_plan(endpoint: &Endpoint) -> TokenStream {
    let template = &endpoint.template;
    let arms: Vec<TokenStream> = template
        .variants
        .iter()
        .map(|variant| {
            let text = variant.text;
            let binds = variant.binds.iter().map(|b| bind_expr(endpoint, b));
            let plan =
                quote!(::flapi::runtime::Plan { text: #text, binds: ::std::vec![#(#binds),*] });
            let patterns = template
                .dimensions
                .iter()
                .zip(&variant.key)
                .map(|(d, v)| dimension_pattern(endpoint, d, v));
            (quote!((#(#patterns,)*)), plan)
        })
        .map(|(pattern, plan)| quote!(#pattern => #plan,))
        .collect();
    let body = if template.dimensions.is_empty() {
        match template.variants.first() {
            Some(variant) => {
                let text = variant.text;
                let binds = variant.binds.iter().map(|b| bind_expr(endpoint, b));
                quote!(::flapi::runtime::Plan { text: #text, binds: ::std::vec![#(#binds),*] })
            }
            None => quote!(::flapi::runtime::Plan {
                text: 0,
                binds: ::std::vec![]
            }),
        }
    } else {
        let key = template
            .dimensions
            .iter()
            .map(|d| dimension_expr(endpoint, d));
        // Unreachable combinations (an absent enum that names an identifier)
        // were rejected at build time; the fallback keeps the match total.
        let total = fallback_arm(endpoint);
        quote! {
            match (#(#key,)*) {
                #(#arms)*
                #total
            }
        }
    };
    quote! {
        /// Chooses the SQL text for these arguments and lists its binds.
        pub fn plan(&self) -> ::flapi::runtime::Plan {
            #body
        }
    }
}

/// A catch-all arm is needed only when the listed arms are not exhaustive.
fn fallback_arm(endpoint: &Endpoint) -> TokenStream {
    let template = &endpoint.template;
    let mut expected = 1usize;
    for d in &template.dimensions {
        expected *= match d {
            Dimension::Presence { .. } => 2,
            Dimension::Choice { field } => {
                let f = &endpoint.fields[*field];
                let n = match &f.ty {
                    FieldType::Enum { values } => values.len(),
                    _ => 0,
                };
                n + usize::from(f.is_optional())
            }
        };
    }
    if template.variants.len() == expected {
        TokenStream::new()
    } else {
        quote!(_ => ::flapi::runtime::Plan { text: usize::MAX, binds: ::std::vec![] },)
    }
}

fn emit_endpoint(endpoint: &Endpoint, log_queries: bool) -> (TokenStream, TokenStream) {
    let args = args_type(endpoint);
    let doc = format!(
        "Arguments of `{}`, from `{}` (SQL: `{}`).{}",
        endpoint.label(),
        endpoint.source,
        endpoint.template_source,
        endpoint
            .description
            .as_ref()
            .map(|d| format!("\n\n{d}"))
            .unwrap_or_default()
    );
    let enums = endpoint.fields.iter().map(|f| emit_enum(endpoint, f));
    let struct_fields = endpoint.fields.iter().map(|f| {
        let name = ident(&f.rust_name);
        let ty = value_type(endpoint, f);
        let doc = field_doc(f);
        if f.is_optional() {
            quote!(#[doc = #doc] pub #name: ::core::option::Option<#ty>,)
        } else {
            quote!(#[doc = #doc] pub #name: #ty,)
        }
    });
    let patterns = endpoint.fields.iter().enumerate().filter_map(|(i, f)| match &f.ty {
        FieldType::String { pattern: Some(p), .. } => {
            let name = pattern_static(endpoint, i);
            let doc = format!("Validator of `{}` on `{}`, anchored: the whole value must match.", f.name, endpoint.label());
            Some(quote!(#[doc = #doc] static #name: ::flapi::runtime::Pattern = ::flapi::runtime::Pattern::new(#p);))
        }
        _ => None,
    });
    let lets = endpoint.fields.iter().enumerate().map(|(i, f)| {
        let name = ident(&f.rust_name);
        let call = parse_call(endpoint, f, i);
        quote!(let #name = #call;)
    });
    let present: Vec<Ident> = endpoint
        .fields
        .iter()
        .filter(|f| !f.is_optional())
        .map(|f| ident(&f.rust_name))
        .collect();
    let unwrap = if present.is_empty() {
        TokenStream::new()
    } else {
        quote! {
            let (#(::core::option::Option::Some(#present),)*) = (#(#present,)*) else {
                return ::core::result::Result::Err(errors);
            };
        }
    };
    let names = endpoint.fields.iter().map(|f| ident(&f.rust_name));
    let plan = emit_plan(endpoint);
    let errors_mut = if endpoint.fields.is_empty() {
        quote!()
    } else {
        quote!(mut)
    };
    let input_name = if endpoint.fields.is_empty() {
        quote!(_input)
    } else {
        quote!(input)
    };

    let items = quote! {
        #(#enums)*

        #(#patterns)*

        #[doc = #doc]
        #[derive(Debug, Clone, PartialEq)]
        pub struct #args {
            #(#struct_fields)*
        }

        impl #args {
            /// Validates every field; all problems are reported together.
            pub fn parse(#input_name: &::flapi::runtime::RequestInput) -> ::core::result::Result<Self, ::flapi::runtime::FieldErrors> {
                let #errors_mut errors = ::flapi::runtime::FieldErrors::new();
                #(#lets)*
                if !errors.is_empty() {
                    return ::core::result::Result::Err(errors);
                }
                #unwrap
                ::core::result::Result::Ok(Self { #(#names),* })
            }

            #plan

            /// `parse` then `plan`: the entry the route table points at.
            pub fn plan_request(input: &::flapi::runtime::RequestInput) -> ::core::result::Result<::flapi::runtime::Plan, ::flapi::runtime::FieldErrors> {
                Self::parse(input).map(|args| args.plan())
            }
        }
    };

    let id = &endpoint.id;
    let method = &endpoint.method;
    let url_path = opt_str(endpoint.url_path.as_deref());
    let route = opt_str(endpoint.route.as_deref());
    let tool = opt(endpoint.tool.as_ref().map(|t| {
        let name = &t.name;
        let title = opt_str(t.title.as_deref());
        let description = text(&t.description);
        let schema = text(&t.input_schema);
        quote!(::flapi::runtime::ToolDef { name: #name, title: #title, description: #description, input_schema: #schema })
    }));
    let resource = opt(endpoint.resource.as_ref().map(|r| {
        let name = &r.name;
        let description = opt_str(r.description.as_deref());
        let mime = &r.mime_type;
        quote!(::flapi::runtime::ResourceDef { name: #name, description: #description, mime_type: #mime })
    }));
    let rest_access = access(endpoint.rest_access);
    let mcp_access = access(endpoint.mcp_access);
    let resource_access = access(endpoint.resource_access);
    let source = &endpoint.source;
    let template_source = &endpoint.template_source;
    let description = opt_str(endpoint.description.as_deref());
    let connection = opt_str(endpoint.connection.as_deref());
    let paginate = endpoint.paginate;
    let strict = endpoint.strict_fields;
    let startup = endpoint.sql_validation == SqlValidation::Startup;
    let field_defs = endpoint.fields.iter().map(|f| {
        let name = &f.name;
        let location = field_in(f.field_in);
        let required = f.required;
        let ty = f.ty.name();
        let values: &[String] = match &f.ty {
            FieldType::Enum { values } => values,
            _ => &[],
        };
        let description = opt_str(f.description.as_deref());
        let sensitive = f.sensitive;
        quote!(::flapi::runtime::FieldDef { name: #name, location: #location, required: #required, type_name: #ty, description: #description, allowed_values: &[#(#values),*], sensitive: #sensitive })
    });
    let texts = endpoint.template.texts.iter().map(|t| {
        let sql = text(&t.sql);
        let paged = opt_str(t.paged_sql.as_deref());
        let capped = opt_str(t.capped_sql.as_deref());
        let count = opt_str(t.count_sql.as_deref());
        let facts = opt(t.facts.as_ref().map(|f| {
            let functions = f.functions.iter();
            let tables = f.tables.iter();
            quote!(::flapi::runtime::SqlFactsDef { functions: &[#(#functions),*], tables: &[#(#tables),*] })
        }));
        let binds = t.binds;
        quote!(::flapi::runtime::SqlTextDef { sql: #sql, paged_sql: #paged, capped_sql: #capped, count_sql: #count, binds: #binds, facts: #facts })
    });
    let rate_limit = opt(endpoint.rate_limit.as_ref().map(emit_rate_limit));
    let tool_rate_limit = opt(endpoint.tool_rate_limit.as_ref().map(emit_rate_limit));
    let query_timeout = opt(endpoint.query_timeout_ms.map(|ms| quote!(#ms)));
    let shaping = {
        let s = &endpoint.shaping;
        let max_rows = opt(s.max_rows);
        let sample = s.sample;
        let redact = s.redact.iter().map(|r| {
            let column = &r.column;
            let unmask = r.unmask;
            quote!(::flapi::runtime::RedactDef { column: #column, unmask: #unmask })
        });
        quote!(::flapi::runtime::ShapingDef { max_rows: #max_rows, redact: &[#(#redact),*], sample: #sample })
    };
    let shadow = endpoint.shadow;
    let heartbeat = opt(endpoint.heartbeat.as_ref().map(|params| {
        let params = params.iter().map(|(k, v)| quote!((#k, #v)));
        quote!(&[#(#params),*])
    }));
    let page_bounds = {
        let b = &endpoint.page_bounds;
        let limit_min = b.limit_min.unwrap_or(0);
        let offset_min = b.offset_min.unwrap_or(0);
        let limit_max = opt(b.limit_max);
        let offset_max = opt(b.offset_max);
        quote!(::flapi::runtime::PageBoundsDef { limit_min: #limit_min, limit_max: #limit_max, offset_min: #offset_min, offset_max: #offset_max })
    };
    let def = quote! {
        ::flapi::runtime::EndpointDef {
            id: #id,
            method: #method,
            url_path: #url_path,
            route: #route,
            tool: #tool,
            resource: #resource,
            rest_access: #rest_access,
            mcp_access: #mcp_access,
            resource_access: #resource_access,
            source: #source,
            template_source: #template_source,
            description: #description,
            connection: #connection,
            paginate: #paginate,
            strict_fields: #strict,
            validate_sql_at_startup: #startup,
            fields: &[#(#field_defs),*],
            texts: &[#(#texts),*],
            shaping: #shaping,
            shadow: #shadow,
            rate_limit: #rate_limit,
            tool_rate_limit: #tool_rate_limit,
            query_timeout_ms: #query_timeout,
            log_queries: #log_queries,
            page_bounds: #page_bounds,
            heartbeat: #heartbeat,
            plan: #args::plan_request,
        }
    };
    (items, def)
}

fn emit_prompt_parts(parts: &[PromptPart]) -> TokenStream {
    let parts = parts.iter().map(|part| match part {
        PromptPart::Text(t) => {
            let t = text(t);
            quote!(::flapi::runtime::PromptPart::Text(#t))
        }
        PromptPart::Arg(i) => quote!(::flapi::runtime::PromptPart::Arg(#i)),
        PromptPart::Section { arg, inverted, parts } => {
            let inner = emit_prompt_parts(parts);
            quote!(::flapi::runtime::PromptPart::Section { arg: #arg, inverted: #inverted, parts: #inner })
        }
    });
    quote!(&[#(#parts),*])
}

fn emit_prompt(prompt: &Prompt) -> TokenStream {
    let name = &prompt.name;
    let description = opt_str(prompt.description.as_deref());
    let source = &prompt.source;
    let args = prompt.arguments.iter().map(|a| {
        let name = &a.name;
        let description = opt_str(a.description.as_deref());
        let required = a.required;
        let values = &a.allowed_values;
        quote!(::flapi::runtime::PromptArgDef { name: #name, description: #description, required: #required, allowed_values: &[#(#values),*] })
    });
    let template = emit_prompt_parts(&prompt.template);
    let access = access(prompt.access);
    quote! {
        ::flapi::runtime::PromptDef {
            name: #name,
            description: #description,
            source: #source,
            arguments: &[#(#args),*],
            template: #template,
            access: #access,
        }
    }
}

fn access(access: Access) -> TokenStream {
    match access {
        Access::Public => quote!(::flapi::runtime::Access::Public),
        Access::Roles(mask) => {
            let mask = Literal::u64_suffixed(mask);
            quote!(::flapi::runtime::Access::Roles(#mask))
        }
    }
}

/// The `Role` enum (one variant per role of roles.yaml) and the static
/// `AuthDef` the runtime checks credentials and access against.
fn emit_auth(auth: &AuthSettings) -> (TokenStream, TokenStream) {
    let variants: Vec<Ident> = auth.roles.iter().map(|r| ident(&r.variant)).collect();
    let docs = auth.roles.iter().map(|r| {
        format!(
            "`{}` from roles.yaml{}",
            r.name,
            r.description
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )
    });
    let names = auth.roles.iter().map(|r| r.name.as_str());
    let bits = auth.roles.iter().map(|r| Literal::u64_suffixed(r.bit));
    let grants = auth.roles.iter().map(|r| Literal::u64_suffixed(r.grants));
    let v1 = variants.clone();
    let v2 = variants.clone();
    let v3 = variants.clone();
    let v4 = variants.clone();
    let items = quote! {
        /// The roles declared in roles.yaml. A role set is a `u64` mask
        /// with one bit per role; `grants` adds the inherited roles. For
        /// code that uses the project; the server itself reads the masks.
        #[allow(dead_code)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Role {
            #(#[doc = #docs] #variants,)*
        }

        #[allow(dead_code)]
        impl Role {
            pub const ALL: &'static [Role] = &[#(Role::#v1),*];

            /// The name used in YAML and in token claims.
            pub const fn name(self) -> &'static str {
                match self {
                    #(Role::#v2 => #names,)*
                }
            }

            /// The role's own bit.
            pub const fn bit(self) -> u64 {
                match self {
                    #(Role::#v3 => #bits,)*
                }
            }

            /// Its bit and those of every role it inherits.
            pub const fn grants(self) -> u64 {
                match self {
                    #(Role::#v4 => #grants,)*
                }
            }

            pub fn from_name(name: &str) -> ::core::option::Option<Self> {
                Self::ALL.iter().copied().find(|r| r.name() == name)
            }
        }
    };
    let role_defs = auth.roles.iter().map(|r| {
        let name = &r.name;
        let description = opt_str(r.description.as_deref());
        let bit = Literal::u64_suffixed(r.bit);
        let grants = Literal::u64_suffixed(r.grants);
        quote!(::flapi::runtime::RoleDef { name: #name, description: #description, bit: #bit, grants: #grants })
    });
    let users = auth.users.iter().map(|u| {
        let username = &u.username;
        let password = match &u.password {
            Password::Argon2(h) => quote!(::flapi::runtime::PasswordDef::Argon2(#h)),
            Password::Pbkdf2(h) => quote!(::flapi::runtime::PasswordDef::Pbkdf2(#h)),
            Password::Env(n) => quote!(::flapi::runtime::PasswordDef::Env(#n)),
        };
        let roles = Literal::u64_suffixed(u.roles);
        quote!(::flapi::runtime::UserDef { username: #username, password: #password, roles: #roles })
    });
    let jwt = opt(auth.jwt.as_ref().map(|j| {
        let secret = opt_str(j.secret_env.as_deref());
        let keys = j.keys.iter().map(|k| {
            let kid = opt_str(k.kid.as_deref());
            let alg = &k.alg;
            let source = match &k.source {
                KeySource::Pem(pem) => {
                    let pem = text(pem);
                    quote!(::flapi::runtime::KeyDef::Pem(#pem))
                }
                KeySource::Env(name) => quote!(::flapi::runtime::KeyDef::Env(#name)),
            };
            quote!(::flapi::runtime::JwtKeyDef { kid: #kid, alg: #alg, source: #source })
        });
        let oidc = opt_str(j.oidc_issuer.as_deref());
        let jwks = opt_str(j.jwks_url.as_deref());
        let issuer = opt_str(j.issuer.as_deref());
        let audiences = &j.audiences;
        let algorithms = &j.algorithms;
        let leeway = j.leeway_seconds;
        let sub = &j.subject_claim;
        let email = &j.email_claim;
        let roles = &j.roles_claim;
        let groups = &j.groups_claim;
        let group_roles = j.group_roles.iter().map(|(g, m)| {
            let m = Literal::u64_suffixed(*m);
            quote!((#g, #m))
        });
        let claims = &j.context_claims;
        let cache = j.jwks_cache_seconds;
        let min_refresh = j.jwks_min_refresh_seconds;
        quote! {
            ::flapi::runtime::JwtDef {
                secret_env: #secret,
                keys: &[#(#keys),*],
                oidc_issuer: #oidc,
                jwks_url: #jwks,
                issuer: #issuer,
                audiences: &[#(#audiences),*],
                algorithms: &[#(#algorithms),*],
                leeway_seconds: #leeway,
                subject_claim: #sub,
                email_claim: #email,
                roles_claim: #roles,
                groups_claim: #groups,
                group_roles: &[#(#group_roles),*],
                context_claims: &[#(#claims),*],
                jwks_cache_seconds: #cache,
                jwks_min_refresh_seconds: #min_refresh,
            }
        }
    }));
    let rest = auth.rest;
    let mcp = auth.mcp;
    let realm = &auth.realm;
    let cache = auth.cache_seconds;
    let def = quote! {
        ::flapi::runtime::AuthDef {
            rest: #rest,
            mcp: #mcp,
            realm: #realm,
            roles: &[#(#role_defs),*],
            users: &[#(#users),*],
            jwt: #jwt,
            cache_seconds: #cache,
        }
    };
    (items, def)
}

pub fn emit(project: &Project, openapi_json: &str, options: &EmitOptions) -> TokenStream {
    let mut items = Vec::new();
    let mut defs = Vec::new();
    for endpoint in &project.endpoints {
        let log_queries = project
            .connections
            .iter()
            .any(|c| c.log_queries && endpoint.connection.as_deref() == Some(c.name.as_str()));
        let (item, def) = emit_endpoint(endpoint, log_queries);
        items.push(item);
        defs.push(def);
    }
    let name = &project.name;
    let description = opt_str(project.description.as_deref());
    let hash = &project.source_hash;
    let base_dir = project.base_dir.display().to_string();
    let heartbeat_seconds = opt(project.heartbeat_seconds);
    let connections = project.connections.iter().map(|c| {
        let name = &c.name;
        let init = opt_str(c.init.as_deref());
        quote!(::flapi::runtime::ConnectionDef { name: #name, init: #init })
    });
    let d = &project.duckdb;
    let db_path = opt_str(d.db_path.as_deref());
    let read_only = d.read_only;
    let threads = opt(d.threads);
    let max_memory = opt_str(d.max_memory.as_deref());
    let allowed = &d.allowed_directories;
    let timeout = d.query_timeout_ms;
    let pool = opt(d.pool_size);
    let settings = d.settings.iter().map(|(k, v)| quote!((#k, #v)));
    let host = opt_str(project.http_host.as_deref());
    let port = opt(project.http_port);
    let default_limit = project.default_limit;
    let max_limit = project.max_limit;
    let mut env_vars: Vec<&str> = project
        .endpoints
        .iter()
        .flat_map(|e| e.template.variants.iter().flat_map(|v| v.binds.iter()))
        .filter_map(|b| match b {
            BindSource::Env(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let allowed_functions = project.allowed_functions.iter();
    env_vars.sort_unstable();
    env_vars.dedup();
    let tracking = if options.track_files {
        let files = project.files_read.iter().map(|f| f.display().to_string());
        quote!(#(const _: &[u8] = include_bytes!(#files);)*)
    } else {
        TokenStream::new()
    };
    let mcp = &project.mcp;
    let instructions = opt(mcp.instructions.as_deref().map(text));
    let origins = &mcp.allowed_origins;
    let max_rows = mcp.max_rows;
    let prompts = project.prompts.iter().map(emit_prompt);
    let project_doc = format!("The compiled project `{name}`: its settings, routes and SQL.");
    let openapi_json = text(openapi_json);
    let (auth_items, auth_def) = emit_auth(&project.auth);
    let policy_def = emit_policy(&project.policy);
    let edge_def = emit_edge(&project.edge);
    quote! {
        #tracking

        #auth_items

        #(#items)*

        #[doc = #project_doc]
        pub static PROJECT: ::flapi::runtime::ProjectDef = ::flapi::runtime::ProjectDef {
            name: #name,
            description: #description,
            source_hash: #hash,
            base_dir: #base_dir,
            heartbeat_seconds: #heartbeat_seconds,
            connections: &[#(#connections),*],
            duckdb: ::flapi::runtime::DuckdbDef {
                db_path: #db_path,
                read_only: #read_only,
                threads: #threads,
                max_memory: #max_memory,
                allowed_directories: &[#(#allowed),*],
                query_timeout_ms: #timeout,
                pool_size: #pool,
                settings: &[#(#settings),*],
            },
            http_host: #host,
            http_port: #port,
            default_limit: #default_limit,
            max_limit: #max_limit,
            env_vars: &[#(#env_vars),*],
            allowed_functions: &[#(#allowed_functions),*],
            endpoints: &[#(#defs),*],
            mcp: ::flapi::runtime::McpDef {
                instructions: #instructions,
                allowed_origins: &[#(#origins),*],
                max_rows: #max_rows,
            },
            prompts: &[#(#prompts),*],
            auth: #auth_def,
            policy: #policy_def,
            edge: #edge_def,
            openapi_json: #openapi_json,
        };
    }
}

fn emit_rate_limit(limit: &crate::resolve::edge::RateLimit) -> TokenStream {
    let max = limit.max;
    let interval = limit.interval_secs;
    let key = match limit.key {
        crate::resolve::edge::RateKey::Ip => quote!(Ip),
        crate::resolve::edge::RateKey::User => quote!(User),
        crate::resolve::edge::RateKey::UserOrIp => quote!(UserOrIp),
    };
    quote!(::flapi::runtime::RateLimitDef {
        max: #max,
        interval_secs: #interval,
        key: ::flapi::runtime::RateKeyDef::#key,
    })
}

fn emit_edge(edge: &crate::resolve::edge::Edge) -> TokenStream {
    let cors = opt(edge.cors.as_ref().map(|c| {
        let origins = &c.origins;
        let any = c.any_origin;
        let methods = &c.methods;
        let headers = &c.headers;
        let credentials = c.credentials;
        let age = c.max_age_seconds;
        quote!(::flapi::runtime::CorsDef {
            origins: &[#(#origins),*],
            any_origin: #any,
            methods: &[#(#methods),*],
            headers: &[#(#headers),*],
            credentials: #credentials,
            max_age_seconds: #age,
        })
    }));
    let tls = opt(edge.tls.as_ref().map(|t| {
        let (cert, key) = (&t.cert, &t.key);
        quote!((#cert, #key))
    }));
    let l = edge.limits;
    let (body, header, timeout, queries) = (
        l.max_body_bytes,
        l.max_header_bytes,
        l.request_timeout_ms,
        l.max_concurrent_queries,
    );
    let hosts = &edge.allowed_hosts;
    let public_host = &edge.public_host;
    quote!(::flapi::runtime::EdgeDef {
        cors: #cors,
        tls: #tls,
        allowed_hosts: &[#(#hosts),*],
        public_host: #public_host,
        max_body_bytes: #body,
        max_header_bytes: #header,
        request_timeout_ms: #timeout,
        max_concurrent_queries: #queries,
    })
}

fn emit_policy(policy: &Policy) -> TokenStream {
    let audit = opt(policy.audit.as_ref().map(|a| {
        let sink = match &a.sink {
            AuditSink::File(path) => quote!(::flapi::runtime::AuditSinkDef::File(#path)),
            AuditSink::Stdout => quote!(::flapi::runtime::AuditSinkDef::Stdout),
        };
        let fsync_always = a.fsync_always;
        let interval = a.fsync_interval_ms;
        let max_bytes = a.max_file_bytes;
        let max_files = a.max_files;
        let fail_open = a.fail_open;
        let names = &a.redact_arguments;
        quote!(::flapi::runtime::AuditDef {
            sink: #sink,
            fsync_always: #fsync_always,
            fsync_interval_ms: #interval,
            max_file_bytes: #max_bytes,
            max_files: #max_files,
            fail_open: #fail_open,
            redact_arguments: &[#(#names),*],
        })
    }));
    let roles = policy.dry_run_roles;
    let public = policy.dry_run_public;
    quote!(::flapi::runtime::PolicyDef {
        audit: #audit,
        dry_run_roles: #roles,
        dry_run_public: #public,
    })
}
