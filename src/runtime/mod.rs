//! The only surface generated code may use. Changing anything public here
//! is an API change for every compiled project: keep it small.
//!
//! Generated code describes a project as static data ([`ProjectDef`]) and
//! provides, per endpoint, a function that validates a request into typed
//! arguments and picks a precompiled SQL text with its binds ([`Plan`]).

pub mod args;

use std::borrow::Cow;
use std::sync::OnceLock;

pub use chrono::{NaiveDate as Date, NaiveDateTime as Timestamp, NaiveTime as Time};
pub use uuid::Uuid;

/// A compiled project: settings, connections and routes.
#[derive(Debug)]
pub struct ProjectDef {
    pub name: &'static str,
    pub description: Option<&'static str>,
    /// Hash of the project's source files, shown by `flapi --version`.
    pub source_hash: &'static str,
    /// The project folder at build time; the default base for data paths.
    pub base_dir: &'static str,
    /// flAPI's heartbeat worker: seconds between rounds, when enabled.
    pub heartbeat_seconds: Option<u64>,
    pub connections: &'static [ConnectionDef],
    pub duckdb: DuckdbDef,
    pub http_host: Option<&'static str>,
    pub http_port: Option<u16>,
    pub default_limit: u64,
    pub max_limit: u64,
    /// Environment variables templates bind (`{{ env.NAME }}`), read at
    /// start-up; a missing one stops the server from starting.
    pub env_vars: &'static [&'static str],
    /// `template.allowed-functions`: functions beyond flapi's allowlist.
    pub allowed_functions: &'static [&'static str],
    pub endpoints: &'static [EndpointDef],
    pub mcp: McpDef,
    pub prompts: &'static [PromptDef],
    pub auth: AuthDef,
    pub policy: PolicyDef,
    /// CORS, TLS files, request limits (SPEC §12).
    pub edge: EdgeDef,
    pub openapi_json: &'static str,
}

/// Audit, dry run (SPEC §8, §9).
#[derive(Debug)]
pub struct PolicyDef {
    pub audit: Option<AuditDef>,
    /// Roles that may use `_dryRun`.
    pub dry_run_roles: RoleMask,
    /// Anyone may dry-run (authentication is off).
    pub dry_run_public: bool,
}

#[derive(Debug)]
pub enum AuditSinkDef {
    /// Relative paths resolve against the project folder.
    File(&'static str),
    Stdout,
}

/// The network edge of flapi.yaml: `cors`, `enforce-https`, `limits`.
#[derive(Debug)]
pub struct EdgeDef {
    /// `None`: no cross-origin access at all.
    pub cors: Option<CorsDef>,
    /// Certificate and key paths (relative to the project folder), read
    /// at start-up; `--tls-cert`/`--tls-key` override them.
    pub tls: Option<(&'static str, &'static str)>,
    /// `Host` names every route answers besides IP literals (lower case;
    /// `name:port` pins the port): loopback names, `http-host`,
    /// `allowed-hosts` and `mcp.allowed-hosts`.
    pub allowed_hosts: &'static [&'static str],
    /// Where the HTTP-to-HTTPS redirect sends clients.
    pub public_host: &'static str,
    pub max_body_bytes: u64,
    pub max_header_bytes: u64,
    pub request_timeout_ms: u64,
    /// Queries running or waiting at once; 0: 64 per pooled connection.
    pub max_concurrent_queries: u64,
}

/// `cors:` of flapi.yaml: exact origins (lower case), or any (`*`, never
/// with credentials).
#[derive(Debug)]
pub struct CorsDef {
    pub origins: &'static [&'static str],
    pub any_origin: bool,
    pub methods: &'static [&'static str],
    pub headers: &'static [&'static str],
    pub credentials: bool,
    pub max_age_seconds: u64,
}

/// Who shares a rate-limit bucket (flAPI's `rate-limit.key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKeyDef {
    /// The client address, authenticated or not.
    Ip,
    /// The verified principal; all anonymous callers share one bucket.
    User,
    /// The verified principal, or the address of an anonymous caller.
    UserOrIp,
}

/// `max` calls per `interval_secs` (GCRA: a burst of `max`, refilled
/// evenly over the interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitDef {
    pub max: u32,
    pub interval_secs: u32,
    pub key: RateKeyDef,
}

/// `audit:` of flapi.yaml.
#[derive(Debug)]
pub struct AuditDef {
    pub sink: AuditSinkDef,
    pub fsync_always: bool,
    pub fsync_interval_ms: u64,
    /// Rotate above this size; 0: never.
    pub max_file_bytes: u64,
    /// Rotated files kept (the oldest are deleted); 0: all.
    pub max_files: u32,
    /// Serve when a record cannot be written (default: refuse with 503).
    pub fail_open: bool,
    /// Argument names redacted besides the built-in secret names.
    pub redact_arguments: &'static [&'static str],
}

/// `response:` of an endpoint: applies to REST and MCP alike.
#[derive(Debug)]
pub struct ShapingDef {
    pub max_rows: Option<u64>,
    pub redact: &'static [RedactDef],
    /// Row count, column names and types, and no rows.
    pub sample: bool,
}

#[derive(Debug)]
pub struct RedactDef {
    /// Output column, compared case-insensitively.
    pub column: &'static str,
    /// Roles that see the value.
    pub unmask: RoleMask,
}

/// A set of roles of roles.yaml, one bit per role.
pub type RoleMask = u64;

/// Who may use a route, tool, resource or prompt: a static allow table
/// entry compiled from `allowed-roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Authentication is off for the item.
    Public,
    /// A verified caller holding one of these roles (with inherited roles);
    /// `Roles(0)` is denied to everyone.
    Roles(RoleMask),
}

impl Access {
    /// Whether a caller with `granted` roles passes.
    pub fn allows(self, granted: Option<RoleMask>) -> bool {
        match self {
            Access::Public => true,
            Access::Roles(mask) => granted.is_some_and(|g| g & mask != 0),
        }
    }
}

#[derive(Debug)]
pub struct RoleDef {
    pub name: &'static str,
    pub description: Option<&'static str>,
    pub bit: RoleMask,
    /// The bit and those of every inherited role.
    pub grants: RoleMask,
}

/// A static user's stored password.
#[derive(Debug)]
pub enum PasswordDef {
    /// An argon2id PHC string (cost bounds checked at build time).
    Argon2(&'static str),
    /// flAPI's `$pbkdf2-sha256$<iterations>$<salt>$<hash>`.
    Pbkdf2(&'static str),
    /// An environment variable read at start-up: a hash, or (discouraged)
    /// a plain password that is hashed in memory.
    Env(&'static str),
}

#[derive(Debug)]
pub struct UserDef {
    pub username: &'static str,
    pub password: PasswordDef,
    pub roles: RoleMask,
}

#[derive(Debug)]
pub enum KeyDef {
    /// A PEM public key embedded at build time.
    Pem(&'static str),
    /// An environment variable holding a PEM public key.
    Env(&'static str),
}

#[derive(Debug)]
pub struct JwtKeyDef {
    pub kid: Option<&'static str>,
    pub alg: &'static str,
    pub source: KeyDef,
}

/// Bearer-token settings; algorithms come from here, never from a token.
#[derive(Debug)]
pub struct JwtDef {
    pub secret_env: Option<&'static str>,
    pub keys: &'static [JwtKeyDef],
    pub oidc_issuer: Option<&'static str>,
    pub jwks_url: Option<&'static str>,
    pub issuer: Option<&'static str>,
    pub audiences: &'static [&'static str],
    pub algorithms: &'static [&'static str],
    pub leeway_seconds: u64,
    pub subject_claim: &'static str,
    pub email_claim: &'static str,
    pub roles_claim: &'static str,
    pub groups_claim: &'static str,
    pub group_roles: &'static [(&'static str, RoleMask)],
    pub context_claims: &'static [&'static str],
    pub jwks_cache_seconds: u64,
    pub jwks_min_refresh_seconds: u64,
}

/// Identity settings of a project.
#[derive(Debug)]
pub struct AuthDef {
    /// REST routes require a caller unless an endpoint opts out.
    pub rest: bool,
    /// Every MCP request requires a caller.
    pub mcp: bool,
    pub realm: &'static str,
    pub roles: &'static [RoleDef],
    pub users: &'static [UserDef],
    pub jwt: Option<JwtDef>,
    /// How long a verified Basic credential is remembered.
    pub cache_seconds: u64,
}

/// A value of the verified caller a template reads (`{{ auth.sub }}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKey {
    Subject,
    Email,
    Roles,
    Kind,
    Claim(&'static str),
}

/// Request parameters a client may never send: they name the caller.
pub fn is_reserved_parameter(name: &str) -> bool {
    // flAPI's `__auth_*` parameters, `auth`, `auth.*`: never fields (the
    // build rejects field names with a leading `_`, `auth` and `auth.*`).
    let lower = name.to_ascii_lowercase();
    let trimmed = lower.trim_start_matches('_');
    trimmed == "auth"
        || trimmed.starts_with("auth.")
        || (lower.starts_with('_') && trimmed.starts_with("auth"))
}

/// `mcp:` of flapi.yaml.
#[derive(Debug)]
pub struct McpDef {
    /// Sent to clients in the `initialize` result.
    pub instructions: Option<&'static str>,
    /// Browser origins allowed to call MCP; with none, any request that
    /// carries an `Origin` header is refused.
    pub allowed_origins: &'static [&'static str],
    /// Row cap of one result of a tool that does not paginate.
    pub max_rows: u64,
}

/// An endpoint exposed as an MCP tool.
#[derive(Debug)]
pub struct ToolDef {
    pub name: &'static str,
    pub title: Option<&'static str>,
    pub description: &'static str,
    /// JSON Schema of the arguments, generated from the request fields.
    pub input_schema: &'static str,
}

/// An endpoint exposed as the MCP resource `flapi://<name>`.
#[derive(Debug)]
pub struct ResourceDef {
    pub name: &'static str,
    pub description: Option<&'static str>,
    pub mime_type: &'static str,
}

/// An MCP prompt: a text template with named arguments.
#[derive(Debug)]
pub struct PromptDef {
    pub name: &'static str,
    pub description: Option<&'static str>,
    pub source: &'static str,
    pub arguments: &'static [PromptArgDef],
    pub template: &'static [PromptPart],
    pub access: Access,
}

#[derive(Debug)]
pub struct PromptArgDef {
    pub name: &'static str,
    pub description: Option<&'static str>,
    pub required: bool,
    pub allowed_values: &'static [&'static str],
}

/// A piece of a compiled prompt template; `usize` indexes the arguments.
#[derive(Debug)]
pub enum PromptPart {
    Text(&'static str),
    Arg(usize),
    /// `{{#x}}…{{/x}}` (or `{{^x}}` when inverted): shown when the
    /// argument is given and not empty/`false`.
    Section {
        arg: usize,
        inverted: bool,
        parts: &'static [PromptPart],
    },
}

impl PromptDef {
    /// Renders the template with argument values (already checked). The
    /// result is text for a model; nothing here reaches SQL.
    pub fn render(&self, values: &[Option<&str>]) -> String {
        let mut out = String::new();
        render_parts(self.template, values, &mut out);
        out
    }
}

fn render_parts(parts: &[PromptPart], values: &[Option<&str>], out: &mut String) {
    for part in parts {
        match part {
            PromptPart::Text(text) => out.push_str(text),
            PromptPart::Arg(i) => out.push_str(values.get(*i).copied().flatten().unwrap_or("")),
            PromptPart::Section {
                arg,
                inverted,
                parts,
            } => {
                let truthy = values
                    .get(*arg)
                    .copied()
                    .flatten()
                    .is_some_and(|v| !v.is_empty() && v != "false");
                if truthy != *inverted {
                    render_parts(parts, values, out);
                }
            }
        }
    }
}

#[derive(Debug)]
pub struct ConnectionDef {
    pub name: &'static str,
    /// SQL run once at start-up, before the sandbox is locked.
    pub init: Option<&'static str>,
}

#[derive(Debug)]
pub struct DuckdbDef {
    pub db_path: Option<&'static str>,
    pub read_only: bool,
    pub threads: Option<u32>,
    pub max_memory: Option<&'static str>,
    /// Folders (relative to the project folder unless absolute) that SQL
    /// may read once the sandbox is on.
    pub allowed_directories: &'static [&'static str],
    pub query_timeout_ms: u64,
    pub pool_size: Option<u32>,
    /// DuckDB settings passed through under `duckdb:` (an allowlist
    /// checked by the build), applied when the database opens.
    pub settings: &'static [(&'static str, &'static str)],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldIn {
    Query,
    Path,
    Header,
    Body,
}

#[derive(Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub location: FieldIn,
    pub required: bool,
    pub type_name: &'static str,
    pub description: Option<&'static str>,
    /// The values of an `enum` field, for `completion/complete`.
    pub allowed_values: &'static [&'static str],
    /// Redacted in the audit log.
    pub sensitive: bool,
}

/// One SQL text of an endpoint; `?` marks every bound value.
#[derive(Debug)]
pub struct SqlTextDef {
    pub sql: &'static str,
    /// `sql` wrapped in `LIMIT ? OFFSET ?` for paginated endpoints.
    pub paged_sql: Option<&'static str>,
    /// `sql` wrapped in `LIMIT ?`: a row cap pushed into the query.
    pub capped_sql: Option<&'static str>,
    pub count_sql: Option<&'static str>,
    /// Values the server binds into `sql` (its `?`), before the LIMIT and
    /// OFFSET values of the wrappers.
    pub binds: usize,
    /// What the build's parser read in `sql`; the server holds DuckDB's
    /// parse to it at start-up. `None` for `sql-validation: startup`.
    pub facts: Option<SqlFactsDef>,
}

/// The build's reading of one SQL text (SPEC §4: DuckDB must agree).
#[derive(Debug)]
pub struct SqlFactsDef {
    /// Functions and table functions, lower case.
    pub functions: &'static [&'static str],
    /// Table names (last part), lower case.
    pub tables: &'static [&'static str],
}

pub type PlanFn = fn(&RequestInput) -> Result<Plan, FieldErrors>;

#[derive(Debug)]
pub struct EndpointDef {
    pub id: &'static str,
    pub method: &'static str,
    /// flAPI form, `/customers/:id`; `None` when served over MCP only.
    pub url_path: Option<&'static str>,
    /// axum form, `/customers/{id}`.
    pub route: Option<&'static str>,
    pub tool: Option<ToolDef>,
    pub resource: Option<ResourceDef>,
    /// Who may call the REST route.
    pub rest_access: Access,
    /// Who may call the tool (or read the resource, without a tool).
    pub mcp_access: Access,
    /// Who may read the resource: its own `allowed-roles`, also when the
    /// endpoint has a tool with other ones.
    pub resource_access: Access,
    pub source: &'static str,
    pub template_source: &'static str,
    pub description: Option<&'static str>,
    pub connection: Option<&'static str>,
    pub paginate: bool,
    /// flAPI's `request-fields-validation`: unknown query fields are a 400.
    pub strict_fields: bool,
    /// The `sql-validation: startup` opt-out: DuckDB checks the texts when
    /// the server starts.
    pub validate_sql_at_startup: bool,
    pub fields: &'static [FieldDef],
    pub texts: &'static [SqlTextDef],
    pub shaping: ShapingDef,
    /// Role checks and shaping are recorded as `would_deny`, not enforced.
    pub shadow: bool,
    /// Per principal (or address) and endpoint, over REST and MCP alike.
    pub rate_limit: Option<RateLimitDef>,
    /// The MCP tool's own `rate-limit`, counted apart from the endpoint's.
    pub tool_rate_limit: Option<RateLimitDef>,
    /// Overrides `duckdb.query_timeout_ms` for this endpoint.
    pub query_timeout_ms: Option<u64>,
    /// flAPI's `log-queries` on the endpoint's connection: the SQL text of
    /// each query is logged (never a bound value).
    pub log_queries: bool,
    /// Bounds of `limit`/`offset` (flAPI's explicit page fields).
    pub page_bounds: PageBoundsDef,
    /// flAPI's `heartbeat`: the arguments the worker calls it with.
    pub heartbeat: Option<&'static [(&'static str, &'static str)]>,
    pub plan: PlanFn,
}

/// Bounds on a paginated endpoint's window, from flAPI's explicit `limit`
/// and `offset` request fields (their int validator's `min`/`max`).
#[derive(Debug, Clone, Copy)]
pub struct PageBoundsDef {
    pub limit_min: u64,
    pub limit_max: Option<u64>,
    pub offset_min: u64,
    pub offset_max: Option<u64>,
}

/// What to run for one request: an index into the endpoint's texts and the
/// values for its `?` placeholders, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub text: usize,
    pub binds: Vec<BindValue>,
}

/// A typed value for one `?`.
#[derive(Debug, Clone, PartialEq)]
pub enum BindValue {
    Null,
    Int(i64),
    Double(f64),
    Bool(bool),
    Text(String),
    Date(Date),
    Time(Time),
    Timestamp(Timestamp),
    /// A whitelisted environment variable, read at start-up.
    Env(&'static str),
    /// A value of the verified caller, filled in before the query runs.
    Auth(AuthKey),
}

pub trait ToBind {
    fn to_bind(&self) -> BindValue;
}

impl ToBind for i64 {
    fn to_bind(&self) -> BindValue {
        BindValue::Int(*self)
    }
}
impl ToBind for f64 {
    fn to_bind(&self) -> BindValue {
        BindValue::Double(*self)
    }
}
impl ToBind for bool {
    fn to_bind(&self) -> BindValue {
        BindValue::Bool(*self)
    }
}
impl ToBind for String {
    fn to_bind(&self) -> BindValue {
        BindValue::Text(self.clone())
    }
}
impl ToBind for Date {
    fn to_bind(&self) -> BindValue {
        BindValue::Date(*self)
    }
}
impl ToBind for Time {
    fn to_bind(&self) -> BindValue {
        BindValue::Time(*self)
    }
}
impl ToBind for Timestamp {
    fn to_bind(&self) -> BindValue {
        BindValue::Timestamp(*self)
    }
}
impl ToBind for Uuid {
    fn to_bind(&self) -> BindValue {
        BindValue::Text(self.hyphenated().to_string())
    }
}
impl<T: ToBind> ToBind for Option<T> {
    fn to_bind(&self) -> BindValue {
        match self {
            Some(value) => value.to_bind(),
            None => BindValue::Null,
        }
    }
}

/// A request's raw fields, as the transport delivered them.
#[derive(Debug, Default, Clone)]
pub struct RequestInput {
    pub path: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One field's raw value.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw<'a> {
    Missing,
    Value(Cow<'a, str>),
    /// Sent more than once (`?a=1&a=2`): ambiguous, rejected.
    Repeated,
    /// A JSON body value that is not a scalar.
    NotScalar,
}

impl RequestInput {
    /// The raw value of a field; `default` stands in when it is absent.
    pub fn raw(&self, location: FieldIn, name: &str, default: Option<&'static str>) -> Raw<'_> {
        let found = match location {
            FieldIn::Path => one(self.path.iter().filter(|(k, _)| k == name)),
            FieldIn::Query => one(self.query.iter().filter(|(k, _)| k == name)),
            FieldIn::Header => one(self
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))),
            FieldIn::Body => match self.body.as_ref().and_then(|b| b.get(name)) {
                None | Some(serde_json::Value::Null) => Raw::Missing,
                Some(serde_json::Value::String(s)) => Raw::Value(Cow::Borrowed(s)),
                Some(serde_json::Value::Number(n)) => Raw::Value(Cow::Owned(n.to_string())),
                Some(serde_json::Value::Bool(b)) => Raw::Value(Cow::Owned(b.to_string())),
                Some(_) => Raw::NotScalar,
            },
        };
        match (found, default) {
            (Raw::Missing, Some(d)) => Raw::Value(Cow::Borrowed(d)),
            (found, _) => found,
        }
    }
}

fn one<'a>(mut values: impl Iterator<Item = &'a (String, String)>) -> Raw<'a> {
    match (values.next(), values.next()) {
        (None, _) => Raw::Missing,
        (Some((_, v)), None) => Raw::Value(Cow::Borrowed(v)),
        (Some(_), Some(_)) => Raw::Repeated,
    }
}

/// A problem with one request field, safe to show the client: it names the
/// field and the rule, never echoes the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_string(),
            message: message.into(),
        });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
}

/// A regex validator, anchored, compiled on first use. The pattern was
/// checked at build time; should it still fail to compile, every value is
/// rejected rather than accepted.
#[derive(Debug)]
pub struct Pattern {
    source: &'static str,
    compiled: OnceLock<Option<regex::Regex>>,
}

impl Pattern {
    pub const fn new(source: &'static str) -> Self {
        Pattern {
            source,
            compiled: OnceLock::new(),
        }
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.compiled
            .get_or_init(|| regex::Regex::new(&format!("^(?:{})$", self.source)).ok())
            .as_ref()
            .is_some_and(|re| re.is_match(value))
    }
}
