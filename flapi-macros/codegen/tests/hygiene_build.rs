//! Description hygiene through the whole build (SPEC §11): each fixture
//! under `fixtures/hygiene/` plants findings in one kind of model-visible
//! string (tool title and description, parameter, resource, prompt
//! template, server instructions and their file; `names`: a field name, an
//! enum value, a default, a pattern, a prompt argument name and value, the
//! project name and a SQL output alias) and holds the exact
//! diagnostics in `expected.txt`: file, line and column of the finding
//! (inside block scalars, its own line), key path and rule. `allowed`
//! keeps a finding with a reason (printed as a note; `names-allowed` keeps
//! one of each string kind and of the newer rules) and flags a stale
//! entry; `allow-errors` shows what an entry must have; `clean` builds.

mod common;

#[test]
fn each_hygiene_fixture_reports_exactly_its_expected_diagnostics() {
    common::assert_fixtures_match_expected(
        "hygiene",
        &[
            "invisible",
            "lookalikes",
            "override-split",
            "markup",
            "exfiltration",
            "prompt",
            "tool-reference",
            "encoded-long",
            "instructions-file",
            "names",
            "names-allowed",
            "allowed",
            "allow-errors",
            "clean",
        ],
    );
}

#[test]
fn an_allowed_finding_is_printed_with_its_reason() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hygiene/allowed");
    let (_, diagnostics) = flapi_codegen::load(&dir).expect("an allowed finding builds");
    let note = diagnostics
        .iter()
        .find(|d| d.severity == flapi_codegen::Severity::Note)
        .expect("the active allowance is printed");
    assert!(note.message.contains("rule `exfiltration`"), "{note}");
    assert!(
        note.help
            .as_deref()
            .unwrap_or("")
            .contains("The status page is ours"),
        "{note}"
    );
}
