//! Resuming a job from the id its provider gave, for every provider,
//! against the emulator: after a broken stream, from another client, or
//! from an id an earlier run printed.

use std::time::Duration;

use songbind::musicgpt::{AudioInput, MusicGpt};
use songbind::soundpiece::{RemixRequest, SoundPiece};
use songbind::soundverse::{GenerateRequest, Soundverse};
use songbind::{Error, ResumeWith, RetryPolicy, Secret, WaitOptions};
use songbind_emulator::{Emulator, Fault, FaultRule, Provider};

fn options() -> WaitOptions {
    WaitOptions::default()
        .poll_interval(Duration::from_millis(5))
        .timeout(Duration::from_secs(20))
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(1),
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn a_broken_soundverse_stream_is_resumed_by_its_message_id() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let client = Soundverse::new(
        &emulator.base_url(Provider::Soundverse),
        &Secret::from("sv_key"),
    )
    .unwrap()
    .retry_policy(fast());
    emulator.inject(FaultRule::new(Fault::DropStream { after_events: 4 }));
    let job = client
        .submit_generate(&GenerateRequest::new("rock"))
        .await
        .unwrap();
    let error = job.wait(&options()).await.unwrap_err();
    let Some(ResumeWith::MessageId(id)) = error.resume_with().cloned() else {
        panic!("the failure names the message id: {error:?}");
    };
    let song = client.resume(&id).unwrap().wait(&options()).await.unwrap();
    assert_eq!(song.id, id);
    assert_eq!(song.outputs.len(), 2, "{song:?}");
    assert_eq!(
        emulator.jobs_created(Provider::Soundverse),
        1,
        "resuming creates nothing"
    );
    let status = client.generation(&id).await.unwrap();
    assert_eq!(status.is_complete, Some(true));
}

#[tokio::test]
async fn a_soundpiece_operation_is_resumed_by_its_id() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let client = SoundPiece::new(
        &emulator.base_url(Provider::SoundPiece),
        &Secret::from("spk_key"),
    )
    .unwrap();
    let request = RemixRequest::new("https://example.com/a.mp3", "la", "rock");
    let id = client.submit_remix(&request).await.unwrap().id().to_owned();
    let other = SoundPiece::new(
        &emulator.base_url(Provider::SoundPiece),
        &Secret::from("spk_key"),
    )
    .unwrap();
    let remix = other
        .resume(&id)
        .await
        .unwrap()
        .wait(&options())
        .await
        .unwrap();
    assert_eq!((remix.id.as_str(), remix.outputs.len()), (id.as_str(), 1));
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
}

#[tokio::test]
async fn a_musicgpt_task_is_resumed_by_its_task_id() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let client = MusicGpt::new(
        &emulator.base_url(Provider::MusicGpt),
        &Secret::from("mg_key"),
    )
    .unwrap();
    let request = songbind::musicgpt::RemixRequest::new(
        AudioInput::Url("https://www.youtube.com/watch?v=x".into()),
        "pop",
    );
    let task_id = client.submit_remix(&request).await.unwrap().id().to_owned();
    let remix = client
        .resume(&task_id)
        .unwrap()
        .wait(&options())
        .await
        .unwrap();
    assert_eq!(remix.id, task_id);
    assert!(!remix.outputs.is_empty());
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);
    assert!(matches!(client.resume(" "), Err(Error::Validation { .. })));
}
