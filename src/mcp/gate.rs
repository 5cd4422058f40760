//! The gate in front of both MCP services: every HTTP request is
//! authenticated (with or without a session id), and a session is bound
//! to the principal that opened it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderValue, Request, header};

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use crate::audit::{Auditor, Record, decision};
use crate::auth::{AuthError, Authenticator, Denial};
use crate::http::{error_json, forbidden, unauthenticated};

/// Sessions bound to principals, at most this many in all: beyond it (after
/// forgetting sessions rmcp has ended) a new session is refused, never
/// made room for by dropping another caller's binding.
const MAX_BOUND_SESSIONS: usize = 100_000;
/// Live sessions one principal may hold at once.
pub const MAX_SESSIONS_PER_PRINCIPAL: usize = 16;

#[derive(Default)]
struct Bindings {
    /// Session id to the identity that opened it.
    owner: HashMap<String, String>,
    /// Identity to its session ids.
    held: HashMap<String, Vec<String>>,
    /// Identity to its `initialize` requests under way (counted against
    /// its cap until their session is bound or refused).
    opening: HashMap<String, usize>,
}

impl Bindings {
    fn bind(&mut self, id: String, identity: String) {
        self.held
            .entry(identity.clone())
            .or_default()
            .push(id.clone());
        self.owner.insert(id, identity);
    }

    fn unbind(&mut self, id: &str) {
        if let Some(identity) = self.owner.remove(id)
            && let Some(ids) = self.held.get_mut(&identity)
        {
            ids.retain(|x| x != id);
            if ids.is_empty() {
                self.held.remove(&identity);
            }
        }
    }

    /// Forgets bindings of sessions rmcp no longer has (expired, closed).
    fn prune(&mut self, live: &dyn Fn(&str) -> bool, only: Option<&str>) {
        let dead: Vec<String> = match only {
            Some(identity) => self.held.get(identity).cloned().unwrap_or_default(),
            None => self.owner.keys().cloned().collect(),
        }
        .into_iter()
        .filter(|id| !live(id))
        .collect();
        for id in dead {
            self.unbind(&id);
        }
    }

    fn count(&self, identity: &str) -> usize {
        self.held.get(identity).map_or(0, Vec::len)
            + self.opening.get(identity).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.owner.len() + self.opening.values().sum::<usize>()
    }
}

/// An `initialize` under way: its place under the caps, given back when
/// it ends (bound or not, or dropped with its request).
struct Opening {
    sessions: Arc<Mutex<Bindings>>,
    identity: String,
}

impl Drop for Opening {
    fn drop(&mut self) {
        if let Ok(mut bindings) = self.sessions.lock()
            && let Some(n) = bindings.opening.get_mut(&self.identity)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                bindings.opening.remove(&self.identity);
            }
        }
    }
}

/// Authentication for every HTTP request to the MCP endpoints, with or
/// without a session id, and sessions bound to their principal.
#[derive(Clone)]
pub struct McpGate {
    auth: Arc<Authenticator>,
    audit: Arc<Auditor>,
    on: bool,
    sessions: Arc<Mutex<Bindings>>,
    /// rmcp's sessions of `/mcp`: which ids are still live.
    manager: Arc<LocalSessionManager>,
}

impl McpGate {
    pub fn new(
        auth: Arc<Authenticator>,
        on: bool,
        audit: Arc<Auditor>,
        manager: Arc<LocalSessionManager>,
    ) -> Self {
        McpGate {
            auth,
            audit,
            on,
            sessions: Arc::new(Mutex::new(Bindings::default())),
            manager,
        }
    }

    /// The ids rmcp still serves.
    async fn live_ids(&self) -> std::collections::HashSet<String> {
        self.manager
            .sessions
            .read()
            .await
            .keys()
            .map(|id| id.to_string())
            .collect()
    }

    /// A place for a new session of `identity`, reserved under the lock
    /// (so concurrent `initialize` requests cannot all pass): its own dead
    /// bindings are forgotten first, then its live and opening sessions
    /// count against its cap, and the total against the store's.
    async fn room_for(&self, identity: &str) -> Option<Opening> {
        let live = self.live_ids().await;
        let mut bindings = self.sessions.lock().ok()?;
        bindings.prune(&|id| live.contains(id), Some(identity));
        if bindings.total() >= MAX_BOUND_SESSIONS {
            bindings.prune(&|id| live.contains(id), None);
        }
        if bindings.count(identity) >= MAX_SESSIONS_PER_PRINCIPAL
            || bindings.total() >= MAX_BOUND_SESSIONS
        {
            return None;
        }
        *bindings.opening.entry(identity.to_string()).or_insert(0) += 1;
        Some(Opening {
            sessions: self.sessions.clone(),
            identity: identity.to_string(),
        })
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
    let opening = session.is_none()
        && request.method() == axum::http::Method::POST
        && request.uri().path() == "/mcp";
    let reserved = if opening {
        gate.room_for(&identity).await
    } else {
        None
    };
    if opening && reserved.is_none() {
        tracing::info!(request_id = %request_id, subject = %principal.subject, "MCP session refused: the caller holds too many");
        let response = error_json(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too many open MCP sessions for this caller: close one (DELETE) or let one expire",
            Some(&request_id),
        );
        record.status = 429;
        record.decision = decision::RATE_LIMITED;
        record.principal = Some(principal.subject.clone());
        return gate.refusal(record, started, response).await;
    }
    request.extensions_mut().insert(principal);
    let response = next.run(request).await;
    if let Ok(mut bindings) = gate.sessions.lock() {
        match (&session, response.headers().get(SESSION_HEADER)) {
            (None, Some(new)) => {
                if let Ok(new) = new.to_str() {
                    bindings.bind(new.to_string(), identity);
                }
            }
            (Some(id), _) if closing && response.status().is_success() => bindings.unbind(id),
            // rmcp no longer knows the session (it expired): forget it.
            (Some(id), _) if response.status() == axum::http::StatusCode::NOT_FOUND => {
                bindings.unbind(id)
            }
            _ => {}
        }
    }
    drop(reserved);
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
