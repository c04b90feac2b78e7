//! The proof that the spec drives every layer: in a scratch copy of the
//! workspace, change one limit in a spec (SoundPiece's `lyrics` maxLength),
//! run `cargo xtask generate`, and run the library's, the emulator's and the
//! CLI's spec-limit tests there. They read the limit from the (changed) spec,
//! so they pass only if no layer restates the old value by hand.
//!
//! It builds the workspace crates again in the copy (dependencies are
//! shared through the same target directory), so it is `#[ignore]`d in a
//! plain `cargo test`; `.ci/run` runs it with `--ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;

const SPEC: &str = "specs/soundpiece.yaml";
const OLD: &str = "          maxLength: 3000";
const NEW: &str = "          maxLength: 1234";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Copies the files git knows of (tracked, and untracked but not ignored).
fn scratch_copy(to: &Path) {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root())
        .output()
        .expect("git runs");
    assert!(listed.status.success());
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.starts_with("fuzz/") || name.starts_with("target") {
            continue;
        }
        let from = root().join(&name);
        if !from.is_file() {
            continue;
        }
        let target = to.join(&name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&from, &target).unwrap();
    }
}

fn cargo(dir: &Path, args: &[&str]) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target.join("spec-proof"))
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "cargo {args:?} failed in the scratch copy"
    );
}

#[test]
#[ignore = "rebuilds the workspace in a scratch copy; .ci/run runs it"]
fn a_limit_changed_in_a_spec_is_enforced_by_library_cli_and_emulator() {
    let scratch = std::env::temp_dir().join(format!("songbind-spec-proof-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    scratch_copy(&scratch);

    let spec_path = scratch.join(SPEC);
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    assert_eq!(
        spec.matches(OLD).count(),
        1,
        "the lyrics limit moved in {SPEC}"
    );
    std::fs::write(&spec_path, spec.replace(OLD, NEW)).unwrap();

    cargo(
        &scratch,
        &["run", "--quiet", "-p", "xtask", "--", "generate"],
    );
    let generated =
        std::fs::read_to_string(scratch.join("crates/songbind-soundpiece/src/generated.rs"))
            .unwrap();
    assert!(
        generated.contains("max: Some(1234usize)"),
        "regenerated limits"
    );
    // Nothing but the spec and the generated files differ from the original.
    cargo(
        &scratch,
        &[
            "test",
            "--quiet",
            "-p",
            "songbind",
            "--test",
            "spec_limits",
            "-p",
            "songbind-emulator",
            "--test",
            "spec_limits",
            "-p",
            "songbind-cli",
            "--test",
            "spec_limits",
        ],
    );
    let _ = std::fs::remove_dir_all(&scratch);
}
