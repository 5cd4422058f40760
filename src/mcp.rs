//! MCP (SPEC §6) over the official SDK, `rmcp`: a [`ServerHandler`] over
//! the project's generated tables. Tools run the same validators and SQL
//! plans as REST; resources run their SQL without arguments; prompts render
//! text. Served as Streamable HTTP at `/mcp` and, for plain JSON-RPC
//! clients such as curl, at `POST /mcp/jsonrpc`.

// MCP logging (`logging/setLevel`, `notifications/message`) is deprecated by
// SEP-2577 in rmcp, but SPEC §6 asks for it and clients still send it.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    CompletionInfo, ContentBlock, GetPromptRequestParams, GetPromptResponse, GetPromptResult,
    Implementation, InitializeRequestParams, InitializeResult, JsonObject, ListPromptsResult,
    ListResourcesResult, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam,
    PaginatedRequestParams, Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Reference, Resource, ResourceContents, Role,
    ServerCapabilities, ServerConfig, SetLevelRequestParams, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::audit::{Auditor, Record, decision};
use crate::auth::{Authenticator, Principal};
use crate::db::{Database, Page, PageResult, QueryError, QuerySpec, run_query, sample_query};
use crate::encode::Format;
use crate::policy::{Shape, Verdict, dry_run_report, may_dry_run, role_names};
use crate::ratelimit::RateLimits;
use crate::runtime::{
    Access, EndpointDef, FieldDef, FieldErrors, FieldIn, Plan, ProjectDef, PromptDef, RequestInput,
    RoleMask, is_reserved_parameter,
};
use crate::server::DRY_RUN;

/// Everything the handler needs, built once at start-up: tool, resource
/// and prompt lists are cloned per `*/list` (cheap: `Cow`/`Arc` inside).
pub struct McpState {
    project: &'static ProjectDef,
    db: Arc<Database>,
    auth: Arc<Authenticator>,
    audit: Arc<Auditor>,
    limits: Arc<RateLimits>,
    /// In the order of `tools`, `resources` and `prompts`: who may see
    /// and use each.
    tool_access: Vec<Access>,
    resource_access: Vec<Access>,
    prompt_access: Vec<Access>,
    tools: Vec<Tool>,
    tool_index: HashMap<&'static str, &'static EndpointDef>,
    resources: Vec<Resource>,
    resource_index: HashMap<String, &'static EndpointDef>,
    prompts: Vec<Prompt>,
    info: ServerConfig,
}

/// Rows of a tool result. Nothing is `required`: a dry run (`_dryRun`) or a
/// `sample` tool answers with another object.
const OUTPUT_SCHEMA: &str = r#"{"type":"object","properties":{"rows":{"type":"array","items":{"type":"object"}},"row_count":{"type":"integer","minimum":0},"truncated":{"type":"boolean"},"total_count":{"type":"integer","minimum":0}}}"#;

fn json_object(text: &str) -> Arc<JsonObject> {
    // The texts are generated at build time from serde_json output.
    Arc::new(serde_json::from_str(text).unwrap_or_default())
}

impl McpState {
    pub fn new(
        project: &'static ProjectDef,
        db: Arc<Database>,
        auth: Arc<Authenticator>,
        audit: Arc<Auditor>,
        limits: Arc<RateLimits>,
    ) -> Arc<Self> {
        let output_schema = json_object(OUTPUT_SCHEMA);
        let mut tool_access = Vec::new();
        let mut resource_access = Vec::new();
        let mut tools = Vec::new();
        let mut tool_index = HashMap::new();
        let mut resources = Vec::new();
        let mut resource_index = HashMap::new();
        for endpoint in project.endpoints {
            if let Some(tool) = &endpoint.tool {
                // Every endpoint is a read: DuckDB runs one SELECT in a
                // locked sandbox, so the hints are not guesses.
                let annotations = ToolAnnotations::new()
                    .read_only(true)
                    .destructive(false)
                    .idempotent(true)
                    .open_world(false);
                let mut t = Tool::new(tool.name, tool.description, json_object(tool.input_schema))
                    .with_raw_output_schema(output_schema.clone())
                    .annotate(annotations);
                if let Some(title) = tool.title {
                    t = t.with_title(title);
                }
                tools.push(t);
                // In shadow mode a tool stays listed: the rollout must not
                // change what clients see.
                tool_access.push(if endpoint.shadow {
                    Access::Public
                } else {
                    endpoint.mcp_access
                });
                tool_index.insert(tool.name, endpoint);
            }
            if let Some(resource) = &endpoint.resource {
                let uri = format!("flapi://{}", resource.name);
                let mut r =
                    Resource::new(uri.clone(), resource.name).with_mime_type(resource.mime_type);
                if let Some(d) = resource.description {
                    r = r.with_description(d);
                }
                resources.push(r);
                resource_access.push(endpoint.mcp_access);
                resource_index.insert(uri, endpoint);
            }
        }
        let prompts = project
            .prompts
            .iter()
            .map(|p| {
                let args = p
                    .arguments
                    .iter()
                    .map(|a| {
                        let mut arg = PromptArgument::new(a.name).with_required(a.required);
                        if let Some(d) = a.description {
                            arg = arg.with_description(d);
                        }
                        arg
                    })
                    .collect();
                Prompt::new(p.name, p.description, Some(args))
            })
            .collect();
        #[allow(deprecated)] // logging: SEP-2577 deprecates it; SPEC §6 asks for it
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .enable_completions()
            .enable_logging()
            .build();
        let mut info = ServerConfig::new(capabilities).with_server_info(
            Implementation::new(project.name, env!("CARGO_PKG_VERSION")).with_title("flapi"),
        );
        if let Some(text) = project.mcp.instructions {
            info = info.with_instructions(text);
        }
        Arc::new(McpState {
            project,
            db,
            auth,
            audit,
            limits,
            tool_access,
            resource_access,
            prompt_access: project.prompts.iter().map(|p| p.access).collect(),
            tools,
            tool_index,
            resources,
            resource_index,
            prompts,
            info,
        })
    }
}

/// One MCP session's handler; sessions share the state.
#[derive(Clone)]
pub struct FlapiMcp {
    state: Arc<McpState>,
    /// The level set by `logging/setLevel`; tool failures are reported as
    /// `notifications/message` at `warning` when the level allows it.
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
}

impl FlapiMcp {
    pub fn new(state: Arc<McpState>) -> Self {
        FlapiMcp {
            state,
            log_level: Arc::new(Mutex::new(None)),
        }
    }

    async fn notify_failure(
        &self,
        context: &RequestContext<RoleServer>,
        tool: &str,
        message: &str,
    ) {
        let enabled = self
            .log_level
            .lock()
            .ok()
            .and_then(|l| *l)
            .is_some_and(|level| level_rank(level) <= level_rank(LoggingLevel::Warning));
        if enabled {
            let param = LoggingMessageNotificationParam::new(
                LoggingLevel::Warning,
                json!({"tool": tool, "message": message}),
            );
            let _ = context.peer.notify_logging_message(param).await;
        }
    }
}

fn level_rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
        #[allow(unreachable_patterns)]
        _ => 3,
    }
}

/// Tool arguments, type-checked against the generated schema and laid out
/// where the endpoint's validators look for them.
struct ToolInput {
    input: RequestInput,
    page: Option<Page>,
}

fn json_type_name(value: &Value) -> &'static str {
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

fn page_argument(value: &Value) -> Result<u64, &'static str> {
    value.as_u64().ok_or("must be a non-negative integer")
}

fn tool_input(
    project: &ProjectDef,
    endpoint: &EndpointDef,
    arguments: Option<&JsonObject>,
) -> Result<ToolInput, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut input = RequestInput::default();
    let mut limit = project.default_limit;
    let mut offset = 0;
    let empty = JsonObject::new();
    for (name, value) in arguments.unwrap_or(&empty) {
        if endpoint.paginate && (name == "limit" || name == "offset") {
            match page_argument(value) {
                Ok(n) if name == "limit" => limit = n.min(project.max_limit),
                Ok(n) => offset = n,
                Err(message) => errors.push(name, message),
            }
            continue;
        }
        if is_reserved_parameter(name) {
            errors.push(
                name,
                "is reserved for the verified caller and cannot be sent",
            );
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
    if errors.is_empty() {
        Ok(ToolInput {
            input,
            page: endpoint.paginate.then_some(Page { limit, offset }),
        })
    } else {
        Err(errors)
    }
}

fn describe(errors: &FieldErrors) -> String {
    let parts: Vec<String> = errors
        .0
        .iter()
        .map(|e| format!("`{}` {}", e.field, e.message))
        .collect();
    format!("Invalid arguments: {}.", parts.join("; "))
}

fn error_result(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// What a model reads when a query does not produce rows: what happened
/// and what to try, never DuckDB's text, SQL or paths.
fn query_failure(error: &QueryError, request_id: &str) -> String {
    match error {
        QueryError::Timeout(limit) => format!(
            "The query ran longer than the server allows ({} ms) and was stopped. Narrow the arguments (a smaller `limit`, a tighter filter) and try again.",
            limit.as_millis()
        ),
        QueryError::Unavailable => {
            "The server cannot run queries right now. Try again later.".to_string()
        }
        QueryError::Busy(_) => {
            "The server is running as many queries as it allows. Try again in a second.".to_string()
        }
        QueryError::Cancelled => "The call was cancelled before it finished.".to_string(),
        QueryError::Failed(_) => format!(
            "The query failed inside the server. Report request id {request_id} to its operator."
        ),
    }
}

impl McpState {
    /// Runs an endpoint's plan; the future is raced against `ct`, and
    /// dropping it interrupts the DuckDB query (see `Database`).
    async fn run(
        &self,
        endpoint: &'static EndpointDef,
        plan: Plan,
        page: Option<Page>,
        shape: &Shape,
        ct: &CancellationToken,
    ) -> Result<PageResult, QueryError> {
        let max_rows = shape.max_rows;
        let redact = shape.redact.clone();
        let query = self.db.for_endpoint(endpoint, move |connection, env| {
            let spec =
                QuerySpec::new(endpoint, &plan, page, Format::Json).shaped(max_rows, &redact);
            run_query(connection, env, &spec)
        });
        tokio::select! {
            result = query => result,
            _ = ct.cancelled() => Err(QueryError::Cancelled),
        }
    }
}

/// `{"rows":[…],"row_count":N,"truncated":bool}`, built around the encoded
/// rows so numbers keep their exact text.
fn tool_payload(result: &PageResult, page: Option<Page>) -> Vec<u8> {
    let mut out = Vec::with_capacity(result.body.len() + 96);
    out.extend_from_slice(b"{\"rows\":");
    out.extend_from_slice(&result.body);
    let (truncated, total) = match (page, result.total) {
        (Some(page), Some(total)) => (page.offset + result.rows < total, Some(total)),
        _ => (result.truncated, None),
    };
    out.extend_from_slice(
        format!(",\"row_count\":{},\"truncated\":{truncated}", result.rows).as_bytes(),
    );
    if let Some(total) = total {
        out.extend_from_slice(format!(",\"total_count\":{total}").as_bytes());
    }
    out.push(b'}');
    out
}

fn prompt_values<'a>(
    prompt: &PromptDef,
    arguments: Option<&'a JsonObject>,
) -> Result<Vec<Option<&'a str>>, String> {
    let mut values = vec![None; prompt.arguments.len()];
    if let Some(arguments) = arguments {
        for (name, value) in arguments {
            let Some(i) = prompt.arguments.iter().position(|a| a.name == name) else {
                return Err(format!(
                    "`{name}` is not an argument of prompt `{}`",
                    prompt.name
                ));
            };
            match value {
                Value::String(s) => values[i] = Some(s.as_str()),
                Value::Null => {}
                other => {
                    return Err(format!(
                        "`{name}` must be a string, not {}",
                        json_type_name(other)
                    ));
                }
            }
        }
    }
    for (arg, value) in prompt.arguments.iter().zip(&values) {
        match value {
            None if arg.required => {
                return Err(format!(
                    "`{}` is required by prompt `{}`",
                    arg.name, prompt.name
                ));
            }
            Some(v) if !arg.allowed_values.is_empty() && !arg.allowed_values.contains(v) => {
                return Err(format!(
                    "`{}` must be one of: {}",
                    arg.name,
                    arg.allowed_values.join(", ")
                ));
            }
            _ => {}
        }
    }
    Ok(values)
}

/// The verified caller of the HTTP request that carried this message (put
/// there by [`gate`]); `None` when MCP authentication is off.
fn caller(context: &RequestContext<RoleServer>) -> Option<Arc<Principal>> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Arc<Principal>>().cloned())
}

/// The caller's address, from the HTTP request that carried the message.
fn client_address(context: &RequestContext<RoleServer>) -> Option<std::net::IpAddr> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| {
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        })
        .map(|info| info.0.ip())
}

fn granted(context: &RequestContext<RoleServer>) -> Option<RoleMask> {
    caller(context).map(|p| p.roles)
}

/// The items of a list the caller may use.
fn visible<T: Clone>(items: &[T], access: &[Access], granted: Option<RoleMask>) -> Vec<T> {
    items
        .iter()
        .zip(access)
        .filter(|(_, a)| a.allows(granted))
        .map(|(item, _)| item.clone())
        .collect()
}

fn log_denied(principal: Option<&Principal>, kind: &str, name: &str, request_id: &str) {
    tracing::info!(
        request_id = %request_id,
        subject = principal.map(|p| p.subject.as_str()).unwrap_or(""),
        kind,
        name,
        "MCP access denied: no permitted role"
    );
}

/// The `X-Request-Id` of the HTTP request that carried this message.
fn request_id_of(context: &RequestContext<RoleServer>) -> String {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.headers.get("x-request-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// What a model reads when the audit log cannot be written.
const UNAVAILABLE: &str = "The server cannot serve requests right now. Try again later.";

/// A status for an MCP record, as HTTP would say it.
fn status_of(error: &ErrorData) -> (u16, &'static str) {
    match error.code {
        rmcp::model::ErrorCode::INVALID_PARAMS => (400, decision::INVALID),
        rmcp::model::ErrorCode::RESOURCE_NOT_FOUND => (404, decision::NOT_FOUND),
        _ => (500, decision::ERROR),
    }
}

impl FlapiMcp {
    /// A record for one message, with the caller filled in.
    fn record(&self, context: &RequestContext<RoleServer>, method: &str, target: &str) -> Record {
        let mut record = Record::new(&request_id_of(context), "mcp", method, target);
        if self.state.audit.enabled()
            && let Some(principal) = caller(context)
        {
            record.principal = Some(principal.subject.clone());
            record.roles = role_names(self.state.project.auth.roles, principal.roles)
                .into_iter()
                .map(str::to_string)
                .collect();
        }
        record
    }

    /// Writes the record, then lets the reply go; a reply whose record
    /// cannot be written is withheld (fail-closed).
    async fn commit<T>(
        &self,
        mut record: Record,
        started: Instant,
        reply: Result<T, ErrorData>,
    ) -> Result<T, ErrorData> {
        if let Err(error) = &reply
            && record.decision == decision::ALLOW
        {
            (record.status, record.decision) = status_of(error);
        }
        let request_id = record.request_id.clone();
        match self.state.audit.record(record.since(started)).await {
            Ok(()) => reply,
            Err(error) => {
                tracing::error!(request_id = %request_id, %error, "MCP reply withheld: its audit record was not written");
                Err(ErrorData::internal_error(UNAVAILABLE, None))
            }
        }
    }

    /// Fail-closed before anything runs: `Some(refusal)` when the audit
    /// log cannot be written.
    async fn refuse_unaudited(&self, record: &Record, started: Instant) -> Option<ErrorData> {
        if self.state.audit.admits() {
            return None;
        }
        let mut record = record.clone();
        record.decision = decision::UNAVAILABLE;
        record.status = 503;
        let _ = self.state.audit.record(record.since(started)).await;
        Some(ErrorData::internal_error(UNAVAILABLE, None))
    }

    /// A message's arguments as its audit record keeps them.
    fn recorded_arguments(
        &self,
        arguments: Option<&JsonObject>,
        endpoint: Option<&EndpointDef>,
    ) -> Value {
        let value = || arguments.cloned().map(Value::Object).unwrap_or(Value::Null);
        self.state.audit.arguments(value, endpoint)
    }

    /// A message's record and start time, or the refusal when the audit
    /// log cannot be written (nothing runs).
    async fn begin(
        &self,
        context: &RequestContext<RoleServer>,
        method: &str,
        target: &str,
    ) -> Result<(Record, Instant), ErrorData> {
        let started = Instant::now();
        let record = self.record(context, method, target);
        match self.refuse_unaudited(&record, started).await {
            Some(refusal) => Err(refusal),
            None => Ok((record, started)),
        }
    }

    /// A `*/list` answer: the items the caller may use, recorded.
    async fn list<T: Clone, R>(
        &self,
        context: &RequestContext<RoleServer>,
        method: &str,
        items: &[T],
        access: &[Access],
        wrap: impl FnOnce(Vec<T>) -> R,
    ) -> Result<R, ErrorData> {
        let (mut record, started) = self.begin(context, method, "").await?;
        let items = visible(items, access, granted(context));
        record.rows = Some(items.len() as u64);
        self.commit(record, started, Ok(wrap(items))).await
    }

    async fn call_tool_inner(
        &self,
        request: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        endpoint: &'static EndpointDef,
        record: &mut Record,
    ) -> CallToolResult {
        let name = request.name.clone();
        let request_id = record.request_id.clone();
        let principal = caller(context);
        let granted = principal.as_ref().map(|p| p.roles);
        let mut arguments = request.arguments.clone();
        let dry_run = match arguments.as_mut().and_then(|a| a.remove(DRY_RUN)) {
            None | Some(Value::Bool(false)) | Some(Value::Null) => false,
            Some(Value::Bool(true)) => true,
            Some(_) => {
                record.decision = decision::INVALID;
                record.status = 400;
                return error_result(format!("Invalid arguments: `{DRY_RUN}` must be a boolean."));
            }
        };
        let verdict = Verdict::decide(endpoint.mcp_access, granted, endpoint.shadow);
        if dry_run && !may_dry_run(self.state.project, principal.as_deref()) {
            record.decision = decision::DENY;
            record.status = 403;
            log_denied(principal.as_deref(), "dry run of tool", &name, &request_id);
            return error_result("Dry run is not permitted.");
        }
        if !dry_run && verdict == Verdict::Deny {
            record.decision = decision::DENY;
            record.status = 403;
            log_denied(principal.as_deref(), "tool", &name, &request_id);
            return error_result("Permission denied.");
        }
        if verdict == Verdict::WouldDeny && !dry_run {
            record.decision = decision::WOULD_DENY;
        }
        if let Some(rate) = self.state.limits.tool(
            self.state.project,
            endpoint,
            principal.as_ref().map(|p| p.identity()).as_deref(),
            client_address(context),
        ) && !rate.allowed
        {
            if endpoint.shadow {
                record.decision = decision::WOULD_DENY;
            } else {
                record.decision = decision::RATE_LIMITED;
                record.status = 429;
                tracing::info!(request_id = %request_id, tool = %name, "rate limited");
                return error_result(format!(
                    "Rate limit reached for this tool: {} calls per {} s. Retry in {} s.",
                    rate.limit, rate.window_secs, rate.retry_after_secs
                ));
            }
        }
        let parsed = tool_input(self.state.project, endpoint, arguments.as_ref())
            .and_then(|t| (endpoint.plan)(&t.input).map(|plan| (plan, t.page)));
        let (mut plan, page) = match parsed {
            Ok(ok) => ok,
            Err(errors) => {
                record.decision = decision::INVALID;
                record.status = 400;
                let message = describe(&errors);
                self.notify_failure(context, &name, &message).await;
                return error_result(message);
            }
        };
        self.state
            .auth
            .bind_caller(&mut plan.binds, principal.as_deref());
        let transport_cap = (!endpoint.paginate).then_some(self.state.project.mcp.max_rows);
        let shape = Shape::for_caller(endpoint, granted, transport_cap);
        if dry_run || shape.sample {
            record.decision = if dry_run {
                decision::DRY_RUN
            } else {
                record.decision
            };
            let report = {
                let shape = shape.clone();
                self.state
                    .db
                    .for_endpoint(endpoint, move |connection, env| {
                        let spec = QuerySpec::new(endpoint, &plan, page, Format::Json)
                            .shaped(shape.max_rows, &shape.redact);
                        if dry_run {
                            dry_run_report(connection, env, &spec, verdict, &shape)
                        } else {
                            sample_query(connection, env, &spec).map(|sample| sample.to_json())
                        }
                    })
                    .await
            };
            return match report {
                Ok(report) => {
                    record.rows = Some(0);
                    let mut reply =
                        CallToolResult::success(vec![ContentBlock::text(report.to_string())]);
                    reply.structured_content = Some(report);
                    reply
                }
                Err(error) => {
                    record.decision = decision::ERROR;
                    record.status = error.status();
                    tracing::error!(tool = %name, request_id = %request_id, %error, "tool call failed");
                    error_result(query_failure(&error, &request_id))
                }
            };
        }
        let result = match self
            .state
            .run(endpoint, plan, page, &shape, &context.ct)
            .await
        {
            Ok(result) => result,
            Err(error) => {
                record.decision = decision::ERROR;
                record.status = error.status();
                tracing::error!(tool = %name, request_id = %request_id, %error, "tool call failed");
                let message = query_failure(&error, &request_id);
                self.notify_failure(context, &name, &message).await;
                return error_result(message);
            }
        };
        record.rows = Some(result.rows);
        record.truncated = Some(result.truncated);
        record.redacted_columns = result.redacted.clone();
        if endpoint.shadow && shape.would_change(result.rows, !shape.would_redact.is_empty()) {
            record.decision = decision::WOULD_DENY;
            record.redacted_columns = shape.would_redact.iter().map(|c| c.to_string()).collect();
        }
        let payload = tool_payload(&result, page);
        let structured: Option<Value> = serde_json::from_slice(&payload).ok();
        let text = String::from_utf8(payload).unwrap_or_default();
        let mut reply = CallToolResult::success(vec![ContentBlock::text(text)]);
        reply.structured_content = structured;
        reply
    }

    async fn read_resource_inner(
        &self,
        request: &ReadResourceRequestParams,
        context: &RequestContext<RoleServer>,
        record: &mut Record,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let not_found =
            || ErrorData::resource_not_found(format!("no resource `{}`", request.uri), None);
        let Some(&endpoint) = self.state.resource_index.get(&request.uri) else {
            return Err(not_found());
        };
        let Some(resource) = &endpoint.resource else {
            return Err(not_found());
        };
        let principal = caller(context);
        let granted = principal.as_ref().map(|p| p.roles);
        match Verdict::decide(endpoint.mcp_access, granted, endpoint.shadow) {
            Verdict::Allow => {}
            Verdict::WouldDeny => record.decision = decision::WOULD_DENY,
            Verdict::Deny => {
                // The same answer as for a resource that does not exist.
                log_denied(
                    principal.as_deref(),
                    "resource",
                    resource.name,
                    &record.request_id,
                );
                record.decision = decision::DENY;
                record.status = 404;
                return Err(not_found());
            }
        }
        let mut plan = (endpoint.plan)(&RequestInput::default()).map_err(|errors| {
            ErrorData::internal_error(
                format!("the resource cannot be read: {}", describe(&errors)),
                None,
            )
        })?;
        self.state
            .auth
            .bind_caller(&mut plan.binds, principal.as_deref());
        let page = endpoint.paginate.then_some(Page {
            limit: self.state.project.max_limit,
            offset: 0,
        });
        let shape = Shape::for_caller(endpoint, granted, None);
        let result = self
            .state
            .run(endpoint, plan, page, &shape, &context.ct)
            .await
            .map_err(|error| {
                tracing::error!(resource = resource.name, request_id = %record.request_id, %error, "resource read failed");
                ErrorData::internal_error(query_failure(&error, &record.request_id), None)
            })?;
        record.rows = Some(result.rows);
        record.truncated = Some(result.truncated);
        record.redacted_columns = result.redacted.clone();
        let text = String::from_utf8(result.body).unwrap_or_default();
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri.clone()).with_mime_type(resource.mime_type),
        ])
        .into())
    }
}

impl ServerHandler for FlapiMcp {
    fn get_info(&self) -> ServerConfig {
        self.state.info.clone()
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        let (record, started) = self.begin(&context, "initialize", "").await?;
        context.peer.set_peer_info(request.clone());
        let reply = self.negotiate_initialize(&request);
        self.commit(record, started, reply).await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let state = &self.state;
        self.list(
            &context,
            "tools/list",
            &state.tools,
            &state.tool_access,
            ListToolsResult::with_all_items,
        )
        .await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.state.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = Instant::now();
        let mut record = self.record(&context, "tools/call", &request.name);
        let endpoint = self.state.tool_index.get(request.name.as_ref()).copied();
        record.arguments = self.recorded_arguments(request.arguments.as_ref(), endpoint);
        if !self.state.audit.admits() {
            let _ = self.refuse_unaudited(&record, started).await;
            return Ok(error_result(UNAVAILABLE).into());
        }
        let Some(endpoint) = endpoint else {
            let reply = Err(ErrorData::invalid_params(
                format!("unknown tool `{}`", request.name),
                None,
            ));
            record.decision = decision::NOT_FOUND;
            record.status = 404;
            return self.commit(record, started, reply).await;
        };
        let reply = self
            .call_tool_inner(request, &context, endpoint, &mut record)
            .await;
        if reply.is_error == Some(true) && record.decision == decision::ALLOW {
            record.decision = decision::ERROR;
            record.status = 500;
        }
        match self.commit(record, started, Ok(reply)).await {
            Ok(reply) => Ok(reply.into()),
            Err(_) => Ok(error_result(UNAVAILABLE).into()),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let state = &self.state;
        self.list(
            &context,
            "resources/list",
            &state.resources,
            &state.resource_access,
            ListResourcesResult::with_all_items,
        )
        .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (mut record, started) = self.begin(&context, "resources/read", &request.uri).await?;
        let reply = self
            .read_resource_inner(&request, &context, &mut record)
            .await;
        self.commit(record, started, reply).await
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let state = &self.state;
        self.list(
            &context,
            "prompts/list",
            &state.prompts,
            &state.prompt_access,
            ListPromptsResult::with_all_items,
        )
        .await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let (mut record, started) = self.begin(&context, "prompts/get", &request.name).await?;
        record.arguments = self.recorded_arguments(request.arguments.as_ref(), None);
        let granted = granted(&context);
        let prompt = self
            .state
            .project
            .prompts
            .iter()
            .find(|p| p.name == request.name);
        let reply: Result<GetPromptResponse, ErrorData> = match prompt {
            // A prompt the caller may not use answers like one that does not exist.
            Some(prompt) if prompt.access.allows(granted) => {
                prompt_values(prompt, request.arguments.as_ref())
                    .map_err(|message| ErrorData::invalid_params(message, None))
                    .map(|values| {
                        let text = prompt.render(&values);
                        let mut result =
                            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
                        if let Some(d) = prompt.description {
                            result = result.with_description(d);
                        }
                        result.into()
                    })
            }
            found => {
                if found.is_some() {
                    record.decision = decision::DENY;
                    record.status = 404;
                }
                Err(ErrorData::invalid_params(
                    format!("unknown prompt `{}`", request.name),
                    None,
                ))
            }
        };
        self.commit(record, started, reply).await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let (record, started) = self.begin(&context, "completion/complete", "").await?;
        let granted = granted(&context);
        let argument = &request.argument;
        // MCP references prompts and resources; a tool's enum arguments
        // are offered under `ref/prompt` with the tool's name.
        let values: &[&str] = match &request.r#ref {
            Reference::Prompt(p) => {
                let from_prompt = self
                    .state
                    .project
                    .prompts
                    .iter()
                    .find(|x| x.name == p.name && x.access.allows(granted))
                    .and_then(|x| x.arguments.iter().find(|a| a.name == argument.name))
                    .map(|a| a.allowed_values);
                let from_tool = || {
                    self.state
                        .tool_index
                        .get(p.name.as_str())
                        .filter(|e| e.mcp_access.allows(granted))
                        .and_then(|e| e.fields.iter().find(|f| f.name == argument.name))
                        .map(|f| f.allowed_values)
                };
                from_prompt.or_else(from_tool).unwrap_or(&[])
            }
            _ => &[],
        };
        let prefix = argument.value.to_lowercase();
        let matching: Vec<String> = values
            .iter()
            .filter(|v| v.to_lowercase().starts_with(&prefix))
            .map(|v| v.to_string())
            .collect();
        let reply = CompletionInfo::with_all_values(matching)
            .map_err(|e| ErrorData::internal_error(e, None))
            .map(CompleteResult::new);
        self.commit(record, started, reply).await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let (record, started) = self.begin(&context, "logging/setLevel", "").await?;
        if let Ok(mut level) = self.log_level.lock() {
            *level = Some(request.level);
        }
        self.commit(record, started, Ok(())).await
    }
}

/// Streamable HTTP at `/mcp` (sessions, SSE) and plain JSON-RPC at
/// `/mcp/jsonrpc` (one JSON response per POST, no session needed). Host
/// and Origin checks come from the project's `mcp:` settings.
pub fn services(
    state: Arc<McpState>,
    shutdown: CancellationToken,
) -> (
    StreamableHttpService<FlapiMcp, LocalSessionManager>,
    StreamableHttpService<FlapiMcp, LocalSessionManager>,
) {
    let mcp = &state.project.mcp;
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(mcp.allowed_hosts.iter().copied())
        .with_allowed_origins(mcp.allowed_origins.iter().copied())
        .with_cancellation_token(shutdown);
    if mcp.allowed_origins.is_empty() {
        // No browser origin is trusted unless the project lists it.
        config = config.enforce_origin_validation();
    }
    let factory = {
        let state = state.clone();
        move || Ok(FlapiMcp::new(state.clone()))
    };
    let streamable = StreamableHttpService::new(
        factory.clone(),
        Arc::new(LocalSessionManager::default()),
        config.clone(),
    );
    let plain = StreamableHttpService::new(
        factory,
        Arc::new(LocalSessionManager::default()),
        config
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    (streamable, plain)
}

/// Sessions bound to the principal that opened them, at most this many.
const MAX_BOUND_SESSIONS: usize = 100_000;

#[derive(Default)]
struct Bindings {
    owner: HashMap<String, String>,
    order: std::collections::VecDeque<String>,
}

/// Authentication for every HTTP request to the MCP endpoints, with or
/// without a session id, and sessions bound to their principal.
#[derive(Clone)]
pub struct McpGate {
    auth: Arc<Authenticator>,
    audit: Arc<Auditor>,
    on: bool,
    sessions: Arc<Mutex<Bindings>>,
}

impl McpGate {
    pub fn new(auth: Arc<Authenticator>, on: bool, audit: Arc<Auditor>) -> Self {
        McpGate {
            auth,
            audit,
            on,
            sessions: Arc::new(Mutex::new(Bindings::default())),
        }
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

impl McpGate {
    /// Records a refusal at the HTTP level; the refusal goes out either way
    /// (nothing ran).
    async fn refusal(
        &self,
        record: Record,
        started: Instant,
        response: axum::response::Response,
    ) -> axum::response::Response {
        let _ = self.audit.record(record.since(started)).await;
        response
    }
}

/// axum middleware in front of both MCP services.
pub async fn gate(
    axum::extract::State(gate): axum::extract::State<McpGate>,
    mut request: Request<Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !gate.on {
        return next.run(request).await;
    }
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let started = Instant::now();
    let mut record = Record::new(
        &request_id,
        "mcp",
        request.method().as_str(),
        request.uri().path(),
    );
    record.decision = decision::DENY;
    let principal = match gate.auth.require(request.headers()).await {
        Ok(principal) => principal,
        Err(denial) => {
            let response = crate::server::denied(&gate.auth, denial, &request_id);
            record.status = response.status().as_u16();
            return gate.refusal(record, started, response).await;
        }
    };
    let identity = principal.identity();
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(id) = &session {
        let owner = gate
            .sessions
            .lock()
            .ok()
            .and_then(|s| s.owner.get(id).cloned());
        if owner.as_deref() != Some(identity.as_str()) {
            // Another principal's session, or one we never saw: the same
            // answer as for a session that does not exist.
            tracing::info!(request_id = %request_id, subject = %principal.subject, "MCP session not bound to this caller");
            let response = crate::server::error_json(
                axum::http::StatusCode::NOT_FOUND,
                "session not found",
                Some(&request_id),
            );
            record.status = 404;
            record.principal = Some(principal.subject.clone());
            return gate.refusal(record, started, response).await;
        }
    }
    let closing = request.method() == axum::http::Method::DELETE;
    request.extensions_mut().insert(principal);
    let response = next.run(request).await;
    if let Ok(mut bindings) = gate.sessions.lock() {
        match (&session, response.headers().get(SESSION_HEADER)) {
            (None, Some(new)) => {
                if let Ok(new) = new.to_str() {
                    if bindings.order.len() >= MAX_BOUND_SESSIONS
                        && let Some(oldest) = bindings.order.pop_front()
                    {
                        bindings.owner.remove(&oldest);
                    }
                    bindings.owner.insert(new.to_string(), identity);
                    bindings.order.push_back(new.to_string());
                }
            }
            (Some(id), _) if closing && response.status().is_success() => {
                bindings.owner.remove(id);
                bindings.order.retain(|x| x != id);
            }
            _ => {}
        }
    }
    response
}

/// flAPI's clients POST JSON with `Content-Type: application/json` only;
/// the Streamable HTTP transport wants both media types in `Accept`.
pub fn plain_jsonrpc_request(mut request: Request<Body>) -> Request<Body> {
    request.headers_mut().insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    request
}
