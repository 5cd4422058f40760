//! A call's arguments as the transports send them, read once: the flags
//! the server reads itself (`_dryRun`, `format`, `limit`, `offset`), the
//! reserved names nobody may send, unknown names, JSON types, and then the
//! endpoint's generated validators.

use serde_json::{Map, Value};

use crate::db::Page;
use crate::db::encode::Format;
use crate::runtime::{
    EndpointDef, FieldDef, FieldErrors, FieldIn, Plan, ProjectDef, RequestInput,
    is_reserved_parameter,
};

/// The query parameter (REST) and argument (MCP) that asks for a dry run.
pub const DRY_RUN: &str = "_dryRun";
/// Query parameters and arguments the server reads itself.
pub const FORMAT: &str = "format";
pub const LIMIT: &str = "limit";
pub const OFFSET: &str = "offset";

const RESERVED: &str = "is reserved for the verified caller and cannot be sent";

/// Arguments as sent.
#[derive(Debug, Clone)]
pub enum Arguments {
    /// REST: path, query and header values as text; `accept` is the
    /// `Accept` header, for the format; `errors` are what the transport
    /// could not decode (reported with the argument errors).
    Text {
        input: RequestInput,
        accept: Option<String>,
        errors: FieldErrors,
    },
    /// MCP `tools/call`: a JSON object, each value of its schema's type.
    Json(Map<String, Value>),
    /// MCP `resources/read`: no arguments at all.
    None,
}

/// What the server reads itself.
#[derive(Debug, Default)]
pub struct Flags {
    pub dry_run: bool,
    pub format: Format,
    /// The window of a paginated endpoint.
    pub page: Option<Page>,
    /// Bad flag values, reported once the caller is known to be allowed.
    pub errors: FieldErrors,
}

impl Arguments {
    /// The arguments as an audit record keeps them (before redaction).
    pub fn recorded(&self) -> Value {
        match self {
            Arguments::Text { input, .. } => input
                .path
                .iter()
                .chain(&input.query)
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<Map<_, _>>()
                .into(),
            Arguments::Json(object) => Value::Object(object.clone()),
            Arguments::None => Value::Null,
        }
    }

    /// Takes the flags out of the arguments (`_dryRun`; for JSON also the
    /// page arguments), with their errors.
    pub fn flags(&mut self, project: &ProjectDef, endpoint: &EndpointDef) -> Flags {
        let mut flags = Flags::default();
        match self {
            Arguments::Text {
                input,
                accept,
                errors,
            } => {
                flags.errors = std::mem::take(errors);
                flags.dry_run = text_dry_run(&mut input.query, &mut flags.errors);
                flags.format = negotiate(&input.query, accept.as_deref(), &mut flags.errors);
                flags.page = endpoint
                    .paginate
                    .then(|| text_page(project, endpoint, &input.query, &mut flags.errors));
            }
            Arguments::Json(object) => {
                flags.dry_run = json_dry_run(object, &mut flags.errors);
                flags.page = endpoint
                    .paginate
                    .then(|| json_page(project, endpoint, object, &mut flags.errors));
            }
            Arguments::None => {
                // A resource is read whole, up to the server's largest page.
                flags.page = endpoint.paginate.then_some(Page {
                    limit: project.max_limit,
                    offset: 0,
                });
            }
        }
        flags
    }

    /// The endpoint's plan for these arguments, or every error found
    /// (`errors` are the flags' own).
    pub fn plan(
        &self,
        endpoint: &EndpointDef,
        mut errors: FieldErrors,
    ) -> Result<Plan, FieldErrors> {
        let owned;
        let input = match self {
            Arguments::Text { input, .. } => {
                check_text_names(endpoint, &input.query, &mut errors);
                input
            }
            Arguments::Json(object) => {
                owned = json_input(endpoint, object, &mut errors);
                if !errors.is_empty() {
                    return Err(errors);
                }
                &owned
            }
            Arguments::None => {
                owned = RequestInput::default();
                &owned
            }
        };
        match (endpoint.plan)(input) {
            Ok(plan) if errors.is_empty() => Ok(plan),
            Ok(_) => Err(errors),
            Err(mut field_errors) => {
                field_errors.0.extend(errors.0);
                Err(field_errors)
            }
        }
    }
}

fn text_dry_run(query: &mut Vec<(String, String)>, errors: &mut FieldErrors) -> bool {
    let mut flag = false;
    query.retain(|(k, v)| {
        if k != DRY_RUN {
            return true;
        }
        match v.as_str() {
            "true" | "1" => flag = true,
            "false" | "0" => {}
            _ => errors.push(DRY_RUN, "must be true or false"),
        }
        false
    });
    flag
}

fn json_dry_run(object: &mut Map<String, Value>, errors: &mut FieldErrors) -> bool {
    match object.remove(DRY_RUN) {
        None | Some(Value::Bool(false)) | Some(Value::Null) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => {
            errors.push(DRY_RUN, "must be a boolean");
            false
        }
    }
}

/// `format=json|csv`, else the `Accept` header.
fn negotiate(query: &[(String, String)], accept: Option<&str>, errors: &mut FieldErrors) -> Format {
    match query
        .iter()
        .find(|(k, _)| k == FORMAT)
        .map(|(_, v)| v.as_str())
    {
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(_) => {
            errors.push(FORMAT, "must be one of: json, csv");
            Format::Json
        }
        None if accept.is_some_and(|a| a.contains("text/csv")) => Format::Csv,
        None => Format::Json,
    }
}

/// `limit` (clamped to `max-limit`) and `offset`, each read by `number`
/// (`None` when absent). A value outside the endpoint's declared bounds
/// is an error; an absent limit is the default, within them.
fn window(
    project: &ProjectDef,
    endpoint: &EndpointDef,
    errors: &mut FieldErrors,
    mut number: impl FnMut(&str, &mut FieldErrors) -> Option<u64>,
) -> Page {
    let b = endpoint.page_bounds;
    let mut bounded =
        |name: &str, min: u64, max: Option<u64>, default: u64, errors: &mut FieldErrors| {
            match number(name, errors) {
                None => default.max(min).min(max.unwrap_or(u64::MAX)),
                Some(n) if n < min || max.is_some_and(|m| n > m) => {
                    let reason = match max {
                        Some(max) => format!("must be between {min} and {max}"),
                        None => format!("must be at least {min}"),
                    };
                    errors.push(name, &reason);
                    default
                }
                Some(n) => n,
            }
        };
    let limit = bounded(
        LIMIT,
        b.limit_min,
        b.limit_max,
        project.default_limit,
        errors,
    )
    .min(project.max_limit);
    let offset = bounded(OFFSET, b.offset_min, b.offset_max, 0, errors);
    Page { limit, offset }
}

fn text_page(
    project: &ProjectDef,
    endpoint: &EndpointDef,
    query: &[(String, String)],
    errors: &mut FieldErrors,
) -> Page {
    window(project, endpoint, errors, |name, errors| {
        let mut values = query.iter().filter(|(k, _)| k == name);
        match (values.next(), values.next()) {
            (None, _) => None,
            (Some(_), Some(_)) => {
                errors.push(name, "was given more than once");
                None
            }
            (Some((_, v)), None) => match v.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(name, "must be a non-negative integer");
                    None
                }
            },
        }
    })
}

fn json_page(
    project: &ProjectDef,
    endpoint: &EndpointDef,
    object: &mut Map<String, Value>,
    errors: &mut FieldErrors,
) -> Page {
    window(project, endpoint, errors, |name, errors| {
        let value = object.remove(name)?;
        let n = value.as_u64();
        if n.is_none() {
            errors.push(name, "must be a non-negative integer");
        }
        n
    })
}

/// Reserved names, and with `strict-fields` names the endpoint lacks.
fn check_text_names(endpoint: &EndpointDef, query: &[(String, String)], errors: &mut FieldErrors) {
    for (key, _) in query {
        if is_reserved_parameter(key) && !errors.has(key) {
            errors.push(key, RESERVED);
        }
    }
    if !endpoint.strict_fields {
        return;
    }
    for (key, _) in query {
        let known = endpoint
            .fields
            .iter()
            .any(|f| f.location == FieldIn::Query && f.name == key)
            || key == FORMAT
            || (endpoint.paginate && (key == LIMIT || key == OFFSET));
        if !known && !errors.has(key) {
            errors.push(key, "is not a field of this endpoint");
        }
    }
}

/// Tool arguments, type-checked against the generated schema and laid out
/// where the endpoint's validators look for them.
fn json_input(
    endpoint: &EndpointDef,
    object: &Map<String, Value>,
    errors: &mut FieldErrors,
) -> RequestInput {
    let mut input = RequestInput::default();
    for (name, value) in object {
        if is_reserved_parameter(name) {
            errors.push(name, RESERVED);
            continue;
        }
        let Some(field) = endpoint.fields.iter().find(|f| f.name == name) else {
            errors.push(name, "is not an argument of this tool");
            continue;
        };
        // Models often send `null` for an optional argument: not given.
        if value.is_null() {
            continue;
        }
        let text = match argument_text(field, value) {
            Ok(text) => text,
            Err(message) => {
                errors.push(name, message);
                continue;
            }
        };
        let pair = (field.name.to_string(), text);
        match field.location {
            FieldIn::Path => input.path.push(pair),
            FieldIn::Query => input.query.push(pair),
            FieldIn::Header => input.headers.push(pair),
            FieldIn::Body => {
                input
                    .body
                    .get_or_insert_with(Default::default)
                    .insert(pair.0, Value::String(pair.1));
            }
        }
    }
    input
}

pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The argument as the text the REST validators parse, if its JSON type is
/// the one the schema declares.
fn argument_text(field: &FieldDef, value: &Value) -> Result<String, String> {
    match (field.type_name, value) {
        ("int", Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(i.to_string()),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok((f as i64).to_string()),
            _ => Err("must be a 64-bit integer".into()),
        },
        ("double", Value::Number(n)) => Ok(n.to_string()),
        ("boolean", Value::Bool(b)) => Ok(b.to_string()),
        ("int" | "double" | "boolean", other) => Err(format!(
            "must be {}, not {}",
            match field.type_name {
                "int" => "an integer",
                "double" => "a number",
                _ => "a boolean",
            },
            json_type_name(other)
        )),
        (_, Value::String(s)) => Ok(s.clone()),
        (_, other) => Err(format!("must be a string, not {}", json_type_name(other))),
    }
}
