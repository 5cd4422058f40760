//! Encoded payloads: text a model can decode and a reviewer cannot read.
//! Escape runs and long base64 or hex runs are refused as they are; a
//! shorter base64 or hex run is decoded and refused when it decodes to
//! readable text (a random id or hash decodes to bytes, not words); ROT13
//! and reversed text are refused when they read as any phrase rule.

use std::sync::OnceLock;

use base64::Engine;
use regex::Regex;

use super::phrases::{excerpt, reads_as_phrase};
use super::views::Views;
use super::{Context, ENCODED, Found};

fn compile(patterns: &[&str]) -> Vec<Regex> {
    patterns
        .iter()
        .map(|p| Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect()
}

/// Refused as written: escape runs, data URIs, very long hex, and an
/// instruction to decode something and act on it.
fn escape_runs() -> &'static [Regex] {
    static PATTERNS: OnceLock<Vec<Regex>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        compile(&[
            r"(?:\\x[0-9A-Fa-f]{2}){8,}",
            r"(?:\\u\{?[0-9A-Fa-f]{4,6}\}?){6,}",
            r"(?:\\[0-7]{3}){8,}",
            r"(?:%[0-9A-Fa-f]{2}){10,}",
            r"(?:&#x?[0-9A-Fa-f]+;){6,}",
            r"(?i)\bdata:[a-z]+/[\w.+-]+(?:;[\w=.-]+)*(?:;base64)?,",
            r"(?i)\b(?:decod|decrypt|deobfuscat|unscrambl|revers|rot-?13|base-?64|translat|interpret)\w* (?:(?:[\w'-]+ ){0,6})(?:and|then|,) ?(?:follow|execute|run|obey|do|perform|apply|carry out|act on|treat|comply)",
            r"(?i)\b(?:the following|this|below) is (?:encoded|encrypted|obfuscated|in (?:base64|rot13|hex))\b",
        ])
    })
}

/// Candidates to decode: base64 (standard and URL-safe) and hex runs.
fn base64_candidate() -> &'static Regex {
    static RUN: OnceLock<Regex> = OnceLock::new();
    RUN.get_or_init(|| Regex::new(r"[A-Za-z0-9+/_-]{16,}={0,2}").unwrap_or_else(|e| panic!("{e}")))
}

fn hex_candidate() -> &'static Regex {
    static RUN: OnceLock<Regex> = OnceLock::new();
    RUN.get_or_init(|| {
        Regex::new(r"(?i)(?:0x)?(?:[0-9a-f]{2}){6,}\b|(?:0x[0-9a-f]{2}[\s,]*){6,}|(?:\b[0-9a-f]{2}[ :]){5,}[0-9a-f]{2}\b")
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Decoded bytes that read as text: printable ASCII, mostly letters and
/// spaces, with at least one word of three letters.
fn readable(bytes: &[u8]) -> bool {
    if bytes.len() < 6 {
        return false;
    }
    let printable = bytes
        .iter()
        .all(|b| (0x20..0x7f).contains(b) || matches!(b, b'\n' | b'\t'));
    let letters = bytes
        .iter()
        .filter(|b| b.is_ascii_alphabetic() || **b == b' ')
        .count();
    let word = bytes
        .split(|b| !b.is_ascii_alphabetic())
        .any(|w| w.len() >= 3);
    printable && letters * 10 >= bytes.len() * 7 && word
}

fn decode_base64(run: &str) -> Option<Vec<u8>> {
    let trimmed = run.trim_end_matches('=');
    let engines = [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines.iter().find_map(|e| e.decode(trimmed).ok())
}

/// Decodes a candidate run to bytes.
type Decoder = fn(&str) -> Option<Vec<u8>>;

fn binary_candidate() -> &'static Regex {
    static RUN: OnceLock<Regex> = OnceLock::new();
    RUN.get_or_init(|| Regex::new(r"(?:\b[01]{8}\b[\s,]*){6,}").unwrap_or_else(|e| panic!("{e}")))
}

fn base32_candidate() -> &'static Regex {
    static RUN: OnceLock<Regex> = OnceLock::new();
    RUN.get_or_init(|| Regex::new(r"\b[A-Z2-7]{16,}={0,6}").unwrap_or_else(|e| panic!("{e}")))
}

fn decode_binary(run: &str) -> Option<Vec<u8>> {
    run.split(|c: char| !c.is_ascii_digit())
        .filter(|b| !b.is_empty())
        .map(|b| u8::from_str_radix(b, 2).ok())
        .collect()
}

fn decode_base32(run: &str) -> Option<Vec<u8>> {
    let trimmed = run.trim_end_matches('=');
    data_encoding::BASE32_NOPAD.decode(trimmed.as_bytes()).ok()
}

fn decode_hex(run: &str) -> Option<Vec<u8>> {
    let digits: String = run
        .to_ascii_lowercase()
        .replace("0x", "")
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
        .collect()
}

pub(super) fn scan(views: &Views, cx: &Context<'_>, found: &mut Found) {
    let clean = &views.clean;
    let describe = |s: &str| {
        format!(
            "{} characters starting `{}`",
            s.chars().count(),
            excerpt(&s.chars().take(16).collect::<String>())
        )
    };
    let mut candidates: Vec<(usize, String)> = escape_runs()
        .iter()
        .filter_map(|re| re.find(&clean.text))
        .map(|m| (m.start(), describe(m.as_str())))
        .collect();
    for m in base64_candidate().find_iter(&clean.text) {
        let s = m.as_str();
        let mixed = s.len() >= 40
            && s.chars().any(|c| c.is_ascii_uppercase())
            && s.chars().any(|c| c.is_ascii_lowercase())
            && s.chars().any(|c| c.is_ascii_digit());
        if let Some(text) = decode_base64(s).filter(|b| readable(b)) {
            let shown = String::from_utf8_lossy(&text).into_owned();
            candidates.push((m.start(), format!("base64 for `{}`", excerpt(&shown))));
        } else if mixed && !s.contains(['_', '-']) && (s.contains('+') || !s.contains('/')) {
            candidates.push((m.start(), describe(s)));
        }
    }
    let decoders: [(&Regex, Decoder, &str); 3] = [
        (hex_candidate(), decode_hex, "hex"),
        (binary_candidate(), decode_binary, "binary"),
        (base32_candidate(), decode_base32, "base32"),
    ];
    for (candidate, decode, name) in decoders {
        for m in candidate.find_iter(&clean.text) {
            if let Some(text) = decode(m.as_str()).filter(|b| readable(b)) {
                let shown = String::from_utf8_lossy(&text).into_owned();
                candidates.push((m.start(), format!("{name} for `{}`", excerpt(&shown))));
            }
        }
    }
    if let Some((start, detail)) = candidates.into_iter().min_by_key(|(s, _)| *s) {
        found.add(ENCODED, clean.origin(start), detail);
        return;
    }
    for (how, view) in views.rot13_and_reversed() {
        if let Some((rule, offset, text)) = reads_as_phrase(&view, cx)
            && !found.has(rule)
        {
            found.add(
                ENCODED,
                offset,
                format!("{how} text that reads `{text}` (rule `{}`)", rule.id),
            );
            return;
        }
    }
}
