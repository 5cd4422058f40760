//! DuckDB is the authority on what SQL means (SPEC §4):
//!
//! - a parser-agreement corpus: for every template, the build's verdict
//!   (`flapi-codegen`, sqlparser) and DuckDB's verdict at start-up
//!   (`flapi::db::sqlguard`, `json_serialize_sql`) agree, E-strings, dollar
//!   quotes and nested comments included;
//! - a template that hides a second statement, on a file database, never
//!   runs it: the server refuses to start and the table is still there;
//! - the allowlist holds on DuckDB's own reading: functions that read
//!   variables, settings or secrets, and macros from init SQL (which may
//!   shadow a built-in name), are refused.

mod common;

use std::collections::BTreeSet;

use flapi::db::sqlguard::{Expect, check};
use flapi::runtime::SqlFactsDef;

mod hidden {
    flapi_macros::project!("tests/fixtures/hidden_statement");
}

/// (expected verdict, template). `true`: both must accept.
const AGREEMENT: &[(bool, &str)] = &[
    (true, "SELECT id, name FROM people WHERE name = 'a''b'"),
    (
        true,
        "SELECT upper(name) AS n, count(*) AS c FROM people GROUP BY name",
    ),
    (true, "WITH t AS (SELECT 1 AS a) SELECT * FROM t"),
    (true, "SELECT 'it''s -- not a comment' AS s"),
    (true, "SELECT '/* not a comment' AS s, 1 AS y"),
    (true, "SELECT \"a\"\"b\" FROM (SELECT 1 AS \"a\"\"b\")"),
    (true, "SELECT 1 AS x -- trailing comment"),
    (true, "SELECT 1 AS x --; DROP TABLE people"),
    (true, "SELECT 1 AS x /* a */ /* b */"),
    (true, "SELECT 1 AS x;"),
    (true, "SELECT 'E' AS e, 'a$$b' AS d"),
    // The review's example: the build saw one harmless string where
    // DuckDB reads a forbidden function.
    (
        false,
        "SELECT E'\\'' AS a, name AS tax_id, * FROM query_table($$people$$) -- '",
    ),
    (false, "SELECT E'a\\'b' AS x"),
    (false, "SELECT e'\\x41' AS x"),
    (false, "SELECT $$x$$ AS x"),
    (false, "SELECT $q$x$q$ AS x"),
    (false, "SELECT 1 AS x /* a /* b */ c */"),
    (false, "SELECT id /* a /* b */ , name */ FROM people"),
    (false, "SELECT U&\"\\0069d\" FROM people"),
    (false, "SELECT 1; DROP TABLE people"),
    (false, "SELECT * FROM people; SELECT 1"),
    (false, "SELECT query('SELECT 1') AS q"),
    (false, "SELECT current_setting('threads') AS t"),
    (false, "SELECT * FROM read_text('x')"),
    (false, "SELECT id FROM people WHERE id = $1"),
    (false, "SELECT id FROM people WHERE id = ?"),
    (false, "PIVOT people ON name"),
    (false, "INSTALL httpfs"),
    (false, "ATTACH 'x.db' AS x"),
    (false, "COPY people TO 'x.csv'"),
    (false, "CREATE TABLE t AS SELECT 1"),
    (false, "SELECT name, setting FROM pg_settings"),
    (false, "SELECT * FROM pg_catalog.pg_views"),
    (false, "SELECT * FROM information_schema.views"),
    (
        true,
        "SELECT table_name, column_name FROM information_schema.columns",
    ),
];

const CONFIG: &str = "project-name: agreement\nconnections:\n  main:\n    init: CREATE TABLE people AS SELECT 1 AS id, 'a' AS name\n";

/// A temporary project with one endpoint running `sql`.
struct Project(std::path::PathBuf);

impl Project {
    fn new(sql: &str) -> Project {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("random");
        let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("flapi-agreement-{name}"));
        std::fs::create_dir_all(dir.join("sqls")).expect("mkdir");
        std::fs::write(dir.join("flapi.yaml"), CONFIG).expect("write");
        std::fs::write(
            dir.join("sqls/t.yaml"),
            "url-path: /t\ntemplate-source: t.sql\nconnection: [main]\n",
        )
        .expect("write");
        std::fs::write(dir.join("sqls/t.sql"), sql).expect("write");
        Project(dir)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn leak(items: &BTreeSet<String>) -> &'static [&'static str] {
    let v: Vec<&'static str> = items
        .iter()
        .map(|s| &*Box::leak(s.clone().into_boxed_str()))
        .collect();
    Box::leak(v.into_boxed_slice())
}

/// The build's verdict, and the text, bind count and facts it would hand
/// the server.
fn build(sql: &str) -> (bool, String, usize, Option<SqlFactsDef>) {
    let project = Project::new(sql);
    match flapi_codegen::load(&project.0) {
        Ok((project, _)) => {
            let text = &project.endpoints[0].template.texts[0];
            let facts = text.facts.as_ref().map(|f| SqlFactsDef {
                functions: leak(&f.functions),
                tables: leak(&f.tables),
            });
            (true, text.sql.clone(), text.binds, facts)
        }
        // The template has no sites: the server would bind nothing.
        Err(_) => (false, sql.to_string(), 0, None),
    }
}

fn duckdb() -> duckdb::Connection {
    let connection = duckdb::Connection::open_in_memory().expect("DuckDB");
    connection
        .execute_batch("CREATE TABLE people AS SELECT 1 AS id, 'a' AS name")
        .expect("table");
    connection
}

#[test]
fn the_build_and_duckdb_agree_on_every_template() {
    let connection = duckdb();
    let none = BTreeSet::new();
    for (expected, sql) in AGREEMENT {
        let (built, text, binds, facts) = build(sql);
        // What the server would check: the build's text and reading when
        // it built, else the template as written.
        let duckdb = check(
            &connection,
            &text,
            Expect {
                facts: facts.as_ref(),
                binds,
                wrapper_parameters: 0,
                masked: false,
                allowed_functions: &[],
                macros: &none,
            },
        );
        assert_eq!(built, *expected, "build verdict on {sql:?}");
        assert_eq!(
            duckdb.is_ok(),
            *expected,
            "DuckDB verdict on {sql:?}: {duckdb:?}"
        );
    }
    // The table the hidden statements name is untouched: nothing ran.
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM people", [], |r| r.get(0))
        .expect("people");
    assert_eq!(rows, 1);
}

/// DuckDB reads what the build did not: a disagreement refuses the text.
#[test]
fn a_parameter_count_the_build_did_not_see_is_a_disagreement() {
    let connection = duckdb();
    let facts = SqlFactsDef {
        functions: &[],
        tables: &["people"],
    };
    let none = BTreeSet::new();
    let expect = Expect {
        facts: Some(&facts),
        binds: 1,
        wrapper_parameters: 0,
        masked: false,
        allowed_functions: &[],
        macros: &none,
    };
    assert!(check(&connection, "SELECT id FROM people WHERE id = ?", expect).is_ok());
    let error = check(
        &connection,
        "SELECT id FROM people WHERE id = ? OR id = ?",
        expect,
    )
    .expect_err("two parameters where the build bound one");
    assert!(error.contains("disagree"), "{error}");
    let error = check(&connection, "SELECT id FROM other WHERE id = ?", expect)
        .expect_err("a table the build did not see");
    assert!(error.contains("disagree"), "{error}");
}

#[test]
fn functions_are_checked_on_duckdbs_reading() {
    let connection = duckdb();
    connection
        .execute_batch(
            "CREATE MACRO upper(x) AS 'shadowed'; CREATE MACRO secret_ssn(i) AS (SELECT name FROM people WHERE id = i);",
        )
        .expect("macros");
    let macros = flapi::db::masking::macros(&connection).expect("macros");
    assert!(macros.contains("upper") && macros.contains("secret_ssn"));
    let expect = |masked, allowed: &'static [&'static str]| Expect {
        facts: None,
        binds: 0,
        wrapper_parameters: 0,
        masked,
        allowed_functions: allowed,
        macros: Box::leak(Box::new(macros.clone())),
    };
    for sql in [
        "SELECT getvariable('x') AS v",
        "SELECT current_setting('threads') AS t",
        "SELECT * FROM duckdb_secrets()",
        "SELECT * FROM pragma_storage_info('people')",
        "SELECT json_execute_serialized_sql('x') AS j",
        "SELECT nextval('s') AS n",
        "SELECT main.lower('A') AS l",
        // A macro shadowing a built-in name is not the built-in.
        "SELECT upper(name) AS u FROM people",
        "SELECT secret_ssn(1) AS s",
    ] {
        assert!(
            check(&connection, sql, expect(false, &[])).is_err(),
            "{sql}"
        );
    }
    // Listed macros run where nothing is masked, never where something is.
    let listed: &'static [&'static str] = &["upper", "secret_ssn"];
    assert!(
        check(
            &connection,
            "SELECT secret_ssn(1) AS s",
            expect(false, listed)
        )
        .is_ok()
    );
    assert!(
        check(
            &connection,
            "SELECT secret_ssn(1) AS s",
            expect(true, listed)
        )
        .is_err()
    );
    assert!(
        check(
            &connection,
            "SELECT lower(name) AS l FROM people",
            expect(true, &[])
        )
        .is_ok()
    );
    // Window functions are calls: a macro named like one, or a refused
    // function over a window, is caught; built-in windows pass.
    connection
        .execute_batch("CREATE MACRO leak_rank(x) AS (SELECT max(name) FROM people);")
        .expect("macro");
    let macros = flapi::db::masking::macros(&connection).expect("macros");
    let with = |masked| Expect {
        facts: None,
        binds: 0,
        wrapper_parameters: 0,
        masked,
        allowed_functions: &[],
        macros: Box::leak(Box::new(macros.clone())),
    };
    for sql in [
        "SELECT getvariable('x') OVER () AS v FROM people",
        "SELECT upper(name) OVER () AS u FROM people",
        "SELECT 1 OPERATOR(main.+) 2 AS x",
    ] {
        assert!(check(&connection, sql, with(false)).is_err(), "{sql}");
    }
    assert!(
        check(
            &connection,
            "SELECT row_number() OVER (ORDER BY id) AS r, lag(name) OVER (ORDER BY id) AS p FROM people",
            with(true)
        )
        .is_ok()
    );
    // SUMMARIZE / DESCRIBE build their query from a name: refused where
    // columns are masked.
    for sql in [
        "SELECT * FROM (SUMMARIZE people)",
        "SELECT * FROM (SUMMARIZE 'people')",
        "SELECT * FROM (DESCRIBE people)",
    ] {
        assert!(check(&connection, sql, with(true)).is_err(), "{sql}");
    }
}

#[test]
fn a_hidden_second_statement_never_runs_on_a_file_database() {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random");
    let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let file = std::env::temp_dir().join(format!("flapi-hidden-{name}.duckdb"));
    let mut options = common::fixture_options(&hidden::PROJECT);
    options.db_path = Some(file.clone());
    let error = match flapi::app(&hidden::PROJECT, &options) {
        Ok(_) => panic!("a text with three statements must not start"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("endpoint `hidden`"), "{error}");
    assert!(error.contains("does not read it as one SELECT"), "{error}");
    // The init SQL ran (the table exists), the hidden DROP did not.
    let connection = duckdb::Connection::open(&file).expect("reopen the file");
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM keep", [], |r| r.get(0))
        .expect("table `keep` is still there");
    assert_eq!(rows, 1);
    drop(connection);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(file.with_extension("duckdb.wal"));
}
