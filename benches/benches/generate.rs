//! Generation time: the built xtask binary's `generate` (every spec in
//! `specs/` through progenitor, prettyplease and rustfmt into the provider
//! crates) run several times, against the floor of spawning `true` in the
//! same run; and a check that every run leaves byte-identical files.
//!
//! The xtask must be built first (`cargo xtask` builds it in the dev
//! profile, as does `cargo build -p xtask`): this bench runs
//! `target/debug/xtask generate` directly, so cargo's own start-up is not
//! counted. `SONGBIND_XTASK=/path/to/xtask` picks another binary.
//!
//! `cargo build -p xtask && cargo bench -p songbind-benches --bench generate`.
//! Target: median under 1 s.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use songbind_benches::timing::{self, Mode};

const PROVIDERS: [&str; 3] = ["soundverse", "soundpiece", "musicgpt"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ sits in the workspace")
        .to_path_buf()
}

/// `target/debug/xtask`, found from this binary's own place in `target/`.
fn xtask_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SONGBIND_XTASK") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("own path");
    // target/<profile>/deps/generate-<hash>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("bench binary lives in target/<profile>/deps");
    target.join("debug").join("xtask")
}

fn generated_files(root: &Path) -> Vec<PathBuf> {
    PROVIDERS
        .iter()
        .flat_map(|provider| {
            ["generated.rs", "generated_httpmock.rs"]
                .map(|name| root.join(format!("crates/songbind-{provider}/src/{name}")))
        })
        .collect()
}

fn snapshot(files: &[PathBuf]) -> Vec<Vec<u8>> {
    files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_default())
        .collect()
}

/// FNV-1a over every file, for the record.
fn fingerprint(contents: &[Vec<u8>]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in contents.iter().flatten() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn run(command: &mut Command) -> Duration {
    let start = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("command runs");
    let elapsed = start.elapsed();
    assert!(status.success(), "{command:?} failed: {status}");
    elapsed
}

fn main() {
    let mode = Mode::from_args();
    let root = workspace_root();
    let xtask = xtask_binary();
    if !xtask.is_file() {
        println!(
            "no xtask binary at {}: build it first with `cargo build -p xtask`",
            xtask.display()
        );
        if mode == Mode::Smoke {
            return;
        }
        std::process::exit(2);
    }
    let files = generated_files(&root);
    let checked_in = snapshot(&files);
    let total_bytes: usize = checked_in.iter().map(Vec::len).sum();

    // One run to warm the page cache and rustfmt (its messages shown, once);
    // its output is the reference.
    let status = Command::new(&xtask)
        .arg("generate")
        .current_dir(&root)
        .stdout(Stdio::null())
        .status()
        .expect("xtask runs");
    assert!(status.success(), "xtask generate failed: {status}");
    let reference = snapshot(&files);

    let rounds = mode.rounds(15, 1);
    let mut identical = true;
    let comparison = timing::interleave(
        rounds,
        || run(&mut Command::new("true")),
        || {
            let took = run(Command::new(&xtask).arg("generate").current_dir(&root));
            identical &= snapshot(&files) == reference;
            took
        },
    );
    println!(
        "xtask generate: {} generated files, {total_bytes} bytes; {}",
        files.len(),
        if mode == Mode::Smoke {
            "smoke run (cargo test --benches): not a measurement"
        } else {
            "measure"
        }
    );
    timing::print_summary("true", &comparison.floor);
    timing::print_summary("generate", &comparison.subject);
    println!(
        "generate/true (process spawn) time: {:.1}x",
        comparison.time_ratio()
    );
    println!(
        "output fingerprint (FNV-1a) {:016x}; same as checked in: {}",
        fingerprint(&reference),
        reference == checked_in
    );
    let median = comparison.subject.median;
    println!(
        "generate byte-identical over {} runs: {}",
        rounds + 1,
        timing::verdict(mode, identical)
    );
    println!(
        "generate median wall time: {} (target < 1 s): {}",
        timing::human(median),
        timing::verdict(mode, median < 1.0)
    );
}
