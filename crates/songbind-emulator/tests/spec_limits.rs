//! The emulator enforces the limits the specs state, read from the spec
//! files at test time (see `xtask/tests/spec_drives_every_layer.rs`, which
//! changes a limit in a scratch copy and runs this test there).

use serde_json::{Value, json};
use songbind_emulator::{Emulator, Provider};

fn spec_limit(provider: &str, schema: &str, field: &str, key: &str) -> i64 {
    let path = format!("{}/../../specs/{provider}.yaml", env!("CARGO_MANIFEST_DIR"));
    let spec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    spec["components"]["schemas"][schema]["properties"][field][key]
        .as_i64()
        .unwrap_or_else(|| panic!("{provider}: {schema}.{field}.{key}"))
}

async fn put(emulator: &Emulator, lyrics: String) -> (u16, Value) {
    let response = reqwest::Client::new()
        .put(format!(
            "{}/v1/create.remix_song",
            emulator.base_url(Provider::SoundPiece)
        ))
        .bearer_auth("spk_test_limits")
        .json(&json!({
            "idempotency_key": uuid::Uuid::new_v4(),
            "source": {"url": "https://example.com/a.mp3"},
            "lyrics": lyrics,
            "prompt": "rock",
        }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn soundpiece_lyrics_follow_the_spec() {
    let max = spec_limit(
        "soundpiece",
        "CreateRemixSongRequest",
        "lyrics",
        "maxLength",
    ) as usize;
    let emulator = Emulator::start_for_tests().await.unwrap();
    let (status, _) = put(&emulator, "ü".repeat(max)).await;
    assert_eq!(status, 200, "{max} characters are accepted");
    let (status, body) = put(&emulator, "ü".repeat(max + 1)).await;
    assert_eq!(status, 422, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("lyrics") && text.contains(&max.to_string()),
        "{text}"
    );
}
