//! Project automation for songbind.
//!
//! * `cargo xtask generate` turns every spec in `specs/` into the generated
//!   files of its client crate (`crates/songbind-<provider>/src/generated*.rs`).
//! * `cargo xtask check` regenerates in memory and fails, with a readable diff,
//!   when a checked-in generated file differs from what its spec produces.
//!
//! Generation is deterministic: the same spec gives byte-identical files.

mod codegen;
mod providers;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  generate   regenerate every provider crate's generated files from specs/
  check      fail (with a diff) when a checked-in generated file is stale
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("generate") => generate(),
        Some("check") => check(),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(true)
        }
        other => {
            eprintln!(
                "unknown command {}\n\n{USAGE}",
                other.map_or("(none)".into(), |c| format!("`{c}`"))
            );
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the xtask crate lives one level below it.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

fn generate() -> Result<bool> {
    let root = workspace_root();
    for provider in providers::ALL {
        let files = codegen::generate(&root, provider)?;
        for file in &files {
            let path = root.join(&file.path);
            let unchanged = std::fs::read_to_string(&path).is_ok_and(|old| old == file.contents);
            if !unchanged {
                std::fs::write(&path, &file.contents)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            println!(
                "{} {}",
                if unchanged { "unchanged" } else { "wrote    " },
                file.path.display()
            );
        }
    }
    Ok(true)
}

fn check() -> Result<bool> {
    let root = workspace_root();
    let mut stale = Vec::new();
    for provider in providers::ALL {
        for file in codegen::generate(&root, provider)? {
            let path = root.join(&file.path);
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            if on_disk != file.contents {
                print_diff(&file.path, &on_disk, &file.contents);
                stale.push(file.path);
            }
        }
    }
    if stale.is_empty() {
        println!("generated files match their specs");
        return Ok(true);
    }
    eprintln!(
        "\n{} generated file(s) differ from what their spec generates:",
        stale.len()
    );
    for path in &stale {
        eprintln!("  {}", path.display());
    }
    eprintln!(
        "generated code is never edited by hand: change the spec (or xtask/), then run `cargo xtask generate` and commit both"
    );
    Ok(false)
}

/// Prints a unified diff from the checked-in file to the expected one,
/// cut after a few hundred lines so a wholesale change stays readable.
fn print_diff(path: &Path, on_disk: &str, expected: &str) {
    const MAX_LINES: usize = 400;
    let diff = similar::TextDiff::from_lines(on_disk, expected);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{} (checked in)", path.display()),
            &format!("{} (generated from spec)", path.display()),
        )
        .to_string();
    let total = text.lines().count();
    for line in text.lines().take(MAX_LINES) {
        println!("{line}");
    }
    if total > MAX_LINES {
        println!("... ({} more diff lines)", total - MAX_LINES);
    }
}
