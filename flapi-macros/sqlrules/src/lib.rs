//! The SQL rules the build (over sqlparser's reading of a template) and
//! the server (over DuckDB's own parse, at start-up) both apply, kept in
//! one place so the two cannot drift apart:
//!
//! - [`catalog`]: every function DuckDB 2.0 ships, classified once
//!   (`duckdb_functions.tsv`), which is the allowlist;
//! - [`lexical`]: constructs the two parsers read differently, refused;
//! - [`is_plain_name`]: table names that can only mean a catalog entry.

pub mod lexical;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// How DuckDB 2.0's function catalog classifies one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionClass {
    /// `scalar`, `aggregate`, `window`, `table`, `macro`, `table_macro`,
    /// `pragma`.
    pub kinds: BTreeSet<String>,
    /// The class of its scalar, aggregate, window and macro forms (`None`
    /// when it has none): `safe`, `table_pure`, `files`, `sql`, `settings`,
    /// `variables`, `secrets`, `metadata`, `side_effect`. The strictest
    /// form decides.
    pub class: Option<String>,
    /// The class of its table-function forms.
    pub table_class: Option<String>,
    /// Argument positions that name something (a field, a path, a file).
    pub name_args: NameArgs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameArgs {
    None,
    All,
    Positions(Vec<usize>),
}

impl NameArgs {
    pub fn covers(&self, position: usize) -> bool {
        match self {
            NameArgs::None => false,
            NameArgs::All => true,
            NameArgs::Positions(p) => p.contains(&position),
        }
    }
}

/// The stricter of two classes (anything but `safe`/`table_pure` wins).
fn stricter(old: Option<String>, new: &str) -> Option<String> {
    match old.as_deref() {
        None | Some("safe") => Some(new.to_string()),
        Some("table_pure") if new != "safe" => Some(new.to_string()),
        _ => old,
    }
}

/// DuckDB's function catalog, as classified in `duckdb_functions.tsv`.
pub fn catalog() -> &'static BTreeMap<String, FunctionClass> {
    static CATALOG: OnceLock<BTreeMap<String, FunctionClass>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut map: BTreeMap<String, FunctionClass> = BTreeMap::new();
        for line in include_str!("duckdb_functions.tsv").lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            let [name, kind, class, args, ..] = cols[..] else {
                continue;
            };
            let name_args = match args.trim() {
                "-" | "" => NameArgs::None,
                "*" => NameArgs::All,
                list => NameArgs::Positions(
                    list.split(',')
                        .filter_map(|p| p.trim().parse().ok())
                        .collect(),
                ),
            };
            let entry = map
                .entry(name.to_ascii_lowercase())
                .or_insert_with(|| FunctionClass {
                    kinds: BTreeSet::new(),
                    class: None,
                    table_class: None,
                    name_args: NameArgs::None,
                });
            entry.kinds.insert(kind.to_string());
            if matches!(kind, "table" | "table_macro") {
                entry.table_class = stricter(entry.table_class.take(), class);
            } else {
                entry.class = stricter(entry.class.take(), class);
            }
            if name_args != NameArgs::None {
                entry.name_args = name_args;
            }
        }
        // Syntax that sqlparser reads as a function call, and DuckDB's
        // parser rewrites (`ifnull` to `coalesce`, `ARRAY(subquery)`).
        for name in [
            "coalesce", "nullif", "ifnull", "row", "columns", "grouping", "try", "array",
        ] {
            map.entry(name.to_string())
                .or_insert_with(|| FunctionClass {
                    kinds: ["scalar".to_string()].into(),
                    class: Some("safe".into()),
                    table_class: None,
                    name_args: if name == "columns" {
                        NameArgs::All
                    } else {
                        NameArgs::None
                    },
                });
        }
        map
    })
}

/// Table functions that compute rows from their arguments and read no
/// stored data: allowed everywhere, endpoints with redaction included.
pub const MASKED_TABLE_FUNCTIONS: &[&str] = &[
    "range",
    "generate_series",
    "unnest",
    "repeat_row",
    "json_each",
    "json_tree",
];

/// DuckDB's file readers, allowed by default where nothing is masked (the
/// sandbox limits them to `allowed-directories`).
pub const FILE_READERS: &[&str] = &[
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "parquet_scan",
    "read_json",
    "read_json_auto",
    "read_ndjson",
    "read_ndjson_auto",
    "read_json_objects",
];

/// A name DuckDB can only read as a catalog entry: `[A-Za-z_][A-Za-z0-9_]*`.
/// (A dot or a slash could make DuckDB read a file in its place.)
pub fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Schemas of DuckDB's own catalog: a table qualified with one of them is
/// catalog metadata (settings, view definitions, logs), not data.
pub const SYSTEM_SCHEMAS: &[&str] = &["system", "pg_catalog", "information_schema", "temp"];

/// DuckDB 2.0's catalog views that an unqualified name reaches (those of
/// `system.main` and `pg_catalog`; `information_schema` needs its schema).
/// `pg_settings` lists every setting, `pg_views` every view definition,
/// `duckdb_logs` the log: a table reference is as much a way to read them
/// as a function call. The server compares this list with DuckDB's own
/// (`duckdb_views() WHERE internal`) at start-up.
pub const CATALOG_VIEWS: &[&str] = &[
    "duckdb_columns",
    "duckdb_constraints",
    "duckdb_databases",
    "duckdb_indexes",
    "duckdb_logs",
    "duckdb_schemas",
    "duckdb_tables",
    "duckdb_types",
    "duckdb_views",
    "pg_am",
    "pg_attrdef",
    "pg_attribute",
    "pg_class",
    "pg_collation",
    "pg_constraint",
    "pg_database",
    "pg_depend",
    "pg_description",
    "pg_enum",
    "pg_index",
    "pg_indexes",
    "pg_namespace",
    "pg_prepared_statements",
    "pg_proc",
    "pg_sequence",
    "pg_sequences",
    "pg_settings",
    "pg_tables",
    "pg_tablespace",
    "pg_type",
    "pg_views",
    "pragma_database_list",
    "sqlite_master",
    "sqlite_schema",
    "sqlite_temp_master",
    "sqlite_temp_schema",
];

/// `information_schema` views a project may publish: table and column
/// names, types and nullability (flAPI projects describe their data model
/// with them).
pub const DESCRIBING_VIEWS: &[&str] = &["columns", "tables", "schemata"];

/// Why a table reference may not appear in endpoint SQL (its parts as
/// written, lower case), or `None` when it may.
pub fn table_refusal(parts: &[String]) -> Option<String> {
    let name = parts.last()?;
    let qualifiers = &parts[..parts.len() - 1];
    // Names, types and nullability of tables and columns: what a schema
    // resource publishes, and nothing else (no definitions, no settings).
    if qualifiers.last().map(String::as_str) == Some("information_schema")
        && DESCRIBING_VIEWS.contains(&name.as_str())
        && qualifiers.len() == 1
    {
        return None;
    }
    if let Some(schema) = qualifiers
        .iter()
        .find(|p| SYSTEM_SCHEMAS.contains(&p.as_str()))
    {
        return Some(format!(
            "table `{}` is in DuckDB's catalog schema `{schema}`: endpoint SQL reads data, not catalog metadata",
            parts.join(".")
        ));
    }
    CATALOG_VIEWS.contains(&name.as_str()).then(|| {
        format!("`{name}` is one of DuckDB's catalog views: endpoint SQL reads data, not settings, view definitions or logs")
    })
}

/// Why a function may not run in endpoint SQL, or `None` when it may.
/// `table`: called in FROM; `masked`: the endpoint has `redact-columns`;
/// `project_allows`: listed in `template.allowed-functions`.
pub fn function_refusal(
    name: &str,
    table: bool,
    masked: bool,
    project_allows: bool,
) -> Option<String> {
    let entry = catalog().get(name);
    let class = entry.and_then(|c| {
        if table {
            c.table_class.as_ref()
        } else {
            c.class.as_ref()
        }
    });
    let default_ok = match (table, class.map(String::as_str)) {
        (true, _) => MASKED_TABLE_FUNCTIONS.contains(&name) || FILE_READERS.contains(&name),
        // `unnest(l)` and `range(n)` in a select list compute from their
        // arguments, like the row generators they also are.
        (false, Some(c)) => c == "safe" || c == "table_pure",
        (false, None) => entry.and_then(|c| c.table_class.as_deref()) == Some("table_pure"),
    };
    if masked {
        if table && !MASKED_TABLE_FUNCTIONS.contains(&name) {
            return Some(format!(
                "table function `{name}` in an endpoint with `redact-columns`: redaction masks tables, and rows a table function reads directly would leave unmasked"
            ));
        }
        if !default_ok {
            return Some(format!(
                "function `{name}` in an endpoint with `redact-columns`: only DuckDB's built-in, side-effect-free functions may run there, since a macro or a catalog function could read a table unmasked"
            ));
        }
    }
    if default_ok || project_allows {
        return None;
    }
    let why = match class.map(String::as_str) {
        Some("sql") => "it runs or inspects SQL text",
        Some("settings") => "it reads or changes server settings or the environment",
        Some("variables") => "it reads session variables",
        Some("secrets") => "it reads secrets",
        Some("files") => "it reads or lists files",
        Some("metadata") => "it exposes the catalog, storage or system state",
        Some("side_effect") => "it changes database state",
        Some(_) if table => "it is a table function flapi does not allow by default",
        Some(_) => "it is not on flapi's allowlist",
        None => {
            "it is not one of DuckDB's built-in functions (a macro from init SQL, or a function flapi does not know)"
        }
    };
    Some(format!(
        "function `{name}` is not allowed in endpoint SQL: {why}"
    ))
}
