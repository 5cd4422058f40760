//! A dry run names environment values and never shows them (SPEC §9),
//! in the bound values and in DuckDB's plan: the plan is made with each
//! environment value replaced by its name. The same request without
//! `_dryRun` uses the real value, so the test would see it if it leaked.

mod common;

use axum::http::StatusCode;

mod fixture {
    flapi_macros::project!("tests/fixtures/dry_run_env");
}

/// A planted value: the tenant the template filters on.
const TENANT: &str = "tenant-even";

fn start() -> flapi::App {
    let mut options = common::fixture_options(&fixture::PROJECT);
    options
        .env_overrides
        .push(("FLAPI_TEST_TENANT".into(), TENANT.into()));
    common::start_with(&fixture::PROJECT, options)
}

#[tokio::test]
async fn the_dry_run_shows_no_environment_value() {
    let app = start();
    // The real run uses the value: only even ids.
    let served = common::get(&app.router, "/accounts").await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
    let ids: Vec<i64> = served
        .json()
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, vec![2, 4, 6, 8, 10]);
    assert!(served.text().contains(TENANT));

    let dry = common::get(&app.router, "/accounts?_dryRun=true").await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text());
    let body = dry.text();
    let report = dry.json();
    // DuckDB planned it (with the names in place of the values, so the
    // optimizer may fold the filter away).
    assert!(
        report["plan"]
            .as_str()
            .is_some_and(|p| p.contains("Order By")),
        "the plan is there: {body}"
    );
    assert!(
        !body.contains(TENANT),
        "the dry run shows the value: {body}"
    );
    assert!(
        !body
            .to_ascii_uppercase()
            .contains(&TENANT.to_ascii_uppercase()),
        "the dry run shows the value in another case: {body}"
    );
    // Both environment binds are named.
    let named = report["binds"]
        .as_array()
        .expect("binds")
        .iter()
        .filter(|b| b["env"] == "FLAPI_TEST_TENANT")
        .count();
    assert_eq!(named, 2, "{body}");
}
