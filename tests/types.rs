//! DuckDB types map to JSON faithfully (SPEC §5): integers as numbers,
//! HUGEINT as a string, DECIMAL as exact decimal text, ISO 8601 dates and
//! times, lists as arrays, structs and maps as objects, JSON embedded as
//! JSON, UUID as text, BLOB as base64.

mod common;

use common::{get, start};
use serde_json::json;

mod fixture {
    flapi_macros::project!("tests/fixtures/types");
}

#[tokio::test]
async fn every_type_maps_to_json() {
    let app = start(&fixture::PROJECT);
    let reply = get(&app.router, "/all").await;
    assert_eq!(reply.status, axum::http::StatusCode::OK, "{}", reply.text());
    let text = reply.text();
    // Exact decimal text and a 64-bit integer beyond f64 precision.
    assert!(text.contains("\"dec\":1234567.891,"), "{text}");
    assert!(text.contains("\"big\":9007199254740993,"), "{text}");
    let row = &reply.json()[0];
    assert_eq!(row["tiny"], 42);
    assert_eq!(row["huge"], "170141183460469231731687303715884105727");
    assert_eq!(row["dbl"], 0.1);
    assert_eq!(row["flag"], true);
    assert_eq!(row["nothing"], serde_json::Value::Null);
    assert_eq!(row["d"], "2024-02-29");
    assert_eq!(row["t"], "10:11:12.500000");
    assert_eq!(row["ts"], "2024-01-02T03:04:05");
    assert_eq!(row["list"], json!([1, 2, 3]));
    assert_eq!(row["struct"], json!({"a": 1, "b": "x"}));
    assert_eq!(row["map"], json!({"k": "v"}));
    assert_eq!(row["doc"], json!({"x": [1, true, null]}));
    assert_eq!(row["id"], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(row["bytes"], "AQI=");
    assert_eq!(row["str"], "text \"quoted\"");
    // A column of DuckDB's NULL type (`SELECT NULL`, or a parameter bound
    // to NULL) is null, not a failed request.
    assert_eq!(row["untyped"], serde_json::Value::Null);
    assert!(row.as_object().is_some_and(|o| o.contains_key("untyped")));

    let csv = get(&app.router, "/all?format=csv").await.text();
    let mut lines = csv.lines();
    let header = lines.next().unwrap_or("");
    assert!(header.starts_with("tiny,big,huge,dec,"), "{header}");
    assert!(header.ends_with(",str,untyped"), "{header}");
    assert!(lines.next().unwrap_or("").starts_with("42,9007199254740993,170141183460469231731687303715884105727,1234567.891,0.1,true,,2024-02-29,"));
}
