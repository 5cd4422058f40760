//! Audit log, dry run, shadow mode and response shaping (SPEC §8–§10) on
//! the `tests/fixtures/policy` project: REST through the router, MCP
//! through `rmcp`'s client on a real socket, the audit file read back and
//! checked with `flapi audit verify`.

mod common;

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use flapi::App;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

use common::{Reply, basic, mcp_client, send};

mod fixture {
    flapi_macros::project!("tests/fixtures/policy");
}

/// A temporary folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("random");
        let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("flapi-{name}-{suffix}"));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(audit_file: &Path) -> App {
    let mut options = common::fixture_options(&fixture::PROJECT);
    options.audit_file = Some(audit_file.to_path_buf());
    common::start_with(&fixture::PROJECT, options)
}

async fn get(app: &App, uri: &str, user: Option<&str>, request_id: Option<&str>) -> Reply {
    let mut request = Request::get(uri);
    if let Some(user) = user {
        request = request.header("authorization", basic(user));
    }
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    send(&app.router, request.body(Body::empty()).expect("request")).await
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("audit file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// How many times `/counted` really ran, read from DuckDB itself.
async fn executions(app: &App) -> i64 {
    app.db
        .with_connection(|connection, _| {
            connection
                .query_row(
                    "SELECT coalesce(last_value, 0) FROM duckdb_sequences() WHERE sequence_name = 'executed'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(|e| flapi::db::QueryError::Failed(e.to_string()))
        })
        .await
        .expect("sequence readable")
}

fn arguments(map: Value) -> serde_json::Map<String, Value> {
    match map {
        Value::Object(m) => m,
        _ => panic!("arguments must be an object"),
    }
}

fn verify(path: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flapi"))
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .expect("run flapi audit verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A JWT-shaped value, an API key and two passwords that must never reach
/// the audit file.
const PLANTED_JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLXBsYW50ZWQ";
const PLANTED_KEY: &str = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
const PLANTED_NOTE: &str = "hunter2-note-31337";
const PLANTED_PIN: &str = "pin-9fa3c1e7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_a_mixed_sequence_exactly_and_keeps_no_secret() {
    let scratch = Scratch::new("audit-seq");
    let log = scratch.path("audit.jsonl");
    let app = start(&log);
    let url = common::listen(app.router.clone()).await;

    // 1. Allowed REST call; the JWT-shaped `reason` is caught by its value, the
    //    note by its configured name, the pin by `sensitive: true`.
    let uri = format!("/people?reason={PLANTED_JWT}&note={PLANTED_NOTE}&pin={PLANTED_PIN}");
    let r = get(&app, &uri, Some("alice"), Some("seq-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-request-id"), Some("seq-1"));
    // 2. Denied REST call.
    let r = get(&app, "/ssn-report", Some("alice"), Some("seq-2")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // 3. Validation failure.
    let r = get(&app, "/people?min_id=zero", Some("alice"), Some("seq-3")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // 4. MCP: initialize, list, an allowed call with an API key in an
    //    argument, a denied call.
    let client = mcp_client(&url, Some(&basic("alice")))
        .await
        .expect("alice connects");
    let tools = client.list_all_tools().await.expect("tools/list");
    let call = client
        .call_tool(
            CallToolRequestParams::new("people")
                .with_arguments(arguments(json!({"reason": PLANTED_KEY, "min_id": 1}))),
        )
        .await
        .expect("tools/call people");
    assert_ne!(call.is_error, Some(true));
    // Denied: answered like an unknown tool, recorded as a denial.
    let denied = client
        .call_tool(CallToolRequestParams::new("ssn_report"))
        .await;
    assert!(denied.is_err(), "{denied:?}");
    client.cancel().await.expect("close");
    // 5. Dry run.
    let r = get(&app, "/counted?_dryRun=true", Some("bob"), Some("seq-4")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // 6. An invalid X-Request-Id is replaced, and the new one recorded.
    let r = get(
        &app,
        "/people?min_id=49",
        Some("alice"),
        Some("not a valid id"),
    )
    .await;
    let replaced = r.header("x-request-id").expect("request id").to_string();
    assert_ne!(replaced, "not a valid id");
    assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");
    // 7. Rate limits: `/limited` allows one call an hour per caller, over
    //    REST and as a tool (each with its own bucket).
    let r = get(&app, "/limited", Some("alice"), Some("seq-5")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = get(&app, "/limited", Some("alice"), Some("seq-6")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    let client = mcp_client(&url, Some(&basic("alice")))
        .await
        .expect("alice connects again");
    let first = client
        .call_tool(CallToolRequestParams::new("limited"))
        .await
        .expect("tools/call limited");
    assert_ne!(first.is_error, Some(true));
    let refused = client
        .call_tool(CallToolRequestParams::new("limited"))
        .await
        .expect("tools/call limited again");
    assert_eq!(refused.is_error, Some(true));
    assert!(
        common::text_of(&refused).contains("Retry in"),
        "{}",
        common::text_of(&refused)
    );
    client.cancel().await.expect("close");

    let all = records(&log);
    // One line per record: transport method target decision status
    // principal rows truncated redacted_columns.
    let summary: Vec<String> = all
        .iter()
        .map(|r| {
            [
                "transport",
                "method",
                "target",
                "decision",
                "status",
                "principal",
                "rows",
                "truncated",
                "redacted_columns",
            ]
            .iter()
            .map(|k| match &r[*k] {
                Value::String(s) if s.is_empty() => "-".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
        })
        .collect();
    assert_eq!(tools.len(), 6, "alice sees every tool but ssn_report");
    let expected = [
        "server start policy-fixture allow 0 null null null []",
        "rest GET /people allow 200 alice 20 true [\"ssn\"]",
        "rest GET /ssn-report deny 403 alice null null []",
        "rest GET /people invalid 400 alice null null []",
        "mcp initialize - allow 200 alice null null []",
        "mcp tools/list - allow 200 alice 6 null []",
        "mcp tools/call people allow 200 alice 20 true [\"ssn\"]",
        "mcp tools/call ssn_report deny 404 alice null null []",
        "rest GET /counted dry_run 200 bob null null []",
        "rest GET /people allow 200 alice 2 false [\"ssn\"]",
        "rest GET /limited allow 200 alice 1 false []",
        "rest GET /limited rate_limited 429 alice null null []",
        "mcp initialize - allow 200 alice null null []",
        "mcp tools/call limited allow 200 alice 1 false []",
        "mcp tools/call limited rate_limited 429 alice null null []",
    ];
    assert_eq!(summary, expected, "records:\n{all:#?}");

    // Request ids, roles and arguments of the REST records.
    let ids: Vec<&str> = all
        .iter()
        .map(|r| r["request_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(&ids[1..4], ["seq-1", "seq-2", "seq-3"]);
    assert_eq!(ids[8], "seq-4");
    assert_eq!(ids[9], replaced);
    assert_eq!(all[1]["roles"], json!(["viewer"]));
    assert_eq!(
        all[8]["roles"],
        json!(["viewer", "developer"]),
        "with inherited roles"
    );
    assert_eq!(
        all[1]["arguments"],
        json!({"reason": "[redacted]", "note": "[redacted]", "pin": "[redacted]"})
    );
    assert_eq!(all[3]["arguments"], json!({"min_id": "zero"}));
    assert_eq!(
        all[6]["arguments"],
        json!({"reason": "[redacted]", "min_id": 1})
    );
    for record in &all {
        assert!(record["latency_ms"].as_f64().is_some_and(|l| l >= 0.0));
        assert!(record["ts"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    // No planted secret anywhere in the file: values, passwords, the
    // Basic credentials as sent.
    let text = std::fs::read_to_string(&log).expect("audit file");
    let encoded =
        |user: &str| base64::engine::general_purpose::STANDARD.encode(format!("{user}:{user}-pw"));
    for secret in [
        PLANTED_JWT,
        PLANTED_KEY,
        PLANTED_NOTE,
        PLANTED_PIN,
        "alice-pw",
        "bob-pw",
        &encoded("alice"),
        &encoded("bob"),
    ] {
        assert!(!text.contains(secret), "`{secret}` is in the audit file");
    }

    // The chain verifies; then one changed byte, a deleted record and two
    // swapped records are each found at the right line.
    let (code, out) = verify(&log);
    assert_eq!(
        (code, out.trim()),
        (0, "OK: 15 records, hash chain intact from the start")
    );
    let lines: Vec<&str> = text.lines().collect();
    let write = |name: &str, lines: &[&str]| {
        let path = scratch.path(name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("write copy");
        path
    };
    let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    changed[2] = changed[2].replacen("\"status\":403", "\"status\":200", 1);
    assert_ne!(changed[2], lines[2]);
    let changed_refs: Vec<&str> = changed.iter().map(String::as_str).collect();
    let (code, out) = verify(&write("changed.jsonl", &changed_refs));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("BROKEN at line 3:"), "{out}");

    let mut deleted = lines.clone();
    deleted.remove(4);
    let (code, out) = verify(&write("deleted.jsonl", &deleted));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("BROKEN at line 5:"), "{out}");

    let mut swapped = lines.clone();
    swapped.swap(6, 7);
    let (code, out) = verify(&write("swapped.jsonl", &swapped));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("BROKEN at line 7:"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_audit_log_refuses_requests_and_runs_nothing() {
    let scratch = Scratch::new("audit-closed");
    // A directory where the log file should be: nothing can be appended.
    let log = scratch.path("audit.jsonl");
    std::fs::create_dir_all(&log).expect("directory in the way");
    let app = start(&log);
    let url = common::listen(app.router.clone()).await;

    for _ in 0..3 {
        let r = get(&app, "/counted", Some("alice"), None).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
        assert!(!r.text().contains("audit.jsonl"), "no path in the answer");
    }
    assert!(
        mcp_client(&url, Some(&basic("alice"))).await.is_err(),
        "MCP initialize is refused too"
    );
    assert_eq!(executions(&app).await, 0, "the query never ran");

    // Once the log can be written again, requests are served and recorded.
    std::fs::remove_dir(&log).expect("clear the way");
    let r = get(&app, "/counted", Some("alice"), None).await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the refusal is what gets recorded"
    );
    let r = get(&app, "/counted", Some("alice"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(executions(&app).await, 1);
    let all = records(&log);
    let decisions: Vec<&str> = all
        .iter()
        .map(|r| r["decision"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(decisions, ["unavailable", "allow"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_the_statement_binds_and_plan_and_runs_nothing() {
    let scratch = Scratch::new("dry-run");
    let app = start(&scratch.path("audit.jsonl"));
    let url = common::listen(app.router.clone()).await;

    let r = get(&app, "/people?min_id=3&_dryRun=true", Some("bob"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let report = r.json();
    assert_eq!(report["dry_run"], true);
    let sql = report["sql"].as_str().expect("sql");
    assert!(sql.contains("id >= ?"), "{sql}");
    assert!(sql.trim_end().ends_with("LIMIT ?"), "{sql}");
    assert!(!sql.contains(" 3"), "values are bound, not spliced: {sql}");
    assert_eq!(
        report["binds"],
        json!([{"type": "BIGINT", "value": 3}, {"type": "BIGINT", "value": 21}])
    );
    let plan = report["plan"].as_str().expect("plan");
    assert!(plan.contains("people") || plan.contains("PEOPLE"), "{plan}");
    assert_eq!(report["decision"], "allow");
    assert_eq!(report["shaping"]["max_rows"], 20);
    assert_eq!(report["shaping"]["redact_columns"], json!(["ssn"]));

    // Nothing runs on a dry run; the real call runs once.
    let r = get(&app, "/counted?_dryRun=true", Some("bob"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.json()["sql"]
            .as_str()
            .is_some_and(|s| s.contains("nextval"))
    );
    assert_eq!(executions(&app).await, 0);
    let client = mcp_client(&url, Some(&basic("bob")))
        .await
        .expect("bob connects");
    let dry = client
        .call_tool(
            CallToolRequestParams::new("counted")
                .with_arguments(arguments(json!({"_dryRun": true}))),
        )
        .await
        .expect("tools/call");
    assert_ne!(dry.is_error, Some(true));
    let structured = dry.structured_content.expect("report");
    assert_eq!(structured["dry_run"], true);
    assert!(structured["plan"].as_str().is_some_and(|p| !p.is_empty()));
    assert_eq!(executions(&app).await, 0, "an MCP dry run runs nothing");
    client.cancel().await.expect("close");
    let r = get(&app, "/counted", Some("bob"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(executions(&app).await, 1);

    // A dry run of a route the caller may not call says so.
    let r = get(&app, "/ssn-report?_dryRun=true", Some("bob"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["decision"], "deny");

    // Only `dry-run-roles` may dry-run, over REST and MCP.
    let r = get(&app, "/counted?_dryRun=true", Some("alice"), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let client = mcp_client(&url, Some(&basic("alice")))
        .await
        .expect("alice connects");
    let refused = client
        .call_tool(
            CallToolRequestParams::new("counted")
                .with_arguments(arguments(json!({"_dryRun": true}))),
        )
        .await
        .expect("tools/call");
    assert_eq!(refused.is_error, Some(true));
    assert_eq!(common::text_of(&refused), "Dry run is not permitted.");
    client.cancel().await.expect("close");
    assert_eq!(executions(&app).await, 1);

    let r = get(&app, "/counted?_dryRun=maybe", Some("bob"), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["errors"][0]["field"], "_dryRun");
}

/// Operators and their row counts in DuckDB's JSON profile.
fn operators(node: &Value, out: &mut Vec<(String, u64)>) {
    if let Value::Object(map) = node {
        // Key names differ across DuckDB versions; a scan's own count of
        // rows read is preferred to the rows it passed on.
        let name = ["type", "operator_type", "operator_name"]
            .iter()
            .find_map(|k| map.get(*k))
            .and_then(Value::as_str);
        let rows = ["rows_scanned", "intermediate_rows", "operator_cardinality"]
            .iter()
            .find_map(|k| map.get(*k))
            .and_then(Value::as_u64);
        if let (Some(name), Some(rows)) = (name, rows) {
            out.push((name.trim().to_string(), rows));
        }
        for value in map.values() {
            operators(value, out);
        }
    } else if let Value::Array(items) = node {
        for item in items {
            operators(item, out);
        }
    }
}

/// Runs `sql` with `binds` on a database holding the fixture's `big`
/// table, with DuckDB's profiler on; returns each operator's row count.
fn profile(sql: &str, binds: &[i64], scratch: &Scratch, name: &str) -> Vec<(String, u64)> {
    let db = duckdb::Connection::open_in_memory().expect("duckdb");
    db.execute_batch(
        "SET threads = 1; CREATE TABLE big AS SELECT i AS id FROM range(1000000) t(i);",
    )
    .expect("table");
    let output = scratch.path(name);
    db.execute_batch(&format!(
        "PRAGMA enable_profiling = 'json'; PRAGMA profiling_output = '{}';",
        output.display()
    ))
    .expect("profiling on");
    let mut statement = db.prepare(sql).expect("prepare");
    let mut rows = statement
        .query(duckdb::params_from_iter(binds.iter()))
        .expect("run");
    while rows.next().expect("row").is_some() {}
    drop(rows);
    drop(statement);
    let text = std::fs::read_to_string(&output).expect("profile written");
    let json: Value = serde_json::from_str(&text).expect("profile JSON");
    let mut out = Vec::new();
    operators(&json, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rows_is_pushed_into_the_query_and_reported() {
    let scratch = Scratch::new("max-rows");
    let app = start(&scratch.path("audit.jsonl"));
    let url = common::listen(app.router.clone()).await;

    let r = get(&app, "/big", Some("alice"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-truncated"), Some("true"));
    let ids: Vec<i64> = r
        .json()
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    // Paging cannot walk past the cap: the cap counts from the first row.
    let page = |query: &'static str| {
        let app = &app;
        async move {
            let r = get(app, &format!("/paged?{query}"), Some("alice"), None).await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
            let body = r.json();
            let ids: Vec<i64> = body["data"]
                .as_array()
                .expect("a page of rows")
                .iter()
                .map(|row| row["id"].as_i64().expect("id"))
                .collect();
            (ids, r.header("x-truncated").map(str::to_string), r.json())
        }
    };
    let (ids, _, _) = page("limit=5&offset=5").await;
    assert_eq!(ids, (5..10).collect::<Vec<_>>());
    let (ids, truncated, _) = page("limit=5&offset=8").await;
    assert_eq!(ids, vec![8, 9]);
    assert_eq!(truncated.as_deref(), Some("true"));
    let (ids, _, body) = page("limit=5&offset=500").await;
    assert!(ids.is_empty(), "{body}");
    let r = get(&app, "/people?min_id=45", Some("alice"), None).await;
    assert_eq!(
        r.header("x-truncated"),
        None,
        "6 rows are under the cap of 20"
    );

    let client = mcp_client(&url, Some(&basic("alice")))
        .await
        .expect("connects");
    let result = client
        .call_tool(CallToolRequestParams::new("big"))
        .await
        .expect("tools/call big");
    let structured = result.structured_content.expect("structured");
    assert_eq!(structured["row_count"], 10);
    assert_eq!(structured["truncated"], true);
    assert_eq!(structured["rows"].as_array().map(Vec::len), Some(10));
    client.cancel().await.expect("close");

    // The statement that runs is the dry run's: the cap is in the SQL.
    let report = get(&app, "/big?_dryRun=true", Some("bob"), None)
        .await
        .json();
    let sql = report["sql"].as_str().expect("sql").to_string();
    assert!(sql.trim_end().ends_with("LIMIT ?"), "{sql}");
    assert_eq!(report["binds"], json!([{"type": "BIGINT", "value": 11}]));

    // DuckDB's profiler on that statement: the limit passes 11 rows and the
    // scan stops early; the same query without the cap scans everything.
    let capped = profile(&sql, &[11], &scratch, "capped.json");
    let limit = capped
        .iter()
        .find(|(name, _)| name.contains("LIMIT"))
        .unwrap_or_else(|| panic!("no limit operator in {capped:?}"));
    assert_eq!(limit.1, 11, "{capped:?}");
    let scanned = capped
        .iter()
        .filter(|(name, _)| name.contains("SCAN"))
        .map(|(_, rows)| *rows)
        .max()
        .expect("a scan");
    assert!(
        scanned < 100_000,
        "the scan read {scanned} rows: {capped:?}"
    );
    let uncapped = profile("SELECT id FROM big", &[], &scratch, "uncapped.json");
    let scanned_all = uncapped
        .iter()
        .filter(|(name, _)| name.contains("SCAN"))
        .map(|(_, rows)| *rows)
        .max()
        .expect("a scan");
    assert_eq!(scanned_all, 1_000_000, "{uncapped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_masks_for_everyone_but_unmask_roles_over_rest_and_mcp() {
    let scratch = Scratch::new("redact");
    let app = start(&scratch.path("audit.jsonl"));
    let url = common::listen(app.router.clone()).await;
    let is_ssn = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.len() == 11 && s.as_bytes()[3] == b'-' && &s[4..7] == "45-")
    };

    let masked = get(&app, "/people?min_id=41", Some("alice"), None)
        .await
        .json();
    let rows = masked.as_array().expect("rows");
    assert_eq!(rows.len(), 10);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["ssn"], "[redacted]");
        assert_eq!(row["name"], format!("person {}", 41 + i));
        assert_eq!(row["email"], format!("p{}@example.com", 41 + i));
    }
    let csv = get(&app, "/people?min_id=50&format=csv", Some("alice"), None)
        .await
        .text();
    assert_eq!(
        csv.lines().nth(1),
        Some("50,person 50,[redacted],p50@example.com")
    );

    let unmasked = get(&app, "/people?min_id=41", Some("carol"), None)
        .await
        .json();
    for row in unmasked.as_array().expect("rows") {
        assert!(is_ssn(&row["ssn"]), "{row}");
    }

    for (user, masked) in [("alice", true), ("carol", false)] {
        let client = mcp_client(&url, Some(&basic(user)))
            .await
            .expect("connects");
        let result = client
            .call_tool(
                CallToolRequestParams::new("people")
                    .with_arguments(arguments(json!({"min_id": 48}))),
            )
            .await
            .expect("tools/call people");
        let structured = result.structured_content.expect("structured");
        let rows = structured["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 3);
        for row in rows {
            if masked {
                assert_eq!(row["ssn"], "[redacted]", "{user}");
            } else {
                assert!(is_ssn(&row["ssn"]), "{user}: {row}");
            }
        }
        client.cancel().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_records_would_deny_and_lets_the_call_through() {
    let scratch = Scratch::new("shadow");
    let log = scratch.path("audit.jsonl");
    let app = start(&log);
    let url = common::listen(app.router.clone()).await;

    // alice lacks `admin`, and shaping would cap at 2 rows: recorded, not
    // enforced. Masking is enforced even in shadow mode: ssn stays masked.
    let r = get(&app, "/shadowed", Some("alice"), Some("shadow-1")).await;
    assert_eq!(r.status, StatusCode::OK);
    let rows = r.json();
    assert_eq!(rows.as_array().map(Vec::len), Some(3));
    for row in rows.as_array().expect("rows") {
        assert!(
            !row["ssn"]
                .as_str()
                .is_some_and(|s| s.chars().any(|c| c.is_ascii_digit())),
            "a clear ssn in shadow mode: {row}"
        );
    }
    let client = mcp_client(&url, Some(&basic("alice")))
        .await
        .expect("connects");
    let result = client
        .call_tool(CallToolRequestParams::new("shadowed"))
        .await
        .expect("tools/call");
    assert_ne!(result.is_error, Some(true));
    client.cancel().await.expect("close");
    // Outside shadow mode the same caller is refused.
    assert_eq!(
        get(&app, "/ssn-report", Some("alice"), None).await.status,
        StatusCode::FORBIDDEN
    );

    let all = records(&log);
    let rest = all
        .iter()
        .find(|r| r["request_id"] == "shadow-1")
        .expect("REST record");
    assert_eq!(rest["decision"], "would_deny");
    assert_eq!(rest["status"], 200);
    assert_eq!(rest["rows"], 3);
    assert_eq!(rest["redacted_columns"], json!(["ssn"]));
    let mcp = all
        .iter()
        .find(|r| r["method"] == "tools/call" && r["target"] == "shadowed")
        .expect("MCP record");
    assert_eq!(mcp["decision"], "would_deny");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_returns_the_row_count_and_columns_without_rows() {
    let scratch = Scratch::new("sample");
    let app = start(&scratch.path("audit.jsonl"));
    let url = common::listen(app.router.clone()).await;
    let expected = json!({
        "row_count": 50,
        "columns": [
            {"name": "id", "type": "BIGINT"},
            {"name": "name", "type": "VARCHAR"},
            {"name": "ssn", "type": "VARCHAR"},
        ]
    });
    let r = get(&app, "/sampled", Some("alice"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), expected);
    let client = mcp_client(&url, Some(&basic("alice")))
        .await
        .expect("connects");
    let result = client
        .call_tool(CallToolRequestParams::new("sampled"))
        .await
        .expect("tools/call");
    assert_eq!(result.structured_content, Some(expected));
    client.cancel().await.expect("close");
}
