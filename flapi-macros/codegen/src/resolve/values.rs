//! Build-time checks of literal values (defaults, validator bounds) against
//! a field type. The runtime parses request values with the same rules.

use regex::Regex;

use crate::resolve::model::FieldType;

pub fn check_value(ty: &FieldType, text: &str) -> Result<(), String> {
    match ty {
        FieldType::Int { min, max } => {
            let n: i64 = text
                .trim()
                .parse()
                .map_err(|_| "expected a 64-bit integer".to_string())?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(format!(
                    "{n} is outside {}..={}",
                    fmt_opt(min),
                    fmt_opt(max)
                ));
            }
            Ok(())
        }
        FieldType::Double { min, max } => {
            let n: f64 = text
                .trim()
                .parse()
                .map_err(|_| "expected a number".to_string())?;
            if !n.is_finite() {
                return Err("expected a finite number".into());
            }
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(format!(
                    "{n} is outside {}..={}",
                    fmt_opt(min),
                    fmt_opt(max)
                ));
            }
            Ok(())
        }
        FieldType::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "false" | "1" | "0" => Ok(()),
            _ => Err("expected true or false".into()),
        },
        FieldType::String {
            pattern,
            min_length,
            max_length,
        } => {
            let len = text.chars().count() as u64;
            if min_length.is_some_and(|m| len < m) || max_length.is_some_and(|m| len > m) {
                return Err(format!(
                    "length {len} is outside {}..={}",
                    fmt_opt(min_length),
                    fmt_opt(max_length)
                ));
            }
            if let Some(p) = pattern
                && let Ok(re) = Regex::new(&format!("^(?:{p})$"))
                && !re.is_match(text)
            {
                return Err(format!("does not match the pattern `{p}`"));
            }
            Ok(())
        }
        FieldType::Enum { values } => {
            if values.iter().any(|v| v == text) {
                Ok(())
            } else {
                Err(format!("expected one of: {}", values.join(", ")))
            }
        }
        FieldType::Date { min, max } => {
            is_date(text)
                .then_some(())
                .ok_or("expected a date YYYY-MM-DD")?;
            check_range(text, min, max)
        }
        FieldType::Time { min, max } => {
            is_time(text)
                .then_some(())
                .ok_or("expected a time HH:MM[:SS[.ffffff]]")?;
            check_range(text, min, max)
        }
        FieldType::Timestamp { min, max } => {
            is_timestamp(text)
                .then_some(())
                .ok_or("expected a timestamp YYYY-MM-DDTHH:MM[:SS[.ffffff]]")?;
            check_range(text, min, max)
        }
        FieldType::Uuid => {
            let ok = text.len() == 36
                && text.char_indices().all(|(i, c)| {
                    if [8, 13, 18, 23].contains(&i) {
                        c == '-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                });
            ok.then_some(()).ok_or_else(|| "expected a UUID".into())
        }
        FieldType::Email => {
            let ok = text.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !text.contains(char::is_whitespace)
            });
            ok.then_some(())
                .ok_or_else(|| "expected an email address".into())
        }
    }
}

fn fmt_opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_default()
}

/// Dates, times and timestamps in the accepted form compare correctly as
/// text once the `T`/space separator is unified.
pub fn temporal_key(text: &str) -> String {
    text.replacen(' ', "T", 1)
}

fn check_range(text: &str, min: &Option<String>, max: &Option<String>) -> Result<(), String> {
    let key = temporal_key(text);
    if min.as_ref().is_some_and(|m| key < temporal_key(m))
        || max.as_ref().is_some_and(|m| key > temporal_key(m))
    {
        return Err(format!(
            "{text} is outside {}..={}",
            fmt_opt(min),
            fmt_opt(max)
        ));
    }
    Ok(())
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

pub fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    let (Some(y), Some(m), Some(d)) = (digits(y, 4), digits(m, 2), digits(d, 2)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

pub fn is_time(text: &str) -> bool {
    let (main, frac) = match text.split_once('.') {
        Some((main, frac)) => (main, Some(frac)),
        None => (text, None),
    };
    if frac.is_some_and(|f| f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let parts: Vec<&str> = main.split(':').collect();
    match parts.as_slice() {
        [h, m] if frac.is_none() => {
            digits(h, 2).is_some_and(|h| h < 24) && digits(m, 2).is_some_and(|m| m < 60)
        }
        [h, m, s] => {
            digits(h, 2).is_some_and(|h| h < 24)
                && digits(m, 2).is_some_and(|m| m < 60)
                && digits(s, 2).is_some_and(|s| s < 60)
        }
        _ => false,
    }
}

pub fn is_timestamp(text: &str) -> bool {
    match text.split_once(['T', ' ']) {
        Some((date, time)) => is_date(date) && is_time(time),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2024-13-01"));
        assert!(is_time("23:59:59.123456"));
        assert!(!is_time("24:00"));
        assert!(is_timestamp("2024-01-01T10:00:00"));
        assert!(!is_timestamp("2024-01-01"));
    }

    #[test]
    fn bounds() {
        let ty = FieldType::Int {
            min: Some(1),
            max: Some(10),
        };
        assert!(check_value(&ty, "5").is_ok());
        assert!(check_value(&ty, "11").is_err());
        assert!(check_value(&ty, "1; DROP").is_err());
    }
}
