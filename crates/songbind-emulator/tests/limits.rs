//! The emulator's resource bounds, over loopback: what the request log keeps
//! (nothing from unauthenticated clients, at most the configured number of
//! requests and body bytes from the others).

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use axum::http::StatusCode;
use bytes::Bytes;
use reqwest::multipart::{Form, Part};
use songbind_emulator::{
    DEFAULT_MAX_RECORDED_BODY_BYTES, DEFAULT_MAX_RECORDED_REQUESTS, Emulator, Pacing, Provider,
    RECORDED_BODY_LIMIT, RecordStats,
};

const WAIT: Duration = Duration::from_secs(30);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client")
}

/// A body of `len` bytes whose content depends on `seed`, so that a kept
/// prefix can be told from another request's.
fn large_body(len: usize, seed: usize) -> Bytes {
    (0..len)
        .map(|i| b'a' + ((i + seed) % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The create request of `provider`, with `auth` as the Authorization
/// header (none when `None`) and `body` sent as JSON.
fn create(
    emulator: &Emulator,
    provider: Provider,
    auth: Option<&str>,
    body: Bytes,
) -> reqwest::RequestBuilder {
    let base = emulator.base_url(provider);
    let request = match provider {
        Provider::Soundverse => http().post(format!("{base}/v6/generate/song")),
        Provider::SoundPiece => http().put(format!("{base}/v1/create.remix_song")),
        Provider::MusicGpt => http().post(format!("{base}/Remix")),
    };
    let request = request
        .header("content-type", "application/json")
        .body(body);
    match auth {
        Some(auth) => request.header("authorization", auth),
        None => request,
    }
}

/// Checks the log against its caps: at most `max_requests` kept, no kept
/// body longer than `max_body`, and the byte count adding up.
fn assert_within(emulator: &Emulator, max_requests: usize, max_body: usize) -> RecordStats {
    let stats = emulator.record_stats();
    let kept = emulator.received();
    assert!(stats.kept <= max_requests, "{stats:?}");
    assert_eq!(kept.len(), stats.kept, "{stats:?}");
    assert!(stats.kept_bytes <= max_requests * max_body, "{stats:?}");
    for request in &kept {
        assert!(request.body.len() <= max_body, "{}", request.body.len());
    }
    assert_eq!(
        kept.iter().map(|r| r.body.len()).sum::<usize>(),
        stats.kept_bytes,
        "{stats:?}"
    );
    assert_eq!(stats.kept + stats.dropped, stats.recorded, "{stats:?}");
    stats
}

#[test]
fn the_default_caps_are_a_thousand_requests_and_64_kib_per_body() {
    assert_eq!(DEFAULT_MAX_RECORDED_REQUESTS, 1000);
    assert_eq!(DEFAULT_MAX_RECORDED_BODY_BYTES, 64 * 1024);
}

/// Regression (issue 9, item 13): every request was recorded before the auth
/// check, so anyone could grow the emulator by 1 MiB per request.
#[tokio::test]
async fn unauthenticated_requests_are_never_recorded_even_with_large_bodies() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    const PER_PROVIDER: usize = 30;
    let mut refused = 0;
    for provider in Provider::ALL {
        // No key at all, and a key in the wrong form for the provider.
        let wrong = match provider {
            Provider::MusicGpt => "Bearer mgpt_key",
            _ => "sk_key_without_bearer",
        };
        for i in 0..PER_PROVIDER {
            let auth = (i % 2 == 1).then_some(wrong);
            let response = create(
                &emulator,
                provider,
                auth,
                large_body(RECORDED_BODY_LIMIT, i),
            )
            .send()
            .await?;
            ensure!(
                response.status() == StatusCode::UNAUTHORIZED,
                "{provider:?} {auth:?}: {}",
                response.status()
            );
            refused += 1;
        }
        // A multipart upload without a key too.
        let form = Form::new().text("prompt", "x".repeat(100_000)).part(
            "audio_file",
            Part::bytes(vec![7u8; 200_000]).file_name("a.mp3"),
        );
        let response = http()
            .post(format!("{}/Remix", emulator.base_url(Provider::MusicGpt)))
            .multipart(form)
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        refused += 1;
    }
    assert_eq!(refused, 3 * (PER_PROVIDER + 1));
    assert!(emulator.received().is_empty());
    assert_eq!(emulator.received_count(), 0);
    assert_eq!(emulator.record_stats(), RecordStats::default());

    // An authenticated request is recorded, whole.
    let body = Bytes::from_static(br#"{"prompt": "rock"}"#);
    create(
        &emulator,
        Provider::Soundverse,
        Some("Bearer sk_test"),
        body.clone(),
    )
    .send()
    .await?;
    let received = emulator.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, body);
    Ok(())
}

/// Regression (issue 9, item 13): the log kept every request and up to
/// 1 MiB of each body, forever.
#[tokio::test]
async fn the_request_log_keeps_at_most_the_configured_requests_and_body_bytes() -> Result<()> {
    const MAX_REQUESTS: usize = 5;
    const MAX_BODY: usize = 4096;
    const LARGE: usize = 40;
    let emulator = Emulator::builder()
        .pacing(Pacing::instant())
        .max_recorded_requests(MAX_REQUESTS)
        .max_recorded_body_bytes(MAX_BODY)
        .start()
        .await?;
    let mut sent = 0usize;
    let mut sent_bytes = 0u64;
    for i in 0..LARGE {
        let provider = Provider::ALL[i % 3];
        let auth = match provider {
            Provider::MusicGpt => "mgpt_test",
            _ => "Bearer sk_test",
        };
        let body = large_body(RECORDED_BODY_LIMIT, i);
        let response = create(&emulator, provider, Some(auth), body.clone())
            .header("x-n", i.to_string())
            .send()
            .await?;
        ensure!(
            response.status() != StatusCode::UNAUTHORIZED,
            "{provider:?} refused the key"
        );
        sent += 1;
        sent_bytes += body.len() as u64;
        // Never over the caps, after any request.
        let stats = assert_within(&emulator, MAX_REQUESTS, MAX_BODY);
        assert_eq!(stats.recorded, sent);
        // The newest request is kept, cut to its first MAX_BODY bytes.
        let newest = emulator.received().pop().context("nothing kept")?;
        assert_eq!(newest.header("x-n"), Some(i.to_string().as_str()));
        assert_eq!(newest.body, body.slice(..MAX_BODY));
    }
    let stats = assert_within(&emulator, MAX_REQUESTS, MAX_BODY);
    assert_eq!(
        stats,
        RecordStats {
            recorded: LARGE,
            kept: MAX_REQUESTS,
            dropped: LARGE - MAX_REQUESTS,
            kept_bytes: MAX_REQUESTS * MAX_BODY,
            body_bytes_read: sent_bytes,
            truncated: LARGE,
        }
    );
    // The kept ones are the newest, in arrival order.
    let kept: Vec<String> = emulator
        .received()
        .iter()
        .map(|r| r.header("x-n").unwrap_or("?").to_owned())
        .collect();
    let expected: Vec<String> = (LARGE - MAX_REQUESTS..LARGE)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(kept, expected);

    // A body within the cap is kept whole; received_since sees exactly the
    // requests after a count even once older ones were dropped, and
    // wait_for_requests counts dropped requests too.
    let before = emulator.received_count();
    let small = Bytes::from_static(br#"{"prompt": "a small one"}"#);
    create(
        &emulator,
        Provider::Soundverse,
        Some("Bearer sk_test"),
        small.clone(),
    )
    .send()
    .await?;
    let since = emulator.received_since(before);
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].body, small);
    assert_eq!(
        since[0].json(),
        Some(serde_json::json!({"prompt": "a small one"}))
    );
    let waited = emulator.wait_for_requests(LARGE + 1, WAIT).await?;
    assert_eq!(waited.len(), MAX_REQUESTS);
    assert_within(&emulator, MAX_REQUESTS, MAX_BODY);
    Ok(())
}

/// Multipart text values count against the same per-request cap.
#[tokio::test]
async fn multipart_text_values_over_the_body_cap_are_counted_not_kept() -> Result<()> {
    const MAX_BODY: usize = 4096;
    let emulator = Emulator::builder()
        .pacing(Pacing::instant())
        .max_recorded_body_bytes(MAX_BODY)
        .start()
        .await?;
    let prompt = "p".repeat(10_000);
    let form = Form::new()
        .text("mode", "REMIX")
        .text("prompt", prompt.clone())
        .text("audio_path", "https://a.example/x.mp3");
    let response = http()
        .post(format!("{}/Remix", emulator.base_url(Provider::MusicGpt)))
        .header("authorization", "mgpt_test")
        .multipart(form)
        .send()
        .await?;
    ensure!(response.status() != StatusCode::UNAUTHORIZED);
    let received = emulator.received();
    assert_eq!(received.len(), 1);
    let parts = &received[0].form;
    let mode = parts.iter().find(|p| p.name == "mode").context("mode")?;
    assert_eq!(mode.text.as_deref(), Some("REMIX"));
    let kept_prompt = parts
        .iter()
        .find(|p| p.name == "prompt")
        .context("prompt")?;
    assert_eq!(kept_prompt.len, prompt.len(), "the length is still counted");
    assert_eq!(kept_prompt.text, None, "the value is over the cap");
    let stats = emulator.record_stats();
    assert!(stats.kept_bytes <= MAX_BODY, "{stats:?}");
    assert_eq!(stats.truncated, 1);
    Ok(())
}
