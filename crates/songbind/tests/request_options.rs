//! Per-request options (like Stripe's `RequestOptions`): a timeout, extra
//! headers, a retry policy and SoundPiece's idempotency key, for one handle
//! of a client, over loopback.

mod support;

use std::time::Duration;

use songbind::soundpiece::{RemixRequest, SoundPiece};
use songbind::{Error, RequestOptions, RetryPolicy, Secret, WaitOptions};
use support::front::{Front, Step, raw};

fn song(status: &str) -> Step {
    let outputs = if status == "ready" {
        r#"[{"url": "https://cdn.example/1.flac"}]"#
    } else {
        "null"
    };
    Step::Answer(raw(
        "200 OK",
        &[("content-type", "application/json")],
        &format!(
            r#"{{"remix_song": {{"id": "op_abc", "status": "{status}", "outputs": {outputs}, "error": null}}}}"#
        ),
    ))
}

fn client(front: &Front) -> SoundPiece {
    SoundPiece::new(
        &format!("{}/soundpiece", front.url),
        &Secret::from("spk_test_1"),
    )
    .unwrap()
}

fn request() -> RemixRequest {
    RemixRequest::new("https://example.com/a.mp3", "la", "rock")
}

#[tokio::test]
async fn headers_and_the_idempotency_key_reach_every_request_of_the_handle_only() {
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![song("processing"), song("ready"), song("ready")],
    )
    .await;
    let key = uuid::Uuid::new_v4();
    let options = RequestOptions::new()
        .header("x-songbind-trace", "t-1")
        .unwrap()
        .idempotency_key(key);
    let client = client(&front);
    let job = client
        .with(&options)
        .submit_remix(&request())
        .await
        .unwrap();
    job.wait(&WaitOptions::default().poll_interval(Duration::from_millis(1)))
        .await
        .unwrap();
    let received = front.received();
    assert!(received.len() >= 2, "a PUT and a poll");
    for request in &received {
        assert_eq!(
            request.header("x-songbind-trace"),
            Some("t-1"),
            "{}",
            request.path
        );
    }
    let body: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["idempotency_key"], key.to_string());
    // The client itself is unchanged.
    client.get("op_abc", false).await.unwrap();
    assert_eq!(
        front.received().last().unwrap().header("x-songbind-trace"),
        None
    );
    assert!(RequestOptions::new().header("bad name", "x").is_err());
}

#[tokio::test]
async fn a_timeout_bounds_each_call_and_a_retry_policy_replaces_the_client_s() {
    let front = Front::start("http://127.0.0.1:9", vec![Step::Silent]).await;
    let quick = RequestOptions::new().timeout(Duration::from_millis(200));
    let error = client(&front)
        .with(&quick)
        .get("op_abc", true)
        .await
        .unwrap_err();
    assert!(matches!(&error, Error::Timeout { .. }), "{error:?}");

    let unavailable = || {
        Step::Answer(raw(
            "503 Service Unavailable",
            &[("content-type", "application/json"), ("retry-after", "0")],
            r#"{"detail": "busy"}"#,
        ))
    };
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![unavailable(), unavailable(), song("ready")],
    )
    .await;
    let once = RequestOptions::new().retry(RetryPolicy::none());
    let error = client(&front)
        .with(&once)
        .get("op_abc", false)
        .await
        .unwrap_err();
    assert_eq!((error.status(), front.count("GET")), (Some(503), 1));
    // Without the override the client's own policy retries.
    client(&front).get("op_abc", false).await.unwrap();
    assert_eq!(front.count("GET"), 3);
}
