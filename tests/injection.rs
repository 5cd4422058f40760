//! SQL injection corpus (tests/data/injection_payloads.txt, 76 payloads)
//! against an endpoint of every validator type, plus path and header sites.
//! Each answer is a 400 naming the field, or exactly the rows the literal
//! value matches; afterwards the database is unchanged.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{encode, get, send, start};

mod fixture {
    flapi_macros::project!("tests/fixtures/injection");
}

/// The people table of the fixture: (id, name).
const PEOPLE: [(i64, &str); 3] = [(1, "alice"), (2, "bob"), (3, "O'Brien")];
/// Their `score` column (DOUBLE).
const SCORES: [(i64, f64); 3] = [(1, 1.5), (2, 2.25), (3, -3.0)];

fn payloads() -> Vec<String> {
    let text = include_str!("data/injection_payloads.txt");
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(lines.len() >= 60, "corpus has {} payloads", lines.len());
    lines
}

/// SQL LIKE with `%` and `_`, as DuckDB evaluates `name LIKE '%' || v || '%'`.
fn like(text: &str, pattern: &str) -> bool {
    fn go(t: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(&t[i..], rest)),
            Some(('_', rest)) => !t.is_empty() && go(&t[1..], rest),
            Some((c, rest)) => t.first() == Some(c) && go(&t[1..], rest),
        }
    }
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = format!("%{pattern}%").chars().collect();
    go(&t, &p)
}

fn rows(reply: &common::Reply) -> Vec<(i64, String)> {
    reply
        .json()
        .as_array()
        .expect("array of rows")
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().expect("id"),
                r["name"].as_str().expect("name").to_string(),
            )
        })
        .collect()
}

fn expected(matches: impl Fn(&str) -> bool) -> Vec<(i64, String)> {
    PEOPLE
        .iter()
        .filter(|(_, n)| matches(n))
        .map(|(i, n)| (*i, n.to_string()))
        .collect()
}

#[tokio::test]
async fn corpus_never_reaches_sql_text() {
    let app = start(&fixture::PROJECT);
    let typed = [
        "int",
        "double",
        "boolean",
        "enum",
        "date",
        "time",
        "timestamp",
        "uuid",
        "email",
        "regex",
    ];
    // The regex validator of /by-regex is `[a-z]+`, matched whole.
    let lowercase_word = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase());
    let mut checked = 0;
    for payload in payloads() {
        // Typed fields: a payload is either malformed for the type (400
        // naming the field) or a valid value matching exactly its rows.
        for endpoint in typed {
            let reply = get(
                &app.router,
                &format!("/by-{endpoint}?v={}", encode(&payload)),
            )
            .await;
            let valid_double = payload.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            match (endpoint, valid_double) {
                ("double", Some(value)) => {
                    assert_eq!(
                        reply.status,
                        StatusCode::OK,
                        "{payload:?}: {}",
                        reply.text()
                    );
                    let want: Vec<i64> = SCORES
                        .iter()
                        .filter(|(_, s)| *s == value)
                        .map(|(id, _)| *id)
                        .collect();
                    let got: Vec<i64> = rows(&reply).into_iter().map(|(id, _)| id).collect();
                    assert_eq!(got, want, "{payload:?}");
                }
                ("regex", _) if lowercase_word(&payload) => {
                    assert_eq!(
                        reply.status,
                        StatusCode::OK,
                        "{payload:?}: {}",
                        reply.text()
                    );
                    assert_eq!(rows(&reply), expected(|n| n == payload), "{payload:?}");
                }
                _ => {
                    assert_eq!(
                        reply.status,
                        StatusCode::BAD_REQUEST,
                        "/by-{endpoint} accepted {payload:?}: {}",
                        reply.text()
                    );
                    assert_eq!(reply.json()["errors"][0]["field"], "v", "{payload:?}");
                }
            }
            checked += 1;
        }
        // Strings: the value is compared as a literal, never interpreted.
        let reply = get(&app.router, &format!("/by-string?v={}", encode(&payload))).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{payload:?}: {}",
            reply.text()
        );
        assert_eq!(rows(&reply), expected(|n| n == payload), "{payload:?}");
        let reply = get(&app.router, &format!("/by-like?v={}", encode(&payload))).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{payload:?}: {}",
            reply.text()
        );
        assert_eq!(rows(&reply), expected(|n| like(n, &payload)), "{payload:?}");
        let reply = get(&app.router, &format!("/by-path/{}", encode(&payload))).await;
        if reply.status == StatusCode::OK {
            assert_eq!(rows(&reply), expected(|n| n == payload), "{payload:?}");
        } else {
            // `..` or an empty segment never reaches the handler.
            assert!(
                reply.status == StatusCode::NOT_FOUND || reply.status == StatusCode::BAD_REQUEST,
                "{payload:?}: {}",
                reply.status
            );
        }
        let request = Request::get("/by-header")
            .header("x-filter", payload.as_str())
            .body(Body::empty());
        if let Ok(request) = request {
            let reply = send(&app.router, request).await;
            assert_eq!(reply.status, StatusCode::OK, "{payload:?}");
            assert_eq!(rows(&reply), expected(|n| n == payload), "{payload:?}");
        }
        checked += 4;
    }
    assert!(checked >= 60 * 14);

    // No stacked statement ran: same tables, same rows, canary intact.
    let state = app
        .db
        .with_connection(|c, _| {
            let q = |sql: &str| {
                c.query_row(sql, [], |r| r.get::<_, i64>(0))
                    .map_err(|e| flapi::db::QueryError::Failed(e.to_string()))
            };
            Ok((
                q("SELECT count(*) FROM duckdb_tables()")?,
                q("SELECT count(*) FROM people")?,
                q("SELECT v FROM canary")?,
            ))
        })
        .await
        .expect("inspect database");
    assert_eq!(state, (2, 3, 42));
}

#[tokio::test]
async fn literal_values_still_match() {
    let app = start(&fixture::PROJECT);
    for (uri, ids) in [
        ("/by-int?v=41", vec![2]),
        ("/by-double?v=-3", vec![3]),
        ("/by-boolean?v=true", vec![1, 3]),
        ("/by-string?v=O%27Brien", vec![3]),
        ("/by-like?v=li", vec![1]),
        ("/by-enum?v=green", vec![2]),
        ("/by-date?v=2000-02-29", vec![3]),
        ("/by-time?v=23:59:59", vec![2]),
        ("/by-timestamp?v=2024-01-02T10:00:00", vec![1]),
        // UUIDs are parsed and bound in canonical (lower-case) form.
        ("/by-uuid?v=6F9619FF-8B86-D011-B42D-00C04FC964FF", vec![2]),
        ("/by-uuid?v=6f9619ff-8b86-d011-b42d-00c04fc964ff", vec![2]),
        ("/by-email?v=ob@example.org", vec![3]),
        ("/by-regex?v=bob", vec![2]),
        ("/by-path/alice", vec![1]),
    ] {
        let reply = get(&app.router, uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text());
        let got: Vec<i64> = rows(&reply).into_iter().map(|(id, _)| id).collect();
        assert_eq!(got, ids, "{uri}");
    }
}

#[tokio::test]
async fn malformed_typed_values_name_the_field() {
    let app = start(&fixture::PROJECT);
    for (uri, message) in [
        ("/by-int?v=12abc", "must be a 64-bit integer"),
        ("/by-int?v=99999999999999999999", "must be a 64-bit integer"),
        ("/by-double?v=1.2.3", "must be a finite number"),
        ("/by-boolean?v=yes", "must be true or false"),
        ("/by-enum?v=purple", "must be one of: red, green, blue"),
        ("/by-date?v=2023-02-29", "must be a date (YYYY-MM-DD)"),
        ("/by-time?v=25:00", "must be a time"),
        ("/by-timestamp?v=yesterday", "must be a timestamp"),
        ("/by-uuid?v=not-a-uuid", "must be a UUID"),
        ("/by-email?v=nobody", "must be an email address"),
        ("/by-regex?v=Bob1", "does not match the required pattern"),
        ("/by-int", "is required"),
        ("/by-int?v=1&v=2", "was given more than once"),
    ] {
        let reply = get(&app.router, uri).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        let body = reply.json();
        assert_eq!(body["errors"][0]["field"], "v", "{uri}: {body}");
        let got = body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(got.starts_with(message), "{uri}: {got}");
    }
}
