//! HTTP: the network edge ([`edge`]), the REST adapter ([`rest`]), and
//! what every HTTP answer shares: request ids, JSON errors, the 401/403
//! answers, and the audit record of requests that never become a call
//! (unknown paths, wrong methods, `/health`).

pub mod edge;
pub mod rest;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::audit::{Auditor, Record, decision};
use crate::auth::{AuthError, Authenticator};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Put on a response whose call the pipeline has recorded already.
#[derive(Clone, Copy)]
pub struct Audited;

/// The request id of a request (set by [`request_id`]).
pub fn request_id_of(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A client's `X-Request-Id` is kept when it is 1 to 128 characters of
/// `[A-Za-z0-9._:-]`, otherwise replaced by a new UUID; either way it is
/// returned on the response and recorded.
pub async fn request_id(mut request: Request<Body>, next: axum::middleware::Next) -> Response {
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

/// The decision a status stands for, for requests that are not calls.
fn decision_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=399 => decision::ALLOW,
        401 | 403 => decision::DENY,
        404 | 405 => decision::NOT_FOUND,
        429 => decision::RATE_LIMITED,
        400..=499 => decision::INVALID,
        _ => decision::ERROR,
    }
}

/// Where [`mark_route`] leaves the matched route template for
/// [`edge_audit`], also when the response never comes back (a timeout).
/// The record and the log name the template, never the path, which may
/// carry values.
#[derive(Clone, Default)]
pub struct RouteSlot(Arc<std::sync::OnceLock<MatchedPath>>);

/// Inside the router: notes the matched route template for the record
/// and on the request's log span.
pub async fn mark_route(request: Request<Body>, next: axum::middleware::Next) -> Response {
    if let Some(route) = request.extensions().get::<MatchedPath>() {
        tracing::Span::current().record("route", route.as_str());
        if let Some(slot) = request.extensions().get::<RouteSlot>() {
            let _ = slot.0.set(route.clone());
        }
    }
    next.run(request).await
}

/// Outside every other layer but the request id: the request timeout,
/// fail-closed refusal while the audit log cannot be written, and one
/// record for every response no call recorded: unknown paths, wrong
/// methods, `/health`, and what the edge refused (host, 413, 431,
/// preflight, timeout, panic, and MCP transport refusals). An MCP exchange
/// that went through is recorded per JSON-RPC message instead.
pub async fn edge_audit(
    State((audit, timeout)): State<(Arc<Auditor>, std::time::Duration)>,
    mut request: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let request_id = request_id_of(request.headers());
    if !audit.enabled() {
        // Nothing to record: only the timeout applies.
        return match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => error_json(
                StatusCode::SERVICE_UNAVAILABLE,
                "the request took too long",
                Some(&request_id),
            ),
        };
    }
    let started = Instant::now();
    let slot = RouteSlot::default();
    request.extensions_mut().insert(slot.clone());
    let method = request.method().clone();
    let mcp = matches!(request.uri().path(), "/mcp" | "/mcp/jsonrpc");
    let mcp_target = mcp.then(|| request.uri().path().to_string());
    let record = |target: &str| {
        let transport = if mcp { "mcp" } else { "rest" };
        Record::new(&request_id, transport, method.as_str(), target)
    };
    if !audit.admits() {
        let mut record = record(mcp_target.as_deref().unwrap_or("(edge)"));
        record.decision = decision::UNAVAILABLE;
        record.status = 503;
        let _ = audit.record(record.since(started)).await;
        return unavailable(&request_id);
    }
    let (response, timed_out) = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => (response, false),
        Err(_) => {
            tracing::warn!(request_id = %request_id, "request timed out");
            let response = error_json(
                StatusCode::SERVICE_UNAVAILABLE,
                "the request took too long",
                Some(&request_id),
            );
            (response, true)
        }
    };
    if response.extensions().get::<Audited>().is_some()
        || (mcp && !timed_out && response.status().as_u16() < 400)
    {
        return response;
    }
    let target = match (&mcp_target, slot.0.get()) {
        (Some(path), _) => path.clone(),
        (None, Some(route)) => route.as_str().to_string(),
        (None, None) => "(no route)".to_string(),
    };
    let mut record = record(&target);
    record.status = response.status().as_u16();
    record.decision = if timed_out {
        decision::TIMEOUT
    } else {
        decision_of(response.status())
    };
    match audit.record(record.since(started)).await {
        Ok(()) => response,
        Err(error) => {
            tracing::error!(request_id = %request_id, %error, "response withheld: its audit record was not written");
            unavailable(&request_id)
        }
    }
}

pub fn unavailable(request_id: &str) -> Response {
    error_json(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server cannot serve requests right now",
        Some(request_id),
    )
}

pub fn error_json(status: StatusCode, message: &str, request_id: Option<&str>) -> Response {
    let mut body = json!({"error": message});
    if let Some(id) = request_id {
        body["request_id"] = json!(id);
    }
    (status, axum::Json(body)).into_response()
}

/// 401 with a challenge per configured scheme; 429 when the caller's
/// address or user name is over its failed-authentication quota, 503 when
/// credential verification is saturated (both with `Retry-After`). The
/// log has the reason (never the credential).
pub fn unauthenticated(
    auth: &Authenticator,
    error: Option<AuthError>,
    request_id: &str,
) -> Response {
    if let Some(error) = error {
        tracing::debug!(request_id = %request_id, reason = %error, "authentication failed");
    }
    let retry = |status: StatusCode, message: &str, seconds: u64| {
        let mut response = error_json(status, message, Some(request_id));
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    };
    match error {
        Some(AuthError::Throttled(seconds)) => {
            return retry(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed authentications: retry after the time in Retry-After",
                seconds,
            );
        }
        Some(AuthError::Busy) => {
            return retry(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server cannot verify credentials right now",
                1,
            );
        }
        _ => {}
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

/// 403: the client learns nothing about the roles involved.
pub fn forbidden(request_id: &str) -> Response {
    error_json(StatusCode::FORBIDDEN, "forbidden", Some(request_id))
}

/// Serves plain HTTP until SIGINT or SIGTERM, then ends MCP sessions and
/// finishes in-flight requests (see [`edge::serve_listener`] for TLS and
/// limits).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listen = edge::Listen {
        tls: None,
        max_header_bytes: 16 << 10,
    };
    edge::serve_listener(listener.into_std()?, router, shutdown, listen).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    /// A panic inside a handler becomes a generic 500, and its record is
    /// written by the edge like any other refusal.
    #[tokio::test]
    async fn a_panic_is_answered_and_recorded() {
        let path = std::env::temp_dir().join(format!(
            "flapi-panic-{}-{}.jsonl",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let config = crate::audit::SinkConfig::File {
            path: path.clone(),
            max_bytes: 0,
            fsync: crate::audit::Fsync::Always,
            max_files: 0,
            key: None,
        };
        let audit = Arc::new(Auditor::start(config, false, &[], "p"));
        let router = Router::new()
            .route(
                "/boom/{id}",
                axum::routing::get(|| async {
                    if std::hint::black_box(true) {
                        panic!("handler bug");
                    }
                    "unreachable"
                }),
            )
            .layer(axum::middleware::from_fn(mark_route))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
                error_json(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
            }))
            .layer(axum::middleware::from_fn_with_state(
                (audit, std::time::Duration::from_secs(5)),
                edge_audit,
            ));
        let response = router
            .oneshot(
                Request::get("/boom/secret-7")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let log = std::fs::read_to_string(&path).expect("log");
        let record: serde_json::Value = log
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .expect("a record");
        assert_eq!(record["status"], 500);
        assert_eq!(record["decision"], "error");
        assert_eq!(record["target"], "/boom/{id}");
        assert!(
            !log.contains("secret-7") && !log.contains("handler bug"),
            "{log}"
        );
        let _ = std::fs::remove_file(&path);
    }
}
