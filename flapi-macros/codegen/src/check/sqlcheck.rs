//! SQL checks at build time with sqlparser's DuckDB dialect (SPEC §4): a
//! read endpoint is exactly one read-only query; every function it calls is
//! on the allowlist; a request value never names a column, field, variable,
//! setting, file or SQL text; endpoints with redaction read only plain
//! tables. Also the facts the server compares with DuckDB's own parse at
//! start-up (functions, tables, parameters), so the two parsers must agree.
//!
//! The allowlist is `duckdb_functions.tsv`: every function DuckDB 2.0 ships,
//! classified once. Only `safe` scalar, aggregate and window functions and
//! a few table functions are allowed by default; anything else (functions
//! that run SQL, read settings, variables, secrets, metadata or files,
//! functions DuckDB adds later, macros from init SQL) needs
//! `template.allowed-functions` in flapi.yaml.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, ObjectName,
    OrderByExpr, Select, Statement, TableFactor, Value, ValueWithSpan, Visit, Visitor,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;

pub use flapi_sqlrules::{NameArgs, catalog, is_plain_name};

pub fn parse(sql: &str) -> Result<Vec<Statement>, String> {
    Parser::parse_sql(&DuckDbDialect {}, sql).map_err(|e| {
        let text = e.to_string();
        text.trim_start_matches("sql parser error: ").to_string()
    })
}

/// What the checks need to know about the endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules<'a> {
    /// `template.allowed-functions`: extra names the project trusts.
    pub allowed_functions: &'a [String],
    /// The endpoint masks columns (`response.redact-columns`).
    pub masked: bool,
}

/// One reason the SQL is unfit, with the token to point at in the
/// template (`None`: the file start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub hint: String,
    pub token: Option<String>,
}

/// Problems that make `statements` unfit for a read endpoint.
pub fn read_only_problems(statements: &[Statement], rules: Rules<'_>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if statements.len() != 1 {
        problems.push(Problem {
            message: format!(
                "a read endpoint must be exactly one SQL statement, found {}",
                statements.len()
            ),
            hint: "read endpoints run one SELECT; setup belongs in a connection's `init`".into(),
            token: None,
        });
    }
    for statement in statements {
        match statement {
            Statement::Query(_) => {
                let mut visitor = PolicyVisitor {
                    rules,
                    problems: Vec::new(),
                };
                let _ = statement.visit(&mut visitor);
                for problem in visitor.problems {
                    if !problems.contains(&problem) {
                        problems.push(problem);
                    }
                }
            }
            other => problems.push(Problem {
                message: format!(
                    "`{}` statements are not allowed in a read endpoint; only one SELECT query is",
                    statement_keyword(other)
                ),
                hint: "read endpoints run one SELECT; setup belongs in a connection's `init`"
                    .into(),
                token: None,
            }),
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

/// The parts of a name as written, unquoted, lower-cased.
fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) => ident.value.to_ascii_lowercase(),
            None => part.to_string().to_ascii_lowercase(),
        })
        .collect()
}

fn last_name_part(name: &ObjectName) -> String {
    name_parts(name).pop().unwrap_or_default()
}

struct PolicyVisitor<'a> {
    rules: Rules<'a>,
    problems: Vec<Problem>,
}

impl PolicyVisitor<'_> {
    fn push(&mut self, message: String, hint: String, token: &str) {
        let problem = Problem {
            message,
            hint,
            token: Some(token.to_string()),
        };
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    fn project_allows(&self, name: &str) -> bool {
        self.rules
            .allowed_functions
            .iter()
            .any(|a| a.eq_ignore_ascii_case(name))
    }

    fn check_function(&mut self, name: &ObjectName, table: bool) {
        let parts = name_parts(name);
        let last = parts.last().cloned().unwrap_or_default();
        if parts.len() > 1 {
            self.push(
                format!("function `{name}` is schema-qualified; flapi checks functions by their plain name only"),
                format!("call `{last}` without a schema"),
                &last,
            );
            return;
        }
        let project_ok = self.project_allows(&last);
        if let Some(message) =
            flapi_sqlrules::function_refusal(&last, table, self.rules.masked, project_ok)
        {
            let hint = if self.rules.masked {
                "compute the value with DuckDB's built-in functions over tables; load files into tables in the connection's `init`".to_string()
            } else {
                format!(
                    "if the project trusts it, list `{last}` under `template.allowed-functions` in flapi.yaml"
                )
            };
            self.push(message, hint, &last);
        }
    }

    fn check_table(&mut self, name: &ObjectName) {
        let parts = name_parts(name);
        let last = parts.last().cloned().unwrap_or_default();
        if let Some(message) = flapi_sqlrules::table_refusal(&parts) {
            self.push(
                message,
                "select from the project's own tables and views".into(),
                &last,
            );
            return;
        }
        if !self.rules.masked {
            return;
        }
        if parts.len() > 1 {
            self.push(
                format!("table `{name}` is schema-qualified in an endpoint with `redact-columns`: redaction masks the tables of the default schema, which unqualified names resolve to"),
                format!("refer to the table as `{last}` (and keep it in the main schema)"),
                &last,
            );
        } else if !is_plain_name(&last) {
            self.push(
                format!("table name `{last}` in an endpoint with `redact-columns` is not a plain name: DuckDB may read a file of that name instead of a masked table"),
                "load the file into a table in the connection's `init` and select from the table".into(),
                &last,
            );
        }
    }
}

impl Visitor for PolicyVisitor<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => self.check_function(name, true),
            TableFactor::Table { name, .. } => self.check_table(name),
            TableFactor::Function { name, .. } => self.check_function(name, true),
            TableFactor::UNNEST { .. } => {}
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => {}
            TableFactor::Pivot { .. } | TableFactor::Unpivot { .. } => {}
            _ if self.rules.masked => self.push(
                "this kind of FROM item is not allowed in an endpoint with `redact-columns`".into(),
                "select from plain tables, subqueries and joins".into(),
                "FROM",
            ),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(function) = expr {
            self.check_function(&function.name, false);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &sqlparser::ast::Query) -> ControlFlow<()> {
        // A non-recursive CTE that reads its own name reads the table it
        // shadows; with redaction, the masked text must keep every name
        // that is a CTE name bound to the CTE.
        if let (true, Some(with)) = (self.rules.masked, &query.with)
            && !with.recursive
        {
            for cte in &with.cte_tables {
                let name = cte.alias.name.value.to_ascii_lowercase();
                if facts(std::slice::from_ref(&*cte.query))
                    .tables
                    .contains(&name)
                {
                    self.push(
                        format!("CTE `{name}` reads the table `{name}` it shadows; in an endpoint with `redact-columns` a CTE may not share a table's name"),
                        format!("rename the CTE, for example to `{name}_rows`"),
                        &name,
                    );
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, value: &ValueWithSpan) -> ControlFlow<()> {
        // The template compiler writes every `?`; one typed into the
        // template (or `$1`, `:name`) would take a value meant for another.
        if let Value::Placeholder(name) = &value.value
            && name != "?"
            && !name.starts_with("$10")
        {
            self.push(
                format!("`{name}`: a parameter placeholder is written into the template; flapi binds every value itself"),
                "use a template site such as `{{ params.name }}` instead".into(),
                name,
            );
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if select.into.is_some() {
            self.push(
                "`SELECT … INTO` creates a table and is not allowed in a read endpoint".into(),
                "remove `INTO`".into(),
                "INTO",
            );
        }
        ControlFlow::Continue(())
    }
}

/// What the build read in one final SQL text, for the start-up comparison
/// with DuckDB's parse: function and table-function names, table names
/// (last part, lower case) and the number of `?` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub functions: BTreeSet<String>,
    pub tables: BTreeSet<String>,
    pub parameters: usize,
}

pub fn facts<V: Visit>(nodes: &[V]) -> Facts {
    #[derive(Default)]
    struct FactVisitor(Facts);
    impl Visitor for FactVisitor {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            match factor {
                TableFactor::Table {
                    name,
                    args: Some(_),
                    ..
                }
                | TableFactor::Function { name, .. } => {
                    self.0.functions.insert(last_name_part(name));
                }
                TableFactor::Table { name, .. } => {
                    self.0.tables.insert(last_name_part(name));
                }
                TableFactor::UNNEST { .. } => {
                    self.0.functions.insert("unnest".into());
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Function(function) = expr {
                self.0.functions.insert(last_name_part(&function.name));
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_value(&mut self, value: &ValueWithSpan) -> ControlFlow<()> {
            if matches!(&value.value, Value::Placeholder(p) if p == "?") {
                self.0.parameters += 1;
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = FactVisitor::default();
    for node in nodes {
        let _ = node.visit(&mut visitor);
    }
    visitor.0
}

/// Placeholder names (`$1001`) by where they sit:
/// - `identifier_like`: where SQL expects an identifier or keyword (a whole
///   `ORDER BY` or `GROUP BY` item); binding a value there orders or groups
///   by a constant, which is not what the author wrote;
/// - `name_args`: inside an argument that names a column, field, path,
///   variable, setting, file or SQL text (`struct_extract(s, ?)`,
///   `COLUMNS(?)`, `j ->> ?`, `read_csv(?)`): a caller's free text there
///   would choose what is read.
#[derive(Default, Debug)]
pub struct PlaceholderPositions {
    pub seen: BTreeSet<String>,
    pub identifier_like: BTreeSet<String>,
    /// Placeholder name -> the function whose name argument holds it.
    pub name_args: BTreeMap<String, String>,
}

pub fn placeholder_positions(statements: &[Statement]) -> PlaceholderPositions {
    let mut visitor = PositionVisitor::default();
    for statement in statements {
        let _ = statement.visit(&mut visitor);
    }
    visitor.0
}

#[derive(Default)]
struct PositionVisitor(PlaceholderPositions, BTreeSet<usize>);

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

/// Every placeholder anywhere inside `expr`.
fn placeholders_in(expr: &Expr) -> Vec<String> {
    let mut found = Vec::new();
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        if let Some(name) = placeholder_name(e) {
            found.push(name.to_string());
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

fn arg_expr(arg: &FunctionArg) -> Option<&Expr> {
    match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
        | FunctionArg::Named {
            arg: FunctionArgExpr::Expr(e),
            ..
        }
        | FunctionArg::ExprNamed {
            arg: FunctionArgExpr::Expr(e),
            ..
        } => Some(e),
        _ => None,
    }
}

impl PositionVisitor {
    fn mark(&mut self, expr: &Expr) {
        if let Some(name) = placeholder_name(expr) {
            self.0.identifier_like.insert(name.to_string());
        }
    }

    fn mark_name_args(&mut self, function: &str, args: &[FunctionArg], table: bool) {
        let rule = catalog()
            .get(function)
            .map(|c| c.name_args.clone())
            .unwrap_or(NameArgs::None);
        // Every argument of a function flapi does not know may name what
        // it reads.
        let all = !catalog().contains_key(function);
        for (position, arg) in args.iter().enumerate() {
            // Named options (`read_csv(f, header := ?)`) are values.
            let named = !matches!(arg, FunctionArg::Unnamed(_));
            if ((all && !(table && named)) || (!named && rule.covers(position)))
                && let Some(expr) = arg_expr(arg)
            {
                for name in placeholders_in(expr) {
                    self.0.name_args.insert(name, function.to_string());
                }
            }
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

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(function) => {
                let name = last_name_part(&function.name);
                if let FunctionArguments::List(list) = &function.args {
                    self.mark_name_args(&name, &list.args, false);
                    // Lambdas passed to a function are lambdas.
                    for arg in &list.args {
                        if let Some(e @ Expr::Lambda(_)) = arg_expr(arg) {
                            self.1.insert(e as *const Expr as usize);
                        }
                    }
                }
            }
            // Anywhere else, DuckDB reads `j -> x` as JSON extraction.
            Expr::Lambda(lambda) if !self.1.contains(&(expr as *const Expr as usize)) => {
                for name in placeholders_in(&lambda.body) {
                    self.0.name_args.insert(name, "->".into());
                }
            }
            Expr::BinaryOp {
                op:
                    BinaryOperator::Arrow
                    | BinaryOperator::LongArrow
                    | BinaryOperator::HashArrow
                    | BinaryOperator::HashLongArrow,
                right,
                ..
            } => {
                for name in placeholders_in(right) {
                    self.0.name_args.insert(name, "->>".into());
                }
            }
            Expr::JsonAccess { path, .. } => {
                let text = path.to_string();
                for name in self.0.seen.clone() {
                    if text.contains(&name) {
                        self.0.name_args.insert(name, "json path".into());
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table {
                name,
                args: Some(args),
                ..
            } => self.mark_name_args(&last_name_part(name), &args.args, true),
            TableFactor::Function { name, args, .. } => {
                self.mark_name_args(&last_name_part(name), args, true)
            }
            _ => {}
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

    fn problems(sql: &str, masked: bool) -> Vec<String> {
        match parse(sql) {
            Ok(statements) => read_only_problems(
                &statements,
                Rules {
                    allowed_functions: &[],
                    masked,
                },
            )
            .into_iter()
            .map(|p| p.message)
            .collect(),
            Err(e) => vec![e],
        }
    }

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
            assert!(!problems(sql, false).is_empty(), "{sql} should be rejected");
        }
        assert!(problems("SELECT a FROM t WHERE b = ?", false).is_empty());
    }

    #[test]
    fn functions_outside_the_allowlist_are_refused() {
        for sql in [
            "SELECT json_execute_serialized_sql(?)",
            "SELECT current_setting('threads')",
            "SELECT getvariable('x')",
            "SELECT * FROM query_table('people')",
            "SELECT * FROM duckdb_secrets()",
            "SELECT * FROM pragma_storage_info('people')",
            "SELECT my_macro(1)",
            "SELECT main.upper('a')",
            "SELECT nextval('s')",
        ] {
            assert!(!problems(sql, false).is_empty(), "{sql} should be refused");
        }
        for sql in [
            "SELECT upper(name), count(*), sum(x), row_number() OVER () FROM t GROUP BY 1",
            "SELECT * FROM read_csv('data/x.csv')",
            "SELECT list_transform([1, 2], x -> x + 1), struct_pack(a := 1)",
            "SELECT * FROM range(3)",
            "SELECT coalesce(a, b), nullif(a, b) FROM t",
        ] {
            assert!(
                problems(sql, false).is_empty(),
                "{sql}: {:?}",
                problems(sql, false)
            );
        }
    }

    #[test]
    fn masked_endpoints_read_plain_tables_only() {
        for sql in [
            "SELECT * FROM main.people",
            "SELECT * FROM memory.main.people",
            "SELECT * FROM \"data/people.csv\"",
            "SELECT * FROM read_csv('data/people.csv')",
        ] {
            assert!(!problems(sql, true).is_empty(), "{sql} should be refused");
        }
        assert!(problems("SELECT * FROM people p, unnest([1]) u", true).is_empty());
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

    #[test]
    fn finds_name_arguments() {
        for (sql, name) in [
            ("SELECT struct_extract(s, $1001) FROM t", "$1001"),
            ("SELECT COLUMNS($1001) FROM t", "$1001"),
            ("SELECT j ->> $1001 FROM t", "$1001"),
            ("SELECT j -> ('a' || $1001) FROM t", "$1001"),
            ("SELECT json_extract(j, $1001) FROM t", "$1001"),
            ("SELECT * FROM read_csv('x' || $1001)", "$1001"),
            ("SELECT getvariable($1001)", "$1001"),
        ] {
            let positions = placeholder_positions(&parse(sql).unwrap());
            assert!(positions.name_args.contains_key(name), "{sql}");
        }
        let positions = placeholder_positions(
            &parse("SELECT upper($1001), list_extract(l, $1002) FROM t").unwrap(),
        );
        assert!(positions.name_args.is_empty(), "{:?}", positions.name_args);
    }
}
