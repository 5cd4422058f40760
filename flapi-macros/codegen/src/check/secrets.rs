//! Literal secrets in the project fail the build (SPEC §11, issue 6): the
//! connections' `init` SQL and `properties` are scanned for private keys,
//! cloud and SaaS key shapes, JWTs and passwords written in SQL or
//! connection strings. The diagnostic points at the secret (inside a block
//! scalar, at its own line) and never repeats its value. JWT secrets and
//! user passwords are checked where they are resolved (`auth.rs`).

use std::sync::OnceLock;

use regex::Regex;

use crate::diag::{Diagnostics, Location};
use crate::load::RawProject;
use crate::resolve::auth::env_reference;

/// What a finding is called, and its pattern.
fn shapes() -> &'static [(&'static str, Regex)] {
    static SHAPES: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    SHAPES.get_or_init(|| {
        [
            ("a private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
            ("an AWS access key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
            ("a GitHub token", r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
            ("a Slack token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
            (
                "a Stripe-style API key",
                r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
            ),
            ("an API key (`sk-…`)", r"\bsk-[A-Za-z0-9_-]{20,}"),
            (
                "a JWT",
                r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+",
            ),
            (
                "a password in a connection string",
                r"(?i)\b(?:password|passwd|pwd|client_secret|clientsecret|secret|accountkey|account_key|sharedaccesskey|token|access_token|api_key|apikey)\s*=\s*[^\s'${};&]+",
            ),
            (
                "a SAS token signature",
                r"(?i)(?:\bsig=[A-Za-z0-9%+/=]{16,}|\bSharedAccessSignature=)",
            ),
            ("credentials in a URL", r"://[^/\s:@']+:[^/\s@'$]+@"),
            (
                "a secret in a SQL option",
                r"(?i)\b(?:password|passwd|pwd|secret|token|session_token|key_id|client_secret|account_key|connection_string|bearer_token|access_token|refresh_token|sas_token|private_key|api_key|service_account_key)\s+'([^'${]{4,})'",
            ),
        ]
        .into_iter()
        .filter_map(|(what, p)| Regex::new(p).ok().map(|re| (what, re)))
        .collect()
    })
}

/// Property names whose value is a secret, compared without `-`/`_`.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "clientsecret",
    "connectionstring",
];

fn secret_name(name: &str) -> bool {
    let key: String = name
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_NAMES.iter().any(|s| key.ends_with(s))
}

/// The first secret shape in `text`: its byte offset and name.
pub fn find(text: &str) -> Option<(usize, &'static str)> {
    first_of(shapes().iter(), text)
}

fn first_of<'a>(
    shapes: impl Iterator<Item = &'a (&'static str, Regex)>,
    text: &str,
) -> Option<(usize, &'static str)> {
    // A shape with a group is found where the group starts (the value,
    // not the option name), so a more specific shape at the value wins.
    shapes
        .filter_map(|(what, re)| {
            re.captures(text)
                .and_then(|c| c.get(1).or_else(|| c.get(0)))
                .map(|m| (m.start(), *what))
        })
        .min_by_key(|(at, _)| *at)
}

/// SQL templates hold queries, not connection settings: only the shapes
/// that cannot be a column comparison (`password = …` is one) apply.
pub fn scan_template(start: &Location, sql: &str, diags: &mut Diagnostics) {
    let strong = shapes()
        .iter()
        .filter(|(what, _)| !what.contains("password") && !what.contains("SQL option"));
    if let Some((offset, what)) = first_of(strong, sql) {
        let chars = sql[..offset].chars().count();
        diags.error(
            &start.advanced_by(sql, chars),
            "",
            format!("the SQL template contains {what}"),
            Some(HINT.into()),
        );
    }
}

/// Where byte `offset` of a scalar's `value` sits in its file. The value is
/// walked beside its source text: whitespace in either (indentation, a
/// folded or literal line break) is skipped, every other character must
/// match. So a finding inside a literal (`|`) or folded (`>`) block scalar
/// gets its own line and column. Where the two stop matching (escapes in
/// a double-quoted scalar), the rest is counted in the value alone.
pub fn position_in(loc: &Location, value: &str, offset: usize) -> Location {
    let source = std::fs::read_to_string(&loc.file).unwrap_or_default();
    let line_start = source
        .split_inclusive('\n')
        .take(loc.line.saturating_sub(1) as usize)
        .map(str::len)
        .sum::<usize>();
    let mut src = source[line_start.min(source.len())..]
        .chars()
        .skip(loc.column.saturating_sub(1) as usize)
        .peekable();
    let mut at = loc.clone();
    let step = |at: &mut Location, c: char| {
        if c == '\n' {
            at.line += 1;
            at.column = 1;
        } else {
            at.column += 1;
        }
    };
    let quote = src.peek().copied().filter(|q| matches!(q, '\'' | '"'));
    if let Some(q) = quote {
        src.next();
        step(&mut at, q);
    }
    let before = &value[..offset.min(value.len())];
    let mut rest = before.chars();
    while let Some(v) = rest.next() {
        if v.is_whitespace() {
            while let Some(&s) = src.peek().filter(|s| s.is_whitespace()) {
                src.next();
                step(&mut at, s);
            }
            continue;
        }
        while let Some(&s) = src.peek().filter(|s| s.is_whitespace()) {
            src.next();
            step(&mut at, s);
        }
        if quote == Some('"') && src.peek() == Some(&'\\') {
            // An escape (`\"`, `\n`, `\u00e9`) is one character of the value.
            src.next();
            step(&mut at, '\\');
            let digits = match src.next() {
                Some(e) => {
                    step(&mut at, e);
                    match e {
                        'x' => 2,
                        'u' => 4,
                        'U' => 8,
                        _ => 0,
                    }
                }
                None => 0,
            };
            for _ in 0..digits {
                if let Some(d) = src.next() {
                    step(&mut at, d);
                }
            }
        } else if quote == Some('\'') && v == '\'' && src.peek() == Some(&'\'') {
            // `''` is one quote inside a single-quoted scalar.
            src.next();
            src.next();
            step(&mut at, v);
            step(&mut at, v);
        } else if src.peek() == Some(&v) {
            src.next();
            step(&mut at, v);
        } else {
            // Out of step: count the rest of the value on its own.
            step(&mut at, v);
            rest.for_each(|c| step(&mut at, c));
            return at;
        }
    }
    if !value[offset.min(value.len())..].starts_with(char::is_whitespace) {
        while let Some(&s) = src.peek().filter(|s| s.is_whitespace()) {
            src.next();
            step(&mut at, s);
        }
    }
    at
}

const HINT: &str = "keep secrets out of the project: read them from the environment at run time (for example `PROVIDER credential_chain` for S3 secrets, `PGPASSWORD` for PostgreSQL)";

pub fn scan_connections(raw: &RawProject, diags: &mut Diagnostics) {
    for connection in &raw.connections {
        let name = &connection.name.value;
        if let Some(init) = &connection.init
            && let Some((offset, what)) = find(&init.value)
        {
            diags.error(
                &position_in(&init.loc, &init.value, offset),
                format!("connections.{name}.init"),
                format!("the init SQL contains {what}"),
                Some(HINT.into()),
            );
        }
        for (key, value) in &connection.properties {
            let path = format!("connections.{name}.properties.{}", key.value);
            if env_reference(&value.value).is_some() || value.value.trim().is_empty() {
                continue;
            }
            if secret_name(&key.value) {
                diags.error(
                    &value.loc,
                    path,
                    format!("property `{}` holds a literal secret", key.value),
                    Some(HINT.into()),
                );
            } else if let Some((offset, what)) = find(&value.value) {
                diags.error(
                    &position_in(&value.loc, &value.value, offset),
                    path,
                    format!("property `{}` contains {what}", key.value),
                    Some(HINT.into()),
                );
            }
        }
    }
}
