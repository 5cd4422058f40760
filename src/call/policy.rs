//! What one call may do, shared by REST and MCP: the role decision under
//! the endpoint's enforcement mode (SPEC §9), the response shaping for the
//! caller (SPEC §10) and the dry run's report.

use serde_json::{Value, json};

use crate::auth::Principal;
use crate::db::{QueryError, QuerySpec, explain, statement_for};
use crate::runtime::{Access, BindValue, EndpointDef, ProjectDef, RoleDef, RoleMask};

/// The role check of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Denied by policy, but the endpoint is in shadow mode: recorded, not
    /// enforced.
    WouldDeny,
    Deny,
}

impl Verdict {
    pub fn decide(access: Access, granted: Option<RoleMask>, shadow: bool) -> Verdict {
        match (access.allows(granted), shadow) {
            (true, _) => Verdict::Allow,
            (false, true) => Verdict::WouldDeny,
            (false, false) => Verdict::Deny,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::WouldDeny => "would_deny",
            Verdict::Deny => "deny",
        }
    }
}

/// Response shaping for one caller of one endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    /// Rows returned at most; the query reads one more.
    pub max_rows: Option<u64>,
    /// Columns masked for this caller.
    pub redact: Vec<&'static str>,
    /// Shadow mode: what the policy would have capped and masked.
    pub would_max_rows: Option<u64>,
    pub would_redact: Vec<&'static str>,
    pub sample: bool,
}

impl Shape {
    /// `transport_cap` is a cap the transport always applies (MCP's
    /// `mcp.max-rows` for results without pages), in every mode.
    pub fn for_caller(
        endpoint: &EndpointDef,
        granted: Option<RoleMask>,
        transport_cap: Option<u64>,
    ) -> Shape {
        let shaping = &endpoint.shaping;
        let masked: Vec<&'static str> = shaping
            .redact
            .iter()
            .filter(|r| granted.is_none_or(|g| g & r.unmask == 0))
            .map(|r| r.column)
            .collect();
        let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if endpoint.shadow {
            // Masking is enforced in shadow mode too: no setting serves a
            // redacted column in the clear to a caller without its role.
            Shape {
                max_rows: transport_cap,
                redact: masked,
                would_max_rows: shaping.max_rows,
                would_redact: Vec::new(),
                sample: shaping.sample,
            }
        } else {
            Shape {
                max_rows: min(shaping.max_rows, transport_cap),
                redact: masked,
                would_max_rows: None,
                would_redact: Vec::new(),
                sample: shaping.sample,
            }
        }
    }

    /// In shadow mode, whether shaping would have changed this result.
    pub fn would_change(&self, rows: u64, columns_masked: bool) -> bool {
        self.would_max_rows.is_some_and(|max| rows > max) || columns_masked
    }

    pub fn describe(&self, shadow: bool) -> Value {
        json!({
            "enforcement": if shadow { "shadow" } else { "enforce" },
            "max_rows": self.max_rows,
            "redact_columns": self.redact,
            "would_max_rows": self.would_max_rows,
            "would_redact_columns": self.would_redact,
            "sample": self.sample,
        })
    }
}

/// Whether the caller may use `_dryRun`.
pub fn may_dry_run(project: &ProjectDef, principal: Option<&Principal>) -> bool {
    project.policy.dry_run_public
        || principal.is_some_and(|p| p.roles & project.policy.dry_run_roles != 0)
}

/// Role names of a mask, for records and reports.
pub fn role_names(roles: &[RoleDef], granted: RoleMask) -> Vec<&'static str> {
    roles
        .iter()
        .filter(|r| granted & r.bit != 0)
        .map(|r| r.name)
        .collect()
}

/// A bound value as a dry run shows it. Environment values are named,
/// never shown.
fn bind_json(bind: &BindValue) -> Value {
    match bind {
        BindValue::Null => json!({"type": "NULL", "value": null}),
        BindValue::Int(i) => json!({"type": "BIGINT", "value": i}),
        BindValue::Double(d) => json!({"type": "DOUBLE", "value": d}),
        BindValue::Bool(b) => json!({"type": "BOOLEAN", "value": b}),
        BindValue::Text(t) => json!({"type": "VARCHAR", "value": t}),
        BindValue::Date(d) => json!({"type": "DATE", "value": d.to_string()}),
        BindValue::Time(t) => json!({"type": "TIME", "value": t.to_string()}),
        BindValue::Timestamp(t) => json!({"type": "TIMESTAMP", "value": t.to_string()}),
        BindValue::Env(name) => json!({"type": "VARCHAR", "env": name}),
        BindValue::Auth(_) => json!({"type": "NULL", "value": null}),
    }
}

/// The dry run's report: the statement that would run, its values, DuckDB's
/// plan, the role decision and the shaping; nothing is executed.
pub fn dry_run_report(
    connection: &duckdb::Connection,
    env: &crate::db::Env,
    spec: &QuerySpec<'_>,
    verdict: Verdict,
    shape: &Shape,
) -> Result<Value, QueryError> {
    let (sql, values) = statement_for(spec, env)?;
    let mut binds: Vec<Value> = spec.binds.iter().map(bind_json).collect();
    // LIMIT/OFFSET values the server adds for pages and row caps.
    for value in values.iter().skip(spec.binds.len()) {
        if let duckdb::types::Value::BigInt(n) = value {
            binds.push(json!({"type": "BIGINT", "value": n}));
        }
    }
    let plan = explain(connection, env, spec)?;
    Ok(json!({
        "dry_run": true,
        "endpoint": spec.endpoint.id,
        "sql": sql,
        "binds": binds,
        "plan": plan,
        "decision": verdict.as_str(),
        "shaping": shape.describe(spec.endpoint.shadow),
    }))
}
