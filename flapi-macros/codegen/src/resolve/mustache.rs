//! The Mustache subset flAPI users write in SQL templates, parsed into a
//! tree: `{{ x }}`, `{{{ x }}}`, `{{& x}}`, `{{#x}}…{{/x}}`, `{{^x}}…{{/x}}`
//! and `{{! comment }}`. Partials and delimiter changes are build errors.

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
    // Stack of open sections: (name, inverted, offset, children so far).
    let mut stack: Vec<(String, bool, usize, Vec<Part>)> = Vec::new();
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
        if matches!(sigil, Some('#' | '^' | '/' | '!')) {
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
            }
            Some('/') => {
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
