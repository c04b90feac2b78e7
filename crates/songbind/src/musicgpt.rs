//! MusicGPT: remix by upload or URL, polled through `/byId` to completion.
//!
//! [`MusicGpt::submit_remix`] validates the request and sends the multipart
//! `POST /Remix` (streaming a local file, or naming `audio_path`). Creates are
//! not idempotent, so only answers that say the request was not taken (429,
//! 503) are retried. The returned [`Job`] polls `/byId` for both conversions
//! (two versions per task) until both are `COMPLETED`.

/// The generated client crate (`songbind-musicgpt`), for calls this module
/// does not wrap: `api::Client`, `api::types`.
pub use songbind_musicgpt as api;
/// The remix modes the spec allows.
pub use songbind_musicgpt::types::RemixMode;
/// The spec's limits and production base URL.
pub use songbind_musicgpt::{DEFAULT_BASE_URL, limits};

/// MusicGPT's (unsigned) webhook deliveries: parse, then [`confirm`](webhook::confirm)
/// with the provider; everything a receiver needs.
pub mod webhook {
    /// A redelivered event's id, remembered in bounded memory.
    pub use crate::webhook::SeenWebhookIds;
    /// Why a delivery was refused or could not be read.
    pub use crate::webhook::WebhookError;
    /// The JSON Schema of a conversion delivery's body.
    #[cfg(feature = "schemars")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
    pub use crate::webhook::musicgpt::payload_schema;
    pub use crate::webhook::musicgpt::{
        ConversionDelivery, CoverDelivery, LyricsDelivery, MusicGptWebhook as Webhook,
        TimedLyricLine, confirm, decode_timed_lyrics,
    };
    /// A conversion as the provider reports it ([`confirm`]'s answer), and a
    /// conversion delivery's body as sent.
    pub use songbind_musicgpt::types::{Conversion, WebhookPayload};
}

use std::path::PathBuf;

use songbind_musicgpt::ClientInfo;
use songbind_musicgpt::types;

use crate::error::{Error, ProviderName, Result, ResumeWith};
use crate::job::{Job, Output};
use crate::poll::{self, PollFuture, State, Status, StatusSource};
use crate::retry::{Calls, Repeatable};
use crate::upload::{UploadAudio, post_remix};
use crate::validate::{self, UrlRule};

const PROVIDER: ProviderName = ProviderName::MusicGpt;

/// Where the audio to remix comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioInput {
    /// A local file, uploaded as `audio_file` (streamed, not read into memory).
    File(PathBuf),
    /// A URL (S3 or YouTube) sent as `audio_path`.
    Url(String),
}

/// A remix request: `new(audio, prompt)`, then a setter per field, to build
/// a request or edit one by value.
#[derive(Clone, Debug, PartialEq)]
pub struct RemixRequest {
    /// The audio to remix.
    pub audio: AudioInput,
    /// What the remix should sound like (required).
    pub prompt: String,
    /// Lyrics to use, if any.
    pub lyrics: Option<String>,
    /// `REMIX`, `INPAINT` or `OVER_INSTRUMENTAL`.
    pub mode: RemixMode,
    /// Where MusicGPT POSTs results (see [`crate::webhook`]).
    pub webhook_url: Option<String>,
}

impl RemixRequest {
    /// A `REMIX`-mode request without lyrics or webhook.
    pub fn new(audio: AudioInput, prompt: impl Into<String>) -> Self {
        Self {
            audio,
            prompt: prompt.into(),
            lyrics: None,
            mode: RemixMode::Remix,
            webhook_url: None,
        }
    }

    /// Sets the audio to remix (required: replaces the audio `new` was
    /// given).
    pub fn audio(mut self, audio: AudioInput) -> Self {
        self.audio = audio;
        self
    }

    /// Sets what the remix should sound like (required: replaces the prompt
    /// `new` was given).
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = prompt.into();
        self
    }

    /// Sets the lyrics to sing.
    pub fn lyrics(mut self, lyrics: impl Into<String>) -> Self {
        self.lyrics = Some(lyrics.into());
        self
    }

    /// Sets the remix mode (one of the spec's `RemixMode`s).
    pub fn mode(mut self, mode: RemixMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets where MusicGPT POSTs its results.
    pub fn webhook_url(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    /// Checks every documented rule, naming the field. A file's existence is
    /// checked when it is opened for upload.
    pub fn validate(&self) -> Result<()> {
        validate::not_blank("prompt", &self.prompt)?;
        match &self.audio {
            AudioInput::Url(url) => validate::url("audio_path", url, UrlRule::HttpOrHttps)?,
            AudioInput::File(path) if path.as_os_str().is_empty() => {
                return Err(Error::validation("audio_file", "the file path is empty"));
            }
            AudioInput::File(_) => {}
        }
        if let Some(url) = self.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            validate::url("webhook_url", url, UrlRule::HttpOrHttps)?;
        }
        Ok(())
    }

    fn to_form(&self) -> types::RemixForm {
        types::RemixForm {
            audio_file: None,
            audio_path: match &self.audio {
                AudioInput::Url(url) => Some(url.clone()),
                AudioInput::File(_) => None,
            },
            lyrics: self.lyrics.clone().filter(|l| !l.trim().is_empty()),
            mode: self.mode,
            prompt: self.prompt.clone(),
            webhook_url: self.webhook_url.clone().unwrap_or_default(),
        }
    }
}

/// A MusicGPT client with retries.
#[derive(Clone, Debug)]
pub struct MusicGpt {
    client: songbind_musicgpt::Client,
    calls: Calls,
}

crate::client::provider_client!(MusicGpt, songbind_musicgpt, PROVIDER);

impl MusicGpt {
    /// Submits a remix (multipart upload). Retried only on 429/503 and on
    /// connections that never opened: a create is not idempotent.
    pub async fn submit_remix(&self, request: &RemixRequest) -> Result<Job> {
        request.validate()?;
        let form = request.to_form();
        let audio = match &request.audio {
            AudioInput::File(path) => UploadAudio::File(path),
            AudioInput::Url(_) => UploadAudio::None,
        };
        let answers = crate::Answers::scrubbed_by(&self.calls.redactor);
        // Boxed, like Soundverse's submit: the upload and its retries make a
        // future of about 18 KB that the caller's task would otherwise carry
        // for the job's whole life (the scale bench, issue 12).
        let created = Box::pin(answers.scope(self.calls.run(
            "remix",
            Repeatable::OnlyIfNotTaken,
            |_| post_remix(self.client.client(), self.client.baseurl(), &form, audio),
        )))
        .await?;
        Ok(self.job(created).with_answers(answers))
    }

    /// Reads one conversion by its id.
    pub async fn conversion(&self, conversion_id: &str) -> Result<types::Conversion> {
        self.lookup(Lookup::Conversion(conversion_id)).await
    }

    /// Reads a task's (first) conversion by the task id.
    pub async fn task(&self, task_id: &str) -> Result<types::Conversion> {
        self.lookup(Lookup::Task(task_id)).await
    }

    async fn lookup(&self, by: Lookup<'_>) -> Result<types::Conversion> {
        match by {
            Lookup::Conversion(id) => validate::id("conversion_id", id)?,
            Lookup::Task(id) => validate::id("task_id", id)?,
        }
        let found = self
            .calls
            .generated("get_conversion_by_id", Repeatable::Safe, || {
                let request = self.client.get_conversion_by_id().conversion_type("REMIX");
                match by {
                    Lookup::Conversion(id) => request.conversion_id(id),
                    Lookup::Task(id) => request.task_id(id),
                }
                .send()
            })
            .await?;
        found
            .conversion
            .ok_or_else(|| Error::decode("MusicGPT's /byId answer", "it holds no conversion", ""))
    }

    /// A [`Job`] following a task you already know, by the `task_id` its
    /// create answered (or its webhook named): its conversions are found
    /// through `/byId?task_id=`.
    pub fn resume(&self, task_id: &str) -> Result<Job> {
        validate::id("task_id", task_id)?;
        Ok(self.follow(task_id.to_owned(), Vec::new()))
    }

    fn job(&self, created: types::RemixResponse) -> Job {
        let task_id = created.task_id.clone();
        let conversions: Vec<Tracked> = match (
            &created.conversion_id_1,
            &created.conversion_id_2,
            &created.conversion_id,
        ) {
            (Some(one), Some(two), _) => vec![Tracked::new(1, one), Tracked::new(2, two)],
            (Some(one), None, _) | (None, None, Some(one)) => vec![Tracked::new(1, one)],
            (None, Some(two), _) => vec![Tracked::new(2, two)],
            (None, None, None) => Vec::new(),
        };
        self.follow(task_id, conversions)
    }

    fn follow(&self, task_id: String, conversions: Vec<Tracked>) -> Job {
        let source = ByIdPolls {
            client: self.clone(),
            task_id: task_id.clone(),
            conversions,
        };
        let job_id = task_id.clone();
        Job::new(
            PROVIDER,
            task_id.clone(),
            self.calls.redactor.clone(),
            Box::new(move |poll_interval| poll::follow(PROVIDER, job_id, source, poll_interval)),
        )
        .resumable(ResumeWith::TaskId(task_id))
    }
}

/// MusicGPT's status: `/byId` for each conversion of the task (two versions)
/// until every one is `COMPLETED` with its audio URL.
struct ByIdPolls {
    client: MusicGpt,
    task_id: String,
    conversions: Vec<Tracked>,
}

impl StatusSource for ByIdPolls {
    fn poll(&mut self) -> PollFuture<'_> {
        Box::pin(async move {
            if self.conversions.is_empty() {
                // Only a task id: follow the task's first conversion.
                let conversion = self.client.task(&self.task_id).await?;
                let id = conversion.conversion_id.clone().unwrap_or_default();
                self.conversions.push(Tracked::new(1, &id));
            }
            let mut status = Status::default();
            for tracked in self.conversions.iter_mut().filter(|t| !t.done) {
                let conversion = self.client.conversion(&tracked.id).await?;
                let state = conversion.status.clone().unwrap_or_default();
                status.stages.push((Some(tracked.version), state.clone()));
                match state.as_str() {
                    "COMPLETED" => {
                        // Completed but no URL yet: poll again.
                        if let Some(url) = conversion.audio_url.clone() {
                            tracked.done = true;
                            status.outputs.push(Output {
                                title: conversion.title.clone(),
                                lyrics: conversion.lyrics.clone(),
                                ..Output::new(url, Some(tracked.version))
                            });
                        }
                    }
                    "ERROR" | "FAILED" => {
                        // The job is the task (as on success); the message
                        // names the conversion that failed.
                        let reason = conversion
                            .status_msg
                            .clone()
                            .unwrap_or_else(|| format!("ended {state}"));
                        status.state = State::Failed(format!(
                            "conversion {} (version {}): {reason}",
                            tracked.id, tracked.version
                        ));
                        return Ok(status);
                    }
                    _ => {}
                }
            }
            if self.conversions.iter().all(|t| t.done) {
                status.state = State::Done;
            }
            Ok(status)
        })
    }
}

#[derive(Clone, Copy)]
enum Lookup<'a> {
    Conversion(&'a str),
    Task(&'a str),
}

/// One conversion being followed.
struct Tracked {
    version: u32,
    id: String,
    done: bool,
}

impl Tracked {
    fn new(version: u32, id: &str) -> Self {
        Self {
            version,
            id: id.to_owned(),
            done: false,
        }
    }
}
