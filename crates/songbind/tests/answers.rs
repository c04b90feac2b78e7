//! Raw answers: the status and headers of a job's create answer and of its
//! final answer (request id, rate-limit headers), read without the
//! generated crate, never holding the key.

mod support;

use std::time::Duration;

use songbind::soundpiece::{RemixRequest, SoundPiece};
use songbind::soundverse::{GenerateRequest, Soundverse};
use songbind::{Secret, WaitOptions};
use songbind_emulator::{Emulator, Provider};
use support::front::{Front, Step, raw};

const KEY: &str = "spk_live_0a9b8c7d6e5f";

fn options() -> WaitOptions {
    WaitOptions::default()
        .poll_interval(Duration::from_millis(1))
        .timeout(Duration::from_secs(20))
}

#[tokio::test]
async fn the_create_and_final_answers_keep_their_request_ids_and_rate_limit_headers() {
    let song = |status: &str| {
        format!(
            r#"{{"remix_song": {{"id": "op_abc", "status": "{status}", "outputs": {}, "error": null}}}}"#,
            if status == "ready" {
                r#"[{"url": "https://cdn.example/1.flac"}]"#
            } else {
                "null"
            }
        )
    };
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![
            Step::Answer(raw(
                "200 OK",
                &[
                    ("content-type", "application/json"),
                    ("x-request-id", "req_create"),
                    ("x-ratelimit-remaining", "41"),
                ],
                &song("processing"),
            )),
            Step::Answer(raw(
                "200 OK",
                &[
                    ("content-type", "application/json"),
                    ("x-request-id", "req_final"),
                    ("x-echo", &format!("you sent {KEY}")),
                ],
                &song("ready"),
            )),
        ],
    )
    .await;
    let client = SoundPiece::new(&format!("{}/soundpiece", front.url), &Secret::from(KEY)).unwrap();
    let request = RemixRequest::new("https://example.com/a.mp3", "la", "rock");
    let job = client.submit_remix(&request).await.unwrap();
    let answers = job.answers();
    let created = answers.created().expect("the create's answer");
    assert_eq!(created.status, 200);
    assert_eq!(created.request_id(), Some("req_create"));
    assert_eq!(created.header("x-ratelimit-remaining"), Some("41"));
    job.wait(&options()).await.unwrap();
    let last = answers.last().expect("the final answer");
    assert_eq!(last.request_id(), Some("req_final"));
    assert_eq!(last.header("x-echo"), Some("you sent ***"), "scrubbed");
    assert!(!format!("{last:?}").contains(KEY));
}

#[tokio::test]
async fn every_provider_records_its_answers() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let soundverse = Soundverse::new(
        &emulator.base_url(Provider::Soundverse),
        &Secret::from("sv_key"),
    )
    .unwrap();
    let job = soundverse
        .submit_generate(&GenerateRequest::new("pop"))
        .await
        .unwrap();
    let answers = job.answers();
    assert_eq!(
        answers.created().unwrap().header("content-type"),
        Some("text/event-stream")
    );
    job.wait(&options()).await.unwrap();

    let musicgpt = songbind::musicgpt::MusicGpt::new(
        &emulator.base_url(Provider::MusicGpt),
        &Secret::from("mg_key"),
    )
    .unwrap();
    let request = songbind::musicgpt::RemixRequest::new(
        songbind::musicgpt::AudioInput::Url("https://www.youtube.com/watch?v=x".into()),
        "pop",
    );
    let job = musicgpt.submit_remix(&request).await.unwrap();
    let answers = job.answers();
    assert_eq!(answers.created().unwrap().status, 200);
    job.wait(&options()).await.unwrap();
    // The last answer is a /byId poll's, not the create's.
    assert!(answers.last().is_some());
    assert_ne!(answers.last(), answers.created());
}
