//! A running project: the database, the authenticator, the audit log and
//! the call pipeline, and the router that puts REST and MCP in front of
//! them.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawPathParams, State};
use axum::http::{HeaderMap, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::audit::{self, Auditor};
use crate::auth::Authenticator;
use crate::call::Pipeline;
use crate::db::{Database, DbOptions, StartupError};
use crate::http::edge::ClientAddr;
use crate::http::{REQUEST_ID, edge_audit, error_json, mark_route, rest};
use crate::mcp::{self, McpGate, McpState};
use crate::runtime::{AuditSinkDef, ProjectDef};

/// A running project: the router and its database.
pub struct App {
    pub router: Router,
    pub db: Arc<Database>,
    pub project: &'static ProjectDef,
    pub auth: Arc<Authenticator>,
    pub audit: Arc<Auditor>,
    /// The call pipeline REST and MCP share.
    pub pipeline: Arc<Pipeline>,
    /// Cancelled on shutdown: ends MCP sessions and their SSE streams so
    /// a graceful shutdown does not wait on idle streams.
    pub shutdown: CancellationToken,
}

/// The audit chain's key, from `FLAPI_AUDIT_KEY` (none: a plain SHA-256
/// chain); a key shorter than 32 bytes refuses start-up.
pub fn audit_key(options: &DbOptions) -> Result<Option<audit::ChainKey>, StartupError> {
    match options.env_var("FLAPI_AUDIT_KEY") {
        None => Ok(None),
        Some(key) => audit::ChainKey::new(key.as_bytes())
            .map(Some)
            .map_err(StartupError::Audit),
    }
}

/// The audit log the project asks for; `options.audit_file` replaces a
/// file sink's path (relative paths resolve against the project folder).
pub fn auditor(project: &ProjectDef, options: &DbOptions, key: Option<audit::ChainKey>) -> Auditor {
    let Some(def) = &project.policy.audit else {
        return Auditor::disabled();
    };
    let file = |path: std::path::PathBuf, fsync| audit::SinkConfig::File {
        path: options.base_dir.join(path),
        max_bytes: def.max_file_bytes,
        fsync,
        max_files: def.max_files,
        key: key.clone(),
    };
    let config = match (&def.sink, &options.audit_file) {
        (AuditSinkDef::Stdout, None) => audit::SinkConfig::Stdout(key.clone()),
        (AuditSinkDef::File(path), override_path) => file(
            override_path
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from(path)),
            if def.fsync_always {
                audit::Fsync::Always
            } else {
                audit::Fsync::Interval(std::time::Duration::from_millis(def.fsync_interval_ms))
            },
        ),
        (AuditSinkDef::Stdout, Some(path)) => file(path.clone(), audit::Fsync::Always),
    };
    Auditor::start(config, def.fail_open, def.redact_arguments, project.name)
}

/// Opens the database (init SQL, sandbox, SQL checks) and builds the router.
pub fn app(project: &'static ProjectDef, options: &DbOptions) -> Result<App, StartupError> {
    let auth = Arc::new(Authenticator::new(project, &|name| options.env_var(name))?);
    let db = Database::open(project, options)?;
    let audit = Arc::new(auditor(project, options, audit_key(options)?));
    let shutdown = CancellationToken::new();
    let pipeline = Pipeline::new(project, db.clone(), auth.clone(), audit.clone());
    Ok(App {
        router: router(pipeline.clone(), shutdown.clone()),
        db,
        project,
        auth,
        audit,
        pipeline,
        shutdown,
    })
}

/// REST routes, `/mcp` and `/mcp/jsonrpc`, health and OpenAPI, behind the
/// network edge.
pub fn router(pipeline: Arc<Pipeline>, shutdown: CancellationToken) -> Router {
    let project = pipeline.project;
    let audit = pipeline.audit.clone();
    let mcp_routes = mcp_routes(&pipeline, shutdown);
    let mut router: Router<Arc<Pipeline>> = Router::new()
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
                move |State(pipeline): State<Arc<Pipeline>>,
                      params: Result<RawPathParams, _>,
                      client: ClientAddr,
                      uri: Uri,
                      headers: HeaderMap| {
                    rest::handle(pipeline, endpoint, params, client, uri, headers)
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
        .with_state(pipeline)
        .layer(axum::middleware::from_fn(mark_route))
        .merge(mcp_routes)
        .layer(CatchPanicLayer::custom(|_| {
            error_json(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
        }));
    let timeout = std::time::Duration::from_millis(project.edge.request_timeout_ms);
    crate::http::edge::harden(router, &project.edge)
        .layer(axum::middleware::from_fn_with_state(
            (audit, timeout),
            edge_audit,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
                // The route template is recorded once matched; never the
                // path, which may carry values of sensitive fields.
                let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %request.method(), route = tracing::field::Empty, request_id = %id)
            }),
        )
        .layer(axum::middleware::from_fn(crate::http::edge::security_headers))
        .layer(axum::middleware::from_fn(crate::http::request_id))
}

/// Streamable HTTP at `/mcp` and plain JSON-RPC at `/mcp/jsonrpc`, both
/// behind the gate.
fn mcp_routes(pipeline: &Arc<Pipeline>, shutdown: CancellationToken) -> Router {
    let (streamable, plain, sessions) = mcp::services(McpState::new(pipeline.clone()), shutdown);
    let gate = McpGate::new(
        pipeline.auth.clone(),
        pipeline.project.auth.mcp,
        pipeline.audit.clone(),
        sessions,
    );
    Router::new()
        .route_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    gate.clone(),
                    mcp::gate::gate,
                ))
                .service(streamable),
        )
        .route_service(
            "/mcp/jsonrpc",
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(gate, mcp::gate::gate))
                .map_request(mcp::gate::plain_jsonrpc_request)
                .service(plain),
        )
}

async fn ready(State(pipeline): State<Arc<Pipeline>>) -> Response {
    if pipeline.db.ping().await {
        axum::Json(json!({"status": "ready"})).into_response()
    } else {
        error_json(StatusCode::SERVICE_UNAVAILABLE, "not ready", None)
    }
}

async fn openapi(State(pipeline): State<Arc<Pipeline>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        pipeline.project.openapi_json,
    )
        .into_response()
}

/// The config auditor's warnings about the listen address
/// (`flapi_codegen::check::auditor`), for the address the server really
/// binds: a `--host` flag can expose what the project bound to loopback.
pub fn exposure_warnings(project: &ProjectDef, host: std::net::IpAddr, tls: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    if host.is_loopback() {
        return warnings;
    }
    let routes = project.endpoints.iter().any(|e| e.route.is_some());
    if routes && !project.auth.rest && !tls {
        warnings.push(format!(
            "the server listens on `{host}` without TLS and without authentication: anyone who can reach it can call every route"
        ));
    }
    let tools = project
        .endpoints
        .iter()
        .any(|e| e.tool.is_some() || e.resource.is_some());
    if tools && !project.auth.mcp {
        warnings.push(format!(
            "MCP tools are served on `{host}` without authentication"
        ));
    }
    warnings
}
