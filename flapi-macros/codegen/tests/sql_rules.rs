//! The build's SQL rules (SPEC §4) over two corpora: every template in
//! `sql_rules/refused.txt` fails the build with the expected message at the
//! marked file:line:col, and every template in `sql_rules/accepted.txt`
//! builds. Covers the lexical constructs sqlparser and DuckDB disagree on,
//! the function allowlist, and each kind of identifier site.

mod common;

use flapi_codegen::{Severity, load};

const CONFIG: &str = "project-name: sql-rules\nconnections:\n  main:\n    init: CREATE TABLE people AS SELECT 1 AS id, 'a' AS name\n";

const ENDPOINT: &str = "url-path: /t\ntemplate-source: t.sql\nconnection: [main]\nrequest:\n  - field-name: name\n    field-in: query\n  - field-name: file\n    field-in: query\n  - field-name: n\n    field-in: query\n    validators:\n      - type: int\n  - field-name: col\n    field-in: query\n    required: true\n    validators:\n      - type: enum\n        allowedValues: [id, name]\n";

/// Corpus lines (comments and blank lines skipped), with `\n` and `\x00`
/// turned into the characters they name.
fn corpus(file: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sql_rules")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.replace("\\n", "\n").replace("\\x00", "\0"))
        .collect()
}

fn build(template: &str) -> Vec<flapi_codegen::Diagnostic> {
    let dir = common::project(&[
        ("flapi.yaml", CONFIG),
        ("sqls/t.yaml", ENDPOINT),
        ("sqls/t.sql", template),
    ]);
    match load(dir.path()) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect(),
    }
}

#[test]
fn every_refused_template_fails_at_the_marked_position() {
    let entries = corpus("refused.txt");
    assert!(entries.len() >= 30, "only {} entries", entries.len());
    for entry in entries {
        let (message, marked) = entry.split_once(" | ").expect("`message | template`");
        let offset = marked.find('⟪').expect("a ⟪ marker");
        let template = marked.replacen('⟪', "", 1);
        let before = &template[..offset];
        let line = before.matches('\n').count() as u64 + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
        let errors = build(&template);
        assert!(
            errors
                .iter()
                .any(|d| d.location.file.ends_with("sqls/t.sql")
                    && (d.location.line, d.location.column) == (line, column)
                    && d.message.contains(message.trim())),
            "{template:?}: expected `{message}` at {line}:{column}, got:\n{}",
            errors.iter().map(|d| format!("{d}\n")).collect::<String>()
        );
    }
}

#[test]
fn every_accepted_template_builds() {
    for template in corpus("accepted.txt") {
        let errors = build(&template);
        assert!(
            errors.is_empty(),
            "{template:?}:\n{}",
            errors.iter().map(|d| format!("{d}\n")).collect::<String>()
        );
    }
}

#[test]
fn a_project_may_allow_a_function_it_trusts() {
    let config = format!("{CONFIG}template:\n  allowed-functions: [my_macro]\n");
    let dir = common::project(&[
        ("flapi.yaml", &config),
        ("sqls/t.yaml", ENDPOINT),
        ("sqls/t.sql", "SELECT my_macro(id) AS m FROM people"),
    ]);
    assert!(load(dir.path()).is_ok());
    // …but never in an endpoint with redaction.
    let masked = format!("{ENDPOINT}response:\n  redact-columns: [name]\n");
    let dir = common::project(&[
        ("flapi.yaml", &config),
        ("sqls/t.yaml", &masked),
        ("sqls/t.sql", "SELECT my_macro(id) AS m FROM people"),
    ]);
    let errors = load(dir.path()).err().unwrap_or_default();
    assert!(
        errors
            .iter()
            .any(|d| d.message.contains("endpoint with `redact-columns`")),
        "{errors:?}"
    );
}

#[test]
fn endpoints_with_redaction_read_only_plain_tables() {
    let masked = format!("{ENDPOINT}response:\n  redact-columns: [name]\n");
    for (template, message, line, column) in [
        ("SELECT * FROM main.people", "schema-qualified", 1, 20),
        (
            "SELECT *\nFROM memory.main.people",
            "schema-qualified",
            2,
            18,
        ),
        (
            "SELECT * FROM \"data/people.csv\"",
            "not a plain name",
            1,
            16,
        ),
        (
            "SELECT * FROM read_csv('data/people.csv')",
            "table function `read_csv`",
            1,
            15,
        ),
        (
            "SELECT * FROM people, unnest([1]) u, range(2) r, generate_series(1, 2) g",
            "",
            0,
            0,
        ),
    ] {
        let dir = common::project(&[
            ("flapi.yaml", CONFIG),
            ("sqls/t.yaml", &masked),
            ("sqls/t.sql", template),
        ]);
        let errors = load(dir.path()).err().unwrap_or_default();
        if message.is_empty() {
            assert!(errors.is_empty(), "{template}: {errors:?}");
            continue;
        }
        assert!(
            errors.iter().any(|d| d.message.contains(message)
                && (d.location.line, d.location.column) == (line, column)),
            "{template}: {}",
            errors.iter().map(|d| format!("{d}\n")).collect::<String>()
        );
    }
}

/// The shapes of the runtime redaction corpus that the build refuses
/// (`-- refused: <message> at L:C`): each fails as a masked endpoint at
/// exactly that position.
#[test]
fn the_redaction_corpus_refusals_fail_where_marked() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/redaction/corpus.txt");
    let text = std::fs::read_to_string(&path).expect("the runtime redaction corpus");
    let masked = format!("{ENDPOINT}response:\n  redact-columns: [ssn]\n");
    let mut checked = 0;
    for block in text.split("-- shape: ").skip(1) {
        let mut lines = block.lines();
        let shape = lines.next().unwrap_or("").trim();
        let _about = lines.next();
        let rest: Vec<&str> = lines.collect();
        let Some(refused) = rest.first().and_then(|l| l.strip_prefix("-- refused: ")) else {
            continue;
        };
        let (message, at) = refused.rsplit_once(" at ").expect("`<message> at L:C`");
        let (line, column) = at.split_once(':').expect("L:C");
        let (line, column): (u64, u64) = (line.parse().unwrap(), column.parse().unwrap());
        let sql = rest[1..].join("\n");
        let dir = common::project(&[
            ("flapi.yaml", CONFIG),
            ("sqls/t.yaml", &masked),
            ("sqls/t.sql", sql.trim()),
        ]);
        let errors = load(dir.path()).err().unwrap_or_default();
        assert!(
            errors.iter().any(|d| d.message.contains(message)
                && (d.location.line, d.location.column) == (line, column)),
            "{shape}: expected `{message}` at {line}:{column}: {}",
            errors.iter().map(|d| format!("{d}\n")).collect::<String>()
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} refused shapes");
}
