//! One error type for the whole crate, with cases a caller can match on.
//!
//! Every error body a provider documents maps to one case here (see
//! [`Error::from_response`]); nothing in any case ever holds an API key or a
//! webhook secret.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::retry::parse_retry_after;

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
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderName::Soundverse => "Soundverse",
            ProviderName::SoundPiece => "SoundPiece",
            ProviderName::MusicGpt => "MusicGPT",
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

/// Everything that can go wrong in songbind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider refused the request because of its rate limit (429).
    #[error("{provider} rate limit: {message}{}", fmt_retry_after(*.retry_after))]
    RateLimited {
        /// Which provider.
        provider: ProviderName,
        /// How long the provider asked to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// The provider's own message.
        message: String,
    },
    /// The account has no balance or credits left for this operation (402).
    #[error("{provider}: insufficient balance or credits: {message}")]
    InsufficientCredits {
        /// Which provider.
        provider: ProviderName,
        /// The provider's own message.
        message: String,
    },
    /// The provider rejected the content (for example NSFW lyrics).
    #[error("{provider} rejected the content: {message}")]
    ContentRejected {
        /// Which provider.
        provider: ProviderName,
        /// The provider's own message.
        message: String,
    },
    /// The provider found the request invalid (400/422), with field details
    /// where it gave them.
    #[error("{provider}: invalid request: {message}{}", fmt_fields(.fields))]
    InvalidRequest {
        /// Which provider.
        provider: ProviderName,
        /// The provider's own message.
        message: String,
        /// Field-level details (FastAPI-style 422 bodies).
        fields: Vec<FieldIssue>,
    },
    /// The API key was missing or refused (401/403).
    #[error("{provider}: unauthorized: {message}")]
    Unauthorized {
        /// Which provider.
        provider: ProviderName,
        /// The provider's own message.
        message: String,
    },
    /// The provider is temporarily unavailable (503).
    #[error("{provider} is unavailable: {message}{}", fmt_retry_after(*.retry_after))]
    ServiceUnavailable {
        /// Which provider.
        provider: ProviderName,
        /// How long the provider asked to wait, if it said.
        retry_after: Option<Duration>,
        /// The provider's own message.
        message: String,
    },
    /// Any other error answer from the provider.
    #[error("{provider} answered HTTP {status}: {message}")]
    Provider {
        /// Which provider.
        provider: ProviderName,
        /// The HTTP status.
        status: u16,
        /// The provider's message (or the start of the body).
        message: String,
        /// The whole response body, as text.
        body: String,
    },
    /// A job the provider accepted ended in failure.
    #[error("{provider} job {id} failed: {message}")]
    JobFailed {
        /// Which provider.
        provider: ProviderName,
        /// The job's id at the provider.
        id: String,
        /// The provider's failure message.
        message: String,
    },
    /// An event stream ended before its completed event.
    #[error("{provider} stream{} ended before the song was completed", fmt_id(.message_id))]
    StreamEndedEarly {
        /// Which provider.
        provider: ProviderName,
        /// The generation's `message_id`, if the stream got far enough to send it.
        message_id: Option<String>,
    },
    /// An event stream sent an event larger than the configured limit; the
    /// stream stops there instead of buffering without bound.
    #[error("{provider} event stream: an event exceeded the limit of {limit} bytes")]
    EventTooLarge {
        /// Which provider.
        provider: ProviderName,
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
    /// Waiting took longer than the caller allowed.
    #[error("timed out after {after:?} waiting for {waiting_for}")]
    Timeout {
        /// The limit that was reached.
        after: Duration,
        /// What was being waited for.
        waiting_for: String,
    },
    /// The caller cancelled the wait.
    #[error("cancelled while waiting for {waiting_for}")]
    Cancelled {
        /// What was being waited for.
        waiting_for: String,
    },
    /// The request never got an answer (connection refused or cut, DNS, TLS).
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// An answer could not be read as what the provider documents.
    #[error("could not decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// Why it failed.
        reason: String,
        /// The raw text that failed (cut to 4 KiB).
        raw: String,
    },
    /// A value was refused before any request was sent.
    #[error("invalid {field}: {reason}")]
    Validation {
        /// The field (or flag) at fault.
        field: String,
        /// Which limit it breaks.
        reason: String,
    },
    /// A webhook delivery could not be verified or confirmed (match on the
    /// [`WebhookError`](crate::webhook::WebhookError) for why).
    #[error("webhook: {0}")]
    Webhook(crate::webhook::WebhookError),
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

/// A failed request or response body read is a transport error, so that a
/// reqwest byte stream can feed the crate's decoders directly.
impl From<reqwest::Error> for Error {
    fn from(error: reqwest::Error) -> Self {
        Error::Transport(error)
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn fmt_retry_after(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| format!(" (retry after {}s)", d.as_secs()))
}

fn fmt_fields(fields: &[FieldIssue]) -> String {
    if fields.is_empty() {
        return String::new();
    }
    let list: Vec<String> = fields.iter().map(ToString::to_string).collect();
    format!(" ({})", list.join("; "))
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
    /// that sending it again cannot create a second job (429, 503).
    pub fn request_not_taken(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. } | Error::ServiceUnavailable { .. }
        )
    }

    /// The wait the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. }
            | Error::ServiceUnavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status of an error answer, if this is one.
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            Error::RateLimited { .. } => 429,
            Error::ServiceUnavailable { .. } => 503,
            Error::Unauthorized { .. } => 401,
            Error::InsufficientCredits { .. } => 402,
            Error::Provider { status, .. } => *status,
            _ => return None,
        })
    }

    /// A decode error for `what`, keeping (a bounded part of) the raw text.
    #[cfg_attr(
        not(any(feature = "soundverse", feature = "soundpiece", feature = "musicgpt")),
        allow(dead_code)
    )]
    pub(crate) fn decode(what: impl Into<String>, reason: impl fmt::Display, raw: &str) -> Self {
        Error::Decode {
            what: what.into(),
            reason: reason.to_string(),
            raw: truncate_raw(raw),
        }
    }

    /// A validation error for `field`.
    pub(crate) fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Maps an error answer to the case a caller matches on.
    ///
    /// Works from the status and the documented bodies of all three providers:
    /// `{success: false, message[, error]}`, `{detail: "..."}` and
    /// `{detail: [{loc, msg, type}]}`. Soundverse's pages give messages but
    /// no status codes, so its messages are recognised by their text too.
    pub fn from_response(
        provider: ProviderName,
        status: StatusCode,
        headers: &HeaderMap,
        body: &str,
    ) -> Self {
        let json: Option<Value> = serde_json::from_str(body).ok();
        let (message, fields) = json.as_ref().map(read_body).unwrap_or_default();
        let message = if message.is_empty() {
            let trimmed = body.trim();
            if trimmed.is_empty() {
                status.canonical_reason().unwrap_or("no message").to_owned()
            } else {
                truncate_raw(trimmed)
            }
        } else {
            message
        };
        let retry_after = parse_retry_after(headers, std::time::SystemTime::now());
        let lower = message.to_lowercase();
        match status.as_u16() {
            429 => Error::RateLimited {
                provider,
                retry_after,
                message,
            },
            503 => Error::ServiceUnavailable {
                provider,
                retry_after,
                message,
            },
            401 | 403 => Error::Unauthorized { provider, message },
            402 => Error::InsufficientCredits { provider, message },
            _ if lower.contains("rate limit") => Error::RateLimited {
                provider,
                retry_after,
                message,
            },
            _ if lower.contains("insufficient balance")
                || lower.contains("insufficient credit")
                || lower.contains("not enough credits") =>
            {
                Error::InsufficientCredits { provider, message }
            }
            _ if lower.contains("nsfw") => Error::ContentRejected { provider, message },
            _ if lower.contains("api key")
                && (lower.contains("invalid") || lower.contains("missing")) =>
            {
                Error::Unauthorized { provider, message }
            }
            _ if lower.contains("temporarily unavailable") => Error::ServiceUnavailable {
                provider,
                retry_after,
                message,
            },
            400 | 422 => Error::InvalidRequest {
                provider,
                message,
                fields,
            },
            status => Error::Provider {
                provider,
                status,
                message,
                body: truncate_raw(body),
            },
        }
    }
}

/// Reads `(message, field issues)` from any documented error body.
fn read_body(json: &Value) -> (String, Vec<FieldIssue>) {
    let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
    match json.get("detail") {
        Some(Value::String(detail)) => (detail.clone(), Vec::new()),
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
#[cfg(any(feature = "soundverse", feature = "soundpiece", feature = "musicgpt"))]
pub(crate) async fn from_generated<E: serde::Serialize>(
    provider: ProviderName,
    error: progenitor_client::Error<E>,
) -> Error {
    use progenitor_client::Error as Generated;
    match error {
        Generated::ErrorResponse(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let body = serde_json::to_string(&response.into_inner()).unwrap_or_default();
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
        Generated::CommunicationError(e)
        | Generated::ResponseBodyError(e)
        | Generated::InvalidUpgrade(e) => Error::Transport(e),
        Generated::InvalidResponsePayload(bytes, e) => Error::decode(
            format!("{provider} response"),
            e,
            &String::from_utf8_lossy(&bytes),
        ),
        Generated::InvalidRequest(reason) => Error::validation("request", reason),
        Generated::Custom(reason) => Error::validation("request", reason),
    }
}
