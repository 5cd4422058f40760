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
