//! Files the build reads stay inside the project folder (issue 16): a
//! `template-source`, `instructions-file`, `pem-file` or `template.path`
//! that leaves it (by `..`, an absolute path or a symbolic link) fails the
//! build at its YAML position, before the file is read, so no diagnostic
//! can quote a file outside the project.

use std::path::{Component, Path, PathBuf};

use crate::diag::Diagnostics;
use crate::load::yaml::Sp;

/// `path` with `.` and `..` resolved by their text (for a path that does
/// not exist, so cannot be canonicalised).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The path of `value`, relative to `base`, when it stays inside the
/// project folder `dir` (canonical) after following links; otherwise an
/// error at `value` and `None`. A path that does not exist is returned
/// when its text stays inside; the caller reports it missing.
pub fn inside(
    dir: &Path,
    base: &Path,
    value: &Sp<String>,
    key: &str,
    diags: &mut Diagnostics,
) -> Option<PathBuf> {
    let joined = base.join(&value.value);
    let resolved = joined.canonicalize().unwrap_or_else(|_| lexical(&joined));
    if resolved.starts_with(dir) {
        return Some(joined);
    }
    diags.error(
        &value.loc,
        key,
        format!("`{}` is outside the project folder", value.value),
        Some("files the build reads must be inside the project folder (after following links); copy the file into it".into()),
    );
    None
}

/// Whether `path` (a file or folder the build found, not named in YAML)
/// stays inside the project folder `dir` after following links; an error
/// at the file itself when it does not.
pub fn inside_or_report(dir: &Path, path: &Path, key: &str, diags: &mut Diagnostics) -> bool {
    let resolved = path.canonicalize().unwrap_or_else(|_| lexical(path));
    if resolved.starts_with(dir) {
        return true;
    }
    diags.error(
        &crate::diag::Location::file_start(path),
        key,
        "this file is a link to a place outside the project folder; it is not read",
        Some("replace the link with the file itself".into()),
    );
    false
}
