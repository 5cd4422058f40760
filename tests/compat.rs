//! flAPI projects build unchanged (issue 18): `tests/fixtures/compat` is
//! written the way flAPI's examples and integration-test configs are, and
//! each flAPI key, spelling and feature it uses is served here end to end:
//! includes of shared YAML, `{{#if}}/{{else}}/{{#unless}}`, explicit page
//! fields, `min-length`, `audit.redact`, `rate_limit`, a pass-through DuckDB
//! setting, flAPI's URL-safe pbkdf2 hashes, endpoint-level bearer auth and
//! the heartbeat worker. The keys flAPI reads and flapi has no use for
//! build with a warning each.

mod common;

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use common::{Reply, basic, send};

mod fixture {
    flapi_macros::project!("tests/fixtures/compat");
}

const FIXTURE: &str = "tests/fixtures/compat";
const SECRET: &str = "compat-fixture-hs256-secret-of-at-least-32-bytes";

struct Server {
    app: flapi::App,
    audit: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.audit);
    }
}

fn start() -> Server {
    let mut options = common::fixture_options(&fixture::PROJECT);
    options
        .env_overrides
        .push(("COMPAT_JWT_SECRET".into(), SECRET.into()));
    let audit = common::temp_audit_file();
    options.audit_file = Some(audit.clone());
    Server {
        app: common::start_with(&fixture::PROJECT, options),
        audit,
    }
}

async fn get(server: &Server, uri: &str, authorization: Option<&str>) -> Reply {
    let mut request = Request::get(uri);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    send(
        &server.app.router,
        request.body(Body::empty()).expect("request"),
    )
    .await
}

fn ids(reply: &Reply) -> Vec<i64> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {}", reply.text()))
        .iter()
        .map(|row| row["id"].as_i64().expect("id"))
        .collect()
}

fn error_fields(reply: &Reply) -> Vec<String> {
    let body = reply.json();
    let list = body["errors"]
        .as_array()
        .or_else(|| body["error"]["fields"].as_array())
        .cloned()
        .unwrap_or_default();
    list.iter()
        .filter_map(|e| e["field"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn flapi_keys_with_no_use_build_with_one_warning_each() {
    let (_, warnings) = flapi_codegen::load(Path::new(FIXTURE)).expect("the fixture builds");
    let ignored: Vec<String> = warnings
        .iter()
        .filter(|w| w.message.contains("is ignored"))
        .map(|w| format!("{}:{}", w.location.file.display(), w.key_path))
        .collect();
    for expected in [
        "flapi.yaml:version",
        "flapi.yaml:server-name",
        "flapi.yaml:storage",
        "flapi.yaml:environment-whitelist",
        "flapi.yaml:connections.customers-csv.allow",
        "flapi.yaml:mcp.port",
        "flapi.yaml:mcp.host",
        "flapi.yaml:mcp.allow-list-changed-notifications",
        "sqls/customer-common.yaml:request[0].field-type",
        "sqls/customer-common.yaml:request[1].defaultValue",
    ] {
        assert!(
            ignored.iter().any(|w| w == expected),
            "no warning for {expected}: {ignored:?}"
        );
    }
    // The flAPI hash is accepted, with the argon2id advice.
    assert!(
        warnings
            .iter()
            .any(|w| w.key_path == "users[0].password" && w.message.contains("pbkdf2")),
        "{warnings:?}"
    );
    // The shared file is configuration, not an endpoint of its own.
    let (project, _) = flapi_codegen::load(Path::new(FIXTURE)).expect("builds");
    let routes: Vec<Option<&str>> = project
        .endpoints
        .iter()
        .map(|e| e.url_path.as_deref())
        .collect();
    assert_eq!(routes, [Some("/customers/"), Some("/segments/")]);
}

#[tokio::test]
async fn included_sections_and_handlebars_helpers_are_served() {
    let server = start();
    let user = basic("flapiuser");
    // `{{#if segment}}` on, `{{#unless include_inactive}}` on: active
    // BUILDING customers, newest first (`duckdb.default_order: DESC`).
    let reply = get(&server, "/customers/?segment=BUILDING", Some(&user)).await;
    assert_eq!(ids(&reply), [7, 4, 1]);
    // `{{else}}`: every segment but INTERNAL; `include_inactive` lifts the
    // `{{#unless}}` filter. The page size is the declared field's max, 3.
    let reply = get(&server, "/customers/?include_inactive=true", Some(&user)).await;
    assert_eq!(ids(&reply), [7, 6, 4]);
    let reply = get(
        &server,
        "/customers/?include_inactive=true&limit=3&offset=3",
        Some(&user),
    )
    .await;
    assert_eq!(ids(&reply), [3, 2, 1]);
}

#[tokio::test]
async fn explicit_page_fields_and_length_aliases_bound_the_arguments() {
    let server = start();
    let user = basic("flapiuser");
    for (query, field) in [
        ("limit=4", "limit"),
        ("limit=0", "limit"),
        ("segment=AB", "segment"),
        ("segment=ABCDEFGHIJKLM", "segment"),
    ] {
        let reply = get(&server, &format!("/customers/?{query}"), Some(&user)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.text()
        );
        assert_eq!(error_fields(&reply), [field], "{query}: {}", reply.text());
    }
    let reply = get(&server, "/customers/?limit=2", Some(&user)).await;
    assert_eq!(ids(&reply), [7, 6]);
}

#[tokio::test]
async fn flapi_pbkdf2_hashes_in_url_safe_base64_log_in() {
    let server = start();
    let reply = get(&server, "/customers/", Some(&basic("flapiuser"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("flapiuser:not-the-password")
    );
    let reply = get(&server, "/customers/", Some(&wrong)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

fn token(audience: &str, roles: &[&str]) -> String {
    let now = common::unix_now();
    let claims = json!({
        "sub": "agent-1",
        "iss": "https://issuer.compat.test",
        "aud": audience,
        "iat": now,
        "exp": now + 300,
        "roles": roles,
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

#[tokio::test]
async fn endpoint_level_bearer_auth_verifies_tokens() {
    let server = start();
    let bearer = format!("Bearer {}", token("compat-api", &["reader"]));
    let reply = get(&server, "/segments/", Some(&bearer)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // Without pagination the body is the rows; `default_order: DESC`
    // orders the segments from last to first.
    assert_eq!(
        reply.json(),
        json!([
            {"segment": "MACHINERY", "customers": 1},
            {"segment": "INTERNAL", "customers": 1},
            {"segment": "HOUSEHOLD", "customers": 1},
            {"segment": "BUILDING", "customers": 4},
        ])
    );
    for (why, value) in [
        ("no token", None),
        (
            "another audience",
            Some(format!("Bearer {}", token("other-api", &["reader"]))),
        ),
    ] {
        let reply = get(&server, "/segments/", value.as_deref()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{why}");
    }
    let reply = get(
        &server,
        "/segments/",
        Some(&format!("Bearer {}", token("compat-api", &[]))),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "a token without the role"
    );
}

#[tokio::test]
async fn audit_redact_masks_the_listed_arguments() {
    let server = start();
    let reply = get(
        &server,
        "/customers/?segment=BUILDING&token=corr-123",
        Some(&basic("flapiuser")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = std::fs::read_to_string(&server.audit).expect("audit file");
    assert!(!text.contains("corr-123"), "{text}");
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let call = records
        .iter()
        .find(|r| r["target"] == "/customers/")
        .unwrap_or_else(|| panic!("no record of the call: {text}"));
    assert_eq!(call["arguments"]["token"], "[redacted]");
    assert_eq!(call["arguments"]["segment"], "BUILDING");
}

#[tokio::test]
async fn the_heartbeat_calls_each_endpoint_with_its_params() {
    let server = start();
    let beats = flapi::heartbeat::round(&fixture::PROJECT, &server.app.db).await;
    let outcome: Vec<(&str, Result<u64, String>)> =
        beats.into_iter().map(|b| (b.endpoint, b.outcome)).collect();
    assert_eq!(outcome.len(), 1, "{outcome:?}");
    assert_eq!(outcome[0].1, Ok(1), "{outcome:?}");
}
