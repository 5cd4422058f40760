//! Description hygiene (SPEC §11): every string a model reads is scanned
//! at build time, and each finding is a build error at its own
//! file:line:col. Model-visible strings are descriptions, titles, prompt
//! templates and server instructions, and also the names and values a
//! client turns into JSON Schema or shows beside them: field names, enum
//! values, defaults, patterns, prompt argument names and values, the
//! project name, and the output column names of each tool's SQL.
//!
//! The scan works on views of a string, each character of which remembers
//! its byte offset in the original, so a finding in a normalised or
//! decoded view is still reported where the author wrote it
//! ([`views`]):
//!
//! - the *original*, for the character classes a reviewer cannot see
//!   (controls, zero-width and bidi characters, tag characters, variation
//!   selectors, private use) and for look-alike letters ([`chars`]);
//! - the *clean* view: invisible characters dropped, NFKD with combining
//!   marks removed, whitespace runs folded; the *lower* view: lower-cased,
//!   confusable letters mapped to their ASCII skeleton (UTS #39); a
//!   *compact* copy without separators for letter-spaced phrases;
//! - decoded views: leetspeak read as letters, ROT13 and reversed text,
//!   and base64 or hex runs decoded ([`encoded`]).
//!
//! Phrase rules ([`phrases`]) are written by attack class, not by example:
//! each class is an addressee or an action (the model's own instructions,
//! another tool, the user, a secret, an outside host) combined with the
//! verbs that aim at it, so a new wording of the same attack still
//! matches, while guidance about this tool ("do not use it for bulk
//! exports") names none of those targets. Names are also read as words
//! (`ignoreAllPrevious_instructions` as `ignore all previous
//! instructions`, [`names`]).
//!
//! A finding can be kept only by a `hygiene-allow` entry naming the string's
//! key, the rule and a written reason ([`project`]).

mod chars;
mod encoded;
mod names;
mod phrases;
mod project;
mod views;

pub use project::scan_project;

use views::Views;

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
        "an instruction addressed to the model about its own instructions, role or persona",
        "describe what the tool does and returns; never address the model's instructions";
    CONTEXT_ESCAPE = "context-escape",
        "text that tries to end its JSON or message context (closing quotes and braces, chat-template tokens, fake roles or JSON-RPC messages)",
        "remove it: a description is a plain string inside a message; it cannot open another one";
    DIRECTIVE = "model-directive",
        "a directive addressed to the model or an AI agent",
        "describe the tool, its arguments and its results; guidance belongs in `mcp.instructions`, addressed to no one";
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
    SHADOWING = "tool-shadowing",
        "an instruction aimed at other tools or servers (their recipients, arguments or confirmations, or a claim to replace them)",
        "describe this tool only: text that changes how other tools behave shadows them";
    TOOL_REFERENCE = "tool-reference",
        "a reference to another tool",
        "describe this tool only: text that steers how other tools are used shadows them";
    ENCODED = "encoded-payload",
        "an encoded payload (base64, hex, escapes, data URIs, ROT13 or reversed text)",
        "remove it: a model can decode what a reviewer cannot read";
    TOO_LONG = "too-long",
        "the text is longer than its limit",
        "shorten it: long descriptions hide instructions and crowd the model's context";
}

pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.id == id)
}

/// Which kind of string is scanned: decides the length limit, whether the
/// string is read as an identifier too, and whether it may address the
/// model (prompt templates and server instructions exist to do that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    Title,
    Description,
    ParameterDescription,
    PromptTemplate,
    Instructions,
    /// A field, prompt argument, project or output column name.
    Name,
    /// An enum value, a default or a prompt argument value.
    Value,
    /// A parameter's regular expression.
    Pattern,
}

impl TextKind {
    /// Characters allowed, after which `too-long` is reported.
    pub fn limit(self) -> usize {
        match self {
            TextKind::Title | TextKind::Name => 128,
            TextKind::Value | TextKind::Pattern => 512,
            TextKind::ParameterDescription => 1024,
            TextKind::Description => 4096,
            TextKind::PromptTemplate | TextKind::Instructions => 16384,
        }
    }

    /// Prompt templates and server instructions are written to the model;
    /// every other string describes something, and a directive to the
    /// model in it is out of place.
    pub fn addresses_model(self) -> bool {
        matches!(self, TextKind::PromptTemplate | TextKind::Instructions)
    }

    /// Strings read as identifiers as well as text.
    pub fn is_identifier(self) -> bool {
        matches!(self, TextKind::Name | TextKind::Value)
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

/// The findings of one string: at most one per rule, the first added.
#[derive(Default)]
struct Found(Vec<Finding>);

impl Found {
    fn add(&mut self, rule: &'static Rule, offset: usize, detail: String) {
        if !self.has(rule) {
            self.0.push(Finding {
                rule,
                offset,
                detail,
            });
        }
    }

    fn has(&self, rule: &'static Rule) -> bool {
        self.0.iter().any(|f| f.rule == rule)
    }
}

/// Scans one string. At most one finding per rule (the first), in
/// [`RULES`] order.
pub fn scan(text: &str, cx: &Context<'_>) -> Vec<Finding> {
    let mut found = Found::default();
    chars::characters(text, &mut found);
    chars::letters(text, &mut found);
    if cx.kind.is_identifier() {
        // `sendAllRows_to-evil` read as the words it is made of, first, so
        // a finding shows the phrase.
        let words = names::words(text);
        if words.text != text {
            let mut inner = Found::default();
            let views = Views::new(&words.text);
            phrases::scan(&views, cx, &mut inner);
            for f in inner.0 {
                found.add(f.rule, words.origin(f.offset), f.detail);
            }
        }
    }
    let views = Views::new(text);
    phrases::scan(&views, cx, &mut found);
    encoded::scan(&views, cx, &mut found);
    if let Some((index, (offset, _))) = text.char_indices().enumerate().nth(cx.kind.limit()) {
        debug_assert_eq!(index, cx.kind.limit());
        found.add(
            TOO_LONG,
            offset,
            format!(
                "{} characters, the limit is {}",
                text.chars().count(),
                cx.kind.limit()
            ),
        );
    }
    let mut found = found.0;
    found.sort_by_key(|f| RULES.iter().position(|r| *r == f.rule));
    found
}
