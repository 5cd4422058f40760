//! Redaction by construction (SPEC §10) over the corpus in
//! `tests/fixtures/redaction/corpus.txt`: every SQL shape there moves values
//! of the redacted column `ssn` into its output (whole rows, structs, JSON,
//! star modifiers, COLUMNS, pivots, unnest, self-joins, window functions,
//! lateral joins, string aggregates, recursive CTEs, set operations, views,
//! …). Each shape is served as a paginated endpoint (also an MCP tool) and
//! an unpaginated one; a caller without the unmask role must get no cell
//! with any real value of `ssn` (compared with the table itself, read by an
//! admin), over REST (paged and unpaged, JSON and CSV) and MCP. An admin
//! must get the real values through the same shapes, so the check can fail.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use rmcp::model::CallToolRequestParams;
use serde_json::Value;

use common::{Reply, basic, mcp_client, send};

mod fixture {
    flapi_macros::project!("tests/fixtures/redaction");
}

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/redaction");

/// (shape, SQL) of every served corpus entry (the build refuses those
/// marked `-- refused:`; `flapi-codegen`'s `sql_rules` test checks them).
fn corpus() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("{FIXTURE}/corpus.txt")).expect("corpus.txt");
    let mut shapes = Vec::new();
    for block in text.split("-- shape: ").skip(1) {
        let (name, rest) = block.split_once('\n').expect("a shape line");
        if rest
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("-- refused:"))
        {
            continue;
        }
        let sql: String = rest
            .lines()
            .filter(|l| !l.starts_with("-- about:"))
            .collect::<Vec<_>>()
            .join("\n");
        shapes.push((name.trim().to_string(), sql.trim().to_string()));
    }
    shapes
}

async fn get(router: &axum::Router, uri: &str, user: &str) -> Reply {
    let request = Request::get(uri)
        .header("authorization", basic(user))
        .body(Body::empty())
        .expect("request");
    send(router, request).await
}

/// Every real value of the redacted column, read by an admin.
async fn real_values(router: &axum::Router) -> Vec<String> {
    let reply = get(router, "/truth", "carol").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let rows = reply.json();
    let values: Vec<String> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["ssn"].as_str().expect("ssn text").to_string())
        .collect();
    assert_eq!(values.len(), 20);
    values
}

/// A real value in the body: as text, or hex- or base64-encoded (shapes
/// like `hex(ssn)` move it reversibly).
fn leaked<'a>(body: &str, values: &'a [String]) -> Option<&'a String> {
    use base64::Engine;
    values.iter().find(|v| {
        let hex: String = v.bytes().map(|b| format!("{b:02X}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(v.as_bytes());
        body.contains(v.as_str())
            || body.to_ascii_uppercase().contains(&hex)
            || body.contains(b64.trim_end_matches('='))
    })
}

#[test]
fn the_fixture_serves_exactly_the_corpus() {
    let shapes = corpus();
    assert!(shapes.len() >= 40, "only {} shapes", shapes.len());
    for (shape, sql) in &shapes {
        let file = std::fs::read_to_string(format!("{FIXTURE}/sqls/{shape}.sql"))
            .unwrap_or_else(|_| panic!("{shape}: run tests/fixtures/redaction/generate.py"));
        assert_eq!(file.trim(), sql, "{shape}: run generate.py");
        for prefix in ["p", "u"] {
            let id = format!("{prefix}_{shape}");
            assert!(
                fixture::PROJECT
                    .endpoints
                    .iter()
                    .any(|e| e.id.ends_with(&id)),
                "{id} is not served"
            );
        }
    }
}

#[tokio::test]
async fn no_rest_response_carries_a_real_value() {
    let app = common::start(&fixture::PROJECT);
    let values = real_values(&app.router).await;
    let mut not_for_admin: Vec<String> = Vec::new();
    for (shape, _) in corpus() {
        for uri in [
            format!("/p/{shape}"),
            format!("/p/{shape}?limit=3&offset=2"),
            format!("/p/{shape}?format=csv"),
            format!("/p/{shape}?format=csv&limit=5&offset=1"),
            format!("/u/{shape}"),
            format!("/u/{shape}?format=csv"),
        ] {
            let reply = get(&app.router, &uri, "alice").await;
            assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text());
            if let Some(value) = leaked(&reply.text(), &values) {
                panic!("{uri} leaked {value}: {}", reply.text());
            }
        }
        let admin = get(&app.router, &format!("/u/{shape}"), "carol").await;
        assert_eq!(admin.status, StatusCode::OK, "{shape}: {}", admin.text());
        if leaked(&admin.text(), &values).is_none() {
            not_for_admin.push(shape);
        }
    }
    // Every corpus shape moves a real value; for an admin it arrives.
    assert!(
        not_for_admin.is_empty(),
        "no real value for an admin: {not_for_admin:?}"
    );
}

#[tokio::test]
async fn no_mcp_result_carries_a_real_value() {
    let app = common::start(&fixture::PROJECT);
    let values = real_values(&app.router).await;
    let url = common::listen(app.router.clone()).await;
    let viewer = mcp_client(&url, Some(&basic("alice")))
        .await
        .expect("viewer session");
    let admin = mcp_client(&url, Some(&basic("carol")))
        .await
        .expect("admin session");
    let mut not_for_admin: Vec<String> = Vec::new();
    for (shape, _) in corpus() {
        let call = |client: &rmcp::service::RunningService<rmcp::service::RoleClient, ()>| {
            let params = CallToolRequestParams::new(shape.clone());
            let peer = client.peer().clone();
            async move { peer.call_tool(params).await.expect("tools/call") }
        };
        let result = call(&viewer).await;
        assert_ne!(result.is_error, Some(true), "{shape}: {result:?}");
        let text = format!(
            "{}{}",
            common::text_of(&result),
            result
                .structured_content
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default()
        );
        if let Some(value) = leaked(&text, &values) {
            panic!("tool {shape} leaked {value}: {text}");
        }
        if leaked(&common::text_of(&call(&admin).await), &values).is_none() {
            not_for_admin.push(shape);
        }
    }
    assert!(
        not_for_admin.is_empty(),
        "no real value for an admin: {not_for_admin:?}"
    );
}

/// Predicates and ordering see the masked value too: a filter on the real
/// value finds nothing for a viewer, and nothing can be learned by count.
#[tokio::test]
async fn predicates_see_the_masked_value() {
    let app = common::start(&fixture::PROJECT);
    let viewer = get(&app.router, "/u/where_real_value", "alice").await;
    assert_eq!(viewer.status, StatusCode::OK, "{}", viewer.text());
    assert_eq!(viewer.json(), serde_json::json!([]), "{}", viewer.text());
    let admin = get(&app.router, "/u/where_real_value", "carol").await;
    assert_eq!(
        admin.json().as_array().map(Vec::len),
        Some(1),
        "{}",
        admin.text()
    );
    let paged = get(&app.router, "/p/where_real_value?limit=1&offset=1", "alice").await;
    assert_eq!(paged.status, StatusCode::OK);
    assert_eq!(
        paged.json()["total_count"],
        serde_json::json!(0),
        "{}",
        paged.text()
    );
}
