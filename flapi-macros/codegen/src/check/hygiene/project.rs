//! The project side of the scan: which strings are model-visible, where
//! each is written, and the `hygiene-allow` entries that keep a finding.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::{Context, RULES, Rule, TextKind, rule, scan};
use crate::check::secrets::position_in;
use crate::diag::{Diagnostics, Location, did_you_mean};
use crate::load::yaml::Sp;
use crate::load::{RawAllow, RawEndpoint, RawProject};

/// One model-visible string of the project, where it is written.
struct Text<'a> {
    file: &'a Path,
    key: String,
    value: Cow<'a, str>,
    /// Where the value starts (a YAML scalar, or a whole file).
    loc: Location,
    in_yaml: bool,
    kind: TextKind,
    /// The tool the string describes. Only a tool's own texts are checked
    /// for the names of the project's other tools: server instructions,
    /// prompts and resources exist to say how this server's tools fit
    /// together, while a tool that talks about another tool shadows it.
    own_tool: Option<&'a str>,
}

impl Text<'_> {
    fn position(&self, offset: usize) -> Location {
        if self.in_yaml {
            position_in(&self.loc, &self.value, offset)
        } else {
            let chars = self.value[..offset.min(self.value.len())].chars().count();
            self.loc.advanced_by(&self.value, chars)
        }
    }
}

fn yaml_text<'a>(
    file: &'a Path,
    key: String,
    sp: &'a Sp<String>,
    kind: TextKind,
    own_tool: Option<&'a str>,
) -> Text<'a> {
    Text {
        file,
        key,
        value: Cow::Borrowed(&sp.value),
        loc: sp.loc.clone(),
        in_yaml: true,
        kind,
        own_tool,
    }
}

/// Every string a model reads, with its file and key path.
fn model_visible<'a>(
    dir: &Path,
    raw: &'a RawProject,
    endpoints: &'a [RawEndpoint],
    instructions_file: Option<&'a (PathBuf, String)>,
    files_read: &mut Vec<PathBuf>,
) -> Vec<Text<'a>> {
    let mut texts = Vec::new();
    let project = raw.file.as_path();
    let mut push = |file: &'a Path, key: String, sp: &'a Sp<String>, kind, own| {
        texts.push(yaml_text(file, key, sp, kind, own));
    };
    if let Some(sp) = &raw.project_name {
        push(project, "project-name".into(), sp, TextKind::Name, None);
    }
    if let Some(sp) = &raw.project_description {
        push(
            project,
            "project-description".into(),
            sp,
            TextKind::Description,
            None,
        );
    }
    if let Some(sp) = &raw.mcp.instructions {
        push(
            project,
            "mcp.instructions".into(),
            sp,
            TextKind::Instructions,
            None,
        );
    }
    for endpoint in endpoints {
        let file = endpoint.file.as_path();
        if let Some(tool) = &endpoint.mcp_tool {
            let own = tool.name.as_ref().map(|n| n.value.as_str());
            if let Some(sp) = &tool.name {
                push(file, "mcp-tool.name".into(), sp, TextKind::Name, own);
            }
            if let Some(sp) = &tool.title {
                push(file, "mcp-tool.title".into(), sp, TextKind::Title, own);
            }
            if let Some(sp) = &tool.description {
                push(
                    file,
                    "mcp-tool.description".into(),
                    sp,
                    TextKind::Description,
                    own,
                );
            }
            // Request fields are the tool's parameters: each becomes a JSON
            // Schema property with its name, default, pattern and enum.
            for field in &endpoint.request {
                let at = |key: &str| format!("{}.{key}", field.path);
                if let Some(sp) = &field.field_name {
                    push(file, at("field-name"), sp, TextKind::Name, own);
                }
                if let Some(sp) = &field.description {
                    push(
                        file,
                        at("description"),
                        sp,
                        TextKind::ParameterDescription,
                        own,
                    );
                }
                if let Some(sp) = &field.default {
                    push(file, at("default"), sp, TextKind::Value, own);
                }
                for validator in &field.validators {
                    if let Some(sp) = &validator.regex {
                        push(
                            file,
                            format!("{}.regex", validator.path),
                            sp,
                            TextKind::Pattern,
                            own,
                        );
                    }
                    for (i, sp) in validator.allowed_values.iter().enumerate() {
                        let key = format!("{}.allowedValues[{i}]", validator.path);
                        push(file, key, sp, TextKind::Value, own);
                    }
                }
            }
        }
        if let Some(resource) = &endpoint.mcp_resource {
            if let Some(sp) = &resource.name {
                push(file, "mcp-resource.name".into(), sp, TextKind::Name, None);
            }
            if let Some(sp) = &resource.mime_type {
                push(
                    file,
                    "mcp-resource.mime-type".into(),
                    sp,
                    TextKind::Value,
                    None,
                );
            }
            if let Some(sp) = &resource.description {
                push(
                    file,
                    "mcp-resource.description".into(),
                    sp,
                    TextKind::Description,
                    None,
                );
            }
        }
        if let Some(prompt) = &endpoint.mcp_prompt {
            if let Some(sp) = &prompt.name {
                push(file, "mcp-prompt.name".into(), sp, TextKind::Name, None);
            }
            if let Some(sp) = &prompt.description {
                push(
                    file,
                    "mcp-prompt.description".into(),
                    sp,
                    TextKind::Description,
                    None,
                );
            }
            if let Some(sp) = &prompt.template {
                push(
                    file,
                    "mcp-prompt.template".into(),
                    sp,
                    TextKind::PromptTemplate,
                    None,
                );
            }
            for arg in &prompt.arguments {
                push(
                    file,
                    format!("{}.name", arg.path),
                    &arg.name,
                    TextKind::Name,
                    None,
                );
                if let Some(sp) = &arg.description {
                    let key = format!("{}.description", arg.path);
                    push(file, key, sp, TextKind::ParameterDescription, None);
                }
                for (i, sp) in arg.allowed_values.iter().enumerate() {
                    let key = format!("{}.allowedValues[{i}]", arg.path);
                    push(file, key, sp, TextKind::Value, None);
                }
            }
        }
    }
    if let Some((path, text)) = instructions_file {
        texts.push(Text {
            file: project,
            key: "mcp.instructions-file".into(),
            value: Cow::Borrowed(text),
            loc: Location::file_start(path),
            in_yaml: false,
            kind: TextKind::Instructions,
            own_tool: None,
        });
    }
    for endpoint in endpoints {
        texts.extend(output_columns(dir, endpoint, files_read));
    }
    texts
}

/// The output column names of a tool's or resource's SQL, which a client
/// shows the model with every row. Each is reported in the SQL file, under
/// the endpoint's `template-source` key.
fn output_columns<'a>(
    dir: &Path,
    endpoint: &'a RawEndpoint,
    files_read: &mut Vec<PathBuf>,
) -> Vec<Text<'a>> {
    let own = endpoint
        .mcp_tool
        .as_ref()
        .and_then(|t| t.name.as_ref())
        .map(|n| n.value.as_str());
    let (true, Some(source)) = (
        endpoint.mcp_tool.is_some() || endpoint.mcp_resource.is_some(),
        &endpoint.template_source,
    ) else {
        return Vec::new();
    };
    let base = endpoint.file.parent().unwrap_or(dir);
    // Outside the project, missing or unreadable: reported by resolve.
    let Some(path) = crate::load::paths::inside(
        dir,
        base,
        source,
        "template-source",
        &mut Diagnostics::new(),
    ) else {
        return Vec::new();
    };
    let Ok(sql) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    files_read.push(path.clone());
    let start = Location::file_start(&path);
    super::names::output_names(&sql)
        .into_iter()
        .map(|(offset, name)| Text {
            file: endpoint.file.as_path(),
            key: "template-source".into(),
            loc: start.advanced_by(&sql, sql[..offset].chars().count()),
            value: Cow::Owned(name),
            in_yaml: false,
            kind: TextKind::Name,
            own_tool: own,
        })
        .collect()
}

/// A checked `hygiene-allow` entry.
struct Allowance<'a> {
    raw: &'a RawAllow,
    file: &'a Path,
    key: &'a str,
    rule: &'static Rule,
    reason: &'a str,
    used: bool,
}

const MIN_REASON: usize = 12;

fn allowances<'a>(
    file: &'a Path,
    entries: &'a [RawAllow],
    diags: &mut Diagnostics,
) -> Vec<Allowance<'a>> {
    let mut out = Vec::new();
    for entry in entries {
        let (Some(key), Some(rule_id)) = (&entry.key, &entry.rule) else {
            diags.error(
                &entry.loc,
                entry.path.as_str(),
                "a `hygiene-allow` entry needs `key`, `rule` and `reason`",
                Some("write `{key: mcp-tool.description, rule: tool-reference, reason: \"why this is safe\"}`".into()),
            );
            continue;
        };
        let Some(rule) = rule(&rule_id.value) else {
            let help = did_you_mean(&rule_id.value, RULES.iter().map(|r| r.id)).or_else(|| {
                Some(format!(
                    "rules: {}",
                    RULES.iter().map(|r| r.id).collect::<Vec<_>>().join(", ")
                ))
            });
            diags.error(
                &rule_id.loc,
                format!("{}.rule", entry.path),
                format!("`{}` is not a hygiene rule", rule_id.value),
                help,
            );
            continue;
        };
        let reason = entry.reason.as_ref().map(|r| r.value.trim()).unwrap_or("");
        if reason.chars().filter(|c| !c.is_whitespace()).count() < MIN_REASON {
            diags.error(
                entry.reason.as_ref().map(|r| &r.loc).unwrap_or(&entry.loc),
                format!("{}.reason", entry.path),
                "an allowed finding needs a written reason",
                Some("say in a sentence why this string is safe for a model to read".into()),
            );
            continue;
        }
        out.push(Allowance {
            raw: entry,
            file,
            key: &key.value,
            rule,
            reason,
            used: false,
        });
    }
    out
}

/// Scans every model-visible string of the project. Findings are errors
/// unless a `hygiene-allow` entry of the same file names the string's key
/// and the rule; each such entry is printed as a note, so the build shows
/// what it lets through.
pub fn scan_project(
    dir: &Path,
    raw: &RawProject,
    endpoints: &[RawEndpoint],
    files_read: &mut Vec<PathBuf>,
    diags: &mut Diagnostics,
) {
    let instructions_file = raw.mcp.instructions_file.as_ref().and_then(|f| {
        // Refused (and reported) by the settings when outside the project.
        let path = crate::load::paths::inside(
            dir,
            dir,
            f,
            "mcp.instructions-file",
            &mut Diagnostics::new(),
        )?;
        let text = std::fs::read_to_string(&path).ok()?;
        files_read.push(path.clone());
        Some((path, text))
    });
    for host in &raw.url_hosts {
        if host.value.is_empty() || host.value.contains(['/', ':', ' ', '*', '@']) {
            diags.error(
                &host.loc,
                "hygiene.url-hosts",
                format!("`{}` is not a host name", host.value),
                Some("write the host alone, such as `docs.example.com`; its subdomains are allowed too".into()),
            );
        }
    }
    let url_hosts: Vec<String> = raw.url_hosts.iter().map(|h| h.value.clone()).collect();
    let tool_names: Vec<String> = endpoints
        .iter()
        .filter_map(|e| e.mcp_tool.as_ref()?.name.as_ref().map(|n| n.value.clone()))
        .collect();
    let mut allowed = allowances(&raw.file, &raw.hygiene_allow, diags);
    for endpoint in endpoints {
        allowed.extend(allowances(&endpoint.file, &endpoint.hygiene_allow, diags));
    }
    let texts = model_visible(dir, raw, endpoints, instructions_file.as_ref(), files_read);
    for text in &texts {
        let cx = Context {
            kind: text.kind,
            own_tool: text.own_tool,
            tool_names: if text.own_tool.is_some() {
                &tool_names
            } else {
                &[]
            },
            url_hosts: &url_hosts,
        };
        for finding in scan(&text.value, &cx) {
            let at = text.position(finding.offset);
            let message = format!(
                "{}: {} (rule `{}`)",
                finding.rule.message, finding.detail, finding.rule.id
            );
            let allowance = allowed
                .iter_mut()
                .find(|a| a.file == text.file && a.key == text.key && a.rule == finding.rule);
            match allowance {
                Some(a) => {
                    a.used = true;
                    diags.note(&at, text.key.as_str(), format!("allowed by `hygiene-allow`: {message}"), Some(format!("reason given: {}", a.reason)));
                }
                None => diags.error(
                    &at,
                    text.key.as_str(),
                    message,
                    Some(format!(
                        "{}; if it is safe, keep it with `hygiene-allow: [{{key: {}, rule: {}, reason: \"…\"}}]` in this file",
                        finding.rule.help, text.key, finding.rule.id
                    )),
                ),
            }
        }
    }
    for a in allowed.iter().filter(|a| !a.used) {
        let exists = texts.iter().any(|t| t.file == a.file && t.key == a.key);
        let key_loc = a.raw.key.as_ref().map(|k| &k.loc).unwrap_or(&a.raw.loc);
        if exists {
            diags.warning(
                key_loc,
                format!("{}.key", a.raw.path),
                format!("`{}` has no `{}` finding to allow", a.key, a.rule.id),
                Some("remove the stale entry, so it cannot hide a later change".into()),
            );
        } else {
            let candidates: Vec<&str> = texts
                .iter()
                .filter(|t| t.file == a.file)
                .map(|t| t.key.as_str())
                .collect();
            diags.error(
                key_loc,
                format!("{}.key", a.raw.path),
                format!("`{}` is not a model-visible string of this file", a.key),
                did_you_mean(a.key, candidates.iter().copied())
                    .or_else(|| Some(format!("keys here: {}", candidates.join(", ")))),
            );
        }
    }
}
