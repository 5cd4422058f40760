//! The audit log's core (SPEC §8): records, redaction of secrets, the hash
//! chain that makes tampering evident, the file and stdout sinks, and the
//! verifier behind `flapi audit verify FILE`.
//!
//! A record is one JSON line. Its last field is `"hash"`: the SHA-256 of
//! the previous record's hash, a newline, and this line's text up to (not
//! including) `,"hash":`. The text hashed includes `"prev"`, so a record
//! that is changed, removed or moved breaks the chain at a known line.
//!
//! [`Auditor`] is what the server holds: one writer thread owns the sink
//! and commits records in groups (one fsync for every record waiting), and
//! a request waits until its record is written before its response goes
//! out. When the sink fails, the server refuses requests with 503 before
//! running anything (fail-closed) unless `on-failure: open`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev` of the first record of a log.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// What redacted values are replaced with.
pub const REDACTED: &str = "[redacted]";

/// Argument names that are always redacted, compared case-insensitively
/// after removing `-` and `_`.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "apikey",
    "authorization",
    "auth",
    "credential",
    "credentials",
    "privatekey",
    "clientsecret",
    "jwt",
    "sessionid",
    "cookie",
];

/// The outcome of a call, as recorded.
pub mod decision {
    pub const ALLOW: &str = "allow";
    pub const DENY: &str = "deny";
    pub const WOULD_DENY: &str = "would_deny";
    pub const INVALID: &str = "invalid";
    pub const NOT_FOUND: &str = "not_found";
    pub const ERROR: &str = "error";
    pub const DRY_RUN: &str = "dry_run";
    /// Refused by the route's or tool's rate limit.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// Refused because the audit log cannot be written.
    pub const UNAVAILABLE: &str = "unavailable";
    /// The request ran past `limits.request-timeout-ms`.
    pub const TIMEOUT: &str = "timeout";
}

/// One audited event, in the order fields are written.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Record {
    pub ts: String,
    pub request_id: String,
    pub principal: Option<String>,
    pub roles: Vec<String>,
    /// `rest` or `mcp`.
    pub transport: &'static str,
    /// HTTP method, or the MCP method (`tools/call`).
    pub method: String,
    /// Route template or tool/resource/prompt name.
    pub target: String,
    /// `allow`, `deny`, `would_deny`, `invalid`, `error`, `dry_run`, ...
    pub decision: &'static str,
    pub status: u16,
    pub rows: Option<u64>,
    pub truncated: Option<bool>,
    pub redacted_columns: Vec<String>,
    pub latency_ms: f64,
    pub arguments: Value,
}

impl Record {
    /// A record of `transport`/`method`/`target` with the current time;
    /// the caller fills in the rest.
    pub fn new(request_id: &str, transport: &'static str, method: &str, target: &str) -> Record {
        Record {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            request_id: request_id.to_string(),
            principal: None,
            roles: Vec::new(),
            transport,
            method: method.to_string(),
            target: target.to_string(),
            decision: decision::ALLOW,
            status: 200,
            rows: None,
            truncated: None,
            redacted_columns: Vec::new(),
            latency_ms: 0.0,
            arguments: Value::Null,
        }
    }

    pub fn since(mut self, started: Instant) -> Record {
        self.latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        self
    }
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn secret_patterns() -> &'static [Regex] {
    static PATTERNS: OnceLock<Vec<Regex>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            // JWT / JWS compact serialisation.
            r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
            // Authorization header values.
            r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}",
            // PEM private keys.
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
            // AWS access key ids, GitHub, Slack, Stripe/OpenAI-style keys.
            r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
            r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",
            r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b",
            r"\b(sk|pk|rk)_(live|test)_[A-Za-z0-9]{16,}\b",
            r"\bsk-[A-Za-z0-9_-]{20,}\b",
            // `password=...` inside a connection string or URL.
            r"(?i)(password|pwd)=[^;&\s]+",
            r"://[^/\s:@]+:[^/\s@]+@",
        ]
        .iter()
        .filter_map(|p| Regex::new(p).ok())
        .collect()
    })
}

/// Whether a string value looks like a secret whatever its name.
pub fn looks_secret(value: &str) -> bool {
    secret_patterns().iter().any(|re| re.is_match(value))
}

/// Redacts `arguments` in place: by name (built-in secret names, `names`
/// configured, fields marked `sensitive`), at any depth, and by value
/// pattern. Names compare case-insensitively.
pub fn redact(arguments: &mut Value, names: &[&str]) {
    let configured: Vec<String> = names.iter().map(|n| normalise(n)).collect();
    redact_value(arguments, &configured);
}

fn redact_value(value: &mut Value, configured: &[String]) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let key = normalise(key);
                if SECRET_NAMES.contains(&key.as_str()) || configured.contains(&key) {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact_value(v, configured);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                redact_value(item, configured);
            }
        }
        Value::String(s) if looks_secret(s) => *s = REDACTED.into(),
        _ => {}
    }
}

fn digest(prev: &str, body: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(body.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends `"prev"` and `"hash"` to a record: the line to write and its
/// hash (the next record's `prev`).
pub fn chain(record: &Record, prev: &str) -> (String, String) {
    let mut body = serde_json::to_string(record).unwrap_or_else(|_| "{}".into());
    body.pop(); // the closing brace
    body.push_str(&format!(",\"prev\":\"{prev}\""));
    let hash = digest(prev, &body);
    (format!("{body},\"hash\":\"{hash}\"}}"), hash)
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every line chains; `first_prev` is the anchor (GENESIS for a log
    /// that starts the chain, the previous file's last hash after rotation).
    Ok {
        records: usize,
        first_prev: String,
        last_hash: String,
    },
    /// The first line that does not verify (1-based) and why.
    Broken { line: usize, reason: String },
    /// The last line is incomplete (a crash mid-write); every line before
    /// it verifies.
    TornTail { line: usize, records: usize },
}

/// Checks a log's text: each line's hash, and that each `prev` is the hash
/// of the line before. `anchor` is the expected first `prev` (`None`:
/// whatever the first line says, for a rotated file).
pub fn verify_text(text: &str, anchor: Option<&str>) -> Verdict {
    let mut prev: Option<String> = anchor.map(str::to_string);
    let mut first_prev = String::new();
    let mut records = 0;
    let ends_with_newline = text.ends_with('\n');
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let number = i + 1;
        let last = number == lines.len();
        let broken = |reason: &str| Verdict::Broken {
            line: number,
            reason: reason.to_string(),
        };
        let parsed = line
            .rsplit_once(",\"hash\":\"")
            .and_then(|(body, tail)| tail.strip_suffix("\"}").map(|hash| (body, hash)));
        let Some((body, hash)) = parsed else {
            if last && !ends_with_newline {
                return Verdict::TornTail {
                    line: number,
                    records,
                };
            }
            return broken("not an audit record");
        };
        let Some(line_prev) = body
            .rsplit_once(",\"prev\":\"")
            .and_then(|(_, p)| p.strip_suffix('"'))
        else {
            return broken("the record has no `prev`");
        };
        if let Some(expected) = &prev
            && line_prev != expected
        {
            return broken(
                "`prev` is not the hash of the record before (a record was removed, inserted or moved)",
            );
        }
        if digest(line_prev, body) != hash {
            return broken("the hash does not match the record (the record was changed)");
        }
        if serde_json::from_str::<Value>(line).is_err() {
            return broken("not valid JSON");
        }
        if i == 0 {
            first_prev = line_prev.to_string();
        }
        prev = Some(hash.to_string());
        records += 1;
    }
    Verdict::Ok {
        records,
        first_prev,
        last_hash: prev.unwrap_or_else(|| GENESIS.to_string()),
    }
}

/// `flapi audit verify FILE`.
pub fn verify_file(path: &Path) -> std::io::Result<Verdict> {
    let text = std::fs::read_to_string(path)?;
    Ok(verify_text(&text, None))
}

/// The last hash of an existing log (to continue its chain), or GENESIS;
/// and where a torn final line (a crash mid-write: its response was never
/// sent) starts, if there is one.
fn last_hash(path: &Path) -> (String, Option<u64>) {
    let Ok(text) = std::fs::read(path) else {
        return (GENESIS.to_string(), None);
    };
    let complete = match text.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    let torn = (complete < text.len()).then_some(complete as u64);
    let hash = String::from_utf8_lossy(&text[..complete])
        .lines()
        .filter_map(|l| {
            l.rsplit_once(",\"hash\":\"")
                .and_then(|(_, t)| t.strip_suffix("\"}").map(str::to_string))
        })
        .next_back()
        .unwrap_or_else(|| GENESIS.to_string());
    (hash, torn)
}

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before the response is sent.
    Always,
    /// At most this long after the write.
    Interval(Duration),
}

/// A file sink: appends, syncs by policy, and rotates by size while the
/// chain continues into the next file.
pub struct FileSink {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    fsync: Fsync,
    last_sync: Instant,
    prev: String,
}

impl FileSink {
    pub fn open(path: &Path, max_bytes: u64, fsync: Fsync) -> std::io::Result<Self> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        let (prev, torn) = last_hash(path);
        if let Some(at) = torn {
            tracing::warn!(path = %path.display(), at, "audit log ends in a torn record (a crash mid-write); it is cut off before appending");
            OpenOptions::new().write(true).open(path)?.set_len(at)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(FileSink {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes,
            fsync,
            last_sync: Instant::now(),
            prev,
        })
    }

    /// Writes one record; returns only once it is written (and synced
    /// under `Fsync::Always`). An error means the record is not durable.
    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        self.append(record)?;
        self.sync_by_policy()
    }

    /// Appends one record without syncing (see [`FileSink::sync_by_policy`]).
    pub fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let (line, hash) = chain(record, &self.prev);
        if self.max_bytes > 0 && self.size > 0 && self.size + line.len() as u64 + 1 > self.max_bytes
        {
            self.rotate()?;
        }
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        self.prev = hash;
        Ok(())
    }

    /// Syncs what was appended, now (`Always`) or when the interval is due.
    pub fn sync_by_policy(&mut self) -> std::io::Result<()> {
        let sync_due = match self.fsync {
            Fsync::Always => true,
            Fsync::Interval(every) => self.last_sync.elapsed() >= every,
        };
        if sync_due {
            self.file.sync_data()?;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    /// `audit.jsonl` → `audit.jsonl.1` (older ones shift up); the new file
    /// continues the chain from the old file's last hash.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        let mut n = 1;
        while numbered(n).exists() {
            n += 1;
        }
        for i in (1..n).rev() {
            std::fs::rename(numbered(i), numbered(i + 1))?;
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Why a record was not written.
#[derive(Debug, thiserror::Error)]
#[error("the audit log cannot be written")]
pub struct Unavailable;

enum Sink {
    File(FileSink),
    Stdout,
}

impl Sink {
    fn append(&mut self, record: &Record, prev: &mut String) -> std::io::Result<()> {
        match self {
            Sink::File(file) => file.append(record),
            Sink::Stdout => {
                let (line, hash) = chain(record, prev);
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
                *prev = hash;
                Ok(())
            }
        }
    }

    fn commit(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(file) => file.sync_by_policy(),
            Sink::Stdout => std::io::stdout().lock().flush(),
        }
    }
}

/// Where and how records are written.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    File {
        path: PathBuf,
        max_bytes: u64,
        fsync: Fsync,
    },
    Stdout,
}

type Job = (Record, tokio::sync::oneshot::Sender<bool>);

/// The server's audit log: disabled, or a writer thread and its health.
pub struct Auditor {
    sender: Option<std::sync::Mutex<std::sync::mpsc::Sender<Job>>>,
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
    fail_open: bool,
    /// Argument names redacted besides the built-in ones.
    names: Vec<&'static str>,
}

impl Auditor {
    pub fn disabled() -> Auditor {
        Auditor {
            sender: None,
            healthy: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            fail_open: true,
            names: Vec::new(),
        }
    }

    /// Starts the writer. A sink that cannot be opened leaves the auditor
    /// unhealthy (the server says why in its log); it is retried with each
    /// record.
    pub fn start(
        config: SinkConfig,
        fail_open: bool,
        names: &[&'static str],
        project: &str,
    ) -> Auditor {
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let open = {
            let config = config.clone();
            move || -> std::io::Result<Sink> {
                match &config {
                    SinkConfig::File {
                        path,
                        max_bytes,
                        fsync,
                    } => FileSink::open(path, *max_bytes, *fsync).map(Sink::File),
                    SinkConfig::Stdout => Ok(Sink::Stdout),
                }
            }
        };
        // The first record says the server started: it proves the log can
        // be written before any request is served.
        let mut prev = GENESIS.to_string();
        let mut start = Record::new("", "server", "start", project);
        start.status = 0;
        let mut sink = match open().and_then(|mut sink| {
            sink.append(&start, &mut prev)?;
            sink.commit()?;
            Ok(sink)
        }) {
            Ok(sink) => Some(sink),
            Err(error) => {
                tracing::error!(%error, "audit log cannot be written; requests are refused until it can be");
                healthy.store(false, std::sync::atomic::Ordering::SeqCst);
                None
            }
        };
        let health = healthy.clone();
        let spawned = std::thread::Builder::new()
            .name("flapi-audit".into())
            .spawn(move || {
                while let Ok(first) = receiver.recv() {
                    // Group commit: everything waiting shares one sync.
                    let mut batch = vec![first];
                    while let Ok(job) = receiver.try_recv() {
                        batch.push(job);
                    }
                    if sink.is_none() {
                        sink = open().ok();
                    }
                    let result = match sink.as_mut() {
                        Some(sink) => batch
                            .iter()
                            .try_for_each(|(record, _)| sink.append(record, &mut prev))
                            .and_then(|_| sink.commit()),
                        None => Err(std::io::Error::other("the audit sink is not open")),
                    };
                    let ok = match result {
                        Ok(()) => true,
                        Err(error) => {
                            if health.swap(false, std::sync::atomic::Ordering::SeqCst) {
                                tracing::error!(%error, "audit log write failed");
                            }
                            // Reopen next time: a rotated or replaced file.
                            sink = None;
                            false
                        }
                    };
                    if ok && !health.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        tracing::warn!("audit log writable again");
                    }
                    for (_, done) in batch {
                        let _ = done.send(ok);
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "audit writer thread did not start");
            healthy.store(false, std::sync::atomic::Ordering::SeqCst);
        }
        Auditor {
            sender: Some(std::sync::Mutex::new(sender)),
            healthy,
            fail_open,
            names: names.to_vec(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Whether a call may run: false when the log cannot be written and
    /// the server fails closed.
    pub fn admits(&self) -> bool {
        self.fail_open || self.healthy.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A call's arguments as recorded (`Null` while auditing is off):
    /// redacted by name (built-in, configured, and the endpoint's fields
    /// marked `sensitive`) and by value pattern.
    pub fn arguments(
        &self,
        arguments: impl FnOnce() -> Value,
        endpoint: Option<&crate::runtime::EndpointDef>,
    ) -> Value {
        if !self.enabled() {
            return Value::Null;
        }
        let mut names = self.names.clone();
        names.extend(
            endpoint
                .into_iter()
                .flat_map(|e| e.fields.iter().filter(|f| f.sensitive).map(|f| f.name)),
        );
        let mut value = arguments();
        redact(&mut value, &names);
        value
    }

    /// Writes a record and waits until it is durable. `Err` means the
    /// caller must not send its result (fail-closed).
    pub async fn record(&self, record: Record) -> Result<(), Unavailable> {
        let Some(sender) = &self.sender else {
            return Ok(());
        };
        let (done, written) = tokio::sync::oneshot::channel();
        let sent = sender
            .lock()
            .map(|s| s.send((record, done)).is_ok())
            .unwrap_or(false);
        let ok = sent && written.await.unwrap_or(false);
        if ok || self.fail_open {
            Ok(())
        } else {
            Err(Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(n: u64) -> Record {
        Record {
            ts: format!("2026-11-24T10:00:0{n}Z"),
            request_id: format!("r{n}"),
            principal: Some("alice".into()),
            roles: vec!["viewer".into()],
            transport: "rest",
            method: "GET".into(),
            target: "/reports".into(),
            decision: "allow",
            status: 200,
            rows: Some(n),
            truncated: Some(false),
            redacted_columns: vec![],
            latency_ms: 1.5,
            arguments: json!({"id": n}),
        }
    }

    fn log(n: u64) -> String {
        let mut prev = GENESIS.to_string();
        let mut out = String::new();
        for i in 0..n {
            let (line, hash) = chain(&record(i), &prev);
            out.push_str(&line);
            out.push('\n');
            prev = hash;
        }
        out
    }

    #[test]
    fn a_chained_log_verifies_and_every_tampering_is_located() {
        let text = log(5);
        assert!(matches!(
            verify_text(&text, Some(GENESIS)),
            Verdict::Ok { records: 5, .. }
        ));
        let lines: Vec<&str> = text.lines().collect();

        // One byte changed in record 3.
        let changed = text.replacen("\"rows\":2", "\"rows\":3", 1);
        assert!(matches!(
            verify_text(&changed, Some(GENESIS)),
            Verdict::Broken { line: 3, .. }
        ));
        // Record 2 deleted.
        let deleted = [lines[0], lines[2], lines[3], lines[4]].join("\n") + "\n";
        assert!(matches!(
            verify_text(&deleted, Some(GENESIS)),
            Verdict::Broken { line: 2, .. }
        ));
        // Records 4 and 5 swapped.
        let swapped = [lines[0], lines[1], lines[2], lines[4], lines[3]].join("\n") + "\n";
        assert!(matches!(
            verify_text(&swapped, Some(GENESIS)),
            Verdict::Broken { line: 4, .. }
        ));
        // The first record removed: caught against the genesis anchor.
        let headless = lines[1..].join("\n") + "\n";
        assert!(matches!(
            verify_text(&headless, Some(GENESIS)),
            Verdict::Broken { line: 1, .. }
        ));
        // A crash mid-write leaves a torn last line.
        let torn = format!("{}{}", text, &lines[0][..40]);
        assert_eq!(
            verify_text(&torn, Some(GENESIS)),
            Verdict::TornTail {
                line: 6,
                records: 5
            }
        );
    }

    #[test]
    fn secrets_are_redacted_by_name_nested_and_by_value() {
        let mut args = json!({
            "id": 7,
            "Password": "hunter2",
            "nested": {"api-key": "k", "list": [{"Client_Secret": "s"}, "plain"]},
            "note": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
            "header": "Bearer abcdefghijklmnop",
            "aws": "AKIAABCDEFGHIJKLMNOP",
            "dsn": "postgres://user:pw@host/db",
            "ssn": "123-45-6789",
        });
        redact(&mut args, &["SSN"]);
        assert_eq!(args["id"], 7);
        for pointer in [
            "/Password",
            "/nested/api-key",
            "/nested/list/0/Client_Secret",
            "/note",
            "/header",
            "/aws",
            "/dsn",
            "/ssn",
        ] {
            assert_eq!(args.pointer(pointer), Some(&json!(REDACTED)), "{pointer}");
        }
        assert_eq!(args["nested"]["list"][1], "plain");
    }

    #[test]
    fn the_file_sink_rotates_and_the_chain_continues() {
        let dir = std::env::temp_dir().join(format!("flapi-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("audit.jsonl");
        let mut sink = FileSink::open(&path, 1200, Fsync::Always).expect("open");
        for i in 0..6 {
            sink.write(&record(i)).expect("write");
        }
        drop(sink);
        // Reopening continues the chain rather than restarting it.
        let mut sink =
            FileSink::open(&path, 1200, Fsync::Interval(Duration::from_secs(1))).expect("reopen");
        sink.write(&record(9)).expect("write");
        drop(sink);
        let rotated = std::fs::read_to_string(dir.join("audit.jsonl.1")).expect("rotated file");
        let current = std::fs::read_to_string(&path).expect("current file");
        let Verdict::Ok { last_hash, .. } = verify_text(&rotated, None) else {
            panic!("rotated file does not verify");
        };
        match verify_text(&current, None) {
            Verdict::Ok { first_prev, .. } => assert_eq!(first_prev, last_hash),
            other => panic!("current file: {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flapi-audit-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn file(path: &Path) -> SinkConfig {
        SinkConfig::File {
            path: path.to_path_buf(),
            max_bytes: 0,
            fsync: Fsync::Always,
        }
    }

    #[test]
    fn an_unwritable_sink_refuses_unless_the_project_fails_open() {
        let dir = scratch("unwritable");
        // A directory where the file should be.
        let closed = Auditor::start(file(&dir), false, &[], "p");
        assert!(!closed.admits());
        assert!(block_on(closed.record(record(1))).is_err());
        let open = Auditor::start(file(&dir), true, &[], "p");
        assert!(open.admits());
        assert!(block_on(open.record(record(1))).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_restart_continues_the_chain_and_cuts_a_torn_tail() {
        let dir = scratch("restart");
        let path = dir.join("nested/audit.jsonl");
        let first = Auditor::start(file(&path), false, &[], "p");
        for i in 0..3 {
            block_on(first.record(record(i))).expect("written");
        }
        drop(first);
        // A crash in the middle of a write.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"ts\":\"2026-").expect("torn write");
        drop(f);
        assert!(matches!(
            verify_file(&path).expect("read"),
            Verdict::TornTail {
                line: 5,
                records: 4
            }
        ));
        let second = Auditor::start(file(&path), false, &[], "p");
        block_on(second.record(record(9))).expect("written");
        drop(second);
        // start, 3 records, start, 1 record: one chain.
        assert!(matches!(
            verify_file(&path).expect("read"),
            Verdict::Ok { records: 6, .. }
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn concurrent_records_are_all_written_in_one_chain() {
        let dir = scratch("concurrent");
        let path = dir.join("audit.jsonl");
        let auditor = std::sync::Arc::new(Auditor::start(file(&path), false, &[], "p"));
        block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..64 {
                let auditor = auditor.clone();
                tasks.spawn(async move { auditor.record(record(i)).await });
            }
            while let Some(result) = tasks.join_next().await {
                result.expect("task").expect("written");
            }
        });
        assert!(matches!(
            verify_file(&path).expect("read"),
            Verdict::Ok { records: 65, .. }
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
