//! Compiles the default project (`project/`, or the folder in
//! `FLAPI_PROJECT`) into `OUT_DIR/flapi_project.rs` with the same code as
//! `flapi-validate` and `flapi_macros::project!`.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=FLAPI_PROJECT");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = std::env::var_os("FLAPI_PROJECT")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("project"));
    let dir = if dir.is_absolute() {
        dir
    } else {
        manifest.join(dir)
    };
    // A directory: cargo reruns when any file below it changes or is added.
    println!("cargo::rerun-if-changed={}", dir.display());
    let options = flapi_codegen::emit::EmitOptions { track_files: false };
    match flapi_codegen::generate(&dir, &options) {
        Ok(output) => {
            for warning in &output.warnings {
                println!("cargo::warning={}", warning.to_string().replace('\n', " "));
            }
            let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default())
                .join("flapi_project.rs");
            let text = output.render();
            if std::fs::read_to_string(&out).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&out, text)
                    .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
            }
        }
        Err(diagnostics) => {
            for d in diagnostics {
                let line = format!("{}/{}", dir.display(), d).replace('\n', " ");
                println!("cargo::error={line}");
            }
        }
    }
}
