//! Benchmark (not a test; run `benches/run.sh`): requests per second and
//! p50/p99 latency at 32 connections for the bench project's point lookup
//! and filtered list, for flapi, for the C++ flAPI on the same project and
//! data, and a bare in-process DuckDB loop running the same prepared query
//! on the same number of threads. Prints every figure and the ratios of
//! SPEC §15. Load comes from `wrk` (a separate process) for both servers.
//! Last, a load test (`--load-seconds`, default 30; 0 skips it): 200
//! connections against the lookup with authentication, rate limits and
//! audit on, reporting status classes and memory over the run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod bench_project {
    flapi_macros::project!("benches/project");
}

mod auth_project {
    flapi_macros::project!("benches/auth_project");
}
mod audit_project {
    flapi_macros::project!("benches/audit_project");
}
mod mask_project {
    flapi_macros::project!("benches/mask_project");
}
mod edge_project {
    flapi_macros::project!("benches/edge_project");
}

use bench_project::PROJECT;

/// The lookup with an Authorization header on every request.
fn authorized_lookup_lua(authorization: &str) -> String {
    format!(
        r#"
math.randomseed(7)
request = function() return wrk.format("GET", "/customers/" .. math.random(1, 1500), {{["Authorization"] = "{authorization}"}}) end
"#
    )
}

/// Serves `project` with `options` on a free loopback port, in its own
/// thread and runtime; returns the port.
fn spawn_flapi(project: &'static flapi::runtime::ProjectDef, options: flapi::DbOptions) -> u16 {
    let port = free_port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let app = flapi::app(project, &options).expect("bench project starts");
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .expect("bind");
            let _ = flapi::serve(listener, app.router, app.shutdown).await;
        });
    });
    port
}

struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

const LOOKUP_LUA: &str = r#"
math.randomseed(7)
request = function() return wrk.format("GET", "/customers/" .. math.random(1, 1500)) end
"#;
const LIST_LUA: &str = r#"
local segments = {"AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY"}
math.randomseed(7)
request = function()
  return wrk.format("GET", "/customers?segment=" .. segments[math.random(1, 5)] .. "&nation=" .. math.random(0, 24))
end
"#;

const MCP_LUA: &str = r#"
math.randomseed(7)
request = function()
  local body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"customer_lookup","arguments":{"id":' .. math.random(1, 1500) .. '}}}'
  return wrk.format("POST", "/mcp/jsonrpc", {["Content-Type"] = "application/json"}, body)
end
"#;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn duration_ms(text: &str) -> f64 {
    let text = text.trim();
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

fn wrk(port: u16, lua: &str, seconds: u64, connections: u32) -> Load {
    let script =
        std::env::temp_dir().join(format!("flapi-bench-{}-{port}.lua", std::process::id()));
    std::fs::write(&script, lua).expect("write wrk script");
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.trim_start()[prefix.len()..].trim().to_string())
    };
    Load {
        rps: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p50_ms: field("50%").map(|v| duration_ms(&v)).unwrap_or(f64::NAN),
        p99_ms: field("99%").map(|v| duration_ms(&v)).unwrap_or(f64::NAN),
        non_2xx: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

/// wrk script for the authenticated side of the credential flood: the
/// lookup with `authorization`, counting 5xx answers.
fn counted_lookup_lua(authorization: &str) -> String {
    format!(
        r#"
local threads = {{}}
math.randomseed(5)
function setup(thread) table.insert(threads, thread) end
function init(args) c5xx = 0; other = 0 end
request = function() return wrk.format("GET", "/customers/" .. math.random(1, 1500), {{["Authorization"] = "{authorization}"}}) end
response = function(status)
  if status >= 500 then c5xx = c5xx + 1 elseif status ~= 200 then other = other + 1 end
end
done = function(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("c5xx"); b = b + t:get("other") end
  io.write(string.format("COUNTS 5xx=%d other=%d\n", a, b))
end
"#
    )
}

/// wrk script of the flood: every request a new random Basic credential.
const RANDOM_BASIC_LUA: &str = r#"
local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
local pool = {}
function init(args)
  math.randomseed(os.time() + #threads); s401 = 0; s429 = 0; s503 = 0; other = 0
  -- Encoded up front, so the flood's own CPU goes into sending.
  for i = 1, 20000 do
    pool[i] = "Basic " .. b64("user" .. math.random(1, 1000000000) .. ":pw" .. math.random(1, 1000000000))
  end
end
request = function()
  return wrk.format("GET", "/customers/1", {["Authorization"] = pool[math.random(1, #pool)]})
end
response = function(status)
  if status == 401 then s401 = s401 + 1 elseif status == 429 then s429 = s429 + 1
  elseif status == 503 then s503 = s503 + 1 else other = other + 1 end
end
done = function(summary, latency, requests)
  local a, b, c, d = 0, 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("s401"); b = b + t:get("s429"); c = c + t:get("s503"); d = d + t:get("other") end
  io.write(string.format("FLOOD 401=%d 429=%d 503=%d other=%d\n", a, b, c, d))
end
"#;

/// Runs `wrk` with a script in the background; its stdout when it ends.
fn wrk_background(port: u16, lua: &str, seconds: u64, connections: u32, tag: &str) -> Child {
    let script = std::env::temp_dir().join(format!("flapi-bench-{tag}-{}.lua", std::process::id()));
    std::fs::write(&script, lua).expect("write wrk script");
    Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("wrk runs")
}

fn finish(mut child: Child) -> String {
    let _ = child.wait();
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut text);
    }
    text
}

fn rps_of(text: &str) -> f64 {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn line_of<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or("(missing)")
}

/// Issue 16's load test: 32 connections of authenticated (Basic, cached)
/// lookups, alone and then beside 200 connections sending a new random
/// Basic credential on every request. Prints the authenticated throughput
/// under the flood as a ratio of the same run without it (target >= 0.70),
/// the authenticated 5xx count (target 0), the flood's status classes and
/// the resident memory before, during and after.
fn credential_flood(port: u16, basic: &str, seconds: u64) {
    let lua = counted_lookup_lua(basic);
    let before_rss = current_rss_mib();
    let alone = finish(wrk_background(port, &lua, seconds, 32, "auth-alone"));
    let alone_rss = current_rss_mib();
    let flood = wrk_background(port, RANDOM_BASIC_LUA, seconds + 2, 200, "flood");
    std::thread::sleep(Duration::from_secs(1));
    let authed = wrk_background(port, &lua, seconds, 32, "auth-flooded");
    let mut samples = Vec::new();
    let mut authed = Some(authed);
    while let Some(child) = authed.as_mut() {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        samples.push(current_rss_mib());
    }
    let under = finish(authed.take().expect("child"));
    let flood = finish(flood);
    let after_rss = current_rss_mib();
    let (a, b) = (rps_of(&alone), rps_of(&under));
    println!(
        "\ncredential flood: {seconds}s, 32 authenticated connections (Basic, cached) beside 200 sending random Basic credentials"
    );
    println!(
        "  authenticated alone:        {a:>9.0} req/s  {}",
        line_of(&alone, "COUNTS")
    );
    println!(
        "  authenticated under flood:  {b:>9.0} req/s  {}",
        line_of(&under, "COUNTS")
    );
    println!(
        "  flood: {:.0} req/s  {}",
        rps_of(&flood),
        line_of(&flood, "FLOOD")
    );
    println!(
        "  ratio under flood / alone: {:.2} (target >= 0.70)",
        if a > 0.0 { b / a } else { f64::NAN }
    );
    println!(
        "  RSS MiB: before {before_rss:.1}, after the run alone {alone_rss:.1}, under flood max {:.1}, after {after_rss:.1}; each second: {}",
        samples.iter().cloned().fold(f64::NAN, f64::max),
        samples
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn current_rss_mib() -> f64 {
    status_mib(std::process::id(), "VmRSS:")
}

/// The load test of issue 7: 200 connections against the lookup with
/// JWT authentication (50 principals, and 1 request in 20 with a forged
/// token), rate limits and the audit log on. Prints the status classes
/// (there must be no 5xx) and the resident memory sampled every second
/// (it must level off, not grow with the requests served).
fn load_test(project_dir: &Path, seconds: u64) {
    let secret = format!("bench-secret-0123456789abcdef-{}", std::process::id());
    let mut options = flapi::DbOptions::for_project(&edge_project::PROJECT);
    options.base_dir = project_dir.to_path_buf();
    options.env_overrides = vec![("BENCH_JWT_SECRET".into(), secret.clone())];
    let audit_file =
        std::env::temp_dir().join(format!("flapi-bench-edge-{}.jsonl", std::process::id()));
    options.audit_file = Some(audit_file.clone());
    let port = spawn_flapi(&edge_project::PROJECT, options);
    wait_ready(port, "/health", Instant::now()).expect("edge bench ready");
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 3600;
    let mut tokens: Vec<String> = (0..50)
        .map(|i| {
            let token = jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &serde_json::json!({"sub": format!("bench-{i}"), "aud": "flapi-bench", "exp": exp, "roles": ["reader"]}),
                &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            )
            .expect("sign");
            format!("\"Bearer {token}\"")
        })
        .collect();
    tokens.extend((0..3).map(|i| format!("\"Bearer forged.token.{i}\"")));
    let lua = format!(
        r#"
local tokens = {{{}}}
local threads = {{}}
math.randomseed(11)
function setup(thread) table.insert(threads, thread) end
function init(args) c2xx = 0; c401 = 0; c429 = 0; c5xx = 0; other = 0 end
request = function()
  return wrk.format("GET", "/customers/" .. math.random(1, 1500), {{["Authorization"] = tokens[math.random(1, #tokens)]}})
end
response = function(status)
  if status >= 200 and status < 300 then c2xx = c2xx + 1
  elseif status == 401 then c401 = c401 + 1
  elseif status == 429 then c429 = c429 + 1
  elseif status >= 500 then c5xx = c5xx + 1
  else other = other + 1 end
end
done = function(summary, latency, requests)
  local a, b, c, d, e = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("c2xx"); b = b + t:get("c401"); c = c + t:get("c429"); d = d + t:get("c5xx"); e = e + t:get("other")
  end
  io.write(string.format("STATUS 2xx=%d 401=%d 429=%d 5xx=%d other=%d errors=%d\n", a, b, c, d, e,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"#,
        tokens.join(", ")
    );
    let script = std::env::temp_dir().join(format!("flapi-bench-load-{}.lua", std::process::id()));
    std::fs::write(&script, lua).expect("write wrk script");
    let before = current_rss_mib();
    let mut child = Command::new("wrk")
        .args(["-t2", "-c200", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("wrk runs");
    let mut samples = Vec::new();
    while child.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_secs(1));
        samples.push(current_rss_mib());
    }
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut text);
    }
    let status = text
        .lines()
        .find(|l| l.starts_with("STATUS"))
        .unwrap_or("STATUS (missing)");
    let rps = text
        .lines()
        .find(|l| l.trim_start().starts_with("Requests/sec:"))
        .unwrap_or("")
        .trim();
    let third = (samples.len() / 3).max(1);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    let early = mean(&samples[..third.min(samples.len())]);
    let late = mean(&samples[samples.len().saturating_sub(third)..]);
    println!(
        "\nload test: {seconds}s, 200 connections, JWT auth (50 principals + forged tokens), rate limits and audit on"
    );
    println!("  {rps}");
    println!("  {status}");
    println!(
        "  RSS MiB: before {before:.1}, first third {early:.1}, last third {late:.1}, max {:.1}",
        samples.iter().cloned().fold(f64::NAN, f64::max)
    );
    let records = std::fs::read_to_string(&audit_file)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    println!("  audit records written: {records}");
    let _ = std::fs::remove_file(&audit_file);
    let _ = std::fs::remove_file(&script);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls until the server answers 200; bounded, returns the elapsed time.
fn wait_ready(port: u16, path: &str, started: Instant) -> Option<Duration> {
    for _ in 0..3000 {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            );
            let mut buf = [0u8; 12];
            if std::io::Read::read_exact(&mut stream, &mut buf).is_ok()
                && buf.starts_with(b"HTTP/1.1 200")
            {
                return Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// A memory figure of `/proc/PID/status`, in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

struct Peer(Child);
impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The same prepared queries in a loop on `threads` connections.
fn bare_duckdb(project_dir: &Path, threads: usize, seconds: u64) -> (f64, f64) {
    let db = duckdb::Connection::open_in_memory().expect("duckdb");
    if let Some(threads) = PROJECT.duckdb.threads {
        // The same DuckDB settings as the servers get from the project.
        db.execute_batch(&format!("SET threads = {threads}"))
            .expect("threads");
    }
    db.execute_batch(&format!(
        "CREATE TABLE customers AS SELECT * FROM read_parquet('{}')",
        project_dir.join("data/customers.parquet").display()
    ))
    .expect("load");
    let lookup = PROJECT
        .endpoints
        .iter()
        .find(|e| e.id == "customer")
        .expect("lookup")
        .texts[0]
        .sql;
    let run = |sql: &'static str, list: bool| -> f64 {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let conn = db.try_clone().expect("clone");
                std::thread::spawn(move || {
                    let mut stmt = conn.prepare(sql).expect("prepare");
                    let mut n = 0u64;
                    let mut x: u64 = 7 + t as u64;
                    while Instant::now() < deadline {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let mut rows = if list {
                            stmt.query(duckdb::params!["BUILDING", ((x >> 33) % 25) as i64])
                                .expect("query")
                        } else {
                            stmt.query(duckdb::params![(1 + (x >> 33) % 1500) as i64])
                                .expect("query")
                        };
                        while let Ok(Some(row)) = rows.next() {
                            for i in 0..row.as_ref().column_count() {
                                let _ = row.get_ref(i);
                            }
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
        total as f64 / seconds as f64
    };
    let list_text = PROJECT
        .endpoints
        .iter()
        .find(|e| e.id == "customers")
        .expect("list");
    // The variant with both filters present (last text): same SQL as the load.
    let list_sql = list_text.texts[list_text.texts.len() - 1].sql;
    (run(lookup, false), run(list_sql, true))
}

fn main() {
    let seconds: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(10);
    let connections: u32 = 32;
    let project_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/project");
    assert!(
        project_dir.join("data/customers.parquet").exists(),
        "run benches/run.sh (it links ../shared/data)"
    );
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    if std::env::args().any(|a| a == "--flood-only") {
        // Only issue 16's credential flood (`benches/run.sh` runs it too).
        let secret = format!("bench-secret-0123456789abcdef-{}", std::process::id());
        let mut options = flapi::DbOptions::for_project(&auth_project::PROJECT);
        options.base_dir = project_dir.clone();
        options.env_overrides = vec![("BENCH_JWT_SECRET".into(), secret)];
        let auth_port = spawn_flapi(&auth_project::PROJECT, options);
        wait_ready(auth_port, "/health", Instant::now()).expect("auth bench ready");
        use base64::Engine;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("bench:bench-pw")
        );
        let _ = wrk(auth_port, &authorized_lookup_lua(&basic), 1, connections);
        credential_flood(auth_port, &basic, seconds);
        return;
    }

    // flapi, in this process, on a loopback port.
    let started = Instant::now();
    let mut options = flapi::DbOptions::for_project(&PROJECT);
    options.base_dir = project_dir.clone();
    let port = spawn_flapi(&PROJECT, options);
    let ours_startup = wait_ready(port, "/customers/1", started).expect("flapi ready");
    // A short unmeasured run first, for every server: the first seconds
    // of load (connection set-up, caches) otherwise count against
    // whichever run happens to come first.
    let _ = wrk(port, LOOKUP_LUA, 1, connections);
    let ours_lookup = wrk(port, LOOKUP_LUA, seconds, connections);
    let ours_list = wrk(port, LIST_LUA, seconds, connections);
    let ours_mcp = wrk(port, MCP_LUA, seconds, connections);
    let ours_rss = peak_rss_mib(std::process::id());

    // The same lookup behind Basic and behind a bearer JWT.
    use base64::Engine;
    let secret = format!("bench-secret-0123456789abcdef-{}", std::process::id());
    let mut options = flapi::DbOptions::for_project(&auth_project::PROJECT);
    options.base_dir = project_dir.clone();
    options.env_overrides = vec![("BENCH_JWT_SECRET".into(), secret.clone())];
    let auth_port = spawn_flapi(&auth_project::PROJECT, options);
    // Ready when /health answers (the lookup itself needs credentials).
    wait_ready(auth_port, "/health", Instant::now()).expect("auth bench ready");
    let _ = wrk(auth_port, LOOKUP_LUA, 1, connections);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("bench:bench-pw")
    );
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 3600;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": "bench", "aud": "flapi-bench", "exp": exp, "roles": ["reader"]}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign");
    let ours_basic = wrk(
        auth_port,
        &authorized_lookup_lua(&basic),
        seconds,
        connections,
    );
    let ours_jwt = wrk(
        auth_port,
        &authorized_lookup_lua(&format!("Bearer {token}")),
        seconds,
        connections,
    );
    credential_flood(auth_port, &basic, seconds);

    // The same lookup with every request audited and synced before it is
    // answered (concurrent requests share one fsync).
    let mut options = flapi::DbOptions::for_project(&audit_project::PROJECT);
    options.base_dir = project_dir.clone();
    let audit_file =
        std::env::temp_dir().join(format!("flapi-bench-audit-{}.jsonl", std::process::id()));
    options.audit_file = Some(audit_file.clone());
    let audit_port = spawn_flapi(&audit_project::PROJECT, options);
    wait_ready(audit_port, "/customers/1", Instant::now()).expect("audit bench ready");
    let _ = wrk(audit_port, LOOKUP_LUA, 1, connections);
    let ours_audited = wrk(audit_port, LOOKUP_LUA, seconds, connections);
    let _ = std::fs::remove_file(&audit_file);

    // The list with a redacted column: every call runs the masked text
    // (masked projections in DuckDB). Measured between two runs of the
    // unmasked list, so drift over the run cancels out.
    let mut options = flapi::DbOptions::for_project(&mask_project::PROJECT);
    options.base_dir = project_dir.clone();
    let mask_port = spawn_flapi(&mask_project::PROJECT, options);
    wait_ready(mask_port, "/customers", Instant::now()).expect("mask bench ready");
    let _ = wrk(mask_port, LIST_LUA, 1, connections);
    let unmasked_before = wrk(port, LIST_LUA, seconds, connections);
    let ours_masked = wrk(mask_port, LIST_LUA, seconds, connections);
    let unmasked_after = wrk(port, LIST_LUA, seconds, connections);
    let unmasked_list = (unmasked_before.rps + unmasked_after.rps) / 2.0;

    // The C++ flAPI on the same project folder.
    let peer = arg("--peer").map(|path| {
        let peer_port = free_port();
        let started = Instant::now();
        let child = Command::new(path)
            .args(["-c", "flapi.yaml", "-p", &peer_port.to_string()])
            .current_dir(&project_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("flapi-peer starts");
        let peer = Peer(child);
        let startup = wait_ready(peer_port, "/customers/1", started).expect("flapi-peer ready");
        let _ = wrk(peer_port, LOOKUP_LUA, 1, connections);
        let lookup = wrk(peer_port, LOOKUP_LUA, seconds, connections);
        let list = wrk(peer_port, LIST_LUA, seconds, connections);
        let mcp = wrk(peer_port, MCP_LUA, seconds, connections);
        let rss = peak_rss_mib(peer.0.id());
        (startup, lookup, list, mcp, rss, peer)
    });

    let (bare_lookup, bare_list) = bare_duckdb(&project_dir, threads, seconds);
    let load_seconds: u64 = arg("--load-seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);

    println!(
        "\nflapi benchmark: {seconds}s per run, {connections} connections (wrk -t2), {threads} cores\n"
    );
    println!(
        "{:<28} {:>12} {:>10} {:>10} {:>8}",
        "run", "req/s", "p50 ms", "p99 ms", "non-2xx"
    );
    let row = |name: &str, l: &Load| {
        println!(
            "{name:<28} {:>12.0} {:>10.3} {:>10.3} {:>8}",
            l.rps, l.p50_ms, l.p99_ms, l.non_2xx
        )
    };
    row("flapi lookup", &ours_lookup);
    row("flapi list", &ours_list);
    row("flapi MCP tools/call", &ours_mcp);
    row("flapi lookup, Basic auth", &ours_basic);
    row("flapi lookup, JWT HS256", &ours_jwt);
    row("flapi lookup, audited", &ours_audited);
    if let Some((_, lookup, list, mcp, _, _)) = &peer {
        row("flAPI (C++) lookup", lookup);
        row("flAPI (C++) list", list);
        row("flAPI (C++) MCP tools/call", mcp);
    }
    println!(
        "{:<28} {:>12.0}",
        format!("bare DuckDB lookup ({threads} thr)"),
        bare_lookup
    );
    println!(
        "{:<28} {:>12.0}",
        format!("bare DuckDB list ({threads} thr)"),
        bare_list
    );
    println!();
    println!(
        "start-up to first served request: flapi {:.0} ms (includes loading the parquet file)",
        ours_startup.as_secs_f64() * 1000.0
    );
    println!("peak RSS: flapi {ours_rss:.1} MiB (whole bench process at that point)");
    println!("\nratios (SPEC §15 target in brackets):");
    if let Some((startup, lookup, list, mcp, rss, _)) = &peer {
        println!(
            "  lookup req/s flapi / flAPI   {:>6.2}  [>= 3]",
            ours_lookup.rps / lookup.rps
        );
        println!(
            "  list   req/s flapi / flAPI   {:>6.2}  [>= 3]",
            ours_list.rps / list.rps
        );
        println!(
            "  MCP    req/s flapi / flAPI   {:>6.2}  [>= 3]",
            ours_mcp.rps / mcp.rps
        );
        println!(
            "  lookup p99   flapi / flAPI   {:>6.2}  [<= 0.33]",
            ours_lookup.p99_ms / lookup.p99_ms
        );
        println!(
            "  list   p99   flapi / flAPI   {:>6.2}  [<= 0.33]",
            ours_list.p99_ms / list.p99_ms
        );
        println!(
            "  peak RSS     flapi / flAPI   {:>6.2}  [< 1]  (flAPI {rss:.1} MiB)",
            ours_rss / rss
        );
        println!(
            "  start-up     flapi / flAPI   {:>6.2}         (flAPI {:.0} ms)",
            ours_startup.as_secs_f64() / startup.as_secs_f64(),
            startup.as_secs_f64() * 1000.0
        );
    } else {
        println!("  (no --peer given: flAPI comparison skipped)");
    }
    println!(
        "  Basic auth lookup / no auth  {:>6.2}  [>= 0.8]",
        ours_basic.rps / ours_lookup.rps
    );
    println!(
        "  JWT auth lookup   / no auth  {:>6.2}",
        ours_jwt.rps / ours_lookup.rps
    );
    println!(
        "  audited lookup    / no audit {:>6.2}         (fsync: always)",
        ours_audited.rps / ours_lookup.rps
    );
    println!(
        "  masked list       / unmasked {:>6.2}  [>= 0.9]  ({:.0} vs {:.0} req/s; p99 {:.1} vs {:.1} ms)",
        ours_masked.rps / unmasked_list,
        ours_masked.rps,
        unmasked_list,
        ours_masked.p99_ms,
        unmasked_before.p99_ms.max(unmasked_after.p99_ms)
    );
    println!(
        "  lookup req/s flapi / bare DuckDB {:>6.2}  [>= 0.5]",
        ours_lookup.rps / bare_lookup
    );
    println!(
        "  list   req/s flapi / bare DuckDB {:>6.2}  [>= 0.5]",
        ours_list.rps / bare_list
    );
    if load_seconds > 0 {
        load_test(&project_dir, load_seconds);
    }
}
