//! Redaction by construction (SPEC §10). A caller without an unmask role
//! for some of an endpoint's `redact-columns` runs a masked variant of the
//! endpoint's SQL, in which every table reference resolves to a masked
//! projection of that table, so every projection, struct, JSON value,
//! aggregate, union, pivot, predicate and ordering DuckDB computes sees the
//! masked value. Nothing depends on output column names.
//!
//! At start-up, after the init SQL:
//!
//! 1. One schema per distinct set of masked columns, `flapi_masked.m<N>`,
//!    in an attached in-memory catalog. It holds, for every table of the
//!    main schema, a view `SELECT * REPLACE (<mask> AS col, …)` (text
//!    columns become `'[redacted]'`, others NULL of their type), and a copy
//!    of every user view whose definition reads only such tables and views
//!    (DuckDB resolves a view's unqualified names in its own schema first,
//!    so the copy reads masked tables: views are masked at their base
//!    tables). A view over files, table functions, qualified names or
//!    macros gets no copy, and a masked text that names it cannot start.
//! 2. Each masked text is DuckDB's parse of the endpoint text with every
//!    unqualified table name that is not a CTE name replaced by
//!    `flapi_masked.m<N>."name"` at the location DuckDB reports.
//! 3. Proof, before the server serves: every table DuckDB reads in the
//!    masked text is in `flapi_masked`, or is a CTE name, and the text
//!    prepares on a connection whose default catalog is empty (so every
//!    unqualified name really is a CTE, never a real table).
//!
//! Temporary tables, which a masked view could not reach from every
//! pooled connection, make a project with redaction refuse to start.

use std::collections::{BTreeMap, BTreeSet};

use duckdb::Connection;

use crate::db::sqlguard;
use crate::runtime::{EndpointDef, ProjectDef, SqlTextDef};

/// The attached catalog that holds the masked projections.
pub const CATALOG: &str = "flapi_masked";
/// An empty catalog: masked texts must prepare with it as the default.
const VOID: &str = "flapi_void";

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The four forms of one masked text, like [`SqlTextDef`].
#[derive(Debug, Clone)]
pub struct MaskedText {
    pub sql: String,
    pub paged_sql: Option<String>,
    pub capped_sql: Option<String>,
    pub count_sql: Option<String>,
}

/// Masked texts by endpoint id, then (text index, which of the endpoint's
/// `redact-columns` are masked, one bit each in their order).
#[derive(Debug, Default)]
pub struct Masking {
    /// Sorted, lower-case column sets; a set's index names its schema.
    sets: Vec<Vec<String>>,
    texts: std::collections::HashMap<&'static str, BTreeMap<(usize, u32), MaskedText>>,
}

impl Masking {
    /// The masked form of an endpoint's text for a caller who may not see
    /// `columns`; `None` when nothing is masked.
    pub fn text(
        &self,
        endpoint: &EndpointDef,
        text: usize,
        columns: &[&str],
    ) -> Option<&MaskedText> {
        let bits = endpoint
            .shaping
            .redact
            .iter()
            .enumerate()
            .filter(|(_, r)| columns.iter().any(|c| c.eq_ignore_ascii_case(r.column)))
            .try_fold(0u32, |bits, (i, _)| {
                Some(bits | 1u32.checked_shl(i as u32)?)
            });
        // More columns than bits (the build refuses them): no masked text,
        // so the call fails closed rather than picking another text.
        let bits = bits?;
        if bits == 0 {
            return None;
        }
        self.texts.get(endpoint.id)?.get(&(text, bits))
    }
}

/// Why the server cannot start with redaction as configured.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MaskingError(pub String);

/// The combinations of columns a caller of `endpoint` can have masked (as
/// bits over its `redact-columns`, and as a sorted lower-case set): all of
/// them for an anonymous caller, and every combination some roles could
/// leave masked.
fn mask_sets(endpoint: &EndpointDef) -> Vec<(u32, Vec<String>)> {
    let redact = endpoint.shaping.redact;
    let mut sets = Vec::new();
    let n = redact.len().min(16);
    for bits in 1u32..(1 << n) {
        let masked: Vec<usize> = (0..n).filter(|i| bits & (1 << i) != 0).collect();
        // Roles that unmask none of `masked`, and must unmask the rest.
        let granted = masked.iter().fold(u64::MAX, |g, i| g & !redact[*i].unmask);
        let feasible = (0..n)
            .filter(|i| !masked.contains(i))
            .all(|i| granted & redact[i].unmask != 0);
        if feasible {
            let mut set: Vec<String> = masked
                .iter()
                .map(|i| redact[*i].column.to_ascii_lowercase())
                .collect();
            set.sort();
            sets.push((bits, set));
        }
    }
    sets
}

struct Table {
    name: String,
    columns: Vec<(String, String)>,
}

struct Catalog {
    database: String,
    tables: Vec<Table>,
    /// (name, the `CREATE VIEW` text DuckDB stored).
    views: Vec<(String, String)>,
    macros: BTreeSet<String>,
}

/// Every row of a catalog query, as text columns.
pub fn query_strings(
    connection: &Connection,
    sql: &str,
    params: &[&str],
) -> Result<Vec<Vec<String>>, String> {
    let mut statement = connection.prepare(sql).map_err(|e| e.to_string())?;
    let rows = statement
        .query_map(duckdb::params_from_iter(params), |row| {
            let count = row.as_ref().column_count();
            (0..count)
                .map(|i| row.get::<_, String>(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

fn read_catalog(connection: &Connection) -> Result<Catalog, String> {
    let database: String = connection
        .query_row("SELECT current_database()", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let temporary: i64 = connection
        .query_row(
            "SELECT (SELECT count(*) FROM duckdb_tables() WHERE temporary) + (SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal)",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if temporary > 0 {
        return Err("the init SQL created temporary tables or views; with `redact-columns`, create regular tables so every pooled connection reads them masked".into());
    }
    let mut tables: Vec<Table> = Vec::new();
    for row in query_strings(
        connection,
        "SELECT table_name, column_name, data_type FROM duckdb_columns() c WHERE database_name = ? AND schema_name = 'main' AND table_name IN (SELECT table_name FROM duckdb_tables() t WHERE t.database_name = c.database_name AND t.schema_name = 'main') ORDER BY table_name, column_index",
        &[&database],
    )? {
        let [table, column, ty] = &row[..] else {
            continue;
        };
        match tables.last_mut() {
            Some(t) if t.name == *table => t.columns.push((column.clone(), ty.clone())),
            _ => tables.push(Table {
                name: table.clone(),
                columns: vec![(column.clone(), ty.clone())],
            }),
        }
    }
    let views = query_strings(
        connection,
        "SELECT view_name, sql FROM duckdb_views() WHERE database_name = ? AND schema_name = 'main' AND NOT internal ORDER BY view_name",
        &[&database],
    )?
    .into_iter()
    .filter_map(|row| match &row[..] {
        [name, sql] => Some((name.clone(), sql.clone())),
        _ => None,
    })
    .collect();
    let macros = macros(connection)?;
    Ok(Catalog {
        database,
        tables,
        views,
        macros,
    })
}

/// Functions created by init SQL (macros), lower case.
pub fn macros(connection: &Connection) -> Result<BTreeSet<String>, String> {
    Ok(query_strings(
        connection,
        "SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE NOT internal",
        &[],
    )?
    .into_iter()
    .filter_map(|row| row.into_iter().next())
    .collect())
}

/// The query of a stored `CREATE VIEW name [(cols)] AS query;`, and its
/// column list text, when DuckDB's text has that shape.
fn view_body(create: &str) -> Option<(String, &str)> {
    let rest = create.trim().strip_prefix("CREATE VIEW ")?;
    // The name as DuckDB prints it: bare or double-quoted.
    let after_name = if let Some(quoted) = rest.strip_prefix('"') {
        let mut end = None;
        let bytes = quoted.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                end = Some(i + 1);
                break;
            }
            i += 1;
        }
        &quoted[end?..]
    } else {
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
        &rest[end..]
    };
    let (columns, query) = match after_name.find(" AS ") {
        Some(at) => (&after_name[..at], &after_name[at + 4..]),
        None => return None,
    };
    let query = query.trim().trim_end_matches(';').trim();
    Some((columns.trim().to_string(), query))
}

/// Why a view cannot be copied into a masked schema, if it cannot.
fn view_refusal(
    connection: &Connection,
    query: &str,
    masked_names: &BTreeSet<String>,
    all_names: &BTreeSet<String>,
    macros: &BTreeSet<String>,
) -> Option<String> {
    let parsed = match sqlguard::check(
        connection,
        query,
        sqlguard::Expect {
            facts: None,
            binds: 0,
            wrapper_parameters: 0,
            masked: true,
            allowed_functions: &[],
            macros,
        },
    ) {
        Ok(parsed) => parsed,
        Err(why) => return Some(why),
    };
    if let Some(cte) = parsed.cte_names.iter().find(|c| all_names.contains(*c)) {
        return Some(format!(
            "its definition names a CTE `{cte}` like a table or view"
        ));
    }
    for table in &parsed.tables {
        let name = table.name.to_ascii_lowercase();
        if !table.catalog.is_empty() || !table.schema.is_empty() {
            return Some(format!(
                "its definition names the schema-qualified table `{}`",
                table.name
            ));
        }
        if !flapi_sqlrules::is_plain_name(&table.name) {
            return Some(format!("its definition reads `{}`", table.name));
        }
        if !masked_names.contains(&name) && !parsed.cte_names.contains(&name) {
            return Some(format!(
                "its definition reads `{}`, which cannot be masked",
                table.name
            ));
        }
    }
    None
}

/// Builds the masked catalog and every masked text; call after init SQL
/// and before the sandbox locks the configuration.
pub fn prepare(first: &Connection, project: &'static ProjectDef) -> Result<Masking, MaskingError> {
    let mut masking = Masking::default();
    let endpoint_sets: Vec<Vec<(u32, Vec<String>)>> =
        project.endpoints.iter().map(mask_sets).collect();
    for (_, set) in endpoint_sets.iter().flatten() {
        if !masking.sets.contains(set) {
            masking.sets.push(set.clone());
        }
    }
    if masking.sets.is_empty() {
        return Ok(masking);
    }
    let fail = |what: &str, e: String| MaskingError(format!("{what}: {}", crate::db::scrub(&e)));
    let catalog = read_catalog(first).map_err(|e| MaskingError(format!("redaction: {e}")))?;
    first
        .execute_batch(&format!(
            "ATTACH ':memory:' AS {CATALOG}; ATTACH ':memory:' AS {VOID};"
        ))
        .map_err(|e| fail("cannot attach the masked catalog", e.to_string()))?;

    let table_names: BTreeSet<String> = catalog
        .tables
        .iter()
        .map(|t| t.name.to_ascii_lowercase())
        .collect();
    let all_names: BTreeSet<String> = table_names
        .iter()
        .cloned()
        .chain(catalog.views.iter().map(|(n, _)| n.to_ascii_lowercase()))
        .collect();
    // Views that can be copied, in an order where each one's views come
    // first; and why the others cannot.
    // A view may read views copied before it, so the rest are tried again
    // until a round copies nothing; what is left is refused, with the
    // reason of the last round.
    let mut copyable: Vec<(String, String, String)> = Vec::new();
    let mut masked_names = table_names.clone();
    let mut pending: Vec<&(String, String)> = catalog.views.iter().collect();
    let refused: BTreeMap<String, String> = loop {
        let mut refused = BTreeMap::new();
        let mut still = Vec::new();
        let tried = pending.len();
        for view @ (name, create) in pending {
            let why = match view_body(create) {
                None => "DuckDB stored it in a form flapi does not read".to_string(),
                Some((columns, query)) => {
                    match view_refusal(first, query, &masked_names, &all_names, &catalog.macros) {
                        None => {
                            masked_names.insert(name.to_ascii_lowercase());
                            copyable.push((name.clone(), columns, query.to_string()));
                            continue;
                        }
                        Some(why) => why,
                    }
                }
            };
            refused.insert(name.to_ascii_lowercase(), why);
            still.push(view);
        }
        if still.is_empty() || still.len() == tried {
            break refused;
        }
        pending = still;
    };

    for (index, set) in masking.sets.iter().enumerate() {
        let schema = format!("{CATALOG}.m{index}");
        let mut ddl = format!("CREATE SCHEMA {schema};\n");
        for table in &catalog.tables {
            let replaced: Vec<String> = table
                .columns
                .iter()
                .filter(|(c, _)| set.iter().any(|m| m.eq_ignore_ascii_case(c)))
                .map(|(c, ty)| {
                    let mask = if ty.eq_ignore_ascii_case("VARCHAR") {
                        "'[redacted]'".to_string()
                    } else {
                        format!("CAST(NULL AS {ty})")
                    };
                    format!("{mask} AS {}", ident(c))
                })
                .collect();
            let star = if replaced.is_empty() {
                "*".to_string()
            } else {
                format!("* REPLACE ({})", replaced.join(", "))
            };
            ddl.push_str(&format!(
                "CREATE VIEW {schema}.{} AS SELECT {star} FROM {}.main.{};\n",
                ident(&table.name),
                ident(&catalog.database),
                ident(&table.name)
            ));
        }
        for (name, columns, query) in &copyable {
            ddl.push_str(&format!(
                "CREATE VIEW {schema}.{}{} AS {query};\n",
                ident(name),
                if columns.is_empty() {
                    String::new()
                } else {
                    format!(" {columns}")
                }
            ));
        }
        first
            .execute_batch(&ddl)
            .map_err(|e| fail("cannot create the masked views", e.to_string()))?;
    }

    // Rewrite and prove every masked text.
    let void = first
        .try_clone()
        .map_err(|e| fail("cannot open a connection", e.to_string()))?;
    void.execute_batch(&format!("USE {VOID}"))
        .map_err(|e| fail("cannot prepare the masked-text check", e.to_string()))?;
    // Every endpoint is tried, so one start reports every problem.
    let mut problems: Vec<String> = Vec::new();
    for (endpoint, sets) in project.endpoints.iter().zip(&endpoint_sets) {
        for (t, text) in endpoint.texts.iter().enumerate() {
            for (bits, set) in sets {
                let Some(index) = masking.sets.iter().position(|s| s == set) else {
                    continue;
                };
                match mask_text(
                    first,
                    &void,
                    endpoint,
                    text,
                    index,
                    &refused,
                    &catalog.macros,
                    project,
                ) {
                    Ok(masked) => {
                        masking
                            .texts
                            .entry(endpoint.id)
                            .or_default()
                            .insert((t, *bits), masked);
                    }
                    Err(e) if !problems.contains(&e.0) => problems.push(e.0),
                    Err(_) => {}
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(MaskingError(problems.join("\n")));
    }
    Ok(masking)
}

#[allow(clippy::too_many_arguments)]
fn mask_text(
    first: &Connection,
    void: &Connection,
    endpoint: &EndpointDef,
    text: &SqlTextDef,
    set: usize,
    refused: &BTreeMap<String, String>,
    macros: &BTreeSet<String>,
    project: &ProjectDef,
) -> Result<MaskedText, MaskingError> {
    let schema = format!("{CATALOG}.m{set}");
    let one = |sql: &str, wrapper_parameters: usize| -> Result<String, MaskingError> {
        let fail = |why: String| {
            MaskingError(format!(
                "endpoint `{}` ({}): its masked SQL cannot be proven: {why}",
                endpoint.id, endpoint.template_source
            ))
        };
        let expect = sqlguard::Expect {
            facts: text.facts.as_ref(),
            binds: text.binds,
            wrapper_parameters,
            masked: true,
            allowed_functions: project.allowed_functions,
            macros,
        };
        let parsed = sqlguard::check(first, sql, expect).map_err(&fail)?;
        let mut replacements: Vec<(usize, usize, String)> = Vec::new();
        for table in &parsed.tables {
            let lower = table.name.to_ascii_lowercase();
            if !table.catalog.is_empty() || !table.schema.is_empty() {
                return Err(fail(format!(
                    "it names the schema-qualified table `{}`",
                    table.name
                )));
            }
            if !flapi_sqlrules::is_plain_name(&table.name) {
                return Err(fail(format!(
                    "it reads `{}`, which is not a plain table name",
                    table.name
                )));
            }
            if parsed.cte_names.contains(&lower) {
                continue;
            }
            if let Some(why) = refused.get(&lower) {
                return Err(fail(format!(
                    "view `{}` cannot be masked: {why}",
                    table.name
                )));
            }
            let len = name_token_len(sql, table.location, &table.name).ok_or_else(|| {
                fail(format!(
                    "DuckDB's location of table `{}` does not point at its name",
                    table.name
                ))
            })?;
            replacements.push((
                table.location,
                len,
                format!("{schema}.{}", ident(&table.name)),
            ));
        }
        replacements.sort_by_key(|r| std::cmp::Reverse(r.0));
        let mut out = sql.to_string();
        for (at, len, with) in replacements {
            out.replace_range(at..at + len, &with);
        }
        // The proof: DuckDB reads only masked tables and CTEs…
        let masked = sqlguard::check(first, &out, expect).map_err(&fail)?;
        for table in &masked.tables {
            let in_catalog = table.catalog.eq_ignore_ascii_case(CATALOG)
                && table.schema.eq_ignore_ascii_case(&format!("m{set}"));
            let cte = table.catalog.is_empty()
                && table.schema.is_empty()
                && masked.cte_names.contains(&table.name.to_ascii_lowercase());
            if !(in_catalog || cte) {
                return Err(fail(format!(
                    "table `{}` is still read unmasked",
                    table.name
                )));
            }
        }
        // …and every unqualified name it keeps binds to a CTE.
        void.prepare(&out).map_err(|e| {
            fail(format!(
                "it does not bind against the masked tables alone (a CTE name that also names a table outside the CTE's scope, or `rowid`, which masked views lack): {}",
                crate::db::scrub(&e.to_string())
            ))
        })?;
        Ok(out)
    };
    Ok(MaskedText {
        sql: one(text.sql, 0)?,
        paged_sql: text.paged_sql.map(|s| one(s, 2)).transpose()?,
        capped_sql: text.capped_sql.map(|s| one(s, 1)).transpose()?,
        count_sql: text.count_sql.map(|s| one(s, 0)).transpose()?,
    })
}

/// The byte length of the table name token DuckDB located at `at`: bare
/// (case-insensitive) or double-quoted; `None` if it is not there.
fn name_token_len(sql: &str, at: usize, name: &str) -> Option<usize> {
    let rest = sql.get(at..)?;
    if rest.starts_with('"') {
        let quoted = ident(name);
        return rest.starts_with(&quoted).then_some(quoted.len());
    }
    let candidate = rest.get(..name.len())?;
    let next = rest[name.len()..].chars().next();
    (candidate.eq_ignore_ascii_case(name)
        && !next.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$'))
    .then_some(name.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_name_tokens() {
        assert_eq!(
            name_token_len("SELECT * FROM People p", 14, "people"),
            Some(6)
        );
        assert_eq!(
            name_token_len("SELECT * FROM \"people\"", 14, "people"),
            Some(8)
        );
        assert_eq!(name_token_len("SELECT * FROM peoplex", 14, "people"), None);
        assert_eq!(name_token_len("SELECT * FROM x", 99, "people"), None);
    }

    #[test]
    fn reads_stored_view_text() {
        assert_eq!(
            view_body("CREATE VIEW pv AS SELECT id FROM people;"),
            Some((String::new(), "SELECT id FROM people"))
        );
        assert_eq!(
            view_body("CREATE VIEW \"p v\"(a, b) AS SELECT 1, 2;"),
            Some(("(a, b)".to_string(), "SELECT 1, 2"))
        );
    }
}
