//! flAPI compatibility at build time (issue 18): flAPI's features that are
//! refused on purpose, or half-supported, fail at the YAML line with a
//! message that names the rewrite; the supported ones build.

mod common;

use flapi_codegen::{Diagnostic, Severity, load};

const CONFIG: &str = "project-name: fixture\n";

fn errors(files: &[(&str, &str)]) -> Vec<Diagnostic> {
    let dir = common::project(files);
    match load(dir.path()) {
        Ok(_) => Vec::new(),
        Err(d) => d
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect(),
    }
}

/// Exactly one error at `file:line:col` whose message contains `needle`.
fn one(files: &[(&str, &str)], at: (&str, u64, u64), needle: &str) {
    let errors = errors(files);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    assert_eq!(
        (
            e.location.file.to_string_lossy().as_ref(),
            e.location.line,
            e.location.column
        ),
        at,
        "{e:?}"
    );
    assert!(e.message.contains(needle), "{}", e.message);
}

/// An error at `file:line:col` whose message contains `needle` (an
/// include that fails also leaves its key missing: a second error).
fn has(files: &[(&str, &str)], at: (&str, u64, u64), needle: &str) {
    let errors = errors(files);
    assert!(
        errors.iter().any(|e| (
            e.location.file.to_string_lossy().as_ref(),
            e.location.line,
            e.location.column
        ) == at
            && e.message.contains(needle)),
        "no `{needle}` at {at:?}: {errors:#?}"
    );
}

const ENDPOINT: &str = "url-path: /x\ntemplate-source: x.sql\n";

#[test]
fn duckdb_settings_pass_through_an_allowlist_only() {
    let ok = errors(&[
        (
            "flapi.yaml",
            "project-name: f\nduckdb:\n  default_order: DESC\n  preserve_insertion_order: false\n",
        ),
        ("sqls/x.yaml", ENDPOINT),
        ("sqls/x.sql", "SELECT 1 AS a\n"),
    ]);
    assert!(ok.is_empty(), "{ok:#?}");
    for (setting, needle) in [
        ("enable_external_access: true", "set by flapi's sandbox"),
        ("allowed_paths: /etc", "set by flapi's sandbox"),
        ("extension_directory: /tmp", "set by flapi's sandbox"),
        ("db-path: x.db", "did you mean `db_path`"),
        (
            "no_such_setting: 1",
            "not a flapi key, nor a DuckDB setting",
        ),
        ("timezone: UTC", "not a flapi key, nor a DuckDB setting"),
        (
            "calendar: gregorian",
            "not a flapi key, nor a DuckDB setting",
        ),
    ] {
        let config = format!("project-name: f\nduckdb:\n  {setting}\n");
        let errors = errors(&[
            ("flapi.yaml", &config),
            ("sqls/x.yaml", ENDPOINT),
            ("sqls/x.sql", "SELECT 1 AS a\n"),
        ]);
        assert_eq!(errors.len(), 1, "{setting}: {errors:#?}");
        assert_eq!((errors[0].location.line, errors[0].location.column), (3, 3));
        let text = format!(
            "{} {}",
            errors[0].message,
            errors[0].help.clone().unwrap_or_default()
        );
        assert!(text.contains(needle), "{setting}: {text}");
    }
}

#[test]
fn read_operations_build_and_write_operations_name_the_type() {
    let ok = errors(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/x.yaml",
            &format!("{ENDPOINT}operation:\n  type: Read\n"),
        ),
        ("sqls/x.sql", "SELECT 1 AS a\n"),
    ]);
    assert!(ok.is_empty(), "{ok:#?}");
    one(
        &[
            ("flapi.yaml", CONFIG),
            (
                "sqls/x.yaml",
                &format!(
                    "{ENDPOINT}operation:\n  type: write\n  returns-data: true\n  transaction: true\n"
                ),
            ),
            ("sqls/x.sql", "SELECT 1 AS a\n"),
        ],
        ("sqls/x.yaml", 4, 9),
        "operation type `write` is not supported yet",
    );
}

#[test]
fn two_spellings_of_one_key_are_an_error() {
    one(
        &[
            (
                "flapi.yaml",
                "project-name: f\nrate-limit:\n  max: 5\n  interval: 60\nrate_limit:\n  max: 9\n  interval: 60\n",
            ),
            ("sqls/x.yaml", ENDPOINT),
            ("sqls/x.sql", "SELECT 1 AS a\n"),
        ],
        ("flapi.yaml", 5, 1),
        "two spellings of one key",
    );
}

#[test]
fn include_problems_point_at_the_directive() {
    let sql = ("sqls/x.sql", "SELECT 1 AS a\n");
    let common = ("sqls/common.yaml", "template-source: x.sql\n");
    for (line, needle) in [
        (
            "{{include:template-sourc from common.yaml}}",
            "has no top-level key `template-sourc`",
        ),
        (
            "{{include:template-source from missing.yaml}}",
            "cannot be read",
        ),
        (
            "{{include:template-source from ../../etc/passwd}}",
            "outside the project folder",
        ),
        (
            "{{include:template-source from {{env.DIR}}/common.yaml}}",
            "cannot use `{{env.…}}`",
        ),
        (
            "  {{include:template-source from common.yaml}}",
            "top level of a file only",
        ),
    ] {
        let endpoint = format!("url-path: /x\n{line}\n");
        has(
            &[
                ("flapi.yaml", CONFIG),
                ("sqls/x.yaml", &endpoint),
                common,
                sql,
            ],
            ("sqls/x.yaml", 2, if line.starts_with(' ') { 3 } else { 1 }),
            needle,
        );
    }
    // Written in the file and included: the two would be silently merged.
    one(
        &[
            ("flapi.yaml", CONFIG),
            (
                "sqls/x.yaml",
                "url-path: /x\ntemplate-source: x.sql\n{{include:template-source from common.yaml}}\n",
            ),
            common,
            sql,
        ],
        ("sqls/x.yaml", 3, 1),
        "both written in this file and included",
    );
}

#[test]
fn a_problem_inside_an_included_section_is_reported_in_its_own_file() {
    one(
        &[
            ("flapi.yaml", CONFIG),
            (
                "sqls/x.yaml",
                "url-path: /x\ntemplate-source: x.sql\n{{include:request from common.yaml}}\n",
            ),
            (
                "sqls/common.yaml",
                "request:\n  - field-name: id\n    validators:\n      - type: intt\n",
            ),
            ("sqls/x.sql", "SELECT {{ params.id }} AS a\n"),
        ],
        ("sqls/common.yaml", 4, 15),
        "intt",
    );
}

#[test]
fn page_fields_must_be_integers() {
    let endpoint = format!(
        "{ENDPOINT}request:\n  - field-name: limit\n    validators:\n      - type: string\n"
    );
    one(
        &[
            ("flapi.yaml", CONFIG),
            ("sqls/x.yaml", &endpoint),
            ("sqls/x.sql", "SELECT 1 AS a\n"),
        ],
        ("sqls/x.yaml", 6, 15),
        "must be `type: int`",
    );
}

#[test]
fn heartbeat_params_name_fields() {
    let config = "project-name: f\nheartbeat:\n  enabled: true\n";
    let endpoint = format!("{ENDPOINT}heartbeat:\n  enabled: true\n  params:\n    idd: 1\n");
    one(
        &[
            ("flapi.yaml", config),
            ("sqls/x.yaml", &endpoint),
            ("sqls/x.sql", "SELECT 1 AS a\n"),
        ],
        ("sqls/x.yaml", 6, 5),
        "`idd` is not a request field",
    );
}
