//! Secrets never reach the log (SPEC §12). The real log pipeline
//! (`flapi::logging`, text format, at `trace`, the most verbose level)
//! writes into a buffer while the `edge` fixture is driven through every
//! path that logs: successful and failed authentication (Basic and
//! bearer), a forbidden call, DuckDB failures on a sensitive value and on
//! a connection string with credentials, rate limits, MCP calls. Planted
//! secrets are then searched for; the messages those paths log must be
//! there, so the search is over a log that saw them. One test in this
//! binary: the subscriber is process-wide.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use common::{basic, mcp_client, send};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rmcp::model::CallToolRequestParams;
use serde_json::json;

mod fixture {
    flapi_macros::project!("tests/fixtures/edge");
}

/// A sensitive path parameter's value (`/secrets/:code`).
const PATH_SECRET: &str = "pathcode-4d61c09e";
const JWT_SECRET: &str = "log-test-jwt-secret-5be1f09a-77c2d9e3b1";
const DSN_PASSWORD: &str = "dsn-pass-c47e21";
const PIN_TEXT: &str = "pin-text-83a1f";
const PIN_NUMBER: &str = "73914825";
const WRONG_PASSWORD: &str = "wrong-pw-6d02";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

fn token(sub: &str) -> String {
    let now = common::unix_now();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "iss": "https://issuer.edge.test", "aud": "edge",
                "exp": now + 300, "roles": ["viewer"]}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("sign")
}

async fn get(app: &flapi::App, uri: &str, authorization: &str) -> StatusCode {
    let request = Request::get(uri)
        .header("authorization", authorization)
        .body(Body::empty())
        .expect("request");
    send(&app.router, request).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_reaches_the_log_at_trace_level() {
    let capture = Capture::default();
    flapi::logging::init("trace", false, false, capture.clone());
    let dsn = format!("postgres://svc:{DSN_PASSWORD}@db.internal/shop");
    let mut options = common::fixture_options(&fixture::PROJECT);
    options.env_overrides = vec![
        ("EDGE_JWT_SECRET".into(), JWT_SECRET.into()),
        ("EDGE_DSN".into(), dsn.clone()),
    ];
    let app = common::start_with(&fixture::PROJECT, options);
    let url = common::listen(app.router.clone()).await;
    let bearer = token("carol");
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{WRONG_PASSWORD}"))
    );

    assert_eq!(
        get(&app, "/customers/1", &basic("alice")).await,
        StatusCode::OK
    );
    assert_eq!(
        get(&app, "/customers/1", &wrong).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&app, "/customers/1", &format!("Bearer {bearer}")).await,
        StatusCode::OK
    );
    assert_eq!(
        get(&app, "/customers/1", &format!("Bearer {bearer}x")).await,
        StatusCode::UNAUTHORIZED
    );
    let text_pin = format!("/failing?pin={PIN_TEXT}");
    assert_eq!(
        get(&app, &text_pin, &basic("alice")).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let secret_path = format!("/secrets/{PATH_SECRET}");
    assert_eq!(
        get(&app, &secret_path, &basic("alice")).await,
        StatusCode::OK
    );
    let number_pin = format!("/failing?pin={PIN_NUMBER}");
    assert_eq!(
        get(&app, &number_pin, &basic("alice")).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    for _ in 0..3 {
        get(&app, "/customers/2", &basic("bob")).await;
    }
    assert_eq!(
        get(&app, "/customers/2", &basic("bob")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        get(&app, "/customers/2?_dryRun=true", &basic("alice")).await,
        StatusCode::FORBIDDEN
    );

    let client = mcp_client(&url, Some(&basic("alice")))
        .await
        .expect("connect");
    let failed = client
        .call_tool(
            CallToolRequestParams::new("failing").with_arguments(
                json!({"pin": PIN_TEXT})
                    .as_object()
                    .cloned()
                    .expect("object"),
            ),
        )
        .await
        .expect("tools/call");
    assert_eq!(failed.is_error, Some(true));
    for _ in 0..3 {
        let _ = client
            .call_tool(
                CallToolRequestParams::new("customer")
                    .with_arguments(json!({"id": 1}).as_object().cloned().expect("object")),
            )
            .await;
    }
    client.cancel().await.expect("close");
    assert!(
        mcp_client(&url, Some(&wrong)).await.is_err(),
        "a wrong password is refused"
    );

    let log = String::from_utf8_lossy(&capture.0.lock().expect("log")).into_owned();
    for expected in [
        "authentication failed",
        "request failed",
        "rate limited",
        "tool call failed",
        "dry run refused",
    ] {
        assert!(log.contains(expected), "the log lacks `{expected}`:\n{log}");
    }
    let planted = [
        JWT_SECRET.to_string(),
        bearer.clone(),
        dsn.clone(),
        DSN_PASSWORD.to_string(),
        PIN_TEXT.to_string(),
        PIN_NUMBER.to_string(),
        PATH_SECRET.to_string(),
        WRONG_PASSWORD.to_string(),
        "alice-pw".to_string(),
        "bob-pw".to_string(),
        basic("alice"),
        wrong.clone(),
    ];
    for secret in &planted {
        assert!(!log.contains(secret.as_str()), "`{secret}` is in the log");
    }
    // The JWT's signature alone is also a credential.
    let signature = bearer.rsplit('.').next().unwrap_or_default();
    assert!(!log.contains(signature));
}
