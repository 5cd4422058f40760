//! `flapi-validate [--deny-warnings] [--format human|json] [--print] DIR`:
//! checks a project folder with the same code as the build, without
//! compiling DuckDB or the server. Exits 1 on errors (or on warnings with
//! `--deny-warnings`), 2 on bad usage. `--format json` prints one JSON
//! document on stdout (for CI annotations) instead of the human lines.

use std::path::PathBuf;
use std::process::ExitCode;

use flapi_codegen::{Diagnostic, Severity, emit::EmitOptions, generate};

const USAGE: &str =
    "usage: flapi-validate [--deny-warnings] [--format human|json] [--print] PROJECT_DIR";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Human,
    Json,
}

fn json_report(dir: &str, diagnostics: &[Diagnostic], failed: bool) -> serde_json::Value {
    let items: Vec<serde_json::Value> = diagnostics
        .iter()
        .map(|d| {
            serde_json::json!({
                "severity": d.severity.as_str(),
                "file": d.location.file.display().to_string(),
                "line": d.location.line,
                "column": d.location.column,
                "key_path": d.key_path,
                "message": d.message,
                "help": d.help,
            })
        })
        .collect();
    let count = |s: Severity| diagnostics.iter().filter(|d| d.severity == s).count();
    serde_json::json!({
        "project": dir,
        "ok": !failed,
        "errors": count(Severity::Error),
        "warnings": count(Severity::Warning),
        "notes": count(Severity::Note),
        "diagnostics": items,
    })
}

fn main() -> ExitCode {
    let mut deny_warnings = false;
    let mut print = false;
    let mut format = Format::Human;
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--deny-warnings" => deny_warnings = true,
            "--print" => print = true,
            "--format" => match args.next().as_deref() {
                Some("human") => format = Format::Human,
                Some("json") => format = Format::Json,
                other => {
                    eprintln!(
                        "error: `--format` takes `human` or `json`, not `{}`",
                        other.unwrap_or("")
                    );
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            flag if flag.starts_with('-') => {
                eprintln!(
                    "error: unknown flag `{flag}` (allowed: --deny-warnings, --format, --print, --help)"
                );
                return ExitCode::from(2);
            }
            path => dir = Some(PathBuf::from(path)),
        }
    }
    let Some(dir) = dir else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let diagnostics = match generate(&dir, &EmitOptions { track_files: false }) {
        Ok(output) => {
            if print && format == Format::Human {
                // The exact Rust source the build compiles into the server.
                println!("{}", output.render());
            }
            output.warnings
        }
        Err(diagnostics) => diagnostics,
    };
    let count = |s: Severity| diagnostics.iter().filter(|d| d.severity == s).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let failed = errors > 0 || (deny_warnings && warnings > 0);
    if format == Format::Json {
        println!(
            "{}",
            json_report(&dir.display().to_string(), &diagnostics, failed)
        );
    } else {
        for d in &diagnostics {
            eprintln!("{d}");
        }
        if failed {
            eprintln!(
                "{}: {errors} error(s), {warnings} warning(s)",
                dir.display()
            );
        } else {
            println!("{}: ok ({warnings} warning(s))", dir.display());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
