//! Arbitrary bytes into `MusicGptWebhook::parse`, then the timed lyrics of
//! whatever parses; and, when the bytes are UTF-8, into
//! `decode_timed_lyrics` directly.
//!
//! Besides "never panics", it checks the sorting rule `parse` documents:
//!
//! * only a JSON object parses; a conversion's id is the body's
//!   `conversion_id`; a lyrics or cover delivery keeps the whole body;
//! * timed lyrics decode to one line per array element, and only when the
//!   string is empty or a JSON array;
//! * error texts keep at most 4 KiB of the raw input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use serde_json::Value;
use songbind::webhook::musicgpt::decode_timed_lyrics;
use songbind::webhook::{MusicGptWebhook, TimedLyricLine, WebhookError};

/// Longest raw text an error keeps: 4 KiB and the ellipsis.
const RAW_LIMIT: usize = 4096 + '…'.len_utf8();

fn check_error(error: &WebhookError) {
    if let WebhookError::InvalidPayload { raw, .. } = error {
        assert!(raw.len() <= RAW_LIMIT, "error keeps {} bytes", raw.len());
    }
    let _ = error.to_string();
}

/// Checks decoded timed lyrics against the JSON they came from.
fn check_timed(text: Option<&str>, decoded: Result<Vec<TimedLyricLine>, WebhookError>) {
    match decoded {
        Ok(lines) => {
            let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
                assert!(lines.is_empty(), "lines from an absent or blank string");
                return;
            };
            // Counted the way serde skips what it ignores: a `Value` would
            // refuse an unknown field holding, say, 1E9999, which a typed
            // decode skips (and may).
            let Ok(array) = serde_json::from_str::<Vec<IgnoredAny>>(text) else {
                panic!("timed lyrics decoded from something other than an array: {text:?}");
            };
            assert_eq!(lines.len(), array.len());
            for line in &lines {
                let _ = line.is_section_marker();
            }
        }
        Err(error) => check_error(&error),
    }
}

fuzz_target!(|data: &[u8]| {
    match MusicGptWebhook::parse(data) {
        Ok(delivery) => {
            let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(data) else {
                panic!("parsed a body that is not a JSON object");
            };
            let text = |key: &str| body.get(key).and_then(Value::as_str);
            match &delivery {
                MusicGptWebhook::Conversion(conversion) => {
                    assert_eq!(
                        Some(conversion.conversion_id.as_str()),
                        text("conversion_id")
                    );
                    let _ = (
                        conversion.task_id(),
                        conversion.succeeded(),
                        conversion.audio_url(),
                        conversion.audio_url_wav(),
                    );
                    check_timed(
                        conversion.payload.lyrics_timestamped.as_deref(),
                        conversion.timed_lyrics(),
                    );
                }
                MusicGptWebhook::Lyrics(lyrics) => {
                    assert_eq!(lyrics.raw, Value::Object(body.clone()));
                    assert_eq!(lyrics.lyrics.as_deref(), text("lyrics"));
                    check_timed(lyrics.lyrics_timestamped.as_deref(), lyrics.timed_lyrics());
                }
                MusicGptWebhook::Cover(cover) => {
                    assert_eq!(cover.raw, Value::Object(body.clone()));
                    assert_eq!(cover.image_path.as_deref(), text("image_path"));
                }
                MusicGptWebhook::Other(raw) => assert_eq!(raw, &Value::Object(body.clone())),
            }
        }
        Err(error) => check_error(&error),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_timed(Some(text), decode_timed_lyrics(text));
    }
});
