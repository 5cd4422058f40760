//! Phase 1, load: the project's YAML files as structs that mirror the YAML
//! one to one, every value with its position. No meaning is decided here
//! beyond the shape of each key.

pub mod auth;
pub mod edge;
pub mod include;
pub mod paths;
pub mod policy;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use auth::*;
pub use edge::{RawCors, RawHttps, RawLimits, RawRateLimit};
pub use policy::*;

use crate::diag::{Diagnostics, Location};
use yaml::{
    Kind, MapReader, Node, Sp, expect_bool, expect_int, expect_scalar_text, expect_seq, expect_str,
    expect_str_list, opt,
};

/// Keys of `flapi.yaml` that flAPI documents and later versions of flapi
/// implement; until then they are an explicit build error.
pub const UNSUPPORTED_PROJECT_KEYS: &[&str] = &[];
pub const UNSUPPORTED_ENDPOINT_KEYS: &[&str] = &["cache"];

#[derive(Debug, Default)]
pub struct RawProject {
    pub file: PathBuf,
    pub project_name: Option<Sp<String>>,
    pub project_description: Option<Sp<String>>,
    pub template_path: Option<Sp<String>>,
    pub environment_whitelist: Vec<Sp<String>>,
    /// `template.allowed-functions`: functions beyond flapi's allowlist.
    pub allowed_functions: Vec<Sp<String>>,
    pub connections: Vec<RawConnection>,
    pub duckdb: RawDuckdb,
    pub http_host: Option<Sp<String>>,
    pub http_port: Option<Sp<i64>>,
    /// `allowed-hosts`: `Host` names served besides loopback and
    /// `http-host` (every route, REST and MCP).
    pub allowed_hosts: Vec<Sp<String>>,
    pub pagination: RawPagination,
    pub mcp: RawMcp,
    pub auth: Option<RawAuth>,
    pub audit: Option<RawAudit>,
    pub dry_run_roles: Option<Vec<Sp<String>>>,
    pub dry_run_public: Option<Sp<bool>>,
    pub enforcement: Option<Sp<String>>,
    /// `hygiene.url-hosts`: hosts model-visible links may point at.
    pub url_hosts: Vec<Sp<String>>,
    pub hygiene_allow: Vec<RawAllow>,
    pub cors: Option<crate::load::RawCors>,
    pub https: Option<crate::load::RawHttps>,
    pub limits: Option<crate::load::RawLimits>,
    pub rate_limit: Option<crate::load::RawRateLimit>,
    /// flAPI's `heartbeat: {enabled, worker-interval}`.
    pub heartbeat: Option<RawHeartbeat>,
}

/// `heartbeat:` in flapi.yaml (the worker) or on an endpoint (its calls).
#[derive(Debug, Default)]
pub struct RawHeartbeat {
    pub loc: Location,
    pub enabled: Option<Sp<bool>>,
    /// Seconds between rounds (flapi.yaml only).
    pub worker_interval: Option<Sp<i64>>,
    /// Arguments of the endpoint's heartbeat call (endpoint only).
    pub params: Vec<(Sp<String>, Sp<String>)>,
}

/// One `hygiene-allow` entry: keeps one rule's finding on one string.
#[derive(Debug, Clone)]
pub struct RawAllow {
    pub path: String,
    pub loc: Location,
    pub key: Option<Sp<String>>,
    pub rule: Option<Sp<String>>,
    pub reason: Option<Sp<String>>,
}

/// `mcp:` in flapi.yaml.
#[derive(Debug, Default)]
pub struct RawMcp {
    pub instructions: Option<Sp<String>>,
    pub instructions_file: Option<Sp<String>>,
    pub allowed_hosts: Option<Vec<Sp<String>>>,
    pub allowed_origins: Vec<Sp<String>>,
    pub max_rows: Option<Sp<i64>>,
    pub auth: Option<RawAuth>,
    pub enforcement: Option<Sp<String>>,
    /// flAPI's `strict-descriptions`: always on here.
    pub strict_descriptions: Option<Sp<bool>>,
}

/// `mcp-tool:` on an endpoint.
#[derive(Debug)]
pub struct RawTool {
    pub loc: Location,
    pub name: Option<Sp<String>>,
    pub title: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
    pub result_mime_type: Option<Sp<String>>,
    pub allowed_roles: Option<Vec<Sp<String>>>,
    pub response: Option<RawResponse>,
    pub enforcement: Option<Sp<String>>,
    pub rate_limit: Option<crate::load::RawRateLimit>,
}

/// `mcp-resource:` on an endpoint.
#[derive(Debug)]
pub struct RawResource {
    pub loc: Location,
    pub name: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
    pub mime_type: Option<Sp<String>>,
    pub allowed_roles: Option<Vec<Sp<String>>>,
}

/// `mcp-prompt:` in an endpoint file (with or without SQL).
#[derive(Debug)]
pub struct RawPrompt {
    pub loc: Location,
    pub name: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
    pub template: Option<Sp<String>>,
    pub arguments: Vec<RawPromptArg>,
    pub allowed_roles: Option<Vec<Sp<String>>>,
}

#[derive(Debug)]
pub struct RawPromptArg {
    pub path: String,
    pub loc: Location,
    pub name: Sp<String>,
    pub description: Option<Sp<String>>,
    pub required: Option<Sp<bool>>,
    pub allowed_values: Vec<Sp<String>>,
}

#[derive(Debug)]
pub struct RawConnection {
    pub name: Sp<String>,
    pub path: String,
    pub init: Option<Sp<String>>,
    pub properties: Vec<(Sp<String>, Sp<String>)>,
    /// flAPI's `log-queries`: log each query's SQL text (never values).
    pub log_queries: Option<Sp<bool>>,
    /// flAPI's `log-parameters`: bound values are never logged here.
    pub log_parameters: Option<Sp<bool>>,
}

/// The keys of `duckdb:` that are flapi's own; every other key is a DuckDB
/// setting passed through (checked when resolved).
pub const DUCKDB_KEYS: &[&str] = &[
    "db_path",
    "access_mode",
    "threads",
    "max_memory",
    "allowed-directories",
    "query-timeout-ms",
    "pool-size",
];

#[derive(Debug, Default)]
pub struct RawDuckdb {
    pub db_path: Option<Sp<String>>,
    pub access_mode: Option<Sp<String>>,
    pub threads: Option<Sp<i64>>,
    pub max_memory: Option<Sp<String>>,
    pub allowed_directories: Vec<Sp<String>>,
    pub query_timeout_ms: Option<Sp<i64>>,
    pub pool_size: Option<Sp<i64>>,
    /// Any other key: a DuckDB setting (`default_order: DESC`), checked
    /// against the allowlist when resolved.
    pub settings: Vec<(Sp<String>, Sp<String>)>,
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
    pub mcp_tool: Option<RawTool>,
    pub mcp_resource: Option<RawResource>,
    pub mcp_prompt: Option<RawPrompt>,
    pub allowed_roles: Option<Vec<Sp<String>>>,
    pub auth: Option<RawAuth>,
    pub response: Option<RawResponse>,
    pub enforcement: Option<Sp<String>>,
    pub hygiene_allow: Vec<RawAllow>,
    pub rate_limit: Option<crate::load::RawRateLimit>,
    pub query_timeout_ms: Option<Sp<i64>>,
    /// flAPI's `operation: {type: Read}`: must say read.
    pub operation: Option<Sp<String>>,
    pub heartbeat: Option<RawHeartbeat>,
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
    pub sensitive: Option<Sp<bool>>,
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

const PROJECT_KEYS: &[&str] = &[
    "project-name",
    "project-description",
    "template",
    "connections",
    "duckdb",
    "http-host",
    "http-port",
    "allowed-hosts",
    "pagination",
    "auth",
    "cors",
    "rate-limit",
    "mcp",
    "audit",
    "enforce-https",
    "dry-run-roles",
    "dry-run-public",
    "enforcement",
    "hygiene",
    "hygiene-allow",
    "limits",
    "heartbeat",
];

/// Keys of flapi.yaml that flAPI reads and flapi has no use for.
const IGNORED_PROJECT_KEYS: &[(&str, &str)] = &[
    (
        "version",
        "flAPI's marker of its file format; the build reads the format itself",
    ),
    (
        "server",
        "flAPI's server block is not read; flapi serves on `http-host` and `http-port`",
    ),
    (
        "server-name",
        "flAPI uses it as a name in its logs; flapi serves on `http-host`",
    ),
    (
        "storage",
        "flAPI's response-cache settings; flapi keeps no response cache",
    ),
    (
        "environment-whitelist",
        "flAPI reads the whitelist from `template.environment-whitelist`; move the patterns there",
    ),
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
    if let Some(list) = map.take("allowed-hosts") {
        project.allowed_hosts = expect_str_list(list, "allowed-hosts", diags);
    }

    if let Some(node) = map.take("template")
        && let Some(mut template) = MapReader::new(node, "template", diags)
    {
        project.template_path = opt(&mut template, "path", diags, expect_str);
        if let Some(list) = template.take("environment-whitelist") {
            project.environment_whitelist =
                expect_str_list(list, "template.environment-whitelist", diags);
        }
        if let Some(list) = template.take("allowed-functions") {
            project.allowed_functions = expect_str_list(list, "template.allowed-functions", diags);
        }
        template.finish(
            &["path", "environment-whitelist", "allowed-functions"],
            diags,
        );
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
        // Every other key is a DuckDB setting, resolved against the
        // allowlist of settings that cannot weaken the sandbox.
        for (name, key, value) in duck.remaining() {
            duck.take(&name);
            if let Some(text) = expect_scalar_text(value, &duck.key_path(&name), diags) {
                d.settings.push((Sp::new(name, key.loc.clone()), text));
            }
        }
        duck.finish(DUCKDB_KEYS, diags);
    }

    if let Some(node) = map.take("pagination")
        && let Some(mut page) = MapReader::new(node, "pagination", diags)
    {
        project.pagination.default_limit = opt(&mut page, "default-limit", diags, expect_int);
        project.pagination.max_limit = opt(&mut page, "max-limit", diags, expect_int);
        page.finish(&["default-limit", "max-limit"], diags);
    }

    if let Some(node) = map.take("mcp") {
        project.mcp = load_mcp(node, diags);
    }
    if let Some(node) = map.take("auth") {
        project.auth = load_auth(node, "auth", AuthScope::Project, diags);
    }
    if let Some(node) = map.take("audit") {
        project.audit = load_audit(node, diags);
    }
    project.dry_run_roles = roles_list(&mut map, "dry-run-roles", diags);
    project.dry_run_public = opt(&mut map, "dry-run-public", diags, expect_bool);
    project.enforcement = opt(&mut map, "enforcement", diags, expect_str);
    if let Some(node) = map.take("hygiene")
        && let Some(mut hygiene) = MapReader::new(node, "hygiene", diags)
    {
        if let Some(list) = hygiene.take("url-hosts") {
            project.url_hosts = expect_str_list(list, "hygiene.url-hosts", diags);
        }
        hygiene.finish(&["url-hosts"], diags);
    }
    project.hygiene_allow = load_allow(&mut map, diags);
    if let Some(node) = map.take("cors") {
        project.cors = crate::load::edge::load_cors(node, diags);
    }
    if let Some(node) = map.take("enforce-https") {
        project.https = crate::load::edge::load_https(node, diags);
    }
    if let Some(node) = map.take("limits") {
        project.limits = crate::load::edge::load_limits(node, diags);
    }
    // `rate_limit` is flAPI's spelling of the project-wide limit.
    if let Some(node) = map.take_either("rate-limit", "rate_limit", diags) {
        project.rate_limit = crate::load::edge::load_rate_limit(node, "rate-limit", diags);
    }
    if let Some(node) = map.take("heartbeat") {
        project.heartbeat = load_heartbeat(node, true, diags);
    }
    for (key, why) in IGNORED_PROJECT_KEYS {
        map.ignore(key, why, diags);
    }

    map.reject_unsupported(UNSUPPORTED_PROJECT_KEYS, diags);
    map.finish(PROJECT_KEYS, diags);
    project
}

const MCP_KEYS: &[&str] = &[
    "enabled",
    "instructions",
    "instructions-file",
    "allowed-hosts",
    "allowed-origins",
    "max-rows",
    "auth",
    "enforcement",
    "strict-descriptions",
];

fn load_mcp(node: &Node, diags: &mut Diagnostics) -> RawMcp {
    let mut mcp = RawMcp::default();
    let Some(mut map) = MapReader::new(node, "mcp", diags) else {
        return mcp;
    };
    mcp.instructions = opt(&mut map, "instructions", diags, expect_str);
    mcp.instructions_file = opt(&mut map, "instructions-file", diags, expect_str);
    if let Some(list) = map.take("allowed-hosts") {
        mcp.allowed_hosts = Some(expect_str_list(list, "mcp.allowed-hosts", diags));
    }
    if let Some(list) = map.take("allowed-origins") {
        mcp.allowed_origins = expect_str_list(list, "mcp.allowed-origins", diags);
    }
    mcp.max_rows = opt(&mut map, "max-rows", diags, expect_int);
    mcp.enforcement = opt(&mut map, "enforcement", diags, expect_str);
    // flAPI's `enabled` (MCP is always served alongside REST here) and
    // `port`/`host` (one listener) are accepted only with their meaning.
    if let Some(enabled) = opt(&mut map, "enabled", diags, expect_bool)
        && !enabled.value
    {
        diags.error(
            &enabled.loc,
            "mcp.enabled",
            "MCP cannot be switched off in this version",
            Some(
                "remove `enabled: false`; endpoints without `mcp-tool` are not exposed over MCP"
                    .into(),
            ),
        );
    }
    if let Some(node) = map.take("auth") {
        mcp.auth = load_auth(node, "mcp.auth", AuthScope::Mcp, diags);
    }
    mcp.strict_descriptions = opt(&mut map, "strict-descriptions", diags, expect_bool);
    if let Some(strict) = &mcp.strict_descriptions
        && !strict.value
    {
        diags.warning(
            &strict.loc,
            "mcp.strict-descriptions",
            "`strict-descriptions: false` has no effect: flapi always fails the build on an unsafe tool, resource or prompt text",
            Some("remove the key, or write `true`; keep a reviewed exception with `hygiene-allow`".into()),
        );
    }
    map.ignore(
        "port",
        "flapi serves MCP on the HTTP listener (`http-port`) at `/mcp`, beside REST",
        diags,
    );
    map.ignore(
        "host",
        "flapi serves MCP on the HTTP listener (`http-host`) at `/mcp`, beside REST",
        diags,
    );
    map.ignore(
        "allow-list-changed-notifications",
        "the tool, resource and prompt lists are fixed when the binary is built, so they never change",
        diags,
    );
    map.finish(MCP_KEYS, diags);
    mcp
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
            log_queries: None,
            log_parameters: None,
        };
        if matches!(value.kind, Kind::Null) {
            out.push(connection);
            continue;
        }
        let Some(mut map) = MapReader::new(value, &path, diags) else {
            continue;
        };
        connection.init = opt(&mut map, "init", diags, expect_str);
        connection.log_queries = opt(&mut map, "log-queries", diags, expect_bool);
        connection.log_parameters = opt(&mut map, "log-parameters", diags, expect_bool);
        map.ignore(
            "allow",
            "flAPI lists it in its configuration dump and enforces nothing with it; what SQL may read is decided by the build's allowlist",
            diags,
        );
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
        map.finish(
            &["init", "properties", "log-queries", "log-parameters"],
            diags,
        );
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
    "allowed-roles",
    "auth",
    "response",
    "enforcement",
    "hygiene-allow",
    "query-timeout-ms",
    "rate-limit",
    "operation",
    "cache",
    "heartbeat",
];

/// `operation: {type: Read}`: the type, checked when resolved. flAPI's
/// write keys belong to write endpoints (a later version).
fn load_operation(node: &Node, diags: &mut Diagnostics) -> Option<Sp<String>> {
    let mut map = MapReader::new(node, "operation", diags)?;
    let kind = opt(&mut map, "type", diags, expect_str);
    // flAPI's write settings: read so the one error is the type's.
    for key in ["returns-data", "transaction", "validate-before-write"] {
        let _ = opt(&mut map, key, diags, expect_bool);
    }
    map.finish(
        &[
            "type",
            "returns-data",
            "transaction",
            "validate-before-write",
        ],
        diags,
    );
    if kind.is_none() {
        diags.error(
            &node.loc,
            "operation",
            "`operation` needs a `type`",
            Some("write `operation: {type: Read}`, or remove the block".into()),
        );
    }
    kind
}

/// flAPI's `heartbeat`: in flapi.yaml `{enabled, worker-interval}`, on an
/// endpoint `{enabled, params}`.
fn load_heartbeat(node: &Node, project: bool, diags: &mut Diagnostics) -> Option<RawHeartbeat> {
    let mut map = MapReader::new(node, "heartbeat", diags)?;
    let mut heartbeat = RawHeartbeat {
        loc: node.loc.clone(),
        enabled: opt(&mut map, "enabled", diags, expect_bool),
        ..Default::default()
    };
    if project {
        heartbeat.worker_interval = opt(&mut map, "worker-interval", diags, expect_int);
        map.finish(&["enabled", "worker-interval"], diags);
    } else {
        if let Some(params) = map.take("params") {
            match &params.kind {
                Kind::Map(entries) => {
                    for (k, v) in entries {
                        let name = k.scalar_text().unwrap_or_default();
                        let path = format!("heartbeat.params.{name}");
                        if let Some(value) = expect_scalar_text(v, &path, diags) {
                            heartbeat.params.push((Sp::new(name, k.loc.clone()), value));
                        }
                    }
                }
                Kind::Null => {}
                _ => diags.error(
                    &params.loc,
                    "heartbeat.params",
                    format!(
                        "expected a mapping of argument names, found {}",
                        params.type_name()
                    ),
                    None,
                ),
            }
        }
        map.finish(&["enabled", "params"], diags);
    }
    Some(heartbeat)
}

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
        mcp_tool: None,
        mcp_resource: None,
        mcp_prompt: None,
        allowed_roles: None,
        auth: None,
        response: None,
        enforcement: None,
        hygiene_allow: Vec::new(),
        rate_limit: None,
        query_timeout_ms: None,
        operation: None,
        heartbeat: None,
    };
    if let Some(node) = map.take("operation") {
        endpoint.operation = load_operation(node, diags);
    }
    if let Some(node) = map.take("heartbeat") {
        endpoint.heartbeat = load_heartbeat(node, false, diags);
    }
    if let Some(node) = map.take("rate-limit") {
        endpoint.rate_limit = crate::load::edge::load_rate_limit(node, "rate-limit", diags);
    }
    endpoint.query_timeout_ms = opt(&mut map, "query-timeout-ms", diags, expect_int);
    endpoint.enforcement = opt(&mut map, "enforcement", diags, expect_str);
    endpoint.hygiene_allow = load_allow(&mut map, diags);
    if let Some(node) = map.take("response") {
        endpoint.response = load_response(node, "response", diags);
    }
    endpoint.allowed_roles = roles_list(&mut map, "allowed-roles", diags);
    if let Some(node) = map.take("auth") {
        endpoint.auth = load_auth(node, "auth", AuthScope::Endpoint, diags);
    }
    if let Some(node) = map.take("mcp-tool") {
        endpoint.mcp_tool = load_tool(node, diags);
    }
    if let Some(node) = map.take("mcp-resource") {
        endpoint.mcp_resource = load_resource(node, diags);
    }
    if let Some(node) = map.take("mcp-prompt") {
        endpoint.mcp_prompt = load_prompt(node, diags);
    }
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

/// `hygiene-allow: [{key, rule, reason}]`, in flapi.yaml or an endpoint
/// file: each entry keeps one rule's finding on one string of that file.
fn load_allow(map: &mut MapReader<'_>, diags: &mut Diagnostics) -> Vec<RawAllow> {
    let mut out = Vec::new();
    let Some(list) = map.take("hygiene-allow") else {
        return out;
    };
    let Some(items) = expect_seq(list, "hygiene-allow", diags) else {
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("hygiene-allow[{i}]");
        let Some(mut entry) = MapReader::new(item, &path, diags) else {
            continue;
        };
        out.push(RawAllow {
            loc: item.loc.clone(),
            key: opt(&mut entry, "key", diags, expect_str),
            rule: opt(&mut entry, "rule", diags, expect_str),
            reason: opt(&mut entry, "reason", diags, expect_str),
            path,
        });
        entry.finish(&["key", "rule", "reason"], diags);
    }
    out
}

const TOOL_KEYS: &[&str] = &[
    "name",
    "title",
    "description",
    "result-mime-type",
    "allowed-roles",
    "response",
    "enforcement",
    "rate-limit",
];

fn load_tool(node: &Node, diags: &mut Diagnostics) -> Option<RawTool> {
    let mut map = MapReader::new(node, "mcp-tool", diags)?;
    let tool = RawTool {
        loc: node.loc.clone(),
        name: opt(&mut map, "name", diags, expect_str),
        title: opt(&mut map, "title", diags, expect_str),
        description: opt(&mut map, "description", diags, expect_str),
        result_mime_type: opt(&mut map, "result-mime-type", diags, expect_str),
        allowed_roles: roles_list(&mut map, "allowed-roles", diags),
        response: map
            .take("response")
            .and_then(|node| load_response(node, "mcp-tool.response", diags)),
        enforcement: opt(&mut map, "enforcement", diags, expect_str),
        rate_limit: map.take("rate-limit").and_then(|node| {
            crate::load::edge::load_rate_limit(node, "mcp-tool.rate-limit", diags)
        }),
    };
    map.finish(TOOL_KEYS, diags);
    Some(tool)
}

fn load_resource(node: &Node, diags: &mut Diagnostics) -> Option<RawResource> {
    let mut map = MapReader::new(node, "mcp-resource", diags)?;
    let resource = RawResource {
        loc: node.loc.clone(),
        name: opt(&mut map, "name", diags, expect_str),
        description: opt(&mut map, "description", diags, expect_str),
        mime_type: opt(&mut map, "mime-type", diags, expect_str),
        allowed_roles: roles_list(&mut map, "allowed-roles", diags),
    };
    map.finish(
        &["name", "description", "mime-type", "allowed-roles"],
        diags,
    );
    Some(resource)
}

fn load_prompt(node: &Node, diags: &mut Diagnostics) -> Option<RawPrompt> {
    let mut map = MapReader::new(node, "mcp-prompt", diags)?;
    let mut prompt = RawPrompt {
        loc: node.loc.clone(),
        name: opt(&mut map, "name", diags, expect_str),
        description: opt(&mut map, "description", diags, expect_str),
        template: opt(&mut map, "template", diags, expect_str),
        arguments: Vec::new(),
        allowed_roles: roles_list(&mut map, "allowed-roles", diags),
    };
    if let Some(list) = map.take("arguments")
        && let Some(items) = expect_seq(list, "mcp-prompt.arguments", diags)
    {
        for (i, item) in items.iter().enumerate() {
            let path = format!("mcp-prompt.arguments[{i}]");
            // flAPI lists names; a mapping adds a description, `required`
            // and allowed values (offered by `completion/complete`).
            if let Kind::Str(name) = &item.kind {
                prompt.arguments.push(RawPromptArg {
                    path,
                    loc: item.loc.clone(),
                    name: Sp::new(name.clone(), item.loc.clone()),
                    description: None,
                    required: None,
                    allowed_values: Vec::new(),
                });
                continue;
            }
            let Some(mut arg) = MapReader::new(item, &path, diags) else {
                continue;
            };
            let name = opt(&mut arg, "name", diags, expect_str);
            let description = opt(&mut arg, "description", diags, expect_str);
            let required = opt(&mut arg, "required", diags, expect_bool);
            let allowed_values = arg
                .take("allowedValues")
                .map(|l| expect_str_list(l, &yaml::join(&path, "allowedValues"), diags))
                .unwrap_or_default();
            arg.finish(&["name", "description", "required", "allowedValues"], diags);
            match name {
                Some(name) => prompt.arguments.push(RawPromptArg {
                    path,
                    loc: item.loc.clone(),
                    name,
                    description,
                    required,
                    allowed_values,
                }),
                None => diags.error(&item.loc, path, "a prompt argument needs a `name`", None),
            }
        }
    }
    map.finish(
        &[
            "name",
            "description",
            "template",
            "arguments",
            "allowed-roles",
        ],
        diags,
    );
    Some(prompt)
}

const FIELD_KEYS: &[&str] = &[
    "field-name",
    "field-in",
    "description",
    "required",
    "default",
    "sensitive",
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
        sensitive: opt(&mut map, "sensitive", diags, expect_bool),
        validators: Vec::new(),
    };
    map.ignore(
        "field-type",
        "flAPI does not read it either; a field's type comes from its `validators`",
        diags,
    );
    map.ignore(
        "defaultValue",
        "flAPI reads a field's default from `default`, not `defaultValue`; write `default:` for a default to apply",
        diags,
    );
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
        min_length: map
            .take_either("minLength", "min-length", diags)
            .and_then(|n| expect_int(n, &yaml::join(path, "minLength"), diags)),
        max_length: map
            .take_either("maxLength", "max-length", diags)
            .and_then(|n| expect_int(n, &yaml::join(path, "maxLength"), diags)),
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
