//! The fault kinds that answer an error the way misbehaving servers do, over
//! loopback: non-JSON error pages (`page:`), 5xx answers whose text sounds
//! like "not taken" although the job was created (`misleading:`), and
//! answers that echo the request's key header (`echo-auth:`).

use anyhow::{Context, Result, ensure};
use axum::http::{Method, StatusCode};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use songbind_emulator::{Emulator, FAULT_HEADER, Fault, FaultRule, PageBody, Provider};

/// A realistic key, long enough that finding it in a body is no accident.
const KEY: &str = "sk_live_4f9QzX2bLr7TnW8kYc3DpHs6";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client")
}

/// The key header each provider takes (`authorization`, or ElevenLabs'
/// `xi-api-key`).
fn key_header(provider: Provider) -> &'static str {
    provider.info().auth.header_name()
}

/// The key header's value each provider takes.
fn authorization(provider: Provider) -> String {
    match provider {
        Provider::MusicGpt | Provider::ElevenLabs => KEY.to_owned(),
        _ => format!("Bearer {KEY}"),
    }
}

/// A valid create of `provider` (a JSON body, or MusicGPT's multipart form
/// naming an `audio_path`), with `fault` in the fault header when given.
fn create(emulator: &Emulator, provider: Provider, fault: Option<&str>) -> reqwest::RequestBuilder {
    create_with_key(emulator, provider, fault, uuid::Uuid::new_v4())
}

/// Like [`create`], with this SoundPiece idempotency key.
fn create_with_key(
    emulator: &Emulator,
    provider: Provider,
    fault: Option<&str>,
    key: uuid::Uuid,
) -> reqwest::RequestBuilder {
    let base = emulator.base_url(provider);
    let request = match provider {
        Provider::Soundverse => http()
            .post(format!("{base}/v6/generate/song/sync"))
            .json(&json!({ "prompt": "jazz, upbeat" })),
        Provider::SoundPiece => http()
            .put(format!("{base}/v1/create.remix_song"))
            .json(&json!({
                "idempotency_key": key.to_string(),
                "source": { "url": "https://example.com/source.mp3" },
                "lyrics": "[Verse]\nla la la",
                "prompt": "rock",
                "n_variations": 1,
            })),
        Provider::MusicGpt => http().post(format!("{base}/Remix")).multipart(
            Form::new()
                .text("prompt", "jazz")
                .text("mode", "REMIX")
                .text("audio_path", "https://example.com/source.mp3"),
        ),
        Provider::ElevenLabs => http()
            .post(format!("{base}/v1/music"))
            .json(&json!({ "prompt": "jazz, upbeat", "music_length_ms": 3000 })),
    };
    let request = request.header(key_header(provider), authorization(provider));
    match fault {
        Some(fault) => request.header(FAULT_HEADER, fault),
        None => request,
    }
}

fn content_type(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn retry_after(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn error_pages_answer_their_status_with_html_text_or_nothing_and_create_no_job() -> Result<()>
{
    let emulator = Emulator::start_for_tests().await?;
    for provider in Provider::ALL {
        let html = create(&emulator, provider, Some("page:502:html"))
            .send()
            .await?;
        assert_eq!(html.status(), 502, "{provider:?}");
        assert_eq!(content_type(&html).as_deref(), Some("text/html"));
        assert_eq!(retry_after(&html), None);
        let body = html.text().await?;
        assert!(body.starts_with("<html>"), "{body}");
        assert!(body.contains("<title>502 Bad Gateway</title>"), "{body}");
        assert!(body.contains("nginx"), "{body}");
        ensure!(serde_json::from_str::<Value>(&body).is_err());

        let text = create(&emulator, provider, Some("page:429:text:retry-after=1"))
            .send()
            .await?;
        assert_eq!(text.status(), 429, "{provider:?}");
        assert_eq!(
            content_type(&text).as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(retry_after(&text).as_deref(), Some("1"));
        assert_eq!(text.text().await?, "429 Too Many Requests\n");

        let empty = create(&emulator, provider, Some("page:503:empty:retry-after=0"))
            .send()
            .await?;
        assert_eq!(empty.status(), 503, "{provider:?}");
        assert_eq!(content_type(&empty), None);
        assert_eq!(retry_after(&empty).as_deref(), Some("0"));
        assert_eq!(empty.content_length(), Some(0));
        assert_eq!(empty.text().await?, "");

        assert_eq!(emulator.jobs_created(provider), 0, "{provider:?}");
    }
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_error_page_rule_refuses_an_upload_then_lets_the_create_through() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    emulator.inject(
        FaultRule::new("page:503:html:retry-after=0".parse()?)
            .provider(Provider::MusicGpt)
            .route(Method::POST, "/Remix")
            .times(2),
    );
    let upload = || {
        let base = emulator.base_url(Provider::MusicGpt);
        http()
            .post(format!("{base}/Remix"))
            .header("authorization", KEY)
            .multipart(
                Form::new()
                    .text("prompt", "jazz")
                    .text("mode", "REMIX")
                    .part(
                        "audio_file",
                        Part::bytes(vec![7u8; 48 * 1024])
                            .file_name("song.mp3")
                            .mime_str("audio/mpeg")
                            .expect("a mime type"),
                    ),
            )
    };
    for _ in 0..2 {
        // The upload was read before the answer: the client gets the page,
        // not a reset.
        let refused = upload()
            .send()
            .await
            .context("the page reaches the client")?;
        assert_eq!(refused.status(), 503);
        assert_eq!(content_type(&refused).as_deref(), Some("text/html"));
        assert_eq!(retry_after(&refused).as_deref(), Some("0"));
    }
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 0);
    let created = upload().send().await?;
    assert_eq!(created.status(), 200, "{}", created.text().await?);
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_misleading_5xx_comes_after_the_job_was_created() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let cases = [
        (
            Provider::Soundverse,
            "misleading:500",
            json!({
                "success": false,
                "message": "Job created, but the rate limit counter could not be updated",
            }),
        ),
        (
            Provider::SoundPiece,
            "misleading:504",
            json!({ "detail": "Upstream service temporarily unavailable" }),
        ),
        (
            Provider::MusicGpt,
            "misleading:504",
            json!({
                "success": false,
                "message": "Upstream service temporarily unavailable",
            }),
        ),
        (
            Provider::Soundverse,
            "misleading:502",
            json!({
                "success": false,
                "message": "Rate limits have been passed for the user.",
            }),
        ),
        (
            Provider::ElevenLabs,
            "misleading:502",
            json!({ "detail": "Bad gateway: the request was not processed, please try again" }),
        ),
    ];
    for (provider, fault, expected) in cases {
        let before = emulator.jobs_created(provider);
        let response = create(&emulator, provider, Some(fault)).send().await?;
        let status: u16 = fault["misleading:".len()..].parse()?;
        assert_eq!(response.status(), status, "{fault}");
        assert_eq!(content_type(&response).as_deref(), Some("application/json"));
        let body: Value = response.json().await?;
        assert_eq!(body, expected, "{provider:?} {fault}");
        assert_eq!(
            emulator.jobs_created(provider),
            before + 1,
            "{provider:?} {fault}: the job exists"
        );
    }
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn after_a_misleading_5xx_the_same_soundpiece_key_replays_the_operation() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    emulator.inject(
        FaultRule::new(Fault::Misleading { status: 500 })
            .provider(Provider::SoundPiece)
            .route(Method::PUT, "/v1/create.remix_song"),
    );
    let key = uuid::Uuid::new_v4();
    let first = create_with_key(&emulator, Provider::SoundPiece, None, key)
        .send()
        .await?;
    assert_eq!(first.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = first.json().await?;
    assert_eq!(
        body["detail"],
        "Job created, but the rate limit counter could not be updated"
    );
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);

    let again = create_with_key(&emulator, Provider::SoundPiece, None, key)
        .send()
        .await?;
    assert_eq!(again.status(), 200);
    let operation: Value = again.json().await?;
    let id = operation["remix_song"]["id"]
        .as_str()
        .context("an operation id")?;
    assert!(id.starts_with("op_"), "{operation}");
    assert_eq!(
        emulator.jobs_created(Provider::SoundPiece),
        1,
        "the replay is the operation the misleading answer hid"
    );
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn echo_auth_puts_the_key_header_in_a_4xx_json_body() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    for (provider, status, shape) in [
        (Provider::Soundverse, 400, "message"),
        (Provider::Soundverse, 401, "detail"),
        (Provider::SoundPiece, 400, "detail"),
        (Provider::MusicGpt, 400, "detail"),
        (Provider::MusicGpt, 422, "detail"),
        (Provider::ElevenLabs, 400, "detail"),
    ] {
        let response = create(&emulator, provider, Some(&format!("echo-auth:{status}")))
            .send()
            .await?;
        assert_eq!(response.status(), status, "{provider:?}");
        assert_eq!(content_type(&response).as_deref(), Some("application/json"));
        let body: Value = response.json().await?;
        assert_eq!(
            body[shape],
            format!("bad request; you sent {}", authorization(provider)),
            "{provider:?} {status}: {body}"
        );
        assert_eq!(emulator.jobs_created(provider), 0, "{provider:?}");
    }
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn echo_auth_lists_every_request_header_in_a_5xx_text_body() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    for provider in Provider::ALL {
        let response = create(&emulator, provider, Some("echo-auth:500"))
            .header("x-trace", "t-123")
            .send()
            .await?;
        assert_eq!(response.status(), 500, "{provider:?}");
        assert_eq!(
            content_type(&response).as_deref(),
            Some("text/plain; charset=utf-8")
        );
        let body = response.text().await?;
        assert!(body.starts_with("500 Internal Server Error\n"), "{body}");
        let lines: Vec<&str> = body.lines().collect();
        assert!(
            lines.contains(
                &format!("{}: {}", key_header(provider), authorization(provider)).as_str()
            ),
            "{body}"
        );
        assert!(lines.contains(&"x-trace: t-123"), "{body}");
        assert!(lines.contains(&"x-emulator-fault: echo-auth:500"), "{body}");
        assert_eq!(emulator.jobs_created(provider), 0, "{provider:?}");
    }
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn echo_auth_with_pad_puts_the_key_after_that_many_characters_of_trace() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let trace: String = "0123456789abcdef".chars().cycle().take(37).collect();

    let text = create(
        &emulator,
        Provider::Soundverse,
        Some("echo-auth:502:pad=37"),
    )
    .send()
    .await?;
    assert_eq!(text.status(), 502);
    let body = text.text().await?;
    assert!(
        body.starts_with(&format!(
            "502 Bad Gateway\ntrace: {trace}\n\nrequest headers:\n"
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!("authorization: Bearer {KEY}\n")),
        "{body}"
    );

    let json = create(&emulator, Provider::MusicGpt, Some("echo-auth:400:pad=37"))
        .send()
        .await?;
    assert_eq!(json.status(), 400);
    let body: Value = json.json().await?;
    assert_eq!(
        body["detail"],
        format!("bad request (trace {trace}); you sent {KEY}")
    );
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn echo_auth_on_a_poll_answers_instead_of_the_status() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let created: Value = create(&emulator, Provider::SoundPiece, None)
        .send()
        .await?
        .json()
        .await?;
    let id = created["remix_song"]["id"]
        .as_str()
        .context("an operation id")?
        .to_owned();
    emulator.inject(
        FaultRule::new("echo-auth:502".parse()?)
            .provider(Provider::SoundPiece)
            .route(Method::GET, "/v1/create.remix_song"),
    );
    let poll = || {
        http()
            .get(format!(
                "{}/v1/create.remix_song",
                emulator.base_url(Provider::SoundPiece)
            ))
            .query(&[("id", id.as_str())])
            .header("authorization", authorization(Provider::SoundPiece))
    };
    let echoed = poll().send().await?;
    assert_eq!(echoed.status(), 502);
    assert!(echoed.text().await?.contains(KEY));
    let fine = poll().send().await?;
    assert_eq!(fine.status(), 200, "the rule applied once");
    emulator.shutdown().await;
    Ok(())
}

#[test]
fn a_page_fault_is_public_with_its_parts() {
    let fault: Fault = "page:504:empty".parse().expect("a fault");
    assert_eq!(
        fault,
        Fault::Page {
            status: 504,
            body: PageBody::Empty,
            retry_after: None,
        }
    );
}

#[tokio::test]
async fn a_bad_page_misleading_or_echo_header_is_a_400_naming_it() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    for bad in ["page:502:xml", "misleading:404", "echo-auth:200"] {
        let response = create(&emulator, Provider::SoundPiece, Some(bad))
            .send()
            .await?;
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await?;
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(&format!("`{bad}`")), "{detail}");
    }
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 0);
    emulator.shutdown().await;
    Ok(())
}
