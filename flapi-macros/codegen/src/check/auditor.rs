//! The config auditor (SPEC §13): settings that are allowed but insecure
//! become warnings, printed by the build and by `flapi-validate`, which
//! fails on them with `--deny-warnings`. Warnings raised where the setting
//! is resolved (pbkdf2 hashes, items without `allowed-roles`, shadow mode)
//! live with that code; this module holds the ones that need the whole
//! project.

use crate::diag::{Diagnostics, Location};
use crate::load::RawProject;
use crate::resolve::edge::Edge;
use crate::resolve::model::{AuthSettings, Endpoint, Policy};

fn is_loopback(host: &str) -> bool {
    let host = host.trim_matches(|c| c == '[' || c == ']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn audit_settings(
    raw: &RawProject,
    auth: &AuthSettings,
    policy: &Policy,
    edge: &Edge,
    endpoints: &[Endpoint],
    diags: &mut Diagnostics,
) {
    let start = Location::file_start(&raw.file);
    if let (Some(cors), Some(raw_cors)) = (&edge.cors, &raw.cors)
        && cors.any_origin
        && (auth.rest || auth.mcp)
    {
        let at = raw_cors
            .allow_origins
            .iter()
            .find(|o| o.value.trim() == "*")
            .map(|o| o.loc.clone())
            .unwrap_or_else(|| raw_cors.loc.clone());
        diags.warning(
            &at,
            "cors.allow-origins",
            "CORS allows every origin (`*`) while authentication is on: any web page a user opens can call the API with a token it obtains",
            Some("list the origins of your web applications instead of `*`".into()),
        );
    }
    if (auth.rest || auth.mcp) && policy.audit.is_none() {
        let at = raw
            .auth
            .as_ref()
            .or(raw.mcp.auth.as_ref())
            .map(|a| a.loc.clone())
            .unwrap_or_else(|| start.clone());
        diags.warning(
            &at,
            "audit",
            "authentication is on but the audit log is off: calls and denials leave no record",
            Some("add `audit:` with a `path` (SPEC §8)".into()),
        );
    }
    if let Some(open) = raw.dry_run_public.as_ref().filter(|o| o.value) {
        diags.warning(
            &open.loc,
            "dry-run-public",
            "dry runs are open to everyone: any caller can read every endpoint's SQL and plan",
            Some(
                "turn authentication on and list the roles that may dry-run in `dry-run-roles`"
                    .into(),
            ),
        );
    }
    if let Some(host) = raw.http_host.as_ref().filter(|h| !is_loopback(&h.value)) {
        let routes = endpoints.iter().any(|e| e.route.is_some());
        if routes && !auth.rest && edge.tls.is_none() {
            diags.warning(
                &host.loc,
                "http-host",
                format!(
                    "the server listens on `{}` without TLS and without authentication: anyone who can reach it can call every route",
                    host.value
                ),
                Some("bind 127.0.0.1 behind a TLS proxy, or turn `auth` on".into()),
            );
        }
        let tools = endpoints
            .iter()
            .any(|e| e.tool.is_some() || e.resource.is_some());
        if tools && !auth.mcp {
            diags.warning(
                &host.loc,
                "http-host",
                format!(
                    "MCP tools are served on `{}` without authentication",
                    host.value
                ),
                Some("turn `mcp.auth` on, or bind 127.0.0.1".into()),
            );
        }
    }
}
