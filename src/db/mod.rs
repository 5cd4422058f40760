//! DuckDB: one database, a pool of connections used off the async runtime,
//! start-up (init SQL, sandbox, SQL checks) and query execution with a
//! deadline enforced through DuckDB's interrupt.

pub mod encode;
pub mod masking;
pub mod sqlguard;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duckdb::types::{TimeUnit, Value};
use duckdb::{Config, Connection};
use tokio::sync::Semaphore;

use crate::runtime::{BindValue, EndpointDef, Plan, ProjectDef};
use encode::{ColumnKind, Format, RowWriter};

/// What a query needs besides its connection: the environment values a
/// project reads (connection properties, `env.*`), kept as secrets and
/// exposed only to bind them, and the masked texts of endpoints with
/// redaction.
#[derive(Default)]
pub struct Env {
    values: HashMap<&'static str, secrecy::SecretString>,
    masking: masking::Masking,
}

impl Env {
    pub fn get(&self, name: &str) -> Option<&secrecy::SecretString> {
        self.values.get(name)
    }
}

/// A DuckDB message for the log: quoted text (which may echo a bound
/// value, a path or a connection string) is replaced by `'…'`.
pub fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        out.push('…');
    }
    out
}

/// Default admission per pooled connection: enough queueing that normal
/// bursts (hundreds of clients on a few connections) wait their turn, while
/// a flood beyond it gets 503 at once instead of an unbounded queue.
pub const QUERIES_PER_CONNECTION: usize = 64;

/// Why a query did not produce rows. The message is for the server log
/// only; clients get a generic text (see `server::ApiError`).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("query ran past its deadline of {0:?} and was interrupted")]
    Timeout(Duration),
    #[error("query failed: {0}")]
    Failed(String),
    #[error("the connection pool is closed")]
    Unavailable,
    #[error("the client went away or cancelled the request; the query was interrupted")]
    Cancelled,
    #[error("{0} queries are already running or waiting (limits.max-concurrent-queries)")]
    Busy(usize),
}

impl QueryError {
    /// The HTTP status a failed call answers with (and MCP records show).
    pub fn status(&self) -> u16 {
        match self {
            QueryError::Timeout(_) => 504,
            QueryError::Unavailable | QueryError::Cancelled | QueryError::Busy(_) => 503,
            QueryError::Failed(_) => 500,
        }
    }
}

/// Counters of queries run through the pool, observable while serving.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    pub started: u64,
    pub finished: u64,
    pub timed_out: u64,
    /// Interrupted because the caller stopped waiting (MCP cancellation,
    /// client disconnect).
    pub cancelled: u64,
}

/// Start-up failures: printed by the binary, never sent to a client.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open DuckDB: {0}")]
    Open(String),
    #[error("authentication settings: {0}")]
    Auth(#[from] crate::auth::AuthStartupError),
    #[error("connection `{connection}`: init SQL failed: {message}")]
    Init { connection: String, message: String },
    #[error("cannot apply the DuckDB setting `{setting}` from `duckdb:` in flapi.yaml: {message}")]
    Setting { setting: String, message: String },
    #[error("cannot apply the DuckDB sandbox setting `{setting}`: {message}")]
    Sandbox { setting: String, message: String },
    #[error("endpoint `{endpoint}` ({source_file}): DuckDB rejects its SQL: {message}")]
    Sql {
        endpoint: String,
        source_file: String,
        message: String,
    },
    #[error("environment variable `{0}` is used by a template but not set")]
    MissingEnv(String),
    #[error("redaction: {0}")]
    Masking(#[from] masking::MaskingError),
    #[error("reading DuckDB's catalog: {0}")]
    Catalog(String),
    #[error("audit log: {0}")]
    Audit(String),
}

/// Runtime choices that are not in the project (CLI flags, environment).
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Folder that relative data paths resolve against.
    pub base_dir: PathBuf,
    pub db_path: Option<PathBuf>,
    pub pool_size: usize,
    pub query_timeout: Duration,
    /// Values that take precedence over the process environment for the
    /// variables the project reads (templates' `env.*`, auth secrets).
    pub env_overrides: Vec<(String, String)>,
    /// Replaces the path of `audit:`'s file sink (`--audit-file`).
    pub audit_file: Option<PathBuf>,
    /// Queries running or waiting for a connection at once; more are
    /// refused with 503 (`limits.max-concurrent-queries`; 0: 64 per
    /// pooled connection).
    pub max_queries: usize,
}

impl DbOptions {
    /// An environment variable as the project sees it.
    pub fn env_var(&self, name: &str) -> Option<String> {
        self.env_overrides
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    }

    pub fn for_project(project: &ProjectDef) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        DbOptions {
            base_dir: PathBuf::from(project.base_dir),
            db_path: project.duckdb.db_path.map(PathBuf::from),
            pool_size: project
                .duckdb
                .pool_size
                .map(|n| n as usize)
                .unwrap_or(cores.max(2) * 2),
            query_timeout: Duration::from_millis(project.duckdb.query_timeout_ms),
            env_overrides: Vec::new(),
            audit_file: None,
            max_queries: project.edge.max_concurrent_queries as usize,
        }
    }
}

pub struct Database {
    connections: Mutex<Vec<Connection>>,
    permits: Semaphore,
    /// Queries admitted (running or waiting for a connection).
    admission: Semaphore,
    max_queries: usize,
    query_timeout: Duration,
    env: Env,
    stats: tokio::sync::watch::Sender<QueryStats>,
}

/// Interrupts the query when the future waiting for it is dropped, so a
/// caller that goes away does not leave DuckDB working for nobody.
struct CancelOnDrop {
    state: Arc<Mutex<QueryState>>,
    handle: Arc<duckdb::InterruptHandle>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(mut s) = self.state.lock() {
            match *s {
                QueryState::Pending => *s = QueryState::Cancelled,
                QueryState::Running => {
                    *s = QueryState::Cancelled;
                    self.handle.interrupt();
                    keep_interrupting(&self.state, &self.handle, QueryState::Cancelled);
                }
                _ => {}
            }
        }
    }
}

/// DuckDB drops an interrupt that arrives before the statement starts
/// executing (while it is still being prepared, say), so the interrupt is
/// repeated until the query thread has seen it and finished.
fn keep_interrupting(
    state: &Arc<Mutex<QueryState>>,
    handle: &Arc<duckdb::InterruptHandle>,
    while_in: QueryState,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let state = state.clone();
    let handle = handle.clone();
    runtime.spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(20));
        loop {
            every.tick().await;
            match state.lock() {
                Ok(s) if *s == while_in => handle.interrupt(),
                _ => break,
            }
        }
    });
}

fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Database {
    pub fn open(
        project: &'static ProjectDef,
        options: &DbOptions,
    ) -> Result<Arc<Self>, StartupError> {
        let mut env = HashMap::new();
        for name in project.env_vars {
            match options.env_var(name) {
                Some(value) => {
                    env.insert(*name, secrecy::SecretString::from(value));
                }
                None => return Err(StartupError::MissingEnv(name.to_string())),
            }
        }
        let open_err = |e: duckdb::Error| StartupError::Open(e.to_string());
        let mut config = Config::default();
        if project.duckdb.read_only {
            config = config
                .access_mode(duckdb::AccessMode::ReadOnly)
                .map_err(open_err)?;
        }
        if let Some(threads) = project.duckdb.threads {
            config = config.threads(i64::from(threads)).map_err(open_err)?;
        }
        if let Some(memory) = project.duckdb.max_memory {
            config = config.max_memory(memory).map_err(open_err)?;
        }
        for (name, value) in project.duckdb.settings {
            config = config
                .with(name, value)
                .map_err(|e| StartupError::Setting {
                    setting: name.to_string(),
                    message: scrub(&e.to_string()),
                })?;
        }
        let db_path = options
            .db_path
            .as_ref()
            .map(|p| absolute(&options.base_dir, p));
        let first = match &db_path {
            Some(path) => Connection::open_with_flags(path, config),
            None => Connection::open_in_memory_with_flags(config),
        }
        .map_err(open_err)?;

        // One absolute base for every relative path DuckDB resolves, so
        // nothing depends on the process's working directory.
        let base_dir = canonical(&options.base_dir);
        let base = base_dir.display().to_string();
        first
            .execute_batch(&format!("SET file_search_path = {}", sql_literal(&base)))
            .map_err(|e| StartupError::Sandbox {
                setting: "file_search_path".into(),
                message: scrub(&e.to_string()),
            })?;
        for connection in project.connections {
            if let Some(init) = connection.init {
                first.execute_batch(init).map_err(|e| StartupError::Init {
                    connection: connection.name.to_string(),
                    message: scrub(&e.to_string()),
                })?;
            }
        }
        // Masked projections are created before the sandbox locks the
        // configuration; every masked text is proven on the way.
        let masking = masking::prepare(&first, project)?;
        apply_sandbox(&first, project, &base_dir, db_path.as_deref())?;

        // DuckDB's parser checks every text before any is prepared:
        // `prepare` would run all but the last statement of a string.
        let macros = masking::macros(&first).map_err(StartupError::Catalog)?;
        check_catalog_views(&first)?;
        for endpoint in project.endpoints {
            check_endpoint_sql(&first, project, endpoint, &macros)?;
        }
        for endpoint in project.endpoints {
            prepare_endpoint_sql(&first, endpoint, &masking)?;
        }
        let env = Env {
            values: env,
            masking,
        };

        let mut connections = Vec::with_capacity(options.pool_size);
        for _ in 1..options.pool_size.max(1) {
            connections.push(first.try_clone().map_err(open_err)?);
        }
        connections.push(first);
        for connection in &connections {
            connection.set_prepared_statement_cache_capacity(512);
        }
        let max_queries = match options.max_queries {
            0 => connections.len() * QUERIES_PER_CONNECTION,
            n => n,
        };
        Ok(Arc::new(Database {
            admission: Semaphore::new(max_queries),
            max_queries,
            permits: Semaphore::new(connections.len()),
            connections: Mutex::new(connections),
            query_timeout: options.query_timeout,
            env,
            stats: tokio::sync::watch::Sender::new(QueryStats::default()),
        }))
    }

    /// Runs `f` on a pooled connection on a blocking thread. A deadline
    /// interrupts the running DuckDB query; the connection is returned to
    /// the pool afterwards either way.
    pub async fn with_connection<T, F>(self: &Arc<Self>, f: F) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Env) -> Result<T, QueryError> + Send + 'static,
    {
        self.with_deadline(self.query_timeout, f).await
    }

    /// [`with_connection`](Self::with_connection) with the endpoint's own
    /// deadline (`query-timeout-ms`) when it has one.
    pub async fn for_endpoint<T, F>(
        self: &Arc<Self>,
        endpoint: &EndpointDef,
        f: F,
    ) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Env) -> Result<T, QueryError> + Send + 'static,
    {
        let timeout = endpoint
            .query_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.query_timeout);
        self.with_deadline(timeout, f).await
    }

    async fn with_deadline<T, F>(self: &Arc<Self>, timeout: Duration, f: F) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Env) -> Result<T, QueryError> + Send + 'static,
    {
        let _admitted = self
            .admission
            .try_acquire()
            .map_err(|_| QueryError::Busy(self.max_queries))?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| QueryError::Unavailable)?;
        let connection = self
            .connections
            .lock()
            .map_err(|_| QueryError::Unavailable)?
            .pop()
            .ok_or(QueryError::Unavailable)?;
        // `state` is locked by the query thread when it starts and finishes,
        // by the watchdog when it fires and by the cancel guard when the
        // caller goes away, so an interrupt can only reach this query.
        let state = Arc::new(Mutex::new(QueryState::Pending));
        let handle = connection.interrupt_handle();
        let mut guard = CancelOnDrop {
            state: state.clone(),
            handle: handle.clone(),
            armed: true,
        };
        let watchdog = {
            let state = state.clone();
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                if let Ok(mut s) = state.lock()
                    && *s == QueryState::Running
                {
                    *s = QueryState::Interrupted;
                    handle.interrupt();
                    keep_interrupting(&state, &handle, QueryState::Interrupted);
                }
            })
        };
        let db = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let start = match state.lock() {
                Ok(mut s) if *s == QueryState::Pending => {
                    *s = QueryState::Running;
                    true
                }
                _ => false,
            };
            let result = if start {
                db.stats.send_modify(|s| s.started += 1);
                // A panic in a query or in encoding (duckdb-rs panics on a
                // value type it cannot read) fails this request only; the
                // connection still goes back to the pool.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&connection, &db.env)))
                    .unwrap_or_else(|_| Err(QueryError::Failed("the query panicked".into())))
            } else {
                Err(QueryError::Cancelled)
            };
            let end = match state.lock() {
                Ok(mut s) => {
                    let end = *s;
                    *s = QueryState::Done;
                    end
                }
                Err(_) => QueryState::Done,
            };
            if let Ok(mut pool) = db.connections.lock() {
                pool.push(connection);
            }
            let result = match end {
                QueryState::Interrupted => Err(QueryError::Timeout(timeout)),
                QueryState::Cancelled => Err(QueryError::Cancelled),
                _ => result,
            };
            if start {
                db.stats.send_modify(|s| {
                    s.finished += 1;
                    match end {
                        QueryState::Interrupted => s.timed_out += 1,
                        QueryState::Cancelled => s.cancelled += 1,
                        _ => {}
                    }
                });
            }
            result
        })
        .await;
        guard.armed = false;
        watchdog.abort();
        joined.map_err(|e| QueryError::Failed(format!("query thread failed: {e}")))?
    }

    /// Query counters; `changed()` on the receiver wakes on every update.
    pub fn stats(&self) -> tokio::sync::watch::Receiver<QueryStats> {
        self.stats.subscribe()
    }

    /// Readiness: a trivial query through the pool.
    pub async fn ping(self: &Arc<Self>) -> bool {
        self.with_connection(|c, _| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(|e| QueryError::Failed(scrub(&e.to_string())))
        })
        .await
        .is_ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryState {
    /// Waiting for a blocking thread.
    Pending,
    Running,
    /// Stopped by the deadline.
    Interrupted,
    /// Stopped because the caller went away.
    Cancelled,
    Done,
}

fn with_slash(dir: &str) -> String {
    if dir.ends_with('/') {
        dir.to_string()
    } else {
        format!("{dir}/")
    }
}

/// `path` made absolute (against the working directory once, at
/// start-up) and canonical when it exists.
fn canonical(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    absolute.canonicalize().unwrap_or(absolute)
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// SPEC §12: after init, SQL may read only the declared data folders, may
/// not reach the network or install/load extensions, and may not change
/// any setting again.
fn apply_sandbox(
    connection: &Connection,
    project: &ProjectDef,
    base: &Path,
    db_path: Option<&Path>,
) -> Result<(), StartupError> {
    // Each folder is allowed by its canonical absolute path and, when the
    // project names it relatively, as written too: DuckDB checks the path
    // as the SQL writes it (`data/x.csv`) and rejects `..`. A relative
    // path is looked up in the working directory before
    // `file_search_path`, so the `flapi` binary runs with the project
    // folder as its working directory (`main.rs`): nothing depends on the
    // folder it was started from.
    let mut dirs: Vec<String> = Vec::new();
    for dir in project.duckdb.allowed_directories {
        let path = canonical(&absolute(base, Path::new(dir)));
        dirs.push(with_slash(&path.display().to_string()));
        if Path::new(dir).is_relative() {
            dirs.push(with_slash(dir.trim_start_matches("./")));
        }
    }
    let dirs: Vec<String> = dirs.iter().map(|d| sql_literal(d)).collect();
    // Spill files go where the server says, never to `.tmp` in the
    // working directory (DuckDB's default for an in-memory database).
    let temp = match db_path {
        Some(path) => PathBuf::from(format!("{}.tmp", path.display())),
        None => std::env::temp_dir().join(format!("flapi-{}-spill", std::process::id())),
    };
    let settings = [
        (
            "temp_directory",
            format!(
                "SET temp_directory = {}",
                sql_literal(&temp.display().to_string())
            ),
        ),
        (
            "allowed_directories",
            format!("SET allowed_directories = [{}]", dirs.join(", ")),
        ),
        (
            "enable_external_access",
            "SET enable_external_access = false".to_string(),
        ),
        (
            "autoinstall_known_extensions",
            "SET autoinstall_known_extensions = false".to_string(),
        ),
        (
            "autoload_known_extensions",
            "SET autoload_known_extensions = false".to_string(),
        ),
        (
            "allow_community_extensions",
            "SET allow_community_extensions = false".to_string(),
        ),
        (
            "lock_configuration",
            "SET lock_configuration = true".to_string(),
        ),
    ];
    for (setting, sql) in settings {
        connection
            .execute_batch(&sql)
            .map_err(|e| StartupError::Sandbox {
                setting: setting.to_string(),
                message: e.to_string(),
            })?;
    }
    Ok(())
}

fn sql_error(endpoint: &EndpointDef, message: String) -> StartupError {
    StartupError::Sql {
        endpoint: endpoint.id.to_string(),
        source_file: endpoint.template_source.to_string(),
        message,
    }
}

/// DuckDB's parser reads every final text of an endpoint (plain, paged,
/// capped, count) and `sqlguard` holds it to the build's reading and the
/// allowlist. Nothing is prepared or run here.
fn check_endpoint_sql(
    connection: &Connection,
    project: &ProjectDef,
    endpoint: &EndpointDef,
    macros: &std::collections::BTreeSet<String>,
) -> Result<(), StartupError> {
    for text in endpoint.texts {
        for (sql, wrapper_parameters) in [
            (Some(text.sql), 0),
            (text.paged_sql, 2),
            (text.capped_sql, 1),
            (text.count_sql, 0),
        ] {
            let Some(sql) = sql else { continue };
            let expect = crate::db::sqlguard::Expect {
                facts: text.facts.as_ref(),
                binds: text.binds,
                wrapper_parameters,
                masked: false,
                allowed_functions: project.allowed_functions,
                macros,
            };
            crate::db::sqlguard::check(connection, sql, expect)
                .map_err(|message| sql_error(endpoint, message))?;
        }
    }
    Ok(())
}

/// Every catalog view DuckDB reaches by an unqualified name must be on
/// flapi's list of refused table names; a view it does not know (a newer
/// DuckDB, an extension) stops start-up rather than being readable.
fn check_catalog_views(connection: &Connection) -> Result<(), StartupError> {
    let names = masking::query_strings(
        connection,
        "SELECT DISTINCT lower(view_name) FROM duckdb_views() WHERE internal AND schema_name IN ('main', 'pg_catalog')",
        &[],
    )
    .map_err(StartupError::Catalog)?;
    for name in names.into_iter().flatten() {
        if !flapi_sqlrules::CATALOG_VIEWS.contains(&name.as_str()) {
            return Err(StartupError::Catalog(format!(
                "DuckDB has the catalog view `{name}`, which flapi does not know; add it to flapi_sqlrules::CATALOG_VIEWS"
            )));
        }
    }
    Ok(())
}

/// Every text of an endpoint, and its masked forms, must prepare.
fn prepare_endpoint_sql(
    connection: &Connection,
    endpoint: &EndpointDef,
    masking: &masking::Masking,
) -> Result<(), StartupError> {
    let masked: Vec<&str> = endpoint.shaping.redact.iter().map(|r| r.column).collect();
    for (t, text) in endpoint.texts.iter().enumerate() {
        let mut all: Vec<&str> = [
            Some(text.sql),
            text.paged_sql,
            text.capped_sql,
            text.count_sql,
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(m) = masking.text(endpoint, t, &masked) {
            all.extend(
                [
                    Some(&m.sql),
                    m.paged_sql.as_ref(),
                    m.capped_sql.as_ref(),
                    m.count_sql.as_ref(),
                ]
                .into_iter()
                .flatten()
                .map(String::as_str),
            );
        }
        for sql in all {
            connection
                .prepare_cached(sql)
                .map_err(|e| sql_error(endpoint, scrub(&e.to_string())))?;
        }
    }
    Ok(())
}

fn to_value(bind: &BindValue, env: &Env) -> Value {
    const EPOCH: chrono::NaiveDate =
        chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    match bind {
        BindValue::Null => Value::Null,
        BindValue::Int(v) => Value::BigInt(*v),
        BindValue::Double(v) => Value::Double(*v),
        BindValue::Bool(v) => Value::Boolean(*v),
        BindValue::Text(v) => Value::Text(v.clone()),
        BindValue::Date(d) => Value::Date32((*d - EPOCH).num_days() as i32),
        BindValue::Time(t) => {
            let micros = (*t - chrono::NaiveTime::MIN)
                .num_microseconds()
                .unwrap_or(0);
            Value::Time64(TimeUnit::Microsecond, micros)
        }
        BindValue::Timestamp(ts) => {
            Value::Timestamp(TimeUnit::Microsecond, ts.and_utc().timestamp_micros())
        }
        BindValue::Env(name) => env
            .get(name)
            .map(|v| Value::Text(secrecy::ExposeSecret::expose_secret(v).to_string()))
            .unwrap_or(Value::Null),
        // Filled in from the verified caller before a query runs; one
        // left over means no caller, which is NULL (matches no row).
        BindValue::Auth(_) => Value::Null,
    }
}

/// One page of an endpoint's result, already encoded.
#[derive(Debug)]
pub struct PageResult {
    pub body: Vec<u8>,
    pub rows: u64,
    /// Rows the query returns without LIMIT/OFFSET, for paginated reads.
    pub total: Option<u64>,
    /// The row cap stopped reading before the last row.
    pub truncated: bool,
    /// Output columns that were masked.
    pub redacted: Vec<String>,
}

/// Pagination window for paginated endpoints.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: u64,
    pub offset: u64,
}

/// One query to run: an endpoint's chosen SQL text with its binds.
pub struct QuerySpec<'a> {
    pub endpoint: &'a EndpointDef,
    pub text: usize,
    pub binds: &'a [BindValue],
    /// LIMIT/OFFSET window of a paginated endpoint.
    pub page: Option<Page>,
    /// At most this many rows: the query reads max+1 (`LIMIT` pushed into
    /// the SQL) to tell whether the result was `truncated`.
    pub max_rows: Option<u64>,
    /// Output columns to mask (compared case-insensitively).
    pub redact: &'a [&'static str],
    pub format: Format,
}

impl<'a> QuerySpec<'a> {
    /// A plan's query, unshaped (no row cap, nothing masked).
    pub fn new(
        endpoint: &'a EndpointDef,
        plan: &'a Plan,
        page: Option<Page>,
        format: Format,
    ) -> Self {
        QuerySpec {
            endpoint,
            text: plan.text,
            binds: &plan.binds,
            page,
            max_rows: None,
            redact: &[],
            format,
        }
    }

    /// With a row cap and masked columns.
    pub fn shaped(mut self, max_rows: Option<u64>, redact: &'a [&'static str]) -> Self {
        self.max_rows = max_rows;
        self.redact = redact;
        self
    }
}

/// The four forms of the text a request runs: the endpoint's own, or
/// their masked variants when the caller has masked columns.
#[derive(Clone, Copy)]
struct Forms<'a> {
    sql: &'a str,
    paged_sql: Option<&'a str>,
    capped_sql: Option<&'a str>,
    count_sql: Option<&'a str>,
}

fn forms<'a>(spec: &QuerySpec<'_>, env: &'a Env) -> Result<Forms<'a>, QueryError> {
    let text = spec.endpoint.texts.get(spec.text).ok_or_else(|| {
        QueryError::Failed(format!(
            "plan chose SQL text {}, which does not exist",
            spec.text
        ))
    })?;
    if spec.redact.is_empty() {
        return Ok(Forms {
            sql: text.sql,
            paged_sql: text.paged_sql,
            capped_sql: text.capped_sql,
            count_sql: text.count_sql,
        });
    }
    // Masked columns and no proven masked text: refuse, never run the
    // unmasked text.
    let masked = env
        .masking
        .text(spec.endpoint, spec.text, spec.redact)
        .ok_or_else(|| QueryError::Failed("no masked text for this caller".into()))?;
    Ok(Forms {
        sql: &masked.sql,
        paged_sql: masked.paged_sql.as_deref(),
        capped_sql: masked.capped_sql.as_deref(),
        count_sql: masked.count_sql.as_deref(),
    })
}

/// The rows a request may return under `max-rows`: the cap counts from
/// the first row of the result, so a page that starts at `offset` gets
/// what is left of it (paging cannot walk past the cap).
fn row_cap(spec: &QuerySpec<'_>) -> Option<u64> {
    match (spec.page, spec.max_rows) {
        (Some(page), Some(max)) => Some(max.saturating_sub(page.offset)),
        (_, max) => max,
    }
}

/// The SQL a request runs (the paged form when it has a page) and its
/// bound values, LIMIT/OFFSET last.
fn chosen_text<'a>(
    spec: &QuerySpec<'_>,
    env: &'a Env,
) -> Result<(Forms<'a>, &'a str, Vec<Value>), QueryError> {
    let sql_text = forms(spec, env)?;
    let mut values: Vec<Value> = spec.binds.iter().map(|b| to_value(b, env)).collect();
    // One row past the cap tells whether there were more.
    let cap = row_cap(spec).map(|max| max.saturating_add(1));
    let sql = match (spec.page, sql_text.paged_sql, cap, sql_text.capped_sql) {
        (Some(page), Some(paged), _, _) => {
            let limit = cap.map_or(page.limit, |cap| cap.min(page.limit));
            values.push(Value::BigInt(limit.min(i64::MAX as u64) as i64));
            values.push(Value::BigInt(page.offset.min(i64::MAX as u64) as i64));
            paged
        }
        (None, _, Some(cap), Some(capped)) => {
            values.push(Value::BigInt(cap.min(i64::MAX as u64) as i64));
            capped
        }
        _ => sql_text.sql,
    };
    Ok((sql_text, sql, values))
}

/// The exact statement and values a request would run, for a dry run.
pub fn statement_for<'a>(
    spec: &QuerySpec<'_>,
    env: &'a Env,
) -> Result<(&'a str, Vec<Value>), QueryError> {
    chosen_text(spec, env).map(|(_, sql, values)| (sql, values))
}

/// DuckDB's plan for the text a request would run, with its binds, without
/// running it (the dry run of SPEC §9 will show this). Groundwork: not
/// served yet.
pub fn explain(
    connection: &Connection,
    env: &Env,
    spec: &QuerySpec<'_>,
) -> Result<String, QueryError> {
    let failed = |e: duckdb::Error| QueryError::Failed(scrub(&e.to_string()));
    let (_, sql, mut values) = chosen_text(spec, env)?;
    // The plan may print bound constants: it is planned with each
    // environment value replaced by its name, so it cannot show one.
    for (value, bind) in values.iter_mut().zip(spec.binds) {
        if let BindValue::Env(name) = bind {
            *value = Value::Text(format!("{{{{ env.{name} }}}}"));
        }
    }
    let mut statement = connection
        .prepare(&format!("EXPLAIN {sql}"))
        .map_err(failed)?;
    let mut rows = statement
        .query(duckdb::params_from_iter(values.iter()))
        .map_err(failed)?;
    let mut plan = String::new();
    while let Some(row) = rows.next().map_err(failed)? {
        // (explain_key, explain_value): the value is the rendered plan.
        if let Ok(text) = row.get::<_, String>(1) {
            plan.push_str(&text);
        }
    }
    Ok(plan)
}

/// Runs the chosen text with its binds and encodes the rows.
pub fn run_query(
    connection: &Connection,
    env: &Env,
    spec: &QuerySpec<'_>,
) -> Result<PageResult, QueryError> {
    let QuerySpec {
        binds,
        page,
        max_rows,
        format,
        ..
    } = *spec;
    let cap = row_cap(spec);
    let failed = |e: duckdb::Error| QueryError::Failed(scrub(&e.to_string()));
    let (sql_text, sql, values) = chosen_text(spec, env)?;
    if spec.endpoint.log_queries {
        // The text is the build's (values are `?`): nothing a caller sent.
        tracing::info!(endpoint = spec.endpoint.id, sql, "query");
    }
    let mut statement = connection.prepare_cached(sql).map_err(failed)?;
    let mut rows = statement
        .query(duckdb::params_from_iter(values.iter()))
        .map_err(failed)?;
    let (columns, kinds) = match rows.as_ref() {
        Some(statement) => {
            let names = statement.column_names();
            let kinds = (0..names.len())
                .map(|i| {
                    if statement.column_type(i) == duckdb::arrow::datatypes::DataType::Null {
                        ColumnKind::Null
                    } else if statement.column_logical_type(i).get_alias().as_deref()
                        == Some("JSON")
                    {
                        ColumnKind::Json
                    } else {
                        ColumnKind::Value
                    }
                })
                .collect();
            (names, kinds)
        }
        None => (Vec::new(), Vec::new()),
    };
    // Masking happened inside DuckDB (the masked text); what is recorded
    // is which columns were masked for this caller.
    let redacted: Vec<String> = spec.redact.iter().map(|c| c.to_string()).collect();
    let mut writer = RowWriter::new(format, &columns, kinds);
    let mut count = 0u64;
    let mut truncated = false;
    while let Some(row) = rows.next().map_err(failed)? {
        if cap.is_some_and(|max| count >= max) {
            truncated = true;
            break;
        }
        writer.row(row).map_err(failed)?;
        count += 1;
    }
    drop(rows);
    drop(statement);
    let total = match (page, sql_text.count_sql) {
        // The page is not full and starts at 0: the total is what we read.
        (Some(page), _) if page.offset == 0 && count < page.limit && !truncated => Some(count),
        (Some(_), Some(count_sql)) => {
            let bound: Vec<Value> = binds.iter().map(|b| to_value(b, env)).collect();
            let mut statement = connection.prepare_cached(count_sql).map_err(failed)?;
            let total: i64 = statement
                .query_row(duckdb::params_from_iter(bound.iter()), |r| r.get(0))
                .map_err(failed)?;
            // Past `max-rows` nothing is reachable, so nothing is counted.
            Some(max_rows.map_or(total.max(0) as u64, |max| (total.max(0) as u64).min(max)))
        }
        _ => None,
    };
    Ok(PageResult {
        body: writer.finish(),
        rows: count,
        total,
        truncated,
        redacted,
    })
}

/// `response.sample`: the row count, and column names and types from the
/// statement run with `LIMIT 0`; no row is read.
pub struct Sample {
    pub rows: u64,
    pub columns: Vec<(String, String)>,
}

impl Sample {
    /// `{"row_count": N, "columns": [{"name", "type"}]}`, as REST and MCP
    /// answer it.
    pub fn to_json(&self) -> serde_json::Value {
        let columns: Vec<serde_json::Value> = self
            .columns
            .iter()
            .map(|(name, ty)| serde_json::json!({"name": name, "type": ty}))
            .collect();
        serde_json::json!({"row_count": self.rows, "columns": columns})
    }
}

pub fn sample_query(
    connection: &Connection,
    env: &Env,
    spec: &QuerySpec<'_>,
) -> Result<Sample, QueryError> {
    let failed = |e: duckdb::Error| QueryError::Failed(scrub(&e.to_string()));
    let (sql_text, _, _) = chosen_text(spec, env)?;
    let mut values: Vec<Value> = spec.binds.iter().map(|b| to_value(b, env)).collect();
    let empty = match (sql_text.capped_sql, sql_text.paged_sql) {
        (Some(capped), _) => {
            values.push(Value::BigInt(0));
            capped
        }
        (None, Some(paged)) => {
            values.push(Value::BigInt(0));
            values.push(Value::BigInt(0));
            paged
        }
        (None, None) => {
            return Err(QueryError::Failed(
                "no capped text for a sampled endpoint".into(),
            ));
        }
    };
    let count_sql = sql_text
        .count_sql
        .ok_or_else(|| QueryError::Failed("no count text for a sampled endpoint".into()))?;
    let bound: Vec<Value> = spec.binds.iter().map(|b| to_value(b, env)).collect();
    let mut statement = connection.prepare_cached(count_sql).map_err(failed)?;
    let total: i64 = statement
        .query_row(duckdb::params_from_iter(bound.iter()), |r| r.get(0))
        .map_err(failed)?;
    let mut statement = connection.prepare_cached(empty).map_err(failed)?;
    let rows = statement
        .query(duckdb::params_from_iter(values.iter()))
        .map_err(failed)?;
    let columns = match rows.as_ref() {
        Some(statement) => statement
            .column_names()
            .into_iter()
            .enumerate()
            .map(|(i, name)| (name, type_name(&statement.column_type(i))))
            .collect(),
        None => Vec::new(),
    };
    Ok(Sample {
        rows: total.max(0) as u64,
        columns,
    })
}

/// DuckDB's name for a result column's type.
fn type_name(ty: &duckdb::arrow::datatypes::DataType) -> String {
    use duckdb::arrow::datatypes::DataType as T;
    match ty {
        T::Null => "NULL".into(),
        T::Boolean => "BOOLEAN".into(),
        T::Int8 => "TINYINT".into(),
        T::Int16 => "SMALLINT".into(),
        T::Int32 => "INTEGER".into(),
        T::Int64 => "BIGINT".into(),
        T::UInt8 => "UTINYINT".into(),
        T::UInt16 => "USMALLINT".into(),
        T::UInt32 => "UINTEGER".into(),
        T::UInt64 => "UBIGINT".into(),
        T::Float16 | T::Float32 => "FLOAT".into(),
        T::Float64 => "DOUBLE".into(),
        T::Utf8 | T::LargeUtf8 | T::Utf8View => "VARCHAR".into(),
        T::Binary | T::LargeBinary | T::BinaryView | T::FixedSizeBinary(_) => "BLOB".into(),
        T::Date32 | T::Date64 => "DATE".into(),
        T::Time32(_) | T::Time64(_) => "TIME".into(),
        T::Timestamp(_, None) => "TIMESTAMP".into(),
        T::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        T::Interval(_) | T::Duration(_) => "INTERVAL".into(),
        T::Decimal128(p, s) | T::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        T::List(_) | T::LargeList(_) | T::FixedSizeList(..) => "LIST".into(),
        T::Struct(_) => "STRUCT".into(),
        T::Map(..) => "MAP".into(),
        other => other.to_string(),
    }
}
