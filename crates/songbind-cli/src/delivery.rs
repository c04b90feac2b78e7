//! One webhook delivery: checked (SoundPiece's signature, MusicGPT's
//! shape), keyed for de-duplication, and shown as one line on stdout.
//!
//! Shared by `webhooks listen` and `webhooks verify`, so that a saved
//! delivery is judged and printed exactly as the listener would.
//!
//! The `--json` line is this crate's own shape ([`DeliveryLine`]): every key
//! always present (null when unknown), the body as received under `body`.

use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::Value;
use songbind::Secret;
use songbind::webhook::{MusicGptWebhook, SoundPieceWebhookVerifier, WebhookError};

use crate::args::WebhookProvider;
use crate::output::printable;

/// How a provider's deliveries are checked.
pub enum Receiver {
    /// SoundPiece: a Standard Webhooks signature with the secret.
    SoundPiece(SoundPieceWebhookVerifier),
    /// MusicGPT: unsigned; the body must be a JSON object.
    MusicGpt,
}

impl std::fmt::Debug for Receiver {
    /// Never the secret (the verifier's own `Debug` hides it too).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Receiver::SoundPiece(verifier) => f.debug_tuple("SoundPiece").field(verifier).finish(),
            Receiver::MusicGpt => f.write_str("MusicGpt"),
        }
    }
}

/// A delivery that passed the checks.
#[derive(Debug)]
pub struct Accepted {
    /// What de-duplicates it: SoundPiece's `webhook-id`; for MusicGPT the
    /// conversion id and outcome, or the task id of a lyrics or cover
    /// delivery; `None` when nothing identifies it (never de-duplicated).
    pub key: Option<String>,
    /// What stdout shows.
    pub line: DeliveryLine,
}

/// One accepted delivery as `--json` prints it: one object per line, every
/// key always present.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryLine {
    /// `soundpiece` or `musicgpt`.
    pub provider: &'static str,
    /// SoundPiece: the event `type` (`remix_song.ready`, ...). MusicGPT:
    /// `conversion`, `lyrics`, `cover` or `other`.
    pub event: String,
    /// SoundPiece's `webhook-id` (the same on every redelivery); null for
    /// MusicGPT.
    pub webhook_id: Option<String>,
    /// SoundPiece's `webhook-timestamp`, unix seconds; null for MusicGPT.
    pub timestamp: Option<i64>,
    /// The operation id (SoundPiece) or conversion id (MusicGPT).
    pub id: Option<String>,
    /// MusicGPT's task id.
    pub task_id: Option<String>,
    /// SoundPiece's operation status (`ready`, `failed`); MusicGPT's
    /// conversion outcome (`succeeded`, `failed`).
    pub status: Option<String>,
    /// The audio's URLs (SoundPiece: each output; MusicGPT: MP3 then WAV).
    pub audio_urls: Vec<String>,
    /// MusicGPT cover deliveries: the image's URL.
    pub image_url: Option<String>,
    /// Why the job failed, when the delivery says.
    pub error: Option<String>,
    /// The body as received (JSON).
    pub body: Value,
}

impl Receiver {
    /// The receiver for `provider`; SoundPiece needs a secret, MusicGPT
    /// takes none. `tolerance` replaces the 5-minute window when given.
    pub fn new(
        provider: WebhookProvider,
        secret: Option<Secret>,
        tolerance: Option<Duration>,
    ) -> Result<Self, WebhookError> {
        match (provider, secret) {
            (WebhookProvider::SoundPiece, Some(secret)) => {
                let verifier = SoundPieceWebhookVerifier::new(secret)?;
                Ok(Receiver::SoundPiece(match tolerance {
                    Some(tolerance) => verifier.with_tolerance(tolerance),
                    None => verifier,
                }))
            }
            (WebhookProvider::SoundPiece, None) => Err(WebhookError::InvalidSecret {
                reason: "none was given",
            }),
            (WebhookProvider::MusicGpt, _) => Ok(Receiver::MusicGpt),
        }
    }

    /// Checks one delivery against the clock reading `now`.
    pub fn check(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Accepted, WebhookError> {
        match self {
            Receiver::SoundPiece(verifier) => {
                let delivery = verifier.receive_at(headers, body, now)?;
                let value = json_body(body);
                let mut line = DeliveryLine::new("soundpiece", delivery.event.event_type());
                line.webhook_id = Some(delivery.webhook_id.clone());
                line.timestamp = Some(delivery.timestamp);
                if let Some(song) = delivery.event.remix_song() {
                    line.id = Some(song.id.clone());
                    line.status = song.status.clone();
                    line.audio_urls = song
                        .outputs
                        .iter()
                        .flatten()
                        .map(|output| output.url.clone())
                        .collect();
                    line.error = song.error.as_ref().and_then(|e| e.message.clone());
                }
                line.body = value;
                Ok(Accepted {
                    key: Some(delivery.webhook_id),
                    line,
                })
            }
            Receiver::MusicGpt => musicgpt(body),
        }
    }
}

/// Sorts a MusicGPT delivery (a JSON object, else an error) and keys it.
fn musicgpt(body: &[u8]) -> Result<Accepted, WebhookError> {
    let parsed = MusicGptWebhook::parse(body)?;
    let value = json_body(body);
    let (line, key) = match parsed {
        MusicGptWebhook::Conversion(conversion) => {
            let outcome = if conversion.succeeded() {
                "succeeded"
            } else {
                "failed"
            };
            let mut line = DeliveryLine::new("musicgpt", "conversion");
            line.id = Some(conversion.conversion_id.clone());
            line.task_id = conversion.task_id().map(str::to_owned);
            line.status = Some(outcome.to_owned());
            line.audio_urls = [conversion.audio_url(), conversion.audio_url_wav()]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            line.error = conversion.payload.reason.clone();
            let key = format!("conversion:{}:{outcome}", conversion.conversion_id);
            (line, Some(key))
        }
        MusicGptWebhook::Lyrics(lyrics) => {
            let mut line = DeliveryLine::new("musicgpt", "lyrics");
            line.task_id = lyrics.task_id.clone();
            let key = lyrics.task_id.map(|task| format!("lyrics:{task}"));
            (line, key)
        }
        MusicGptWebhook::Cover(cover) => {
            let mut line = DeliveryLine::new("musicgpt", "cover");
            line.task_id = cover.task_id.clone();
            line.image_url = cover.image_path;
            let key = cover.task_id.map(|task| format!("cover:{task}"));
            (line, key)
        }
        MusicGptWebhook::Other(_) => (DeliveryLine::new("musicgpt", "other"), None),
    };
    Ok(Accepted {
        key,
        line: DeliveryLine {
            body: value,
            ..line
        },
    })
}

/// The body as JSON (it was decoded once already; `null` cannot happen for
/// an accepted delivery).
fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

impl DeliveryLine {
    /// A line for `provider`'s `event`, nothing else known yet.
    fn new(provider: &'static str, event: &str) -> Self {
        Self {
            provider,
            event: event.to_owned(),
            webhook_id: None,
            timestamp: None,
            id: None,
            task_id: None,
            status: None,
            audio_urls: Vec::new(),
            image_url: None,
            error: None,
            body: Value::Null,
        }
    }

    /// What stdout shows: the summary, or with `json` the object, on one
    /// line (no newline at the end).
    pub fn render(&self, json: bool) -> String {
        if json {
            // Every control character and direction override escaped.
            crate::output::to_json(self, false).unwrap_or_else(|_| "{}".to_owned())
        } else {
            self.summary()
        }
    }

    /// `<provider> <event> <id> <status> [task <id>] [<audio URL>...]
    /// [image <URL>] [error "<message>"] [webhook-id <id>]`, provider text
    /// escaped, `-` for an unknown id or status.
    pub fn summary(&self) -> String {
        let or_dash =
            |value: &Option<String>| value.as_deref().map_or_else(|| "-".to_owned(), word);
        let mut parts = vec![
            self.provider.to_owned(),
            word(&self.event),
            or_dash(&self.id),
            or_dash(&self.status),
        ];
        if let Some(task) = &self.task_id {
            parts.push(format!("task {}", word(task)));
        }
        parts.extend(self.audio_urls.iter().map(|url| word(url)));
        if let Some(image) = &self.image_url {
            parts.push(format!("image {}", word(image)));
        }
        if let Some(error) = &self.error {
            let error = error.split_whitespace().collect::<Vec<_>>().join(" ");
            parts.push(format!("error \"{}\"", printable(&error)));
        }
        if let Some(id) = &self.webhook_id {
            parts.push(format!("webhook-id {}", word(id)));
        }
        parts.join(" ")
    }

    /// How stderr names the delivery: its webhook id, else its kind and id.
    pub fn label(&self) -> String {
        match (&self.webhook_id, &self.id, &self.task_id) {
            (Some(id), _, _) => word(id),
            (None, Some(id), _) => format!("{} {}", word(&self.event), word(id)),
            (None, None, Some(task)) => format!("{} of task {}", word(&self.event), word(task)),
            (None, None, None) => format!("{} delivery", word(&self.event)),
        }
    }
}

/// Provider text as one printable word: control characters escaped, spaces
/// shown as `%20` so that the summary's fields stay apart.
fn word(text: &str) -> String {
    printable(text).replace(' ', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_musicgpt_conversion_is_keyed_by_its_id_and_outcome() {
        let body = br#"{"success":true,"conversion_type":"Remix","task_id":"t1",
            "conversion_id":"c1","conversion_path":"https://x/c1.mp3","conversion_path_wav":"https://x/c1.wav"}"#;
        let accepted = musicgpt(body).unwrap();
        assert_eq!(accepted.key.as_deref(), Some("conversion:c1:succeeded"));
        assert_eq!(
            accepted.line.summary(),
            "musicgpt conversion c1 succeeded task t1 https://x/c1.mp3 https://x/c1.wav"
        );
        assert_eq!(accepted.line.body["task_id"], "t1");
        assert!(musicgpt(b"[1,2]").is_err());
        assert!(musicgpt(b"not json").is_err());
        let other = musicgpt(br#"{"hello":"world"}"#).unwrap();
        assert_eq!((other.key, other.line.event.as_str()), (None, "other"));
    }

    #[test]
    fn provider_text_is_escaped_and_kept_on_one_line() {
        let mut line = DeliveryLine::new("soundpiece", "remix_song.failed");
        line.id = Some("op\u{1b}[2J 1".to_owned());
        line.error = Some("bad\nthing \u{7}".to_owned());
        let summary = line.summary();
        assert!(!summary.chars().any(char::is_control), "{summary:?}");
        assert!(summary.contains("op\\u{1b}[2J%201"), "{summary}");
        assert!(summary.contains("error \"bad thing \\u{7}\""), "{summary}");
        line.status = Some("ready\u{9b}2J\u{202e}".to_owned());
        let json = line.render(true);
        assert!(!json.chars().any(crate::output::unsafe_char), "{json:?}");
        assert!(json.contains("\\u009b2J\\u202e"), "{json}");
        let value: Value = serde_json::from_str(&json).unwrap();
        for key in [
            "provider",
            "event",
            "webhook_id",
            "timestamp",
            "id",
            "task_id",
            "status",
            "audio_urls",
            "image_url",
            "error",
            "body",
        ] {
            assert!(value.get(key).is_some(), "{key} missing from {json}");
        }
    }

    #[test]
    fn soundpiece_needs_a_secret_and_its_debug_hides_it() {
        assert!(Receiver::new(WebhookProvider::SoundPiece, None, None).is_err());
        let secret = Secret::from(songbind_emulator::DEFAULT_WEBHOOK_SECRET);
        let receiver = Receiver::new(WebhookProvider::SoundPiece, Some(secret), None).unwrap();
        let shown = format!("{receiver:?}");
        assert!(
            !shown.contains(songbind_emulator::DEFAULT_WEBHOOK_SECRET),
            "{shown}"
        );
    }
}
