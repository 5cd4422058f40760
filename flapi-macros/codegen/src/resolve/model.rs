//! Phase 2 output: the project with names resolved, types decided and SQL
//! templates compiled. Emitters read only these types, never YAML ones.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Project {
    /// flAPI's heartbeat worker: seconds between rounds, when enabled.
    pub heartbeat_seconds: Option<u64>,
    pub name: String,
    pub description: Option<String>,
    /// The project folder, absolute; the default base for relative data
    /// paths at run time.
    pub base_dir: PathBuf,
    pub connections: Vec<Connection>,
    pub duckdb: DuckdbSettings,
    pub http_host: Option<String>,
    pub http_port: Option<u16>,
    pub default_limit: u64,
    pub max_limit: u64,
    pub env_whitelist: Vec<String>,
    /// `template.allowed-functions`, lower case.
    pub allowed_functions: Vec<String>,
    pub endpoints: Vec<Endpoint>,
    pub mcp: McpSettings,
    pub prompts: Vec<Prompt>,
    pub auth: AuthSettings,
    /// Audit, dry run and shadow mode (SPEC §8, §9).
    pub policy: Policy,
    /// CORS, TLS files, limits, the default rate limit (SPEC §12).
    pub edge: crate::resolve::edge::Edge,
    /// Every file the build read, for rebuild tracking.
    pub files_read: Vec<PathBuf>,
    /// A stable hash of those files' contents, shown by `flapi --version`.
    pub source_hash: String,
}

/// `mcp:` in flapi.yaml, resolved.
#[derive(Debug, Clone, Default)]
pub struct McpSettings {
    pub instructions: Option<String>,
    /// Browser origins allowed to call MCP; empty: requests with an
    /// `Origin` header are refused.
    pub allowed_origins: Vec<String>,
    /// Cap on the rows of one tool result when the tool does not paginate.
    pub max_rows: u64,
}

/// An endpoint exposed as an MCP tool.
#[derive(Debug, Clone)]
pub struct Tool {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    /// The tool's JSON Schema for its arguments, as formatted JSON.
    pub input_schema: String,
}

/// An endpoint exposed as an MCP resource, `flapi://<name>`.
#[derive(Debug, Clone)]
pub struct Resource {
    pub name: String,
    pub description: Option<String>,
    pub mime_type: String,
}

#[derive(Debug, Clone)]
pub struct PromptArg {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
    pub allowed_values: Vec<String>,
}

/// A piece of a prompt template; indices point into the prompt's arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptPart {
    Text(String),
    Arg(usize),
    Section {
        arg: usize,
        inverted: bool,
        parts: Vec<PromptPart>,
    },
}

#[derive(Debug, Clone)]
pub struct Prompt {
    pub name: String,
    pub description: Option<String>,
    /// The YAML file, relative to the project folder.
    pub source: String,
    pub arguments: Vec<PromptArg>,
    pub template: Vec<PromptPart>,
    pub access: Access,
}

#[derive(Debug, Clone)]
pub struct Connection {
    pub name: String,
    pub init: Option<String>,
    pub properties: Vec<(String, String)>,
    /// flAPI's `log-queries`: each query's SQL text is logged.
    pub log_queries: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DuckdbSettings {
    pub db_path: Option<String>,
    pub read_only: bool,
    pub threads: Option<u32>,
    pub max_memory: Option<String>,
    pub allowed_directories: Vec<String>,
    pub query_timeout_ms: u64,
    pub pool_size: Option<u32>,
    /// DuckDB settings passed through (`PASS_THROUGH_SETTINGS`), lower case.
    pub settings: Vec<(String, String)>,
}

/// flAPI's explicit `limit` and `offset` request fields on a paginated
/// endpoint: the window's own parameters, bounded by their int validator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageBounds {
    pub limit_min: Option<u64>,
    pub limit_max: Option<u64>,
    pub offset_min: Option<u64>,
    pub offset_max: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldIn {
    Query,
    Path,
    Header,
    Body,
}

impl FieldIn {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldIn::Query => "query",
            FieldIn::Path => "path",
            FieldIn::Header => "header",
            FieldIn::Body => "body",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    Double {
        min: Option<f64>,
        max: Option<f64>,
    },
    Bool,
    String {
        pattern: Option<String>,
        min_length: Option<u64>,
        max_length: Option<u64>,
    },
    Enum {
        values: Vec<String>,
    },
    /// Bounds are ISO 8601 text, validated at build time.
    Date {
        min: Option<String>,
        max: Option<String>,
    },
    Time {
        min: Option<String>,
        max: Option<String>,
    },
    Timestamp {
        min: Option<String>,
        max: Option<String>,
    },
    Uuid,
    Email,
}

impl FieldType {
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::Int { .. } => "int",
            FieldType::Double { .. } => "double",
            FieldType::Bool => "boolean",
            FieldType::String { .. } => "string",
            FieldType::Enum { .. } => "enum",
            FieldType::Date { .. } => "date",
            FieldType::Time { .. } => "time",
            FieldType::Timestamp { .. } => "timestamp",
            FieldType::Uuid => "uuid",
            FieldType::Email => "email",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    /// Rust identifier of the struct field.
    pub rust_name: String,
    pub field_in: FieldIn,
    pub required: bool,
    /// Default, already validated against the type, as YAML text.
    pub default: Option<String>,
    pub ty: FieldType,
    pub description: Option<String>,
    /// `sensitive: true`: the value is redacted in the audit log.
    pub sensitive: bool,
}

impl Field {
    /// The generated struct holds `Option<T>` unless a value is guaranteed.
    pub fn is_optional(&self) -> bool {
        !self.required && self.default.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlValidation {
    /// sqlparser checks every text at build time (default).
    Build,
    /// The documented opt-out: DuckDB checks at start-up.
    Startup,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Stable snake_case name, unique in the project.
    pub id: String,
    /// Endpoint YAML file, relative to the project folder.
    pub source: String,
    pub template_source: String,
    pub description: Option<String>,
    pub method: String,
    /// flAPI form, `/customers/:id`; `None` for an MCP-only endpoint.
    pub url_path: Option<String>,
    /// axum form, `/customers/{id}`.
    pub route: Option<String>,
    pub tool: Option<Tool>,
    pub resource: Option<Resource>,
    /// Who may call the REST route.
    pub rest_access: Access,
    /// Who may call the MCP tool or read the resource.
    pub mcp_access: Access,
    /// The resource's own access (its `allowed-roles`, else the tool's).
    pub resource_access: Access,
    pub fields: Vec<Field>,
    pub connection: Option<String>,
    pub paginate: bool,
    /// Bounds of `limit`/`offset` from flAPI's explicit page fields.
    pub page_bounds: PageBounds,
    pub strict_fields: bool,
    pub sql_validation: SqlValidation,
    pub template: CompiledTemplate,
    /// `response:` (max rows, redaction, sample), REST and MCP alike.
    pub shaping: Shaping,
    /// Policy denials are recorded as `would_deny` and not enforced.
    pub shadow: bool,
    /// Calls of the route per principal (or address), its own or the
    /// project's `rate-limit`.
    pub rate_limit: Option<crate::resolve::edge::RateLimit>,
    /// Calls of the MCP tool per principal: `mcp-tool.rate-limit`, else
    /// the route's.
    pub tool_rate_limit: Option<crate::resolve::edge::RateLimit>,
    /// This endpoint's query deadline, instead of `duckdb.query-timeout-ms`.
    pub query_timeout_ms: Option<u64>,
    /// flAPI's `heartbeat`: the arguments the worker calls this endpoint
    /// with, when enabled.
    pub heartbeat: Option<Vec<(String, String)>>,
}

impl Endpoint {
    /// How generated docs name the endpoint: its route, else its MCP name.
    pub fn label(&self) -> String {
        match (&self.url_path, &self.tool, &self.resource) {
            (Some(url), _, _) => format!("{} {url}", self.method),
            (None, Some(tool), _) => format!("MCP tool {}", tool.name),
            (None, None, Some(resource)) => format!("MCP resource flapi://{}", resource.name),
            (None, None, None) => self.id.clone(),
        }
    }
}

/// What decides which SQL text a request runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Dimension {
    /// Whether an optional (or boolean) field is present/true: a section.
    Presence { field: usize },
    /// Which allowed value an enum field has, for identifier sites.
    Choice { field: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub enum DimValue {
    Present(bool),
    /// Index into the enum's values; `None` when the field is absent.
    Choice(Option<usize>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum BindSource {
    Field(usize),
    Env(String),
    /// A value of the verified caller, for row-level filters.
    Auth(AuthKey),
}

/// `{{ auth.* }}` in a template: the verified principal, bound as a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKey {
    /// `auth.sub` (flAPI: `auth.username`).
    Subject,
    Email,
    /// The caller's roles (with inherited ones), comma-separated.
    Roles,
    /// `basic` or `jwt`.
    Kind,
    /// `auth.claims.<name>`, a claim listed in `auth.jwt.context-claims`.
    Claim(String),
}

/// A set of declared roles, one bit each (at most 64 roles).
pub type RoleMask = u64;

/// Who may use an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// Authentication is off for the item.
    #[default]
    Public,
    /// A verified caller with one of these roles; `Roles(0)` denies all.
    Roles(RoleMask),
}

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    /// CamelCase name of the generated enum variant.
    pub variant: String,
    pub description: Option<String>,
    /// The role's own bit.
    pub bit: RoleMask,
    /// Its bit and the bits of every role it inherits.
    pub grants: RoleMask,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// An `$argon2id$` PHC string.
    Argon2(String),
    /// flAPI's `$pbkdf2-sha256$`, accepted with a warning.
    Pbkdf2(String),
    /// Read from this environment variable at start-up.
    Env(String),
}

#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
    pub password: Password,
    pub roles: RoleMask,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A public key in PEM, read at build time.
    Pem(String),
    /// The name of an environment variable holding the PEM, read at start-up.
    Env(String),
}

#[derive(Debug, Clone)]
pub struct JwtKey {
    pub kid: Option<String>,
    pub alg: String,
    pub source: KeySource,
}

#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    /// Environment variable holding the HS256 secret.
    pub secret_env: Option<String>,
    pub keys: Vec<JwtKey>,
    /// OIDC discovery base (`/.well-known/openid-configuration`).
    pub oidc_issuer: Option<String>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    pub leeway_seconds: u64,
    pub subject_claim: String,
    pub email_claim: String,
    /// Dotted path to a list (or string) of role names.
    pub roles_claim: String,
    pub groups_claim: String,
    pub group_roles: Vec<(String, RoleMask)>,
    pub context_claims: Vec<String>,
    pub jwks_cache_seconds: u64,
    pub jwks_min_refresh_seconds: u64,
}

#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// Any REST route requires authentication.
    pub rest: bool,
    /// Every MCP request requires authentication.
    pub mcp: bool,
    pub realm: String,
    pub roles: Vec<Role>,
    pub users: Vec<User>,
    pub jwt: Option<JwtSettings>,
    pub cache_seconds: u64,
}

impl AuthSettings {
    /// Whether any credentials can be checked at all.
    pub fn configured(&self) -> bool {
        !self.users.is_empty() || self.jwt.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// One value per dimension, in order.
    pub key: Vec<DimValue>,
    /// Index into `CompiledTemplate::texts`.
    pub text: usize,
    pub binds: Vec<BindSource>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SqlText {
    pub sql: String,
    /// `sql` wrapped with `LIMIT ? OFFSET ?` (two extra binds at the end).
    pub paged_sql: Option<String>,
    /// `sql` wrapped with `LIMIT ?` (one extra bind): row caps are pushed
    /// into the query, so no more than cap+1 rows are ever read.
    pub capped_sql: Option<String>,
    pub count_sql: Option<String>,
    /// Values bound into `sql` (`?` sites), before any wrapper's own.
    pub binds: usize,
    /// What the build's parser read in `sql` (functions, tables, `?`
    /// count), compared with DuckDB's parse at start-up; `None` for the
    /// `sql-validation: startup` opt-out.
    pub facts: Option<crate::check::sqlcheck::Facts>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompiledTemplate {
    pub dimensions: Vec<Dimension>,
    pub texts: Vec<SqlText>,
    pub variants: Vec<Variant>,
}

/// `response:` of an endpoint (or its `mcp-tool`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shaping {
    pub max_rows: Option<u64>,
    pub redact: Vec<Redaction>,
    /// Row count, column names and types only.
    pub sample: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Redaction {
    /// Output column name, compared case-insensitively.
    pub column: String,
    /// Roles that see the value.
    pub unmask: RoleMask,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuditSink {
    File(String),
    Stdout,
}

/// `audit:` of flapi.yaml, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSettings {
    pub sink: AuditSink,
    /// fsync before each response; otherwise at most every `fsync_interval_ms`.
    pub fsync_always: bool,
    pub fsync_interval_ms: u64,
    /// Rotate the file above this size (0: never).
    pub max_file_bytes: u64,
    /// Rotated files kept (the oldest are deleted); 0: all.
    pub max_files: u32,
    /// Serve even when a record cannot be written (default: 503).
    pub fail_open: bool,
    /// Argument names redacted besides the built-in secret names.
    pub redact_arguments: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub audit: Option<AuditSettings>,
    /// Roles allowed to use `_dryRun`.
    pub dry_run_roles: RoleMask,
    /// Everyone may dry-run (only when authentication is off).
    pub dry_run_public: bool,
}
