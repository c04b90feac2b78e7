//! Soundverse jobs end to end against the emulator: typed stream events,
//! both versions, sync answers, and what happens when a stream breaks.

use std::time::Duration;

use axum::http::Method;
use futures::StreamExt;
use songbind::soundverse::{ExtendRequest, GenerateRequest, RemixRequest, Soundverse};
use songbind::sse::StreamLimits;
use songbind::{Error, JobEvent, RetryPolicy, Secret, WaitOptions};
use songbind_emulator::{Emulator, Fault, FaultRule, Provider};

fn client(emulator: &Emulator) -> Soundverse {
    Soundverse::new(
        &emulator.base_url(Provider::Soundverse),
        &Secret::from("sv_test"),
    )
    .expect("client")
    .retry_policy(RetryPolicy {
        base_delay: Duration::from_millis(1),
        ..RetryPolicy::default()
    })
}

fn options() -> WaitOptions {
    WaitOptions::default().timeout(Duration::from_secs(20))
}

async fn events(job: songbind::Job) -> Vec<Result<JobEvent, Error>> {
    job.events(&options()).collect().await
}

#[tokio::test]
async fn a_generation_reports_stages_both_stream_urls_and_both_outputs() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let job = client(&emulator)
        .submit_generate(&GenerateRequest::new(
            "A cheerful pop song about friendship",
        ))
        .await
        .unwrap();
    let id = job.id().to_owned();
    assert!(id.starts_with("msg_"), "{id}");
    let events: Vec<JobEvent> = events(job)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();

    let progress: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            JobEvent::Stage {
                progress: Some(p), ..
            } => Some(*p),
            _ => None,
        })
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(progress.contains(&90));
    let streams: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            JobEvent::StreamReady { version, .. } => Some(*version),
            _ => None,
        })
        .collect();
    assert_eq!(streams, [1, 2]);
    let Some(JobEvent::Completed(done)) = events.last() else {
        panic!("the last event is Completed: {events:?}");
    };
    assert_eq!(done.id, id);
    assert_eq!(
        done.outputs.iter().map(|o| o.version).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    for output in &done.outputs {
        assert!(output.title.is_some() && output.album_art.is_some());
        let audio = reqwest::get(&output.url)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&audio[..4], b"RIFF");
    }
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
}

#[tokio::test]
async fn an_extension_completes_and_its_position_is_checked_before_sending() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let request = ExtendRequest {
        audio_url: "https://example.com/original.mp3".into(),
        lyrics: "These are the song lyrics to guide the extension".into(),
        extend_at_ms: 7_999,
        prompt: None,
    };
    let error = client(&emulator).submit_extend(&request).await.unwrap_err();
    assert!(
        error.to_string().contains("between 8000 and 420000"),
        "{error}"
    );
    assert!(emulator.received().is_empty());

    let request = ExtendRequest {
        extend_at_ms: 30_000,
        ..request
    };
    let done = client(&emulator)
        .submit_extend(&request)
        .await
        .unwrap()
        .wait(&options())
        .await
        .unwrap();
    assert_eq!(done.outputs.len(), 2);
    assert_eq!(emulator.received()[0].json().unwrap()["extend_at"], 30_000);
}

#[tokio::test]
async fn a_remix_is_named_by_its_message_id_from_the_start() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let request = RemixRequest {
        song_reference_url: "https://example.com/source.mp3".into(),
        prompt: Some("jazz remix with horns".into()),
        ..RemixRequest::default()
    };
    // The v7 stream sends its job_id first; the job is named by the
    // message_id that /status/generations knows, before and after.
    let job = client(&emulator).submit_remix(&request).await.unwrap();
    let id = job.id().to_owned();
    assert!(id.starts_with("msg_"), "{id}");
    let done = job.wait(&options()).await.unwrap();
    assert_eq!(done.id, id);
    assert_eq!(done.outputs.len(), 2);
}

#[tokio::test]
async fn remix_rules_are_checked_before_sending() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let neither = RemixRequest {
        song_reference_url: "https://example.com/source.mp3".into(),
        ..RemixRequest::default()
    };
    let error = client(&emulator).submit_remix(&neither).await.unwrap_err();
    assert!(
        matches!(&error, Error::Validation { field, .. } if field == "prompt or lyrics"),
        "{error}"
    );
    let too_long = RemixRequest {
        prompt: Some("p".repeat(1025)),
        ..neither
    };
    let error = client(&emulator).submit_remix(&too_long).await.unwrap_err();
    assert!(error.to_string().contains("1025"), "{error}");
    assert!(emulator.received().is_empty());
}

#[tokio::test]
async fn sync_answers_become_the_same_outputs_and_status_knows_the_song() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let client = client(&emulator);
    let done = client
        .generate_sync(&GenerateRequest::new("lofi beats"))
        .await
        .unwrap();
    assert_eq!(done.outputs.len(), 2);
    assert!(done.outputs.iter().all(|o| o.title.is_some()));
    let status = client.status(&done.id).await.unwrap();
    assert_eq!(status["message_id"], done.id.as_str());
    let extended = client
        .extend_sync(&ExtendRequest {
            audio_url: done.outputs[0].url.clone(),
            lyrics: "la la".into(),
            extend_at_ms: 8_000,
            prompt: None,
        })
        .await
        .unwrap();
    assert_eq!(extended.outputs.len(), 2);
    let error = client.status("msg_unknown").await.unwrap_err();
    assert_eq!(error.status(), Some(404), "{error:?}");
}

#[tokio::test]
async fn a_stream_that_ends_early_is_a_typed_error_with_the_message_id() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(FaultRule::new(Fault::EndStream { after_events: 6 }));
    let job = client(&emulator)
        .submit_generate(&GenerateRequest::new("rock"))
        .await
        .unwrap();
    let id = job.id().to_owned();
    let error = job.wait(&options()).await.unwrap_err();
    assert!(
        matches!(&error, Error::StreamEndedEarly { message_id: Some(m), .. } if *m == id),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_dropped_stream_is_not_retried_so_no_second_song_is_made() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(FaultRule::new(Fault::DropStream { after_events: 4 }));
    let job = client(&emulator)
        .submit_generate(&GenerateRequest::new("rock"))
        .await
        .unwrap();
    let error = job.wait(&options()).await.unwrap_err();
    assert!(matches!(&error, Error::Transport { .. }), "{error:?}");
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
    assert_eq!(emulator.received().len(), 1);
}

#[tokio::test]
async fn a_rate_limited_create_is_retried_and_makes_one_song() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(
        FaultRule::new(Fault::Status {
            status: 429,
            retry_after: Some(0),
        })
        .route(Method::POST, "/v6/generate/song")
        .times(2),
    );
    client(&emulator)
        .submit_generate(&GenerateRequest::new("rock"))
        .await
        .unwrap()
        .wait(&options())
        .await
        .unwrap();
    assert_eq!(emulator.received().len(), 3);
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
}

#[tokio::test]
async fn a_failed_generation_is_a_typed_job_failure() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let job = client(&emulator)
        .submit_generate(&GenerateRequest::new("rock [fail]"))
        .await
        .unwrap();
    let error = job.wait(&options()).await.unwrap_err();
    assert!(matches!(error, Error::JobFailed { .. }), "{error:?}");
}

#[tokio::test]
async fn a_stream_silent_past_the_idle_timeout_is_a_typed_timeout() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(FaultRule::new(Fault::StallStream {
        after_events: 3,
        duration: Duration::from_secs(5),
    }));
    let job = client(&emulator)
        .stream_limits(StreamLimits {
            idle_timeout: Some(Duration::from_millis(100)),
            ..StreamLimits::default()
        })
        .submit_generate(&GenerateRequest::new("rock"))
        .await
        .unwrap();
    let error = job.wait(&options()).await.unwrap_err();
    assert!(matches!(&error, Error::Timeout { .. }), "{error:?}");
}

#[tokio::test]
async fn a_fragmented_stream_completes_like_a_whole_one() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(FaultRule::new(Fault::Fragment));
    let done = client(&emulator)
        .submit_generate(&GenerateRequest {
            lyrics: Some("Über alles, 🎵 la la".into()),
            ..GenerateRequest::new("schlager")
        })
        .await
        .unwrap()
        .wait(&options())
        .await
        .unwrap();
    assert_eq!(done.outputs.len(), 2);
}
