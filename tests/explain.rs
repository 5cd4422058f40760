//! `db::explain`: DuckDB's plan for the exact text and binds a request
//! would run, and the query itself does not run (groundwork for the dry
//! run of SPEC §9).

mod common;

use flapi::db::encode::Format;
use flapi::db::{QuerySpec, explain};
use flapi::runtime::{BindValue, RequestInput};

mod fixture {
    flapi_macros::project!("tests/fixtures/mcp");
}

#[tokio::test]
async fn explain_shows_the_plan_with_binds_and_runs_nothing() {
    let app = common::start(&fixture::PROJECT);
    let find = |name: &str| {
        fixture::PROJECT
            .endpoints
            .iter()
            .find(|e| e.tool.as_ref().is_some_and(|t| t.name == name))
            .expect("tool")
    };
    // Binds reach the plan: `numbers` with n bound.
    let numbers = find("numbers");
    let input = RequestInput {
        query: vec![("n".into(), "7".into())],
        ..Default::default()
    };
    let plan = (numbers.plan)(&input).expect("valid arguments");
    assert_eq!(plan.binds, vec![BindValue::Int(7)]);
    let text = app
        .db
        .with_connection(move |connection, env| {
            let spec = QuerySpec::new(numbers, &plan, None, Format::Json);
            explain(connection, env, &spec)
        })
        .await
        .expect("explain");
    assert!(text.to_uppercase().contains("RANGE"), "{text}");
    assert!(text.to_uppercase().contains("ORDER"), "{text}");

    // `slow` runs for minutes when executed (the fixture's deadline is ten
    // minutes): explaining it returns at once, so it was not run.
    let endpoint = find("slow");
    let plan = (endpoint.plan)(&RequestInput::default()).expect("no arguments");
    let stats = app.db.stats();
    let before = stats.borrow().finished;
    let text = app
        .db
        .with_connection(move |connection, env| {
            let spec = QuerySpec::new(endpoint, &plan, None, Format::Json);
            explain(connection, env, &spec)
        })
        .await
        .expect("explain");
    assert!(text.to_uppercase().contains("RANGE"), "{text}");
    assert!(text.to_uppercase().contains("AGGREGATE"), "{text}");
    assert_eq!(stats.borrow().finished, before + 1);
    assert_eq!(stats.borrow().timed_out, 0);
}
