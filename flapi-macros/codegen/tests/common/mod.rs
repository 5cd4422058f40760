#![allow(dead_code)] // each test crate uses part of it
//! A temporary project folder, removed on drop. Hand-written rather than
//! `tempfile`: see the note in this crate's Cargo.toml.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("flapi-codegen-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A temporary project folder holding `files` (path, text).
pub fn project(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write fixture");
    }
    dir
}

/// The fixture projects under `tests/fixtures/<group>/`, sorted; fails
/// unless every name in `required` is among them.
pub fn fixture_dirs(group: &str, required: &[&str]) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(group);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for name in required {
        assert!(
            dirs.iter()
                .any(|d| d.file_name().is_some_and(|f| f == *name)),
            "fixture `{group}/{name}` is missing"
        );
    }
    dirs
}

/// Every diagnostic of the project in `dir`, rendered as the build prints
/// them, whether or not it builds.
pub fn rendered(dir: &Path) -> String {
    let diagnostics = match flapi_codegen::load(dir) {
        Ok((_, warnings)) => warnings,
        Err(diagnostics) => diagnostics,
    };
    diagnostics.iter().map(|d| format!("{d}\n")).collect()
}

/// Each fixture of `group` must produce exactly the diagnostics in its
/// `expected.txt`, and build exactly when that file holds no error.
/// `UPDATE_EXPECTED=1` rewrites the files instead (review the diff).
pub fn assert_fixtures_match_expected(group: &str, required: &[&str]) {
    for dir in fixture_dirs(group, required) {
        if std::env::var_os("UPDATE_EXPECTED").is_some() {
            std::fs::write(dir.join("expected.txt"), rendered(&dir)).expect("expected.txt");
        }
        let expected = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
        let builds = flapi_codegen::load(&dir).is_ok();
        assert_eq!(
            builds,
            !expected.lines().any(|l| l.contains(": error")),
            "{}: builds = {builds}",
            dir.display()
        );
        assert_eq!(rendered(&dir), expected, "{}", dir.display());
    }
}
