//! The template compiler (SPEC §4): which SQL texts and binds a template
//! becomes. No request value may ever reach the SQL text.

mod common;

use flapi_codegen::load;
use flapi_codegen::resolve::model::{BindSource, Endpoint};

fn compile(fields: &str, sql: &str) -> Endpoint {
    let dir = common::TempDir::new();
    std::fs::create_dir_all(dir.path().join("sqls")).expect("mkdir");
    std::fs::write(
        dir.path().join("flapi.yaml"),
        "project-name: t\ntemplate:\n  environment-whitelist: ['FLAPI_.*']\nconnections:\n  main:\n    properties:\n      owner: \"O'Brien\"\n      path: data/x.parquet\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("sqls/e.yaml"),
        format!("url-path: /e\ntemplate-source: e.sql\nconnection: [main]\nwith-pagination: false\nrequest:\n{fields}"),
    )
    .expect("write");
    std::fs::write(dir.path().join("sqls/e.sql"), sql).expect("write");
    match load(dir.path()) {
        Ok((mut project, _)) => project.endpoints.remove(0),
        Err(d) => panic!(
            "{}",
            d.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

#[test]
fn quoted_sites_split_the_literal() {
    let e = compile(
        "  - field-name: name\n    required: true\n  - field-name: d\n    required: true\n    validators: [{type: date}]\n",
        "SELECT * FROM t WHERE a LIKE '%{{{ params.name }}}%' AND b = '{{ params.d }}' AND c = 'x''{{ params.name }}'",
    );
    assert_eq!(
        e.template.texts[0].sql,
        "SELECT * FROM t WHERE a LIKE ('%' || ? || '%') AND b = ? AND c = ('x''' || ?)"
    );
    assert_eq!(
        e.template.variants[0].binds,
        [
            BindSource::Field(0),
            BindSource::Field(1),
            BindSource::Field(0)
        ]
    );
}

#[test]
fn sections_make_one_text_per_combination() {
    let e = compile(
        "  - field-name: a\n    validators: [{type: int}]\n  - field-name: b\n",
        "SELECT 1 AS x WHERE true{{#params.a}} AND a = {{ params.a }}{{/params.a}}{{^params.b}} AND b IS NULL{{/params.b}}",
    );
    let texts: Vec<&str> = e.template.texts.iter().map(|t| t.sql.as_str()).collect();
    assert_eq!(
        texts,
        [
            "SELECT 1 AS x WHERE true AND b IS NULL",
            "SELECT 1 AS x WHERE true",
            "SELECT 1 AS x WHERE true AND a = ? AND b IS NULL",
            "SELECT 1 AS x WHERE true AND a = ?",
        ]
    );
    assert_eq!(e.template.variants.len(), 4);
}

#[test]
fn enum_identifier_sites_map_to_fixed_identifiers() {
    let e = compile(
        "  - field-name: sort\n    default: name\n    validators: [{type: enum, allowedValues: [name, created_at]}]\n",
        "SELECT name, created_at FROM t ORDER BY {{ params.sort }}",
    );
    let texts: Vec<&str> = e.template.texts.iter().map(|t| t.sql.as_str()).collect();
    assert_eq!(
        texts,
        [
            "SELECT name, created_at FROM t ORDER BY name",
            "SELECT name, created_at FROM t ORDER BY created_at"
        ]
    );
    assert!(e.template.variants.iter().all(|v| v.binds.is_empty()));
}

#[test]
fn enum_value_sites_are_bound() {
    let e = compile(
        "  - field-name: status\n    required: true\n    validators: [{type: enum, allowedValues: [open, closed]}]\n",
        "SELECT * FROM t WHERE status = '{{ params.status }}'",
    );
    assert_eq!(e.template.texts.len(), 1);
    assert_eq!(e.template.texts[0].sql, "SELECT * FROM t WHERE status = ?");
}

#[test]
fn connection_properties_are_escaped_literals_and_env_is_bound() {
    let e = compile(
        "",
        "SELECT * FROM read_parquet('{{{ conn.path }}}') WHERE owner = {{ conn.owner }} AND k = '{{ env.FLAPI_KEY }}'",
    );
    assert_eq!(
        e.template.texts[0].sql,
        "SELECT * FROM read_parquet('data/x.parquet') WHERE owner = 'O''Brien' AND k = ?"
    );
    assert_eq!(
        e.template.variants[0].binds,
        [BindSource::Env("FLAPI_KEY".into())]
    );
}

#[test]
fn unquoted_value_sites_are_bound() {
    let e = compile(
        "  - field-name: id\n    required: true\n    validators: [{type: int}]\n",
        "SELECT {{ params.id }} AS echo FROM t WHERE id = {{params.id}} LIMIT {{ params.id }}",
    );
    assert_eq!(
        e.template.texts[0].sql,
        "SELECT ? AS echo FROM t WHERE id = ? LIMIT ?"
    );
}

#[test]
fn pagination_wraps_the_text_at_build_time() {
    let dir = common::TempDir::new();
    std::fs::create_dir_all(dir.path().join("sqls")).expect("mkdir");
    std::fs::write(dir.path().join("flapi.yaml"), "project-name: t\n").expect("write");
    std::fs::write(
        dir.path().join("sqls/e.yaml"),
        "url-path: /e\ntemplate-source: e.sql\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("sqls/e.sql"), "SELECT 1 AS x;\n").expect("write");
    let (project, _) = load(dir.path()).expect("loads");
    let text = &project.endpoints[0].template.texts[0];
    assert_eq!(text.sql, "SELECT 1 AS x");
    assert_eq!(
        text.paged_sql.as_deref(),
        Some("SELECT * FROM (\nSELECT 1 AS x\n) AS flapi_page LIMIT ? OFFSET ?")
    );
    assert_eq!(
        text.count_sql.as_deref(),
        Some("SELECT count(*) AS total_count FROM (\nSELECT 1 AS x\n) AS flapi_page")
    );
}

#[test]
fn standalone_section_lines_leave_no_blank_lines() {
    let e = compile(
        "  - field-name: a\n    validators: [{type: int}]\n",
        "SELECT 1 AS x\nWHERE true\n  {{#params.a}}\n  AND a = {{ params.a }}\n  {{/params.a}}\n{{! a comment }}\nORDER BY 1",
    );
    let texts: Vec<&str> = e.template.texts.iter().map(|t| t.sql.as_str()).collect();
    assert_eq!(
        texts,
        [
            "SELECT 1 AS x\nWHERE true\nORDER BY 1",
            "SELECT 1 AS x\nWHERE true\n  AND a = ?\nORDER BY 1"
        ]
    );
}
