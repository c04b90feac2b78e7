//! One run of the command, in the order that keeps refusals free:
//!
//! 1. build the `songbind` request from the flags and `validate()` it
//!    (a refusal names the flag and exits 2, before anything is sent);
//! 2. resolve the base URL and key (or start the `--mock` emulator) and
//!    build the client; create the download directory (`--output-dir`,
//!    or `./songbind-output` under `--mock`);
//! 3. submit and follow the job's events with progress bars, under
//!    `--timeout` and Ctrl-C;
//! 4. download the outputs (into that directory) and print the result.
//!
//! ElevenLabs, whose answer is the song itself rather than a job, runs in
//! [`elevenlabs`](crate::elevenlabs) in the same order, with the same
//! [`bounded`] wait and the same refusals.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use songbind::musicgpt::{self, AudioInput, MusicGpt};
use songbind::soundpiece::{self, SoundPiece};
use songbind::soundverse::{self, Soundverse};
use songbind::{Error, Job, JobEvent, JobOutput, Output, ProviderName, WaitOptions};
use uuid::Uuid;

use crate::args::{
    Cli, GlobalArgs, MusicGptOperation, ProviderCommand, SoundPieceOperation, SoundverseOperation,
};
use crate::downloads;
use crate::elevenlabs;
use crate::endpoint::{self, Endpoint};
use crate::failure::{Failure, describe};
use crate::output::{JobState, Looked, Report, StatusReport, printable};
use crate::progress::JobProgress;

/// Pause between polls when `--poll-interval` is not given.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The same under `--mock`, where jobs take seconds.
const MOCK_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Runs the command line to the end.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let mut interrupt = Interrupt::listen();
    let Cli { global, command } = cli;
    let request = match Command::from(command)? {
        Command::ElevenLabs(operation) => {
            return elevenlabs::run(operation, &global, &mut interrupt).await;
        }
        Command::Existing(lookup, provider, id) => {
            return existing(lookup, provider, id, &global, &mut interrupt).await;
        }
        Command::Webhooks(command) => {
            return crate::webhooks::run(command, &global, &mut interrupt).await;
        }
        Command::WebhookSchema(provider) => return crate::webhooks::print_schema(provider),
        Command::Create(request) => request,
    };
    request.validate().map_err(runtime_failure)?;
    let provider = request.provider();
    let endpoint = endpoint::resolve(provider, &global).await?;
    let call = request.connect(&endpoint)?;
    prepare_downloads(&global).await?;

    let title = format!("{provider} {}", call.operation());
    let mut progress = JobProgress::new(&title, call.expected_versions());
    announce_mock(&progress, provider, &endpoint);
    let options = wait_options(&global, &endpoint);
    let operation = call.operation();
    let idempotency_key = call.idempotency_key();

    let mut job_id: Option<String> = None;
    let ending = {
        let work = call.execute(&options, &mut progress, &mut job_id);
        bounded(work, global.timeout, &mut interrupt).await
    };
    match ending {
        Ok(finished) => {
            conclude(
                finished,
                operation,
                idempotency_key,
                &global,
                &mut progress,
                endpoint,
            )
            .await
        }
        Err(ending) => {
            progress.failed();
            if matches!(ending, Ending::Failed(_)) {
                // A failed job is called back too (`remix_song.failed`).
                flush_mock_deliveries(&endpoint).await;
            }
            let sent = Sent {
                provider,
                title,
                job_id,
                idempotency_key,
            };
            Err(failure_of(ending, &sent))
        }
    }
}

/// What the command line asks for.
enum Command {
    /// An ElevenLabs operation (no job to follow).
    ElevenLabs(crate::args::ElevenLabsOperation),
    /// A create: a job to submit and follow.
    Create(Request),
    /// `status` or `wait` for a job that exists, by its id.
    Existing(Lookup, ProviderName, String),
    /// `webhooks listen` or `webhooks verify`.
    Webhooks(crate::args::WebhooksCommand),
    /// `<provider> webhook-schema`.
    WebhookSchema(crate::args::WebhookProvider),
}

impl Command {
    /// Sorts the parsed command line; a MusicGPT `--audio-file` must be
    /// readable.
    fn from(command: ProviderCommand) -> Result<Self, Failure> {
        use ProviderName::{MusicGpt as Mg, SoundPiece as Sp, Soundverse as Sv};
        Ok(match command {
            ProviderCommand::ElevenLabs { operation } => Command::ElevenLabs(operation),
            ProviderCommand::Webhooks { command } => Command::Webhooks(command),
            ProviderCommand::Soundverse { operation } => match operation {
                SoundverseOperation::Status(args) => Command::Existing(Lookup::Status, Sv, args.id),
                SoundverseOperation::Wait(args) => Command::Existing(Lookup::Wait, Sv, args.id),
                SoundverseOperation::Generate(args) => Command::Create(Request::Generate(
                    soundverse::GenerateRequest {
                        lyrics: args.lyrics,
                        ..soundverse::GenerateRequest::new(args.prompt)
                    },
                    args.sync,
                )),
                SoundverseOperation::Extend(args) => Command::Create(Request::Extend(
                    soundverse::ExtendRequest {
                        audio_url: args.audio_url,
                        lyrics: args.lyrics,
                        extend_at_ms: args.extend_at,
                        prompt: args.prompt,
                    },
                    args.sync,
                )),
                SoundverseOperation::Remix(args) => {
                    Command::Create(Request::SoundverseRemix(soundverse::RemixRequest {
                        song_reference_url: args.song_reference_url,
                        prompt: args.prompt,
                        lyrics: args.lyrics,
                        ..soundverse::RemixRequest::default()
                    }))
                }
            },
            ProviderCommand::SoundPiece { operation } => match operation {
                SoundPieceOperation::Remix(args) => Command::Create(Request::soundpiece(args)),
                SoundPieceOperation::Status(args) => Command::Existing(Lookup::Status, Sp, args.id),
                SoundPieceOperation::Wait(args) => Command::Existing(Lookup::Wait, Sp, args.id),
                SoundPieceOperation::WebhookSchema => {
                    Command::WebhookSchema(crate::args::WebhookProvider::SoundPiece)
                }
            },
            ProviderCommand::MusicGpt { operation } => match operation {
                MusicGptOperation::Remix(args) => Command::Create(Request::musicgpt(args)?),
                MusicGptOperation::Status(args) => Command::Existing(Lookup::Status, Mg, args.id),
                MusicGptOperation::Wait(args) => Command::Existing(Lookup::Wait, Mg, args.id),
                MusicGptOperation::WebhookSchema => {
                    Command::WebhookSchema(crate::args::WebhookProvider::MusicGpt)
                }
            },
        })
    }
}

/// Creates the directory the outputs will be downloaded into, if any,
/// before anything is sent.
async fn prepare_downloads(global: &GlobalArgs) -> Result<(), Failure> {
    let Some(dir) = global.download_dir() else {
        return Ok(());
    };
    let named = if global.output_dir.is_some() {
        "--output-dir"
    } else {
        "--mock's download directory (--no-download: none)"
    };
    downloads::prepare(&dir, named).await
}

/// The provider is an emulator in this process under `--mock`: say so.
fn announce_mock(progress: &JobProgress, provider: ProviderName, endpoint: &Endpoint) {
    if endpoint.emulator.is_some() {
        progress.log(&format!(
            "--mock: using the built-in {provider} emulator at {}",
            endpoint.base_url
        ));
    }
}

/// How to follow a job: `--poll-interval`, or the default for the endpoint.
fn wait_options(global: &GlobalArgs, endpoint: &Endpoint) -> WaitOptions {
    let default_interval = if endpoint.emulator.is_some() {
        MOCK_POLL_INTERVAL
    } else {
        DEFAULT_POLL_INTERVAL
    };
    WaitOptions::default().poll_interval(global.poll_interval.unwrap_or(default_interval))
}

/// The end of a job followed to completion (a create or `wait`): the bars
/// finish, the outputs are downloaded (`--output-dir`, or `--mock`'s
/// default) and the result is
/// printed.
async fn conclude(
    finished: Finished,
    operation: &'static str,
    idempotency_key: Option<String>,
    global: &GlobalArgs,
    progress: &mut JobProgress,
    endpoint: Endpoint,
) -> Result<(), Failure> {
    progress.finished(&finished.output.outputs);
    let mut report = Report::new(operation, finished.output, &finished.stream_urls);
    report.idempotency_key = idempotency_key;
    let downloaded = match &global.download_dir() {
        Some(dir) => downloads::download_all(dir, &mut report, progress, global.force).await,
        None => Ok(()),
    };
    // The result is printed even when a download failed: the job is paid for.
    report
        .print(global.json)
        .map_err(|e| Failure::Runtime(format!("cannot write the result to stdout: {e}")))?;
    // Under --mock the emulator served the downloads, and may still be
    // calling --callback-url / --webhook-url: it stops only now.
    flush_mock_deliveries(&endpoint).await;
    drop(endpoint);
    downloaded
}

/// How long a `--mock` run waits, before it exits, for the emulator's
/// webhook deliveries still in flight.
const MOCK_DELIVERY_GRACE: Duration = Duration::from_secs(5);

/// Under `--mock`, lets the in-process emulator finish the webhook
/// deliveries it started (to `--callback-url` or `--webhook-url`, retries
/// included) before the command exits and the emulator with it: at most
/// [`MOCK_DELIVERY_GRACE`]; what is left then is dropped, and stderr says so.
async fn flush_mock_deliveries(endpoint: &Endpoint) {
    let Some(emulator) = &endpoint.emulator else {
        return;
    };
    if emulator
        .flush_deliveries(MOCK_DELIVERY_GRACE)
        .await
        .is_err()
    {
        let pending = emulator.deliveries_pending();
        let _ = writeln!(
            std::io::stderr(),
            "--mock: {pending} webhook deliver{} still not answered after {} s: dropped",
            if pending == 1 { "y" } else { "ies" },
            MOCK_DELIVERY_GRACE.as_secs()
        );
    }
}

/// What to do with a job that already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lookup {
    /// `status`: one lookup, printed.
    Status,
    /// `wait`: follow the job to its end, as a create does.
    Wait,
}

impl Lookup {
    /// The operation's name on the command line.
    fn operation(self) -> &'static str {
        match self {
            Lookup::Status => "status",
            Lookup::Wait => "wait",
        }
    }
}

/// What the provider calls the id `status` and `wait` take, as the usage
/// line names it.
fn id_name(provider: ProviderName) -> &'static str {
    match provider {
        ProviderName::Soundverse => "<MESSAGE_ID>",
        ProviderName::SoundPiece => "<OPERATION_ID>",
        _ => "<TASK_ID>",
    }
}

/// `songbind <provider> status|wait <id>`.
async fn existing(
    lookup: Lookup,
    provider: ProviderName,
    id: String,
    global: &GlobalArgs,
    interrupt: &mut Interrupt,
) -> Result<(), Failure> {
    if id.trim().is_empty() {
        return Err(Failure::invalid(id_name(provider), "must not be empty"));
    }
    let endpoint = endpoint::resolve(provider, global).await?;
    let client = Client::connect(provider, &endpoint)?;
    prepare_downloads(global).await?;
    let operation = lookup.operation();
    let title = format!("{provider} {operation}");
    let mut progress = JobProgress::new(&title, client.expected_versions(lookup));
    announce_mock(&progress, provider, &endpoint);

    if lookup == Lookup::Status {
        progress.started(&id);
        let looked = bounded(
            async { Ok(client.status(&id).await?) },
            global.timeout,
            interrupt,
        )
        .await;
        let looked = match looked {
            Ok(looked) => looked,
            Err(ending) => {
                progress.failed();
                let waiting_for = format!("{title} of {}", printable(&id));
                return Err(lookup_failure(ending, waiting_for));
            }
        };
        progress.done(looked.state.as_str());
        let mut report = StatusReport::new(looked);
        let downloaded = match &global.download_dir() {
            Some(dir) if !report.report.outputs.is_empty() => {
                downloads::download_all(dir, &mut report.report, &progress, global.force).await
            }
            _ => Ok(()),
        };
        report
            .print(global.json)
            .map_err(|e| Failure::Runtime(format!("cannot write the result to stdout: {e}")))?;
        drop(endpoint);
        return downloaded;
    }

    let options = wait_options(global, &endpoint);
    let mut job_id = Some(id.clone());
    let ending = {
        let work = async {
            progress.started(&id);
            let job = client.resume(&id).await?;
            follow(job, &options, &mut progress, &mut job_id).await
        };
        bounded(work, global.timeout, interrupt).await
    };
    match ending {
        Ok(finished) => conclude(finished, operation, None, global, &mut progress, endpoint).await,
        Err(Ending::Failed(error)) => {
            // The job failed, or the lookup was refused (an unknown id):
            // running the same `wait` again would not help.
            progress.failed();
            Err(failure_naming_no_job(error))
        }
        Err(ending) => {
            progress.failed();
            let sent = Sent {
                provider,
                title,
                job_id,
                idempotency_key: None,
            };
            Err(failure_of(ending, &sent))
        }
    }
}

/// The failure of a `status` lookup: what went wrong, with no resume hint
/// (the lookup itself is what would be run again).
fn lookup_failure(ending: Ending, waiting_for: String) -> Failure {
    match ending {
        Ending::Failed(error) => runtime_failure(error),
        Ending::TimedOut(after) => Failure::Runtime(describe(&Error::Timeout {
            after,
            waiting_for,
            resume: None,
        })),
        Ending::Interrupted => Failure::Interrupted(describe(&Error::Cancelled {
            waiting_for,
            resume: None,
        })),
    }
}

/// A client for a provider whose jobs can be looked up and followed by id.
enum Client {
    /// By message id.
    Soundverse(Soundverse),
    /// By operation id.
    SoundPiece(SoundPiece),
    /// By task id.
    MusicGpt(MusicGpt),
}

impl Client {
    /// The provider's client; a base URL or key it cannot use is refused
    /// here, before anything is sent.
    fn connect(provider: ProviderName, endpoint: &Endpoint) -> Result<Self, Failure> {
        let refused = |error: Error| refused(endpoint, error);
        let (url, key) = (&endpoint.base_url, &endpoint.api_key);
        Ok(match provider {
            ProviderName::Soundverse => {
                Client::Soundverse(Soundverse::new(url, key).map_err(refused)?)
            }
            ProviderName::SoundPiece => {
                Client::SoundPiece(SoundPiece::new(url, key).map_err(refused)?)
            }
            ProviderName::MusicGpt => Client::MusicGpt(MusicGpt::new(url, key).map_err(refused)?),
            other => {
                return Err(Failure::Usage(format!(
                    "{other} answers at once: it has no job to look up"
                )));
            }
        })
    }

    /// How many bars to draw before the first event.
    fn expected_versions(&self, lookup: Lookup) -> u32 {
        match (lookup, self) {
            (Lookup::Status, _) => 0,
            (Lookup::Wait, Client::Soundverse(_)) => 2,
            // One variation at least; more get their bar when they arrive.
            // A MusicGPT task id names its first conversion.
            (Lookup::Wait, _) => 1,
        }
    }

    /// The job named `id`, to follow.
    async fn resume(&self, id: &str) -> songbind::Result<Job> {
        match self {
            Client::Soundverse(client) => client.resume(id),
            Client::SoundPiece(client) => client.resume(id).await,
            Client::MusicGpt(client) => client.resume(id),
        }
    }

    /// One lookup of the job named `id`.
    async fn status(&self, id: &str) -> songbind::Result<Looked> {
        match self {
            Client::Soundverse(client) => {
                let now = client.generation(id).await?;
                let stage = now.status.clone();
                let mut stream_urls = BTreeMap::new();
                let mut outputs = Vec::new();
                for (index, version) in now.versions.iter().enumerate() {
                    let number = version.version.unwrap_or(index as u32 + 1);
                    if let Some(url) = &version.stream_url {
                        stream_urls.insert(number, url.clone());
                    }
                    if let Some(url) = &version.audio_url {
                        outputs.push(Output {
                            title: now.song_name.clone(),
                            album_art: now.album_art.clone(),
                            ..Output::new(url.clone(), Some(number))
                        });
                    }
                }
                let state = match (stage.as_deref(), now.is_complete) {
                    (Some("failed"), _) => JobState::Failed,
                    (_, Some(true)) | (Some("completed"), None) if !outputs.is_empty() => {
                        JobState::Completed
                    }
                    _ => JobState::Running,
                };
                Ok(Looked {
                    provider: ProviderName::Soundverse,
                    id: now.message_id.clone().unwrap_or_else(|| id.to_owned()),
                    stage,
                    state,
                    progress: now.progress,
                    error: now.error.clone(),
                    outputs,
                    stream_urls,
                })
            }
            Client::SoundPiece(client) => {
                let song = client.get(id, false).await?;
                let outputs = song
                    .outputs
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(|(index, output)| Output {
                        duration_secs: output.duration,
                        expires_at: output.expires_at.map(|t| t.to_rfc3339()),
                        ..Output::new(output.url.clone(), Some(index as u32 + 1))
                    })
                    .collect();
                let state = match song.status.as_deref() {
                    Some("ready") => JobState::Completed,
                    Some("failed") => JobState::Failed,
                    _ => JobState::Running,
                };
                Ok(Looked {
                    provider: ProviderName::SoundPiece,
                    id: song.id.clone(),
                    stage: song.status.clone(),
                    state,
                    progress: None,
                    error: song.error.as_ref().and_then(|e| e.message.clone()),
                    outputs,
                    stream_urls: BTreeMap::new(),
                })
            }
            Client::MusicGpt(client) => {
                let conversion = client.task(id).await?;
                let stage = conversion.status.clone();
                let (state, error) = match stage.as_deref() {
                    Some("COMPLETED") if conversion.audio_url.is_some() => {
                        (JobState::Completed, None)
                    }
                    Some("ERROR" | "FAILED") => (JobState::Failed, conversion.status_msg.clone()),
                    _ => (JobState::Running, None),
                };
                let outputs = conversion
                    .audio_url
                    .iter()
                    .map(|url| Output {
                        title: conversion.title.clone(),
                        lyrics: conversion.lyrics.clone(),
                        ..Output::new(url.clone(), Some(1))
                    })
                    .collect();
                Ok(Looked {
                    provider: ProviderName::MusicGpt,
                    id: id.to_owned(),
                    stage,
                    state,
                    progress: None,
                    error,
                    outputs,
                    stream_urls: BTreeMap::new(),
                })
            }
        }
    }
}

/// `work` under `--timeout` (when given) and Ctrl-C.
pub(crate) async fn bounded<T>(
    work: impl Future<Output = Result<T, Ending>>,
    timeout: Option<Duration>,
    interrupt: &mut Interrupt,
) -> Result<T, Ending> {
    let bounded = async {
        match timeout {
            Some(limit) => tokio::time::timeout(limit, work)
                .await
                .unwrap_or(Err(Ending::TimedOut(limit))),
            None => work.await,
        }
    };
    tokio::select! {
        result = bounded => result,
        () = interrupt.received() => Err(Ending::Interrupted),
    }
}

/// A create that was (or may have been) sent: what names it.
struct Sent {
    provider: ProviderName,
    /// `<provider> <operation>`.
    title: String,
    /// The job's id, once the provider named it.
    job_id: Option<String>,
    /// SoundPiece's idempotency key (the CLI always sends one).
    idempotency_key: Option<String>,
}

impl Sent {
    /// What the run was waiting for, for timeout and cancellation messages.
    fn waiting_for(&self) -> String {
        match &self.job_id {
            Some(id) => format!("{} job {id}", self.title),
            None => format!("the {} request", self.title),
        }
    }

    /// What to follow the job with: the exact `wait` command once the job
    /// has an id; before that, what the provider allows.
    fn resume_hint(&self) -> String {
        match (&self.job_id, self.provider, &self.idempotency_key) {
            (Some(id), ProviderName::SoundPiece, Some(key)) => format!(
                "the operation may still finish: follow it with `{}` (or run the same \
                 command with --idempotency-key {key})",
                wait_command(self.provider.slug(), id)
            ),
            (Some(id), provider, _) => format!(
                "the job may still finish: follow it with `{}`",
                wait_command(provider.slug(), id)
            ),
            (None, ProviderName::SoundPiece, Some(key)) => format!(
                "the operation may exist: run the same command with --idempotency-key {key} \
                 to follow it instead of starting another"
            ),
            (None, ProviderName::MusicGpt, _) => "the task may exist, but no task id was \
                 received: its webhook (--webhook-url) reports it"
                .to_owned(),
            (None, _, _) => "the song may exist, but no message id was received".to_owned(),
        }
    }
}

/// The command that follows `id` to its end: `songbind <provider> wait <id>`
/// (`provider` as the command line names it), the id quoted for a POSIX
/// shell when it holds anything but plain characters, after `--` when it
/// starts with `-`, so that it can be pasted as printed.
pub(crate) fn wait_command(provider: &str, id: &str) -> String {
    let plain = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:@%+=,/".contains(c));
    let word = if plain {
        id.to_owned()
    } else {
        format!("'{}'", id.replace('\'', "'\\''"))
    };
    // An id starting with `-` would read as a flag: `--` ends the flags.
    let end_of_flags = if id.starts_with('-') { "-- " } else { "" };
    format!("songbind {provider} wait {end_of_flags}{word}")
}

/// The failure to report for a job that did not finish. Once the create may
/// have been sent, the message names what to resume the job with.
fn failure_of(ending: Ending, sent: &Sent) -> Failure {
    let (failure, may_exist) = match ending {
        Ending::Failed(error) => {
            let may_exist = operation_may_exist(&error);
            (failure_naming_no_job(error), may_exist)
        }
        Ending::TimedOut(after) => {
            let error = Error::Timeout {
                after,
                waiting_for: sent.waiting_for(),
                resume: None,
            };
            (Failure::Runtime(describe(&error)), true)
        }
        Ending::Interrupted => {
            let error = Error::Cancelled {
                waiting_for: sent.waiting_for(),
                resume: None,
            };
            (Failure::Interrupted(describe(&error)), true)
        }
    };
    match failure {
        Failure::Runtime(message) if may_exist => {
            Failure::Runtime(format!("{message}; {}", sent.resume_hint()))
        }
        Failure::Interrupted(message) if may_exist => {
            Failure::Interrupted(format!("{message}; {}", sent.resume_hint()))
        }
        failure => failure,
    }
}

/// The failure for `error`, without the job it names: the CLI names the
/// job itself, in its own terms (the resume hint, the id it was given).
/// An error that names the job came after the create was sent, whatever
/// its cause: a runtime failure, never "nothing was sent".
fn failure_naming_no_job(mut error: Error) -> Failure {
    match error.take_resume_with() {
        Some(_) => Failure::Runtime(describe(&error)),
        None => runtime_failure(error),
    }
}

/// How following a job ended, when it did not finish.
pub(crate) enum Ending {
    /// `songbind` returned an error.
    Failed(Error),
    /// `--timeout` passed.
    TimedOut(Duration),
    /// Ctrl-C.
    Interrupted,
}

impl From<Error> for Ending {
    fn from(error: Error) -> Self {
        Ending::Failed(error)
    }
}

/// Ctrl-C, listened for from the moment it is made: made before anything
/// is sent, so that a Ctrl-C while the first request is on its way reaches
/// this handler instead of killing the process with no message.
pub(crate) struct Interrupt {
    /// SIGINT's stream; `None` if the handler could not be installed.
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Interrupt {
    /// Installs the handler (on Unix at once; elsewhere on first wait).
    pub(crate) fn listen() -> Self {
        Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok(),
        }
    }

    /// Resolves on Ctrl-C; never, if the handler could not be installed.
    pub(crate) async fn received(&mut self) {
        #[cfg(unix)]
        let heard = match &mut self.signal {
            Some(signal) => signal.recv().await.is_some(),
            None => false,
        };
        #[cfg(not(unix))]
        let heard = tokio::signal::ctrl_c().await.is_ok();
        if !heard {
            std::future::pending::<()>().await;
        }
    }
}

/// Maps an error from `songbind` to a failure: a value refused before
/// sending names its flag (exit 2); anything else is a runtime failure
/// (a value refused while a job was followed names the job, not a flag).
pub(crate) fn runtime_failure(error: Error) -> Failure {
    match &error {
        Error::Validation {
            field,
            reason,
            resume: None,
        } => Failure::invalid(&flag_for(field), reason),
        _ => Failure::Runtime(describe(&error)),
    }
}

/// Whether the job may exist at the provider after `error`, and may still
/// finish, so that the message names what to resume it with: whenever the
/// error names the job (`resume_with()`), and after a failure that leaves
/// the create's fate unknown even though nothing names it yet. Not after
/// the job's own failure: it exists, but following it again would report
/// the same failure.
fn operation_may_exist(error: &Error) -> bool {
    if matches!(error, Error::JobFailed { .. }) {
        return false;
    }
    error.resume_with().is_some()
        || matches!(
            error,
            Error::Timeout { .. }
                | Error::Cancelled { .. }
                | Error::Transport { .. }
                | Error::StreamEndedEarly { .. }
                | Error::EventTooLarge { .. }
                | Error::AnswerTooLarge { .. }
                | Error::Provider { .. }
                | Error::Decode { .. }
        )
}

/// The flag (or flags) for a field name in a `songbind` validation error.
pub(crate) fn flag_for(field: &str) -> String {
    field
        .split(" or ")
        .map(|part| match part {
            "n_variations" => "--variations".to_owned(),
            "composition_plan" => "--plan-file".to_owned(),
            "prompt" | "lyrics" | "audio_url" | "extend_at" | "song_reference_url"
            | "source_url" | "callback_url" | "idempotency_key" | "audio_path" | "audio_file"
            | "webhook_url" | "music_length_ms" | "model_id" => {
                format!("--{}", part.replace('_', "-"))
            }
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A request built from the flags and checked against the documented limits.
enum Request {
    /// `soundverse generate`; `true` for `--sync`.
    Generate(soundverse::GenerateRequest, bool),
    /// `soundverse extend`; `true` for `--sync`.
    Extend(soundverse::ExtendRequest, bool),
    /// `soundverse remix`.
    SoundverseRemix(soundverse::RemixRequest),
    /// `soundpiece remix`, always with an idempotency key.
    SoundPieceRemix(soundpiece::RemixRequest),
    /// `musicgpt remix`.
    MusicGptRemix(musicgpt::RemixRequest),
}

impl Request {
    /// A SoundPiece remix from its flags, always with an idempotency key.
    fn soundpiece(args: crate::args::SoundPieceRemixArgs) -> Self {
        Request::SoundPieceRemix(soundpiece::RemixRequest {
            n_variations: args.variations,
            idempotency_key: Some(args.idempotency_key.unwrap_or_else(Uuid::new_v4)),
            callback_url: args.callback_url,
            ..soundpiece::RemixRequest::new(args.source_url, args.lyrics, args.prompt)
        })
    }

    /// A MusicGPT remix from its flags; `--audio-file` must be readable.
    fn musicgpt(args: crate::args::MusicGptRemixArgs) -> Result<Self, Failure> {
        let audio = match (args.audio_file, args.audio_path) {
            (Some(path), _) => {
                check_readable_file(&path)?;
                AudioInput::File(path)
            }
            (None, Some(url)) => AudioInput::Url(url),
            (None, None) => {
                return Err(Failure::Usage(
                    "one of --audio-file and --audio-path is required".to_owned(),
                ));
            }
        };
        Ok(Request::MusicGptRemix(musicgpt::RemixRequest {
            lyrics: args.lyrics,
            mode: args.mode,
            webhook_url: args.webhook_url,
            ..musicgpt::RemixRequest::new(audio, args.prompt)
        }))
    }

    /// The request type's own check of the documented limits.
    fn validate(&self) -> songbind::Result<()> {
        match self {
            Request::Generate(request, _) => request.validate(),
            Request::Extend(request, _) => request.validate(),
            Request::SoundverseRemix(request) => request.validate(),
            Request::SoundPieceRemix(request) => request.validate(),
            Request::MusicGptRemix(request) => request.validate(),
        }
    }

    /// The provider the request goes to.
    fn provider(&self) -> ProviderName {
        match self {
            Request::Generate(..) | Request::Extend(..) | Request::SoundverseRemix(_) => {
                ProviderName::Soundverse
            }
            Request::SoundPieceRemix(_) => ProviderName::SoundPiece,
            Request::MusicGptRemix(_) => ProviderName::MusicGpt,
        }
    }

    /// Builds the provider's client; a base URL or key it cannot use is
    /// refused here, before anything is sent.
    fn connect(self, endpoint: &Endpoint) -> Result<Call, Failure> {
        let refused = |error: Error| refused(endpoint, error);
        let (url, key) = (&endpoint.base_url, &endpoint.api_key);
        Ok(match self {
            Request::Generate(request, sync) => {
                Call::Generate(Soundverse::new(url, key).map_err(refused)?, request, sync)
            }
            Request::Extend(request, sync) => {
                Call::Extend(Soundverse::new(url, key).map_err(refused)?, request, sync)
            }
            Request::SoundverseRemix(request) => {
                Call::SoundverseRemix(Soundverse::new(url, key).map_err(refused)?, request)
            }
            Request::SoundPieceRemix(request) => {
                Call::SoundPieceRemix(SoundPiece::new(url, key).map_err(refused)?, request)
            }
            Request::MusicGptRemix(request) => {
                Call::MusicGptRemix(MusicGpt::new(url, key).map_err(refused)?, request)
            }
        })
    }
}

/// A client that could not be built from `endpoint`: the base URL or the
/// key, named by where it came from (exit 2).
pub(crate) fn refused(endpoint: &Endpoint, error: Error) -> Failure {
    match &error {
        Error::Config(songbind_soundverse::BuildError::InvalidBaseUrl { .. }) => {
            Failure::invalid(&endpoint.base_url_origin.name(), describe(&error))
        }
        Error::Config(
            songbind_soundverse::BuildError::InvalidApiKey
            | songbind_soundverse::BuildError::EmptyApiKey,
        ) => Failure::invalid(&endpoint.api_key_origin.name(), describe(&error)),
        _ => Failure::Usage(describe(&error)),
    }
}

/// `--audio-file` must name a readable file: checked before anything is sent.
fn check_readable_file(path: &std::path::Path) -> Result<(), Failure> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => std::fs::File::open(path)
            .map(drop)
            .map_err(|e| Failure::invalid("--audio-file", format!("{}: {e}", path.display()))),
        Ok(_) => Err(Failure::invalid(
            "--audio-file",
            format!("{}: not a file", path.display()),
        )),
        Err(e) => Err(Failure::invalid(
            "--audio-file",
            format!("{}: {e}", path.display()),
        )),
    }
}

/// A checked request with the client that sends it.
enum Call {
    /// `soundverse generate`; `true` for `--sync`.
    Generate(Soundverse, soundverse::GenerateRequest, bool),
    /// `soundverse extend`; `true` for `--sync`.
    Extend(Soundverse, soundverse::ExtendRequest, bool),
    /// `soundverse remix`.
    SoundverseRemix(Soundverse, soundverse::RemixRequest),
    /// `soundpiece remix`.
    SoundPieceRemix(SoundPiece, soundpiece::RemixRequest),
    /// `musicgpt remix`.
    MusicGptRemix(MusicGpt, musicgpt::RemixRequest),
}

/// A finished job and the stream URLs announced on the way.
struct Finished {
    output: JobOutput,
    stream_urls: BTreeMap<u32, String>,
}

impl Call {
    /// The operation's name on the command line.
    fn operation(&self) -> &'static str {
        match self {
            Call::Generate(..) => "generate",
            Call::Extend(..) => "extend",
            Call::SoundverseRemix(..) | Call::SoundPieceRemix(..) | Call::MusicGptRemix(..) => {
                "remix"
            }
        }
    }

    /// How many outputs the job makes, for the progress bars.
    fn expected_versions(&self) -> u32 {
        match self {
            Call::SoundPieceRemix(_, request) => u32::from(request.n_variations),
            _ => 2,
        }
    }

    /// SoundPiece's idempotency key, to report it.
    fn idempotency_key(&self) -> Option<String> {
        match self {
            Call::SoundPieceRemix(_, request) => request.idempotency_key.map(|k| k.to_string()),
            _ => None,
        }
    }

    /// Submits the request and follows the job to its end. `job_id` is set
    /// as soon as the provider names the job, for error messages.
    async fn execute(
        self,
        options: &WaitOptions,
        progress: &mut JobProgress,
        job_id: &mut Option<String>,
    ) -> Result<Finished, Ending> {
        let job = match self {
            Call::Generate(client, request, true) => {
                progress.waiting_for_answer();
                return answered(client.generate_sync(&request).await?, progress, job_id);
            }
            Call::Extend(client, request, true) => {
                progress.waiting_for_answer();
                return answered(client.extend_sync(&request).await?, progress, job_id);
            }
            Call::Generate(client, request, false) => client.submit_generate(&request).await?,
            Call::Extend(client, request, false) => client.submit_extend(&request).await?,
            Call::SoundverseRemix(client, request) => client.submit_remix(&request).await?,
            Call::SoundPieceRemix(client, request) => client.submit_remix(&request).await?,
            Call::MusicGptRemix(client, request) => client.submit_remix(&request).await?,
        };
        follow(job, options, progress, job_id).await
    }
}

/// A one-request (`/sync`) answer, as a finished job.
fn answered(
    output: JobOutput,
    progress: &JobProgress,
    job_id: &mut Option<String>,
) -> Result<Finished, Ending> {
    progress.started(&output.id);
    *job_id = Some(output.id.clone());
    Ok(Finished {
        output,
        stream_urls: BTreeMap::new(),
    })
}

/// Follows a job's events, drawing them, until it completes.
async fn follow(
    job: Job,
    options: &WaitOptions,
    progress: &mut JobProgress,
    job_id: &mut Option<String>,
) -> Result<Finished, Ending> {
    let provider = job.provider();
    progress.started(job.id());
    *job_id = Some(job.id().to_owned());
    let mut stream_urls = BTreeMap::new();
    let mut events = std::pin::pin!(job.events(options));
    while let Some(event) = events.next().await {
        match event? {
            JobEvent::Stage {
                stage,
                progress: percent,
                version,
            } => progress.stage(stage.as_str(), percent, version),
            JobEvent::StreamReady { version, url } => {
                progress.stream_ready(version, &url);
                stream_urls.insert(version, url);
            }
            JobEvent::Output(output) => progress.output(&output),
            JobEvent::Completed(output) => {
                *job_id = Some(output.id.clone());
                return Ok(Finished {
                    output,
                    stream_urls,
                });
            }
            _ => {}
        }
    }
    Err(Ending::Failed(Error::StreamEndedEarly {
        provider,
        message_id: job_id.clone(),
        resume: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(provider: ProviderName, job_id: Option<&str>, key: Option<&str>) -> Sent {
        Sent {
            provider,
            title: format!("{provider} remix"),
            job_id: job_id.map(str::to_owned),
            idempotency_key: key.map(str::to_owned),
        }
    }

    #[test]
    fn only_an_operation_that_may_exist_gets_the_resume_hint() {
        let soundpiece = sent(ProviderName::SoundPiece, Some("op_x"), Some("k-1"));
        let timed_out = failure_of(Ending::TimedOut(Duration::from_secs(1)), &soundpiece);
        assert!(
            timed_out
                .to_string()
                .contains("follow it with `songbind soundpiece wait op_x`"),
            "{timed_out}"
        );
        assert!(
            timed_out.to_string().contains("--idempotency-key k-1"),
            "{timed_out}"
        );
        let failed = failure_of(
            Ending::Failed(Error::JobFailed {
                provider: ProviderName::SoundPiece,
                id: "op_x".to_owned(),
                message: "no".to_owned(),
                // As `songbind` returns it: the failed job names itself.
                resume: Some(Box::new(songbind::ResumeWith::OperationId(
                    "op_x".to_owned(),
                ))),
            }),
            &soundpiece,
        );
        assert!(
            !failed.to_string().contains("--idempotency-key"),
            "{failed}"
        );
        let soundverse = failure_of(
            Ending::Interrupted,
            &sent(ProviderName::Soundverse, Some("msg_1"), None),
        );
        assert!(matches!(soundverse, Failure::Interrupted(_)));
        assert!(
            soundverse
                .to_string()
                .ends_with("follow it with `songbind soundverse wait msg_1`"),
            "{soundverse}"
        );
        let musicgpt = failure_of(
            Ending::TimedOut(Duration::from_secs(1)),
            &sent(ProviderName::MusicGpt, Some("task-9"), None),
        );
        assert!(
            musicgpt
                .to_string()
                .contains("follow it with `songbind musicgpt wait task-9`"),
            "{musicgpt}"
        );
    }

    #[test]
    fn without_an_id_yet_soundpiece_names_the_idempotency_key_and_no_wait_command() {
        let failure = failure_of(
            Ending::Interrupted,
            &sent(ProviderName::SoundPiece, None, Some("k-3")),
        );
        let text = failure.to_string();
        assert!(
            text.contains("run the same command with --idempotency-key k-3"),
            "{text}"
        );
        assert!(!text.contains(" wait "), "{text}");
        let soundverse = failure_of(
            Ending::TimedOut(Duration::from_secs(1)),
            &sent(ProviderName::Soundverse, None, None),
        );
        assert!(
            soundverse
                .to_string()
                .contains("no message id was received"),
            "{soundverse}"
        );
    }

    #[test]
    fn the_wait_command_quotes_an_id_a_shell_would_split() {
        assert_eq!(
            wait_command("soundpiece", "op_abc123"),
            "songbind soundpiece wait op_abc123"
        );
        assert_eq!(
            wait_command("musicgpt", "5f1e2d3c-4b5a"),
            "songbind musicgpt wait 5f1e2d3c-4b5a"
        );
        assert_eq!(
            wait_command("soundverse", "it's $(x) y"),
            "songbind soundverse wait 'it'\\''s $(x) y'"
        );
        assert_eq!(
            wait_command("soundverse", "-rf"),
            "songbind soundverse wait -- -rf"
        );
    }

    #[test]
    fn a_refusal_after_the_create_was_sent_is_a_runtime_failure_naming_the_key() {
        let after = Error::Validation {
            field: "id".to_owned(),
            reason: "unexpected".to_owned(),
            resume: Some(Box::new(songbind::ResumeWith::IdempotencyKey(Uuid::nil()))),
        };
        let failure = failure_of(
            Ending::Failed(after),
            &sent(ProviderName::SoundPiece, None, Some("k-2")),
        );
        assert!(!matches!(failure, Failure::Usage(_)), "{failure}");
        assert_eq!(failure.exit_code(), std::process::ExitCode::from(1));
        assert!(
            failure.to_string().contains("--idempotency-key k-2"),
            "{failure}"
        );
    }

    #[test]
    fn validation_fields_become_flags() {
        assert_eq!(flag_for("n_variations"), "--variations");
        assert_eq!(flag_for("extend_at"), "--extend-at");
        assert_eq!(flag_for("song_reference_url"), "--song-reference-url");
        assert_eq!(flag_for("prompt or lyrics"), "--prompt or --lyrics");
        assert_eq!(flag_for("music_length_ms"), "--music-length-ms");
        assert_eq!(
            flag_for("prompt or composition_plan"),
            "--prompt or --plan-file"
        );
        assert_eq!(flag_for("request"), "request");
    }

    #[test]
    fn a_refused_value_is_a_usage_failure_naming_the_flag() {
        let failure = runtime_failure(Error::Validation {
            field: "n_variations".to_owned(),
            reason: "must be between 1 and 3 (got 4)".to_owned(),
            resume: None,
        });
        assert!(matches!(failure, Failure::Usage(_)));
        assert_eq!(
            failure.to_string(),
            "error: invalid --variations: must be between 1 and 3 (got 4)"
        );
    }

    #[test]
    fn a_missing_audio_file_is_refused_naming_the_flag() {
        let failure = check_readable_file(std::path::Path::new("/surely/not/here.mp3"))
            .expect_err("missing file");
        assert!(failure.to_string().contains("--audio-file"), "{failure}");
    }
}
