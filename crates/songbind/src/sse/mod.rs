//! Typed Soundverse event streams over any byte stream.
//!
//! Soundverse's generate, extend and remix endpoints answer with server-sent
//! events, one JSON chunk per event; the generated client hands back the raw
//! bytes ([`songbind_soundverse::ByteStream`]). [`SoundverseEventStream`]
//! turns those bytes into [`SoundverseChunk`]s, each holding a typed
//! [`SoundverseEvent`], and folds them into a [`SongProgress`] that tracks
//! both versions of the song.
//!
//! # What the stream guarantees
//!
//! * Any byte sequence is read without panicking: CRLF, CR or LF line ends,
//!   comments and keepalives (`: keepalive`), `event:`/`id:`/`retry:` lines,
//!   data split over several `data:` lines (joined with `\n`, as the SSE
//!   spec says), pieces cut at any byte (inside a UTF-8 character too).
//! * Memory is bounded: an event larger than
//!   [`StreamLimits::max_event_bytes`] (1 MiB by default) ends the stream
//!   with [`Error::EventTooLarge`]. The bytes are counted as they arrive,
//!   before anything is buffered for the event.
//! * A quiet stream is not an error (progress may hold at 90 for minutes);
//!   a stream that sends no byte at all, not even a keepalive, for
//!   [`StreamLimits::idle_timeout`] (5 minutes by default) ends with
//!   [`Error::Timeout`].
//! * A stream that ends before the song is finished (see
//!   [`SongProgress`] for the rule) ends with [`Error::StreamEndedEarly`],
//!   carrying the `message_id` seen so far; it never just stops.
//!
//! # Which errors end the stream
//!
//! A chunk whose `data` is not a JSON chunk object yields
//! [`Error::Decode`] (with the raw text) and the stream **goes on**: one
//! garbled event does not lose the rest of the song. An event whose data is
//! blank is a keepalive and yields nothing. Every other error is **the
//! last item**: a transport error from the byte stream, invalid UTF-8 in
//! any line but a comment ([`Error::Decode`] naming the event stream rather
//! than a chunk), [`Error::EventTooLarge`], [`Error::Timeout`] and
//! [`Error::StreamEndedEarly`]. After the song has failed
//! ([`SoundverseEvent::Failed`]) the stream ends without an error; the
//! failure was the event.
//!
//! The idle timer needs a Tokio runtime with time enabled (the one reqwest
//! runs on); with [`StreamLimits::idle_timeout`] set to `None` the stream
//! runs on any executor.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), songbind::Error> {
//! use bytes::Bytes;
//! use futures::{StreamExt, stream};
//! use songbind::sse::{SoundverseEvent, SoundverseEventStream};
//!
//! // In real use: `SoundverseEventStream::from_byte_stream(response.into_inner())`.
//! let body = concat!(
//!     "data: {\"status\": \"validated\", \"message_id\": \"msg_1\", \"song_name\": \"Hi\"}\r\n\r\n",
//!     ": keepalive\r\n\r\n",
//!     "data: {\"status\": \"completed\", \"version\": 1, \"audio_url\": \"https://a/1.mp3\"}\r\n\r\n",
//!     "data: {\"status\": \"completed\", \"version\": 2, \"audio_url\": \"https://a/2.mp3\"}\r\n\r\n",
//! );
//! let bytes = stream::iter([Ok::<_, songbind::Error>(Bytes::from_static(body.as_bytes()))]);
//!
//! let mut events = SoundverseEventStream::new(bytes);
//! while let Some(chunk) = events.next().await {
//!     if let SoundverseEvent::Completed { version, audio_url, .. } = chunk?.event {
//!         println!("version {version:?} ready at {audio_url:?}");
//!     }
//! }
//! let song = events.progress();
//! assert!(song.is_complete());
//! assert_eq!(song.message_id.as_deref(), Some("msg_1"));
//! assert_eq!(song.audio_urls().collect::<Vec<_>>(), ["https://a/1.mp3", "https://a/2.mp3"]);
//! # Ok(()) }
//! ```
//!
//! With the generated client:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use songbind::sse::SoundverseEventStream;
//! use songbind_soundverse::{Client, DEFAULT_BASE_URL, types::GenerateSongRequest};
//!
//! let client = Client::with_api_key(DEFAULT_BASE_URL, &std::env::var("SOUNDVERSE_API_KEY")?)?;
//! let response = client
//!     .generate_song()
//!     .body(GenerateSongRequest::builder().prompt("A cheerful pop song about friendship."))
//!     .send()
//!     .await?;
//! let song = SoundverseEventStream::from_byte_stream(response.into_inner()).finish().await?;
//! for url in song.audio_urls() {
//!     println!("{url}");
//! }
//! # Ok(()) }
//! ```

mod event;
mod framing;
mod progress;

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

pub use event::{SoundverseChunk, SoundverseEvent};
pub use progress::{SongProgress, SongVersion};

use crate::error::{Error, ProviderName, Result, ResumeWith};
use framing::EventParser;

/// Largest event [`StreamLimits::default`] accepts: 1 MiB, far above any
/// documented chunk (the largest, with lyrics sections, is a few KiB).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// How long [`StreamLimits::default`] waits for the next byte: 5 minutes,
/// longer than the "several minutes" Soundverse may hold progress at 90.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The bounds a [`SoundverseEventStream`] enforces, so that no server can
/// make it buffer without end or wait forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// The most bytes one event may take (its lines, comments excepted);
    /// beyond it the stream ends with [`Error::EventTooLarge`].
    pub max_event_bytes: usize,
    /// How long the byte stream may send nothing at all before the stream
    /// ends with [`Error::Timeout`]; `None` waits forever.
    pub idle_timeout: Option<Duration>,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
        }
    }
}

/// A stream of typed Soundverse chunks read from a byte stream; see the
/// [module documentation](self) for what it guarantees.
///
/// Each item is one [`SoundverseChunk`] or an [`Error`]. The stream keeps a
/// [`SongProgress`] up to date as it goes ([`SoundverseEventStream::progress`]).
/// An error that ends the stream once it named the song (its `message_id`)
/// names it to resume with ([`Error::resume_with`]).
pub struct SoundverseEventStream {
    events: EventParser,
    song: SongProgress,
    finished: bool,
}

impl SoundverseEventStream {
    /// Reads `bytes` with the [default limits](StreamLimits::default).
    ///
    /// Works over reqwest's `bytes_stream()` and anything else whose error
    /// converts into [`Error`]; for the generated client's
    /// [`ByteStream`](songbind_soundverse::ByteStream) use
    /// [`SoundverseEventStream::from_byte_stream`].
    pub fn new<S, E>(bytes: S) -> Self
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<Error> + 'static,
    {
        Self::with_limits(bytes, StreamLimits::default())
    }

    /// Reads `bytes` within `limits`.
    pub fn with_limits<S, E>(bytes: S, limits: StreamLimits) -> Self
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<Error> + 'static,
    {
        let source = Box::pin(bytes.map_err(Into::into));
        Self {
            events: EventParser::new(source, limits.max_event_bytes, limits.idle_timeout),
            song: SongProgress::new(),
            finished: false,
        }
    }

    /// Reads the body of a generated `generate_song()`, `extend_song()` or
    /// `remix_song()` call (`response.into_inner()`) with the default
    /// limits. For other limits: `with_limits(bytes.into_inner(), limits)`.
    pub fn from_byte_stream(bytes: songbind_soundverse::ByteStream) -> Self {
        Self::new(bytes.into_inner())
    }

    /// What the chunks read so far say about the song.
    pub fn progress(&self) -> &SongProgress {
        &self.song
    }

    /// Stops reading and keeps what is known about the song.
    pub fn into_progress(self) -> SongProgress {
        self.song
    }

    /// Reads the stream to its end and returns the finished song.
    ///
    /// Chunks that cannot be decoded are skipped (a garbled chunk cannot
    /// complete the song, so the end-of-stream rule still catches a lost
    /// `completed` chunk). Fails with the first error that ends the stream,
    /// or with [`Error::JobFailed`] when Soundverse reported a failure.
    pub async fn finish(mut self) -> Result<SongProgress> {
        while let Some(item) = self.next().await {
            if let Err(error) = item
                && self.finished
            {
                return Err(error);
            }
        }
        if self.song.failed {
            return Err(Error::JobFailed {
                provider: ProviderName::Soundverse,
                id: self
                    .song
                    .message_id
                    .clone()
                    .or_else(|| self.song.job_id.clone())
                    .unwrap_or_default(),
                message: self.song.error.clone().unwrap_or_else(|| {
                    "Soundverse reported a failure without a message".to_owned()
                }),
                resume: self
                    .song
                    .message_id
                    .clone()
                    .map(|id| Box::new(ResumeWith::MessageId(id))),
            });
        }
        Ok(self.song)
    }

    /// Ends the stream with `error` as its last item, naming the song once
    /// the stream named it (its `message_id`, to resume with).
    fn fail(&mut self, error: Error) -> Poll<Option<Result<SoundverseChunk>>> {
        self.finished = true;
        let error = match &self.song.message_id {
            Some(id) => error.resumable(ResumeWith::MessageId(id.clone())),
            None => error,
        };
        Poll::Ready(Some(Err(error)))
    }
}

impl Stream for SoundverseEventStream {
    type Item = Result<SoundverseChunk>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            let event = match Pin::new(&mut this.events).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(event))) => event,
                Poll::Ready(Some(Err(error))) => return this.fail(error),
                Poll::Ready(None) => {
                    this.finished = true;
                    if this.song.is_finished() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(Error::StreamEndedEarly {
                        provider: ProviderName::Soundverse,
                        message_id: this.song.message_id.clone(),
                        resume: this
                            .song
                            .message_id
                            .clone()
                            .map(|id| Box::new(ResumeWith::MessageId(id))),
                    })));
                }
            };
            if event.data.trim().is_empty() {
                continue; // `data:` with nothing in it: a keepalive
            }
            return Poll::Ready(Some(
                SoundverseChunk::decode_owned(event.data, &event.name).inspect(|chunk| {
                    this.song.apply(chunk);
                }),
            ));
        }
    }
}

impl fmt::Debug for SoundverseEventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoundverseEventStream")
            .field("song", &self.song)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::stream;

    use super::*;

    const NO_TIMER: StreamLimits = StreamLimits {
        max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        idle_timeout: None,
    };

    fn read(body: &'static str) -> Vec<std::result::Result<SoundverseEvent, String>> {
        let bytes = stream::iter([Ok::<_, Error>(Bytes::from_static(body.as_bytes()))]);
        let events = SoundverseEventStream::with_limits(bytes, NO_TIMER);
        block_on(
            events
                .map(|item| item.map(|c| c.event).map_err(|e| e.to_string()))
                .collect(),
        )
    }

    #[test]
    fn garbled_chunk_is_an_error_and_the_stream_goes_on() {
        let out =
            read("data: not json\n\ndata: {\"status\": \"completed\", \"isComplete\": true}\n\n");
        assert_eq!(out.len(), 2);
        assert!(
            out[0]
                .as_ref()
                .is_err_and(|e| e.starts_with("could not decode Soundverse stream chunk"))
        );
        assert!(matches!(out[1], Ok(SoundverseEvent::Completed { .. })));
    }

    #[test]
    fn blank_data_is_a_keepalive() {
        let out = read("data:\n\ndata:  \n\ndata: {\"status\": \"failed\"}\n\n");
        assert_eq!(out, vec![Ok(SoundverseEvent::Failed { error: None })]);
    }

    #[test]
    fn ended_early_carries_the_message_id() {
        let out = read("data: {\"status\": \"validated\", \"message_id\": \"m1\"}\n\n");
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1],
            Err("Soundverse stream m1 ended before the song was completed".to_owned())
        );
    }

    #[test]
    fn finish_turns_a_failure_into_job_failed() {
        let body = "data: {\"status\": \"validated\", \"message_id\": \"m2\"}\n\ndata: {\"status\": \"failed\", \"error\": \"boom\"}\n\n";
        let bytes = stream::iter([Ok::<_, Error>(Bytes::from_static(body.as_bytes()))]);
        let result = block_on(SoundverseEventStream::with_limits(bytes, NO_TIMER).finish());
        assert!(
            matches!(result, Err(Error::JobFailed { id, message, .. }) if id == "m2" && message == "boom")
        );
    }

    #[tokio::test]
    async fn idle_timeout_beyond_the_clock_range_never_fires_and_never_panics() {
        let body = "data: {\"status\": \"completed\", \"isComplete\": true}\n\n";
        // Pending once (the idle timer is consulted), then the bytes.
        let bytes = stream::once(async move {
            tokio::task::yield_now().await;
            Ok::<_, Error>(Bytes::from_static(body.as_bytes()))
        });
        let limits = StreamLimits {
            idle_timeout: Some(Duration::MAX),
            ..StreamLimits::default()
        };
        let song = SoundverseEventStream::with_limits(bytes, limits)
            .finish()
            .await;
        assert!(song.is_ok_and(|song| song.is_complete()));
    }

    #[test]
    fn stream_starting_with_two_byte_order_marks_does_not_panic() {
        let out = read("\u{feff}\u{feff}data: {}\n\ndata: {\"isComplete\": true}\n\n");
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(matches!(out[0], Ok(SoundverseEvent::Other { .. })));
    }
}
