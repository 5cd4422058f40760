//! The description scanner against two corpora kept as data files
//! (SPEC §11): every poisoned string raises its rule at the marked
//! position, and no benign string raises anything.

use flapi_codegen::check::hygiene::{self, Context, Finding, TextKind};

const MARK: char = '⟪';

/// Reads a corpus: entries without comments and blank lines, with their
/// escapes decoded, each with its 1-based line number.
fn corpus(name: &str) -> Vec<(usize, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hygiene")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, unescape(l)))
        .collect()
}

fn unescape(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                assert_eq!(chars.next(), Some('{'), "bad escape in {line}");
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let code = u32::from_str_radix(&hex, 16).expect("hex escape");
                out.push(char::from_u32(code).expect("code point"));
            }
            other => panic!("unknown escape \\{other:?} in {line}"),
        }
    }
    out
}

const TOOLS: &[&str] = &[
    "customer_lookup",
    "send_email",
    "read_file",
    "orders",
    "export.v2",
];
const HOSTS: &[&str] = &["docs.example.com", "duckdb.org"];

fn scan(text: &str, kind: TextKind) -> Vec<Finding> {
    let tools: Vec<String> = TOOLS.iter().map(|t| t.to_string()).collect();
    let hosts: Vec<String> = HOSTS.iter().map(|h| h.to_string()).collect();
    hygiene::scan(
        text,
        &Context {
            kind,
            own_tool: Some("customer_lookup"),
            tool_names: &tools,
            url_hosts: &hosts,
        },
    )
}

fn kind(name: &str) -> TextKind {
    match name {
        "title" => TextKind::Title,
        "description" => TextKind::Description,
        "parameter" => TextKind::ParameterDescription,
        "template" => TextKind::PromptTemplate,
        "instructions" => TextKind::Instructions,
        other => panic!("unknown kind `{other}`"),
    }
}

fn show(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{}@{} ({})", f.rule.id, f.offset, f.detail))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn every_poisoned_string_raises_its_rule_where_it_starts() {
    let entries = corpus("poisoned.txt");
    let mut failures = Vec::new();
    let mut families = std::collections::BTreeSet::new();
    for (line, entry) in &entries {
        let (head, text) = entry
            .split_once(" | ")
            .unwrap_or_else(|| panic!("line {line}: no ` | `"));
        let (id, kind_name) = head.split_once('@').unwrap_or((head, "description"));
        let rule = hygiene::rule(id).unwrap_or_else(|| panic!("line {line}: unknown rule `{id}`"));
        families.insert(rule.id);
        let marked = text.find(MARK);
        let text = text.replacen(MARK, "", 1);
        let findings = scan(&text, kind(kind_name));
        let hit = findings.iter().find(|f| f.rule == rule);
        match (hit, marked) {
            (None, _) => failures.push(format!(
                "line {line}: no `{id}`; found [{}]",
                show(&findings)
            )),
            (Some(f), Some(at)) if f.offset != at => failures.push(format!(
                "line {line}: `{id}` at byte {}, expected {at} ({:?})",
                f.offset,
                &text[at.min(f.offset)..at.max(f.offset)]
            )),
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} poisoned strings missed:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
    assert!(
        entries.len() >= 80,
        "the poisoned corpus has {} entries",
        entries.len()
    );
    let missing: Vec<&str> = hygiene::RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| !families.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a poisoned example: {missing:?}"
    );
}

#[test]
fn no_benign_string_raises_anything() {
    let entries = corpus("benign.txt");
    let failures: Vec<String> = entries
        .iter()
        .filter_map(|(line, text)| {
            let findings = scan(text, TextKind::Description);
            (!findings.is_empty())
                .then(|| format!("line {line}: [{}] in {text:?}", show(&findings)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} benign strings flagged:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
    assert!(
        entries.len() >= 80,
        "the benign corpus has {} entries",
        entries.len()
    );
}

#[test]
fn a_finding_never_hides_behind_an_allowed_host_prefix() {
    // `docs.example.com.evil.net` is not `docs.example.com`.
    let findings = scan(
        "See https://docs.example.com.evil.net/x",
        TextKind::Description,
    );
    assert_eq!(findings.len(), 1, "{}", show(&findings));
    assert_eq!(findings[0].rule.id, "exfiltration");
    assert!(scan("See https://api.docs.example.com/x", TextKind::Description).is_empty());
}
