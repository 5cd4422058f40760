//! Build diagnostics: every problem found in a project, with its file, line,
//! column, YAML key path, what is wrong and what to do (SPEC §13).
//!
//! Phases never stop at the first problem: they push into a [`Diagnostics`]
//! sink and carry on with a fallback value, so one build reports everything.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a project file, 1-based as editors show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
}

impl Location {
    pub fn new(file: impl Into<PathBuf>, line: u64, column: u64) -> Self {
        Location {
            file: file.into(),
            line: line.max(1),
            column: column.max(1),
        }
    }

    /// The start of a file, for problems that have no better position.
    pub fn file_start(file: impl Into<PathBuf>) -> Self {
        Location::new(file, 1, 1)
    }

    /// A position `offset` characters into a string that starts here, for
    /// strings that span lines (block scalars, SQL files).
    pub fn advanced_by(&self, text: &str, char_offset: usize) -> Location {
        let mut loc = self.clone();
        for ch in text.chars().take(char_offset) {
            if ch == '\n' {
                loc.line += 1;
                loc.column = 1;
            } else {
                loc.column += 1;
            }
        }
        loc
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    /// Information the build prints without failing, even under
    /// `--deny-warnings` (active `hygiene-allow` entries).
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// One finding. `message` says what is wrong, `help` what to do; neither
/// ends with a period (rust-analyzer style).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Location,
    /// YAML key path such as `request[1].validators[0].min`; empty for SQL.
    pub key_path: String,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    /// Stable path display relative to `base`, so messages do not depend on
    /// where the project was checked out.
    pub fn relative_to(mut self, base: &Path) -> Self {
        if let Ok(rel) = self.location.file.strip_prefix(base) {
            self.location.file = rel.to_path_buf();
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.severity.as_str();
        write!(f, "{}: {kind}", self.location)?;
        if !self.key_path.is_empty() {
            write!(f, " at `{}`", self.key_path)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// The sink every phase writes into.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(
        &mut self,
        location: &Location,
        key_path: impl Into<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.push(Severity::Error, location, key_path, message, help);
    }

    pub fn warning(
        &mut self,
        location: &Location,
        key_path: impl Into<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.push(Severity::Warning, location, key_path, message, help);
    }

    pub fn note(
        &mut self,
        location: &Location,
        key_path: impl Into<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.push(Severity::Note, location, key_path, message, help);
    }

    fn push(
        &mut self,
        severity: Severity,
        location: &Location,
        key_path: impl Into<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.items.push(Diagnostic {
            severity,
            location: location.clone(),
            key_path: key_path.into(),
            message: message.into(),
            help,
        });
    }

    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// All findings, sorted by file and position so output is stable.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            (&a.location, a.severity, &a.message).cmp(&(&b.location, b.severity, &b.message))
        });
        self.items.dedup();
        self.items
    }
}

/// "did you mean `x`?" for a misspelt name, when a close candidate exists.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}
