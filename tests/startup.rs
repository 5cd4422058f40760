//! The `flapi` binary does not depend on the folder it is started from
//! (issue 16): relative data paths resolve in the project folder, never in
//! the working directory, even when that directory holds a `data/` folder
//! of its own; and a `--host` that exposes the server gets the config
//! auditor's warning at start-up.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

#[test]
fn data_paths_resolve_in_the_project_folder_and_a_public_host_is_warned() {
    let cwd = std::env::temp_dir().join(format!("flapi-startup-cwd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cwd);
    std::fs::create_dir_all(cwd.join("data")).expect("dir");
    std::fs::write(
        cwd.join("data/customers.csv"),
        "customer_id,name,email,segment,country,signup_date,credit_limit\n1,PLANTED,x@example.com,SMB,DE,2024-01-01,1.00\n",
    )
    .expect("planted customers");
    std::fs::write(
        cwd.join("data/orders.csv"),
        "order_id,customer_id,order_date,status,items,total\n1,1,2024-01-02,paid,1,1.00\n",
    )
    .expect("planted orders");
    let audit = cwd.join("audit.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flapi"))
        .args([
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--log-format",
            "text",
            "--audit-file",
        ])
        .arg(&audit)
        .current_dir(&cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flapi");
    let stderr = child.stderr.take().expect("stderr");
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let port = loop {
        let line = lines_rx.recv().expect("the server reports its address");
        if let Some(at) = line.find("listening on http://") {
            let rest = &line[at + "listening on http://".len()..];
            let port = rest
                .split_whitespace()
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse::<u16>().ok())
                .expect("port");
            break port;
        }
        seen.push(line);
    };
    let warned = seen
        .iter()
        .any(|l| l.contains("listens on `0.0.0.0` without TLS and without authentication"));
    let reply = ureq::Agent::new_with_defaults()
        .get(format!("http://127.0.0.1:{port}/customers/1"))
        .call()
        .map(|mut r| r.body_mut().read_to_string().unwrap_or_default());
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&cwd);
    assert!(warned, "no exposure warning in: {seen:#?}");
    let body = reply.expect("customer 1");
    assert!(
        !body.contains("PLANTED"),
        "read the launch folder's data: {body}"
    );
    let expected = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/project/data/customers.csv"
    ))
    .expect("project data");
    let name = expected
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(1))
        .expect("first customer's name");
    assert!(body.contains(name), "{body}");
}
