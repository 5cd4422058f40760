//! MCP surface of a project (SPEC §6), resolved at build time: tools with
//! their JSON Schemas, resources, prompts with their compiled templates,
//! and the transport settings of `mcp:` in flapi.yaml.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::diag::{Diagnostics, Location, did_you_mean};
use crate::emit::openapi::field_schema;
use crate::load::yaml::Sp;
use crate::load::{RawMcp, RawPrompt, RawResource, RawTool};
use crate::resolve::model::{
    Endpoint, Field, FieldType, McpSettings, Prompt, PromptArg, PromptPart, Resource, Tool,
};
use crate::resolve::mustache::{self, Part, SourceMap};

/// Rows of one tool result when the tool does not paginate, unless
/// `mcp.max-rows` says otherwise.
pub const DEFAULT_MAX_ROWS: u64 = 1000;

/// Argument names the server reads itself on paginated tools.
const PAGE_ARGUMENTS: &[&str] = &["limit", "offset"];

/// MCP's rule for tool names (2025-11-25 schema).
pub fn is_valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub fn resolve_settings(
    dir: &Path,
    raw: &RawMcp,
    files_read: &mut Vec<std::path::PathBuf>,
    diags: &mut Diagnostics,
) -> McpSettings {
    let instructions = match (&raw.instructions, &raw.instructions_file) {
        (Some(_), Some(file)) => {
            diags.error(
                &file.loc,
                "mcp.instructions-file",
                "`instructions` and `instructions-file` are both set",
                Some("keep one of them".into()),
            );
            None
        }
        (Some(text), None) => Some(text.value.clone()),
        (None, Some(file)) => {
            match crate::load::paths::inside(dir, dir, file, "mcp.instructions-file", diags)
                .map(|path| (std::fs::read_to_string(&path), path))
            {
                None => None,
                Some((Ok(text), path)) => {
                    files_read.push(path);
                    Some(text)
                }
                Some((Err(_), _)) => {
                    diags.error(
                        &file.loc,
                        "mcp.instructions-file",
                        format!("instructions file `{}` does not exist", file.value),
                        Some("the path is relative to the project folder".into()),
                    );
                    None
                }
            }
        }
        (None, None) => None,
    };
    for origin in &raw.allowed_origins {
        if !(origin.value == "null"
            || origin.value.starts_with("http://")
            || origin.value.starts_with("https://"))
        {
            diags.error(
                &origin.loc,
                "mcp.allowed-origins",
                format!("`{}` is not an origin", origin.value),
                Some("write scheme, host and port: `https://app.example.com:443`".into()),
            );
        }
    }
    let max_rows = match &raw.max_rows {
        None => DEFAULT_MAX_ROWS,
        Some(n) if n.value > 0 => n.value as u64,
        Some(n) => {
            diags.error(
                &n.loc,
                "mcp.max-rows",
                "must be a positive number of rows",
                None,
            );
            DEFAULT_MAX_ROWS
        }
    };
    McpSettings {
        instructions,
        allowed_origins: raw
            .allowed_origins
            .iter()
            .map(|o| o.value.clone())
            .collect(),
        max_rows,
    }
}

fn required_text(
    value: &Option<Sp<String>>,
    loc: &Location,
    path: &str,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<String> {
    match value {
        Some(v) if !v.value.trim().is_empty() => Some(v.value.trim().to_string()),
        Some(v) => {
            diags.error(&v.loc, path, format!("the {what} is empty"), None);
            None
        }
        None => {
            diags.error(
                loc,
                path,
                format!("the {what} is missing"),
                Some(format!(
                    "add `{}:`",
                    path.rsplit('.').next().unwrap_or(path)
                )),
            );
            None
        }
    }
}

/// A tool, resource or prompt name: present, and valid by MCP's tool-name
/// rule (which also keeps `flapi://<name>` a plain URI). An invalid name is
/// reported and still returned, so later checks run on it.
fn checked_name(
    value: &Option<Sp<String>>,
    loc: &Location,
    path: &str,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<String> {
    let name = required_text(value, loc, path, what, diags)?;
    if !is_valid_tool_name(&name) {
        let at = value.as_ref().map(|n| &n.loc).unwrap_or(loc);
        diags.error(
            at,
            path,
            format!("{what} `{name}` is not valid"),
            Some("use 1 to 128 of A-Z, a-z, 0-9, `_`, `-` and `.`".into()),
        );
    }
    Some(name)
}

/// The JSON Schema of a tool's arguments: one property per request field,
/// whatever its REST location, plus `limit`/`offset` when it paginates.
pub fn input_schema(endpoint: &Endpoint, default_limit: u64, max_limit: u64) -> Value {
    let mut properties = Map::new();
    for field in &endpoint.fields {
        properties.insert(field.name.clone(), argument_schema(field));
    }
    if endpoint.paginate {
        properties.insert("limit".into(), {
            let b = &endpoint.page_bounds;
            let max = b.limit_max.map_or(max_limit, |m| m.min(max_limit));
            let min = b.limit_min.unwrap_or(0).min(max);
            let default = default_limit.clamp(min, max);
            json!({"type": "integer", "minimum": min, "maximum": max, "default": default,
                    "description": format!("Rows to return, at most {max}.")})
        });
        properties.insert(
            "offset".into(),
            {
                let b = &endpoint.page_bounds;
                let mut schema = json!({"type": "integer", "minimum": b.offset_min.unwrap_or(0), "default": b.offset_min.unwrap_or(0),
                    "description": "Rows to skip, for the next page."});
                if let Some(max) = b.offset_max {
                    schema["maximum"] = json!(max);
                }
                schema
            },
        );
    }
    let required: Vec<&str> = endpoint
        .fields
        .iter()
        .filter(|f| f.required && f.default.is_none())
        .map(|f| f.name.as_str())
        .collect();
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn argument_schema(field: &Field) -> Value {
    let mut schema = field_schema(field);
    if let Some(map) = schema.as_object_mut() {
        // OpenAPI's int64/double formats are not JSON Schema vocabulary.
        if matches!(field.ty, FieldType::Int { .. } | FieldType::Double { .. }) {
            map.remove("format");
        }
    }
    let mut description = field.description.clone().unwrap_or_default();
    let bounds = match &field.ty {
        FieldType::Date { min, max }
        | FieldType::Time { min, max }
        | FieldType::Timestamp { min, max } => match (min, max) {
            (Some(a), Some(b)) => Some(format!("From {a} to {b}.")),
            (Some(a), None) => Some(format!("Not before {a}.")),
            (None, Some(b)) => Some(format!("Not after {b}.")),
            (None, None) => None,
        },
        _ => None,
    };
    if let Some(bounds) = bounds {
        if !description.is_empty() {
            description.push(' ');
        }
        description.push_str(&bounds);
    }
    if !description.is_empty() {
        schema["description"] = json!(description);
    }
    schema
}

pub fn resolve_tool(
    raw: &RawTool,
    endpoint: &Endpoint,
    default_limit: u64,
    max_limit: u64,
    diags: &mut Diagnostics,
) -> Option<Tool> {
    let name = checked_name(&raw.name, &raw.loc, "mcp-tool.name", "tool name", diags)?;
    let description = required_text(
        &raw.description,
        &raw.loc,
        "mcp-tool.description",
        "tool description",
        diags,
    )?;
    if let Some(mime) = &raw.result_mime_type
        && mime.value != "application/json"
    {
        diags.error(
            &mime.loc,
            "mcp-tool.result-mime-type",
            format!("result type `{}` is not supported", mime.value),
            Some("tool results are JSON: use `application/json` or leave it out".into()),
        );
    }
    if endpoint.paginate {
        for field in &endpoint.fields {
            if PAGE_ARGUMENTS.contains(&field.name.as_str()) {
                diags.error(
                    &raw.loc,
                    "mcp-tool",
                    format!(
                        "request field `{}` clashes with the tool's pagination argument",
                        field.name
                    ),
                    Some("rename the field, or set `with-pagination: false`".into()),
                );
            }
        }
    }
    let schema = input_schema(endpoint, default_limit, max_limit);
    Some(Tool {
        name,
        title: raw.title.as_ref().map(|t| t.value.clone()),
        description,
        input_schema: serde_json::to_string_pretty(&schema).unwrap_or_default(),
    })
}

pub fn resolve_resource(
    raw: &RawResource,
    endpoint: &Endpoint,
    diags: &mut Diagnostics,
) -> Option<Resource> {
    let name = checked_name(
        &raw.name,
        &raw.loc,
        "mcp-resource.name",
        "resource name",
        diags,
    )?;
    // `resources/read` carries no arguments: every field needs a value
    // without one.
    for field in &endpoint.fields {
        if field.required && field.default.is_none() {
            diags.error(
                &raw.loc,
                "mcp-resource",
                format!(
                    "request field `{}` is required, but a resource is read without arguments",
                    field.name
                ),
                Some("give the field a `default`, or expose the endpoint as `mcp-tool`".into()),
            );
        }
    }
    Some(Resource {
        name,
        description: raw.description.as_ref().map(|d| d.value.clone()),
        mime_type: raw
            .mime_type
            .as_ref()
            .map(|m| m.value.clone())
            .unwrap_or_else(|| "application/json".into()),
    })
}

pub fn resolve_prompt(raw: &RawPrompt, source: &str, diags: &mut Diagnostics) -> Option<Prompt> {
    let name = checked_name(&raw.name, &raw.loc, "mcp-prompt.name", "prompt name", diags)?;
    let template = raw.template.as_ref().or_else(|| {
        diags.error(
            &raw.loc,
            "mcp-prompt.template",
            "the prompt template is missing",
            Some("add `template: |` with the prompt text".into()),
        );
        None
    })?;
    let mut arguments: Vec<PromptArg> = Vec::new();
    for arg in &raw.arguments {
        if arguments.iter().any(|a| a.name == arg.name.value) {
            diags.error(
                &arg.loc,
                arg.path.as_str(),
                format!("prompt argument `{}` is declared twice", arg.name.value),
                None,
            );
            continue;
        }
        arguments.push(PromptArg {
            name: arg.name.value.clone(),
            description: arg.description.as_ref().map(|d| d.value.clone()),
            required: arg.required.as_ref().map(|r| r.value).unwrap_or(false),
            allowed_values: arg.allowed_values.iter().map(|v| v.value.clone()).collect(),
        });
    }
    let map = SourceMap {
        start: template.loc.clone(),
        src: &template.value,
    };
    let parts = mustache::parse(&map, diags);
    let template = prompt_parts(&parts, &arguments, &map, diags);
    Some(Prompt {
        name,
        description: raw.description.as_ref().map(|d| d.value.clone()),
        source: source.to_string(),
        arguments,
        template,
        access: crate::resolve::model::Access::Public,
    })
}

/// Prompt templates are text for a model, never SQL: `{{x}}` and `{{{x}}}`
/// both insert the argument as given. Every name must be a declared
/// argument (`{{params.x}}` is accepted as flAPI writes it in SQL).
fn prompt_parts(
    parts: &[Part],
    args: &[PromptArg],
    map: &SourceMap<'_>,
    diags: &mut Diagnostics,
) -> Vec<PromptPart> {
    let mut out = Vec::new();
    for part in parts {
        let lookup = |name: &str, offset: usize, diags: &mut Diagnostics| {
            let bare = name.strip_prefix("params.").unwrap_or(name);
            let found = args.iter().position(|a| a.name == bare);
            if found.is_none() {
                let help = did_you_mean(bare, args.iter().map(|a| a.name.as_str()))
                    .or_else(|| Some(format!("declare it under `arguments`: `- {bare}`")));
                diags.error(
                    &map.at(offset),
                    "mcp-prompt.template",
                    format!("`{name}` is not an argument of this prompt"),
                    help,
                );
            }
            found
        };
        match part {
            Part::Text(text) => out.push(PromptPart::Text(text.clone())),
            Part::Var { name, offset } => {
                if let Some(arg) = lookup(name, *offset, diags) {
                    out.push(PromptPart::Arg(arg));
                }
            }
            Part::Section {
                name,
                inverted,
                offset,
                children,
            } => {
                let inner = prompt_parts(children, args, map, diags);
                if let Some(arg) = lookup(name, *offset, diags) {
                    out.push(PromptPart::Section {
                        arg,
                        inverted: *inverted,
                        parts: inner,
                    });
                }
            }
        }
    }
    out
}

/// Tool, resource and prompt names are each unique in a project.
/// Tool, resource and prompt names are unique in a project; `tools` and
/// `resources` are where each endpoint names its tool or resource.
pub fn check_unique_names(
    tools: &[(Location, &Endpoint)],
    resources: &[(Location, &Endpoint)],
    prompts: &[(Location, &Prompt)],
    diags: &mut Diagnostics,
) {
    let tool_names = tools.iter().filter_map(|(loc, e)| {
        let tool = e.tool.as_ref()?;
        Some((loc, tool.name.as_str(), e.source.as_str()))
    });
    unique(
        tool_names,
        "mcp-tool.name",
        "tool",
        Some("tool names are unique in a project"),
        diags,
    );
    let resource_names = resources.iter().filter_map(|(loc, e)| {
        let resource = e.resource.as_ref()?;
        Some((loc, resource.name.as_str(), e.source.as_str()))
    });
    unique(resource_names, "mcp-resource.name", "resource", None, diags);
    let prompt_names = prompts
        .iter()
        .map(|(loc, p)| (loc, p.name.as_str(), p.source.as_str()));
    unique(prompt_names, "mcp-prompt.name", "prompt", None, diags);
}

/// An error at each name that an earlier file already declared.
fn unique<'a>(
    names: impl Iterator<Item = (&'a Location, &'a str, &'a str)>,
    key: &str,
    kind: &str,
    help: Option<&str>,
    diags: &mut Diagnostics,
) {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (loc, name, source) in names {
        if let Some(first) = seen.insert(name, source) {
            diags.error(
                loc,
                key,
                format!("duplicate {kind} name `{name}`: {first} declares it too"),
                help.map(str::to_string),
            );
        }
    }
}
