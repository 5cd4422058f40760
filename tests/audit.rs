//! `flapi audit verify FILE` (SPEC §8, §14): OK for an intact log; for a
//! changed, deleted or reordered record, the first bad line and a non-zero
//! exit. The log is written with the server's own chaining code.

use std::process::Command;

use flapi::audit::{GENESIS, Record, chain};
use serde_json::json;

fn write_log(path: &std::path::Path, n: u64) -> Vec<String> {
    let mut prev = GENESIS.to_string();
    let mut lines = Vec::new();
    for i in 0..n {
        let record = Record {
            ts: format!("2026-11-24T10:00:{i:02}Z"),
            request_id: format!("req-{i}"),
            principal: Some("alice".into()),
            auth: Some("basic"),
            roles: vec!["viewer".into()],
            transport: "mcp",
            method: "tools/call".into(),
            target: "reports".into(),
            decision: "allow",
            status: 200,
            rows: Some(i),
            truncated: Some(false),
            redacted_columns: vec![],
            latency_ms: 2.0,
            arguments: json!({"quarter": format!("Q{i}")}),
        };
        let (line, hash) = chain(&record, &prev);
        lines.push(line);
        prev = hash;
    }
    std::fs::write(path, lines.join("\n") + "\n").expect("write log");
    lines
}

fn verify(path: &std::path::Path) -> (i32, String) {
    verify_with(path, None, &[])
}

fn verify_with(path: &std::path::Path, key: Option<&str>, extra: &[&str]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flapi"));
    command.args(["audit", "verify"]).arg(path).args(extra);
    command.env_remove("FLAPI_AUDIT_KEY");
    if let Some(key) = key {
        command.env("FLAPI_AUDIT_KEY", key);
    }
    let out = command.output().expect("run flapi");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn audit_verify_reports_ok_or_the_first_bad_line() {
    let dir = std::env::temp_dir().join(format!("flapi-audit-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("audit.jsonl");
    let lines = write_log(&path, 6);
    let (code, out) = verify(&path);
    assert_eq!(
        (code, out.trim()),
        (0, "OK: 6 records, hash chain intact from the start")
    );
    // Without its first record the log no longer starts at the genesis
    // hash, and the report says what it continues from.
    std::fs::write(&path, lines[1..].join("\n") + "\n").expect("write");
    let (code, out) = verify(&path);
    assert_eq!(code, 0);
    assert!(out.contains("continuing from"), "{out}");
    assert!(!out.contains("from the start"), "{out}");
    write_log(&path, 6);

    // One byte of record 4 changed.
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replacen("Q3", "Q9", 1)).expect("write");
    let (code, out) = verify(&path);
    assert_eq!(code, 1);
    assert!(out.starts_with("BROKEN at line 4:"), "{out}");

    // Record 3 deleted.
    let mut kept = lines.clone();
    kept.remove(2);
    std::fs::write(&path, kept.join("\n") + "\n").expect("write");
    assert!(verify(&path).1.starts_with("BROKEN at line 3:"));

    // Records 5 and 6 reordered.
    let mut swapped = lines.clone();
    swapped.swap(4, 5);
    std::fs::write(&path, swapped.join("\n") + "\n").expect("write");
    assert!(verify(&path).1.starts_with("BROKEN at line 5:"));

    // A torn final line is reported as such.
    std::fs::write(&path, lines.join("\n") + "\n" + &lines[0][..30]).expect("write");
    let (code, out) = verify(&path);
    assert_eq!(code, 3);
    assert!(out.starts_with("TORN: line 7"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

const KEY: &str = "audit-chain-key-for-tests-7a1c09e4b2";

#[test]
fn a_keyed_chain_cannot_be_rehashed_and_a_cut_is_found_by_its_checkpoint() {
    use flapi::audit::{ChainKey, chain_keyed};
    let dir = std::env::temp_dir().join(format!("flapi-audit-keyed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("audit.jsonl");
    let key = ChainKey::new(KEY.as_bytes()).expect("key");
    assert!(ChainKey::new(b"short").is_err());
    // The same records as `write_log`, linked by HMAC under the key.
    let plain = write_log(&path, 5);
    let mut prev = GENESIS.to_string();
    let mut lines = Vec::new();
    let mut heads = Vec::new();
    for line in &plain {
        let mut record: serde_json::Value = serde_json::from_str(line).expect("json");
        let object = record.as_object_mut().expect("object");
        object.remove("prev");
        object.remove("hash");
        let record: Record = Record {
            ts: object["ts"].as_str().expect("ts").to_string(),
            request_id: object["request_id"].as_str().expect("id").to_string(),
            principal: Some("alice".into()),
            auth: Some("basic"),
            roles: vec!["viewer".into()],
            transport: "mcp",
            method: "tools/call".into(),
            target: "reports".into(),
            decision: "allow",
            status: 200,
            rows: object["rows"].as_u64(),
            truncated: Some(false),
            redacted_columns: vec![],
            latency_ms: 2.0,
            arguments: object["arguments"].clone(),
        };
        let (line, hash) = chain_keyed(&record, &prev, Some(&key));
        lines.push(line);
        heads.push(hash.clone());
        prev = hash;
    }
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let (code, out) = verify_with(&path, Some(KEY), &[]);
    assert_eq!(code, 0, "{out}");
    // Without the key a keyed log cannot be checked.
    assert_eq!(verify_with(&path, None, &[]).0, 2);
    // With the wrong key every MAC fails.
    let (code, out) = verify_with(&path, Some("another-key-of-enough-length-000000"), &[]);
    assert_eq!(code, 1);
    assert!(out.starts_with("BROKEN at line 1:"), "{out}");
    // Someone changes record 3 and re-hashes the chain without the key:
    // the plain links are refused when the key is given.
    std::fs::write(&path, plain.join("\n").replacen("Q2", "Q9", 1) + "\n").expect("write");
    let (code, out) = verify_with(&path, Some(KEY), &[]);
    assert_eq!(code, 1);
    assert!(out.contains("re-hashed without the key"), "{out}");
    // Cutting the last two records leaves a valid chain, but the head the
    // server logged at its last checkpoint is gone.
    std::fs::write(&path, lines[..3].join("\n") + "\n").expect("write");
    assert_eq!(verify_with(&path, Some(KEY), &[]).0, 0);
    let (code, out) = verify_with(&path, Some(KEY), &["--expect", &heads[4]]);
    assert_eq!(code, 1);
    assert!(out.starts_with("CUT"), "{out}");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    assert_eq!(verify_with(&path, Some(KEY), &["--expect", &heads[4]]).0, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
