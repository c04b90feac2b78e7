//! What each job of the campaign does, which fault it meets, and what it
//! must end with.
//!
//! A job is drawn from the campaign's seed and its own index alone
//! ([`JobPlan::new`]): the same seed gives the same jobs, in any order, on
//! any number of workers, so one job can be run again by itself
//! (`cargo chaos --seed S --job I`). Its [`Expectation`] is computed from
//! the plan only, before anything is sent, from what the providers document
//! and what the client promises (see `RELIABILITY.md` for the table).

use std::fmt;
use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::Method;
use songbind_emulator::{Fault, FaultRule, PageBody, Provider};

/// How long a "stalled request" or "stalled stream" fault holds, at most
/// (real time): far below every client timeout, so the job must succeed.
const STALL_MILLIS: (u64, u64) = (20, 300);

/// The idle timeout of the client used by [`FaultKind::StallPastIdle`]
/// jobs: far above any gap of a paced stream (10 ms at the default pacing),
/// far below [`IDLE_STALL`].
pub const SHORT_IDLE_TIMEOUT: Duration = Duration::from_millis(400);

/// How long a [`FaultKind::StallPastIdle`] stream goes silent (real time).
pub const IDLE_STALL: Duration = Duration::from_millis(1_200);

/// Attempts the client makes in all (its default retry policy): a burst of
/// refusals shorter than this is absorbed, one this long is reported.
pub fn retry_budget() -> u32 {
    songbind::RetryPolicy::default().max_attempts
}

/// Whether the client sends a request again after an answer with `status`,
/// by the rules `songbind` documents (`songbind::retry`): a request that is
/// safe to repeat (a GET, SoundPiece's `PUT` with its idempotency key) on
/// 408, 429, 500, 502, 503 and 504; a create that is not idempotent only on
/// 429 and 503, which say it was not taken. Never by the answer's text.
pub fn resent_after(status: u16, repeatable: bool) -> bool {
    if repeatable {
        matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
    } else {
        matches!(status, 429 | 503)
    }
}

/// Which request of a job a fault is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The request that creates the job.
    Create,
    /// The status request a polled job repeats (SoundPiece, MusicGPT).
    Poll,
}

impl Target {
    /// `create` or `polls`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Create => "create",
            Target::Poll => "polls",
        }
    }
}

/// One operation of one provider, as a caller would start it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// Soundverse `POST /v6/generate/song`, followed over its SSE stream.
    SoundverseGenerate,
    /// Soundverse `POST /v6/extend/song`, followed over its SSE stream.
    SoundverseExtend,
    /// Soundverse `POST /v7/generate/remix`, followed over its SSE stream.
    SoundverseRemix,
    /// Soundverse `POST /v6/generate/song/sync`, one JSON answer.
    SoundverseGenerateSync,
    /// Soundverse `POST /v6/extend/song/sync`, one JSON answer.
    SoundverseExtendSync,
    /// SoundPiece idempotent `PUT /v1/create.remix_song`, then long-polls.
    SoundPieceRemix,
    /// MusicGPT multipart `POST /Remix` uploading a small local file, then `/byId` polls.
    MusicGptRemixFile,
    /// MusicGPT multipart `POST /Remix` naming an `audio_path` URL, then `/byId` polls.
    MusicGptRemixUrl,
    /// ElevenLabs `POST /v1/music` (`ElevenLabs::compose_to`): the answer is
    /// the song's WAV audio, chunked as it is made, written to a `Vec` or a
    /// temporary file.
    ElevenLabsCompose,
    /// ElevenLabs `POST /v1/music/detailed` (`ElevenLabs::compose_detailed_to`):
    /// a `multipart/mixed` answer, the metadata then the audio.
    ElevenLabsComposeDetailed,
}

impl Operation {
    /// Every operation, in a fixed order.
    pub const ALL: [Operation; 10] = [
        Operation::SoundverseGenerate,
        Operation::SoundverseExtend,
        Operation::SoundverseRemix,
        Operation::SoundverseGenerateSync,
        Operation::SoundverseExtendSync,
        Operation::SoundPieceRemix,
        Operation::MusicGptRemixFile,
        Operation::MusicGptRemixUrl,
        Operation::ElevenLabsCompose,
        Operation::ElevenLabsComposeDetailed,
    ];

    /// The provider that runs it.
    pub fn provider(self) -> Provider {
        match self {
            Operation::SoundverseGenerate
            | Operation::SoundverseExtend
            | Operation::SoundverseRemix
            | Operation::SoundverseGenerateSync
            | Operation::SoundverseExtendSync => Provider::Soundverse,
            Operation::SoundPieceRemix => Provider::SoundPiece,
            Operation::MusicGptRemixFile | Operation::MusicGptRemixUrl => Provider::MusicGpt,
            Operation::ElevenLabsCompose | Operation::ElevenLabsComposeDetailed => {
                Provider::ElevenLabs
            }
        }
    }

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Operation::SoundverseGenerate => "soundverse generate (stream)",
            Operation::SoundverseExtend => "soundverse extend (stream)",
            Operation::SoundverseRemix => "soundverse remix (stream)",
            Operation::SoundverseGenerateSync => "soundverse generate (sync)",
            Operation::SoundverseExtendSync => "soundverse extend (sync)",
            Operation::SoundPieceRemix => "soundpiece remix",
            Operation::MusicGptRemixFile => "musicgpt remix (file upload)",
            Operation::MusicGptRemixUrl => "musicgpt remix (url)",
            Operation::ElevenLabsCompose => "elevenlabs compose",
            Operation::ElevenLabsComposeDetailed => "elevenlabs compose detailed",
        }
    }

    /// The request that creates the job (method, path under the provider's
    /// base URL), which create faults are matched to.
    pub fn create_route(self) -> (Method, &'static str) {
        match self {
            Operation::SoundverseGenerate => (Method::POST, "/v6/generate/song"),
            Operation::SoundverseExtend => (Method::POST, "/v6/extend/song"),
            Operation::SoundverseRemix => (Method::POST, "/v7/generate/remix"),
            Operation::SoundverseGenerateSync => (Method::POST, "/v6/generate/song/sync"),
            Operation::SoundverseExtendSync => (Method::POST, "/v6/extend/song/sync"),
            Operation::SoundPieceRemix => (Method::PUT, "/v1/create.remix_song"),
            Operation::MusicGptRemixFile | Operation::MusicGptRemixUrl => (Method::POST, "/Remix"),
            Operation::ElevenLabsCompose => (Method::POST, "/v1/music"),
            Operation::ElevenLabsComposeDetailed => (Method::POST, "/v1/music/detailed"),
        }
    }

    /// The status request a polled job repeats, if the operation polls.
    pub fn poll_route(self) -> Option<(Method, &'static str)> {
        match self.provider() {
            Provider::Soundverse => None,
            Provider::SoundPiece => Some((Method::GET, "/v1/create.remix_song")),
            Provider::MusicGpt => Some((Method::GET, "/byId")),
            // Synchronous: the answer is the song, nothing is polled.
            Provider::ElevenLabs => None,
        }
    }

    /// The shape of its SSE stream, for streaming operations.
    pub fn stream_shape(self) -> Option<StreamShape> {
        match self {
            Operation::SoundverseGenerate | Operation::SoundverseExtend => Some(StreamShape::V6),
            Operation::SoundverseRemix => Some(StreamShape::V7),
            _ => None,
        }
    }

    /// Whether its answer is audio streamed as it is made (ElevenLabs), so
    /// that the stream faults cut, end, stall or fragment the audio body.
    pub fn streams_audio(self) -> bool {
        self.provider() == Provider::ElevenLabs
    }

    /// Pieces of a whole, fault-free answer of a `music_seconds` song (what
    /// the emulator's stream faults count as events): one audio chunk per
    /// second, plus, for the detailed answer, its JSON part and its closing
    /// boundary. `None` for operations whose answer is not streamed audio.
    pub fn audio_pieces(self, music_seconds: u32) -> Option<usize> {
        match self {
            Operation::ElevenLabsCompose => Some(music_seconds as usize),
            Operation::ElevenLabsComposeDetailed => Some(music_seconds as usize + 2),
            _ => None,
        }
    }

    /// Whether its create may be sent twice with the effect of once
    /// (SoundPiece's `PUT` carries an idempotency key); the others are
    /// resent only when the answer says the create was not taken.
    pub fn create_is_idempotent(self) -> bool {
        self.provider() == Provider::SoundPiece
    }

    /// Whether Soundverse answers it in one JSON document (`/sync`).
    pub fn is_sync(self) -> bool {
        matches!(
            self,
            Operation::SoundverseGenerateSync | Operation::SoundverseExtendSync
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a whole, fault-free Soundverse stream of the emulator looks like to
/// the client, counted in SSE events (the emulator's documented timelines:
/// `songbind-emulator/src/soundverse/timeline.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamShape {
    /// Events in the whole stream.
    pub events: usize,
    /// Events the client has read when both versions have an audio URL: the
    /// job is complete there and the client stops reading, so a fault
    /// placed at or after this event is never seen.
    pub complete_after: usize,
    /// Events read once a `message_id` has been sent (a stream cut earlier
    /// cannot name the song).
    pub message_id_after: usize,
}

impl StreamShape {
    /// v6 generate and extend: initializing, validated (`message_id`),
    /// streaming, processing, running x4, streaming ready x2, running x4,
    /// then per version completed (`audio_url`), uploading, completed
    /// (lyrics): 20 events, complete once the second `audio_url` (event 18)
    /// is read.
    pub const V6: StreamShape = StreamShape {
        events: 20,
        complete_after: 18,
        message_id_after: 2,
    };

    /// v7 remix: job_created, validating, queued (`message_id`), starting,
    /// uploading, streaming x10, completed x2: 17 events, complete at the last.
    pub const V7: StreamShape = StreamShape {
        events: 17,
        complete_after: 17,
        message_id_after: 3,
    };
}

/// The fault a job meets, with its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Nothing goes wrong.
    None,
    /// The create is refused `count` times (429 or 503, `Retry-After`
    /// seconds), fewer than the retry budget.
    CreateBurst {
        /// 429 or 503.
        status: u16,
        /// Refusals in a row (1 to 3).
        count: u32,
        /// The `Retry-After` sent, in seconds (0 or 1).
        retry_after: u64,
    },
    /// The create is refused on every attempt the retry budget allows.
    CreateStorm {
        /// 429 or 503.
        status: u16,
        /// The `Retry-After` sent, in seconds (0 or 1).
        retry_after: u64,
    },
    /// The status poll is refused `count` times (polled providers only).
    PollBurst {
        /// 429 or 503.
        status: u16,
        /// Refusals in a row (1 to 3).
        count: u32,
        /// The `Retry-After` sent, in seconds (0 or 1).
        retry_after: u64,
    },
    /// The provider creates the job, then the connection closes with no reply.
    LostReply,
    /// The create is held this long before it is handled.
    Stall {
        /// Milliseconds, real time.
        millis: u64,
    },
    /// The SSE connection is cut after this many events (streams only).
    DropStream {
        /// Events delivered first.
        after_events: usize,
    },
    /// The SSE body ends cleanly after this many events (streams only).
    EndStream {
        /// Events delivered first.
        after_events: usize,
    },
    /// The SSE body goes silent for a while after this many events, then
    /// goes on (streams only).
    StallStream {
        /// Events delivered first.
        after_events: usize,
        /// Milliseconds of silence, real time.
        millis: u64,
    },
    /// Like [`FaultKind::StallStream`], but silent for [`IDLE_STALL`], longer
    /// than the client's [`SHORT_IDLE_TIMEOUT`] (streams only).
    StallPastIdle {
        /// Events delivered first.
        after_events: usize,
    },
    /// The SSE body arrives in pieces of 1 to 7 bytes (streams only).
    Fragment,
    /// The prompt carries `[fail]`: the provider accepts the job, then fails it.
    FailPrompt,
    /// The API key ends in `_no_credits`: the provider refuses with 402.
    NoCredits,
    /// The provider handles the create (the job exists), then answers this
    /// 5xx with its JSON error body and a text that sounds as if nothing
    /// was taken ("Upstream service temporarily unavailable"), `count`
    /// times in a row: the double-billing trap.
    Misleading {
        /// 500, 502 or 504.
        status: u16,
        /// Answers in a row (1 to the retry budget); each one handled.
        count: u32,
    },
    /// The create is answered `200 OK` with a body that is not audio (the
    /// provider's JSON error body, or an HTML page), without being handled
    /// (audio answers only): a 200 a client must look at before calling it
    /// a song.
    NotAudio {
        /// `true`: the JSON error body; `false`: an HTML page.
        json: bool,
    },
    /// A proxy in front of the provider answers the request with a page
    /// that is not JSON (HTML, `text/plain` or nothing), `count` times in a
    /// row, without forwarding it.
    ErrorPage {
        /// The create, or the status polls.
        target: Target,
        /// 429, 502 or 503.
        status: u16,
        /// What the page is.
        body: PageBody,
        /// Answers in a row (1 to the retry budget).
        count: u32,
        /// The `Retry-After` sent, in seconds (0 or 1).
        retry_after: u64,
    },
    /// The server answers the request with its `Authorization` header
    /// echoed (a 4xx JSON message, or a 5xx `text/plain` list of the
    /// request headers), every time it is sent, without handling it.
    EchoKey {
        /// The create, or the status polls.
        target: Target,
        /// 400, 401, 500 or 502.
        status: u16,
        /// Characters of trace id before the echo (0 to [`MAX_ECHO_PAD`]),
        /// so that the key lands anywhere in the first part of the text,
        /// where a client keeps an excerpt of it.
        pad: usize,
    },
}

/// The most characters of trace id an echoing server writes before the
/// key (see [`FaultKind::EchoKey`]).
pub const MAX_ECHO_PAD: usize = 200;

impl FaultKind {
    /// The fault's family, without its parameters (for the report's table).
    pub fn family(&self) -> &'static str {
        match self {
            FaultKind::None => "none",
            FaultKind::CreateBurst { .. } => "429/503 burst on create",
            FaultKind::CreateStorm { .. } => "429/503 past the retry budget",
            FaultKind::PollBurst { .. } => "429/503 burst on status polls",
            FaultKind::LostReply => "lost reply after create",
            FaultKind::Stall { .. } => "stalled create",
            FaultKind::DropStream { .. } => "dropped stream",
            FaultKind::EndStream { .. } => "stream ended early",
            FaultKind::StallStream { .. } => "stalled stream",
            FaultKind::StallPastIdle { .. } => "stream silent past idle timeout",
            FaultKind::Fragment => "fragmented stream",
            FaultKind::FailPrompt => "[fail] prompt",
            FaultKind::NoCredits => "key without credits",
            FaultKind::Misleading { .. } => "misleading 5xx text on create",
            FaultKind::ErrorPage { .. } => "non-JSON error page",
            FaultKind::EchoKey { .. } => "key echoed in the answer",
            FaultKind::NotAudio { .. } => "a 200 that is not audio",
        }
    }

    /// Every family name, in report order.
    pub const FAMILIES: [&'static str; 17] = [
        "none",
        "429/503 burst on create",
        "429/503 past the retry budget",
        "429/503 burst on status polls",
        "lost reply after create",
        "stalled create",
        "dropped stream",
        "stream ended early",
        "stalled stream",
        "stream silent past idle timeout",
        "fragmented stream",
        "[fail] prompt",
        "key without credits",
        "misleading 5xx text on create",
        "non-JSON error page",
        "key echoed in the answer",
        "a 200 that is not audio",
    ];

    /// A fault and an operation it fits, drawn from `rng`: every fault
    /// family gets the same share of the jobs, and within a family every
    /// provider it fits the same share, then every fitting operation of
    /// that provider.
    fn choose(rng: &mut ChaCha8Rng, music_seconds: u32) -> (Operation, Self) {
        #[derive(Clone, Copy, PartialEq)]
        enum Family {
            None,
            CreateBurst,
            CreateStorm,
            PollBurst,
            LostReply,
            Stall,
            DropStream,
            EndStream,
            StallStream,
            StallPastIdle,
            Fragment,
            FailPrompt,
            NoCredits,
            Misleading,
            ErrorPage,
            EchoKey,
            NotAudio,
        }
        const ALL: [Family; 17] = [
            Family::None,
            Family::CreateBurst,
            Family::CreateStorm,
            Family::PollBurst,
            Family::LostReply,
            Family::Stall,
            Family::DropStream,
            Family::EndStream,
            Family::StallStream,
            Family::StallPastIdle,
            Family::Fragment,
            Family::FailPrompt,
            Family::NoCredits,
            Family::Misleading,
            Family::ErrorPage,
            Family::EchoKey,
            Family::NotAudio,
        ];
        let family = ALL.choose(rng).copied().unwrap_or(Family::None);
        let streams_only = matches!(
            family,
            Family::DropStream
                | Family::EndStream
                | Family::StallStream
                | Family::StallPastIdle
                | Family::Fragment
        );
        // ElevenLabs streams its audio (the stream faults fit, except the
        // idle timeout, which only the Soundverse client is given), but it
        // has no `[fail]` prompt nor keys without credits.
        let fits = |operation: &Operation| {
            let streams = operation.stream_shape().is_some()
                || (operation.streams_audio() && family != Family::StallPastIdle);
            (!streams_only || streams)
                && (family != Family::NotAudio || operation.streams_audio())
                && (family != Family::PollBurst || operation.poll_route().is_some())
                && (!matches!(family, Family::FailPrompt | Family::NoCredits)
                    || !operation.streams_audio())
        };
        let providers: Vec<Provider> = Provider::ALL
            .into_iter()
            .filter(|p| Operation::ALL.iter().any(|o| o.provider() == *p && fits(o)))
            .collect();
        let provider = providers
            .choose(rng)
            .copied()
            .unwrap_or(Provider::SoundPiece);
        let operations: Vec<Operation> = Operation::ALL
            .into_iter()
            .filter(|o| o.provider() == provider && fits(o))
            .collect();
        let operation = operations
            .choose(rng)
            .copied()
            .unwrap_or(Operation::SoundPieceRemix);
        let events = operation
            .stream_shape()
            .map(|s| s.events)
            .or_else(|| operation.audio_pieces(music_seconds))
            .unwrap_or(1);
        let status = |rng: &mut ChaCha8Rng| if rng.random_bool(0.5) { 429 } else { 503 };
        // The create, or (half the time, where the operation polls) the polls.
        let target = |rng: &mut ChaCha8Rng| {
            if operation.poll_route().is_some() && rng.random_bool(0.5) {
                Target::Poll
            } else {
                Target::Create
            }
        };
        let pick = |rng: &mut ChaCha8Rng, from: &[u16]| from.choose(rng).copied().unwrap_or(500);
        let fault = match family {
            Family::None => FaultKind::None,
            Family::CreateBurst => FaultKind::CreateBurst {
                status: status(rng),
                count: rng.random_range(1..retry_budget()),
                retry_after: rng.random_range(0..=1),
            },
            Family::CreateStorm => FaultKind::CreateStorm {
                status: status(rng),
                retry_after: rng.random_range(0..=1),
            },
            Family::PollBurst => FaultKind::PollBurst {
                status: status(rng),
                count: rng.random_range(1..retry_budget()),
                retry_after: rng.random_range(0..=1),
            },
            Family::LostReply => FaultKind::LostReply,
            Family::Stall => FaultKind::Stall {
                millis: rng.random_range(STALL_MILLIS.0..=STALL_MILLIS.1),
            },
            Family::DropStream => FaultKind::DropStream {
                after_events: rng.random_range(0..events),
            },
            Family::EndStream => FaultKind::EndStream {
                after_events: rng.random_range(0..events),
            },
            Family::StallStream => FaultKind::StallStream {
                after_events: rng.random_range(0..events),
                millis: rng.random_range(STALL_MILLIS.0..=STALL_MILLIS.1),
            },
            Family::StallPastIdle => FaultKind::StallPastIdle {
                after_events: rng.random_range(0..events),
            },
            Family::Fragment => FaultKind::Fragment,
            Family::FailPrompt => FaultKind::FailPrompt,
            Family::NoCredits => FaultKind::NoCredits,
            Family::Misleading => FaultKind::Misleading {
                status: pick(rng, &[500, 502, 504]),
                count: rng.random_range(1..=retry_budget()),
            },
            Family::ErrorPage => FaultKind::ErrorPage {
                target: target(rng),
                status: pick(rng, &[429, 502, 503]),
                body: [PageBody::Html, PageBody::Text, PageBody::Empty]
                    .choose(rng)
                    .copied()
                    .unwrap_or(PageBody::Html),
                count: rng.random_range(1..=retry_budget()),
                retry_after: rng.random_range(0..=1),
            },
            Family::EchoKey => FaultKind::EchoKey {
                target: target(rng),
                status: pick(rng, &[400, 401, 500, 502]),
                pad: rng.random_range(0..=MAX_ECHO_PAD),
            },
            Family::NotAudio => FaultKind::NotAudio {
                json: rng.random_bool(0.5),
            },
        };
        (operation, fault)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::CreateBurst {
                status,
                count,
                retry_after,
            } => write!(
                f,
                "{count}x {status} on create (Retry-After {retry_after}s)"
            ),
            FaultKind::CreateStorm {
                status,
                retry_after,
            } => write!(
                f,
                "{}x {status} on create (Retry-After {retry_after}s)",
                retry_budget()
            ),
            FaultKind::PollBurst {
                status,
                count,
                retry_after,
            } => write!(f, "{count}x {status} on polls (Retry-After {retry_after}s)"),
            FaultKind::Stall { millis } => write!(f, "create stalled {millis} ms"),
            FaultKind::DropStream { after_events } => {
                write!(f, "stream dropped after {after_events} events")
            }
            FaultKind::EndStream { after_events } => {
                write!(f, "stream ended after {after_events} events")
            }
            FaultKind::StallStream {
                after_events,
                millis,
            } => write!(f, "stream silent {millis} ms after {after_events} events"),
            FaultKind::StallPastIdle { after_events } => write!(
                f,
                "stream silent {} ms (idle timeout {} ms) after {after_events} events",
                IDLE_STALL.as_millis(),
                SHORT_IDLE_TIMEOUT.as_millis()
            ),
            FaultKind::Misleading { status, count } => write!(
                f,
                "{count}x {status} \"not taken\" after the create was handled"
            ),
            FaultKind::ErrorPage {
                target,
                status,
                body,
                count,
                retry_after,
            } => write!(
                f,
                "{count}x {status} {} page on {} (Retry-After {retry_after}s)",
                body.name(),
                target.name()
            ),
            FaultKind::EchoKey {
                target,
                status,
                pad,
            } => write!(
                f,
                "{status} echoing the key on {} after {pad} characters",
                target.name()
            ),
            FaultKind::NotAudio { json } => write!(
                f,
                "200 with {} instead of audio",
                if *json {
                    "a JSON error"
                } else {
                    "an HTML page"
                }
            ),
            other => f.write_str(other.family()),
        }
    }
}

/// The error a job must end with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedError {
    /// [`songbind::Error::Transport`]: the connection broke after the
    /// request went out, and a create that is not idempotent is not resent.
    Transport,
    /// [`songbind::Error::StreamEndedEarly`], naming the song when the
    /// stream got far enough to send its `message_id`.
    StreamEndedEarly {
        /// Whether `message_id` must be known (`Some("msg_...")`) or unknown.
        message_id_known: bool,
    },
    /// [`songbind::Error::Timeout`] from the stream's idle timer.
    IdleTimeout,
    /// An audio answer that ended cleanly before the whole song was sent:
    /// any typed error saying so ([`songbind::Error::StreamEndedEarly`],
    /// [`songbind::Error::Decode`] for a `multipart/mixed` answer missing
    /// its end, [`songbind::Error::Transport`]), never a success with a
    /// short file.
    AudioCut,
    /// [`songbind::Error::JobFailed`].
    JobFailed,
    /// [`songbind::Error::InsufficientCredits`].
    InsufficientCredits,
    /// [`songbind::Error::RateLimited`] carrying the provider's `Retry-After`.
    RateLimited {
        /// The wait the provider asked for.
        retry_after: Duration,
    },
    /// [`songbind::Error::ServiceUnavailable`] carrying the provider's `Retry-After`.
    ServiceUnavailable {
        /// The wait the provider asked for.
        retry_after: Duration,
    },
    /// [`songbind::Error::Provider`] with this status (a failed `/sync`
    /// job answers 500: the client cannot tell it from a server error).
    ProviderStatus(u16),
    /// An error answer (at [`songbind::Error::root`]): the case its status
    /// maps to, with the status, the `Retry-After` and the kind of body the
    /// server sent all kept in its [`songbind::Answer`].
    Answer {
        /// The case the status maps to.
        case: AnswerCase,
        /// The HTTP status kept.
        status: u16,
        /// The `Retry-After` kept (`None` when none was sent).
        retry_after: Option<Duration>,
        /// What the answer's body was.
        body: AnswerBody,
    },
}

/// The case of [`songbind::Error`] an error answer maps to, by its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerCase {
    /// 429: [`songbind::Error::RateLimited`].
    RateLimited,
    /// 503: [`songbind::Error::ServiceUnavailable`].
    ServiceUnavailable,
    /// 400, 422: [`songbind::Error::InvalidRequest`].
    InvalidRequest,
    /// 401, 403: [`songbind::Error::Unauthorized`].
    Unauthorized,
    /// Any other status: [`songbind::Error::Provider`].
    Provider,
}

impl AnswerCase {
    /// The case `songbind` maps `status` to when no documented text refines
    /// it (no text does on a 5xx, nor any text the campaign's servers send).
    pub fn of(status: u16) -> Self {
        match status {
            429 => AnswerCase::RateLimited,
            503 => AnswerCase::ServiceUnavailable,
            400 | 422 => AnswerCase::InvalidRequest,
            401 | 403 => AnswerCase::Unauthorized,
            _ => AnswerCase::Provider,
        }
    }
}

/// What the body of an error answer was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerBody {
    /// The provider's JSON error body (`application/json`).
    Json,
    /// An HTML page (`text/html`).
    Html,
    /// Plain text (`text/plain`).
    Text,
    /// Nothing.
    Empty,
}

impl From<PageBody> for AnswerBody {
    fn from(body: PageBody) -> Self {
        match body {
            PageBody::Html => AnswerBody::Html,
            PageBody::Text => AnswerBody::Text,
            PageBody::Empty => AnswerBody::Empty,
        }
    }
}

impl fmt::Display for ExpectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedError::Transport => f.write_str("Error::Transport"),
            ExpectedError::StreamEndedEarly { message_id_known } => write!(
                f,
                "Error::StreamEndedEarly (message_id {})",
                if *message_id_known {
                    "known"
                } else {
                    "unknown"
                }
            ),
            ExpectedError::IdleTimeout => f.write_str("Error::Timeout (stream idle)"),
            ExpectedError::AudioCut => {
                f.write_str("a typed error for the cut audio (StreamEndedEarly, Decode, Transport)")
            }
            ExpectedError::JobFailed => f.write_str("Error::JobFailed"),
            ExpectedError::InsufficientCredits => f.write_str("Error::InsufficientCredits"),
            ExpectedError::RateLimited { retry_after } => {
                write!(f, "Error::RateLimited (retry after {retry_after:?})")
            }
            ExpectedError::ServiceUnavailable { retry_after } => {
                write!(f, "Error::ServiceUnavailable (retry after {retry_after:?})")
            }
            ExpectedError::ProviderStatus(status) => write!(f, "Error::Provider (HTTP {status})"),
            ExpectedError::Answer {
                case,
                status,
                retry_after,
                body,
            } => {
                write!(f, "Error::{case:?} (HTTP {status}, {body:?} body, ")?;
                match retry_after {
                    Some(wait) => write!(f, "retry after {wait:?})"),
                    None => f.write_str("no Retry-After)"),
                }
            }
        }
    }
}

/// How a job must end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedOutcome {
    /// Success with this many outputs, each served by the emulator.
    Outputs {
        /// Outputs in all (Soundverse 2, SoundPiece `n_variations`, MusicGPT 2,
        /// ElevenLabs 1: the song's audio, written whole).
        count: usize,
    },
    /// This typed error.
    Error(ExpectedError),
}

impl fmt::Display for ExpectedOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedOutcome::Outputs { count } => write!(f, "{count} outputs"),
            ExpectedOutcome::Error(error) => error.fmt(f),
        }
    }
}

/// Everything a job is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// How the job ends.
    pub outcome: ExpectedOutcome,
    /// Jobs the provider must have created: 1 when any create reached its
    /// handler (a create the client believes failed counts once), 0 when
    /// every create was refused.
    pub jobs_created: usize,
    /// Create requests the provider must have received: retries included,
    /// and only those the client is allowed to resend.
    pub create_requests: usize,
    /// Status polls the provider must have received, when the fault fixes
    /// them: a job whose first poll fails for good ends there, after the
    /// attempts the client may make (`None`: as many as the job takes).
    pub poll_requests: Option<usize>,
}

/// One job of the campaign: what it asks for and which fault it meets.
#[derive(Clone, Debug, PartialEq)]
pub struct JobPlan {
    /// The campaign's seed.
    pub seed: u64,
    /// The job's index in the campaign (0-based).
    pub index: usize,
    /// The operation it runs.
    pub operation: Operation,
    /// The fault injected into it.
    pub fault: FaultKind,
    /// The prompt (style or description), `[fail]` included when the fault says so.
    pub prompt: String,
    /// Lyrics (some with non-ASCII text, so fragmented streams split characters).
    pub lyrics: String,
    /// Whether to send the lyrics where they are optional.
    pub send_lyrics: bool,
    /// SoundPiece variations (1 to 3).
    pub n_variations: u8,
    /// Soundverse extension point, in milliseconds (8000 to 420000).
    pub extend_at_ms: i64,
    /// Size of the MusicGPT upload, in bytes.
    pub upload_bytes: usize,
    /// Length of an ElevenLabs song, in seconds (3 to 6: one audio chunk
    /// per second).
    pub music_seconds: u32,
    /// Whether an ElevenLabs compose writes to a temporary file (else to a `Vec`).
    pub sink_file: bool,
    /// ElevenLabs: ask for raw PCM (`pcm_16000`: no header says its length,
    /// so only the request can tell a clean early end) instead of the
    /// default (a WAV file).
    pub pcm: bool,
}

const STYLES: &[&str] = &[
    "lofi",
    "jazz",
    "rock",
    "ambient",
    "synthwave",
    "cheerful",
    "melancholic",
    "upbeat",
    "pop",
    "funk",
    "orchestral",
    "bossa nova",
    "chanson",
    "acoustic",
    "energetic",
    "dreamy",
    "male vocal",
    "female vocal",
];

const LINES: &[&str] = &[
    "[Verse]",
    "[Chorus]",
    "la la la, here we go again",
    "night drive under neon lights",
    "Über den Wolken 🎵",
    "café au lait, déjà vu",
    "星空の下で歌おう",
    "we were young and the summer was long",
    "¿dónde estás, corazón?",
];

impl JobPlan {
    /// The job number `index` of the campaign seeded with `seed`; the same
    /// pair always gives the same plan.
    pub fn new(seed: u64, index: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index as u64);
        let music_seconds = rng.random_range(3..=6);
        let (operation, fault) = FaultKind::choose(&mut rng, music_seconds);
        let words = rng.random_range(2..=4);
        let mut prompt: Vec<&str> = (0..words)
            .filter_map(|_| STYLES.choose(&mut rng).copied())
            .collect();
        if fault == FaultKind::FailPrompt {
            prompt.push("[fail]");
        }
        let lines = rng.random_range(1..=6);
        let lyrics: Vec<&str> = (0..lines)
            .filter_map(|_| LINES.choose(&mut rng).copied())
            .collect();
        Self {
            seed,
            index,
            operation,
            fault,
            prompt: prompt.join(", "),
            lyrics: lyrics.join("\n"),
            send_lyrics: rng.random_bool(0.5),
            n_variations: rng.random_range(1..=3),
            extend_at_ms: rng.random_range(8_000..=420_000),
            upload_bytes: rng.random_range(1_024..=64 * 1_024),
            music_seconds,
            sink_file: rng.random_bool(0.5),
            // Drawn last, so that every earlier draw of a seed stays.
            pcm: rng.random_bool(0.5),
        }
    }

    /// Outputs a successful job returns: Soundverse 2 (two versions),
    /// SoundPiece `n_variations`, MusicGPT 2 (two conversions).
    pub fn output_count(&self) -> usize {
        match self.operation.provider() {
            Provider::SoundPiece => usize::from(self.n_variations),
            Provider::Soundverse | Provider::MusicGpt => 2,
            // One song per generation.
            Provider::ElevenLabs => 1,
        }
    }

    /// The fault rules to register on the job's emulator, each matched to
    /// the job's provider and route so that it cannot touch anything else.
    pub fn fault_rules(&self) -> Vec<FaultRule> {
        let provider = self.operation.provider();
        let (method, path) = self.operation.create_route();
        let on_create = |fault: Fault| {
            FaultRule::new(fault)
                .provider(provider)
                .route(method.clone(), path)
        };
        let refused = |status: u16, retry_after: u64| Fault::Status {
            status,
            retry_after: Some(retry_after),
        };
        let rule = match self.fault {
            FaultKind::None | FaultKind::FailPrompt | FaultKind::NoCredits => return Vec::new(),
            FaultKind::CreateBurst {
                status,
                count,
                retry_after,
            } => on_create(refused(status, retry_after)).times(count),
            FaultKind::CreateStorm {
                status,
                retry_after,
            } => on_create(refused(status, retry_after)).times(retry_budget()),
            FaultKind::PollBurst {
                status,
                count,
                retry_after,
            } => match self.operation.poll_route() {
                Some((method, path)) => FaultRule::new(refused(status, retry_after))
                    .provider(provider)
                    .route(method, path)
                    .times(count),
                None => return Vec::new(),
            },
            FaultKind::LostReply => on_create(Fault::LoseReply),
            FaultKind::Stall { millis } => on_create(Fault::Stall(Duration::from_millis(millis))),
            FaultKind::DropStream { after_events } => on_create(Fault::DropStream { after_events }),
            FaultKind::EndStream { after_events } => on_create(Fault::EndStream { after_events }),
            FaultKind::StallStream {
                after_events,
                millis,
            } => on_create(Fault::StallStream {
                after_events,
                duration: Duration::from_millis(millis),
            }),
            FaultKind::StallPastIdle { after_events } => on_create(Fault::StallStream {
                after_events,
                duration: IDLE_STALL,
            }),
            FaultKind::Fragment => on_create(Fault::Fragment),
            FaultKind::Misleading { status, count } => {
                on_create(Fault::Misleading { status }).times(count)
            }
            FaultKind::ErrorPage {
                target,
                status,
                body,
                count,
                retry_after,
            } => {
                let page = Fault::Page {
                    status,
                    body,
                    retry_after: Some(retry_after),
                };
                match self.rule_on(target, page) {
                    Some(rule) => rule.times(count),
                    None => return Vec::new(),
                }
            }
            FaultKind::NotAudio { json } => on_create(Fault::NotAudio { json }),
            FaultKind::EchoKey {
                target,
                status,
                pad,
            } => {
                match self.rule_on(target, Fault::EchoAuth { status, pad }) {
                    // Every attempt the client may make is answered the same.
                    Some(rule) => rule.times(retry_budget()),
                    None => return Vec::new(),
                }
            }
        };
        vec![rule]
    }

    /// A rule applying `fault` once to the request `target` names (bound to
    /// the job's provider, method and path); `None` for polls of an
    /// operation that does not poll.
    fn rule_on(&self, target: Target, fault: Fault) -> Option<FaultRule> {
        let (method, path) = match target {
            Target::Create => self.operation.create_route(),
            Target::Poll => self.operation.poll_route()?,
        };
        Some(
            FaultRule::new(fault)
                .provider(self.operation.provider())
                .route(method, path),
        )
    }

    /// What a job must end with when the request at `target` is answered
    /// `status` (with `retry_after`, and a `body` of that kind) on `count`
    /// attempts in a row, or on every attempt when `count` is the retry
    /// budget; `handled` when the server created the job before answering.
    ///
    /// From the client's rules ([`resent_after`]): an answer the client
    /// does not resend on is final, so one request and the typed error; one
    /// it resends on is retried up to the budget, so success after `count`
    /// answers when `count` is below the budget, else the typed error after
    /// as many requests as the budget.
    fn after_answers(
        &self,
        target: Target,
        status: u16,
        count: u32,
        retry_after: Option<u64>,
        body: AnswerBody,
        handled: bool,
    ) -> Expectation {
        let repeatable = match target {
            Target::Create => self.operation.create_is_idempotent(),
            Target::Poll => true,
        };
        let budget = retry_budget();
        let (succeeds, requests) = if !resent_after(status, repeatable) {
            (false, 1)
        } else if count < budget {
            (true, count as usize + 1)
        } else {
            (false, budget as usize)
        };
        let outcome = if succeeds {
            ExpectedOutcome::Outputs {
                count: self.output_count(),
            }
        } else {
            ExpectedOutcome::Error(ExpectedError::Answer {
                case: AnswerCase::of(status),
                status,
                retry_after: retry_after.map(Duration::from_secs),
                body,
            })
        };
        match target {
            Target::Create => Expectation {
                outcome,
                // A create answered after it was handled made the job, and
                // its retries (same key) only replay it.
                jobs_created: usize::from(handled || succeeds),
                create_requests: requests,
                poll_requests: None,
            },
            Target::Poll => Expectation {
                outcome,
                jobs_created: 1,
                create_requests: 1,
                // Failing for good ends the job at its first poll.
                poll_requests: (!succeeds).then_some(requests),
            },
        }
    }

    /// What the job must end with, from its fault alone.
    pub fn expectation(&self) -> Expectation {
        let success = |create_requests: usize| Expectation {
            outcome: ExpectedOutcome::Outputs {
                count: self.output_count(),
            },
            jobs_created: 1,
            create_requests,
            poll_requests: None,
        };
        let failure =
            |error: ExpectedError, jobs_created: usize, create_requests: usize| Expectation {
                outcome: ExpectedOutcome::Error(error),
                jobs_created,
                create_requests,
                poll_requests: None,
            };
        // A stream fault placed where the client has already finished is never seen.
        let seen = |after_events: usize| {
            self.operation
                .stream_shape()
                .is_some_and(|shape| after_events < shape.complete_after)
        };
        let budget = retry_budget() as usize;
        match self.fault {
            FaultKind::None
            | FaultKind::Stall { .. }
            | FaultKind::StallStream { .. }
            | FaultKind::Fragment
            | FaultKind::PollBurst { .. } => success(1),
            FaultKind::CreateBurst { count, .. } => success(count as usize + 1),
            FaultKind::CreateStorm {
                status,
                retry_after,
            } => {
                let retry_after = Duration::from_secs(retry_after);
                let error = if status == 429 {
                    ExpectedError::RateLimited { retry_after }
                } else {
                    ExpectedError::ServiceUnavailable { retry_after }
                };
                failure(error, 0, budget)
            }
            // SoundPiece creates carry an idempotency key: the retry gets
            // the original answer. The others must not be resent.
            FaultKind::LostReply if self.operation.provider() == Provider::SoundPiece => success(2),
            FaultKind::LostReply => failure(ExpectedError::Transport, 1, 1),
            // Every piece of an audio answer is needed: a cut anywhere is seen.
            FaultKind::DropStream { .. } if self.operation.streams_audio() => {
                failure(ExpectedError::Transport, 1, 1)
            }
            FaultKind::EndStream { .. } if self.operation.streams_audio() => {
                failure(ExpectedError::AudioCut, 1, 1)
            }
            FaultKind::DropStream { after_events } if seen(after_events) => {
                failure(ExpectedError::Transport, 1, 1)
            }
            FaultKind::EndStream { after_events } if seen(after_events) => failure(
                ExpectedError::StreamEndedEarly {
                    message_id_known: self
                        .operation
                        .stream_shape()
                        .is_some_and(|shape| after_events >= shape.message_id_after),
                },
                1,
                1,
            ),
            FaultKind::StallPastIdle { after_events } if seen(after_events) => {
                failure(ExpectedError::IdleTimeout, 1, 1)
            }
            FaultKind::DropStream { .. }
            | FaultKind::EndStream { .. }
            | FaultKind::StallPastIdle { .. } => success(1),
            FaultKind::FailPrompt if self.operation.is_sync() => {
                failure(ExpectedError::ProviderStatus(500), 1, 1)
            }
            FaultKind::FailPrompt => failure(ExpectedError::JobFailed, 1, 1),
            FaultKind::NoCredits => failure(ExpectedError::InsufficientCredits, 0, 1),
            FaultKind::Misleading { status, count } => {
                self.after_answers(Target::Create, status, count, None, AnswerBody::Json, true)
            }
            FaultKind::ErrorPage {
                target,
                status,
                body,
                count,
                retry_after,
            } => self.after_answers(target, status, count, Some(retry_after), body.into(), false),
            // A 200 is final: never resent, nothing handled, nothing written.
            FaultKind::NotAudio { json } => self.after_answers(
                Target::Create,
                200,
                1,
                None,
                if json {
                    AnswerBody::Json
                } else {
                    AnswerBody::Html
                },
                false,
            ),
            FaultKind::EchoKey { target, status, .. } => self.after_answers(
                target,
                status,
                retry_budget(),
                None,
                if status >= 500 {
                    AnswerBody::Text
                } else {
                    AnswerBody::Json
                },
                false,
            ),
        }
    }
}

impl fmt::Display for JobPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job #{} (seed {}): {} with {}",
            self.index, self.seed, self.operation, self.fault
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(operation: Operation, fault: FaultKind) -> JobPlan {
        JobPlan {
            operation,
            fault,
            n_variations: 3,
            ..JobPlan::new(1, 0)
        }
    }

    #[test]
    fn the_same_seed_and_index_give_the_same_plan_and_others_differ() {
        assert_eq!(JobPlan::new(42, 7), JobPlan::new(42, 7));
        let first: Vec<JobPlan> = (0..20).map(|i| JobPlan::new(42, i)).collect();
        let other: Vec<JobPlan> = (0..20).map(|i| JobPlan::new(43, i)).collect();
        assert_ne!(first, other);
        assert!(first.windows(2).any(|w| w[0].operation != w[1].operation));
    }

    #[test]
    fn every_operation_and_fault_family_is_drawn_and_faults_fit_their_operation() {
        let plans: Vec<JobPlan> = (0..2_000).map(|i| JobPlan::new(9, i)).collect();
        for operation in Operation::ALL {
            assert!(
                plans.iter().any(|p| p.operation == operation),
                "{operation}"
            );
        }
        for family in FaultKind::FAMILIES {
            assert!(plans.iter().any(|p| p.fault.family() == family), "{family}");
        }
        for plan in &plans {
            let stream_only = matches!(
                plan.fault,
                FaultKind::DropStream { .. }
                    | FaultKind::EndStream { .. }
                    | FaultKind::StallStream { .. }
                    | FaultKind::StallPastIdle { .. }
                    | FaultKind::Fragment
            );
            assert!(
                !stream_only
                    || plan.operation.stream_shape().is_some()
                    || plan.operation.streams_audio(),
                "{plan}"
            );
            if plan.operation.streams_audio() {
                assert!(
                    !matches!(
                        plan.fault,
                        FaultKind::StallPastIdle { .. }
                            | FaultKind::FailPrompt
                            | FaultKind::NoCredits
                    ),
                    "{plan}"
                );
                assert!((3..=6).contains(&plan.music_seconds), "{plan}");
            }
            let polls = matches!(
                plan.fault,
                FaultKind::PollBurst { .. }
                    | FaultKind::ErrorPage {
                        target: Target::Poll,
                        ..
                    }
                    | FaultKind::EchoKey {
                        target: Target::Poll,
                        ..
                    }
            );
            assert!(!polls || plan.operation.poll_route().is_some(), "{plan}");
            assert_eq!(
                plan.prompt.contains("[fail]"),
                plan.fault == FaultKind::FailPrompt
            );
        }
    }

    #[test]
    fn each_fault_family_gets_an_even_share_of_the_jobs() {
        let plans: Vec<JobPlan> = (0..16_000).map(|i| JobPlan::new(11, i)).collect();
        for family in FaultKind::FAMILIES {
            let share = plans.iter().filter(|p| p.fault.family() == family).count();
            assert!((850..=1_150).contains(&share), "{family}: {share}");
        }
        // Every provider the campaign drives (the emulator may serve more).
        for provider in Operation::ALL.map(Operation::provider) {
            let share = plans
                .iter()
                .filter(|p| p.operation.provider() == provider)
                .count();
            assert!(share >= 2_500, "{provider:?}: {share}");
        }
    }

    #[test]
    fn a_lost_reply_is_absorbed_only_where_the_create_is_idempotent() {
        let sp = plan(Operation::SoundPieceRemix, FaultKind::LostReply).expectation();
        assert_eq!(sp.outcome, ExpectedOutcome::Outputs { count: 3 });
        assert_eq!((sp.jobs_created, sp.create_requests), (1, 2));
        for operation in [
            Operation::MusicGptRemixFile,
            Operation::SoundverseRemix,
            Operation::SoundverseGenerateSync,
        ] {
            let other = plan(operation, FaultKind::LostReply).expectation();
            assert_eq!(
                other.outcome,
                ExpectedOutcome::Error(ExpectedError::Transport)
            );
            assert_eq!((other.jobs_created, other.create_requests), (1, 1));
        }
    }

    #[test]
    fn stream_faults_after_the_second_audio_url_are_never_seen() {
        let v6 = |after_events| {
            plan(
                Operation::SoundverseGenerate,
                FaultKind::DropStream { after_events },
            )
            .expectation()
            .outcome
        };
        assert_eq!(v6(17), ExpectedOutcome::Error(ExpectedError::Transport));
        assert_eq!(v6(18), ExpectedOutcome::Outputs { count: 2 });
        let ended = |operation, after_events| {
            plan(operation, FaultKind::EndStream { after_events })
                .expectation()
                .outcome
        };
        let early = |known| {
            ExpectedOutcome::Error(ExpectedError::StreamEndedEarly {
                message_id_known: known,
            })
        };
        assert_eq!(ended(Operation::SoundverseExtend, 1), early(false));
        assert_eq!(ended(Operation::SoundverseExtend, 2), early(true));
        assert_eq!(ended(Operation::SoundverseRemix, 2), early(false));
        assert_eq!(ended(Operation::SoundverseRemix, 16), early(true));
    }

    #[test]
    fn refusals_within_the_budget_succeed_and_beyond_it_are_typed_with_no_job() {
        let burst = plan(
            Operation::MusicGptRemixUrl,
            FaultKind::CreateBurst {
                status: 503,
                count: 3,
                retry_after: 1,
            },
        )
        .expectation();
        assert_eq!(burst.outcome, ExpectedOutcome::Outputs { count: 2 });
        assert_eq!(burst.create_requests, 4);
        let storm = plan(
            Operation::SoundverseGenerate,
            FaultKind::CreateStorm {
                status: 429,
                retry_after: 1,
            },
        );
        assert_eq!(storm.fault_rules()[0].times, retry_budget());
        let storm = storm.expectation();
        assert_eq!(
            storm.outcome,
            ExpectedOutcome::Error(ExpectedError::RateLimited {
                retry_after: Duration::from_secs(1)
            })
        );
        assert_eq!((storm.jobs_created, storm.create_requests), (0, 4));
    }

    #[test]
    fn fault_rules_are_bound_to_the_jobs_provider_and_route() {
        for index in 0..500 {
            let plan = JobPlan::new(3, index);
            for rule in plan.fault_rules() {
                assert_eq!(rule.provider, Some(plan.operation.provider()), "{plan}");
                assert!(rule.method.is_some() && rule.path.is_some(), "{plan}");
                assert!(rule.times >= 1 && rule.times <= retry_budget(), "{plan}");
            }
        }
    }

    fn answer(
        case: AnswerCase,
        status: u16,
        retry_after: Option<u64>,
        body: AnswerBody,
    ) -> ExpectedOutcome {
        ExpectedOutcome::Error(ExpectedError::Answer {
            case,
            status,
            retry_after: retry_after.map(Duration::from_secs),
            body,
        })
    }

    fn counts(expectation: &Expectation) -> (usize, usize, Option<usize>) {
        (
            expectation.jobs_created,
            expectation.create_requests,
            expectation.poll_requests,
        )
    }

    #[test]
    fn a_misleading_5xx_is_final_for_a_create_that_is_not_idempotent() {
        for operation in [
            Operation::SoundverseGenerate,
            Operation::SoundverseRemix,
            Operation::SoundverseExtendSync,
            Operation::MusicGptRemixFile,
            Operation::MusicGptRemixUrl,
        ] {
            for count in 1..=retry_budget() {
                let expected =
                    plan(operation, FaultKind::Misleading { status: 504, count }).expectation();
                assert_eq!(
                    expected.outcome,
                    answer(AnswerCase::Provider, 504, None, AnswerBody::Json),
                    "{operation}"
                );
                assert_eq!(counts(&expected), (1, 1, None), "{operation}");
            }
        }
    }

    #[test]
    fn a_misleading_5xx_on_the_soundpiece_put_is_retried_with_one_job() {
        let misled = |count| {
            plan(
                Operation::SoundPieceRemix,
                FaultKind::Misleading { status: 500, count },
            )
            .expectation()
        };
        let absorbed = misled(2);
        assert_eq!(absorbed.outcome, ExpectedOutcome::Outputs { count: 3 });
        assert_eq!(counts(&absorbed), (1, 3, None));
        let every_attempt = misled(retry_budget());
        assert_eq!(
            every_attempt.outcome,
            answer(AnswerCase::Provider, 500, None, AnswerBody::Json)
        );
        assert_eq!(counts(&every_attempt), (1, 4, None));
    }

    #[test]
    fn error_pages_keep_their_status_and_are_retried_by_it() {
        let page = |operation, target, status, count| {
            plan(
                operation,
                FaultKind::ErrorPage {
                    target,
                    status,
                    body: PageBody::Html,
                    count,
                    retry_after: 1,
                },
            )
            .expectation()
        };
        // 429/503: not taken, resent by every client.
        let within = page(Operation::SoundverseGenerate, Target::Create, 429, 3);
        assert_eq!(within.outcome, ExpectedOutcome::Outputs { count: 2 });
        assert_eq!(counts(&within), (1, 4, None));
        let beyond = page(Operation::MusicGptRemixFile, Target::Create, 503, 4);
        assert_eq!(
            beyond.outcome,
            answer(
                AnswerCase::ServiceUnavailable,
                503,
                Some(1),
                AnswerBody::Html
            )
        );
        assert_eq!(counts(&beyond), (0, 4, None));
        // 502 on a create that is not idempotent: final, one request.
        let bad_gateway = page(Operation::SoundverseGenerateSync, Target::Create, 502, 1);
        assert_eq!(
            bad_gateway.outcome,
            answer(AnswerCase::Provider, 502, Some(1), AnswerBody::Html)
        );
        assert_eq!(counts(&bad_gateway), (0, 1, None));
        // 502 on the SoundPiece PUT and on polls: retried.
        let put = page(Operation::SoundPieceRemix, Target::Create, 502, 2);
        assert_eq!(put.outcome, ExpectedOutcome::Outputs { count: 3 });
        assert_eq!(counts(&put), (1, 3, None));
        let polls = page(Operation::MusicGptRemixUrl, Target::Poll, 502, 3);
        assert_eq!(polls.outcome, ExpectedOutcome::Outputs { count: 2 });
        assert_eq!(counts(&polls), (1, 1, None));
        let polls = page(Operation::SoundPieceRemix, Target::Poll, 429, 4);
        assert_eq!(
            polls.outcome,
            answer(AnswerCase::RateLimited, 429, Some(1), AnswerBody::Html)
        );
        assert_eq!(counts(&polls), (1, 1, Some(4)));
    }

    #[test]
    fn an_echoed_key_ends_the_job_with_the_typed_error_of_its_status() {
        let echo = |operation, target, status| {
            plan(
                operation,
                FaultKind::EchoKey {
                    target,
                    status,
                    pad: 150,
                },
            )
            .expectation()
        };
        let refused = echo(Operation::SoundPieceRemix, Target::Create, 400);
        assert_eq!(
            refused.outcome,
            answer(AnswerCase::InvalidRequest, 400, None, AnswerBody::Json)
        );
        assert_eq!(counts(&refused), (0, 1, None));
        let put = echo(Operation::SoundPieceRemix, Target::Create, 500);
        assert_eq!(
            put.outcome,
            answer(AnswerCase::Provider, 500, None, AnswerBody::Text)
        );
        assert_eq!(counts(&put), (0, 4, None));
        let post = echo(Operation::MusicGptRemixUrl, Target::Create, 502);
        assert_eq!(counts(&post), (0, 1, None));
        let poll = echo(Operation::MusicGptRemixFile, Target::Poll, 401);
        assert_eq!(
            poll.outcome,
            answer(AnswerCase::Unauthorized, 401, None, AnswerBody::Json)
        );
        assert_eq!(counts(&poll), (1, 1, Some(1)));
        let poll = echo(Operation::SoundPieceRemix, Target::Poll, 502);
        assert_eq!(counts(&poll), (1, 1, Some(4)));
        let rule = &plan(
            Operation::SoundPieceRemix,
            FaultKind::EchoKey {
                target: Target::Poll,
                status: 500,
                pad: 0,
            },
        )
        .fault_rules()[0];
        assert_eq!(rule.method, Some(Method::GET));
        assert_eq!(rule.times, retry_budget());
    }

    #[test]
    fn a_cut_audio_body_must_end_in_a_typed_error_and_composes_are_never_resent() {
        for operation in [
            Operation::ElevenLabsCompose,
            Operation::ElevenLabsComposeDetailed,
        ] {
            let pieces = operation.audio_pieces(4).unwrap();
            for after_events in 0..pieces {
                let dropped = plan(operation, FaultKind::DropStream { after_events }).expectation();
                assert_eq!(
                    dropped.outcome,
                    ExpectedOutcome::Error(ExpectedError::Transport)
                );
                assert_eq!(counts(&dropped), (1, 1, None));
                let ended = plan(operation, FaultKind::EndStream { after_events }).expectation();
                assert_eq!(
                    ended.outcome,
                    ExpectedOutcome::Error(ExpectedError::AudioCut)
                );
            }
            for fault in [
                FaultKind::Fragment,
                FaultKind::StallStream {
                    after_events: 1,
                    millis: 50,
                },
            ] {
                let whole = plan(operation, fault).expectation();
                assert_eq!(whole.outcome, ExpectedOutcome::Outputs { count: 1 });
            }
            let lost = plan(operation, FaultKind::LostReply).expectation();
            assert_eq!(
                lost.outcome,
                ExpectedOutcome::Error(ExpectedError::Transport)
            );
            assert_eq!(counts(&lost), (1, 1, None));
            let misled = plan(
                operation,
                FaultKind::Misleading {
                    status: 500,
                    count: 2,
                },
            )
            .expectation();
            assert_eq!(
                misled.outcome,
                answer(AnswerCase::Provider, 500, None, AnswerBody::Json)
            );
            assert_eq!(counts(&misled), (1, 1, None));
            let burst = plan(
                operation,
                FaultKind::CreateBurst {
                    status: 429,
                    count: 2,
                    retry_after: 0,
                },
            )
            .expectation();
            assert_eq!(burst.outcome, ExpectedOutcome::Outputs { count: 1 });
            assert_eq!(counts(&burst), (1, 3, None));
            assert_eq!(operation.poll_route(), None);
        }
        assert_eq!(
            Operation::ElevenLabsComposeDetailed.audio_pieces(3),
            Some(5)
        );
    }

    #[test]
    fn only_429_and_503_are_resent_on_a_create_that_is_not_idempotent() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(resent_after(status, true), "{status}");
        }
        for status in [400, 401, 402, 404, 409, 422, 501] {
            assert!(!resent_after(status, true), "{status}");
        }
        for status in [429, 503] {
            assert!(resent_after(status, false), "{status}");
        }
        for status in [400, 408, 500, 502, 504] {
            assert!(!resent_after(status, false), "{status}");
        }
    }
}
