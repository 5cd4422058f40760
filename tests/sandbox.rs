//! The DuckDB sandbox (SPEC §12) as the last line of defence: SQL that got
//! past the build and start-up checks still cannot read files outside the
//! data folders, install or load extensions, attach databases or change
//! settings, and the server keeps serving.

mod common;

use axum::http::StatusCode;
use common::{encode, fixture_options, get, start};
use flapi::db::QueryError;

mod fixture {
    flapi_macros::project!("tests/fixtures/sandbox");
}

mod startup_fixture {
    flapi_macros::project!("tests/fixtures/sandbox_startup");
}

#[tokio::test]
async fn reading_outside_the_data_folders_is_a_generic_500() {
    let app = start(&fixture::PROJECT);
    let inside = format!(
        "{}/tests/fixtures/sandbox/data/allowed.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let reply = get(&app.router, &format!("/read?path={}", encode(&inside))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()[0]["lines"], 1);
    let reply = get(&app.router, "/read?path=data/allowed.csv").await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "relative data path: {}",
        reply.text()
    );

    for outside in [
        "/etc/passwd",
        "/etc/hostname",
        "data/../../../../etc/passwd",
        "../sandbox_startup/flapi.yaml",
        &format!("{}/Cargo.toml", env!("CARGO_MANIFEST_DIR")),
    ] {
        let reply = get(&app.router, &format!("/read?path={}", encode(outside))).await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{outside}: {}",
            reply.text()
        );
        let body = reply.json();
        assert_eq!(body["error"], "internal error");
        assert_eq!(body["request_id"].as_str(), reply.header("x-request-id"));
        let text = reply.text();
        for leak in [
            "Permission",
            "passwd",
            "hostname",
            "read_text",
            "SELECT",
            "duckdb",
            "Cargo",
        ] {
            assert!(
                !text.contains(leak),
                "{outside}: response leaks `{leak}`: {text}"
            );
        }
        // The server keeps serving.
        let ok = get(&app.router, "/ok").await;
        assert_eq!(ok.json()[0]["answer"], 42);
    }
}

#[tokio::test]
async fn install_attach_and_set_are_refused_by_duckdb() {
    let app = start(&fixture::PROJECT);
    // Every pooled connection carries the sandbox, not only the first.
    for _ in 0..4 {
        let outcomes = app
            .db
            .with_connection(|c, _| {
                let attempts = [
                    "INSTALL httpfs",
                    "LOAD httpfs",
                    "ATTACH '/tmp/flapi-sandbox-escape.db' AS escape",
                    "SET enable_external_access = true",
                    "SET lock_configuration = false",
                    "SET allowed_directories = ['/']",
                    "SET threads = 1",
                    "COPY (SELECT 1) TO '/tmp/flapi-sandbox-escape.csv'",
                ];
                Ok(attempts
                    .iter()
                    .map(|sql| (*sql, c.execute_batch(sql).is_err()))
                    .collect::<Vec<_>>())
            })
            .await
            .expect("connection");
        for (sql, refused) in outcomes {
            assert!(refused, "DuckDB accepted `{sql}` inside the sandbox");
        }
    }
    let settings = app
        .db
        .with_connection(|c, _| {
            c.query_row(
                "SELECT current_setting('enable_external_access'), current_setting('lock_configuration'), current_setting('autoload_known_extensions')",
                [],
                |r| Ok((r.get::<_, bool>(0)?, r.get::<_, bool>(1)?, r.get::<_, bool>(2)?)),
            )
            .map_err(|e| QueryError::Failed(e.to_string()))
        })
        .await
        .expect("settings");
    assert_eq!(settings, (false, true, false));
    assert!(!std::path::Path::new("/tmp/flapi-sandbox-escape.csv").exists());
}

#[test]
fn opt_out_sql_that_is_not_a_query_stops_start_up() {
    let options = fixture_options(&startup_fixture::PROJECT);
    let error = match flapi::app(&startup_fixture::PROJECT, &options) {
        Ok(_) => panic!("a project with `INSTALL httpfs` as endpoint SQL must not start"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("endpoint `install`"), "{error}");
    assert!(
        error.contains("DuckDB does not read it as one SELECT"),
        "{error}"
    );
}
