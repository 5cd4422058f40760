//! Request field parsers called by generated argument structs. Each returns
//! `Some(value)` when the field is present and valid, and records a
//! [`FieldErrors`] entry (naming the field and the rule, never the value)
//! when it is invalid or required and missing.

use std::borrow::Cow;

use super::{Date, FieldErrors, Pattern, Raw, Time, Timestamp, Uuid};

/// Values longer than this are rejected before any parsing.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

fn present<'a>(
    errors: &mut FieldErrors,
    name: &str,
    raw: Raw<'a>,
    required: bool,
) -> Option<Cow<'a, str>> {
    match raw {
        Raw::Missing => {
            if required {
                errors.push(name, "is required");
            }
            None
        }
        Raw::Repeated => {
            errors.push(name, "was given more than once");
            None
        }
        Raw::NotScalar => {
            errors.push(name, "must be a single value, not an object or list");
            None
        }
        Raw::Value(v) if v.len() > MAX_VALUE_BYTES => {
            errors.push(name, format!("is longer than {MAX_VALUE_BYTES} bytes"));
            None
        }
        Raw::Value(v) => Some(v),
    }
}

fn bounded<T: PartialOrd + std::fmt::Display>(
    errors: &mut FieldErrors,
    name: &str,
    value: T,
    min: Option<T>,
    max: Option<T>,
) -> Option<T> {
    if let Some(min) = min
        && value < min
    {
        errors.push(name, format!("must be at least {min}"));
        return None;
    }
    if let Some(max) = max
        && value > max
    {
        errors.push(name, format!("must be at most {max}"));
        return None;
    }
    Some(value)
}

pub fn int(
    errors: &mut FieldErrors,
    name: &str,
    raw: Raw<'_>,
    required: bool,
    min: Option<i64>,
    max: Option<i64>,
) -> Option<i64> {
    let text = present(errors, name, raw, required)?;
    match text.trim().parse::<i64>() {
        Ok(v) => bounded(errors, name, v, min, max),
        Err(_) => {
            errors.push(name, "must be a 64-bit integer");
            None
        }
    }
}

pub fn double(
    errors: &mut FieldErrors,
    name: &str,
    raw: Raw<'_>,
    required: bool,
    min: Option<f64>,
    max: Option<f64>,
) -> Option<f64> {
    let text = present(errors, name, raw, required)?;
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => bounded(errors, name, v, min, max),
        _ => {
            errors.push(name, "must be a finite number");
            None
        }
    }
}

pub fn boolean(errors: &mut FieldErrors, name: &str, raw: Raw<'_>, required: bool) -> Option<bool> {
    let text = present(errors, name, raw, required)?;
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => {
            errors.push(name, "must be true or false");
            None
        }
    }
}

pub fn string(
    errors: &mut FieldErrors,
    name: &str,
    raw: Raw<'_>,
    required: bool,
    pattern: Option<&Pattern>,
    min_length: Option<u64>,
    max_length: Option<u64>,
) -> Option<String> {
    let text = present(errors, name, raw, required)?;
    if text.contains('\0') {
        errors.push(name, "must not contain NUL characters");
        return None;
    }
    let length = text.chars().count() as u64;
    if min_length.is_some_and(|m| length < m) {
        errors.push(
            name,
            format!(
                "must be at least {} characters long",
                min_length.unwrap_or(0)
            ),
        );
        return None;
    }
    if let Some(max) = max_length
        && length > max
    {
        errors.push(name, format!("must be at most {max} characters long"));
        return None;
    }
    if let Some(pattern) = pattern
        && !pattern.is_match(&text)
    {
        errors.push(name, "does not match the required pattern");
        return None;
    }
    Some(text.into_owned())
}

pub fn one_of<T>(
    errors: &mut FieldErrors,
    name: &str,
    raw: Raw<'_>,
    required: bool,
    allowed: &[&str],
    from_value: fn(&str) -> Option<T>,
) -> Option<T> {
    let text = present(errors, name, raw, required)?;
    let value = from_value(&text);
    if value.is_none() {
        errors.push(name, format!("must be one of: {}", allowed.join(", ")));
    }
    value
}

fn parse_bound<T>(bound: Option<&str>, parse: fn(&str) -> Option<T>) -> Option<T> {
    bound.and_then(parse)
}

fn parse_date(text: &str) -> Option<Date> {
    Date::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// `HH:MM[:SS[.f]]`, or RFC 3339 `full-time` with `Z` or an offset
/// (what JSON Schema's `time` format describes), converted to UTC.
fn parse_time(text: &str) -> Option<Time> {
    let t = text.trim();
    let (clock, offset) = split_offset(t);
    let time = Time::parse_from_str(clock, "%H:%M:%S%.f")
        .or_else(|_| Time::parse_from_str(clock, "%H:%M"))
        .ok()?;
    Some(time - chrono::Duration::seconds(i64::from(offset?)))
}

/// Splits `Z`, `+hh:mm` or `-hh:mm` off a time; the offset in seconds,
/// `Some(0)` when there is none, `None` when it is malformed.
fn split_offset(t: &str) -> (&str, Option<i32>) {
    if let Some(clock) = t.strip_suffix(['Z', 'z']) {
        return (clock, Some(0));
    }
    match t.rfind(['+', '-']) {
        Some(i) if i >= 5 => {
            let (clock, off) = t.split_at(i);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let parsed = off[1..].split_once(':').and_then(|(h, m)| {
                let (h, m) = (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?);
                (h.to_string().len() <= 2 && h < 24 && m < 60).then_some(h * 3600 + m * 60)
            });
            (clock, parsed.map(|s| sign * s))
        }
        _ => (t, Some(0)),
    }
}

/// ISO 8601 without a zone, or RFC 3339 `date-time` (JSON Schema's
/// format), which is converted to UTC.
fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let t = text.trim();
    if let Ok(zoned) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(zoned.naive_utc());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| Timestamp::parse_from_str(t, f).ok())
}

fn temporal<T: PartialOrd + std::fmt::Display>(
    errors: &mut FieldErrors,
    name: &str,
    raw: Raw<'_>,
    required: bool,
    bounds: (Option<&str>, Option<&str>),
    parse: fn(&str) -> Option<T>,
    expected: &str,
) -> Option<T> {
    let text = present(errors, name, raw, required)?;
    match parse(&text) {
        Some(v) => bounded(
            errors,
            name,
            v,
            parse_bound(bounds.0, parse),
            parse_bound(bounds.1, parse),
        ),
        None => {
            errors.push(name, format!("must be {expected}"));
            None
        }
    }
}

pub fn date(
    errors: &mut FieldErrors,
    name: &str,
    raw: Raw<'_>,
    required: bool,
    min: Option<&str>,
    max: Option<&str>,
) -> Option<Date> {
    temporal(
        errors,
        name,
        raw,
        required,
        (min, max),
        parse_date,
        "a date (YYYY-MM-DD)",
    )
}

pub fn time(
    errors: &mut FieldErrors,
    name: &str,
    raw: Raw<'_>,
    required: bool,
    min: Option<&str>,
    max: Option<&str>,
) -> Option<Time> {
    temporal(
        errors,
        name,
        raw,
        required,
        (min, max),
        parse_time,
        "a time (HH:MM[:SS[.ffffff]])",
    )
}

pub fn timestamp(
    errors: &mut FieldErrors,
    name: &str,
    raw: Raw<'_>,
    required: bool,
    min: Option<&str>,
    max: Option<&str>,
) -> Option<Timestamp> {
    temporal(
        errors,
        name,
        raw,
        required,
        (min, max),
        parse_timestamp,
        "a timestamp (YYYY-MM-DDTHH:MM[:SS[.ffffff]])",
    )
}

pub fn uuid(errors: &mut FieldErrors, name: &str, raw: Raw<'_>, required: bool) -> Option<Uuid> {
    let text = present(errors, name, raw, required)?;
    match Uuid::try_parse(text.trim()) {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(name, "must be a UUID");
            None
        }
    }
}

pub fn email(errors: &mut FieldErrors, name: &str, raw: Raw<'_>, required: bool) -> Option<String> {
    let text = present(errors, name, raw, required)?;
    if email_address::EmailAddress::is_valid(text.trim()) {
        Some(text.trim().to_string())
    } else {
        errors.push(name, "must be an email address");
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_rejects_injection_and_reports_bounds() {
        let mut errors = FieldErrors::new();
        assert_eq!(
            int(
                &mut errors,
                "id",
                Raw::Value("1 OR 1=1".into()),
                true,
                None,
                None
            ),
            None
        );
        assert_eq!(
            int(
                &mut errors,
                "id",
                Raw::Value("0".into()),
                true,
                Some(1),
                None
            ),
            None
        );
        assert_eq!(int(&mut errors, "id", Raw::Missing, true, None, None), None);
        let messages: Vec<&str> = errors.0.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "must be a 64-bit integer",
                "must be at least 1",
                "is required"
            ]
        );
    }
}
