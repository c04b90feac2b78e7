//! ElevenLabs Music: a song composed in one request, its audio the answer.
//!
//! [`ElevenLabs::compose_to`] streams the audio to a writer (never whole in
//! memory) and returns the `song-id`; [`ElevenLabs::compose_detailed_to`]
//! also returns the typed metadata (plan, song metadata, word timestamps)
//! of the `multipart/mixed` answer; [`ElevenLabs::plan`] makes a
//! composition plan; [`ElevenLabs::submit_compose`] is the same compose as
//! a [`Job`] (stages `composing`, then `streaming audio`).
//!
//! Plans are the spec's own types, built with their generated builders
//! (both formats: v1 `MusicPrompt`, v2 `CompositionPlan`) and checked
//! against the spec's limits before anything is sent:
//!
//! ```
//! use songbind::elevenlabs::{api::types, ComposeRequest, MusicModelId};
//!
//! let chunk: types::GenerationChunk = types::GenerationChunk::builder()
//!     .text("[Verse] city lights at night")
//!     .duration_ms(12_000)
//!     .positive_styles(vec!["synthwave".to_owned()])
//!     .try_into()
//!     .unwrap();
//! let plan = types::CompositionPlan { chunks: vec![chunk.into()] };
//! let request = ComposeRequest::from_plan(plan);
//! assert_eq!(request.model_id, MusicModelId::MusicV2); // the format's model
//! request.validate().unwrap();
//! // A chunk longer than the spec allows is refused before sending.
//! let mut long = request.clone();
//! if let Some(songbind::elevenlabs::AnyCompositionPlan::CompositionPlan(p)) = &mut long.plan {
//!     if let types::CompositionChunk::GenerationChunk(c) = &mut p.chunks[0] {
//!         c.duration_ms = 500_000;
//!     }
//! }
//! assert!(long.validate().is_err());
//! ```
//!
//! Every answer is checked before it is called a song (see
//! [`AudioFormat`]): a 200 whose content type and first bytes do not name
//! the same audio format (a JSON error, an HTML page, an audio part typed
//! `audio/json`) is [`Error::Provider`] with the provider's text, and the
//! writer receives none of it; audio that ended early (empty, shorter than
//! its `Content-Length`, its WAV header or, with `music_length_ms`, the
//! length the output format's byte rate gives) is [`Error::Decode`]. Plain,
//! detailed and job composes check alike.
//!
//! Composes are not idempotent (each one is billed): only 429 (e.g.
//! `too_many_concurrent_requests`) and 503 are retried. A copyright refusal
//! is [`Error::ContentRejected`] with the provider's [`Suggestion`]; retry
//! in one line with [`ComposeRequest::retry_with`].

use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use serde::Serialize;
use songbind_elevenlabs::ClientInfo;
use songbind_elevenlabs::types;
use tokio::io::AsyncWrite;

/// The generated client crate (`songbind-elevenlabs`), for calls this
/// module does not wrap: `api::Client`, `api::types`.
pub use songbind_elevenlabs as api;
/// The spec's plan, model, output-format and metadata types.
pub use songbind_elevenlabs::types::{
    AnyCompositionPlan, CompositionPlan, DetailedMusicResponse, MusicModelId, MusicPrompt,
    OutputFormat,
};
/// The spec's limits and production base URL.
pub use songbind_elevenlabs::{DEFAULT_BASE_URL, limits};

/// The audio format an answer was checked to be.
pub use crate::audio::AudioFormat;
use crate::audio::{Checked, Expected};
use crate::error::{Error, ProviderName, Result, Suggestion};
use crate::job::{Job, JobEvent, JobOutput, Output, Stage};
use crate::retry::{Calls, Repeatable};
use crate::validate::{self, limit, limit_number};

const PROVIDER: ProviderName = ProviderName::ElevenLabs;

/// Largest JSON part of a detailed answer that is read.
const METADATA_LIMIT: usize = 4 * 1024 * 1024;

/// How much of an answer that is not what was asked for is read, to quote.
const EXCERPT_LIMIT: usize = 4096;

/// What to compose: `from_prompt` or `from_plan`, then setters (`prompt`
/// and `plan` switch a request from one to the other, by value).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComposeRequest {
    /// What the song should be; excludes `plan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// A composition plan; excludes `prompt`; its format must match `model_id`.
    #[serde(rename = "composition_plan", skip_serializing_if = "Option::is_none")]
    pub plan: Option<AnyCompositionPlan>,
    /// Length in milliseconds (prompt mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub music_length_ms: Option<i64>,
    /// The model, always sent: the provider's sources disagree on its default.
    pub model_id: MusicModelId,
    /// Random seed (plan mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// A song without vocals (prompt mode only).
    pub force_instrumental: bool,
    /// Keep the song so later plans can reuse it by its `song-id`.
    pub store_for_inpainting: bool,
    /// Word timestamps in a detailed answer.
    #[serde(skip)]
    pub with_timestamps: bool,
    /// The audio's format (`auto` when not set).
    #[serde(skip)]
    pub output_format: Option<OutputFormat>,
}

impl ComposeRequest {
    /// A song from a prompt, with `music_v1` (the spec's default model).
    pub fn from_prompt(prompt: impl Into<String>) -> Self {
        Self::new(Some(prompt.into()), None, MusicModelId::MusicV1)
    }

    /// A song from a plan, with the model its format needs (v1 `MusicPrompt`:
    /// `music_v1`; v2 `CompositionPlan`: `music_v2`).
    pub fn from_plan(plan: impl Into<AnyCompositionPlan>) -> Self {
        let plan = plan.into();
        let model = model_for(&plan);
        Self::new(None, Some(plan), model)
    }

    fn new(prompt: Option<String>, plan: Option<AnyCompositionPlan>, model: MusicModelId) -> Self {
        Self {
            prompt,
            plan,
            music_length_ms: None,
            model_id: model,
            seed: None,
            force_instrumental: false,
            store_for_inpainting: false,
            with_timestamps: false,
            output_format: None,
        }
    }

    /// Sets what the song should be, in place of a plan (the two exclude
    /// each other: the plan is dropped; the model is left as it is).
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self.plan = None;
        self
    }

    /// Sets the composition plan, in place of a prompt (the prompt is
    /// dropped), with the model its format needs, as
    /// [`ComposeRequest::from_plan`] does.
    pub fn plan(mut self, plan: impl Into<AnyCompositionPlan>) -> Self {
        let plan = plan.into();
        self.model_id = model_for(&plan);
        self.plan = Some(plan);
        self.prompt = None;
        self
    }

    /// Sets the length in milliseconds.
    pub fn music_length_ms(mut self, ms: i64) -> Self {
        self.music_length_ms = Some(ms);
        self
    }

    /// Sets the model.
    pub fn model(mut self, model: MusicModelId) -> Self {
        self.model_id = model;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: i64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Asks for an instrumental song.
    pub fn force_instrumental(mut self, on: bool) -> Self {
        self.force_instrumental = on;
        self
    }

    /// Keeps the song for inpainting.
    pub fn store_for_inpainting(mut self, on: bool) -> Self {
        self.store_for_inpainting = on;
        self
    }

    /// Asks for word timestamps (detailed answers).
    pub fn with_timestamps(mut self, on: bool) -> Self {
        self.with_timestamps = on;
        self
    }

    /// Sets the audio's format.
    pub fn output_format(mut self, format: OutputFormat) -> Self {
        self.output_format = Some(format);
        self
    }

    /// This request with what a refusal suggested instead (the suggested
    /// prompt, or the suggested plan with the model its format needs).
    pub fn retry_with(&self, suggestion: &Suggestion) -> Result<Self> {
        let mut retry = self.clone();
        match suggestion {
            Suggestion::Prompt(prompt) => retry.prompt = Some(prompt.clone()),
            Suggestion::Plan(plan) => {
                let plan: AnyCompositionPlan = serde_json::from_value(plan.clone())
                    .map_err(|e| Error::decode("the suggested plan", e, &plan.to_string()))?;
                retry.model_id = model_for(&plan);
                retry.plan = Some(plan);
            }
        }
        Ok(retry)
    }

    /// Checks the spec's limits and its rules in prose: prompt and plan
    /// exclude each other, a plan's format must match `model_id`, a seed
    /// goes only with a plan.
    pub fn validate(&self) -> Result<()> {
        match (&self.prompt, &self.plan) {
            (Some(prompt), None) => {
                validate::not_blank("prompt", prompt)?;
                limit(&limits::COMPOSE_REQUEST_PROMPT, prompt)?;
                if self.seed.is_some() {
                    return Err(Error::validation("seed", "is not allowed with a prompt"));
                }
            }
            (None, Some(plan)) => {
                if model_for(plan) != self.model_id {
                    return Err(Error::validation(
                        "composition_plan",
                        format!(
                            "this plan's format needs {}, not {}",
                            model_for(plan),
                            self.model_id
                        ),
                    ));
                }
                check_plan(plan)?;
            }
            _ => {
                return Err(Error::validation(
                    "prompt or composition_plan",
                    "exactly one of prompt and composition_plan is required",
                ));
            }
        }
        if let Some(ms) = self.music_length_ms {
            limit_number(&limits::COMPOSE_REQUEST_MUSIC_LENGTH_MS, ms)?;
        }
        if let Some(seed) = self.seed {
            limit_number(&limits::COMPOSE_REQUEST_SEED, seed)?;
        }
        Ok(())
    }
}

/// The model a plan's format needs.
fn model_for(plan: &AnyCompositionPlan) -> MusicModelId {
    match plan {
        AnyCompositionPlan::MusicPrompt(_) => MusicModelId::MusicV1,
        AnyCompositionPlan::CompositionPlan(_) => MusicModelId::MusicV2,
    }
}

/// The counts and durations the spec limits (the generated types check
/// the texts' lengths themselves).
fn check_plan(plan: &AnyCompositionPlan) -> Result<()> {
    let count = |l: &songbind_transport::Limit, n: usize| {
        l.check_count(n)
            .map_err(|reason| Error::validation(l.field, reason))
    };
    match plan {
        AnyCompositionPlan::MusicPrompt(v1) => {
            count(&limits::MUSIC_PROMPT_SECTIONS, v1.sections.len())?;
            count(
                &limits::MUSIC_PROMPT_POSITIVE_GLOBAL_STYLES,
                v1.positive_global_styles.len(),
            )?;
            count(
                &limits::MUSIC_PROMPT_NEGATIVE_GLOBAL_STYLES,
                v1.negative_global_styles.len(),
            )?;
            for section in &v1.sections {
                limit_number(&limits::SONG_SECTION_DURATION_MS, section.duration_ms)?;
                count(&limits::SONG_SECTION_LINES, section.lines.len())?;
            }
        }
        AnyCompositionPlan::CompositionPlan(v2) => {
            count(&limits::COMPOSITION_PLAN_CHUNKS, v2.chunks.len())?;
            for chunk in &v2.chunks {
                if let types::CompositionChunk::GenerationChunk(generate) = chunk {
                    limit_number(&limits::GENERATION_CHUNK_DURATION_MS, generate.duration_ms)?;
                    count(
                        &limits::GENERATION_CHUNK_POSITIVE_STYLES,
                        generate.positive_styles.len(),
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// What a compose wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Composed {
    /// The song's id (`song-id`), for inpainting plans, when sent.
    pub song_id: Option<String>,
    /// The audio's content type, as answered.
    pub content_type: Option<String>,
    /// The audio's format, as checked from its content type and first
    /// bytes (name files by it: never by the content type alone).
    pub format: AudioFormat,
    /// Bytes of audio written.
    pub bytes: u64,
}

/// A detailed compose: the audio's [`Composed`] and the typed metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Detailed {
    /// The audio written.
    pub audio: Composed,
    /// The plan, song metadata and word timestamps.
    pub metadata: DetailedMusicResponse,
}

/// An ElevenLabs Music client with retries.
#[derive(Clone, Debug)]
pub struct ElevenLabs {
    client: songbind_elevenlabs::Client,
    calls: Calls,
}

crate::client::provider_client!(ElevenLabs, songbind_elevenlabs, PROVIDER);

impl ElevenLabs {
    /// Composes a song, streaming its audio to `sink` (`progress` gets the
    /// bytes written so far). The answer is checked first (see the module):
    /// `sink` receives no byte of an answer that is not audio.
    pub async fn compose_to(
        &self,
        request: &ComposeRequest,
        sink: &mut (impl AsyncWrite + Unpin),
        progress: impl FnMut(u64),
    ) -> Result<Composed> {
        request.validate()?;
        let body: types::ComposeRequest = validate::to_wire(request)?;
        let format = request.output_format.unwrap_or(OutputFormat::Auto);
        let answer = self
            .calls
            .generated_response("compose", Repeatable::OnlyIfNotTaken, || {
                self.client
                    .compose()
                    .output_format(format)
                    .body(body.clone())
                    .send()
            })
            .await?;
        let headers = answer.headers().clone();
        let content_type = header(&headers, "content-type");
        let mut expected = expected(request);
        // The length of the bytes as sent: checked only when they are the
        // audio itself (no content coding a client could have undone).
        if !headers.contains_key(reqwest::header::CONTENT_ENCODING) {
            expected.content_length =
                header(&headers, "content-length").and_then(|n| n.parse().ok());
        }
        let checked = Checked::new(
            sink,
            progress,
            PROVIDER,
            headers.clone(),
            "the answer",
            content_type.clone(),
            expected,
        );
        let (format, bytes) = audio_to(answer.into_inner().into_inner(), checked)
            .await
            .map_err(|e| self.calls.redactor.error(e))?;
        Ok(Composed {
            song_id: header(&headers, "song-id"),
            content_type,
            format,
            bytes,
        })
    }

    /// Composes a song with its metadata (`/v1/music/detailed`, a
    /// `multipart/mixed` answer): the audio streamed to `sink`, the plan,
    /// song metadata and word timestamps returned typed. The audio part is
    /// checked as [`ElevenLabs::compose_to`] checks an answer.
    pub async fn compose_detailed_to(
        &self,
        request: &ComposeRequest,
        sink: &mut (impl AsyncWrite + Unpin),
        progress: impl FnMut(u64),
    ) -> Result<Detailed> {
        request.validate()?;
        let mut body =
            serde_json::to_value(request).map_err(|e| Error::decode("the request", e, ""))?;
        body["with_timestamps"] = request.with_timestamps.into();
        let body: types::ComposeDetailedRequest = validate::to_wire(&body)?;
        let format = request
            .output_format
            .unwrap_or(OutputFormat::Auto)
            .to_string();
        let url = format!("{}/v1/music/detailed", self.client.baseurl());
        let http = self.client.client();
        let response = self
            .calls
            .raw("compose_detailed", Repeatable::OnlyIfNotTaken, || {
                let query = [("output_format", &format)];
                http.post(&url).query(&query).json(&body)
            })
            .await?;
        let headers = response.headers().clone();
        read_detailed(
            response.bytes_stream(),
            headers,
            expected(request),
            sink,
            progress,
        )
        .await
        .map_err(|e| self.calls.redactor.error(e))
    }

    /// A composition plan for `prompt` in `model`'s format (costs no credits).
    pub async fn plan(
        &self,
        prompt: &str,
        model: MusicModelId,
        music_length_ms: Option<i64>,
    ) -> Result<AnyCompositionPlan> {
        limit(&limits::CREATE_COMPOSITION_PLAN_REQUEST_PROMPT, prompt)?;
        if let Some(ms) = music_length_ms {
            limit_number(&limits::CREATE_COMPOSITION_PLAN_REQUEST_MUSIC_LENGTH_MS, ms)?;
        }
        let body = serde_json::json!({ "prompt": prompt, "model_id": model, "music_length_ms": music_length_ms });
        let body: types::CreateCompositionPlanRequest = validate::to_wire(&body)?;
        self.calls
            .generated("create_composition_plan", Repeatable::Safe, || {
                self.client
                    .create_composition_plan()
                    .body(body.clone())
                    .send()
            })
            .await
    }

    /// [`ElevenLabs::compose_to`] as a [`Job`] writing the audio to `path`
    /// (created; never replacing a file; removed again when the answer was
    /// not a whole song): stages `composing` then
    /// `streaming audio`, one output whose URL is the file's `file://` URL.
    pub fn submit_compose(&self, request: ComposeRequest, path: impl Into<PathBuf>) -> Result<Job> {
        request.validate()?;
        let (this, path) = (self.clone(), path.into());
        let events = crate::job::work_events(move |mut emit| async move {
            emit(Ok(JobEvent::stage(Stage::Composing)));
            let mut file = crate::files::create_new(&path)
                .await
                .map_err(|e| io(&path.display().to_string(), e))?;
            let mut announced = false;
            let composed = this
                .compose_to(&request, &mut file, |_| {
                    if !std::mem::replace(&mut announced, true) {
                        emit(Ok(JobEvent::stage(Stage::StreamingAudio)));
                    }
                })
                .await;
            drop(file);
            match composed {
                Ok(composed) => Ok(finished(&path, composed)),
                Err(error) => {
                    // The file is this job's own (created exclusively): no
                    // part of an answer that was not a whole song is left.
                    let _ = tokio::fs::remove_file(&path).await;
                    Err(error)
                }
            }
        });
        Ok(Job::new(
            PROVIDER,
            String::new(),
            self.calls.redactor.clone(),
            Box::new(move |_| events),
        ))
    }
}

/// The output and completion of a composed song written at `path`.
fn finished(path: &Path, composed: Composed) -> Vec<JobEvent> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let output = Output::new(format!("file://{}", absolute.display()), Some(1));
    let id = composed.song_id.unwrap_or_default();
    vec![
        JobEvent::Output(output.clone()),
        JobEvent::Completed(JobOutput {
            provider: PROVIDER,
            id,
            outputs: vec![output],
        }),
    ]
}

/// What `request` says about the audio to expect: the raw format and the
/// MP3 bitrate its output format names (`auto` is the model's MP3), and the
/// length it asks for (prompt mode: a plan's durations are not summed).
fn expected(request: &ComposeRequest) -> Expected {
    let format = match request.output_format.unwrap_or(OutputFormat::Auto) {
        OutputFormat::Auto => match request.model_id {
            MusicModelId::MusicV1 => "mp3_44100_128".to_owned(),
            MusicModelId::MusicV2 => "mp3_48000_192".to_owned(),
        },
        other => other.to_string(),
    };
    // codec_sample-rate[_kbps]
    let mut parts = format.split('_');
    let codec = parts.next().unwrap_or_default();
    let rate: Option<u64> = parts.next().and_then(|n| n.parse().ok());
    let kbps: Option<u64> = parts.next().and_then(|n| n.parse().ok());
    let raw = match (codec, rate) {
        // 16-bit mono samples.
        ("pcm", Some(rate)) => Some((AudioFormat::Pcm, rate * 2)),
        ("ulaw", Some(rate)) => Some((AudioFormat::Ulaw, rate)),
        ("alaw", Some(rate)) => Some((AudioFormat::Alaw, rate)),
        _ => None,
    };
    Expected {
        raw,
        mp3_bits_per_second: kbps.filter(|_| codec == "mp3").map(|k| k * 1000),
        length_ms: request
            .music_length_ms
            .filter(|_| request.plan.is_none())
            .and_then(|ms| u64::try_from(ms).ok()),
        content_length: None,
    }
}

/// Streams `stream` through `checked`, then checks it whole.
async fn audio_to<S, E, W, P>(
    mut stream: S,
    mut checked: Checked<'_, W, P>,
) -> Result<(AudioFormat, u64)>
where
    S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    Error: From<E>,
    W: AsyncWrite + Unpin,
    P: FnMut(u64),
{
    while let Some(piece) = stream.next().await {
        checked.push(&piece?).await?;
    }
    checked.finish().await
}

/// Reads a detailed answer (`headers`, then `stream`): the metadata part
/// (bounded, typed), then the audio part streamed to `sink` through the
/// same checks as a plain answer; exactly two parts.
async fn read_detailed<S, E>(
    mut stream: S,
    headers: HeaderMap,
    expected: Expected,
    sink: &mut (impl AsyncWrite + Unpin),
    progress: impl FnMut(u64),
) -> Result<Detailed>
where
    S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    Error: From<E>,
{
    let outer = header(&headers, "content-type").unwrap_or_default();
    if !outer
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/")
    {
        // Quote what came instead (a JSON error, an HTML page).
        let mut body = Vec::new();
        while body.len() < EXCERPT_LIMIT {
            match stream.next().await {
                Some(piece) => body.extend_from_slice(&piece?),
                None => break,
            }
        }
        body.truncate(EXCERPT_LIMIT);
        let problem = format!("the detailed answer is not multipart/mixed (typed {outer:?})");
        return Err(crate::audio::not_audio(PROVIDER, &headers, &problem, &body));
    }
    let boundary = crate::multipart::boundary(&outer)?;
    let mut reader = crate::multipart::Reader::new(stream, &boundary);
    reader.start().await?;
    reader.headers().await?;
    let mut first = Vec::new();
    while let Some(piece) = reader.piece().await? {
        if first.len() + piece.len() > METADATA_LIMIT {
            return Err(Error::decode(
                "the detailed metadata",
                format!("its part is over {METADATA_LIMIT} bytes"),
                "",
            ));
        }
        first.extend_from_slice(&piece);
    }
    if reader.closed() {
        return Err(Error::decode(
            "a multipart/mixed answer",
            "it has one part: no audio",
            "",
        ));
    }
    let text = String::from_utf8_lossy(&first);
    let metadata: DetailedMusicResponse = serde_json::from_str(&text)
        .map_err(|e| Error::decode("the detailed metadata", e, &text))?;
    let content_type = reader
        .headers()
        .await?
        .into_iter()
        .find(|(n, _)| n == "content-type")
        .map(|(_, v)| v);
    let mut checked = Checked::new(
        sink,
        progress,
        PROVIDER,
        headers.clone(),
        "its audio part",
        content_type.clone(),
        expected,
    );
    while let Some(piece) = reader.piece().await? {
        checked.push(&piece).await?;
    }
    if !reader.closed() {
        return Err(Error::decode(
            "a multipart/mixed answer",
            "it has more than two parts",
            "",
        ));
    }
    let (format, bytes) = checked.finish().await?;
    Ok(Detailed {
        audio: Composed {
            song_id: header(&headers, "song-id"),
            content_type,
            format,
            bytes,
        },
        metadata,
    })
}

/// Not part of the API (it may change or go at any time): reads `body` as
/// the answer to a detailed compose of `request`, typed `content_type`,
/// exactly as [`ElevenLabs::compose_detailed_to`] does after sending; for
/// the `multipart_reader` fuzz target.
#[doc(hidden)]
pub async fn fuzz_detailed_answer<S, E>(
    request: &ComposeRequest,
    content_type: &str,
    body: S,
    sink: &mut Vec<u8>,
) -> Result<Detailed>
where
    S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    Error: From<E>,
{
    let mut headers = HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(content_type)
        .map_err(|e| Error::validation("content_type", e.to_string()))?;
    headers.insert(reqwest::header::CONTENT_TYPE, value);
    read_detailed(body, headers, expected(request), sink, |_| {}).await
}

/// A header's value, when it is text.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn io(what: &str, source: std::io::Error) -> Error {
    Error::Io {
        path: what.to_owned(),
        source,
    }
}
