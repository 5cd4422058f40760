//! A YAML document as a tree of nodes that remember their file position,
//! and a reader for mappings that reports unknown keys with suggestions.
//!
//! serde-saphyr parses; we keep a generic spanned tree instead of deriving
//! the project structs directly, because serde stops at the first error and
//! the build must report every problem of a file in one run.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diag::{Diagnostics, Location, did_you_mean};

/// A value with the position it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub loc: Location,
}

impl<T> Sp<T> {
    pub fn new(value: T, loc: Location) -> Self {
        Sp { value, loc }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub loc: Location,
    pub kind: Kind,
}

impl Node {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The text of a scalar, for keys and for string fields that YAML typed
    /// as a number or boolean (`default: 10` on a string field).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Parses one YAML file. A syntax error is reported at its position and
/// yields `None`.
pub fn parse(file: &Path, text: &str, diags: &mut Diagnostics) -> Option<Node> {
    if text.trim().is_empty() {
        diags.error(
            &Location::file_start(file),
            "",
            "the file is empty",
            Some("write the YAML mapping this file should hold".into()),
        );
        return None;
    }
    // YAML 1.2 booleans: `n`, `no`, `on` and `off` stay strings.
    let options = serde_saphyr::options! { strict_booleans: true };
    match serde_saphyr::from_str_with_options::<RawNode>(text, options) {
        Ok(raw) => Some(raw.into_node(file)),
        Err(err) => {
            let (line, column) = err
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            let first_line = err.to_string();
            let message = first_line
                .lines()
                .next()
                .unwrap_or("invalid YAML")
                .trim_start_matches("error: ")
                .to_string();
            diags.error(
                &Location::new(file, line, column),
                "",
                format!("invalid YAML: {message}"),
                None,
            );
            None
        }
    }
}

/// What serde-saphyr hands us: positions without a file name yet.
struct RawNode {
    line: u64,
    column: u64,
    kind: RawKind,
}

enum RawKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<RawNode>),
    Map(Vec<(RawNode, RawNode)>),
}

impl RawNode {
    fn into_node(self, file: &Path) -> Node {
        let kind = match self.kind {
            RawKind::Null => Kind::Null,
            RawKind::Bool(b) => Kind::Bool(b),
            RawKind::Int(i) => Kind::Int(i),
            RawKind::Float(f) => Kind::Float(f),
            RawKind::Str(s) => Kind::Str(s),
            RawKind::Seq(items) => {
                Kind::Seq(items.into_iter().map(|n| n.into_node(file)).collect())
            }
            RawKind::Map(entries) => Kind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.into_node(file), v.into_node(file)))
                    .collect(),
            ),
        };
        Node {
            loc: Location::new(file, self.line, self.column),
            kind,
        }
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = RawKind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawKind, E> {
        Ok(RawKind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawKind, E> {
        Ok(RawKind::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawKind, E> {
        i64::try_from(v)
            .map(RawKind::Int)
            .map_err(|_| E::custom("integer does not fit in 64 bits"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawKind, E> {
        Ok(RawKind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawKind, E> {
        Ok(RawKind::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawKind, E> {
        Ok(RawKind::Str(v))
    }
    fn visit_unit<E>(self) -> Result<RawKind, E> {
        Ok(RawKind::Null)
    }
    fn visit_none<E>(self) -> Result<RawKind, E> {
        Ok(RawKind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawKind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<RawKind, A::Error> {
        let mut items = Vec::new();
        while let Some(node) = access.next_element::<RawNode>()? {
            items.push(node);
        }
        Ok(RawKind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = access.next_entry::<RawNode, RawNode>()? {
            entries.push(entry);
        }
        Ok(RawKind::Map(entries))
    }
}

struct KindOnly(RawKind);

impl<'de> Deserialize<'de> for KindOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor).map(KindOnly)
    }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned: Spanned<KindOnly> = Spanned::deserialize(d)?;
        Ok(RawNode {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
            kind: spanned.value.0,
        })
    }
}

/// Joins a key path: `join("request[0]", "min")` is `request[0].min`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Reads the keys of one mapping. Keys are taken by name; `finish` reports
/// every key nobody took, with a suggestion from the known keys.
pub struct MapReader<'a> {
    pub node: &'a Node,
    pub path: String,
    entries: Vec<(String, &'a Node, &'a Node)>,
    used: Vec<bool>,
}

impl<'a> MapReader<'a> {
    /// `None` (with an error) when the node is not a mapping.
    pub fn new(node: &'a Node, path: &str, diags: &mut Diagnostics) -> Option<Self> {
        let Kind::Map(entries) = &node.kind else {
            diags.error(
                &node.loc,
                path,
                format!("expected a mapping, found {}", node.type_name()),
                None,
            );
            return None;
        };
        let mut seen: Vec<String> = Vec::new();
        let mut keyed = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Some(name) = key.scalar_text() else {
                diags.error(&key.loc, path, "mapping keys must be plain names", None);
                continue;
            };
            if seen.contains(&name) {
                diags.error(
                    &key.loc,
                    join(path, &name),
                    format!("duplicate key `{name}`"),
                    Some("keep one of the two".into()),
                );
                continue;
            }
            seen.push(name.clone());
            keyed.push((name, key, value));
        }
        let used = vec![false; keyed.len()];
        Some(MapReader {
            node,
            path: path.to_string(),
            entries: keyed,
            used,
        })
    }

    pub fn key_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value under `key`, marking it as known.
    pub fn take(&mut self, key: &str) -> Option<&'a Node> {
        let index = self.entries.iter().position(|(name, _, _)| name == key)?;
        self.used[index] = true;
        Some(self.entries[index].2)
    }

    /// The position of the key itself (for "duplicate route" and similar).
    pub fn key_location(&self, key: &str) -> Option<Location> {
        self.entries
            .iter()
            .find(|(name, _, _)| name == key)
            .map(|(_, k, _)| k.loc.clone())
    }

    /// Keys that are known but belong to a later feature: an explicit
    /// "not supported yet" error instead of silently ignoring them.
    pub fn reject_unsupported(&mut self, keys: &[&str], diags: &mut Diagnostics) {
        for key in keys {
            if let Some(loc) = self.key_location(key) {
                self.take(key);
                diags.error(
                    &loc,
                    self.key_path(key),
                    format!("`{key}` is not supported yet by this version of flapi"),
                    Some(format!("remove `{key}`; it is planned but not implemented, and ignoring it silently would be unsafe")),
                );
            }
        }
    }

    /// A key flAPI accepts and flapi has no use for: taken, with a warning
    /// that says so and why (never silently ignored).
    pub fn ignore(&mut self, key: &str, why: &str, diags: &mut Diagnostics) {
        if let Some(loc) = self.key_location(key) {
            self.take(key);
            diags.warning(
                &loc,
                self.key_path(key),
                format!("`{key}` is ignored: {why}"),
                Some(format!("remove `{key}`; the build does not need it")),
            );
        }
    }

    /// The value under `key`, or under flAPI's other spelling `alias` of
    /// the same key; both at once is an error.
    pub fn take_either(
        &mut self,
        key: &str,
        alias: &str,
        diags: &mut Diagnostics,
    ) -> Option<&'a Node> {
        match (self.key_location(key), self.key_location(alias)) {
            (Some(_), Some(loc)) => {
                self.take(alias);
                diags.error(
                    &loc,
                    self.key_path(alias),
                    format!("`{alias}` and `{key}` are two spellings of one key"),
                    Some(format!("keep `{key}` and remove `{alias}`")),
                );
                self.take(key)
            }
            (None, Some(_)) => self.take(alias),
            _ => self.take(key),
        }
    }

    /// The names of the keys nobody has taken yet, with their nodes.
    pub fn remaining(&self) -> Vec<(String, &'a Node, &'a Node)> {
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|((name, key, value), _)| (name.clone(), *key, *value))
            .collect()
    }

    /// Reports every key that was not taken. `known` lists all valid keys
    /// of this mapping, for the suggestion.
    pub fn finish(self, known: &[&str], diags: &mut Diagnostics) {
        for ((name, key, _), used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let help = did_you_mean(name, known.iter().copied())
                .or_else(|| Some(format!("known keys here: {}", known.join(", "))));
            diags.error(
                &key.loc,
                join(&self.path, name),
                format!("unknown key `{name}`"),
                help,
            );
        }
    }
}

pub fn expect_str(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<Sp<String>> {
    match &node.kind {
        Kind::Str(s) => Some(Sp::new(s.clone(), node.loc.clone())),
        _ => {
            diags.error(
                &node.loc,
                path,
                format!("expected a string, found {}", node.type_name()),
                None,
            );
            None
        }
    }
}

/// A string field that also accepts a number or boolean scalar as its text.
pub fn expect_scalar_text(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<Sp<String>> {
    match node.scalar_text() {
        Some(text) => Some(Sp::new(text, node.loc.clone())),
        None => {
            diags.error(
                &node.loc,
                path,
                format!("expected a scalar value, found {}", node.type_name()),
                None,
            );
            None
        }
    }
}

pub fn expect_bool(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<Sp<bool>> {
    match &node.kind {
        Kind::Bool(b) => Some(Sp::new(*b, node.loc.clone())),
        _ => {
            diags.error(
                &node.loc,
                path,
                format!("expected `true` or `false`, found {}", node.type_name()),
                None,
            );
            None
        }
    }
}

pub fn expect_int(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<Sp<i64>> {
    match &node.kind {
        Kind::Int(i) => Some(Sp::new(*i, node.loc.clone())),
        _ => {
            diags.error(
                &node.loc,
                path,
                format!("expected an integer, found {}", node.type_name()),
                None,
            );
            None
        }
    }
}

pub fn expect_number(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<Sp<f64>> {
    match &node.kind {
        Kind::Int(i) => Some(Sp::new(*i as f64, node.loc.clone())),
        Kind::Float(f) => Some(Sp::new(*f, node.loc.clone())),
        _ => {
            diags.error(
                &node.loc,
                path,
                format!("expected a number, found {}", node.type_name()),
                None,
            );
            None
        }
    }
}

/// A list of nodes; a single scalar is not silently promoted.
pub fn expect_seq<'a>(node: &'a Node, path: &str, diags: &mut Diagnostics) -> Option<&'a [Node]> {
    match &node.kind {
        Kind::Seq(items) => Some(items),
        _ => {
            diags.error(
                &node.loc,
                path,
                format!("expected a list, found {}", node.type_name()),
                None,
            );
            None
        }
    }
}

pub fn expect_str_list(node: &Node, path: &str, diags: &mut Diagnostics) -> Vec<Sp<String>> {
    let Some(items) = expect_seq(node, path, diags) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| expect_scalar_text(item, &format!("{path}[{i}]"), diags))
        .collect()
}

/// Reads `key` of `reader` with `read`, when it is there.
pub fn opt<T>(
    reader: &mut MapReader<'_>,
    key: &str,
    diags: &mut Diagnostics,
    read: fn(&Node, &str, &mut Diagnostics) -> Option<T>,
) -> Option<T> {
    let path = reader.key_path(key);
    reader.take(key).and_then(|node| read(node, &path, diags))
}
