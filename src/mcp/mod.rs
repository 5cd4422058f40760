//! MCP (SPEC §6) over the official SDK, `rmcp`: a [`ServerHandler`] over
//! the project's generated tables. Tools run the same validators and SQL
//! plans as REST; resources run their SQL without arguments; prompts render
//! text. Served as Streamable HTTP at `/mcp` and, for plain JSON-RPC
//! clients such as curl, at `POST /mcp/jsonrpc`.

// MCP logging (`logging/setLevel`, `notifications/message`) is deprecated by
// SEP-2577 in rmcp, but SPEC §6 asks for it and clients still send it.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};
use std::time::Instant;

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

use crate::audit::{Record, decision};
use crate::auth::Principal;
use crate::call::arguments::json_type_name;
use crate::call::policy::role_names;
use crate::call::{
    Answer, Arguments, Call, Credentials, Item, Outcome, Pipeline, Refusal, resource_uri,
};
use crate::db::{Page, PageResult, QueryError};
use crate::runtime::{Access, EndpointDef, FieldErrors, PromptDef, RoleMask};

pub mod gate;

pub use gate::McpGate;

/// Everything the handler needs, built once at start-up: tool, resource
/// and prompt lists are cloned per `*/list` (cheap: `Cow`/`Arc` inside).
pub struct McpState {
    pipeline: Arc<Pipeline>,
    /// In the order of `tools`, `resources` and `prompts`: who may see
    /// and use each.
    tool_access: Vec<Access>,
    resource_access: Vec<Access>,
    prompt_access: Vec<Access>,
    tools: Vec<Tool>,
    resources: Vec<Resource>,
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
    pub fn new(pipeline: Arc<Pipeline>) -> Arc<Self> {
        let project = pipeline.project;
        let output_schema = json_object(OUTPUT_SCHEMA);
        let mut tool_access = Vec::new();
        let mut resource_access = Vec::new();
        let mut tools = Vec::new();
        let mut resources = Vec::new();
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
            }
            if let Some(resource) = &endpoint.resource {
                let mut r = Resource::new(resource_uri(resource.name), resource.name)
                    .with_mime_type(resource.mime_type);
                if let Some(d) = resource.description {
                    r = r.with_description(d);
                }
                resources.push(r);
                resource_access.push(endpoint.resource_access);
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
            pipeline,
            tool_access,
            resource_access,
            prompt_access: project.prompts.iter().map(|p| p.access).collect(),
            tools,
            resources,
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
        if self.state.pipeline.audit.enabled()
            && let Some(principal) = caller(context)
        {
            record.principal = Some(principal.subject.clone());
            record.auth = Some(principal.kind.as_str());
            record.roles = role_names(self.state.pipeline.project.auth.roles, principal.roles)
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
        match self
            .state
            .pipeline
            .audit
            .record(record.since(started))
            .await
        {
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
        if self.state.pipeline.audit.admits() {
            return None;
        }
        let mut record = record.clone();
        record.decision = decision::UNAVAILABLE;
        record.status = 503;
        let _ = self
            .state
            .pipeline
            .audit
            .record(record.since(started))
            .await;
        Some(ErrorData::internal_error(UNAVAILABLE, None))
    }

    /// A message's arguments as its audit record keeps them.
    fn recorded_arguments(
        &self,
        arguments: Option<&JsonObject>,
        endpoint: Option<&EndpointDef>,
    ) -> Value {
        let value = || arguments.cloned().map(Value::Object).unwrap_or(Value::Null);
        self.state.pipeline.audit.arguments(value, endpoint)
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
}

impl FlapiMcp {
    /// A call of `item` by the caller the gate verified.
    fn call(&self, context: &RequestContext<RoleServer>, item: Item, arguments: Arguments) -> Call {
        Call {
            request_id: request_id_of(context),
            item,
            credentials: Credentials::Verified(caller(context)),
            client: client_address(context),
            arguments,
            cancel: Some(context.ct.clone()),
        }
    }
}

fn rate_message(rate: &crate::call::ratelimit::Decision, what: &str) -> String {
    format!(
        "Rate limit reached for this {what}: {} calls per {} s. Retry in {} s.",
        rate.limit, rate.window_secs, rate.retry_after_secs
    )
}

/// What a model reads when a tool call did not produce a result.
fn tool_refusal(answer: &Answer, request_id: &str) -> String {
    match &answer.outcome {
        Outcome::Refused(Refusal::Invalid(errors)) => describe(errors),
        Outcome::Refused(Refusal::Failed(error)) => query_failure(error, request_id),
        Outcome::Refused(Refusal::RateLimited(rate)) => rate_message(rate, "tool"),
        Outcome::Refused(Refusal::DryRunForbidden) => "Dry run is not permitted.".to_string(),
        Outcome::Refused(Refusal::Forbidden | Refusal::Hidden | Refusal::Unauthenticated(_)) => {
            "Permission denied.".to_string()
        }
        Outcome::Refused(Refusal::NotFound) => "Unknown tool.".to_string(),
        _ => UNAVAILABLE.to_string(),
    }
}

/// A tool's answer as MCP returns it: rows, a report or a sample as text
/// and structured content, or an `isError` result a model can act on.
fn tool_result(answer: Answer, request_id: &str) -> CallToolResult {
    let structured = match answer.outcome {
        Outcome::Rows { result, page, .. } => {
            let payload = tool_payload(&result, page);
            let structured: Option<Value> = serde_json::from_slice(&payload).ok();
            let text = String::from_utf8(payload).unwrap_or_default();
            let mut reply = CallToolResult::success(vec![ContentBlock::text(text)]);
            reply.structured_content = structured;
            return reply;
        }
        Outcome::Report(value) | Outcome::Sample(value) => value,
        Outcome::Refused(_) => return error_result(tool_refusal(&answer, request_id)),
    };
    let mut reply = CallToolResult::success(vec![ContentBlock::text(structured.to_string())]);
    reply.structured_content = Some(structured);
    reply
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
        let name = request.name.to_string();
        let call = self.call(
            &context,
            Item::Tool(name.clone()),
            Arguments::Json(request.arguments.unwrap_or_default()),
        );
        let request_id = call.request_id.clone();
        let answer = self.state.pipeline.run(call).await;
        // A tool the caller may not call answers like one that does not
        // exist: no existence oracle.
        if let Outcome::Refused(Refusal::NotFound | Refusal::Hidden) = answer.outcome {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{name}`"),
                None,
            ));
        }
        if let Outcome::Refused(Refusal::Invalid(_) | Refusal::Failed(_)) = &answer.outcome {
            let message = tool_refusal(&answer, &request_id);
            self.notify_failure(&context, &name, &message).await;
        }
        Ok(tool_result(answer, &request_id).into())
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
        let call = self.call(
            &context,
            Item::Resource(request.uri.clone()),
            Arguments::None,
        );
        let request_id = call.request_id.clone();
        let answer = self.state.pipeline.run(call).await;
        let mime_type = self
            .state
            .pipeline
            .resource(&request.uri)
            .and_then(|e| e.resource.as_ref())
            .map(|r| r.mime_type);
        let text = match answer.outcome {
            Outcome::Rows { result, .. } => String::from_utf8(result.body).unwrap_or_default(),
            Outcome::Report(value) | Outcome::Sample(value) => value.to_string(),
            // A resource the caller may not read answers like one that does not exist.
            Outcome::Refused(Refusal::NotFound | Refusal::Hidden) => {
                return Err(ErrorData::resource_not_found(
                    format!("no resource `{}`", request.uri),
                    None,
                ));
            }
            Outcome::Refused(Refusal::Invalid(errors)) => {
                return Err(ErrorData::internal_error(
                    format!("the resource cannot be read: {}", describe(&errors)),
                    None,
                ));
            }
            Outcome::Refused(Refusal::RateLimited(rate)) => {
                return Err(ErrorData::internal_error(
                    rate_message(&rate, "resource"),
                    None,
                ));
            }
            Outcome::Refused(Refusal::Failed(error)) => {
                return Err(ErrorData::internal_error(
                    query_failure(&error, &request_id),
                    None,
                ));
            }
            Outcome::Refused(_) => return Err(ErrorData::internal_error(UNAVAILABLE, None)),
        };
        let mut contents = ResourceContents::text(text, request.uri);
        if let Some(mime_type) = mime_type {
            contents = contents.with_mime_type(mime_type);
        }
        Ok(ReadResourceResult::new(vec![contents]).into())
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
            .pipeline
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
                    .pipeline
                    .project
                    .prompts
                    .iter()
                    .find(|x| x.name == p.name && x.access.allows(granted))
                    .and_then(|x| x.arguments.iter().find(|a| a.name == argument.name))
                    .map(|a| a.allowed_values);
                let from_tool = || {
                    self.state
                        .pipeline
                        .tool(p.name.as_str())
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
    Arc<LocalSessionManager>,
) {
    let mcp = &state.pipeline.project.mcp;
    let mut config = StreamableHttpServerConfig::default()
        // The edge checks `Host` for every route (`http::edge::host_guard`).
        .disable_allowed_hosts()
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
    let sessions = Arc::new(LocalSessionManager::default());
    let streamable = StreamableHttpService::new(factory.clone(), sessions.clone(), config.clone());
    let plain = StreamableHttpService::new(
        factory,
        Arc::new(LocalSessionManager::default()),
        config
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    (streamable, plain, sessions)
}
