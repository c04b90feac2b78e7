//! One run of the command, in the order that keeps refusals free:
//!
//! 1. build the `songbind` request from the flags and `validate()` it
//!    (a refusal names the flag and exits 2, before anything is sent);
//! 2. resolve the base URL and key (or start the `--mock` emulator) and
//!    build the client; create `--output-dir`;
//! 3. submit and follow the job's events with progress bars, under
//!    `--timeout` and Ctrl-C;
//! 4. download the outputs (`--output-dir`) and print the result.
//!
//! ElevenLabs, whose answer is the song itself rather than a job, runs in
//! [`elevenlabs`](crate::elevenlabs) in the same order, with the same
//! [`bounded`] wait and the same refusals.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use songbind::musicgpt::{self, AudioInput, MusicGpt};
use songbind::soundpiece::{self, SoundPiece};
use songbind::soundverse::{self, Soundverse};
use songbind::{Error, Job, JobEvent, JobOutput, ProviderName, WaitOptions};
use uuid::Uuid;

use crate::args::{
    Cli, MusicGptOperation, ProviderCommand, SoundPieceOperation, SoundverseOperation,
};
use crate::downloads;
use crate::elevenlabs;
use crate::endpoint::{self, Endpoint};
use crate::failure::{Failure, describe};
use crate::output::Report;
use crate::progress::JobProgress;

/// Pause between polls when `--poll-interval` is not given.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The same under `--mock`, where jobs take seconds.
const MOCK_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Runs the command line to the end.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let mut interrupt = Interrupt::listen();
    let Cli { global, command } = cli;
    let request = match command {
        ProviderCommand::ElevenLabs { operation } => {
            return elevenlabs::run(operation, &global, &mut interrupt).await;
        }
        ProviderCommand::Soundverse { operation } => Request::soundverse(operation),
        ProviderCommand::SoundPiece {
            operation: SoundPieceOperation::Remix(args),
        } => Request::soundpiece(args),
        ProviderCommand::MusicGpt {
            operation: MusicGptOperation::Remix(args),
        } => Request::musicgpt(args)?,
    };
    request.validate().map_err(runtime_failure)?;
    let provider = request.provider();
    let endpoint = endpoint::resolve(provider, &global).await?;
    let call = request.connect(&endpoint)?;
    if let Some(dir) = &global.output_dir {
        downloads::prepare(dir).await?;
    }

    let title = format!("{provider} {}", call.operation());
    let mut progress = JobProgress::new(&title, call.expected_versions());
    if endpoint.emulator.is_some() {
        progress.log(&format!(
            "--mock: using the built-in {provider} emulator at {}",
            endpoint.base_url
        ));
    }
    let default_interval = if endpoint.emulator.is_some() {
        MOCK_POLL_INTERVAL
    } else {
        DEFAULT_POLL_INTERVAL
    };
    let options =
        WaitOptions::default().poll_interval(global.poll_interval.unwrap_or(default_interval));
    let operation = call.operation();
    let idempotency_key = call.idempotency_key();

    let mut job_id: Option<String> = None;
    let ending = {
        let work = call.execute(&options, &mut progress, &mut job_id);
        bounded(work, global.timeout, &mut interrupt).await
    };
    let finished = match ending {
        Ok(finished) => finished,
        Err(ending) => {
            progress.failed();
            let sent = Sent {
                provider,
                title,
                job_id,
                idempotency_key,
            };
            return Err(failure_of(ending, &sent));
        }
    };

    progress.finished(&finished.output.outputs);
    let mut report = Report::new(operation, finished.output, &finished.stream_urls);
    report.idempotency_key = idempotency_key;
    let downloaded = match &global.output_dir {
        Some(dir) => downloads::download_all(dir, &mut report, &progress, global.force).await,
        None => Ok(()),
    };
    // The result is printed even when a download failed: the job is paid for.
    report
        .print(global.json)
        .map_err(|e| Failure::Runtime(format!("cannot write the result to stdout: {e}")))?;
    // Under --mock the emulator served the downloads: it stops only now.
    drop(endpoint);
    downloaded
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

    /// What to resume the job with, in the provider's terms.
    fn resume_hint(&self) -> String {
        match (self.provider, &self.idempotency_key, &self.job_id) {
            (ProviderName::SoundPiece, Some(key), id) => format!(
                "the operation may exist{}: run the same command with --idempotency-key {key} \
                 to follow it instead of starting another",
                id.as_ref()
                    .map_or_else(String::new, |id| format!(" (operation id {id})"))
            ),
            (ProviderName::MusicGpt, _, Some(id)) => {
                format!("the task may exist: resume with task id {id}")
            }
            (ProviderName::MusicGpt, _, None) => "the task may exist, but no task id was \
                 received: its webhook (--webhook-url) reports it"
                .to_owned(),
            (_, _, Some(id)) => format!("the song may exist: resume with message id {id}"),
            (_, _, None) => "the song may exist, but no message id was received".to_owned(),
        }
    }
}

/// The failure to report for a job that did not finish. Once the create may
/// have been sent, the message names what to resume the job with.
fn failure_of(ending: Ending, sent: &Sent) -> Failure {
    let (failure, may_exist) = match ending {
        Ending::Failed(error) => {
            let may_exist = operation_may_exist(&error);
            let failure = match error {
                // Sent already, whatever the cause: never "nothing was sent"
                // (the resume hint below says it in the CLI's terms).
                Error::AfterCreate { source, .. } => Failure::Runtime(describe(&source)),
                other => runtime_failure(other),
            };
            (failure, may_exist)
        }
        Ending::TimedOut(after) => {
            let error = Error::Timeout {
                after,
                waiting_for: sent.waiting_for(),
            };
            (Failure::Runtime(describe(&error)), true)
        }
        Ending::Interrupted => {
            let error = Error::Cancelled {
                waiting_for: sent.waiting_for(),
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
    fn listen() -> Self {
        Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok(),
        }
    }

    /// Resolves on Ctrl-C; never, if the handler could not be installed.
    async fn received(&mut self) {
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
/// sending names its flag (exit 2); anything else is a runtime failure.
pub(crate) fn runtime_failure(error: Error) -> Failure {
    match &error {
        Error::Validation { field, reason } => Failure::invalid(&flag_for(field), reason),
        _ => Failure::Runtime(describe(&error)),
    }
}

/// Whether the job may exist at the provider after `error`, so that the
/// message names what to resume it with.
fn operation_may_exist(error: &Error) -> bool {
    error.resume_with().is_some()
        || matches!(
            error.root(),
            Error::Timeout { .. }
                | Error::Cancelled { .. }
                | Error::Transport(_)
                | Error::StreamEndedEarly { .. }
                | Error::EventTooLarge { .. }
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
    /// A Soundverse request from its flags (validated by the caller).
    fn soundverse(operation: SoundverseOperation) -> Self {
        match operation {
            SoundverseOperation::Generate(args) => Request::Generate(
                soundverse::GenerateRequest {
                    lyrics: args.lyrics,
                    ..soundverse::GenerateRequest::new(args.prompt)
                },
                args.sync,
            ),
            SoundverseOperation::Extend(args) => Request::Extend(
                soundverse::ExtendRequest {
                    audio_url: args.audio_url,
                    lyrics: args.lyrics,
                    extend_at_ms: args.extend_at,
                    prompt: args.prompt,
                },
                args.sync,
            ),
            SoundverseOperation::Remix(args) => {
                Request::SoundverseRemix(soundverse::RemixRequest {
                    song_reference_url: args.song_reference_url,
                    prompt: args.prompt,
                    lyrics: args.lyrics,
                    ..soundverse::RemixRequest::default()
                })
            }
        }
    }

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
            timed_out.to_string().contains("--idempotency-key k-1"),
            "{timed_out}"
        );
        let failed = failure_of(
            Ending::Failed(Error::JobFailed {
                provider: ProviderName::SoundPiece,
                id: "op_x".to_owned(),
                message: "no".to_owned(),
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
            soundverse.to_string().contains("message id msg_1"),
            "{soundverse}"
        );
        let musicgpt = failure_of(
            Ending::TimedOut(Duration::from_secs(1)),
            &sent(ProviderName::MusicGpt, Some("task-9"), None),
        );
        assert!(
            musicgpt.to_string().contains("task id task-9"),
            "{musicgpt}"
        );
    }

    #[test]
    fn a_refusal_after_the_create_was_sent_is_a_runtime_failure_naming_the_key() {
        let after = Error::Validation {
            field: "id".to_owned(),
            reason: "unexpected".to_owned(),
        };
        let wrapped = Error::AfterCreate {
            resume: songbind::ResumeWith::IdempotencyKey(Uuid::nil()),
            source: Box::new(after),
        };
        let failure = failure_of(
            Ending::Failed(wrapped),
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
