//! Column lineage for `redact-columns` (SPEC §10), at build time: which
//! output columns of a query carry a redacted source column, and how.
//!
//! Redaction masks output columns by name at run time, so a redacted
//! column is safe only where it reaches the output unchanged and under its
//! own name. Everything else is an exposure the build rejects: a rename,
//! an expression, a struct, a list or a JSON value built from it, and the
//! same shapes hidden in a subquery or CTE that the outer query selects
//! (by name or through `*`). Groundwork for issue 5: not yet connected to
//! `mcp-tool.response.redact-columns`.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Query, Select, SelectItem, SetExpr, Statement, TableFactor, visit_expressions,
};

/// How a redacted column reaches an output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Unchanged, under another name.
    Renamed,
    Expression,
    Struct,
    List,
    Json,
}

impl Shape {
    pub fn describe(self) -> &'static str {
        match self {
            Shape::Renamed => "under another name",
            Shape::Expression => "inside an expression",
            Shape::Struct => "inside a struct",
            Shape::List => "inside a list",
            Shape::Json => "inside a JSON value",
        }
    }
}

/// A redacted source column that reaches the output where masking by name
/// cannot catch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The redacted source column.
    pub column: String,
    /// The output column it reaches (`None` for an unnamed expression).
    pub output: Option<String>,
    pub shape: Shape,
    /// It came through a subquery or CTE.
    pub via_subquery: bool,
}

/// What an output column of a (sub)query carries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Carrier {
    Clean,
    /// A redacted column, unchanged, under this output's own name.
    Direct(String),
    /// A redacted column in another shape.
    Tainted {
        column: String,
        shape: Shape,
        via_subquery: bool,
    },
}

/// Named outputs of the derived tables and CTEs in scope.
type Scope = HashMap<String, Carrier>;
/// Outputs of one query, in order.
type Outputs = Vec<(Option<String>, Carrier)>;
/// CTEs in scope by name.
type Ctes = HashMap<String, Outputs>;

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// The exposures of `statement` for the given redacted columns.
pub fn exposures(statement: &Statement, redacted: &[String]) -> Vec<Exposure> {
    let Statement::Query(query) = statement else {
        return Vec::new();
    };
    let redacted: Vec<String> = redacted.iter().map(|r| key(r)).collect();
    query_outputs(query, &redacted, &Ctes::new())
        .into_iter()
        .filter_map(|(output, carrier)| match carrier {
            Carrier::Clean => None,
            Carrier::Direct(column) => {
                let renamed = output.as_deref().map(key) != Some(column.clone());
                renamed.then_some(Exposure {
                    column,
                    output,
                    shape: Shape::Renamed,
                    via_subquery: false,
                })
            }
            Carrier::Tainted {
                column,
                shape,
                via_subquery,
            } => Some(Exposure {
                column,
                output,
                shape,
                via_subquery,
            }),
        })
        .collect()
}

fn query_outputs(query: &Query, redacted: &[String], outer: &Ctes) -> Outputs {
    let mut ctes = outer.clone();
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            let aliases: Vec<String> = cte
                .alias
                .columns
                .iter()
                .map(|c| c.name.value.clone())
                .collect();
            let outputs = as_source(query_outputs(&cte.query, redacted, &ctes), &aliases);
            ctes.insert(key(&cte.alias.name.value), outputs);
        }
    }
    set_outputs(&query.body, redacted, &ctes)
}

fn set_outputs(body: &SetExpr, redacted: &[String], ctes: &Ctes) -> Outputs {
    match body {
        SetExpr::Select(select) => select_outputs(select, redacted, ctes),
        SetExpr::Query(query) => query_outputs(query, redacted, ctes),
        SetExpr::SetOperation { left, right, .. } => {
            // Output names come from the left branch; a column is as
            // exposed as the worse of the two branches.
            let mut out = set_outputs(left, redacted, ctes);
            let right = set_outputs(right, redacted, ctes);
            for (i, (_, carrier)) in out.iter_mut().enumerate() {
                if let Some((_, other)) = right.get(i)
                    && *carrier == Carrier::Clean
                {
                    *carrier = other.clone();
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// A subquery's outputs as the outer query sees them: renamed by column
/// aliases, and marked as coming through a subquery; a redacted column
/// under another name is a rename.
fn as_source(outputs: Outputs, aliases: &[String]) -> Outputs {
    outputs
        .into_iter()
        .enumerate()
        .map(|(i, (name, carrier))| {
            let name = aliases.get(i).cloned().or(name);
            let carrier = match carrier {
                Carrier::Direct(column) if name.as_deref().map(key) != Some(column.clone()) => {
                    Carrier::Tainted {
                        column,
                        shape: Shape::Renamed,
                        via_subquery: true,
                    }
                }
                Carrier::Tainted { column, shape, .. } => Carrier::Tainted {
                    column,
                    shape,
                    via_subquery: true,
                },
                other => other,
            };
            (name, carrier)
        })
        .collect()
}

fn select_outputs(select: &Select, redacted: &[String], ctes: &Ctes) -> Outputs {
    // Derived tables and CTEs in FROM: their outputs by name, and in order
    // for `*`. Plain tables pass their columns through by name.
    let mut scope = Scope::new();
    let mut sources: Vec<Outputs> = Vec::new();
    for table in &select.from {
        for factor in
            std::iter::once(&table.relation).chain(table.joins.iter().map(|j| &j.relation))
        {
            let outputs = match factor {
                TableFactor::Derived {
                    subquery, alias, ..
                } => {
                    let aliases: Vec<String> = alias
                        .as_ref()
                        .map(|a| a.columns.iter().map(|c| c.name.value.clone()).collect())
                        .unwrap_or_default();
                    as_source(query_outputs(subquery, redacted, ctes), &aliases)
                }
                TableFactor::Table { name, .. } => match ctes.get(&key(&name.to_string())) {
                    Some(outputs) => outputs.clone(),
                    None => continue,
                },
                _ => continue,
            };
            for (name, carrier) in &outputs {
                if let Some(name) = name {
                    scope.insert(key(name), carrier.clone());
                }
            }
            sources.push(outputs);
        }
    }
    let mut out = Vec::new();
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(expr) => {
                out.push((output_name(expr), carrier_of(expr, redacted, &scope)));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                out.push((
                    Some(alias.value.clone()),
                    carrier_of(expr, redacted, &scope),
                ));
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                for outputs in &sources {
                    out.extend(outputs.iter().cloned());
                }
            }
            _ => {}
        }
    }
    out
}

fn output_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(id) => Some(id.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()),
        Expr::Nested(inner) => output_name(inner),
        _ => None,
    }
}

fn column_ref(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(id) => Some(key(&id.value)),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| key(&p.value)),
        Expr::Nested(inner) => column_ref(inner),
        _ => None,
    }
}

/// A column reference: what the scope says it carries, else itself.
fn resolve(column: &str, redacted: &[String], scope: &Scope) -> Carrier {
    match scope.get(column) {
        Some(carrier) => carrier.clone(),
        None if redacted.iter().any(|r| r == column) => Carrier::Direct(column.to_string()),
        None => Carrier::Clean,
    }
}

fn shape_of(expr: &Expr) -> Shape {
    match expr {
        Expr::Struct { .. } | Expr::Dictionary(_) | Expr::Named { .. } => Shape::Struct,
        Expr::Array(_) => Shape::List,
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_lowercase();
            if name.contains("json") {
                Shape::Json
            } else if matches!(
                name.as_str(),
                "struct_pack" | "row" | "map" | "map_from_entries"
            ) {
                Shape::Struct
            } else if name.starts_with("list") || name.starts_with("array") {
                Shape::List
            } else {
                Shape::Expression
            }
        }
        Expr::Nested(inner) => shape_of(inner),
        _ => Shape::Expression,
    }
}

fn carrier_of(expr: &Expr, redacted: &[String], scope: &Scope) -> Carrier {
    if let Some(column) = column_ref(expr) {
        return resolve(&column, redacted, scope);
    }
    // Any redacted column (or tainted subquery output) anywhere inside.
    let mut found: Option<(String, bool)> = None;
    let _ = visit_expressions(expr, |e| {
        if let Some(column) = column_ref(e) {
            match resolve(&column, redacted, scope) {
                Carrier::Direct(c) => found = Some((c, false)),
                Carrier::Tainted {
                    column,
                    via_subquery,
                    ..
                } => found = Some((column, via_subquery)),
                Carrier::Clean => return ControlFlow::Continue(()),
            }
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match found {
        Some((column, via_subquery)) => Carrier::Tainted {
            column,
            shape: shape_of(expr),
            via_subquery,
        },
        None => Carrier::Clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str) -> Vec<(String, Option<String>, Shape, bool)> {
        let statements = crate::sqlcheck::parse(sql).expect("parses");
        exposures(&statements[0], &["ssn".to_string()])
            .into_iter()
            .map(|e| (e.column, e.output, e.shape, e.via_subquery))
            .collect()
    }

    #[test]
    fn masking_by_name_covers_plain_selection() {
        for sql in [
            "SELECT id, ssn FROM people",
            "SELECT p.ssn FROM people p",
            "SELECT * FROM people",
            "SELECT ssn AS ssn FROM people",
            "SELECT * FROM (SELECT id, ssn FROM people) AS t",
            "SELECT id FROM people WHERE ssn = '1'",
            "WITH t AS (SELECT ssn FROM people) SELECT ssn FROM t",
        ] {
            assert!(check(sql).is_empty(), "{sql}: {:?}", check(sql));
        }
    }

    #[test]
    fn every_bypass_shape_is_found() {
        let cases = [
            ("SELECT ssn AS x FROM people", Shape::Renamed, false),
            (
                "SELECT upper(ssn) AS s FROM people",
                Shape::Expression,
                false,
            ),
            (
                "SELECT ssn || '' AS ssn FROM people",
                Shape::Expression,
                false,
            ),
            ("SELECT {'a': ssn} AS s FROM people", Shape::Struct, false),
            (
                "SELECT struct_pack(a := ssn) AS s FROM people",
                Shape::Struct,
                false,
            ),
            ("SELECT [ssn] AS l FROM people", Shape::List, false),
            (
                "SELECT list_value(ssn) AS l FROM people",
                Shape::List,
                false,
            ),
            ("SELECT to_json(ssn) AS j FROM people", Shape::Json, false),
            (
                "SELECT json_object('k', ssn) AS j FROM people",
                Shape::Json,
                false,
            ),
            (
                "SELECT * FROM (SELECT ssn AS x FROM people) AS t",
                Shape::Renamed,
                true,
            ),
            (
                "SELECT x FROM (SELECT ssn AS x FROM people) AS t",
                Shape::Renamed,
                true,
            ),
            (
                "SELECT * FROM (SELECT ssn FROM people) AS t(x)",
                Shape::Renamed,
                true,
            ),
            (
                "WITH t AS (SELECT lower(ssn) AS s FROM people) SELECT * FROM t",
                Shape::Expression,
                true,
            ),
            (
                "SELECT s FROM (SELECT [ssn] AS s FROM people) AS t",
                Shape::List,
                true,
            ),
        ];
        for (sql, shape, via) in cases {
            let found = check(sql);
            assert_eq!(found.len(), 1, "{sql}: {found:?}");
            assert_eq!(
                (found[0].0.as_str(), found[0].2, found[0].3),
                ("ssn", shape, via),
                "{sql}"
            );
        }
    }
}
