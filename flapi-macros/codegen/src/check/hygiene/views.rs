//! Normalised and decoded copies of a string whose every byte maps back to
//! a byte offset of the original.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::chars::{ascii_skeleton, is_control, is_invisible};

/// A copy of the text whose every byte remembers where it came from.
#[derive(Default)]
pub(super) struct View {
    pub text: String,
    origin: Vec<usize>,
}

impl View {
    pub fn push(&mut self, c: char, origin: usize) {
        self.text.push(c);
        self.origin
            .extend(std::iter::repeat_n(origin, c.len_utf8()));
    }

    pub fn origin(&self, at: usize) -> usize {
        self.origin.get(at).copied().unwrap_or(0)
    }

    /// The first original offset a byte range of this view came from (a
    /// reversed view runs backwards).
    pub fn origin_of(&self, range: std::ops::Range<usize>) -> usize {
        self.origin
            .get(range)
            .and_then(|o| o.iter().min().copied())
            .unwrap_or(0)
    }

    /// A copy with each character replaced by `map`'s, same origins.
    fn mapped(&self, map: impl Fn(char, Option<char>, Option<char>) -> char) -> View {
        let chars: Vec<(usize, char)> = self.text.char_indices().collect();
        let mut out = View::default();
        for (i, &(at, c)) in chars.iter().enumerate() {
            let prev = i.checked_sub(1).map(|j| chars[j].1);
            let next = chars.get(i + 1).map(|p| p.1);
            out.push(map(c, prev, next), self.origin(at));
        }
        out
    }

    fn reversed(&self) -> View {
        let mut out = View::default();
        for (at, c) in self.text.char_indices().rev() {
            out.push(c, self.origin(at));
        }
        out
    }
}

/// A character that stands for a letter in leetspeak, read as that letter
/// when it touches a letter (`1gn0r3`, `4ll`), so that plain numbers
/// (`top 5`, `ISO 3166`) stay numbers. `one` chooses how `1` reads.
fn leet(c: char, prev: Option<char>, next: Option<char>, one: char) -> char {
    let touches = |o: Option<char>| o.is_some_and(|o| o.is_ascii_alphabetic() || is_leet(o));
    if !is_leet(c) || !(touches(prev) || touches(next)) {
        return c;
    }
    // A run of digits only (`2024`, `v10`'s `10`) is a number, not a word.
    let letter_near = prev.is_some_and(|p| p.is_ascii_alphabetic())
        || next.is_some_and(|n| n.is_ascii_alphabetic());
    if c.is_ascii_digit() && !letter_near {
        return c;
    }
    match c {
        '0' => 'o',
        '1' => one,
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        '8' => 'b',
        '9' => 'g',
        '!' | '|' => one,
        other => other,
    }
}

fn is_leet(c: char) -> bool {
    matches!(
        c,
        '0' | '1' | '3' | '4' | '5' | '7' | '8' | '9' | '@' | '$' | '+' | '!' | '|'
    )
}

fn rot13(c: char) -> char {
    match c {
        'a'..='m' => (c as u8 + 13) as char,
        'n'..='z' => (c as u8 - 13) as char,
        other => other,
    }
}

pub(super) struct Views {
    pub clean: View,
    pub lower: View,
    pub compact: View,
}

impl Views {
    pub fn new(text: &str) -> Views {
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

    /// The lower view read as leetspeak, once with `1` as `i` and once as
    /// `l`; `None` when no character changes.
    pub fn leet(&self) -> Vec<View> {
        ['i', 'l']
            .into_iter()
            .map(|one| self.lower.mapped(|c, p, n| leet(c, p, n, one)))
            .filter(|v| v.text != self.lower.text)
            .collect()
    }

    /// The lower view with ROT13 undone, and read backwards.
    pub fn rot13_and_reversed(&self) -> [(&'static str, View); 2] {
        [
            ("ROT13", self.lower.mapped(|c, _, _| rot13(c))),
            ("reversed", self.lower.reversed()),
        ]
    }
}
