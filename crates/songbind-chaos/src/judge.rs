//! Checks how a job actually ended against what its fault calls for.
//!
//! A job is right only when every check holds: the outcome (the outputs, or
//! the typed error and its details), the jobs the provider created (never a
//! second one), the create requests it received (retries only where the
//! client may resend) and, for SoundPiece, one idempotency key across them.

use std::time::Duration;

use reqwest::Method;
use songbind::{Error, JobOutput, ProviderName};
use songbind_emulator::{Provider, RecordedRequest};

use crate::plan::{ExpectedError, ExpectedOutcome, JobPlan};
use crate::report::{JobRecord, Verdict};
use crate::worker::Attempt;

/// How a job's task ended.
#[derive(Debug)]
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
}

/// The provider's name as `songbind` spells it in errors and outputs.
fn provider_name(provider: Provider) -> ProviderName {
    match provider {
        Provider::Soundverse => ProviderName::Soundverse,
        Provider::SoundPiece => ProviderName::SoundPiece,
        Provider::MusicGpt => ProviderName::MusicGpt,
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
    match ended {
        Ended::Hang(after) => {
            return JobRecord {
                plan: plan.clone(),
                expectation,
                actual: format!("still running after {after:?}"),
                verdict: Verdict::Hang,
                jobs_created: jobs_at_provider,
                duplicates,
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
                    if let Some(problem) = check_error(expected, error, provider_name(provider)) {
                        problems.push(problem);
                    }
                }
                (expected, _) => problems.push(format!("expected {expected}")),
            }
            actual = describe(&attempt.result);
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
        verdict: if problems.is_empty() {
            verdict_if_right
        } else {
            Verdict::Wrong(problems.join("; "))
        },
        jobs_created: jobs_at_provider,
        duplicates,
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
    match error.root() {
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
        Error::Transport(_) => "Transport",
        Error::Decode { .. } => "Decode",
        Error::Validation { .. } => "Validation",
        Error::Webhook(_) => "Webhook",
        Error::Io { .. } => "Io",
        Error::Config(_) => "Config",
        _ => "(another case)",
    }
}

/// Why `error` is not the `expected` one, if it is not.
fn check_error(expected: &ExpectedError, error: &Error, provider: ProviderName) -> Option<String> {
    let right = match (expected, error.root()) {
        (ExpectedError::Transport, Error::Transport(_)) => true,
        (
            ExpectedError::StreamEndedEarly { message_id_known },
            Error::StreamEndedEarly {
                provider: at,
                message_id,
            },
        ) => {
            *at == provider
                && match message_id {
                    Some(id) => *message_id_known && id.starts_with("msg_"),
                    None => !message_id_known,
                }
        }
        (ExpectedError::IdleTimeout, Error::Timeout { .. }) => true,
        (ExpectedError::JobFailed, Error::JobFailed { provider: at, .. })
        | (ExpectedError::InsufficientCredits, Error::InsufficientCredits { provider: at, .. }) => {
            *at == provider
        }
        (
            ExpectedError::RateLimited { retry_after },
            Error::RateLimited {
                provider: at,
                retry_after: got,
                ..
            },
        )
        | (
            ExpectedError::ServiceUnavailable { retry_after },
            Error::ServiceUnavailable {
                provider: at,
                retry_after: got,
                ..
            },
        ) => *at == provider && *got == Some(*retry_after),
        (
            ExpectedError::ProviderStatus(status),
            Error::Provider {
                provider: at,
                answer,
                ..
            },
        ) => *at == provider && answer.status == *status,
        _ => false,
    };
    (!right).then(|| format!("expected {expected}"))
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
    if output.provider != provider_name(provider) {
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
    };
    if !id_ok {
        problems.push(format!(
            "job id {:?} is not a {} id",
            output.id,
            provider.name()
        ));
    }
    let served = format!("{}/files/", observed.root_url);
    for out in &output.outputs {
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
    use crate::plan::{FaultKind, Operation};
    use songbind::Output;

    const ROOT: &str = "http://127.0.0.1:1";

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
        }
    }

    fn success(id: &str, count: u32) -> Ended {
        let outputs: Vec<Output> = (1..=count)
            .map(|v| Output::new(format!("{ROOT}/files/{id}_v{v}.wav"), Some(v)))
            .collect();
        Ended::Finished(Attempt {
            downloads: outputs.iter().map(|o| (o.url.clone(), Ok(()))).collect(),
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
}
