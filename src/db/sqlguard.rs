//! DuckDB is the authority on what SQL means (SPEC §4). Before anything is
//! prepared, every final SQL text (plain, paged, capped, count and masked
//! forms) goes through DuckDB's own parser (`json_serialize_sql`, which
//! parses and executes nothing), and the server refuses to start unless:
//!
//! - the text has none of the lexical constructs the build's parser reads
//!   differently (the same scanner the build uses, `flapi_sqlrules`);
//! - DuckDB reads exactly one SELECT;
//! - no table is one of DuckDB's catalog views (`pg_settings`, `pg_views`,
//!   `duckdb_logs`…) or in a catalog schema;
//! - every function and table function DuckDB sees passes the allowlist
//!   (`flapi_sqlrules::function_refusal`), no function is schema-qualified,
//!   and no function is a macro from init SQL unless the project lists it
//!   in `template.allowed-functions` (a macro may shadow a built-in name);
//! - DuckDB agrees with the build: as many parameters as the server binds,
//!   and no table the build did not see.
//!
//! duckdb-rs `prepare` runs every statement but the last of a string, so
//! this check is what keeps a hidden second statement from ever running.

use std::collections::BTreeSet;

use duckdb::Connection;
use serde_json::Value;

use crate::runtime::SqlFactsDef;

/// A table reference as DuckDB parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub catalog: String,
    pub schema: String,
    pub name: String,
    /// Byte offset of the reference in the text.
    pub location: usize,
}

/// What DuckDB read in one text.
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    /// Non-operator scalar, aggregate and window functions, lower case.
    pub functions: BTreeSet<String>,
    pub table_functions: BTreeSet<String>,
    /// Functions called with a schema or catalog.
    pub qualified_functions: BTreeSet<String>,
    pub tables: Vec<TableRef>,
    /// Names defined by a `WITH` anywhere in the statement, lower case.
    pub cte_names: BTreeSet<String>,
    pub parameters: usize,
    /// Operators called (`+`, `||`, `OPERATOR(schema.op)`), lower case:
    /// checked against init SQL's macros, which may carry operator names.
    pub operators: BTreeSet<String>,
    /// `SUMMARIZE` / `DESCRIBE` / `SHOW` table references: DuckDB builds
    /// their inner query itself, from a name.
    pub show_refs: usize,
}

/// DuckDB's parse of `sql`: exactly one SELECT, or why not.
pub fn parse(connection: &Connection, sql: &str) -> Result<Parsed, String> {
    let json: String = connection
        .query_row("SELECT json_serialize_sql(?::VARCHAR)", [sql], |r| r.get(0))
        .map_err(|e| {
            format!(
                "DuckDB cannot parse it: {}",
                crate::db::scrub(&e.to_string())
            )
        })?;
    let tree: Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    if tree.get("error").and_then(Value::as_bool) != Some(false) {
        let message = tree
            .get("error_message")
            .and_then(Value::as_str)
            .unwrap_or("not a SELECT statement");
        return Err(format!(
            "DuckDB does not read it as one SELECT: {}",
            crate::db::scrub(message)
        ));
    }
    let statements = tree
        .get("statements")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    if statements != 1 {
        return Err(format!(
            "DuckDB reads {statements} statements where a read endpoint has exactly one"
        ));
    }
    let mut parsed = Parsed::default();
    walk(&tree, &mut parsed);
    Ok(parsed)
}

fn text<'a>(node: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    node.get(key).and_then(Value::as_str).unwrap_or("")
}

fn walk(node: &Value, out: &mut Parsed) {
    match node {
        Value::Object(map) => {
            match (text(map, "class"), text(map, "type")) {
                // Window functions (`row_number() OVER …`) are calls too.
                ("FUNCTION" | "WINDOW", _) => {
                    let name = text(map, "function_name").to_ascii_lowercase();
                    if !text(map, "schema").is_empty() || !text(map, "catalog").is_empty() {
                        out.qualified_functions.insert(name.clone());
                    }
                    if map.get("is_operator").and_then(Value::as_bool) == Some(true) {
                        out.operators.insert(name);
                    } else {
                        out.functions.insert(name);
                    }
                }
                (_, "SHOW_REF") => out.show_refs += 1,
                ("PARAMETER", _) => out.parameters += 1,
                (_, "BASE_TABLE") => out.tables.push(TableRef {
                    catalog: text(map, "catalog_name").to_string(),
                    schema: text(map, "schema_name").to_string(),
                    name: text(map, "table_name").to_string(),
                    location: map
                        .get("query_location")
                        .and_then(Value::as_u64)
                        .unwrap_or(u64::MAX) as usize,
                }),
                (_, "TABLE_FUNCTION") => {
                    if let Some(Value::Object(function)) = map.get("function") {
                        let name = text(function, "function_name").to_ascii_lowercase();
                        if !text(function, "schema").is_empty()
                            || !text(function, "catalog").is_empty()
                        {
                            out.qualified_functions.insert(name.clone());
                        }
                        out.table_functions.insert(name);
                        // Its arguments are walked below; the function
                        // itself is not a scalar call.
                        for (key, value) in function {
                            if key == "arguments" || key == "children" {
                                walk(value, out);
                            }
                        }
                        for (key, value) in map {
                            if key != "function" {
                                walk(value, out);
                            }
                        }
                        return;
                    }
                }
                _ => {}
            }
            if let Some(Value::Object(ctes)) = map.get("cte_map")
                && let Some(Value::Array(entries)) = ctes.get("map")
            {
                for entry in entries {
                    if let Some(key) = entry.get("key").and_then(Value::as_str) {
                        out.cte_names.insert(key.to_ascii_lowercase());
                    }
                }
            }
            for value in map.values() {
                walk(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
        _ => {}
    }
}

/// What the server knows about a text besides its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// What the build read (`None`: the `sql-validation: startup` opt-out).
    pub facts: Option<&'a SqlFactsDef>,
    /// Values the server binds into the text (its own LIMIT and OFFSET
    /// not counted).
    pub binds: usize,
    /// `?` the server adds around the build's text (LIMIT, OFFSET).
    pub wrapper_parameters: usize,
    /// The text runs for a caller whose columns are masked.
    pub masked: bool,
    /// `template.allowed-functions`.
    pub allowed_functions: &'a [&'a str],
    /// Functions created by init SQL (`duckdb_functions()`, not internal).
    pub macros: &'a BTreeSet<String>,
}

/// The full start-up check of one text; `Ok` with DuckDB's reading.
pub fn check(connection: &Connection, sql: &str, expect: Expect<'_>) -> Result<Parsed, String> {
    if let Some(found) = flapi_sqlrules::lexical::scan(sql).first() {
        return Err(found.message.to_string());
    }
    let parsed = parse(connection, sql)?;
    if let Some(name) = parsed.qualified_functions.iter().next() {
        return Err(format!(
            "function `{name}` is schema-qualified; flapi checks functions by their plain name only"
        ));
    }
    if let Some(name) = parsed.operators.iter().find(|o| expect.macros.contains(*o)) {
        return Err(format!(
            "operator `{name}` is a macro from init SQL; operators must be DuckDB's own"
        ));
    }
    if expect.masked && parsed.show_refs > 0 {
        return Err(
            "SUMMARIZE, DESCRIBE and SHOW are not allowed in an endpoint with redaction: DuckDB builds their query from a name flapi cannot mask".into(),
        );
    }
    let listed = |name: &str| {
        expect
            .allowed_functions
            .iter()
            .any(|a| a.eq_ignore_ascii_case(name))
    };
    for (name, table) in parsed
        .functions
        .iter()
        .map(|n| (n, false))
        .chain(parsed.table_functions.iter().map(|n| (n, true)))
    {
        if expect.macros.contains(name) {
            if expect.masked {
                return Err(format!(
                    "`{name}` is a macro from init SQL; endpoints with redaction may call only DuckDB's built-in functions, since a macro could read a table unmasked"
                ));
            }
            if !listed(name) {
                return Err(format!(
                    "`{name}` is a macro from init SQL (it may shadow a built-in function); list it under `template.allowed-functions` if the project trusts it"
                ));
            }
            continue;
        }
        if let Some(refusal) =
            flapi_sqlrules::function_refusal(name, table, expect.masked, listed(name))
        {
            return Err(refusal);
        }
    }
    for table in &parsed.tables {
        let parts: Vec<String> = [&table.catalog, &table.schema, &table.name]
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(|p| p.to_ascii_lowercase())
            .collect();
        if let Some(refusal) = flapi_sqlrules::table_refusal(&parts) {
            return Err(refusal);
        }
    }
    let expected = expect.binds + expect.wrapper_parameters;
    if parsed.parameters != expected {
        return Err(format!(
            "the build's parser and DuckDB disagree about this SQL: the server binds {expected} values, DuckDB reads {} parameters",
            parsed.parameters
        ));
    }
    if let Some(facts) = expect.facts {
        for table in &parsed.tables {
            let name = table.name.to_ascii_lowercase();
            if !facts.tables.iter().any(|t| t.eq_ignore_ascii_case(&name)) {
                return Err(format!(
                    "the build's parser and DuckDB disagree about this SQL: DuckDB reads table `{name}`, which the build did not see"
                ));
            }
        }
    }
    Ok(parsed)
}
