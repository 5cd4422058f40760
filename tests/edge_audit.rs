//! What the edge refuses before (or instead of) a handler is refused
//! clearly and recorded (issue 16): a `Host` that is not served (DNS
//! rebinding) on every route, a body or head over the limits, a refused
//! preflight, a request past its time, and MCP transport refusals.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Reply, send};
use serde_json::Value;

mod fixture {
    flapi_macros::project!("tests/fixtures/edge_audit");
}

/// The log as written so far: every response waited for its record.
fn records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

async fn with_headers(
    app: &flapi::App,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(&app.router, request.body(Body::empty()).expect("request")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_the_host() {
    let app = common::start(&fixture::PROJECT);
    for (host, served) in [
        ("localhost", true),
        ("LOCALHOST:8080", true),
        ("127.0.0.1:8080", true),
        ("[::1]:8080", true),
        ("api.example.test", true),
        ("api.example.test.", true),
        // An IP literal is never a rebinding page's name.
        ("10.1.2.3:8080", true),
        ("attacker.example", false),
        ("localhost.attacker.example", false),
        ("api.example.test.attacker.example", false),
        ("api.example.test@attacker.example", false),
    ] {
        for path in ["/health", "/slow", "/items/a1", "/openapi.json", "/nope"] {
            let reply = with_headers(&app, "GET", path, &[("host", host)]).await;
            if served {
                assert_ne!(reply.status, StatusCode::FORBIDDEN, "{host} {path}");
            } else {
                assert_eq!(reply.status, StatusCode::FORBIDDEN, "{host} {path}");
                assert!(!reply.text().contains("attacker"), "{}", reply.text());
            }
            if path == "/slow" && served {
                // Only the host matters here; the slow query is another test.
                break;
            }
        }
    }
    // Two Host headers are refused.
    let reply = with_headers(
        &app,
        "GET",
        "/health",
        &[("host", "localhost"), ("host", "attacker.example")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_refusals_are_recorded_with_the_route_template() {
    let audit = common::temp_audit_file();
    let mut options = common::fixture_options(&fixture::PROJECT);
    options.audit_file = Some(audit.clone());
    let app = common::start_with(&fixture::PROJECT, options);

    let host = with_headers(&app, "GET", "/health", &[("host", "attacker.example")]).await;
    assert_eq!(host.status, StatusCode::FORBIDDEN);

    let big = "x".repeat(4096);
    let body = send(
        &app.router,
        Request::post("/mcp/jsonrpc")
            .header("content-type", "application/json")
            .header("content-length", big.len().to_string())
            .body(Body::from(big))
            .expect("request"),
    )
    .await;
    assert_eq!(body.status, StatusCode::PAYLOAD_TOO_LARGE);

    let padding = "p".repeat(3000);
    let head = with_headers(&app, "GET", "/health", &[("x-padding", &padding)]).await;
    assert_eq!(head.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    let preflight = with_headers(
        &app,
        "OPTIONS",
        "/slow",
        &[
            ("origin", "https://attacker.example"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(preflight.status, StatusCode::FORBIDDEN);

    // rmcp refuses a browser origin nobody listed: a transport refusal.
    let origin = send(
        &app.router,
        Request::post("/mcp")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("origin", "https://attacker.example")
            .header("host", "localhost")
            .body(Body::from(
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            ))
            .expect("request"),
    )
    .await;
    assert_eq!(origin.status, StatusCode::FORBIDDEN);

    let slow = with_headers(&app, "GET", "/slow", &[]).await;
    assert_eq!(
        slow.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        slow.text()
    );
    assert!(!slow.text().contains("range"), "{}", slow.text());

    let item = with_headers(&app, "GET", "/items/code-5c1e", &[]).await;
    assert_eq!(item.status, StatusCode::OK, "{}", item.text());

    let records = records(&audit);
    let find = |target: &str, status: u64| {
        records
            .iter()
            .find(|r| r["target"] == target && r["status"] == status)
            .unwrap_or_else(|| panic!("no record of {target} {status}: {records:#?}"))
    };
    assert_eq!(find("(no route)", 403)["decision"], "deny");
    assert_eq!(find("/mcp/jsonrpc", 413)["decision"], "invalid");
    assert_eq!(find("(no route)", 431)["decision"], "invalid");
    assert_eq!(find("(no route)", 403)["method"], "GET");
    assert!(
        records
            .iter()
            .any(|r| r["method"] == "OPTIONS" && r["status"] == 403)
    );
    assert_eq!(find("/mcp", 403)["transport"], "mcp");
    assert_eq!(find("/slow", 503)["decision"], "timeout");
    // The call's own record names the route template, and the sensitive
    // path value is redacted.
    let item = find("/items/{id}", 200);
    assert_eq!(item["arguments"]["id"], "[redacted]", "{item}");
    let text = std::fs::read_to_string(&audit).expect("log");
    assert!(!text.contains("code-5c1e"), "{text}");
    assert!(!text.contains("attacker"), "{text}");
    // The chain holds over every record, refusals included.
    assert!(matches!(
        flapi::audit::verify_file(&audit).expect("read"),
        flapi::audit::Verdict::Ok { .. }
    ));
    let _ = std::fs::remove_file(&audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_is_keyed_from_the_environment_and_unknown_tools_record_no_arguments() {
    let audit = common::temp_audit_file();
    let mut options = common::fixture_options(&fixture::PROJECT);
    options.audit_file = Some(audit.clone());
    options.env_overrides = vec![("FLAPI_AUDIT_KEY".into(), "too-short".into())];
    assert!(flapi::app(&fixture::PROJECT, &options).is_err());
    let key = "edge-audit-chain-key-0123456789abcdef";
    options.env_overrides = vec![("FLAPI_AUDIT_KEY".into(), key.into())];
    let app = common::start_with(&fixture::PROJECT, options);
    assert_eq!(
        with_headers(&app, "GET", "/health", &[]).await.status,
        StatusCode::OK
    );
    let call = |name: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","arguments":{{"blob":"{}"}}}}}}"#,
            "b".repeat(300)
        )
    };
    let reply = send(
        &app.router,
        Request::post("/mcp/jsonrpc")
            .header("content-type", "application/json")
            .header("host", "localhost")
            .body(Body::from(call("no_such_tool")))
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let text = std::fs::read_to_string(&audit).expect("log");
    assert!(text.lines().all(|l| l.contains("\"hmac\":\"")), "{text}");
    let key = flapi::audit::ChainKey::new(key.as_bytes()).expect("key");
    assert!(matches!(
        flapi::audit::verify_file_keyed(&audit, Some(&key)).expect("read"),
        flapi::audit::Verdict::Ok { .. }
    ));
    let unknown = records(&audit)
        .into_iter()
        .find(|r| r["target"] == "no_such_tool")
        .expect("the unknown tool's record");
    assert_eq!(unknown["decision"], "not_found");
    assert_eq!(unknown["arguments"], Value::Null);
    assert!(!text.contains(&"b".repeat(300)));
    let _ = std::fs::remove_file(&audit);
}
