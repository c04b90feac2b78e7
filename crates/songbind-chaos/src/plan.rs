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
use songbind_emulator::{Fault, FaultRule, Provider};

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
}

impl Operation {
    /// Every operation, in a fixed order.
    pub const ALL: [Operation; 8] = [
        Operation::SoundverseGenerate,
        Operation::SoundverseExtend,
        Operation::SoundverseRemix,
        Operation::SoundverseGenerateSync,
        Operation::SoundverseExtendSync,
        Operation::SoundPieceRemix,
        Operation::MusicGptRemixFile,
        Operation::MusicGptRemixUrl,
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
        }
    }

    /// The status request a polled job repeats, if the operation polls.
    pub fn poll_route(self) -> Option<(Method, &'static str)> {
        match self.provider() {
            Provider::Soundverse => None,
            Provider::SoundPiece => Some((Method::GET, "/v1/create.remix_song")),
            Provider::MusicGpt => Some((Method::GET, "/byId")),
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
}

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
        }
    }

    /// Every family name, in report order.
    pub const FAMILIES: [&'static str; 13] = [
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
    ];

    /// A fault and an operation it fits, drawn from `rng`: every fault
    /// family gets the same share of the jobs, and within a family every
    /// provider it fits the same share, then every fitting operation of
    /// that provider.
    fn choose(rng: &mut ChaCha8Rng) -> (Operation, Self) {
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
        }
        const ALL: [Family; 13] = [
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
        let fits = |operation: &Operation| {
            (!streams_only || operation.stream_shape().is_some())
                && (family != Family::PollBurst || operation.poll_route().is_some())
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
        let events = operation.stream_shape().map_or(1, |s| s.events);
        let status = |rng: &mut ChaCha8Rng| if rng.random_bool(0.5) { 429 } else { 503 };
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
            ExpectedError::JobFailed => f.write_str("Error::JobFailed"),
            ExpectedError::InsufficientCredits => f.write_str("Error::InsufficientCredits"),
            ExpectedError::RateLimited { retry_after } => {
                write!(f, "Error::RateLimited (retry after {retry_after:?})")
            }
            ExpectedError::ServiceUnavailable { retry_after } => {
                write!(f, "Error::ServiceUnavailable (retry after {retry_after:?})")
            }
            ExpectedError::ProviderStatus(status) => write!(f, "Error::Provider (HTTP {status})"),
        }
    }
}

/// How a job must end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedOutcome {
    /// Success with this many outputs, each served by the emulator.
    Outputs {
        /// Outputs in all (Soundverse 2, SoundPiece `n_variations`, MusicGPT 2).
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
        let (operation, fault) = FaultKind::choose(&mut rng);
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
        }
    }

    /// Outputs a successful job returns: Soundverse 2 (two versions),
    /// SoundPiece `n_variations`, MusicGPT 2 (two conversions).
    pub fn output_count(&self) -> usize {
        match self.operation.provider() {
            Provider::SoundPiece => usize::from(self.n_variations),
            Provider::Soundverse | Provider::MusicGpt => 2,
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
        };
        vec![rule]
    }

    /// What the job must end with, from its fault alone.
    pub fn expectation(&self) -> Expectation {
        let success = |create_requests: usize| Expectation {
            outcome: ExpectedOutcome::Outputs {
                count: self.output_count(),
            },
            jobs_created: 1,
            create_requests,
        };
        let failure =
            |error: ExpectedError, jobs_created: usize, create_requests: usize| Expectation {
                outcome: ExpectedOutcome::Error(error),
                jobs_created,
                create_requests,
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
                !stream_only || plan.operation.stream_shape().is_some(),
                "{plan}"
            );
            let polls = matches!(plan.fault, FaultKind::PollBurst { .. });
            assert!(!polls || plan.operation.poll_route().is_some(), "{plan}");
            assert_eq!(
                plan.prompt.contains("[fail]"),
                plan.fault == FaultKind::FailPrompt
            );
        }
    }

    #[test]
    fn each_fault_family_gets_an_even_share_of_the_jobs() {
        let plans: Vec<JobPlan> = (0..13_000).map(|i| JobPlan::new(11, i)).collect();
        for family in FaultKind::FAMILIES {
            let share = plans.iter().filter(|p| p.fault.family() == family).count();
            assert!((850..=1_150).contains(&share), "{family}: {share}");
        }
        for provider in Provider::ALL {
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
}
