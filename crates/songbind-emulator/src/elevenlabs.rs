//! ElevenLabs Music: synchronous generation whose answer is the audio itself
//! (whole, chunked, `multipart/mixed` beside its metadata, or server-sent
//! events), and composition plans.
//!
//! Routes, under the ElevenLabs base URL (`<root>/elevenlabs`):
//!
//! | route | answer |
//! |---|---|
//! | `POST /v1/music` | the song's audio, sent in chunks as it is made |
//! | `POST /v1/music/stream` | the same audio, chunked while it is made |
//! | `POST /v1/music/detailed` | `multipart/mixed; boundary=<16 hex>`: an `application/json` part holding a `DetailedMusicResponse` (composition plan, song metadata, `words_timestamps`: null unless `with_timestamps`), then the audio part with `Content-Disposition: attachment; filename="<title>.wav"` |
//! | `POST /v1/music/detailed/stream` | SSE: `composition_plan`, `song_metadata`, one `audio_chunk` (`{"audio_base64"}`) per second of audio, `words_timestamps` (with `with_timestamps`), `done` (`{}`); each `data:` a `DetailedStreamEvent` |
//! | `POST /v1/music/plan` | JSON: the composition plan `model_id` asks for (a v1 `MusicPrompt` or a v2 `CompositionPlan`), deterministic from the prompt and `music_length_ms` |
//!
//! Every generation answer carries a `song-id` header (20 alphanumerics),
//! plus `current-concurrent-requests` and `maximum-concurrent-requests`.
//! The key is the `xi-api-key` header (any non-empty value).
//!
//! **Audio.** ASSUMED: the emulator makes a WAV file (`audio/wav`: mono,
//! 16-bit, 8 kHz, a 440 Hz tone) whatever `output_format` asks for, except
//! `pcm_<rate>`, which it sends as raw 16-bit little-endian mono PCM at that
//! rate (`audio/pcm`). The song lasts `music_length_ms`, or the plan's total
//! duration, or 30 s ([`song::DEFAULT_LENGTH_MS`]) when neither says.
//!
//! **Pacing.** Every generation answers its headers at once, then "composes"
//! for 2 s and sends one chunk per second of audio, each made in 250 ms (a
//! 30 s song takes about 9.5 s), all scaled by the emulator's [`Pacing`]
//! (instant in tests). The multipart answer sends its JSON part after the
//! composing pause; the SSE answer sends the plan and the metadata first.
//!
//! **Refusals**, in this order, before any generation exists:
//! * 422 `{"detail": [{loc, msg, type}]}` (pydantic's words and types) for
//!   a body that breaks a field's type or a limit of the spec (read from
//!   the generated `limits`), then for the rules the spec states in prose:
//!   `prompt` and `composition_plan` exclude each other, one of them is
//!   needed, `seed` is not allowed with `prompt`, a v1 `MusicPrompt` plan
//!   needs `model_id` `music_v1` (the default) and a v2 `CompositionPlan`
//!   needs `music_v2`; the generated request type is the final judge. An
//!   unknown `output_format` is a 422 at `["query", "output_format"]`.
//! * 400 `bad_prompt` with `data.prompt_suggestion` when the prompt names an
//!   artist: it says "in the style of", or names one of a small list of
//!   artists (Taylor Swift, The Beatles, Beyoncé, Drake, Ed Sheeran, Adele,
//!   Eminem, Metallica, Billie Eilish, Daft Punk, Coldplay) as whole words,
//!   ignoring case. The suggestion is the prompt without that clause and
//!   those names. The plan endpoint refuses such prompts too.
//! * 400 `bad_composition_plan` with `data.composition_plan_suggestion` (the
//!   same plan without the offending styles) when a style of the plan
//!   (global, local or chunk; positive or negative) names an artist.
//! * 429 `too_many_concurrent_requests` when the key already has as many
//!   generations in flight as the concurrency limit allows
//!   ([`EmulatorBuilder::elevenlabs_concurrency`](crate::EmulatorBuilder::elevenlabs_concurrency),
//!   2 by default as on most plans). A generation is in flight from its
//!   acceptance until its answer's last byte is sent or its client goes
//!   away; the plan endpoint takes no slot.
//!
//! A `stall:<duration>` fault holds a request before it reaches ElevenLabs,
//! so it takes no slot; `stall-stream:<n>:<duration>` holds a generation
//! open (slot taken) after `n` pieces.
//!
//! A generation counts as created ([`ElevenLabsState::job_count`]) when it
//! passed every check. Stream faults (`drop-stream:<n>`, `end-stream:<n>`,
//! `stall-stream:<n>:<duration>`, `fragment`) shape every generation answer,
//! counting its pieces as events: audio chunks (the multipart answer's JSON
//! part and closing boundary count too) or SSE events.
//!
//! ASSUMED: the refusal status is 400 (observed once; the spec's examples
//! say so) and its messages are the spec's examples.
//! ASSUMED: the concurrency limit is per key (an account), and the 429 is
//! checked after validation and the copyright guard.
//! ASSUMED: `song-id` is sent on every generation (the spec allows its
//! absence unless `store_for_inpainting`); stored songs are not kept, and
//! any `song_id` a plan references is accepted.
//! ASSUMED: prompt-only fields sent with a plan (`music_length_ms`,
//! `force_instrumental`) are ignored, the plan's durations decide; a plan's
//! total length must be within the `music_length_ms` limit (the spec's
//! prose: 3 s to 10 min), and a range's `end_ms` must be after its
//! `start_ms`. Every plan list is held to the spec's `maxItems` (from the
//! generated `limits`: 30 sections or chunks, 50 styles per list, 30
//! lines, 10 negative ranges) before its items are looked at; a lyric
//! line's 200 characters (not in `limits`: the generator does not walk
//! array items) are checked by the generated `SongSectionLinesItem`.
//! ASSUMED: the plan endpoint's `source_composition_plan` only supplies the
//! length when `music_length_ms` is absent; its format is not checked
//! against `model_id`.
//! ASSUMED: bodies over 1 MiB get 413 `{"detail": "..."}`; unknown routes
//! 404 `{"detail": "Not Found"}`, a wrong method 405.

mod body;
mod song;
mod validate;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use songbind_elevenlabs::types::AnyCompositionPlan;

use self::body::{Audio, Piece};
use self::validate::{Generation, Issue};
use crate::State;
use crate::pacing::Pacing;
use crate::provider::Provider;
use crate::server::ActiveFault;

const PROVIDER: Provider = Provider::ElevenLabs;

/// How many generations one key may have in flight unless the builder says
/// otherwise (ElevenLabs' limit on the Starter, Creator and Pro plans).
pub const DEFAULT_ELEVENLABS_CONCURRENCY: usize = 2;

/// The largest request body read (larger ones get a 413).
const BODY_LIMIT: usize = 1024 * 1024;

/// The pause before the first audio chunk (real time, scaled by the pacing).
const COMPOSING: Duration = Duration::from_secs(2);

/// The time one second of audio takes to make (real time, scaled).
const CHUNK_TIME: Duration = Duration::from_millis(250);

/// Which generation endpoint a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /v1/music`.
    Compose,
    /// `POST /v1/music/stream`.
    Stream,
    /// `POST /v1/music/detailed`.
    Detailed,
    /// `POST /v1/music/detailed/stream`.
    DetailedStream,
}

/// ElevenLabs' counters: generations created, and generations in flight per
/// key (for the concurrency limit).
#[derive(Debug)]
pub(crate) struct ElevenLabsState {
    limit: usize,
    created: AtomicUsize,
    in_flight: Mutex<HashMap<String, usize>>,
}

impl ElevenLabsState {
    /// State allowing `limit` generations in flight per key.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            created: AtomicUsize::new(0),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// How many generations passed every check.
    pub(crate) fn job_count(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }

    /// How many generations are in flight, all keys together.
    pub(crate) fn in_flight(&self) -> usize {
        self.slots().values().sum()
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One generation in flight; dropping it frees its slot.
pub(crate) struct Slot {
    state: Arc<State>,
    key: String,
}

impl Slot {
    /// Takes a slot for `key`, or answers how many it already holds.
    fn take(state: &Arc<State>, key: &str) -> Result<(Self, usize), usize> {
        let count = {
            let mut slots = state.elevenlabs.slots();
            let held = slots.entry(key.to_owned()).or_default();
            if *held >= state.elevenlabs.limit {
                return Err(*held);
            }
            *held += 1;
            *held
        };
        state.bump();
        let slot = Self {
            state: Arc::clone(state),
            key: key.to_owned(),
        };
        Ok((slot, count))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut slots = self.state.elevenlabs.slots();
            if let Some(held) = slots.get_mut(&self.key) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    slots.remove(&self.key);
                }
            }
        }
        self.state.bump();
    }
}

/// The ElevenLabs routes (nested under `/elevenlabs` by the server).
pub(crate) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/v1/music", post(compose))
        .route("/v1/music/stream", post(compose_stream))
        .route("/v1/music/detailed", post(compose_detailed))
        .route("/v1/music/detailed/stream", post(compose_detailed_stream))
        .route("/v1/music/plan", post(create_composition_plan))
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({ "detail": "Method Not Allowed" })),
            )
        })
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({ "detail": "Not Found" })),
            )
        })
}

async fn compose(AxumState(state): AxumState<Arc<State>>, request: Request) -> Response {
    generate(state, request, Endpoint::Compose).await
}

async fn compose_stream(AxumState(state): AxumState<Arc<State>>, request: Request) -> Response {
    generate(state, request, Endpoint::Stream).await
}

async fn compose_detailed(AxumState(state): AxumState<Arc<State>>, request: Request) -> Response {
    generate(state, request, Endpoint::Detailed).await
}

async fn compose_detailed_stream(
    AxumState(state): AxumState<Arc<State>>,
    request: Request,
) -> Response {
    generate(state, request, Endpoint::DetailedStream).await
}

/// `POST /v1/music/plan`.
async fn create_composition_plan(request: Request) -> Response {
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), BODY_LIMIT).await else {
        return too_large();
    };
    let request = match validate::plan_request(&bytes) {
        Ok(request) => request,
        Err(issues) => return unprocessable(&issues),
    };
    if song::names_artist(&request.prompt) {
        return bad_prompt(&request.prompt);
    }
    if let Some(refusal) = request.source.as_ref().and_then(|(_, raw)| bad_plan(raw)) {
        return refusal;
    }
    let length = request.music_length_ms.or_else(|| {
        request
            .source
            .as_ref()
            .map(|(plan, _)| validate::plan_length_ms(plan))
    });
    Json(song::make_plan(
        &request.prompt,
        length,
        request.model,
        false,
    ))
    .into_response()
}

/// Checks a generation request, takes a concurrency slot, and answers the
/// song as `endpoint` sends it.
async fn generate(state: Arc<State>, request: Request, endpoint: Endpoint) -> Response {
    let fault = request
        .extensions()
        .get::<ActiveFault>()
        .and_then(ActiveFault::stream_fault);
    let key = api_key(request.headers()).to_owned();
    let format = validate::output_format(request.uri().query());
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), BODY_LIMIT).await else {
        return too_large();
    };
    let generation = validate::generation(endpoint, &bytes);
    let (format, generation) = match (format, generation) {
        (Ok(format), Ok(generation)) => (format, generation),
        (format, generation) => {
            let issues: Vec<Issue> = format
                .err()
                .into_iter()
                .chain(generation.err())
                .flatten()
                .collect();
            return unprocessable(&issues);
        }
    };
    if let Some(prompt) = generation
        .prompt
        .as_deref()
        .filter(|p| song::names_artist(p))
    {
        return bad_prompt(prompt);
    }
    if let Some(refusal) = generation.plan.as_ref().and_then(|(_, raw)| bad_plan(raw)) {
        return refusal;
    }
    let (slot, current) = match Slot::take(&state, &key) {
        Ok(taken) => taken,
        Err(held) => return too_many(state.elevenlabs.limit, held),
    };
    state.elevenlabs.created.fetch_add(1, Ordering::SeqCst);
    let Some(made) = Made::new(&generation) else {
        return PROVIDER.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error: the composition plan could not be made",
        );
    };
    let audio = Audio::new(format, made.length_ms);
    let mut response = match endpoint {
        Endpoint::Compose | Endpoint::Stream => {
            let pieces = audio_pieces(audio, COMPOSING);
            let body = body::paced(pieces, state.pacing, fault, slot);
            ([(header::CONTENT_TYPE, audio.content_type())], body).into_response()
        }
        Endpoint::Detailed => detailed(&made, audio, state.pacing, fault, slot),
        Endpoint::DetailedStream => detailed_stream(&made, audio, state.pacing, fault, slot),
    };
    let headers = response.headers_mut();
    headers.insert("song-id", header_value(&song_id()));
    headers.insert("current-concurrent-requests", HeaderValue::from(current));
    headers.insert(
        "maximum-concurrent-requests",
        HeaderValue::from(state.elevenlabs.limit),
    );
    response
}

/// What the emulated model made for one generation.
struct Made {
    /// The plan (the request's own, or one made from the prompt).
    plan: Value,
    /// The song's metadata.
    metadata: Value,
    /// Word timestamps, when asked for.
    timestamps: Option<Vec<Value>>,
    /// The song's length.
    length_ms: i64,
}

impl Made {
    /// `None` only if a plan made from the prompt does not decode as the
    /// generated type (an emulator bug).
    fn new(generation: &Generation) -> Option<Self> {
        let (typed, raw) = match &generation.plan {
            Some((typed, raw)) => (typed.clone(), raw.clone()),
            None => {
                let raw = song::make_plan(
                    generation.prompt.as_deref().unwrap_or_default(),
                    generation.music_length_ms,
                    generation.model,
                    generation.force_instrumental,
                );
                let typed: AnyCompositionPlan = serde_json::from_value(raw.clone()).ok()?;
                (typed, raw)
            }
        };
        Some(Self {
            metadata: song::metadata(generation.prompt.as_deref(), &typed),
            timestamps: generation
                .with_timestamps
                .then(|| song::word_timestamps(&typed)),
            length_ms: validate::plan_length_ms(&typed),
            plan: raw,
        })
    }

    /// The audio part's file name: the title, lowercased, with `_` for
    /// anything but letters and digits.
    fn file_name(&self, audio: Audio) -> String {
        let title = self.metadata["title"].as_str().unwrap_or("song");
        let stem: String = title
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("{stem}.{}", audio.extension())
    }
}

/// The audio's chunks, the first after `first_wait`, each after the time it
/// takes to make.
fn audio_pieces(audio: Audio, first_wait: Duration) -> impl Iterator<Item = Piece> + Send {
    (0..audio.chunk_count()).map(move |i| Piece {
        wait: if i == 0 {
            first_wait + CHUNK_TIME
        } else {
            CHUNK_TIME
        },
        bytes: audio.chunk(i),
    })
}

/// The `multipart/mixed` answer of `POST /v1/music/detailed`.
fn detailed(
    made: &Made,
    audio: Audio,
    pacing: Pacing,
    fault: Option<crate::Fault>,
    slot: Slot,
) -> Response {
    let boundary: String = (0..16)
        .map(|_| char::from(b"0123456789abcdef"[rand::rng().random_range(0..16)]))
        .collect();
    let json = json!({
        "composition_plan": made.plan,
        "song_metadata": made.metadata,
        "words_timestamps": made.timestamps,
    });
    let first = Piece {
        wait: COMPOSING,
        bytes: Bytes::from(format!(
            "--{boundary}\r\nContent-Type: application/json\r\n\r\n{json}\r\n"
        )),
    };
    let part_header = format!(
        "--{boundary}\r\nContent-Type: {}\r\nContent-Disposition: attachment; filename=\"{}\"\r\n\r\n",
        audio.content_type(),
        made.file_name(audio)
    );
    let chunks = audio_pieces(audio, Duration::ZERO)
        .enumerate()
        .map(move |(i, mut piece)| {
            if i == 0 {
                let mut bytes = part_header.clone().into_bytes();
                bytes.extend_from_slice(&piece.bytes);
                piece.bytes = Bytes::from(bytes);
            }
            piece
        });
    let last = Piece {
        wait: Duration::ZERO,
        bytes: Bytes::from(format!("\r\n--{boundary}--\r\n")),
    };
    let pieces = std::iter::once(first)
        .chain(chunks)
        .chain(std::iter::once(last));
    let content_type = format!("multipart/mixed; boundary={boundary}");
    (
        [(header::CONTENT_TYPE, content_type)],
        body::paced(pieces, pacing, fault, slot),
    )
        .into_response()
}

/// The SSE answer of `POST /v1/music/detailed/stream`.
fn detailed_stream(
    made: &Made,
    audio: Audio,
    pacing: Pacing,
    fault: Option<crate::Fault>,
    slot: Slot,
) -> Response {
    let event = |name: &str, data: &Value| Piece {
        wait: Duration::ZERO,
        bytes: Bytes::from(format!("event: {name}\ndata: {data}\n\n")),
    };
    let head = [
        event(
            "composition_plan",
            &json!({ "composition_plan": made.plan }),
        ),
        event("song_metadata", &json!({ "song_metadata": made.metadata })),
    ];
    let chunks = audio_pieces(audio, COMPOSING).map(|piece| Piece {
        wait: piece.wait,
        bytes: Bytes::from(format!(
            "event: audio_chunk\ndata: {}\n\n",
            json!({ "audio_base64": BASE64.encode(&piece.bytes) })
        )),
    });
    let tail: Vec<Piece> = made
        .timestamps
        .iter()
        .map(|words| event("words_timestamps", &json!({ "words_timestamps": words })))
        .chain(std::iter::once(event("done", &json!({}))))
        .collect();
    let pieces = head.into_iter().chain(chunks).chain(tail);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body::paced(pieces, pacing, fault, slot),
    )
        .into_response()
}

/// The key from `xi-api-key` (auth was checked already).
fn api_key(headers: &HeaderMap) -> &str {
    headers
        .get(PROVIDER.info().auth.header_name())
        .and_then(|value| value.to_str().ok())
        .map_or("", str::trim)
}

/// A fresh song id: 20 alphanumerics, in the style of ElevenLabs ids.
fn song_id() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn unprocessable(issues: &[Issue]) -> Response {
    let detail: Vec<Value> = issues.iter().map(Issue::to_json).collect();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "detail": detail })),
    )
        .into_response()
}

fn too_large() -> Response {
    PROVIDER.error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body too large (at most 1 MiB).",
    )
}

/// A status error: `{"detail": {status, message[, data]}}`.
fn status_error(status: StatusCode, code: &str, message: &str, data: Option<Value>) -> Response {
    let mut detail = json!({ "status": code, "message": message });
    if let Some(data) = data {
        detail["data"] = data;
    }
    (status, Json(json!({ "detail": detail }))).into_response()
}

fn bad_prompt(prompt: &str) -> Response {
    status_error(
        StatusCode::BAD_REQUEST,
        "bad_prompt",
        "The prompt references copyrighted material. Try the suggested prompt instead.",
        Some(json!({ "prompt_suggestion": song::prompt_suggestion(prompt) })),
    )
}

/// The `bad_composition_plan` refusal, if a style of `plan` names an artist.
fn bad_plan(plan: &Value) -> Option<Response> {
    let suggestion = song::plan_suggestion(plan)?;
    Some(status_error(
        StatusCode::BAD_REQUEST,
        "bad_composition_plan",
        "The composition plan references copyrighted material. Try the suggested plan instead.",
        Some(json!({ "composition_plan_suggestion": suggestion })),
    ))
}

fn too_many(limit: usize, held: usize) -> Response {
    let mut response = status_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_concurrent_requests",
        &format!(
            "Too many concurrent requests. Your plan allows {limit} concurrent music generations."
        ),
        None,
    );
    let headers = response.headers_mut();
    headers.insert("current-concurrent-requests", HeaderValue::from(held));
    headers.insert("maximum-concurrent-requests", HeaderValue::from(limit));
    response
}
