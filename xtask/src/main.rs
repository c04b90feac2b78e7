//! Project automation for songbind.
//!
//! * `cargo xtask generate` turns every spec in `specs/` into the generated
//!   files of its client crate (`crates/songbind-<provider>/src/generated*.rs`).
//! * `cargo xtask check` regenerates in memory and fails, with a readable diff,
//!   when a checked-in generated file differs from what its spec produces.
//!
//! Generation is deterministic: the same spec gives byte-identical files.

mod codegen;
mod describe;
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
    for provider in &providers::all(&root)? {
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
    let stale = stale_files(&workspace_root())?;
    if stale.is_empty() {
        println!("generated files match their specs");
        return Ok(true);
    }
    for file in &stale {
        print_diff(&file.path, &file.on_disk, &file.expected);
    }
    eprintln!(
        "\n{} generated file(s) differ from what their spec generates:",
        stale.len()
    );
    for file in &stale {
        eprintln!("  {}", file.path.display());
    }
    eprintln!(
        "generated code is never edited by hand: change the spec (or xtask/), then run `cargo xtask generate` and commit both"
    );
    Ok(false)
}

/// A checked-in generated file that differs from what its spec generates.
struct StaleFile {
    path: PathBuf,
    on_disk: String,
    expected: String,
}

/// Regenerates every provider in memory and returns the files under `root`
/// that differ (a missing file counts as empty).
fn stale_files(root: &Path) -> Result<Vec<StaleFile>> {
    let mut stale = Vec::new();
    for provider in &providers::all(root)? {
        for file in codegen::generate(root, provider)? {
            let on_disk = std::fs::read_to_string(root.join(&file.path)).unwrap_or_default();
            if on_disk != file.contents {
                stale.push(StaleFile {
                    path: file.path,
                    on_disk,
                    expected: file.contents,
                });
            }
        }
    }
    Ok(stale)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Copies the specs and the checked-in generated files into a fresh
    /// directory laid out like the workspace.
    fn copy_of_workspace() -> PathBuf {
        let root = workspace_root();
        let dir = std::env::temp_dir().join(format!(
            "songbind-xtask-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("specs")).unwrap();
        std::fs::copy(root.join("rustfmt.toml"), dir.join("rustfmt.toml")).unwrap();
        for provider in &providers::all(&root).unwrap() {
            let spec = provider.spec_path();
            std::fs::copy(root.join(&spec), dir.join(&spec)).unwrap();
            let src = Path::new(&provider.crate_dir()).join("src");
            std::fs::create_dir_all(dir.join(&src)).unwrap();
            for name in ["generated.rs", "generated_httpmock.rs"] {
                std::fs::copy(root.join(src.join(name)), dir.join(src.join(name))).unwrap();
            }
        }
        dir
    }

    #[test]
    fn checked_in_files_are_current_and_a_hand_edit_is_caught() {
        let dir = copy_of_workspace();
        assert!(
            stale_files(&dir).unwrap().is_empty(),
            "checked-in files are stale"
        );

        let edited = Path::new("crates/songbind-soundpiece/src/generated.rs");
        let mut text = std::fs::read_to_string(dir.join(edited)).unwrap();
        text = text.replacen("pub struct AudioSource", "pub struct AudioSourceRenamed", 1);
        std::fs::write(dir.join(edited), text).unwrap();

        let stale = stale_files(&dir).unwrap();
        assert_eq!(
            stale.iter().map(|f| f.path.as_path()).collect::<Vec<_>>(),
            [edited]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn generation_is_byte_identical_from_run_to_run() {
        let root = workspace_root();
        for provider in &providers::all(&root).unwrap() {
            let first = codegen::generate(&root, provider).unwrap();
            let second = codegen::generate(&root, provider).unwrap();
            assert_eq!(first.len(), second.len());
            for (a, b) in first.iter().zip(&second) {
                assert_eq!(a.path, b.path);
                assert!(
                    a.contents == b.contents,
                    "{} differs between runs",
                    a.path.display()
                );
            }
        }
    }
}
