//! Failure paths over loopback, each against a misbehaving front that
//! counts what it received: creates happen exactly once, errors keep their
//! status whatever the body, no key leaves, nothing is lost.

mod support;

use std::time::Duration;

use songbind::musicgpt::{AudioInput, MusicGpt};
use songbind::soundpiece::{RemixRequest, SoundPiece};
use songbind::soundverse::{GenerateRequest, Soundverse};
use songbind::{Error, ResumeWith, RetryPolicy, Secret, WaitOptions};
use songbind_emulator::{Emulator, Provider};
use support::front::{Front, Step, raw};
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk_live_9f8e7d6c5b4a";

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

fn json_answer(status: &str, body: &str) -> Step {
    Step::Answer(raw(status, &[("content-type", "application/json")], body))
}

fn soundverse(front: &Front) -> Soundverse {
    Soundverse::new(&format!("{}/soundverse", front.url), &Secret::from(KEY))
        .unwrap()
        .retry_policy(fast())
}

fn soundpiece(front: &Front) -> SoundPiece {
    SoundPiece::new(&format!("{}/soundpiece", front.url), &Secret::from(KEY))
        .unwrap()
        .retry_policy(fast())
}

fn musicgpt(front: &Front) -> MusicGpt {
    MusicGpt::new(&format!("{}/musicgpt", front.url), &Secret::from(KEY))
        .unwrap()
        .retry_policy(fast())
}

fn remix() -> RemixRequest {
    RemixRequest::new(
        "https://example.com/source.mp3",
        "[Verse]\nThis is a demo song",
        "rock song, energetic, male vocal",
    )
}

fn musicgpt_remix() -> songbind::musicgpt::RemixRequest {
    songbind::musicgpt::RemixRequest::new(
        AudioInput::Url("https://www.youtube.com/watch?v=example123".into()),
        "Create an upbeat pop remix",
    )
}

/// The misleading 5xx answers of issue 9: texts that read like "not taken".
fn misleading() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "504 Gateway Timeout",
            r#"{"detail": "Upstream service temporarily unavailable", "message": "Upstream service temporarily unavailable"}"#,
        ),
        (
            "500 Internal Server Error",
            r#"{"detail": "Job created, but the rate limit counter could not be updated", "message": "Job created, but the rate limit counter could not be updated"}"#,
        ),
    ]
}

#[tokio::test]
async fn a_misleading_5xx_text_never_sends_a_create_twice() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    for (status, body) in misleading() {
        let code: u16 = status[..3].parse().unwrap();

        let front = Front::start(emulator.root_url(), vec![json_answer(status, body)]).await;
        let error = soundverse(&front)
            .submit_generate(&GenerateRequest::new("a song"))
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(code), "{error:?}");
        assert!(matches!(error, Error::Provider { .. }), "{error:?}");
        assert_eq!(front.count("POST"), 1, "Soundverse stream: {status}");

        let front = Front::start(emulator.root_url(), vec![json_answer(status, body)]).await;
        let error = soundverse(&front)
            .generate_sync(&GenerateRequest::new("a song"))
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(code), "{error:?}");
        assert_eq!(front.count("POST"), 1, "Soundverse /sync: {status}");

        let front = Front::start(emulator.root_url(), vec![json_answer(status, body)]).await;
        let error = musicgpt(&front)
            .submit_remix(&musicgpt_remix())
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(code), "{error:?}");
        assert_eq!(front.count("POST"), 1, "MusicGPT /Remix: {status}");
    }
}

#[tokio::test]
async fn non_json_error_answers_keep_status_and_headers_and_retry_by_status() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let html_502 = Step::Answer(raw(
        "502 Bad Gateway",
        &[("content-type", "text/html")],
        "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>",
    ));
    let text_429 = Step::Answer(raw(
        "429 Too Many Requests",
        &[("content-type", "text/plain"), ("retry-after", "0")],
        "slow down",
    ));
    let empty_503 = Step::Answer(raw("503 Service Unavailable", &[("retry-after", "0")], ""));

    // Without retries, each keeps its status, headers and text.
    for (step, code) in [
        (html_502.clone(), 502),
        (text_429.clone(), 429),
        (empty_503.clone(), 503),
    ] {
        let front = Front::start(emulator.root_url(), vec![step]).await;
        let error = soundpiece(&front)
            .retry_policy(RetryPolicy::none())
            .get("op_abc", false)
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(code), "{error:?}");
        let answer = error.answer().expect("the answer is kept");
        match code {
            502 => assert!(
                answer.body.contains("<h1>502 Bad Gateway</h1>"),
                "{answer:?}"
            ),
            429 => {
                assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");
                assert_eq!(answer.retry_after, Some(Duration::ZERO));
                assert_eq!(answer.headers["content-type"], "text/plain");
            }
            _ => assert!(
                matches!(error, Error::ServiceUnavailable { .. }),
                "{error:?}"
            ),
        }
    }

    // A non-idempotent create is resent on the 429 and the 503, by status.
    let front = Front::start(
        emulator.root_url(),
        vec![text_429.clone(), empty_503.clone()],
    )
    .await;
    let job = musicgpt(&front)
        .submit_remix(&musicgpt_remix())
        .await
        .unwrap();
    assert_eq!(front.count("POST"), 3);
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);
    drop(job);
    // ... but not on the HTML 502: the job may exist.
    let front = Front::start(emulator.root_url(), vec![html_502.clone()]).await;
    let error = soundverse(&front)
        .generate_sync(&GenerateRequest::new("a song"))
        .await
        .unwrap_err();
    assert_eq!((error.status(), front.count("POST")), (Some(502), 1));
    // Every GET retries the HTML 502.
    let front = Front::start(emulator.root_url(), vec![html_502]).await;
    let error = soundverse(&front).status("msg_x").await.unwrap_err();
    assert_eq!(front.count("GET"), 2, "{error:?}");
}

#[tokio::test]
async fn a_lost_reply_then_an_html_502_then_success_makes_one_soundpiece_job() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let front = Front::start(
        emulator.root_url(),
        vec![
            Step::ForwardThenDrop,
            Step::Answer(raw(
                "502 Bad Gateway",
                &[("content-type", "text/html")],
                "<html>Bad Gateway</html>",
            )),
        ],
    )
    .await;
    let job = soundpiece(&front).submit_remix(&remix()).await.unwrap();
    let key = job.idempotency_key().expect("the key is exposed");
    let output = job.wait(&wait()).await.unwrap();
    assert_eq!(output.outputs.len(), 1);
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
    let puts: Vec<_> = front
        .received()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 3);
    for put in &puts {
        let body: serde_json::Value = serde_json::from_slice(&put.body).unwrap();
        assert_eq!(body["idempotency_key"], key.to_string());
    }
}

#[tokio::test]
async fn a_409_is_an_idempotency_conflict_never_retried_naming_the_key() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let front = Front::start(
        emulator.root_url(),
        vec![json_answer(
            "409 Conflict",
            r#"{"detail": "This idempotency_key was already used with a different request body."}"#,
        )],
    )
    .await;
    let error = soundpiece(&front).submit_remix(&remix()).await.unwrap_err();
    assert_eq!(front.count("PUT"), 1);
    assert!(
        matches!(&error, Error::IdempotencyConflict { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("already used with a different request body"),
        "{error}"
    );
    assert!(matches!(
        error.resume_with(),
        Some(ResumeWith::IdempotencyKey(_))
    ));
}

#[tokio::test]
async fn every_failure_after_the_put_names_the_idempotency_key() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let down = || json_answer("500 Internal Server Error", r#"{"detail": "down"}"#);
    let front = Front::start(emulator.root_url(), vec![down(), down(), down(), down()]).await;
    let mut request = remix();
    let key = uuid::Uuid::new_v4();
    request.idempotency_key = Some(key);
    let error = soundpiece(&front).submit_remix(&request).await.unwrap_err();
    assert_eq!(front.count("PUT"), 4);
    assert_eq!(error.resume_with(), Some(&ResumeWith::IdempotencyKey(key)));
    assert!(error.to_string().contains(&key.to_string()), "{error}");
}

#[tokio::test]
async fn an_operation_id_of_an_unexpected_shape_is_followed_not_refused() {
    let id = "op_01HZX3K9Q2W8E5R7T1Y4U6I0PA";
    let song = |status: &str, outputs: &str| {
        format!(
            r#"{{"remix_song": {{"id": "{id}", "status": "{status}", "outputs": {outputs}, "error": null}}}}"#
        )
    };
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![
            json_answer("200 OK", &song("processing", "null")),
            json_answer(
                "200 OK",
                &song("ready", r#"[{"url": "https://cdn.example/1.flac"}]"#),
            ),
        ],
    )
    .await;
    let job = soundpiece(&front).submit_remix(&remix()).await.unwrap();
    assert_eq!(job.id(), id);
    let output = job.wait(&wait()).await.unwrap();
    assert_eq!(output.outputs[0].url, "https://cdn.example/1.flac");
    let get = front
        .received()
        .into_iter()
        .find(|r| r.method == "GET")
        .unwrap();
    assert!(get.path.contains(id), "{}", get.path);
}

/// Every text of `error` a caller can see.
fn all_text(error: &Error) -> String {
    format!("{error} {error:?}")
}

#[tokio::test]
async fn an_echoed_key_is_scrubbed_from_every_error_of_every_provider() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let echoes = || {
        vec![
            Step::Echo {
                status: 400,
                content_type: "application/json",
                body: r#"{"detail": "bad request; you sent {auth}", "message": "bad request; you sent {auth}"}"#,
            },
            Step::Echo {
                status: 500,
                content_type: "text/plain",
                body: "Internal error. Request headers:\nauthorization: {auth}\nhost: x",
            },
        ]
    };
    for step in echoes() {
        let front = Front::start(emulator.root_url(), vec![step.clone(), step.clone()]).await;
        let errors = vec![
            soundverse(&front)
                .submit_generate(&GenerateRequest::new("a song"))
                .await
                .unwrap_err(),
            soundpiece(&front)
                .retry_policy(RetryPolicy::none())
                .submit_remix(&remix())
                .await
                .unwrap_err(),
        ];
        let front = Front::start(emulator.root_url(), vec![step]).await;
        let mut errors = errors;
        errors.push(
            musicgpt(&front)
                .submit_remix(&musicgpt_remix())
                .await
                .unwrap_err(),
        );
        for error in errors {
            let text = all_text(&error);
            assert!(!text.contains(KEY), "{text}");
            assert!(text.contains("***"), "{text}");
            assert!(error.status().is_some(), "{error:?}");
        }
    }
}

#[tokio::test]
async fn a_base_url_with_credentials_query_or_fragment_is_refused_before_sending() {
    let front = Front::start("http://127.0.0.1:9", Vec::new()).await;
    let host = front.url.trim_start_matches("http://");
    for url in [
        format!("http://user:hunter2pw@{host}/soundverse"),
        format!("http://{host}/soundverse?region=eu"),
        format!("http://{host}/soundverse#frag"),
    ] {
        let error = Soundverse::new(&url, &Secret::from(KEY)).unwrap_err();
        let text = all_text(&error);
        assert!(!text.contains("hunter2pw"), "{text}");
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        assert!(SoundPiece::new(&url, &Secret::from(KEY)).is_err(), "{url}");
        assert!(MusicGpt::new(&url, &Secret::from(KEY)).is_err(), "{url}");
    }
    assert_eq!(front.received().len(), 0);
}

/// An SSE answer with these `data:` lines, ending with the song completed.
fn sse(lines: &[&str]) -> Step {
    let body: String = lines.iter().map(|l| format!("data: {l}\n\n")).collect();
    Step::Answer(raw(
        "200 OK",
        &[("content-type", "text/event-stream")],
        &body,
    ))
}

#[tokio::test]
async fn an_undecodable_chunk_before_the_id_is_skipped_as_after_it() {
    let done = |v: u32| {
        format!(
            r#"{{"message_id": "msg_1", "status": "completed", "version": {v}, "audio_url": "https://cdn.example/{v}.mp3", "progress": 100}}"#
        )
    };
    let (one, two) = (done(1), done(2));
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![sse(&[
            r#"{"status": "validated", "chunkIndex": "#,
            r#"{"message_id": "msg_1", "status": "queued"}"#,
            r#"{"message_id": 7}"#,
            &one,
            &two,
            r#"{"message_id": "msg_1", "isComplete": true}"#,
        ])],
    )
    .await;
    let job = soundverse(&front)
        .submit_generate(&GenerateRequest::new("a song"))
        .await
        .expect("a garbled chunk before the id does not fail the submit");
    assert_eq!(job.id(), "msg_1");
    let output = job.wait(&wait()).await.unwrap();
    assert_eq!(output.outputs.len(), 2);
}

#[tokio::test]
async fn submission_and_sync_calls_honour_a_deadline_and_cancellation() {
    let front = Front::start("http://127.0.0.1:9", vec![Step::Keepalives]).await;
    let options = WaitOptions::default().timeout(Duration::from_millis(200));
    let error = soundverse(&front)
        .submit_generate_with(&GenerateRequest::new("a song"), &options)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    // Under load the deadline may pass before the request is even read:
    // what must hold is that it is never sent twice.
    assert!(front.count("POST") <= 1);

    let front = Front::start("http://127.0.0.1:9", vec![Step::Keepalives]).await;
    let token = CancellationToken::new();
    let cancel = token.clone();
    let client = soundverse(&front);
    let request = GenerateRequest::new("a song");
    let options = WaitOptions::default().cancel_on(token);
    let submit = client.submit_generate_with(&request, &options);
    let (result, ()) = tokio::join!(submit, async {
        // Cancel once the request is in: wait for it, not for a time.
        while front.count("POST") == 0 {
            tokio::task::yield_now().await;
        }
        cancel.cancel();
    });
    assert!(matches!(result, Err(Error::Cancelled { .. })), "{result:?}");

    let front = Front::start("http://127.0.0.1:9", vec![Step::Silent]).await;
    let error = soundverse(&front)
        .generate_sync_with(
            &GenerateRequest::new("a song"),
            &WaitOptions::default().timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
}

#[tokio::test]
async fn a_v7_remix_job_is_named_by_its_message_id() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let client =
        Soundverse::new(&emulator.base_url(Provider::Soundverse), &Secret::from(KEY)).unwrap();
    let request = songbind::soundverse::RemixRequest {
        song_reference_url: "https://example.com/song.mp3".into(),
        prompt: Some("make it jazz".into()),
        ..Default::default()
    };
    let job = client.submit_remix(&request).await.unwrap();
    assert!(job.id().starts_with("msg_"), "{}", job.id());
    assert_eq!(
        job.resume_with(),
        Some(&ResumeWith::MessageId(job.id().to_owned()))
    );
    // The id is the one the status lookup knows.
    client.status(job.id()).await.expect("status by message id");
}

#[tokio::test]
async fn a_successful_json_answer_without_end_is_cut_at_the_cap_which_a_call_can_change() {
    let server = songbind_hostile::Server::always(songbind_hostile::Script::EndlessBody {
        content_type: "application/json".to_owned(),
        filler: b' ',
    })
    .await;
    let client = Soundverse::new(&server.url, &Secret::from(KEY))
        .unwrap()
        .retry_policy(fast());
    let error = client.status("msg_1").await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::AnswerTooLarge { limit, .. } if limit == songbind::DEFAULT_ANSWER_LIMIT
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("16777216"), "{error}");
    // Not retried: the next answer would be as large.
    assert_eq!(server.count(), 1);
    let small = songbind::RequestOptions::new().answer_limit(64 * 1024);
    let error = client.with(&small).status("msg_1").await.unwrap_err();
    assert!(
        matches!(error, Error::AnswerTooLarge { limit: 65536, .. }),
        "{error:?}"
    );
}
