//! The default project (`project/`) end to end: every endpoint answers with
//! the rows its SQL should return. Expected values come from reading the
//! CSV files directly in the test, not from SQL.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Reply, get, send};
use flapi::DbOptions;
use flapi::project::PROJECT;
use serde_json::Value;

struct Customer {
    id: i64,
    name: String,
    email: String,
    segment: String,
    country: String,
    signup: String,
    credit_cents: i64,
}

struct Order {
    id: i64,
    customer: i64,
    date: String,
    status: String,
    items: i64,
    total_cents: i64,
}

fn cents(text: &str) -> i64 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, "0"));
    whole.parse::<i64>().expect("whole") * 100
        + format!("{frac:0<2}")[..2].parse::<i64>().expect("cents")
}

fn json_cents(value: &Value) -> i64 {
    (value.as_f64().expect("number") * 100.0).round() as i64
}

fn read_csv(name: &str) -> Vec<csv::StringRecord> {
    let path = format!("{}/project/data/{name}", env!("CARGO_MANIFEST_DIR"));
    csv::Reader::from_path(path)
        .expect("csv")
        .records()
        .map(|r| r.expect("record"))
        .collect()
}

fn customers() -> Vec<Customer> {
    read_csv("customers.csv")
        .iter()
        .map(|r| Customer {
            id: r[0].parse().expect("id"),
            name: r[1].to_string(),
            email: r[2].to_string(),
            segment: r[3].to_string(),
            country: r[4].to_string(),
            signup: r[5].to_string(),
            credit_cents: cents(&r[6]),
        })
        .collect()
}

fn orders() -> Vec<Order> {
    read_csv("orders.csv")
        .iter()
        .map(|r| Order {
            id: r[0].parse().expect("id"),
            customer: r[1].parse().expect("customer"),
            date: r[2].to_string(),
            status: r[3].to_string(),
            items: r[4].parse().expect("items"),
            total_cents: cents(&r[5]),
        })
        .collect()
}

fn app() -> flapi::App {
    let mut options = DbOptions::for_project(&PROJECT);
    options.audit_file = Some(common::temp_audit_file());
    common::start_with(&PROJECT, options)
}

fn ok(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

fn ids(rows: &Value, key: &str) -> Vec<i64> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| r[key].as_i64().expect("id"))
        .collect()
}

#[tokio::test]
async fn point_lookup_returns_the_customer_with_order_statistics() {
    let app = app();
    let all_orders = orders();
    for customer in customers()
        .iter()
        .filter(|c| [1, 2, 500, 1000].contains(&c.id))
    {
        let body = ok(&get(&app.router, &format!("/customers/{}", customer.id)).await);
        let rows = body.as_array().expect("bare array without pagination");
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row["customer_id"], customer.id);
        assert_eq!(row["name"], customer.name.as_str());
        assert_eq!(row["email"], customer.email.as_str());
        assert_eq!(row["segment"], customer.segment.as_str());
        assert_eq!(row["country"], customer.country.as_str());
        assert_eq!(row["signup_date"], customer.signup.as_str());
        assert_eq!(json_cents(&row["credit_limit"]), customer.credit_cents);
        let mine: Vec<&Order> = all_orders
            .iter()
            .filter(|o| o.customer == customer.id)
            .collect();
        assert_eq!(row["order_count"], mine.len() as i64);
        assert_eq!(
            json_cents(&row["lifetime_value"]),
            mine.iter().map(|o| o.total_cents).sum::<i64>()
        );
        assert_eq!(row["currency"], "EUR");
    }
    // DECIMAL is written as its exact text, not a rounded float.
    let customer = &customers()[0];
    let text = get(&app.router, "/customers/1").await.text();
    let exact = format!(
        "\"credit_limit\":{}.{:02}",
        customer.credit_cents / 100,
        customer.credit_cents % 100
    );
    assert!(text.contains(&exact), "{text} lacks {exact}");
    assert_eq!(
        ok(&get(&app.router, "/customers/999999").await),
        Value::Array(vec![])
    );
}

#[tokio::test]
async fn list_filters_match_the_data() {
    let app = app();
    let all = customers();
    let body = ok(&get(&app.router, "/customers?segment=corporate&country=DE").await);
    let want: Vec<i64> = all
        .iter()
        .filter(|c| c.segment == "corporate" && c.country == "DE")
        .map(|c| c.id)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ids(&body["data"], "customer_id"), want);
    assert_eq!(body["total_count"], want.len() as i64);
    assert_eq!(body["next"], Value::Null);

    // Case-insensitive substring search on a quoted site.
    let body = ok(&get(&app.router, "/customers?name=LOVE&limit=1000").await);
    let want: Vec<i64> = all
        .iter()
        .filter(|c| c.name.to_lowercase().contains("love"))
        .map(|c| c.id)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ids(&body["data"], "customer_id"), want);

    // Enum-mapped ORDER BY.
    let body = ok(&get(&app.router, "/customers?sort=credit_limit&limit=5").await);
    let mut sorted: Vec<&Customer> = all.iter().collect();
    sorted.sort_by_key(|c| (c.credit_cents, c.id));
    let want: Vec<i64> = sorted.iter().take(5).map(|c| c.id).collect();
    assert_eq!(ids(&body["data"], "customer_id"), want);
    let body = ok(&get(&app.router, "/customers?sort=name&limit=3").await);
    let mut by_name: Vec<&Customer> = all.iter().collect();
    by_name.sort_by(|a, b| (a.name.as_str(), a.id).cmp(&(b.name.as_str(), b.id)));
    assert_eq!(
        ids(&body["data"], "customer_id"),
        by_name.iter().take(3).map(|c| c.id).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn pagination_links_and_headers() {
    let app = app();
    let reply = get(&app.router, "/customers?limit=10&offset=20").await;
    let body = ok(&reply);
    assert_eq!(
        ids(&body["data"], "customer_id"),
        (21..=30).collect::<Vec<i64>>()
    );
    assert_eq!(body["total_count"], 1000);
    assert_eq!(body["next"], "/customers?limit=10&offset=30");
    assert_eq!(reply.header("x-total-count"), Some("1000"));
    assert_eq!(reply.header("x-offset"), Some("20"));
    assert_eq!(reply.header("x-limit"), Some("10"));
    assert_eq!(
        reply.header("x-next"),
        Some("/customers?limit=10&offset=30")
    );

    let body = ok(&get(&app.router, "/customers?offset=995&limit=10").await);
    assert_eq!(
        ids(&body["data"], "customer_id"),
        (996..=1000).collect::<Vec<i64>>()
    );
    assert_eq!(body["next"], Value::Null);

    // Default limit 100, capped at the maximum of 1000.
    let reply = get(&app.router, "/customers").await;
    assert_eq!(ok(&reply)["data"].as_array().map(Vec::len), Some(100));
    let reply = get(&app.router, "/customers?limit=5000").await;
    assert_eq!(reply.header("x-limit"), Some("1000"));
    assert_eq!(ok(&reply)["data"].as_array().map(Vec::len), Some(1000));

    let reply = get(&app.router, "/customers?limit=-1&offset=x").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let fields: Vec<String> = reply.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(fields, ["limit", "offset"]);
}

#[tokio::test]
async fn date_range_and_typed_filters() {
    let app = app();
    let all = orders();
    let customer = 7;
    let body = ok(&get(
        &app.router,
        &format!("/customers/{customer}/orders?from=2023-06-01&to=2024-06-30"),
    )
    .await);
    let mut want: Vec<&Order> = all
        .iter()
        .filter(|o| {
            o.customer == customer
                && o.date.as_str() >= "2023-06-01"
                && o.date.as_str() <= "2024-06-30"
        })
        .collect();
    want.sort_by(|a, b| (a.date.as_str(), a.id).cmp(&(b.date.as_str(), b.id)));
    assert_eq!(
        ids(&body["data"], "order_id"),
        want.iter().map(|o| o.id).collect::<Vec<_>>()
    );
    for (row, order) in body["data"].as_array().expect("rows").iter().zip(&want) {
        assert_eq!(row["order_date"], order.date.as_str());
        assert_eq!(row["items"], order.items);
        assert_eq!(json_cents(&row["total"]), order.total_cents);
    }

    let body = ok(&get(
        &app.router,
        "/orders?status=shipped&min_total=900&from=2024-01-01&limit=1000",
    )
    .await);
    let mut want: Vec<&Order> = all
        .iter()
        .filter(|o| {
            o.status == "shipped" && o.total_cents >= 90000 && o.date.as_str() >= "2024-01-01"
        })
        .collect();
    want.sort_by(|a, b| (a.date.as_str(), a.id).cmp(&(b.date.as_str(), b.id)));
    assert!(!want.is_empty());
    assert_eq!(
        ids(&body["data"], "order_id"),
        want.iter().map(|o| o.id).collect::<Vec<_>>()
    );

    // request-fields-validation: unknown fields are rejected by name.
    let reply = get(&app.router, "/orders?status=shipped&colour=red").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["errors"][0]["field"], "colour");
    let reply = get(&app.router, "/orders?from=2022-01-01").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json()["errors"][0]["message"],
        "must be at least 2023-01-01"
    );
}

#[tokio::test]
async fn aggregate_matches_the_data() {
    let app = app();
    let segment_of: std::collections::HashMap<i64, String> =
        customers().into_iter().map(|c| (c.id, c.segment)).collect();
    let body = ok(&get(&app.router, "/stats/revenue?year=2024&segment=consumer").await);
    let mut want: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for o in orders() {
        if o.status != "cancelled"
            && o.date.starts_with("2024")
            && segment_of[&o.customer] == "consumer"
        {
            let e = want.entry(o.date[..7].to_string()).or_default();
            e.0 += 1;
            e.1 += o.total_cents;
        }
    }
    let rows = body.as_array().expect("rows");
    assert_eq!(rows.len(), want.len());
    for (row, (month, (count, cents))) in rows.iter().zip(&want) {
        assert_eq!(row["month"], month.as_str());
        assert_eq!(row["segment"], "consumer");
        assert_eq!(row["orders"], *count);
        assert_eq!(json_cents(&row["revenue"]), *cents);
    }
}

#[tokio::test]
async fn csv_format_and_content_negotiation() {
    let app = app();
    let customer = &customers()[0];
    let reply = get(&app.router, "/customers/1?format=csv").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    let text = reply.text();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "customer_id,name,email,segment,country,signup_date,credit_limit,order_count,lifetime_value,currency"
        )
    );
    assert!(
        lines
            .next()
            .expect("row")
            .starts_with(&format!("1,{},{},", customer.name, customer.email))
    );

    let request = Request::get("/customers?limit=2")
        .header("accept", "text/csv")
        .body(Body::empty())
        .expect("request");
    let reply = send(&app.router, request).await;
    assert_eq!(reply.text().lines().count(), 3);
    assert_eq!(reply.header("x-total-count"), Some("1000"));
    let reply = get(&app.router, "/customers?format=xml").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["errors"][0]["field"], "format");
}

#[tokio::test]
async fn errors_health_and_openapi() {
    let app = app();
    let reply = get(&app.router, "/customers/abc").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        serde_json::json!({"errors": [{"field": "id", "message": "must be a 64-bit integer"}]})
    );
    let reply = get(&app.router, "/customers/0").await;
    assert_eq!(reply.json()["errors"][0]["message"], "must be at least 1");
    let reply = get(&app.router, "/customers?segment=vip&country=germany").await;
    assert_eq!(
        reply.json()["errors"].as_array().map(Vec::len),
        Some(2),
        "all field errors at once"
    );

    let reply = get(&app.router, "/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], "no route matches this path");
    let reply = send(
        &app.router,
        Request::post("/customers")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        reply
            .header("x-request-id")
            .is_some_and(|id| id.len() == 36)
    );

    assert_eq!(ok(&get(&app.router, "/health").await)["status"], "ok");
    assert_eq!(ok(&get(&app.router, "/ready").await)["status"], "ready");
    let spec = ok(&get(&app.router, "/openapi.json").await);
    assert_eq!(spec["openapi"], "3.1.0");
    let id = &spec["paths"]["/customers/{id}"]["get"]["parameters"][0];
    assert_eq!(id["name"], "id");
    assert_eq!(id["schema"]["minimum"], 1);
    let segment = &spec["paths"]["/customers"]["get"]["parameters"][1];
    assert_eq!(
        segment["schema"]["enum"],
        serde_json::json!(["consumer", "corporate", "small_business"])
    );
}
