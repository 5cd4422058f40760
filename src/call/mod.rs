//! The life of one call, whatever transport carried it: find the item,
//! authenticate, decide (allow / deny / would-deny in shadow mode),
//! rate-limit, validate the arguments, bind the caller's values, shape,
//! then run, dry-run or sample, and audit (SPEC §5, §6, §9–§12).
//!
//! REST (`src/http/rest.rs`) and MCP (`src/mcp/`) only turn their
//! request into a [`Call`] and the [`Answer`] into their response; every
//! policy decision is taken here, once.

pub mod arguments;
pub mod policy;
pub mod ratelimit;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderMap;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::audit::{Auditor, Record, decision};
use crate::auth::{AuthError, Authenticator, Principal};
use crate::db::encode::Format;
use crate::db::{Database, Page, PageResult, QueryError, QuerySpec, run_query, sample_query};
use crate::runtime::{Access, EndpointDef, FieldErrors, Plan, ProjectDef};
use arguments::Flags;
use policy::{Shape, Verdict, dry_run_report, may_dry_run, role_names};
use ratelimit::{Decision, RateLimits};

pub use arguments::Arguments;

/// What a call asks for.
#[derive(Debug, Clone)]
pub enum Item {
    /// A REST route, found by the router.
    Route(&'static EndpointDef),
    /// An MCP tool, by name.
    Tool(String),
    /// An MCP resource, by URI.
    Resource(String),
}

/// Which face of an endpoint a call uses: it decides the access list
/// (`rest_access` or `mcp_access`), the rate-limit bucket and how a
/// refusal is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Route,
    Tool,
    Resource,
}

impl Item {
    pub fn face(&self) -> Face {
        match self {
            Item::Route(_) => Face::Route,
            Item::Tool(_) => Face::Tool,
            Item::Resource(_) => Face::Resource,
        }
    }
}

impl Face {
    /// The transport and method an audit record names.
    fn method(self) -> (&'static str, &'static str) {
        match self {
            Face::Route => ("rest", "GET"),
            Face::Tool => ("mcp", "tools/call"),
            Face::Resource => ("mcp", "resources/read"),
        }
    }

    fn access(self, endpoint: &EndpointDef) -> Access {
        match self {
            Face::Route => endpoint.rest_access,
            Face::Tool => endpoint.mcp_access,
            Face::Resource => endpoint.resource_access,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// The request's headers, verified here when the item needs a caller
    /// (REST: a public route needs nobody, unless a dry run asks).
    Headers(HeaderMap),
    /// A caller the transport verified already (MCP's gate), or none when
    /// the transport does not authenticate.
    Verified(Option<Arc<Principal>>),
}

/// One call, as a transport hands it over.
#[derive(Debug)]
pub struct Call {
    pub request_id: String,
    pub item: Item,
    pub credentials: Credentials,
    /// The TCP peer, for rate limits of anonymous callers.
    pub client: Option<IpAddr>,
    /// Arguments as sent, flags (`_dryRun`, `format`, `limit`, `offset`)
    /// included: they are read here.
    pub arguments: Arguments,
    /// Raced against the query: cancelling it interrupts DuckDB.
    pub cancel: Option<CancellationToken>,
}

/// Why a call did not run.
#[derive(Debug)]
pub enum Refusal {
    /// No such tool or resource.
    NotFound,
    /// No or bad credentials.
    Unauthenticated(Option<AuthError>),
    /// A verified caller without a permitted role.
    Forbidden,
    /// The same, for an item that is answered like one that does not
    /// exist (MCP resources).
    Hidden,
    DryRunForbidden,
    RateLimited(Decision),
    Invalid(FieldErrors),
    Failed(QueryError),
    /// The audit log cannot be written and the server fails closed.
    Unavailable,
}

/// What a call produced.
#[derive(Debug)]
pub enum Outcome {
    Rows {
        result: PageResult,
        page: Option<Page>,
        format: Format,
    },
    /// A dry run's report: nothing was executed.
    Report(Value),
    /// `response.sample`: row count and columns, no rows.
    Sample(Value),
    Refused(Refusal),
}

/// The outcome with its audit decision and rate-limit state.
#[derive(Debug)]
pub struct Answer {
    pub outcome: Outcome,
    /// As recorded: `allow`, `deny`, `would_deny`, `rate_limited`, ...
    pub decision: &'static str,
    /// The endpoint's rate-limit decision for this caller, if it has one.
    pub rate: Option<Decision>,
}

impl Answer {
    /// The status an HTTP response (or an MCP record) gives it.
    pub fn status(&self) -> u16 {
        match &self.outcome {
            Outcome::Rows { .. } | Outcome::Report(_) | Outcome::Sample(_) => 200,
            Outcome::Refused(refusal) => refusal.status(),
        }
    }

    fn refused(refusal: Refusal) -> Answer {
        Answer {
            decision: refusal.decision(),
            outcome: Outcome::Refused(refusal),
            rate: None,
        }
    }
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NotFound | Refusal::Hidden => 404,
            Refusal::Unauthenticated(error) => error.map_or(401, AuthError::status),
            Refusal::Forbidden | Refusal::DryRunForbidden => 403,
            Refusal::RateLimited(_) => 429,
            Refusal::Invalid(_) => 400,
            Refusal::Failed(error) => error.status(),
            Refusal::Unavailable => 503,
        }
    }

    fn decision(&self) -> &'static str {
        match self {
            Refusal::NotFound => decision::NOT_FOUND,
            Refusal::Unauthenticated(Some(AuthError::Throttled(_))) => decision::RATE_LIMITED,
            Refusal::Unauthenticated(Some(AuthError::Busy)) => decision::UNAVAILABLE,
            Refusal::Unauthenticated(_)
            | Refusal::Forbidden
            | Refusal::Hidden
            | Refusal::DryRunForbidden => decision::DENY,
            Refusal::RateLimited(_) => decision::RATE_LIMITED,
            Refusal::Invalid(_) => decision::INVALID,
            Refusal::Failed(_) => decision::ERROR,
            Refusal::Unavailable => decision::UNAVAILABLE,
        }
    }
}

/// Everything a call needs, built once at start-up and shared by every
/// transport.
pub struct Pipeline {
    pub project: &'static ProjectDef,
    pub db: Arc<Database>,
    pub auth: Arc<Authenticator>,
    pub audit: Arc<Auditor>,
    limits: RateLimits,
    tools: HashMap<&'static str, &'static EndpointDef>,
    resources: HashMap<String, &'static EndpointDef>,
}

/// The URI an MCP client reads a resource by.
pub fn resource_uri(name: &str) -> String {
    format!("flapi://{name}")
}

/// A call's progress, kept for its answer and its record.
struct Progress {
    decision: &'static str,
    rate: Option<Decision>,
}

impl Progress {
    fn answer(self, outcome: Outcome) -> Answer {
        Answer {
            outcome,
            decision: self.decision,
            rate: self.rate,
        }
    }

    /// A refusal after the policy decided: a `would_deny` (shadow mode) or
    /// `dry_run` already decided stays the record's decision.
    fn refuse(self, refusal: Refusal) -> Answer {
        let decided = self.decision != decision::ALLOW;
        let mut answer = Answer::refused(refusal);
        if decided {
            answer.decision = self.decision;
        }
        answer.rate = self.rate;
        answer
    }
}

impl Pipeline {
    pub fn new(
        project: &'static ProjectDef,
        db: Arc<Database>,
        auth: Arc<Authenticator>,
        audit: Arc<Auditor>,
    ) -> Arc<Pipeline> {
        let tools = project
            .endpoints
            .iter()
            .filter_map(|e| e.tool.as_ref().map(|t| (t.name, e)))
            .collect();
        let resources = project
            .endpoints
            .iter()
            .filter_map(|e| e.resource.as_ref().map(|r| (resource_uri(r.name), e)))
            .collect();
        Arc::new(Pipeline {
            limits: RateLimits::new(project),
            project,
            db,
            auth,
            audit,
            tools,
            resources,
        })
    }

    /// The endpoint behind an MCP tool name.
    pub fn tool(&self, name: &str) -> Option<&'static EndpointDef> {
        self.tools.get(name).copied()
    }

    /// The endpoint behind an MCP resource URI.
    pub fn resource(&self, uri: &str) -> Option<&'static EndpointDef> {
        self.resources.get(uri).copied()
    }

    fn find(&self, item: &Item) -> Option<&'static EndpointDef> {
        match item {
            Item::Route(endpoint) => Some(endpoint),
            Item::Tool(name) => self.tool(name),
            Item::Resource(uri) => self.resource(uri),
        }
    }

    /// Runs the whole life of a call and records it; the answer of a call
    /// whose record cannot be written is `Unavailable` (fail-closed).
    pub async fn run(&self, call: Call) -> Answer {
        let started = Instant::now();
        let face = call.item.face();
        let endpoint = self.find(&call.item);
        let (transport, method) = face.method();
        let target = match &call.item {
            Item::Route(e) => e.route.unwrap_or(e.id),
            Item::Tool(name) | Item::Resource(name) => name.as_str(),
        };
        let mut record = Record::new(&call.request_id, transport, method, target);
        if let Credentials::Verified(Some(principal)) = &call.credentials {
            self.note_caller(&mut record, principal);
        }
        // Arguments are recorded for items that exist only: a name nobody
        // serves gets no room in the log for what a caller sends with it.
        if endpoint.is_some() {
            record.arguments = self.audit.arguments(|| call.arguments.recorded(), endpoint);
        }
        if !self.audit.admits() {
            record.decision = decision::UNAVAILABLE;
            record.status = 503;
            let _ = self.audit.record(record.since(started)).await;
            return Answer::refused(Refusal::Unavailable);
        }
        let answer = match endpoint {
            None => Answer::refused(Refusal::NotFound),
            Some(endpoint) => self.live(endpoint, face, call, &mut record).await,
        };
        self.commit(record, started, answer).await
    }

    /// Writes the record of an answer, then lets the answer go.
    async fn commit(&self, mut record: Record, started: Instant, answer: Answer) -> Answer {
        record.decision = answer.decision;
        record.status = answer.status();
        let request_id = record.request_id.clone();
        match self.audit.record(record.since(started)).await {
            Ok(()) => answer,
            Err(error) => {
                tracing::error!(request_id = %request_id, %error, "answer withheld: its audit record was not written");
                Answer::refused(Refusal::Unavailable)
            }
        }
    }

    /// Everything between finding the endpoint and recording the answer.
    async fn live(
        &self,
        endpoint: &'static EndpointDef,
        face: Face,
        call: Call,
        record: &mut Record,
    ) -> Answer {
        let Call {
            request_id,
            credentials,
            client,
            mut arguments,
            cancel,
            ..
        } = call;
        let mut flags = arguments.flags(self.project, endpoint);
        let principal = match self
            .caller(endpoint, face, &credentials, client, flags.dry_run)
            .await
        {
            Ok(principal) => principal,
            Err(refusal) => return Answer::refused(refusal),
        };
        if let Some(principal) = &principal {
            self.note_caller(record, principal);
        }
        let mut progress = Progress {
            decision: decision::ALLOW,
            rate: None,
        };
        let context = Context {
            endpoint,
            face,
            principal: principal.as_deref(),
            request_id: &request_id,
        };
        let verdict = match self.decide(&context, flags.dry_run, &mut progress) {
            Ok(verdict) => verdict,
            Err(refusal) => return progress.refuse(refusal),
        };
        if let Err(refusal) = self.limit(&context, client, &mut progress) {
            return progress.refuse(refusal);
        }
        let mut plan = match arguments.plan(endpoint, std::mem::take(&mut flags.errors)) {
            Ok(plan) => plan,
            Err(errors) => return progress.refuse(Refusal::Invalid(errors)),
        };
        self.auth.bind_caller(&mut plan.binds, context.principal);
        let transport_cap =
            (face == Face::Tool && !endpoint.paginate).then_some(self.project.mcp.max_rows);
        let granted = context.principal.map(|p| p.roles);
        let shape = Shape::for_caller(endpoint, granted, transport_cap);
        let work = Work {
            plan,
            flags,
            verdict,
            shape,
        };
        let outcome = self
            .execute(endpoint, work, cancel, &mut progress, record)
            .await;
        if let Outcome::Refused(Refusal::Failed(error)) = &outcome {
            log_failure(face, endpoint, &request_id, error);
        }
        match outcome {
            Outcome::Refused(refusal) => progress.refuse(refusal),
            outcome => progress.answer(outcome),
        }
    }

    fn note_caller(&self, record: &mut Record, principal: &Principal) {
        record.principal = Some(principal.subject.clone());
        record.auth = Some(principal.kind.as_str());
        record.roles = role_names(self.project.auth.roles, principal.roles)
            .into_iter()
            .map(str::to_string)
            .collect();
    }

    /// The caller, verified when the item needs one.
    async fn caller(
        &self,
        endpoint: &EndpointDef,
        face: Face,
        credentials: &Credentials,
        client: Option<IpAddr>,
        dry_run: bool,
    ) -> Result<Option<Arc<Principal>>, Refusal> {
        let headers = match credentials {
            Credentials::Verified(principal) => return Ok(principal.clone()),
            Credentials::Headers(headers) => headers,
        };
        let public = face.access(endpoint) == Access::Public;
        if public && !dry_run {
            return Ok(None);
        }
        match self.auth.authenticate(headers, client).await {
            Ok(Some(principal)) => Ok(Some(principal)),
            Ok(None) if public => Ok(None),
            Ok(None) => Err(Refusal::Unauthenticated(None)),
            Err(error) => Err(Refusal::Unauthenticated(Some(error))),
        }
    }

    /// The role decision under the endpoint's enforcement mode, and
    /// whether the caller may ask for a dry run.
    fn decide(
        &self,
        context: &Context<'_>,
        dry_run: bool,
        progress: &mut Progress,
    ) -> Result<Verdict, Refusal> {
        let Context {
            endpoint,
            face,
            principal,
            request_id,
        } = *context;
        let verdict = Verdict::decide(
            face.access(endpoint),
            principal.map(|p| p.roles),
            endpoint.shadow,
        );
        let subject = principal.map(|p| p.subject.as_str()).unwrap_or("");
        // A tool or resource the caller may not use answers exactly like
        // one that does not exist, whatever else the call asks for.
        let dry_runner = dry_run && may_dry_run(self.project, principal);
        if verdict == Verdict::Deny && matches!(face, Face::Tool | Face::Resource) && !dry_runner {
            tracing::info!(request_id = %request_id, subject, endpoint = endpoint.id, ?face, "access denied: no permitted role");
            return Err(Refusal::Hidden);
        }
        if dry_run && !may_dry_run(self.project, principal) {
            tracing::info!(request_id = %request_id, subject, endpoint = endpoint.id, "dry run refused: no dry-run role");
            return Err(Refusal::DryRunForbidden);
        }
        match verdict {
            Verdict::Deny if !dry_run => {
                tracing::info!(request_id = %request_id, subject, endpoint = endpoint.id, ?face, "access denied: no permitted role");
                Err(match (face, principal) {
                    (Face::Route, None) => Refusal::Unauthenticated(None),
                    (Face::Route, Some(_)) => Refusal::Forbidden,
                    (Face::Tool | Face::Resource, _) => Refusal::Hidden,
                })
            }
            Verdict::WouldDeny if !dry_run => {
                progress.decision = decision::WOULD_DENY;
                Ok(verdict)
            }
            _ => Ok(verdict),
        }
    }

    /// The endpoint's quota, after authentication: verified callers by
    /// principal, anonymous ones by address. Shadow mode records and serves.
    fn limit(
        &self,
        context: &Context<'_>,
        client: Option<IpAddr>,
        progress: &mut Progress,
    ) -> Result<(), Refusal> {
        let identity = context.principal.map(|p| p.identity());
        let Some(rate) = self.limits.check(
            self.project,
            context.endpoint,
            context.face,
            identity.as_deref(),
            client,
        ) else {
            return Ok(());
        };
        progress.rate = Some(rate);
        if rate.allowed {
            Ok(())
        } else if context.endpoint.shadow {
            progress.decision = decision::WOULD_DENY;
            Ok(())
        } else {
            tracing::info!(request_id = %context.request_id, endpoint = context.endpoint.id, face = ?context.face, "rate limited");
            Err(Refusal::RateLimited(rate))
        }
    }

    /// Runs, dry-runs or samples the plan.
    async fn execute(
        &self,
        endpoint: &'static EndpointDef,
        work: Work,
        cancel: Option<CancellationToken>,
        progress: &mut Progress,
        record: &mut Record,
    ) -> Outcome {
        let Work {
            plan,
            flags,
            verdict,
            shape,
        } = work;
        let Flags {
            dry_run,
            format,
            page,
            ..
        } = flags;
        if dry_run {
            progress.decision = decision::DRY_RUN;
        }
        let watched = shape.clone();
        let query = self.db.for_endpoint(endpoint, move |connection, env| {
            let spec =
                QuerySpec::new(endpoint, &plan, page, format).shaped(shape.max_rows, &shape.redact);
            if dry_run {
                dry_run_report(connection, env, &spec, verdict, &shape).map(Outcome::Report)
            } else if shape.sample {
                sample_query(connection, env, &spec).map(|s| Outcome::Sample(s.to_json()))
            } else {
                run_query(connection, env, &spec).map(|result| Outcome::Rows {
                    result,
                    page,
                    format,
                })
            }
        });
        let outcome = match cancel {
            Some(cancel) => tokio::select! {
                result = query => result,
                _ = cancel.cancelled() => Err(QueryError::Cancelled),
            },
            None => query.await,
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => return Outcome::Refused(Refusal::Failed(error)),
        };
        match &outcome {
            Outcome::Rows { result, .. } => {
                record.rows = Some(result.rows);
                record.truncated = Some(result.truncated);
                record.redacted_columns = result.redacted.clone();
                // Shadow mode: what shaping would have changed is recorded, not applied.
                if endpoint.shadow
                    && watched.would_change(result.rows, !watched.would_redact.is_empty())
                {
                    progress.decision = decision::WOULD_DENY;
                    record
                        .redacted_columns
                        .extend(watched.would_redact.iter().map(|c| c.to_string()));
                }
            }
            Outcome::Sample(_) => record.rows = Some(0),
            Outcome::Report(_) | Outcome::Refused(_) => {}
        }
        outcome
    }
}

/// What the checks established about a call.
#[derive(Clone, Copy)]
struct Context<'a> {
    endpoint: &'static EndpointDef,
    face: Face,
    principal: Option<&'a Principal>,
    request_id: &'a str,
}

/// A validated call, ready to run.
struct Work {
    plan: Plan,
    flags: Flags,
    verdict: Verdict,
    shape: Shape,
}

fn log_failure(face: Face, endpoint: &EndpointDef, request_id: &str, error: &QueryError) {
    match face {
        Face::Route => {
            tracing::error!(endpoint = endpoint.id, request_id = %request_id, %error, "request failed")
        }
        Face::Tool => {
            tracing::error!(endpoint = endpoint.id, request_id = %request_id, %error, "tool call failed")
        }
        Face::Resource => {
            tracing::error!(endpoint = endpoint.id, request_id = %request_id, %error, "resource read failed")
        }
    }
}
