//! No secret reaches a binary (SPEC §11, issue 6). The build environment
//! holds a canary (`FLAPI_PLANTED_SECRET`, set for every rustc and build
//! script by `.cargo/config.toml`) that the `planted` fixture reads as
//! its JWT secret and connection password; the fixture also carries a
//! token in a YAML comment and one in a `.env` file beside it. This test
//! binary, built from that fixture by `project!`, and the `flapi` binary,
//! built from the default project by `build.rs` with the same environment,
//! must contain none of them, while a string the fixture does compile in
//! is found (so the search itself works).

mod fixture {
    flapi_macros::project!("tests/fixtures/planted");
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn fixture_token(file: &str, prefix: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/planted")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("fixture file");
    let start = text.find(prefix).expect("the fixture plants a token");
    text[start..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn no_binary_holds_a_secret_from_the_build_environment_or_the_project() {
    let from_env = std::env::var("FLAPI_PLANTED_SECRET")
        .expect("`.cargo/config.toml` sets FLAPI_PLANTED_SECRET for builds and tests");
    let planted = [
        from_env,
        fixture_token("flapi.yaml", "canary-comment-"),
        fixture_token(".env", "canary-dotenv-"),
    ];
    let this_binary = std::fs::read(std::env::current_exe().expect("exe")).expect("read exe");
    let server = std::fs::read(env!("CARGO_BIN_EXE_flapi")).expect("read the flapi binary");
    // The search finds what the fixture does compile in.
    assert!(
        holds(&this_binary, "canary-control-embedded-6e1b"),
        "the endpoint description should be in the binary"
    );
    assert_eq!(std::hint::black_box(&fixture::PROJECT).name, "planted");
    for secret in &planted {
        assert!(
            secret.len() > 20,
            "canary `{secret}` too short to search for"
        );
        assert!(
            !holds(&this_binary, secret),
            "the test binary holds a planted secret"
        );
        assert!(
            !holds(&server, secret),
            "the flapi binary holds a planted secret"
        );
    }
}
