//! The `flapi` binary: serves the project compiled into it, or tells what
//! was compiled in. Runtime settings come from flags and environment
//! variables, never from rebuilding.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use flapi::http::edge;
use flapi::project::PROJECT;
use flapi::runtime::Access;
use flapi::{DbOptions, app};

fn version() -> &'static str {
    Box::leak(
        format!(
            "{} (project `{}`, sources {})",
            env!("CARGO_PKG_VERSION"),
            PROJECT.name,
            PROJECT.source_hash
        )
        .into_boxed_str(),
    )
}

#[derive(Parser, Debug)]
#[command(name = "flapi", version = version(), about = "Serves the SQL endpoints compiled into this binary")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the project (the default).
    Serve(ServeArgs),
    /// List the compiled routes.
    Routes,
    /// Print the OpenAPI document.
    Openapi,
    /// Print an argon2id hash of a password for roles.yaml. The password is
    /// read from standard input (first line) or, on a terminal, from a
    /// prompt without echo; never from the command line.
    HashPassword,
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check an audit log's hash chain; prints OK or the first bad line.
    /// A keyed log (written with FLAPI_AUDIT_KEY) is checked with the same
    /// variable set; with it set, every record must carry the key's MAC.
    Verify {
        /// The log file (a rotated file verifies from its own first record).
        file: PathBuf,
        /// A chain head from an `audit checkpoint` line of the server's
        /// log: the file must still hold that record (it was not cut).
        #[arg(long)]
        expect: Option<String>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(clap::Args, Debug, Clone)]
struct ServeArgs {
    /// Address to bind (default: the project's http-host, else 127.0.0.1).
    #[arg(long, env = "FLAPI_HOST")]
    host: Option<IpAddr>,
    /// Port to bind (default: the project's http-port, else 8080; 0 picks a free one).
    #[arg(long, env = "FLAPI_PORT")]
    port: Option<u16>,
    /// Folder that relative data paths resolve against (default: the project folder at build time).
    #[arg(long, env = "FLAPI_PROJECT_DIR")]
    project_dir: Option<PathBuf>,
    /// DuckDB database file (default: the project's duckdb.db_path, else in memory).
    #[arg(long, env = "FLAPI_DB_PATH")]
    db_path: Option<PathBuf>,
    /// Per-query deadline in milliseconds (default: the project's duckdb.query-timeout-ms).
    #[arg(long, env = "FLAPI_QUERY_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    query_timeout_ms: Option<u64>,
    /// DuckDB connections in the pool.
    #[arg(long, env = "FLAPI_POOL_SIZE", value_parser = clap::value_parser!(u64).range(1..=256))]
    pool_size: Option<u64>,
    /// Audit log file, replacing the path in `audit:` (relative paths resolve against --project-dir).
    #[arg(long, env = "FLAPI_AUDIT_FILE")]
    audit_file: Option<PathBuf>,
    /// TLS certificate chain (PEM): serve HTTPS only; overrides `enforce-https.ssl-cert-file`.
    #[arg(long, env = "FLAPI_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); reloaded with the certificate on SIGHUP.
    #[arg(long, env = "FLAPI_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also listen on this plain-HTTP port, only to redirect to HTTPS.
    #[arg(long, env = "FLAPI_REDIRECT_HTTP_PORT")]
    redirect_http_port: Option<u16>,
    #[arg(long, env = "FLAPI_LOG_LEVEL", value_enum, default_value = "info")]
    log_level: LogLevel,
    #[arg(long, env = "FLAPI_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

fn init_logging(args: &ServeArgs) {
    let level = match args.log_level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    // Colours only for a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    flapi::logging::init(
        level,
        matches!(args.log_format, LogFormat::Json),
        ansi,
        std::io::stderr,
    );
}

/// `public`, `denied` or the roles an item is open to.
fn access_text(access: Access) -> String {
    match access {
        Access::Public => "public".to_string(),
        Access::Roles(0) => "denied".to_string(),
        Access::Roles(mask) => PROJECT
            .auth
            .roles
            .iter()
            .filter(|r| mask & r.bit != 0)
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn read_password() -> Result<String, String> {
    use std::io::{BufRead, IsTerminal};
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the two passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    Ok(password)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Routes) => {
            for e in PROJECT.endpoints {
                if let Some(url) = e.url_path {
                    let access = access_text(e.rest_access);
                    println!("{:<8} {:<32} {:<24} {}", e.method, url, access, e.source);
                }
                let mcp_access = access_text(e.mcp_access);
                if let Some(tool) = &e.tool {
                    println!(
                        "{:<8} {:<32} {:<24} {}",
                        "TOOL", tool.name, mcp_access, e.source
                    );
                }
                if let Some(resource) = &e.resource {
                    let uri = format!("flapi://{}", resource.name);
                    let access = access_text(e.resource_access);
                    println!("{:<8} {:<32} {:<24} {}", "RESOURCE", uri, access, e.source);
                }
            }
            for p in PROJECT.prompts {
                let access = access_text(p.access);
                println!("{:<8} {:<32} {:<24} {}", "PROMPT", p.name, access, p.source);
            }
            ExitCode::SUCCESS
        }
        Some(Command::Audit(AuditCommand::Verify { file, expect })) => {
            use flapi::audit::Verdict;
            let key = match std::env::var("FLAPI_AUDIT_KEY") {
                Err(_) => None,
                Ok(key) => match flapi::audit::ChainKey::new(key.as_bytes()) {
                    Ok(key) => Some(key),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            if let Some(head) = &expect {
                match flapi::audit::contains_link(&file, head) {
                    Ok(true) => {}
                    Ok(false) => {
                        println!(
                            "CUT: no record has the checkpoint's hash {head}: the log was cut after it, or is another log"
                        );
                        return ExitCode::FAILURE;
                    }
                    Err(e) => {
                        eprintln!("error: cannot read {}: {e}", file.display());
                        return ExitCode::from(2);
                    }
                }
            }
            match flapi::audit::verify_file_keyed(&file, key.as_ref()) {
                Ok(Verdict::Ok {
                    records,
                    first_prev,
                    ..
                }) => {
                    // A log that does not start at the genesis hash is a
                    // rotated file, or one whose first records are gone:
                    // say which hash it continues from.
                    if first_prev == flapi::audit::GENESIS || records == 0 {
                        println!("OK: {records} records, hash chain intact from the start");
                    } else {
                        println!(
                            "OK: {records} records, hash chain intact, continuing from {first_prev} (the last hash of the previous file)"
                        );
                    }
                    ExitCode::SUCCESS
                }
                Ok(Verdict::Broken { line, reason }) => {
                    println!("BROKEN at line {line}: {reason}");
                    ExitCode::FAILURE
                }
                Ok(Verdict::NeedsKey) => {
                    eprintln!(
                        "error: the log is keyed (its records carry an HMAC); set FLAPI_AUDIT_KEY to verify it"
                    );
                    ExitCode::from(2)
                }
                Ok(Verdict::TornTail { line, records }) => {
                    println!(
                        "TORN: line {line} is incomplete (a write was interrupted); the {records} records before it verify"
                    );
                    ExitCode::from(3)
                }
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", file.display());
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::HashPassword) => {
            match read_password().and_then(|p| flapi::auth::hash_password(&p)) {
                Ok(hash) => {
                    println!("{hash}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Openapi) => {
            println!("{}", PROJECT.openapi_json);
            ExitCode::SUCCESS
        }
        Some(Command::Serve(args)) => run(args),
        None => run(cli.serve),
    }
}

fn run(args: ServeArgs) -> ExitCode {
    init_logging(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let started = Instant::now();
        let mut options = DbOptions::for_project(&PROJECT);
        if let Some(dir) = args.project_dir {
            options.base_dir = dir;
        } else if !options.base_dir.is_dir() {
            // Deployed away from the build machine: data paths are relative
            // to the working directory.
            options.base_dir = std::env::current_dir().unwrap_or_default();
        }
        if let Some(path) = args.db_path {
            options.db_path = Some(path);
        }
        if let Some(ms) = args.query_timeout_ms {
            options.query_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = args.pool_size {
            options.pool_size = n as usize;
        }
        options.audit_file = args.audit_file;
        // TLS files on the command line are relative to where the server
        // was started (data, database and audit paths to the project
        // folder, as before); then the project folder becomes the working
        // directory, so DuckDB resolves relative data paths there and
        // nowhere else (a `data/` in the launch folder is never read).
        let launch = std::env::current_dir().unwrap_or_default();
        options.base_dir = launch.join(&options.base_dir);
        let tls_cli = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some((launch.join(cert), launch.join(key))),
            _ => None,
        };
        if let Err(e) = std::env::set_current_dir(&options.base_dir) {
            eprintln!(
                "error: cannot enter the project folder {}: {e}",
                options.base_dir.display()
            );
            return ExitCode::FAILURE;
        }
        let options_base = options.base_dir.clone();
        let app = match tokio::task::spawn_blocking(move || app(&PROJECT, &options)).await {
            Ok(Ok(app)) => app,
            Ok(Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("error: start-up failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        flapi::heartbeat::spawn(&PROJECT, app.db.clone(), app.shutdown.clone());
        let host = args
            .host
            .or_else(|| PROJECT.http_host.and_then(|h| h.parse().ok()))
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let port = args.port.or(PROJECT.http_port).unwrap_or(8080);
        let addr = SocketAddr::new(host, port);
        let tls = match (tls_cli, PROJECT.edge.tls) {
            (Some(files), _) => Some(files),
            (None, Some((cert, key))) => Some((options_base.join(cert), options_base.join(key))),
            _ => None,
        };
        let listener = match std::net::TcpListener::bind(addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot bind {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let local = listener.local_addr().unwrap_or(addr);
        if let Some(port) = args.redirect_http_port.filter(|_| tls.is_some()) {
            let redirect_addr = SocketAddr::new(host, port);
            match std::net::TcpListener::bind(redirect_addr) {
                Ok(plain) => {
                    tracing::info!("redirecting http://{redirect_addr} to HTTPS");
                    tokio::spawn(edge::redirect_listener(
                        plain,
                        PROJECT.edge.public_host,
                        local.port(),
                        app.shutdown.clone(),
                    ));
                }
                Err(e) => {
                    eprintln!("error: cannot bind {redirect_addr}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        // The build's auditor warns about a non-loopback `http-host`; a
        // `--host` given at start-up gets the same warnings here.
        for warning in flapi::app::exposure_warnings(&PROJECT, host, tls.is_some()) {
            tracing::warn!("{warning}");
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(
            project = PROJECT.name,
            endpoints = PROJECT.endpoints.len(),
            startup_ms = started.elapsed().as_millis() as u64,
            "listening on {scheme}://{local}"
        );
        let listen = edge::Listen {
            tls,
            max_header_bytes: PROJECT.edge.max_header_bytes as usize,
        };
        match edge::serve_listener(listener, app.router, app.shutdown, listen).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: server failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
