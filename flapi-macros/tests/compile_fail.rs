//! The build is the security review: each case expands `project!` on a
//! fixture with one kind of finding (one per description-hygiene rule
//! family, and a literal secret) and must fail to compile with exactly the
//! diagnostics in its `.stderr` snapshot: file:line:col, key path, rule.
//! Refresh the snapshots with `TRYBUILD=overwrite`.

#[test]
fn unsafe_projects_fail_to_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
