//! Beatoven over loopback: a compose followed to its track and four stems,
//! a failed task, a compose that is not resent, and a refusal before
//! sending; each against the hostile-peer kit's scripted server, counting
//! what it received.

use std::time::Duration;

use serde_json::{Value, json};
use songbind::beatoven::{Beatoven, ComposeRequest, Format};
use songbind::{Error, OutputKind, ResumeWith, RetryPolicy, Secret, WaitOptions};
use songbind_hostile::{Script, Server, response};

const KEY: &str = "bt_live_5e4d3c2b1a";
const TASK: &str = "ccb84650-7b4a-4d00-9f80-8a6427ca21aa_1";

fn json_200(body: Value) -> Script {
    Script::Answer(response(
        "200 OK",
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    ))
}

fn status(status: &str) -> Script {
    json_200(json!({ "status": status }))
}

fn composed() -> Script {
    json_200(json!({
        "status": "composed",
        "meta": {
            "project_id": "p1", "track_id": "t1", "version": 1,
            "prompt": {"text": "30 seconds peaceful lo-fi chill hop track"},
            "track_url": "https://cdn.example/track.wav",
            "stems_url": {
                "bass": "https://cdn.example/bass.wav",
                "chords": "https://cdn.example/chords.wav",
                "melody": "https://cdn.example/melody.wav",
                "percussion": "https://cdn.example/percussion.wav"
            }
        }
    }))
}

fn client(server: &Server) -> Beatoven {
    Beatoven::new(&server.url, &Secret::from(KEY))
        .unwrap()
        .retry_policy(RetryPolicy {
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        })
}

fn wait() -> WaitOptions {
    WaitOptions::default()
        .poll_interval(Duration::from_millis(1))
        .timeout(Duration::from_secs(20))
}

#[tokio::test]
async fn a_compose_is_followed_to_its_track_and_four_stems() {
    let server = Server::start(vec![
        json_200(json!({"status": "started", "task_id": TASK})),
        status("composing"),
        status("running"),
        composed(),
    ])
    .await;
    let request = ComposeRequest::new("30 seconds peaceful lo-fi chill hop track");
    let job = client(&server).submit_compose(&request).await.unwrap();
    assert_eq!(job.id(), TASK);
    assert_eq!(
        job.resume_with(),
        Some(&ResumeWith::TaskId(TASK.to_owned()))
    );
    let song = job.wait(&wait()).await.unwrap();
    let kinds: Vec<(OutputKind, &str)> = song
        .outputs
        .iter()
        .map(|o| (o.kind.clone(), o.url.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (OutputKind::Version, "https://cdn.example/track.wav"),
            (
                OutputKind::Stem("bass".into()),
                "https://cdn.example/bass.wav"
            ),
            (
                OutputKind::Stem("chords".into()),
                "https://cdn.example/chords.wav"
            ),
            (
                OutputKind::Stem("melody".into()),
                "https://cdn.example/melody.wav"
            ),
            (
                OutputKind::Stem("percussion".into()),
                "https://cdn.example/percussion.wav"
            ),
        ]
    );
    let received = server.received();
    assert_eq!(received.len(), 4, "one compose, three polls");
    assert_eq!(
        received[0].request_line,
        "POST /api/v1/tracks/compose HTTP/1.1"
    );
    assert_eq!(
        received[0].header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    // Only what was set (the wire type's defaults are Beatoven's own).
    let sent: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(
        sent["prompt"],
        json!({"text": "30 seconds peaceful lo-fi chill hop track"})
    );
    assert_eq!(
        received[1].request_line,
        format!("GET /api/v1/tasks/{TASK} HTTP/1.1")
    );
}

#[tokio::test]
async fn format_and_looping_are_sent_when_set() {
    let server = Server::start(vec![json_200(json!({"task_id": TASK})), composed()]).await;
    let request = ComposeRequest::new("an upbeat track")
        .format(Format::Mp3)
        .looping(true);
    let job = client(&server).submit_compose(&request).await.unwrap();
    job.wait(&wait()).await.unwrap();
    let sent: Value = serde_json::from_slice(&server.received()[0].body).unwrap();
    assert_eq!(
        (sent["format"].as_str(), sent["looping"].as_bool()),
        (Some("mp3"), Some(true))
    );
}

#[tokio::test]
async fn a_failed_task_is_job_failed_naming_the_task() {
    let server = Server::start(vec![json_200(json!({"task_id": TASK})), status("failed")]).await;
    let job = client(&server)
        .submit_compose(&ComposeRequest::new("a track"))
        .await
        .unwrap();
    let error = job.wait(&wait()).await.unwrap_err();
    assert!(matches!(error, Error::JobFailed { .. }), "{error:?}");
    assert_eq!(
        error.resume_with(),
        Some(&ResumeWith::TaskId(TASK.to_owned()))
    );
}

#[tokio::test]
async fn a_compose_answered_500_is_not_sent_again() {
    let server = Server::always(Script::Answer(response(
        "500 Internal Server Error",
        &[("content-type", "text/html")],
        b"<html>oops</html>",
    )))
    .await;
    let error = client(&server)
        .submit_compose(&ComposeRequest::new("a track"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Provider { .. }), "{error:?}");
    assert_eq!(
        server.count(),
        1,
        "a compose that may have been taken is never resent"
    );
}

#[tokio::test]
async fn a_prompt_past_the_spec_s_limit_or_a_dot_id_is_refused_before_sending() {
    let server = Server::always(status("composing")).await;
    let beatoven = client(&server);
    let max = songbind::beatoven::limits::COMPOSE_TRACK_REQUEST_PROMPT_TEXT
        .max()
        .unwrap() as usize;
    let error = beatoven
        .submit_compose(&ComposeRequest::new("x".repeat(max + 1)))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Validation { field, .. } if field == "prompt.text"),
        "{error:?}"
    );
    assert!(beatoven.resume("..").is_err());
    assert!(beatoven.task(".").await.is_err());
    assert_eq!(server.count(), 0);
}
