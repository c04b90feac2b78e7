//! MusicGPT (base URL `<root>/musicgpt`, standing in for
//! `https://api.musicgpt.com/api/public/v1`).
//!
//! What the emulated provider does:
//!
//! * `POST /Remix` (capital R: path case is significant, `/remix` is a 404)
//!   takes a `multipart/form-data` body: `audio_file` (a file part) or
//!   `audio_path` (an absolute http(s) URL), `prompt` (required), `lyrics`,
//!   `mode` (required: `REMIX`, `INPAINT` or `OVER_INSTRUMENTAL`) and
//!   `webhook_url` (default `""`; when set, an absolute http(s) URL). The file
//!   part is streamed: read chunk by chunk and counted, never held whole; the
//!   request body is capped at [`BODY_LIMIT`] bytes (413 `{detail}` beyond).
//!   Every part read is recorded (name, file name, content type, length, and
//!   the value of text parts). The text fields are validated through the
//!   generated `songbind_musicgpt::types::RemixForm`. It answers the page's
//!   "Sample Response": `{success, message, task_id, conversion_id_1,
//!   conversion_id_2, eta, status: "IN_QUEUE", credit_estimate}`.
//! * Each task makes two conversions, each going `IN_QUEUE` -> `PROCESSING`
//!   -> `COMPLETED` (or `ERROR`), paced: about 5 s in the queue, the first
//!   conversion done at about 60 s and the second at about 75 s (real time;
//!   scaled by [`crate::Pacing`]). A background task per remix task drives it.
//! * `GET /byId?conversionType=REMIX&task_id=...` (or `&conversion_id=...`,
//!   exactly one of the two) answers `{success: true, conversion: {task_id,
//!   conversion_id, status, status_msg, audio_url, conversion_cost, title,
//!   lyrics, music_style, createdAt, updatedAt}}`; `audio_url` is `null` until
//!   the conversion is `COMPLETED`, then a one-second WAV the emulator serves.
//! * When `webhook_url` is set, unsigned JSON POSTs go to it (see
//!   `crate::webhook::deliver`): one per conversion as it ends (the page's
//!   payload: `conversion_path`, `conversion_path_wav` (left out of the
//!   second conversion's payload, since the notes say it may be absent),
//!   `conversion_duration`, `lyrics`, `lyrics_timestamped` as a JSON array
//!   encoded in a string, `title`, ...), plus one lyrics delivery (while
//!   processing) and one cover delivery (after both conversions) per task.
//! * Errors use MusicGPT's shapes: 422 `{"detail": [{"loc", "msg", "type"}]}`
//!   (FastAPI / pydantic v2 wording, every issue of the request at once),
//!   `{"detail": "..."}` for other 4xx, `{"success": false, "message"}` for
//!   5xx. An unknown path answers 404 `{"detail": "Not Found"}` and a wrong
//!   method 405 `{"detail": "Method Not Allowed"}`, as FastAPI does.
//!
//! Scenario triggers:
//!
//! * an API key ending in `_no_credits`: `POST /Remix` answers 402
//!   `{"detail": "Insufficient credits"}` and creates no task;
//! * a prompt containing `[fail]`: both conversions end in `ERROR` with a
//!   `status_msg`, and the webhook gets `{success: false, reason}` per
//!   conversion (no lyrics or cover delivery);
//! * `[nsfw]` has no effect: MusicGPT documents no content refusal.
//!
//! Assumed: 422 issues use pydantic v2 wording and types (`"Field required"` / `missing`, `enum`, `value_error`, ...); the spec's example shows the v1 form (`field required` / `value_error.missing`); clients should match on `loc`.
//! Assumed: the timeline (real time) is 5 s in the queue, lyrics ready at 30 s, the first conversion done at 60 s, the second at 75 s, the cover right after.
//! Assumed: `eta` is 184 seconds as in the page's sample and is not scaled by the pacing.
//! Assumed: `credit_estimate` is 0.99 per task and each completed conversion costs 0.495 (half).
//! Assumed: only `multipart/form-data` is accepted; any other body (including the urlencoded body Python's `requests` sends for `data=` with an empty `files={}`) gets a 422 whose detail says so.
//! Assumed: form validation comes before the credits check (FastAPI parses the form before the endpoint runs), so an invalid form with a `_no_credits` key gets the 422.
//! Assumed: an empty `audio_path` (or `lyrics`) counts as not given, as the provider's Python code would treat a falsy value.
//! Assumed: when both `audio_file` and `audio_path` are sent, both are accepted (the file is the input).
//! Assumed: `audio_file` must be a file part (with a file name) and must not be empty; its content type and content are not checked.
//! Assumed: a blank `prompt` is refused (`string_too_short`), as it cannot guide a remix.
//! Assumed: `audio_path` must be an absolute http(s) URL; `webhook_url`, when not empty, too.
//! Assumed: the request body is capped at 100 MiB and each text part at 1 MiB (413 `{detail}` beyond); the rest of an oversized body is read and discarded (up to another 100 MiB) so the client sees the answer.
//! Assumed: unknown form fields are ignored (as FastAPI does) but recorded; when a field is repeated, the last value counts.
//! Assumed: a malformed multipart body answers 400 `{"detail": "There was an error parsing the body"}` (Starlette's wording).
//! Assumed: `/byId` with `task_id` answers the task's first conversion.
//! Assumed: `/byId` with a `conversionType` other than `REMIX` (exact case), or an unknown id, answers 404 `{"detail": "Conversion not found"}`.
//! Assumed: `status_msg` is null in the queue, "Processing" while processing, "Conversion completed" when done, and the failure reason on `ERROR`; `title`, `lyrics`, `music_style` and `conversion_cost` are null until `COMPLETED`.
//! Assumed: `title` is the prompt's first four words in title case; `music_style` is the prompt; the lyrics are the request's `lyrics` or, without them, a short sheet built from the prompt.
//! Assumed: `conversion_path` names the served `.wav` file (the page shows an `.mp3`; the emulator serves WAV only) and `conversion_duration` is 1.0 (the served file lasts one second).
//! Assumed: `lyrics_timestamped` numbers lines as in the lyrics text (blank lines skipped, leaving gaps), spreads them over the one-second file, gives section markers `start == end`, and uses Python's `json.dumps` separators.
//! Assumed: the lyrics delivery is `{success: true, conversion_type: "Lyrics", task_id, lyrics, lyrics_timestamped}` and the cover delivery `{success: true, conversion_type: "Cover", task_id, image_path}` (shapes undocumented).
//! Assumed: webhook deliveries are retried like the other providers' (three attempts), although MusicGPT documents no retry policy.

mod form;
mod payloads;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Query, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use crate::State;
use crate::provider::Provider;
use crate::server::RecordIndex;
use crate::webhook;
use form::{Issue, read_form, unprocessable, validate};

/// The largest request body `POST /Remix` reads, in bytes (100 MiB).
pub(crate) const BODY_LIMIT: usize = 100 * 1024 * 1024;

/// The largest text part kept in memory, in bytes (1 MiB).
const TEXT_LIMIT: usize = 1024 * 1024;

/// Estimated seconds to completion in the submit answer (the page's sample).
const ETA_SECONDS: i64 = 184;

/// Credits a task is estimated to cost (the page's sample).
const CREDIT_ESTIMATE: f64 = 0.99;

/// Credits one completed conversion costs.
const CONVERSION_COST: f64 = 0.495;

/// Real time a task waits in the queue before processing starts.
const QUEUE_TIME: Duration = Duration::from_secs(5);
/// Real time after submission when the lyrics are ready (lyrics delivery).
const LYRICS_AT: Duration = Duration::from_secs(30);
/// Real time after submission when the first conversion ends.
const FIRST_DONE_AT: Duration = Duration::from_secs(60);
/// Real time after submission when the second conversion ends.
const SECOND_DONE_AT: Duration = Duration::from_secs(75);

/// What marks a prompt whose conversions must fail.
const FAIL_MARKER: &str = "[fail]";

/// Remix tasks and their conversions, shared by the handlers and the
/// background tasks that drive each remix task.
#[derive(Debug, Default)]
pub(crate) struct MusicGptState {
    tasks: Mutex<Tasks>,
}

#[derive(Debug, Default)]
struct Tasks {
    by_id: HashMap<String, Task>,
    /// conversion id -> task id
    by_conversion: HashMap<String, String>,
}

impl MusicGptState {
    /// How many remix tasks were created (for `Emulator::jobs_created`).
    pub(crate) fn job_count(&self) -> usize {
        self.tasks().by_id.len()
    }

    fn tasks(&self) -> MutexGuard<'_, Tasks> {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One remix task: two conversions of the same input.
#[derive(Clone, Debug)]
struct Task {
    task_id: String,
    prompt: String,
    lyrics: String,
    title: String,
    webhook_url: String,
    fail: bool,
    created_at: String,
    conversions: [Conversion; 2],
}

#[derive(Clone, Debug)]
struct Conversion {
    id: String,
    status: Status,
    status_msg: Option<String>,
    updated_at: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    InQueue,
    Processing,
    Completed,
    Error,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::InQueue => "IN_QUEUE",
            Status::Processing => "PROCESSING",
            Status::Completed => "COMPLETED",
            Status::Error => "ERROR",
        }
    }
}

/// The MusicGPT routes, mounted under `/musicgpt` by the server.
pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route(
            "/Remix",
            // The upload is streamed and capped by the handler itself.
            post(remix).layer(DefaultBodyLimit::disable()),
        )
        .route("/byId", get(by_id))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> Response {
    Provider::MusicGpt.error(StatusCode::NOT_FOUND, "Not Found")
}

async fn method_not_allowed() -> Response {
    Provider::MusicGpt.error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// `POST /Remix`: validate, record, create the task, answer the sample response.
async fn remix(
    AxumState(state): AxumState<Arc<State>>,
    index: Option<Extension<RecordIndex>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let mut multipart = match multipart {
        Ok(multipart) => multipart,
        Err(_) => {
            let received = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no content type");
            return unprocessable(&[Issue {
                loc: vec!["body"],
                msg: format!(
                    "Value error, the body must be multipart/form-data (fields audio_file or audio_path, prompt, mode, ...), received: {received}"
                ),
                kind: "value_error",
            }]);
        }
    };
    let form = read_form(&mut multipart).await;
    drop(multipart);
    if let Some(Extension(RecordIndex(index))) = index {
        state.record_form(index, form.parts.clone());
    }
    if let Some(mut refusal) = form.refusal {
        if form.close {
            refusal
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        return refusal;
    }
    let remix = match validate(&form.parts) {
        Ok(remix) => remix,
        Err(issues) => return unprocessable(&issues),
    };
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    if key.ends_with("_no_credits") {
        return Provider::MusicGpt.error(StatusCode::PAYMENT_REQUIRED, "Insufficient credits");
    }

    let now = payloads::iso8601(SystemTime::now());
    let conversion = || Conversion {
        id: uuid::Uuid::new_v4().to_string(),
        status: Status::InQueue,
        status_msg: None,
        updated_at: now.clone(),
    };
    let lyrics = remix
        .lyrics
        .clone()
        .unwrap_or_else(|| payloads::default_lyrics(&remix.prompt));
    let task = Task {
        task_id: uuid::Uuid::new_v4().to_string(),
        title: payloads::title(&remix.prompt),
        fail: remix.prompt.contains(FAIL_MARKER),
        prompt: remix.prompt,
        lyrics,
        webhook_url: remix.webhook_url,
        created_at: now.clone(),
        conversions: [conversion(), conversion()],
    };
    let body = json!({
        "success": true,
        "message": "Remix request submitted successfully",
        "task_id": task.task_id,
        "conversion_id_1": task.conversions[0].id,
        "conversion_id_2": task.conversions[1].id,
        "eta": ETA_SECONDS,
        "status": "IN_QUEUE",
        "credit_estimate": CREDIT_ESTIMATE,
    });
    {
        let mut tasks = state.musicgpt.tasks();
        for conversion in &task.conversions {
            tasks
                .by_conversion
                .insert(conversion.id.clone(), task.task_id.clone());
        }
        tasks.by_id.insert(task.task_id.clone(), task.clone());
    }
    tokio::spawn(drive(Arc::clone(&state), task.task_id));
    (StatusCode::OK, Json(body)).into_response()
}

/// Updates one task under the lock and returns a copy of it afterwards.
fn update(state: &State, task_id: &str, change: impl FnOnce(&mut Task)) -> Option<Task> {
    let mut tasks = state.musicgpt.tasks();
    let task = tasks.by_id.get_mut(task_id)?;
    change(task);
    Some(task.clone())
}

/// Moves a task's conversions through their states, paced, and sends its
/// webhooks.
async fn drive(state: Arc<State>, task_id: String) {
    state.pacing.sleep(QUEUE_TIME).await;
    let Some(task) = update(&state, &task_id, |task| {
        let now = payloads::iso8601(SystemTime::now());
        for conversion in &mut task.conversions {
            conversion.status = Status::Processing;
            conversion.status_msg = Some("Processing".to_owned());
            conversion.updated_at = now.clone();
        }
    }) else {
        return;
    };
    state.event_log.record(&task_id, 0, "PROCESSING", None);
    state.pacing.sleep(LYRICS_AT - QUEUE_TIME).await;
    if !task.fail {
        send(&state, &task.webhook_url, payloads::lyrics(&task));
    }
    let mut elapsed = LYRICS_AT;
    // Held from each settling until its delivery (and, after the last, the
    // cover's) is started (see `webhook::hold`).
    let mut _held = None;
    for (which, done_at) in [(0, FIRST_DONE_AT), (1, SECOND_DONE_AT)] {
        state.pacing.sleep(done_at - elapsed).await;
        elapsed = done_at;
        if !task.webhook_url.is_empty() {
            _held = Some(webhook::hold(&state));
        }
        let Some(task) = update(&state, &task_id, |task| {
            let conversion = &mut task.conversions[which];
            conversion.updated_at = payloads::iso8601(SystemTime::now());
            if task.fail {
                conversion.status = Status::Error;
                conversion.status_msg = Some(payloads::FAILURE_REASON.to_owned());
            } else {
                conversion.status = Status::Completed;
                conversion.status_msg = Some("Conversion completed".to_owned());
            }
        }) else {
            return;
        };
        if state.event_log.enabled() {
            let status = task.conversions[which].status.as_str();
            let seq = u32::try_from(which).unwrap_or(u32::MAX) + 1;
            state.event_log.record(&task_id, seq, status, None);
        }
        send(
            &state,
            &task.webhook_url,
            payloads::conversion(&state, &task, which),
        );
    }
    if !task.fail {
        send(&state, &task.webhook_url, payloads::cover(&state, &task));
    }
}

/// POSTs a webhook payload when the task has a webhook URL.
fn send(state: &Arc<State>, url: &str, payload: Value) {
    if url.is_empty() {
        return;
    }
    webhook::deliver(
        state,
        Provider::MusicGpt,
        url.to_owned(),
        Vec::new(),
        bytes::Bytes::from(payload.to_string()),
    );
}

/// `GET /byId`: one conversion's state, by task id (its first conversion) or
/// conversion id.
async fn by_id(
    AxumState(state): AxumState<Arc<State>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let Ok(Query(pairs)) = query else {
        return unprocessable(&[Issue {
            loc: vec!["query"],
            msg: "Value error, the query string could not be parsed".to_owned(),
            kind: "value_error",
        }]);
    };
    let get = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let mut issues = Vec::new();
    let conversion_type = get("conversionType");
    if conversion_type.is_none() {
        issues.push(Issue::missing(["query", "conversionType"]));
    }
    let task_id = get("task_id");
    let conversion_id = get("conversion_id");
    if task_id.is_some() == conversion_id.is_some() {
        issues.push(Issue::new(
            [
                "query",
                if task_id.is_some() {
                    "conversion_id"
                } else {
                    "task_id"
                },
            ],
            "Value error, send exactly one of task_id or conversion_id",
            "value_error",
        ));
    }
    if !issues.is_empty() {
        return unprocessable(&issues);
    }
    let not_found = || Provider::MusicGpt.error(StatusCode::NOT_FOUND, "Conversion not found");
    if conversion_type != Some("REMIX") {
        return not_found();
    }
    let found = {
        let tasks = state.musicgpt.tasks();
        let task_id = match (task_id, conversion_id) {
            (Some(task_id), _) => Some(task_id),
            (None, Some(conversion_id)) => {
                tasks.by_conversion.get(conversion_id).map(String::as_str)
            }
            (None, None) => None,
        };
        task_id.and_then(|id| tasks.by_id.get(id)).and_then(|task| {
            let which = match conversion_id {
                Some(id) => task.conversions.iter().position(|c| c.id == id)?,
                None => 0,
            };
            Some((task.clone(), which))
        })
    };
    let Some((task, which)) = found else {
        return not_found();
    };
    let body = json!({
        "success": true,
        "conversion": payloads::conversion_state(&state, &task, which),
    });
    (StatusCode::OK, Json(body)).into_response()
}
