//! A query past its deadline is interrupted inside DuckDB and answered with
//! 504, while other requests keep being served and the interrupted
//! connection goes back to work.

mod common;

use std::time::Instant;

use axum::http::StatusCode;
use common::{get, start};

mod fixture {
    flapi_macros::project!("tests/fixtures/slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_query_is_interrupted_others_are_served() {
    let app = start(&fixture::PROJECT);
    let router = app.router.clone();
    let slow = tokio::spawn(async move {
        let reply = get(&router, "/slow").await;
        (reply, Instant::now())
    });
    // While the slow query holds one connection, fast ones still answer.
    let mut fast_done = Instant::now();
    for _ in 0..20 {
        let reply = get(&app.router, "/fast").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()[0]["one"], 1);
        fast_done = Instant::now();
    }
    let (reply, slow_done) = slow.await.expect("slow request task");
    assert_eq!(
        reply.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        reply.text()
    );
    let body = reply.json();
    assert_eq!(body["error"], "the query took too long and was stopped");
    assert!(
        !reply.text().contains("INTERRUPT"),
        "DuckDB text leaked: {}",
        reply.text()
    );
    assert!(
        fast_done < slow_done,
        "fast requests should finish while the slow one runs"
    );

    // Every pooled connection, including the interrupted one, works again.
    for _ in 0..8 {
        assert_eq!(get(&app.router, "/fast").await.status, StatusCode::OK);
    }
}
