//! MCP (SPEC §6) over the official SDK, `rmcp`: a [`ServerHandler`] over
//! the project's generated tables. Tools run the same validators and SQL
//! plans as REST; resources run their SQL without arguments; prompts render
//! text. Served as Streamable HTTP at `/mcp` and, for plain JSON-RPC
//! clients such as curl, at `POST /mcp/jsonrpc`.

// MCP logging (`logging/setLevel`, `notifications/message`) is deprecated by
// SEP-2577 in rmcp, but SPEC §6 asks for it and clients still send it.
#![allow(deprecated)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    CompletionInfo, ContentBlock, GetPromptRequestParams, GetPromptResponse, GetPromptResult,
    Implementation, JsonObject, ListPromptsResult, ListResourcesResult, ListToolsResult,
    LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams, Prompt, PromptArgument,
    PromptMessage, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Reference,
    Resource, ResourceContents, Role, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticator, Principal};
use crate::db::{Database, Page, PageResult, QueryError, QuerySpec, run_query};
use crate::encode::Format;
use crate::runtime::{
    Access, EndpointDef, FieldDef, FieldErrors, FieldIn, Plan, ProjectDef, PromptDef, RequestInput,
    RoleMask, is_reserved_parameter,
};

/// Everything the handler needs, built once at start-up: tool, resource
/// and prompt lists are cloned per `*/list` (cheap: `Cow`/`Arc` inside).
pub struct McpState {
    project: &'static ProjectDef,
    db: Arc<Database>,
    auth: Arc<Authenticator>,
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

const OUTPUT_SCHEMA: &str = r#"{"type":"object","properties":{"rows":{"type":"array","items":{"type":"object"}},"row_count":{"type":"integer","minimum":0},"truncated":{"type":"boolean"},"total_count":{"type":"integer","minimum":0}},"required":["rows","row_count","truncated"]}"#;

fn json_object(text: &str) -> Arc<JsonObject> {
    // The texts are generated at build time from serde_json output.
    Arc::new(serde_json::from_str(text).unwrap_or_default())
}

impl McpState {
    pub fn new(
        project: &'static ProjectDef,
        db: Arc<Database>,
        auth: Arc<Authenticator>,
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
                tool_access.push(endpoint.mcp_access);
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
        ct: &CancellationToken,
    ) -> Result<PageResult, QueryError> {
        let max_rows = (!endpoint.paginate).then_some(self.project.mcp.max_rows);
        let query = self.db.with_connection(move |connection, env| {
            let spec = QuerySpec {
                endpoint,
                text: plan.text,
                binds: &plan.binds,
                page,
                max_rows,
                format: Format::Json,
            };
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

impl ServerHandler for FlapiMcp {
    fn get_info(&self) -> ServerConfig {
        self.state.info.clone()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let granted = granted(&context);
        Ok(ListToolsResult::with_all_items(visible(
            &self.state.tools,
            &self.state.tool_access,
            granted,
        )))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.state.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(&endpoint) = self.state.tool_index.get(request.name.as_ref()) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{}`", request.name),
                None,
            ));
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let name: Cow<'static, str> = request.name.clone();
        let principal = caller(&context);
        if !endpoint
            .mcp_access
            .allows(principal.as_ref().map(|p| p.roles))
        {
            log_denied(principal.as_deref(), "tool", &name, &request_id);
            return Ok(error_result("Permission denied.").into());
        }
        let parsed = tool_input(self.state.project, endpoint, request.arguments.as_ref())
            .and_then(|t| (endpoint.plan)(&t.input).map(|plan| (plan, t.page)));
        let (mut plan, page) = match parsed {
            Ok(ok) => ok,
            Err(errors) => {
                let message = describe(&errors);
                self.notify_failure(&context, &name, &message).await;
                return Ok(error_result(message).into());
            }
        };
        self.state
            .auth
            .bind_caller(&mut plan.binds, principal.as_deref());
        let result = match self.state.run(endpoint, plan, page, &context.ct).await {
            Ok(result) => result,
            Err(error) => {
                tracing::error!(tool = %name, request_id = %request_id, %error, "tool call failed");
                let message = query_failure(&error, &request_id);
                self.notify_failure(&context, &name, &message).await;
                return Ok(error_result(message).into());
            }
        };
        let payload = tool_payload(&result, page);
        let structured: Option<Value> = serde_json::from_slice(&payload).ok();
        let text = String::from_utf8(payload).unwrap_or_default();
        let mut reply = CallToolResult::success(vec![ContentBlock::text(text)]);
        reply.structured_content = structured;
        Ok(reply.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let granted = granted(&context);
        Ok(ListResourcesResult::with_all_items(visible(
            &self.state.resources,
            &self.state.resource_access,
            granted,
        )))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let Some(&endpoint) = self.state.resource_index.get(&request.uri) else {
            return Err(ErrorData::resource_not_found(
                format!("no resource `{}`", request.uri),
                None,
            ));
        };
        let Some(resource) = &endpoint.resource else {
            return Err(ErrorData::resource_not_found("no such resource", None));
        };
        let principal = caller(&context);
        if !endpoint
            .mcp_access
            .allows(principal.as_ref().map(|p| p.roles))
        {
            // The same answer as for a resource that does not exist.
            log_denied(principal.as_deref(), "resource", resource.name, "");
            return Err(ErrorData::resource_not_found(
                format!("no resource `{}`", request.uri),
                None,
            ));
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
        let result = self
            .state
            .run(endpoint, plan, page, &context.ct)
            .await
            .map_err(|error| {
                let request_id = uuid::Uuid::new_v4().to_string();
                tracing::error!(resource = resource.name, request_id = %request_id, %error, "resource read failed");
                ErrorData::internal_error(query_failure(&error, &request_id), None)
            })?;
        let text = String::from_utf8(result.body).unwrap_or_default();
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri).with_mime_type(resource.mime_type),
        ])
        .into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let granted = granted(&context);
        Ok(ListPromptsResult::with_all_items(visible(
            &self.state.prompts,
            &self.state.prompt_access,
            granted,
        )))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let granted = granted(&context);
        // A prompt the caller may not use answers like one that does not exist.
        let Some(prompt) = self
            .state
            .project
            .prompts
            .iter()
            .find(|p| p.name == request.name && p.access.allows(granted))
        else {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt `{}`", request.name),
                None,
            ));
        };
        let values = prompt_values(prompt, request.arguments.as_ref())
            .map_err(|message| ErrorData::invalid_params(message, None))?;
        let text = prompt.render(&values);
        let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
        if let Some(d) = prompt.description {
            result = result.with_description(d);
        }
        Ok(result.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
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
        let info = CompletionInfo::with_all_values(matching)
            .map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut level) = self.log_level.lock() {
            *level = Some(request.level);
        }
        Ok(())
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
    on: bool,
    sessions: Arc<Mutex<Bindings>>,
}

impl McpGate {
    pub fn new(auth: Arc<Authenticator>, on: bool) -> Self {
        McpGate {
            auth,
            on,
            sessions: Arc::new(Mutex::new(Bindings::default())),
        }
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

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
    let principal = match gate.auth.require(request.headers()).await {
        Ok(principal) => principal,
        Err(denial) => return crate::server::denied(&gate.auth, denial, &request_id),
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
            return crate::server::error_json(
                axum::http::StatusCode::NOT_FOUND,
                "session not found",
                Some(&request_id),
            );
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
