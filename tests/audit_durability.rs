//! The audit log survives a crash (SPEC §8): the default project's binary
//! is killed with SIGKILL while clients keep it busy, and every request
//! that got an answer must have its record in a log that still verifies
//! (a torn last line, if the kill came mid-write, is reported as such).

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use flapi::audit::{Verdict, verify_text};

/// Answers collected before the kill.
const ANSWERS: usize = 400;
const CLIENTS: usize = 6;

#[test]
fn a_killed_server_leaves_every_answered_request_in_a_verifiable_log() {
    let dir = std::env::temp_dir().join(format!("flapi-durability-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("audit.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flapi"))
        .args(["--port", "0", "--log-format", "text", "--audit-file"])
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flapi");
    let stderr = child.stderr.take().expect("stderr");
    let (address_tx, address_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                let url = rest.split_whitespace().next().unwrap_or("").to_string();
                let _ = address_tx.send(url);
            }
        }
    });
    let url = address_rx.recv().expect("the server reports its address");

    let (answer_tx, answer_rx) = mpsc::channel::<String>();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let url = url.clone();
        let answers = answer_tx.clone();
        clients.push(std::thread::spawn(move || {
            let agent = ureq::Agent::new_with_defaults();
            for i in 0.. {
                let id = format!("load-{client}-{i}");
                let customer = 1 + (i * 7 + client) % 1000;
                let reply = agent
                    .get(format!("{url}/customers/{customer}"))
                    .header("x-request-id", &id)
                    .call();
                match reply {
                    Ok(reply) if reply.status() == 200 => {
                        if answers.send(id).is_err() {
                            break;
                        }
                    }
                    // The server is gone.
                    _ => break,
                }
            }
        }));
    }
    drop(answer_tx);
    let mut answered = Vec::new();
    while answered.len() < ANSWERS {
        answered.push(answer_rx.recv().expect("answers keep coming"));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    // Answers that arrived between the count and the kill count too.
    for client in clients {
        let _ = client.join();
    }
    answered.extend(answer_rx.try_iter());

    let text = std::fs::read_to_string(&log).expect("audit log");
    match verify_text(&text, None) {
        Verdict::Ok { .. } | Verdict::TornTail { .. } => {}
        broken => panic!("the log does not verify after the kill: {broken:?}"),
    }
    let recorded: HashSet<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|r| r["request_id"].as_str().map(str::to_string))
        .collect();
    let missing: Vec<&String> = answered
        .iter()
        .filter(|id| !recorded.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests have no record: {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(5)]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
