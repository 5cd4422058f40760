//! Phase 2, resolve and check: raw YAML structs become the model. Names are
//! resolved (connections, template files, path parameters), types decided
//! from validators, defaults checked against them, and templates compiled.

pub mod auth;
pub mod compile;
pub mod edge;
pub mod mcp;
pub mod model;
pub mod mustache;
pub mod policy;
pub mod values;

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;

use crate::diag::{Diagnostics, Location, did_you_mean};
use crate::load::yaml::Sp;
use crate::load::{RawEndpoint, RawField, RawProject, RawRoles, RawValidator};
use crate::resolve::model::{
    Access, AuthSettings, BindSource, Connection, DuckdbSettings, Endpoint, Field, FieldIn,
    FieldType, PageBounds, Project, SqlValidation,
};
use compile::TemplateInput;
use mustache::SourceMap;

/// Query parameters the server itself reads on paginated endpoints.
pub const RESERVED_QUERY_FIELDS: &[&str] = &["limit", "offset", "format"];

pub fn resolve_project(
    dir: &Path,
    raw: &RawProject,
    raw_roles: &RawRoles,
    endpoints: &[RawEndpoint],
    diags: &mut Diagnostics,
) -> Project {
    let name = match &raw.project_name {
        Some(name) if !name.value.trim().is_empty() => name.value.clone(),
        Some(name) => {
            diags.error(&name.loc, "project-name", "the project name is empty", None);
            String::new()
        }
        None => {
            diags.error(
                &Location::file_start(&raw.file),
                "project-name",
                "`project-name` is missing",
                Some("add `project-name: my-project`".into()),
            );
            String::new()
        }
    };

    let allowed_functions: Vec<String> = raw
        .allowed_functions
        .iter()
        .map(|f| f.value.trim().to_ascii_lowercase())
        .collect();
    let env_whitelist: Vec<Regex> = raw
        .environment_whitelist
        .iter()
        .filter_map(|p| match Regex::new(&format!("^(?:{})$", p.value)) {
            Ok(re) => Some(re),
            Err(e) => {
                diags.error(
                    &p.loc,
                    "template.environment-whitelist",
                    format!("invalid pattern: {}", first_line(&e.to_string())),
                    None,
                );
                None
            }
        })
        .collect();

    let connections: Vec<Connection> = raw
        .connections
        .iter()
        .map(|c| Connection {
            name: c.name.value.clone(),
            init: c.init.as_ref().map(|s| s.value.clone()),
            properties: c
                .properties
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.clone()))
                .collect(),
            log_queries: c.log_queries.as_ref().is_some_and(|v| v.value),
        })
        .collect();
    for c in &raw.connections {
        if let Some(v) = c.log_parameters.as_ref().filter(|v| v.value) {
            diags.warning(
                &v.loc,
                format!("{}.log-parameters", c.path),
                "`log-parameters: true` has no effect: flapi never writes bound values to its logs, where personal data and secrets would stay",
                Some("the audit log records each call's arguments, with `sensitive` fields and `audit.redact-arguments` redacted".into()),
            );
        }
    }

    let duckdb = resolve_duckdb(dir, raw, diags);
    // flAPI's heartbeat worker: on when `heartbeat.enabled`, every
    // `worker-interval` seconds (flAPI's default, 10).
    let heartbeat_seconds = raw.heartbeat.as_ref().and_then(|h| {
        if !h.enabled.as_ref().is_some_and(|e| e.value) {
            return None;
        }
        match &h.worker_interval {
            None => Some(10),
            Some(v) if (1..=86_400).contains(&v.value) => Some(v.value as u64),
            Some(v) => {
                diags.error(
                    &v.loc,
                    "heartbeat.worker-interval",
                    "must be 1 to 86400 seconds",
                    None,
                );
                None
            }
        }
    });
    let http_port = raw
        .http_port
        .as_ref()
        .and_then(|p| match u16::try_from(p.value) {
            Ok(port) if port > 0 => Some(port),
            _ => {
                diags.error(
                    &p.loc,
                    "http-port",
                    format!("port {} is out of range", p.value),
                    Some("use 1 to 65535".into()),
                );
                None
            }
        });

    let default_limit = positive(
        &raw.pagination.default_limit,
        "pagination.default-limit",
        100,
        diags,
    );
    let max_limit = positive(
        &raw.pagination.max_limit,
        "pagination.max-limit",
        1000,
        diags,
    );
    if default_limit > max_limit
        && let Some(loc) = raw.pagination.default_limit.as_ref().map(|s| &s.loc)
    {
        diags.error(
            loc,
            "pagination.default-limit",
            format!("default limit {default_limit} is above the maximum {max_limit}"),
            None,
        );
    }

    let mut files_read = Vec::new();
    let mcp = mcp::resolve_settings(dir, &raw.mcp, &mut files_read, diags);

    let auth = auth::resolve_auth(dir, raw, raw_roles, endpoints, &mut files_read, diags);
    let mut edge = crate::resolve::edge::resolve_edge(
        raw.cors.as_ref(),
        raw.https.as_ref(),
        raw.limits.as_ref(),
        raw.rate_limit.as_ref(),
        diags,
    );
    (edge.allowed_hosts, edge.public_host) = crate::resolve::edge::resolve_hosts(
        &raw.allowed_hosts,
        raw.mcp.allowed_hosts.as_deref().unwrap_or_default(),
        raw.http_host.as_ref().map(|h| h.value.as_str()),
        diags,
    );
    let auth_claims: Option<Vec<String>> = auth.configured().then(|| {
        auth.jwt
            .as_ref()
            .map(|j| j.context_claims.clone())
            .unwrap_or_default()
    });

    let mut resolved = Vec::new();
    let mut prompts = Vec::new();
    // Where each tool and each resource is named, by endpoint index.
    let mut tool_names: Vec<(Location, usize)> = Vec::new();
    let mut resource_names: Vec<(Location, usize)> = Vec::new();
    let mut prompt_locs: Vec<Location> = Vec::new();
    let mut routes: BTreeMap<(String, String), (String, Location)> = BTreeMap::new();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for raw_endpoint in endpoints {
        if let Some(raw_prompt) = &raw_endpoint.mcp_prompt {
            let source = relative(dir, &raw_endpoint.file);
            if let Some(mut prompt) = mcp::resolve_prompt(raw_prompt, &source, diags) {
                prompt.access = auth::access(
                    auth.mcp,
                    &[
                        raw_prompt.allowed_roles.as_ref(),
                        raw_endpoint.allowed_roles.as_ref(),
                    ],
                    &auth.roles,
                    &format!("prompt `{}`", prompt.name),
                    &raw_prompt.loc,
                    "mcp-prompt.allowed-roles",
                    diags,
                );
                prompts.push(prompt);
                prompt_locs.push(raw_prompt.loc.clone());
            }
            if raw_endpoint.url_path.is_none()
                && raw_endpoint.mcp_tool.is_none()
                && raw_endpoint.mcp_resource.is_none()
            {
                // A prompt-only file: SQL keys would have nothing to serve.
                if let Some(t) = &raw_endpoint.template_source {
                    diags.error(
                        &t.loc,
                        "template-source",
                        "this file declares only a prompt, so its SQL would never run",
                        Some("add `url-path`, `mcp-tool` or `mcp-resource`, or remove `template-source`".into()),
                    );
                }
                continue;
            }
        }
        let Some(mut endpoint) = resolve_endpoint(
            dir,
            raw_endpoint,
            &connections,
            &env_whitelist,
            auth_claims.as_deref(),
            &allowed_functions,
            diags,
        ) else {
            continue;
        };
        if let (Some(url), Some(url_path)) = (&raw_endpoint.url_path, &endpoint.url_path) {
            let shape = route_shape(url_path);
            if let Some((first_file, first_loc)) =
                routes.get(&(endpoint.method.clone(), shape.clone()))
            {
                diags.error(
                    &url.loc,
                    "url-path",
                    format!(
                        "duplicate route `{} {}`: {} declares the same route at line {}",
                        endpoint.method, url_path, first_file, first_loc.line
                    ),
                    Some("give one of the endpoints another `url-path` or `method`".into()),
                );
                continue;
            }
            routes.insert(
                (endpoint.method.clone(), shape),
                (endpoint.source.clone(), url.loc.clone()),
            );
        }
        if let Some(raw_tool) = &raw_endpoint.mcp_tool {
            endpoint.tool = mcp::resolve_tool(raw_tool, &endpoint, default_limit, max_limit, diags);
            tool_names.push((raw_tool.loc.clone(), resolved.len()));
        }
        if let Some(raw_resource) = &raw_endpoint.mcp_resource {
            endpoint.resource = mcp::resolve_resource(raw_resource, &endpoint, diags);
            resource_names.push((raw_resource.loc.clone(), resolved.len()));
        }
        resolve_access(raw_endpoint, &mut endpoint, &auth, diags);
        policy::resolve_endpoint(raw, raw_endpoint, &mut endpoint, &auth, diags);
        endpoint.rate_limit = match &raw_endpoint.rate_limit {
            Some(own) => crate::resolve::edge::resolve_rate_limit(own, diags),
            None => edge.rate_limit,
        };
        // A tool's own quota; without one the tool counts in the endpoint's.
        endpoint.tool_rate_limit = raw_endpoint
            .mcp_tool
            .as_ref()
            .and_then(|t| t.rate_limit.as_ref())
            .and_then(|own| crate::resolve::edge::resolve_rate_limit(own, diags));
        endpoint.query_timeout_ms = raw_endpoint.query_timeout_ms.as_ref().and_then(|t| {
            if (1..=3_600_000).contains(&t.value) {
                Some(t.value as u64)
            } else {
                diags.error(
                    &t.loc,
                    "query-timeout-ms",
                    "must be between 1 and 3600000 ms",
                    None,
                );
                None
            }
        });
        endpoint.heartbeat = resolve_heartbeat(raw_endpoint, &endpoint, heartbeat_seconds, diags);
        let count = ids.entry(endpoint.id.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            endpoint.id = format!("{}_{}", endpoint.id, count);
        }
        resolved.push(endpoint);
    }

    let located = |names: &[(Location, usize)]| -> Vec<(Location, &Endpoint)> {
        names
            .iter()
            .map(|(loc, i)| (loc.clone(), &resolved[*i]))
            .collect()
    };
    let (tools, resources) = (located(&tool_names), located(&resource_names));
    let by_prompt: Vec<(Location, &crate::resolve::model::Prompt)> =
        prompt_locs.iter().cloned().zip(prompts.iter()).collect();
    mcp::check_unique_names(&tools, &resources, &by_prompt, diags);
    let policy = policy::resolve_project(raw, &auth, diags);
    crate::check::auditor::audit_settings(raw, &auth, &policy, &edge, &resolved, diags);
    crate::check::secrets::scan_connections(raw, diags);
    crate::check::hygiene::scan_project(dir, raw, endpoints, &mut files_read, diags);

    Project {
        heartbeat_seconds,
        name,
        description: raw.project_description.as_ref().map(|d| d.value.clone()),
        base_dir: dir.to_path_buf(),
        connections,
        duckdb,
        http_host: raw.http_host.as_ref().map(|h| h.value.clone()),
        http_port,
        default_limit,
        max_limit,
        env_whitelist: raw
            .environment_whitelist
            .iter()
            .map(|p| p.value.clone())
            .collect(),
        allowed_functions,
        endpoints: resolved,
        mcp,
        prompts,
        auth,
        policy,
        edge,
        files_read,
        source_hash: String::new(),
    }
}

/// Who may call the endpoint over REST and over MCP; and a template that
/// reads the caller must not be reachable without one.
fn resolve_access(
    raw: &RawEndpoint,
    endpoint: &mut Endpoint,
    auth: &AuthSettings,
    diags: &mut Diagnostics,
) {
    let endpoint_switch = raw
        .auth
        .as_ref()
        .map(|a| a.enabled.as_ref().map(|e| e.value).unwrap_or(true));
    let endpoint_roles = raw.auth.as_ref().and_then(|a| a.roles.as_ref());
    if let (Some(a), Some(b)) = (&raw.allowed_roles, endpoint_roles)
        && let Some(first) = b.first()
        && !a.is_empty()
    {
        diags.error(
            &first.loc,
            "auth.roles",
            "`allowed-roles` and `auth.roles` are both set",
            Some("keep `allowed-roles`".into()),
        );
    }
    if let Some(url) = &raw.url_path {
        endpoint.rest_access = auth::access(
            endpoint_switch.unwrap_or(auth.rest),
            &[raw.allowed_roles.as_ref(), endpoint_roles],
            &auth.roles,
            &format!("route `{} {}`", endpoint.method, url.value),
            &url.loc,
            "allowed-roles",
            diags,
        );
    }
    let mcp_item = raw
        .mcp_tool
        .as_ref()
        .map(|t| {
            (
                t.allowed_roles.as_ref(),
                &t.loc,
                "tool",
                "mcp-tool.allowed-roles",
            )
        })
        .or_else(|| {
            raw.mcp_resource.as_ref().map(|r| {
                (
                    r.allowed_roles.as_ref(),
                    &r.loc,
                    "resource",
                    "mcp-resource.allowed-roles",
                )
            })
        });
    if let Some((own, loc, kind, path)) = mcp_item {
        let name = endpoint
            .tool
            .as_ref()
            .map(|t| t.name.clone())
            .or_else(|| endpoint.resource.as_ref().map(|r| r.name.clone()))
            .unwrap_or_default();
        endpoint.mcp_access = auth::access(
            auth.mcp,
            &[own, raw.allowed_roles.as_ref(), endpoint_roles],
            &auth.roles,
            &format!("{kind} `{name}`"),
            loc,
            path,
            diags,
        );
        endpoint.resource_access = endpoint.mcp_access;
    }
    // With a tool too, the resource still has its own list: validated and
    // enforced on `resources/read` (and `resources/list`).
    if let (Some(_), Some(resource)) = (&raw.mcp_tool, &raw.mcp_resource)
        && resource.allowed_roles.is_some()
    {
        let name = endpoint
            .resource
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        endpoint.resource_access = auth::access(
            auth.mcp,
            &[resource.allowed_roles.as_ref()],
            &auth.roles,
            &format!("resource `{name}`"),
            &resource.loc,
            "mcp-resource.allowed-roles",
            diags,
        );
    }
    let reads_caller = endpoint
        .template
        .variants
        .iter()
        .any(|v| v.binds.iter().any(|b| matches!(b, BindSource::Auth(_))));
    let public = (endpoint.route.is_some() && endpoint.rest_access == Access::Public)
        || (mcp_item.is_some() && endpoint.mcp_access == Access::Public);
    if reads_caller && public {
        let loc = raw
            .template_source
            .as_ref()
            .map(|t| t.loc.clone())
            .unwrap_or_else(|| raw.start.clone());
        diags.error(
            &loc,
            "template-source",
            "the SQL reads the caller (`auth.*`), but this endpoint can be called without authentication",
            Some("turn authentication on for it (`auth.enabled: true`, and `mcp.auth` for tools) or drop the `auth.*` sites".into()),
        );
    }
}

fn first_line(text: &str) -> String {
    text.lines().last().unwrap_or(text).trim().to_string()
}

fn positive(value: &Option<Sp<i64>>, path: &str, default: u64, diags: &mut Diagnostics) -> u64 {
    match value {
        None => default,
        Some(v) if v.value > 0 => v.value as u64,
        Some(v) => {
            diags.error(
                &v.loc,
                path,
                format!("must be a positive integer, found {}", v.value),
                None,
            );
            default
        }
    }
}

fn resolve_duckdb(dir: &Path, raw: &RawProject, diags: &mut Diagnostics) -> DuckdbSettings {
    let d = &raw.duckdb;
    let read_only = match &d.access_mode {
        None => false,
        Some(mode) => match mode.value.to_ascii_uppercase().as_str() {
            "READ_ONLY" => true,
            "READ_WRITE" | "AUTOMATIC" => false,
            _ => {
                diags.error(
                    &mode.loc,
                    "duckdb.access_mode",
                    format!("unknown access mode `{}`", mode.value),
                    Some("use READ_ONLY or READ_WRITE".into()),
                );
                false
            }
        },
    };
    let small =
        |v: &Option<Sp<i64>>, path: &str, max: i64, diags: &mut Diagnostics| -> Option<u32> {
            v.as_ref().and_then(|v| {
                if (1..=max).contains(&v.value) {
                    Some(v.value as u32)
                } else {
                    diags.error(
                        &v.loc,
                        path,
                        format!("{} is out of range", v.value),
                        Some(format!("use 1 to {max}")),
                    );
                    None
                }
            })
        };
    let threads = small(&d.threads, "duckdb.threads", 1024, diags);
    let pool_size = small(&d.pool_size, "duckdb.pool-size", 256, diags);
    let query_timeout_ms = match &d.query_timeout_ms {
        None => 30_000,
        Some(v) if v.value > 0 => v.value as u64,
        Some(v) => {
            diags.error(
                &v.loc,
                "duckdb.query-timeout-ms",
                "the query timeout must be positive",
                None,
            );
            30_000
        }
    };
    let mut allowed_directories = Vec::new();
    for entry in &d.allowed_directories {
        let path = Path::new(&entry.value);
        if path.is_relative() && !dir.join(path).is_dir() {
            diags.error(
                &entry.loc,
                "duckdb.allowed-directories",
                format!("directory `{}` does not exist in the project", entry.value),
                Some("list folders of the project that hold data files".into()),
            );
        }
        allowed_directories.push(entry.value.clone());
    }
    if d.allowed_directories.is_empty() && dir.join("data").is_dir() {
        allowed_directories.push("data".to_string());
    }
    let settings = d
        .settings
        .iter()
        .filter_map(|(name, value)| pass_through_setting(name, value, diags))
        .collect();
    DuckdbSettings {
        settings,
        db_path: d.db_path.as_ref().map(|p| p.value.clone()),
        read_only,
        threads,
        max_memory: d.max_memory.as_ref().map(|m| m.value.clone()),
        allowed_directories,
        query_timeout_ms,
        pool_size,
    }
}

/// DuckDB settings a project may set under `duckdb:` (flAPI passes every
/// key through): they shape results and performance and cannot widen what
/// SQL reaches. Applied when the database opens, before the sandbox.
pub const PASS_THROUGH_SETTINGS: &[&str] = &[
    "default_order",
    "default_null_order",
    "preserve_insertion_order",
    // Not `timezone` or `calendar`: they belong to the ICU extension, and
    // naming one at open makes DuckDB install and load ICU (network, a
    // file written, native code) before the sandbox is applied.
    "default_collation",
    "integer_division",
    "enable_object_cache",
    "checkpoint_threshold",
    "wal_autocheckpoint",
    "immediate_transaction_mode",
    "max_expression_depth",
    "ordered_aggregate_threshold",
    "order_by_non_integer_literal",
    "prefer_range_joins",
    "pivot_limit",
    "scalar_subquery_error_on_multiple_rows",
    "arrow_large_buffer_size",
    "arrow_output_list_view",
    "produce_arrow_string_view",
    "late_materialization_max_rows",
    "disabled_optimizers",
    "dynamic_or_filter_threshold",
    "max_temp_directory_size",
    "errors_as_json",
    "explain_output",
    "default_block_size",
    "storage_compatibility_version",
];

/// Settings flapi sets itself, or that reach files, extensions, the
/// network or secrets: named in the refusal so the reason is clear.
const SANDBOX_SETTINGS: &[&str] = &[
    "enable_external_access",
    "allowed_directories",
    "allowed_paths",
    "lock_configuration",
    "autoinstall_known_extensions",
    "autoload_known_extensions",
    "allow_community_extensions",
    "allow_unsigned_extensions",
    "allow_extensions_metadata_mismatch",
    "extension_directory",
    "custom_extension_repository",
    "autoinstall_extension_repository",
    "temp_directory",
    "secret_directory",
    "allow_persistent_secrets",
    "home_directory",
    "file_search_path",
    "log_query_path",
    "enable_profiling",
    "profile_output",
    "profiling_output",
    "enable_logging",
    "logging_storage",
    "custom_user_agent",
    "enable_http_logging",
    "http_logging_output",
    "access_mode",
];

fn pass_through_setting(
    name: &Sp<String>,
    value: &Sp<String>,
    diags: &mut Diagnostics,
) -> Option<(String, String)> {
    let key = format!("duckdb.{}", name.value);
    let lower = name.value.to_ascii_lowercase();
    if PASS_THROUGH_SETTINGS.contains(&lower.as_str()) {
        return Some((lower, value.value.clone()));
    }
    let (message, help) = if SANDBOX_SETTINGS.contains(&lower.as_str()) {
        (
            format!(
                "DuckDB setting `{}` is set by flapi's sandbox and cannot be changed by a project",
                name.value
            ),
            "remove it; data folders are listed under `duckdb.allowed-directories`".to_string(),
        )
    } else {
        let known = crate::load::DUCKDB_KEYS;
        (
            format!(
                "unknown key `{}`: not a flapi key, nor a DuckDB setting flapi passes through",
                name.value
            ),
            did_you_mean(
                &name.value,
                known
                    .iter()
                    .copied()
                    .chain(PASS_THROUGH_SETTINGS.iter().copied()),
            )
            .unwrap_or_else(|| {
                format!(
                    "flapi keys here: {}; DuckDB settings passed through: {}",
                    known.join(", "),
                    PASS_THROUGH_SETTINGS.join(", ")
                )
            }),
        )
    };
    diags.error(&name.loc, key, message, Some(help));
    None
}

/// `/customers/:id` and `/customers/:key` are the same route.
fn route_shape(url_path: &str) -> String {
    url_path
        .split('/')
        .map(|seg| if seg.starts_with(':') { ":" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

fn relative(dir: &Path, file: &Path) -> String {
    file.strip_prefix(dir).unwrap_or(file).display().to_string()
}

fn endpoint_id(dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap_or(file).with_extension("");
    let mut id: String = rel
        .components()
        .skip(1) // the template folder itself
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect::<Vec<_>>()
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
        id.insert_str(0, "endpoint_");
    }
    id
}

fn resolve_endpoint(
    dir: &Path,
    raw: &RawEndpoint,
    connections: &[Connection],
    env_whitelist: &[Regex],
    auth_claims: Option<&[String]>,
    allowed_functions: &[String],
    diags: &mut Diagnostics,
) -> Option<Endpoint> {
    let source = raw
        .file
        .strip_prefix(dir)
        .unwrap_or(&raw.file)
        .display()
        .to_string();
    if raw.url_path.is_none() && raw.mcp_tool.is_none() && raw.mcp_resource.is_none() {
        diags.error(
            &raw.start,
            "url-path",
            "`url-path` is missing",
            Some(
                "add `url-path: /things/:id`, or `mcp-tool:`/`mcp-resource:` to serve the SQL over MCP only"
                    .into(),
            ),
        );
        return None;
    }
    let mut path_params = Vec::new();
    let mut route = None;
    if let Some(url) = &raw.url_path {
        let url_path = &url.value;
        let mut route_ok = url_path.starts_with('/');
        let axum_route: String = url_path
            .split('/')
            .map(|seg| {
                if let Some(param) = seg.strip_prefix(':') {
                    if param.is_empty()
                        || !param.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        route_ok = false;
                    }
                    path_params.push(param.to_string());
                    format!("{{{param}}}")
                } else {
                    if seg.contains(['{', '}', '*', '?', '#', ' ']) {
                        route_ok = false;
                    }
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        if !route_ok {
            diags.error(
                &url.loc,
                "url-path",
                format!("`{url_path}` is not a valid route"),
                Some(
                    "start with `/`; use `:name` for path parameters and plain segments otherwise"
                        .into(),
                ),
            );
        }
        route = Some(axum_route);
    }
    let url_path = raw.url_path.as_ref().map(|u| u.value.clone());
    let url_loc = raw
        .url_path
        .as_ref()
        .map(|u| u.loc.clone())
        .unwrap_or_else(|| raw.start.clone());

    let method = match &raw.method {
        None => "GET".to_string(),
        Some(m) => {
            let upper = m.value.to_ascii_uppercase();
            if upper != "GET" {
                diags.error(
                    &m.loc,
                    "method",
                    format!("method `{}` is not supported yet; this version serves read endpoints (GET)", m.value),
                    Some("use `method: GET`".into()),
                );
            }
            upper
        }
    };
    // flAPI's `operation: {type: Read}` says what every endpoint here is.
    if let Some(kind) = &raw.operation
        && !kind.value.eq_ignore_ascii_case("read")
    {
        diags.error(
            &kind.loc,
            "operation.type",
            format!(
                "operation type `{}` is not supported yet; this version serves read endpoints",
                kind.value
            ),
            Some("write `type: Read`, or remove the `operation` block".into()),
        );
    }

    let connection = match raw.connection.as_slice() {
        [] => None,
        [one] => {
            if connections.iter().any(|c| c.name == one.value) {
                Some(one.value.clone())
            } else {
                let help = did_you_mean(&one.value, connections.iter().map(|c| c.name.as_str()))
                    .or_else(|| Some("declare it under `connections` in flapi.yaml".into()));
                diags.error(
                    &one.loc,
                    "connection",
                    format!("unknown connection `{}`", one.value),
                    help,
                );
                None
            }
        }
        [_, second, ..] => {
            diags.error(
                &second.loc,
                "connection",
                "an endpoint uses at most one connection",
                None,
            );
            None
        }
    };
    let conn_properties = connection
        .as_ref()
        .and_then(|name| connections.iter().find(|c| &c.name == name))
        .map(|c| c.properties.clone())
        .unwrap_or_default();

    let paginate = raw
        .with_pagination
        .as_ref()
        .map(|b| b.value)
        .unwrap_or(true);
    let mut fields: Vec<Field> = Vec::new();
    let mut page_bounds = PageBounds::default();
    for raw_field in &raw.request {
        if paginate && page_field(raw_field, &mut page_bounds, diags) {
            continue;
        }
        if let Some(field) = resolve_field(raw_field, paginate, diags) {
            if fields.iter().any(|f| f.name == field.name) {
                diags.error(
                    &raw_field.loc,
                    raw_field.path.as_str(),
                    format!("request field `{}` is declared twice", field.name),
                    None,
                );
                continue;
            }
            if fields.iter().any(|f| f.rust_name == field.rust_name) {
                diags.error(
                    &raw_field.loc,
                    raw_field.path.as_str(),
                    format!(
                        "request field `{}` maps to the same Rust name as another field",
                        field.name
                    ),
                    Some("rename one of the fields".into()),
                );
                continue;
            }
            fields.push(field);
        }
    }
    for param in &path_params {
        match fields.iter().find(|f| &f.name == param) {
            Some(f) if f.field_in == FieldIn::Path => {}
            Some(_) => diags.error(
                &url_loc,
                "url-path",
                format!("path parameter `:{param}` is declared with another `field-in`"),
                Some("set `field-in: path` on that field".into()),
            ),
            None => diags.error(
                &url_loc,
                "url-path",
                format!("path parameter `:{param}` has no request field"),
                Some(format!(
                    "declare it: `- field-name: {param}` with `field-in: path`"
                )),
            ),
        }
    }
    for (f, raw_field) in fields.iter_mut().zip(&raw.request) {
        if f.field_in == FieldIn::Path {
            if !path_params.contains(&f.name) {
                diags.error(
                    &raw_field.loc,
                    raw_field.path.as_str(),
                    match &url_path {
                        Some(url_path) => format!(
                            "path field `{}` does not appear in url-path `{url_path}`",
                            f.name
                        ),
                        None => format!(
                            "path field `{}` needs a `url-path`; this endpoint has none",
                            f.name
                        ),
                    },
                    Some(format!(
                        "add `:{}` to the url-path or change `field-in`",
                        f.name
                    )),
                );
            }
            f.required = true;
        }
    }

    let sql_validation = match &raw.sql_validation {
        None => SqlValidation::Build,
        Some(v) => match v.value.as_str() {
            "build" => SqlValidation::Build,
            "startup" => SqlValidation::Startup,
            other => {
                diags.error(
                    &v.loc,
                    "sql-validation",
                    format!("unknown value `{other}`"),
                    Some("use `build` (default) or `startup`".into()),
                );
                SqlValidation::Build
            }
        },
    };

    let Some(template_source) = &raw.template_source else {
        diags.error(
            &raw.start,
            "template-source",
            "`template-source` is missing",
            Some("name the SQL template file, e.g. `template-source: customers.sql`".into()),
        );
        return None;
    };
    let base = raw.file.parent().unwrap_or(dir);
    let sql_path =
        crate::load::paths::inside(dir, base, template_source, "template-source", diags)?;
    let sql = match std::fs::read_to_string(&sql_path) {
        Ok(sql) => sql,
        Err(_) => {
            let siblings: Vec<String> = std::fs::read_dir(base)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().to_string())
                        .filter(|n| n.ends_with(".sql"))
                        .collect()
                })
                .unwrap_or_default();
            let help = did_you_mean(&template_source.value, siblings.iter().map(String::as_str))
                .or_else(|| Some("the path is relative to the endpoint's YAML file".into()));
            diags.error(
                &template_source.loc,
                "template-source",
                format!("template file `{}` does not exist", template_source.value),
                help,
            );
            return None;
        }
    };
    let map = SourceMap {
        start: Location::new(&sql_path, 1, 1),
        src: &sql,
    };
    crate::check::secrets::scan_template(&map.start, &sql, diags);
    let parts = mustache::parse(&map, diags);
    let template = compile::compile(
        &TemplateInput {
            map: &map,
            parts: &parts,
            fields: &fields,
            connection: connection.as_deref(),
            conn_properties: &conn_properties,
            env_whitelist,
            check_sql: sql_validation == SqlValidation::Build,
            paginate,
            auth_claims,
            allowed_functions,
            masked: raw
                .response
                .iter()
                .chain(raw.mcp_tool.iter().filter_map(|t| t.response.as_ref()))
                .any(|r| !r.redact_columns.is_empty()),
        },
        diags,
    );

    Some(Endpoint {
        id: endpoint_id(dir, &raw.file),
        source,
        template_source: sql_path
            .strip_prefix(dir)
            .unwrap_or(&sql_path)
            .display()
            .to_string(),
        description: raw.description.as_ref().map(|d| d.value.clone()),
        method,
        url_path,
        route,
        tool: None,
        resource: None,
        rest_access: Access::Public,
        mcp_access: Access::Public,
        resource_access: Access::Public,
        fields,
        connection,
        paginate,
        page_bounds,
        strict_fields: raw
            .request_fields_validation
            .as_ref()
            .map(|b| b.value)
            .unwrap_or(false),
        sql_validation,
        template,
        shaping: Default::default(),
        shadow: false,
        rate_limit: None,
        tool_rate_limit: None,
        query_timeout_ms: None,
        heartbeat: None,
    })
}

/// An endpoint's `heartbeat: {enabled, params}`: the arguments the worker
/// calls it with. Each parameter must be a field of the endpoint.
fn resolve_heartbeat(
    raw: &RawEndpoint,
    endpoint: &Endpoint,
    worker: Option<u64>,
    diags: &mut Diagnostics,
) -> Option<Vec<(String, String)>> {
    let h = raw.heartbeat.as_ref()?;
    if !h.enabled.as_ref().is_some_and(|e| e.value) {
        return None;
    }
    let mut params = Vec::new();
    for (name, value) in &h.params {
        if endpoint.fields.iter().any(|f| f.name == name.value) {
            params.push((name.value.clone(), value.value.clone()));
        } else {
            diags.error(
                &name.loc,
                format!("heartbeat.params.{}", name.value),
                format!("`{}` is not a request field of this endpoint", name.value),
                did_you_mean(&name.value, endpoint.fields.iter().map(|f| f.name.as_str())),
            );
        }
    }
    if worker.is_none() {
        diags.warning(
            &h.loc,
            "heartbeat",
            "this endpoint's heartbeat never runs: the heartbeat worker is off",
            Some("set `heartbeat: {enabled: true}` in flapi.yaml".into()),
        );
    }
    Some(params)
}

pub fn rust_field_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "f_");
    }
    if syn::parse_str::<syn::Ident>(&out).is_err() {
        out.push('_');
    }
    out
}

/// flAPI declares a paginated endpoint's `limit` and `offset` as request
/// fields; here they are the page window's parameters (not SQL values),
/// and an int validator's `min`/`max` bound them. `true` when `raw` is one.
fn page_field(raw: &RawField, bounds: &mut PageBounds, diags: &mut Diagnostics) -> bool {
    let Some(name) = &raw.field_name else {
        return false;
    };
    let is_limit = match name.value.as_str() {
        "limit" => true,
        "offset" => false,
        _ => return false,
    };
    if raw
        .field_in
        .as_ref()
        .is_some_and(|f| !f.value.eq_ignore_ascii_case("query"))
    {
        return false;
    }
    let bound = |v: &Option<Sp<String>>, key: &str, diags: &mut Diagnostics| {
        v.as_ref()
            .and_then(|v| match v.value.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    diags.error(
                        &v.loc,
                        format!("{}.{key}", raw.path),
                        format!(
                            "`{}` bounds a page window: it must be a non-negative integer",
                            v.value
                        ),
                        None,
                    );
                    None
                }
            })
    };
    for v in &raw.validators {
        match v.kind.as_ref().map(|k| k.value.as_str()) {
            Some("int") | Some("integer") | None => {}
            Some(other) => {
                diags.error(
                    v.kind.as_ref().map(|k| &k.loc).unwrap_or(&v.loc),
                    format!("{}.type", v.path),
                    format!("`{}` is the page window's {}: its validator must be `type: int`, not `{other}`", name.value, if is_limit { "size" } else { "start" }),
                    None,
                );
                continue;
            }
        }
        let (min, max) = (bound(&v.min, "min", diags), bound(&v.max, "max", diags));
        if is_limit {
            bounds.limit_min = min.or(bounds.limit_min);
            bounds.limit_max = max.or(bounds.limit_max);
        } else {
            bounds.offset_min = min.or(bounds.offset_min);
            bounds.offset_max = max.or(bounds.offset_max);
        }
    }
    true
}

fn resolve_field(raw: &RawField, paginate: bool, diags: &mut Diagnostics) -> Option<Field> {
    let Some(name) = &raw.field_name else {
        diags.error(&raw.loc, raw.path.as_str(), "`field-name` is missing", None);
        return None;
    };
    let key = |k: &str| format!("{}.{k}", raw.path);
    let field_in = match raw.field_in.as_ref().map(|f| f.value.as_str()) {
        None | Some("query") => FieldIn::Query,
        Some("path") => FieldIn::Path,
        Some("header") => FieldIn::Header,
        Some("body") => FieldIn::Body,
        Some(other) => {
            let loc = &raw.field_in.as_ref()?.loc;
            diags.error(
                loc,
                key("field-in"),
                format!("unknown field location `{other}`"),
                did_you_mean(other, ["query", "path", "header", "body"])
                    .or_else(|| Some("use query, path, header or body".into())),
            );
            FieldIn::Query
        }
    };
    if field_in == FieldIn::Query
        && (name.value == "format"
            || (paginate && RESERVED_QUERY_FIELDS.contains(&name.value.as_str())))
    {
        diags.error(
            &name.loc,
            key("field-name"),
            format!("`{}` is reserved by the server on this endpoint", name.value),
            Some("rename the field, or set `with-pagination: false` to use `limit`/`offset` yourself".into()),
        );
    }
    let lower = name.value.to_ascii_lowercase();
    if lower == "auth" || lower.starts_with("auth.") {
        diags.error(
            &name.loc,
            key("field-name"),
            format!("`{}` is reserved for the verified caller", name.value),
            Some("rename the field; the caller is available as `auth.*` in templates".into()),
        );
    }
    if name.value.starts_with('_') {
        diags.error(
            &name.loc,
            key("field-name"),
            format!(
                "field names starting with `_` are reserved (`{}`)",
                name.value
            ),
            None,
        );
    }
    let ty = resolve_type(raw, diags);
    let mut required = raw.required.as_ref().map(|r| r.value).unwrap_or(false);
    let default = raw.default.as_ref().and_then(|d| {
        if let Err(reason) = values::check_value(&ty, &d.value) {
            diags.error(
                &d.loc,
                key("default"),
                format!(
                    "default `{}` is not valid for this field: {reason}",
                    d.value
                ),
                None,
            );
            return None;
        }
        Some(d.value.clone())
    });
    if required && default.is_some() {
        if let Some(r) = &raw.required {
            diags.warning(
                &r.loc,
                key("required"),
                "a required field with a default: the default is used when the field is absent",
                Some("remove `required` or the `default`".into()),
            );
        }
        required = false;
    }
    Some(Field {
        rust_name: rust_field_name(&name.value),
        name: name.value.clone(),
        field_in,
        required,
        default,
        ty,
        description: raw.description.as_ref().map(|d| d.value.clone()),
        sensitive: raw.sensitive.as_ref().is_some_and(|s| s.value),
    })
}

const TYPES: &[&str] = &[
    "int",
    "integer",
    "double",
    "number",
    "float",
    "boolean",
    "bool",
    "string",
    "enum",
    "date",
    "time",
    "timestamp",
    "uuid",
    "email",
];

fn resolve_type(raw: &RawField, diags: &mut Diagnostics) -> FieldType {
    let mut ty: Option<(FieldType, &RawValidator)> = None;
    for v in &raw.validators {
        let Some(kind) = &v.kind else {
            diags.error(
                &v.loc,
                v.path.as_str(),
                "validator has no `type`",
                Some(format!("one of: {}", TYPES.join(", "))),
            );
            continue;
        };
        let Some(this) = validator_type(v, kind, diags) else {
            continue;
        };
        match &ty {
            Some((existing, _)) if existing.name() != this.name() => diags.error(
                &kind.loc,
                format!("{}.type", v.path),
                format!(
                    "validator type `{}` conflicts with `{}` on the same field",
                    this.name(),
                    existing.name()
                ),
                Some("a field has one type; keep one validator".into()),
            ),
            Some(_) => diags.error(
                &kind.loc,
                format!("{}.type", v.path),
                format!("a second `{}` validator on the same field", this.name()),
                Some("merge the two into one".into()),
            ),
            None => ty = Some((this, v)),
        }
    }
    ty.map(|(t, _)| t).unwrap_or(FieldType::String {
        pattern: None,
        min_length: None,
        max_length: None,
    })
}

/// Numeric `min`/`max` (already checked against the type) in order; a
/// minimum above the maximum is reported through `report`.
fn ordered_bounds<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    min: Option<String>,
    max: Option<String>,
    report: &mut dyn FnMut(String),
) -> (Option<T>, Option<T>) {
    let min = min.and_then(|s| s.parse().ok());
    let max = max.and_then(|s| s.parse().ok());
    if let (Some(lo), Some(hi)) = (&min, &max)
        && lo > hi
    {
        report(format!(
            "invalid validator bounds: min {lo} is greater than max {hi}"
        ));
    }
    (min, max)
}

fn validator_type(
    v: &RawValidator,
    kind: &Sp<String>,
    diags: &mut Diagnostics,
) -> Option<FieldType> {
    let key = |k: &str| format!("{}.{k}", v.path);
    let not_for = |present: bool, loc: Option<&Location>, name: &str, diags: &mut Diagnostics| {
        if present && let Some(loc) = loc {
            diags.error(
                loc,
                key(name),
                format!("`{name}` does not apply to a `{}` validator", kind.value),
                None,
            );
        }
    };
    let bound_error = |diags: &mut Diagnostics, msg: String| {
        diags.error(
            &v.min
                .as_ref()
                .map(|m| m.loc.clone())
                .unwrap_or_else(|| v.loc.clone()),
            key("min"),
            msg,
            Some("make `min` less than or equal to `max`".into()),
        );
    };
    let t = kind.value.to_ascii_lowercase();
    let numeric_or_temporal = matches!(
        t.as_str(),
        "int" | "integer" | "double" | "number" | "float" | "date" | "time" | "timestamp"
    );
    let is_string = t == "string";
    not_for(
        !numeric_or_temporal && !is_string && v.min.is_some(),
        v.min.as_ref().map(|m| &m.loc),
        "min",
        diags,
    );
    not_for(
        !numeric_or_temporal && !is_string && v.max.is_some(),
        v.max.as_ref().map(|m| &m.loc),
        "max",
        diags,
    );
    not_for(
        !is_string && v.regex.is_some(),
        v.regex.as_ref().map(|m| &m.loc),
        "regex",
        diags,
    );
    not_for(
        !is_string && v.min_length.is_some(),
        v.min_length.as_ref().map(|m| &m.loc),
        "minLength",
        diags,
    );
    not_for(
        !is_string && v.max_length.is_some(),
        v.max_length.as_ref().map(|m| &m.loc),
        "maxLength",
        diags,
    );
    not_for(
        t != "enum" && !v.allowed_values.is_empty(),
        v.allowed_values.first().map(|m| &m.loc),
        "allowedValues",
        diags,
    );

    let parse_bound = |b: &Option<Sp<String>>,
                       name: &str,
                       ty: &FieldType,
                       diags: &mut Diagnostics|
     -> Option<String> {
        let b = b.as_ref()?;
        match values::check_value(ty, &b.value) {
            Ok(()) => Some(b.value.clone()),
            Err(reason) => {
                diags.error(
                    &b.loc,
                    key(name),
                    format!("invalid bound `{}`: {reason}", b.value),
                    None,
                );
                None
            }
        }
    };
    Some(match t.as_str() {
        "int" | "integer" => {
            let unbounded = FieldType::Int {
                min: None,
                max: None,
            };
            let (min, max) = ordered_bounds(
                parse_bound(&v.min, "min", &unbounded, diags),
                parse_bound(&v.max, "max", &unbounded, diags),
                &mut |message| bound_error(diags, message),
            );
            FieldType::Int { min, max }
        }
        "double" | "number" | "float" => {
            let unbounded = FieldType::Double {
                min: None,
                max: None,
            };
            let (min, max) = ordered_bounds(
                parse_bound(&v.min, "min", &unbounded, diags),
                parse_bound(&v.max, "max", &unbounded, diags),
                &mut |message| bound_error(diags, message),
            );
            FieldType::Double { min, max }
        }
        "boolean" | "bool" => FieldType::Bool,
        "string" => {
            let pattern =
                v.regex
                    .as_ref()
                    .and_then(|r| match Regex::new(&format!("^(?:{})$", r.value)) {
                        Ok(_) => Some(r.value.clone()),
                        Err(e) => {
                            diags.error(
                                &r.loc,
                                key("regex"),
                                format!(
                                    "invalid regular expression: {}",
                                    first_line(&e.to_string())
                                ),
                                None,
                            );
                            None
                        }
                    });
            // flAPI writes string length bounds as `min`/`max` too.
            let as_len =
                |s: &Option<Sp<String>>, name: &str, diags: &mut Diagnostics| -> Option<u64> {
                    let s = s.as_ref()?;
                    match s.value.parse::<u64>() {
                        Ok(n) => Some(n),
                        Err(_) => {
                            diags.error(
                            &s.loc,
                            key(name),
                            format!(
                                "a string length bound must be a non-negative integer, found `{}`",
                                s.value
                            ),
                            None,
                        );
                            None
                        }
                    }
                };
            let neg = |n: &Option<Sp<i64>>, name: &str, diags: &mut Diagnostics| -> Option<u64> {
                let n = n.as_ref()?;
                if n.value < 0 {
                    diags.error(&n.loc, key(name), "a length cannot be negative", None);
                    None
                } else {
                    Some(n.value as u64)
                }
            };
            let min_length =
                neg(&v.min_length, "minLength", diags).or(as_len(&v.min, "min", diags));
            let max_length =
                neg(&v.max_length, "maxLength", diags).or(as_len(&v.max, "max", diags));
            if let (Some(lo), Some(hi)) = (min_length, max_length)
                && lo > hi
            {
                bound_error(
                    diags,
                    format!(
                        "invalid validator bounds: minimum length {lo} is greater than maximum length {hi}"
                    ),
                );
            }
            FieldType::String {
                pattern,
                min_length,
                max_length,
            }
        }
        "enum" => {
            if v.allowed_values.is_empty() {
                diags.error(
                    &kind.loc,
                    key("allowedValues"),
                    "an enum validator needs `allowedValues`",
                    Some("list the allowed values".into()),
                );
            }
            let mut values: Vec<String> = Vec::new();
            for value in &v.allowed_values {
                if values.contains(&value.value) {
                    diags.error(
                        &value.loc,
                        key("allowedValues"),
                        format!("`{}` is listed twice", value.value),
                        None,
                    );
                } else {
                    values.push(value.value.clone());
                }
            }
            FieldType::Enum { values }
        }
        "date" | "time" | "timestamp" => {
            let unbounded = match t.as_str() {
                "date" => FieldType::Date {
                    min: None,
                    max: None,
                },
                "time" => FieldType::Time {
                    min: None,
                    max: None,
                },
                _ => FieldType::Timestamp {
                    min: None,
                    max: None,
                },
            };
            let min = parse_bound(&v.min, "min", &unbounded, diags);
            let max = parse_bound(&v.max, "max", &unbounded, diags);
            if let (Some(lo), Some(hi)) = (&min, &max)
                && values::temporal_key(lo) > values::temporal_key(hi)
            {
                bound_error(
                    diags,
                    format!("invalid validator bounds: min {lo} is after max {hi}"),
                );
            }
            match t.as_str() {
                "date" => FieldType::Date { min, max },
                "time" => FieldType::Time { min, max },
                _ => FieldType::Timestamp { min, max },
            }
        }
        "uuid" => FieldType::Uuid,
        "email" => FieldType::Email,
        other => {
            diags.error(
                &kind.loc,
                key("type"),
                format!("unknown validator type `{other}`"),
                did_you_mean(other, TYPES.iter().copied())
                    .or_else(|| Some(format!("one of: {}", TYPES.join(", ")))),
            );
            return None;
        }
    })
}
