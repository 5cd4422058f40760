//! The network edge (SPEC §12) on the `edge` fixture: CORS, rate limits
//! keyed on the verified caller, request limits and security headers,
//! through the real router.

mod common;

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::{Reply, basic, send};
use flapi::App;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

mod fixture {
    flapi_macros::project!("tests/fixtures/edge");
}

const JWT_SECRET: &str = "edge-test-secret-0f3c9a7e5d1b-2f8c41aa90";

fn start() -> App {
    let mut options = common::fixture_options(&fixture::PROJECT);
    options.env_overrides = vec![
        ("EDGE_JWT_SECRET".into(), JWT_SECRET.into()),
        (
            "EDGE_DSN".into(),
            "postgres://svc:dsn-password-77@db.internal/shop".into(),
        ),
    ];
    common::start_with(&fixture::PROJECT, options)
}

/// A valid token for `sub`; `nonce` makes every token different.
fn token(sub: &str, nonce: u32) -> String {
    let claims = json!({
        "sub": sub,
        "iss": "https://issuer.edge.test",
        "aud": "edge",
        "exp": common::unix_now() + 300,
        "iat": common::unix_now() - i64::from(nonce % 50),
        "jti": format!("{sub}-{nonce}"),
        "roles": ["viewer"],
    });
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("sign");
    format!("Bearer {token}")
}

async fn call(
    app: &App,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    from: Option<IpAddr>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::empty()).expect("request");
    if let Some(ip) = from {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 40000)));
    }
    send(&app.router, request).await
}

async fn get(app: &App, uri: &str, authorization: &str) -> Reply {
    call(app, "GET", uri, &[("authorization", authorization)], None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_echoes_allowed_origins_only() {
    let app = start();
    let alice = basic("alice");
    let allowed = [
        ("authorization", alice.as_str()),
        ("origin", "https://app.example.com"),
    ];
    let r = call(&app, "GET", "/customers/1", &allowed, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        r.header("vary")
            .is_some_and(|v| v.to_ascii_lowercase().contains("origin")),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("access-control-allow-credentials"), None);

    // One caller per request: the route allows three calls a minute.
    for (i, origin) in [
        Some("https://evil.example.com"),
        Some("https://app.example.com.evil.net"),
        Some("null"),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let caller = token(&format!("cors-{i}"), 0);
        let mut headers = vec![("authorization", caller.as_str())];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        let r = call(&app, "GET", "/customers/2", &headers, None).await;
        assert_eq!(r.status, StatusCode::OK, "{origin:?}");
        assert!(
            r.headers
                .keys()
                .all(|k| !k.as_str().starts_with("access-control-")),
            "{origin:?} got CORS headers: {:?}",
            r.headers
        );
    }

    // Preflight: answered for the allowed origin, refused for any other.
    let preflight = |origin: &'static str| {
        [
            ("origin", origin),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ]
    };
    let r = call(
        &app,
        "OPTIONS",
        "/customers/1",
        &preflight("https://app.example.com"),
        None,
    )
    .await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        r.header("access-control-allow-methods")
            .is_some_and(|m| m.contains("GET"))
    );
    assert!(
        r.header("access-control-allow-headers")
            .is_some_and(|h| h.to_ascii_lowercase().contains("authorization"))
    );
    let r = call(
        &app,
        "OPTIONS",
        "/customers/1",
        &preflight("https://evil.example.com"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.headers
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_principal_shares_one_bucket_across_tokens_and_urls() {
    let app = start();
    // Three calls a minute for `carol`, each with a fresh valid token, on
    // two URLs of one route: the fourth is refused.
    for (i, uri) in ["/customers/1", "/customers/2", "/customers/1"]
        .iter()
        .enumerate()
    {
        let r = get(&app, uri, &token("carol", i as u32)).await;
        assert_eq!(r.status, StatusCode::OK, "call {i}: {}", r.text());
        assert_eq!(r.header("ratelimit-policy"), Some("\"route\";q=3;w=60"));
        assert_eq!(
            r.header("ratelimit"),
            Some(format!("\"route\";r={};t=0", 2 - i).as_str())
        );
    }
    let r = get(&app, "/customers/2", &token("carol", 99)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(
        (1..=20).contains(&retry),
        "one call per 20 s refills: {retry}"
    );
    assert!(r.json()["error"].as_str().is_some());

    // Random invalid tokens: 401, and never a bucket of their own.
    for i in 0..20 {
        let forged = format!("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4{i}In0.c2lnbmF0dXJl{i}");
        let r = get(&app, "/customers/1", &forged).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.header("ratelimit"), None);
    }
    // Another principal has its own bucket; Basic and JWT callers alike.
    let r = get(&app, "/customers/3", &token("dave", 1)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("ratelimit"), Some("\"route\";r=2;t=0"));
    let r = get(&app, "/customers/3", &basic("alice")).await;
    assert_eq!(r.status, StatusCode::OK);
    // And carol is still limited.
    let r = get(&app, "/customers/4", &token("carol", 100)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_are_limited_by_address() {
    let app = start();
    let a = IpAddr::from([203, 0, 113, 7]);
    let b = IpAddr::from([203, 0, 113, 8]);
    for _ in 0..2 {
        assert_eq!(
            call(&app, "GET", "/open", &[], Some(a)).await.status,
            StatusCode::OK
        );
    }
    let r = call(&app, "GET", "/open", &[], Some(a)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    // A token on a public route does not change whose bucket it is.
    let r = call(
        &app,
        "GET",
        "/open",
        &[("authorization", "Bearer junk")],
        Some(a),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        call(&app, "GET", "/open", &[], Some(b)).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_security_headers() {
    let app = start();
    let r = get(&app, "/customers/1", &basic("alice")).await;
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("content-security-policy").is_some());
    assert_eq!(r.header("server"), None);
    // A body over `limits.max-body-bytes` is refused before any handler.
    let big = "x".repeat(4096);
    let request = Request::post("/mcp/jsonrpc")
        .header("authorization", basic("alice"))
        .header("content-type", "application/json")
        .header("content-length", big.len().to_string())
        .body(Body::from(big))
        .expect("request");
    let r = send(&app.router, request).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_deadline_and_concurrent_query_limit() {
    let app = start();
    let caller = token("erin", 0);
    // The endpoint's own deadline (1 s), not the server's (30 s).
    let r = get(&app, "/slow", &caller).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text());

    // `max-concurrent-queries: 1`: while /slow runs, another query is
    // refused at once with 503, and runs again once it is over.
    let mut stats = app.db.stats();
    let base = stats.borrow().started;
    let router = app.router.clone();
    let held_caller = caller.clone();
    let held = tokio::spawn(async move {
        let request = Request::get("/slow")
            .header("authorization", held_caller)
            .body(Body::empty())
            .expect("request");
        send(&router, request).await.status
    });
    stats
        .wait_for(|s| s.started > base)
        .await
        .expect("the held query starts");
    let r = get(&app, "/customers/1", &token("frank", 0)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.json()["error"].as_str().is_some());
    assert_eq!(held.await.expect("held call"), StatusCode::GATEWAY_TIMEOUT);
    let r = get(&app, "/customers/1", &token("frank", 1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_refused_on_the_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let listen = flapi::http::edge::Listen {
        tls: None,
        max_header_bytes: fixture::PROJECT.edge.max_header_bytes as usize,
    };
    tokio::spawn(flapi::http::edge::serve_listener(
        listener,
        app.router.clone(),
        app.shutdown.clone(),
        listen,
    ));
    let exchange = |extra: String| async move {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let request =
            format!("GET /health HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.expect("send");
        let mut reply = Vec::new();
        let _ = tcp.read_to_end(&mut reply).await;
        String::from_utf8_lossy(&reply).into_owned()
    };
    let small = exchange(String::new()).await;
    assert!(small.starts_with("HTTP/1.1 200"), "{small}");
    let big = exchange(format!("X-Padding: {}\r\n", "a".repeat(40_000))).await;
    assert!(big.starts_with("HTTP/1.1 431"), "{big}");
    app.shutdown.cancel();
}
