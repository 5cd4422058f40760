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

/// Whether a `Host` value may be served: an IP literal (never the name
/// of a DNS-rebinding page), or a name in the project's allowlist (its
/// port too when the entry names one). Names compare case-insensitively,
/// without a trailing dot.
pub fn host_allowed(allowed: &[&str], host: &str) -> bool {
    // A `Host` never carries user info; one that does is not a browser's.
    if host.contains('@') {
        return false;
    }
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let name = authority
        .host()
        .trim_matches(['[', ']'])
        .trim_end_matches('.');
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    let port = authority.port_u16();
    allowed.iter().any(|entry| {
        let (entry_name, entry_port) = match entry.parse::<axum::http::uri::Authority>() {
            Ok(a) => (a.host().to_string(), a.port_u16()),
            Err(_) => (entry.to_string(), None),
        };
        entry_name.eq_ignore_ascii_case(name) && entry_port.is_none_or(|p| Some(p) == port)
    })
}

/// Refuses a request whose `Host` (or HTTP/2 authority) is not served
/// here, on every route: a page on another name that rebinds its DNS to
/// this server must not read it. A request without any host (not from a
/// browser) passes; two `Host` headers are refused.
pub async fn host_guard(
    allowed: &'static [&'static str],
    request: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let mut values = request.headers().get_all(header::HOST).iter();
    let host = match (values.next(), values.next()) {
        (Some(_), Some(_)) => None,
        (Some(value), None) => Some(value.to_str().ok().map(str::to_string)),
        (None, _) => request.uri().authority().map(|a| Some(a.to_string())),
    };
    let ok = match &host {
        None => request.headers().get(header::HOST).is_none(),
        Some(Some(host)) => host_allowed(allowed, host),
        Some(None) => false,
    };
    if !ok {
        tracing::warn!("request refused: its Host is not served here (possible DNS rebinding)");
        return crate::http::error_json(
            StatusCode::FORBIDDEN,
            "this host name is not served here",
            None,
        );
    }
    next.run(request).await
}

/// The size of a request's head as the client sent it (request line and
/// header lines), near enough to enforce `limits.max-header-bytes`.
fn head_bytes(request: &Request<Body>) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |p| p.as_str().len());
    let line = request.method().as_str().len() + target + 12;
    request.headers().iter().fold(line, |n, (name, value)| {
        n + name.as_str().len() + value.len() + 4
    })
}

/// 431 for a request head above the limit. hyper's own buffer limit is
/// set above this one, so the refusal is answered (and recorded) here.
pub async fn header_guard(
    max_bytes: usize,
    request: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    if head_bytes(&request) > max_bytes {
        return crate::http::error_json(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the request headers are too large",
            None,
        );
    }
    next.run(request).await
}

/// Applies the host allowlist, the limits and the CORS settings to the
/// whole router. The request timeout and the record of what these refuse
/// are applied by [`crate::http::edge_audit`], outside them.
pub fn harden(router: Router, edge: &'static EdgeDef) -> Router {
    let mut router = router;
    if let Some(cors) = &edge.cors {
        router = router.layer(cors_layer(cors));
    }
    let cors = edge.cors.as_ref();
    let max_header = edge.max_header_bytes as usize;
    router
        .layer(axum::middleware::from_fn(move |request, next| {
            preflight_guard(cors, request, next)
        }))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            edge.max_body_bytes as usize,
        ))
        .layer(axum::middleware::from_fn(move |request, next| {
            host_guard(edge.allowed_hosts, request, next)
        }))
        .layer(axum::middleware::from_fn(move |request, next| {
            header_guard(max_header, request, next)
        }))
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
    // With TLS, browsers are told to keep to HTTPS (one year).
    let router = if listen.tls.is_some() {
        router.layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            ),
        )
    } else {
        router
    };
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    // hyper's own limit is a backstop well above the project's: a head
    // between the two is refused (and recorded) by `header_guard`.
    let max_header = (listen.max_header_bytes * 2).max(16 << 10);
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

/// A plain-HTTP listener that only redirects to HTTPS on `https_port` of
/// `public_host` (the project's configured name, never the client's
/// `Host`: a redirect must not send anyone to a name the client chose).
pub async fn redirect_listener(
    listener: std::net::TcpListener,
    public_host: &'static str,
    https_port: u16,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let router = Router::new().fallback(move |request: Request<Body>| async move {
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        match HeaderValue::from_str(&redirect_target(public_host, https_port, path)) {
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

/// `https://host[:port]/path`, with an IPv6 host in brackets.
pub fn redirect_target(host: &str, https_port: u16, path: &str) -> String {
    // A bare IPv6 address gets brackets; a name may carry its own port
    // (`api.example.com:8443`), which then wins over the listener's.
    let split = host
        .rsplit_once(':')
        .filter(|(name, _)| !name.contains(':'))
        .and_then(|(name, port)| port.parse::<u16>().ok().map(|p| (name, p)));
    let (host, own_port) = match split {
        _ if host.parse::<std::net::Ipv6Addr>().is_ok() => (format!("[{host}]"), None),
        Some((name, port)) => (name.to_string(), Some(port)),
        None => (host.to_string(), None),
    };
    let https_port = own_port.unwrap_or(https_port);
    let path = if path.starts_with('/') { path } else { "/" };
    if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets_use_the_configured_name() {
        assert_eq!(
            redirect_target("api.example.com", 443, "/a?b=1"),
            "https://api.example.com/a?b=1"
        );
        assert_eq!(
            redirect_target("api.example.com", 8443, "/a"),
            "https://api.example.com:8443/a"
        );
        assert_eq!(
            redirect_target("api.example.com:9443", 8443, "/a"),
            "https://api.example.com:9443/a"
        );
        assert_eq!(redirect_target("::1", 8443, "/a"), "https://[::1]:8443/a");
        assert_eq!(redirect_target("[::1]", 8443, "/a"), "https://[::1]:8443/a");
        // A path that is not one becomes `/`; `//evil` stays a path.
        assert_eq!(redirect_target("h", 443, "*"), "https://h/");
        assert_eq!(
            redirect_target("h", 443, "//evil.example/x"),
            "https://h//evil.example/x"
        );
    }

    #[test]
    fn hosts_are_matched_by_name_and_port() {
        let allowed = ["localhost", "api.example.com", "pinned.example.com:8443"];
        for (host, ok) in [
            ("localhost:8080", true),
            ("API.Example.COM", true),
            ("api.example.com.", true),
            ("pinned.example.com:8443", true),
            ("pinned.example.com:9000", false),
            ("pinned.example.com", false),
            ("192.0.2.1:8080", true),
            ("[2001:db8::1]:8080", true),
            ("evil.example", false),
            ("localhost.evil.example", false),
            ("user@localhost", false),
            ("", false),
        ] {
            assert_eq!(host_allowed(&allowed, host), ok, "{host}");
        }
    }
}
