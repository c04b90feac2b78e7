//! Errors are matched as they are, and say what to resume with (issue 18,
//! item 7): over loopback, for every provider, a failure after the create
//! is its own case (`matches!(e, Error::Timeout { .. })`) and
//! `resume_with()` names the id or key whenever the create may have been
//! taken; a refusal that says it was not taken, a value refused before
//! sending and a connection that never opened name nothing.

mod support;

use std::time::Duration;

use axum::http::Method;
use songbind::elevenlabs::{ComposeRequest, ElevenLabs};
use songbind::musicgpt::{AudioInput, MusicGpt};
use songbind::soundpiece::{RemixRequest, SoundPiece};
use songbind::soundverse::{GenerateRequest, Soundverse};
use songbind::sse::StreamLimits;
use songbind::{Error, RequestOptions, ResumeWith, RetryPolicy, Secret, WaitOptions};
use songbind_emulator::{Emulator, Fault, FaultRule, Provider};
use support::front::{Front, Step, raw};

const KEY: &str = "sk_live_0a1b2c3d4e5f";

/// SoundPiece's create and its status lookup share one path.
const SOUNDPIECE_CREATE: &str = "/v1/create.remix_song";

fn fast() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(1),
        max_retry_after: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

fn wait() -> WaitOptions {
    WaitOptions::default()
        .poll_interval(Duration::from_millis(1))
        .timeout(Duration::from_secs(20))
}

fn soundpiece(base: &str) -> SoundPiece {
    SoundPiece::new(base, &Secret::from(KEY))
        .unwrap()
        .retry_policy(fast())
}

fn soundverse(base: &str) -> Soundverse {
    Soundverse::new(base, &Secret::from(KEY))
        .unwrap()
        .retry_policy(fast())
}

fn musicgpt(base: &str) -> MusicGpt {
    MusicGpt::new(base, &Secret::from(KEY))
        .unwrap()
        .retry_policy(fast())
}

fn remix(key: songbind::Uuid) -> RemixRequest {
    RemixRequest::new(
        "https://example.com/source.mp3",
        "[Verse]\nThis is a demo song",
        "rock song, energetic, male vocal",
    )
    .idempotency_key(key)
}

fn musicgpt_remix(prompt: &str) -> songbind::musicgpt::RemixRequest {
    songbind::musicgpt::RemixRequest::new(
        AudioInput::Url("https://www.youtube.com/watch?v=example123".into()),
        prompt,
    )
}

/// The emulator, answering every request of `provider` to `method path`
/// with `fault` (each one: retries meet it too).
async fn emulator_with(provider: Provider, method: Method, path: &str, fault: Fault) -> Emulator {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(
        FaultRule::new(fault)
            .provider(provider)
            .route(method, path)
            .always(),
    );
    emulator
}

fn status(status: u16) -> Fault {
    Fault::Status {
        status,
        retry_after: Some(0),
    }
}

/// An SSE answer with these `data:` lines, then a clean end.
fn sse(lines: &[&str]) -> Step {
    let body: String = lines.iter().map(|l| format!("data: {l}\n\n")).collect();
    Step::Answer(raw(
        "200 OK",
        &[("content-type", "text/event-stream")],
        &body,
    ))
}

/// A loopback address nothing listens on: bound on port 0, then let go.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

// ------------------------------------------------------------------ SoundPiece

#[tokio::test]
async fn soundpiece_failures_after_the_put_are_their_own_case_and_name_the_key() {
    let key = songbind::Uuid::new_v4();
    let named = Some(ResumeWith::IdempotencyKey(key));

    // Every attempt answered 500: the operation may exist.
    let emulator = emulator_with(
        Provider::SoundPiece,
        Method::PUT,
        SOUNDPIECE_CREATE,
        status(500),
    )
    .await;
    let client = soundpiece(&emulator.base_url(Provider::SoundPiece));
    let error = client.submit_remix(&remix(key)).await.unwrap_err();
    assert!(matches!(error, Error::Provider { .. }), "{error:?}");
    assert_eq!(error.status(), Some(500));
    assert_eq!(error.resume_with().cloned(), named, "{error:?}");

    // Every reply lost: the operation exists, the client cannot know.
    let emulator = emulator_with(
        Provider::SoundPiece,
        Method::PUT,
        SOUNDPIECE_CREATE,
        Fault::LoseReply,
    )
    .await;
    let client = soundpiece(&emulator.base_url(Provider::SoundPiece));
    let error = client.submit_remix(&remix(key)).await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(error.resume_with().cloned(), named, "{error:?}");
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);

    // The call's own deadline passes while the PUT is held.
    let emulator = emulator_with(
        Provider::SoundPiece,
        Method::PUT,
        SOUNDPIECE_CREATE,
        Fault::Stall(Duration::from_secs(30)),
    )
    .await;
    let client = soundpiece(&emulator.base_url(Provider::SoundPiece))
        .with(&RequestOptions::new().timeout(Duration::from_millis(300)));
    let error = client.submit_remix(&remix(key)).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert_eq!(error.resume_with().cloned(), named, "{error:?}");
    assert!(error.to_string().contains(&key.to_string()), "{error}");
}

#[tokio::test]
async fn a_soundpiece_refusal_that_says_not_taken_names_nothing_unless_an_attempt_was_taken() {
    let key = songbind::Uuid::new_v4();
    for code in [429, 503] {
        let emulator = emulator_with(
            Provider::SoundPiece,
            Method::PUT,
            SOUNDPIECE_CREATE,
            status(code),
        )
        .await;
        let client = soundpiece(&emulator.base_url(Provider::SoundPiece));
        let error = client.submit_remix(&remix(key)).await.unwrap_err();
        assert_eq!(error.status(), Some(code), "{error:?}");
        assert!(
            matches!(
                error,
                Error::RateLimited { .. } | Error::ServiceUnavailable { .. }
            ),
            "{error:?}"
        );
        assert_eq!(error.resume_with(), None, "{code}: {error:?}");
        assert_eq!(emulator.jobs_created(Provider::SoundPiece), 0);
    }

    // The first reply was lost (the operation exists), the retries were
    // refused with 429: the last answer does not undo the first attempt.
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(
        FaultRule::new(Fault::LoseReply)
            .provider(Provider::SoundPiece)
            .route(Method::PUT, SOUNDPIECE_CREATE),
    );
    emulator.inject(
        FaultRule::new(status(429))
            .provider(Provider::SoundPiece)
            .route(Method::PUT, SOUNDPIECE_CREATE)
            .always(),
    );
    let client = soundpiece(&emulator.base_url(Provider::SoundPiece));
    let error = client.submit_remix(&remix(key)).await.unwrap_err();
    assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");
    assert_eq!(
        error.resume_with(),
        Some(&ResumeWith::IdempotencyKey(key)),
        "{error:?}"
    );
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);

    // A connection that never opened: nothing was written.
    let client = soundpiece(&closed_port().await);
    let error = client.submit_remix(&remix(key)).await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(error.resume_with(), None, "{error:?}");

    // A value refused before sending.
    let mut invalid = remix(key);
    invalid.n_variations = 0;
    let error = client.submit_remix(&invalid).await.unwrap_err();
    assert!(matches!(error, Error::Validation { .. }), "{error:?}");
    assert_eq!(error.resume_with(), None, "{error:?}");
}

#[tokio::test]
async fn soundpiece_failures_while_following_name_the_operation() {
    let emulator = emulator_with(
        Provider::SoundPiece,
        Method::GET,
        SOUNDPIECE_CREATE,
        status(502),
    )
    .await;
    let client = soundpiece(&emulator.base_url(Provider::SoundPiece));
    let job = client
        .submit_remix(&remix(songbind::Uuid::new_v4()))
        .await
        .unwrap();
    let id = job.id().to_owned();
    let error = job.wait(&wait()).await.unwrap_err();
    assert!(matches!(error, Error::Provider { .. }), "{error:?}");
    assert_eq!(error.status(), Some(502));
    assert_eq!(
        error.resume_with(),
        Some(&ResumeWith::OperationId(id.clone()))
    );

    // A failed operation was taken: it names itself.
    let emulator = Emulator::start_for_tests().await.unwrap();
    let client = soundpiece(&emulator.base_url(Provider::SoundPiece));
    let mut failing = remix(songbind::Uuid::new_v4());
    failing.prompt = "rock [fail]".into();
    let job = client.submit_remix(&failing).await.unwrap();
    let id = job.id().to_owned();
    let error = job.wait(&wait()).await.unwrap_err();
    assert!(
        matches!(&error, Error::JobFailed { id: failed, .. } if *failed == id),
        "{error:?}"
    );
    assert_eq!(error.resume_with(), Some(&ResumeWith::OperationId(id)));
}

// ------------------------------------------------------------------- MusicGPT

#[tokio::test]
async fn musicgpt_failures_after_the_create_name_the_task() {
    // Every status lookup answered 500.
    let emulator = emulator_with(Provider::MusicGpt, Method::GET, "/byId", status(500)).await;
    let client = musicgpt(&emulator.base_url(Provider::MusicGpt));
    let job = client
        .submit_remix(&musicgpt_remix("upbeat pop"))
        .await
        .unwrap();
    let task = job.id().to_owned();
    let error = job.wait(&wait()).await.unwrap_err();
    assert!(matches!(error, Error::Provider { .. }), "{error:?}");
    assert_eq!(error.resume_with(), Some(&ResumeWith::TaskId(task)));

    // The wait's deadline passes while a lookup is held.
    let emulator = emulator_with(
        Provider::MusicGpt,
        Method::GET,
        "/byId",
        Fault::Stall(Duration::from_secs(30)),
    )
    .await;
    let client = musicgpt(&emulator.base_url(Provider::MusicGpt));
    let job = client
        .submit_remix(&musicgpt_remix("upbeat pop"))
        .await
        .unwrap();
    let task = job.id().to_owned();
    let error = job
        .wait(&WaitOptions::default().timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert_eq!(error.resume_with(), Some(&ResumeWith::TaskId(task)));

    // A failed task was taken: it names itself.
    let emulator = Emulator::start_for_tests().await.unwrap();
    let client = musicgpt(&emulator.base_url(Provider::MusicGpt));
    let job = client
        .submit_remix(&musicgpt_remix("upbeat pop [fail]"))
        .await
        .unwrap();
    let task = job.id().to_owned();
    let error = job.wait(&wait()).await.unwrap_err();
    assert!(matches!(error, Error::JobFailed { .. }), "{error:?}");
    assert_eq!(error.resume_with(), Some(&ResumeWith::TaskId(task)));
}

#[tokio::test]
async fn a_musicgpt_create_that_answered_no_task_names_nothing() {
    // A 500 on the create: the task may exist, but no id was answered.
    let emulator = emulator_with(Provider::MusicGpt, Method::POST, "/Remix", status(500)).await;
    let client = musicgpt(&emulator.base_url(Provider::MusicGpt));
    let error = client
        .submit_remix(&musicgpt_remix("upbeat pop"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Provider { .. }), "{error:?}");
    assert_eq!(error.resume_with(), None, "{error:?}");
    // A 429 past the budget was not taken.
    let emulator = emulator_with(Provider::MusicGpt, Method::POST, "/Remix", status(429)).await;
    let client = musicgpt(&emulator.base_url(Provider::MusicGpt));
    let error = client
        .submit_remix(&musicgpt_remix("upbeat pop"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");
    assert_eq!(error.resume_with(), None, "{error:?}");
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 0);
}

// ------------------------------------------------------------------ Soundverse

#[tokio::test]
async fn a_soundverse_stream_cut_after_the_message_id_names_it() {
    // Ended cleanly, with no completion.
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![sse(&[
            r#"{"status": "validated"}"#,
            r#"{"message_id": "msg_cut", "status": "queued"}"#,
            r#"{"message_id": "msg_cut", "status": "running", "progress": 40}"#,
        ])],
    )
    .await;
    let job = soundverse(&front.url)
        .submit_generate(&GenerateRequest::new("a song"))
        .await
        .unwrap();
    assert_eq!(job.id(), "msg_cut");
    let error = job.wait(&wait()).await.unwrap_err();
    assert!(
        matches!(&error, Error::StreamEndedEarly { message_id: Some(id), .. } if id == "msg_cut"),
        "{error:?}"
    );
    assert_eq!(
        error.resume_with(),
        Some(&ResumeWith::MessageId("msg_cut".into())),
        "{error:?}"
    );

    // Cut mid-body (the connection broke).
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(FaultRule::new(Fault::DropStream { after_events: 4 }));
    let client = soundverse(&emulator.base_url(Provider::Soundverse));
    let job = client
        .submit_generate(&GenerateRequest::new("rock"))
        .await
        .unwrap();
    let id = job.id().to_owned();
    let error = job.wait(&wait()).await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(error.resume_with(), Some(&ResumeWith::MessageId(id)));
}

#[tokio::test]
async fn soundverse_timeouts_and_failures_after_the_message_id_name_it() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(FaultRule::new(Fault::StallStream {
        after_events: 3,
        duration: Duration::from_secs(5),
    }));
    let job = soundverse(&emulator.base_url(Provider::Soundverse))
        .stream_limits(StreamLimits {
            idle_timeout: Some(Duration::from_millis(100)),
            ..StreamLimits::default()
        })
        .submit_generate(&GenerateRequest::new("rock"))
        .await
        .unwrap();
    let id = job.id().to_owned();
    let error = job.wait(&wait()).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert_eq!(error.resume_with(), Some(&ResumeWith::MessageId(id)));

    let emulator = Emulator::start_for_tests().await.unwrap();
    let job = soundverse(&emulator.base_url(Provider::Soundverse))
        .submit_generate(&GenerateRequest::new("rock [fail]"))
        .await
        .unwrap();
    let id = job.id().to_owned();
    let error = job.wait(&wait()).await.unwrap_err();
    assert!(
        matches!(&error, Error::JobFailed { id: failed, .. } if *failed == id),
        "{error:?}"
    );
    assert_eq!(error.resume_with(), Some(&ResumeWith::MessageId(id)));
}

#[tokio::test]
async fn a_soundverse_submit_without_a_message_id_names_nothing() {
    // The stream ends before naming the song: no id to resume with.
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![sse(&[r#"{"status": "validated"}"#])],
    )
    .await;
    let error = soundverse(&front.url)
        .submit_generate(&GenerateRequest::new("a song"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::StreamEndedEarly {
                message_id: None,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.resume_with(), None);

    // A 500 on the create: the song may exist, but nothing names it.
    let emulator = emulator_with(
        Provider::Soundverse,
        Method::POST,
        "/v6/generate/song",
        status(500),
    )
    .await;
    let error = soundverse(&emulator.base_url(Provider::Soundverse))
        .submit_generate(&GenerateRequest::new("a song"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Provider { .. }), "{error:?}");
    assert_eq!(error.resume_with(), None);
    assert_eq!(emulator.received().len(), 1, "a create is not sent twice");
}

// ------------------------------------------------------------------ ElevenLabs

#[tokio::test]
async fn an_elevenlabs_compose_has_nothing_to_resume_with() {
    // The audio is the answer: a compose that failed after it was sent
    // cannot be found again, so nothing is named.
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![Step::Answer(raw(
            "500 Internal Server Error",
            &[("content-type", "application/json")],
            r#"{"detail": "down"}"#,
        ))],
    )
    .await;
    let client = ElevenLabs::new(&front.url, &Secret::from(KEY))
        .unwrap()
        .retry_policy(fast());
    let mut sink = Vec::new();
    let error = client
        .compose_to(
            &ComposeRequest::from_prompt("calm piano"),
            &mut sink,
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Provider { .. }), "{error:?}");
    assert_eq!(error.resume_with(), None);
    assert_eq!(front.count("POST"), 1);
}
