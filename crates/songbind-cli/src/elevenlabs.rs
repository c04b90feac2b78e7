//! `songbind elevenlabs`: a song composed in one request whose answer is
//! the audio itself, written to a file; and composition plans.
//!
//! `compose` runs in the order that keeps refusals free: the request is
//! built from the flags (or `--plan-file`) and `validate()`d (exit 2,
//! naming the flag), then the endpoint is resolved and the client built,
//! then the audio is streamed to a hidden file in `--output-dir` (default:
//! the current directory) with a byte counter, and named only once
//! complete: `<song-id>.<ext>` (`song.<ext>` without a song-id; the
//! extension from the audio format the library checked), never replacing a
//! file unless `--force`. With `--detailed` the metadata goes beside it as
//! `<song-id>.json`. `--timeout` counts the whole request, audio included.
//! An answer the library refuses (not audio, or audio that ended early)
//! exits 1 naming what was wrong, and its hidden file is removed.
//!
//! A copyright refusal (exit 1) names what to run instead: the suggested
//! prompt as a `--prompt`, or the suggested plan written to a file for
//! `--plan-file`.

use std::path::{Path, PathBuf};

use songbind::elevenlabs::{
    AnyCompositionPlan, ComposeRequest, CompositionPlan, ElevenLabs, MusicModelId, MusicPrompt,
    limits,
};
use songbind::{Error, ProviderName, Suggestion, validate};
use tokio::io::AsyncWriteExt;

use crate::args::{ComposeArgs, ElevenLabsOperation, GlobalArgs, PlanArgs};
use crate::downloads::{self, Partial};
use crate::endpoint;
use crate::failure::{Failure, describe};
use crate::output::{ComposeReport, printable, provider_name};
use crate::progress::JobProgress;
use crate::run::{self, Ending, Interrupt};

/// The provider every operation here talks to.
const PROVIDER: ProviderName = ProviderName::ElevenLabs;

/// Largest `--plan-file` read (plans are a few kilobytes).
const PLAN_FILE_LIMIT: u64 = 1024 * 1024;

/// The name a suggested plan is written under (then `-2`, `-3`, ...).
const SUGGESTED_PLAN: &str = "suggested-plan";

/// An ElevenLabs operation, checked against the spec's limits.
enum Command {
    /// `compose`; `true` for `--detailed`.
    Compose(ComposeRequest, bool),
    /// `plan`: the prompt, the model, the length.
    Plan(String, MusicModelId, Option<i64>),
}

impl Command {
    /// Builds and checks the operation; a refusal names the flag (exit 2).
    fn from_operation(operation: ElevenLabsOperation) -> Result<Self, Failure> {
        match operation {
            ElevenLabsOperation::Compose(args) => compose_request(args),
            ElevenLabsOperation::Plan(args) => plan_request(args),
        }
    }

    /// The operation's name on the command line.
    fn operation(&self) -> &'static str {
        match self {
            Command::Compose(..) => "compose",
            Command::Plan(..) => "plan",
        }
    }
}

/// `compose`'s request from its flags, validated.
fn compose_request(args: ComposeArgs) -> Result<Command, Failure> {
    let from_plan = args.plan_file.is_some();
    let mut request = match (args.prompt, args.plan_file) {
        (Some(prompt), None) => ComposeRequest::from_prompt(prompt),
        (None, Some(path)) => ComposeRequest::from_plan(read_plan(&path)?),
        _ => {
            return Err(Failure::Usage(
                "exactly one of --prompt and --plan-file is required".to_owned(),
            ));
        }
    };
    if let Some(ms) = args.music_length_ms {
        request = request.music_length_ms(ms);
    }
    if let Some(model) = args.model_id {
        request = request.model(model);
    }
    if let Some(format) = args.output_format {
        request = request.output_format(format);
    }
    request = request.with_timestamps(args.with_timestamps);
    request
        .validate()
        .map_err(|error| refused(error, from_plan))?;
    Ok(Command::Compose(request, args.detailed))
}

/// `plan`'s request from its flags, checked against the spec's limits of
/// `/v1/music/plan` (the same checks `ElevenLabs::plan` makes, made here
/// before the key is looked for).
fn plan_request(args: PlanArgs) -> Result<Command, Failure> {
    let check = || {
        validate::not_blank("prompt", &args.prompt)?;
        validate::limit(
            &limits::CREATE_COMPOSITION_PLAN_REQUEST_PROMPT,
            &args.prompt,
        )?;
        if let Some(ms) = args.music_length_ms {
            validate::limit_number(&limits::CREATE_COMPOSITION_PLAN_REQUEST_MUSIC_LENGTH_MS, ms)?;
        }
        Ok(())
    };
    check().map_err(|error| refused(error, false))?;
    // The library's default model for a prompt, not restated here.
    let model = args
        .model_id
        .unwrap_or_else(|| ComposeRequest::from_prompt(String::new()).model_id);
    Ok(Command::Plan(args.prompt, model, args.music_length_ms))
}

/// A validation error as a refusal naming its flag; a field inside a plan
/// is named as `--plan-file (<field>)`.
fn refused(error: Error, from_plan: bool) -> Failure {
    match &error {
        Error::Validation { field, reason, .. } if from_plan && run::flag_for(field) == *field => {
            Failure::invalid(&format!("--plan-file ({field})"), reason)
        }
        _ => run::runtime_failure(error),
    }
}

/// Reads `--plan-file`: a v1 `MusicPrompt` (with `sections`) or a v2
/// `CompositionPlan` (with `chunks`), checked by the generated types.
fn read_plan(path: &Path) -> Result<AnyCompositionPlan, Failure> {
    let refuse =
        |reason: String| Failure::invalid("--plan-file", format!("{}: {reason}", path.display()));
    let bytes =
        songbind::files::read_capped(path, PLAN_FILE_LIMIT).map_err(|e| refuse(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| refuse("not UTF-8 text".to_owned()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| refuse(format!("not JSON: {e}")))?;
    // The plan types' own errors say what is wrong; the untagged enum's
    // would only say that neither matched.
    let plan = if json.get("chunks").is_some() {
        serde_json::from_value::<CompositionPlan>(json).map(AnyCompositionPlan::from)
    } else if json.get("sections").is_some() {
        serde_json::from_value::<MusicPrompt>(json).map(AnyCompositionPlan::from)
    } else {
        return Err(refuse(
            "neither a v1 plan (with `sections`) nor a v2 plan (with `chunks`)".to_owned(),
        ));
    };
    plan.map_err(|e| refuse(e.to_string()))
}

/// Runs `songbind elevenlabs <operation>` to the end.
pub async fn run(
    operation: ElevenLabsOperation,
    global: &GlobalArgs,
    interrupt: &mut Interrupt,
) -> Result<(), Failure> {
    let command = Command::from_operation(operation)?;
    let endpoint = endpoint::resolve(PROVIDER, global).await?;
    let client = ElevenLabs::new(&endpoint.base_url, &endpoint.api_key)
        .map_err(|error| run::refused(&endpoint, error))?;
    let dir = global
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    if let Command::Compose(..) = command {
        downloads::prepare(&dir, "--output-dir").await?;
    }
    let title = format!("{PROVIDER} {}", command.operation());
    let progress = JobProgress::new(&title, 0);
    if endpoint.emulator.is_some() {
        progress.log(&format!(
            "--mock: using the built-in {PROVIDER} emulator at {}",
            endpoint.base_url
        ));
    }
    let waiting_for = format!("the {title} request");
    let finished = match command {
        Command::Compose(request, detailed) => {
            let work = compose(&client, &request, detailed, &dir, global.force, &progress);
            run::bounded(work, global.timeout, interrupt)
                .await
                .map(Finished::Composed)
                .map_err(|ending| (ending, Some(request)))
        }
        Command::Plan(prompt, model, ms) => {
            progress.status("asking for a plan");
            let work = async { Ok(client.plan(&prompt, model, ms).await?) };
            run::bounded(work, global.timeout, interrupt)
                .await
                .map(Finished::Plan)
                .map_err(|ending| (ending, None))
        }
    };
    let finished = match finished {
        Ok(finished) => finished,
        Err((ending, request)) => {
            progress.failed();
            let failure = failure_of(ending, &waiting_for, request.as_ref(), &dir, global.force);
            return Err(failure.await);
        }
    };
    let printed = match finished {
        Finished::Composed(report) => {
            progress.done(&format!(
                "done: song-id {}",
                report
                    .song_id
                    .as_deref()
                    .map_or("(none sent)".into(), printable)
            ));
            report.print(global.json)
        }
        Finished::Plan(plan) => {
            progress.done("done");
            print_plan(&plan)
        }
    };
    printed.map_err(|e| Failure::Runtime(format!("cannot write the result to stdout: {e}")))?;
    // Under --mock the emulator stops only now.
    drop(endpoint);
    Ok(())
}

/// What a finished operation prints.
enum Finished {
    /// `compose`: the files written.
    Composed(ComposeReport),
    /// `plan`: the plan.
    Plan(AnyCompositionPlan),
}

/// The plan as pretty JSON on stdout (`--json` or not: it is meant for a
/// file, ready for `--plan-file`).
fn print_plan(plan: &AnyCompositionPlan) -> std::io::Result<()> {
    use std::io::Write;
    let text = crate::output::to_json(plan, true).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// Composes the song into `dir`: the audio to a hidden file, then under its
/// name; with `detailed`, the metadata beside it.
async fn compose(
    client: &ElevenLabs,
    request: &ComposeRequest,
    detailed: bool,
    dir: &Path,
    force: bool,
    progress: &JobProgress,
) -> Result<ComposeReport, Ending> {
    let (partial, mut file) = Partial::create(dir).await.map_err(|e| io_error(dir, e))?;
    progress.status("composing");
    let counter = progress.byte_counter("audio", "waiting for the first bytes");
    let mut started = false;
    let on_bytes = |written: u64| {
        if !std::mem::replace(&mut started, true) {
            progress.status("receiving the audio");
            counter.set_message("");
        }
        counter.set_position(written);
    };
    let answered = if detailed {
        client
            .compose_detailed_to(request, &mut file, on_bytes)
            .await
            .map(|d| (d.audio, Some(d.metadata)))
    } else {
        client
            .compose_to(request, &mut file, on_bytes)
            .await
            .map(|audio| (audio, None))
    };
    let (audio, metadata) = match answered {
        Ok(answered) => answered,
        Err(error) => {
            counter.abandon();
            return Err(error.into());
        }
    };
    file.sync_all()
        .await
        .map_err(|e| io_error(&partial.path, e))?;
    drop(file);

    let stem = downloads::stem(audio.song_id.as_deref().unwrap_or_default());
    // The format the library checked, never the content type as sent (an
    // audio part typed `audio/json` would take the metadata's name).
    let ext = downloads::extension_for(Some(audio.format.content_type()));
    let audio_path = dir.join(format!("{stem}.{ext}"));
    keep(partial, &audio_path, force, "audio").await?;
    counter.finish_with_message(audio_path.display().to_string());
    let mut files = vec![audio_path];
    if let Some(metadata) = metadata {
        let json_path = dir.join(format!("{stem}.json"));
        let text = serde_json::to_vec_pretty(&metadata)
            .map_err(|e| io_error(&json_path, std::io::Error::other(e)))?;
        let (partial, mut file) = Partial::create(dir).await.map_err(|e| io_error(dir, e))?;
        file.write_all(&text)
            .await
            .map_err(|e| io_error(&partial.path, e))?;
        file.sync_all()
            .await
            .map_err(|e| io_error(&partial.path, e))?;
        drop(file);
        keep(partial, &json_path, force, "metadata").await?;
        files.push(json_path);
    }
    Ok(ComposeReport {
        provider: provider_name(PROVIDER),
        operation: "compose",
        song_id: audio.song_id,
        files,
        bytes: audio.bytes,
        content_type: audio.content_type,
    })
}

/// Names `partial` `path`; when that fails (a file there and no
/// `--force`), the error says where the paid-for `what` was kept.
async fn keep(partial: Partial, path: &Path, force: bool, what: &str) -> Result<(), Ending> {
    downloads::keep(partial, path, force)
        .await
        .map_err(|(partial, error)| {
            let kept = partial.abandon();
            let reason = if error.kind() == std::io::ErrorKind::AlreadyExists {
                "already exists and was left untouched".to_owned()
            } else {
                format!("cannot be written ({error})")
            };
            io_error(
                path,
                std::io::Error::new(
                    error.kind(),
                    format!(
                        "{reason}; the {what} is kept as {}; pass --force to replace it",
                        kept.display()
                    ),
                ),
            )
            .into()
        })
}

/// A file error naming `path`.
fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The failure to report for an operation that did not finish; a
/// copyright refusal says what to run instead.
async fn failure_of(
    ending: Ending,
    waiting_for: &str,
    request: Option<&ComposeRequest>,
    dir: &Path,
    force: bool,
) -> Failure {
    match ending {
        Ending::Failed(error @ Error::Validation { .. }) => run::runtime_failure(error),
        Ending::Failed(error) => {
            let how = match &error {
                Error::ContentRejected {
                    suggestion: Some(Suggestion::Prompt(prompt)),
                    ..
                } => Some(format!(
                    "to use it, run the same command with --prompt {}",
                    quoted(prompt)
                )),
                Error::ContentRejected {
                    suggestion: Some(Suggestion::Plan(plan)),
                    ..
                } => Some(suggested_plan(plan, request, dir, force).await),
                _ => None,
            };
            match how {
                Some(how) => Failure::Runtime(format!("{}; {how}", describe(&error))),
                None => Failure::Runtime(describe(&error)),
            }
        }
        Ending::TimedOut(after) => Failure::Runtime(describe(&Error::Timeout {
            after,
            waiting_for: waiting_for.to_owned(),
            resume: None,
        })),
        Ending::Interrupted => Failure::Interrupted(describe(&Error::Cancelled {
            waiting_for: waiting_for.to_owned(),
            resume: None,
        })),
    }
}

/// Writes a suggested plan into `dir` (as `suggested-plan.json`, or the
/// first free `suggested-plan-<n>.json`) and says how to use it.
async fn suggested_plan(
    plan: &serde_json::Value,
    request: Option<&ComposeRequest>,
    dir: &Path,
    force: bool,
) -> String {
    // The typed plan when it reads as one (the model it needs follows).
    let typed = request.and_then(|r| r.retry_with(&Suggestion::Plan(plan.clone())).ok());
    let text = match typed.as_ref().and_then(|r| r.plan.as_ref()) {
        Some(plan) => serde_json::to_vec_pretty(plan),
        None => serde_json::to_vec_pretty(plan),
    };
    let Ok(text) = text else {
        return "the suggested plan could not be written".to_owned();
    };
    let written = async {
        let (partial, mut file) = Partial::create(dir).await?;
        file.write_all(&text).await?;
        file.sync_all().await?;
        drop(file);
        let mut partial = partial;
        for n in 1..=100 {
            let path = dir.join(match n {
                1 => format!("{SUGGESTED_PLAN}.json"),
                n => format!("{SUGGESTED_PLAN}-{n}.json"),
            });
            // --force replaces only a regular `suggested-plan.json`.
            match downloads::keep(partial, &path, force && n == 1).await {
                Ok(()) => return Ok(Some(path)),
                Err((kept, e)) if e.kind() == std::io::ErrorKind::AlreadyExists => partial = kept,
                Err((_, e)) => return Err(e),
            }
        }
        Ok(None)
    };
    match written.await {
        Ok(Some(path)) => format!(
            "the suggested plan was written to {0}: to use it, run the same command with \
             --plan-file {0}",
            path.display()
        ),
        Ok(None) => {
            "the suggested plan could not be written (no free suggested-plan-<n>.json)".to_owned()
        }
        Err(e) => format!("the suggested plan could not be written ({e})"),
    }
}

/// `text` in double quotes for a POSIX shell (`"`, `\`, `$` and backquotes
/// escaped).
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn command(args: &[&str]) -> Result<Command, Failure> {
        let mut argv = vec!["songbind", "elevenlabs"];
        argv.extend_from_slice(args);
        let cli = crate::args::Cli::try_parse_from(argv).unwrap();
        let crate::args::ProviderCommand::ElevenLabs { operation } = cli.command else {
            unreachable!("parsed as another provider");
        };
        Command::from_operation(operation)
    }

    #[test]
    fn flags_become_a_validated_request() {
        let Ok(Command::Compose(request, true)) = command(&[
            "compose",
            "--prompt",
            "calm piano",
            "--music-length-ms",
            "10000",
            "--model-id",
            "music_v2",
            "--output-format",
            "pcm_16000",
            "--detailed",
            "--with-timestamps",
        ]) else {
            panic!("not a detailed compose");
        };
        assert_eq!(request.prompt.as_deref(), Some("calm piano"));
        assert_eq!(request.music_length_ms, Some(10_000));
        assert_eq!(request.model_id, MusicModelId::MusicV2);
        assert_eq!(
            request.output_format.map(|f| f.to_string()).as_deref(),
            Some("pcm_16000")
        );
        assert!(request.with_timestamps);
    }

    #[test]
    fn out_of_range_values_name_their_flag_and_the_spec_s_limit() {
        let long = "x".repeat(5000);
        for (args, flag, limit) in [
            (
                vec!["compose", "--prompt", long.as_str()],
                "--prompt",
                limits::COMPOSE_REQUEST_PROMPT.describe(),
            ),
            (
                vec!["compose", "--prompt", "p", "--music-length-ms", "1"],
                "--music-length-ms",
                limits::COMPOSE_REQUEST_MUSIC_LENGTH_MS.describe(),
            ),
            (
                vec!["plan", "--prompt", long.as_str()],
                "--prompt",
                limits::CREATE_COMPOSITION_PLAN_REQUEST_PROMPT.describe(),
            ),
        ] {
            let Err(failure) = command(&args) else {
                panic!("{args:?} accepted");
            };
            let text = failure.to_string();
            assert!(matches!(failure, Failure::Usage(_)), "{text}");
            assert!(text.contains(flag) && text.contains(&limit), "{text}");
        }
    }

    #[test]
    fn a_plan_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let write = |json: serde_json::Value| std::fs::write(&path, json.to_string()).unwrap();
        write(serde_json::json!({"chunks": [
            {"text": "[Intro]", "duration_ms": 8000, "positive_styles": ["ambient"]}
        ]}));
        let file = path.to_str().unwrap();
        let Ok(Command::Compose(request, false)) = command(&["compose", "--plan-file", file])
        else {
            panic!("plan refused");
        };
        assert_eq!(request.model_id, MusicModelId::MusicV2);
        let Err(wrong_model) = command(&["compose", "--plan-file", file, "--model-id", "music_v1"])
        else {
            panic!("a v2 plan with music_v1 was accepted");
        };
        assert!(
            wrong_model.to_string().contains("--plan-file"),
            "{wrong_model}"
        );
        write(serde_json::json!({"chunks": [{"text": 1}]}));
        let Err(bad) = command(&["compose", "--plan-file", file]) else {
            panic!("a bad plan was accepted");
        };
        assert!(bad.to_string().contains("--plan-file"), "{bad}");
        write(serde_json::json!({"tracks": []}));
        let Err(neither) = command(&["compose", "--plan-file", file]) else {
            panic!("not a plan, accepted");
        };
        assert!(neither.to_string().contains("chunks"), "{neither}");
    }

    #[test]
    fn prompt_and_plan_file_exclude_each_other() {
        let argv = |args: &[&str]| {
            let mut all = vec!["songbind", "elevenlabs", "compose"];
            all.extend_from_slice(args);
            crate::args::Cli::try_parse_from(all)
        };
        assert!(argv(&[]).is_err());
        assert!(argv(&["--prompt", "p", "--plan-file", "plan.json"]).is_err());
        assert!(argv(&["--plan-file", "plan.json", "--music-length-ms", "10000"]).is_err());
        assert!(argv(&["--prompt", "p", "--with-timestamps"]).is_err());
        assert!(argv(&["--prompt", "p", "--output-format", "wav_9"]).is_err());
    }

    #[test]
    fn suggested_prompts_are_quoted_for_the_shell() {
        assert_eq!(
            quoted("a \"b\" $c `d` \\e"),
            "\"a \\\"b\\\" \\$c \\`d\\` \\\\e\""
        );
    }
}
