//! Literal secrets in connections and SQL templates fail the build at the secret's own
//! position, without repeating it (SPEC §11). Each fixture under
//! `fixtures/secrets/` plants one kind of secret and holds the diagnostic
//! it must produce in `expected.txt`; `clean` (an environment reference,
//! and words like "password" in data) must build.

mod common;

const PLANTED: &[&str] = &[
    "RSA PRIVATE KEY",
    "AKIAIOSFODNN7EXAMPLE",
    "hunter2",
    "c2VjcmV0LXZhbHVl",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
];

#[test]
fn each_planted_secret_fails_the_build_where_it_is_written() {
    common::assert_fixtures_match_expected(
        "secrets",
        &[
            "private-key",
            "aws-key",
            "connection-password",
            "sql-secret-option",
            "password-property",
            "token-in-property",
            "url-credentials",
            "template-token",
            "clean",
        ],
    );
}

#[test]
fn no_diagnostic_repeats_the_secret() {
    for dir in common::fixture_dirs("secrets", &[]) {
        let text = common::rendered(&dir);
        for secret in PLANTED {
            assert!(
                !text.contains(secret),
                "{}: `{secret}` in {text}",
                dir.display()
            );
        }
    }
}

/// Secret option names of DuckDB's secret providers and the connection
/// string keys of common drivers, written as literals in `init`, fail the
/// build; references to the environment and ordinary words build.
#[test]
fn secret_provider_options_and_connection_string_keys_are_found() {
    let build = |init: &str| {
        let config = format!("project-name: f\nconnections:\n  main:\n    init: |\n      {init}\n");
        let dir = common::project(&[
            ("flapi.yaml", config.as_str()),
            ("sqls/a.yaml", "url-path: /a\ntemplate-source: a.sql\n"),
            ("sqls/a.sql", "SELECT 1 AS one"),
        ]);
        match flapi_codegen::load(dir.path()) {
            Ok(_) => Vec::new(),
            Err(d) => d
                .into_iter()
                .filter(|d| d.severity == flapi_codegen::Severity::Error)
                .collect(),
        }
    };
    for init in [
        "ATTACH 'host=db user=app PASSWD=Zq8rT2mLx' AS pg (TYPE postgres);",
        "ATTACH 'host=db user=app PWD=Zq8rT2mLx' AS pg (TYPE postgres);",
        "CREATE SECRET s (TYPE azure, CONNECTION_STRING 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zq8rT2mLx0a9');",
        "SET azure_storage_connection_string = 'AccountName=acct;AccountKey=Zq8rT2mLx0a9';",
        "SELECT * FROM read_parquet('https://acct.blob.core.windows.net/c/x.parquet?sv=2022-11-02&sig=Zq8rT2mLx0a9Bc7dE5fG3hI1');",
        "CREATE SECRET s (TYPE azure, PROVIDER service_principal, TENANT_ID 't', CLIENT_ID 'c', CLIENT_SECRET 'Zq8rT2mLx0a9');",
        "CREATE SECRET s (TYPE s3, KEY_ID 'Zq8rT2mLx0a9', SECRET_ENV 'x');",
        "CREATE SECRET s (TYPE http, BEARER_TOKEN 'Zq8rT2mLx0a9');",
        "CREATE SECRET s (TYPE huggingface, TOKEN 'hf_Zq8rT2mLx0a9');",
        "ATTACH 'Driver={x};Server=db;Uid=app;client_secret=Zq8rT2mLx0a9' AS x;",
    ] {
        let errors = build(init);
        assert!(!errors.is_empty(), "not found: {init}");
        for e in &errors {
            assert!(!e.to_string().contains("Zq8rT2mLx"), "{e}");
        }
    }
    for init in [
        "CREATE TABLE t AS SELECT 'password' AS word, 'token' AS kind;",
        "CREATE SECRET s (TYPE s3, PROVIDER credential_chain);",
        "CREATE TABLE t AS SELECT 1 AS key_id;",
    ] {
        let errors = build(init);
        assert!(errors.is_empty(), "{init}: {errors:#?}");
    }
}
