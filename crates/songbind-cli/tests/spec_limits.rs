//! The CLI refuses, before sending, what the spec's limits refuse, and its
//! help states the spec's values: both read from the spec file at test time
//! (see `xtask/tests/spec_drives_every_layer.rs`).

use std::process::Command;

fn spec_limit(provider: &str, schema: &str, field: &str, key: &str) -> i64 {
    let path = format!("{}/../../specs/{provider}.yaml", env!("CARGO_MANIFEST_DIR"));
    let spec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    spec["components"]["schemas"][schema]["properties"][field][key]
        .as_i64()
        .unwrap_or_else(|| panic!("{provider}: {schema}.{field}.{key}"))
}

fn songbind(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_songbind"))
        .args(args)
        .env_remove("SOUNDPIECE_API_KEY")
        .env_remove("SOUNDPIECE_BASE_URL")
        .output()
        .unwrap()
}

#[test]
fn soundpiece_lyrics_follow_the_spec() {
    let max = spec_limit(
        "soundpiece",
        "CreateRemixSongRequest",
        "lyrics",
        "maxLength",
    ) as usize;
    let lyrics = "ü".repeat(max + 1);
    // No --mock and no key: a refusal must come before anything else.
    let run = songbind(&[
        "soundpiece",
        "remix",
        "--source-url",
        "https://example.com/a.mp3",
        "--lyrics",
        &lyrics,
        "--prompt",
        "rock",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--lyrics") && stderr.contains(&format!("1 to {max} characters")),
        "{stderr}"
    );
    let help = songbind(&["soundpiece", "remix", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains(&format!("1 to {max} characters")), "{help}");
}
