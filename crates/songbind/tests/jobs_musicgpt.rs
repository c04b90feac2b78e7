//! MusicGPT jobs end to end against the emulator: streamed uploads, `/byId`
//! polling of both conversions, and retries that never create a second task.

use std::time::Duration;

use axum::http::Method;
use songbind::musicgpt::{AudioInput, MusicGpt, RemixRequest};
use songbind::{Downloader, Error, RetryPolicy, Secret, WaitOptions};
use songbind_emulator::{Emulator, Fault, FaultRule, Provider};

fn client(emulator: &Emulator) -> MusicGpt {
    MusicGpt::new(
        &emulator.base_url(Provider::MusicGpt),
        &Secret::from("mgpt_test"),
    )
    .expect("client")
    .retry_policy(RetryPolicy {
        base_delay: Duration::from_millis(1),
        ..RetryPolicy::default()
    })
}

fn options() -> WaitOptions {
    WaitOptions::default()
        .poll_interval(Duration::from_millis(1))
        .timeout(Duration::from_secs(20))
}

fn audio_file(bytes: usize) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".mp3").tempfile().unwrap();
    std::fs::write(file.path(), vec![0x5a; bytes]).unwrap();
    file
}

#[tokio::test]
async fn an_uploaded_file_is_streamed_and_both_conversions_are_awaited() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let file = audio_file(200_000);
    let request = RemixRequest {
        lyrics: Some("[Verse]\nla la".into()),
        ..RemixRequest::new(AudioInput::File(file.path().to_owned()), "upbeat pop remix")
    };
    let job = client(&emulator).submit_remix(&request).await.unwrap();
    let task_id = job.id().to_owned();
    let output = job.wait(&options()).await.unwrap();
    assert_eq!(output.id, task_id);
    assert_eq!(
        output.outputs.iter().map(|o| o.version).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    for out in &output.outputs {
        assert!(out.url.starts_with(emulator.root_url()), "{}", out.url);
        assert!(out.title.is_some());
    }
    let upload = emulator
        .received()
        .into_iter()
        .find(|r| r.method == Method::POST && r.path == "/Remix")
        .expect("the upload reached /Remix");
    let file_part = upload
        .form
        .iter()
        .find(|p| p.name == "audio_file")
        .expect("file part");
    assert_eq!(file_part.len, 200_000);
    assert_eq!(file_part.content_type.as_deref(), Some("audio/mpeg"));
    let text = |name: &str| {
        upload
            .form
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.text.clone())
    };
    assert_eq!(text("prompt").as_deref(), Some("upbeat pop remix"));
    assert_eq!(text("mode").as_deref(), Some("REMIX"));
    assert_eq!(text("lyrics").as_deref(), Some("[Verse]\nla la"));
    assert_eq!(
        text("webhook_url"),
        None,
        "an unset webhook_url is not sent"
    );
    assert_eq!(upload.header("authorization"), Some("mgpt_test"));
}

#[tokio::test]
async fn a_url_remix_sends_audio_path_and_no_file() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let request = RemixRequest::new(
        AudioInput::Url("https://www.youtube.com/watch?v=example123".into()),
        "soothing ambient soundscape",
    );
    let output = client(&emulator)
        .submit_remix(&request)
        .await
        .unwrap()
        .wait(&options())
        .await
        .unwrap();
    assert_eq!(output.outputs.len(), 2);
    let upload = &emulator.received()[0];
    assert!(upload.form.iter().all(|p| p.name != "audio_file"));
    assert!(upload.form.iter().any(|p| p.name == "audio_path"
        && p.text.as_deref() == Some("https://www.youtube.com/watch?v=example123")));
}

#[tokio::test]
async fn a_503_on_create_is_retried_and_makes_one_task() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(
        FaultRule::new(Fault::Status {
            status: 503,
            retry_after: Some(0),
        })
        .route(Method::POST, "/Remix"),
    );
    let file = audio_file(1000);
    client(&emulator)
        .submit_remix(&RemixRequest::new(
            AudioInput::File(file.path().to_owned()),
            "jazz",
        ))
        .await
        .unwrap();
    let creates = emulator
        .received()
        .iter()
        .filter(|r| r.path == "/Remix")
        .count();
    assert_eq!(creates, 2);
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);
}

#[tokio::test]
async fn a_lost_reply_on_create_is_not_retried_so_no_second_task_exists() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(FaultRule::new(Fault::LoseReply).route(Method::POST, "/Remix"));
    let error = client(&emulator)
        .submit_remix(&RemixRequest::new(
            AudioInput::Url("https://example.com/a.mp3".into()),
            "jazz",
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);
    assert_eq!(emulator.received().len(), 1, "sent once, never again");
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_sent() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let cases = [
        (
            RemixRequest::new(AudioInput::Url("https://e.com/a.mp3".into()), "  "),
            "prompt",
        ),
        (
            RemixRequest::new(AudioInput::Url("youtube".into()), "jazz"),
            "audio_path",
        ),
        (
            RemixRequest::new(AudioInput::File("".into()), "jazz"),
            "audio_file",
        ),
        (
            RemixRequest {
                webhook_url: Some("ftp://hooks".into()),
                ..RemixRequest::new(AudioInput::Url("https://e.com/a.mp3".into()), "jazz")
            },
            "webhook_url",
        ),
    ];
    for (request, field) in cases {
        let error = client(&emulator).submit_remix(&request).await.unwrap_err();
        assert!(
            matches!(&error, Error::Validation { field: f, .. } if f == field),
            "{error}"
        );
    }
    assert!(emulator.received().is_empty());
}

#[tokio::test]
async fn a_missing_file_is_a_typed_io_error_naming_it() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let error = client(&emulator)
        .submit_remix(&RemixRequest::new(
            AudioInput::File("/nonexistent/song.mp3".into()),
            "jazz",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Io { path, .. } if path == "/nonexistent/song.mp3"),
        "{error}"
    );
    assert!(emulator.received().is_empty());
}

#[tokio::test]
async fn a_failing_conversion_ends_the_job_with_its_message() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let job = client(&emulator)
        .submit_remix(&RemixRequest::new(
            AudioInput::Url("https://example.com/a.mp3".into()),
            "jazz [fail]",
        ))
        .await
        .unwrap();
    let task_id = job.id().to_owned();
    let error = job.wait(&options()).await.unwrap_err();
    assert!(
        matches!(&error, Error::JobFailed { id, message, .. } if *id == task_id && message.contains("conversion")),
        "{error:?}"
    );
}

#[tokio::test]
async fn outputs_download_to_disk_with_progress() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("song.wav");
    let mut reports = Vec::new();
    let size = 3 * 1024 * 1024 + 7;
    let written = Downloader::new()
        .download(
            &format!("{}/files/sized-{size}.wav", emulator.root_url()),
            &target,
            |done, total| reports.push((done, total)),
        )
        .await
        .unwrap();
    assert_eq!(written, size);
    assert_eq!(std::fs::metadata(&target).unwrap().len(), size);
    assert!(reports.len() > 1, "progress is reported piece by piece");
    assert!(reports.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(reports.last(), Some(&(size, Some(size))));
    assert!(!dir.path().join("song.wav.part").exists());
}

#[tokio::test]
async fn a_failed_download_leaves_no_file_behind() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("missing.wav");
    let error = Downloader::new()
        .download(
            &format!("{}/files/missing.txt", emulator.root_url()),
            &target,
            |_, _| {},
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("404"), "{error}");
    assert!(!target.exists());
}
