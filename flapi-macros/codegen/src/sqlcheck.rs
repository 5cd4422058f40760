//! SQL checks at build time with sqlparser's DuckDB dialect: a read
//! endpoint is exactly one read-only query, with no `query()`-style table
//! functions; and where a template site sits (value or identifier position).

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, GroupByExpr, ObjectName, OrderByExpr, Select, Statement, TableFactor, Value,
    ValueWithSpan, Visit, Visitor,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

/// Functions that would let SQL run SQL text or read the environment; a
/// read endpoint never needs them and `query()` would defeat binding.
pub const FORBIDDEN_FUNCTIONS: &[&str] = &["query", "query_table", "getenv"];

pub fn parse(sql: &str) -> Result<Vec<Statement>, String> {
    Parser::parse_sql(&DuckDbDialect {}, sql).map_err(|e| {
        let text = e.to_string();
        text.trim_start_matches("sql parser error: ").to_string()
    })
}

/// Problems that make `sql` unfit for a read endpoint, as messages.
pub fn read_only_problems(statements: &[Statement]) -> Vec<String> {
    let mut problems = Vec::new();
    if statements.len() != 1 {
        problems.push(format!(
            "a read endpoint must be exactly one SQL statement, found {}",
            statements.len()
        ));
    }
    for statement in statements {
        match statement {
            Statement::Query(_) => {
                let mut visitor = ForbiddenVisitor::default();
                let _ = statement.visit(&mut visitor);
                problems.extend(visitor.problems);
            }
            other => problems.push(format!(
                "`{}` statements are not allowed in a read endpoint; only one SELECT query is",
                statement_keyword(other)
            )),
        }
    }
    problems
}

fn statement_keyword(statement: &Statement) -> String {
    let text = statement.to_string();
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("?").to_uppercase();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" => {
            format!("{first} {}", words.next().unwrap_or("").to_uppercase())
        }
        _ => first,
    }
}

fn last_name_part(name: &ObjectName) -> String {
    let text = name.to_string();
    text.rsplit('.')
        .next()
        .unwrap_or("")
        .trim_matches('"')
        .to_lowercase()
}

#[derive(Default)]
struct ForbiddenVisitor {
    problems: Vec<String>,
}

impl ForbiddenVisitor {
    fn check_function(&mut self, name: &ObjectName) {
        let last = last_name_part(name);
        if FORBIDDEN_FUNCTIONS.contains(&last.as_str()) {
            self.problems.push(format!(
                "function `{last}` is not allowed in endpoint SQL: it runs SQL text or reads the server environment"
            ));
        }
    }
}

impl Visitor for ForbiddenVisitor {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => self.check_function(name),
            TableFactor::Function { name, .. } => self.check_function(name),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(function) = expr {
            self.check_function(&function.name);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if select.into.is_some() {
            self.problems.push(
                "`SELECT … INTO` creates a table and is not allowed in a read endpoint".into(),
            );
        }
        ControlFlow::Continue(())
    }
}

/// Placeholder names (`$1001`) that sit where SQL expects an identifier or
/// a keyword rather than a value: a whole `ORDER BY` or `GROUP BY` item.
/// Binding a value there would parse but order or group by a constant,
/// which is not what the template author wrote.
#[derive(Default, Debug)]
pub struct PlaceholderPositions {
    pub seen: BTreeSet<String>,
    pub identifier_like: BTreeSet<String>,
}

pub fn placeholder_positions(statements: &[Statement]) -> PlaceholderPositions {
    let mut visitor = PositionVisitor::default();
    for statement in statements {
        let _ = statement.visit(&mut visitor);
    }
    visitor.0
}

#[derive(Default)]
struct PositionVisitor(PlaceholderPositions);

fn placeholder_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Value(ValueWithSpan {
            value: Value::Placeholder(name),
            ..
        }) => Some(name),
        Expr::Nested(inner) => placeholder_name(inner),
        _ => None,
    }
}

impl PositionVisitor {
    fn mark(&mut self, expr: &Expr) {
        if let Some(name) = placeholder_name(expr) {
            self.0.identifier_like.insert(name.to_string());
        }
    }
}

impl Visitor for PositionVisitor {
    type Break = ();

    fn pre_visit_value(&mut self, value: &ValueWithSpan) -> ControlFlow<()> {
        if let Value::Placeholder(name) = &value.value {
            self.0.seen.insert(name.clone());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_order_by_expr(&mut self, item: &OrderByExpr) -> ControlFlow<()> {
        self.mark(&item.expr);
        ControlFlow::Continue(())
    }

    fn pre_visit_group_by(&mut self, group_by: &GroupByExpr) -> ControlFlow<()> {
        if let GroupByExpr::Expressions(exprs, _) = group_by {
            for expr in exprs {
                self.mark(expr);
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_everything_but_one_query() {
        for sql in [
            "SELECT 1; SELECT 2",
            "DROP TABLE t",
            "COPY t TO 'x.csv'",
            "ATTACH 'x.db'",
            "INSTALL httpfs",
            "LOAD httpfs",
            "SET threads = 1",
            "PRAGMA version",
            "CREATE TABLE t AS SELECT 1",
            "SELECT * FROM query('SELECT 1')",
            "SELECT getenv('HOME')",
        ] {
            let statements = parse(sql).unwrap_or_default();
            assert!(
                statements.is_empty() || !read_only_problems(&statements).is_empty(),
                "{sql} should be rejected"
            );
        }
        assert!(read_only_problems(&parse("SELECT a FROM t WHERE b = ?").unwrap()).is_empty());
    }

    #[test]
    fn finds_identifier_positions() {
        let statements = parse("SELECT $1001 AS x FROM t WHERE a = $1002 ORDER BY $1003").unwrap();
        let positions = placeholder_positions(&statements);
        assert_eq!(positions.seen.len(), 3);
        assert!(!positions.identifier_like.contains("$1001"));
        assert!(!positions.identifier_like.contains("$1002"));
        assert!(positions.identifier_like.contains("$1003"));
    }
}
