//! The Mustache subset flAPI users write in SQL templates, parsed into a
//! tree: `{{ x }}`, `{{{ x }}}`, `{{& x}}`, `{{#x}}…{{/x}}`, `{{^x}}…{{/x}}`
//! and `{{! comment }}`, plus the Handlebars helpers flAPI templates use:
//! `{{#if x}}…{{else}}…{{/if}}` and `{{#unless x}}…{{/unless}}`, which are
//! the same sections by another name. Partials, delimiter changes, other
//! helpers and sub-expressions are build errors.

use crate::diag::{Diagnostics, Location};

/// Positions are byte offsets into the template source.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    Var {
        name: String,
        offset: usize,
    },
    Section {
        name: String,
        inverted: bool,
        offset: usize,
        children: Vec<Part>,
    },
}

/// Converts byte offsets in a template to file positions.
pub struct SourceMap<'a> {
    pub start: Location,
    pub src: &'a str,
}

impl SourceMap<'_> {
    pub fn at(&self, byte_offset: usize) -> Location {
        let prefix = &self.src[..byte_offset.min(self.src.len())];
        self.start.advanced_by(prefix, prefix.chars().count())
    }
}

pub fn parse(map: &SourceMap<'_>, diags: &mut Diagnostics) -> Vec<Part> {
    let src = map.src;
    // Stack of open sections: (name, inverted, offset, children so far),
    // and beside it the helper that opened each (`if`, `unless`) if any.
    let mut stack: Vec<(String, bool, usize, Vec<Part>)> = Vec::new();
    let mut helpers: Vec<Option<&'static str>> = Vec::new();
    let mut current: Vec<Part> = Vec::new();
    let mut pos = 0;
    // End of the previous tag: a line holding two tags is not standalone.
    let mut previous_end = 0;
    while let Some(rel) = src[pos..].find("{{") {
        let open = pos + rel;
        if open > pos {
            current.push(Part::Text(src[pos..open].to_string()));
        }
        let triple = src[open..].starts_with("{{{");
        let (inner_start, close_tok) = if triple {
            (open + 3, "}}}")
        } else {
            (open + 2, "}}")
        };
        let Some(close_rel) = src[inner_start..].find(close_tok) else {
            diags.error(
                &map.at(open),
                "",
                "template tag is never closed",
                Some(format!("close it with `{close_tok}`")),
            );
            return finish_unclosed(current, stack, map, diags);
        };
        let inner = src[inner_start..inner_start + close_rel].trim();
        pos = inner_start + close_rel + close_tok.len();
        let (sigil, name) = match inner.chars().next() {
            Some(c @ ('#' | '^' | '/' | '!' | '&' | '>' | '=')) if !triple => {
                (Some(c), inner[1..].trim())
            }
            _ => (None, inner),
        };
        // Mustache's standalone rule: a section or comment tag alone on its
        // line removes the whole line, so templates leave no blank lines.
        let is_else = sigil.is_none() && name == "else";
        if matches!(sigil, Some('#' | '^' | '/' | '!')) || is_else {
            let line_start = src[..open].rfind('\n').map(|i| i + 1).unwrap_or(0);
            let line_end = src[pos..]
                .find('\n')
                .map(|i| pos + i + 1)
                .unwrap_or(src.len());
            let before_blank = src[line_start..open].chars().all(|c| c == ' ' || c == '\t');
            let after_blank = src[pos..line_end].trim().is_empty();
            if before_blank && after_blank && line_start >= previous_end {
                if let Some(Part::Text(text)) = current.last_mut() {
                    text.truncate(text.len() - (open - line_start));
                    if text.is_empty() {
                        current.pop();
                    }
                }
                pos = line_end;
            }
        }
        previous_end = pos;
        // Handlebars helpers, read as the sections they are.
        let (sigil, name, helper) = match (sigil, name.split_once(char::is_whitespace)) {
            (Some('#'), Some(("if", rest))) => (Some('#'), rest.trim(), Some("if")),
            (Some('#'), Some(("unless", rest))) => (Some('^'), rest.trim(), Some("unless")),
            (Some('#'), Some((other, _))) => {
                diags.error(
                    &map.at(open),
                    "",
                    format!("the Handlebars helper `#{other}` is not supported in SQL templates"),
                    Some(if other == "each" {
                        "list arguments are not supported yet; bind one value per field".into()
                    } else {
                        "use `{{#if params.x}}`, `{{#unless params.x}}` or a Mustache section `{{#params.x}}`".into()
                    }),
                );
                (Some('!'), name, None)
            }
            _ => (sigil, name, None),
        };
        if helper.is_some() && (name.contains('(') || name.contains(char::is_whitespace)) {
            diags.error(
                &map.at(open),
                "",
                format!("`{name}`: helper conditions name one value; sub-expressions and comparisons are not supported"),
                Some("test a field's presence, as in `{{#if params.x}}`; compare values in SQL with a bound value".into()),
            );
        }
        if is_else {
            match (stack.pop(), helpers.last().copied().flatten()) {
                (Some((open_name, inverted, offset, parent)), Some(_)) => {
                    let children = std::mem::take(&mut current);
                    let mut parent = parent;
                    parent.push(Part::Section {
                        name: open_name.clone(),
                        inverted,
                        offset,
                        children,
                    });
                    stack.push((open_name, !inverted, offset, parent));
                }
                (popped, _) => {
                    if let Some(entry) = popped {
                        stack.push(entry);
                    }
                    diags.error(
                        &map.at(open),
                        "",
                        "`{{else}}` outside an `{{#if}}` or `{{#unless}}` block",
                        Some("use `{{else}}` inside `{{#if params.x}}…{{/if}}`".into()),
                    );
                }
            }
            previous_end = pos;
            continue;
        }
        match sigil {
            Some('!') => {}
            Some('>') | Some('=') => diags.error(
                &map.at(open),
                "",
                "partials and delimiter changes are not supported in SQL templates",
                Some("write the SQL inline".into()),
            ),
            Some('#') | Some('^') => {
                let parent = std::mem::take(&mut current);
                stack.push((name.to_string(), sigil == Some('^'), open, parent));
                helpers.push(helper);
            }
            Some('/') => {
                // `{{/if}}` closes what `{{#if x}}` opened.
                let opened_by = helpers.pop().flatten();
                let name = match opened_by {
                    Some(h) if h == name => stack.last().map(|s| s.0.as_str()).unwrap_or(name),
                    _ => name,
                };
                let name = name.to_string();
                let name = name.as_str();
                match stack.pop() {
                    Some((open_name, inverted, offset, parent)) if open_name == name => {
                        let children = std::mem::replace(&mut current, parent);
                        current.push(Part::Section {
                            name: open_name,
                            inverted,
                            offset,
                            children,
                        });
                    }
                    Some((open_name, inverted, offset, parent)) => {
                        diags.error(
                        &map.at(open),
                        "",
                        format!("`{{{{/{name}}}}}` closes a section that was opened as `{open_name}`"),
                        Some(format!("close `{open_name}` first")),
                    );
                        let children = std::mem::replace(&mut current, parent);
                        current.push(Part::Section {
                            name: open_name,
                            inverted,
                            offset,
                            children,
                        });
                    }
                    None => diags.error(
                        &map.at(open),
                        "",
                        format!("`{{{{/{name}}}}}` closes a section that was never opened"),
                        None,
                    ),
                }
            }
            _ => {
                if name.is_empty() || name == "." {
                    diags.error(
                        &map.at(open),
                        "",
                        "empty or implicit (`.`) template variables are not supported",
                        Some("name the variable, as in `{{ params.id }}`".into()),
                    );
                } else {
                    current.push(Part::Var {
                        name: name.to_string(),
                        offset: open,
                    });
                }
            }
        }
    }
    if pos < src.len() {
        current.push(Part::Text(src[pos..].to_string()));
    }
    finish_unclosed(current, stack, map, diags)
}

fn finish_unclosed(
    mut current: Vec<Part>,
    mut stack: Vec<(String, bool, usize, Vec<Part>)>,
    map: &SourceMap<'_>,
    diags: &mut Diagnostics,
) -> Vec<Part> {
    while let Some((name, inverted, offset, parent)) = stack.pop() {
        diags.error(
            &map.at(offset),
            "",
            format!("section `{name}` is never closed"),
            Some(format!("add `{{{{/{name}}}}}`")),
        );
        let children = std::mem::replace(&mut current, parent);
        current.push(Part::Section {
            name,
            inverted,
            offset,
            children,
        });
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(src: &str) -> (Vec<Part>, Vec<String>) {
        let map = SourceMap {
            start: Location::file_start("t.sql"),
            src,
        };
        let mut diags = Diagnostics::new();
        let parts = parse(&map, &mut diags);
        let errors = diags.into_sorted().into_iter().map(|d| d.message).collect();
        (parts, errors)
    }

    fn section(name: &str, inverted: bool, text: &str) -> Part {
        Part::Section {
            name: name.into(),
            inverted,
            offset: 0,
            children: vec![Part::Text(text.into())],
        }
    }

    fn strip_offsets(parts: Vec<Part>) -> Vec<Part> {
        parts
            .into_iter()
            .map(|p| match p {
                Part::Section {
                    name,
                    inverted,
                    children,
                    ..
                } => Part::Section {
                    name,
                    inverted,
                    offset: 0,
                    children: strip_offsets(children),
                },
                Part::Var { name, .. } => Part::Var { name, offset: 0 },
                other => other,
            })
            .collect()
    }

    #[test]
    fn handlebars_if_else_and_unless_are_sections() {
        let (parts, errors) =
            parsed("a{{#if params.x}}b{{else}}c{{/if}}d{{#unless params.y}}e{{/unless}}");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            strip_offsets(parts),
            vec![
                Part::Text("a".into()),
                section("params.x", false, "b"),
                section("params.x", true, "c"),
                Part::Text("d".into()),
                section("params.y", true, "e"),
            ]
        );
    }

    #[test]
    fn other_helpers_and_stray_else_are_errors() {
        for src in [
            "{{#each params.ids}}x{{/each}}",
            "x{{else}}y",
            "{{#if (eq params.a 1)}}x{{/if}}",
            "{{#if params.a}}x{{/unless}}",
        ] {
            let (_, errors) = parsed(src);
            assert!(!errors.is_empty(), "{src} should fail");
        }
    }
}
