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
    let out = Command::new(env!("CARGO_BIN_EXE_flapi"))
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .expect("run flapi");
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
