//! One fixture project per diagnostic class: each must fail with the
//! expected message at the expected file, line and column, and a fixture
//! with five mistakes must report all five in one run (SPEC §13).

use std::path::Path;

mod common;

use flapi_codegen::{Diagnostic, Severity, load};

const CONFIG: &str =
    "project-name: fixture\nconnections:\n  main:\n    properties:\n      region: eu\n";

/// Writes `files` into a temporary project folder and loads it.
fn diagnose(files: &[(&str, &str)]) -> Vec<Diagnostic> {
    let dir = common::project(files);
    match load(dir.path()) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics,
    }
}

fn errors(diagnostics: &[Diagnostic]) -> Vec<&Diagnostic> {
    diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

/// Exactly one error, at `file:line:col`, whose message contains `message`.
fn assert_one(
    diagnostics: &[Diagnostic],
    file: &str,
    line: u64,
    column: u64,
    message: &str,
) -> Diagnostic {
    let errors = errors(diagnostics);
    assert_eq!(errors.len(), 1, "expected one error, got: {errors:#?}");
    let d = errors[0].clone();
    assert_eq!(d.location.file, Path::new(file), "{d}");
    assert_eq!((d.location.line, d.location.column), (line, column), "{d}");
    assert!(
        d.message.contains(message),
        "message `{}` lacks `{message}`",
        d.message
    );
    d
}

fn endpoint(sql_name: &str, extra: &str) -> String {
    format!("url-path: /items\ntemplate-source: {sql_name}\nconnection: [main]\n{extra}")
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/items.yaml",
            "url-path: /items\ntemplate-sorce: items.sql\n",
        ),
        ("sqls/items.sql", "SELECT 1"),
    ]);
    let all = errors(&d);
    let unknown = all
        .iter()
        .find(|d| d.message.contains("unknown key"))
        .expect("unknown key reported");
    assert_eq!(unknown.location.file, Path::new("sqls/items.yaml"));
    assert_eq!((unknown.location.line, unknown.location.column), (2, 1));
    assert_eq!(unknown.key_path, "template-sorce");
    assert_eq!(
        unknown.help.as_deref(),
        Some("did you mean `template-source`?")
    );
    assert!(
        unknown
            .to_string()
            .starts_with("sqls/items.yaml:2:1: error at `template-sorce`: unknown key")
    );
}

#[test]
fn unknown_key_in_flapi_yaml_and_unsupported_key() {
    let d = diagnose(&[
        ("flapi.yaml", "project-name: x\nprojct-description: y\n"),
        (
            "sqls/a.yaml",
            &format!("{}cache:\n  enabled: true\n", endpoint("a.sql", "")),
        ),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    let all = errors(&d);
    assert!(
        all.iter().any(|d| d.location.line == 2
            && d.help.as_deref() == Some("did you mean `project-description`?")),
        "{all:#?}"
    );
    assert!(
        all.iter()
            .any(|d| d.message.contains("`cache` is not supported yet")),
        "{all:#?}"
    );
}

#[test]
fn missing_template_file() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        ("sqls/items.yaml", &endpoint("itemz.sql", "")),
        ("sqls/items.sql", "SELECT 1"),
    ]);
    let e = assert_one(
        &d,
        "sqls/items.yaml",
        2,
        18,
        "template file `itemz.sql` does not exist",
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `items.sql`?"));
}

#[test]
fn unknown_connection() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/items.yaml",
            "url-path: /items\ntemplate-source: items.sql\nconnection: [mian]\n",
        ),
        ("sqls/items.sql", "SELECT 1"),
    ]);
    let e = assert_one(&d, "sqls/items.yaml", 3, 14, "unknown connection `mian`");
    assert_eq!(e.help.as_deref(), Some("did you mean `main`?"));
}

#[test]
fn undeclared_template_variable() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/items.yaml",
            &endpoint("items.sql", "request:\n  - field-name: name\n"),
        ),
        ("sqls/items.sql", "SELECT 1\nWHERE x = '{{ params.nmae }}'"),
    ]);
    let e = assert_one(
        &d,
        "sqls/items.sql",
        2,
        12,
        "`params.nmae` has no matching request field",
    );
    assert!(
        e.help
            .as_deref()
            .unwrap_or("")
            .contains("did you mean `name`?")
    );
}

#[test]
fn duplicate_route() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/a.yaml",
            "url-path: /items/:id\ntemplate-source: a.sql\nrequest:\n  - field-name: id\n    field-in: path\n",
        ),
        ("sqls/a.sql", "SELECT {{ params.id }} AS id"),
        (
            "sqls/b.yaml",
            "url-path: /items/:key\ntemplate-source: b.sql\nrequest:\n  - field-name: key\n    field-in: path\n",
        ),
        ("sqls/b.sql", "SELECT {{ params.key }} AS key"),
    ]);
    let e = assert_one(
        &d,
        "sqls/b.yaml",
        1,
        11,
        "duplicate route `GET /items/:key`",
    );
    assert!(
        e.message
            .contains("sqls/a.yaml declares the same route at line 1"),
        "{e}"
    );
}

#[test]
fn identifier_site_without_enum() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/items.yaml",
            &endpoint(
                "items.sql",
                "request:\n  - field-name: sort\n    required: true\n",
            ),
        ),
        (
            "sqls/items.sql",
            "SELECT a, b FROM t\nORDER BY {{ params.sort }}",
        ),
    ]);
    let e = assert_one(
        &d,
        "sqls/items.sql",
        2,
        10,
        "identifier or keyword position",
    );
    assert!(e.help.as_deref().unwrap_or("").contains("enum validator"));
}

#[test]
fn identifier_site_in_from_position_without_enum() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/items.yaml",
            &endpoint(
                "items.sql",
                "request:\n  - field-name: table\n    required: true\n",
            ),
        ),
        (
            "sqls/items.sql",
            "SELECT * FROM {{ params.table }} WHERE 1 = 1",
        ),
    ]);
    assert_one(
        &d,
        "sqls/items.sql",
        1,
        15,
        "identifier or keyword position",
    );
}

#[test]
fn multi_statement_sql() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        ("sqls/items.yaml", &endpoint("items.sql", "")),
        ("sqls/items.sql", "SELECT 1;\nDROP TABLE customers;"),
    ]);
    let all = errors(&d);
    assert!(
        all.iter()
            .any(|d| d.message.contains("exactly one SQL statement, found 2")),
        "{all:#?}"
    );
    assert!(
        all.iter()
            .all(|d| d.location.file == Path::new("sqls/items.sql") && d.location.line == 1)
    );
}

#[test]
fn ddl_copy_attach_install_set_are_rejected() {
    for (sql, keyword) in [
        ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
        ("DROP TABLE customers", "DROP TABLE"),
        ("COPY customers TO '/tmp/x.csv'", "COPY"),
        ("ATTACH 'other.db'", "ATTACH"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("SET threads = 1", "SET"),
        ("PRAGMA version", "PRAGMA"),
        ("DELETE FROM customers", "DELETE"),
    ] {
        let d = diagnose(&[
            ("flapi.yaml", CONFIG),
            ("sqls/items.yaml", &endpoint("items.sql", "")),
            ("sqls/items.sql", sql),
        ]);
        let all = errors(&d);
        assert!(
            all.iter().any(|d| d
                .message
                .contains(&format!("`{keyword}` statements are not allowed"))
                || d.message.contains("does not parse")),
            "{sql}: {all:#?}"
        );
        assert!(
            all.iter()
                .all(|d| d.location.file == Path::new("sqls/items.sql")),
            "{sql}"
        );
    }
}

#[test]
fn query_table_functions_are_rejected() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        ("sqls/items.yaml", &endpoint("items.sql", "")),
        ("sqls/items.sql", "SELECT * FROM query('SELECT 42')"),
    ]);
    assert_one(
        &d,
        "sqls/items.sql",
        1,
        15,
        "function `query` is not allowed",
    );
}

#[test]
fn invalid_validator_bounds() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/items.yaml",
            &endpoint(
                "items.sql",
                "request:\n  - field-name: n\n    validators:\n      - type: int\n        min: 10\n        max: 1\n",
            ),
        ),
        ("sqls/items.sql", "SELECT {{ params.n }} AS n"),
    ]);
    let e = assert_one(&d, "sqls/items.yaml", 8, 14, "min 10 is greater than max 1");
    assert_eq!(e.key_path, "request[0].validators[0].min");
}

#[test]
fn five_errors_are_all_reported() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/items.yaml",
            "url-path: /items\ntemplate-source: items.sql\nconnection: [nope]\nwith-pagniation: false\nrequest:\n  - field-name: n\n    validators:\n      - type: int\n        min: 5\n        max: 4\n",
        ),
        (
            "sqls/items.sql",
            "SELECT {{ params.n }} AS n, '{{ params.missing }}' AS m\nORDER BY {{ params.n }}",
        ),
    ]);
    let all = errors(&d);
    let expected = [
        ("sqls/items.yaml", 3, "unknown connection `nope`"),
        ("sqls/items.yaml", 4, "unknown key `with-pagniation`"),
        ("sqls/items.yaml", 9, "min 5 is greater than max 4"),
        (
            "sqls/items.sql",
            1,
            "`params.missing` has no matching request field",
        ),
        ("sqls/items.sql", 2, "identifier or keyword position"),
    ];
    assert_eq!(all.len(), expected.len(), "{all:#?}");
    for (file, line, message) in expected {
        assert!(
            all.iter().any(|d| d.location.file == Path::new(file)
                && d.location.line == line
                && d.message.contains(message)),
            "missing {file}:{line} {message}: {all:#?}"
        );
    }
}

#[test]
fn default_must_fit_the_type() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/items.yaml",
            &endpoint(
                "items.sql",
                "request:\n  - field-name: d\n    default: 2024-13-01\n    validators:\n      - type: date\n",
            ),
        ),
        ("sqls/items.sql", "SELECT '{{ params.d }}' AS d"),
    ]);
    assert_one(
        &d,
        "sqls/items.yaml",
        6,
        14,
        "default `2024-13-01` is not valid",
    );
}

#[test]
fn yaml_syntax_error_has_a_location() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/items.yaml",
            "url-path: /items\n  template-source: [\n",
        ),
    ]);
    let all = errors(&d);
    assert!(
        all.iter()
            .any(|d| d.location.file == Path::new("sqls/items.yaml")
                && d.message.starts_with("invalid YAML")),
        "{all:#?}"
    );
}

#[test]
fn invalid_tool_name() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/a.yaml",
            &endpoint(
                "a.sql",
                "mcp-tool:\n  name: get items\n  description: Items.\n",
            ),
        ),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    let e = assert_one(
        &d,
        "sqls/a.yaml",
        5,
        9,
        "tool name `get items` is not valid",
    );
    assert_eq!(e.key_path, "mcp-tool.name");
}

#[test]
fn duplicate_tool_name() {
    let tool = "mcp-tool:\n  name: items\n  description: Items.\n";
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        ("sqls/a.yaml", &endpoint("a.sql", tool)),
        ("sqls/a.sql", "SELECT 1"),
        (
            "sqls/b.yaml",
            &format!("url-path: /other\ntemplate-source: a.sql\n{tool}"),
        ),
    ]);
    assert_one(&d, "sqls/b.yaml", 4, 3, "duplicate tool name `items`");
}

#[test]
fn tool_without_description() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/a.yaml",
            &endpoint("a.sql", "mcp-tool:\n  name: items\n"),
        ),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    assert_one(&d, "sqls/a.yaml", 5, 3, "the tool description is missing");
}

#[test]
fn prompt_template_uses_an_undeclared_argument() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/p.yaml",
            "mcp-prompt:\n  name: p\n  template: \"Hi {{nme}}\"\n  arguments: [name]\n",
        ),
    ]);
    // The position is the tag's offset from the start of the template value.
    let all = errors(&d);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].location.file, Path::new("sqls/p.yaml"));
    assert_eq!(all[0].location.line, 3);
    assert!(
        all[0]
            .message
            .contains("`nme` is not an argument of this prompt")
    );
    assert_eq!(all[0].help.as_deref(), Some("did you mean `name`?"));
}

#[test]
fn resource_with_a_required_field() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "sqls/r.yaml",
            "mcp-resource:\n  name: r\ntemplate-source: r.sql\nrequest:\n  - field-name: id\n    field-in: query\n    required: true\n    validators:\n      - type: int\n",
        ),
        ("sqls/r.sql", "SELECT {{ params.id }} AS id"),
    ]);
    assert_one(&d, "sqls/r.yaml", 2, 3, "request field `id` is required");
}

/// Files the build reads stay inside the project folder, by `..`, by an
/// absolute path or by a link; the refusal never quotes the file.
#[test]
fn files_outside_the_project_folder_are_refused_unread() {
    let outside = std::env::temp_dir().join(format!("flapi-outside-{}", std::process::id()));
    std::fs::create_dir_all(&outside).expect("dir");
    let secret = outside.join("secret.sql");
    std::fs::write(&secret, "SELECT 'TOPSECRET-77' AS s").expect("write");
    std::fs::write(
        outside.join("k.pem"),
        "-----BEGIN PUBLIC KEY-----\nTOPSECRET-77\n-----END PUBLIC KEY-----\n",
    )
    .expect("write");
    std::fs::write(outside.join("i.md"), "TOPSECRET-77").expect("write");
    let absolute = secret.display().to_string();
    let cases: Vec<(String, String, String, &str)> = vec![
        (
            "project-name: f\nconnections: {main: {}}\n".into(),
            "url-path: /a\ntemplate-source: ../../../../../../../../../..".to_string()
                + &absolute
                + "\n",
            "template-source".into(),
            "sqls/a.yaml",
        ),
        (
            "project-name: f\nconnections: {main: {}}\n".into(),
            format!("url-path: /a\ntemplate-source: {absolute}\n"),
            "template-source".into(),
            "sqls/a.yaml",
        ),
        (
            format!(
                "project-name: f\nconnections: {{main: {{}}}}\nmcp:\n  instructions-file: {}\n",
                outside.join("i.md").display()
            ),
            "url-path: /a\ntemplate-source: a.sql\n".into(),
            "mcp.instructions-file".into(),
            "flapi.yaml",
        ),
        (
            format!(
                "project-name: f\nconnections: {{main: {{}}}}\nauth:\n  enabled: true\n  jwt:\n    audience: a\n    keys:\n      - kid: k\n        alg: RS256\n        pem-file: {}\naudit: {{path: a.jsonl}}\n",
                outside.join("k.pem").display()
            ),
            "url-path: /a\ntemplate-source: a.sql\nallowed-roles: [r]\n".into(),
            "auth.jwt.keys[0].pem-file".into(),
            "flapi.yaml",
        ),
    ];
    for (config, endpoint, key, file) in cases {
        let dir = common::project(&[
            ("flapi.yaml", config.as_str()),
            ("roles.yaml", "roles:\n  r:\n    description: R.\n"),
            ("sqls/a.yaml", endpoint.as_str()),
            ("sqls/a.sql", "SELECT 1 AS one"),
        ]);
        let errors = match flapi_codegen::load(dir.path()) {
            Ok(_) => panic!("{key}: builds"),
            Err(d) => d,
        };
        let found = errors
            .iter()
            .find(|d| d.key_path == key && d.message.contains("outside the project folder"))
            .unwrap_or_else(|| panic!("{key}: {errors:#?}"));
        assert_eq!(found.location.file, std::path::Path::new(file), "{found}");
        for d in &errors {
            assert!(!d.to_string().contains("TOPSECRET"), "{d}");
        }
    }
    // A link inside the project that points outside is refused too.
    let dir = common::project(&[
        ("flapi.yaml", "project-name: f\nconnections: {main: {}}\n"),
        ("sqls/a.yaml", "url-path: /a\ntemplate-source: link.sql\n"),
    ]);
    std::os::unix::fs::symlink(&secret, dir.path().join("sqls/link.sql")).expect("symlink");
    let Err(errors) = flapi_codegen::load(dir.path()) else {
        panic!("a link to a file outside builds");
    };
    assert!(
        errors
            .iter()
            .any(|d| d.message.contains("outside the project folder")),
        "{errors:#?}"
    );
    assert!(errors.iter().all(|d| !d.to_string().contains("TOPSECRET")));
    // Files the build finds by walking (endpoint YAML, roles.yaml) are
    // not read through a link that leaves the folder either, and a link
    // loop ends the walk.
    std::fs::write(outside.join("leak.yaml"), "TOPSECRET-77: [x]\n").expect("write");
    let dir = common::project(&[
        ("flapi.yaml", "project-name: f\nconnections: {main: {}}\n"),
        ("sqls/a.yaml", "url-path: /a\ntemplate-source: a.sql\n"),
        ("sqls/a.sql", "SELECT 1 AS one"),
    ]);
    std::os::unix::fs::symlink(outside.join("leak.yaml"), dir.path().join("sqls/leak.yaml"))
        .expect("symlink");
    std::os::unix::fs::symlink(outside.join("leak.yaml"), dir.path().join("roles.yaml"))
        .expect("symlink");
    std::os::unix::fs::symlink(&outside, dir.path().join("sqls/elsewhere")).expect("symlink");
    std::os::unix::fs::symlink(dir.path().join("sqls"), dir.path().join("sqls/loop"))
        .expect("symlink");
    let Err(errors) = flapi_codegen::load(dir.path()) else {
        panic!("links to files outside build");
    };
    let outside_errors = errors
        .iter()
        .filter(|d| d.message.contains("outside the project folder"))
        .count();
    assert_eq!(outside_errors, 3, "{errors:#?}");
    assert!(
        errors.iter().all(|d| !d.to_string().contains("TOPSECRET")),
        "{errors:#?}"
    );
    let _ = std::fs::remove_dir_all(&outside);
}
