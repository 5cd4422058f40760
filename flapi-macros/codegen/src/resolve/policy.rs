//! Audit, dry run, shadow mode and response shaping (SPEC §8–§10), from
//! `audit:`, `dry-run-roles`, `enforcement` and `response:`. Redaction is
//! enforced by the server (masked projections, `flapi::masking`); the build
//! holds an endpoint with `redact-columns` to reading plain tables only
//! (`sqlcheck`, when the template is compiled).

use crate::diag::{Diagnostics, Location};
use crate::load::yaml::Sp;
use crate::load::{RawAudit, RawEndpoint, RawProject, RawResponse};
use crate::resolve::auth::mask_of;
use crate::resolve::compile;
use crate::resolve::model::{
    AuditSettings, AuditSink, AuthSettings, Endpoint, Policy, Redaction, Shaping, SqlValidation,
};

/// Largest `max-rows`: a cap above this is no cap.
const MAX_ROWS_LIMIT: i64 = 1_000_000_000;

pub fn resolve_project(raw: &RawProject, auth: &AuthSettings, diags: &mut Diagnostics) -> Policy {
    let audit = raw.audit.as_ref().and_then(|a| resolve_audit(a, diags));
    let dry_run_roles = raw
        .dry_run_roles
        .as_ref()
        .map(|names| mask_of(names, &auth.roles, "dry-run-roles", diags))
        .unwrap_or(0);
    let dry_run_public = match &raw.dry_run_public {
        Some(open) if open.value && (auth.rest || auth.mcp) => {
            diags.error(
                &open.loc,
                "dry-run-public",
                "`dry-run-public` opens dry runs to everyone, but authentication is on",
                Some("list the roles that may dry-run in `dry-run-roles`".into()),
            );
            false
        }
        Some(open) => open.value,
        None => false,
    };
    if let Some((loc, true)) = global_shadow(raw, diags) {
        warn_shadow(&loc, "enforcement", "every endpoint and tool", diags);
    }
    Policy {
        audit,
        dry_run_roles,
        dry_run_public,
    }
}

fn resolve_audit(raw: &RawAudit, diags: &mut Diagnostics) -> Option<AuditSettings> {
    if raw.enabled.as_ref().is_some_and(|e| !e.value) {
        return None;
    }
    let choice =
        |value: &Option<Sp<String>>, path: &str, allowed: &[&str], diags: &mut Diagnostics| {
            let v = value.as_ref()?;
            if allowed.contains(&v.value.as_str()) {
                Some(v.value.clone())
            } else {
                diags.error(
                    &v.loc,
                    path,
                    format!("unknown value `{}`", v.value),
                    Some(format!("use one of: {}", allowed.join(", "))),
                );
                None
            }
        };
    let sink = match choice(&raw.sink, "audit.sink", &["file", "stdout"], diags).as_deref() {
        Some("stdout") => AuditSink::Stdout,
        _ => match &raw.path {
            Some(path) if !path.value.trim().is_empty() => AuditSink::File(path.value.clone()),
            Some(path) => {
                diags.error(
                    &path.loc,
                    "audit.path",
                    "the audit file path is empty",
                    None,
                );
                AuditSink::File(String::new())
            }
            None => {
                diags.error(
                    &raw.loc,
                    "audit.path",
                    "a file audit sink needs a `path`",
                    Some("add `path: audit/flapi-audit.jsonl`, or `sink: stdout`".into()),
                );
                AuditSink::File(String::new())
            }
        },
    };
    let fsync_always = choice(&raw.fsync, "audit.fsync", &["always", "interval"], diags).as_deref()
        != Some("interval");
    let fsync_interval_ms = bounded(
        &raw.fsync_interval_ms,
        "audit.fsync-interval-ms",
        1,
        60_000,
        1000,
        diags,
    );
    let max_file_bytes = bounded(
        &raw.max_file_bytes,
        "audit.max-file-bytes",
        0,
        i64::MAX,
        100 * 1024 * 1024,
        diags,
    );
    let max_files = bounded(&raw.max_files, "audit.max-files", 0, 100_000, 0, diags) as u32;
    let fail_open = choice(
        &raw.on_failure,
        "audit.on-failure",
        &["closed", "open"],
        diags,
    )
    .as_deref()
        == Some("open");
    Some(AuditSettings {
        sink,
        fsync_always,
        fsync_interval_ms,
        max_file_bytes,
        max_files,
        fail_open,
        redact_arguments: raw
            .redact_arguments
            .iter()
            .map(|n| n.value.clone())
            .collect(),
    })
}

fn bounded(
    value: &Option<Sp<i64>>,
    path: &str,
    min: i64,
    max: i64,
    default: u64,
    diags: &mut Diagnostics,
) -> u64 {
    match value {
        None => default,
        Some(v) if v.value >= min && v.value <= max => v.value as u64,
        Some(v) => {
            diags.error(
                &v.loc,
                path,
                format!("{} is out of range", v.value),
                Some(format!("use a value from {min} to {max}")),
            );
            default
        }
    }
}

/// `enforcement: shadow|enforce` as a flag, or `None` when unset.
fn shadow_of(
    value: Option<&Sp<String>>,
    path: &str,
    diags: &mut Diagnostics,
) -> Option<(Location, bool)> {
    let v = value?;
    match v.value.as_str() {
        "shadow" => Some((v.loc.clone(), true)),
        "enforce" => Some((v.loc.clone(), false)),
        other => {
            diags.error(
                &v.loc,
                path,
                format!("unknown enforcement `{other}`"),
                Some("use `enforce` (the default) or `shadow`".into()),
            );
            None
        }
    }
}

/// The project-wide mode: `enforcement` or flAPI's `mcp.enforcement`.
fn global_shadow(raw: &RawProject, diags: &mut Diagnostics) -> Option<(Location, bool)> {
    let top = shadow_of(raw.enforcement.as_ref(), "enforcement", diags);
    let mcp = shadow_of(raw.mcp.enforcement.as_ref(), "mcp.enforcement", diags);
    match (top, mcp) {
        (Some(a), Some(b)) if a.1 != b.1 => {
            diags.error(
                &b.0,
                "mcp.enforcement",
                "`enforcement` and `mcp.enforcement` disagree",
                Some("keep one of them".into()),
            );
            Some(a)
        }
        (a, b) => a.or(b),
    }
}

fn warn_shadow(loc: &Location, path: &str, scope: &str, diags: &mut Diagnostics) {
    diags.warning(
        loc,
        path,
        format!("shadow mode is on for {scope}: role checks and response shaping are recorded as `would_deny`, not enforced"),
        Some("set `enforcement: enforce` once the audit log shows no unexpected `would_deny`".into()),
    );
}

pub fn resolve_endpoint(
    project: &RawProject,
    raw: &RawEndpoint,
    endpoint: &mut Endpoint,
    auth: &AuthSettings,
    diags: &mut Diagnostics,
) {
    let own = raw
        .enforcement
        .as_ref()
        .map(|e| (e, "enforcement"))
        .or_else(|| {
            raw.mcp_tool
                .as_ref()
                .and_then(|t| t.enforcement.as_ref().map(|e| (e, "mcp-tool.enforcement")))
        });
    endpoint.shadow = match own {
        Some((value, path)) => match shadow_of(Some(value), path, diags) {
            Some((loc, true)) => {
                warn_shadow(&loc, path, &endpoint.label(), diags);
                true
            }
            Some((_, false)) => false,
            None => false,
        },
        None => global_shadow(project, &mut Diagnostics::new()).is_some_and(|(_, on)| on),
    };

    let response = match (
        raw.response.as_ref(),
        raw.mcp_tool.as_ref().and_then(|t| t.response.as_ref()),
    ) {
        (Some(_), Some(tool)) => {
            diags.error(
                &tool.loc,
                "mcp-tool.response",
                "`response` is set on the endpoint and on its `mcp-tool`",
                Some("keep one: the endpoint's `response` applies to REST and MCP alike".into()),
            );
            raw.response.as_ref()
        }
        (a, b) => a.or(b),
    };
    if let Some(response) = response {
        endpoint.shaping = resolve_response(response, endpoint, auth, diags);
    }
}

/// The server prepares and proves one masked text per combination of
/// masked columns (a bit each): at most this many columns.
pub const MAX_REDACT_COLUMNS: usize = 16;

fn resolve_response(
    raw: &RawResponse,
    endpoint: &mut Endpoint,
    auth: &AuthSettings,
    diags: &mut Diagnostics,
) -> Shaping {
    let max_rows = raw.max_rows.as_ref().and_then(|m| {
        if (1..=MAX_ROWS_LIMIT).contains(&m.value) {
            Some(m.value as u64)
        } else {
            diags.error(
                &m.loc,
                "response.max-rows",
                format!("{} is out of range", m.value),
                Some(format!("use 1 to {MAX_ROWS_LIMIT}")),
            );
            None
        }
    });
    let default_unmask = raw
        .unmask_roles
        .as_ref()
        .map(|names| mask_of(names, &auth.roles, "response.unmask-roles", diags))
        .unwrap_or(0);
    let mut redact = Vec::new();
    for entry in &raw.redact_columns {
        let column = entry.column.value.trim().to_string();
        if column.is_empty() {
            diags.error(
                &entry.column.loc,
                "response.redact-columns",
                "empty column name",
                None,
            );
            continue;
        }
        if redact
            .iter()
            .any(|r: &Redaction| r.column.eq_ignore_ascii_case(&column))
        {
            diags.error(
                &entry.column.loc,
                "response.redact-columns",
                format!("`{column}` is listed twice"),
                None,
            );
            continue;
        }
        let unmask = entry
            .unmask_roles
            .as_ref()
            .map(|names| {
                mask_of(
                    names,
                    &auth.roles,
                    "response.redact-columns.unmask-roles",
                    diags,
                )
            })
            .unwrap_or(default_unmask);
        if redact.len() == MAX_REDACT_COLUMNS {
            diags.error(
                &entry.column.loc,
                "response.redact-columns",
                format!("more than {MAX_REDACT_COLUMNS} redacted columns"),
                Some("the server proves one masked text per combination of masked columns; split the endpoint, or select fewer sensitive columns".into()),
            );
            break;
        }
        redact.push(Redaction { column, unmask });
    }
    if let Some(first) = raw.redact_columns.first()
        && endpoint.sql_validation == SqlValidation::Startup
    {
        diags.error(
            &first.column.loc,
            "response.redact-columns",
            "redaction needs the SQL checked at build time, but this endpoint opts out (`sql-validation: startup`)",
            Some("remove `sql-validation: startup` so the build can hold the SQL to the rules for masked endpoints".into()),
        );
    }
    let sample = raw.sample.as_ref().is_some_and(|s| s.value);
    if let Some(flag) = raw.sample.as_ref().filter(|s| s.value)
        && endpoint.sql_validation == SqlValidation::Startup
    {
        diags.error(
            &flag.loc,
            "response.sample",
            "`sample` wraps the SQL to count its rows, which needs it checked at build time, but this endpoint opts out (`sql-validation: startup`)",
            Some("remove `sql-validation: startup`".into()),
        );
    }
    if sample {
        for text in &mut endpoint.template.texts {
            if text.count_sql.is_none() {
                text.count_sql = Some(compile::count_sql(&text.sql));
            }
        }
    }
    Shaping {
        max_rows,
        redact,
        sample,
    }
}
