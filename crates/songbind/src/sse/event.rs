//! The typed stages of a Soundverse stream, decoded from one SSE event.
//!
//! Each event's `data` is deserialized in one pass straight into a private
//! wire struct whose strings borrow from the text where they can
//! ([`Cow`]); no [`serde_json::Value`] is built on the way. The wire struct
//! follows the generated [`songbind_soundverse::types::StreamChunk`] field
//! for field (every field optional, the same types, unknown fields
//! tolerated), and is then turned into one [`SoundverseEvent`] case per
//! documented stage. The chunk keeps its text, so its JSON stays available
//! ([`SoundverseChunk::raw`], parsed on first use) and nothing a provider
//! adds later is lost.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::Error;

/// What [`crate::Error::Decode`] names when a chunk cannot be read.
const CHUNK: &str = "Soundverse stream chunk";

/// One stage of a Soundverse generate, extend or remix stream.
///
/// The documented statuses each have a case; a status this crate does not
/// know (or a chunk without one) becomes [`SoundverseEvent::Other`] with the
/// chunk's raw JSON, since Soundverse adds statuses over time. The
/// `message_id` and `chunkIndex` every chunk may carry are on the
/// [`SoundverseChunk`] around the event.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SoundverseEvent {
    /// `job_created`: newer v7 streams begin with the remix job's id.
    JobCreated {
        /// The remix job's id.
        job_id: String,
    },
    /// `initializing`: sent as soon as the request arrives.
    Initializing,
    /// `validating` (v7): the request is being validated.
    Validating,
    /// `queued` (v7): accepted, waiting for the model.
    Queued,
    /// `starting` (v7): the job is being prepared.
    Starting,
    /// `validated` (v6): the request was validated and billed; the song has
    /// its id, title and cover from here on.
    Validated {
        /// The generation's id (also on the [`SoundverseChunk`]).
        message_id: Option<String>,
        /// The song's title.
        song_name: Option<String>,
        /// The album art's URL.
        album_art: Option<String>,
    },
    /// `streaming` without a stream URL or progress: generation has begun.
    Streaming,
    /// `running`, `processing` or `streaming` with a progress value.
    Progress {
        /// The status as sent (`running`, `processing`, `streaming`, ...).
        status: String,
        /// Percent done, clamped to 0..=100 (`processing` sends none).
        progress: Option<u8>,
    },
    /// `streaming` with `stream_url` and `version`: one version can be played
    /// while it is still being generated.
    StreamingReady {
        /// Which version (1 or 2).
        version: u32,
        /// Where to stream it from.
        stream_url: String,
    },
    /// `completed` with an audio URL (or with neither audio URL nor lyrics
    /// sections): a version's audio is ready.
    Completed {
        /// Which version, when the chunk says (the v6 page's sample does not).
        version: Option<u32>,
        /// The finished audio file.
        audio_url: Option<String>,
        /// Percent done (100 in every sample).
        progress: Option<u8>,
    },
    /// `uploading`: a version's audio (v6), or the reference audio (v7), is
    /// being uploaded.
    Uploading {
        /// Which version, when the chunk says (v7 chunks do not).
        version: Option<u32>,
    },
    /// The final `completed` chunk of a version, carrying `lyrics_sections`
    /// (and no audio URL).
    LyricsSections {
        /// Which version, when the chunk says.
        version: Option<u32>,
        /// The sections as sent; Soundverse does not publish their shape.
        sections: Vec<Value>,
    },
    /// `failed` (or `error`), or an unknown status with an `error` message:
    /// the generation failed.
    Failed {
        /// The provider's message, if it sent one.
        error: Option<String>,
    },
    /// A stage this crate does not know, kept whole.
    Other {
        /// The chunk's status (or SSE event name), if it had one.
        status: Option<String>,
        /// The chunk's JSON.
        raw: Value,
    },
}

/// One decoded chunk: the typed [`SoundverseEvent`] plus what every chunk
/// may carry, so that no stage loses its generation id or position.
///
/// Two chunks are equal when their typed fields are and their JSON is the
/// same value (however it was written).
#[derive(Clone)]
#[non_exhaustive]
pub struct SoundverseChunk {
    /// The stage this chunk reports.
    pub event: SoundverseEvent,
    /// The generation's id, when this chunk sent it (from `validated` on).
    pub message_id: Option<String>,
    /// The chunk's `chunkIndex`, when sent.
    pub chunk_index: Option<i64>,
    /// The chunk's `isComplete` flag (`false` when absent).
    pub is_complete: bool,
    /// The chunk's `status` exactly as sent (`None` when it sent none; the
    /// [`event`](Self::event) may then take its stage from the SSE event
    /// name instead).
    pub status: Option<String>,
    /// The song's title, when this chunk sent it (any stage may).
    pub song_name: Option<String>,
    /// The album art's URL, when this chunk sent it (any stage may).
    pub album_art: Option<String>,
    /// The chunk's `progress`, clamped to 0..=100, when sent.
    pub progress: Option<u8>,
    /// The chunk's `version`, when sent and in `u32`'s range.
    pub version: Option<u32>,
    /// The event's `data` as received.
    data: String,
    /// `data` as JSON, parsed on first use.
    raw: OnceLock<Value>,
}

impl SoundverseChunk {
    /// Decodes the `data` of one SSE event (`sse_event` is its `event:`
    /// name; empty or `message` when none was sent).
    ///
    /// A payload that is not JSON, not an object, or whose documented fields
    /// have the wrong types is [`Error::Decode`] with the raw text; unknown
    /// fields are accepted (and must still be valid JSON). A chunk without a
    /// `status` takes the SSE event name as its status, so that
    /// `event: job_created` + `data: {"job_id": ...}` reads as
    /// [`SoundverseEvent::JobCreated`].
    pub fn decode(data: &str, sse_event: &str) -> Result<Self, Error> {
        Self::decode_owned(data.to_owned(), sse_event)
    }

    /// [`SoundverseChunk::decode`], keeping `data` without a copy.
    pub(crate) fn decode_owned(data: String, sse_event: &str) -> Result<Self, Error> {
        let wire: Wire<'_> =
            serde_json::from_str(&data).map_err(|e| Error::decode(CHUNK, e, &data))?;
        let sent_status = wire.status.clone().map(Cow::into_owned);
        let stage = match &wire.status {
            Some(status) => Some(status.clone()),
            None => (!sse_event.is_empty() && sse_event != "message")
                .then(|| Cow::Owned(sse_event.to_owned())),
        };
        let message_id = wire.message_id.clone().map(Cow::into_owned);
        let chunk_index = wire.chunk_index;
        let is_complete = wire.is_complete == Some(true);
        let song_name = wire.song_name.clone().map(Cow::into_owned);
        let album_art = wire.album_art.clone().map(Cow::into_owned);
        let progress = percent(wire.progress);
        let version = wire.version.and_then(|v| u32::try_from(v).ok());
        let (event, raw) = match classify(wire, stage) {
            Some(event) => (event, OnceLock::new()),
            None => {
                // A stage this crate does not know: kept whole, so its JSON
                // is needed now (rare; the JSON was checked by the pass above).
                let raw: Value = serde_json::from_str(&data).unwrap_or_default();
                let status = sent_status.clone().or_else(|| {
                    (!sse_event.is_empty() && sse_event != "message").then(|| sse_event.to_owned())
                });
                let event = SoundverseEvent::Other {
                    status,
                    raw: raw.clone(),
                };
                (event, OnceLock::from(raw))
            }
        };
        Ok(Self {
            event,
            message_id,
            chunk_index,
            is_complete,
            status: sent_status,
            song_name,
            album_art,
            progress,
            version,
            data,
            raw,
        })
    }

    /// The chunk's JSON as received, unknown fields included (parsed from
    /// [`SoundverseChunk::data`] on first use, then kept).
    pub fn raw(&self) -> &Value {
        self.raw
            .get_or_init(|| serde_json::from_str(&self.data).unwrap_or_default())
    }

    /// The event's `data` text as received (multi-line data joined with
    /// `\n`).
    pub fn data(&self) -> &str {
        &self.data
    }
}

impl PartialEq for SoundverseChunk {
    fn eq(&self, other: &Self) -> bool {
        self.event == other.event
            && self.message_id == other.message_id
            && self.chunk_index == other.chunk_index
            && self.is_complete == other.is_complete
            && self.status == other.status
            && self.song_name == other.song_name
            && self.album_art == other.album_art
            && self.progress == other.progress
            && self.version == other.version
            && (self.data == other.data || self.raw() == other.raw())
    }
}

impl fmt::Debug for SoundverseChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoundverseChunk")
            .field("event", &self.event)
            .field("message_id", &self.message_id)
            .field("chunk_index", &self.chunk_index)
            .field("is_complete", &self.is_complete)
            .field("status", &self.status)
            .field("song_name", &self.song_name)
            .field("album_art", &self.album_art)
            .field("progress", &self.progress)
            .field("version", &self.version)
            .field("data", &self.data)
            .finish()
    }
}

/// `progress` as a percentage (the wire type is an unbounded integer).
fn percent(progress: Option<i64>) -> Option<u8> {
    progress.map(|p| u8::try_from(p.clamp(0, 100)).unwrap_or(100))
}

/// Maps a chunk to its stage (see [`SoundverseEvent`] for the rules), or
/// `None` for [`SoundverseEvent::Other`], which the caller builds.
fn classify(wire: Wire<'_>, status: Option<Cow<'_, str>>) -> Option<SoundverseEvent> {
    let owned = |text: Option<Cow<'_, str>>| text.map(Cow::into_owned);
    let version = wire.version.and_then(|v| u32::try_from(v).ok());
    let progress = percent(wire.progress);
    let error = wire
        .error
        .filter(|e| !e.trim().is_empty())
        .map(Cow::into_owned);
    let Some(status) = status else {
        return error.map(|error| SoundverseEvent::Failed { error: Some(error) });
    };
    let lower = if status.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(status.to_ascii_lowercase())
    } else {
        Cow::Borrowed(&*status)
    };
    Some(match &*lower {
        "job_created" => SoundverseEvent::JobCreated {
            job_id: owned(wire.job_id)?,
        },
        "initializing" => SoundverseEvent::Initializing,
        "validating" => SoundverseEvent::Validating,
        "queued" => SoundverseEvent::Queued,
        "starting" => SoundverseEvent::Starting,
        "validated" => SoundverseEvent::Validated {
            message_id: owned(wire.message_id),
            song_name: owned(wire.song_name),
            album_art: owned(wire.album_art),
        },
        "streaming" => match (wire.stream_url, version) {
            (Some(stream_url), Some(version)) => SoundverseEvent::StreamingReady {
                version,
                stream_url: stream_url.into_owned(),
            },
            (Some(_), None) => return None,
            (None, _) if progress.is_some() => SoundverseEvent::Progress {
                status: status.into_owned(),
                progress,
            },
            (None, _) => SoundverseEvent::Streaming,
        },
        "running" | "processing" => SoundverseEvent::Progress {
            status: status.into_owned(),
            progress,
        },
        "completed" => match (wire.audio_url, wire.lyrics_sections) {
            (None, Some(sections)) => SoundverseEvent::LyricsSections {
                version,
                sections: sections.into_iter().map(Value::Object).collect(),
            },
            (audio_url, _) => SoundverseEvent::Completed {
                version,
                audio_url: owned(audio_url),
                progress,
            },
        },
        "uploading" => SoundverseEvent::Uploading { version },
        "failed" | "error" => SoundverseEvent::Failed { error },
        _ => SoundverseEvent::Failed {
            error: Some(error?),
        },
    })
}

// ---- the wire struct --------------------------------------------------------

/// One chunk as sent: the fields of the generated `StreamChunk`, with the
/// same types, strings borrowed from the text unless they hold escapes.
///
/// Deserialized by hand rather than derived, to read exactly what the
/// former `Value` → `StreamChunk` path read: a JSON object only (a derived
/// struct also accepts an array), a repeated key is not an error (the last
/// one wins, as in a `Value`), and unknown fields are skipped but still
/// checked to be valid JSON (numbers in range, no lone surrogates), as
/// parsing them into a `Value` did.
#[derive(Default)]
struct Wire<'a> {
    status: Option<Cow<'a, str>>,
    message_id: Option<Cow<'a, str>>,
    job_id: Option<Cow<'a, str>>,
    song_name: Option<Cow<'a, str>>,
    album_art: Option<Cow<'a, str>>,
    stream_url: Option<Cow<'a, str>>,
    audio_url: Option<Cow<'a, str>>,
    error: Option<Cow<'a, str>>,
    chunk_index: Option<i64>,
    progress: Option<i64>,
    version: Option<i64>,
    is_complete: Option<bool>,
    lyrics_sections: Option<Vec<Map<String, Value>>>,
}

impl<'de> Deserialize<'de> for Wire<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(WireVisitor)
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = Wire<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire<'de>, A::Error> {
        let mut wire = Wire::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Status => wire.status = text(&mut map)?,
                Key::MessageId => wire.message_id = text(&mut map)?,
                Key::JobId => wire.job_id = text(&mut map)?,
                Key::SongName => wire.song_name = text(&mut map)?,
                Key::AlbumArt => wire.album_art = text(&mut map)?,
                Key::StreamUrl => wire.stream_url = text(&mut map)?,
                Key::AudioUrl => wire.audio_url = text(&mut map)?,
                Key::Error => wire.error = text(&mut map)?,
                Key::Operation => {
                    text(&mut map)?;
                }
                Key::ChunkIndex => wire.chunk_index = map.next_value()?,
                Key::Progress => wire.progress = map.next_value()?,
                Key::Version => wire.version = map.next_value()?,
                Key::IsComplete => wire.is_complete = map.next_value()?,
                Key::StreamingReady => {
                    map.next_value::<Option<bool>>()?;
                }
                Key::LyricsSections => wire.lyrics_sections = Some(map.next_value()?),
                Key::Unknown => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok(wire)
    }
}

/// An optional string field's value.
fn text<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Cow<'de, str>>, A::Error> {
    Ok(map.next_value::<Option<Text<'de>>>()?.map(|t| t.0))
}

/// The keys of `StreamChunk`, and every other key.
enum Key {
    Status,
    MessageId,
    JobId,
    SongName,
    AlbumArt,
    StreamUrl,
    AudioUrl,
    Error,
    Operation,
    ChunkIndex,
    Progress,
    Version,
    IsComplete,
    StreamingReady,
    LyricsSections,
    Unknown,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "status" => Key::Status,
            "message_id" => Key::MessageId,
            "job_id" => Key::JobId,
            "song_name" => Key::SongName,
            "album_art" => Key::AlbumArt,
            "stream_url" => Key::StreamUrl,
            "audio_url" => Key::AudioUrl,
            "error" => Key::Error,
            "operation" => Key::Operation,
            "chunkIndex" => Key::ChunkIndex,
            "progress" => Key::Progress,
            "version" => Key::Version,
            "isComplete" => Key::IsComplete,
            "streaming_ready" => Key::StreamingReady,
            "lyrics_sections" => Key::LyricsSections,
            _ => Key::Unknown,
        })
    }
}

/// A JSON string, borrowed from the text when it holds no escape.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(text)))
    }
}

/// Any JSON value, read in full (numbers converted, strings unescaped into
/// the parser's scratch space) as a `Value` would be, and dropped.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_none<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Checked, D::Error> {
        Checked::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> SoundverseEvent {
        match SoundverseChunk::decode(data, "message") {
            Ok(chunk) => chunk.event,
            Err(e) => panic!("{data}: {e}"),
        }
    }

    #[test]
    fn streaming_with_url_and_version_is_streaming_ready() {
        assert_eq!(
            event(r#"{"status": "streaming", "stream_url": "https://s/1", "version": 2}"#),
            SoundverseEvent::StreamingReady {
                version: 2,
                stream_url: "https://s/1".into()
            }
        );
    }

    #[test]
    fn v7_streaming_with_progress_is_progress() {
        assert_eq!(
            event(r#"{"status": "streaming", "progress": 90}"#),
            SoundverseEvent::Progress {
                status: "streaming".into(),
                progress: Some(90)
            }
        );
    }

    #[test]
    fn out_of_range_progress_is_clamped() {
        assert_eq!(
            event(r#"{"status": "running", "progress": 250}"#),
            SoundverseEvent::Progress {
                status: "running".into(),
                progress: Some(100)
            }
        );
        assert_eq!(
            event(r#"{"status": "running", "progress": -3}"#),
            SoundverseEvent::Progress {
                status: "running".into(),
                progress: Some(0)
            }
        );
    }

    #[test]
    fn completed_with_lyrics_sections_and_no_audio_is_lyrics_sections() {
        assert_eq!(
            event(
                r#"{"status": "completed", "version": 1, "lyrics_sections": [{"section": "Verse"}]}"#
            ),
            SoundverseEvent::LyricsSections {
                version: Some(1),
                sections: vec![serde_json::json!({"section": "Verse"})]
            }
        );
        assert_eq!(
            event(r#"{"status": "completed", "version": 1, "lyrics_sections": []}"#),
            SoundverseEvent::LyricsSections {
                version: Some(1),
                sections: vec![]
            }
        );
    }

    #[test]
    fn unknown_status_keeps_raw_json() {
        let data = r#"{"status": "mastering", "extra": [1, 2]}"#;
        assert_eq!(
            event(data),
            SoundverseEvent::Other {
                status: Some("mastering".into()),
                raw: serde_json::from_str(data).unwrap_or_default()
            }
        );
    }

    #[test]
    fn unknown_status_with_error_message_is_failed() {
        assert_eq!(
            event(r#"{"status": "aborted", "error": "GPU lost"}"#),
            SoundverseEvent::Failed {
                error: Some("GPU lost".into())
            }
        );
    }

    #[test]
    fn sse_event_name_stands_in_for_a_missing_status() {
        let chunk = SoundverseChunk::decode(r#"{"job_id": "job_1"}"#, "job_created");
        assert!(matches!(
            chunk.map(|c| c.event),
            Ok(SoundverseEvent::JobCreated { job_id }) if job_id == "job_1"
        ));
    }

    #[test]
    fn chunk_keeps_its_text_and_parses_raw_on_demand() {
        let data = r#"{"status": "Running", "progress": 7, "song_name": "caf\u00e9", "x": {"y": [1, 2.5, null]}}"#;
        let chunk = SoundverseChunk::decode(data, "message").expect("decodes");
        assert_eq!(chunk.data(), data);
        assert_eq!(chunk.status.as_deref(), Some("Running"));
        assert_eq!(chunk.song_name.as_deref(), Some("café"));
        assert_eq!(chunk.progress, Some(7));
        assert_eq!(
            chunk.raw(),
            &serde_json::json!({"status": "Running", "progress": 7, "song_name": "café", "x": {"y": [1, 2.5, null]}})
        );
        // Equal as JSON, however it was written.
        let pretty = serde_json::to_string_pretty(chunk.raw()).expect("prints");
        assert_eq!(SoundverseChunk::decode(&pretty, "").ok(), Some(chunk));
    }

    #[test]
    fn a_repeated_key_is_not_an_error_and_the_last_one_wins() {
        let chunk = SoundverseChunk::decode(
            r#"{"status": "running", "progress": 1, "progress": 2}"#,
            "message",
        );
        assert_eq!(chunk.map(|c| c.progress).ok(), Some(Some(2)));
    }

    #[test]
    fn null_fields_are_absent_fields() {
        assert_eq!(
            event(r#"{"status": "completed", "audio_url": null, "version": null}"#),
            SoundverseEvent::Completed {
                version: None,
                audio_url: None,
                progress: None
            }
        );
    }

    #[test]
    fn non_object_and_mistyped_payloads_are_decode_errors_with_raw_text() {
        for data in [
            "[DONE]",
            "42",
            r#"["completed"]"#,
            r#"{"status": "running", "progress": "half"}"#,
            r#"{"status": "completed", "lyrics_sections": null}"#,
            r#"{"status": "completed", "lyrics_sections": [1]}"#,
            r#"{"status": "completed", "operation": 1}"#,
            // Unknown fields are skipped, but only valid JSON is a chunk.
            r#"{"status": "running", "extra": "\ud800"}"#,
            r#"{"status": "running", "extra": 1e999}"#,
            r#"{"status": "running", "extra": [1,]}"#,
            r#"{"status": "running"} x"#,
        ] {
            match SoundverseChunk::decode(data, "message") {
                Err(Error::Decode { raw, .. }) => assert_eq!(raw, data),
                other => panic!("{data}: {other:?}"),
            }
        }
    }
}
