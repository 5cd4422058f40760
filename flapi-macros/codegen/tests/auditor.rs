//! The config auditor (SPEC §13) through the `flapi-validate` binary: each
//! fixture under `fixtures/auditor/` holds one insecure-but-allowed
//! setting and, in `expected.txt`, the warnings it must print. The build
//! passes with them; `--deny-warnings` turns each into a failure;
//! `--format json` reports the same diagnostics as data. `quiet` has none.

use std::path::Path;
use std::process::Command;

mod common;

/// Runs `flapi-validate ARGS .` in `dir`: exit code, stdout, stderr.
fn validate(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flapi-validate"))
        .args(args)
        .arg(".")
        .current_dir(dir)
        .output()
        .expect("run flapi-validate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_insecure_setting_warns_and_fails_only_with_deny_warnings() {
    let dirs = common::fixture_dirs(
        "auditor",
        &[
            "auth-without-audit",
            "dry-run-public",
            "missing-roles",
            "open-bind",
            "pbkdf2",
            "shadow",
            "wildcard-cors",
            "quiet",
        ],
    );
    for dir in dirs {
        let name = dir.display().to_string();
        let expected = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
        let warnings = expected
            .lines()
            .filter(|l| l.contains(": warning at `"))
            .count();
        assert_eq!(warnings == 0, name.ends_with("quiet"), "{name}");

        let (code, stdout, stderr) = validate(&dir, &[]);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(stderr, expected, "{name}");
        assert_eq!(
            stdout.trim(),
            format!(".: ok ({warnings} warning(s))"),
            "{name}"
        );

        let (code, _, stderr) = validate(&dir, &["--deny-warnings"]);
        assert_eq!(code, i32::from(warnings > 0), "{name}: {stderr}");

        let (code, stdout, _) = validate(&dir, &["--format", "json", "--deny-warnings"]);
        assert_eq!(code, i32::from(warnings > 0), "{name}");
        let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
        assert_eq!(report["ok"], warnings == 0, "{name}");
        assert_eq!(report["errors"], 0, "{name}");
        assert_eq!(report["warnings"], warnings, "{name}");
        let items = report["diagnostics"].as_array().expect("diagnostics");
        for (item, line) in items
            .iter()
            .zip(expected.lines().filter(|l| l.contains(": warning at `")))
        {
            let at = format!(
                "{}:{}:{}: warning at `{}`: {}",
                item["file"].as_str().unwrap_or(""),
                item["line"],
                item["column"],
                item["key_path"].as_str().unwrap_or(""),
                item["message"].as_str().unwrap_or("")
            );
            assert_eq!(at, line, "{name}");
            assert_eq!(item["severity"], "warning");
            assert!(
                item["help"].is_string(),
                "{name}: every warning says what to do"
            );
        }
    }
}

#[test]
fn json_reports_errors_and_bad_usage_exits_2() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redaction/qualified");
    let (code, stdout, _) = validate(&dir, &["--format", "json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"], 1);
    let first = &report["diagnostics"][0];
    assert_eq!(
        (
            first["file"].as_str(),
            first["line"].as_u64(),
            first["column"].as_u64()
        ),
        (Some("sqls/people.sql"), Some(1), Some(27))
    );
    assert_eq!(first["severity"], "error");

    let (code, _, stderr) = validate(&dir, &["--format", "yaml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("`--format` takes `human` or `json`"),
        "{stderr}"
    );
}
