//! Identity and RBAC mistakes fail the build at the YAML position that
//! causes them (SPEC §7, §13): unknown roles, passwords that are not
//! acceptable hashes, literal secrets, out-of-bounds argon2 cost, and
//! templates that read a caller nobody has to be.

use std::path::Path;

mod common;

use flapi_codegen::{Diagnostic, Severity, load};

const CONFIG: &str = "project-name: fixture\nconnections:\n  main: {}\n";
const AUTH_ON: &str = "project-name: fixture\nconnections:\n  main: {}\nauth:\n  enabled: true\n";
/// `AUTH_ON` with the audit log on, so the config auditor has nothing to
/// say about it and a test sees only the warning it is about.
const AUTH_AUDITED: &str = "project-name: fixture\nconnections:\n  main: {}\nauth:\n  enabled: true\naudit:\n  path: audit.jsonl\n";
const ROLES: &str =
    "roles:\n  viewer:\n    description: Reads.\n  analyst:\n    inherits: [viewer]\n";
const ARGON2: &str = "$argon2id$v=19$m=19456,t=2,p=1$sCPV9MMaO+FoArAOkRx87g$+wlhmaGaENJprV1dNSkTinzhwWE1dEIZMHa8qnZdJ1E";

/// Every diagnostic of the project, warnings included, whether or not it
/// builds.
fn diagnose(files: &[(&str, &str)]) -> Vec<Diagnostic> {
    let dir = common::project(files);
    match load(dir.path()) {
        Ok((_, warnings)) => warnings,
        Err(diagnostics) => diagnostics,
    }
}

fn only(diagnostics: &[Diagnostic], severity: Severity) -> Vec<&Diagnostic> {
    diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .collect()
}

/// Exactly one diagnostic of `severity`, at `file:line:col`, whose message
/// contains `message`.
fn assert_one(
    diagnostics: &[Diagnostic],
    severity: Severity,
    at: (&str, u64, u64),
    message: &str,
) -> Diagnostic {
    let found = only(diagnostics, severity);
    assert_eq!(
        found.len(),
        1,
        "expected one {severity:?}, got: {diagnostics:#?}"
    );
    let d = found[0].clone();
    assert_eq!(d.location.file, Path::new(at.0), "{d}");
    assert_eq!((d.location.line, d.location.column), (at.1, at.2), "{d}");
    assert!(
        d.message.contains(message),
        "message `{}` lacks `{message}`",
        d.message
    );
    d
}

fn endpoint(extra: &str) -> String {
    format!("url-path: /items\ntemplate-source: a.sql\nconnection: [main]\n{extra}")
}

fn users(password: &str) -> String {
    format!("{ROLES}users:\n  - username: alice\n    password: '{password}'\n    roles: [viewer]\n")
}

#[test]
fn unknown_role_with_a_suggestion() {
    let d = diagnose(&[
        ("flapi.yaml", AUTH_ON),
        ("roles.yaml", &users(ARGON2)),
        ("sqls/a.yaml", &endpoint("allowed-roles: [analist]\n")),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    let e = assert_one(
        &d,
        Severity::Error,
        ("sqls/a.yaml", 4, 17),
        "unknown role `analist`",
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `analyst`?"));
}

#[test]
fn unknown_roles_everywhere_a_role_is_named() {
    let tool = "mcp-tool:\n  name: items\n  description: Items.\n  allowed-roles: [nobody]\n";
    let roles = format!(
        "{ROLES}  admin:\n    inherits: [superuser]\nusers:\n  - username: alice\n    password: '{ARGON2}'\n    roles: [root]\n"
    );
    let d = diagnose(&[
        ("flapi.yaml", AUTH_ON),
        ("roles.yaml", &roles),
        ("sqls/a.yaml", &endpoint(tool)),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    let errors: Vec<(String, u64, String)> = only(&d, Severity::Error)
        .iter()
        .map(|e| {
            (
                e.location.file.display().to_string(),
                e.location.line,
                e.message.clone(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (
                "roles.yaml".to_string(),
                7,
                "unknown role `superuser`".to_string()
            ),
            (
                "roles.yaml".to_string(),
                11,
                "unknown role `root`".to_string()
            ),
            (
                "sqls/a.yaml".to_string(),
                7,
                "unknown role `nobody`".to_string()
            ),
        ]
    );
}

#[test]
fn roles_are_checked_even_with_auth_off() {
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        ("roles.yaml", ROLES),
        ("sqls/a.yaml", &endpoint("allowed-roles: [viewr]\n")),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    assert_one(
        &d,
        Severity::Error,
        ("sqls/a.yaml", 4, 17),
        "unknown role `viewr`",
    );
}

#[test]
fn plaintext_md5_and_bcrypt_passwords_fail_with_the_fix() {
    for (password, message) in [
        ("hunter2", "a plaintext password"),
        ("5f4dcc3b5aa765d61d8327deb882cf99", "MD5"),
        (
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "bcrypt",
        ),
        (
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "argon2i and argon2d",
        ),
    ] {
        let d = diagnose(&[
            ("flapi.yaml", AUTH_ON),
            ("roles.yaml", &users(password)),
            ("sqls/a.yaml", &endpoint("allowed-roles: [viewer]\n")),
            ("sqls/a.sql", "SELECT 1"),
        ]);
        let e = assert_one(&d, Severity::Error, ("roles.yaml", 8, 15), message);
        assert_eq!(e.key_path, "users[0].password");
        assert!(
            e.help
                .as_deref()
                .is_some_and(|h| h.contains("flapi hash-password")),
            "{e}"
        );
        // The value itself is never repeated in the diagnostic.
        assert!(!e.to_string().contains(password), "{e}");
    }
}

#[test]
fn argon2_cost_out_of_bounds() {
    for (params, message) in [
        ("m=4096,t=1,p=1", "below the minimum cost"),
        ("m=9216,t=2,p=1", "below the minimum cost"),
        ("m=1048576,t=2,p=1", "out of bounds"),
        ("m=19456,t=50,p=1", "out of bounds"),
        ("m=19456,t=2,p=64", "out of bounds"),
    ] {
        let hash = ARGON2.replace("m=19456,t=2,p=1", params);
        let d = diagnose(&[
            ("flapi.yaml", AUTH_ON),
            ("roles.yaml", &users(&hash)),
            ("sqls/a.yaml", &endpoint("allowed-roles: [viewer]\n")),
            ("sqls/a.sql", "SELECT 1"),
        ]);
        assert_one(&d, Severity::Error, ("roles.yaml", 8, 15), message);
    }
}

#[test]
fn pbkdf2_is_accepted_with_a_warning() {
    let hash =
        "$pbkdf2-sha256$100000$ZnJhbmstc2FsdC0xNmJ5dA$kRKIy54xpdeQHTu9zRMM2Eg63rIRzA8Xi2J7muBCLV0";
    let d = diagnose(&[
        ("flapi.yaml", AUTH_AUDITED),
        ("roles.yaml", &users(hash)),
        ("sqls/a.yaml", &endpoint("allowed-roles: [viewer]\n")),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    assert!(only(&d, Severity::Error).is_empty(), "{d:#?}");
    assert_one(
        &d,
        Severity::Warning,
        ("roles.yaml", 8, 15),
        "pbkdf2-sha256 hash",
    );
}

#[test]
fn literal_jwt_secrets_fail() {
    for (config, at, path) in [
        (
            "project-name: f\nconnections: {main: {}}\nauth:\n  enabled: true\n  jwt-secret: supersecretvalue\n  jwt-audience: api\n",
            ("flapi.yaml", 5, 15),
            "auth.jwt-secret",
        ),
        (
            "project-name: f\nconnections: {main: {}}\nauth:\n  enabled: true\n  jwt:\n    secret: \"supersecretvalue\"\n    audience: api\n",
            ("flapi.yaml", 6, 13),
            "auth.jwt.secret",
        ),
        (
            "project-name: f\nconnections: {main: {}}\nmcp:\n  auth:\n    enabled: true\n    jwt-secret: supersecretvalue\n    jwt-audience: api\n",
            ("flapi.yaml", 6, 17),
            "mcp.auth.jwt-secret",
        ),
    ] {
        let d = diagnose(&[
            ("flapi.yaml", config),
            ("roles.yaml", ROLES),
            ("sqls/a.yaml", &endpoint("allowed-roles: [viewer]\n")),
            ("sqls/a.sql", "SELECT 1"),
        ]);
        let e = assert_one(&d, Severity::Error, at, "a literal secret");
        assert_eq!(e.key_path, path);
        assert!(!e.to_string().contains("supersecretvalue"), "{e}");
    }
    // The reference forms build.
    for reference in [
        "'${JWT_SECRET}'",
        "'{{env.JWT_SECRET}}'",
        "'{{ env.JWT_SECRET }}'",
    ] {
        let config = format!(
            "project-name: f\nconnections: {{main: {{}}}}\nauth:\n  enabled: true\n  jwt-secret: {reference}\n  jwt-audience: api\n"
        );
        let d = diagnose(&[
            ("flapi.yaml", &config),
            ("roles.yaml", ROLES),
            ("sqls/a.yaml", &endpoint("allowed-roles: [viewer]\n")),
            ("sqls/a.sql", "SELECT 1"),
        ]);
        assert!(only(&d, Severity::Error).is_empty(), "{reference}: {d:#?}");
    }
}

#[test]
fn an_item_without_allowed_roles_is_denied_with_a_warning() {
    let d = diagnose(&[
        ("flapi.yaml", AUTH_AUDITED),
        ("roles.yaml", &users(ARGON2)),
        ("sqls/a.yaml", &endpoint("")),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    assert_one(
        &d,
        Severity::Warning,
        ("sqls/a.yaml", 1, 11),
        "has no `allowed-roles`",
    );
}

#[test]
fn a_template_reading_the_caller_needs_authentication() {
    let jwt = "project-name: f\nconnections:\n  main: {}\nauth:\n  enabled: false\n  jwt:\n    secret: '${S}'\n    audience: api\n    context-claims: [tenant]\n";
    let d = diagnose(&[
        ("flapi.yaml", jwt),
        ("roles.yaml", ROLES),
        ("sqls/a.yaml", &endpoint("")),
        ("sqls/a.sql", "SELECT 1 WHERE {{ auth.sub }} = 'x'"),
    ]);
    assert_one(
        &d,
        Severity::Error,
        ("sqls/a.yaml", 2, 18),
        "can be called without authentication",
    );

    let d = diagnose(&[
        ("flapi.yaml", jwt),
        ("roles.yaml", ROLES),
        (
            "sqls/a.yaml",
            &endpoint("auth:\n  enabled: true\n  roles: [viewer]\n"),
        ),
        ("sqls/a.sql", "SELECT {{ auth.claims.tenat }} AS t"),
    ]);
    let e = assert_one(
        &d,
        Severity::Error,
        ("sqls/a.sql", 1, 8),
        "claim `tenat` is not in",
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `tenant`?"));

    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        ("sqls/a.yaml", &endpoint("")),
        ("sqls/a.sql", "SELECT {{ auth.sub }} AS me"),
    ]);
    assert_one(
        &d,
        Severity::Error,
        ("sqls/a.sql", 1, 8),
        "the project has no authentication",
    );
}

#[test]
fn other_identity_mistakes() {
    // Inheritance cycle.
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        (
            "roles.yaml",
            "roles:\n  a:\n    inherits: [b]\n  b:\n    inherits: [a]\n",
        ),
    ]);
    let cycle: Vec<&Diagnostic> = only(&d, Severity::Error)
        .into_iter()
        .filter(|e| e.message.contains("inherits from itself"))
        .collect();
    assert_eq!(cycle.len(), 2, "{d:#?}");

    // flAPI's per-method exemption: every MCP request is authenticated.
    let config = format!(
        "{CONFIG}mcp:\n  auth:\n    enabled: true\n    methods:\n      tools/list:\n        required: false\n"
    );
    let item = endpoint("allowed-roles: [viewer]\n");
    let d = diagnose(&[
        ("flapi.yaml", &config),
        ("roles.yaml", &users(ARGON2)),
        ("sqls/a.yaml", &item),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    assert_one(
        &d,
        Severity::Error,
        ("flapi.yaml", 9, 19),
        "cannot be exempted",
    );

    // Authentication on with nothing to check credentials against.
    let d = diagnose(&[
        ("flapi.yaml", AUTH_ON),
        ("roles.yaml", ROLES),
        ("sqls/a.yaml", &item),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    assert_one(
        &d,
        Severity::Error,
        ("flapi.yaml", 5, 3),
        "no users and no JWT settings",
    );

    // A field may not be named like the caller.
    let d = diagnose(&[
        ("flapi.yaml", CONFIG),
        ("sqls/a.yaml", &endpoint("request:\n  - field-name: auth\n")),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    assert_one(
        &d,
        Severity::Error,
        ("sqls/a.yaml", 5, 17),
        "reserved for the verified caller",
    );
}

#[test]
fn static_keys_must_be_public_pem_files() {
    let config = format!(
        "{CONFIG}auth:\n  enabled: true\n  jwt:\n    audience: api\n    keys:\n      - kid: k\n        alg: ES256\n        pem-file: keys/k.pem\n"
    );
    let item = endpoint("allowed-roles: [viewer]\n");
    let with_key = |pem: Option<&str>| {
        let mut files = vec![
            ("flapi.yaml", config.as_str()),
            ("roles.yaml", ROLES),
            ("sqls/a.yaml", item.as_str()),
            ("sqls/a.sql", "SELECT 1"),
        ];
        if let Some(pem) = pem {
            files.push(("keys/k.pem", pem));
        }
        diagnose(&files)
    };
    let public = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
    assert!(only(&with_key(Some(public)), Severity::Error).is_empty());
    let private = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEH\n-----END PRIVATE KEY-----\n";
    assert_one(
        &with_key(Some(private)),
        Severity::Error,
        ("flapi.yaml", 11, 19),
        "holds a private key",
    );
    assert_one(
        &with_key(None),
        Severity::Error,
        ("flapi.yaml", 11, 19),
        "does not exist",
    );
}

#[test]
fn bearer_tokens_need_an_audience_or_an_explicit_warned_opt_out() {
    let item = endpoint("allowed-roles: [viewer]\n");
    let with = |jwt: &str| {
        let config =
            format!("{AUTH_ON}  jwt:\n    secret: '${{S}}'\n{jwt}audit:\n  path: audit.jsonl\n");
        diagnose(&[
            ("flapi.yaml", config.as_str()),
            ("roles.yaml", ROLES),
            ("sqls/a.yaml", item.as_str()),
            ("sqls/a.sql", "SELECT 1"),
        ])
    };
    let d = with("");
    let e = assert_one(
        &d,
        Severity::Error,
        ("flapi.yaml", 7, 5),
        "need an audience",
    );
    assert_eq!(e.key_path, "auth.jwt.audience");
    assert!(only(&with("    audience: my-api\n"), Severity::Error).is_empty());
    let d = with("    allow-any-audience: true\n");
    assert!(only(&d, Severity::Error).is_empty(), "{d:#?}");
    assert_one(
        &d,
        Severity::Warning,
        ("flapi.yaml", 8, 25),
        "whatever their audience",
    );
    // flAPI's OIDC form: the client id is the audience.
    let oidc = format!(
        "{AUTH_ON}  oidc:\n    issuer-url: https://idp.example.com\n    client-id: my-api\naudit:\n  path: audit.jsonl\n"
    );
    let d = diagnose(&[
        ("flapi.yaml", oidc.as_str()),
        ("roles.yaml", ROLES),
        ("sqls/a.yaml", item.as_str()),
        ("sqls/a.sql", "SELECT 1"),
    ]);
    assert!(only(&d, Severity::Error).is_empty(), "{d:#?}");
}

#[test]
fn key_urls_are_checked_by_parsed_host() {
    let item = endpoint("allowed-roles: [viewer]\n");
    for (url, ok) in [
        ("https://idp.example.com", true),
        ("http://127.0.0.1:9000", true),
        ("http://localhost:9000/realms/x", true),
        ("http://[::1]:9000", true),
        ("http://localhost.evil.com", false),
        ("http://127.0.0.1.evil.com", false),
        ("http://idp.example.com", false),
        ("https://user:pw@idp.example.com", false),
        ("ftp://idp.example.com", false),
        ("not a url", false),
    ] {
        let config = format!(
            "{AUTH_ON}  jwt:\n    audience: api\n    oidc-issuer: '{url}'\naudit:\n  path: audit.jsonl\n"
        );
        let d = diagnose(&[
            ("flapi.yaml", config.as_str()),
            ("roles.yaml", ROLES),
            ("sqls/a.yaml", item.as_str()),
            ("sqls/a.sql", "SELECT 1"),
        ]);
        assert_eq!(only(&d, Severity::Error).is_empty(), ok, "{url}: {d:#?}");
    }
}
