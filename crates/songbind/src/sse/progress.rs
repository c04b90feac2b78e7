//! What is known about a song so far, folded from its stream's chunks.
//!
//! A Soundverse stream reports two versions of one song, interleaved; a
//! caller wants the result per version and one answer to "is it done?".
//! [`SongProgress`] is that answer; [`super::SoundverseEventStream`] keeps one
//! up to date, and it can fold chunks from anywhere else with
//! [`SongProgress::apply`].

use serde_json::Value;

use super::event::{SoundverseChunk, SoundverseEvent};

/// One of the two versions Soundverse produces per request.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SongVersion {
    /// The version number (1 or 2).
    pub version: u32,
    /// Where it can be played while it is generated (`streaming_ready`).
    pub stream_url: Option<String>,
    /// The finished audio file (`completed`).
    pub audio_url: Option<String>,
    /// The lyrics sections of the final `completed` chunk.
    pub lyrics_sections: Option<Vec<Value>>,
}

impl SongVersion {
    fn new(version: u32) -> Self {
        Self {
            version,
            stream_url: None,
            audio_url: None,
            lyrics_sections: None,
        }
    }
}

/// The state of one generation (or extension, or remix), folded from its
/// chunks in order.
///
/// # When a song is complete
///
/// [`SongProgress::is_complete`] is true once **either** a chunk carried
/// `isComplete: true` (the provider's own final word) **or** both versions 1
/// and 2 have an audio URL. Soundverse documents two versions per request,
/// so one audio URL alone is not the end: a stream that stops after it ends
/// with [`crate::Error::StreamEndedEarly`], and the URL already received
/// stays readable here.
///
/// A `completed` chunk that names no version (as on the v6 page's sample)
/// is taken to be the first version that has no audio yet (assumed: the
/// pages never say which version such a chunk belongs to). The same holds
/// for lyrics sections without a version. Versions other than 1 and 2 are
/// not tracked (the chunk is still yielded by the stream).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SongProgress {
    /// The generation's id (`message_id`), once sent.
    pub message_id: Option<String>,
    /// The remix job's id (v7 `job_created`), once sent.
    pub job_id: Option<String>,
    /// The song's title, once sent.
    pub song_name: Option<String>,
    /// The album art's URL, once sent.
    pub album_art: Option<String>,
    /// The last `status` received.
    pub status: Option<String>,
    /// The last progress received, in percent.
    pub progress: Option<u8>,
    /// Versions 1 and 2, in that order.
    pub versions: [SongVersion; 2],
    /// Whether a chunk said `isComplete: true`.
    pub provider_said_complete: bool,
    /// Whether a [`SoundverseEvent::Failed`] arrived.
    pub failed: bool,
    /// The failure's message, if the provider gave one.
    pub error: Option<String>,
}

impl Default for SongProgress {
    fn default() -> Self {
        Self {
            message_id: None,
            job_id: None,
            song_name: None,
            album_art: None,
            status: None,
            progress: None,
            versions: [SongVersion::new(1), SongVersion::new(2)],
            provider_said_complete: false,
            failed: false,
            error: None,
        }
    }
}

impl SongProgress {
    /// Nothing known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one chunk in. Fields a chunk does not send keep their value.
    pub fn apply(&mut self, chunk: &SoundverseChunk) {
        set(&mut self.message_id, chunk.message_id.as_deref());
        set(&mut self.song_name, chunk.song_name.as_deref());
        set(&mut self.album_art, chunk.album_art.as_deref());
        set(&mut self.status, chunk.status.as_deref());
        if chunk.progress.is_some() {
            self.progress = chunk.progress;
        }
        self.provider_said_complete |= chunk.is_complete;
        match &chunk.event {
            SoundverseEvent::JobCreated { job_id } => set(&mut self.job_id, Some(job_id)),
            SoundverseEvent::StreamingReady {
                version,
                stream_url,
            } => {
                if let Some(slot) = self.version_mut(*version) {
                    slot.stream_url = Some(stream_url.clone());
                }
            }
            SoundverseEvent::Completed {
                version,
                audio_url: Some(audio_url),
                ..
            } => {
                let known = self
                    .versions
                    .iter()
                    .any(|v| v.audio_url.as_ref() == Some(audio_url));
                let slot = match version {
                    Some(version) => self.version_mut(*version),
                    None if known => None,
                    None => self.versions.iter_mut().find(|v| v.audio_url.is_none()),
                };
                if let Some(slot) = slot {
                    slot.audio_url = Some(audio_url.clone());
                }
            }
            SoundverseEvent::LyricsSections { version, sections } => {
                let slot = match version {
                    Some(version) => self.version_mut(*version),
                    None => self
                        .versions
                        .iter_mut()
                        .find(|v| v.lyrics_sections.is_none()),
                };
                if let Some(slot) = slot {
                    slot.lyrics_sections = Some(sections.clone());
                }
            }
            SoundverseEvent::Failed { error } => {
                self.failed = true;
                self.error = error.clone();
            }
            _ => {}
        }
    }

    /// Whether the song is done: see the type's documentation for the rule.
    pub fn is_complete(&self) -> bool {
        self.provider_said_complete || self.versions.iter().all(|v| v.audio_url.is_some())
    }

    /// Whether the stream may end here: the song is complete or has failed.
    pub fn is_finished(&self) -> bool {
        self.is_complete() || self.failed
    }

    /// Version 1 or 2.
    pub fn version(&self, version: u32) -> Option<&SongVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The audio URLs received so far, version 1 first.
    pub fn audio_urls(&self) -> impl Iterator<Item = &str> {
        self.versions.iter().filter_map(|v| v.audio_url.as_deref())
    }

    fn version_mut(&mut self, version: u32) -> Option<&mut SongVersion> {
        self.versions.iter_mut().find(|v| v.version == version)
    }
}

/// Replaces `field` with `value` when one was sent (reusing the allocation
/// when it is unchanged, as most chunks repeat the same ids).
fn set(field: &mut Option<String>, value: Option<&str>) {
    if let Some(value) = value
        && field.as_deref() != Some(value)
    {
        *field = Some(value.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(data: &str) -> SoundverseChunk {
        match SoundverseChunk::decode(data, "message") {
            Ok(chunk) => chunk,
            Err(e) => panic!("{data}: {e}"),
        }
    }

    #[test]
    fn complete_once_both_versions_have_audio() {
        let mut song = SongProgress::new();
        song.apply(&chunk(
            r#"{"status": "completed", "version": 2, "audio_url": "https://a/2"}"#,
        ));
        assert!(!song.is_complete());
        song.apply(&chunk(
            r#"{"status": "completed", "version": 1, "audio_url": "https://a/1"}"#,
        ));
        assert!(song.is_complete());
        assert_eq!(
            song.audio_urls().collect::<Vec<_>>(),
            ["https://a/1", "https://a/2"]
        );
    }

    #[test]
    fn complete_when_the_provider_says_so() {
        let mut song = SongProgress::new();
        song.apply(&chunk(r#"{"status": "completed", "isComplete": true}"#));
        assert!(song.is_complete());
    }

    #[test]
    fn versionless_audio_fills_the_first_free_version_once() {
        let mut song = SongProgress::new();
        let first = chunk(r#"{"status": "completed", "audio_url": "https://a/x"}"#);
        song.apply(&first);
        song.apply(&first);
        assert_eq!(song.versions[0].audio_url.as_deref(), Some("https://a/x"));
        assert_eq!(song.versions[1].audio_url, None);
        song.apply(&chunk(
            r#"{"status": "completed", "audio_url": "https://a/y"}"#,
        ));
        assert_eq!(song.versions[1].audio_url.as_deref(), Some("https://a/y"));
    }

    #[test]
    fn failure_finishes_without_completing() {
        let mut song = SongProgress::new();
        song.apply(&chunk(r#"{"status": "failed", "error": "no GPU"}"#));
        assert!(song.is_finished());
        assert!(!song.is_complete());
        assert_eq!(song.error.as_deref(), Some("no GPU"));
    }

    #[test]
    fn versions_other_than_one_and_two_are_ignored() {
        let mut song = SongProgress::new();
        song.apply(&chunk(
            r#"{"status": "streaming", "stream_url": "https://s/3", "version": 3}"#,
        ));
        assert_eq!(
            song,
            SongProgress {
                status: Some("streaming".into()),
                ..SongProgress::new()
            }
        );
    }
}
