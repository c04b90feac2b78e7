//! The library enforces the limits the specs state, read from the spec
//! files at test time: change a limit in a spec, regenerate, and this test
//! checks the new value (CI does exactly that in a scratch copy, see
//! `xtask/tests/spec_drives_every_layer.rs`).

use serde_yaml::Value;
use songbind::Error;
use songbind::soundpiece::RemixRequest;
use songbind::soundverse::ExtendRequest;

/// `components.schemas.<schema>.properties.<field>.<key>` of a spec.
fn spec_limit(provider: &str, schema: &str, field: &str, key: &str) -> i64 {
    let path = format!("{}/../../specs/{provider}.yaml", env!("CARGO_MANIFEST_DIR"));
    let spec: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    spec["components"]["schemas"][schema]["properties"][field][key]
        .as_i64()
        .unwrap_or_else(|| panic!("{provider}: {schema}.{field}.{key}"))
}

fn refusal(result: songbind::Result<()>) -> (String, String) {
    match result {
        Err(Error::Validation {
            field,
            reason,
            resume: None,
        }) => (field, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn soundpiece_lyrics_follow_the_spec() {
    let max = spec_limit(
        "soundpiece",
        "CreateRemixSongRequest",
        "lyrics",
        "maxLength",
    ) as usize;
    let request = |lyrics: String| RemixRequest::new("https://example.com/a.mp3", lyrics, "rock");
    assert!(
        request("ü".repeat(max)).validate().is_ok(),
        "{max} characters"
    );
    let (field, reason) = refusal(request("ü".repeat(max + 1)).validate());
    assert_eq!(field, "lyrics");
    assert!(
        reason.contains(&max.to_string()) && reason.contains(&(max + 1).to_string()),
        "{reason}"
    );
}

#[test]
fn soundpiece_variations_follow_the_spec() {
    let max = spec_limit(
        "soundpiece",
        "CreateRemixSongRequest",
        "n_variations",
        "maximum",
    );
    let mut request = RemixRequest::new("https://example.com/a.mp3", "la", "rock");
    request.n_variations = max as u8;
    assert!(request.validate().is_ok());
    request.n_variations = max as u8 + 1;
    let (field, reason) = refusal(request.validate());
    assert_eq!(field, "n_variations");
    assert!(reason.contains(&max.to_string()), "{reason}");
}

#[test]
fn soundverse_extend_at_follows_the_spec() {
    let min = spec_limit("soundverse", "ExtendSongRequest", "extend_at", "minimum");
    let max = spec_limit("soundverse", "ExtendSongRequest", "extend_at", "maximum");
    let request = |at| ExtendRequest {
        audio_url: "https://example.com/a.mp3".into(),
        lyrics: "la".into(),
        extend_at_ms: at,
        prompt: None,
    };
    assert!(request(min).validate().is_ok() && request(max).validate().is_ok());
    for outside in [min - 1, max + 1] {
        let (field, reason) = refusal(request(outside).validate());
        assert_eq!(field, "extend_at");
        assert!(reason.contains(&outside.to_string()), "{reason}");
    }
}

#[test]
fn every_request_type_is_new_with_the_required_fields_then_setters() {
    use songbind::musicgpt::{AudioInput, RemixMode};
    let generate = songbind::soundverse::GenerateRequest::new("pop").lyrics("la");
    assert_eq!(generate.lyrics.as_deref(), Some("la"));
    let extend = ExtendRequest::new("https://example.com/a.mp3", "la", 30_000).prompt("rock");
    assert!(extend.validate().is_ok());
    let remix = songbind::soundverse::RemixRequest::new("https://example.com/a.mp3")
        .prompt("jazz")
        .parameter("tempo", 120);
    assert!(remix.validate().is_ok() && remix.parameters["tempo"] == 120);
    let key = uuid::Uuid::nil();
    let soundpiece = RemixRequest::new("https://example.com/a.mp3", "la", "rock")
        .variations(2)
        .idempotency_key(key)
        .callback_url("https://hooks.example.com/x");
    assert_eq!(
        (soundpiece.n_variations, soundpiece.idempotency_key),
        (2, Some(key))
    );
    let musicgpt =
        songbind::musicgpt::RemixRequest::new(AudioInput::Url("https://x.y/a".into()), "pop")
            .mode(RemixMode::Inpaint)
            .webhook_url("https://hooks.example.com/m");
    assert_eq!(musicgpt.mode, RemixMode::Inpaint);
}
