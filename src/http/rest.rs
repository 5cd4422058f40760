//! The REST adapter (SPEC §5): a GET on an endpoint's route becomes a
//! [`Call`], and its [`Answer`] becomes the response. Client-facing
//! messages are separate from logged ones: DuckDB text, SQL and paths
//! never reach a client.

use std::sync::Arc;

use axum::extract::RawPathParams;
use axum::extract::rejection::RawPathParamsRejection;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::edge::ClientAddr;
use super::{Audited, error_json, forbidden, request_id_of, unauthenticated, unavailable};
use crate::call::arguments::{LIMIT, OFFSET};
use crate::call::{Answer, Arguments, Call, Credentials, Item, Outcome, Pipeline, Refusal};
use crate::db::encode::Format;
use crate::db::{Page, PageResult, QueryError};
use crate::runtime::{EndpointDef, FieldErrors, RequestInput};

/// The handler of one endpoint's route.
pub async fn handle(
    pipeline: Arc<Pipeline>,
    endpoint: &'static EndpointDef,
    params: Result<RawPathParams, RawPathParamsRejection>,
    ClientAddr(client): ClientAddr,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request_id = request_id_of(&headers);
    let call = Call {
        request_id: request_id.clone(),
        item: Item::Route(endpoint),
        arguments: arguments(params, &uri, &headers),
        credentials: Credentials::Headers(headers),
        client,
        cancel: None,
    };
    let Answer { outcome, rate, .. } = pipeline.run(call).await;
    let mut response = respond(&pipeline, outcome, &uri, &request_id);
    if let Some(rate) = rate {
        for (name, value) in rate.headers() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response.extensions_mut().insert(Audited);
    response
}

/// Path, query and header values as text; what cannot be decoded is an
/// argument error.
fn arguments(
    params: Result<RawPathParams, RawPathParamsRejection>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Arguments {
    let mut errors = FieldErrors::new();
    let path = match params {
        Ok(params) => params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        Err(_) => {
            errors.push("path", "is not valid UTF-8 after percent-decoding");
            Vec::new()
        }
    };
    let query = match serde_urlencoded::from_str(uri.query().unwrap_or("")) {
        Ok(query) => query,
        Err(_) => {
            errors.push("query", "is not a valid URL query string");
            Vec::new()
        }
    };
    let input = RequestInput {
        path,
        query,
        headers: headers
            .iter()
            .filter_map(|(k, v)| {
                // UTF-8, not only visible ASCII: header fields may carry text.
                std::str::from_utf8(v.as_bytes())
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect(),
        body: None,
    };
    Arguments::Text {
        input,
        accept: headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        errors,
    }
}

fn respond(pipeline: &Pipeline, outcome: Outcome, uri: &Uri, request_id: &str) -> Response {
    match outcome {
        Outcome::Rows {
            result,
            page,
            format,
        } => rows(uri, page, format, result),
        Outcome::Report(report) | Outcome::Sample(report) => axum::Json(report).into_response(),
        Outcome::Refused(refusal) => refused(pipeline, &refusal, request_id),
    }
}

fn refused(pipeline: &Pipeline, refusal: &Refusal, request_id: &str) -> Response {
    match refusal {
        Refusal::Unauthenticated(error) => unauthenticated(&pipeline.auth, *error, request_id),
        Refusal::Forbidden | Refusal::Hidden => forbidden(request_id),
        Refusal::DryRunForbidden => error_json(
            StatusCode::FORBIDDEN,
            "dry run is not permitted for this caller",
            Some(request_id),
        ),
        Refusal::NotFound => error_json(
            StatusCode::NOT_FOUND,
            "no route matches this path",
            Some(request_id),
        ),
        Refusal::RateLimited(_) => error_json(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests: retry after the time in Retry-After",
            Some(request_id),
        ),
        Refusal::Invalid(errors) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"errors": errors.0})),
        )
            .into_response(),
        Refusal::Failed(error) => query_error(error, request_id),
        Refusal::Unavailable => unavailable(request_id),
    }
}

fn query_error(error: &QueryError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // The detail went to the log; the client gets the request id.
    let message = match status {
        StatusCode::GATEWAY_TIMEOUT => "the query took too long and was stopped",
        StatusCode::SERVICE_UNAVAILABLE => "the server is not able to run queries right now",
        _ => "internal error",
    };
    let mut response = error_json(status, message, Some(request_id));
    if matches!(error, QueryError::Busy(_)) {
        // Saturation passes quickly: a query slot frees when one finishes.
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn next_link(uri: &Uri, page: Page, total: Option<u64>) -> Option<String> {
    let total = total?;
    let next_offset = page.offset.checked_add(page.limit)?;
    if page.limit == 0 || next_offset >= total {
        return None;
    }
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    pairs.retain(|(k, _)| k != OFFSET && k != LIMIT);
    pairs.push((LIMIT.to_string(), page.limit.to_string()));
    pairs.push((OFFSET.to_string(), next_offset.to_string()));
    let query = serde_urlencoded::to_string(&pairs).ok()?;
    Some(format!("{}?{}", uri.path(), query))
}

/// Rows in the requested format; a page in JSON is wrapped with its
/// `next` link and `total_count`, and reported in `X-` headers.
fn rows(uri: &Uri, window: Option<Page>, format: Format, result: PageResult) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if result.truncated {
        headers.insert(
            HeaderName::from_static("x-truncated"),
            HeaderValue::from_static("true"),
        );
    }
    let Some(page) = window else {
        return (StatusCode::OK, headers, result.body).into_response();
    };
    let next = next_link(uri, page, result.total);
    let total = result.total.unwrap_or(result.rows);
    let set = |headers: &mut HeaderMap, name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set(&mut headers, "x-total-count", total.to_string());
    set(&mut headers, "x-offset", page.offset.to_string());
    set(&mut headers, "x-limit", page.limit.to_string());
    if let Some(next) = &next {
        set(&mut headers, "x-next", next.clone());
    }
    if format != Format::Json {
        return (StatusCode::OK, headers, result.body).into_response();
    }
    let mut body = Vec::with_capacity(result.body.len() + 64);
    body.extend_from_slice(b"{\"data\":");
    body.extend_from_slice(&result.body);
    body.extend_from_slice(b",\"next\":");
    body.extend_from_slice(&serde_json::to_vec(&next).unwrap_or_else(|_| b"null".to_vec()));
    body.extend_from_slice(format!(",\"total_count\":{total}}}").as_bytes());
    (StatusCode::OK, headers, body).into_response()
}
