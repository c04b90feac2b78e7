//! One way to wait for a job, whatever the provider.
//!
//! A provider module's `submit_*` call returns a [`Job`]. From there:
//!
//! * [`Job::events`] is a stream of [`JobEvent`]s (stages, progress, each
//!   version's stream URL and final output) ending with
//!   [`JobEvent::Completed`];
//! * [`Job::wait`] drives that stream and returns the final [`JobOutput`].
//!
//! How the events are obtained differs (Soundverse's SSE stream, SoundPiece's
//! long-poll `GET ?wait=true`, MusicGPT's `/byId` polling of both
//! conversions); the caller chooses the poll interval, the overall timeout
//! and a cancellation token through [`WaitOptions`].

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt, stream::BoxStream};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ProviderName, Result, ResumeWith};
use crate::redact::Redactor;

/// What an [`Output`] is: a version of the song (the default), one stem of
/// it, a preview, or its album art.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutputKind {
    /// A whole version or variation of the song (see [`Output::version`]).
    #[default]
    Version,
    /// One stem of the song, by the provider's name for it (`bass`,
    /// `chords`, `melody`, `percussion`).
    Stem(String),
    /// A short preview of the song.
    Preview,
    /// The song's cover image.
    AlbumArt,
}

/// One finished output: a version or variation of the song, or (see
/// [`Output::kind`]) a stem, a preview or album art.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Output {
    /// What it is.
    pub kind: OutputKind,
    /// Where to download it.
    pub url: String,
    /// Version (Soundverse, MusicGPT: 1 or 2) or variation number (SoundPiece).
    pub version: Option<u32>,
    /// The track's title, where the provider names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Length in seconds, where the provider says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    /// Album art or cover image URL, where the provider gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub album_art: Option<String>,
    /// Lyrics of this output, where the provider returns them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lyrics: Option<String>,
    /// When the URL stops working (SoundPiece's signed URLs), as RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl JobEvent {
    /// The event with `redactor`'s key scrubbed from every text it holds.
    pub(crate) fn scrubbed(mut self, redactor: &Redactor) -> Self {
        match &mut self {
            JobEvent::Stage {
                stage: Stage::Other(name),
                ..
            } => redactor.scrub(name),
            JobEvent::Stage { .. } => {}
            JobEvent::StreamReady { url, .. } => redactor.scrub(url),
            JobEvent::Output(output) => output.scrub(redactor),
            JobEvent::Completed(done) => {
                redactor.scrub(&mut done.id);
                done.outputs.iter_mut().for_each(|o| o.scrub(redactor));
            }
        }
        self
    }

    /// A stage with neither progress nor version.
    #[cfg_attr(not(feature = "elevenlabs"), allow(dead_code))]
    pub(crate) fn stage(stage: Stage) -> Self {
        JobEvent::Stage {
            stage,
            progress: None,
            version: None,
        }
    }
}

impl Output {
    /// A version of the song with only a URL and a version number.
    pub fn new(url: impl Into<String>, version: Option<u32>) -> Self {
        Self {
            kind: OutputKind::Version,
            url: url.into(),
            version,
            title: None,
            duration_secs: None,
            album_art: None,
            lyrics: None,
            expires_at: None,
        }
    }

    /// Scrubs `redactor`'s key from every text the output holds.
    fn scrub(&mut self, redactor: &Redactor) {
        redactor.scrub(&mut self.url);
        redactor.scrub_option(&mut self.title);
        redactor.scrub_option(&mut self.album_art);
        redactor.scrub_option(&mut self.lyrics);
        redactor.scrub_option(&mut self.expires_at);
    }

    /// A stem of the song, named as the provider names it.
    pub fn stem(url: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: OutputKind::Stem(name.into()),
            ..Self::new(url, None)
        }
    }
}

/// The result of a finished job.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobOutput {
    /// Which provider ran it.
    pub provider: ProviderName,
    /// The job's id at the provider (`message_id`, `op_...`, `task_id`).
    pub id: String,
    /// Every output, in version order.
    pub outputs: Vec<Output>,
}

/// A stage a job went through, one open enum for every provider: the
/// stages providers share are typed (each provider's own spellings map to
/// them: `IN_QUEUE` and `PENDING` are [`Stage::Queued`], SoundPiece's
/// `ready` is [`Stage::Completed`]), any other is kept as the provider
/// named it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
#[non_exhaustive]
pub enum Stage {
    /// The job exists (Soundverse v7's `job_created`).
    Created,
    /// The request was checked (Soundverse's `validated`).
    Validated,
    /// Waiting for its turn (`queued`, `IN_QUEUE`, `PENDING`).
    Queued,
    /// Starting (`starting`).
    Starting,
    /// Running (`running`).
    Running,
    /// Being worked on (`processing`, `PROCESSING`).
    Processing,
    /// Streaming while it is finished (Soundverse's `streaming`).
    Streaming,
    /// The outputs are being stored (`uploading`).
    Uploading,
    /// The song is being composed (ElevenLabs).
    Composing,
    /// The audio is arriving (ElevenLabs).
    StreamingAudio,
    /// Done (`completed`, `COMPLETED`, SoundPiece's `ready`).
    Completed,
    /// Any other stage, as the provider named it.
    Other(String),
}

impl Stage {
    /// The stage a provider's own name means (case and `_`/space ignored).
    pub fn from_provider(name: &str) -> Self {
        match name.trim().to_ascii_lowercase().replace(' ', "_").as_str() {
            "job_created" | "created" => Stage::Created,
            "validated" => Stage::Validated,
            "queued" | "in_queue" | "pending" => Stage::Queued,
            "starting" => Stage::Starting,
            "running" => Stage::Running,
            "processing" => Stage::Processing,
            "streaming" => Stage::Streaming,
            "uploading" => Stage::Uploading,
            "composing" => Stage::Composing,
            "streaming_audio" => Stage::StreamingAudio,
            "completed" | "ready" => Stage::Completed,
            _ => Stage::Other(name.to_owned()),
        }
    }

    /// The stage's name: `queued`, `streaming audio`, ..., or the
    /// provider's own for [`Stage::Other`].
    pub fn as_str(&self) -> &str {
        match self {
            Stage::Created => "created",
            Stage::Validated => "validated",
            Stage::Queued => "queued",
            Stage::Starting => "starting",
            Stage::Running => "running",
            Stage::Processing => "processing",
            Stage::Streaming => "streaming",
            Stage::Uploading => "uploading",
            Stage::Composing => "composing",
            Stage::StreamingAudio => "streaming audio",
            Stage::Completed => "completed",
            Stage::Other(name) => name,
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Stage> for String {
    fn from(stage: Stage) -> Self {
        stage.as_str().to_owned()
    }
}

/// Something that happened to a job.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum JobEvent {
    /// The job moved to a stage, with
    /// progress in percent where the provider reports it.
    Stage {
        /// The stage (the provider's own name kept in [`Stage::Other`]).
        stage: Stage,
        /// Progress in percent, if known.
        progress: Option<u8>,
        /// The version the stage is about, for providers that run two.
        version: Option<u32>,
    },
    /// One version can be played while it is still being finished.
    StreamReady {
        /// Which version.
        version: u32,
        /// The playback URL.
        url: String,
    },
    /// One output is final.
    Output(Output),
    /// The job is done: every output. Always the last event.
    Completed(JobOutput),
}

/// The caller's choices for waiting.
#[derive(Clone, Debug)]
pub struct WaitOptions {
    /// Pause between two status polls (polled providers only). SoundPiece
    /// long-polls, so this is only the pause after an early answer.
    pub poll_interval: Duration,
    /// Give up after this long (no limit when `None`).
    pub timeout: Option<Duration>,
    /// Stop waiting when this token is cancelled.
    pub cancel: Option<CancellationToken>,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            timeout: None,
            cancel: None,
        }
    }
}

impl WaitOptions {
    /// Sets the pause between polls.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the overall limit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the cancellation token.
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }
}

/// Produces a job's event stream once the caller's poll interval is known.
pub(crate) type EventSource =
    Box<dyn FnOnce(Duration) -> BoxStream<'static, Result<JobEvent>> + Send>;

/// A job the provider accepted. Wait for it with [`Job::wait`], or follow it
/// with [`Job::events`].
pub struct Job {
    provider: ProviderName,
    id: String,
    source: EventSource,
    redactor: Redactor,
    resume: Option<ResumeWith>,
    idempotency_key: Option<uuid::Uuid>,
    answers: crate::answers::Answers,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("provider", &self.provider)
            .field("id", &self.id)
            .field("idempotency_key", &self.idempotency_key)
            .finish_non_exhaustive()
    }
}

impl Job {
    #[cfg_attr(not(feature = "_provider"), allow(dead_code))]
    pub(crate) fn new(
        provider: ProviderName,
        id: String,
        redactor: Redactor,
        source: EventSource,
    ) -> Self {
        Self {
            provider,
            id,
            source,
            answers: crate::answers::Answers::scrubbed_by(&redactor),
            redactor,
            resume: None,
            idempotency_key: None,
        }
    }

    /// Shares `answers`, where the create's answer was recorded.
    #[cfg_attr(not(feature = "_polled"), allow(dead_code))]
    pub(crate) fn with_answers(mut self, answers: crate::answers::Answers) -> Self {
        self.answers = answers;
        self
    }

    /// The HTTP status and headers of the job's create answer and of its
    /// latest answer (request id, rate-limit headers). Take it before
    /// waiting; it fills in as the job is followed.
    pub fn answers(&self) -> crate::answers::Answers {
        self.answers.clone()
    }

    /// Every error the job's events end with names `resume` (the job
    /// exists, and this finds it again), [`Error::JobFailed`] included.
    #[cfg_attr(not(feature = "_polled"), allow(dead_code))]
    pub(crate) fn resumable(mut self, resume: ResumeWith) -> Self {
        self.resume = Some(resume);
        self
    }

    /// Records the idempotency key the create was sent with.
    #[cfg_attr(not(feature = "soundpiece"), allow(dead_code))]
    pub(crate) fn with_idempotency_key(mut self, key: uuid::Uuid) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// The provider running the job.
    pub fn provider(&self) -> ProviderName {
        self.provider
    }

    /// The job's id at the provider, the one its status lookup knows:
    /// Soundverse's `message_id` (for `/status/generations/{message_id}`;
    /// a v7 stream's `job_id` is only used until the `message_id` arrives,
    /// which the submit waits for), SoundPiece's operation id (`op_...`),
    /// MusicGPT's `task_id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How to find this job again if following it fails: the same id as
    /// [`Job::id`], typed by provider.
    pub fn resume_with(&self) -> Option<&ResumeWith> {
        self.resume.as_ref()
    }

    /// The idempotency key the create was sent with (SoundPiece): sending
    /// the same request with it again answers this same operation.
    pub fn idempotency_key(&self) -> Option<uuid::Uuid> {
        self.idempotency_key
    }

    /// The job's events, ending with [`JobEvent::Completed`], or with an error
    /// ([`Error::Timeout`], [`Error::Cancelled`], [`Error::JobFailed`],
    /// [`Error::StreamEndedEarly`], ...) after which the stream ends. Once
    /// the job has an id, that error names it: its
    /// [`Error::resume_with`] is this job's [`Job::resume_with`].
    pub fn events(
        self,
        options: &WaitOptions,
    ) -> impl Stream<Item = Result<JobEvent>> + Send + 'static {
        let waiting_for = format!("{} job {}", self.provider, self.id);
        let events = (self.source)(options.poll_interval);
        let redactor = self.redactor;
        let resume = self.resume;
        let bounded = Bounded {
            inner: events,
            deadline: options
                .timeout
                .map(|after| (after, Box::pin(tokio::time::sleep(after)))),
            cancel: options
                .cancel
                .clone()
                .map(|token| Box::pin(token.cancelled_owned())),
            waiting_for,
            done: false,
            answers: self.answers.clone(),
        };
        // Provider text is scrubbed of the key; every failure names the job.
        let (provider, id) = (self.provider, redactor.text(&self.id).into_owned());
        bounded.map(move |item| match item {
            Ok(event) => {
                let event = event.scrubbed(&redactor);
                if let JobEvent::Stage {
                    stage,
                    progress,
                    version,
                } = &event
                {
                    tracing::info!(%provider, job = %id, %stage, progress, version, "job stage");
                }
                Ok(event)
            }
            Err(error) => {
                // The job exists: every failure names it, its own included.
                let error = match &resume {
                    Some(resume) => error.resumable(resume.clone()),
                    None => error,
                };
                Err(redactor.error(error))
            }
        })
    }

    /// Waits for the job to finish and returns its outputs.
    pub async fn wait(self, options: &WaitOptions) -> Result<JobOutput> {
        let provider = self.provider;
        let id = self.id.clone();
        let resume = self.resume.clone();
        let mut events = std::pin::pin!(self.events(options));
        while let Some(event) = events.next().await {
            if let JobEvent::Completed(output) = event? {
                return Ok(output);
            }
        }
        Err(Error::StreamEndedEarly {
            provider,
            message_id: Some(id),
            resume: resume.map(Box::new),
        })
    }
}

/// Runs `work` under the deadline and the cancellation token of `options`:
/// the first to fire ends it with [`Error::Timeout`] or [`Error::Cancelled`]
/// naming `waiting_for`.
#[cfg_attr(not(feature = "soundverse"), allow(dead_code))]
pub(crate) async fn within<T>(
    options: &WaitOptions,
    waiting_for: impl FnOnce() -> String,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let deadline = async {
        match options.timeout {
            Some(after) => {
                tokio::time::sleep(after).await;
                after
            }
            None => std::future::pending().await,
        }
    };
    let cancelled = async {
        match &options.cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        () = cancelled => Err(Error::Cancelled { waiting_for: waiting_for(), resume: None }),
        after = deadline => Err(Error::Timeout { after, waiting_for: waiting_for(), resume: None }),
        result = work => result,
    }
}

/// An event stream with an overall deadline and a cancellation token: the
/// first of them to fire ends the stream with a typed error.
struct Bounded {
    inner: BoxStream<'static, Result<JobEvent>>,
    deadline: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    cancel: Option<Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>>,
    waiting_for: String,
    done: bool,
    /// Where the answers of the polls this stream makes are recorded.
    answers: crate::answers::Answers,
}

impl Stream for Bounded {
    type Item = Result<JobEvent>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;

        if self.done {
            return Poll::Ready(None);
        }
        if let Some(cancel) = self.cancel.as_mut()
            && cancel.as_mut().poll(cx).is_ready()
        {
            self.done = true;
            let waiting_for = std::mem::take(&mut self.waiting_for);
            return Poll::Ready(Some(Err(Error::Cancelled {
                waiting_for,
                resume: None,
            })));
        }
        if let Some((after, sleep)) = self.deadline.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            let after = *after;
            self.done = true;
            let waiting_for = std::mem::take(&mut self.waiting_for);
            return Poll::Ready(Some(Err(Error::Timeout {
                after,
                waiting_for,
                resume: None,
            })));
        }
        let answers = self.answers.clone();
        match answers.sync_scope(|| self.inner.poll_next_unpin(cx)) {
            Poll::Ready(Some(item)) => {
                if matches!(item, Err(_) | Ok(JobEvent::Completed(_))) {
                    self.done = true;
                }
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The events of a job that is one piece of `work` (ElevenLabs: one
/// request answering the audio): those it emits as it goes, then those it
/// ends with (or its error), in that order.
#[cfg_attr(not(feature = "elevenlabs"), allow(dead_code))]
pub(crate) fn work_events<F, Fut>(work: F) -> futures::stream::BoxStream<'static, Result<JobEvent>>
where
    F: FnOnce(Box<dyn FnMut(Result<JobEvent>) + Send>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<JobEvent>>> + Send + 'static,
{
    let (sender, receiver) = futures::channel::mpsc::unbounded();
    // Drives `work`, sending everything through the channel: one order.
    let driver = futures::stream::once(async move {
        let early = sender.clone();
        let ended = work(Box::new(move |event| drop(early.unbounded_send(event)))).await;
        match ended {
            Ok(events) => events
                .into_iter()
                .for_each(|e| drop(sender.unbounded_send(Ok(e)))),
            Err(error) => drop(sender.unbounded_send(Err(error))),
        }
    })
    .filter_map(|()| async { None });
    futures::stream::select(receiver, driver).boxed()
}
