//! Beatoven: background music composed as a polled job whose outputs are
//! the track and its four stems.
//!
//! [`Beatoven::submit_compose`] validates the request and sends
//! `POST /api/v1/tracks/compose`. The compose is not idempotent (Beatoven
//! takes no key), so only answers that say it was not taken (429, 503) are
//! retried. The returned [`Job`] polls `GET /api/v1/tasks/{task_id}` until
//! the task is `composed` (one [`Output`] for the track, one
//! [`OutputKind::Stem`](crate::OutputKind::Stem) per stem) or `failed`.
//! Its signed URLs expire: download them promptly.

/// The generated client crate (`songbind-beatoven`), for calls this module
/// does not wrap: `api::Client`, `api::types`.
pub use songbind_beatoven as api;
/// The formats of the track and its stems.
pub use songbind_beatoven::types::ComposeTrackRequestFormat as Format;
/// A task's status as Beatoven answers it (`status`, and `meta` once composed).
pub use songbind_beatoven::types::TaskStatusResponse as TaskStatus;
/// The spec's limits and production base URL.
pub use songbind_beatoven::{DEFAULT_BASE_URL, limits};

use serde::Serialize;
use songbind_beatoven::types;

use crate::error::{ProviderName, Result, ResumeWith};
use crate::job::{Job, Output};
use crate::poll::{self, PollFuture, State, Status, StatusSource};
use crate::retry::{Calls, Repeatable};
use crate::validate;

const PROVIDER: ProviderName = ProviderName::Beatoven;

/// A compose request: what the music should be (its length is said in the
/// text, e.g. "30 seconds peaceful lo-fi chill hop track").
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComposeRequest {
    /// The description, sent as `prompt.text`.
    #[serde(serialize_with = "as_prompt")]
    pub prompt: String,
    /// The format of the track and the stems (Beatoven's default: WAV).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// More looping in the composition (Beatoven's default: no).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub looping: Option<bool>,
}

/// `prompt` on the wire: `{"text": ...}`.
fn as_prompt<S: serde::Serializer>(
    text: &str,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serde_json::json!({ "text": text }).serialize(serializer)
}

impl ComposeRequest {
    /// A request for `prompt`, every other field left to Beatoven.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            format: None,
            looping: None,
        }
    }

    /// Sets the description.
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = prompt.into();
        self
    }

    /// Sets the format of the track and the stems.
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// Asks for more looping (or not).
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = Some(looping);
        self
    }

    /// Checks the request against the spec's limits without sending it.
    pub fn validate(&self) -> Result<()> {
        validate::not_blank(
            limits::COMPOSE_TRACK_REQUEST_PROMPT_TEXT.field,
            &self.prompt,
        )?;
        validate::limit(&limits::COMPOSE_TRACK_REQUEST_PROMPT_TEXT, &self.prompt)
    }
}

/// A Beatoven client: compose, then follow the task to its track and stems.
#[derive(Clone, Debug)]
pub struct Beatoven {
    client: api::Client,
    calls: Calls,
}

crate::client::provider_client!(Beatoven, songbind_beatoven, PROVIDER);

impl Beatoven {
    /// Sends the compose and returns the [`Job`] that follows its task.
    pub async fn submit_compose(&self, request: &ComposeRequest) -> Result<Job> {
        request.validate()?;
        let body: types::ComposeTrackRequest = validate::to_wire(request)?;
        // The create's answer (status, headers) is the job's `answers()`;
        // boxed, so that the caller's task does not carry the retries' future.
        let answers = crate::Answers::scrubbed_by(&self.calls.redactor);
        let created = Box::pin(answers.scope(self.calls.generated(
            "compose_track",
            Repeatable::OnlyIfNotTaken,
            || self.client.compose_track().body(body.clone()).send(),
        )))
        .await?;
        Ok(self.follow(created.task_id).with_answers(answers))
    }

    /// A [`Job`] following a task you already know, by the `task_id` its
    /// compose answered (and every failure after the compose names).
    pub fn resume(&self, task_id: &str) -> Result<Job> {
        validate::id("task_id", task_id)?;
        Ok(self.follow(task_id.to_owned()))
    }

    /// One look at a task (a single poll of what [`Beatoven::resume`]
    /// follows).
    pub async fn task(&self, task_id: &str) -> Result<TaskStatus> {
        validate::id("task_id", task_id)?;
        self.calls
            .generated("get_task", Repeatable::Safe, || {
                self.client.get_task().task_id(task_id).send()
            })
            .await
    }

    fn follow(&self, task_id: String) -> Job {
        let source = TaskPolls {
            client: self.clone(),
            task_id: task_id.clone(),
        };
        let id = task_id.clone();
        Job::new(
            PROVIDER,
            task_id.clone(),
            self.calls.redactor.clone(),
            Box::new(move |poll_interval| poll::follow(PROVIDER, id, source, poll_interval)),
        )
        .resumable(ResumeWith::TaskId(task_id))
    }
}

/// Beatoven's status: the task until `composed` (its track and stems) or
/// `failed`; any other status (`composing`, `running`, ...) is a stage.
struct TaskPolls {
    client: Beatoven,
    task_id: String,
}

impl StatusSource for TaskPolls {
    fn poll(&mut self) -> PollFuture<'_> {
        Box::pin(async move {
            let task = self.client.task(&self.task_id).await?;
            let mut status = Status::default();
            status.stages.push((None, task.status.clone()));
            match task.status.as_str() {
                "composed" => {
                    let meta = task.meta.unwrap_or_default();
                    status
                        .outputs
                        .extend(meta.track_url.map(|url| Output::new(url, Some(1))));
                    let stems = meta.stems_url.unwrap_or_default();
                    for (name, url) in [
                        ("bass", stems.bass),
                        ("chords", stems.chords),
                        ("melody", stems.melody),
                        ("percussion", stems.percussion),
                    ] {
                        status
                            .outputs
                            .extend(url.map(|url| Output::stem(url, name)));
                    }
                    // Composed without its track yet: poll again.
                    if status
                        .outputs
                        .iter()
                        .any(|o| o.kind == crate::OutputKind::Version)
                    {
                        status.state = State::Done;
                    }
                }
                "failed" => status.state = State::Failed("the task failed".to_owned()),
                _ => {}
            }
            Ok(status)
        })
    }
}
