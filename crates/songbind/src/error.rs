//! One error type for the whole crate, with cases a caller can match on.
//!
//! Every error answer maps to one case here (see [`Error::from_response`]),
//! by its HTTP status first; a provider's documented message text refines
//! the case only where that provider documents it. Whatever the body was
//! (the documented JSON, a proxy's HTML page, plain text, nothing), the
//! status, the headers and a bounded excerpt of the body are kept in an
//! [`Answer`]. The clients scrub their API key from every text before an
//! error reaches the caller, so that no case holds a key or a webhook secret,
//! even when a server echoes one back.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;
use uuid::Uuid;

/// Reads `Retry-After` as seconds or as an HTTP date (relative to `now`).
/// A date in the past means "now"; an unreadable value is ignored.
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Why a webhook delivery was refused or could not be read.
///
/// Every message names what is wrong; none quotes a secret or a signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A header the scheme requires is absent.
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    /// A header is present but unusable.
    #[error("header `{header}` is unusable: {reason}")]
    InvalidHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The delivery is older than the tolerance allows: a replay, or clocks
    /// that disagree.
    #[error(
        "the delivery is {} s old, beyond the {} s tolerance",
        .age.as_secs(),
        .tolerance.as_secs()
    )]
    TimestampTooOld {
        /// How old the delivery's `webhook-timestamp` is.
        age: Duration,
        /// The tolerance in force.
        tolerance: Duration,
    },
    /// The delivery is dated further in the future than the tolerance allows.
    #[error(
        "the delivery is dated {} s in the future, beyond the {} s tolerance",
        .ahead.as_secs(),
        .tolerance.as_secs()
    )]
    TimestampInFuture {
        /// How far ahead of the clock the delivery's timestamp is.
        ahead: Duration,
        /// The tolerance in force.
        tolerance: Duration,
    },
    /// `webhook-signature` holds no `v1,` entry (the only version defined).
    #[error("header `webhook-signature` holds no `v1,` signature")]
    NoSupportedSignature,
    /// No `v1` signature matches the body: the secret is wrong, or the body,
    /// id or timestamp was changed on the way.
    #[error(
        "none of the {checked} `v1` signature(s) matches (wrong secret, or the body, id or timestamp was altered)"
    )]
    SignatureMismatch {
        /// How many `v1` signatures were checked.
        checked: usize,
    },
    /// The webhook secret cannot be used. The secret itself is never shown.
    #[error("the webhook secret is unusable: {reason}")]
    InvalidSecret {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The body is not UTF-8, so it cannot be the JSON that was signed.
    /// (The SoundPiece verifier signs bytes and no longer returns it; a body
    /// that is not UTF-8 fails to decode instead.)
    #[error("the body is not UTF-8")]
    BodyNotUtf8,
    /// The body (or a part of it) is not the shape the provider documents.
    #[error("could not decode {what}: {reason}")]
    InvalidPayload {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
        /// The text that failed (cut to 4 KiB).
        raw: String,
    },
    /// A MusicGPT delivery disagrees with what `/byId` says.
    #[error("MusicGPT conversion {conversion_id}: /byId does not confirm the delivery: {reason}")]
    NotConfirmed {
        /// The conversion the delivery was about.
        conversion_id: String,
        /// Where the delivery and the provider disagree.
        reason: String,
    },
}

/// The provider an error (or a job) belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    /// Soundverse (`api.soundverse.ai`).
    Soundverse,
    /// SoundPiece (`api.soundpiece.co`).
    #[serde(rename = "soundpiece")]
    SoundPiece,
    /// MusicGPT (`api.musicgpt.com`).
    #[serde(rename = "musicgpt")]
    MusicGpt,
    /// ElevenLabs Music (`api.elevenlabs.io`).
    #[serde(rename = "elevenlabs")]
    ElevenLabs,
    /// Beatoven (`public-api.beatoven.ai`).
    #[serde(rename = "beatoven")]
    Beatoven,
}

impl ProviderName {
    /// The provider's slug: its spec's file name, its crate's suffix, the
    /// CLI's subcommand (`soundverse`, `soundpiece`, `musicgpt`,
    /// `elevenlabs`).
    pub fn slug(self) -> &'static str {
        match self {
            ProviderName::Soundverse => "soundverse",
            ProviderName::SoundPiece => "soundpiece",
            ProviderName::MusicGpt => "musicgpt",
            ProviderName::ElevenLabs => "elevenlabs",
            ProviderName::Beatoven => "beatoven",
        }
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderName::Soundverse => "Soundverse",
            ProviderName::SoundPiece => "SoundPiece",
            ProviderName::MusicGpt => "MusicGPT",
            ProviderName::ElevenLabs => "ElevenLabs",
            ProviderName::Beatoven => "Beatoven",
        })
    }
}

/// One field a provider (or local validation) found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldIssue {
    /// Where: the field path, e.g. `body.n_variations`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// What a provider answered to a request it refused: kept whatever the body
/// was, so that its status and `Retry-After` still count.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The response headers (values that held the API key are scrubbed).
    pub headers: HeaderMap,
    /// The start of the body as text (at most 4 KiB, API key scrubbed).
    pub body: String,
    /// The wait the provider asked for with `Retry-After`, if it did.
    pub retry_after: Option<Duration>,
}

/// What a provider suggests instead of content it refused (ElevenLabs'
/// copyright guard): send the request again with it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Suggestion {
    /// A prompt to use instead (`detail.data.prompt_suggestion`).
    Prompt(String),
    /// A composition plan to use instead
    /// (`detail.data.composition_plan_suggestion`), as the provider sent it.
    Plan(Value),
}

/// How to find a job again after a failure that came once its create was
/// sent: the job may exist (and be paid for).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResumeWith {
    /// SoundPiece: send the same request with this idempotency key again; it
    /// answers the operation it already created instead of a second one.
    IdempotencyKey(Uuid),
    /// SoundPiece: the operation id (`op_...`), to poll.
    OperationId(String),
    /// MusicGPT: the task id, to poll `/byId?task_id=`.
    TaskId(String),
    /// Soundverse: the generation's `message_id`, for
    /// `/status/generations/{message_id}`.
    MessageId(String),
}

impl fmt::Display for ResumeWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumeWith::IdempotencyKey(key) => write!(f, "idempotency key {key}"),
            ResumeWith::OperationId(id) => write!(f, "operation id {id}"),
            ResumeWith::TaskId(id) => write!(f, "task id {id}"),
            ResumeWith::MessageId(id) => write!(f, "message id {id}"),
        }
    }
}

/// Everything that can go wrong in songbind.
///
/// Match on the case itself: `matches!(error, Error::Timeout { .. })`
/// holds wherever the timeout happened, before a create or after it. What
/// to resume a job with is not a case but a field, `resume`, on every case
/// that can end a call after a create was sent (boxed, so that an error
/// stays small when it names nothing); read it with
/// [`Error::resume_with`], which says when it is set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider refused the request because of its rate limit (429, or a
    /// documented rate-limit text on another 4xx).
    #[error("{provider} rate limit: {message}{}{}", fmt_retry_after(*.retry_after), fmt_resume(.resume))]
    RateLimited {
        /// Which provider.
        provider: ProviderName,
        /// How long the provider asked to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// The provider's own message.
        message: String,
        /// The answer itself.
        answer: Box<Answer>,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// The account has no balance or credits left for this operation (402).
    #[error("{provider}: insufficient balance or credits: {message}{}", fmt_resume(.resume))]
    InsufficientCredits {
        /// Which provider.
        provider: ProviderName,
        /// The provider's own message.
        message: String,
        /// The answer itself.
        answer: Box<Answer>,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// The provider rejected the content (for example NSFW lyrics, or a
    /// prompt that names an artist), with what it suggests instead if it
    /// did.
    #[error("{provider} rejected the content: {message}{}{}", fmt_suggestion(.suggestion), fmt_resume(.resume))]
    ContentRejected {
        /// Which provider.
        provider: ProviderName,
        /// The provider's own message.
        message: String,
        /// What the provider suggests instead, if anything.
        suggestion: Option<Suggestion>,
        /// The answer itself.
        answer: Box<Answer>,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// The provider found the request invalid (400/422), with field details
    /// where it gave them.
    #[error("{provider}: invalid request: {message}{}{}", fmt_fields(.fields), fmt_resume(.resume))]
    InvalidRequest {
        /// Which provider.
        provider: ProviderName,
        /// The provider's own message.
        message: String,
        /// Field-level details (FastAPI-style 422 bodies).
        fields: Vec<FieldIssue>,
        /// The answer itself.
        answer: Box<Answer>,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// The API key was missing or refused (401/403).
    #[error("{provider}: unauthorized: {message}{}", fmt_resume(.resume))]
    Unauthorized {
        /// Which provider.
        provider: ProviderName,
        /// The provider's own message.
        message: String,
        /// The answer itself.
        answer: Box<Answer>,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// The provider is temporarily unavailable (503).
    #[error("{provider} is unavailable: {message}{}{}", fmt_retry_after(*.retry_after), fmt_resume(.resume))]
    ServiceUnavailable {
        /// Which provider.
        provider: ProviderName,
        /// How long the provider asked to wait, if it said.
        retry_after: Option<Duration>,
        /// The provider's own message.
        message: String,
        /// The answer itself.
        answer: Box<Answer>,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// The idempotency key was already used with another request body (409,
    /// SoundPiece). Not transient: send the first body again, or a new key.
    #[error(
        "{provider}: the idempotency key was already used with a different request body: {message}{}",
        fmt_resume(.resume)
    )]
    IdempotencyConflict {
        /// Which provider.
        provider: ProviderName,
        /// The provider's own message.
        message: String,
        /// The answer itself.
        answer: Box<Answer>,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// Any other error answer from the provider.
    #[error("{provider} answered HTTP {}: {message}{}", .answer.status, fmt_resume(.resume))]
    Provider {
        /// Which provider.
        provider: ProviderName,
        /// The provider's message, or the start of a body that holds none.
        message: String,
        /// The answer itself.
        answer: Box<Answer>,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// A job the provider accepted ended in failure. It was taken, so
    /// `resume` names it (following it again reports the same failure);
    /// `None` only for a Soundverse stream that failed before naming its
    /// song.
    #[error("{provider} job {id} failed: {message}")]
    JobFailed {
        /// Which provider.
        provider: ProviderName,
        /// The job's id at the provider.
        id: String,
        /// The provider's failure message.
        message: String,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// An event stream ended before its completed event.
    #[error("{provider} stream{} ended before the song was completed", fmt_id(.message_id))]
    StreamEndedEarly {
        /// Which provider.
        provider: ProviderName,
        /// The generation's `message_id`, if the stream got far enough to send it.
        message_id: Option<String>,
        /// What to resume the job with (see [`Error::resume_with`]): the
        /// `message_id` once the stream sent it.
        resume: Option<Box<ResumeWith>>,
    },
    /// An event stream sent an event larger than the configured limit; the
    /// stream stops there instead of buffering without bound.
    #[error("{provider} event stream: an event exceeded the limit of {limit} bytes{}", fmt_resume(.resume))]
    EventTooLarge {
        /// Which provider.
        provider: ProviderName,
        /// The limit that was exceeded, in bytes.
        limit: usize,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// A successful answer was larger than the cap on answers read whole
    /// (16 MiB unless [`crate::RequestOptions::answer_limit`] says
    /// otherwise); reading stopped there instead of buffering without bound.
    #[error("{provider} answered more than {limit} bytes, the cap on an answer read whole{}", fmt_resume(.resume))]
    AnswerTooLarge {
        /// Which provider.
        provider: ProviderName,
        /// The cap, in bytes.
        limit: u64,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// Waiting took longer than the caller allowed.
    #[error("timed out after {after:?} waiting for {waiting_for}{}", fmt_resume(.resume))]
    Timeout {
        /// The limit that was reached.
        after: Duration,
        /// What was being waited for.
        waiting_for: String,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// The caller cancelled the wait.
    #[error("cancelled while waiting for {waiting_for}{}", fmt_resume(.resume))]
    Cancelled {
        /// What was being waited for.
        waiting_for: String,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// The request never got an answer (connection refused or cut, DNS, TLS).
    #[error("transport error: {source}{}", fmt_resume(.resume))]
    Transport {
        /// What went wrong.
        #[source]
        source: reqwest::Error,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// An answer could not be read as what the provider documents.
    #[error("could not decode {what}: {reason}{}", fmt_resume(.resume))]
    Decode {
        /// What was being decoded.
        what: String,
        /// Why it failed.
        reason: String,
        /// The raw text that failed (cut to 4 KiB).
        raw: String,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// A value was refused before any request was sent: by the request's
    /// own checks before a create (`resume` is `None`), or, while a job is
    /// followed, an id the provider answered that cannot be sent back
    /// (`resume` names the job).
    #[error("invalid {field}: {reason}{}", fmt_resume(.resume))]
    Validation {
        /// The field (or flag) at fault.
        field: String,
        /// Which limit it breaks.
        reason: String,
        /// What to resume the job with (see [`Error::resume_with`]).
        resume: Option<Box<ResumeWith>>,
    },
    /// A webhook delivery could not be verified or confirmed (match on the
    /// [`WebhookError`] for why).
    #[error("webhook: {0}")]
    Webhook(WebhookError),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        #[source]
        source: std::io::Error,
    },
    /// The client could not be configured (bad base URL, unusable key).
    #[error(transparent)]
    Config(#[from] songbind_transport::BuildError),
}

/// A failed request or response body read is a transport error (naming
/// nothing to resume with), so that a reqwest byte stream can feed the
/// crate's decoders directly.
impl From<reqwest::Error> for Error {
    fn from(source: reqwest::Error) -> Self {
        Error::Transport {
            source,
            resume: None,
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn fmt_retry_after(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| format!(" (retry after {}s)", d.as_secs()))
}

fn fmt_suggestion(suggestion: &Option<Suggestion>) -> String {
    match suggestion {
        Some(Suggestion::Prompt(prompt)) => format!(" (suggested prompt: {prompt})"),
        Some(Suggestion::Plan(_)) => " (a composition plan is suggested instead)".to_owned(),
        None => String::new(),
    }
}

fn fmt_fields(fields: &[FieldIssue]) -> String {
    if fields.is_empty() {
        return String::new();
    }
    let list: Vec<String> = fields.iter().map(ToString::to_string).collect();
    format!(" ({})", list.join("; "))
}

/// ` (resume with <what>)` when there is something to resume with.
fn fmt_resume(resume: &Option<Box<ResumeWith>>) -> String {
    resume
        .as_ref()
        .map_or_else(String::new, |resume| format!(" (resume with {resume})"))
}

fn fmt_id(id: &Option<String>) -> String {
    id.as_ref().map_or_else(String::new, |id| format!(" {id}"))
}

/// Longest raw text kept in [`Error::Decode`] and [`Error::Provider`].
const RAW_LIMIT: usize = 4096;

/// `text` cut to at most [`RAW_LIMIT`] bytes, on a character boundary.
pub(crate) fn truncate_raw(text: &str) -> String {
    if text.len() <= RAW_LIMIT {
        return text.to_owned();
    }
    let mut end = RAW_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl Error {
    /// Whether this error says the provider did not take the request, so
    /// that sending it again cannot create a second job: a 429 or a 503, by
    /// status, whatever the body said.
    pub fn request_not_taken(&self) -> bool {
        matches!(self.status(), Some(429 | 503))
    }

    /// The wait the provider asked for with `Retry-After`, on any answer.
    pub fn retry_after(&self) -> Option<Duration> {
        self.answer().and_then(|answer| answer.retry_after)
    }

    /// The HTTP status of an error answer, if this is one.
    pub fn status(&self) -> Option<u16> {
        self.answer().map(|answer| answer.status)
    }

    /// The provider's answer (status, headers, body excerpt), if this error
    /// is one.
    pub fn answer(&self) -> Option<&Answer> {
        match self {
            Error::RateLimited { answer, .. }
            | Error::InsufficientCredits { answer, .. }
            | Error::ContentRejected { answer, .. }
            | Error::InvalidRequest { answer, .. }
            | Error::Unauthorized { answer, .. }
            | Error::ServiceUnavailable { answer, .. }
            | Error::IdempotencyConflict { answer, .. }
            | Error::Provider { answer, .. } => Some(answer.as_ref()),
            _ => None,
        }
    }

    /// The error itself. Errors after a create are no longer wrapped, so
    /// there is nothing to unwrap: match on the error directly.
    #[deprecated(
        note = "every case is matched directly now; what to resume with is `resume_with()`"
    )]
    pub fn root(&self) -> &Error {
        self
    }

    /// What to resume the job with, when the failure came once its create
    /// may have been taken (the job may exist, and be paid for):
    ///
    /// * SoundPiece: a failure of the `PUT` names its idempotency key
    ///   ([`ResumeWith::IdempotencyKey`]: send the same request with it
    ///   again), unless every attempt was surely not taken (a 429 or 503, a
    ///   connection that never opened); a failure while the operation is
    ///   followed names its id ([`ResumeWith::OperationId`]).
    /// * MusicGPT: a failure while the task is followed names its id
    ///   ([`ResumeWith::TaskId`]).
    /// * Soundverse: a failure once the stream named the song names its
    ///   `message_id` ([`ResumeWith::MessageId`]).
    /// * A job's own failure ([`Error::JobFailed`]) names the job: it was
    ///   taken.
    ///
    /// `None` when nothing was taken: a value refused before sending, a
    /// refusal that says the request was not taken, a connection that never
    /// opened. `None` too when the create may have been taken but nothing
    /// names it: a MusicGPT or Soundverse create that failed before its
    /// answer named the task or song (a 5xx, a lost reply, a stream cut
    /// before its `message_id`; a MusicGPT webhook still reports the task),
    /// and every ElevenLabs compose, whose answer is the song itself.
    pub fn resume_with(&self) -> Option<&ResumeWith> {
        self.resume_slot().and_then(Option::as_deref)
    }

    /// Takes what to resume with out of the error, leaving `None`: for a
    /// caller that names the job in its own words, so that the error's text
    /// no longer names it too.
    pub fn take_resume_with(&mut self) -> Option<ResumeWith> {
        self.resume_slot_mut()
            .and_then(Option::take)
            .map(|resume| *resume)
    }

    /// The `resume` field of the cases that have one.
    fn resume_slot(&self) -> Option<&Option<Box<ResumeWith>>> {
        match self {
            Error::RateLimited { resume, .. }
            | Error::InsufficientCredits { resume, .. }
            | Error::ContentRejected { resume, .. }
            | Error::InvalidRequest { resume, .. }
            | Error::Unauthorized { resume, .. }
            | Error::ServiceUnavailable { resume, .. }
            | Error::IdempotencyConflict { resume, .. }
            | Error::Provider { resume, .. }
            | Error::JobFailed { resume, .. }
            | Error::StreamEndedEarly { resume, .. }
            | Error::EventTooLarge { resume, .. }
            | Error::AnswerTooLarge { resume, .. }
            | Error::Timeout { resume, .. }
            | Error::Cancelled { resume, .. }
            | Error::Transport { resume, .. }
            | Error::Decode { resume, .. }
            | Error::Validation { resume, .. } => Some(resume),
            Error::Webhook(_) | Error::Io { .. } | Error::Config(_) => None,
        }
    }

    /// [`Error::resume_slot`], to set or take.
    fn resume_slot_mut(&mut self) -> Option<&mut Option<Box<ResumeWith>>> {
        match self {
            Error::RateLimited { resume, .. }
            | Error::InsufficientCredits { resume, .. }
            | Error::ContentRejected { resume, .. }
            | Error::InvalidRequest { resume, .. }
            | Error::Unauthorized { resume, .. }
            | Error::ServiceUnavailable { resume, .. }
            | Error::IdempotencyConflict { resume, .. }
            | Error::Provider { resume, .. }
            | Error::JobFailed { resume, .. }
            | Error::StreamEndedEarly { resume, .. }
            | Error::EventTooLarge { resume, .. }
            | Error::AnswerTooLarge { resume, .. }
            | Error::Timeout { resume, .. }
            | Error::Cancelled { resume, .. }
            | Error::Transport { resume, .. }
            | Error::Decode { resume, .. }
            | Error::Validation { resume, .. } => Some(resume),
            Error::Webhook(_) | Error::Io { .. } | Error::Config(_) => None,
        }
    }

    /// `self` naming `resume`, for a failure of a job that exists: every
    /// case that can end a call after a create names it, unless it already
    /// names something.
    pub(crate) fn resumable(mut self, resume: ResumeWith) -> Self {
        if let Some(slot @ None) = self.resume_slot_mut() {
            *slot = Some(Box::new(resume));
        }
        self
    }

    /// Whether this error of a create's attempt says the create was surely
    /// not taken, by the rules of [`crate::retry`]: an answer that says so
    /// (429, 503, see [`Error::request_not_taken`]), a connection that
    /// failed before any byte of the request was written, or a request
    /// refused before it was sent.
    #[cfg_attr(not(feature = "soundpiece"), allow(dead_code))]
    pub(crate) fn surely_not_taken(&self) -> bool {
        self.request_not_taken()
            || matches!(self, Error::Transport { source, .. } if source.is_connect())
            || matches!(self, Error::Validation { .. })
    }

    /// A decode error for `what`, keeping (a bounded part of) the raw text.
    #[cfg_attr(not(feature = "_provider"), allow(dead_code))]
    pub(crate) fn decode(what: impl Into<String>, reason: impl fmt::Display, raw: &str) -> Self {
        Error::Decode {
            what: what.into(),
            reason: reason.to_string(),
            raw: truncate_raw(raw),
            resume: None,
        }
    }

    /// A validation error for `field`.
    pub(crate) fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            reason: reason.into(),
            resume: None,
        }
    }

    /// Maps an error answer to the case a caller matches on.
    ///
    /// By status first: 401/403 unauthorized, 402 credits, 409 (SoundPiece)
    /// idempotency conflict, 429 rate limit, 503 unavailable, 400/422
    /// invalid request, anything else [`Error::Provider`]. The message is read
    /// from every documented body (`{success: false, message[, error]}`,
    /// `{detail: "..."}`, `{detail: [{loc, msg, type}]}`), or is the start of
    /// any other body. Only where a provider documents a message text does
    /// that text refine the case, and only on a 4xx (a refusal): Soundverse
    /// publishes its texts without status codes.
    pub fn from_response(
        provider: ProviderName,
        status: StatusCode,
        headers: &HeaderMap,
        body: &str,
    ) -> Self {
        let json: Option<Value> = serde_json::from_str(body).ok();
        let (message, fields) = json.as_ref().map(read_body).unwrap_or_default();
        let refusal = json.as_ref().and_then(|json| refusal(provider, json));
        let message = if message.trim().is_empty() {
            let excerpt = one_line_excerpt(body);
            match status.canonical_reason() {
                Some(reason) if excerpt.is_empty() => reason.to_owned(),
                _ if excerpt.is_empty() => "no message".to_owned(),
                _ => excerpt,
            }
        } else {
            message
        };
        let retry_after = parse_retry_after(headers, std::time::SystemTime::now());
        let answer = Box::new(Answer {
            status: status.as_u16(),
            headers: headers.clone(),
            body: truncate_raw(body),
            retry_after,
        });
        let code = status.as_u16();
        let documented = if (400..500).contains(&code) {
            documented_kind(provider, &message)
        } else {
            None
        };
        if let (400..=499, Some(suggestion)) = (code, refusal) {
            return Error::ContentRejected {
                provider,
                message,
                suggestion,
                answer,
                resume: None,
            };
        }
        match (code, documented) {
            (401 | 403, _) => Error::Unauthorized {
                provider,
                message,
                answer,
                resume: None,
            },
            (402, _) => Error::InsufficientCredits {
                provider,
                message,
                answer,
                resume: None,
            },
            (409, _) if provider == ProviderName::SoundPiece => Error::IdempotencyConflict {
                provider,
                message,
                answer,
                resume: None,
            },
            (429, _) | (_, Some(Documented::RateLimited)) => Error::RateLimited {
                provider,
                retry_after,
                message,
                answer,
                resume: None,
            },
            (503, _) | (_, Some(Documented::Unavailable)) => Error::ServiceUnavailable {
                provider,
                retry_after,
                message,
                answer,
                resume: None,
            },
            (_, Some(Documented::Credits)) => Error::InsufficientCredits {
                provider,
                message,
                answer,
                resume: None,
            },
            (_, Some(Documented::Content)) => Error::ContentRejected {
                provider,
                message,
                suggestion: None,
                answer,
                resume: None,
            },
            (400 | 422, None) => Error::InvalidRequest {
                provider,
                message,
                fields,
                answer,
                resume: None,
            },
            _ => Error::Provider {
                provider,
                message,
                answer,
                resume: None,
            },
        }
    }
}

/// A case that a provider's documented message text names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Documented {
    RateLimited,
    Credits,
    Content,
    Unavailable,
}

/// The case a provider's documentation gives this exact message text, if it
/// gives one. Only Soundverse documents texts (without status codes; they are
/// the `4XX`/`5XX` examples of `specs/soundverse.yaml`); the others give codes.
fn documented_kind(provider: ProviderName, message: &str) -> Option<Documented> {
    const SOUNDVERSE: [(&str, Documented); 4] = [
        (
            "Rate limits have been passed for the user.",
            Documented::RateLimited,
        ),
        (
            "Insufficient balance for this operation.",
            Documented::Credits,
        ),
        (
            "NSFW words detected. Please try again with different lyrics.",
            Documented::Content,
        ),
        (
            "Service temporarily unavailable. Please try again in a moment.",
            Documented::Unavailable,
        ),
    ];
    if provider != ProviderName::Soundverse {
        return None;
    }
    // The message may carry the body's `error` detail after it: "<message> (<error>)".
    SOUNDVERSE
        .iter()
        .find(|(text, _)| message.trim() == *text || message.starts_with(&format!("{text} (")))
        .map(|(_, kind)| *kind)
}

/// A documented content refusal: ElevenLabs' copyright guard answers
/// `{"detail": {"status": "bad_prompt" | "bad_composition_plan", "message",
/// "data": {"prompt_suggestion" | "composition_plan_suggestion"}}}`.
/// `Some(None)` is a refusal without a suggestion.
fn refusal(provider: ProviderName, json: &Value) -> Option<Option<Suggestion>> {
    if provider != ProviderName::ElevenLabs {
        return None;
    }
    let detail = json.get("detail")?;
    let data = detail.get("data");
    let suggestion = |key: &str| data.and_then(|d| d.get(key)).filter(|v| !v.is_null());
    match detail.get("status")?.as_str()? {
        "bad_prompt" => Some(
            suggestion("prompt_suggestion")
                .and_then(Value::as_str)
                .map(|p| Suggestion::Prompt(p.to_owned())),
        ),
        "bad_composition_plan" => {
            Some(suggestion("composition_plan_suggestion").map(|p| Suggestion::Plan(p.clone())))
        }
        _ => None,
    }
}

/// The start of a body that holds no documented message, on one line and at
/// most 200 characters: a proxy's HTML page or a plain-text answer.
fn one_line_excerpt(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

/// Reads `(message, field issues)` from any documented error body.
fn read_body(json: &Value) -> (String, Vec<FieldIssue>) {
    let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
    match json.get("detail") {
        Some(Value::String(detail)) => (detail.clone(), Vec::new()),
        // ElevenLabs: {"detail": {"status", "message", ...}}.
        Some(Value::Object(detail)) => {
            let message = detail.get("message").and_then(Value::as_str);
            let status = detail.get("status").and_then(Value::as_str);
            let text = match (message, status) {
                (Some(message), Some(status)) => format!("{message} ({status})"),
                (Some(text), None) | (None, Some(text)) => text.to_owned(),
                (None, None) => String::new(),
            };
            (text, Vec::new())
        }
        Some(Value::Array(items)) => {
            let fields: Vec<FieldIssue> = items
                .iter()
                .map(|item| FieldIssue {
                    field: item
                        .get("loc")
                        .and_then(Value::as_array)
                        .map(|loc| {
                            loc.iter()
                                .map(|part| match part {
                                    Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                })
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default(),
                    message: item
                        .get("msg")
                        .and_then(Value::as_str)
                        .unwrap_or("invalid")
                        .to_owned(),
                })
                .collect();
            let message =
                text("message").unwrap_or_else(|| "the request failed validation".to_owned());
            (message, fields)
        }
        _ => {
            let message = text("message").unwrap_or_default();
            match text("error") {
                Some(error) if !message.is_empty() => (format!("{message} ({error})"), Vec::new()),
                Some(error) => (error, Vec::new()),
                None => (message, Vec::new()),
            }
        }
    }
}

/// Maps an error from a generated client to the crate's error.
///
/// Error answers are re-read as JSON so that every documented body maps
/// through [`Error::from_response`]; transport failures stay
/// [`Error::Transport`] so retry classification can tell a connection that
/// never opened from one that broke.
#[cfg(feature = "_provider")]
pub(crate) async fn from_generated<E: serde::Serialize>(
    provider: ProviderName,
    error: progenitor_client::Error<E>,
) -> Error {
    use progenitor_client::Error as Generated;
    match error {
        Generated::ErrorResponse(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let json = serde_json::to_value(response.into_inner()).unwrap_or_default();
            // A body that was not the documented JSON reaches here as
            // `{"detail": "<its text>"}` (see `songbind_transport::execute`):
            // keep that text as the body.
            let is_json = headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("json"));
            let body = match json.get("detail").and_then(Value::as_str) {
                Some(text) if !is_json => text.to_owned(),
                _ => json.to_string(),
            };
            Error::from_response(provider, status, &headers, &body)
        }
        Generated::UnexpectedResponse(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.text().await.unwrap_or_default();
            if status.is_success() {
                Error::decode(
                    format!("{provider} response"),
                    "unexpected success status",
                    &body,
                )
            } else {
                Error::from_response(provider, status, &headers, &body)
            }
        }
        Generated::ResponseBodyError(e) if songbind_transport::is_answer_too_large(&e) => {
            Error::AnswerTooLarge {
                provider,
                limit: songbind_transport::answer_limit(),
                resume: None,
            }
        }
        Generated::CommunicationError(e)
        | Generated::ResponseBodyError(e)
        | Generated::InvalidUpgrade(e) => Error::from(e),
        Generated::InvalidResponsePayload(bytes, e) => Error::decode(
            format!("{provider} response"),
            e,
            &String::from_utf8_lossy(&bytes),
        ),
        Generated::InvalidRequest(reason) => Error::validation("request", reason),
        Generated::Custom(reason) => Error::validation("request", reason),
    }
}
