//! `audit:` and `response:`, as written.

use crate::diag::{Diagnostics, Location};
use crate::load::auth::roles_list;
use crate::load::yaml::{
    self, Kind, MapReader, Node, Sp, expect_bool, expect_int, expect_seq, expect_str,
    expect_str_list, opt,
};

/// `audit:` in flapi.yaml.
#[derive(Debug, Default)]
pub struct RawAudit {
    pub loc: Location,
    pub enabled: Option<Sp<bool>>,
    pub sink: Option<Sp<String>>,
    pub path: Option<Sp<String>>,
    pub fsync: Option<Sp<String>>,
    pub fsync_interval_ms: Option<Sp<i64>>,
    pub max_file_bytes: Option<Sp<i64>>,
    pub max_files: Option<Sp<i64>>,
    pub on_failure: Option<Sp<String>>,
    pub redact_arguments: Vec<Sp<String>>,
}

/// `response:` of an endpoint or of its `mcp-tool`.
#[derive(Debug)]
pub struct RawResponse {
    pub loc: Location,
    pub max_rows: Option<Sp<i64>>,
    pub redact_columns: Vec<RawRedact>,
    pub unmask_roles: Option<Vec<Sp<String>>>,
    pub sample: Option<Sp<bool>>,
}

/// One `redact-columns` entry: a name, or `{column, unmask-roles}`.
#[derive(Debug)]
pub struct RawRedact {
    pub column: Sp<String>,
    pub unmask_roles: Option<Vec<Sp<String>>>,
}

const AUDIT_KEYS: &[&str] = &[
    "enabled",
    "sink",
    "path",
    "fsync",
    "fsync-interval-ms",
    "max-file-bytes",
    "max-files",
    "on-failure",
    "redact-arguments",
];

pub(crate) fn load_audit(node: &Node, diags: &mut Diagnostics) -> Option<RawAudit> {
    let mut map = MapReader::new(node, "audit", diags)?;
    let mut audit = RawAudit {
        loc: node.loc.clone(),
        enabled: opt(&mut map, "enabled", diags, expect_bool),
        sink: opt(&mut map, "sink", diags, expect_str),
        path: opt(&mut map, "path", diags, expect_str),
        fsync: opt(&mut map, "fsync", diags, expect_str),
        fsync_interval_ms: opt(&mut map, "fsync-interval-ms", diags, expect_int),
        max_file_bytes: opt(&mut map, "max-file-bytes", diags, expect_int),
        max_files: opt(&mut map, "max-files", diags, expect_int),
        on_failure: opt(&mut map, "on-failure", diags, expect_str),
        redact_arguments: Vec::new(),
    };
    // `redact` is flAPI's name for the same list.
    if let Some(list) = map.take_either("redact-arguments", "redact", diags) {
        audit.redact_arguments = expect_str_list(list, "audit.redact-arguments", diags);
    }
    map.finish(AUDIT_KEYS, diags);
    Some(audit)
}

const RESPONSE_KEYS: &[&str] = &["max-rows", "redact-columns", "unmask-roles", "sample"];

pub(crate) fn load_response(
    node: &Node,
    path: &str,
    diags: &mut Diagnostics,
) -> Option<RawResponse> {
    let mut map = MapReader::new(node, path, diags)?;
    let mut response = RawResponse {
        loc: node.loc.clone(),
        max_rows: opt(&mut map, "max-rows", diags, expect_int),
        redact_columns: Vec::new(),
        unmask_roles: roles_list(&mut map, "unmask-roles", diags),
        sample: opt(&mut map, "sample", diags, expect_bool),
    };
    let list_path = yaml::join(path, "redact-columns");
    if let Some(list) = map.take("redact-columns")
        && let Some(items) = expect_seq(list, &list_path, diags)
    {
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{list_path}[{i}]");
            // A column name, or `{column: ssn, unmask-roles: [admin]}`.
            if let Kind::Str(name) = &item.kind {
                response.redact_columns.push(RawRedact {
                    column: Sp::new(name.clone(), item.loc.clone()),
                    unmask_roles: None,
                });
                continue;
            }
            let Some(mut entry) = MapReader::new(item, &item_path, diags) else {
                continue;
            };
            let column = opt(&mut entry, "column", diags, expect_str);
            let unmask_roles = roles_list(&mut entry, "unmask-roles", diags);
            entry.finish(&["column", "unmask-roles"], diags);
            match column {
                Some(column) => response.redact_columns.push(RawRedact {
                    column,
                    unmask_roles,
                }),
                None => diags.error(
                    &item.loc,
                    item_path,
                    "a `redact-columns` entry needs a `column`",
                    Some("write the column name, or `{column: ssn, unmask-roles: [admin]}`".into()),
                ),
            }
        }
    }
    map.finish(RESPONSE_KEYS, diags);
    Some(response)
}
