//! The call pipeline without a transport (`flapi::call`): a decision table
//! over access, enforcement mode, rate limit and dry run, each answer
//! checked against the rule it follows and against its audit record; and
//! over the transports, one rate-limit bucket per endpoint whether REST,
//! an MCP tool or an MCP resource calls it.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use flapi::App;
use flapi::audit::decision;
use flapi::auth::{AuthKind, Principal};
use flapi::call::{Arguments, Call, Credentials, Item, Outcome, Refusal};
use flapi::runtime::{RequestInput, RoleMask};
use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams};
use serde_json::Value;

use common::{basic, mcp_client, send, text_of};

mod fixture {
    flapi_macros::project!("tests/fixtures/pipeline");
}

fn audit_file(name: &str) -> PathBuf {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random");
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::env::temp_dir().join(format!("flapi-pipeline-{name}-{suffix}.jsonl"))
}

fn start(audit: &Path) -> App {
    let mut options = common::fixture_options(&fixture::PROJECT);
    options.audit_file = Some(audit.to_path_buf());
    common::start_with(&fixture::PROJECT, options)
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("audit file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// The roles `name` grants, inherited ones included.
fn grants(name: &str) -> RoleMask {
    fixture::PROJECT
        .auth
        .roles
        .iter()
        .find(|r| r.name == name)
        .map(|r| r.grants)
        .expect("a fixture role")
}

fn principal(subject: &str, role: &str) -> Arc<Principal> {
    Arc::new(Principal {
        subject: subject.to_string(),
        kind: AuthKind::Basic,
        roles: grants(role),
        email: None,
        claims: Vec::new(),
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    /// Holds the endpoint's role and the dry-run role.
    Admin,
    /// Lacks the endpoint's role, holds the dry-run role.
    Developer,
    /// Holds neither.
    Viewer,
}

impl Caller {
    fn role(self) -> &'static str {
        match self {
            Caller::Admin => "admin",
            Caller::Developer => "developer",
            Caller::Viewer => "viewer",
        }
    }
    fn allowed(self) -> bool {
        self == Caller::Admin
    }
    fn may_dry_run(self) -> bool {
        self != Caller::Viewer
    }
}

#[derive(Debug, PartialEq)]
enum Kind {
    Rows,
    Report,
    Forbidden,
    /// A tool the caller may not call: answered like an unknown one.
    Hidden,
    DryRunForbidden,
    RateLimited,
}

/// The rules of SPEC §9–§12 for one call, written out: a dry run needs a
/// dry-run role and is never refused for access; enforced access comes
/// before the rate limit; shadow mode records what it would refuse and
/// serves.
fn expected(
    tool: bool,
    caller: Caller,
    shadow: bool,
    exhausted: bool,
    dry_run: bool,
) -> (Kind, &'static str) {
    // A tool the caller may not call does not exist for it, whatever the
    // call asks (a dry-run role may still dry-run it).
    let dry_runner = dry_run && caller.may_dry_run();
    if tool && !caller.allowed() && !shadow && !dry_runner {
        return (Kind::Hidden, decision::DENY);
    }
    if dry_run && !caller.may_dry_run() {
        return (Kind::DryRunForbidden, decision::DENY);
    }
    if !dry_run && !caller.allowed() && !shadow {
        return (Kind::Forbidden, decision::DENY);
    }
    if exhausted && !shadow {
        return (Kind::RateLimited, decision::RATE_LIMITED);
    }
    if dry_run {
        return (Kind::Report, decision::DRY_RUN);
    }
    let would_deny = !caller.allowed() || exhausted;
    (
        Kind::Rows,
        if would_deny {
            decision::WOULD_DENY
        } else {
            decision::ALLOW
        },
    )
}

/// Whether a call gets past the role decision to the rate limit.
fn reaches_limiter(caller: Caller, shadow: bool, dry_run: bool) -> bool {
    if dry_run {
        caller.may_dry_run()
    } else {
        caller.allowed() || shadow
    }
}

fn kind(outcome: &Outcome) -> Kind {
    match outcome {
        Outcome::Rows { .. } => Kind::Rows,
        Outcome::Report(_) => Kind::Report,
        Outcome::Refused(Refusal::Forbidden) => Kind::Forbidden,
        Outcome::Refused(Refusal::Hidden) => Kind::Hidden,
        Outcome::Refused(Refusal::DryRunForbidden) => Kind::DryRunForbidden,
        Outcome::Refused(Refusal::RateLimited(_)) => Kind::RateLimited,
        other => panic!("an outcome outside the table: {other:?}"),
    }
}

fn item(tool: bool, shadow: bool) -> Item {
    let name = if shadow { "shadowed" } else { "enforced" };
    if tool {
        Item::Tool(name.to_string())
    } else {
        let route = format!("/{name}");
        let endpoint = fixture::PROJECT
            .endpoints
            .iter()
            .find(|e| e.route == Some(route.as_str()))
            .expect("a fixture route");
        Item::Route(endpoint)
    }
}

fn arguments(tool: bool, dry_run: bool) -> Arguments {
    if tool {
        let mut object = serde_json::Map::new();
        if dry_run {
            object.insert("_dryRun".into(), Value::Bool(true));
        }
        Arguments::Json(object)
    } else {
        let mut input = RequestInput::default();
        if dry_run {
            input.query.push(("_dryRun".into(), "true".into()));
        }
        Arguments::Text {
            input,
            accept: None,
            errors: Default::default(),
        }
    }
}

fn call(id: &str, item: Item, who: Arc<Principal>, arguments: Arguments) -> Call {
    Call {
        request_id: id.to_string(),
        item,
        credentials: Credentials::Verified(Some(who)),
        client: None,
        arguments,
        cancel: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_access_shadow_rate_and_dry_run_combination() {
    let audit = audit_file("table");
    let app = start(&audit);
    let mut answers: HashMap<String, (&'static str, &'static str)> = HashMap::new();
    let mut cases = 0;
    for tool in [false, true] {
        for shadow in [false, true] {
            for exhausted in [false, true] {
                for dry_run in [false, true] {
                    for caller in [Caller::Admin, Caller::Developer, Caller::Viewer] {
                        // A subject of its own, so each case has its own bucket.
                        let subject = format!("{caller:?}-{tool}-{shadow}-{exhausted}-{dry_run}");
                        if exhausted {
                            // The same subject as an admin spends the one call.
                            let prime = call(
                                &format!("prime-{subject}"),
                                item(tool, shadow),
                                principal(&subject, "admin"),
                                arguments(tool, false),
                            );
                            let primed = app.pipeline.run(prime).await;
                            assert_eq!(kind(&primed.outcome), Kind::Rows, "{subject}");
                        }
                        let id = format!("case-{subject}");
                        let answer = app
                            .pipeline
                            .run(call(
                                &id,
                                item(tool, shadow),
                                principal(&subject, caller.role()),
                                arguments(tool, dry_run),
                            ))
                            .await;
                        let want = expected(tool, caller, shadow, exhausted, dry_run);
                        assert_eq!((kind(&answer.outcome), answer.decision), want, "{subject}");
                        assert_eq!(
                            answer.rate.is_some_and(|r| !r.allowed),
                            exhausted && reaches_limiter(caller, shadow, dry_run),
                            "{subject}: refused by the limiter exactly when the call got that far"
                        );
                        answers.insert(id, (answer.decision, if tool { "mcp" } else { "rest" }));
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 48);
    // Every answer was recorded once, with the decision it was given.
    let recorded: Vec<Value> = records(&audit)
        .into_iter()
        .filter(|r| {
            r["request_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("case-"))
        })
        .collect();
    assert_eq!(recorded.len(), answers.len());
    for record in &recorded {
        let id = record["request_id"].as_str().unwrap_or_default();
        let (decision, transport) = answers.get(id).copied().expect("a case's record");
        assert_eq!(record["decision"], decision, "{id}");
        assert_eq!(record["transport"], transport, "{id}");
    }
    let _ = std::fs::remove_file(&audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_tool_and_resource_draw_from_one_bucket() {
    let audit = audit_file("bucket");
    let app = start(&audit);
    let url = common::listen(app.router.clone()).await;
    // carol's one call an hour on `enforced`, spent over REST …
    let request = Request::get("/enforced")
        .header("authorization", basic("carol"))
        .body(Body::empty())
        .expect("request");
    let reply = send(&app.router, request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("ratelimit"), Some("\"route\";r=0;t=0"));

    // … is spent for the tool …
    let client = mcp_client(&url, Some(&basic("carol")))
        .await
        .expect("connect");
    let refused = client
        .call_tool(CallToolRequestParams::new("enforced"))
        .await
        .expect("tools/call");
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text_of(&refused).contains("Rate limit reached"),
        "{}",
        text_of(&refused)
    );
    // … and for the resource, which is limited like the tool.
    let read = client
        .read_resource(ReadResourceRequestParams::new("flapi://enforced_items"))
        .await;
    let error = read.expect_err("the resource shares the endpoint's bucket");
    assert!(error.to_string().contains("Rate limit reached"), "{error}");

    // Another caller's bucket is untouched: alice is refused for access
    // (she lacks the role), not for rate.
    let alice = mcp_client(&url, Some(&basic("alice")))
        .await
        .expect("connect");
    let denied = alice
        .read_resource(ReadResourceRequestParams::new("flapi://enforced_items"))
        .await
        .expect_err("alice may not read it");
    assert!(!denied.to_string().contains("Rate limit"), "{denied}");
    client.cancel().await.expect("close");
    alice.cancel().await.expect("close");

    let summary: Vec<String> = records(&audit)
        .iter()
        .filter(|r| r["target"] != "" && r["method"] != "initialize")
        .map(|r| {
            format!(
                "{} {} {} {} {} {}",
                r["transport"].as_str().unwrap_or(""),
                r["method"].as_str().unwrap_or(""),
                r["target"].as_str().unwrap_or(""),
                r["decision"].as_str().unwrap_or(""),
                r["status"],
                r["principal"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "server start pipeline-fixture allow 0 -",
            "rest GET /enforced allow 200 carol",
            "mcp tools/call enforced rate_limited 429 carol",
            "mcp resources/read flapi://enforced_items rate_limited 429 carol",
            "mcp resources/read flapi://enforced_items deny 404 alice",
        ],
        "records"
    );
    let _ = std::fs::remove_file(&audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_keeps_its_own_roles_beside_a_tool() {
    let audit = audit_file("split");
    let app = start(&audit);
    let run = |item: Item, role: &'static str, id: &'static str| {
        let pipeline = app.pipeline.clone();
        async move {
            let arguments = match &item {
                Item::Resource(_) => Arguments::None,
                _ => Arguments::Json(serde_json::Map::new()),
            };
            pipeline
                .run(call(id, item, principal(id, role), arguments))
                .await
        }
    };
    let resource = || Item::Resource("flapi://split_items".into());
    let tool = || Item::Tool("split_tool".into());
    assert_eq!(
        kind(&run(resource(), "viewer", "v-res").await.outcome),
        Kind::Rows
    );
    assert_eq!(
        kind(&run(tool(), "viewer", "v-tool").await.outcome),
        Kind::Hidden
    );
    assert_eq!(
        kind(&run(tool(), "admin", "a-tool").await.outcome),
        Kind::Rows
    );
    let _ = std::fs::remove_file(&audit);
}
