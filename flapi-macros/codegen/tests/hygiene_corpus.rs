//! The hygiene scanner against two corpora kept as data files (SPEC §11):
//! poisoned strings by attack class, each filed under the rule it must
//! raise at the marked position, and benign real-world strings. The tests
//! print caught and false-positive figures by class
//! (`cargo test -p flapi-codegen --test hygiene_corpus -- --nocapture`).

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
        "field" | "prompt-arg" | "project" | "column" => TextKind::Name,
        "enum" | "default" | "prompt-value" => TextKind::Value,
        "pattern" => TextKind::Pattern,
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

/// The attack class of each entry: the latest `# --- class: NAME` header
/// above it.
fn classes(name: &str) -> Vec<(usize, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hygiene")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut class = String::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(c) = line.strip_prefix("# --- class: ") {
            class = c.trim().to_string();
        } else if !line.trim().is_empty() && !line.starts_with('#') && !class.is_empty() {
            out.push((i + 1, class.clone()));
        }
    }
    out
}

/// Caught and total per class, printed as a table.
#[derive(Default)]
struct Tally(std::collections::BTreeMap<String, (usize, usize)>);

impl Tally {
    fn count(&mut self, class: &str, hit: bool) {
        let e = self.0.entry(class.to_string()).or_default();
        e.0 += usize::from(hit);
        e.1 += 1;
    }

    fn total(&self) -> (usize, usize) {
        self.0
            .values()
            .fold((0, 0), |(a, b), (h, n)| (a + h, b + n))
    }

    fn print(&self, what: &str) {
        println!("{what} by class:");
        for (class, (hit, n)) in &self.0 {
            println!(
                "  {class:<24} {hit:>4} / {n:<4} {:>6.1}%",
                100.0 * *hit as f64 / *n as f64
            );
        }
        let (hit, n) = self.total();
        println!(
            "  {:<24} {hit:>4} / {n:<4} {:>6.1}%",
            "all",
            100.0 * hit as f64 / n as f64
        );
    }
}

/// Every poisoned string must be caught (any finding) in at least 95% of
/// cases, overall and in each class; a caught string must raise the rule
/// it is filed under, at the marked byte. Misses are printed, so a gap in
/// a class is visible rather than dropped from the corpus.
#[test]
fn poisoned_strings_are_caught_by_their_rule_where_they_start() {
    let entries = corpus("poisoned.txt");
    let classes: std::collections::BTreeMap<usize, String> =
        classes("poisoned.txt").into_iter().collect();
    let mut wrong = Vec::new();
    let mut missed = Vec::new();
    let mut tally = Tally::default();
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
        let class = classes.get(line).map(String::as_str).unwrap_or(rule.id);
        tally.count(class, !findings.is_empty());
        if findings.is_empty() {
            missed.push(format!("line {line} [{class}]: {text:?}"));
            continue;
        }
        match (findings.iter().find(|f| f.rule == rule), marked) {
            (None, _) => wrong.push(format!(
                "line {line}: no `{id}`; found [{}]",
                show(&findings)
            )),
            (Some(f), Some(at)) if f.offset != at => wrong.push(format!(
                "line {line}: `{id}` at byte {}, expected {at} ({:?})",
                f.offset,
                &text[at.min(f.offset)..at.max(f.offset)]
            )),
            _ => {}
        }
    }
    tally.print("poisoned strings caught");
    if !missed.is_empty() {
        println!("missed:\n{}", missed.join("\n"));
    }
    assert!(
        wrong.is_empty(),
        "{} caught strings raised another rule or position:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let (hit, n) = tally.total();
    assert!(n >= 200, "the poisoned corpus has {n} entries");
    assert!(hit * 100 >= n * 95, "{hit} of {n} caught, below 95%");
    for (class, (hit, n)) in &tally.0 {
        assert!(
            hit * 100 >= n * 90,
            "class {class}: {hit} of {n} caught, below 90%"
        );
    }
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

/// At most 1% of benign strings may raise anything; each one that does is
/// printed with its findings.
#[test]
fn benign_strings_pass() {
    let entries = corpus("benign.txt");
    let classes: std::collections::BTreeMap<usize, String> =
        classes("benign.txt").into_iter().collect();
    let mut tally = Tally::default();
    let mut flagged = Vec::new();
    for (line, entry) in &entries {
        // `kind | text`, or a bare description.
        let (kind_name, text) = match entry.split_once(" | ") {
            Some((k, t)) if !k.contains(' ') => (k, t),
            _ => ("description", entry.as_str()),
        };
        let findings = scan(text, kind(kind_name));
        let class = classes.get(line).map(String::as_str).unwrap_or(kind_name);
        tally.count(class, !findings.is_empty());
        if !findings.is_empty() {
            flagged.push(format!("line {line}: [{}] in {text:?}", show(&findings)));
        }
    }
    tally.print("benign strings flagged (false positives)");
    let (fp, n) = tally.total();
    assert!(n >= 200, "the benign corpus has {n} entries");
    assert!(
        fp * 100 <= n,
        "{fp} of {n} benign strings flagged, above 1%:\n{}",
        flagged.join("\n")
    );
    if !flagged.is_empty() {
        println!("flagged:\n{}", flagged.join("\n"));
    }
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
