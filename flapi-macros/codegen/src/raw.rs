//! Phase 1, load: the project's YAML files as structs that mirror the YAML
//! one to one, every value with its position. No meaning is decided here
//! beyond the shape of each key.

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostics, Location};
use crate::yaml::{
    self, Kind, MapReader, Node, Sp, expect_bool, expect_int, expect_scalar_text, expect_seq,
    expect_str, expect_str_list,
};

/// Keys of `flapi.yaml` that flAPI documents and later versions of flapi
/// implement; until then they are an explicit build error.
pub const UNSUPPORTED_PROJECT_KEYS: &[&str] = &[
    "cors",
    "rate-limit",
    "auth",
    "mcp",
    "audit",
    "enforce-https",
];
pub const UNSUPPORTED_ENDPOINT_KEYS: &[&str] = &[
    "mcp-tool",
    "mcp-resource",
    "mcp-prompt",
    "auth",
    "rate-limit",
    "operation",
    "cache",
];

#[derive(Debug, Default)]
pub struct RawProject {
    pub file: PathBuf,
    pub project_name: Option<Sp<String>>,
    pub project_description: Option<Sp<String>>,
    pub template_path: Option<Sp<String>>,
    pub environment_whitelist: Vec<Sp<String>>,
    pub connections: Vec<RawConnection>,
    pub duckdb: RawDuckdb,
    pub http_host: Option<Sp<String>>,
    pub http_port: Option<Sp<i64>>,
    pub pagination: RawPagination,
}

#[derive(Debug)]
pub struct RawConnection {
    pub name: Sp<String>,
    pub path: String,
    pub init: Option<Sp<String>>,
    pub properties: Vec<(Sp<String>, Sp<String>)>,
}

#[derive(Debug, Default)]
pub struct RawDuckdb {
    pub db_path: Option<Sp<String>>,
    pub access_mode: Option<Sp<String>>,
    pub threads: Option<Sp<i64>>,
    pub max_memory: Option<Sp<String>>,
    pub allowed_directories: Vec<Sp<String>>,
    pub query_timeout_ms: Option<Sp<i64>>,
    pub pool_size: Option<Sp<i64>>,
}

#[derive(Debug, Default)]
pub struct RawPagination {
    pub default_limit: Option<Sp<i64>>,
    pub max_limit: Option<Sp<i64>>,
}

#[derive(Debug)]
pub struct RawEndpoint {
    pub file: PathBuf,
    pub start: Location,
    pub url_path: Option<Sp<String>>,
    pub method: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
    pub request: Vec<RawField>,
    pub template_source: Option<Sp<String>>,
    pub connection: Vec<Sp<String>>,
    pub with_pagination: Option<Sp<bool>>,
    pub request_fields_validation: Option<Sp<bool>>,
    pub sql_validation: Option<Sp<String>>,
}

#[derive(Debug)]
pub struct RawField {
    pub path: String,
    pub loc: Location,
    pub field_name: Option<Sp<String>>,
    pub field_in: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
    pub required: Option<Sp<bool>>,
    pub default: Option<Sp<String>>,
    pub validators: Vec<RawValidator>,
}

#[derive(Debug)]
pub struct RawValidator {
    pub path: String,
    pub loc: Location,
    pub kind: Option<Sp<String>>,
    pub min: Option<Sp<String>>,
    pub max: Option<Sp<String>>,
    pub min_length: Option<Sp<i64>>,
    pub max_length: Option<Sp<i64>>,
    pub regex: Option<Sp<String>>,
    pub allowed_values: Vec<Sp<String>>,
}

fn opt<T>(
    reader: &mut MapReader<'_>,
    key: &str,
    diags: &mut Diagnostics,
    read: fn(&Node, &str, &mut Diagnostics) -> Option<T>,
) -> Option<T> {
    let path = reader.key_path(key);
    reader.take(key).and_then(|node| read(node, &path, diags))
}

const PROJECT_KEYS: &[&str] = &[
    "project-name",
    "project-description",
    "template",
    "connections",
    "duckdb",
    "http-host",
    "http-port",
    "pagination",
    "cors",
    "rate-limit",
    "auth",
    "mcp",
    "audit",
    "enforce-https",
];

pub fn load_project(file: &Path, root: &Node, diags: &mut Diagnostics) -> RawProject {
    let mut project = RawProject {
        file: file.to_path_buf(),
        ..Default::default()
    };
    let Some(mut map) = MapReader::new(root, "", diags) else {
        return project;
    };
    project.project_name = opt(&mut map, "project-name", diags, expect_str);
    project.project_description = opt(&mut map, "project-description", diags, expect_str);
    project.http_host = opt(&mut map, "http-host", diags, expect_str);
    project.http_port = opt(&mut map, "http-port", diags, expect_int);

    if let Some(node) = map.take("template")
        && let Some(mut template) = MapReader::new(node, "template", diags)
    {
        project.template_path = opt(&mut template, "path", diags, expect_str);
        if let Some(list) = template.take("environment-whitelist") {
            project.environment_whitelist =
                expect_str_list(list, "template.environment-whitelist", diags);
        }
        template.finish(&["path", "environment-whitelist"], diags);
    }

    if let Some(node) = map.take("connections") {
        project.connections = load_connections(node, diags);
    }

    if let Some(node) = map.take("duckdb")
        && let Some(mut duck) = MapReader::new(node, "duckdb", diags)
    {
        let d = &mut project.duckdb;
        d.db_path = opt(&mut duck, "db_path", diags, expect_str);
        d.access_mode = opt(&mut duck, "access_mode", diags, expect_str);
        d.threads = opt(&mut duck, "threads", diags, expect_int);
        d.max_memory = opt(&mut duck, "max_memory", diags, expect_scalar_text);
        d.query_timeout_ms = opt(&mut duck, "query-timeout-ms", diags, expect_int);
        d.pool_size = opt(&mut duck, "pool-size", diags, expect_int);
        if let Some(list) = duck.take("allowed-directories") {
            d.allowed_directories = expect_str_list(list, "duckdb.allowed-directories", diags);
        }
        duck.finish(
            &[
                "db_path",
                "access_mode",
                "threads",
                "max_memory",
                "allowed-directories",
                "query-timeout-ms",
                "pool-size",
            ],
            diags,
        );
    }

    if let Some(node) = map.take("pagination")
        && let Some(mut page) = MapReader::new(node, "pagination", diags)
    {
        project.pagination.default_limit = opt(&mut page, "default-limit", diags, expect_int);
        project.pagination.max_limit = opt(&mut page, "max-limit", diags, expect_int);
        page.finish(&["default-limit", "max-limit"], diags);
    }

    map.reject_unsupported(UNSUPPORTED_PROJECT_KEYS, diags);
    map.finish(PROJECT_KEYS, diags);
    project
}

fn load_connections(node: &Node, diags: &mut Diagnostics) -> Vec<RawConnection> {
    let Kind::Map(entries) = &node.kind else {
        diags.error(
            &node.loc,
            "connections",
            format!(
                "expected a mapping of connection names, found {}",
                node.type_name()
            ),
            None,
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in entries {
        let Some(name) = key.scalar_text() else {
            continue;
        };
        let path = format!("connections.{name}");
        let mut connection = RawConnection {
            name: Sp::new(name, key.loc.clone()),
            path: path.clone(),
            init: None,
            properties: Vec::new(),
        };
        if matches!(value.kind, Kind::Null) {
            out.push(connection);
            continue;
        }
        let Some(mut map) = MapReader::new(value, &path, diags) else {
            continue;
        };
        connection.init = opt(&mut map, "init", diags, expect_str);
        if let Some(props) = map.take("properties") {
            let props_path = format!("{path}.properties");
            match &props.kind {
                Kind::Map(entries) => {
                    for (k, v) in entries {
                        let key_text = k.scalar_text().unwrap_or_default();
                        let value_path = format!("{props_path}.{key_text}");
                        if let Some(text) = expect_scalar_text(v, &value_path, diags) {
                            connection
                                .properties
                                .push((Sp::new(key_text, k.loc.clone()), text));
                        }
                    }
                }
                _ => diags.error(
                    &props.loc,
                    props_path,
                    format!("expected a mapping, found {}", props.type_name()),
                    None,
                ),
            }
        }
        map.finish(&["init", "properties"], diags);
        out.push(connection);
    }
    out
}

const ENDPOINT_KEYS: &[&str] = &[
    "url-path",
    "method",
    "description",
    "request",
    "template-source",
    "connection",
    "with-pagination",
    "request-fields-validation",
    "sql-validation",
    "mcp-tool",
    "mcp-resource",
    "mcp-prompt",
    "auth",
    "rate-limit",
    "operation",
    "cache",
];

pub fn load_endpoint(file: &Path, root: &Node, diags: &mut Diagnostics) -> Option<RawEndpoint> {
    let mut map = MapReader::new(root, "", diags)?;
    let mut endpoint = RawEndpoint {
        file: file.to_path_buf(),
        start: root.loc.clone(),
        url_path: opt(&mut map, "url-path", diags, expect_str),
        method: opt(&mut map, "method", diags, expect_str),
        description: opt(&mut map, "description", diags, expect_str),
        request: Vec::new(),
        template_source: opt(&mut map, "template-source", diags, expect_str),
        connection: Vec::new(),
        with_pagination: opt(&mut map, "with-pagination", diags, expect_bool),
        request_fields_validation: opt(&mut map, "request-fields-validation", diags, expect_bool),
        sql_validation: opt(&mut map, "sql-validation", diags, expect_str),
    };
    if let Some(node) = map.take("connection") {
        // flAPI writes `connection: [name]`; a plain string is accepted too.
        endpoint.connection = match &node.kind {
            Kind::Str(s) => vec![Sp::new(s.clone(), node.loc.clone())],
            _ => expect_str_list(node, "connection", diags),
        };
    }
    if let Some(node) = map.take("request")
        && !matches!(node.kind, Kind::Null)
        && let Some(items) = expect_seq(node, "request", diags)
    {
        for (i, item) in items.iter().enumerate() {
            if let Some(field) = load_field(item, &format!("request[{i}]"), diags) {
                endpoint.request.push(field);
            }
        }
    }
    map.reject_unsupported(UNSUPPORTED_ENDPOINT_KEYS, diags);
    map.finish(ENDPOINT_KEYS, diags);
    Some(endpoint)
}

const FIELD_KEYS: &[&str] = &[
    "field-name",
    "field-in",
    "description",
    "required",
    "default",
    "validators",
];

fn load_field(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<RawField> {
    let mut map = MapReader::new(node, path, diags)?;
    let mut field = RawField {
        path: path.to_string(),
        loc: node.loc.clone(),
        field_name: opt(&mut map, "field-name", diags, expect_str),
        field_in: opt(&mut map, "field-in", diags, expect_str),
        description: opt(&mut map, "description", diags, expect_str),
        required: opt(&mut map, "required", diags, expect_bool),
        default: opt(&mut map, "default", diags, expect_scalar_text),
        validators: Vec::new(),
    };
    if let Some(list) = map.take("validators") {
        let list_path = yaml::join(path, "validators");
        if let Some(items) = expect_seq(list, &list_path, diags) {
            for (i, item) in items.iter().enumerate() {
                if let Some(v) = load_validator(item, &format!("{list_path}[{i}]"), diags) {
                    field.validators.push(v);
                }
            }
        }
    }
    map.finish(FIELD_KEYS, diags);
    Some(field)
}

const VALIDATOR_KEYS: &[&str] = &[
    "type",
    "min",
    "max",
    "minLength",
    "maxLength",
    "regex",
    "allowedValues",
    "preventSqlInjection",
];

fn load_validator(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<RawValidator> {
    let mut map = MapReader::new(node, path, diags)?;
    let mut validator = RawValidator {
        path: path.to_string(),
        loc: node.loc.clone(),
        kind: opt(&mut map, "type", diags, expect_str),
        min: opt(&mut map, "min", diags, expect_scalar_text),
        max: opt(&mut map, "max", diags, expect_scalar_text),
        min_length: opt(&mut map, "minLength", diags, expect_int),
        max_length: opt(&mut map, "maxLength", diags, expect_int),
        regex: opt(&mut map, "regex", diags, expect_str),
        allowed_values: Vec::new(),
    };
    if let Some(list) = map.take("allowedValues") {
        validator.allowed_values = expect_str_list(list, &yaml::join(path, "allowedValues"), diags);
    }
    // flAPI's `preventSqlInjection` is accepted and has nothing left to do:
    // every value is bound, never spliced.
    let _ = opt(&mut map, "preventSqlInjection", diags, expect_bool);
    map.finish(VALIDATOR_KEYS, diags);
    Some(validator)
}
