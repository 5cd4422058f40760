//! The network edge (SPEC §12): CORS, TLS files, rate limits and request
//! limits, read from flapi.yaml and the endpoint files with flAPI's keys
//! (`cors`, `enforce-https`, `rate-limit`) plus `limits`.

use crate::diag::{Diagnostics, Location};
use crate::load::yaml::{
    Kind, MapReader, Node, Sp, expect_bool, expect_int, expect_str, expect_str_list, opt,
};

#[derive(Debug, Clone)]
pub struct RawRateLimit {
    pub loc: Location,
    pub path: String,
    pub enabled: Option<Sp<bool>>,
    pub max: Option<Sp<i64>>,
    pub interval: Option<Sp<i64>>,
    pub key: Option<Sp<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct RawCors {
    pub loc: Location,
    pub allow_origins: Vec<Sp<String>>,
    pub allow_methods: Vec<Sp<String>>,
    pub allow_headers: Vec<Sp<String>>,
    pub allow_credentials: Option<Sp<bool>>,
    pub max_age_seconds: Option<Sp<i64>>,
}

#[derive(Debug, Clone, Default)]
pub struct RawHttps {
    pub loc: Location,
    pub enabled: Option<Sp<bool>>,
    pub cert_file: Option<Sp<String>>,
    pub key_file: Option<Sp<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct RawLimits {
    pub loc: Location,
    pub max_body_bytes: Option<Sp<i64>>,
    pub max_header_bytes: Option<Sp<i64>>,
    pub request_timeout_ms: Option<Sp<i64>>,
    pub max_concurrent_queries: Option<Sp<i64>>,
}

fn list(map: &mut MapReader<'_>, key: &str, diags: &mut Diagnostics) -> Vec<Sp<String>> {
    let path = map.key_path(key);
    match map.take(key) {
        // `allow-origins: "*"` as flAPI writes it, or a list.
        Some(node) if matches!(node.kind, Kind::Str(_)) => {
            expect_str(node, &path, diags).into_iter().collect()
        }
        Some(node) => expect_str_list(node, &path, diags),
        None => Vec::new(),
    }
}

/// `rate-limit: {enabled, max, interval, key}` (flAPI's keys).
pub fn load_rate_limit(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<RawRateLimit> {
    let mut map = MapReader::new(node, path, diags)?;
    let raw = RawRateLimit {
        loc: node.loc.clone(),
        path: path.to_string(),
        enabled: opt(&mut map, "enabled", diags, expect_bool),
        max: opt(&mut map, "max", diags, expect_int),
        interval: opt(&mut map, "interval", diags, expect_int),
        key: opt(&mut map, "key", diags, expect_str),
    };
    map.finish(&["enabled", "max", "interval", "key"], diags);
    Some(raw)
}

pub fn load_cors(node: &Node, diags: &mut Diagnostics) -> Option<RawCors> {
    let mut map = MapReader::new(node, "cors", diags)?;
    let raw = RawCors {
        loc: node.loc.clone(),
        allow_origins: list(&mut map, "allow-origins", diags),
        allow_methods: list(&mut map, "allow-methods", diags),
        allow_headers: list(&mut map, "allow-headers", diags),
        allow_credentials: opt(&mut map, "allow-credentials", diags, expect_bool),
        max_age_seconds: opt(&mut map, "max-age-seconds", diags, expect_int),
    };
    map.finish(
        &[
            "allow-origins",
            "allow-methods",
            "allow-headers",
            "allow-credentials",
            "max-age-seconds",
        ],
        diags,
    );
    Some(raw)
}

pub fn load_https(node: &Node, diags: &mut Diagnostics) -> Option<RawHttps> {
    let mut map = MapReader::new(node, "enforce-https", diags)?;
    let raw = RawHttps {
        loc: node.loc.clone(),
        enabled: opt(&mut map, "enabled", diags, expect_bool),
        cert_file: opt(&mut map, "ssl-cert-file", diags, expect_str),
        key_file: opt(&mut map, "ssl-key-file", diags, expect_str),
    };
    map.finish(&["enabled", "ssl-cert-file", "ssl-key-file"], diags);
    Some(raw)
}

pub fn load_limits(node: &Node, diags: &mut Diagnostics) -> Option<RawLimits> {
    let mut map = MapReader::new(node, "limits", diags)?;
    let raw = RawLimits {
        loc: node.loc.clone(),
        max_body_bytes: opt(&mut map, "max-body-bytes", diags, expect_int),
        max_header_bytes: opt(&mut map, "max-header-bytes", diags, expect_int),
        request_timeout_ms: opt(&mut map, "request-timeout-ms", diags, expect_int),
        max_concurrent_queries: opt(&mut map, "max-concurrent-queries", diags, expect_int),
    };
    map.finish(
        &[
            "max-body-bytes",
            "max-header-bytes",
            "request-timeout-ms",
            "max-concurrent-queries",
        ],
        diags,
    );
    Some(raw)
}
