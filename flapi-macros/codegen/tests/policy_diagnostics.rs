//! Audit, dry run, shadow mode and response shaping settings (SPEC §8–§10)
//! at build time. The redaction fixtures under `fixtures/redaction/` hold
//! shapes that once slipped past masking by name (alias, expression,
//! struct, list, JSON, renaming subquery), which now build because the
//! server masks by construction, and the three things an endpoint with
//! redaction may not do (a schema-qualified table, a table function, a
//! macro), each with the diagnostics it must produce in `expected.txt`.

mod common;

use flapi_codegen::{Diagnostic, Severity, load};

#[test]
fn redaction_fixtures_build_or_fail_where_expected() {
    common::assert_fixtures_match_expected(
        "redaction",
        &[
            "alias",
            "expression",
            "struct",
            "list",
            "json",
            "subquery",
            "clean",
            "qualified",
            "file",
            "macro",
        ],
    );
}

const CONFIG: &str = "project-name: fixture\nconnections:\n  main: {}\n";

fn diagnose(files: &[(&str, &str)]) -> Vec<Diagnostic> {
    let dir = common::project(files);
    match load(dir.path()) {
        Ok((_, warnings)) => warnings,
        Err(diagnostics) => diagnostics,
    }
}

fn lines(diagnostics: &[Diagnostic]) -> Vec<(Severity, String, u64, u64, String)> {
    diagnostics
        .iter()
        .map(|d| {
            (
                d.severity,
                d.location.file.display().to_string(),
                d.location.line,
                d.location.column,
                d.message.clone(),
            )
        })
        .collect()
}

fn endpoint(extra: &str) -> String {
    format!("url-path: /items\ntemplate-source: a.sql\nconnection: [main]\n{extra}")
}

#[test]
fn a_redacted_column_selected_unchanged_builds_and_other_columns_are_free() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/a.yaml",
            &endpoint("response:\n  redact-columns: [ssn]\n  max-rows: 10\n"),
        ),
        (
            "sqls/a.sql",
            "SELECT id, upper(name) AS name, ssn, {'id': id} AS s FROM (SELECT 1 AS id, 'a' AS name, 'x' AS ssn) t",
        ),
    ]);
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn the_rules_for_redaction_hold_in_every_variant_of_a_template() {
    // Only the variant with the optional section reads a qualified table.
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/a.yaml",
            &endpoint(
                "request:\n  - field-name: raw\n    field-in: query\n    validators:\n      - type: boolean\nresponse:\n  redact-columns: [ssn]\n",
            ),
        ),
        (
            "sqls/a.sql",
            "SELECT id FROM people\n{{#params.raw}}UNION ALL SELECT id FROM main.archive{{/params.raw}}",
        ),
    ]);
    let found = lines(&d);
    assert_eq!(found.len(), 1, "{d:#?}");
    assert_eq!(found[0].0, Severity::Error);
    assert_eq!((found[0].1.as_str(), found[0].2), ("sqls/a.sql", 2));
    assert!(found[0].4.contains("schema-qualified"), "{}", found[0].4);
}

#[test]
fn redaction_needs_sql_checked_at_build_time() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/a.yaml",
            &endpoint("sql-validation: startup\nresponse:\n  redact-columns: [ssn]\n"),
        ),
        ("sqls/a.sql", "SELECT 'x' AS ssn"),
    ]);
    let found = lines(&d);
    assert_eq!(found.len(), 1, "{d:#?}");
    assert_eq!((found[0].2, found[0].3), (6, 20));
    assert!(found[0].4.contains("sql-validation: startup"));
}

#[test]
fn shaping_and_policy_settings_are_checked() {
    let config = "project-name: fixture\nconnections:\n  main: {}\nenforcement: loose\naudit:\n  fsync: sometimes\n  on-failure: maybe\nmcp:\n  enforcement: shadow\n";
    let d = diagnose(&[
        ("flapi.yaml", config),
        (
            "sqls/a.yaml",
            &endpoint(
                "response:\n  max-rows: 0\n  unmask-roles: [admin]\n  redact-columns:\n    - {unmask-roles: [admin]}\n",
            ),
        ),
        ("sqls/a.sql", "SELECT 1 AS id"),
    ]);
    let messages: Vec<(String, u64, String)> = lines(&d)
        .into_iter()
        .filter(|l| l.0 == Severity::Error)
        .map(|l| (l.1, l.2, l.4))
        .collect();
    let expect = [
        ("flapi.yaml", 4, "unknown enforcement `loose`"),
        // A block mapping's position is its first key's.
        ("flapi.yaml", 6, "a file audit sink needs a `path`"),
        ("flapi.yaml", 6, "unknown value `sometimes`"),
        ("flapi.yaml", 7, "unknown value `maybe`"),
        ("sqls/a.yaml", 5, "0 is out of range"),
        ("sqls/a.yaml", 6, "unknown role `admin`"),
        (
            "sqls/a.yaml",
            8,
            "a `redact-columns` entry needs a `column`",
        ),
    ];
    for (file, line, text) in expect {
        assert!(
            messages
                .iter()
                .any(|(f, l, m)| f == file && *l == line && m.contains(text)),
            "missing {file}:{line} {text} in {messages:#?}"
        );
    }
    assert_eq!(messages.len(), expect.len(), "{messages:#?}");
}

#[test]
fn shadow_mode_warns_and_dry_run_public_needs_auth_off() {
    let config = "project-name: fixture\nconnections:\n  main: {}\nmcp:\n  enforcement: shadow\n";
    let d = diagnose(&[
        ("flapi.yaml", config),
        ("sqls/a.yaml", &endpoint("")),
        ("sqls/a.sql", "SELECT 1 AS id"),
    ]);
    let found = lines(&d);
    assert_eq!(found.len(), 1, "{d:#?}");
    assert_eq!(found[0].0, Severity::Warning);
    assert_eq!((found[0].1.as_str(), found[0].2), ("flapi.yaml", 5));
    assert!(found[0].4.contains("shadow mode is on"));

    let per_endpoint = diagnose(&[
        ("flapi.yaml", CONFIG),
        ("sqls/a.yaml", &endpoint("enforcement: shadow\n")),
        ("sqls/a.sql", "SELECT 1 AS id"),
    ]);
    let found = lines(&per_endpoint);
    assert_eq!(found.len(), 1, "{per_endpoint:#?}");
    assert_eq!((found[0].1.as_str(), found[0].2), ("sqls/a.yaml", 4));
    assert!(found[0].4.contains("GET /items"), "{}", found[0].4);

    let open = diagnose(&[
        (
            "flapi.yaml",
            "project-name: fixture\nconnections:\n  main: {}\nauth:\n  enabled: true\n  users:\n    - username: a\n      password: '${A_PW}'\n      roles: [r]\ndry-run-public: true\n",
        ),
        ("roles.yaml", "roles:\n  r: {}\n"),
        ("sqls/a.yaml", &endpoint("allowed-roles: [r]\n")),
        ("sqls/a.sql", "SELECT 1 AS id"),
    ]);
    assert!(
        lines(&open)
            .iter()
            .any(|l| l.0 == Severity::Error && l.2 == 10 && l.4.contains("dry-run-public")),
        "{open:#?}"
    );
}

#[test]
fn more_redacted_columns_than_masked_texts_can_cover_fail_the_build() {
    let columns: Vec<String> = (0..17).map(|i| format!("c{i}")).collect();
    let select = columns
        .iter()
        .map(|c| format!("1 AS {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let list = |n: usize| {
        format!(
            "response:\n  redact-columns: [{}]\n",
            columns[..n].join(", ")
        )
    };
    let with = |n: usize| {
        diagnose(&[
            ("flapi.yaml", CONFIG),
            ("sqls/a.yaml", &endpoint(&list(n))),
            ("sqls/a.sql", &format!("SELECT {select}")),
        ])
    };
    assert!(with(16).is_empty(), "{:#?}", with(16));
    let d = with(17);
    let errors: Vec<_> = d.iter().filter(|d| d.severity == Severity::Error).collect();
    assert_eq!(errors.len(), 1, "{d:#?}");
    assert!(errors[0].message.contains("more than 16"), "{d:#?}");
    // At the 17th entry of the list: `c16`.
    let yaml = list(17);
    let col = yaml
        .lines()
        .nth(1)
        .and_then(|l| l.find("c16"))
        .expect("c16") as u64
        + 1;
    assert_eq!(
        (errors[0].location.line, errors[0].location.column),
        (5, col)
    );
}
