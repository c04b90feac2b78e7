//! Checks how a job actually ended against what its fault calls for.
//!
//! A job is right only when every check holds: the outcome (the outputs, or
//! the typed error and its details), the jobs the provider created (never a
//! second one), the create requests it received (retries only where the
//! client may resend), the status polls where the fault fixes them, for
//! SoundPiece one idempotency key across the creates, and that the client's
//! API key appears nowhere in what the job handed back (the `Display` and
//! `Debug` of its error or output).

use std::time::Duration;

use reqwest::Method;
use songbind::{Error, JobOutput, ProviderName};
use songbind_emulator::{Provider, RecordedRequest};

use crate::plan::{
    AnswerBody, AnswerCase, ExpectedError, ExpectedOutcome, FaultKind, JobPlan, Operation,
};
use crate::report::{JobRecord, Verdict};
use crate::worker::{Attempt, AudioWritten};

/// How a job's task ended.
#[derive(Debug)]
// One value per job, moved once from the worker to the judge: boxing the
// attempt would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Ended {
    /// On its own, with this result.
    Finished(Attempt),
    /// It panicked, with this message.
    Panic(String),
    /// It was still running when the campaign's per-job timeout passed.
    Hang(Duration),
}

/// What the job's emulator recorded while the job ran.
#[derive(Debug)]
pub(crate) struct Observed {
    /// Jobs created during the job, per provider.
    pub(crate) jobs_created: Vec<(Provider, usize)>,
    /// Requests received during the job, in order.
    pub(crate) requests: Vec<RecordedRequest>,
    /// The emulator's root URL, which every output URL must start with.
    pub(crate) root_url: String,
    /// The API key the job's client sent (every client of the worker has
    /// it, or it followed by `_no_credits`).
    pub(crate) api_key: String,
}

/// Shortest piece of the key's secret part counted as a leak: a key cut
/// short in an excerpt leaks what it shows.
const LEAK_WINDOW: usize = 12;

/// Where `text` shows the API key, or a piece of its secret part at least
/// [`LEAK_WINDOW`] characters long (the part after its last `_`, e.g. the
/// 24 random characters of `sk_live_...`); `None` if nowhere.
pub(crate) fn leaked_key_at(text: &str, key: &str) -> Option<usize> {
    if key.is_empty() {
        return None;
    }
    if let Some(at) = text.find(key) {
        return Some(at);
    }
    let secret: Vec<char> = key.rsplit('_').next().unwrap_or(key).chars().collect();
    if secret.len() < LEAK_WINDOW {
        return None;
    }
    secret
        .windows(LEAK_WINDOW)
        .find_map(|piece| text.find(&piece.iter().collect::<String>()))
}

/// A known library bug the judge tolerates (counted apart, never hidden):
/// for an error answer whose body is not JSON, `songbind` keeps as the
/// message a one-line excerpt of the body cut at 200 characters, and cuts
/// it *before* scrubbing the key. A key that straddles the cut is no longer
/// whole, so the scrubber misses it and its first characters stay in the
/// message, before the excerpt's `…`. Found by this campaign (seed 2026,
/// jobs 100, 310, 322 and 936: a 5xx listing the request headers after a
/// trace id of 27 to 79 characters). Set to `false` once the library
/// scrubs before it cuts: such a piece then counts as a leaked key again.
pub const TOLERATE_KEY_CUT_BY_EXCERPT: bool = false;

/// A known library bug the judge tolerates (counted apart, never hidden):
/// `ElevenLabs::compose_to` copies the answer's chunked body to the sink
/// and reports success when the body ends, even when it ends cleanly before
/// the whole song was sent (the emulator's `end-stream:<n>`): the caller
/// gets `Ok(Composed { bytes, .. })` and a short file, its WAV header
/// declaring more samples than it holds (an empty file when the body ended
/// before its first chunk). Found by this campaign on 2026-12-02 (seed
/// 2026, job 13: "elevenlabs compose with stream ended after 0 events").
/// Tolerated only when the job is otherwise right (one create, one
/// generation, no leaked key) and the file is a cut of the whole song.
/// Set to `false` once the library reports such a cut as an error: these
/// jobs then count as wrong again.
pub const TOLERATE_SHORT_AUDIO_REPORTED_AS_SUCCESS: bool = false;

/// How the audio a compose wrote is a cut of the whole song, if it is: the
/// WAV header (when there is one) declares the whole song, the bytes after
/// it are fewer.
fn short_audio(plan: &JobPlan, audio: &AudioWritten) -> Option<String> {
    let bytes = &audio.bytes;
    if audio.composed.bytes != bytes.len() as u64 {
        return None;
    }
    if bytes.is_empty() {
        return Some("an empty file (0 bytes)".to_owned());
    }
    let riff = bytes.get(4..8)?;
    let whole = u64::from(u32::from_le_bytes([riff[0], riff[1], riff[2], riff[3]])) + 8;
    // Not a whole WAV file, and shorter than its header says.
    wav_data(bytes).err()?;
    ((bytes.len() as u64) < whole).then(|| {
        format!(
            "{} of the {whole} bytes of a {} s WAV",
            bytes.len(),
            plan.music_seconds
        )
    })
}

/// Where a job's result showed the key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Leak {
    /// What showed it and where (the key masked).
    pub(crate) description: String,
    /// Whether every piece shown is the start of the key cut by an excerpt
    /// (followed by `…`): the known bug of [`TOLERATE_KEY_CUT_BY_EXCERPT`].
    pub(crate) cut_by_excerpt: bool,
}

/// Whether the only pieces of `key` in `text` are starts of it followed by
/// `…`, where an excerpt was cut.
fn only_cut_by_excerpt(text: &str, key: &str) -> bool {
    let mut rest = text.to_owned();
    for (end, _) in key
        .char_indices()
        .skip(1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        rest = rest.replace(&format!("{}…", &key[..end]), "<CUT>…");
    }
    rest != text && leaked_key_at(&rest, key).is_none()
}

/// Where the job's result (its error's `Display` and `Debug`, or its
/// output's `Debug`) shows the key, if it does.
fn leak(result: &songbind::Result<JobOutput>, key: &str) -> Option<Leak> {
    let texts = match result {
        Ok(output) => vec![("the output's Debug", format!("{output:?}"))],
        Err(error) => vec![
            ("the error's Display", error.to_string()),
            ("the error's Debug", format!("{error:?}")),
            ("the error's chain", describe(result)),
        ],
    };
    let leaks: Vec<Leak> = texts
        .iter()
        .filter_map(|(what, text)| {
            let at = leaked_key_at(text, key)?;
            let start = text[..at]
                .char_indices()
                .rev()
                .nth(40)
                .map_or(0, |(i, _)| i);
            let around: String = text[start..].chars().take(60).collect();
            Some(Leak {
                description: format!("the API key leaked in {what}: \"{}…\"", mask(&around, key)),
                cut_by_excerpt: only_cut_by_excerpt(text, key),
            })
        })
        .collect();
    let cut_only = leaks.iter().all(|leak| leak.cut_by_excerpt);
    leaks.into_iter().next().map(|first| Leak {
        cut_by_excerpt: cut_only,
        ..first
    })
}

/// `text` with the key, and its secret part, replaced by `<KEY>` (a piece
/// of a key cut short stays: it is a worker's throwaway key).
fn mask(text: &str, key: &str) -> String {
    let secret = key.rsplit('_').next().unwrap_or(key);
    let out = text.replace(key, "<KEY>");
    if secret.len() >= LEAK_WINDOW {
        out.replace(secret, "<KEY>")
    } else {
        out
    }
}

/// The name of the operation's provider as `songbind` spells it in errors
/// and outputs (by operation: the emulator may serve more providers than
/// the campaign drives).
fn provider_name(operation: Operation) -> ProviderName {
    match operation {
        Operation::SoundverseGenerate
        | Operation::SoundverseExtend
        | Operation::SoundverseRemix
        | Operation::SoundverseGenerateSync
        | Operation::SoundverseExtendSync => ProviderName::Soundverse,
        Operation::SoundPieceRemix => ProviderName::SoundPiece,
        Operation::MusicGptRemixFile | Operation::MusicGptRemixUrl => ProviderName::MusicGpt,
        Operation::ElevenLabsCompose | Operation::ElevenLabsComposeDetailed => {
            ProviderName::ElevenLabs
        }
    }
}

/// Judges one job.
pub(crate) fn judge(
    plan: &JobPlan,
    ended: Ended,
    observed: &Observed,
    elapsed: Duration,
) -> JobRecord {
    let expectation = plan.expectation();
    let provider = plan.operation.provider();
    let mut problems = Vec::new();

    // Jobs created: exactly what the fault allows, at the job's provider only.
    let mut duplicates = 0;
    let mut jobs_at_provider = 0;
    for (at, created) in &observed.jobs_created {
        let allowed = if *at == provider {
            jobs_at_provider = *created;
            expectation.jobs_created
        } else {
            0
        };
        if *created > allowed {
            duplicates += created - allowed;
            problems.push(format!(
                "{} created {created} jobs, {allowed} expected",
                at.name()
            ));
        } else if *created < allowed {
            problems.push(format!(
                "{} created {created} jobs, {allowed} expected",
                at.name()
            ));
        }
    }

    let actual;
    let mut verdict_if_right = Verdict::TypedError;
    let mut keys_leaked = 0;
    let mut known_bug = None;
    match ended {
        Ended::Hang(after) => {
            return JobRecord {
                plan: plan.clone(),
                expectation,
                actual: format!("still running after {after:?}"),
                verdict: Verdict::Hang,
                jobs_created: jobs_at_provider,
                duplicates,
                keys_leaked,
                known_bug,
                elapsed,
            };
        }
        Ended::Panic(message) => {
            return JobRecord {
                plan: plan.clone(),
                expectation,
                actual: format!("panicked: {message}"),
                verdict: Verdict::Panic,
                jobs_created: jobs_at_provider,
                duplicates,
                keys_leaked,
                known_bug,
                elapsed,
            };
        }
        Ended::Finished(attempt) => {
            match (&expectation.outcome, &attempt.result) {
                (ExpectedOutcome::Outputs { count }, Ok(output)) => {
                    verdict_if_right = Verdict::Outputs;
                    check_outputs(plan, *count, output, &attempt, observed, &mut problems);
                }
                (ExpectedOutcome::Error(expected), Err(error)) => {
                    if let Some(problem) =
                        check_error(expected, error, provider_name(plan.operation))
                    {
                        problems.push(problem);
                    }
                    // What is not audio never reaches the caller's sink.
                    if let (FaultKind::NotAudio { .. }, Some(written @ 1..)) =
                        (&plan.fault, attempt.written_on_error)
                    {
                        problems.push(format!(
                            "{written} bytes of a 200 that is not audio reached the sink"
                        ));
                    }
                }
                (ExpectedOutcome::Error(ExpectedError::AudioCut), Ok(_))
                    if TOLERATE_SHORT_AUDIO_REPORTED_AS_SUCCESS =>
                {
                    match attempt.audio.as_ref().and_then(|a| short_audio(plan, a)) {
                        Some(seen) => {
                            known_bug = Some(format!(
                                "{seen}, reported as a success (a clean end of the chunked \
                                 body before the whole song: a known library bug)"
                            ));
                        }
                        None => problems.push(format!("expected {}", expectation.outcome)),
                    }
                }
                (expected, _) => problems.push(format!("expected {expected}")),
            }
            match leak(&attempt.result, &observed.api_key) {
                Some(leak) if leak.cut_by_excerpt && TOLERATE_KEY_CUT_BY_EXCERPT => {
                    known_bug = Some(format!(
                        "{} (the key cut by a message excerpt: a known library bug)",
                        leak.description
                    ));
                }
                Some(leak) => {
                    keys_leaked = 1;
                    problems.push(leak.description);
                }
                None => {}
            }
            actual = mask(&describe(&attempt.result), &observed.api_key);
        }
    }

    // Create requests: retried only as the client may.
    let (method, path) = plan.operation.create_route();
    let creates: Vec<&RecordedRequest> = observed
        .requests
        .iter()
        .filter(|r| r.provider == Some(provider) && r.method == method && r.path == path)
        .collect();
    if creates.len() != expectation.create_requests {
        problems.push(format!(
            "{} create requests reached the provider, {} expected",
            creates.len(),
            expectation.create_requests
        ));
    }
    // The key goes in the provider's own header (ElevenLabs: `xi-api-key`).
    if provider == Provider::ElevenLabs {
        for create in &creates {
            let sent = create.headers.get("xi-api-key");
            if sent != Some(&observed.api_key) || create.headers.contains_key("authorization") {
                problems.push(format!(
                    "a create did not carry the worker's key in `xi-api-key` alone \
                     (xi-api-key {}, authorization {})",
                    if sent.is_some() { "sent" } else { "missing" },
                    if create.headers.contains_key("authorization") {
                        "sent"
                    } else {
                        "absent"
                    }
                ));
                break;
            }
        }
    }
    if let Some(expected) = expectation.poll_requests
        && let Some((method, path)) = plan.operation.poll_route()
    {
        let polls = observed
            .requests
            .iter()
            .filter(|r| r.provider == Some(provider) && r.method == method && r.path == path)
            .count();
        if polls != expected {
            problems.push(format!(
                "{polls} status polls reached the provider, {expected} expected"
            ));
        }
    }
    if method == Method::PUT {
        let keys: Vec<Option<String>> = creates
            .iter()
            .map(|r| {
                r.json()
                    .and_then(|body| body.get("idempotency_key")?.as_str().map(str::to_owned))
            })
            .collect();
        if keys.iter().any(Option::is_none) || keys.windows(2).any(|w| w[0] != w[1]) {
            problems.push(format!(
                "creates carried different idempotency keys: {keys:?}"
            ));
        }
    }

    JobRecord {
        plan: plan.clone(),
        expectation,
        actual,
        verdict: if problems.is_empty() && known_bug.is_some() {
            Verdict::KnownBug
        } else if problems.is_empty() {
            verdict_if_right
        } else {
            Verdict::Wrong(problems.join("; "))
        },
        jobs_created: jobs_at_provider,
        duplicates,
        keys_leaked,
        known_bug,
        elapsed,
    }
}

/// A short account of a result: the outputs, or the error's case and text.
pub(crate) fn describe(result: &songbind::Result<JobOutput>) -> String {
    match result {
        Ok(output) => format!("{} outputs (job {})", output.outputs.len(), output.id),
        Err(error) => {
            let mut text = format!("Error::{}: {error}", error_case(error));
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

fn error_case(error: &Error) -> &'static str {
    match error {
        Error::RateLimited { .. } => "RateLimited",
        Error::InsufficientCredits { .. } => "InsufficientCredits",
        Error::ContentRejected { .. } => "ContentRejected",
        Error::InvalidRequest { .. } => "InvalidRequest",
        Error::Unauthorized { .. } => "Unauthorized",
        Error::ServiceUnavailable { .. } => "ServiceUnavailable",
        Error::Provider { .. } => "Provider",
        Error::IdempotencyConflict { .. } => "IdempotencyConflict",
        Error::JobFailed { .. } => "JobFailed",
        Error::StreamEndedEarly { .. } => "StreamEndedEarly",
        Error::EventTooLarge { .. } => "EventTooLarge",
        Error::Timeout { .. } => "Timeout",
        Error::Cancelled { .. } => "Cancelled",
        Error::Transport { .. } => "Transport",
        Error::Decode { .. } => "Decode",
        Error::Validation { .. } => "Validation",
        Error::Webhook(_) => "Webhook",
        Error::Io { .. } => "Io",
        Error::Config(_) => "Config",
        _ => "(another case)",
    }
}

/// The sample rate of the raw PCM a job asks for (`pcm_16000`).
pub(crate) const PCM_RATE: u64 = 16_000;

/// Checks what an ElevenLabs compose wrote: the sink holds a whole WAV
/// file of the requested length (its header parsed: `RIFF` size, `fmt `,
/// `data` length = length x rate x block size, and exactly that much data),
/// or, for a job asking for raw PCM, exactly length x 16,000 x 2 bytes; the
/// call reported the bytes the sink holds and `audio/wav` (`audio/pcm`),
/// and a detailed compose's metadata names the song.
fn check_audio(plan: &JobPlan, audio: &AudioWritten, problems: &mut Vec<String>) {
    let bytes = &audio.bytes;
    if audio.composed.bytes != bytes.len() as u64 {
        problems.push(format!(
            "the compose reported {} bytes, the sink holds {}",
            audio.composed.bytes,
            bytes.len()
        ));
    }
    let content_type = if plan.pcm { "audio/pcm" } else { "audio/wav" };
    if audio.composed.content_type.as_deref() != Some(content_type) {
        problems.push(format!(
            "the audio's content type is {:?}, not {content_type}",
            audio.composed.content_type
        ));
    }
    if let Some(Err(reason)) = &audio.metadata {
        problems.push(reason.clone());
    }
    if plan.pcm {
        let expected = u64::from(plan.music_seconds) * PCM_RATE * 2;
        if bytes.len() as u64 != expected {
            problems.push(format!(
                "{} s of 16-bit PCM at {PCM_RATE} Hz is {expected} bytes; the sink holds {} \
                 (a short file reported as success)",
                plan.music_seconds,
                bytes.len()
            ));
        }
        return;
    }
    match wav_data(bytes) {
        Err(reason) => problems.push(format!("{} bytes of audio: {reason}", bytes.len())),
        Ok(wav) => {
            let expected = u64::from(plan.music_seconds) * u64::from(wav.rate) * wav.block;
            if wav.declared != expected || wav.present != expected {
                problems.push(format!(
                    "a WAV of {} s at {} Hz holds {expected} bytes of samples; its header \
                     declares {} and {} are there (a short file reported as success)",
                    plan.music_seconds, wav.rate, wav.declared, wav.present
                ));
            }
        }
    }
}

/// What a WAV file's header says and holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WavData {
    /// Samples per second.
    pub(crate) rate: u32,
    /// Bytes per sample frame (channels x bits / 8).
    pub(crate) block: u64,
    /// The `data` chunk's length, as declared.
    pub(crate) declared: u64,
    /// The bytes of the `data` chunk actually present.
    pub(crate) present: u64,
}

/// Parses a WAV file (`RIFF`, `WAVE`, a `fmt ` chunk, then its `data`).
pub(crate) fn wav_data(bytes: &[u8]) -> Result<WavData, String> {
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    if bytes.get(..4) != Some(b"RIFF".as_slice()) || bytes.get(8..12) != Some(b"WAVE".as_slice()) {
        return Err("not a WAV file (no RIFF/WAVE header)".to_owned());
    }
    let riff = u64::from(u32_at(4).unwrap_or(0));
    if riff + 8 != bytes.len() as u64 {
        return Err(format!(
            "the RIFF header declares {} bytes, the file has {}{}",
            riff + 8,
            bytes.len(),
            if (bytes.len() as u64) < riff + 8 {
                " (a short file reported as success)"
            } else {
                ""
            }
        ));
    }
    let mut at = 12;
    let mut format = None;
    while let (Some(id), Some(len)) = (bytes.get(at..at + 4), u32_at(at + 4)) {
        let body = at + 8;
        match id {
            b"fmt " => {
                let channels = u16_at(body + 2).ok_or("a cut fmt chunk")?;
                let rate = u32_at(body + 4).ok_or("a cut fmt chunk")?;
                let bits = u16_at(body + 14).ok_or("a cut fmt chunk")?;
                format = Some((rate, u64::from(channels) * u64::from(bits) / 8));
            }
            b"data" => {
                let (rate, block) = format.ok_or("a data chunk before its fmt chunk")?;
                return Ok(WavData {
                    rate,
                    block,
                    declared: u64::from(len),
                    present: (bytes.len() - body) as u64,
                });
            }
            _ => {}
        }
        at = body + len as usize + (len as usize % 2);
    }
    Err("no data chunk".to_owned())
}

/// Why `error` is not the `expected` one, if it is not. The case is the
/// error's own (matched directly, wherever it happened), the status
/// [`Error::status`].
fn check_error(expected: &ExpectedError, error: &Error, provider: ProviderName) -> Option<String> {
    let right = match (expected, error) {
        (ExpectedError::Transport, Error::Transport { .. }) => true,
        (
            ExpectedError::StreamEndedEarly { message_id_known },
            Error::StreamEndedEarly {
                provider: at,
                message_id,
                ..
            },
        ) => {
            *at == provider
                && match message_id {
                    Some(id) => *message_id_known && id.starts_with("msg_"),
                    None => !message_id_known,
                }
        }
        (ExpectedError::IdleTimeout, Error::Timeout { .. }) => true,
        (ExpectedError::AudioCut, Error::StreamEndedEarly { provider: at, .. }) => *at == provider,
        (ExpectedError::AudioCut, Error::Decode { .. } | Error::Transport { .. }) => true,
        (ExpectedError::JobFailed, Error::JobFailed { provider: at, .. }) => *at == provider,
        (ExpectedError::InsufficientCredits, Error::InsufficientCredits { provider: at, .. }) => {
            *at == provider && error.status() == Some(402)
        }
        (
            ExpectedError::RateLimited { retry_after },
            Error::RateLimited {
                provider: at,
                retry_after: got,
                ..
            },
        ) => *at == provider && *got == Some(*retry_after) && error.status() == Some(429),
        (
            ExpectedError::ServiceUnavailable { retry_after },
            Error::ServiceUnavailable {
                provider: at,
                retry_after: got,
                ..
            },
        ) => *at == provider && *got == Some(*retry_after) && error.status() == Some(503),
        (ExpectedError::ProviderStatus(status), Error::Provider { provider: at, .. }) => {
            *at == provider && error.status() == Some(*status)
        }
        (
            ExpectedError::Answer {
                case,
                status,
                retry_after,
                body,
            },
            root,
        ) => {
            let at = match (case, root) {
                (AnswerCase::RateLimited, Error::RateLimited { provider, .. })
                | (AnswerCase::ServiceUnavailable, Error::ServiceUnavailable { provider, .. })
                | (AnswerCase::InvalidRequest, Error::InvalidRequest { provider, .. })
                | (AnswerCase::Unauthorized, Error::Unauthorized { provider, .. })
                | (AnswerCase::Provider, Error::Provider { provider, .. }) => Some(*provider),
                _ => None,
            };
            if at != Some(provider) {
                false
            } else if error.status() != Some(*status) || error.retry_after() != *retry_after {
                return Some(format!(
                    "expected {expected}; the error kept HTTP {:?} and Retry-After {:?}",
                    error.status(),
                    error.retry_after()
                ));
            } else if let Some(problem) = error.answer().and_then(|a| check_body(*body, a)) {
                return Some(format!("expected {expected}; {problem}"));
            } else {
                true
            }
        }
        _ => false,
    };
    (!right).then(|| format!("expected {expected}"))
}

/// Why the answer an error kept is not the kind of body the server sent.
fn check_body(body: AnswerBody, answer: &songbind::Answer) -> Option<String> {
    let content_type = answer
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let right = match body {
        AnswerBody::Json => {
            content_type.contains("json")
                && serde_json::from_str::<serde_json::Value>(&answer.body).is_ok()
        }
        AnswerBody::Html => content_type.starts_with("text/html") && answer.body.contains("<html"),
        AnswerBody::Text => content_type.starts_with("text/plain") && !answer.body.is_empty(),
        AnswerBody::Empty => answer.body.is_empty(),
    };
    (!right).then(|| {
        format!(
            "the answer kept a {content_type:?} body of {} bytes, not a {body:?} body",
            answer.body.len()
        )
    })
}

/// Checks a successful job's outputs: how many, numbered, named like the
/// provider's ids, served by the emulator, each downloadable as audio.
fn check_outputs(
    plan: &JobPlan,
    count: usize,
    output: &JobOutput,
    attempt: &Attempt,
    observed: &Observed,
    problems: &mut Vec<String>,
) {
    let provider = plan.operation.provider();
    if output.provider != provider_name(plan.operation) {
        problems.push(format!("the output names {} as provider", output.provider));
    }
    if output.outputs.len() != count {
        problems.push(format!(
            "{} outputs, {count} expected",
            output.outputs.len()
        ));
    }
    let versions: Vec<Option<u32>> = output.outputs.iter().map(|o| o.version).collect();
    let numbered: Vec<Option<u32>> = (1..=output.outputs.len() as u32).map(Some).collect();
    if versions != numbered {
        problems.push(format!("outputs numbered {versions:?}"));
    }
    let id_ok = match provider {
        Provider::Soundverse => output.id.starts_with("msg_"),
        Provider::SoundPiece => output.id.starts_with("op_"),
        Provider::MusicGpt => !output.id.is_empty(),
        // The `song-id` header: 20 letters and digits.
        Provider::ElevenLabs => {
            output.id.len() == 20 && output.id.chars().all(|c| c.is_ascii_alphanumeric())
        }
    };
    if !id_ok {
        problems.push(format!(
            "job id {:?} is not a {} id",
            output.id,
            provider.name()
        ));
    }
    if provider == Provider::ElevenLabs {
        match &attempt.audio {
            Some(audio) => check_audio(plan, audio, problems),
            None => problems.push("the compose handed back no audio".to_owned()),
        }
    }
    let served = format!("{}/files/", observed.root_url);
    for out in output
        .outputs
        .iter()
        .filter(|_| provider != Provider::ElevenLabs)
    {
        if !out.url.starts_with(&served) {
            problems.push(format!(
                "output URL {} is not served by the emulator",
                out.url
            ));
        }
        if provider == Provider::Soundverse && out.title.is_none() {
            problems.push(format!("output {:?} has no title", out.version));
        }
    }
    if attempt.downloads.len() != output.outputs.len() {
        problems.push(format!(
            "{} of {} outputs were downloaded",
            attempt.downloads.len(),
            output.outputs.len()
        ));
    }
    for (url, fetched) in &attempt.downloads {
        if let Err(reason) = fetched {
            problems.push(format!("downloading {url}: {reason}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{FaultKind, Target};
    use songbind::Output;

    const ROOT: &str = "http://127.0.0.1:1";
    const KEY: &str = "sk_live_Q7fRk2LmZp9XvB4nTc8WdY3s";

    fn plan(operation: Operation, fault: FaultKind) -> JobPlan {
        JobPlan {
            operation,
            fault,
            n_variations: 2,
            ..JobPlan::new(5, 0)
        }
    }

    fn create(plan: &JobPlan, key: &str) -> RecordedRequest {
        let (method, path) = plan.operation.create_route();
        RecordedRequest {
            provider: Some(plan.operation.provider()),
            method,
            path: path.to_owned(),
            query: None,
            headers: Default::default(),
            body: serde_json::json!({ "idempotency_key": key })
                .to_string()
                .into(),
            form: Vec::new(),
            received_at: std::time::SystemTime::now(),
        }
    }

    fn observed(plan: &JobPlan, jobs: usize, creates: Vec<RecordedRequest>) -> Observed {
        Observed {
            jobs_created: Provider::ALL
                .iter()
                .map(|p| {
                    (
                        *p,
                        if *p == plan.operation.provider() {
                            jobs
                        } else {
                            0
                        },
                    )
                })
                .collect(),
            requests: creates,
            root_url: ROOT.to_owned(),
            api_key: KEY.to_owned(),
        }
    }

    fn success(id: &str, count: u32) -> Ended {
        let outputs: Vec<Output> = (1..=count)
            .map(|v| Output::new(format!("{ROOT}/files/{id}_v{v}.wav"), Some(v)))
            .collect();
        Ended::Finished(Attempt {
            downloads: outputs.iter().map(|o| (o.url.clone(), Ok(()))).collect(),
            audio: None,
            written_on_error: None,
            result: Ok(JobOutput {
                provider: ProviderName::SoundPiece,
                id: id.to_owned(),
                outputs,
            }),
        })
    }

    #[test]
    fn a_lost_soundpiece_reply_retried_with_one_key_is_right() {
        let plan = plan(Operation::SoundPieceRemix, FaultKind::LostReply);
        let seen = observed(&plan, 1, vec![create(&plan, "k1"), create(&plan, "k1")]);
        let record = judge(&plan, success("op_x", 2), &seen, Duration::ZERO);
        assert_eq!(record.verdict, Verdict::Outputs, "{record:?}");
        assert_eq!(record.duplicates, 0);
    }

    #[test]
    fn a_second_job_or_a_new_key_on_retry_is_wrong_and_counted() {
        let plan = plan(Operation::SoundPieceRemix, FaultKind::LostReply);
        let seen = observed(&plan, 2, vec![create(&plan, "k1"), create(&plan, "k2")]);
        let record = judge(&plan, success("op_x", 2), &seen, Duration::ZERO);
        assert_eq!(record.duplicates, 1);
        let Verdict::Wrong(reason) = &record.verdict else {
            panic!("{record:?}");
        };
        assert!(reason.contains("created 2 jobs"), "{reason}");
        assert!(reason.contains("different idempotency keys"), "{reason}");
    }

    #[test]
    fn success_where_an_error_was_due_is_wrong() {
        let plan = plan(Operation::SoundPieceRemix, FaultKind::NoCredits);
        let seen = observed(&plan, 0, vec![create(&plan, "k1")]);
        let record = judge(&plan, success("op_x", 2), &seen, Duration::ZERO);
        assert!(
            matches!(&record.verdict, Verdict::Wrong(r) if r.contains("InsufficientCredits")),
            "{record:?}"
        );
    }

    #[test]
    fn outputs_not_served_by_the_emulator_or_not_audio_are_wrong() {
        let plan = plan(Operation::SoundPieceRemix, FaultKind::None);
        let seen = observed(&plan, 1, vec![create(&plan, "k1")]);
        let Ended::Finished(mut attempt) = success("op_x", 2) else {
            unreachable!()
        };
        if let Ok(output) = &mut attempt.result {
            output.outputs[1].url = "https://elsewhere.example/a.wav".into();
        }
        attempt.downloads[0].1 = Err("HTTP 404".into());
        let record = judge(&plan, Ended::Finished(attempt), &seen, Duration::ZERO);
        let Verdict::Wrong(reason) = &record.verdict else {
            panic!("{record:?}");
        };
        assert!(reason.contains("not served by the emulator"), "{reason}");
        assert!(reason.contains("HTTP 404"), "{reason}");
    }

    /// MusicGPT's answer to a 429, with `Retry-After` when given.
    fn rate_limited(retry_after: Option<Duration>) -> Error {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(wait) = retry_after {
            headers.insert(
                reqwest::header::RETRY_AFTER,
                wait.as_secs().to_string().parse().unwrap(),
            );
        }
        Error::from_response(
            ProviderName::MusicGpt,
            reqwest::StatusCode::TOO_MANY_REQUESTS,
            &headers,
            "",
        )
    }

    #[test]
    fn a_rate_limit_must_carry_the_wait_the_provider_asked_for() {
        let plan = plan(
            Operation::MusicGptRemixUrl,
            FaultKind::CreateStorm {
                status: 429,
                retry_after: 1,
            },
        );
        let creates = (0..4).map(|_| create(&plan, "")).collect();
        let seen = observed(&plan, 0, creates);
        let ended = |retry_after| {
            Ended::Finished(Attempt {
                result: Err(rate_limited(retry_after)),
                downloads: Vec::new(),
                audio: None,
                written_on_error: None,
            })
        };
        let right = judge(
            &plan,
            ended(Some(Duration::from_secs(1))),
            &seen,
            Duration::ZERO,
        );
        assert_eq!(right.verdict, Verdict::TypedError, "{right:?}");
        let wrong = judge(&plan, ended(None), &seen, Duration::ZERO);
        assert!(matches!(wrong.verdict, Verdict::Wrong(_)), "{wrong:?}");
    }

    #[test]
    fn hangs_and_panics_are_their_own_verdicts() {
        let plan = plan(Operation::SoundverseGenerate, FaultKind::None);
        let seen = observed(&plan, 1, Vec::new());
        let hang = judge(
            &plan,
            Ended::Hang(Duration::from_secs(1)),
            &seen,
            Duration::ZERO,
        );
        assert_eq!(hang.verdict, Verdict::Hang);
        let panic = judge(&plan, Ended::Panic("boom".into()), &seen, Duration::ZERO);
        assert_eq!(panic.verdict, Verdict::Panic);
        assert!(panic.actual.contains("boom"));
    }

    /// The error `provider` maps an answer to (`status`, `content_type`,
    /// `body`, `Retry-After` when given), as its client would return it.
    fn answered(
        provider: ProviderName,
        status: u16,
        content_type: &str,
        body: &str,
        retry_after: Option<u64>,
    ) -> Error {
        let mut headers = reqwest::header::HeaderMap::new();
        if !content_type.is_empty() {
            headers.insert(reqwest::header::CONTENT_TYPE, content_type.parse().unwrap());
        }
        if let Some(secs) = retry_after {
            headers.insert(
                reqwest::header::RETRY_AFTER,
                secs.to_string().parse().unwrap(),
            );
        }
        Error::from_response(
            provider,
            reqwest::StatusCode::from_u16(status).unwrap(),
            &headers,
            body,
        )
    }

    fn failed(error: Error) -> Ended {
        Ended::Finished(Attempt {
            result: Err(error),
            downloads: Vec::new(),
            audio: None,
            written_on_error: None,
        })
    }

    #[test]
    fn a_key_in_the_error_is_a_leak_and_a_wrong_job_even_when_the_error_is_right() {
        let plan = plan(
            Operation::SoundPieceRemix,
            FaultKind::EchoKey {
                target: Target::Create,
                status: 400,
                pad: 0,
            },
        );
        let seen = observed(&plan, 0, vec![create(&plan, "k1")]);
        let echoed = |text: &str| {
            answered(
                ProviderName::SoundPiece,
                400,
                "application/json",
                &serde_json::json!({ "detail": format!("bad request; you sent Bearer {text}") })
                    .to_string(),
                None,
            )
        };
        let scrubbed = judge(&plan, failed(echoed("***")), &seen, Duration::ZERO);
        assert_eq!(scrubbed.verdict, Verdict::TypedError, "{scrubbed:?}");
        assert_eq!(scrubbed.keys_leaked, 0);

        let leaked = judge(&plan, failed(echoed(KEY)), &seen, Duration::ZERO);
        assert_eq!(leaked.keys_leaked, 1);
        let Verdict::Wrong(reason) = &leaked.verdict else {
            panic!("{leaked:?}");
        };
        assert!(reason.contains("the API key leaked"), "{reason}");
        assert!(
            !reason.contains(KEY) && !leaked.actual.contains(KEY),
            "{leaked:?}"
        );

        // A piece of the key leaks what it shows.
        let piece = &KEY[8..KEY.len() - 6];
        let partial = judge(&plan, failed(echoed(piece)), &seen, Duration::ZERO);
        assert_eq!(partial.keys_leaked, 1, "{partial:?}");
        assert_eq!(partial.known_bug, None);

        // The start of the key where an excerpt was cut is the known bug:
        // counted apart while it is tolerated, a leak otherwise.
        let cut = format!("{}…", &KEY[..KEY.len() - 6]);
        let record = judge(&plan, failed(echoed(&cut)), &seen, Duration::ZERO);
        if TOLERATE_KEY_CUT_BY_EXCERPT {
            assert_eq!(record.verdict, Verdict::TypedError, "{record:?}");
            assert_eq!(record.keys_leaked, 0);
            assert!(record.known_bug.is_some(), "{record:?}");
        } else {
            assert_eq!(record.keys_leaked, 1, "{record:?}");
        }
        // ... but not when the whole key shows elsewhere too.
        let both = format!("{cut} {KEY}");
        let record = judge(&plan, failed(echoed(&both)), &seen, Duration::ZERO);
        assert_eq!(record.keys_leaked, 1, "{record:?}");
    }

    #[test]
    fn a_key_is_cut_by_an_excerpt_only_where_its_start_ends_in_an_ellipsis() {
        let cut = format!("authorization: Bearer {}…", &KEY[..20]);
        assert!(only_cut_by_excerpt(&cut, KEY));
        assert!(!only_cut_by_excerpt(&format!("{cut} {}", &KEY[10..]), KEY));
        assert!(!only_cut_by_excerpt(&format!("{}…", &KEY[3..25]), KEY));
        assert!(!only_cut_by_excerpt("no key here…", KEY));
    }

    /// A WAV file of `seconds` at 8 kHz (mono, 16-bit), cut to `keep` bytes.
    fn wav(seconds: u32, keep: Option<usize>) -> Vec<u8> {
        let data = seconds * 16_000;
        let mut bytes = b"RIFF".to_vec();
        bytes.extend_from_slice(&(36 + data).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&8_000u32.to_le_bytes());
        bytes.extend_from_slice(&16_000u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&16u16.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&data.to_le_bytes());
        bytes.resize(44 + data as usize, 7);
        if let Some(keep) = keep {
            bytes.truncate(keep);
        }
        bytes
    }

    fn composed(bytes: Vec<u8>) -> Ended {
        let composed = songbind::elevenlabs::Composed {
            song_id: Some("AbCdEfGhIjKlMnOpQrSt".to_owned()),
            content_type: Some("audio/wav".to_owned()),
            format: songbind::elevenlabs::AudioFormat::Wav,
            bytes: bytes.len() as u64,
        };
        Ended::Finished(Attempt {
            result: Ok(JobOutput {
                provider: ProviderName::ElevenLabs,
                id: "AbCdEfGhIjKlMnOpQrSt".to_owned(),
                outputs: vec![Output::new("memory:vec", Some(1))],
            }),
            downloads: vec![("memory:vec".to_owned(), Ok(()))],
            audio: Some(AudioWritten {
                composed,
                bytes,
                metadata: None,
            }),
            written_on_error: None,
        })
    }

    fn compose_request(plan: &JobPlan, key: &str) -> RecordedRequest {
        let mut request = create(plan, "");
        request
            .headers
            .insert("xi-api-key".to_owned(), key.to_owned());
        request
    }

    #[test]
    fn a_compose_must_write_a_whole_wav_of_the_requested_length_with_the_key_in_its_header() {
        let plan = JobPlan {
            music_seconds: 3,
            ..plan(Operation::ElevenLabsCompose, FaultKind::None)
        };
        let seen = observed(&plan, 1, vec![compose_request(&plan, KEY)]);
        let whole = judge(&plan, composed(wav(3, None)), &seen, Duration::ZERO);
        assert_eq!(whole.verdict, Verdict::Outputs, "{whole:?}");

        let short = judge(&plan, composed(wav(3, Some(20_044))), &seen, Duration::ZERO);
        assert!(
            matches!(&short.verdict, Verdict::Wrong(r) if r.contains("short file")),
            "{short:?}"
        );
        let longer = judge(&plan, composed(wav(4, None)), &seen, Duration::ZERO);
        assert!(matches!(longer.verdict, Verdict::Wrong(_)), "{longer:?}");

        let elsewhere = observed(&plan, 1, vec![create(&plan, "")]);
        let record = judge(&plan, composed(wav(3, None)), &elsewhere, Duration::ZERO);
        assert!(
            matches!(&record.verdict, Verdict::Wrong(r) if r.contains("xi-api-key")),
            "{record:?}"
        );
        let twice = observed(&plan, 2, vec![compose_request(&plan, KEY)]);
        let record = judge(&plan, composed(wav(3, None)), &twice, Duration::ZERO);
        assert_eq!(record.duplicates, 1, "{record:?}");
    }

    #[test]
    fn a_200_that_is_not_audio_must_end_as_its_provider_error_with_nothing_in_the_sink() {
        let plan = plan(
            Operation::ElevenLabsCompose,
            FaultKind::NotAudio { json: false },
        );
        let seen = observed(&plan, 0, vec![compose_request(&plan, KEY)]);
        let page = || {
            answered(
                ProviderName::ElevenLabs,
                200,
                "text/html",
                "<html>Just a moment...</html>",
                None,
            )
        };
        let right = judge(&plan, failed(page()), &seen, Duration::ZERO);
        assert_eq!(right.verdict, Verdict::TypedError, "{right:?}");
        let leaky = Ended::Finished(Attempt {
            written_on_error: Some(29),
            ..match failed(page()) {
                Ended::Finished(attempt) => attempt,
                _ => unreachable!(),
            }
        });
        let wrong = judge(&plan, leaky, &seen, Duration::ZERO);
        assert!(
            matches!(&wrong.verdict, Verdict::Wrong(r) if r.contains("reached the sink")),
            "{wrong:?}"
        );
        // Saved as a song: wrong whatever it holds.
        let saved = judge(&plan, composed(wav(3, None)), &seen, Duration::ZERO);
        assert!(matches!(saved.verdict, Verdict::Wrong(_)), "{saved:?}");
    }

    #[test]
    fn a_cut_audio_body_reported_as_a_success_is_the_known_bug_or_wrong() {
        let plan = JobPlan {
            music_seconds: 3,
            ..plan(
                Operation::ElevenLabsCompose,
                FaultKind::EndStream { after_events: 1 },
            )
        };
        let seen = observed(&plan, 1, vec![compose_request(&plan, KEY)]);
        for bytes in [Vec::new(), wav(3, Some(16_044))] {
            let record = judge(&plan, composed(bytes), &seen, Duration::ZERO);
            if TOLERATE_SHORT_AUDIO_REPORTED_AS_SUCCESS {
                assert_eq!(record.verdict, Verdict::KnownBug, "{record:?}");
                assert!(record.known_bug.is_some());
            } else {
                assert!(matches!(record.verdict, Verdict::Wrong(_)), "{record:?}");
            }
        }
        // A whole song where the body was cut is not the known bug: wrong.
        let record = judge(&plan, composed(wav(3, None)), &seen, Duration::ZERO);
        assert!(matches!(record.verdict, Verdict::Wrong(_)), "{record:?}");
        // The typed error is right.
        let error = Error::StreamEndedEarly {
            provider: ProviderName::ElevenLabs,
            message_id: None,
            resume: None,
        };
        let record = judge(&plan, failed(error), &seen, Duration::ZERO);
        assert_eq!(record.verdict, Verdict::TypedError, "{record:?}");
    }

    #[test]
    fn wav_headers_are_parsed() {
        let whole = wav_data(&wav(2, None)).unwrap();
        assert_eq!(
            whole,
            WavData {
                rate: 8_000,
                block: 2,
                declared: 32_000,
                present: 32_000
            }
        );
        assert!(wav_data(&wav(2, Some(1_000))).is_err());
        assert!(wav_data(b"not audio").is_err());
    }

    #[test]
    fn leaks_are_found_whole_or_in_pieces_of_the_secret_part() {
        assert_eq!(leaked_key_at("nothing here", KEY), None);
        assert_eq!(leaked_key_at(&format!("key={KEY}"), KEY), Some(4));
        assert!(leaked_key_at("authorization: Bearer sk_live_Q7fRk2LmZp9X…", KEY).is_some());
        // The public prefix alone, or fewer than 12 secret characters, is not.
        assert_eq!(leaked_key_at("sk_live_Q7fRk2LmZp9", KEY), None);
        assert_eq!(leaked_key_at("***", KEY), None);
    }

    #[test]
    fn an_error_page_must_keep_its_status_retry_after_and_body() {
        let plan = plan(
            Operation::MusicGptRemixUrl,
            FaultKind::ErrorPage {
                target: Target::Create,
                status: 502,
                body: songbind_emulator::PageBody::Html,
                count: 1,
                retry_after: 1,
            },
        );
        let seen = observed(&plan, 0, vec![create(&plan, "")]);
        let page = "<html><head><title>502 Bad Gateway</title></head></html>";
        let right = answered(ProviderName::MusicGpt, 502, "text/html", page, Some(1));
        let record = judge(&plan, failed(right), &seen, Duration::ZERO);
        assert_eq!(record.verdict, Verdict::TypedError, "{record:?}");

        for (wrong, why) in [
            (
                answered(ProviderName::MusicGpt, 500, "text/html", page, Some(1)),
                "HTTP Some(500)",
            ),
            (
                answered(ProviderName::MusicGpt, 502, "text/html", page, None),
                "Retry-After None",
            ),
            (
                answered(
                    ProviderName::MusicGpt,
                    502,
                    "text/plain",
                    "bad gateway",
                    Some(1),
                ),
                "not a Html body",
            ),
            (
                answered(ProviderName::Soundverse, 502, "text/html", page, Some(1)),
                "expected Error::Provider",
            ),
        ] {
            let record = judge(&plan, failed(wrong), &seen, Duration::ZERO);
            let Verdict::Wrong(reason) = &record.verdict else {
                panic!("{record:?}");
            };
            assert!(reason.contains(why), "{why}: {reason}");
        }
        // Resent where it must not be: a second create is wrong.
        let twice = observed(&plan, 0, vec![create(&plan, ""), create(&plan, "")]);
        let right = answered(ProviderName::MusicGpt, 502, "text/html", page, Some(1));
        let record = judge(&plan, failed(right), &twice, Duration::ZERO);
        assert!(
            matches!(&record.verdict, Verdict::Wrong(r) if r.contains("2 create requests")),
            "{record:?}"
        );
    }

    #[test]
    fn a_failure_after_the_create_is_matched_at_its_root_and_polls_are_counted() {
        let plan = plan(
            Operation::SoundPieceRemix,
            FaultKind::EchoKey {
                target: Target::Poll,
                status: 502,
                pad: 0,
            },
        );
        let poll = RecordedRequest {
            method: Method::GET,
            path: "/v1/create.remix_song".to_owned(),
            body: Default::default(),
            ..create(&plan, "k1")
        };
        let error = || {
            // What SoundPiece's client returns: the answer, naming the
            // operation to resume.
            let mut answer = answered(
                ProviderName::SoundPiece,
                502,
                "text/plain; charset=utf-8",
                "502 Bad Gateway\n\nrequest headers:\nauthorization: Bearer ***\n",
                None,
            );
            if let Error::Provider { resume, .. } = &mut answer {
                *resume = Some(Box::new(songbind::ResumeWith::OperationId("op_1".into())));
            }
            assert!(answer.resume_with().is_some(), "{answer:?}");
            answer
        };
        let mut requests = vec![create(&plan, "k1")];
        requests.extend(std::iter::repeat_n(poll.clone(), 4));
        let seen = observed(&plan, 1, requests);
        let record = judge(&plan, failed(error()), &seen, Duration::ZERO);
        assert_eq!(record.verdict, Verdict::TypedError, "{record:?}");

        let once = observed(&plan, 1, vec![create(&plan, "k1"), poll]);
        let record = judge(&plan, failed(error()), &once, Duration::ZERO);
        assert!(
            matches!(&record.verdict, Verdict::Wrong(r) if r.contains("1 status polls reached the provider, 4 expected")),
            "{record:?}"
        );
    }
}
