//! The campaign's expectations for stream faults rest on the shape of the
//! emulator's Soundverse streams (how many events, when both audio URLs are
//! known, when the `message_id` is): this reads whole streams off the wire
//! and checks those numbers, so a change of the emulator's timelines fails
//! here instead of as "wrong outcomes" in the campaign.

use serde_json::Value;
use songbind_chaos::{Operation, StreamShape};
use songbind_emulator::{Emulator, Provider};

/// The `data:` events of a whole stream, as JSON.
async fn events(emulator: &Emulator, path: &str, body: Value) -> Vec<Value> {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", emulator.base_url(Provider::Soundverse)))
        .header("authorization", "Bearer sv_test")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let text = response.text().await.unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

/// The shape the client sees: events, events read when both versions have
/// an audio URL, events read when a `message_id` is known.
fn shape(events: &[Value]) -> StreamShape {
    let position = |found: &dyn Fn(&[Value]) -> bool| {
        (1..=events.len())
            .find(|n| found(&events[..*n]))
            .unwrap_or(usize::MAX)
    };
    let has_audio = |read: &[Value], version: u64| {
        read.iter()
            .any(|e| e["version"] == version && e["audio_url"].is_string())
    };
    StreamShape {
        events: events.len(),
        complete_after: position(&|read| has_audio(read, 1) && has_audio(read, 2)),
        message_id_after: position(&|read| read.iter().any(|e| e["message_id"].is_string())),
    }
}

#[tokio::test]
async fn the_campaigns_stream_shapes_match_the_emulators_streams() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let cases = [
        (
            Operation::SoundverseGenerate,
            serde_json::json!({ "prompt": "rock" }),
        ),
        (
            Operation::SoundverseExtend,
            serde_json::json!({
                "audio_url": "https://example.com/a.mp3",
                "lyrics": "la la",
                "extend_at": 30000,
            }),
        ),
        (
            Operation::SoundverseRemix,
            serde_json::json!({
                "song_reference_url": "https://example.com/a.mp3",
                "prompt": "jazz",
            }),
        ),
    ];
    for (operation, body) in cases {
        let (_, path) = operation.create_route();
        let seen = shape(&events(&emulator, path, body).await);
        assert_eq!(Some(seen), operation.stream_shape(), "{operation}");
    }
}
