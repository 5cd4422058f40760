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

/// Parts of an argument name that mark it secret wherever they occur:
/// the name is split at `-`, `_`, `.`, spaces and lower-to-upper case
/// changes (`authToken` is `auth`, `token`), and compared lower case.
const SECRET_PARTS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "passcode",
    "secret",
    "secrets",
    "token",
    "tokens",
    "apikey",
    "authorization",
    "credential",
    "credentials",
    "privatekey",
    "clientsecret",
    "jwt",
    "sessionid",
    "cookie",
    "otp",
    "pin",
    "signature",
    "pass",
    "pw",
    "creds",
    "bearer",
    "csrf",
    "xsrf",
    "cvv",
    "cvc",
    "hmac",
    "cookies",
    "sid",
];

/// Part prefixes that mark a secret (`password1`, `passwords`, `secrets`).
const SECRET_PREFIXES: &[&str] = &["password", "passwd", "passphrase", "secret", "credential"];

/// Two adjacent parts that together mark a secret (`x-api-key`,
/// `access_key`, `secretKey`, `private.key`).
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("access", "key"),
    ("secret", "key"),
    ("private", "key"),
    ("signing", "key"),
    ("auth", "key"),
    ("master", "key"),
    ("encryption", "key"),
    ("session", "id"),
    ("session", "key"),
    ("client", "secret"),
    ("access", "code"),
    ("auth", "code"),
    ("ssh", "key"),
    ("license", "key"),
    ("priv", "key"),
    ("signing", "secret"),
    ("auth", "header"),
    ("card", "number"),
];

/// Whole names (after removing separators) that are secrets on their own.
const SECRET_NAMES: &[&str] = &[
    "auth",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "sessionid",
];

/// The parts of a name: split at separators and at case changes, an
/// upper-case run before a capitalised word included (`DBPassword` is
/// `db`, `password`; `APIToken` is `api`, `token`).
fn name_parts(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut parts = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                parts.push(std::mem::take(&mut current));
            }
            continue;
        }
        let previous = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let lower_to_upper =
            c.is_uppercase() && previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit());
        let run_end = c.is_uppercase()
            && previous.is_some_and(char::is_uppercase)
            && next.is_some_and(char::is_lowercase);
        if (lower_to_upper || run_end) && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// Whether an argument name marks a secret, by its parts.
pub fn secret_name(name: &str) -> bool {
    let parts = name_parts(name);
    let joined: String = parts.concat();
    SECRET_NAMES.contains(&joined.as_str())
        || parts.iter().any(|p| {
            SECRET_PARTS.contains(&p.as_str()) || SECRET_PREFIXES.iter().any(|s| p.starts_with(s))
        })
        || parts
            .windows(2)
            .any(|w| SECRET_PAIRS.contains(&(w[0].as_str(), w[1].as_str())))
}

/// Recorded arguments above this size (as JSON) are cut, with a hash of
/// the whole so a copy can still be matched.
pub const MAX_RECORDED_ARGUMENT_BYTES: usize = 4096;

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
    /// How the principal authenticated: `basic` or `jwt`.
    pub auth: Option<&'static str>,
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
            auth: None,
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
                if secret_name(key) || configured.contains(&normalise(key)) {
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

/// The key of a keyed chain (`FLAPI_AUDIT_KEY`): each record's link is
/// an HMAC-SHA256 under it instead of a plain SHA-256, so nobody without
/// the key can re-hash a changed or shortened log into a valid chain.
#[derive(Clone)]
pub struct ChainKey(std::sync::Arc<secrecy::SecretBox<Vec<u8>>>);

/// Shortest `FLAPI_AUDIT_KEY` accepted.
pub const MIN_CHAIN_KEY_BYTES: usize = 32;

impl ChainKey {
    pub fn new(key: &[u8]) -> Result<ChainKey, String> {
        if key.len() < MIN_CHAIN_KEY_BYTES {
            return Err(format!(
                "FLAPI_AUDIT_KEY is {} bytes; at least {MIN_CHAIN_KEY_BYTES} are required",
                key.len()
            ));
        }
        Ok(ChainKey(std::sync::Arc::new(secrecy::SecretBox::new(
            Box::new(key.to_vec()),
        ))))
    }

    fn bytes(&self) -> &[u8] {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey([redacted])")
    }
}

/// The name of a line's link field: `hash` (SHA-256) or `hmac` (keyed).
fn link_field(key: Option<&ChainKey>) -> &'static str {
    if key.is_some() { "hmac" } else { "hash" }
}

fn digest(prev: &str, body: &str, key: Option<&ChainKey>) -> String {
    match key {
        None => {
            let mut hasher = Sha256::new();
            hasher.update(prev.as_bytes());
            hasher.update(b"\n");
            hasher.update(body.as_bytes());
            hex(&hasher.finalize())
        }
        Some(key) => {
            use hmac::{KeyInit, Mac};
            let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key.bytes())
                .expect("HMAC takes any key length");
            mac.update(prev.as_bytes());
            mac.update(b"\n");
            mac.update(body.as_bytes());
            hex(&mac.finalize().into_bytes())
        }
    }
}

/// Cuts recorded arguments above [`MAX_RECORDED_ARGUMENT_BYTES`]: the
/// first bytes of their JSON text, the whole size, and the SHA-256 of the
/// whole text (already redacted).
pub fn cap(arguments: Value) -> Value {
    let text = arguments.to_string();
    if text.len() <= MAX_RECORDED_ARGUMENT_BYTES {
        return arguments;
    }
    let mut end = MAX_RECORDED_ARGUMENT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    serde_json::json!({
        "truncated": &text[..end],
        "bytes": text.len(),
        "sha256": hex(&Sha256::digest(text.as_bytes())),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends `"prev"` and `"hash"` to a record: the line to write and its
/// hash (the next record's `prev`).
pub fn chain(record: &Record, prev: &str) -> (String, String) {
    chain_keyed(record, prev, None)
}

/// [`chain`], with `"hmac"` under `key` when there is one.
pub fn chain_keyed(record: &Record, prev: &str, key: Option<&ChainKey>) -> (String, String) {
    let mut body = serde_json::to_string(record).unwrap_or_else(|_| "{}".into());
    body.pop(); // the closing brace
    body.push_str(&format!(",\"prev\":\"{prev}\""));
    let hash = digest(prev, &body, key);
    let field = link_field(key);
    (format!("{body},\"{field}\":\"{hash}\"}}"), hash)
}

/// A line split into its hashed body, its link field and its link.
fn split_line(line: &str) -> Option<(&str, &'static str, &str)> {
    ["hash", "hmac"]
        .into_iter()
        .filter_map(|field| {
            let (body, tail) = line.rsplit_once(&format!(",\"{field}\":\""))?;
            Some((body, field, tail.strip_suffix("\"}")?))
        })
        .max_by_key(|(body, _, _)| body.len())
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
    /// The log is keyed (`"hmac"` links) and no key was given.
    NeedsKey,
}

/// Checks a log's text: each line's hash, and that each `prev` is the hash
/// of the line before. `anchor` is the expected first `prev` (`None`:
/// whatever the first line says, for a rotated file).
pub fn verify_text(text: &str, anchor: Option<&str>) -> Verdict {
    verify_text_keyed(text, anchor, None)
}

/// [`verify_text`] of a keyed log: with a key every link must be an
/// `hmac` under it (a plain `hash` line is a record someone re-hashed
/// without the key); without one a keyed log cannot be checked.
pub fn verify_text_keyed(text: &str, anchor: Option<&str>, key: Option<&ChainKey>) -> Verdict {
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
        let Some((body, field, hash)) = split_line(line) else {
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
        match (field, key) {
            ("hmac", None) => return Verdict::NeedsKey,
            ("hash", Some(_)) => {
                return broken(
                    "a plain `hash` link in a keyed log (the record was re-hashed without the key)",
                );
            }
            _ => {}
        }
        if digest(line_prev, body, key) != hash {
            return broken(if key.is_some() {
                "the MAC does not match the record (changed, or re-hashed without the key)"
            } else {
                "the hash does not match the record (the record was changed)"
            });
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
    verify_file_keyed(path, None)
}

/// `flapi audit verify FILE` with `FLAPI_AUDIT_KEY` set.
pub fn verify_file_keyed(path: &Path, key: Option<&ChainKey>) -> std::io::Result<Verdict> {
    let text = std::fs::read_to_string(path)?;
    Ok(verify_text_keyed(&text, None, key))
}

/// Whether a log holds a record whose link is `hash` (a checkpoint the
/// server logged): a log cut before it fails this.
pub fn contains_link(path: &Path, hash: &str) -> std::io::Result<bool> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .any(|l| split_line(l).is_some_and(|(_, _, h)| h == hash)))
}

/// The last hash of an existing log (to continue its chain), or GENESIS;
/// and where a torn final line (a crash mid-write: its response was never
/// sent) starts, if there is one.
fn last_hash(path: &Path) -> (String, Option<u64>) {
    // Only a regular file holds a previous chain (a device such as
    // /dev/full reads as endless zeros).
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return (GENESIS.to_string(), None);
    }
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
        .filter_map(|l| split_line(l).map(|(_, _, hash)| hash.to_string()))
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
    key: Option<ChainKey>,
    /// Rotated files kept (the oldest go first); 0: all.
    max_files: u32,
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
            key: None,
            max_files: 0,
        })
    }

    /// Links records with an HMAC under `key`.
    pub fn keyed(mut self, key: Option<ChainKey>) -> Self {
        self.key = key;
        self
    }

    /// Keeps at most `max_files` rotated files (0: all).
    pub fn retaining(mut self, max_files: u32) -> Self {
        self.max_files = max_files;
        self
    }

    /// Writes one record; returns only once it is written (and synced
    /// under `Fsync::Always`). An error means the record is not durable.
    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        self.append(record)?;
        self.sync_by_policy()
    }

    /// Appends one record without syncing (see [`FileSink::sync_by_policy`]).
    pub fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let (line, hash) = chain_keyed(record, &self.prev, self.key.as_ref());
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

    /// The rotated files `audit.jsonl.N`, by number (oldest first).
    fn rotated(&self) -> Vec<(u64, PathBuf)> {
        let Some(name) = self.path.file_name().and_then(|n| n.to_str()) else {
            return Vec::new();
        };
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let prefix = format!("{name}.");
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let file = entry.file_name().into_string().ok()?;
                let n = file.strip_prefix(&prefix)?.parse::<u64>().ok()?;
                Some((n, entry.path()))
            })
            .collect();
        files.sort();
        files
    }

    /// `audit.jsonl` → `audit.jsonl.N`, N one above the newest rotated
    /// file (no older file is renamed); the new file continues the chain
    /// from the old file's last hash. Beyond `max_files` rotated files the
    /// oldest are deleted.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        let next = self.rotated().last().map_or(1, |(n, _)| n + 1);
        std::fs::rename(&self.path, format!("{}.{next}", self.path.display()))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        if self.max_files > 0 {
            let rotated = self.rotated();
            let excess = rotated.len().saturating_sub(self.max_files as usize);
            for (_, old) in &rotated[..excess] {
                if let Err(error) = std::fs::remove_file(old) {
                    tracing::warn!(file = %old.display(), %error, "an old audit file could not be deleted");
                }
            }
        }
        Ok(())
    }
}

/// Checkpoints in the server's own log (not the audit log): every
/// minute with records written, and when the writer stops, the number of
/// records and the chain's head. A log cut after a checkpoint fails
/// `flapi audit verify FILE --expect HASH` with that hash; a keyed chain
/// cannot be re-hashed to hide it.
struct Checkpoint {
    records: u64,
    since: u64,
    last: Instant,
}

/// How often a checkpoint is logged while records are written.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

impl Checkpoint {
    fn new() -> Self {
        Checkpoint {
            records: 0,
            since: 0,
            last: Instant::now(),
        }
    }

    fn written(&mut self, n: usize, head: &str, last: bool) {
        self.records += n as u64;
        self.since += n as u64;
        if (self.since > 0 && self.last.elapsed() >= CHECKPOINT_EVERY) || last {
            tracing::info!(records = self.records, head, "audit checkpoint");
            self.since = 0;
            self.last = Instant::now();
        }
    }
}

/// Why a record was not written.
#[derive(Debug, thiserror::Error)]
#[error("the audit log cannot be written")]
pub struct Unavailable;

enum Sink {
    File(FileSink),
    Stdout(Option<ChainKey>),
}

impl Sink {
    fn append(&mut self, record: &Record, prev: &mut String) -> std::io::Result<()> {
        match self {
            Sink::File(file) => file.append(record),
            Sink::Stdout(key) => {
                let (line, hash) = chain_keyed(record, prev, key.as_ref());
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
                *prev = hash;
                Ok(())
            }
        }
    }

    /// The link of the last record written (the chain's head).
    fn head<'a>(&'a self, prev: &'a str) -> &'a str {
        match self {
            Sink::File(file) => &file.prev,
            Sink::Stdout(_) => prev,
        }
    }

    fn commit(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(file) => file.sync_by_policy(),
            Sink::Stdout(_) => std::io::stdout().lock().flush(),
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
        /// Rotated files kept; 0: all.
        max_files: u32,
        key: Option<ChainKey>,
    },
    Stdout(Option<ChainKey>),
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
                        max_files,
                        key,
                    } => FileSink::open(path, *max_bytes, *fsync)
                        .map(|f| Sink::File(f.keyed(key.clone()).retaining(*max_files))),
                    SinkConfig::Stdout(key) => Ok(Sink::Stdout(key.clone())),
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
                let mut checkpoint = Checkpoint::new();
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
                    if ok && let Some(sink) = &sink {
                        checkpoint.written(batch.len(), sink.head(&prev), false);
                    }
                    for (_, done) in batch {
                        let _ = done.send(ok);
                    }
                }
                if let Some(sink) = &sink {
                    checkpoint.written(0, sink.head(&prev), true);
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
        cap(value)
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
            auth: Some("basic"),
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
    fn secret_names_are_matched_by_their_parts() {
        for name in [
            "authToken",
            "api_token",
            "access_key",
            "secret_key",
            "x-api-key",
            "passphrase",
            "AWS_SECRET_ACCESS_KEY",
            "clientSecret",
            "refresh-token",
            "db.password",
            "X-Auth-Token",
            "sessionId",
            "privateKey",
            "apiKey",
            "APIKEY",
            "auth",
            "user_pin",
            "DBPassword",
            "APIToken",
            "SSHKey",
            "JWTSecret",
            "AWSSecretKey",
            "db_pass",
            "password1",
            "ssh_key",
            "license_key",
            "csrf_token",
            "cvv",
        ] {
            assert!(secret_name(name), "{name}");
        }
        for name in [
            "author",
            "authority",
            "customer_id",
            "keyword",
            "monkey",
            "segment",
            "passenger",
            "spinner",
            "primary_key",
            "sort_key",
            "tokenizer",
            "compass",
            "DBName",
            "URLPath",
            "keyboard",
        ] {
            assert!(!secret_name(name), "{name}");
        }
    }

    #[test]
    fn large_arguments_are_cut_with_a_hash_of_the_whole() {
        let small = json!({"q": "x".repeat(100)});
        assert_eq!(cap(small.clone()), small);
        let big = json!({"q": "é".repeat(5000)});
        let text = big.to_string();
        let capped = cap(big);
        assert_eq!(capped["bytes"], text.len());
        assert_eq!(capped["sha256"], hex(&Sha256::digest(text.as_bytes())));
        let cut = capped["truncated"].as_str().expect("text");
        assert!(cut.len() <= MAX_RECORDED_ARGUMENT_BYTES && text.starts_with(cut));
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
        let newest = sink.rotated().last().expect("a rotated file").1.clone();
        drop(sink);
        let rotated = std::fs::read_to_string(newest).expect("rotated file");
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
            max_files: 0,
            key: None,
        }
    }

    #[test]
    fn rotation_renames_only_the_current_file_and_keeps_max_files() {
        let dir = scratch("retention");
        let path = dir.join("audit.jsonl");
        let mut sink = FileSink::open(&path, 600, Fsync::Always).expect("open");
        sink.write(&record(0)).expect("write");
        sink.write(&record(1)).expect("write");
        let first = std::fs::read_to_string(dir.join("audit.jsonl.1")).expect("first rotation");
        for i in 2..8 {
            sink.write(&record(i)).expect("write");
        }
        // The oldest rotated file is never renamed again.
        assert_eq!(
            std::fs::read_to_string(dir.join("audit.jsonl.1")).expect("still .1"),
            first
        );
        let numbers: Vec<u64> = sink.rotated().iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>());
        drop(sink);
        // With `max-files: 2` only the two newest rotated files stay, and
        // the chain still continues from one file into the next.
        let mut sink = FileSink::open(&path, 600, Fsync::Always)
            .expect("reopen")
            .retaining(2);
        for i in 8..14 {
            sink.write(&record(i)).expect("write");
        }
        let kept = sink.rotated();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept[0].0 > numbers.len() as u64);
        let older = std::fs::read_to_string(&kept[0].1).expect("older");
        let newer = std::fs::read_to_string(&kept[1].1).expect("newer");
        let Verdict::Ok { last_hash, .. } = verify_text(&older, None) else {
            panic!("older does not verify");
        };
        match verify_text(&newer, None) {
            Verdict::Ok { first_prev, .. } => assert_eq!(first_prev, last_hash),
            other => panic!("newer: {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A full disk (`/dev/full` answers every write with ENOSPC): closed,
    /// nothing is served and every refused request retries the write;
    /// open, calls are served and their records are lost (logged).
    #[test]
    fn a_full_disk_refuses_when_closed_and_serves_when_open() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            panic!("/dev/full is needed for this test");
        }
        let closed = Auditor::start(file(full), false, &[], "p");
        assert!(!closed.admits());
        assert!(block_on(closed.record(record(1))).is_err());
        assert!(!closed.admits());
        let open = Auditor::start(file(full), true, &[], "p");
        assert!(open.admits());
        assert!(block_on(open.record(record(1))).is_ok());
        // Once space is back (here: a writable path), the next record
        // succeeds and the server admits calls again.
        let dir = scratch("recovers");
        let blocked = dir.join("audit.jsonl");
        std::fs::create_dir_all(&blocked).expect("a directory in the way");
        let recovering = Auditor::start(file(&blocked), false, &[], "p");
        assert!(!recovering.admits());
        std::fs::remove_dir_all(&blocked).expect("free the path");
        assert!(block_on(recovering.record(record(2))).is_ok());
        assert!(recovering.admits());
        let _ = std::fs::remove_dir_all(&dir);
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
