//! MusicGPT webhooks: conversion, lyrics and cover deliveries, and
//! confirming them with `/byId`.
//!
//! MusicGPT POSTs several unsigned JSON bodies to a task's `webhook_url`: one
//! per conversion (the two generated versions), plus a lyrics and a cover
//! delivery. Only the conversion shape is documented (the spec's
//! `WebhookPayload`); the others are recognised by `conversion_type` or by
//! their fields, and anything else is kept as raw JSON, so a new kind of
//! delivery never breaks a receiver.
//!
//! Since nothing proves a delivery came from MusicGPT, [`confirm`] re-reads
//! the conversion with `GET /byId` and returns the provider's own record
//! only when it agrees with the delivery.

use serde_json::Value;
use songbind_musicgpt::types::{Conversion, LyricsTimestampLine, WebhookPayload};

use super::WebhookError;
use crate::error::{Error, ProviderName, Result, ResumeWith, from_generated};

/// The JSON Schema of a conversion delivery MusicGPT POSTs to a
/// `webhook_url` (the spec's `WebhookPayload`; lyrics and cover deliveries
/// are undocumented and have no schema).
#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub fn payload_schema() -> schemars::Schema {
    schemars::schema_for!(WebhookPayload)
}

/// A MusicGPT webhook delivery, sorted by kind.
///
/// ```
/// use songbind::webhook::MusicGptWebhook;
///
/// let body = br#"{"success": true, "conversion_type": "Remix", "task_id": "t1",
///     "conversion_id": "c1", "conversion_path": "https://cdn.example/c1.mp3",
///     "lyrics_timestamped": "[{\"index\": 0, \"text\": \"[Verse 1]\", \"start\": 3200, \"end\": 3200}]"}"#;
/// let MusicGptWebhook::Conversion(delivery) = MusicGptWebhook::parse(body)? else {
///     panic!("a conversion delivery");
/// };
/// assert_eq!(delivery.conversion_id, "c1");
/// assert_eq!(delivery.audio_url(), Some("https://cdn.example/c1.mp3"));
/// assert_eq!(delivery.payload.conversion_path_wav, None); // may be absent
/// assert_eq!(delivery.timed_lyrics()?[0].start_ms, 3200);
/// # Ok::<(), songbind::webhook::WebhookError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum MusicGptWebhook {
    /// One generated version is done (or failed): the documented payload.
    Conversion(ConversionDelivery),
    /// The task's lyrics (undocumented shape).
    Lyrics(LyricsDelivery),
    /// The task's cover image (undocumented shape).
    Cover(CoverDelivery),
    /// A JSON object this crate does not recognise, kept whole.
    Other(Value),
}

/// A conversion delivery: one of a task's generated versions.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversionDelivery {
    /// The conversion's id (always present: it is how such a delivery is
    /// recognised, and what [`confirm`] looks up).
    pub conversion_id: String,
    /// Every field as delivered.
    pub payload: WebhookPayload,
}

/// A lyrics delivery: `{conversion_type: "Lyrics", task_id, lyrics,
/// lyrics_timestamped}` as far as is known.
#[derive(Clone, Debug, PartialEq)]
pub struct LyricsDelivery {
    /// The task the lyrics belong to.
    pub task_id: Option<String>,
    /// The lyrics text, with section markers such as `[Verse 1]`.
    pub lyrics: Option<String>,
    /// The timed lyrics, still JSON-encoded (see [`LyricsDelivery::timed_lyrics`]).
    pub lyrics_timestamped: Option<String>,
    /// The whole body.
    pub raw: Value,
}

/// A cover delivery: `{conversion_type: "Cover", task_id, image_path}` as far
/// as is known.
#[derive(Clone, Debug, PartialEq)]
pub struct CoverDelivery {
    /// The task the cover belongs to.
    pub task_id: Option<String>,
    /// URL of the cover image.
    pub image_path: Option<String>,
    /// The whole body.
    pub raw: Value,
}

/// One line of timed lyrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimedLyricLine {
    /// Line number in the lyrics text (blank lines are skipped, so there
    /// are gaps).
    pub index: u32,
    /// The line, or a section marker such as `[Verse 1]`.
    pub text: String,
    /// Where the line starts in the audio, in milliseconds.
    pub start_ms: u64,
    /// Where the line ends, in milliseconds (equal to the start for some
    /// markers).
    pub end_ms: u64,
}

impl MusicGptWebhook {
    /// Sorts a delivery body. The rule, in order:
    ///
    /// 1. the body must be a JSON object (anything else is an error);
    /// 2. `conversion_type` `Lyrics` or `Cover` (any case) decides;
    /// 3. a `conversion_id` string makes it a conversion delivery (decoded as
    ///    the spec's `WebhookPayload`; a field of the wrong type is an error);
    /// 4. without a `conversion_type`, an `image_path` makes it a cover and
    ///    `lyrics` or `lyrics_timestamped` make it lyrics;
    /// 5. anything else is [`MusicGptWebhook::Other`].
    ///
    /// `lyrics_timestamped` is decoded only on request
    /// ([`ConversionDelivery::timed_lyrics`]), so a malformed one does not
    /// hide the audio URLs.
    pub fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        const WHAT: &str = "MusicGPT webhook body";
        let text = String::from_utf8_lossy(body);
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| WebhookError::payload(WHAT, error, &text))?;
        let Value::Object(object) = &value else {
            return Err(WebhookError::payload(WHAT, "not a JSON object", &text));
        };
        let string = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        let kind = string("conversion_type").map(|kind| kind.to_ascii_lowercase());
        let cover = |value| {
            MusicGptWebhook::Cover(CoverDelivery {
                task_id: string("task_id"),
                image_path: string("image_path"),
                raw: value,
            })
        };
        let lyrics = |value| {
            MusicGptWebhook::Lyrics(LyricsDelivery {
                task_id: string("task_id"),
                lyrics: string("lyrics"),
                lyrics_timestamped: string("lyrics_timestamped"),
                raw: value,
            })
        };
        match kind.as_deref() {
            Some("cover") => return Ok(cover(value.clone())),
            Some("lyrics") => return Ok(lyrics(value.clone())),
            _ => {}
        }
        if let Some(conversion_id) = string("conversion_id") {
            let payload: WebhookPayload = serde_json::from_value(value.clone())
                .map_err(|error| WebhookError::payload(WHAT, error, &text))?;
            return Ok(MusicGptWebhook::Conversion(ConversionDelivery {
                conversion_id,
                payload,
            }));
        }
        if kind.is_none() {
            if object.contains_key("image_path") {
                return Ok(cover(value.clone()));
            }
            if object.contains_key("lyrics_timestamped") || object.contains_key("lyrics") {
                return Ok(lyrics(value.clone()));
            }
        }
        Ok(MusicGptWebhook::Other(value))
    }
}

impl ConversionDelivery {
    /// The task this conversion belongs to.
    pub fn task_id(&self) -> Option<&str> {
        self.payload.task_id.as_deref()
    }

    /// Whether the delivery reports success (`success` absent counts as
    /// success, as the documented sample always sends it `true`).
    pub fn succeeded(&self) -> bool {
        self.payload.success != Some(false)
    }

    /// URL of the generated audio (`conversion_path`, MP3).
    pub fn audio_url(&self) -> Option<&str> {
        self.payload.conversion_path.as_deref()
    }

    /// URL of the generated audio as WAV (`conversion_path_wav`), when sent.
    pub fn audio_url_wav(&self) -> Option<&str> {
        self.payload.conversion_path_wav.as_deref()
    }

    /// The timed lyrics, decoded from their JSON string (empty when absent).
    pub fn timed_lyrics(&self) -> Result<Vec<TimedLyricLine>, WebhookError> {
        self.payload
            .lyrics_timestamped
            .as_deref()
            .map_or_else(|| Ok(Vec::new()), decode_timed_lyrics)
    }
}

impl LyricsDelivery {
    /// The timed lyrics, decoded from their JSON string (empty when absent).
    pub fn timed_lyrics(&self) -> Result<Vec<TimedLyricLine>, WebhookError> {
        self.lyrics_timestamped
            .as_deref()
            .map_or_else(|| Ok(Vec::new()), decode_timed_lyrics)
    }
}

impl TimedLyricLine {
    /// Whether the line is a section marker (`[Verse 1]`) rather than sung
    /// text.
    pub fn is_section_marker(&self) -> bool {
        let text = self.text.trim();
        text.len() > 2 && text.starts_with('[') && text.ends_with(']')
    }
}

/// Decodes a `lyrics_timestamped` string: a JSON array of `{index, text,
/// start, end}` (times in milliseconds) encoded as a string. An empty string
/// gives no lines; anything that is not such an array, or holds negative
/// numbers, is an error.
///
/// ```
/// let lines = songbind::webhook::musicgpt::decode_timed_lyrics(
///     r#"[{"index": 1, "text": "Long as I can remember", "start": 7680, "end": 10240}]"#,
/// )?;
/// assert_eq!(lines[0].end_ms - lines[0].start_ms, 2560);
/// # Ok::<(), songbind::webhook::WebhookError>(())
/// ```
pub fn decode_timed_lyrics(text: &str) -> Result<Vec<TimedLyricLine>, WebhookError> {
    const WHAT: &str = "MusicGPT lyrics_timestamped";
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let lines: Vec<LyricsTimestampLine> =
        serde_json::from_str(text).map_err(|error| WebhookError::payload(WHAT, error, text))?;
    lines
        .into_iter()
        .map(|line| {
            let negative = |field: &str| {
                WebhookError::payload(
                    WHAT,
                    format!("line {}: `{field}` is out of range", line.index),
                    text,
                )
            };
            Ok(TimedLyricLine {
                index: u32::try_from(line.index).map_err(|_| negative("index"))?,
                start_ms: u64::try_from(line.start).map_err(|_| negative("start"))?,
                end_ms: u64::try_from(line.end).map_err(|_| negative("end"))?,
                text: line.text,
            })
        })
        .collect()
}

/// Re-reads a delivered conversion with `GET /byId` and returns the
/// provider's record only when it agrees with the delivery.
///
/// The rule (MusicGPT signs nothing, so the provider's word is the truth):
///
/// * `/byId?conversionType=REMIX&conversion_id=<the delivery's id>` must
///   answer `success` (not `false`) with a `conversion`;
/// * its `conversion_id` and `task_id`, where given, must equal the
///   delivery's;
/// * for a successful delivery, the status must be `COMPLETED` (any case),
///   `audio_url` must be set, and when the delivery names audio URLs, the
///   provider's `audio_url` must be one of them, compared without the query
///   string and fragment (signed URLs change their query);
/// * for a delivery reporting failure, the status must be `ERROR` or
///   `FAILED`: the answer is then [`Error::JobFailed`] with the provider's
///   message.
///
/// Disagreement is an [`Error::Webhook`] saying where they differ; a
/// provider error answer maps through [`Error::from_response`]. Use the
/// returned [`Conversion`] (not the delivery) for what you store.
pub async fn confirm(
    client: &songbind_musicgpt::Client,
    delivery: &ConversionDelivery,
) -> Result<Conversion> {
    let answer = match client
        .get_conversion_by_id()
        .conversion_type("REMIX")
        .conversion_id(delivery.conversion_id.as_str())
        .send()
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(error) => return Err(from_generated(ProviderName::MusicGpt, error).await),
    };
    let conversion_id = delivery.conversion_id.clone();
    let disagree = |reason: String| -> Error {
        WebhookError::NotConfirmed {
            conversion_id: conversion_id.clone(),
            reason,
        }
        .into()
    };
    if answer.success == Some(false) {
        return Err(disagree("/byId answered success: false".to_owned()));
    }
    let Some(conversion) = answer.conversion else {
        return Err(disagree("/byId answered without a conversion".to_owned()));
    };
    if let Some(id) = conversion
        .conversion_id
        .as_deref()
        .filter(|id| *id != delivery.conversion_id)
    {
        return Err(disagree(format!("/byId answered conversion {id}")));
    }
    if let (Some(theirs), Some(ours)) = (conversion.task_id.as_deref(), delivery.task_id())
        && theirs != ours
    {
        return Err(disagree(format!(
            "/byId says task {theirs}, the delivery says task {ours}"
        )));
    }
    let status = conversion.status.as_deref().unwrap_or("");
    if !delivery.succeeded() {
        return if status.eq_ignore_ascii_case("ERROR") || status.eq_ignore_ascii_case("FAILED") {
            Err(Error::JobFailed {
                provider: ProviderName::MusicGpt,
                id: delivery.conversion_id.clone(),
                message: conversion
                    .status_msg
                    .clone()
                    .or_else(|| delivery.payload.reason.clone())
                    .unwrap_or_else(|| status.to_owned()),
                // The task was taken: its id finds it again.
                resume: delivery
                    .task_id()
                    .map(|task| Box::new(ResumeWith::TaskId(task.to_owned()))),
            })
        } else {
            Err(disagree(format!(
                "the delivery reports failure, /byId says status {status:?}"
            )))
        };
    }
    if !status.eq_ignore_ascii_case("COMPLETED") {
        return Err(disagree(format!(
            "/byId says status {status:?}, not COMPLETED"
        )));
    }
    let Some(audio_url) = conversion.audio_url.as_deref() else {
        return Err(disagree("/byId gives no audio_url".to_owned()));
    };
    let delivered: Vec<&str> = [delivery.audio_url(), delivery.audio_url_wav()]
        .into_iter()
        .flatten()
        .collect();
    if !delivered.is_empty()
        && !delivered
            .iter()
            .any(|url| without_query(url) == without_query(audio_url))
    {
        return Err(disagree(format!(
            "/byId gives audio_url {}, the delivery {}",
            without_query(audio_url),
            delivered
                .iter()
                .map(|url| without_query(url))
                .collect::<Vec<_>>()
                .join(" and ")
        )));
    }
    Ok(conversion)
}

/// `url` without its query string and fragment (which may hold a signature).
fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_query_drops_query_and_fragment() {
        assert_eq!(without_query("https://a/b.mp3?sig=1#x"), "https://a/b.mp3");
        assert_eq!(without_query("https://a/b.mp3"), "https://a/b.mp3");
    }

    #[test]
    fn negative_times_are_refused() {
        let error =
            decode_timed_lyrics(r#"[{"index":0,"text":"x","start":-1,"end":0}]"#).unwrap_err();
        assert!(error.to_string().contains("`start`"), "{error}");
    }

    #[test]
    fn empty_timed_lyrics_string_gives_no_lines() {
        assert_eq!(decode_timed_lyrics("  ").unwrap(), Vec::new());
    }

    #[test]
    fn section_markers_are_recognised() {
        let line = |text: &str| TimedLyricLine {
            index: 0,
            text: text.into(),
            start_ms: 0,
            end_ms: 0,
        };
        assert!(line("[Verse 1]").is_section_marker());
        assert!(!line("Oh!").is_section_marker());
        assert!(!line("[]").is_section_marker());
    }
}
