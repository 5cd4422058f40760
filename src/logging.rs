//! The log pipeline (SPEC §12): text or JSON to a writer, at a validated
//! level. Nothing here formats a secret: requests are logged by path (no
//! query string, no headers), DuckDB messages are scrubbed of quoted text
//! (`db::scrub`), environment values are `secrecy` types, and libraries
//! that would print protocol messages or headers at debug level (the MCP
//! SDK, hyper, h2, the HTTP client, rustls) are held at `warn`.

use tracing_subscriber::fmt::MakeWriter;

/// Log levels `--log-level` accepts.
pub const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// The filter for `level` (one of [`LEVELS`]).
pub fn filter(level: &str) -> tracing_subscriber::EnvFilter {
    let level = if LEVELS.contains(&level) {
        level
    } else {
        "info"
    };
    tracing_subscriber::EnvFilter::new(format!(
        "{level},hyper=warn,hyper_util=warn,h2=warn,rmcp=warn,ureq=warn,ureq_proto=warn,rustls=warn,axum_server=warn"
    ))
}

/// Installs the process-wide subscriber.
pub fn init<W>(level: &str, json: bool, ansi: bool, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
