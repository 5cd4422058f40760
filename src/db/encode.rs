//! Rows to bytes: JSON (an array of objects) and CSV, with the type
//! mapping of SPEC §5. Integers stay numbers (HUGEINT becomes a string),
//! DECIMAL is written as its exact decimal text, dates and times as ISO
//! 8601, LIST/ARRAY as arrays, STRUCT/MAP as objects, BLOB as base64.

use std::io::Write;

use base64::Engine;
use duckdb::Row;
use duckdb::types::{TimeUnit, Value, ValueRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Csv,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// How a result column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Value,
    /// DuckDB's JSON type: embedded as JSON, not as a string.
    Json,
    /// A column of type NULL (`SELECT NULL`, or a parameter bound to NULL):
    /// every value is null, and reading it is never attempted.
    Null,
}

/// Accumulates encoded rows.
pub struct RowWriter {
    format: Format,
    buf: Vec<u8>,
    /// JSON: `"name":` per column, escaped once.
    keys: Vec<Vec<u8>>,
    columns: usize,
    kinds: Vec<ColumnKind>,
    first: bool,
    cell: Vec<u8>,
}

impl RowWriter {
    pub fn new(format: Format, columns: &[String], kinds: Vec<ColumnKind>) -> Self {
        let mut writer = RowWriter {
            format,
            buf: Vec::with_capacity(4096),
            keys: Vec::new(),
            columns: columns.len(),
            kinds,
            first: true,
            cell: Vec::new(),
        };
        match format {
            Format::Json => {
                writer.keys = columns
                    .iter()
                    .map(|c| {
                        let mut key = serde_json::to_vec(c).unwrap_or_else(|_| b"\"?\"".to_vec());
                        key.push(b':');
                        key
                    })
                    .collect();
                writer.buf.push(b'[');
            }
            Format::Csv => {
                let header: Vec<&[u8]> = columns.iter().map(|c| c.as_bytes()).collect();
                write_csv_record(&mut writer.buf, &header);
            }
        }
        writer
    }

    pub fn row(&mut self, row: &Row<'_>) -> duckdb::Result<()> {
        match self.format {
            Format::Json => {
                if !self.first {
                    self.buf.push(b',');
                }
                self.first = false;
                self.buf.push(b'{');
                for i in 0..self.columns {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    self.buf.extend_from_slice(&self.keys[i]);
                    let kind = self.kinds.get(i).copied().unwrap_or(ColumnKind::Value);
                    if kind == ColumnKind::Null {
                        self.buf.extend_from_slice(b"null");
                        continue;
                    }
                    let value = row.get_ref(i)?;
                    match value {
                        ValueRef::Text(bytes)
                            if kind == ColumnKind::Json
                                && serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                                    .is_ok() =>
                        {
                            self.buf.extend_from_slice(bytes)
                        }
                        _ => write_ref(&mut self.buf, value, Mode::Json),
                    }
                }
                self.buf.push(b'}');
            }
            Format::Csv => {
                let mut cells: Vec<Vec<u8>> = Vec::with_capacity(self.columns);
                for i in 0..self.columns {
                    self.cell.clear();
                    match self.kinds.get(i) {
                        Some(ColumnKind::Null) => {}
                        _ => write_ref(&mut self.cell, row.get_ref(i)?, Mode::Csv),
                    }
                    cells.push(self.cell.clone());
                }
                let refs: Vec<&[u8]> = cells.iter().map(|c| c.as_slice()).collect();
                write_csv_record(&mut self.buf, &refs);
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.format == Format::Json {
            self.buf.push(b']');
        }
        self.buf
    }
}

fn write_csv_record(buf: &mut Vec<u8>, fields: &[&[u8]]) {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = writer.write_record(fields);
    if let Ok(bytes) = writer.into_inner() {
        buf.extend_from_slice(&bytes);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Json,
    /// CSV cells: text without JSON quoting, NULL as an empty cell,
    /// nested values as JSON.
    Csv,
}

fn write_str(buf: &mut Vec<u8>, text: &str, mode: Mode) {
    match mode {
        Mode::Json => {
            let _ = serde_json::to_writer(&mut *buf, text);
        }
        Mode::Csv => buf.extend_from_slice(text.as_bytes()),
    }
}

fn write_display(buf: &mut Vec<u8>, value: impl std::fmt::Display) {
    let _ = write!(buf, "{value}");
}

fn write_f64(buf: &mut Vec<u8>, value: f64) {
    // NaN and infinities have no JSON form: null.
    let _ = serde_json::to_writer(&mut *buf, &value);
}

pub fn date_text(days: i32) -> String {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(i64::from(days))))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| days.to_string())
}

pub fn time_text(unit: TimeUnit, value: i64) -> String {
    let micros = unit.to_micros(value);
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let base = format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac == 0 {
        base
    } else {
        format!("{base}.{frac:06}")
    }
}

pub fn timestamp_text(unit: TimeUnit, value: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(unit.to_micros(value)) {
        Some(ts) => {
            let naive = ts.naive_utc();
            if naive.and_utc().timestamp_subsec_micros() == 0 {
                naive.format("%Y-%m-%dT%H:%M:%S").to_string()
            } else {
                naive.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
            }
        }
        None => value.to_string(),
    }
}

fn interval_text(months: i32, days: i32, nanos: i64) -> String {
    let micros = nanos / 1000;
    let secs = micros as f64 / 1_000_000.0;
    format!("P{months}M{days}DT{secs}S")
}

fn write_ref(buf: &mut Vec<u8>, value: ValueRef<'_>, mode: Mode) {
    let quoted = |buf: &mut Vec<u8>, text: String| write_str(buf, &text, mode);
    match value {
        ValueRef::Null => {
            if mode == Mode::Json {
                buf.extend_from_slice(b"null")
            }
        }
        ValueRef::Boolean(b) => buf.extend_from_slice(if b { b"true" } else { b"false" }),
        ValueRef::TinyInt(v) => write_display(buf, v),
        ValueRef::SmallInt(v) => write_display(buf, v),
        ValueRef::Int(v) => write_display(buf, v),
        ValueRef::BigInt(v) => write_display(buf, v),
        ValueRef::UTinyInt(v) => write_display(buf, v),
        ValueRef::USmallInt(v) => write_display(buf, v),
        ValueRef::UInt(v) => write_display(buf, v),
        ValueRef::UBigInt(v) => write_display(buf, v),
        // Beyond 64 bits JSON numbers lose precision in most clients.
        ValueRef::HugeInt(v) => quoted(buf, v.to_string()),
        ValueRef::UHugeInt(v) => quoted(buf, v.to_string()),
        ValueRef::Float(v) => write_f64(buf, f64::from(v)),
        ValueRef::Double(v) => write_f64(buf, v),
        ValueRef::Decimal(d) => write_display(buf, d),
        ValueRef::Timestamp(unit, v) => quoted(buf, timestamp_text(unit, v)),
        ValueRef::Text(bytes) => write_str(buf, &String::from_utf8_lossy(bytes), mode),
        ValueRef::Blob(bytes) | ValueRef::Geometry(bytes) => {
            quoted(buf, base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        ValueRef::Date32(days) => quoted(buf, date_text(days)),
        ValueRef::Time64(unit, v) => quoted(buf, time_text(unit, v)),
        ValueRef::Interval {
            months,
            days,
            nanos,
        } => quoted(buf, interval_text(months, days, nanos)),
        // Lists, structs, maps, enums, unions: through the owned form.
        nested => match nested.to_owned() {
            Value::Enum(text) => write_str(buf, &text, mode),
            owned => write_value(buf, &owned),
        },
    }
}

/// Owned values: nested types (always as JSON).
fn write_value(buf: &mut Vec<u8>, value: &Value) {
    let mode = Mode::Json;
    match value {
        Value::Null => buf.extend_from_slice(b"null"),
        Value::Boolean(b) => buf.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::TinyInt(v) => write_display(buf, v),
        Value::SmallInt(v) => write_display(buf, v),
        Value::Int(v) => write_display(buf, v),
        Value::BigInt(v) => write_display(buf, v),
        Value::UTinyInt(v) => write_display(buf, v),
        Value::USmallInt(v) => write_display(buf, v),
        Value::UInt(v) => write_display(buf, v),
        Value::UBigInt(v) => write_display(buf, v),
        Value::HugeInt(v) => write_str(buf, &v.to_string(), mode),
        Value::UHugeInt(v) => write_str(buf, &v.to_string(), mode),
        Value::Float(v) => write_f64(buf, f64::from(*v)),
        Value::Double(v) => write_f64(buf, *v),
        Value::Decimal(d) => write_display(buf, d),
        Value::Timestamp(unit, v) => write_str(buf, &timestamp_text(*unit, *v), mode),
        Value::Text(text) | Value::Enum(text) => write_str(buf, text, mode),
        Value::Blob(bytes) | Value::Geometry(bytes) => write_str(
            buf,
            &base64::engine::general_purpose::STANDARD.encode(bytes),
            mode,
        ),
        Value::Date32(days) => write_str(buf, &date_text(*days), mode),
        Value::Time64(unit, v) => write_str(buf, &time_text(*unit, *v), mode),
        Value::Interval {
            months,
            days,
            nanos,
        } => write_str(buf, &interval_text(*months, *days, *nanos), mode),
        Value::List(items) | Value::Array(items) => {
            buf.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_value(buf, item);
            }
            buf.push(b']');
        }
        Value::Struct(fields) => {
            buf.push(b'{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_str(buf, key, mode);
                buf.push(b':');
                write_value(buf, item);
            }
            buf.push(b'}');
        }
        Value::Map(entries) => {
            buf.push(b'{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                let key_text = match key {
                    Value::Text(t) | Value::Enum(t) => t.clone(),
                    other => {
                        let mut k = Vec::new();
                        write_value(&mut k, other);
                        String::from_utf8_lossy(&k).trim_matches('"').to_string()
                    }
                };
                write_str(buf, &key_text, mode);
                buf.push(b':');
                write_value(buf, item);
            }
            buf.push(b'}');
        }
        Value::Union(inner) => write_value(buf, inner),
        // `Value` is non-exhaustive: a type added by a later DuckDB.
        _ => buf.extend_from_slice(b"null"),
    }
}
