//! The template compiler (SPEC §4): a Mustache SQL template becomes a fixed
//! set of SQL texts, one per combination of active sections and enum
//! choices, each with an ordered bind list. No request value is ever
//! spliced into SQL text; the text a request runs depends only on which
//! optional fields are present and which enum values were chosen.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

use crate::check::sqlcheck;
use crate::diag::{Diagnostics, did_you_mean};
use crate::resolve::model::{
    AuthKey, BindSource, CompiledTemplate, DimValue, Dimension, Field, FieldType, SqlText, Variant,
};
use crate::resolve::mustache::{Part, SourceMap};

/// More variants than this is a template that should be split.
pub const MAX_VARIANTS: usize = 256;

pub struct TemplateInput<'a> {
    pub map: &'a SourceMap<'a>,
    pub parts: &'a [Part],
    pub fields: &'a [Field],
    pub connection: Option<&'a str>,
    pub conn_properties: &'a [(String, String)],
    pub env_whitelist: &'a [Regex],
    /// false for the `sql-validation: startup` opt-out.
    pub check_sql: bool,
    pub paginate: bool,
    /// `None` when the project has no authentication configured; else the
    /// JWT claims templates may read as `auth.claims.<name>`.
    pub auth_claims: Option<&'a [String]>,
    /// `template.allowed-functions` of flapi.yaml.
    pub allowed_functions: &'a [String],
    /// The endpoint has `response.redact-columns`: its SQL may read only
    /// plain tables, which the server masks (SPEC §10).
    pub masked: bool,
}

/// What a `{{ name }}` refers to.
#[derive(Clone, Debug)]
enum Target {
    Field(usize),
    /// A connection property: a build-time constant.
    Conn(String),
    /// A value bound at run time that is not a request field: a
    /// whitelisted environment variable or a value of the caller.
    Bound(BindSource),
    /// A name that did not resolve (already reported): kept as a bound
    /// value so the SQL keeps its shape and raises no follow-on errors.
    Unresolved,
}

#[derive(Clone, Copy, Debug)]
enum Condition {
    Field(usize),
    Static(bool),
}

/// A template after sections were decided: text and sites.
#[derive(Clone, Debug)]
enum Tok {
    Ch(char),
    Site(Target, usize),
}

/// SQL after lexing: text, bound values, and unquoted or double-quoted
/// field sites whose role (value or identifier) is decided next.
#[derive(Clone, Debug)]
enum Seg {
    Sql(String),
    Bind(BindSource),
    /// A request field inside a quoted SQL string: always a bound value,
    /// but its surroundings may make it name something (`read_csv('…')`).
    FieldInLiteral {
        field: usize,
        offset: usize,
    },
    Unquoted {
        field: usize,
        offset: usize,
    },
    QuotedIdent {
        field: usize,
        offset: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Value,
    Identifier,
}

struct Compiler<'a> {
    input: &'a TemplateInput<'a>,
    targets: BTreeMap<usize, Target>,
    conditions: BTreeMap<usize, Condition>,
}

pub fn compile(input: &TemplateInput<'_>, diags: &mut Diagnostics) -> CompiledTemplate {
    crate::check::lexical::check_template(input.map, diags);
    let mut compiler = Compiler {
        input,
        targets: BTreeMap::new(),
        conditions: BTreeMap::new(),
    };
    compiler.resolve_names(input.parts, diags);

    // Pass 1: which enum fields are used as identifiers anywhere.
    let section_fields: BTreeSet<usize> = compiler
        .conditions
        .values()
        .filter_map(|c| match c {
            Condition::Field(f) if needs_presence_dimension(&input.fields[*f]) => Some(*f),
            _ => None,
        })
        .collect();
    let presence_only: Vec<Dimension> = section_fields
        .iter()
        .map(|f| Dimension::Presence { field: *f })
        .collect();
    let mut choice_fields = BTreeSet::new();
    let mut scratch = Diagnostics::new();
    for key in enumerate(&presence_only, input.fields) {
        let segs = compiler.lex(&compiler.flatten(&presence_only, &key), &mut scratch);
        let roles = compiler.classify(&segs, &mut scratch);
        for (seg, role) in segs.iter().zip(&roles) {
            match seg {
                Seg::QuotedIdent { field, .. }
                    if matches!(input.fields[*field].ty, FieldType::Enum { .. }) =>
                {
                    choice_fields.insert(*field);
                }
                Seg::Unquoted { field, .. } if *role == Some(Role::Identifier) => {
                    if matches!(input.fields[*field].ty, FieldType::Enum { .. }) {
                        choice_fields.insert(*field);
                    }
                }
                _ => {}
            }
        }
    }

    // Pass 2: the real dimensions and every variant.
    let mut dimensions: Vec<Dimension> = section_fields
        .iter()
        .filter(|f| !choice_fields.contains(f))
        .map(|f| Dimension::Presence { field: *f })
        .collect();
    dimensions.extend(
        choice_fields
            .iter()
            .map(|f| Dimension::Choice { field: *f }),
    );
    let keys = enumerate(&dimensions, input.fields);
    if keys.len() > MAX_VARIANTS {
        diags.error(
            &input.map.at(0),
            "",
            format!(
                "this template has {} SQL variants (optional sections times enum choices), more than {MAX_VARIANTS}",
                keys.len()
            ),
            Some("split the endpoint, or make some optional fields required".into()),
        );
        return CompiledTemplate {
            dimensions,
            ..Default::default()
        };
    }

    let mut template = CompiledTemplate {
        dimensions: dimensions.clone(),
        ..Default::default()
    };
    let mut text_index: BTreeMap<String, usize> = BTreeMap::new();
    for key in keys {
        let segs = compiler.lex(&compiler.flatten(&dimensions, &key), diags);
        let roles = compiler.classify(&segs, diags);
        let Some((sql, binds)) = compiler.render(&segs, &roles, &dimensions, &key, diags) else {
            continue;
        };
        let sql = normalise(&sql);
        let index = match text_index.get(&sql) {
            Some(index) => *index,
            None => {
                let facts = input.check_sql.then(|| check_read_only(&sql, input, diags));
                if let Some(facts) = &facts
                    && facts.parameters > binds.len()
                {
                    diags.error(
                        &input.map.at(input.map.src.find('?').unwrap_or(0)),
                        "",
                        "a `?` parameter placeholder is written into the template; flapi binds every value itself",
                        Some("use a template site such as `{{ params.name }}` instead".into()),
                    );
                }
                let index = template.texts.len();
                let mut text = sql_text(&sql, input.paginate, input.check_sql);
                text.facts = facts;
                text.binds = binds.len();
                template.texts.push(text);
                text_index.insert(sql, index);
                index
            }
        };
        template.variants.push(Variant {
            key,
            text: index,
            binds,
        });
    }
    template
}

/// Trailing semicolons and surrounding blank space are not part of the
/// statement; a second statement is still caught by the parser.
fn normalise(sql: &str) -> String {
    let mut text = sql.trim();
    while let Some(stripped) = text.strip_suffix(';') {
        text = stripped.trim_end();
    }
    text.to_string()
}

/// `checked`: the text is known to be one SELECT (checked at build time),
/// so it can be wrapped; an unchecked text is run as written.
fn sql_text(sql: &str, paginate: bool, checked: bool) -> SqlText {
    SqlText {
        sql: sql.to_string(),
        paged_sql: paginate
            .then(|| format!("SELECT * FROM (\n{sql}\n) AS flapi_page LIMIT ? OFFSET ?")),
        capped_sql: (!paginate && checked)
            .then(|| format!("SELECT * FROM (\n{sql}\n) AS flapi_rows LIMIT ?")),
        count_sql: paginate.then(|| count_sql(sql)),
        binds: 0,
        facts: None,
    }
}

/// The number of rows `sql` returns, without returning them.
pub fn count_sql(sql: &str) -> String {
    format!("SELECT count(*) AS total_count FROM (\n{sql}\n) AS flapi_page")
}

fn check_read_only(
    sql: &str,
    input: &TemplateInput<'_>,
    diags: &mut Diagnostics,
) -> sqlcheck::Facts {
    match sqlcheck::parse(sql) {
        Ok(statements) => {
            let rules = sqlcheck::Rules {
                allowed_functions: input.allowed_functions,
                masked: input.masked,
            };
            for problem in sqlcheck::read_only_problems(&statements, rules) {
                let offset = problem
                    .token
                    .as_deref()
                    .and_then(|token| locate_word(input.map.src, token))
                    .unwrap_or(0);
                diags.error(
                    &input.map.at(offset),
                    "",
                    problem.message,
                    Some(problem.hint),
                );
            }
            sqlcheck::facts(&statements)
        }
        Err(message) => {
            // A template without tags renders to itself: sqlparser's
            // position is then a position in the file.
            let at = if input.map.src.contains("{{") {
                input.map.at(0)
            } else {
                parse_error_location(&message)
                    .and_then(|(line, column)| offset_of(input.map.src, line, column))
                    .map(|offset| input.map.at(offset))
                    .unwrap_or_else(|| input.map.at(0))
            };
            diags.error(
                &at,
                "",
                format!("the SQL does not parse: {message}"),
                Some(
                    "fix the SQL; if it is valid DuckDB syntax the build's parser cannot read, set `sql-validation: startup` on the endpoint so DuckDB checks it when the server starts"
                        .into(),
                ),
            );
            sqlcheck::Facts::default()
        }
    }
}

/// `Line: L, Column: C` in a sqlparser message.
fn parse_error_location(message: &str) -> Option<(usize, usize)> {
    let rest = &message[message.rfind("Line: ")? + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

/// The byte offset of a 1-based line and (character) column in `src`.
fn offset_of(src: &str, line: usize, column: usize) -> Option<usize> {
    let start: usize = src
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum();
    let text = src.get(start..)?;
    let within = text
        .char_indices()
        .nth(column.checked_sub(1)?)
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    Some(start + within)
}

/// Byte offset of the first whole-word, case-insensitive occurrence of
/// `word` in template source outside string literals and comments, so a
/// problem found in a rendered SQL text points at its line in the file.
pub fn locate_word(src: &str, word: &str) -> Option<usize> {
    let lower = src.to_ascii_lowercase();
    let word = word.to_ascii_lowercase();
    if word.is_empty() {
        return None;
    }
    let bytes = lower.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut from = 0;
    let mut fallback = None;
    while let Some(rel) = lower[from..].find(&word) {
        let at = from + rel;
        let end = at + word.len();
        let before_ok = at == 0 || !is_word(bytes[at - 1]);
        let after_ok = end >= bytes.len() || !is_word(bytes[end]);
        if before_ok && after_ok {
            if !inside_literal_or_comment(src, at) {
                return Some(at);
            }
            fallback.get_or_insert(at);
        }
        from = at + 1;
    }
    fallback
}

fn inside_literal_or_comment(src: &str, offset: usize) -> bool {
    let mut chars = src[..offset].chars().peekable();
    let (mut single, mut double, mut line, mut block) = (false, false, false, false);
    while let Some(c) = chars.next() {
        match c {
            _ if line => line = c != '\n',
            '*' if block && chars.peek() == Some(&'/') => {
                chars.next();
                block = false;
            }
            _ if block => {}
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '-' if !single && !double && chars.peek() == Some(&'-') => line = true,
            '/' if !single && !double && chars.peek() == Some(&'*') => {
                chars.next();
                block = true;
            }
            _ => {}
        }
    }
    single || double || line || block
}

/// Optional fields and booleans decide sections at request time; a
/// required or defaulted non-boolean field is always present.
fn needs_presence_dimension(field: &Field) -> bool {
    field.is_optional() || matches!(field.ty, FieldType::Bool)
}

/// Every combination of dimension values, in a stable order.
fn enumerate(dimensions: &[Dimension], fields: &[Field]) -> Vec<Vec<DimValue>> {
    let mut keys: Vec<Vec<DimValue>> = vec![Vec::new()];
    for dimension in dimensions {
        let values: Vec<DimValue> = match dimension {
            Dimension::Presence { .. } => vec![DimValue::Present(false), DimValue::Present(true)],
            Dimension::Choice { field } => {
                let f = &fields[*field];
                let count = match &f.ty {
                    FieldType::Enum { values } => values.len(),
                    _ => 0,
                };
                let mut v: Vec<DimValue> = (0..count).map(|i| DimValue::Choice(Some(i))).collect();
                if f.is_optional() {
                    v.insert(0, DimValue::Choice(None));
                }
                v
            }
        };
        keys = keys
            .into_iter()
            .flat_map(|key| {
                values.iter().map(move |value| {
                    let mut next = key.clone();
                    next.push(value.clone());
                    next
                })
            })
            .collect();
        if keys.len() > MAX_VARIANTS * 4 {
            break;
        }
    }
    keys
}

impl Compiler<'_> {
    fn resolve_names(&mut self, parts: &[Part], diags: &mut Diagnostics) {
        for part in parts {
            match part {
                Part::Text(_) => {}
                Part::Var { name, offset } => {
                    let target = self
                        .resolve(name, *offset, diags)
                        .unwrap_or(Target::Unresolved);
                    self.targets.insert(*offset, target);
                }
                Part::Section {
                    name,
                    offset,
                    children,
                    ..
                } => {
                    let condition = match self.resolve(name, *offset, diags) {
                        Some(Target::Field(f)) => Condition::Field(f),
                        Some(Target::Conn(value)) => Condition::Static(!value.is_empty()),
                        Some(Target::Bound(_)) => {
                            diags.error(
                                &self.input.map.at(*offset),
                                "",
                                format!(
                                    "sections on environment and caller values (`{name}`) are not supported"
                                ),
                                Some(format!("use the value as a bound site, `{{{{ {name} }}}}`")),
                            );
                            Condition::Static(false)
                        }
                        Some(Target::Unresolved) | None => Condition::Static(false),
                    };
                    self.conditions.insert(*offset, condition);
                    self.resolve_names(children, diags);
                }
            }
        }
    }

    fn resolve(&self, name: &str, offset: usize, diags: &mut Diagnostics) -> Option<Target> {
        let at = self.input.map.at(offset);
        let (namespace, rest) = name.split_once('.').unwrap_or(("", name));
        match namespace {
            "params" => {
                let found = self.input.fields.iter().position(|f| f.name == rest);
                if found.is_none() {
                    let hint =
                        did_you_mean(rest, self.input.fields.iter().map(|f| f.name.as_str()))
                            .map(|h| format!("{h} or declare `{rest}` under `request`"))
                            .unwrap_or_else(|| {
                                format!("declare a request field with `field-name: {rest}`")
                            });
                    diags.error(
                        &at,
                        "",
                        format!("template variable `{name}` has no matching request field"),
                        Some(hint),
                    );
                }
                found.map(Target::Field)
            }
            "conn" => {
                let Some(connection) = self.input.connection else {
                    diags.error(
                        &at,
                        "",
                        format!("`{name}` refers to a connection property, but the endpoint names no `connection`"),
                        Some("add `connection: [name]` to the endpoint".into()),
                    );
                    return None;
                };
                let found = self.input.conn_properties.iter().find(|(k, _)| k == rest);
                if found.is_none() {
                    diags.error(
                        &at,
                        "",
                        format!("connection `{connection}` has no property `{rest}`"),
                        did_you_mean(
                            rest,
                            self.input.conn_properties.iter().map(|(k, _)| k.as_str()),
                        ),
                    );
                }
                found.map(|(_, v)| Target::Conn(v.clone()))
            }
            "env" => {
                if self.input.env_whitelist.iter().any(|re| re.is_match(rest)) {
                    Some(Target::Bound(BindSource::Env(rest.to_string())))
                } else {
                    diags.error(
                        &at,
                        "",
                        format!("environment variable `{rest}` is not in `template.environment-whitelist`"),
                        Some("add a pattern that matches it to the whitelist in flapi.yaml".into()),
                    );
                    None
                }
            }
            "auth" => self.resolve_auth(name, rest, &at, diags),
            "context" => {
                diags.error(
                    &at,
                    "",
                    format!("`{name}`: the `context` namespace is not supported by flapi"),
                    Some("the verified caller is `auth.sub`, `auth.email`, `auth.roles` and `auth.claims.<name>`".into()),
                );
                None
            }
            _ => {
                diags.error(
                    &at,
                    "",
                    format!("unknown template variable `{name}`"),
                    Some("template variables are `params.<field>`, `conn.<property>`, `env.<NAME>` or `auth.<key>`".into()),
                );
                None
            }
        }
    }

    fn resolve_auth(
        &self,
        name: &str,
        key: &str,
        at: &crate::diag::Location,
        diags: &mut Diagnostics,
    ) -> Option<Target> {
        let Some(claims) = self.input.auth_claims else {
            diags.error(
                at,
                "",
                format!(
                    "`{name}` reads the verified caller, but the project has no authentication"
                ),
                Some("configure `auth` in flapi.yaml (users in roles.yaml, or JWT)".into()),
            );
            return None;
        };
        let auth_key = match key {
            "sub" | "username" => AuthKey::Subject,
            "email" => AuthKey::Email,
            "roles" => AuthKey::Roles,
            "type" => AuthKey::Kind,
            _ => match key.strip_prefix("claims.") {
                Some(claim) if claims.iter().any(|c| c == claim) => {
                    AuthKey::Claim(claim.to_string())
                }
                Some(claim) => {
                    diags.error(
                        at,
                        "",
                        format!("claim `{claim}` is not in `auth.jwt.context-claims`"),
                        did_you_mean(claim, claims.iter().map(String::as_str)).or_else(|| {
                            Some(format!(
                                "list `{claim}` under `auth.jwt.context-claims` in flapi.yaml"
                            ))
                        }),
                    );
                    return None;
                }
                None => {
                    diags.error(
                        at,
                        "",
                        format!("unknown caller value `{name}`"),
                        did_you_mean(key, ["sub", "username", "email", "roles", "type"]).or_else(|| {
                            Some("use `auth.sub`, `auth.email`, `auth.roles`, `auth.type` or `auth.claims.<name>`".into())
                        }),
                    );
                    return None;
                }
            },
        };
        Some(Target::Bound(BindSource::Auth(auth_key)))
    }

    fn truthy(&self, condition: Condition, dimensions: &[Dimension], key: &[DimValue]) -> bool {
        let field = match condition {
            Condition::Static(value) => return value,
            Condition::Field(field) => field,
        };
        for (dimension, value) in dimensions.iter().zip(key) {
            match (dimension, value) {
                (Dimension::Presence { field: f }, DimValue::Present(p)) if *f == field => {
                    return *p;
                }
                (Dimension::Choice { field: f }, DimValue::Choice(c)) if *f == field => {
                    return c.is_some();
                }
                _ => {}
            }
        }
        // Not a dimension: a required or defaulted field, always present.
        true
    }

    fn flatten(&self, dimensions: &[Dimension], key: &[DimValue]) -> Vec<Tok> {
        let mut out = Vec::new();
        self.flatten_into(self.input.parts, dimensions, key, &mut out);
        out
    }

    fn flatten_into(
        &self,
        parts: &[Part],
        dimensions: &[Dimension],
        key: &[DimValue],
        out: &mut Vec<Tok>,
    ) {
        for part in parts {
            match part {
                Part::Text(text) => out.extend(text.chars().map(Tok::Ch)),
                Part::Var { offset, .. } => {
                    if let Some(target) = self.targets.get(offset) {
                        out.push(Tok::Site(target.clone(), *offset));
                    }
                }
                Part::Section {
                    inverted,
                    offset,
                    children,
                    ..
                } => {
                    let condition = self
                        .conditions
                        .get(offset)
                        .copied()
                        .unwrap_or(Condition::Static(false));
                    if self.truthy(condition, dimensions, key) != *inverted {
                        self.flatten_into(children, dimensions, key, out);
                    }
                }
            }
        }
    }

    /// Tracks SQL quoting so each site knows its context.
    fn lex(&self, toks: &[Tok], diags: &mut Diagnostics) -> Vec<Seg> {
        #[derive(PartialEq)]
        enum State {
            Normal,
            Single,
            Double,
            LineComment,
            BlockComment,
        }
        enum Lit {
            Text(String),
            Bind(BindSource),
            Field(usize, usize),
        }
        fn lit_seg(lit: Lit) -> Option<Seg> {
            match lit {
                Lit::Text(_) => None,
                Lit::Bind(b) => Some(Seg::Bind(b)),
                Lit::Field(field, offset) => Some(Seg::FieldInLiteral { field, offset }),
            }
        }
        let mut out: Vec<Seg> = Vec::new();
        fn push_sql(out: &mut Vec<Seg>, text: &str) {
            if let Some(Seg::Sql(last)) = out.last_mut() {
                last.push_str(text);
            } else {
                out.push(Seg::Sql(text.to_string()));
            }
        }
        let mut state = State::Normal;
        let mut literal: Vec<Lit> = Vec::new();
        let mut current = String::new();
        let mut i = 0;
        while i < toks.len() {
            let next_ch = match toks.get(i + 1) {
                Some(Tok::Ch(c)) => Some(*c),
                _ => None,
            };
            match (&state, &toks[i]) {
                (State::Normal, Tok::Ch('\'')) => {
                    state = State::Single;
                    literal.clear();
                    current.clear();
                }
                (State::Normal, Tok::Ch('"')) => {
                    push_sql(&mut out, "\"");
                    state = State::Double;
                }
                (State::Normal, Tok::Ch('-')) if next_ch == Some('-') => {
                    push_sql(&mut out, "--");
                    i += 1;
                    state = State::LineComment;
                }
                (State::Normal, Tok::Ch('/')) if next_ch == Some('*') => {
                    push_sql(&mut out, "/*");
                    i += 1;
                    state = State::BlockComment;
                }
                (State::Normal, Tok::Ch(c)) => push_sql(&mut out, c.encode_utf8(&mut [0; 4])),
                (State::Normal, Tok::Site(target, offset)) => match target {
                    Target::Field(field) => out.push(Seg::Unquoted {
                        field: *field,
                        offset: *offset,
                    }),
                    Target::Bound(source) => out.push(Seg::Bind(source.clone())),
                    Target::Unresolved => out.push(Seg::Bind(BindSource::Env(String::new()))),
                    Target::Conn(value) => {
                        push_sql(&mut out, &format!("'{}'", value.replace('\'', "''")))
                    }
                },
                (State::Single, Tok::Ch('\'')) if next_ch == Some('\'') => {
                    current.push_str("''");
                    i += 1;
                }
                (State::Single, Tok::Ch('\'')) => {
                    literal.push(Lit::Text(std::mem::take(&mut current)));
                    let parts: Vec<Lit> = std::mem::take(&mut literal)
                        .into_iter()
                        .filter(|p| !matches!(p, Lit::Text(t) if t.is_empty()))
                        .collect();
                    let binds = parts.iter().filter(|p| !matches!(p, Lit::Text(_))).count();
                    if binds == 0 {
                        let text: String = parts
                            .iter()
                            .map(|p| match p {
                                Lit::Text(t) => t.as_str(),
                                Lit::Bind(_) | Lit::Field(..) => "",
                            })
                            .collect();
                        push_sql(&mut out, &format!("'{text}'"));
                    } else if parts.len() == 1 {
                        // `'{{ params.d }}'` is exactly the value: `?`.
                        if let Some(seg) = parts.into_iter().next().and_then(lit_seg) {
                            out.push(seg);
                        }
                    } else {
                        // `'%{{ params.q }}%'` becomes `('%' || ? || '%')`.
                        push_sql(&mut out, "(");
                        for (n, part) in parts.into_iter().enumerate() {
                            if n > 0 {
                                push_sql(&mut out, " || ");
                            }
                            match part {
                                Lit::Text(t) => push_sql(&mut out, &format!("'{t}'")),
                                other => out.extend(lit_seg(other)),
                            }
                        }
                        push_sql(&mut out, ")");
                    }
                    state = State::Normal;
                }
                (State::Single, Tok::Ch(c)) => current.push(*c),
                (State::Single, Tok::Site(target, offset)) => match target {
                    Target::Field(field) => {
                        literal.push(Lit::Text(std::mem::take(&mut current)));
                        literal.push(Lit::Field(*field, *offset));
                    }
                    Target::Bound(source) => {
                        literal.push(Lit::Text(std::mem::take(&mut current)));
                        literal.push(Lit::Bind(source.clone()));
                    }
                    Target::Unresolved => {
                        literal.push(Lit::Text(std::mem::take(&mut current)));
                        literal.push(Lit::Bind(BindSource::Env(String::new())));
                    }
                    Target::Conn(value) => current.push_str(&value.replace('\'', "''")),
                },
                (State::Double, Tok::Ch('"')) if next_ch == Some('"') => {
                    push_sql(&mut out, "\"\"");
                    i += 1;
                }
                (State::Double, Tok::Ch('"')) => {
                    push_sql(&mut out, "\"");
                    state = State::Normal;
                }
                (State::Double, Tok::Ch(c)) => push_sql(&mut out, c.encode_utf8(&mut [0; 4])),
                (State::Double, Tok::Site(target, offset)) => match target {
                    Target::Field(field) => out.push(Seg::QuotedIdent {
                        field: *field,
                        offset: *offset,
                    }),
                    Target::Conn(value) => push_sql(&mut out, &value.replace('"', "\"\"")),
                    Target::Unresolved => {}
                    Target::Bound(_) => diags.error(
                        &self.input.map.at(*offset),
                        "",
                        "an environment or caller value cannot name an identifier",
                        Some("bind it as a value outside double quotes".into()),
                    ),
                },
                (State::LineComment | State::BlockComment, Tok::Site(_, offset)) => diags.error(
                    &self.input.map.at(*offset),
                    "",
                    "template site inside an SQL comment",
                    Some(
                        "remove the site or the comment; a bound value cannot sit in a comment"
                            .into(),
                    ),
                ),
                (State::LineComment, Tok::Ch('\n')) => {
                    push_sql(&mut out, "\n");
                    state = State::Normal;
                }
                (State::BlockComment, Tok::Ch('*')) if next_ch == Some('/') => {
                    push_sql(&mut out, "*/");
                    i += 1;
                    state = State::Normal;
                }
                (State::LineComment | State::BlockComment, Tok::Ch(c)) => {
                    push_sql(&mut out, c.encode_utf8(&mut [0; 4]))
                }
            }
            i += 1;
        }
        match state {
            State::Single => diags.error(
                &self.input.map.at(0),
                "",
                "a single-quoted SQL string is never closed",
                Some("close the string with `'`".into()),
            ),
            State::Double => diags.error(
                &self.input.map.at(0),
                "",
                "a double-quoted SQL identifier is never closed",
                Some("close the identifier with `\"`".into()),
            ),
            _ => {}
        }
        out
    }

    /// Decides, for each unquoted field site, whether SQL sees a value or an
    /// identifier/keyword there. `None` for segments that are not sites.
    fn classify(&self, segs: &[Seg], diags: &mut Diagnostics) -> Vec<Option<Role>> {
        let unquoted: Vec<usize> = segs
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Seg::Unquoted { .. }))
            .map(|(i, _)| i)
            .collect();
        let mut roles: Vec<Option<Role>> = vec![None; segs.len()];
        let is_enum = |i: usize| match &segs[i] {
            Seg::Unquoted { field, .. } => {
                matches!(self.input.fields[*field].ty, FieldType::Enum { .. })
            }
            _ => false,
        };
        if !self.input.check_sql {
            // Without the parser: unquoted enum sites are identifiers.
            for &i in &unquoted {
                roles[i] = Some(if is_enum(i) {
                    Role::Identifier
                } else {
                    Role::Value
                });
            }
            return roles;
        }
        let probe = |as_identifier: &dyn Fn(usize) -> bool| -> String {
            let mut text = String::new();
            for (i, seg) in segs.iter().enumerate() {
                match seg {
                    Seg::Sql(s) => text.push_str(s),
                    Seg::Bind(_) => text.push('?'),
                    Seg::FieldInLiteral { .. } => text.push_str(&format!(" ${} ", 1001 + i)),
                    Seg::Unquoted { .. } if as_identifier(i) => text.push_str("flapi_site"),
                    Seg::Unquoted { .. } => text.push_str(&format!(" ${} ", 1001 + i)),
                    Seg::QuotedIdent { .. } => text.push_str("flapi_site"),
                }
            }
            text
        };
        match sqlcheck::parse(&probe(&|_| false)) {
            Ok(statements) => {
                let positions = sqlcheck::placeholder_positions(&statements);
                for (i, seg) in segs.iter().enumerate() {
                    let (Seg::Unquoted { field, offset } | Seg::FieldInLiteral { field, offset }) =
                        seg
                    else {
                        continue;
                    };
                    let name = format!("${}", 1001 + i);
                    if let Some(function) = positions.name_args.get(&name)
                        && !matches!(self.input.fields[*field].ty, FieldType::Enum { .. })
                    {
                        let field_name = &self.input.fields[*field].name;
                        diags.error(
                            &self.input.map.at(*offset),
                            "",
                            format!("`params.{field_name}` is an argument of `{function}` that names a column, field, path, variable, setting, file or SQL text, so the caller would choose what is read"),
                            Some(format!("give `{field_name}` an enum validator (`type: enum` with `allowedValues`) listing the names it may choose")),
                        );
                    }
                }
                for &i in &unquoted {
                    let name = format!("${}", 1001 + i);
                    roles[i] = Some(if positions.identifier_like.contains(&name) {
                        Role::Identifier
                    } else {
                        Role::Value
                    });
                }
            }
            Err(_) => {
                let mut found = false;
                for &i in &unquoted {
                    let single = sqlcheck::parse(&probe(&|j| j == i)).is_ok();
                    roles[i] = Some(if single {
                        Role::Identifier
                    } else {
                        Role::Value
                    });
                    found |= single;
                }
                if !found && !unquoted.is_empty() && sqlcheck::parse(&probe(&|_| true)).is_ok() {
                    for &i in &unquoted {
                        roles[i] = Some(Role::Identifier);
                    }
                }
                // A remaining syntax error is reported by `check_read_only`.
            }
        }
        for &i in &unquoted {
            if roles[i] == Some(Role::Identifier)
                && !is_enum(i)
                && let Seg::Unquoted { field, offset } = &segs[i]
            {
                let name = &self.input.fields[*field].name;
                diags.error(
                        &self.input.map.at(*offset),
                        "",
                        format!("`params.{name}` sits in an identifier or keyword position, where a value cannot be bound"),
                        Some(format!("give `{name}` an enum validator (`type: enum` with `allowedValues`) so each allowed value maps to a fixed identifier")),
                    );
            }
        }
        roles
    }

    /// The final SQL text (with `?`) and bind list for one variant.
    fn render(
        &self,
        segs: &[Seg],
        roles: &[Option<Role>],
        dimensions: &[Dimension],
        key: &[DimValue],
        diags: &mut Diagnostics,
    ) -> Option<(String, Vec<BindSource>)> {
        let mut sql = String::new();
        let mut binds = Vec::new();
        let mut ok = true;
        for (seg, role) in segs.iter().zip(roles) {
            match seg {
                Seg::Sql(s) => sql.push_str(s),
                Seg::Bind(b) => {
                    sql.push('?');
                    binds.push(b.clone());
                }
                Seg::FieldInLiteral { field, .. } => {
                    sql.push('?');
                    binds.push(BindSource::Field(*field));
                }
                Seg::Unquoted { field, .. } if *role != Some(Role::Identifier) => {
                    sql.push('?');
                    binds.push(BindSource::Field(*field));
                }
                Seg::Unquoted { field, offset } | Seg::QuotedIdent { field, offset } => {
                    let quoted = matches!(seg, Seg::QuotedIdent { .. });
                    match self.choice_text(*field, *offset, quoted, dimensions, key, diags) {
                        Some(text) => sql.push_str(&text),
                        None => ok = false,
                    }
                }
            }
        }
        ok.then_some((sql, binds))
    }

    fn choice_text(
        &self,
        field: usize,
        offset: usize,
        quoted: bool,
        dimensions: &[Dimension],
        key: &[DimValue],
        diags: &mut Diagnostics,
    ) -> Option<String> {
        let f = &self.input.fields[field];
        let at = self.input.map.at(offset);
        // A non-enum unquoted identifier site was reported by `classify`.
        let FieldType::Enum { values } = &f.ty else {
            if quoted {
                diags.error(
                    &at,
                    "",
                    format!("`params.{}` sits inside a double-quoted identifier, where a value cannot be bound", f.name),
                    Some(format!("give `{}` an enum validator (`type: enum` with `allowedValues`) so each allowed value maps to a fixed identifier", f.name)),
                );
            }
            return None;
        };
        let chosen = dimensions.iter().zip(key).find_map(|(d, v)| match (d, v) {
            (Dimension::Choice { field: x }, DimValue::Choice(c)) if *x == field => Some(*c),
            _ => None,
        })?;
        let Some(index) = chosen else {
            diags.error(
                &at,
                "",
                format!("enum field `{}` names an identifier here but may be absent", f.name),
                Some(format!("make `{}` required, give it a `default`, or wrap the site in `{{{{#params.{}}}}}…{{{{/params.{}}}}}`", f.name, f.name, f.name)),
            );
            return None;
        };
        let value = &values[index];
        if !is_safe_identifier(value) || (quoted && value.contains('"')) {
            diags.error(
                &at,
                "",
                format!("enum value `{value}` of `{}` is used as an SQL identifier but is not a plain identifier", f.name),
                Some("allowed values used as identifiers must match [A-Za-z_][A-Za-z0-9_]* (dots between parts allowed)".into()),
            );
            return None;
        }
        Some(value.clone())
    }
}

/// Identifiers an enum value may stand for: plain and optionally dotted.
pub fn is_safe_identifier(value: &str) -> bool {
    !value.is_empty()
        && value.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}
