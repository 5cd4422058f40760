//! Helpers shared by the integration tests: start a compiled project on a
//! fresh in-memory DuckDB and send requests through the router without a
//! socket (`tower::ServiceExt::oneshot`).
#![allow(dead_code)]

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use flapi::runtime::ProjectDef;
use flapi::{App, DbOptions};
use tower::ServiceExt;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Options for a fixture under `tests/fixtures/NAME` (relative data paths
/// resolve there).
pub fn fixture_options(project: &'static ProjectDef) -> DbOptions {
    let mut options = DbOptions::for_project(project);
    options.pool_size = 4;
    if project.policy.audit.is_some() {
        options.audit_file = Some(temp_audit_file());
    }
    if !options.base_dir.is_dir() {
        options.base_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    }
    options
}

/// Seconds since the Unix epoch, for token claims.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A fresh audit file path under the system temp folder, so tests running
/// in parallel never share (or leave behind) a project's log.
pub fn temp_audit_file() -> PathBuf {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random");
    let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::env::temp_dir().join(format!("flapi-test-audit-{name}.jsonl"))
}

pub fn start(project: &'static ProjectDef) -> App {
    start_with(project, fixture_options(project))
}

pub fn start_with(project: &'static ProjectDef, options: DbOptions) -> App {
    match flapi::app(project, &options) {
        Ok(app) => app,
        Err(e) => panic!("project `{}` failed to start: {e}", project.name),
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(router: &Router, uri: &str) -> Reply {
    send(
        router,
        Request::get(uri).body(Body::empty()).expect("request"),
    )
    .await
}

/// Percent-encodes a query or path value.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Serves `router` on a real loopback socket (127.0.0.1:0), for clients
/// that need one (rmcp's, the OIDC test issuer); returns the base URL.
pub async fn listen(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// The text blocks of a tool result, joined.
pub fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `Authorization: Basic` for a fixture user, whose password is `<name>-pw`.
pub fn basic(user: &str) -> String {
    use base64::Engine;
    let raw = format!("{user}:{user}-pw");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// An `rmcp` client on `{url}/mcp`, sending `authorization` on every request.
pub async fn mcp_client(
    url: &str,
    authorization: Option<&str>,
) -> Result<rmcp::service::RunningService<rmcp::service::RoleClient, ()>, String> {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let mut headers = std::collections::HashMap::new();
    if let Some(value) = authorization {
        headers.insert(
            axum::http::HeaderName::from_static("authorization"),
            axum::http::HeaderValue::from_str(value).expect("header value"),
        );
    }
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("{url}/mcp")).custom_headers(headers);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .map_err(|e| e.to_string())
}
