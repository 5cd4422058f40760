//! `flapi-validate [--deny-warnings] [--print] DIR`: checks a project folder with the
//! same code as the build, without compiling DuckDB or the server. Exits 1
//! on errors (or on warnings with `--deny-warnings`), 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use flapi_codegen::{Severity, emit::EmitOptions, generate};

fn main() -> ExitCode {
    let mut deny_warnings = false;
    let mut print = false;
    let mut dir: Option<PathBuf> = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--deny-warnings" => deny_warnings = true,
            "--print" => print = true,
            "-h" | "--help" => {
                println!("usage: flapi-validate [--deny-warnings] [--print] PROJECT_DIR");
                return ExitCode::SUCCESS;
            }
            flag if flag.starts_with('-') => {
                eprintln!(
                    "error: unknown flag `{flag}` (allowed: --deny-warnings, --print, --help)"
                );
                return ExitCode::from(2);
            }
            path => dir = Some(PathBuf::from(path)),
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: flapi-validate [--deny-warnings] [--print] PROJECT_DIR");
        return ExitCode::from(2);
    };
    let diagnostics = match generate(&dir, &EmitOptions { track_files: false }) {
        Ok(output) => {
            if print {
                // The exact Rust source the build compiles into the server.
                println!("{}", output.render());
            }
            output.warnings
        }
        Err(diagnostics) => diagnostics,
    };
    for d in &diagnostics {
        eprintln!("{d}");
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    if errors > 0 || (deny_warnings && warnings > 0) {
        eprintln!(
            "{}: {errors} error(s), {warnings} warning(s)",
            dir.display()
        );
        ExitCode::FAILURE
    } else {
        println!("{}: ok ({warnings} warning(s))", dir.display());
        ExitCode::SUCCESS
    }
}
