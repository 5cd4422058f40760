//! The gate in front of both MCP services: every HTTP request is
//! authenticated (with or without a session id), and a session is bound
//! to the principal that opened it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderValue, Request, header};

use crate::audit::{Auditor, Record, decision};
use crate::auth::{AuthError, Authenticator, Denial};
use crate::http::{error_json, forbidden, unauthenticated};

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
        let mut response = response;
        response.extensions_mut().insert(crate::http::Audited);
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
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let principal = match gate.auth.require(request.headers(), client).await {
        Ok(principal) => principal,
        Err(denial) => {
            let response = match denial {
                Denial::Unauthenticated(error) => {
                    record.decision = match error {
                        Some(AuthError::Throttled(_)) => decision::RATE_LIMITED,
                        Some(AuthError::Busy) => decision::UNAVAILABLE,
                        _ => decision::DENY,
                    };
                    unauthenticated(&gate.auth, error, &request_id)
                }
                Denial::Forbidden(_) => forbidden(&request_id),
            };
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
            let response = error_json(
                axum::http::StatusCode::NOT_FOUND,
                "session not found",
                Some(&request_id),
            );
            record.status = 404;
            record.principal = Some(principal.subject.clone());
            record.auth = Some(principal.kind.as_str());
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
