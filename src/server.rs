//! The HTTP server: routes from the compiled project, request handling,
//! responses and errors (SPEC §5). Client-facing messages are separate
//! from logged ones: DuckDB text, SQL and paths never reach a client.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, RawPathParams, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::audit::{self, Auditor, Record, decision};
use crate::auth::{Authenticator, Denial, Principal};
use crate::db::{
    Database, DbOptions, Page, QueryError, QuerySpec, StartupError, run_query, sample_query,
};
use crate::edge::ClientAddr;
use crate::encode::Format;
use crate::mcp::{self, McpState};
use crate::policy::{Shape, Verdict, dry_run_report, may_dry_run, role_names};
use crate::ratelimit::{Decision, RateLimits};
use crate::runtime::{
    Access, AuditSinkDef, EndpointDef, FieldErrors, FieldIn, ProjectDef, RequestInput,
    is_reserved_parameter,
};

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The query parameter (REST) and argument (MCP) that asks for a dry run.
pub const DRY_RUN: &str = "_dryRun";

/// A running project: the router and its database.
pub struct App {
    pub router: Router,
    pub db: Arc<Database>,
    pub project: &'static ProjectDef,
    pub auth: Arc<Authenticator>,
    pub audit: Arc<Auditor>,
    /// Cancelled on shutdown: ends MCP sessions and their SSE streams so
    /// a graceful shutdown does not wait on idle streams.
    pub shutdown: CancellationToken,
}

struct AppState {
    project: &'static ProjectDef,
    db: Arc<Database>,
    auth: Arc<Authenticator>,
    audit: Arc<Auditor>,
    limits: Arc<RateLimits>,
}

/// The audit log the project asks for; `options.audit_file` replaces a
/// file sink's path (relative paths resolve against the project folder).
pub fn auditor(project: &ProjectDef, options: &DbOptions) -> Auditor {
    let Some(def) = &project.policy.audit else {
        return Auditor::disabled();
    };
    let config = match (&def.sink, &options.audit_file) {
        (AuditSinkDef::Stdout, None) => audit::SinkConfig::Stdout,
        (AuditSinkDef::File(path), override_path) => {
            let path = override_path
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from(path));
            audit::SinkConfig::File {
                path: options.base_dir.join(path),
                max_bytes: def.max_file_bytes,
                fsync: if def.fsync_always {
                    audit::Fsync::Always
                } else {
                    audit::Fsync::Interval(std::time::Duration::from_millis(def.fsync_interval_ms))
                },
            }
        }
        (AuditSinkDef::Stdout, Some(path)) => audit::SinkConfig::File {
            path: options.base_dir.join(path),
            max_bytes: def.max_file_bytes,
            fsync: audit::Fsync::Always,
        },
    };
    Auditor::start(config, def.fail_open, def.redact_arguments, project.name)
}

/// Opens the database (init SQL, sandbox, SQL checks) and builds the router.
pub fn app(project: &'static ProjectDef, options: &DbOptions) -> Result<App, StartupError> {
    let auth = Arc::new(Authenticator::new(project, &|name| options.env_var(name))?);
    let db = Database::open(project, options)?;
    let audit = Arc::new(auditor(project, options));
    let shutdown = CancellationToken::new();
    Ok(App {
        router: router(
            project,
            db.clone(),
            auth.clone(),
            audit.clone(),
            shutdown.clone(),
        ),
        db,
        project,
        auth,
        audit,
        shutdown,
    })
}

pub fn router(
    project: &'static ProjectDef,
    db: Arc<Database>,
    auth: Arc<Authenticator>,
    audit: Arc<Auditor>,
    shutdown: CancellationToken,
) -> Router {
    let limits = Arc::new(RateLimits::new(project));
    let (streamable, plain) = mcp::services(
        McpState::new(
            project,
            db.clone(),
            auth.clone(),
            audit.clone(),
            limits.clone(),
        ),
        shutdown,
    );
    let gate = mcp::McpGate::new(auth.clone(), project.auth.mcp, audit.clone());
    let state = Arc::new(AppState {
        project,
        db,
        auth,
        audit: audit.clone(),
        limits,
    });
    let mcp_routes: Router = Router::new()
        .route_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    gate.clone(),
                    mcp::gate,
                ))
                .service(streamable),
        )
        .route_service(
            "/mcp/jsonrpc",
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(gate, mcp::gate))
                .map_request(mcp::plain_jsonrpc_request)
                .service(plain),
        );
    let mut router: Router<Arc<AppState>> = Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/ready", get(ready))
        .route("/openapi.json", get(openapi));
    for endpoint in project.endpoints {
        let Some(route) = endpoint.route else {
            continue;
        };
        router = router.route(
            route,
            get(
                move |state: State<Arc<AppState>>,
                      params: Result<
                    RawPathParams,
                    axum::extract::rejection::RawPathParamsRejection,
                >,
                      client: ClientAddr,
                      uri: Uri,
                      headers: HeaderMap| {
                    handle(state, endpoint, params, client, uri, headers)
                },
            ),
        );
    }
    let router = router
        .fallback(|| async {
            error_json(StatusCode::NOT_FOUND, "no route matches this path", None)
        })
        .method_not_allowed_fallback(|| async {
            error_json(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not accept that method",
                None,
            )
        })
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(audit, rest_audit))
        .merge(mcp_routes)
        .layer(CatchPanicLayer::custom(|_| {
            error_json(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
        }));
    crate::edge::harden(router, &project.edge)
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
                // Path only: query strings may carry values of sensitive fields.
                let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(axum::middleware::from_fn(request_id))
}

/// A client's `X-Request-Id` is kept when it is 1 to 128 characters of
/// `[A-Za-z0-9._:-]`, otherwise replaced by a new UUID; either way it is
/// returned on the response and recorded.
async fn request_id(mut request: Request<Body>, next: axum::middleware::Next) -> Response {
    let valid = |v: &HeaderValue| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(c))
    };
    let id = match request.headers().get(REQUEST_ID) {
        Some(v) if valid(v) => v.clone(),
        _ => HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
    };
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// What a REST handler tells the audit layer about its call.
#[derive(Clone, Default)]
pub(crate) struct AuditNote {
    principal: Option<String>,
    roles: Vec<&'static str>,
    decision: Option<&'static str>,
    rows: Option<u64>,
    truncated: Option<bool>,
    redacted: Vec<String>,
    arguments: serde_json::Value,
    /// The route's rate-limit decision, reported in headers.
    rate: Option<Decision>,
}

/// The decision a status stands for when the handler did not say.
pub(crate) fn decision_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=399 => decision::ALLOW,
        401 | 403 => decision::DENY,
        404 | 405 => decision::NOT_FOUND,
        400..=499 => decision::INVALID,
        _ => decision::ERROR,
    }
}

/// One record per REST request, written before the response leaves; with
/// the log unwritable (fail-closed) nothing runs and the answer is 503.
async fn rest_audit(
    State(audit): State<Arc<Auditor>>,
    request: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    if !audit.enabled() {
        return next.run(request).await;
    }
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let target = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "(no route)".to_string());
    let mut record = Record::new(&request_id, "rest", request.method().as_str(), &target);
    if !audit.admits() {
        record.decision = decision::UNAVAILABLE;
        record.status = 503;
        let _ = audit.record(record.since(started)).await;
        return unavailable(&request_id);
    }
    let mut response = next.run(request).await;
    let note = response
        .extensions_mut()
        .remove::<AuditNote>()
        .unwrap_or_default();
    record.status = response.status().as_u16();
    record.decision = note.decision.unwrap_or(decision_of(response.status()));
    record.principal = note.principal;
    record.roles = note.roles.iter().map(|r| r.to_string()).collect();
    record.rows = note.rows;
    record.truncated = note.truncated;
    record.redacted_columns = note.redacted;
    record.arguments = note.arguments;
    match audit.record(record.since(started)).await {
        Ok(()) => response,
        Err(error) => {
            tracing::error!(request_id = %request_id, %error, "response withheld: its audit record was not written");
            unavailable(&request_id)
        }
    }
}

pub(crate) fn unavailable(request_id: &str) -> Response {
    error_json(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server cannot serve requests right now",
        Some(request_id),
    )
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.db.ping().await {
        axum::Json(json!({"status": "ready"})).into_response()
    } else {
        error_json(StatusCode::SERVICE_UNAVAILABLE, "not ready", None)
    }
}

async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.project.openapi_json,
    )
        .into_response()
}

pub(crate) fn error_json(status: StatusCode, message: &str, request_id: Option<&str>) -> Response {
    let mut body = json!({"error": message});
    if let Some(id) = request_id {
        body["request_id"] = json!(id);
    }
    (status, axum::Json(body)).into_response()
}

/// 401 with a challenge per configured scheme, or 403. The client learns
/// nothing about the roles involved; the log has the reason (never the
/// credential).
pub fn denied(auth: &Authenticator, denial: Denial, request_id: &str) -> Response {
    match denial {
        Denial::Unauthenticated(error) => {
            if let Some(error) = error {
                tracing::debug!(request_id = %request_id, reason = %error, "authentication failed");
            }
            let mut response = error_json(
                StatusCode::UNAUTHORIZED,
                "authentication required",
                Some(request_id),
            );
            for challenge in auth.challenges(error) {
                response
                    .headers_mut()
                    .append(header::WWW_AUTHENTICATE, challenge);
            }
            response
        }
        Denial::Forbidden(principal) => {
            log_forbidden(&principal, request_id);
            error_json(StatusCode::FORBIDDEN, "forbidden", Some(request_id))
        }
    }
}

fn log_forbidden(principal: &Principal, request_id: &str) {
    tracing::info!(request_id = %request_id, subject = %principal.subject, "access denied: no permitted role");
}

fn validation_error(errors: FieldErrors) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"errors": errors.0})),
    )
        .into_response()
}

/// Query parameters the server reads itself.
const FORMAT: &str = "format";
const LIMIT: &str = "limit";
const OFFSET: &str = "offset";

fn negotiate(query: &[(String, String)], headers: &HeaderMap, errors: &mut FieldErrors) -> Format {
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
        None => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if accept.contains("text/csv") {
                Format::Csv
            } else {
                Format::Json
            }
        }
    }
}

fn page(project: &ProjectDef, query: &[(String, String)], errors: &mut FieldErrors) -> Page {
    let mut number = |name: &str, default: u64| -> u64 {
        let mut values = query.iter().filter(|(k, _)| k == name);
        match (values.next(), values.next()) {
            (None, _) => default,
            (Some(_), Some(_)) => {
                errors.push(name, "was given more than once");
                default
            }
            (Some((_, v)), None) => match v.trim().parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    errors.push(name, "must be a non-negative integer");
                    default
                }
            },
        }
    };
    let limit = number(LIMIT, project.default_limit).min(project.max_limit);
    let offset = number(OFFSET, 0);
    Page { limit, offset }
}

async fn handle(
    State(state): State<Arc<AppState>>,
    endpoint: &'static EndpointDef,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    ClientAddr(client): ClientAddr,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut note = AuditNote::default();
    let mut response = serve_endpoint(
        &state,
        endpoint,
        params,
        client,
        &uri,
        &headers,
        &request_id,
        &mut note,
    )
    .await;
    if let Some(rate) = note.rate {
        for (name, value) in rate.headers() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    if state.audit.enabled() {
        response.extensions_mut().insert(note);
    }
    response
}

impl AuditNote {
    fn caller(&mut self, project: &ProjectDef, principal: Option<&Principal>) {
        if let Some(p) = principal {
            self.principal = Some(p.subject.clone());
            self.roles = role_names(project.auth.roles, p.roles);
        }
    }
}

/// A request's arguments as the audit log records them: path and query
/// values by name, secrets and sensitive fields redacted.
fn audit_arguments(
    audit: &Auditor,
    endpoint: &EndpointDef,
    path: &[(String, String)],
    query: &[(String, String)],
) -> serde_json::Value {
    let values = || {
        path.iter()
            .chain(query)
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    audit.arguments(values, Some(endpoint))
}

fn dry_run_flag(query: &mut Vec<(String, String)>, errors: &mut FieldErrors) -> bool {
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

#[allow(clippy::too_many_arguments)]
async fn serve_endpoint(
    state: &AppState,
    endpoint: &'static EndpointDef,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    client: Option<std::net::IpAddr>,
    uri: &Uri,
    headers: &HeaderMap,
    request_id: &str,
    note: &mut AuditNote,
) -> Response {
    let started = Instant::now();
    let mut errors = FieldErrors::new();
    let path: Vec<(String, String)> = match params {
        Ok(params) => params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        Err(_) => {
            errors.push("path", "is not valid UTF-8 after percent-decoding");
            return validation_error(errors);
        }
    };
    let mut query: Vec<(String, String)> =
        match serde_urlencoded::from_str(uri.query().unwrap_or("")) {
            Ok(q) => q,
            Err(_) => {
                errors.push("query", "is not a valid URL query string");
                return validation_error(errors);
            }
        };
    note.arguments = audit_arguments(&state.audit, endpoint, &path, &query);
    let dry_run = dry_run_flag(&mut query, &mut errors);

    // Who is calling: a public route needs nobody, unless a dry run asks
    // who may see the plan.
    let access = endpoint.rest_access;
    let principal = if access == Access::Public && !dry_run {
        None
    } else {
        match state.auth.authenticate(headers).await {
            Ok(Some(principal)) => Some(principal),
            Ok(None) if access == Access::Public => None,
            Ok(None) => {
                return denied(&state.auth, Denial::Unauthenticated(None), request_id);
            }
            Err(e) => {
                return denied(&state.auth, Denial::Unauthenticated(Some(e)), request_id);
            }
        }
    };
    note.caller(state.project, principal.as_deref());
    let granted = principal.as_ref().map(|p| p.roles);
    let verdict = Verdict::decide(access, granted, endpoint.shadow);
    if dry_run && !may_dry_run(state.project, principal.as_deref()) {
        tracing::info!(request_id = %request_id, "dry run refused: no dry-run role");
        return error_json(
            StatusCode::FORBIDDEN,
            "dry run is not permitted for this caller",
            Some(request_id),
        );
    }
    if !dry_run && verdict == Verdict::Deny {
        let denial = match principal.clone() {
            Some(principal) => Denial::Forbidden(principal),
            None => Denial::Unauthenticated(None),
        };
        return denied(&state.auth, denial, request_id);
    }
    if verdict == Verdict::WouldDeny && !dry_run {
        note.decision = Some(decision::WOULD_DENY);
    }
    // Rate limits count verified callers (after authentication), so an
    // invalid token is a 401 above and never gets a bucket of its own.
    if let Some(rate) = state.limits.route(
        state.project,
        endpoint,
        principal.as_ref().map(|p| p.identity()).as_deref(),
        client,
    ) {
        note.rate = Some(rate);
        if !rate.allowed {
            if endpoint.shadow {
                note.decision = Some(decision::WOULD_DENY);
            } else {
                note.decision = Some(decision::RATE_LIMITED);
                tracing::info!(request_id = %request_id, endpoint = endpoint.id, "rate limited");
                return error_json(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests: retry after the time in Retry-After",
                    Some(request_id),
                );
            }
        }
    }

    for (key, _) in &query {
        if is_reserved_parameter(key) && !errors.has(key) {
            errors.push(
                key,
                "is reserved for the verified caller and cannot be sent",
            );
        }
    }
    let format = negotiate(&query, headers, &mut errors);
    let window = endpoint
        .paginate
        .then(|| page(state.project, &query, &mut errors));
    if endpoint.strict_fields {
        for (key, _) in &query {
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
    let input = RequestInput {
        path,
        query,
        headers: headers
            .iter()
            .filter_map(|(k, v)| {
                // UTF-8, not only visible ASCII: header fields may carry text.
                std::str::from_utf8(v.as_bytes())
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect(),
        body: None,
    };
    let mut plan = match (endpoint.plan)(&input) {
        Ok(plan) if errors.is_empty() => plan,
        Ok(_) => return validation_error(errors),
        Err(mut field_errors) => {
            field_errors.0.extend(errors.0);
            return validation_error(field_errors);
        }
    };
    state
        .auth
        .bind_caller(&mut plan.binds, principal.as_deref());
    let shape = Shape::for_caller(endpoint, granted, None);
    if dry_run {
        note.decision = Some(decision::DRY_RUN);
        let report = state
            .db
            .for_endpoint(endpoint, move |connection, env| {
                let spec = QuerySpec::new(endpoint, &plan, window, format)
                    .shaped(shape.max_rows, &shape.redact);
                dry_run_report(connection, env, &spec, verdict, &shape)
            })
            .await;
        return match report {
            Ok(report) => axum::Json(report).into_response(),
            Err(error) => query_error(endpoint, request_id, error),
        };
    }

    if shape.sample {
        let sample = state
            .db
            .for_endpoint(endpoint, move |connection, env| {
                sample_query(
                    connection,
                    env,
                    &QuerySpec::new(endpoint, &plan, None, format),
                )
            })
            .await;
        return match sample {
            Ok(sample) => {
                note.rows = Some(0);
                axum::Json(sample.to_json()).into_response()
            }
            Err(error) => query_error(endpoint, request_id, error),
        };
    }

    let max_rows = shape.max_rows;
    let redact = shape.redact.clone();
    let result = state
        .db
        .for_endpoint(endpoint, move |connection, env| {
            let spec = QuerySpec::new(endpoint, &plan, window, format).shaped(max_rows, &redact);
            run_query(connection, env, &spec)
        })
        .await;
    let result = match result {
        Ok(result) => result,
        Err(error) => return query_error(endpoint, request_id, error),
    };
    tracing::debug!(
        endpoint = endpoint.id,
        rows = result.rows,
        elapsed_us = started.elapsed().as_micros() as u64,
        "query done"
    );
    note.rows = Some(result.rows);
    note.truncated = Some(result.truncated);
    note.redacted = result.redacted.clone();
    if endpoint.shadow && shape.would_change(result.rows, !shape.would_redact.is_empty()) {
        note.decision = Some(decision::WOULD_DENY);
        note.redacted = shape.would_redact.iter().map(|c| c.to_string()).collect();
    }
    respond(uri, window, format, result)
}

fn query_error(endpoint: &EndpointDef, request_id: &str, error: QueryError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // The detail goes to the log only; the client gets the request id.
    tracing::error!(endpoint = endpoint.id, request_id = %request_id, %error, "request failed");
    let message = match status {
        StatusCode::GATEWAY_TIMEOUT => "the query took too long and was stopped",
        StatusCode::SERVICE_UNAVAILABLE => "the server is not able to run queries right now",
        _ => "internal error",
    };
    let busy = matches!(error, QueryError::Busy(_));
    let mut response = error_json(status, message, Some(request_id));
    if busy {
        // Saturation passes quickly: a query slot frees when one finishes.
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn next_link(uri: &Uri, page: Page, total: Option<u64>) -> Option<String> {
    let total = total?;
    let next_offset = page.offset.checked_add(page.limit)?;
    if page.limit == 0 || next_offset >= total {
        return None;
    }
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    pairs.retain(|(k, _)| k != OFFSET && k != LIMIT);
    pairs.push((LIMIT.to_string(), page.limit.to_string()));
    pairs.push((OFFSET.to_string(), next_offset.to_string()));
    let query = serde_urlencoded::to_string(&pairs).ok()?;
    Some(format!("{}?{}", uri.path(), query))
}

fn respond(
    uri: &Uri,
    window: Option<Page>,
    format: Format,
    result: crate::db::PageResult,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if result.truncated {
        headers.insert(
            HeaderName::from_static("x-truncated"),
            HeaderValue::from_static("true"),
        );
    }
    let body = match (window, format) {
        (Some(page), _) => {
            let next = next_link(uri, page, result.total);
            let total = result.total.unwrap_or(result.rows);
            let set = |headers: &mut HeaderMap, name: &'static str, value: String| {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(HeaderName::from_static(name), v);
                }
            };
            set(&mut headers, "x-total-count", total.to_string());
            set(&mut headers, "x-offset", page.offset.to_string());
            set(&mut headers, "x-limit", page.limit.to_string());
            if let Some(next) = &next {
                set(&mut headers, "x-next", next.clone());
            }
            if format == Format::Json {
                let mut body = Vec::with_capacity(result.body.len() + 64);
                body.extend_from_slice(b"{\"data\":");
                body.extend_from_slice(&result.body);
                body.extend_from_slice(b",\"next\":");
                body.extend_from_slice(
                    &serde_json::to_vec(&next).unwrap_or_else(|_| b"null".to_vec()),
                );
                body.extend_from_slice(format!(",\"total_count\":{total}}}").as_bytes());
                body
            } else {
                result.body
            }
        }
        (None, _) => result.body,
    };
    (StatusCode::OK, headers, body).into_response()
}

/// Serves plain HTTP until SIGINT or SIGTERM, then ends MCP sessions and
/// finishes in-flight requests (see [`crate::edge::serve_listener`] for
/// TLS and limits).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listen = crate::edge::Listen {
        tls: None,
        max_header_bytes: 16 << 10,
    };
    crate::edge::serve_listener(listener.into_std()?, router, shutdown, listen).await
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
