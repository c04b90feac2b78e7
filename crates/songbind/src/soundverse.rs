//! Soundverse: generate, extend and remix songs, followed over their SSE
//! stream (or answered at once by the `/sync` endpoints).
//!
//! [`Soundverse::submit_generate`], [`Soundverse::submit_extend`] and
//! [`Soundverse::submit_remix`] validate the request, open the event stream
//! and read it until the song has an id, then return a [`Job`] whose events
//! are the rest of the stream. Creates are not idempotent: only answers that
//! say the request was not taken (429, 503) are retried, never a stream that
//! broke after the request went out (the song may exist; look it up with
//! [`Soundverse::status`]).

/// The typed event stream and its parts, named without the provider prefix.
pub use crate::sse::{
    SoundverseChunk as Chunk, SoundverseEvent as Event, SoundverseEventStream as EventStream,
};
/// The generated client crate (`songbind-soundverse`), for calls this module
/// does not wrap: `api::Client`, `api::types`.
pub use songbind_soundverse as api;
/// The spec's limits and production base URL.
pub use songbind_soundverse::{DEFAULT_BASE_URL, limits};

use futures::{StreamExt, stream};
use serde_json::{Map, Value};
use songbind_soundverse::types;

use std::time::Duration;

use crate::error::{Error, ProviderName, Result, ResumeWith};
use crate::job::{Job, JobEvent, JobOutput, Output, Stage, WaitOptions, within};
use crate::retry::{Calls, Repeatable};
use crate::sse::{
    SongProgress, SoundverseChunk, SoundverseEvent, SoundverseEventStream, StreamLimits,
};
use crate::validate::{self, UrlRule};

const PROVIDER: ProviderName = ProviderName::Soundverse;

/// How long a `submit_*` call waits for the stream to name the song
/// (`message_id`) unless told otherwise: keepalives alone never end it.
pub const DEFAULT_SUBMIT_TIMEOUT: Duration = Duration::from_secs(120);

/// A song generated from a prompt (`/v6/generate/song`): `new(prompt)`,
/// then a setter per field, to build a request or edit one by value.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct GenerateRequest {
    /// What the song should be (required).
    pub prompt: String,
    /// Lyrics; generated when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lyrics: Option<String>,
    /// Reference audio guiding the generation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_url: Option<String>,
    /// Instrumental audio to incorporate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instrumental_url: Option<String>,
    /// Vocal audio to incorporate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocal_url: Option<String>,
    /// Melody audio guiding the generation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub melody_url: Option<String>,
}

impl GenerateRequest {
    /// A request with only a prompt.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            ..Self::default()
        }
    }

    /// Sets what the song should be (required: replaces the prompt `new`
    /// was given).
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = prompt.into();
        self
    }

    /// Sets the lyrics (generated when not set).
    pub fn lyrics(mut self, lyrics: impl Into<String>) -> Self {
        self.lyrics = Some(lyrics.into());
        self
    }

    /// Sets the reference audio guiding the generation.
    pub fn reference_url(mut self, url: impl Into<String>) -> Self {
        self.reference_url = Some(url.into());
        self
    }

    /// Sets the instrumental audio to incorporate.
    pub fn instrumental_url(mut self, url: impl Into<String>) -> Self {
        self.instrumental_url = Some(url.into());
        self
    }

    /// Sets the vocal audio to incorporate.
    pub fn vocal_url(mut self, url: impl Into<String>) -> Self {
        self.vocal_url = Some(url.into());
        self
    }

    /// Sets the melody audio guiding the generation.
    pub fn melody_url(mut self, url: impl Into<String>) -> Self {
        self.melody_url = Some(url.into());
        self
    }

    /// Checks the rules the spec cannot state (a prompt that is not blank,
    /// absolute URLs), naming the field.
    pub fn validate(&self) -> Result<()> {
        validate::not_blank("prompt", &self.prompt)?;
        for (field, url) in [
            ("reference_url", &self.reference_url),
            ("instrumental_url", &self.instrumental_url),
            ("vocal_url", &self.vocal_url),
            ("melody_url", &self.melody_url),
        ] {
            if let Some(url) = url {
                validate::url(field, url, UrlRule::HttpOrHttps)?;
            }
        }
        Ok(())
    }
}

/// A song extended from a position (`/v6/extend/song`):
/// `new(audio_url, lyrics, extend_at_ms)`, then `prompt`; every field has a
/// setter, to edit a request by value.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ExtendRequest {
    /// The song to extend.
    pub audio_url: String,
    /// Lyrics guiding the extension (required).
    pub lyrics: String,
    /// Where to extend, in milliseconds (`limits::EXTEND_SONG_REQUEST_EXTEND_AT`).
    #[serde(rename = "extend_at")]
    pub extend_at_ms: i64,
    /// Style prompt, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

impl ExtendRequest {
    /// An extension of `audio_url` at `extend_at_ms`, guided by `lyrics`.
    pub fn new(audio_url: impl Into<String>, lyrics: impl Into<String>, extend_at_ms: i64) -> Self {
        Self {
            audio_url: audio_url.into(),
            lyrics: lyrics.into(),
            extend_at_ms,
            prompt: None,
        }
    }

    /// Sets the song to extend (required: replaces the one `new` was given).
    pub fn audio_url(mut self, url: impl Into<String>) -> Self {
        self.audio_url = url.into();
        self
    }

    /// Sets the lyrics guiding the extension (required: replaces the ones
    /// `new` was given).
    pub fn lyrics(mut self, lyrics: impl Into<String>) -> Self {
        self.lyrics = lyrics.into();
        self
    }

    /// Sets where to extend, in milliseconds (required: replaces the
    /// position `new` was given).
    pub fn extend_at_ms(mut self, extend_at_ms: i64) -> Self {
        self.extend_at_ms = extend_at_ms;
        self
    }

    /// Sets the style prompt.
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// Checks the spec's limits and the rules it cannot state, naming the
    /// field and the limit.
    pub fn validate(&self) -> Result<()> {
        validate::url("audio_url", &self.audio_url, UrlRule::HttpOrHttps)?;
        validate::not_blank("lyrics", &self.lyrics)?;
        validate::limit_number(&limits::EXTEND_SONG_REQUEST_EXTEND_AT, self.extend_at_ms)
    }
}

/// A remix of an existing song (`/v7/generate/remix`, streaming only):
/// `new(song_reference_url)`, then `prompt` and/or `lyrics`; every field
/// has a setter, to edit a request by value.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RemixRequest {
    /// Public URL of the source audio (at most 10 MB, 10 to 350 s).
    pub song_reference_url: String,
    /// Style prompt (`limits::REMIX_SONG_REQUEST_PROMPT`); this or `lyrics`
    /// is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// New lyrics; this or `prompt` is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lyrics: Option<String>,
    /// Extra model parameters, passed through.
    pub parameters: Map<String, Value>,
}

impl RemixRequest {
    /// A remix of `song_reference_url`; set a prompt, lyrics or both.
    pub fn new(song_reference_url: impl Into<String>) -> Self {
        Self {
            song_reference_url: song_reference_url.into(),
            ..Self::default()
        }
    }

    /// Sets the source audio's public URL (required: replaces the one `new`
    /// was given).
    pub fn song_reference_url(mut self, url: impl Into<String>) -> Self {
        self.song_reference_url = url.into();
        self
    }

    /// Sets the style prompt.
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// Sets the new lyrics.
    pub fn lyrics(mut self, lyrics: impl Into<String>) -> Self {
        self.lyrics = Some(lyrics.into());
        self
    }

    /// Adds one model parameter, passed through as given.
    pub fn parameter(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }

    /// Checks the spec's limits and the rules it cannot state ("prompt or
    /// lyrics", absolute URLs), naming the field and the limit.
    pub fn validate(&self) -> Result<()> {
        validate::url(
            "song_reference_url",
            &self.song_reference_url,
            UrlRule::HttpOrHttps,
        )?;
        validate::at_least_one(&[
            ("prompt", self.prompt.as_deref()),
            ("lyrics", self.lyrics.as_deref()),
        ])?;
        if let Some(prompt) = &self.prompt {
            validate::limit(&limits::REMIX_SONG_REQUEST_PROMPT, prompt)?;
        }
        Ok(())
    }
}

/// A Soundverse client with retries and stream limits.
#[derive(Clone, Debug)]
pub struct Soundverse {
    client: songbind_soundverse::Client,
    calls: Calls,
    limits: StreamLimits,
}

crate::client::provider_client!(Soundverse, songbind_soundverse, PROVIDER, limits: StreamLimits::default());

impl Soundverse {
    /// Replaces the stream limits (largest event, idle timeout).
    pub fn stream_limits(mut self, limits: StreamLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Starts a generation and follows its stream. The call returns once
    /// the stream names the song (`message_id`), within
    /// [`DEFAULT_SUBMIT_TIMEOUT`]; [`Soundverse::submit_generate_with`] takes
    /// your own deadline and cancellation token.
    pub async fn submit_generate(&self, request: &GenerateRequest) -> Result<Job> {
        self.submit_generate_with(request, &submit_options()).await
    }

    /// [`Soundverse::submit_generate`] under the timeout and cancellation
    /// token of `options` (no timeout when it has none).
    pub async fn submit_generate_with(
        &self,
        request: &GenerateRequest,
        options: &WaitOptions,
    ) -> Result<Job> {
        request.validate()?;
        let body: types::GenerateSongRequest = validate::to_wire(request)?;
        self.submit("generate_song", options, || {
            self.client.generate_song().body(body.clone()).send()
        })
        .await
    }

    /// Starts an extension and follows its stream (see
    /// [`Soundverse::submit_generate`] for when it returns).
    pub async fn submit_extend(&self, request: &ExtendRequest) -> Result<Job> {
        self.submit_extend_with(request, &submit_options()).await
    }

    /// [`Soundverse::submit_extend`] under the timeout and cancellation token
    /// of `options`.
    pub async fn submit_extend_with(
        &self,
        request: &ExtendRequest,
        options: &WaitOptions,
    ) -> Result<Job> {
        request.validate()?;
        let body: types::ExtendSongRequest = validate::to_wire(request)?;
        self.submit("extend_song", options, || {
            self.client.extend_song().body(body.clone()).send()
        })
        .await
    }

    /// Starts a remix and follows its stream (see
    /// [`Soundverse::submit_generate`] for when it returns; a v7 stream's
    /// `job_id` comes first, and the call waits for the `message_id` that
    /// status lookups know).
    pub async fn submit_remix(&self, request: &RemixRequest) -> Result<Job> {
        self.submit_remix_with(request, &submit_options()).await
    }

    /// [`Soundverse::submit_remix`] under the timeout and cancellation token
    /// of `options`.
    pub async fn submit_remix_with(
        &self,
        request: &RemixRequest,
        options: &WaitOptions,
    ) -> Result<Job> {
        request.validate()?;
        let body: types::RemixSongRequest = validate::to_wire(request)?;
        self.submit("remix_song", options, || {
            self.client.remix_song().body(body.clone()).send()
        })
        .await
    }

    /// Generates a song and waits for the whole answer (`/sync`), with no
    /// limit of its own; [`Soundverse::generate_sync_with`] takes one.
    pub async fn generate_sync(&self, request: &GenerateRequest) -> Result<JobOutput> {
        self.generate_sync_with(request, &WaitOptions::default())
            .await
    }

    /// [`Soundverse::generate_sync`] under the timeout and cancellation
    /// token of `options`.
    pub async fn generate_sync_with(
        &self,
        request: &GenerateRequest,
        options: &WaitOptions,
    ) -> Result<JobOutput> {
        request.validate()?;
        let body: types::GenerateSongRequest = validate::to_wire(request)?;
        self.sync("generate_song_sync", options, || {
            self.client.generate_song_sync().body(body.clone()).send()
        })
        .await
    }

    /// Extends a song and waits for the whole answer (`/sync`), with no
    /// limit of its own; [`Soundverse::extend_sync_with`] takes one.
    pub async fn extend_sync(&self, request: &ExtendRequest) -> Result<JobOutput> {
        self.extend_sync_with(request, &WaitOptions::default())
            .await
    }

    /// [`Soundverse::extend_sync`] under the timeout and cancellation token
    /// of `options`.
    pub async fn extend_sync_with(
        &self,
        request: &ExtendRequest,
        options: &WaitOptions,
    ) -> Result<JobOutput> {
        request.validate()?;
        let body: types::ExtendSongRequest = validate::to_wire(request)?;
        self.sync("extend_song_sync", options, || {
            self.client.extend_song_sync().body(body.clone()).send()
        })
        .await
    }

    /// Sends a `/sync` create (retried only while not taken) under `options`.
    async fn sync<F, Fut>(
        &self,
        operation: &'static str,
        options: &WaitOptions,
        send: F,
    ) -> Result<JobOutput>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<
                Output = std::result::Result<
                    songbind_soundverse::ResponseValue<types::SyncSongResponse>,
                    songbind_soundverse::Error<types::ErrorBody>,
                >,
            >,
    {
        let answer = within(
            options,
            || format!("the {PROVIDER} /sync answer"),
            self.calls
                .generated(operation, Repeatable::OnlyIfNotTaken, send),
        )
        .await?;
        Ok(sync_output(answer))
    }

    /// A [`Job`] following a generation you already know, by its
    /// `message_id` (the id the stream sent, and the one every failure after
    /// a submit names): its status is polled through
    /// `/status/generations/{message_id}` until it is complete or failed.
    pub fn resume(&self, message_id: &str) -> Result<Job> {
        validate::id("message_id", message_id)?;
        let source = StatusPolls {
            client: self.clone(),
            message_id: message_id.to_owned(),
        };
        let id = message_id.to_owned();
        Ok(Job::new(
            PROVIDER,
            id.clone(),
            self.calls.redactor.clone(),
            Box::new(move |poll_interval| crate::poll::follow(PROVIDER, id, source, poll_interval)),
        )
        .resumable(ResumeWith::MessageId(message_id.to_owned())))
    }

    /// A generation's status, typed for the fields known from the stream's
    /// chunks; the rest stays in [`GenerationStatus::other`].
    pub async fn generation(&self, message_id: &str) -> Result<GenerationStatus> {
        let status = self.status(message_id).await?;
        serde_json::from_value(Value::Object(status.clone())).map_err(|e| {
            Error::decode("a generation status", e, &Value::Object(status).to_string())
        })
    }

    /// The provider's view of a generation (`/status/generations/{id}`): an
    /// open JSON object, since Soundverse does not publish its shape.
    pub async fn status(&self, message_id: &str) -> Result<Map<String, Value>> {
        validate::id("message_id", message_id)?;
        let status = self
            .calls
            .generated("get_generation_status", Repeatable::Safe, || {
                self.client
                    .get_generation_status()
                    .message_id(message_id)
                    .send()
            })
            .await?;
        Ok(status.0)
    }

    /// Sends a streaming create (retried only while not taken), then reads
    /// its stream until the song is named, all under `options`.
    async fn submit<F, Fut>(
        &self,
        operation: &'static str,
        options: &WaitOptions,
        send: F,
    ) -> Result<Job>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<
                Output = std::result::Result<
                    songbind_soundverse::ResponseValue<songbind_soundverse::ByteStream>,
                    songbind_soundverse::Error<types::ErrorBody>,
                >,
            >,
    {
        let work = async {
            let bytes = self
                .calls
                .generated(operation, Repeatable::OnlyIfNotTaken, send)
                .await?;
            let stream = SoundverseEventStream::with_limits(bytes.into_inner(), self.limits);
            self.job(stream).await
        };
        let answers = crate::Answers::scrubbed_by(&self.calls.redactor);
        // Boxed: the create, its retries and the read up to the id make a
        // future of about 43 KB, which the caller's task would otherwise
        // carry for the job's whole life (profiled at 1,000 jobs); boxed,
        // it is freed once the job is named.
        Box::pin(within(
            options,
            || format!("the {PROVIDER} song id"),
            answers.scope(work),
        ))
        .await
        .map(|job| job.with_answers(answers))
        .map_err(|e| self.calls.redactor.error(e))
    }

    /// Reads the stream until the song has a `message_id` (or fails), then
    /// hands the rest to a [`Job`]. A chunk that does not decode is skipped,
    /// before the id as after it: the song goes on either way. The job
    /// events of the chunks read before the id are kept and come first.
    async fn job(&self, stream: SoundverseEventStream) -> Result<Job> {
        let mut follower = Follower::new(stream);
        let mut read = Vec::new();
        let id = loop {
            match follower.stream.next().await {
                Some(Ok(chunk)) => {
                    let id = chunk.message_id.clone();
                    let failed = matches!(chunk.event, SoundverseEvent::Failed { .. });
                    read.extend(follower.events(Ok(chunk)));
                    if let Some(id) = id {
                        break Some(id);
                    }
                    if failed {
                        break None;
                    }
                }
                Some(Err(Error::Decode { .. })) => {}
                Some(Err(error)) => return Err(error),
                None => {
                    return Err(Error::StreamEndedEarly {
                        provider: PROVIDER,
                        message_id: None,
                        resume: None, // nothing names the song yet
                    });
                }
            }
        };
        if let Some(id) = &id {
            // A song complete before it was named still reports its name.
            for event in &mut read {
                if let Ok(JobEvent::Completed(output)) = event {
                    output.id.clone_from(id);
                }
            }
        }
        let job = Job::new(
            PROVIDER,
            id.clone().unwrap_or_default(),
            self.calls.redactor.clone(),
            Box::new(move |_poll_interval| {
                let rest = stream::unfold(follower, |mut follower| async move {
                    let chunk = follower.stream.next().await?;
                    let events = follower.events(chunk);
                    Some((stream::iter(events), follower))
                });
                stream::iter(read).chain(rest.flatten()).boxed()
            }),
        );
        Ok(match id {
            Some(id) => job.resumable(ResumeWith::MessageId(id)),
            None => job,
        })
    }
}

/// The options a plain `submit_*` call runs under.
fn submit_options() -> WaitOptions {
    WaitOptions::default().timeout(DEFAULT_SUBMIT_TIMEOUT)
}

/// Turns stream chunks into job events. The song itself (both versions,
/// title, completion) is tracked once, by the stream's [`SongProgress`]
/// (`stream.progress()`, up to date with every chunk the stream yields);
/// the follower only remembers what it has already reported.
struct Follower {
    stream: SoundverseEventStream,
    /// The generation's id as last sent (empty before it is).
    id: String,
    announced: [bool; 2],
    done: bool,
}

impl Follower {
    fn new(stream: SoundverseEventStream) -> Self {
        Self {
            stream,
            id: String::new(),
            announced: [false; 2],
            done: false,
        }
    }

    /// The song as the stream has tracked it so far.
    fn song(&self) -> &SongProgress {
        self.stream.progress()
    }

    fn events(&mut self, chunk: Result<SoundverseChunk>) -> Vec<Result<JobEvent>> {
        if self.done {
            return Vec::new();
        }
        let chunk = match chunk {
            Ok(chunk) => chunk,
            // A garbled chunk is skipped; the stream goes on.
            Err(Error::Decode { .. }) => return Vec::new(),
            Err(error) => {
                self.done = true;
                return vec![Err(error)];
            }
        };
        if let Some(message_id) = &chunk.message_id {
            self.id.clone_from(message_id);
        }
        let mut events = Vec::new();
        match &chunk.event {
            SoundverseEvent::Failed { error } => {
                self.done = true;
                return vec![Err(Error::JobFailed {
                    provider: PROVIDER,
                    id: self.id.clone(),
                    message: error
                        .clone()
                        .unwrap_or_else(|| "the generation failed".to_owned()),
                    resume: None, // the job's own, set by `Job::events`
                })];
            }
            SoundverseEvent::StreamingReady {
                version,
                stream_url,
            } => events.push(Ok(JobEvent::StreamReady {
                version: *version,
                url: stream_url.clone(),
            })),
            SoundverseEvent::Progress { status, progress } => events.push(Ok(JobEvent::Stage {
                stage: Stage::from_provider(status),
                progress: *progress,
                version: None,
            })),
            SoundverseEvent::LyricsSections { .. } => {}
            other => {
                if let Some(stage) = stage_name(other, chunk.status.as_deref()) {
                    events.push(Ok(JobEvent::Stage {
                        stage: Stage::from_provider(&stage),
                        progress: None,
                        version: chunk.version,
                    }));
                }
            }
        }
        for (slot, version) in self.stream.progress().versions.iter().enumerate() {
            if let (false, Some(url)) = (self.announced[slot], &version.audio_url) {
                self.announced[slot] = true;
                events.push(Ok(JobEvent::Output(self.output(version.version, url))));
            }
        }
        if self.song().is_complete() {
            self.done = true;
            let outputs = self
                .song()
                .versions
                .iter()
                .filter_map(|v| v.audio_url.as_ref().map(|url| self.output(v.version, url)))
                .collect();
            events.push(Ok(JobEvent::Completed(JobOutput {
                provider: PROVIDER,
                id: self.id.clone(),
                outputs,
            })));
        }
        events
    }

    fn output(&self, version: u32, url: &str) -> Output {
        Output {
            title: self.song().song_name.clone(),
            album_art: self.song().album_art.clone(),
            ..Output::new(url, Some(version))
        }
    }
}

/// The stage name a job event reports for a chunk, if any (`status` is
/// the chunk's `status` as sent).
fn stage_name(event: &SoundverseEvent, status: Option<&str>) -> Option<String> {
    match event {
        SoundverseEvent::JobCreated { .. } => Some("job_created".to_owned()),
        SoundverseEvent::Completed { .. } => Some("completed".to_owned()),
        SoundverseEvent::Other { status, .. } => status.clone(),
        _ => status.map(str::to_owned),
    }
}

fn sync_output(answer: types::SyncSongResponse) -> JobOutput {
    let outputs = answer
        .audio_data
        .iter()
        .enumerate()
        .filter_map(|(index, audio)| {
            Some(Output {
                title: audio.song_name.clone().or_else(|| answer.song_name.clone()),
                album_art: answer.album_art.clone(),
                ..Output::new(audio.audio_url.clone()?, Some(index as u32 + 1))
            })
        })
        .collect();
    JobOutput {
        provider: PROVIDER,
        id: answer.message_id.clone().unwrap_or_default(),
        outputs,
    }
}

/// A generation's status (`/status/generations/{message_id}`). Soundverse
/// does not publish its shape: the fields its stream chunks carry are typed,
/// and everything else is kept in `other`.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
pub struct GenerationStatus {
    /// The generation's id.
    pub message_id: Option<String>,
    /// Its last stage, e.g. `running`, `completed`, `failed`.
    pub status: Option<String>,
    /// Progress in percent.
    pub progress: Option<u8>,
    /// Whether the generation is over.
    #[serde(rename = "isComplete")]
    pub is_complete: Option<bool>,
    /// The song's name.
    pub song_name: Option<String>,
    /// The album art's URL.
    pub album_art: Option<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Each version's URLs, where the status lists them.
    #[serde(default)]
    pub versions: Vec<VersionStatus>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One version of a generation, as its status lists it.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
pub struct VersionStatus {
    /// 1 or 2.
    pub version: Option<u32>,
    /// Where it can be played while it is finished.
    pub stream_url: Option<String>,
    /// The final audio.
    pub audio_url: Option<String>,
}

/// Soundverse's status for a resumed job: `/status/generations/{id}`.
struct StatusPolls {
    client: Soundverse,
    message_id: String,
}

impl crate::poll::StatusSource for StatusPolls {
    fn poll(&mut self) -> crate::poll::PollFuture<'_> {
        use crate::poll::{State, Status};
        Box::pin(async move {
            let now = self.client.generation(&self.message_id).await?;
            let stage = now.status.clone().unwrap_or_default();
            let outputs: Vec<Output> = now
                .versions
                .iter()
                .filter_map(|v| {
                    let url = v.audio_url.clone()?;
                    Some(Output {
                        title: now.song_name.clone(),
                        album_art: now.album_art.clone(),
                        ..Output::new(url, v.version)
                    })
                })
                .collect();
            let state = match (stage.as_str(), now.is_complete) {
                ("failed", _) => State::Failed(
                    now.error
                        .clone()
                        .unwrap_or_else(|| "the generation failed".into()),
                ),
                (_, Some(true)) | ("completed", None) if !outputs.is_empty() => State::Done,
                _ => State::Running,
            };
            Ok(Status {
                stages: (!stage.is_empty())
                    .then_some((None, stage))
                    .into_iter()
                    .collect(),
                outputs,
                state,
            })
        })
    }
}
