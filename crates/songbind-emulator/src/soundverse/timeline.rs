//! The event timelines of the Soundverse streams: which chunks a job sends,
//! in which order, with which fields, and how long it waits between them.
//!
//! The v6 chunks carry exactly the fields the Generate Song (v6) page lists
//! for each stage (plus `version` and `operation` where noted); the v7 chunks
//! carry the fields of the spec's constructed v7 examples.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Operation;
use crate::State;
use crate::sse::Frame;

/// How long progress holds at 90 before the first `completed` chunk (real
/// time), and how often a `: keepalive` comment is sent meanwhile.
const HOLD_AT_90: Duration = Duration::from_secs(25);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(5);

/// What a failed job says in its `failed` chunk (and a sync 500 repeats).
pub(super) const FAILURE_MESSAGE: &str =
    "Generation failed: the model could not produce audio for this request.";

/// Everything a job's chunks name: its ids, title and output URLs.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    pub(super) operation: Operation,
    pub(super) message_id: String,
    /// The v7 `job_id` (sent by `job_created`); `None` on v6.
    pub(super) job_id: Option<String>,
    pub(super) song_name: String,
    pub(super) album_art: String,
    /// Per version (index 0 is version 1).
    pub(super) stream_urls: [String; 2],
    pub(super) audio_urls: [String; 2],
    pub(super) lyrics_sections: Vec<Value>,
    /// The job fails during processing (`[fail]` trigger).
    pub(super) fail: bool,
}

impl Plan {
    /// A fresh job: new ids, output URLs served by the emulator.
    pub(super) fn new(
        state: &State,
        operation: Operation,
        prompt: Option<&str>,
        lyrics: Option<&str>,
        fail: bool,
    ) -> Self {
        let message_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let job_id = (operation == Operation::Remix)
            .then(|| format!("job_{}", uuid::Uuid::new_v4().simple()));
        let song_name = match operation {
            Operation::Generate => song_title(prompt.unwrap_or("")),
            Operation::Extend => "Extended Song".to_owned(),
            Operation::Remix => {
                format!("{} (Remix)", song_title(prompt.or(lyrics).unwrap_or("")))
            }
        };
        let version_url = |suffix: &str| {
            [1, 2].map(|v| state.output_url(&format!("{message_id}_v{v}{suffix}.wav")))
        };
        Self {
            operation,
            job_id,
            album_art: state.output_url(&format!("{message_id}_album_art.png")),
            stream_urls: version_url("_stream"),
            audio_urls: version_url(""),
            lyrics_sections: lyrics_sections(lyrics, &song_name),
            song_name,
            message_id,
            fail,
        }
    }

    /// The frames of this job's stream (and of its silent sync run).
    pub(super) fn frames(&self) -> Vec<Frame> {
        match self.operation {
            Operation::Generate | Operation::Extend => self.v6_frames(),
            Operation::Remix => self.v7_frames(),
        }
    }

    /// initializing, validated, streaming, processing, running (progress
    /// 2..39), streaming ready for versions 1 and 2, running up to 90, a hold
    /// at 90 with keepalives, then per version: completed (audio_url),
    /// uploading, final completed (lyrics_sections). About a minute in all.
    fn v6_frames(&self) -> Vec<Frame> {
        let mut t = Timeline::default();
        let named = json!({
            "message_id": self.message_id,
            "album_art": self.album_art,
            "song_name": self.song_name,
        });
        t.event("initializing", json!({}));
        t.wait(0.4);
        t.event("validated", named.clone());
        t.wait(0.6);
        t.event("streaming", named.clone());
        t.wait(1.0);
        t.event("processing", named.clone());
        for (step, progress) in [2, 14, 27, 39].into_iter().enumerate() {
            t.wait(if step == 0 { 1.5 } else { 3.0 });
            if self.fail && progress == 27 {
                return self.failed(t);
            }
            t.event("running", with(&named, json!({ "progress": progress })));
        }
        for version in 1..=2 {
            t.wait(if version == 1 { 3.0 } else { 0.5 });
            t.event(
                "streaming",
                with(
                    &named,
                    json!({
                        "stream_url": self.stream_urls[version - 1],
                        "version": version,
                        "streaming_ready": true,
                    }),
                ),
            );
        }
        for progress in [52, 66, 78, 90] {
            t.wait(3.0);
            t.event("running", with(&named, json!({ "progress": progress })));
        }
        t.hold();
        for version in 1..=2 {
            t.wait(if version == 1 { 0.0 } else { 0.5 });
            t.event(
                "completed",
                with(
                    &named,
                    json!({
                        "progress": 100,
                        "audio_url": self.audio_urls[version - 1],
                        "version": version,
                        "operation": self.operation.name(),
                    }),
                ),
            );
            t.wait(0.3);
            t.event(
                "uploading",
                json!({ "message_id": self.message_id, "version": version }),
            );
            t.wait(1.5);
            t.event(
                "completed",
                json!({
                    "message_id": self.message_id,
                    "version": version,
                    "lyrics_sections": self.lyrics_sections,
                    "operation": self.operation.name(),
                }),
            );
        }
        t.finish()
    }

    /// job_created, validating, queued, starting, uploading, streaming with
    /// progress 0..90, a hold at 90 with keepalives, then completed for
    /// versions 1 and 2. About a minute in all.
    fn v7_frames(&self) -> Vec<Frame> {
        let mut t = Timeline::default();
        let id = json!({ "message_id": self.message_id });
        t.event("job_created", json!({ "job_id": self.job_id }));
        t.wait(0.3);
        t.event("validating", json!({}));
        t.wait(0.5);
        t.event("queued", id.clone());
        t.wait(2.0);
        t.event("starting", id.clone());
        t.wait(1.5);
        t.event("uploading", id.clone());
        for progress in (0..=90).step_by(10) {
            t.wait(if progress == 0 { 2.0 } else { 2.5 });
            if self.fail && progress == 30 {
                return self.failed(t);
            }
            t.event("streaming", with(&id, json!({ "progress": progress })));
        }
        t.hold();
        for version in 1..=2 {
            t.wait(if version == 1 { 0.0 } else { 1.0 });
            t.event(
                "completed",
                with(
                    &id,
                    json!({
                        "progress": 100,
                        "audio_url": self.audio_urls[version - 1],
                        "song_name": self.song_name,
                        "album_art": self.album_art,
                        "operation": self.operation.name(),
                        "version": version,
                    }),
                ),
            );
        }
        t.finish()
    }

    /// Ends a timeline with the `failed` chunk.
    fn failed(&self, mut t: Timeline) -> Vec<Frame> {
        t.event(
            "failed",
            json!({
                "message_id": self.message_id,
                "error": FAILURE_MESSAGE,
                "operation": self.operation.name(),
            }),
        );
        t.finish()
    }
}

/// Builds a list of frames, numbering the events.
#[derive(Default)]
struct Timeline {
    frames: Vec<Frame>,
    next_index: i64,
}

impl Timeline {
    fn wait(&mut self, seconds: f64) {
        if seconds > 0.0 {
            self.frames
                .push(Frame::Wait(Duration::from_secs_f64(seconds)));
        }
    }

    /// One chunk: `fields` plus `status`, `isComplete: false` and the next
    /// `chunkIndex`.
    fn event(&mut self, status: &str, fields: Value) {
        let mut chunk = match fields {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        chunk.insert("isComplete".into(), false.into());
        chunk.insert("status".into(), status.into());
        chunk.insert("chunkIndex".into(), self.next_index.into());
        self.next_index += 1;
        self.frames.push(Frame::Event(Value::Object(chunk)));
    }

    /// Progress holds at 90: silence, with a keepalive comment every few
    /// seconds so the connection looks alive.
    fn hold(&mut self) {
        let beats = HOLD_AT_90.as_secs() / KEEPALIVE_EVERY.as_secs();
        for _ in 0..beats {
            self.frames.push(Frame::Wait(KEEPALIVE_EVERY));
            self.frames.push(Frame::Comment("keepalive".to_owned()));
        }
    }

    /// The frames, with `isComplete: true` on the very last event.
    fn finish(mut self) -> Vec<Frame> {
        if let Some(Frame::Event(Value::Object(last))) = self
            .frames
            .iter_mut()
            .rev()
            .find(|frame| matches!(frame, Frame::Event(_)))
        {
            last.insert("isComplete".into(), true.into());
        }
        self.frames
    }
}

/// `base` with the fields of `extra` added.
fn with(base: &Value, extra: Value) -> Value {
    let mut out = base.clone();
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    out
}

/// A title from the first three significant words of a prompt, e.g. "A
/// cheerful pop song about friendship" gives "Cheerful Pop Friendship".
pub(super) fn song_title(text: &str) -> String {
    const SKIP: &[&str] = &[
        "a", "an", "the", "song", "track", "about", "with", "and", "of", "for", "in", "on", "to",
        "my", "remix", "music", "fail",
    ];
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty() && !SKIP.contains(&word.to_lowercase().as_str()))
        .take(3)
        .map(|word| {
            let mut chars = word.chars();
            let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
            first.unwrap_or_default() + &chars.as_str().to_lowercase()
        })
        .collect();
    if words.is_empty() {
        "Untitled Song".to_owned()
    } else {
        words.join(" ")
    }
}

/// Sections of four lines each ("Verse 1", "Chorus", "Verse 2", ...), 4 s a
/// line; a placeholder line when no lyrics were given (Soundverse writes
/// lyrics itself then).
fn lyrics_sections(lyrics: Option<&str>, song_name: &str) -> Vec<Value> {
    const MAX_LINES: usize = 64;
    const MAX_LINE_CHARS: usize = 200;
    let mut lines: Vec<String> = lyrics
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .take(MAX_LINES)
        .map(|line| line.chars().take(MAX_LINE_CHARS).collect())
        .collect();
    if lines.is_empty() {
        lines.push(format!("Oh, {song_name}"));
    }
    let mut start = 0.0;
    lines
        .chunks(4)
        .enumerate()
        .map(|(i, chunk)| {
            let name = if i % 2 == 1 {
                "Chorus".to_owned()
            } else {
                format!("Verse {}", i / 2 + 1)
            };
            let end = start + 4.0 * chunk.len() as f64;
            let section = json!({
                "section": name,
                "lines": chunk,
                "start_time": start,
                "end_time": end,
            });
            start = end;
            section
        })
        .collect()
}
