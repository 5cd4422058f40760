//! Characters a reviewer cannot see, and letters that look like others.

use unicode_normalization::UnicodeNormalization;

use super::{BIDI, CONTROL, DISGUISED, Found, HOMOGLYPH, PRIVATE_USE, TAG, VARIATION, ZERO_WIDTH};

pub(super) fn code_point(c: char) -> String {
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

fn is_thin_space(c: char) -> bool {
    matches!(c, '\u{2000}'..='\u{200A}' | '\u{205F}')
}

fn is_private_use(c: char) -> bool {
    matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}')
}

pub(super) fn is_control(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\t' | '\r')) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Characters that vanish from the clean view.
pub(super) fn is_invisible(c: char) -> bool {
    is_zero_width(c) || is_bidi(c) || is_tag(c) || is_variation_selector(c)
}

/// The character classes no reviewer can see. A zero-width joiner or a
/// variation selector between emoji is how emoji are written, and passes.
pub(super) fn characters(text: &str, found: &mut Found) {
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
            // After an emoji, or between a digit, `#` or `*` and the
            // keycap mark (`1️⃣`), a selector is how the emoji is written.
            let keycap = prev.is_some_and(|p| p.is_ascii_digit() || matches!(p, '#' | '*'))
                && next == Some('\u{20E3}');
            if matches!(c, '\u{FE0E}' | '\u{FE0F}') && (prev.is_some_and(is_emoji) || keycap) {
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
        } else if is_thin_space(c)
            && prev.is_some_and(char::is_alphabetic)
            && next.is_some_and(char::is_alphabetic)
        {
            // `Dis\u{200A}regard`: a space a reviewer cannot see splits a
            // word that the model reads whole.
            ZERO_WIDTH
        } else {
            continue;
        };
        found.add(rule, offset, code_point(c));
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
pub(super) fn ascii_skeleton(c: char) -> Option<String> {
    if c.is_ascii() || !c.is_alphabetic() {
        return None;
    }
    let skeleton: String = unicode_security::skeleton(c.encode_utf8(&mut [0; 4])).collect();
    (!skeleton.is_empty() && skeleton.chars().all(|s| s.is_ascii_alphabetic())).then_some(skeleton)
}

/// Letters of the Latin script beyond ASCII (`ı`, `ł`, `ø`, `ș`): the
/// letters of real languages, not look-alikes from another script.
fn is_latin(c: char) -> bool {
    matches!(c as u32, 0x00C0..=0x024F | 0x1E00..=0x1EFF | 0x2C60..=0x2C7F | 0xA720..=0xA7FF)
}

fn is_sub_or_superscript(c: char) -> bool {
    matches!(c as u32, 0x02B0..=0x02FF | 0x1D2C..=0x1D6A | 0x1D9B..=0x1DBF | 0x2070..=0x209C)
}

/// Look-alike letters, word by word: disguised forms (NFKC folds them to
/// ASCII) and homoglyphs (letters of another script whose skeleton is
/// ASCII) inside Latin words, or whole words of them in Latin text.
pub(super) fn letters(text: &str, found: &mut Found) {
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
        // Sub- and superscript letters (`xᵢ`, `mᵃˣ`) are how formulas are
        // written; only a run of them spells a word.
        let scripts = disguised.iter().all(|(_, c)| is_sub_or_superscript(*c));
        if let Some(&&(offset, c)) = disguised.first()
            && ((has_ascii && !scripts) || disguised.len() >= 3)
        {
            let plain: String = word
                .iter()
                .flat_map(|(_, c)| c.to_string().nfkc().collect::<Vec<_>>())
                .collect();
            found.add(DISGUISED, offset, format!("{} in `{plain}`", code_point(c)));
        }
        let foreign: Vec<(usize, char, String)> = word
            .iter()
            .filter(|(_, c)| !nfkc_ascii_letter(*c) && !is_latin(*c))
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
            found.add(
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
