//! SoundPiece jobs end to end against the emulator: submit, long-poll,
//! retries that reuse one idempotency key, timeouts and cancellation.

use std::time::Duration;

use axum::http::Method;
use songbind::soundpiece::{RemixRequest, SoundPiece};
use songbind::{Error, JobEvent, RetryPolicy, Secret, WaitOptions};
use songbind_emulator::{Emulator, Fault, FaultRule, Pacing, Provider};
use tokio_util::sync::CancellationToken;

const CREATE: &str = "/v1/create.remix_song";

fn client(emulator: &Emulator) -> SoundPiece {
    SoundPiece::new(
        &emulator.base_url(Provider::SoundPiece),
        &Secret::from("spk_test"),
    )
    .expect("client")
    .retry_policy(RetryPolicy {
        base_delay: Duration::from_millis(1),
        ..RetryPolicy::default()
    })
}

fn request() -> RemixRequest {
    RemixRequest {
        n_variations: 2,
        ..RemixRequest::new(
            "https://example.com/source.mp3",
            "[Verse]\nThis is a demo song",
            "rock song, energetic, male vocal",
        )
    }
}

fn options() -> WaitOptions {
    WaitOptions::default()
        .poll_interval(Duration::from_millis(1))
        .timeout(Duration::from_secs(20))
}

/// The idempotency keys of every create the emulator received.
fn create_keys(emulator: &Emulator) -> Vec<String> {
    emulator
        .received()
        .iter()
        .filter(|r| r.method == Method::PUT && r.path == CREATE)
        .map(|r| {
            r.json().expect("JSON body")["idempotency_key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_remix_waits_to_ready_outputs() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let job = client(&emulator).submit_remix(&request()).await.unwrap();
    assert!(job.id().starts_with("op_"), "{}", job.id());
    let output = job.wait(&options()).await.unwrap();
    assert_eq!(output.outputs.len(), 2);
    for (index, out) in output.outputs.iter().enumerate() {
        assert_eq!(out.version, Some(index as u32 + 1));
        assert!(out.url.starts_with(emulator.root_url()), "{}", out.url);
        assert!(out.expires_at.is_some());
    }
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
}

#[tokio::test]
async fn events_report_the_stages_then_each_output_then_completion() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let job = client(&emulator).submit_remix(&request()).await.unwrap();
    let events: Vec<JobEvent> = futures::StreamExt::collect::<Vec<_>>(job.events(&options()))
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let stages: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            JobEvent::Stage { stage, .. } => Some(stage.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(stages.first(), Some(&"processing"));
    assert_eq!(stages.last(), Some(&"completed"), "SoundPiece's ready");
    let outputs = events
        .iter()
        .filter(|e| matches!(e, JobEvent::Output(_)))
        .count();
    assert_eq!(outputs, 2);
    assert!(matches!(events.last(), Some(JobEvent::Completed(done)) if done.outputs.len() == 2));
}

#[tokio::test]
async fn lost_reply_is_retried_with_same_idempotency_key() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(
        FaultRule::new(Fault::LoseReply)
            .provider(Provider::SoundPiece)
            .route(Method::PUT, CREATE),
    );
    let job = client(&emulator).submit_remix(&request()).await.unwrap();
    let keys = create_keys(&emulator);
    assert_eq!(keys.len(), 2, "the lost reply was retried once");
    assert_eq!(keys[0], keys[1], "the retry reused the generated key");
    assert_eq!(
        emulator.jobs_created(Provider::SoundPiece),
        1,
        "no second job"
    );
    job.wait(&options()).await.unwrap();
}

#[tokio::test]
async fn a_callers_idempotency_key_is_sent_as_given() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let key = uuid::Uuid::new_v4();
    let mut request = request();
    request.idempotency_key = Some(key);
    let first = client(&emulator).submit_remix(&request).await.unwrap();
    let second = client(&emulator).submit_remix(&request).await.unwrap();
    assert_eq!(first.id(), second.id(), "same key, same operation");
    assert_eq!(create_keys(&emulator), [key.to_string(), key.to_string()]);
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_wait_the_provider_asks_for() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(
        FaultRule::new(Fault::Status {
            status: 429,
            retry_after: Some(0),
        })
        .route(Method::PUT, CREATE)
        .times(2),
    );
    client(&emulator).submit_remix(&request()).await.unwrap();
    assert_eq!(create_keys(&emulator).len(), 3);
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
}

#[tokio::test]
async fn a_rate_limit_that_outlasts_the_policy_is_a_typed_error_with_retry_after() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(
        FaultRule::new(Fault::Status {
            status: 429,
            retry_after: Some(0),
        })
        .always(),
    );
    let error = client(&emulator)
        .retry_policy(RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        })
        .submit_remix(&request())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::RateLimited { retry_after: Some(d), .. } if d.is_zero()),
        "{error:?}"
    );
    assert_eq!(create_keys(&emulator).len(), 2);
}

#[tokio::test]
async fn invalid_requests_are_refused_before_anything_is_sent() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let cases: Vec<(RemixRequest, &str, &str)> = vec![
        (
            RemixRequest {
                n_variations: 4,
                ..request()
            },
            "n_variations",
            "between 1 and 3",
        ),
        (
            RemixRequest {
                n_variations: 0,
                ..request()
            },
            "n_variations",
            "between 1 and 3",
        ),
        (
            RemixRequest {
                lyrics: "a".repeat(3001),
                ..request()
            },
            "lyrics",
            "1 to 3000",
        ),
        (
            RemixRequest {
                prompt: " ".into(),
                ..request()
            },
            "prompt",
            "must not be empty",
        ),
        (
            RemixRequest {
                prompt: "p".repeat(1025),
                ..request()
            },
            "prompt",
            "1 to 1024",
        ),
        (
            RemixRequest {
                source_url: "not a url".into(),
                ..request()
            },
            "source_url",
            "absolute URL",
        ),
        (
            RemixRequest {
                callback_url: Some("http://example.com/hook".into()),
                ..request()
            },
            "callback_url",
            "https",
        ),
    ];
    for (request, field, limit) in cases {
        let error = client(&emulator).submit_remix(&request).await.unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(&error, Error::Validation { field: f, .. } if f == field),
            "{text}"
        );
        assert!(text.contains(limit), "{text}");
    }
    assert!(
        emulator.received().is_empty(),
        "nothing reached the provider"
    );
}

#[tokio::test]
async fn a_failed_operation_is_a_typed_job_failure() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let mut request = request();
    request.prompt = "rock [fail]".into();
    let job = client(&emulator).submit_remix(&request).await.unwrap();
    let id = job.id().to_owned();
    let error = job.wait(&options()).await.unwrap_err();
    assert!(
        matches!(&error, Error::JobFailed { id: failed, .. } if *failed == id),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_key_without_credits_maps_to_insufficient_credits() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let client = SoundPiece::new(
        &emulator.base_url(Provider::SoundPiece),
        &Secret::from("spk_test_no_credits"),
    )
    .unwrap();
    let error = client.submit_remix(&request()).await.unwrap_err();
    assert!(
        matches!(&error, Error::InsufficientCredits { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn waiting_longer_than_the_callers_timeout_is_a_typed_timeout() {
    let emulator = Emulator::builder()
        .pacing(Pacing::realtime())
        .start()
        .await
        .unwrap();
    let job = client(&emulator).submit_remix(&request()).await.unwrap();
    let error = job
        .wait(&WaitOptions::default().timeout(Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert!(matches!(&error, Error::Timeout { after, .. } if *after == Duration::from_millis(100)));
    assert!(
        error.resume_with().is_some(),
        "a timed-out wait names the operation: {error}"
    );
}

#[tokio::test]
async fn cancelling_the_wait_ends_it_with_a_typed_error() {
    let emulator = Emulator::builder()
        .pacing(Pacing::realtime())
        .start()
        .await
        .unwrap();
    let job = client(&emulator).submit_remix(&request()).await.unwrap();
    let token = CancellationToken::new();
    let waiting = tokio::spawn({
        let options = WaitOptions::default().cancel_on(token.clone());
        async move { job.wait(&options).await }
    });
    // Cancel once the first long-poll has reached the emulator.
    emulator
        .wait_for_requests(2, Duration::from_secs(10))
        .await
        .unwrap();
    token.cancel();
    let error = waiting.await.unwrap().unwrap_err();
    assert!(matches!(&error, Error::Cancelled { .. }), "{error:?}");
}
