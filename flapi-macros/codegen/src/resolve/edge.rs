//! The network edge, resolved: CORS, TLS files, rate limits and request
//! limits with their bounds checked.

use crate::diag::Diagnostics;
use crate::load::yaml::{Sp, join};
use crate::load::{RawCors, RawHttps, RawLimits, RawRateLimit};

/// Who shares a bucket. flAPI's values keep their meaning: `ip` is the
/// client address; `user` the verified principal, with every anonymous
/// caller in one shared bucket; `user-or-ip` (the default here) the
/// principal, or the address for anonymous callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKey {
    Ip,
    User,
    UserOrIp,
}

/// `max` calls per `interval_secs`, as a GCRA: a burst of `max`, refilled
/// evenly over the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub interval_secs: u32,
    pub key: RateKey,
}

pub fn resolve_rate_limit(raw: &RawRateLimit, diags: &mut Diagnostics) -> Option<RateLimit> {
    if raw.enabled.as_ref().is_some_and(|e| !e.value) {
        return None;
    }
    let max = match &raw.max {
        None => 100,
        Some(m) if (1..=1_000_000).contains(&m.value) => m.value as u32,
        Some(m) => {
            diags.error(
                &m.loc,
                join(&raw.path, "max"),
                "must be between 1 and 1000000 calls",
                None,
            );
            100
        }
    };
    let interval_secs = match &raw.interval {
        None => 60,
        Some(i) if (1..=86_400).contains(&i.value) => i.value as u32,
        Some(i) => {
            diags.error(
                &i.loc,
                join(&raw.path, "interval"),
                "must be between 1 and 86400 seconds",
                None,
            );
            60
        }
    };
    let key = match raw.key.as_ref().map(|k| k.value.as_str()) {
        None | Some("user-or-ip") => RateKey::UserOrIp,
        Some("ip") => RateKey::Ip,
        Some("user") => RateKey::User,
        Some(other) => {
            let loc = raw.key.as_ref().map(|k| k.loc.clone()).unwrap_or_default();
            diags.error(
                &loc,
                join(&raw.path, "key"),
                format!("unknown rate-limit key `{other}`"),
                Some("use `user-or-ip` (default), `user` or `ip`".into()),
            );
            RateKey::UserOrIp
        }
    };
    Some(RateLimit {
        max,
        interval_secs,
        key,
    })
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    /// Exact origins; empty with `any_origin` for `*`.
    pub origins: Vec<String>,
    pub any_origin: bool,
    pub methods: Vec<String>,
    pub headers: Vec<String>,
    pub credentials: bool,
    pub max_age_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Paths as written, resolved against the project folder at run time;
    /// the key is never read at build time.
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_header_bytes: u64,
    pub request_timeout_ms: u64,
    /// Queries running or waiting at once across the server; 0: 64 per
    /// pooled connection.
    pub max_concurrent_queries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_header_bytes: 16 << 10,
            request_timeout_ms: 60_000,
            max_concurrent_queries: 0,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Edge {
    pub cors: Option<Cors>,
    pub tls: Option<TlsFiles>,
    pub limits: Limits,
    /// The project's `rate-limit`: every route and tool without its own.
    pub rate_limit: Option<RateLimit>,
    /// `Host` names every route answers (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// The name the HTTPS redirect sends clients to.
    pub public_host: String,
}

const LOOPBACK_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// One host allowlist for every route: the loopback names, the listen
/// host when it is one clients can use, and the names in `allowed-hosts`
/// and `mcp.allowed-hosts`. Also the public name for the HTTPS redirect:
/// the first listed name, else the listen host, else `localhost`.
pub fn resolve_hosts(
    listed: &[Sp<String>],
    mcp_listed: &[Sp<String>],
    http_host: Option<&str>,
    diags: &mut Diagnostics,
) -> (Vec<String>, String) {
    let mut hosts: Vec<String> = LOOPBACK_NAMES.iter().map(|h| h.to_string()).collect();
    let listen = http_host.filter(|h| !matches!(*h, "0.0.0.0" | "::" | "[::]" | ""));
    let mut public = None;
    for (host, key) in listed
        .iter()
        .map(|h| (h, "allowed-hosts"))
        .chain(mcp_listed.iter().map(|h| (h, "mcp.allowed-hosts")))
    {
        let value = host.value.trim().to_ascii_lowercase();
        let valid = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !valid {
            diags.error(
                &host.loc,
                key,
                format!("`{}` is not a host name or host:port", host.value),
                Some("write `api.example.com` or `api.example.com:8443`".into()),
            );
            continue;
        }
        if public.is_none() && !LOOPBACK_NAMES.contains(&value.as_str()) {
            public = Some(value.clone());
        }
        if !hosts.contains(&value) {
            hosts.push(value);
        }
    }
    if let Some(host) = listen {
        let host = host.to_ascii_lowercase();
        if !hosts.contains(&host) {
            hosts.push(host.clone());
        }
        public = public.or(Some(host));
    }
    (hosts, public.unwrap_or_else(|| "localhost".into()))
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

fn resolve_cors(raw: &RawCors, diags: &mut Diagnostics) -> Option<Cors> {
    let mut cors = Cors {
        methods: vec!["GET".into(), "POST".into()],
        headers: vec![
            "authorization".into(),
            "content-type".into(),
            "mcp-protocol-version".into(),
            "mcp-session-id".into(),
        ],
        max_age_seconds: 600,
        ..Default::default()
    };
    for origin in &raw.allow_origins {
        let o = origin.value.trim();
        if o == "*" {
            cors.any_origin = true;
        } else if let Some(rest) = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
            && !rest.is_empty()
            && !rest.contains(['/', '*', ' '])
        {
            cors.origins.push(o.to_ascii_lowercase());
        } else {
            diags.error(
                &origin.loc,
                "cors.allow-origins",
                format!("`{o}` is not an origin"),
                Some(
                    "write scheme and host (and port), without a path: `https://app.example.com`"
                        .into(),
                ),
            );
        }
    }
    if cors.any_origin && !cors.origins.is_empty() {
        diags.error(
            &raw.loc,
            "cors.allow-origins",
            "`*` and a list of origins are both given",
            Some("keep the list: `*` lets every site call the API".into()),
        );
    }
    if !raw.allow_methods.is_empty() {
        cors.methods.clear();
        for m in &raw.allow_methods {
            let upper = m.value.trim().to_ascii_uppercase();
            if METHODS.contains(&upper.as_str()) {
                cors.methods.push(upper);
            } else {
                diags.error(
                    &m.loc,
                    "cors.allow-methods",
                    format!("`{}` is not an HTTP method", m.value),
                    Some(format!("use some of: {}", METHODS.join(", "))),
                );
            }
        }
    }
    if !raw.allow_headers.is_empty() {
        cors.headers.clear();
        for h in &raw.allow_headers {
            let name = h.value.trim().to_ascii_lowercase();
            if name == "*"
                || name.is_empty()
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                diags.error(
                    &h.loc,
                    "cors.allow-headers",
                    format!("`{}` is not a header name", h.value),
                    Some("list each header a browser may send, such as `authorization`".into()),
                );
            } else {
                cors.headers.push(name);
            }
        }
    }
    if let Some(c) = &raw.allow_credentials {
        cors.credentials = c.value;
        if c.value && cors.any_origin {
            diags.error(
                &c.loc,
                "cors.allow-credentials",
                "credentials cannot be allowed for every origin (`*`)",
                Some("list the origins that may send credentials".into()),
            );
        }
    }
    if let Some(age) = &raw.max_age_seconds {
        if (0..=86_400).contains(&age.value) {
            cors.max_age_seconds = age.value as u64;
        } else {
            diags.error(
                &age.loc,
                "cors.max-age-seconds",
                "must be between 0 and 86400",
                None,
            );
        }
    }
    (cors.any_origin || !cors.origins.is_empty()).then_some(cors)
}

fn resolve_tls(raw: &RawHttps, diags: &mut Diagnostics) -> Option<TlsFiles> {
    if !raw.enabled.as_ref().is_some_and(|e| e.value) {
        return None;
    }
    let mut file = |value: &Option<Sp<String>>, key: &str| -> Option<String> {
        match value {
            // Existence is checked at start-up: the files may be mounted
            // only where the server runs.
            Some(v) if !v.value.trim().is_empty() => Some(v.value.clone()),
            _ => {
                diags.error(
                    &raw.loc,
                    format!("enforce-https.{key}"),
                    format!("`enforce-https` is enabled but `{key}` is missing"),
                    Some("give the PEM file's path, relative to the project folder, or pass `--tls-cert`/`--tls-key`".into()),
                );
                None
            }
        }
    };
    let cert = file(&raw.cert_file, "ssl-cert-file");
    let key = file(&raw.key_file, "ssl-key-file");
    Some(TlsFiles {
        cert: cert?,
        key: key?,
    })
}

fn bounded(
    value: &Option<Sp<i64>>,
    path: &str,
    range: std::ops::RangeInclusive<i64>,
    default: u64,
    diags: &mut Diagnostics,
) -> u64 {
    match value {
        None => default,
        Some(v) if range.contains(&v.value) => v.value as u64,
        Some(v) => {
            diags.error(
                &v.loc,
                path,
                format!("must be between {} and {}", range.start(), range.end()),
                None,
            );
            default
        }
    }
}

pub fn resolve_edge(
    cors: Option<&RawCors>,
    https: Option<&RawHttps>,
    limits: Option<&RawLimits>,
    rate_limit: Option<&RawRateLimit>,
    diags: &mut Diagnostics,
) -> Edge {
    let defaults = Limits::default();
    let limits = limits
        .map(|l| Limits {
            max_body_bytes: bounded(
                &l.max_body_bytes,
                "limits.max-body-bytes",
                1024..=(1 << 30),
                defaults.max_body_bytes,
                diags,
            ),
            max_header_bytes: bounded(
                &l.max_header_bytes,
                "limits.max-header-bytes",
                1024..=(1 << 20),
                defaults.max_header_bytes,
                diags,
            ),
            request_timeout_ms: bounded(
                &l.request_timeout_ms,
                "limits.request-timeout-ms",
                100..=3_600_000,
                defaults.request_timeout_ms,
                diags,
            ),
            max_concurrent_queries: bounded(
                &l.max_concurrent_queries,
                "limits.max-concurrent-queries",
                1..=100_000,
                0,
                diags,
            ),
        })
        .unwrap_or(defaults);
    Edge {
        cors: cors.and_then(|c| resolve_cors(c, diags)),
        tls: https.and_then(|h| resolve_tls(h, diags)),
        limits,
        rate_limit: rate_limit.and_then(|r| resolve_rate_limit(r, diags)),
        allowed_hosts: Vec::new(),
        public_host: String::new(),
    }
}
