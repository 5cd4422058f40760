//! MCP (SPEC §6) end to end: the server listens on a real loopback socket
//! and `rmcp`'s own client drives it over Streamable HTTP. Plain JSON-RPC
//! (`POST /mcp/jsonrpc`) is checked with HTTP requests.
// `logging/setLevel` is deprecated by SEP-2577 but still part of SPEC §6.
#![allow(deprecated)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use flapi::App;
use rmcp::model::{
    ArgumentInfo, CallToolRequestParams, CallToolResult, ClientRequest, CompleteRequestParams,
    GetPromptRequestParams, GetPromptResult, JsonObject, LoggingLevel, ReadResourceRequestParams,
    Reference, ResourceContents, SetLevelRequestParams,
};
use rmcp::service::{PeerRequestOptions, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ServiceError, ServiceExt};
use serde_json::{Value, json};

use common::{send, start, text_of};

mod fixture {
    flapi_macros::project!("tests/fixtures/mcp");
}

/// A server for the fixture on 127.0.0.1:0.
struct Server {
    app: App,
    url: String,
}

async fn serve() -> Server {
    let app = start(&fixture::PROJECT);
    let url = common::listen(app.router.clone()).await;
    Server { app, url }
}

async fn client(server: &Server) -> RunningService<RoleClient, ()> {
    let transport = StreamableHttpClientTransport::from_uri(format!("{}/mcp", server.url));
    ().serve(transport).await.expect("initialize")
}

fn args(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => panic!("arguments must be an object, got {other}"),
    }
}

async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &'static str,
    arguments: Value,
) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args(arguments)))
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool} failed at the protocol level: {e}"))
}

fn error_text(result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected an error result, got {}",
        text_of(result)
    );
    text_of(result)
}

fn structured(result: &CallToolResult) -> &Value {
    assert_ne!(
        result.is_error,
        Some(true),
        "tool failed: {}",
        text_of(result)
    );
    result
        .structured_content
        .as_ref()
        .expect("structuredContent")
}

#[tokio::test]
async fn initialize_and_list_over_streamable_http() {
    let server = serve().await;
    let client = client(&server).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("mcp-fixture")
    );
    assert_eq!(
        info.instructions.as_deref(),
        Some("Fixture server for the MCP tests.")
    );
    assert!(info.capabilities.tools.is_some());
    assert!(info.capabilities.resources.is_some());
    assert!(info.capabilities.prompts.is_some());
    assert!(info.capabilities.completions.is_some());

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["broken", "numbers", "pages", "slow", "typed"])
    );
    let pages = tools.iter().find(|t| t.name == "pages").expect("pages");
    assert_eq!(pages.title.as_deref(), Some("Paged numbers"));
    let hints = pages.annotations.as_ref().expect("annotations");
    assert_eq!(hints.read_only_hint, Some(true));
    assert_eq!(hints.destructive_hint, Some(false));
    assert_eq!(hints.idempotent_hint, Some(true));
    assert_eq!(hints.open_world_hint, Some(false));
    assert_eq!(
        pages.input_schema.get("additionalProperties"),
        Some(&json!(false))
    );

    let resources = client.list_all_resources().await.expect("resources/list");
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].uri, "flapi://colors");
    assert_eq!(resources[0].mime_type.as_deref(), Some("application/json"));

    let prompts = client.list_all_prompts().await.expect("prompts/list");
    assert_eq!(prompts.len(), 1);
    let arguments = prompts[0].arguments.as_ref().expect("arguments");
    assert_eq!(arguments[0].name, "name");
    assert_eq!(arguments[0].required, Some(true));

    client
        .send_request(ClientRequest::PingRequest(Default::default()))
        .await
        .expect("ping");
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await
        .expect("logging/setLevel");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn tools_return_rows_by_value() {
    let server = serve().await;
    let client = client(&server).await;

    let result = call(
        &client,
        "typed",
        json!({
            "i": 42, "x": -1.25, "flag": true, "code": "ABC", "color": "green",
            "day": "2024-02-29", "at": "10:11:12Z", "ts": "2024-01-02T03:04:05+01:00",
            "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        }),
    )
    .await;
    let body = structured(&result);
    assert_eq!(body["row_count"], 1);
    assert_eq!(body["truncated"], false);
    assert_eq!(
        body["rows"][0],
        json!({
            "i": 42, "x": -1.25, "flag": true, "code": "ABC", "color": "green",
            "day": "2024-02-29", "at": "10:11:12", "ts": "2024-01-02T02:04:05",
            "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "mail": "nobody@example.com"
        })
    );
    // The text content is the same JSON.
    let text: Value = serde_json::from_str(&text_of(&result)).expect("text is JSON");
    assert_eq!(&text, body);

    // Optional arguments left out (or null) are NULL; defaults apply.
    let result = call(&client, "typed", json!({"i": 1, "color": "red", "x": null})).await;
    let row = &structured(&result)["rows"][0];
    assert_eq!(row["x"], Value::Null);
    assert_eq!(row["code"], Value::Null);
    assert_eq!(row["mail"], "nobody@example.com");

    // An unpaginated tool is capped at mcp.max-rows (5) and says so.
    let result = call(&client, "numbers", json!({"n": 7})).await;
    let body = structured(&result);
    assert_eq!(
        body["rows"],
        json!([{"i":0},{"i":1},{"i":2},{"i":3},{"i":4}])
    );
    assert_eq!(body["row_count"], 5);
    assert_eq!(body["truncated"], true);
    let result = call(&client, "numbers", json!({"n": 3})).await;
    assert_eq!(structured(&result)["truncated"], false);
    assert_eq!(structured(&result)["row_count"], 3);

    // A paginated tool takes limit/offset like REST.
    let result = call(&client, "pages", json!({"limit": 10, "offset": 20})).await;
    let body = structured(&result);
    assert_eq!(
        body["rows"],
        json!([{"i":20},{"i":21},{"i":22},{"i":23},{"i":24}])
    );
    assert_eq!(body["total_count"], 25);
    assert_eq!(body["truncated"], false);
    let result = call(&client, "pages", json!({"limit": 3})).await;
    let body = structured(&result);
    assert_eq!(body["rows"], json!([{"i":0},{"i":1},{"i":2}]));
    assert_eq!(body["truncated"], true);
    // REST serves the same rows from the same plan.
    let rest = common::get(&server.app.router, "/pages?limit=3")
        .await
        .json();
    assert_eq!(rest["data"], body["rows"]);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_that_name_the_argument() {
    let server = serve().await;
    let client = client(&server).await;
    let cases = [
        (json!({"color": "red"}), "`i` is required"),
        (json!({"i": 0, "color": "red"}), "`i` must be at least 1"),
        (
            json!({"i": "5", "color": "red"}),
            "`i` must be an integer, not a string",
        ),
        (
            json!({"i": 1.5, "color": "red"}),
            "`i` must be a 64-bit integer",
        ),
        (json!({"i": 1, "color": "pink"}), "`color` must be one of"),
        (
            json!({"i": 1, "color": "red", "x": 2}),
            "`x` must be at most 1.5",
        ),
        (
            json!({"i": 1, "color": "red", "flag": "yes"}),
            "`flag` must be a boolean",
        ),
        (json!({"i": 1, "color": "red", "code": "abc"}), "`code`"),
        (
            json!({"i": 1, "color": "red", "day": "2023-12-31"}),
            "`day`",
        ),
        (json!({"i": 1, "color": "red", "at": "25:00"}), "`at`"),
        (json!({"i": 1, "color": "red", "id": "not-a-uuid"}), "`id`"),
        (json!({"i": 1, "color": "red", "mail": "nobody"}), "`mail`"),
        (
            json!({"i": 1, "color": "red", "extra": 1}),
            "`extra` is not an argument of this tool",
        ),
        (
            json!({"i": [1], "color": "red"}),
            "`i` must be an integer, not an array",
        ),
    ];
    for (arguments, expected) in cases {
        let result = call(&client, "typed", arguments.clone()).await;
        let message = error_text(&result);
        assert!(
            message.contains(expected),
            "{arguments}: expected `{expected}` in `{message}`"
        );
        assert!(result.structured_content.is_none());
    }
    // Pagination arguments are checked too.
    let message = error_text(&call(&client, "pages", json!({"limit": -1})).await);
    assert!(
        message.contains("`limit` must be a non-negative integer"),
        "{message}"
    );

    // A failure inside DuckDB is a tool error without DuckDB's text.
    let message = error_text(&call(&client, "broken", json!({"v": "abc"})).await);
    assert!(message.contains("request id"), "{message}");
    for leak in ["Conversion", "abc", "INTEGER", "CAST", "SELECT", "sqls/"] {
        assert!(!message.contains(leak), "`{leak}` leaked: {message}");
    }

    // An unknown tool is a protocol error.
    let unknown = client
        .call_tool(CallToolRequestParams::new("nope").with_arguments(JsonObject::new()))
        .await;
    match unknown {
        Err(ServiceError::McpError(e)) => {
            assert_eq!(e.code.0, -32602);
            assert!(e.message.contains("unknown tool `nope`"));
        }
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn resources_prompts_and_completion() {
    let server = serve().await;
    let client = client(&server).await;

    let read = client
        .read_resource(ReadResourceRequestParams::new("flapi://colors"))
        .await
        .expect("resources/read");
    let ResourceContents::TextResourceContents {
        text,
        mime_type,
        uri,
        ..
    } = &read.contents[0]
    else {
        panic!("expected text contents");
    };
    assert_eq!(uri, "flapi://colors");
    assert_eq!(mime_type.as_deref(), Some("application/json"));
    let rows: Value = serde_json::from_str(text).expect("JSON");
    assert_eq!(
        rows,
        json!([{"name":"red","rank":1},{"name":"green","rank":2},{"name":"blue","rank":3}])
    );
    let missing = client
        .read_resource(ReadResourceRequestParams::new("flapi://nothing"))
        .await;
    assert!(
        matches!(missing, Err(ServiceError::McpError(_))),
        "{missing:?}"
    );

    let prompt =
        |arguments: Value| GetPromptRequestParams::new("greet").with_arguments(args(arguments));
    let got = client
        .get_prompt(prompt(json!({"name": "Ada", "mood": "happy"})))
        .await
        .expect("prompts/get");
    assert_eq!(got.description.as_deref(), Some("Greets someone."));
    assert_eq!(prompt_text(&got), "Hello Ada! You seem happy.");
    let got = client
        .get_prompt(prompt(json!({"name": "Bob"})))
        .await
        .expect("prompts/get");
    assert_eq!(prompt_text(&got), "Hello Bob! How are you?");
    // A prompt argument is text, never SQL: quotes pass through unchanged.
    let got = client
        .get_prompt(prompt(json!({"name": "O'Brien'; DROP TABLE x; --"})))
        .await
        .expect("prompts/get");
    assert_eq!(
        prompt_text(&got),
        "Hello O'Brien'; DROP TABLE x; --! How are you?"
    );
    for (bad, expected) in [
        (json!({}), "`name` is required"),
        (
            json!({"name": "x", "mood": "angry"}),
            "`mood` must be one of",
        ),
        (json!({"name": "x", "age": "3"}), "`age` is not an argument"),
        (json!({"name": 3}), "`name` must be a string"),
    ] {
        match client.get_prompt(prompt(bad.clone())).await {
            Err(ServiceError::McpError(e)) => {
                assert!(e.message.contains(expected), "{bad}: {}", e.message)
            }
            other => panic!("{bad}: expected an error, got {other:?}"),
        }
    }

    let complete = |name: &str, argument: &str, value: &str| {
        CompleteRequestParams::new(
            Reference::for_prompt(name),
            ArgumentInfo::new(argument, value),
        )
    };
    let done = client
        .complete(complete("greet", "mood", "h"))
        .await
        .expect("complete");
    assert_eq!(done.completion.values, vec!["happy", "hungry"]);
    // A tool's enum argument, referenced by the tool's name.
    let done = client
        .complete(complete("typed", "color", ""))
        .await
        .expect("complete");
    assert_eq!(done.completion.values, vec!["red", "green", "blue"]);
    let done = client
        .complete(complete("typed", "color", "G"))
        .await
        .expect("complete");
    assert_eq!(done.completion.values, vec!["green"]);
    let done = client
        .complete(complete("typed", "i", ""))
        .await
        .expect("complete");
    assert!(done.completion.values.is_empty());
    client.cancel().await.expect("close");
}

fn prompt_text(result: &GetPromptResult) -> &str {
    result.messages[0]
        .content
        .as_text()
        .map(|t| t.text.as_str())
        .expect("a text message")
}

/// Waits (without sleeping) until the pool's counters satisfy `done`.
async fn wait_for_stats(
    server: &Server,
    what: &str,
    done: impl FnMut(&flapi::db::QueryStats) -> bool,
) -> flapi::db::QueryStats {
    let mut stats = server.app.db.stats();
    let waited = tokio::time::timeout(Duration::from_secs(120), async {
        stats.wait_for(done).await.map(|s| *s)
    })
    .await;
    match waited {
        Ok(Ok(s)) => s,
        _ => panic!(
            "gave up waiting for {what}: {:?}",
            *server.app.db.stats().borrow()
        ),
    }
}

#[tokio::test]
async fn a_cancelled_call_stops_the_query_in_duckdb() {
    let server = serve().await;
    let client = client(&server).await;
    let request = ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
        CallToolRequestParams::new("slow"),
    ));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .expect("send tools/call");
    wait_for_stats(&server, "the slow query to start", |s| s.started >= 1).await;
    handle
        .cancel(Some("the test cancels".into()))
        .await
        .expect("notifications/cancelled");
    // The query has a 10-minute deadline: only the interrupt ends it now.
    let stats = wait_for_stats(&server, "the interrupt", |s| s.finished >= 1).await;
    assert_eq!(stats.cancelled, 1, "{stats:?}");
    assert_eq!(stats.timed_out, 0, "{stats:?}");
    // The connection is back in the pool and serves the next call.
    let result = call(&client, "numbers", json!({"n": 2})).await;
    assert_eq!(structured(&result)["row_count"], 2);
    client.cancel().await.expect("close");
}

async fn post_jsonrpc(app: &App, body: Value, extra: &[(&str, &str)]) -> common::Reply {
    let mut request = Request::post("/mcp/jsonrpc")
        .header("content-type", "application/json")
        .header("host", "127.0.0.1:8080");
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    send(
        &app.router,
        request.body(Body::from(body.to_string())).expect("request"),
    )
    .await
}

#[tokio::test]
async fn plain_jsonrpc_needs_only_a_content_type() {
    let app = start(&fixture::PROJECT);
    let reply = post_jsonrpc(
        &app,
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["id"], 1);
    let names: BTreeSet<String> = body["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        names.contains("typed") && names.contains("pages"),
        "{names:?}"
    );

    let reply = post_jsonrpc(
        &app,
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"numbers","arguments":{"n":2}}}),
        &[],
    )
    .await;
    let body = reply.json();
    assert_eq!(
        body["result"]["structuredContent"]["rows"],
        json!([{"i":0},{"i":1}])
    );

    // Every protocol version rmcp speaks is negotiated as asked.
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let reply = post_jsonrpc(
            &app,
            json!({"jsonrpc":"2.0","id":3,"method":"initialize","params":{
                "protocolVersion": version, "capabilities": {},
                "clientInfo": {"name": "curl", "version": "1"}}}),
            &[],
        )
        .await;
        let body = reply.json();
        assert_eq!(body["result"]["protocolVersion"], version, "{body}");
        assert_eq!(body["result"]["serverInfo"]["name"], "mcp-fixture");
    }
}

#[tokio::test]
async fn host_and_origin_are_checked() {
    let app = start(&fixture::PROJECT);
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
    // DNS rebinding: a Host the project does not list is refused.
    let mut request = Request::post("/mcp/jsonrpc")
        .header("content-type", "application/json")
        .header("host", "attacker.example");
    request = request.header("accept", "application/json");
    let reply = send(
        &app.router,
        request.body(Body::from(list.to_string())).expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    // No origin is listed in the fixture: a browser origin is refused.
    let reply = post_jsonrpc(&app, list.clone(), &[("origin", "http://attacker.example")]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    // Both checks guard the Streamable HTTP endpoint as well.
    let reply = send(
        &app.router,
        Request::post("/mcp")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("host", "attacker.example")
            .body(Body::from(list.to_string()))
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
}

#[tokio::test]
async fn input_schemas_are_valid_json_schema_and_enforced() {
    let server = serve().await;
    let client = client(&server).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let typed = tools.iter().find(|t| t.name == "typed").expect("typed");
    let schema = Value::Object((*typed.input_schema).clone());
    jsonschema::meta::validate(&schema).expect("a valid JSON Schema");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("compiles");
    // The schema carries each validator type's constraints.
    let props = &schema["properties"];
    assert_eq!(
        props["i"],
        json!({"type": "integer", "minimum": 1, "maximum": 100, "description": "A whole number."})
    );
    assert_eq!(
        props["x"],
        json!({"type": "number", "minimum": -1.5, "maximum": 1.5})
    );
    assert_eq!(props["flag"], json!({"type": "boolean"}));
    assert_eq!(
        props["code"],
        json!({"type": "string", "pattern": "^(?:[A-Z]{3})$", "minLength": 3, "maxLength": 3})
    );
    assert_eq!(
        props["color"],
        json!({"type": "string", "enum": ["red", "green", "blue"]})
    );
    assert_eq!(
        props["day"],
        json!({"type": "string", "format": "date", "description": "From 2024-01-01 to 2024-12-31."})
    );
    assert_eq!(props["at"], json!({"type": "string", "format": "time"}));
    assert_eq!(
        props["ts"],
        json!({"type": "string", "format": "date-time"})
    );
    assert_eq!(props["id"], json!({"type": "string", "format": "uuid"}));
    assert_eq!(
        props["mail"],
        json!({"type": "string", "format": "email", "default": "nobody@example.com"})
    );
    assert_eq!(schema["required"], json!(["i", "color"]));
    assert_eq!(schema["additionalProperties"], json!(false));

    let valid = json!({"i": 5, "color": "blue", "x": 0.5, "flag": false, "code": "XYZ",
        "at": "08:00:00Z", "ts": "2024-05-06T07:08:09Z",
        "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "mail": "a@b.example"});
    assert!(validator.is_valid(&valid));
    assert_ne!(call(&client, "typed", valid).await.is_error, Some(true));
    // Every violation the schema states is also refused by the server.
    let violations = [
        json!({"color": "blue"}),
        json!({"i": 101, "color": "blue"}),
        json!({"i": "1", "color": "blue"}),
        json!({"i": 1, "color": "cyan"}),
        json!({"i": 1, "color": "blue", "x": -2}),
        json!({"i": 1, "color": "blue", "flag": 1}),
        json!({"i": 1, "color": "blue", "code": "ABCD"}),
        json!({"i": 1, "color": "blue", "code": "ab1"}),
        json!({"i": 1, "color": "blue", "id": "123"}),
        json!({"i": 1, "color": "blue", "mail": "no-at-sign"}),
        json!({"i": 1, "color": "blue", "ts": "yesterday"}),
        json!({"i": 1, "color": "blue", "unknown": true}),
    ];
    for arguments in violations {
        assert!(
            !validator.is_valid(&arguments),
            "schema accepts {arguments}"
        );
        let result = call(&client, "typed", arguments.clone()).await;
        assert_eq!(result.is_error, Some(true), "server accepts {arguments}");
    }
    for tool in &tools {
        let schema = Value::Object((*tool.input_schema).clone());
        jsonschema::meta::validate(&schema)
            .unwrap_or_else(|e| panic!("{}: invalid schema: {e}", tool.name));
    }
    client.cancel().await.expect("close");
}

#[test]
fn tool_results_match_the_declared_output_schema() {
    // The declared output schema is itself valid JSON Schema and accepts
    // the payload shape the server sends.
    let app = start(&fixture::PROJECT);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let reply = runtime.block_on(post_jsonrpc(
        &app,
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        &[],
    ));
    let body = reply.json();
    let output = &body["result"]["tools"][0]["outputSchema"];
    jsonschema::meta::validate(output).expect("valid output schema");
    let validator = jsonschema::validator_for(output).expect("compiles");
    let reply = runtime.block_on(post_jsonrpc(
        &app,
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"pages","arguments":{"limit":2}}}),
        &[],
    ));
    let structured = &reply.json()["result"]["structuredContent"];
    assert!(validator.is_valid(structured), "{structured}");
    assert_eq!(structured["row_count"], 2);
}
