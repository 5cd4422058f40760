//! flAPI's heartbeat: with `heartbeat: {enabled: true, worker-interval}` in
//! flapi.yaml, a worker calls every endpoint whose own `heartbeat` is
//! enabled with its `params`, one row at most, and logs whether it
//! answered. It checks that each data source still answers; the rows are
//! discarded and never leave the process. The call is the server's own: no
//! caller, so caller values (`auth.*`) are NULL and nothing is audited.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::encode::Format;
use crate::db::{Database, Page, QuerySpec, run_query};
use crate::runtime::{EndpointDef, ProjectDef, RequestInput};

/// How one endpoint answered its heartbeat.
#[derive(Debug)]
pub struct Beat {
    pub endpoint: &'static str,
    /// The rows read (at most one), or why it failed (no SQL, no values).
    pub outcome: Result<u64, String>,
}

/// One round: each heartbeat endpoint, in order.
pub async fn round(project: &'static ProjectDef, db: &Arc<Database>) -> Vec<Beat> {
    let mut beats = Vec::new();
    for endpoint in project.endpoints {
        let Some(params) = endpoint.heartbeat else {
            continue;
        };
        let outcome = beat(endpoint, params, db).await;
        match &outcome {
            Ok(rows) => tracing::info!(endpoint = endpoint.id, rows, "heartbeat ok"),
            Err(reason) => tracing::warn!(endpoint = endpoint.id, reason, "heartbeat failed"),
        }
        beats.push(Beat {
            endpoint: endpoint.id,
            outcome,
        });
    }
    beats
}

async fn beat(
    endpoint: &'static EndpointDef,
    params: &'static [(&'static str, &'static str)],
    db: &Arc<Database>,
) -> Result<u64, String> {
    let input = RequestInput {
        path: Vec::new(),
        query: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        headers: Vec::new(),
        body: None,
    };
    let plan = (endpoint.plan)(&input).map_err(|errors| {
        let fields: Vec<String> = errors
            .0
            .iter()
            .map(|e| format!("{} {}", e.field, e.message))
            .collect();
        format!(
            "the heartbeat's params are not valid arguments: {}",
            fields.join("; ")
        )
    })?;
    let page = endpoint.paginate.then_some(Page {
        limit: 1,
        offset: 0,
    });
    db.for_endpoint(endpoint, move |connection, env| {
        let spec = QuerySpec::new(endpoint, &plan, page, Format::Json).shaped(Some(1), &[]);
        run_query(connection, env, &spec).map(|result| result.rows)
    })
    .await
    .map_err(|e| e.to_string())
}

/// Runs rounds every `heartbeat_seconds` until `shutdown`; nothing when
/// the worker is off or no endpoint has a heartbeat.
pub fn spawn(project: &'static ProjectDef, db: Arc<Database>, shutdown: CancellationToken) {
    let Some(seconds) = project.heartbeat_seconds else {
        return;
    };
    if !project.endpoints.iter().any(|e| e.heartbeat.is_some()) {
        return;
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(seconds));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.tick() => {
                    round(project, &db).await;
                }
            }
        }
    });
}
