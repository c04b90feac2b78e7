//! SoundPiece: remix jobs with idempotency keys, long-polled to completion.
//!
//! [`SoundPiece::submit_remix`] validates the request, then `PUT`s it with an
//! idempotency key: yours, or one UUID v4 generated per call and reused on
//! every retry, so that a reply lost in transit never creates a second job.
//! The returned [`Job`] long-polls `GET ?id=...&wait=true` until the
//! operation is `ready` or `failed`.

/// The generated client crate (`songbind-soundpiece`), for calls this module
/// does not wrap: `api::Client`, `api::types`.
pub use songbind_soundpiece as api;
/// The spec's limits and production base URL.
pub use songbind_soundpiece::{DEFAULT_BASE_URL, limits};
/// The type of an idempotency key ([`RemixRequest::idempotency_key`]).
pub use uuid::Uuid;

/// SoundPiece's signed callbacks (Standard Webhooks): verify, then decode;
/// everything a receiver needs, named without the provider prefix.
pub mod webhook {
    /// The key [`Verifier::new`] takes (your `whsec_...` secret).
    pub use crate::Secret;
    /// A redelivered event's id, remembered in bounded memory.
    pub use crate::webhook::SeenWebhookIds;
    /// Why a delivery was refused or could not be read.
    pub use crate::webhook::WebhookError;
    /// The JSON Schema of a callback's body.
    #[cfg(feature = "schemars")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
    pub use crate::webhook::soundpiece::payload_schema;
    pub use crate::webhook::soundpiece::{
        DEFAULT_TOLERANCE, SoundPieceDelivery as Delivery, SoundPieceWebhookEvent as Event,
        SoundPieceWebhookVerifier as Verifier, VerifiedWebhook as Verified,
    };
    /// The operation an event reports (its id, status, outputs, error).
    pub use songbind_soundpiece::types::RemixSong;
}

use songbind_soundpiece::types;

use crate::error::{Error, ProviderName, Result, ResumeWith};
use crate::job::{Job, Output};
use crate::poll::{self, PollFuture, State, Status, StatusSource};
use crate::retry::{Calls, Repeatable};
use crate::validate::{self, UrlRule};

const PROVIDER: ProviderName = ProviderName::SoundPiece;

/// A remix request: the source audio, new lyrics and a style prompt:
/// `new(source_url, lyrics, prompt)`, then a setter per field, to build a
/// request or edit one by value.
#[derive(Clone, Debug, PartialEq)]
pub struct RemixRequest {
    /// Public URL of the track to remix.
    pub source_url: String,
    /// Song lyrics (1 to 3000 characters), e.g. built with [`crate::lyrics::Lyrics`].
    pub lyrics: String,
    /// Comma-separated style tags (1 to 1024 characters).
    pub prompt: String,
    /// How many variations to produce (1 to 3).
    pub n_variations: u8,
    /// Your idempotency key; one is generated per call when `None`.
    pub idempotency_key: Option<Uuid>,
    /// HTTPS URL SoundPiece POSTs the final result to (http for loopback hosts).
    pub callback_url: Option<String>,
}

impl RemixRequest {
    /// A request for one variation, with a generated idempotency key and no callback.
    pub fn new(
        source_url: impl Into<String>,
        lyrics: impl Into<String>,
        prompt: impl Into<String>,
    ) -> Self {
        Self {
            source_url: source_url.into(),
            lyrics: lyrics.into(),
            prompt: prompt.into(),
            n_variations: 1,
            idempotency_key: None,
            callback_url: None,
        }
    }

    /// Sets the public URL of the track to remix (required: replaces the
    /// one `new` was given).
    pub fn source_url(mut self, url: impl Into<String>) -> Self {
        self.source_url = url.into();
        self
    }

    /// Sets the lyrics (required: replaces the ones `new` was given).
    pub fn lyrics(mut self, lyrics: impl Into<String>) -> Self {
        self.lyrics = lyrics.into();
        self
    }

    /// Sets the style tags (required: replaces the prompt `new` was given).
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = prompt.into();
        self
    }

    /// Sets how many variations to make (`limits::CREATE_REMIX_SONG_REQUEST_N_VARIATIONS`).
    pub fn variations(mut self, n_variations: u8) -> Self {
        self.n_variations = n_variations;
        self
    }

    /// Sets your own idempotency key (to follow an operation an earlier run
    /// created, send the same request with its key).
    pub fn idempotency_key(mut self, key: Uuid) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// Sets the HTTPS URL SoundPiece POSTs the signed result to.
    pub fn callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }

    /// Checks every limit of the spec (`limits::CREATE_REMIX_SONG_REQUEST_*`)
    /// and the rules it cannot state (absolute URLs, https callbacks, text
    /// that is not only whitespace), naming the field and the limit.
    pub fn validate(&self) -> Result<()> {
        validate::url("source_url", &self.source_url, UrlRule::HttpOrHttps)?;
        validate::not_blank("lyrics", &self.lyrics)?;
        validate::limit(&limits::CREATE_REMIX_SONG_REQUEST_LYRICS, &self.lyrics)?;
        validate::not_blank("prompt", &self.prompt)?;
        validate::limit(&limits::CREATE_REMIX_SONG_REQUEST_PROMPT, &self.prompt)?;
        validate::limit_number(
            &limits::CREATE_REMIX_SONG_REQUEST_N_VARIATIONS,
            i64::from(self.n_variations),
        )?;
        if let Some(url) = &self.callback_url {
            validate::limit(&limits::CREATE_REMIX_SONG_REQUEST_CALLBACK_URL, url)?;
            validate::url("callback_url", url, UrlRule::HttpsOrLoopback)?;
        }
        Ok(())
    }

    fn to_wire(&self, key: Uuid) -> Result<types::CreateRemixSongRequest> {
        let mut body = types::CreateRemixSongRequest::builder()
            .idempotency_key(key)
            .source(types::AudioSource::builder().url(self.source_url.clone()))
            .lyrics(self.lyrics.clone())
            .prompt(self.prompt.clone())
            .n_variations(
                std::num::NonZeroU64::new(u64::from(self.n_variations))
                    .ok_or_else(|| Error::validation("n_variations", "must not be 0"))?,
            );
        if let Some(url) = &self.callback_url {
            body = body.callback_url(Some(
                url.clone()
                    .try_into()
                    .map_err(|e| Error::validation("callback_url", format!("{e}")))?,
            ));
        }
        body.try_into()
            .map_err(|e: types::error::ConversionError| Error::validation("request", e.to_string()))
    }
}

/// A SoundPiece client with retries.
#[derive(Clone, Debug)]
pub struct SoundPiece {
    client: songbind_soundpiece::Client,
    calls: Calls,
}

crate::client::provider_client!(SoundPiece, songbind_soundpiece, PROVIDER);

impl SoundPiece {
    /// Submits a remix. Retries (408, 429, 5xx, lost connections) reuse one
    /// idempotency key, so at most one operation is created. Once the `PUT`
    /// may have been taken, every error names that key
    /// ([`Error::resume_with`] is [`ResumeWith::IdempotencyKey`]): sending
    /// the same request with it again answers the operation if it exists.
    /// It names nothing when no attempt was taken: a request refused before
    /// sending, 429s and 503s, connections that never opened. A 409 (the
    /// key was used with another body) is [`Error::IdempotencyConflict`] and
    /// is not retried.
    pub async fn submit_remix(&self, request: &RemixRequest) -> Result<Job> {
        request.validate()?;
        let key = request
            .idempotency_key
            .or(self.calls.options.idempotency_key)
            .unwrap_or_else(Uuid::new_v4);
        let body = request.to_wire(key)?;
        let answers = crate::Answers::scrubbed_by(&self.calls.redactor);
        // Boxed, like Soundverse's submit: the create and its retries make a
        // future of about 24 KB that the caller's task would otherwise carry
        // for the job's whole life (the scale bench, issue 12).
        let created = Box::pin(answers.scope(self.calls.generated_create(
            "create_remix_song",
            Repeatable::Safe,
            ResumeWith::IdempotencyKey(key),
            || self.client.create_remix_song().body(body.clone()).send(),
        )))
        .await?;
        Ok(self
            .job(created.remix_song)
            .with_idempotency_key(key)
            .with_answers(answers))
    }

    /// Reads an operation; with `wait`, long-polls (about 20 s) until it is
    /// ready or failed.
    pub async fn get(&self, id: &str, wait: bool) -> Result<types::RemixSong> {
        // Only an empty id, `.` or `..` is refused: an id the provider
        // returned is never second-guessed (the spec keeps the documented
        // format as a description).
        validate::id("id", id)?;
        let id: types::GetRemixSongId = id
            .parse()
            .map_err(|e: types::error::ConversionError| Error::validation("id", e.to_string()))?;
        let found = self
            .calls
            .generated("get_remix_song", Repeatable::Safe, || {
                self.client
                    .get_remix_song()
                    .id(id.clone())
                    .wait(wait)
                    .send()
            })
            .await?;
        Ok(found.remix_song)
    }

    /// A [`Job`] following an operation you already know (for example one
    /// created by an earlier run).
    pub async fn resume(&self, id: &str) -> Result<Job> {
        let song = self.get(id, false).await?;
        Ok(self.job(song))
    }

    fn job(&self, first: types::RemixSong) -> Job {
        let id = first.id.clone();
        let source = LongPoll {
            client: self.clone(),
            id: id.clone(),
            first: Some(first),
        };
        let job_id = id.clone();
        Job::new(
            PROVIDER,
            id.clone(),
            self.calls.redactor.clone(),
            Box::new(move |poll_interval| poll::follow(PROVIDER, job_id, source, poll_interval)),
        )
        .resumable(ResumeWith::OperationId(id))
    }
}

/// SoundPiece's status: the `PUT`'s own answer first, then long-polls
/// (`GET ?wait=true`), which answer early when the operation ends.
struct LongPoll {
    client: SoundPiece,
    id: String,
    first: Option<types::RemixSong>,
}

impl StatusSource for LongPoll {
    fn poll(&mut self) -> PollFuture<'_> {
        Box::pin(async move {
            let song = match self.first.take() {
                Some(song) => song,
                None => self.client.get(&self.id, true).await?,
            };
            let mut status = Status {
                stages: song.status.iter().map(|s| (None, s.clone())).collect(),
                ..Status::default()
            };
            match song.status.as_deref() {
                Some("ready") => {
                    status.outputs = outputs_of(&song);
                    status.state = State::Done;
                }
                Some("failed") => {
                    let message = song
                        .error
                        .as_ref()
                        .and_then(|e| e.message.clone())
                        .unwrap_or_else(|| "the operation failed without a message".to_owned());
                    status.state = State::Failed(message);
                }
                _ => {}
            }
            Ok(status)
        })
    }
}

fn outputs_of(song: &types::RemixSong) -> Vec<Output> {
    song.outputs
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, output)| Output {
            duration_secs: output.duration,
            expires_at: output.expires_at.map(|t| t.to_rfc3339()),
            ..Output::new(output.url.clone(), Some(index as u32 + 1))
        })
        .collect()
}
