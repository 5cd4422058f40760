// Description hygiene: the build fails at the finding (SPEC §11).
flapi_macros::project!("../../codegen/tests/fixtures/hygiene/names");

fn main() {}
