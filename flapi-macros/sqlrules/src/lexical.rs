//! Lexical constructs on which the build's SQL reader (the template lexer
//! and sqlparser's DuckDB dialect) and DuckDB's own parser are known to
//! disagree (SPEC §4). A template that uses one is refused, so the text the
//! build proves things about is the text DuckDB runs:
//!
//! - `E'…'` strings: DuckDB reads `\'` inside them as a quote, the build
//!   as the end of the string, so what follows swaps between code and data;
//! - dollar quotes (`$$…$$`, `$tag$…$tag$`): DuckDB reads them as strings,
//!   the build as code;
//! - nested block comments: DuckDB nests `/* /* */ */`, the build ends the
//!   comment at the first `*/`;
//! - `U&'…'` and `U&"…"` escapes: another string and identifier syntax;
//! - a backslash-escaped quote or a NUL character anywhere;
//! - a carriage return not followed by a line feed: DuckDB ends a `--`
//!   comment there, the build's parser runs it to the line feed, so what
//!   follows would be SQL to one and a comment to the other.
//!
//! DuckDB checks the same at start-up (`flapi::sqlguard`, with this same scanner), so the two
//! verdicts agree.

/// One refused construct: its byte offset in the scanned text, a message
/// and the rewrite that avoids it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub offset: usize,
    pub message: &'static str,
    pub hint: &'static str,
}

const E_STRING: (&str, &str) = (
    "`E'…'` escape strings are not allowed: DuckDB reads `\\'` inside them as a quote, the build's parser as the end of the string, so the two would disagree about what is SQL",
    "write a plain string literal and double a quote to include it (`'it''s'`); use chr(10) and `||` for control characters",
);
const DOLLAR: (&str, &str) = (
    "dollar-quoted strings (`$$…$$`, `$tag$…$tag$`) are not allowed: the build's parser does not read them as DuckDB does",
    "write a plain string literal, doubling any quote inside it (`'it''s'`)",
);
const NESTED: (&str, &str) = (
    "a block comment opened inside a block comment: DuckDB nests `/* /* */ */`, the build's parser does not, so they would disagree about where the comment ends",
    "close the first comment before opening another, or use `--` line comments",
);
const UNICODE: (&str, &str) = (
    "`U&` unicode-escaped strings and identifiers are not allowed: the build's parser and DuckDB read them differently",
    "write the characters themselves in a plain string or identifier",
);
const NUL: (&str, &str) = (
    "a NUL character in the SQL",
    "remove it; SQL text never needs one",
);

const BARE_CR: (&str, &str) = (
    "a carriage return without a line feed: DuckDB ends a `--` comment there, the build's parser does not, so they would disagree about what is SQL",
    "save the file with LF (or CRLF) line endings",
);

fn refusal(offset: usize, (message, hint): (&'static str, &'static str)) -> Refusal {
    Refusal {
        offset,
        message,
        hint,
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Scans SQL text (template tags count as identifier characters, so
/// `{{ x }}` never opens or closes anything) for the refused constructs.
pub fn scan(sql: &str) -> Vec<Refusal> {
    #[derive(PartialEq, Clone, Copy)]
    enum State {
        Normal,
        Single,
        Double,
        Line,
        Block,
    }
    let chars: Vec<(usize, char)> = sql.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|(_, c)| *c);
    let mut found = Vec::new();
    let mut state = State::Normal;
    let mut i = 0;
    while i < chars.len() {
        let (offset, c) = chars[i];
        let next = at(i + 1);
        if c == '\0' {
            found.push(refusal(offset, NUL));
        }
        if c == '\r' && next != Some('\n') {
            found.push(refusal(offset, BARE_CR));
        }
        match state {
            State::Normal => {
                // A template tag is opaque: skip to its end.
                if c == '{' && next == Some('{') {
                    let rest = &sql[offset..];
                    let close = if rest.starts_with("{{{") { "}}}" } else { "}}" };
                    match rest[2..].find(close) {
                        Some(end) => {
                            let stop = offset + 2 + end + close.len();
                            while i < chars.len() && chars[i].0 < stop {
                                i += 1;
                            }
                            continue;
                        }
                        None => break,
                    }
                }
                let previous = if i == 0 { None } else { at(i - 1) };
                let starts_word = previous.is_none_or(|p| !is_ident_char(p));
                match c {
                    '\'' => state = State::Single,
                    '"' => state = State::Double,
                    '-' if next == Some('-') => {
                        state = State::Line;
                        i += 1;
                    }
                    '/' if next == Some('*') => {
                        state = State::Block;
                        i += 1;
                    }
                    'e' | 'E' if starts_word && next == Some('\'') => {
                        found.push(refusal(offset, E_STRING));
                    }
                    'u' | 'U'
                        if starts_word
                            && next == Some('&')
                            && matches!(at(i + 2), Some('\'' | '"')) =>
                    {
                        found.push(refusal(offset, UNICODE));
                    }
                    '$' if starts_word => {
                        // `$$` or `$tag$` (a tag is an identifier without `$`).
                        let mut j = i + 1;
                        while let Some(t) = at(j) {
                            if t.is_alphanumeric() || t == '_' {
                                j += 1;
                            } else {
                                break;
                            }
                        }
                        let tag_ok = j == i + 1 || at(i + 1).is_some_and(|t| !t.is_ascii_digit());
                        if at(j) == Some('$') && tag_ok {
                            found.push(refusal(offset, DOLLAR));
                        }
                    }
                    _ => {}
                }
            }
            State::Single => {
                if c == '\'' {
                    if next == Some('\'') {
                        i += 1;
                    } else {
                        state = State::Normal;
                    }
                }
            }
            State::Double => {
                if c == '"' {
                    if next == Some('"') {
                        i += 1;
                    } else {
                        state = State::Normal;
                    }
                }
            }
            State::Line => {
                if c == '\n' || c == '\r' {
                    state = State::Normal;
                }
            }
            State::Block => {
                if c == '*' && next == Some('/') {
                    state = State::Normal;
                    i += 1;
                } else if c == '/' && next == Some('*') {
                    found.push(refusal(offset, NESTED));
                    i += 1;
                }
            }
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(sql: &str) -> Vec<usize> {
        scan(sql).into_iter().map(|r| r.offset).collect()
    }

    #[test]
    fn finds_each_construct_where_it_starts() {
        assert_eq!(offsets("SELECT E'\\'' AS a"), vec![7]);
        assert_eq!(offsets("SELECT e'x'"), vec![7]);
        assert_eq!(offsets("SELECT $$x$$"), vec![7]);
        assert_eq!(offsets("SELECT $q$x$q$"), vec![7]);
        assert_eq!(offsets("SELECT 1 /* a /* b */ */"), vec![14]);
        assert_eq!(offsets("SELECT U&'\\0061'"), vec![7]);
        assert_eq!(offsets("SELECT u&\"x\""), vec![7]);
        assert_eq!(offsets("SELECT 1\0"), vec![8]);
        // A comment DuckDB ends at a bare CR, the build at the LF.
        assert_eq!(
            offsets("SELECT a FROM t --\rUNION SELECT b FROM u"),
            vec![18]
        );
        assert_eq!(offsets("SELECT 1\r"), vec![8]);
    }

    #[test]
    fn ordinary_sql_passes() {
        for sql in [
            "SELECT name FROM t WHERE name = 'E''s' AND type = 'x'",
            "SELECT table_e'", // unterminated, but not an E-string
            "SELECT 'a $$ b' AS s, \"E'\" FROM t",
            "SELECT price$ FROM t -- $$ in a comment /* too",
            "SELECT 1 /* one */ /* two */",
            "SELECT {{ params.e }}'x' FROM t",
            "SELECT $1, $2",
            "SELECT a & b FROM t WHERE u & 1 = 1",
            "SELECT a -- comment\r\nFROM t\r\n",
        ] {
            assert!(scan(sql).is_empty(), "{sql}: {:?}", scan(sql));
        }
    }
}
