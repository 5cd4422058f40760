//! The network edge (SPEC §12): CORS, security headers, body and time
//! limits, the client address, and the listener (plain or TLS with
//! rustls, header size limit, certificate reload on SIGHUP, graceful
//! shutdown).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::runtime::{CorsDef, EdgeDef};

/// The caller's address, when the server knows it (not in `oneshot`
/// tests that do not set it).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

/// CORS from `cors:`: exact origins (or `*` without credentials), with
/// `Vary: Origin`. A disallowed origin gets no CORS header at all.
pub fn cors_layer(def: &'static CorsDef) -> CorsLayer {
    let origin = if def.any_origin {
        AllowOrigin::any()
    } else {
        AllowOrigin::predicate(move |origin: &HeaderValue, _| origin_allowed(def, origin))
    };
    let methods: Vec<Method> = def.methods.iter().filter_map(|m| m.parse().ok()).collect();
    let headers: Vec<header::HeaderName> =
        def.headers.iter().filter_map(|h| h.parse().ok()).collect();
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods(methods)
        .allow_headers(headers)
        .allow_credentials(def.credentials)
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("ratelimit"),
            header::HeaderName::from_static("ratelimit-policy"),
            header::RETRY_AFTER,
            header::LINK,
        ])
        .max_age(Duration::from_secs(def.max_age_seconds))
        .vary([header::ORIGIN])
}

fn origin_allowed(def: &CorsDef, origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    def.any_origin || def.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
}

/// A preflight (`OPTIONS` with `Access-Control-Request-Method`) is
/// answered only for an allowed origin; any other gets 403. A response to
/// a request without an allowed `Origin` carries no `Access-Control-*`
/// header at all (tower-http would still send `-Expose-Headers`). Runs
/// outside the CORS layer.
pub async fn preflight_guard(
    cors: Option<&'static CorsDef>,
    request: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let allowed = match (cors, request.headers().get(header::ORIGIN)) {
        (Some(def), Some(origin)) => origin_allowed(def, origin),
        _ => false,
    };
    if preflight && !allowed {
        let mut response = StatusCode::FORBIDDEN.into_response();
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("origin"));
        return response;
    }
    let mut response = next.run(request).await;
    if !allowed {
        let headers = response.headers_mut();
        let cors: Vec<header::HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in cors {
            headers.remove(name);
        }
    }
    response
}

/// Headers on every response: no MIME sniffing, no caching of data, no
/// framing, no referrer, and a strict CSP (nothing here is an HTML page
/// that loads anything). No `Server` header is ever set.
pub async fn security_headers(request: Request<Body>, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: &'static str, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "cache-control", "no-store");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    );
    headers.remove(header::SERVER);
    response
}

/// Applies `limits` and the CORS settings to the whole router.
pub fn harden(router: Router, edge: &'static EdgeDef) -> Router {
    let mut router = router;
    if let Some(cors) = &edge.cors {
        router = router.layer(cors_layer(cors));
    }
    let cors = edge.cors.as_ref();
    router
        .layer(axum::middleware::from_fn(move |request, next| {
            preflight_guard(cors, request, next)
        }))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            edge.max_body_bytes as usize,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(edge.request_timeout_ms),
        ))
        .layer(axum::middleware::from_fn(security_headers))
}

/// How to listen.
#[derive(Clone, Debug, Default)]
pub struct Listen {
    /// Certificate chain and private key (PEM): serve HTTPS only.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_header_bytes: usize,
}

/// Loads the certificate and key (TLS 1.2 and 1.3 only: rustls speaks
/// nothing older).
pub async fn tls_config(cert: &PathBuf, key: &PathBuf) -> std::io::Result<RustlsConfig> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    RustlsConfig::from_pem_file(cert, key).await
}

/// Serves until SIGINT or SIGTERM (or `shutdown` is cancelled), then
/// finishes in-flight requests. With TLS, SIGHUP reloads the certificate
/// and key from their files; a failed reload keeps the old ones.
pub async fn serve_listener(
    listener: std::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
    listen: Listen,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stop = handle.clone();
    let token = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = crate::http::shutdown_signal() => {},
            _ = token.cancelled() => {},
        }
        token.cancel();
        stop.graceful_shutdown(Some(Duration::from_secs(30)));
    });
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let max_header = listen.max_header_bytes.max(8192);
    match listen.tls {
        Some((cert, key)) => {
            let config = tls_config(&cert, &key).await?;
            // Registered here, before serving: a SIGHUP that arrives once
            // the server answers is always a reload, never the default
            // (terminate).
            #[cfg(unix)]
            let hangups =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            #[cfg(not(unix))]
            let hangups = None;
            tokio::spawn(reload_on_sighup(
                config.clone(),
                cert,
                key,
                shutdown,
                hangups,
            ));
            let mut server = axum_server::from_tcp_rustls(listener, config)?.handle(handle);
            server.http_builder().http1().max_buf_size(max_header);
            server.serve(service).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)?.handle(handle);
            server.http_builder().http1().max_buf_size(max_header);
            server.serve(service).await
        }
    }
}

#[cfg(unix)]
async fn reload_on_sighup(
    config: RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
    shutdown: CancellationToken,
    hangups: Option<tokio::signal::unix::Signal>,
) {
    let Some(mut hangups) = hangups else {
        tracing::warn!("SIGHUP cannot be watched: certificate reload is off");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            got = hangups.recv() => if got.is_none() { return },
        }
        match config.reload_from_pem_file(&cert, &key).await {
            Ok(()) => tracing::info!("TLS certificate and key reloaded"),
            Err(error) => {
                tracing::error!(%error, "TLS reload failed: the previous certificate stays in use")
            }
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(
    _: RustlsConfig,
    _: PathBuf,
    _: PathBuf,
    _: CancellationToken,
    _: Option<()>,
) {
}

/// A plain-HTTP listener that only redirects to HTTPS on `https_port`.
pub async fn redirect_listener(
    listener: std::net::TcpListener,
    https_port: u16,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let router = Router::new().fallback(move |request: Request<Body>| async move {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.rsplit_once(':').map(|(name, _)| name).or(Some(h)))
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b))
            })
            .unwrap_or("localhost")
            .to_string();
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let target = if https_port == 443 {
            format!("https://{host}{path}")
        } else {
            format!("https://{host}:{https_port}{path}")
        };
        match HeaderValue::from_str(&target) {
            Ok(location) => (
                StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response(),
            Err(_) => StatusCode::BAD_REQUEST.into_response(),
        }
    });
    let router = router.layer(axum::middleware::from_fn(security_headers));
    serve_listener(listener, router, shutdown, Listen::default()).await
}
