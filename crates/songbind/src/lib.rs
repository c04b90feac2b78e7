//! songbind: typed, reliable clients for AI music-generation APIs.
//!
//! The generated crates (`songbind-soundverse`, `songbind-soundpiece`,
//! `songbind-musicgpt`) speak each provider's HTTP API one call at a time.
//! This crate adds what a generator cannot: typed server-sent event streams
//! ([`sse`]), one way to wait for a job across providers ([`Job`]), retries
//! that never create a second job ([`retry`]), idempotency, webhook
//! verification ([`webhook`]), streamed uploads and downloads
//! ([`Downloader`]), validation before any request is sent ([`validate`]),
//! lyrics ([`lyrics`]) and secrets that never leak ([`Secret`]). Every
//! failure is one [`Error`] with cases a caller can match on.
//!
//! # One way to wait, for every provider
//!
//! Each provider module has a client whose `submit_*` calls return a
//! [`Job`]. [`Job::wait`] returns the final [`JobOutput`] (URLs, titles,
//! durations where known); [`Job::events`] streams [`JobEvent`]s (stages,
//! progress, stream URLs, each output) on the way. [`WaitOptions`] sets the
//! poll interval, an overall timeout and a cancellation token. How the
//! events are obtained differs, and is the crate's business:
//!
//! | provider | submit | follow |
//! |---|---|---|
//! | Soundverse | `POST` with an SSE answer | the SSE stream, both versions |
//! | SoundPiece | idempotent `PUT` | long-poll `GET ?wait=true` |
//! | MusicGPT | multipart `POST /Remix` | `/byId` for both conversions |
//!
//! The examples below run offline against the bundled emulator
//! (`songbind-emulator`); with a real key, pass the provider's
//! `DEFAULT_BASE_URL` instead. `cargo run -p songbind --example jobs` runs
//! all three.
//!
//! ## Soundverse
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use songbind::soundverse::{GenerateRequest, Soundverse};
//! use songbind::{Secret, WaitOptions};
//! # let emulator = songbind_emulator::Emulator::start_for_tests().await?;
//! # let base_url = emulator.base_url(songbind_emulator::Provider::Soundverse);
//!
//! let soundverse = Soundverse::new(&base_url, &Secret::from("your_api_key"))?;
//! let job = soundverse
//!     .submit_generate(&GenerateRequest::new("A cheerful pop song about friendship"))
//!     .await?;
//! let song = job.wait(&WaitOptions::default()).await?;
//! assert_eq!(song.outputs.len(), 2); // Soundverse makes two versions
//! for output in &song.outputs {
//!     println!("v{:?}: {} ({:?})", output.version, output.url, output.title);
//! }
//! # Ok(()) }
//! ```
//!
//! ## SoundPiece
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use songbind::soundpiece::{RemixRequest, SoundPiece};
//! use songbind::{Secret, WaitOptions};
//! # let emulator = songbind_emulator::Emulator::start_for_tests().await?;
//! # let base_url = emulator.base_url(songbind_emulator::Provider::SoundPiece);
//!
//! let soundpiece = SoundPiece::new(&base_url, &Secret::from("spk_your_key"))?;
//! // No idempotency key given: one is generated and reused on every retry.
//! let request = RemixRequest::new(
//!     "https://example.com/source.mp3",
//!     "[Verse]\nThis is a demo song",
//!     "rock song, energetic, male vocal",
//! );
//! let job = soundpiece.submit_remix(&request).await?;
//! let remix = job
//!     .wait(&WaitOptions::default().timeout(Duration::from_secs(600)))
//!     .await?;
//! println!("{} -> {}", remix.id, remix.outputs[0].url);
//! # Ok(()) }
//! ```
//!
//! ## MusicGPT
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use songbind::musicgpt::{AudioInput, MusicGpt, RemixRequest};
//! use songbind::{Secret, WaitOptions};
//! # let emulator = songbind_emulator::Emulator::start_for_tests().await?;
//! # let base_url = emulator.base_url(songbind_emulator::Provider::MusicGpt);
//!
//! let musicgpt = MusicGpt::new(&base_url, &Secret::from("your_api_key"))?;
//! let request = RemixRequest::new(
//!     AudioInput::Url("https://www.youtube.com/watch?v=example123".into()),
//!     "Create an upbeat pop remix",
//! );
//! let job = musicgpt.submit_remix(&request).await?;
//! let remix = job
//!     .wait(&WaitOptions::default().poll_interval(Duration::from_millis(10)))
//!     .await?;
//! assert_eq!(remix.outputs.len(), 2); // one per conversion
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! Every case of [`Error`] is matched as it is, wherever it happened,
//! before a create or after it; once the job may exist,
//! [`Error::resume_with`] names what finds it again.
//!
//! ```
//! # async fn demo(job: songbind::Job) {
//! use songbind::{Error, WaitOptions};
//!
//! match job.wait(&WaitOptions::default()).await {
//!     Ok(song) => println!("{} outputs", song.outputs.len()),
//!     Err(Error::RateLimited { retry_after, .. }) => println!("slow down: {retry_after:?}"),
//!     Err(Error::InsufficientCredits { message, .. }) => println!("top up: {message}"),
//!     Err(error @ Error::Timeout { .. }) => match error.resume_with() {
//!         Some(resume) => println!("still running: resume with {resume}"),
//!         None => println!("{error}"),
//!     },
//!     Err(other) => println!("{other}"),
//! }
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The crate's README (its headline example) runs as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub mod answers;
mod audio;
#[cfg(feature = "beatoven")]
#[cfg_attr(docsrs, doc(cfg(feature = "beatoven")))]
pub mod beatoven;
#[cfg(feature = "_provider")]
mod client;
pub mod download;
#[cfg(feature = "elevenlabs")]
#[cfg_attr(docsrs, doc(cfg(feature = "elevenlabs")))]
pub mod elevenlabs;
pub mod error;
pub mod files;
pub mod job;
pub mod lyrics;
#[cfg(feature = "elevenlabs")]
mod multipart;
#[cfg(feature = "musicgpt")]
#[cfg_attr(docsrs, doc(cfg(feature = "musicgpt")))]
pub mod musicgpt;
#[cfg(feature = "_polled")]
mod poll;
mod redact;
pub mod retry;
pub mod secret;
#[cfg(feature = "soundpiece")]
#[cfg_attr(docsrs, doc(cfg(feature = "soundpiece")))]
pub mod soundpiece;
#[cfg(feature = "soundverse")]
#[cfg_attr(docsrs, doc(cfg(feature = "soundverse")))]
pub mod soundverse;
#[cfg(feature = "soundverse")]
#[cfg_attr(docsrs, doc(cfg(feature = "soundverse")))]
pub mod sse;
#[cfg(feature = "musicgpt")]
mod upload;
pub mod validate;
pub mod webhook;

pub use answers::{AnswerMeta, Answers};
pub use download::Downloader;
pub use error::{Answer, Error, FieldIssue, ProviderName, Result, ResumeWith, Suggestion};
pub use job::{Job, JobEvent, JobOutput, Output, OutputKind, Stage, WaitOptions};
pub use retry::{Repeatable, RequestOptions, RetryPolicy};
pub use secret::Secret;
pub use songbind_transport::{BuildError, DEFAULT_ANSWER_LIMIT, HttpOptions};
/// The `uuid` type of an idempotency key ([`RequestOptions::idempotency_key`],
/// [`ResumeWith::IdempotencyKey`], [`Job::idempotency_key`]), so that no
/// direct `uuid` dependency is needed to name one.
pub use uuid::Uuid;

/// The `schemars` this crate derives with, so that `schema_for!` and the
/// [`schemars::JsonSchema`] bound match the generated types' version.
#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub use schemars;
