//! The HTTP server: routes from the compiled project, request handling,
//! responses and errors (SPEC §5). Client-facing messages are separate
//! from logged ones: DuckDB text, SQL and paths never reach a client.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawPathParams, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::{Authenticator, Denial, Principal};
use crate::db::{Database, DbOptions, Page, QueryError, QuerySpec, StartupError, run_query};
use crate::encode::Format;
use crate::mcp::{self, McpState};
use crate::runtime::{
    EndpointDef, FieldErrors, FieldIn, ProjectDef, RequestInput, is_reserved_parameter,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A running project: the router and its database.
pub struct App {
    pub router: Router,
    pub db: Arc<Database>,
    pub project: &'static ProjectDef,
    pub auth: Arc<Authenticator>,
    /// Cancelled on shutdown: ends MCP sessions and their SSE streams so
    /// a graceful shutdown does not wait on idle streams.
    pub shutdown: CancellationToken,
}

struct AppState {
    project: &'static ProjectDef,
    db: Arc<Database>,
    auth: Arc<Authenticator>,
}

/// Opens the database (init SQL, sandbox, SQL checks) and builds the router.
pub fn app(project: &'static ProjectDef, options: &DbOptions) -> Result<App, StartupError> {
    let auth = Arc::new(Authenticator::new(project, &|name| options.env_var(name))?);
    let db = Database::open(project, options)?;
    let shutdown = CancellationToken::new();
    Ok(App {
        router: router(project, db.clone(), auth.clone(), shutdown.clone()),
        db,
        project,
        auth,
        shutdown,
    })
}

pub fn router(
    project: &'static ProjectDef,
    db: Arc<Database>,
    auth: Arc<Authenticator>,
    shutdown: CancellationToken,
) -> Router {
    let (streamable, plain) =
        mcp::services(McpState::new(project, db.clone(), auth.clone()), shutdown);
    let gate = mcp::McpGate::new(auth.clone(), project.auth.mcp);
    let state = Arc::new(AppState { project, db, auth });
    let mut router: Router<Arc<AppState>> = Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/ready", get(ready))
        .route("/openapi.json", get(openapi))
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
                      uri: Uri,
                      headers: HeaderMap| {
                    handle(state, endpoint, params, uri, headers)
                },
            ),
        );
    }
    router
        .fallback(|| async { error_json(StatusCode::NOT_FOUND, "no route matches this path", None) })
        .method_not_allowed_fallback(|| async {
            error_json(StatusCode::METHOD_NOT_ALLOWED, "this route does not accept that method", None)
        })
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| error_json(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
                // Path only: query strings may carry values of sensitive fields.
                let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
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
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let principal = match state.auth.check(endpoint.rest_access, &headers).await {
        Ok(principal) => principal,
        Err(denial) => return denied(&state.auth, denial, &request_id),
    };
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
    let query: Vec<(String, String)> = match serde_urlencoded::from_str(uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(_) => {
            errors.push("query", "is not a valid URL query string");
            return validation_error(errors);
        }
    };
    for (key, _) in &query {
        if is_reserved_parameter(key) && !errors.has(key) {
            errors.push(
                key,
                "is reserved for the verified caller and cannot be sent",
            );
        }
    }
    let format = negotiate(&query, &headers, &mut errors);
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
    let result = state
        .db
        .with_connection(move |connection, env| {
            let spec = QuerySpec {
                endpoint,
                text: plan.text,
                binds: &plan.binds,
                page: window,
                max_rows: None,
                format,
            };
            run_query(connection, env, &spec)
        })
        .await;
    let result = match result {
        Ok(result) => result,
        Err(error) => {
            let status = match error {
                QueryError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                QueryError::Unavailable | QueryError::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
                QueryError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            // The detail goes to the log only; the client gets the request id.
            tracing::error!(endpoint = endpoint.id, request_id = %request_id, %error, "request failed");
            let message = match status {
                StatusCode::GATEWAY_TIMEOUT => "the query took too long and was stopped",
                StatusCode::SERVICE_UNAVAILABLE => {
                    "the server is not able to run queries right now"
                }
                _ => "internal error",
            };
            return error_json(status, message, Some(&request_id));
        }
    };
    tracing::debug!(
        endpoint = endpoint.id,
        rows = result.rows,
        elapsed_us = started.elapsed().as_micros() as u64,
        "query done"
    );
    respond(&uri, window, format, result)
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

/// Serves until SIGINT or SIGTERM, then ends MCP sessions and finishes
/// in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            shutdown.cancel();
        })
        .await
}

async fn shutdown_signal() {
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
