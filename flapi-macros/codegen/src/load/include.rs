//! flAPI's YAML includes: a line `{{include:section from file.yaml}}`
//! takes the key `section` (with its value) from another YAML file of the
//! project; `{{include from file.yaml}}` takes every top-level key. flAPI
//! splices the text before parsing; here the directive's line is blanked
//! (so every other position stays right), both files are parsed, and the
//! included entries are added to the including file's top-level mapping,
//! keeping their own positions: a problem in an included value is reported
//! in the file that holds it.
//!
//! Supported as flAPI's examples use them: at the top level of a file, one
//! level deep (an included file includes nothing), no `if` conditions and
//! no `{{env.…}}` in the path (the build reads files, not the environment).

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::diag::{Diagnostics, Location, did_you_mean};
use crate::load::yaml::{Kind, Node};

static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\s*)\{\{\s*include(?::\s*([^\s}]+))?\s+from\s+(.+?)\s*\}\}\s*$")
        .expect("valid pattern")
});

/// One directive, found on its own line.
#[derive(Debug, Clone)]
pub struct Include {
    pub loc: Location,
    /// `None` for a whole-file include.
    pub section: Option<String>,
    pub path: String,
}

/// The text with each directive line blanked, and the directives. A line
/// that mentions `{{include` in any other way is an error at that line.
pub fn scan(file: &Path, text: &str, diags: &mut Diagnostics) -> (String, Vec<Include>) {
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let trimmed = body.trim_start();
        if trimmed.starts_with('#') || !body.contains("{{include") {
            out.push_str(line);
            continue;
        }
        let loc = Location::new(file, n as u64 + 1, (body.len() - trimmed.len()) as u64 + 1);
        match DIRECTIVE.captures(body) {
            Some(caps) if caps[1].is_empty() => {
                let path = caps[3].to_string();
                if path.contains("{{") || path.split_whitespace().nth(1) == Some("if") {
                    diags.error(
                        &loc,
                        "",
                        "an include's path is read when the project is built: it cannot use `{{env.…}}` or an `if` condition",
                        Some("name the file itself, as in `{{include:request from common.yaml}}`".into()),
                    );
                } else {
                    found.push(Include {
                        loc,
                        section: caps.get(2).map(|m| m.as_str().to_string()),
                        path,
                    });
                }
            }
            Some(_) => diags.error(
                &loc,
                "",
                "includes are supported at the top level of a file only",
                Some("move the directive to column 1; it adds top-level keys".into()),
            ),
            None => diags.error(
                &loc,
                "",
                "`{{include` must be alone on its line, as `{{include:section from file.yaml}}` or `{{include from file.yaml}}`",
                None,
            ),
        }
        out.extend(std::iter::repeat_n(' ', body.len()));
        out.push_str(ending);
    }
    (out, found)
}

/// Finds, checks and parses the file an include names: its path and tree.
pub type ReadInclude<'a> = dyn FnMut(&Include, &mut Diagnostics) -> Option<(PathBuf, Node)> + 'a;

/// Adds the included entries to `root` (a mapping). `read` finds, checks
/// and parses the file an include names; each path it returns is recorded
/// in `files`.
pub fn apply(
    root: &mut Node,
    includes: &[Include],
    read: &mut ReadInclude<'_>,
    files: &mut Vec<PathBuf>,
    diags: &mut Diagnostics,
) {
    let Kind::Map(entries) = &mut root.kind else {
        return;
    };
    for include in includes {
        let Some((path, included)) = read(include, diags) else {
            continue;
        };
        files.push(path);
        let Kind::Map(theirs) = included.kind else {
            diags.error(
                &include.loc,
                "",
                format!("`{}` is not a YAML mapping", include.path),
                None,
            );
            continue;
        };
        let chosen: Vec<(Node, Node)> = match &include.section {
            None => theirs,
            Some(section) => {
                let names: Vec<String> =
                    theirs.iter().filter_map(|(k, _)| k.scalar_text()).collect();
                match theirs
                    .into_iter()
                    .find(|(k, _)| k.scalar_text().as_deref() == Some(section.as_str()))
                {
                    Some(entry) => vec![entry],
                    None => {
                        diags.error(
                            &include.loc,
                            "",
                            format!("`{}` has no top-level key `{section}`", include.path),
                            did_you_mean(section, names.iter().map(String::as_str)),
                        );
                        continue;
                    }
                }
            }
        };
        for (key, value) in chosen {
            let name = key.scalar_text().unwrap_or_default();
            if entries
                .iter()
                .any(|(k, _)| k.scalar_text().as_deref() == Some(name.as_str()))
            {
                diags.error(
                    &include.loc,
                    name.clone(),
                    format!(
                        "`{name}` is both written in this file and included from `{}`",
                        include.path
                    ),
                    Some("keep one of the two".into()),
                );
                continue;
            }
            entries.push((key, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_lines_are_blanked_and_other_lines_kept() {
        let mut diags = Diagnostics::new();
        let text = "url-path: /x\n{{include:request from common.yaml}}\n# {{include from y.yaml}}\n  {{include from z.yaml}}\nname: {{include from w.yaml}} tail\n";
        let (out, found) = scan(Path::new("a.yaml"), text, &mut diags);
        assert_eq!(out.lines().count(), text.lines().count());
        assert_eq!(out.lines().nth(1).map(str::trim), Some(""));
        assert!(out.contains("# {{include from y.yaml}}"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].section.as_deref(), Some("request"));
        assert_eq!(found[0].path, "common.yaml");
        assert_eq!((found[0].loc.line, found[0].loc.column), (2, 1));
        let errors: Vec<_> = diags.into_sorted();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].location.line, 4);
        assert_eq!(errors[1].location.line, 5);
    }

    #[test]
    fn env_paths_and_conditions_are_refused() {
        let mut diags = Diagnostics::new();
        let text =
            "{{include:auth from {{env.DIR}}/c.yaml}}\n{{include:auth from c.yaml if env.PROD}}\n";
        let (_, found) = scan(Path::new("a.yaml"), text, &mut diags);
        assert!(found.is_empty());
        assert_eq!(diags.into_sorted().len(), 2);
    }
}
