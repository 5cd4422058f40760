//! Description hygiene (SPEC §11): every string a model reads (tool,
//! parameter, resource and prompt descriptions, prompt templates, server
//! instructions) is scanned at build time, and each finding is a build
//! error at its own file:line:col.
//!
//! The scan works on three views of a string, each character of which
//! remembers its byte offset in the original, so a finding in a normalised
//! view is still reported where the author wrote it:
//!
//! - the *original*, for the character classes a reviewer cannot see
//!   (controls, zero-width and bidi characters, tag characters, variation
//!   selectors, private use) and for look-alike letters;
//! - the *clean* view: invisible characters dropped, NFKD with combining
//!   marks removed (so `ïgnore` and `ＩＧＮＯＲＥ` read as `ignore`/`IGNORE`),
//!   and every whitespace run folded into one space or one line break;
//! - the *lower* view: the clean view lower-cased, with each non-ASCII
//!   letter that is confusable with ASCII (Cyrillic `о`, Greek `ο`) mapped
//!   to its ASCII skeleton (UTS #39). Phrase rules run here, with `\s`
//!   between words, so a phrase split across lines or padded with spaces is
//!   still one phrase; a *compact* copy without any separators catches
//!   letter-spaced phrases (`i g n o r e  a l l …`).
//!
//! A finding can be kept only by a `hygiene-allow` entry naming the string's
//! key, the rule and a written reason (see `resolve_allowances`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::check::secrets::position_in;
use crate::diag::{Diagnostics, Location, did_you_mean};
use crate::load::yaml::Sp;
use crate::load::{RawAllow, RawEndpoint, RawProject};

/// One rule: a stable id (used in `hygiene-allow`), what a finding means,
/// and what to do about it.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    pub message: &'static str,
    pub help: &'static str,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $message:literal, $help:literal;)*) => {
        $(pub const $name: &Rule = &Rule { id: $id, message: $message, help: $help };)*
        /// Every rule, in the order findings are reported.
        pub const RULES: &[&Rule] = &[$($name),*];
    };
}

rules! {
    CONTROL = "control-character",
        "a control character",
        "remove it; write line breaks as real line breaks";
    ZERO_WIDTH = "zero-width",
        "an invisible zero-width or formatting character",
        "remove it: a model reads it, a reviewer does not see it";
    BIDI = "bidi-control",
        "a bidirectional-text control character",
        "remove it: it shows the text in another order than a model reads it";
    TAG = "tag-character",
        "a Unicode tag character (invisible text)",
        "remove it: tag characters spell out hidden text that models read";
    VARIATION = "variation-selector",
        "a variation selector outside an emoji",
        "remove it: runs of variation selectors can encode hidden data";
    PRIVATE_USE = "private-use",
        "a private-use character",
        "remove it: it has no agreed meaning and shows differently everywhere";
    DISGUISED = "disguised-letters",
        "letters disguised as other characters (fullwidth, mathematical or enclosed forms)",
        "write plain letters";
    HOMOGLYPH = "homoglyph",
        "a word spelled with look-alike letters from another script",
        "write the word in one script";
    OVERRIDE = "instruction-override",
        "an instruction addressed to the model about its own instructions or role",
        "describe what the tool does and returns; never address the model's instructions";
    MARKUP = "hidden-markup",
        "hidden markup addressed to the model",
        "remove the tag or comment: a description is plain text for the model";
    SECRET_ACCESS = "secret-access",
        "an instruction to read secrets or local configuration",
        "remove it: a tool description has no reason to point at credentials or files";
    EXFILTRATION = "exfiltration",
        "an instruction to send data elsewhere or a link to an unlisted host",
        "remove it; a documentation link is allowed when its host is listed in `hygiene.url-hosts` in flapi.yaml";
    CONCEALMENT = "concealment",
        "an instruction to hide something from the user",
        "remove it: a tool never asks the model to keep the user uninformed";
    TOOL_REFERENCE = "tool-reference",
        "a reference to another tool",
        "describe this tool only: text that steers how other tools are used shadows them";
    ENCODED = "encoded-payload",
        "an encoded payload (long base64, hex or escape sequences)",
        "remove it: a model can decode what a reviewer cannot read";
    TOO_LONG = "too-long",
        "the text is longer than its limit",
        "shorten it: long descriptions hide instructions and crowd the model's context";
}

pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.id == id)
}

/// Which kind of string is scanned: decides the length limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    Title,
    Description,
    ParameterDescription,
    PromptTemplate,
    Instructions,
}

impl TextKind {
    /// Characters allowed, after which `too-long` is reported.
    pub fn limit(self) -> usize {
        match self {
            TextKind::Title => 128,
            TextKind::ParameterDescription => 1024,
            TextKind::Description => 4096,
            TextKind::PromptTemplate | TextKind::Instructions => 16384,
        }
    }
}

/// What the scan needs to know about the project around a string.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub kind: TextKind,
    /// The tool this string belongs to, which it may name.
    pub own_tool: Option<&'a str>,
    /// Every tool name of the project.
    pub tool_names: &'a [String],
    /// Hosts (and their subdomains) that links may point at.
    pub url_hosts: &'a [String],
}

/// One finding: the rule, the byte offset in the scanned string where it
/// starts, and what was found (never more than a short excerpt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static Rule,
    pub offset: usize,
    pub detail: String,
}

/// Scans one string. At most one finding per rule (the first), in
/// [`RULES`] order.
pub fn scan(text: &str, cx: &Context<'_>) -> Vec<Finding> {
    let mut found: Vec<Finding> = Vec::new();
    let mut add = |rule: &'static Rule, offset: usize, detail: String| {
        if !found.iter().any(|f| f.rule == rule) {
            found.push(Finding {
                rule,
                offset,
                detail,
            });
        }
    };
    characters(text, &mut add);
    letters(text, &mut add);
    let views = Views::new(text);
    phrases(&views, cx, &mut add);
    if let Some((index, (offset, _))) = text.char_indices().enumerate().nth(cx.kind.limit()) {
        debug_assert_eq!(index, cx.kind.limit());
        add(
            TOO_LONG,
            offset,
            format!(
                "{} characters, the limit is {}",
                text.chars().count(),
                cx.kind.limit()
            ),
        );
    }
    found.sort_by_key(|f| RULES.iter().position(|r| *r == f.rule));
    found
}

fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x2600..=0x27BF | 0x1F000..=0x1FAFF | 0x2B00..=0x2BFF | 0x2190..=0x21FF | 0x2300..=0x23FF)
        || c == '\u{20E3}'
}

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

fn is_tag(c: char) -> bool {
    matches!(c, '\u{E0000}'..='\u{E007F}')
}

fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' | '\u{180B}'..='\u{180D}' | '\u{180F}')
}

fn is_zero_width(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
    )
}

fn is_private_use(c: char) -> bool {
    matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}')
}

fn is_control(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\t' | '\r')) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Characters that vanish from the clean view.
fn is_invisible(c: char) -> bool {
    is_zero_width(c) || is_bidi(c) || is_tag(c) || is_variation_selector(c)
}

/// The character classes no reviewer can see. A zero-width joiner or a
/// variation selector between emoji is how emoji are written, and passes.
fn characters(text: &str, add: &mut impl FnMut(&'static Rule, usize, String)) {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(offset, c)) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j].1);
        let next = chars.get(i + 1).map(|p| p.1);
        let rule = if is_control(c) {
            CONTROL
        } else if is_tag(c) {
            TAG
        } else if is_bidi(c) {
            BIDI
        } else if is_variation_selector(c) {
            if matches!(c, '\u{FE0E}' | '\u{FE0F}') && prev.is_some_and(is_emoji) {
                continue;
            }
            VARIATION
        } else if is_zero_width(c) {
            if c == '\u{200D}'
                && prev.is_some_and(|p| is_emoji(p) || p == '\u{FE0F}')
                && next.is_some_and(is_emoji)
            {
                continue;
            }
            ZERO_WIDTH
        } else if is_private_use(c) {
            PRIVATE_USE
        } else {
            continue;
        };
        add(rule, offset, code_point(c));
    }
}

/// ASCII letters a character stands for under NFKC (`Ｉ`, `𝐢`, `ⓘ`).
fn nfkc_ascii_letter(c: char) -> bool {
    if c.is_ascii() || matches!(c, 'ª' | 'º') {
        return false;
    }
    let mut folded = std::iter::once(c).nfkc();
    matches!((folded.next(), folded.next()), (Some(a), None) if a.is_ascii_alphabetic())
}

/// The ASCII letters a non-ASCII letter is confusable with, if any.
fn ascii_skeleton(c: char) -> Option<String> {
    if c.is_ascii() || !c.is_alphabetic() {
        return None;
    }
    let skeleton: String = unicode_security::skeleton(c.encode_utf8(&mut [0; 4])).collect();
    (!skeleton.is_empty() && skeleton.chars().all(|s| s.is_ascii_alphabetic())).then_some(skeleton)
}

/// Look-alike letters, word by word: disguised forms (NFKC folds them to
/// ASCII) and homoglyphs (letters of another script whose skeleton is
/// ASCII) inside Latin words, or whole words of them in Latin text.
fn letters(text: &str, add: &mut impl FnMut(&'static Rule, usize, String)) {
    let ascii_letters = text.chars().filter(char::is_ascii_alphabetic).count();
    let other_letters = text
        .chars()
        .filter(|c| c.is_alphabetic() && !c.is_ascii())
        .count();
    let latin_text = ascii_letters > other_letters;
    let mut word: Vec<(usize, char)> = Vec::new();
    let mut check = |word: &mut Vec<(usize, char)>| {
        let has_ascii = word.iter().any(|(_, c)| c.is_ascii_alphabetic());
        let disguised: Vec<&(usize, char)> =
            word.iter().filter(|(_, c)| nfkc_ascii_letter(*c)).collect();
        if let Some(&&(offset, c)) = disguised.first()
            && (has_ascii || disguised.len() >= 3)
        {
            let plain: String = word
                .iter()
                .flat_map(|(_, c)| c.to_string().nfkc().collect::<Vec<_>>())
                .collect();
            add(DISGUISED, offset, format!("{} in `{plain}`", code_point(c)));
        }
        let foreign: Vec<(usize, char, String)> = word
            .iter()
            .filter(|(_, c)| !nfkc_ascii_letter(*c))
            .filter_map(|&(o, c)| ascii_skeleton(c).map(|s| (o, c, s)))
            .collect();
        let letters = word.iter().filter(|(_, c)| c.is_alphabetic()).count();
        let all_lookalike = foreign.len() == letters && letters >= 3 && latin_text;
        if let Some((offset, c, _)) = foreign.first()
            && (has_ascii || all_lookalike)
        {
            let reads: String = word
                .iter()
                .map(|&(_, ch)| ascii_skeleton(ch).unwrap_or_else(|| ch.to_string()))
                .collect();
            add(
                HOMOGLYPH,
                *offset,
                format!("{} in a word that reads `{reads}`", code_point(*c)),
            );
        }
        word.clear();
    };
    for (offset, c) in text.char_indices() {
        if c.is_alphanumeric() {
            word.push((offset, c));
        } else if !is_invisible(c) {
            check(&mut word);
        }
    }
    check(&mut word);
}

/// A normalised copy of the text whose every byte maps back to a byte
/// offset of the original.
#[derive(Default)]
struct View {
    text: String,
    origin: Vec<usize>,
}

impl View {
    fn push(&mut self, c: char, origin: usize) {
        self.text.push(c);
        self.origin
            .extend(std::iter::repeat_n(origin, c.len_utf8()));
    }

    fn origin(&self, at: usize) -> usize {
        self.origin.get(at).copied().unwrap_or(0)
    }
}

struct Views {
    clean: View,
    lower: View,
    compact: View,
}

impl Views {
    fn new(text: &str) -> Views {
        let mut clean = View::default();
        for (offset, c) in text.char_indices() {
            if is_invisible(c) {
                continue;
            }
            for d in std::iter::once(c).nfkd() {
                if is_combining_mark(d) {
                    continue;
                }
                if d.is_whitespace() || is_control(d) {
                    let folded = if d == '\n' { '\n' } else { ' ' };
                    match clean.text.chars().last() {
                        Some('\n') => {}
                        Some(' ') if folded == '\n' => {
                            clean.text.pop();
                            clean.origin.pop();
                            clean.push('\n', offset);
                        }
                        Some(' ') => {}
                        _ => clean.push(folded, offset),
                    }
                } else {
                    clean.push(d, offset);
                }
            }
        }
        let mut lower = View::default();
        for (at, c) in clean.text.char_indices() {
            let origin = clean.origin(at);
            match ascii_skeleton(c) {
                Some(ascii) => ascii
                    .chars()
                    .for_each(|a| lower.push(a.to_ascii_lowercase(), origin)),
                None => c.to_lowercase().for_each(|l| lower.push(l, origin)),
            }
        }
        let mut compact = View::default();
        for (at, c) in lower.text.char_indices() {
            if c.is_ascii_alphanumeric() {
                compact.push(c, lower.origin(at));
            }
        }
        Views {
            clean,
            lower,
            compact,
        }
    }
}

fn compile(patterns: &[&str]) -> Vec<Regex> {
    patterns
        .iter()
        .map(|p| {
            // A space in a phrase matches any folded whitespace.
            let p = p.replace(' ', r"\s");
            Regex::new(&p).unwrap_or_else(|e| panic!("hygiene pattern {p}: {e}"))
        })
        .collect()
}

/// Phrase rules over the lower view, by rule.
fn phrase_rules() -> &'static [(&'static Rule, Vec<Regex>)] {
    static RULES: OnceLock<Vec<(&'static Rule, Vec<Regex>)>> = OnceLock::new();
    RULES.get_or_init(|| {
        vec![
            (
                OVERRIDE,
                compile(&[
                    r"\b(ignore|ignoring|disregard|forget|override|bypass|neglect|discard)\b (?:(?:all|any|the|your|my|of|these|those|every|previously|given) )*(?:previous|prior|above|earlier|preceding|former|foregoing|initial|original|system|existing|other|safety) (?:instructions?|prompts?|rules|directions?|guidelines|messages|context|commands?|constraints|polic(?:y|ies)|guidance|orders|directives)\b",
                    r"\b(new|updated|real|actual|true|hidden|secret|additional) (?:system )?instructions? ?:",
                    r"\byou are (now|no longer)\b",
                    r"\bfrom now on\b",
                    r"\b(ignore|disregard|forget) (?:(?:all|any|the|these|those) )*(?:rules|instructions|directions|guidelines) (?:above|before this|so far|given (?:earlier|before))\b",
                    r"\b(act|behave|respond) as (if you (were|are)|an? (unrestricted|unfiltered|jailbroken|uncensored|different|new))",
                    r"\bpretend (to be|you are|that you)\b",
                    r"\b(jailbreak|jailbroken|dan mode|developer mode|god mode|do anything now)\b",
                    r"(^|\n) ?(system|assistant|developer) ?:",
                    r"\[/?(inst|system|sys)\]|<<\s?/?sys\s?>>|<\|(im_start|im_end|system|endoftext|assistant|user)\|>",
                    r"(^|\n)#{1,6} ?(system|instructions?|new instructions?)\b",
                    r"\b(reveal|print|output|repeat|show|disclose|leak|dump) (your|the) (system prompt|instructions|hidden instructions|initial prompt|original prompt|prompt)\b",
                    r"\b(do not|don't|never) (follow|obey|listen to) (the|your|any) (previous|prior|user|original|earlier|system)",
                    r"\b(this|these) (instructions?|messages?|rules?|notes?) (takes?|has|have|overrides?|supersedes?) (the )?(highest |top |absolute )?(priority|precedence|all)",
                    r"\binstead of (what|whatever) the user (asked|requested|wants|said)",
                    r"\b(always|must) (be )?(obeyed|followed) (before|over|above)\b",
                ]),
            ),
            (
                MARKUP,
                compile(&[
                    r"<\s*/?\s*(important|system|instructions?|hidden|secret|admin|assistant|developer|prompt|note[_ -]?to[_ -]?(ai|model|assistant)|ai|context|override|critical|script|iframe)\b[^>]*>",
                    r"<!--",
                    r"\[//\]: ?#|\[comment\]: ?<>",
                ]),
            ),
            (
                SECRET_ACCESS,
                compile(&[
                    r"~/\.|\bid_(rsa|ed25519|ecdsa|dsa)\b|\.ssh\b|/etc/(passwd|shadow|sudoers)|\.aws/(credentials|config)|\.netrc\b|\.npmrc\b|\.pypirc\b|\.git-credentials|\.docker/config|\bmcp\.json\b|claude_desktop_config|\.cursor/|(^|[\s/`'(])\.env\b|\bkubeconfig\b|\.kube/config|\bwallet\.dat\b|\.bash_history|\.zsh_history|\.gnupg",
                    r"\b(read|cat|include|attach|append|send|forward|upload|paste|copy|print|output|reveal|leak|extract|collect|dump|exfiltrate|grab|retrieve|steal|harvest)\b ([\w'./-]+ ){0,5}(credentials?|api[ _-]?keys?|access[ _-]?tokens?|auth(entication)?[ _-]?tokens?|bearer tokens?|secrets?|private[ _-]?keys?|passwords?|passphrases?|ssh[ _-]?keys?|environment variables?|env vars?|config(uration)? files?|session cookies?|cookies)\b",
                ]),
            ),
            (
                EXFILTRATION,
                compile(&[
                    r"\b(send|post|upload|forward|transmit|exfiltrate|email|e-mail|submit|report|relay|mirror|leak|share|copy|log)\b ([\w'./-]+ ){0,6}(to|via|at|into) (https?://|the (url|endpoint|webhook|server|address|following)|this (url|endpoint|webhook|address)|[\w.+-]+@[\w-]+\.[\w.]+|webhook|an? (external|remote|third[- ]party)|my (server|endpoint|address))",
                    r"\b(curl|wget|invoke-webrequest|nc|netcat)\b (-|https?://)",
                    r"\bfetch\(",
                    r"!\[[^\]]*\]\(",
                    r"\bb?cc\b:? ([\w'-]+ ){0,3}[\w.+-]+@[\w-]+\.",
                ]),
            ),
            (
                CONCEALMENT,
                compile(&[
                    r"\b(do not|don't|dont|never|without) (tell|telling|inform|informing|mention|mentioning|notify|notifying|alert|alerting|show|showing|reveal|revealing|disclose|disclosing|let)( it| this| that| anything)?( to)? (the )?(user|users|human|operator|customer|anyone|them)\b",
                    r"\b(the )?(user|human|operator)s? (must|should|will|need|needs|may) (not|never) (know|see|notice|be told|find out|learn|be informed)",
                    r"\bwithout (the )?(user|human|operator)('s|s)? (knowledge|knowing|consent|approval|noticing|awareness|permission|seeing)",
                    r"\b(secretly|silently|covertly|quietly|discreetly|stealthily|invisibly) (also )?(call|run|invoke|send|read|execute|forward|copy|add|include|use|upload|append|modify|delete|change|log|store|save)s?\b",
                    r"\b(hide|conceal) (this|these|that|it|the|your|any) ((action|call|request|instruction|step|tool call|usage|query|result)s? )?(from|in)\b",
                    r"\bkeep (this|it|these|that) (a )?secret\b|\b(this|it) is (a )?secret between\b",
                ]),
            ),
            (
                TOOL_REFERENCE,
                compile(&[
                    r"\b(before|after|instead of|prior to|when|whenever|every time) (you )?(call|calling|use|using|invoke|invoking|run|running) (any|another|other|every|all|the other|each|any other) (tools?|functions?|servers?)\b",
                    r"\b(all|any|every) other (tools?|functions?|mcp servers?)\b",
                    r"\b(this|the) tool (must|should|has to|needs to) (always )?(be (called|used|invoked|run) )?(first|before|instead|always)\b",
                    r"\b(replaces?|overrides?|supersedes?|shadows?|takes? precedence over) (the )?[\w.-]+ (tool|function)\b",
                    r"\bwhen (the )?[\w.-]+ (tool|function) is (called|used|invoked)\b",
                    r"\b(do not|don't|never) (use|call|invoke) (the )?[\w.-]+ (tool|function)\b",
                    r"\b(tool|function) named\b",
                ]),
            ),
        ]
    })
}

/// Phrase rules that survive letter spacing, over the compact view.
fn compact_rules() -> &'static [(&'static Rule, Regex)] {
    static RULES: OnceLock<Vec<(&'static Rule, Regex)>> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            (
                OVERRIDE,
                r"(ignore|disregard|forget)(all|any|the|your)*(previous|prior|above|earlier)(instructions?|prompts?|rules)",
            ),
            (OVERRIDE, r"(reveal|print|show)(your|the)systemprompt"),
        ]
        .into_iter()
        .map(|(rule, p)| (rule, Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"))))
        .collect()
    })
}

fn encoded_patterns() -> &'static [Regex] {
    static PATTERNS: OnceLock<Vec<Regex>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            r"(?:\\x[0-9A-Fa-f]{2}){8,}",
            r"(?:\\u[0-9A-Fa-f]{4}){6,}",
            r"(?:%[0-9A-Fa-f]{2}){10,}",
            r"(?:&#x?[0-9A-Fa-f]+;){6,}",
            r"\b[0-9A-Fa-f]{48,}\b",
        ]
        .iter()
        .map(|p| Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect()
    })
}

fn base64_run() -> &'static Regex {
    static RUN: OnceLock<Regex> = OnceLock::new();
    RUN.get_or_init(|| Regex::new(r"[A-Za-z0-9+/]{40,}={0,2}").unwrap_or_else(|e| panic!("{e}")))
}

fn url_pattern() -> &'static Regex {
    static URL: OnceLock<Regex> = OnceLock::new();
    URL.get_or_init(|| {
        Regex::new(r"(?i)\b(?:https?|ftp|wss?|file)://(?:[^\s/?#@]*@)?([^\s/?#:'`<>()\]\[]*)")
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 60 {
        format!("{}…", flat.chars().take(60).collect::<String>())
    } else {
        flat
    }
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    !host.is_empty()
        && allowed.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            host == a || host.ends_with(&format!(".{a}"))
        })
}

fn phrases(views: &Views, cx: &Context<'_>, add: &mut impl FnMut(&'static Rule, usize, String)) {
    let lower = &views.lower;
    for (rule, patterns) in phrase_rules() {
        if let Some(m) = patterns
            .iter()
            .filter_map(|re| re.find(&lower.text))
            .min_by_key(|m| m.start())
        {
            // A match that starts on a line break belongs to the next line.
            let start = m.start() + m.as_str().len() - m.as_str().trim_start().len();
            add(
                rule,
                lower.origin(start),
                format!("`{}`", excerpt(m.as_str())),
            );
        }
    }
    for (rule, re) in compact_rules() {
        if let Some(m) = re.find(&views.compact.text) {
            add(
                rule,
                views.compact.origin(m.start()),
                format!("`{}` with its letters spaced out", m.as_str()),
            );
        }
    }
    let clean = &views.clean;
    for caps in url_pattern().captures_iter(&clean.text) {
        let host = caps.get(1).map(|h| h.as_str()).unwrap_or("");
        if !host_allowed(host, cx.url_hosts) {
            let whole = caps
                .get(0)
                .map(|m| (m.start(), m.as_str()))
                .unwrap_or((0, ""));
            add(
                EXFILTRATION,
                clean.origin(whole.0),
                format!(
                    "a link to `{}`, which `hygiene.url-hosts` does not list",
                    excerpt(host)
                ),
            );
            break;
        }
    }
    let encoded = encoded_patterns()
        .iter()
        .filter_map(|re| re.find(&clean.text))
        .chain(base64_run().find_iter(&clean.text).filter(|m| {
            let s = m.as_str();
            s.chars().any(|c| c.is_ascii_uppercase())
                && s.chars().any(|c| c.is_ascii_lowercase())
                && s.chars().any(|c| c.is_ascii_digit())
        }))
        .min_by_key(|m| m.start());
    if let Some(m) = encoded {
        add(
            ENCODED,
            clean.origin(m.start()),
            format!(
                "{} characters starting `{}`",
                m.as_str().chars().count(),
                excerpt(&m.as_str().chars().take(16).collect::<String>())
            ),
        );
    }
    tool_names(lower, cx, add);
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Other tools of the project named in this string. A name with a
/// separator, a digit or an inner capital is distinctive wherever it
/// appears; a plain word counts only when quoted in backticks or next to
/// the word "tool".
fn tool_names(lower: &View, cx: &Context<'_>, add: &mut impl FnMut(&'static Rule, usize, String)) {
    let text = &lower.text;
    for name in cx.tool_names {
        if Some(name.as_str()) == cx.own_tool || name.is_empty() {
            continue;
        }
        let distinctive = name
            .chars()
            .any(|c| matches!(c, '_' | '-' | '.') || c.is_ascii_digit())
            || name.chars().skip(1).any(|c| c.is_ascii_uppercase());
        let needle = name.to_ascii_lowercase();
        for (at, _) in text.match_indices(&needle) {
            let before = text[..at].chars().next_back();
            let rest = &text[at + needle.len()..];
            let mut after = rest.chars();
            let next = after.next();
            // A sentence's full stop after the name is not part of it.
            let next_is_name = match next {
                Some('.') => after.next().is_some_and(name_char),
                Some(c) => name_char(c),
                None => false,
            };
            if before.is_some_and(name_char) || next_is_name {
                continue;
            }
            let quoted = before == Some('`') && next == Some('`');
            let beside_tool =
                text[..at].trim_end().ends_with("tool") || rest.trim_start().starts_with("tool");
            if distinctive || quoted || beside_tool {
                add(TOOL_REFERENCE, lower.origin(at), format!("tool `{name}`"));
                return;
            }
        }
    }
}

/// One model-visible string of the project, where it is written.
struct Text<'a> {
    file: &'a Path,
    key: String,
    value: &'a str,
    /// Where the value starts (a YAML scalar, or a whole file).
    loc: Location,
    in_yaml: bool,
    kind: TextKind,
    /// The tool the string describes. Only a tool's own texts are checked
    /// for the names of the project's other tools: server instructions,
    /// prompts and resources exist to say how this server's tools fit
    /// together, while a tool that talks about another tool shadows it.
    own_tool: Option<&'a str>,
}

impl Text<'_> {
    fn position(&self, offset: usize) -> Location {
        if self.in_yaml {
            position_in(&self.loc, self.value, offset)
        } else {
            let chars = self.value[..offset.min(self.value.len())].chars().count();
            self.loc.advanced_by(self.value, chars)
        }
    }
}

fn yaml_text<'a>(
    file: &'a Path,
    key: String,
    sp: &'a Sp<String>,
    kind: TextKind,
    own_tool: Option<&'a str>,
) -> Text<'a> {
    Text {
        file,
        key,
        value: &sp.value,
        loc: sp.loc.clone(),
        in_yaml: true,
        kind,
        own_tool,
    }
}

/// Every string a model reads, with its file and key path.
fn model_visible<'a>(
    raw: &'a RawProject,
    endpoints: &'a [RawEndpoint],
    instructions_file: Option<&'a (PathBuf, String)>,
) -> Vec<Text<'a>> {
    let mut texts = Vec::new();
    if let Some(sp) = &raw.mcp.instructions {
        texts.push(yaml_text(
            &raw.file,
            "mcp.instructions".into(),
            sp,
            TextKind::Instructions,
            None,
        ));
    }
    if let Some((path, text)) = instructions_file {
        texts.push(Text {
            file: &raw.file,
            key: "mcp.instructions-file".into(),
            value: text,
            loc: Location::file_start(path),
            in_yaml: false,
            kind: TextKind::Instructions,
            own_tool: None,
        });
    }
    for endpoint in endpoints {
        let file = endpoint.file.as_path();
        if let Some(tool) = &endpoint.mcp_tool {
            let own = tool.name.as_ref().map(|n| n.value.as_str());
            if let Some(sp) = &tool.title {
                texts.push(yaml_text(
                    file,
                    "mcp-tool.title".into(),
                    sp,
                    TextKind::Title,
                    own,
                ));
            }
            if let Some(sp) = &tool.description {
                texts.push(yaml_text(
                    file,
                    "mcp-tool.description".into(),
                    sp,
                    TextKind::Description,
                    own,
                ));
            }
            // Request fields are the tool's parameters.
            for field in &endpoint.request {
                if let Some(sp) = &field.description {
                    let key = format!("{}.description", field.path);
                    texts.push(yaml_text(
                        file,
                        key,
                        sp,
                        TextKind::ParameterDescription,
                        own,
                    ));
                }
            }
        }
        if let Some(sp) = endpoint
            .mcp_resource
            .as_ref()
            .and_then(|r| r.description.as_ref())
        {
            texts.push(yaml_text(
                file,
                "mcp-resource.description".into(),
                sp,
                TextKind::Description,
                None,
            ));
        }
        if let Some(prompt) = &endpoint.mcp_prompt {
            if let Some(sp) = &prompt.description {
                texts.push(yaml_text(
                    file,
                    "mcp-prompt.description".into(),
                    sp,
                    TextKind::Description,
                    None,
                ));
            }
            if let Some(sp) = &prompt.template {
                texts.push(yaml_text(
                    file,
                    "mcp-prompt.template".into(),
                    sp,
                    TextKind::PromptTemplate,
                    None,
                ));
            }
            for arg in &prompt.arguments {
                if let Some(sp) = &arg.description {
                    let key = format!("{}.description", arg.path);
                    texts.push(yaml_text(
                        file,
                        key,
                        sp,
                        TextKind::ParameterDescription,
                        None,
                    ));
                }
            }
        }
    }
    texts
}

/// A checked `hygiene-allow` entry.
struct Allowance<'a> {
    raw: &'a RawAllow,
    file: &'a Path,
    key: &'a str,
    rule: &'static Rule,
    reason: &'a str,
    used: bool,
}

const MIN_REASON: usize = 12;

fn allowances<'a>(
    file: &'a Path,
    entries: &'a [RawAllow],
    diags: &mut Diagnostics,
) -> Vec<Allowance<'a>> {
    let mut out = Vec::new();
    for entry in entries {
        let (Some(key), Some(rule_id)) = (&entry.key, &entry.rule) else {
            diags.error(
                &entry.loc,
                entry.path.as_str(),
                "a `hygiene-allow` entry needs `key`, `rule` and `reason`",
                Some("write `{key: mcp-tool.description, rule: tool-reference, reason: \"why this is safe\"}`".into()),
            );
            continue;
        };
        let Some(rule) = rule(&rule_id.value) else {
            let help = did_you_mean(&rule_id.value, RULES.iter().map(|r| r.id)).or_else(|| {
                Some(format!(
                    "rules: {}",
                    RULES.iter().map(|r| r.id).collect::<Vec<_>>().join(", ")
                ))
            });
            diags.error(
                &rule_id.loc,
                format!("{}.rule", entry.path),
                format!("`{}` is not a hygiene rule", rule_id.value),
                help,
            );
            continue;
        };
        let reason = entry.reason.as_ref().map(|r| r.value.trim()).unwrap_or("");
        if reason.chars().filter(|c| !c.is_whitespace()).count() < MIN_REASON {
            diags.error(
                entry.reason.as_ref().map(|r| &r.loc).unwrap_or(&entry.loc),
                format!("{}.reason", entry.path),
                "an allowed finding needs a written reason",
                Some("say in a sentence why this string is safe for a model to read".into()),
            );
            continue;
        }
        out.push(Allowance {
            raw: entry,
            file,
            key: &key.value,
            rule,
            reason,
            used: false,
        });
    }
    out
}

/// Scans every model-visible string of the project. Findings are errors
/// unless a `hygiene-allow` entry of the same file names the string's key
/// and the rule; each such entry is printed as a note, so the build shows
/// what it lets through.
pub fn scan_project(
    dir: &Path,
    raw: &RawProject,
    endpoints: &[RawEndpoint],
    files_read: &mut Vec<PathBuf>,
    diags: &mut Diagnostics,
) {
    let instructions_file = raw.mcp.instructions_file.as_ref().and_then(|f| {
        // Refused (and reported) by the settings when outside the project.
        let path = crate::load::paths::inside(
            dir,
            dir,
            f,
            "mcp.instructions-file",
            &mut Diagnostics::new(),
        )?;
        let text = std::fs::read_to_string(&path).ok()?;
        files_read.push(path.clone());
        Some((path, text))
    });
    for host in &raw.url_hosts {
        if host.value.is_empty() || host.value.contains(['/', ':', ' ', '*', '@']) {
            diags.error(
                &host.loc,
                "hygiene.url-hosts",
                format!("`{}` is not a host name", host.value),
                Some("write the host alone, such as `docs.example.com`; its subdomains are allowed too".into()),
            );
        }
    }
    let url_hosts: Vec<String> = raw.url_hosts.iter().map(|h| h.value.clone()).collect();
    let tool_names: Vec<String> = endpoints
        .iter()
        .filter_map(|e| e.mcp_tool.as_ref()?.name.as_ref().map(|n| n.value.clone()))
        .collect();
    let mut allowed = allowances(&raw.file, &raw.hygiene_allow, diags);
    for endpoint in endpoints {
        allowed.extend(allowances(&endpoint.file, &endpoint.hygiene_allow, diags));
    }
    let texts = model_visible(raw, endpoints, instructions_file.as_ref());
    for text in &texts {
        let cx = Context {
            kind: text.kind,
            own_tool: text.own_tool,
            tool_names: if text.own_tool.is_some() {
                &tool_names
            } else {
                &[]
            },
            url_hosts: &url_hosts,
        };
        for finding in scan(text.value, &cx) {
            let at = text.position(finding.offset);
            let message = format!(
                "{}: {} (rule `{}`)",
                finding.rule.message, finding.detail, finding.rule.id
            );
            let allowance = allowed
                .iter_mut()
                .find(|a| a.file == text.file && a.key == text.key && a.rule == finding.rule);
            match allowance {
                Some(a) => {
                    a.used = true;
                    diags.note(&at, text.key.as_str(), format!("allowed by `hygiene-allow`: {message}"), Some(format!("reason given: {}", a.reason)));
                }
                None => diags.error(
                    &at,
                    text.key.as_str(),
                    message,
                    Some(format!(
                        "{}; if it is safe, keep it with `hygiene-allow: [{{key: {}, rule: {}, reason: \"…\"}}]` in this file",
                        finding.rule.help, text.key, finding.rule.id
                    )),
                ),
            }
        }
    }
    for a in allowed.iter().filter(|a| !a.used) {
        let exists = texts.iter().any(|t| t.file == a.file && t.key == a.key);
        let key_loc = a.raw.key.as_ref().map(|k| &k.loc).unwrap_or(&a.raw.loc);
        if exists {
            diags.warning(
                key_loc,
                format!("{}.key", a.raw.path),
                format!("`{}` has no `{}` finding to allow", a.key, a.rule.id),
                Some("remove the stale entry, so it cannot hide a later change".into()),
            );
        } else {
            let candidates: Vec<&str> = texts
                .iter()
                .filter(|t| t.file == a.file)
                .map(|t| t.key.as_str())
                .collect();
            diags.error(
                key_loc,
                format!("{}.key", a.raw.path),
                format!("`{}` is not a model-visible string of this file", a.key),
                did_you_mean(a.key, candidates.iter().copied())
                    .or_else(|| Some(format!("keys here: {}", candidates.join(", ")))),
            );
        }
    }
}
