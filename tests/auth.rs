//! Identity and RBAC (SPEC §7) end to end on the `tests/fixtures/auth`
//! project: real argon2 and pbkdf2 verification, real JWTs (HS256 and
//! ES256, RS256 from an OIDC issuer this test serves on loopback), REST
//! through the router and MCP through `rmcp`'s client on a real socket.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use flapi::App;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rmcp::model::{CallToolRequestParams, GetPromptRequestParams};
use serde_json::{Value, json};

use common::{Reply, basic, mcp_client, send, text_of};

mod fixture {
    flapi_macros::project!("tests/fixtures/auth");
}
mod oidc {
    flapi_macros::project!("tests/fixtures/oidc");
}
mod oidc_limited {
    flapi_macros::project!("tests/fixtures/oidc_limited");
}

const ISSUER: &str = "https://issuer.fixture.test";
const AUDIENCE: &str = "flapi-fixture";
const ES_KID: &str = "fixture-es256";

/// The HS256 secret and the ES256 key pair, made once per test binary.
struct Keys {
    secret: String,
    es_private: String,
    es_public: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pair = rcgen::KeyPair::generate().expect("P-256 key");
        Keys {
            secret: format!("{}{}", uuid_like(), uuid_like()),
            es_private: pair.serialize_pem(),
            es_public: pair.public_key_pem(),
        }
    })
}

fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("random");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn start_fixture() -> App {
    let mut options = common::fixture_options(&fixture::PROJECT);
    options.env_overrides = vec![
        ("FIXTURE_JWT_SECRET".into(), keys().secret.clone()),
        ("FIXTURE_ES256_PUBLIC_KEY".into(), keys().es_public.clone()),
    ];
    common::start_with(&fixture::PROJECT, options)
}

fn now() -> i64 {
    common::unix_now()
}

fn claims(sub: &str, roles: &[&str]) -> Value {
    json!({
        "sub": sub,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now() + 300,
        "nbf": now() - 10,
        "realm_access": {"roles": roles},
        "email": format!("{sub}@example.test"),
        "email_verified": true,
        "tenant": "tenant-7",
    })
}

fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(keys().secret.as_bytes()),
    )
    .expect("sign HS256")
}

fn es256(claims: &Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_string());
    let key = EncodingKey::from_ec_pem(keys().es_private.as_bytes()).expect("EC key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign ES256")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn get_as(app: &App, uri: &str, authorization: Option<&str>) -> Reply {
    let mut request = Request::get(uri);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    send(&app.router, request.body(Body::empty()).expect("request")).await
}

/// Everyone the matrix asks, with the Authorization header they send.
fn callers() -> Vec<(&'static str, Option<String>)> {
    vec![
        ("anonymous", None),
        ("alice", Some(basic("alice"))),
        ("bob", Some(basic("bob"))),
        ("carol", Some(basic("carol"))),
        ("dave", Some(basic("dave"))),
        ("erin", Some(basic("erin"))),
        ("frank", Some(basic("frank"))),
        (
            "jwt-analyst",
            Some(bearer(&hs256(&claims("jwt-analyst", &["analyst"])))),
        ),
        (
            "jwt-auditor",
            Some(bearer(&es256(&claims("jwt-auditor", &["auditor"]), ES_KID))),
        ),
        (
            "jwt-finance",
            Some(bearer(&hs256(&{
                let mut c = claims("jwt-finance", &[]);
                c["groups"] = json!(["finance", "unmapped-group"]);
                c
            }))),
        ),
        (
            "wrong-password",
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("alice:not-her-password")
            )),
        ),
        ("unknown-user", Some(basic("mallory"))),
    ]
}

/// What a caller's roles allow: viewer < analyst < admin; auditor apart.
fn roles_of(caller: &str) -> &'static [&'static str] {
    match caller {
        "alice" | "frank" => &["viewer"],
        "bob" | "jwt-analyst" | "jwt-finance" => &["viewer", "analyst"],
        "carol" => &["viewer", "analyst", "admin"],
        "dave" | "jwt-auditor" => &["auditor"],
        _ => &[],
    }
}

fn authenticated(caller: &str) -> bool {
    !matches!(caller, "anonymous" | "wrong-password" | "unknown-user")
}

/// Expected status of each REST route for a caller.
fn rest_expectation(caller: &str, route: &str) -> StatusCode {
    let allowed: &[&str] = match route {
        "/info" => return StatusCode::OK,
        "/reports" => &["viewer"],
        "/revenue" => &["analyst"],
        "/admin/users" => &["admin"],
        "/audit" => &["auditor", "admin"],
        "/nobody" => &[],
        other => panic!("no expectation for {other}"),
    };
    if !authenticated(caller) {
        StatusCode::UNAUTHORIZED
    } else if roles_of(caller).iter().any(|r| allowed.contains(r)) {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    }
}

const TOOLS: &[(&str, &[&str])] = &[
    ("info", &["viewer", "auditor"]),
    ("reports", &["viewer"]),
    ("revenue", &["analyst"]),
    ("admin_users", &["admin"]),
    ("audit_log", &["auditor"]),
    ("my_notes", &["viewer", "auditor"]),
    ("nobody", &[]),
];

fn tool_allowed(caller: &str, tool: &str) -> bool {
    let allowed = TOOLS
        .iter()
        .find(|(t, _)| *t == tool)
        .map(|(_, r)| *r)
        .unwrap_or(&[]);
    roles_of(caller).iter().any(|r| allowed.contains(r))
}

#[tokio::test]
async fn rest_role_matrix() {
    let app = start_fixture();
    let routes = [
        "/info",
        "/reports",
        "/revenue",
        "/admin/users",
        "/audit",
        "/nobody",
    ];
    let mut failures = Vec::new();
    for (caller, authorization) in callers() {
        for route in routes {
            let reply = get_as(&app, route, authorization.as_deref()).await;
            let expected = rest_expectation(caller, route);
            if reply.status != expected {
                failures.push(format!(
                    "{caller} {route}: {} (expected {expected})",
                    reply.status
                ));
                continue;
            }
            match reply.status {
                StatusCode::UNAUTHORIZED => {
                    let challenges: Vec<&str> = reply
                        .headers
                        .get_all("www-authenticate")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect();
                    assert!(
                        challenges
                            .iter()
                            .any(|c| c.starts_with("Basic realm=\"fixture\""))
                            && challenges
                                .iter()
                                .any(|c| c.starts_with("Bearer realm=\"fixture\"")),
                        "{caller} {route}: {challenges:?}"
                    );
                    assert_eq!(reply.json()["error"], "authentication required");
                }
                StatusCode::FORBIDDEN => {
                    // Generic: no role names, no hint of what would pass.
                    let body = reply.text();
                    assert_eq!(reply.json()["error"], "forbidden", "{body}");
                    for role in ["viewer", "analyst", "admin", "auditor"] {
                        assert!(
                            !body.contains(role),
                            "{caller} {route} leaks `{role}`: {body}"
                        );
                    }
                }
                _ => assert!(
                    reply.json().is_array(),
                    "{caller} {route}: {}",
                    reply.text()
                ),
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The fixture on a loopback socket, for rmcp's client.
async fn serve(app: &App) -> String {
    common::listen(app.router.clone()).await
}

/// What a list should hold: `name` when the caller may use it, else nothing.
fn listed_if(allowed: bool, name: &str) -> BTreeSet<String> {
    allowed.then(|| name.to_string()).into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_role_matrix() {
    let app = start_fixture();
    let url = serve(&app).await;
    let mut failures = Vec::new();
    for (caller, authorization) in callers() {
        let client = match mcp_client(&url, authorization.as_deref()).await {
            Ok(client) => client,
            Err(error) => {
                // No valid credentials: refused at the HTTP level (401).
                if authenticated(caller) {
                    failures.push(format!("{caller}: initialize failed: {error}"));
                }
                continue;
            }
        };
        if !authenticated(caller) {
            failures.push(format!(
                "{caller}: initialize succeeded without valid credentials"
            ));
            continue;
        }
        let listed: BTreeSet<String> = client
            .list_all_tools()
            .await
            .expect("tools/list")
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        let expected: BTreeSet<String> = TOOLS
            .iter()
            .filter(|(t, _)| tool_allowed(caller, t))
            .map(|(t, _)| t.to_string())
            .collect();
        if listed != expected {
            failures.push(format!(
                "{caller}: tools/list {listed:?}, expected {expected:?}"
            ));
        }
        // A tool the caller may not call answers exactly like one that
        // does not exist (the name aside): no existence oracle.
        let unknown = client
            .call_tool(CallToolRequestParams::new("no_such_tool"))
            .await
            .expect_err("an unknown tool is an error");
        let unknown = format!("{unknown:?}").replace("no_such_tool", "NAME");
        for (tool, _) in TOOLS {
            let result = client.call_tool(CallToolRequestParams::new(*tool)).await;
            let allowed = tool_allowed(caller, tool);
            match (allowed, result) {
                (true, Ok(r)) if r.is_error != Some(true) => {}
                (false, Err(e)) => {
                    assert_eq!(
                        format!("{e:?}").replace(tool, "NAME"),
                        unknown,
                        "{caller} {tool}"
                    )
                }
                (allowed, other) => failures.push(format!(
                    "{caller}: {tool} allowed={allowed} but got {other:?}"
                )),
            }
        }
        let resources: BTreeSet<String> = client
            .list_all_resources()
            .await
            .expect("resources/list")
            .iter()
            .map(|r| r.name.to_string())
            .collect();
        let may_read = roles_of(caller).contains(&"viewer");
        if resources != listed_if(may_read, "handbook") {
            failures.push(format!("{caller}: resources/list {resources:?}"));
        }
        let read = client
            .read_resource(rmcp::model::ReadResourceRequestParams::new(
                "flapi://handbook",
            ))
            .await;
        if read.is_ok() != may_read {
            failures.push(format!("{caller}: reading the handbook gave {read:?}"));
        }
        let prompts: BTreeSet<String> = client
            .list_all_prompts()
            .await
            .expect("prompts/list")
            .iter()
            .map(|p| p.name.to_string())
            .collect();
        let may_triage = roles_of(caller).contains(&"analyst");
        if prompts != listed_if(may_triage, "triage") {
            failures.push(format!("{caller}: prompts/list {prompts:?}"));
        }
        let mut arguments = serde_json::Map::new();
        arguments.insert("quarter".into(), json!("Q2"));
        let prompt = client
            .get_prompt(GetPromptRequestParams::new("triage").with_arguments(arguments))
            .await;
        if prompt.is_ok() != may_triage {
            failures.push(format!("{caller}: triage prompt gave {prompt:?}"));
        }
        client.cancel().await.expect("close");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A raw MCP POST to `/mcp` with optional session id and credentials.
async fn mcp_post(
    app: &App,
    body: Value,
    session: Option<&str>,
    authorization: Option<&str>,
) -> Reply {
    let mut request = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("host", "127.0.0.1:8080");
    if let Some(id) = session {
        request = request.header("mcp-session-id", id);
    }
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    send(
        &app.router,
        request.body(Body::from(body.to_string())).expect("request"),
    )
    .await
}

fn initialize() -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
}

/// The JSON-RPC message in a response body (plain JSON or one SSE event).
fn message(reply: &Reply) -> Value {
    let text = reply.text();
    let data = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| !d.is_empty())
        .unwrap_or(text.as_str())
        .to_string();
    serde_json::from_str(&data).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {text}"))
}

#[tokio::test]
async fn every_mcp_request_is_authenticated_session_or_not() {
    let app = start_fixture();
    let alice = basic("alice");
    let bob = basic("bob");
    let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list"});
    let call = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"reports","arguments":{}}});

    // Without a session id, on both endpoints.
    for path in ["/mcp", "/mcp/jsonrpc"] {
        let reply = send(
            &app.router,
            Request::post(path)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("host", "127.0.0.1:8080")
                .body(Body::from(list.to_string()))
                .expect("request"),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{path}: {}",
            reply.text()
        );
        assert!(reply.header("www-authenticate").is_some(), "{path}");
    }

    // Alice opens a session.
    let opened = mcp_post(&app, initialize(), None, Some(&alice)).await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text());
    let session = opened
        .header("mcp-session-id")
        .expect("a session id")
        .to_string();
    let done = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    let ack = mcp_post(&app, done, Some(&session), Some(&alice)).await;
    assert!(ack.status.is_success(), "{}", ack.status);

    // Her session with her credentials works, and lists her tools.
    let reply = mcp_post(&app, list.clone(), Some(&session), Some(&alice)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let names: BTreeSet<String> = message(&reply)["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["info".into(), "my_notes".into(), "reports".into()])
    );

    // Her session id without credentials: authentication first.
    for body in [list.clone(), call.clone()] {
        let reply = mcp_post(&app, body, Some(&session), None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    }
    // With bad credentials.
    let reply = mcp_post(&app, call.clone(), Some(&session), Some(&basic("mallory"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // Another principal (valid, with more roles) on her session.
    let reply = mcp_post(&app, call.clone(), Some(&session), Some(&bob)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
    assert!(!reply.text().contains("alice"));
    // A session id nobody opened.
    let reply = mcp_post(&app, list.clone(), Some("not-a-session"), Some(&alice)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());

    // The same principal over JWT is another identity.
    let token = bearer(&hs256(&claims("alice", &["viewer"])));
    let reply = mcp_post(&app, list.clone(), Some(&session), Some(&token)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    // Without a session (plain JSON-RPC), authorization still applies per call.
    let reply = send(
        &app.router,
        Request::post("/mcp/jsonrpc")
            .header("content-type", "application/json")
            .header("host", "127.0.0.1:8080")
            .header("authorization", basic("dave"))
            .body(Body::from(call.to_string()))
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let error = &message(&reply)["error"];
    assert_eq!(error["code"], -32602, "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("unknown tool")),
        "{error}"
    );
}

fn assert_invalid_token(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{what}: {}",
        reply.text()
    );
    let challenges: Vec<&str> = reply
        .headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        challenges.contains(&"Bearer realm=\"fixture\", error=\"invalid_token\""),
        "{what}: {challenges:?}"
    );
}

fn valid_claims() -> Value {
    claims("jwt-user", &["viewer"])
}

fn with(key: &str, value: Value) -> Value {
    let mut c = valid_claims();
    c[key] = value;
    c
}

fn b64_json(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The token is refused on a route the claims would otherwise open.
async fn assert_rejected(what: &str, token: &str) {
    let app = start_fixture();
    let reply = get_as(&app, "/reports", Some(&bearer(token))).await;
    assert_invalid_token(&reply, what);
}

#[tokio::test]
async fn valid_tokens_pass_and_garbage_headers_get_401() {
    let app = start_fixture();
    // The control for every rejection below: the same claims, correctly
    // signed, pass with both algorithms.
    for token in [hs256(&valid_claims()), es256(&valid_claims(), ES_KID)] {
        let reply = get_as(&app, "/reports", Some(&bearer(&token))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    for value in [
        "Bearer",
        "Bearer not.a.jwt",
        "Basic !!!",
        "Digest abc",
        "Basic",
    ] {
        let reply = get_as(&app, "/reports", Some(value)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{value}");
    }
}

#[tokio::test]
async fn expired_token() {
    // Beyond the fixture's 5 s leeway.
    assert_rejected("expired", &hs256(&with("exp", json!(now() - 60)))).await;
}

#[tokio::test]
async fn not_yet_valid_token() {
    assert_rejected("not yet valid", &hs256(&with("nbf", json!(now() + 120)))).await;
}

#[tokio::test]
async fn wrong_issuer() {
    assert_rejected(
        "wrong issuer",
        &hs256(&with("iss", json!("https://evil.test"))),
    )
    .await;
}

#[tokio::test]
async fn wrong_audience() {
    assert_rejected(
        "wrong audience",
        &hs256(&with("aud", json!("someone-else"))),
    )
    .await;
}

#[tokio::test]
async fn token_without_expiry() {
    let mut c = valid_claims();
    c.as_object_mut().expect("object").remove("exp");
    assert_rejected("no expiry", &hs256(&c)).await;
}

#[tokio::test]
async fn alg_none() {
    let unsigned = format!(
        "{}.{}.",
        b64_json(&json!({"alg": "none", "typ": "JWT"})),
        b64_json(&valid_claims())
    );
    assert_rejected("alg none", &unsigned).await;
}

#[tokio::test]
async fn tampered_signature() {
    let token = hs256(&valid_claims());
    let (rest, signature) = token.rsplit_once('.').expect("three parts");
    let mut signature = signature.to_string();
    let last = signature.pop().expect("signature");
    signature.push(if last == 'A' { 'B' } else { 'A' });
    assert_rejected("tampered signature", &format!("{rest}.{signature}")).await;
}

#[tokio::test]
async fn tampered_payload() {
    // Claims rewritten to admin under the original signature.
    let token = hs256(&valid_claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = b64_json(&with("realm_access", json!({"roles": ["admin"]})));
    let app = start_fixture();
    let token = format!("{}.{forged}.{}", parts[0], parts[2]);
    let reply = get_as(&app, "/admin/users", Some(&bearer(&token))).await;
    assert_invalid_token(&reply, "tampered payload");
}

#[tokio::test]
async fn unknown_kid() {
    // Signed with the fixture's ES256 key, but naming another key id.
    assert_rejected("unknown kid", &es256(&valid_claims(), "another-key")).await;
}

#[tokio::test]
async fn algorithm_not_in_the_configuration() {
    // RS256 is not in this project's `algorithms`: refused whatever the key.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(ES_KID.into());
    let token = jsonwebtoken::encode(&header, &valid_claims(), &rsa_key().encoding).expect("sign");
    assert_rejected("RS256 not allowed", &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_token_against_an_rs256_key() {
    // Key confusion: an HS256 token whose HMAC secret is the issuer's RSA
    // public key. The OIDC project allows RS256 and ES256 only.
    let issuer = Issuer::start().await;
    let key = rsa_key();
    issuer.publish(&[("k1", &key)]);
    let app = start_oidc(&oidc::PROJECT, &issuer);
    let claims = json!({"sub": "oidc-user", "iss": issuer.url, "aud": "flapi-oidc",
        "exp": now() + 300, "realm_access": {"roles": ["reader"]}});
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(key.public_pem.as_bytes()),
    )
    .expect("sign");
    let reply = get_as(&app, "/whoami", Some(&bearer(&forged))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    // The control: the same claims signed with the private key pass.
    let reply = get_as(
        &app,
        "/whoami",
        Some(&issuer.token(&key, "k1", "realm_access.roles")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

/// An RSA key pair with its JWK, for the OIDC issuer.
struct RsaKey {
    encoding: EncodingKey,
    public_pem: String,
    n: String,
    e: String,
}

fn rsa_key() -> RsaKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rand08::rngs::OsRng, 2048).expect("RSA key");
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    RsaKey {
        encoding: EncodingKey::from_rsa_der(key.to_pkcs1_der().expect("DER").as_bytes()),
        public_pem: key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM"),
        n: b64(key.n().to_bytes_be()),
        e: b64(key.e().to_bytes_be()),
    }
}

/// An OIDC issuer on loopback: discovery and a JWKS that can be rotated,
/// counting JWKS downloads.
struct Issuer {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    /// Downloads of the keys from the other origin (see [`KeysAt`]).
    elsewhere: Arc<AtomicUsize>,
}

/// Where the issuer's discovery document sends clients for its keys.
#[derive(Clone, Copy, PartialEq)]
enum KeysAt {
    /// Its own `/jwks`.
    Own,
    /// A `jwks_uri` on another origin (another port) serving the keys.
    OtherOrigin,
    /// Its own `/jwks`, answered by a redirect to the other origin.
    Redirect,
}

/// Serves the key set on a loopback port of its own; returns its URL.
async fn other_origin(jwks: Arc<Mutex<Value>>, count: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let router = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            count.fetch_add(1, Ordering::SeqCst);
            let keys = jwks.lock().expect("jwks").clone();
            async move { axum::Json(keys) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

impl Issuer {
    async fn start() -> Issuer {
        Issuer::start_with(KeysAt::Own).await
    }

    async fn start_with(keys_at: KeysAt) -> Issuer {
        // The issuer's own URL is in its discovery document: bind first.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let jwks = Arc::new(Mutex::new(json!({"keys": []})));
        let fetches = Arc::new(AtomicUsize::new(0));
        let elsewhere = Arc::new(AtomicUsize::new(0));
        let other = other_origin(jwks.clone(), elsewhere.clone()).await;
        let jwks_uri = match keys_at {
            KeysAt::OtherOrigin => format!("{other}/jwks"),
            _ => format!("{url}/jwks"),
        };
        let discovery = json!({"issuer": url, "jwks_uri": jwks_uri});
        let (set, count) = (jwks.clone(), fetches.clone());
        let router = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let d = discovery.clone();
                    async move { axum::Json(d) }
                }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || {
                    count.fetch_add(1, Ordering::SeqCst);
                    let keys = set.lock().expect("jwks").clone();
                    let target = format!("{other}/jwks");
                    async move {
                        if keys_at == KeysAt::Redirect {
                            axum::response::Redirect::temporary(&target).into_response()
                        } else {
                            axum::Json(keys).into_response()
                        }
                    }
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Issuer {
            url,
            jwks,
            fetches,
            elsewhere,
        }
    }

    fn publish(&self, keys: &[(&str, &RsaKey)]) {
        let keys: Vec<Value> = keys
            .iter()
            .map(|(kid, k)| json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": k.n, "e": k.e}))
            .collect();
        *self.jwks.lock().expect("jwks") = json!({ "keys": keys });
    }

    fn token(&self, key: &RsaKey, kid: &str, roles_claim: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_string());
        let mut claims = json!({
            "sub": "oidc-user",
            "iss": self.url,
            "aud": "flapi-oidc",
            "exp": now() + 300,
        });
        let roles = json!(["reader"]);
        match roles_claim.split_once('.') {
            Some((outer, inner)) => claims[outer] = json!({ inner: roles }),
            None => claims[roles_claim] = roles,
        }
        bearer(&jsonwebtoken::encode(&header, &claims, &key.encoding).expect("sign"))
    }
}

fn start_oidc(project: &'static flapi::runtime::ProjectDef, issuer: &Issuer) -> App {
    let mut options = common::fixture_options(project);
    options.env_overrides = vec![("OIDC_FIXTURE_ISSUER".into(), issuer.url.clone())];
    common::start_with(project, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_key_rotation_with_a_local_oidc_issuer() {
    let issuer = Issuer::start().await;
    let (k1, k2) = (rsa_key(), rsa_key());
    issuer.publish(&[("k1", &k1)]);
    let app = start_oidc(&oidc::PROJECT, &issuer);

    let reply = get_as(
        &app,
        "/whoami",
        Some(&issuer.token(&k1, "k1", "realm_access.roles")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json(), json!([{"sub": "oidc-user"}]));
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1);
    // Cached: no second download for a known key.
    let reply = get_as(
        &app,
        "/whoami",
        Some(&issuer.token(&k1, "k1", "realm_access.roles")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1);

    // The issuer rotates to k2: a token naming k2 triggers a refresh.
    issuer.publish(&[("k2", &k2)]);
    let reply = get_as(
        &app,
        "/whoami",
        Some(&issuer.token(&k2, "k2", "realm_access.roles")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 2);
    // k1 was withdrawn: its tokens no longer pass.
    let reply = get_as(
        &app,
        "/whoami",
        Some(&issuer.token(&k1, "k1", "realm_access.roles")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // k2 signed, but claiming to be k1 (a key id not in the set).
    let reply = get_as(
        &app,
        "/whoami",
        Some(&issuer.token(&k2, "k1", "realm_access.roles")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_come_from_the_issuers_origin_without_redirects() {
    for keys_at in [KeysAt::OtherOrigin, KeysAt::Redirect] {
        let issuer = Issuer::start_with(keys_at).await;
        let key = rsa_key();
        issuer.publish(&[("k1", &key)]);
        let app = start_oidc(&oidc::PROJECT, &issuer);
        let reply = get_as(
            &app,
            "/whoami",
            Some(&issuer.token(&key, "k1", "realm_access.roles")),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
        // The keys on the other origin were never fetched.
        assert_eq!(issuer.elsewhere.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_ids_cannot_make_the_server_hammer_the_issuer() {
    let issuer = Issuer::start().await;
    let (k1, stranger) = (rsa_key(), rsa_key());
    issuer.publish(&[("k1", &k1)]);
    let app = start_oidc(&oidc_limited::PROJECT, &issuer);
    let reply = get_as(&app, "/whoami", Some(&issuer.token(&k1, "k1", "roles"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1);
    for i in 0..10 {
        let token = issuer.token(&stranger, &format!("unknown-{i}"), "roles");
        let reply = get_as(&app, "/whoami", Some(&token)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    // One refresh per `jwks-min-refresh-seconds` (an hour here): none yet.
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_filter_sees_only_the_callers_rows() {
    let app = start_fixture();
    let notes = |reply: &Reply| -> Vec<String> {
        reply
            .json()
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r["owner"].as_str().unwrap_or(""),
                    r["note"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    let alice = get_as(&app, "/notes/mine", Some(&basic("alice"))).await;
    assert_eq!(notes(&alice), ["alice:a1", "alice:a2"]);
    let dave = get_as(&app, "/notes/mine", Some(&basic("dave"))).await;
    assert_eq!(notes(&dave), ["dave:d1"]);
    let jwt = get_as(
        &app,
        "/notes/mine",
        Some(&bearer(&hs256(&claims("jwt-user", &["viewer"])))),
    )
    .await;
    assert_eq!(notes(&jwt), ["jwt-user:j1"]);

    // A client cannot pose as someone else through parameters.
    for name in ["__auth_sub", "__auth_username", "auth.sub", "_auth", "AUTH"] {
        let reply = get_as(
            &app,
            &format!("/notes/mine?{name}=bob"),
            Some(&basic("alice")),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            reply.text()
        );
        assert_eq!(reply.json()["errors"][0]["field"], name);
        assert!(!reply.text().contains("bob"), "the value is not echoed");
    }

    // The caller's values as the template sees them.
    let reply = get_as(&app, "/whoami", Some(&basic("carol"))).await;
    assert_eq!(reply.json()[0]["roles"], "viewer,analyst,admin");
    let reply = get_as(&app, "/whoami", Some(&basic("alice"))).await;
    assert_eq!(
        reply.json(),
        json!([{"sub": "alice", "kind": "basic", "roles": "viewer", "email": null, "tenant": null}])
    );
    let token = bearer(&hs256(&claims("jwt-analyst", &["analyst"])));
    let reply = get_as(&app, "/whoami", Some(&token)).await;
    assert_eq!(
        reply.json(),
        json!([{"sub": "jwt-analyst", "kind": "jwt", "roles": "viewer,analyst", "email": "jwt-analyst@example.test", "tenant": "tenant-7"}])
    );
    // An address the issuer did not verify is no identity: `auth.email`
    // is NULL for it, whether `email_verified` is false or missing.
    for verified in [json!(false), Value::Null] {
        let mut unverified = claims("jwt-analyst", &["analyst"]);
        unverified["email_verified"] = verified;
        let reply = get_as(&app, "/whoami", Some(&bearer(&hs256(&unverified)))).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()[0]["email"], Value::Null, "{}", reply.text());
    }

    // Over MCP: the same filter, and reserved arguments refused.
    let url = serve(&app).await;
    let client = mcp_client(&url, Some(&basic("alice")))
        .await
        .expect("initialize");
    let result = client
        .call_tool(CallToolRequestParams::new("my_notes"))
        .await
        .expect("call");
    let rows = &result.structured_content.as_ref().expect("rows")["rows"];
    assert_eq!(
        rows,
        &json!([{"owner": "alice", "note": "a1"}, {"owner": "alice", "note": "a2"}])
    );
    let mut arguments = serde_json::Map::new();
    arguments.insert("__auth_sub".into(), json!("bob"));
    let result = client
        .call_tool(CallToolRequestParams::new("my_notes").with_arguments(arguments))
        .await
        .expect("call");
    assert_eq!(result.is_error, Some(true));
    assert!(
        text_of(&result).contains("`__auth_sub` is reserved"),
        "{}",
        text_of(&result)
    );
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argon2_runs_once_per_client_and_for_unknown_users_too() {
    let app = start_fixture();
    // 16 concurrent requests with the same new credentials: one
    // verification, the others wait for it and read the cache.
    let requests = (0..16).map(|_| {
        let router = app.router.clone();
        async move {
            let request = Request::get("/reports")
                .header("authorization", basic("bob"))
                .body(Body::empty())
                .expect("request");
            send(&router, request).await.status
        }
    });
    let statuses = futures_join_all(requests).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(app.auth.hash_checks(), 1);
    // Cached: no new verification.
    assert_eq!(
        get_as(&app, "/reports", Some(&basic("bob"))).await.status,
        StatusCode::OK
    );
    assert_eq!(app.auth.hash_checks(), 1);
    // An unknown user is verified against a real hash like a known one
    // (so it costs the same); the same failed credentials again are
    // answered from the negative cache, other ones are verified.
    for _ in 0..3 {
        let reply = get_as(&app, "/reports", Some(&basic("mallory"))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.auth.hash_checks(), 2);
    let other = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("mallory:guess-2")
    );
    let reply = get_as(&app, "/reports", Some(&other)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.auth.hash_checks(), 3);
}

/// Runs the futures concurrently on the test's runtime.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<StatusCode>
where
    F: std::future::Future<Output = StatusCode> + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

#[test]
fn hash_password_reads_stdin_and_prints_a_verifiable_hash() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flapi"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run flapi");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"correct horse battery\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let hash = String::from_utf8(output.stdout).expect("utf-8");
    let hash = hash.trim();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    use argon2::PasswordVerifier;
    assert!(
        argon2::Argon2::default()
            .verify_password(b"correct horse battery", hash)
            .is_ok()
    );
    assert!(
        argon2::Argon2::default()
            .verify_password(b"correct horse", hash)
            .is_err()
    );
    // The password never appears on the command line or in the output.
    assert!(!hash.contains("horse"));

    let empty = std::process::Command::new(env!("CARGO_BIN_EXE_flapi"))
        .arg("hash-password")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run flapi");
    assert!(!empty.status.success());
}

#[test]
fn generated_roles_and_allow_tables() {
    use fixture::Role;
    assert_eq!(
        Role::ALL.iter().map(|r| r.name()).collect::<Vec<_>>(),
        ["viewer", "analyst", "admin", "auditor"]
    );
    assert_eq!(Role::from_name("admin"), Some(Role::Admin));
    assert_eq!(Role::from_name("root"), None);
    // admin inherits analyst, which inherits viewer; auditor stands alone.
    let grants = Role::Admin.grants();
    for r in [Role::Viewer, Role::Analyst, Role::Admin] {
        assert_ne!(grants & r.bit(), 0, "{r:?}");
    }
    assert_eq!(grants & Role::Auditor.bit(), 0);
    let by_route: BTreeMap<&str, flapi::runtime::Access> = fixture::PROJECT
        .endpoints
        .iter()
        .filter_map(|e| e.url_path.map(|u| (u, e.rest_access)))
        .collect();
    assert_eq!(by_route["/info"], flapi::runtime::Access::Public);
    // The OpenAPI document states the schemes and which routes need them,
    // not which roles pass.
    let doc: Value = serde_json::from_str(fixture::PROJECT.openapi_json).expect("JSON");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    let reports = &doc["paths"]["/reports"]["get"];
    assert_eq!(reports["security"], json!([{"basic": []}, {"bearer": []}]));
    assert!(reports["responses"]["401"].is_object() && reports["responses"]["403"].is_object());
    assert!(doc["paths"]["/info"]["get"].get("security").is_none());
    assert!(!fixture::PROJECT.openapi_json.contains("auditor"));
    assert_eq!(by_route["/nobody"], flapi::runtime::Access::Roles(0));
    assert_eq!(
        by_route["/audit"],
        flapi::runtime::Access::Roles(Role::Auditor.bit() | Role::Admin.bit())
    );
}

/// A request from `ip` (as the listener would tag it).
async fn get_from(app: &App, ip: [u8; 4], authorization: &str) -> Reply {
    let mut request = Request::get("/reports")
        .header("authorization", authorization)
        .body(Body::empty())
        .expect("request");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            ip, 40000,
        ))));
    send(&app.router, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_throttled_before_any_verification() {
    use flapi::auth::guard::{FAILURES_PER_ADDRESS, FAILURES_PER_USER};
    let app = start_fixture();
    let attacker = [203, 0, 113, 7];
    // bob signs in first: his verified credentials are cached.
    assert_eq!(
        get_from(&app, attacker, &basic("bob")).await.status,
        StatusCode::OK
    );
    let random = |i: usize| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("user{i}:guess{i}"))
        )
    };
    // Failures are answered 401 until the address's quota is spent (the
    // burst, plus a cell refilled every few seconds while the slow
    // verifications run), then 429 with Retry-After, at no hash cost.
    let started = std::time::Instant::now();
    let mut failures = 0;
    loop {
        let reply = get_from(&app, attacker, &random(failures)).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        failures += 1;
        let refilled = started.elapsed().as_secs() as usize / 3 + 1;
        assert!(
            failures <= FAILURES_PER_ADDRESS as usize + refilled,
            "{failures} failures and still no 429"
        );
    }
    assert!(failures >= FAILURES_PER_ADDRESS as usize);
    let checks = app.auth.hash_checks();
    // (One more while the address is blocked: the block lasts until the
    // next cell refills, a few seconds, and each 429 is held back 1 s.)
    for i in 0..1 {
        let reply = get_from(&app, attacker, &random(2000 + i)).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            reply
                .header("retry-after")
                .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1))
        );
    }
    assert_eq!(
        app.auth.hash_checks(),
        checks,
        "throttled attempts cost no hash"
    );
    // Malformed Basic values and invalid bearer tokens from that address
    // are throttled too.
    let reply = get_from(&app, attacker, "Basic !!!").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let reply = get_from(&app, attacker, "Bearer not.a.token").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    // bob, already verified, is not locked out, even from that address;
    // another address is not affected.
    assert_eq!(
        get_from(&app, attacker, &basic("bob")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_from(&app, [198, 51, 100, 1], &basic("alice"))
            .await
            .status,
        StatusCode::OK
    );
    // Guessing one known user's password from many addresses: the user's
    // own quota stops it, also for addresses that never failed before.
    // (Distinct guesses: a repeated wrong password is answered from the
    // negative cache and counts against the address only.)
    let wrong = |i: u8| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("carol:wrong-{i}"))
        )
    };
    for i in 0..=FAILURES_PER_USER as u8 {
        let _ = get_from(&app, [192, 0, 2, i], &wrong(i)).await;
    }
    let reply = get_from(&app, [192, 0, 2, 250], &wrong(250)).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    // Repeating one wrong password from many addresses does not lock a
    // user out: dave keeps his quota (he signs in; /reports is not his
    // role's, so the answer is 403, not 401 or 429).
    let repeated = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("dave:wrong")
    );
    for i in 0..=FAILURES_PER_USER as u8 {
        let _ = get_from(&app, [198, 18, 0, i], &repeated).await;
    }
    assert_eq!(
        get_from(&app, [198, 18, 1, 1], &basic("dave")).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_principal_holds_a_bounded_number_of_mcp_sessions() {
    use flapi::mcp::gate::MAX_SESSIONS_PER_PRINCIPAL;
    let app = start_fixture();
    let alice = basic("alice");
    let mut sessions = Vec::new();
    for _ in 0..MAX_SESSIONS_PER_PRINCIPAL {
        let reply = mcp_post(&app, initialize(), None, Some(&alice)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        sessions.push(
            reply
                .header("mcp-session-id")
                .expect("session id")
                .to_string(),
        );
    }
    let refused = mcp_post(&app, initialize(), None, Some(&alice)).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.text()
    );
    // Another caller is not affected, and no binding of alice's was
    // dropped to make room.
    let bob = mcp_post(&app, initialize(), None, Some(&basic("bob"))).await;
    assert_eq!(bob.status, StatusCode::OK);
    let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list"});
    let reply = mcp_post(&app, list.clone(), Some(&sessions[0]), Some(&alice)).await;
    assert_ne!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
    // Closing one makes room for another.
    let closed = send(
        &app.router,
        Request::delete("/mcp")
            .header("host", "127.0.0.1:8080")
            .header("mcp-session-id", &sessions[1])
            .header("authorization", &alice)
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert!(closed.status.is_success(), "{}", closed.text());
    let reopened = mcp_post(&app, initialize(), None, Some(&alice)).await;
    assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.text());
    // Concurrent `initialize` requests cannot all slip past the cap.
    let carol = basic("carol");
    let attempts = (0..MAX_SESSIONS_PER_PRINCIPAL + 8).map(|_| {
        let router = app.router.clone();
        let carol = carol.clone();
        tokio::spawn(async move {
            let request = Request::post("/mcp")
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("host", "127.0.0.1:8080")
                .header("authorization", carol)
                .body(Body::from(initialize().to_string()))
                .expect("request");
            send(&router, request).await.status
        })
    });
    let mut opened = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        if attempt.await.expect("task") == StatusCode::OK {
            opened += 1;
        }
    }
    assert_eq!(opened, MAX_SESSIONS_PER_PRINCIPAL);
}
