//! The typed stages of a Soundverse stream, decoded from one SSE event.
//!
//! The wire type is the generated [`StreamChunk`]: every field optional, one
//! open `status` string. This module turns it into one [`SoundverseEvent`]
//! case per documented stage, and keeps the raw JSON so that nothing a
//! provider adds later is lost.

use serde::Deserialize;
use serde_json::Value;
use songbind_soundverse::types::StreamChunk;

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
#[derive(Clone, Debug, PartialEq)]
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
    /// The chunk's JSON as received, unknown fields included.
    pub raw: Value,
}

impl SoundverseChunk {
    /// Decodes the `data` of one SSE event (`sse_event` is its `event:`
    /// name, `message` when none was sent).
    ///
    /// A payload that is not JSON, not an object, or whose documented fields
    /// have the wrong types is [`Error::Decode`] with the raw text. A chunk
    /// without a `status` takes the SSE event name as its status, so that
    /// `event: job_created` + `data: {"job_id": ...}` reads as
    /// [`SoundverseEvent::JobCreated`].
    pub fn decode(data: &str, sse_event: &str) -> Result<Self, Error> {
        let raw: Value = serde_json::from_str(data).map_err(|e| Error::decode(CHUNK, e, data))?;
        if !raw.is_object() {
            return Err(Error::decode(CHUNK, "expected a JSON object", data));
        }
        let wire = StreamChunk::deserialize(&raw).map_err(|e| Error::decode(CHUNK, e, data))?;
        let has_lyrics_sections = raw.get("lyrics_sections").is_some();
        let status = wire.status.clone().or_else(|| {
            (!sse_event.is_empty() && sse_event != "message").then(|| sse_event.to_owned())
        });
        let message_id = wire.message_id.clone();
        let chunk_index = wire.chunk_index;
        let is_complete = wire.is_complete == Some(true);
        let event = classify(wire, status, has_lyrics_sections, &raw);
        Ok(Self {
            event,
            message_id,
            chunk_index,
            is_complete,
            raw,
        })
    }
}

/// `progress` as a percentage (the wire type is an unbounded integer).
fn percent(progress: Option<i64>) -> Option<u8> {
    progress.map(|p| u8::try_from(p.clamp(0, 100)).unwrap_or(100))
}

/// Maps a chunk to its stage; see [`SoundverseEvent`] for the rules.
fn classify(
    wire: StreamChunk,
    status: Option<String>,
    has_lyrics_sections: bool,
    raw: &Value,
) -> SoundverseEvent {
    let version = wire.version.and_then(|v| u32::try_from(v).ok());
    let progress = percent(wire.progress);
    let error = wire.error.filter(|e| !e.trim().is_empty());
    let other = |status: Option<String>| SoundverseEvent::Other {
        status,
        raw: raw.clone(),
    };
    let Some(status) = status else {
        return match error {
            Some(error) => SoundverseEvent::Failed { error: Some(error) },
            None => other(None),
        };
    };
    match status.to_ascii_lowercase().as_str() {
        "job_created" => match wire.job_id {
            Some(job_id) => SoundverseEvent::JobCreated { job_id },
            None => other(Some(status)),
        },
        "initializing" => SoundverseEvent::Initializing,
        "validating" => SoundverseEvent::Validating,
        "queued" => SoundverseEvent::Queued,
        "starting" => SoundverseEvent::Starting,
        "validated" => SoundverseEvent::Validated {
            message_id: wire.message_id,
            song_name: wire.song_name,
            album_art: wire.album_art,
        },
        "streaming" => match (wire.stream_url, version) {
            (Some(stream_url), Some(version)) => SoundverseEvent::StreamingReady {
                version,
                stream_url,
            },
            (Some(_), None) => other(Some(status)),
            (None, _) if progress.is_some() => SoundverseEvent::Progress { status, progress },
            (None, _) => SoundverseEvent::Streaming,
        },
        "running" | "processing" => SoundverseEvent::Progress { status, progress },
        "completed" => match wire.audio_url {
            None if has_lyrics_sections => SoundverseEvent::LyricsSections {
                version,
                sections: wire
                    .lyrics_sections
                    .into_iter()
                    .map(Value::Object)
                    .collect(),
            },
            audio_url => SoundverseEvent::Completed {
                version,
                audio_url,
                progress,
            },
        },
        "uploading" => SoundverseEvent::Uploading { version },
        "failed" | "error" => SoundverseEvent::Failed { error },
        _ => match error {
            Some(error) => SoundverseEvent::Failed { error: Some(error) },
            None => other(Some(status)),
        },
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
    fn non_object_and_mistyped_payloads_are_decode_errors_with_raw_text() {
        for data in [
            "[DONE]",
            "42",
            r#"{"status": "running", "progress": "half"}"#,
        ] {
            match SoundverseChunk::decode(data, "message") {
                Err(Error::Decode { raw, .. }) => assert_eq!(raw, data),
                other => panic!("{data}: {other:?}"),
            }
        }
    }
}
