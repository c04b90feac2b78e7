//! SoundPiece: idempotent remix operations that are polled (optionally by
//! long-polling) and reported to a signed callback.
//!
//! Routes, relative to the base URL `<root>/soundpiece`:
//!
//! * `PUT /v1/create.remix_song` validates the body against
//!   [`songbind_soundpiece::types::CreateRemixSongRequest`] plus the documented
//!   constraints the type does not enforce (`n_variations` at most 3,
//!   `source.url` an absolute http(s) URL, `callback_url` an https URL), then
//!   creates an operation `op_<26 chars of [0-9a-z]>` in status `processing`
//!   (outputs and error null) and answers `200 {"remix_song": {...}}`.
//!   The same `idempotency_key` with the same request answers the original
//!   response body byte for byte and creates nothing; with a different request
//!   it is refused (409). Check and creation happen under one lock, so two
//!   concurrent identical PUTs create exactly one operation.
//! * `GET /v1/create.remix_song?id=op_...&wait=true|false` answers the
//!   operation's current state; with `wait=true` it long-polls (up to 20 s,
//!   scaled by the pacing, never less than [`LONG_POLL_FLOOR`] of real time)
//!   and returns as soon as the operation is `ready` or `failed`.
//!
//! An operation stays `processing` for about 45 s (scaled by the pacing;
//! near-instant under `Pacing::instant()`), then becomes `ready` with
//! `n_variations` outputs (each a WAV file the emulator serves, `expires_at`
//! one hour after completion, `duration` in seconds), or `failed` with
//! `error.message`. Exactly one of `outputs` / `error` is set at the end.
//! When `callback_url` was given, the final object is POSTed to it as
//! `{"type": "remix_song.ready" | "remix_song.failed", "data": {"remix_song": {...}}}`,
//! signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256>` with the emulator's
//! `whsec_` secret); retries reuse the same headers.
//!
//! Errors use the documented shapes: `{"detail": "<string>"}`, and for 422
//! `{"detail": [{"loc", "msg", "type"}]}`. Unknown routes answer
//! `404 {"detail": "Not Found"}`, a wrong method `405 {"detail": "Method Not Allowed"}`.
//!
//! Scenario triggers:
//! * an API key ending in `_no_credits`: `PUT` answers
//!   `402 {"detail": "Not enough credits."}` (after validation) and creates nothing;
//! * a prompt containing `[fail]`: the operation ends `failed` with an error message;
//! * a prompt containing `[nsfw]`: nothing special, SoundPiece documents no
//!   content refusal.
//!
//! Assumed: the same idempotency key "with the same body" means a body that
//! decodes to the same typed request (key order, whitespace, an omitted
//! `n_variations` versus `1`, and `callback_url` null versus absent do not matter).
//! Assumed (as the spec's `idempotency_conflict` example does): reusing an
//! idempotency key with a different request is refused with `409 {"detail":
//! "This idempotency_key was already used with a different request body."}`
//! (the provider's notes do not say).
//! Assumed: `callback_url` must be https, but plain http is accepted for loopback
//! hosts (127.0.0.0/8, `localhost`, `::1`) so that local receivers can be used.
//! Assumed: `source.url` must be an absolute http or https URL with a host; the
//! emulator never fetches it.
//! Assumed: body validation happens before the credits check, so an invalid
//! body with a `_no_credits` key answers 422; polling never needs credits.
//! Assumed: outputs are WAV files (the notes say signed FLAC, 44.1 kHz); each
//! `duration` is the length of the served file (1 s); URLs do not really
//! expire, `expires_at` is set once, one hour after the operation completed.
//! Assumed: an operation takes about 45 s of (paced) time, with no
//! intermediate states.
//! Assumed: 422 issues use pydantic-style messages (`Field required`,
//! `String should have at most 3000 characters`, ...) and the `type` given by
//! `Provider::validation_error`; malformed JSON is a 422 at `["body", <byte offset>]`.
//! Assumed: `wait` accepts pydantic's boolean spellings (true/false, 1/0,
//! yes/no, on/off, t/f, y/n); anything else is a 422 at `["query", "wait"]`.
//! Assumed: a `wait=true` window never drops below 2 s of real time (the
//! scaled 20 s is zero under instant pacing, yet a long-poll right after a
//! create must see the operation finish); when the window ends first, the
//! answer is `200` with the operation still `processing`.
//! Assumed: an unknown (well-formed) id answers `404 {"detail": "Operation <id> not found"}`.
//! Assumed: the 402 text is the spec's example `Not enough credits.`; the
//! webhook id is `msg_` followed by 26 random alphanumeric characters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;
use songbind_soundpiece::types::CreateRemixSongRequest;
use tokio::sync::watch;
use uuid::Uuid;

use crate::State;
use crate::provider::Provider;
use crate::webhook;

mod validate;

use validate::{is_operation_id, issue, parse_bool, parse_request};

const PROVIDER: Provider = Provider::SoundPiece;

/// How long an operation stays `processing` in real time (before pacing).
const PROCESSING_TIME: Duration = Duration::from_secs(45);

/// The documented long-poll window of `wait=true` (before pacing).
const LONG_POLL_WINDOW: Duration = Duration::from_secs(20);

/// The shortest long-poll window, in real time: under fast pacing the scaled
/// window would be (near) zero, yet a `wait=true` right after a create must
/// still see the operation finish.
const LONG_POLL_FLOOR: Duration = Duration::from_secs(2);

/// How long output URLs are said to stay valid after completion.
const OUTPUT_LIFETIME: Duration = Duration::from_secs(3600);

/// Length in seconds of every served output file (`files::sample_wav`).
const OUTPUT_DURATION_SECS: f64 = 1.0;

/// Largest request body read (bigger ones answer 413).
const BODY_LIMIT: usize = 1024 * 1024;

/// The `detail` of the 409 answering a reused `idempotency_key` with a
/// different request: the spec's `idempotency_conflict` example
/// (`specs/soundpiece.yaml`, under `ClientError`).
const IDEMPOTENCY_CONFLICT: &str =
    "This idempotency_key was already used with a different request body.";

/// SoundPiece's operations and idempotency records, shared by its handlers.
#[derive(Debug, Default)]
pub(crate) struct SoundPieceState {
    inner: Mutex<Inner>,
    created: AtomicUsize,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every operation by id; the watch channel holds its current state and
    /// wakes long-polls when it changes.
    operations: HashMap<String, watch::Sender<RemixSong>>,
    /// The first request and the exact first answer for each idempotency key.
    by_key: HashMap<Uuid, Replay>,
}

#[derive(Debug)]
struct Replay {
    request: CreateRemixSongRequest,
    response: Bytes,
}

impl SoundPieceState {
    /// Operations created so far (idempotent replays do not count), for
    /// `Emulator::jobs_created`.
    pub(crate) fn job_count(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }
}

/// The operation object, serialized in the field order of the documented sample.
#[derive(Clone, Debug, Serialize)]
struct RemixSong {
    id: String,
    created_at: String,
    idempotency_key: Uuid,
    source: Source,
    lyrics: String,
    prompt: String,
    n_variations: u64,
    status: Status,
    outputs: Option<Vec<Output>>,
    error: Option<OperationError>,
}

#[derive(Clone, Debug, Serialize)]
struct Source {
    url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Processing,
    Ready,
    Failed,
}

#[derive(Clone, Debug, Serialize)]
struct Output {
    url: String,
    expires_at: String,
    duration: f64,
}

#[derive(Clone, Debug, Serialize)]
struct OperationError {
    message: String,
}

/// The SoundPiece routes, served under `/soundpiece` by the server.
pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route(
            "/v1/create.remix_song",
            put(create_remix_song)
                .get(get_remix_song)
                .fallback(method_not_allowed),
        )
        .fallback(not_found)
}

async fn not_found() -> Response {
    PROVIDER.error(StatusCode::NOT_FOUND, "Not Found")
}

async fn method_not_allowed() -> Response {
    let mut response = PROVIDER.error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, PUT"));
    response
}

/// `PUT /v1/create.remix_song`.
async fn create_remix_song(AxumState(state): AxumState<Arc<State>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return PROVIDER.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("Request body larger than {BODY_LIMIT} bytes"),
        );
    };
    let request = match parse_request(&bytes) {
        Ok(request) => request,
        Err(issues) => return PROVIDER.validation_error(&issues),
    };
    if api_key(&parts.headers).ends_with("_no_credits") {
        return PROVIDER.error(StatusCode::PAYMENT_REQUIRED, "Not enough credits.");
    }

    let key = request.idempotency_key;
    let (response, job) = {
        let mut inner = state.lock(&state.soundpiece.inner);
        if let Some(replay) = inner.by_key.get(&key) {
            if replay.request != request {
                return PROVIDER.error(StatusCode::CONFLICT, IDEMPOTENCY_CONFLICT);
            }
            (replay.response.clone(), None)
        } else {
            let song = RemixSong {
                id: new_operation_id(),
                created_at: rfc3339(SystemTime::now()),
                idempotency_key: key,
                source: Source {
                    url: request.source.url.clone(),
                },
                lyrics: request.lyrics.as_str().to_owned(),
                prompt: request.prompt.as_str().to_owned(),
                n_variations: request.n_variations.get(),
                status: Status::Processing,
                outputs: None,
                error: None,
            };
            let response = Bytes::from(json!({ "remix_song": &song }).to_string());
            let (sender, _) = watch::channel(song.clone());
            inner.operations.insert(song.id.clone(), sender.clone());
            inner.by_key.insert(
                key,
                Replay {
                    request: request.clone(),
                    response: response.clone(),
                },
            );
            state.soundpiece.created.fetch_add(1, Ordering::SeqCst);
            (response, Some(sender))
        }
    };
    if let Some(sender) = job {
        let callback_url = request
            .callback_url
            .as_ref()
            .map(|url| url.as_str().to_owned());
        tokio::spawn(run_operation(Arc::clone(&state), sender, callback_url));
    }
    json_response(response)
}

/// `GET /v1/create.remix_song?id=op_...&wait=true|false`.
async fn get_remix_song(
    AxumState(state): AxumState<Arc<State>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let Ok(Query(pairs)) = query else {
        return PROVIDER.validation_error(&[(
            vec![json!("query")],
            "Query string could not be decoded".to_owned(),
        )]);
    };
    // Like FastAPI, the last of repeated parameters wins.
    let last = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let mut issues = Vec::new();
    let id = match last("id") {
        None => {
            issues.push(issue(&["query", "id"], "Field required"));
            None
        }
        Some(id) if !is_operation_id(id) => {
            issues.push(issue(
                &["query", "id"],
                "String should match pattern '^op_[0-9a-z]{26}$'",
            ));
            None
        }
        Some(id) => Some(id.to_owned()),
    };
    let wait = match last("wait").map(parse_bool) {
        None => false,
        Some(Some(wait)) => wait,
        Some(None) => {
            issues.push(issue(
                &["query", "wait"],
                "Input should be a valid boolean, unable to interpret input",
            ));
            false
        }
    };
    let Some(id) = id.filter(|_| issues.is_empty()) else {
        return PROVIDER.validation_error(&issues);
    };
    let receiver = state
        .lock(&state.soundpiece.inner)
        .operations
        .get(&id)
        .map(watch::Sender::subscribe);
    let Some(mut receiver) = receiver else {
        return PROVIDER.error(StatusCode::NOT_FOUND, &format!("Operation {id} not found"));
    };
    if wait {
        let window = state
            .pacing
            .scaled_duration(LONG_POLL_WINDOW)
            .max(LONG_POLL_FLOOR);
        let finished = receiver.wait_for(|song| song.status != Status::Processing);
        // A timeout just answers the current (still processing) state.
        let _ = tokio::time::timeout(window, finished).await;
    }
    let song = receiver.borrow().clone();
    json_response(Bytes::from(json!({ "remix_song": song }).to_string()))
}

/// Processes one operation: waits the (paced) processing time, settles it
/// as ready or failed, then sends the callback if one was asked for.
async fn run_operation(
    state: Arc<State>,
    operation: watch::Sender<RemixSong>,
    callback_url: Option<String>,
) {
    state.pacing.sleep(PROCESSING_TIME).await;
    // Held until the callback is started (see `webhook::hold`).
    let _held = callback_url.as_ref().map(|_| webhook::hold(&state));
    let now = SystemTime::now();
    operation.send_modify(|song| {
        if song.prompt.contains("[fail]") {
            song.status = Status::Failed;
            song.error = Some(OperationError {
                message: "The remix could not be produced: the prompt asked for a failure \
                          ([fail])."
                    .to_owned(),
            });
        } else {
            song.status = Status::Ready;
            song.outputs = Some(
                (1..=song.n_variations)
                    .map(|i| Output {
                        url: state.output_url(&format!("{}_{i}.wav", song.id)),
                        expires_at: rfc3339(now + OUTPUT_LIFETIME),
                        duration: OUTPUT_DURATION_SECS,
                    })
                    .collect(),
            );
        }
    });
    if state.event_log.enabled() {
        let song = operation.borrow();
        let status = if song.status == Status::Failed {
            "failed"
        } else {
            "ready"
        };
        state.event_log.record(&song.id, 0, status, None);
    }
    let Some(url) = callback_url else {
        return;
    };
    let song = operation.borrow().clone();
    let kind = match song.status {
        Status::Failed => "remix_song.failed",
        _ => "remix_song.ready",
    };
    let body = Bytes::from(json!({ "type": kind, "data": { "remix_song": song } }).to_string());
    let headers = signed_headers(&state.webhook_secret, &body, now);
    webhook::deliver(&state, PROVIDER, url, headers, body);
}

/// The Standard Webhooks headers for `body`: a fresh `webhook-id`, the
/// timestamp of `now` and the `v1` HMAC-SHA256 signature of
/// `{id}.{timestamp}.{body}` keyed with the base64-decoded secret (after
/// `whsec_`; a secret that is not base64 is used as raw bytes).
fn signed_headers(secret: &str, body: &[u8], now: SystemTime) -> Vec<(String, String)> {
    let id = format!("msg_{}", random_chars(26, ALPHANUMERIC));
    let timestamp = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = BASE64
        .decode(encoded)
        .unwrap_or_else(|_| encoded.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let signature = BASE64.encode(mac.finalize().into_bytes());
    vec![
        ("webhook-id".to_owned(), id),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        ("webhook-signature".to_owned(), format!("v1,{signature}")),
    ]
}

fn api_key(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().strip_prefix("Bearer "))
        .unwrap_or("")
        .trim()
}

fn json_response(body: Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}

const LOWER_ALPHANUMERIC: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const ALPHANUMERIC: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn random_chars(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

fn new_operation_id() -> String {
    format!("op_{}", random_chars(26, LOWER_ALPHANUMERIC))
}

/// `time` as RFC 3339 in UTC with second precision (`2025-01-15T10:00:00Z`).
fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_736_935_200)),
            "2025-01-15T10:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661)),
            "2000-02-29T01:01:01Z"
        );
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn operation_ids_match_the_documented_pattern() {
        for _ in 0..100 {
            let id = new_operation_id();
            assert!(is_operation_id(&id), "{id}");
        }
        assert!(!is_operation_id("op_ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
        assert!(!is_operation_id("op_abc"));
        assert!(!is_operation_id("op_k9p34y6n3wd25rq4f5zr37e3p3x"));
    }
}
