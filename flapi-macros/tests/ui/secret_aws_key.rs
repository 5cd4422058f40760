// A literal AWS key in a connection fails the build (SPEC §11).
flapi_macros::project!("../../codegen/tests/fixtures/secrets/aws-key");

fn main() {}
