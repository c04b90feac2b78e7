//! Soundverse: song generation (v6), song extension (v6) and AI remix (v7),
//! streamed as server-sent events or answered in one JSON document.
//!
//! Routes, under the Soundverse base URL (`<root>/soundverse`):
//!
//! | route | what it does |
//! |---|---|
//! | `POST /v6/generate/song` | SSE: initializing, validated, streaming, processing, running (progress 2, 14, ...), streaming ready for versions 1 and 2 (`stream_url`), running up to 90, a hold at 90 (about 25 s real time, a `: keepalive` comment every 5 s), then per version: completed (`audio_url`, progress 100), uploading, final completed (`lyrics_sections`) |
//! | `POST /v6/extend/song` | the same stream, `operation: "extend_song"`, song name "Extended Song" |
//! | `POST /v6/generate/song/sync`, `POST /v6/extend/song/sync` | runs the same job (the same total time) and answers `SyncSongResponse` with both versions; extend adds `licenses` and `ai_reply` |
//! | `POST /v7/generate/remix` | SSE only: job_created (`job_id`), validating, queued (`message_id`), starting, uploading, streaming with progress 0..90, a hold at 90 with keepalives, then completed (`audio_url`, `song_name`, `album_art`, `operation: "remix_song"`) for versions 1 and 2 |
//! | `GET /status/generations/{message_id}` | the job's current state: `message_id`, `status` (the last stage sent), `progress`, `chunkIndex`, `isComplete`, `operation`, `song_name`, `album_art`, `versions` (`stream_url` / `audio_url` once sent), `error` after a failure, `job_id` for remixes; 404 `{success: false, message}` for an unknown id |
//!
//! `chunkIndex` counts the events of a stream from 0; `isComplete` is false
//! on every chunk but the very last. Album art is a PNG, stream and audio
//! URLs are WAV files, all served by the emulator itself. Each request gets a
//! fresh `message_id` (`msg_<32 hex>`); remixes also a `job_id`
//! (`job_<32 hex>`). A job counts as created ([`SoundverseState::job_count`])
//! once its request passed every check, before its first event is sent.
//!
//! Requests are refused before any job exists when:
//! * the body does not deserialize into the generated request type, or
//!   breaks a documented rule: 422 `{"detail": "..."}` naming the field (an
//!   empty, blank or missing generate prompt, and any blank prompt, get the
//!   page's exact `Invalid or empty prompt provided`; `extend_at` outside
//!   [8000, 420000]; a remix without prompt or lyrics; a remix prompt over
//!   1024 characters; a URL field that is not an absolute http(s) URL);
//! * the prompt or lyrics contain `[nsfw]`: 400 with the documented NSFW body;
//! * the API key ends in `_no_credits`: 402 `{success: false, message:
//!   "Insufficient balance for this operation."}`.
//!
//! A prompt or lyrics containing `[fail]` make the job fail during processing
//! (after progress 14 on v6, 20 on v7): the stream's last chunk has
//! `status: "failed"` and an `error`, and a sync request answers 500
//! `{success: false, message}`.
//!
//! Stream faults (`drop-stream`, `end-stream`, `stall-stream`, `fragment`)
//! shape the SSE body; the job itself carries on to its end (visible through
//! the status endpoint) when the stream is cut or the client goes away.
//!
//! Assumed: the documented errors have no published status codes; the
//! emulator answers 422 for validation, 400 for NSFW, 402 for insufficient
//! balance, 500 for a failed sync job (as the spec's examples assume).
//! Assumed: checks run in this order: body and field rules (422), NSFW (400),
//! balance (402).
//! Assumed: a missing generate `prompt` gets the page's "Invalid or empty
//! prompt provided"; an explicit `null` counts as an absent field.
//! Assumed: a blank `prompt` is refused on every operation where it is sent,
//! and blank extend `lyrics` get "Invalid or empty lyrics provided".
//! Assumed: `extend_at` must be a JSON integer (30000.0 is refused).
//! Assumed: the remix reference audio is not downloaded, so its 10 MB and
//! 10-350 s limits are not checked; any http(s) host is accepted.
//! Assumed: unknown body fields are ignored and the content type is not
//! checked (the body is read as JSON whatever it says).
//! Assumed: v6 timing and progress: running at 2, 14, 27, 39, streaming ready
//! for both versions, running at 52, 66, 78, 90, then the hold; the whole job
//! takes about a minute in real time.
//! Assumed: the v6 tail is completed, uploading, final completed for version
//! 1, then the same three for version 2 (the page shows them for version 1
//! only, with consecutive chunk indexes).
//! Assumed: the completed chunks (with `audio_url`, and the final ones with
//! `lyrics_sections`) carry `version` and `operation` ("generate_song",
//! "extend_song", "remix_song"), which the page lists as fields without
//! saying on which stage.
//! Assumed: `isComplete` is true on the last chunk only (every page sample
//! shows false), including a `failed` chunk.
//! Assumed: the failed chunk is `{message_id, isComplete, status: "failed",
//! error, operation, chunkIndex}`.
//! Assumed: v7 chunks carry only `message_id` besides the stage fields until
//! the completed chunks (no `stream_url` is sent on v7); `job_created` has
//! no `message_id`.
//! Assumed: lyrics sections are `{section, lines, start_time, end_time}`
//! objects, four lines each; without lyrics one placeholder section.
//! Assumed: the song name is made from the first three significant words of
//! the prompt ("Extended Song" for extensions, as the sample, and
//! "`<name> (Remix)`" for remixes).
//! Assumed: the extend sync answer has no top-level `song_name` (the page's
//! sample has none).
//! Assumed: the status endpoint's shape (unpublished) is the open object
//! described above; it answers only for `message_id`s (not v7 `job_id`s), and
//! a job registered but not yet streamed shows its first stage
//! ("initializing" or "job_created").
//! Assumed: a job keeps running on the server when its stream is cut or its
//! client goes away (billing happened at validation).
//! Assumed: bodies over 1 MiB get 413 `{success: false, message}`.
//! Assumed: unknown routes answer 404 `{"detail": "Not Found"}` (FastAPI's
//! answer).

mod timeline;
mod validate;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Path, Request, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use self::timeline::{FAILURE_MESSAGE, Plan};
use self::validate::{Accepted, validate};
use crate::State;
use crate::provider::Provider;
use crate::server::ActiveFault;
use crate::sse::{self, Frame, OnEvent};

/// The largest request body read (larger ones get a 413).
const BODY_LIMIT: usize = 1024 * 1024;

/// Which operation a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    /// `POST /v6/generate/song[/sync]`.
    Generate,
    /// `POST /v6/extend/song[/sync]`.
    Extend,
    /// `POST /v7/generate/remix`.
    Remix,
}

impl Operation {
    /// The `operation` value of its chunks.
    fn name(self) -> &'static str {
        match self {
            Operation::Generate => "generate_song",
            Operation::Extend => "extend_song",
            Operation::Remix => "remix_song",
        }
    }
}

/// Soundverse's jobs by `message_id`, kept so that the status endpoint can
/// report a job while (and after) its stream plays.
#[derive(Debug, Default)]
pub(crate) struct SoundverseState {
    jobs: Mutex<HashMap<String, Job>>,
    created: AtomicUsize,
}

/// What the status endpoint knows about one job: the state its last event
/// left it in.
#[derive(Debug)]
struct Job {
    operation: Operation,
    job_id: Option<String>,
    status: String,
    progress: i64,
    chunk_index: Option<i64>,
    /// How many events of its timeline have been applied.
    events: usize,
    is_complete: bool,
    song_name: Option<String>,
    album_art: Option<String>,
    /// `(stream_url, audio_url)` of versions 1 and 2, once sent.
    versions: [(Option<String>, Option<String>); 2],
    error: Option<String>,
}

impl SoundverseState {
    /// How many generation requests were accepted (passed every check).
    pub(crate) fn job_count(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }

    fn jobs(&self) -> MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn create(&self, plan: &Plan) {
        let job = Job {
            operation: plan.operation,
            job_id: plan.job_id.clone(),
            status: match plan.operation {
                Operation::Remix => "job_created",
                _ => "initializing",
            }
            .to_owned(),
            progress: 0,
            chunk_index: None,
            events: 0,
            is_complete: false,
            song_name: None,
            album_art: None,
            versions: Default::default(),
            error: None,
        };
        self.jobs().insert(plan.message_id.clone(), job);
        self.created.fetch_add(1, Ordering::SeqCst);
    }

    /// Moves a job to the state an event of its timeline describes.
    fn apply(&self, message_id: &str, event: &Value) {
        let mut jobs = self.jobs();
        let Some(job) = jobs.get_mut(message_id) else {
            return;
        };
        let text = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
        job.events += 1;
        if let Some(status) = text("status") {
            job.status = status;
        }
        if let Some(progress) = event.get("progress").and_then(Value::as_i64) {
            job.progress = progress;
        }
        if let Some(index) = event.get("chunkIndex").and_then(Value::as_i64) {
            job.chunk_index = Some(index);
        }
        job.is_complete |= event.get("isComplete") == Some(&Value::Bool(true));
        job.song_name = text("song_name").or(job.song_name.take());
        job.album_art = text("album_art").or(job.album_art.take());
        job.error = text("error").or(job.error.take());
        let version = event.get("version").and_then(Value::as_u64);
        if let Some(slot) = version
            .and_then(|v| usize::try_from(v).ok()?.checked_sub(1))
            .and_then(|i| job.versions.get_mut(i))
        {
            slot.0 = text("stream_url").or(slot.0.take());
            slot.1 = text("audio_url").or(slot.1.take());
        }
    }

    fn events_applied(&self, message_id: &str) -> usize {
        self.jobs().get(message_id).map_or(0, |job| job.events)
    }

    /// The status endpoint's answer for a job.
    fn snapshot(&self, message_id: &str) -> Option<Value> {
        let jobs = self.jobs();
        let job = jobs.get(message_id)?;
        let versions: Vec<Value> = job
            .versions
            .iter()
            .zip(1..)
            .map(|((stream_url, audio_url), version)| {
                let mut entry = json!({ "version": version });
                if let Some(url) = stream_url {
                    entry["stream_url"] = url.as_str().into();
                }
                if let Some(url) = audio_url {
                    entry["audio_url"] = url.as_str().into();
                }
                entry
            })
            .collect();
        let mut status = json!({
            "message_id": message_id,
            "status": job.status,
            "progress": job.progress,
            "chunkIndex": job.chunk_index,
            "isComplete": job.is_complete,
            "operation": job.operation.name(),
            "versions": versions,
        });
        let optional = [
            ("song_name", &job.song_name),
            ("album_art", &job.album_art),
            ("error", &job.error),
            ("job_id", &job.job_id),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                status[name] = value.as_str().into();
            }
        }
        Some(status)
    }
}

/// The Soundverse routes (nested under `/soundverse` by the server).
pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/v6/generate/song", post(generate_stream))
        .route("/v6/generate/song/sync", post(generate_sync))
        .route("/v6/extend/song", post(extend_stream))
        .route("/v6/extend/song/sync", post(extend_sync))
        .route("/v7/generate/remix", post(remix_stream))
        .route("/status/generations/{message_id}", get(generation_status))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({ "detail": "Not Found" })),
            )
        })
}

async fn generate_stream(AxumState(state): AxumState<Arc<State>>, request: Request) -> Response {
    start(state, request, Operation::Generate, false).await
}

async fn generate_sync(AxumState(state): AxumState<Arc<State>>, request: Request) -> Response {
    start(state, request, Operation::Generate, true).await
}

async fn extend_stream(AxumState(state): AxumState<Arc<State>>, request: Request) -> Response {
    start(state, request, Operation::Extend, false).await
}

async fn extend_sync(AxumState(state): AxumState<Arc<State>>, request: Request) -> Response {
    start(state, request, Operation::Extend, true).await
}

async fn remix_stream(AxumState(state): AxumState<Arc<State>>, request: Request) -> Response {
    start(state, request, Operation::Remix, false).await
}

async fn generation_status(
    AxumState(state): AxumState<Arc<State>>,
    Path(message_id): Path<String>,
) -> Response {
    match state.soundverse.snapshot(&message_id) {
        Some(status) => Json(status).into_response(),
        None => Provider::Soundverse.error(StatusCode::NOT_FOUND, "Generation not found."),
    }
}

/// Checks a generation request, creates its job and answers with its stream
/// (or, for `sync`, with its result once the job has run).
async fn start(state: Arc<State>, request: Request, operation: Operation, sync: bool) -> Response {
    let fault = request
        .extensions()
        .get::<ActiveFault>()
        .and_then(ActiveFault::stream_fault);
    let no_credits = api_key(request.headers()).ends_with("_no_credits");
    let Ok(body) = axum::body::to_bytes(request.into_body(), BODY_LIMIT).await else {
        return Provider::Soundverse.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large (at most 1 MiB).",
        );
    };
    let accepted = match validate(operation, &body) {
        Ok(accepted) => accepted,
        Err(detail) => {
            return Provider::Soundverse.error(StatusCode::UNPROCESSABLE_ENTITY, &detail);
        }
    };
    let Accepted { prompt, lyrics } = accepted;
    let says = |tag: &str| {
        prompt.as_deref().is_some_and(|p| p.contains(tag))
            || lyrics.as_deref().is_some_and(|l| l.contains(tag))
    };
    if says("[nsfw]") {
        return Provider::Soundverse.error(
            StatusCode::BAD_REQUEST,
            "NSFW words detected. Please try again with different lyrics.",
        );
    }
    if no_credits {
        return Provider::Soundverse.error(
            StatusCode::PAYMENT_REQUIRED,
            "Insufficient balance for this operation.",
        );
    }
    let plan = Plan::new(
        &state,
        operation,
        prompt.as_deref(),
        lyrics.as_deref(),
        says("[fail]"),
    );
    state.soundverse.create(&plan);
    let frames = Arc::new(plan.frames());
    if sync {
        answer_sync(state, plan, frames).await
    } else {
        stream(state, plan.message_id, frames, fault)
    }
}

/// The key from `Authorization: Bearer <key>` (auth was checked already).
fn api_key(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().strip_prefix("Bearer "))
        .map_or("", str::trim)
}

/// Plays the job's frames as SSE. When the stream ends for any reason (done,
/// cut by a fault, client gone), the rest of the job runs silently so that
/// the status endpoint still sees it finish.
fn stream(
    state: Arc<State>,
    message_id: String,
    frames: Arc<Vec<Frame>>,
    fault: Option<crate::faults::Fault>,
) -> Response {
    // Dropped with `on_event`, which the stream writer drops when it stops.
    let (stream_alive, stream_ended) = futures::channel::oneshot::channel::<()>();
    let on_event: OnEvent = {
        let state = Arc::clone(&state);
        let message_id = message_id.clone();
        let seq = std::sync::atomic::AtomicU32::new(0);
        Arc::new(move |event: &Value| {
            let _alive = &stream_alive;
            if state.event_log.enabled() {
                let n = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let status = event.get("status").and_then(Value::as_str).unwrap_or("");
                let progress = event.get("progress").and_then(Value::as_i64);
                state.event_log.record(&message_id, n, status, progress);
            }
            state.soundverse.apply(&message_id, event);
        })
    };
    tokio::spawn({
        let state = Arc::clone(&state);
        let frames = Arc::clone(&frames);
        async move {
            let _ = stream_ended.await;
            play_rest(&state, &message_id, &frames).await;
        }
    });
    sse::response(frames.to_vec(), state.pacing, fault, on_event)
}

/// Runs the job (in its own task: a client that hangs up does not stop it),
/// then answers `SyncSongResponse`, or 500 if the job failed.
async fn answer_sync(state: Arc<State>, plan: Plan, frames: Arc<Vec<Frame>>) -> Response {
    let run = tokio::spawn({
        let state = Arc::clone(&state);
        let message_id = plan.message_id.clone();
        async move { play_rest(&state, &message_id, &frames).await }
    });
    let _ = run.await;
    if plan.fail {
        return Provider::Soundverse.error(StatusCode::INTERNAL_SERVER_ERROR, FAILURE_MESSAGE);
    }
    let extend = plan.operation == Operation::Extend;
    let audio_data: Vec<Value> = plan
        .audio_urls
        .iter()
        .map(|url| {
            let mut entry = json!({ "audio_url": url, "song_name": plan.song_name });
            if extend {
                entry["licenses"] = json!({ "licenses": "Royalty Free" });
            }
            entry
        })
        .collect();
    let mut body = json!({
        "message_id": plan.message_id,
        "album_art": plan.album_art,
        "audio_data": audio_data,
    });
    if extend {
        body["ai_reply"] = "Your song has been extended successfully.".into();
    } else {
        body["song_name"] = plan.song_name.as_str().into();
    }
    Json(body).into_response()
}

/// Applies the frames after the last event already applied, waiting as the
/// timeline says (nothing is sent: the stream, if any, has ended).
async fn play_rest(state: &State, message_id: &str, frames: &[Frame]) {
    let done = state.soundverse.events_applied(message_id);
    let start = if done == 0 {
        0
    } else {
        frames
            .iter()
            .enumerate()
            .filter(|(_, frame)| matches!(frame, Frame::Event(_)))
            .nth(done - 1)
            .map_or(frames.len(), |(i, _)| i + 1)
    };
    for frame in &frames[start..] {
        match frame {
            Frame::Wait(real) => state.pacing.sleep(*real).await,
            Frame::Event(event) => state.soundverse.apply(message_id, event),
            Frame::Comment(_) => {}
        }
    }
}
