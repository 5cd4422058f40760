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
    fn mapped(&self, map: impl Fn(char) -> char) -> View {
        let mut out = View::default();
        for (at, c) in self.text.char_indices() {
            out.push(map(c), self.origin(at));
        }
        out
    }

    /// A copy where each word that mixes letters and leetspeak characters
    /// is read as letters.
    fn deleeted(&self, one: char) -> View {
        let mut out = View::default();
        let mut word: Vec<(usize, char)> = Vec::new();
        let flush = |word: &mut Vec<(usize, char)>, out: &mut View| {
            let letters = word.iter().any(|(_, c)| c.is_ascii_alphabetic());
            for &(at, c) in word.iter() {
                let c = if letters { leet(c, one) } else { c };
                out.push(c, self.origin(at));
            }
            word.clear();
        };
        for (at, c) in self.text.char_indices() {
            if c.is_ascii_alphanumeric() || is_leet(c) {
                word.push((at, c));
            } else {
                flush(&mut word, &mut out);
                out.push(c, self.origin(at));
            }
        }
        flush(&mut word, &mut out);
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
/// inside a word that has letters too (`1gn0r3`, `4ll`, `1n5truc710n5`), so
/// that numbers (`top 5`, `ISO 3166`, `2024`) stay numbers. `one` chooses
/// how `1` reads.
fn leet(c: char, one: char) -> char {
    match c {
        '0' => 'o',
        '1' | '!' | '|' => one,
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        '8' => 'b',
        '9' => 'g',
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

fn atbash(c: char) -> char {
    match c {
        'a'..='z' => (b'z' - (c as u8 - b'a')) as char,
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

    /// The lower view read as leetspeak (`1` as `ı`, either `i` or
    /// `l`); `None` when no character changes.
    pub fn leet(&self) -> Option<View> {
        Some(self.lower.deleeted('ı')).filter(|v| v.text != self.lower.text)
    }

    /// Letters written one by one (`i g n o r e   a l l`) joined into the
    /// words that wider gaps separate; `None` when there are none.
    pub fn spaced(&self) -> Option<View> {
        let lower = &self.lower;
        // Two one-letter words one space apart in the original are one
        // word; a wider original gap (which the clean view folded) ends it.
        let words: Vec<(usize, &str)> = lower
            .text
            .split(' ')
            .scan(0usize, |at, w| {
                let start = *at;
                *at += w.len() + 1;
                Some((start, w))
            })
            .collect();
        let single = |w: &str| w.chars().count() == 1 && w.chars().all(char::is_alphanumeric);
        if words.iter().filter(|(_, w)| single(w)).count() < 6 {
            return None;
        }
        let mut out = View::default();
        for (i, &(start, w)) in words.iter().enumerate() {
            let joined = i > 0 && single(w) && single(words[i - 1].1) && {
                let gap = lower.origin(start) - lower.origin(words[i - 1].0);
                gap <= 2
            };
            if i > 0 && !joined {
                out.push(' ', lower.origin(start.saturating_sub(1)));
            }
            for (k, c) in w.char_indices() {
                out.push(c, lower.origin(start + k));
            }
        }
        Some(out)
    }

    /// The lower view with ROT13 and Atbash undone, and read backwards.
    pub fn rot13_and_reversed(&self) -> [(&'static str, View); 3] {
        [
            ("ROT13", self.lower.mapped(rot13)),
            ("Atbash", self.lower.mapped(atbash)),
            ("reversed", self.lower.reversed()),
        ]
    }
}
