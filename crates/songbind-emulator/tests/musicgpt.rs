//! The MusicGPT emulator over loopback: multipart `POST /Remix` (file, streamed
//! file, URL), `GET /byId` through the generated client, the conversion
//! lifecycle, webhooks, validation errors, auth, scenario triggers and faults.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use songbind_emulator::{Emulator, FAULT_HEADER, Provider, RecordedPart, RecordedRequest};
use songbind_musicgpt::types::{
    Conversion, ErrorBody, ErrorDetail, LyricsTimestampLine, RemixResponse, WebhookPayload,
};

/// Upper bound for anything a test waits on (instant pacing: never reached
/// unless the behaviour is broken).
const WAIT: Duration = Duration::from_secs(20);

const KEY: &str = "mgpt_test_key";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

fn url(emulator: &Emulator, path: &str) -> String {
    format!("{}{path}", emulator.base_url(Provider::MusicGpt))
}

fn client(emulator: &Emulator) -> songbind_musicgpt::Client {
    songbind_musicgpt::Client::with_api_key(&emulator.base_url(Provider::MusicGpt), KEY)
        .expect("generated client")
}

/// Deterministic bytes standing in for an audio file.
fn audio_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn text_form(fields: &[(&'static str, &'static str)]) -> Form {
    fields
        .iter()
        .fold(Form::new(), |form, (name, value)| form.text(*name, *value))
}

fn file_part(len: usize) -> Part {
    Part::bytes(audio_bytes(len))
        .file_name("audio.m4a")
        .mime_str("audio/mp4")
        .expect("mime")
}

async fn post_remix(emulator: &Emulator, form: Form) -> Result<reqwest::Response> {
    Ok(http()
        .post(url(emulator, "/Remix"))
        .header("authorization", KEY)
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .await?)
}

/// Submits a remix by URL and returns the decoded answer.
async fn submit_by_path(
    emulator: &Emulator,
    prompt: &'static str,
    webhook_url: Option<String>,
) -> Result<RemixResponse> {
    let mut form = text_form(&[
        ("audio_path", "https://www.youtube.com/watch?v=example123"),
        ("prompt", prompt),
        ("mode", "REMIX"),
        (
            "lyrics",
            "[Verse 1]\nNeon rain on the boulevard\n\n[Chorus]\nWe remix the night",
        ),
    ]);
    if let Some(webhook_url) = webhook_url {
        form = form.text("webhook_url", webhook_url);
    }
    let response = post_remix(emulator, form).await?;
    ensure!(
        response.status() == StatusCode::OK,
        "submit: {}",
        response.status()
    );
    Ok(response.json().await?)
}

/// The last recorded request to `path`.
fn last_request(emulator: &Emulator, path: &str) -> RecordedRequest {
    emulator
        .received()
        .into_iter()
        .rev()
        .find(|request| request.path == path)
        .unwrap_or_else(|| panic!("no request to {path} recorded"))
}

fn text_part(name: &str, value: &str) -> RecordedPart {
    RecordedPart {
        name: name.to_owned(),
        file_name: None,
        content_type: None,
        len: value.len(),
        text: Some(value.to_owned()),
    }
}

/// Looks a conversion up through the generated client.
async fn lookup(
    emulator: &Emulator,
    by: &str,
    id: &str,
) -> Result<Conversion, songbind_musicgpt::Error<ErrorBody>> {
    let client = client(emulator);
    let builder = client.get_conversion_by_id().conversion_type("REMIX");
    let builder = match by {
        "task_id" => builder.task_id(id),
        _ => builder.conversion_id(id),
    };
    let response = builder.send().await?.into_inner();
    assert_eq!(response.success, Some(true));
    Ok(response.conversion.expect("conversion in a /byId answer"))
}

/// Polls `/byId` (yielding to the emulator between calls, no sleeping) until
/// the conversion leaves IN_QUEUE / PROCESSING; returns it and every status seen.
async fn until_ended(
    emulator: &Emulator,
    conversion_id: &str,
) -> Result<(Conversion, Vec<String>)> {
    let poll = async {
        let mut seen: Vec<String> = Vec::new();
        loop {
            let conversion = lookup(emulator, "conversion_id", conversion_id).await?;
            let status = conversion.status.clone().unwrap_or_default();
            if seen.last() != Some(&status) {
                seen.push(status.clone());
            }
            if status != "IN_QUEUE" && status != "PROCESSING" {
                return Ok::<_, anyhow::Error>((conversion, seen));
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, poll)
        .await
        .context("conversion never ended")?
}

async fn download(url: &str) -> Result<(String, bytes::Bytes)> {
    let response = http().get(url).send().await?;
    ensure!(
        response.status() == StatusCode::OK,
        "GET {url}: {}",
        response.status()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok((content_type, response.bytes().await?))
}

async fn assert_wav(url: &str) -> Result<()> {
    let (content_type, body) = download(url).await?;
    assert_eq!(content_type, "audio/wav");
    assert_eq!(&body[0..4], b"RIFF", "{url}");
    assert_eq!(&body[8..12], b"WAVE", "{url}");
    Ok(())
}

/// A webhook receiver on a free port answering 200 to every POST.
async fn receiver() -> Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route("/hooks/musicgpt", axum::routing::post(|| async { "ok" }));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}/hooks/musicgpt"), task))
}

async fn error_body(response: reqwest::Response) -> Result<(Value, ErrorBody)> {
    let raw: Value = response.json().await?;
    let typed: ErrorBody = serde_json::from_value(raw.clone())?;
    Ok((raw, typed))
}

#[tokio::test]
async fn remix_by_file_upload_answers_the_sample_shape_and_records_every_part() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let lyrics = "[Verse 1]\nI've been staring at the edge of the water";
    let form = Form::new()
        .text("prompt", "Create an upbeat pop remix")
        .text("mode", "REMIX")
        .text("lyrics", lyrics)
        .part("audio_file", file_part(300_000));
    let response = post_remix(&emulator, form).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let raw: Value = response.json().await?;
    let remix: RemixResponse = serde_json::from_value(raw.clone())?;

    assert_eq!(raw["success"], json!(true));
    assert_eq!(raw["message"], "Remix request submitted successfully");
    assert_eq!(raw["status"], "IN_QUEUE");
    assert_eq!(raw["eta"], json!(184));
    assert_eq!(raw["credit_estimate"], json!(0.99));
    let ids = [
        remix.task_id.clone(),
        remix.conversion_id_1.clone().context("conversion_id_1")?,
        remix.conversion_id_2.clone().context("conversion_id_2")?,
    ];
    for id in &ids {
        uuid::Uuid::parse_str(id).with_context(|| format!("{id} is not a UUID"))?;
    }
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);

    let request = last_request(&emulator, "/Remix");
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("authorization"), Some(KEY));
    assert!(request.body.is_empty(), "multipart bodies are not kept");
    assert_eq!(
        request.form,
        vec![
            text_part("prompt", "Create an upbeat pop remix"),
            text_part("mode", "REMIX"),
            text_part("lyrics", lyrics),
            RecordedPart {
                name: "audio_file".to_owned(),
                file_name: Some("audio.m4a".to_owned()),
                content_type: Some("audio/mp4".to_owned()),
                len: 300_000,
                text: None,
            },
        ]
    );
    Ok(())
}

#[tokio::test]
async fn remix_counts_a_streamed_file_part_chunk_by_chunk() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    // 37 chunks of 8 KiB plus an odd tail, sent with chunked transfer encoding.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..37)
        .map(|i| Ok(vec![i as u8; 8192]))
        .chain(std::iter::once(Ok(vec![7u8; 123])))
        .collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let part = Part::stream(body)
        .file_name("loop.wav")
        .mime_str("audio/wav")?;
    let form = Form::new()
        .part("audio_file", part)
        .text("prompt", "Generate a soothing ambient soundscape.")
        .text("mode", "OVER_INSTRUMENTAL");
    let response = post_remix(&emulator, form).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let remix: RemixResponse = response.json().await?;
    assert!(remix.success);

    let request = last_request(&emulator, "/Remix");
    assert_eq!(request.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        request.form,
        vec![
            RecordedPart {
                name: "audio_file".to_owned(),
                file_name: Some("loop.wav".to_owned()),
                content_type: Some("audio/wav".to_owned()),
                len: 37 * 8192 + 123,
                text: None,
            },
            text_part("prompt", "Generate a soothing ambient soundscape."),
            text_part("mode", "OVER_INSTRUMENTAL"),
        ]
    );
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);
    Ok(())
}

#[tokio::test]
async fn remix_by_audio_path_is_accepted_and_recorded_as_text_parts() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let form = text_form(&[
        ("mode", "INPAINT"),
        ("prompt", "Generate a soothing ambient soundscape."),
        ("audio_path", "https://www.youtube.com/watch?v=example123"),
    ]);
    let response = post_remix(&emulator, form).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let remix: RemixResponse = response.json().await?;
    assert_eq!(remix.status.as_deref(), Some("IN_QUEUE"));

    let request = last_request(&emulator, "/Remix");
    assert_eq!(
        request.form,
        vec![
            text_part("mode", "INPAINT"),
            text_part("prompt", "Generate a soothing ambient soundscape."),
            text_part("audio_path", "https://www.youtube.com/watch?v=example123"),
        ]
    );
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);
    Ok(())
}

#[tokio::test]
async fn auth_takes_the_raw_key_and_refuses_bearer_or_missing_with_401() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let form = || {
        text_form(&[
            ("prompt", "p"),
            ("mode", "REMIX"),
            ("audio_path", "https://a.example/x.mp3"),
        ])
    };
    for auth in [Some(format!("Bearer {KEY}")), None] {
        let mut request = http().post(url(&emulator, "/Remix")).multipart(form());
        if let Some(auth) = &auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let (raw, typed) = error_body(response).await?;
        assert_eq!(
            raw,
            json!({ "detail": "Missing or invalid API key (send `Authorization: <key>`)" })
        );
        assert!(matches!(typed.detail, Some(ErrorDetail::String(_))));
    }
    let bearer = http()
        .get(url(&emulator, "/byId?conversionType=REMIX&task_id=x"))
        .header("authorization", format!("Bearer {KEY}"))
        .send()
        .await?;
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 0);

    // The raw form is accepted.
    let ok = post_remix(&emulator, form()).await?;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);
    Ok(())
}

#[tokio::test]
async fn validation_errors_answer_422_in_fastapi_shape_naming_the_field() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let path = ("audio_path", "https://www.youtube.com/watch?v=example123");
    let cases: Vec<(&str, Form, Value)> = vec![
        (
            "missing prompt",
            Form::new()
                .text("mode", "REMIX")
                .part("audio_file", file_part(1000)),
            json!([{ "loc": ["body", "prompt"], "msg": "Field required", "type": "missing" }]),
        ),
        (
            "missing mode",
            text_form(&[path, ("prompt", "p")]),
            json!([{ "loc": ["body", "mode"], "msg": "Field required", "type": "missing" }]),
        ),
        (
            "unknown mode",
            text_form(&[path, ("prompt", "p"), ("mode", "remix")]),
            json!([{
                "loc": ["body", "mode"],
                "msg": "Input should be 'REMIX', 'INPAINT' or 'OVER_INSTRUMENTAL'",
                "type": "enum",
            }]),
        ),
        (
            "neither audio_file nor audio_path",
            text_form(&[("prompt", "p"), ("mode", "REMIX"), ("audio_path", "")]),
            json!([{
                "loc": ["body", "audio_file"],
                "msg": "Value error, either audio_file or audio_path is required",
                "type": "value_error",
            }]),
        ),
        (
            "empty file",
            text_form(&[("prompt", "p"), ("mode", "REMIX")]).part("audio_file", file_part(0)),
            json!([{
                "loc": ["body", "audio_file"],
                "msg": "Value error, audio_file is empty: upload a non-empty audio file",
                "type": "value_error",
            }]),
        ),
        (
            "audio_file sent as a text field",
            text_form(&[
                ("prompt", "p"),
                ("mode", "REMIX"),
                ("audio_file", "audio.mp3"),
            ]),
            json!([{
                "loc": ["body", "audio_file"],
                "msg": "Value error, Expected UploadFile, received: <class 'str'>",
                "type": "value_error",
            }]),
        ),
        (
            "relative audio_path",
            text_form(&[
                ("prompt", "p"),
                ("mode", "REMIX"),
                ("audio_path", "/tmp/audio.mp3"),
            ]),
            json!([{
                "loc": ["body", "audio_path"],
                "msg": "Value error, audio_path must be an absolute http(s) URL",
                "type": "value_error",
            }]),
        ),
        (
            "ftp webhook_url",
            text_form(&[
                path,
                ("prompt", "p"),
                ("mode", "REMIX"),
                ("webhook_url", "ftp://hooks.example/x"),
            ]),
            json!([{
                "loc": ["body", "webhook_url"],
                "msg": "Value error, webhook_url must be empty or an absolute http(s) URL",
                "type": "value_error",
            }]),
        ),
        (
            "blank prompt",
            text_form(&[path, ("prompt", "   "), ("mode", "REMIX")]),
            json!([{
                "loc": ["body", "prompt"],
                "msg": "String should have at least 1 character",
                "type": "string_too_short",
            }]),
        ),
        (
            "every issue at once",
            text_form(&[("lyrics", "la la")]),
            json!([
                {
                    "loc": ["body", "audio_file"],
                    "msg": "Value error, either audio_file or audio_path is required",
                    "type": "value_error",
                },
                { "loc": ["body", "prompt"], "msg": "Field required", "type": "missing" },
                { "loc": ["body", "mode"], "msg": "Field required", "type": "missing" },
            ]),
        ),
    ];
    for (case, form, detail) in cases {
        let response = post_remix(&emulator, form).await?;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{case}"
        );
        let (raw, typed) = error_body(response).await?;
        assert_eq!(raw, json!({ "detail": detail }), "{case}");
        let Some(ErrorDetail::Array(issues)) = typed.detail else {
            panic!("{case}: detail is not a list of issues");
        };
        assert_eq!(
            issues.len(),
            detail.as_array().map_or(0, Vec::len),
            "{case}"
        );
        assert!(
            !last_request(&emulator, "/Remix").form.is_empty(),
            "{case}: parts recorded"
        );
    }
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 0);
    Ok(())
}

#[tokio::test]
async fn non_multipart_bodies_get_422_saying_multipart_is_required() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    for (content_type, body) in [
        (
            "application/x-www-form-urlencoded",
            "mode=REMIX&prompt=Generate&audio_path=https%3A%2F%2Fwww.youtube.com%2Fwatch%3Fv%3Dexample123",
        ),
        (
            "application/json",
            r#"{"mode":"REMIX","prompt":"p","audio_path":"https://a.example/x.mp3"}"#,
        ),
    ] {
        let response = http()
            .post(url(&emulator, "/Remix"))
            .header("authorization", KEY)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{content_type}"
        );
        let (raw, _) = error_body(response).await?;
        assert_eq!(raw["detail"][0]["loc"], json!(["body"]), "{content_type}");
        assert_eq!(raw["detail"][0]["type"], "value_error");
        let msg = raw["detail"][0]["msg"].as_str().unwrap_or("");
        assert!(
            msg.contains("must be multipart/form-data") && msg.contains(content_type),
            "{msg}"
        );
        // The non-multipart body was recorded as is.
        assert_eq!(last_request(&emulator, "/Remix").body, body.as_bytes());
    }
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 0);
    Ok(())
}

#[tokio::test]
async fn a_truncated_multipart_body_gets_400_and_creates_no_task() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhello";
    let response = http()
        .post(url(&emulator, "/Remix"))
        .header("authorization", KEY)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (raw, _) = error_body(response).await?;
    assert_eq!(
        raw,
        json!({ "detail": "There was an error parsing the body" })
    );
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 0);
    Ok(())
}

#[tokio::test]
async fn an_upload_over_100_mib_gets_413_after_being_counted() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    const MIB: usize = 1024 * 1024;
    let chunks = (0..101).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; MIB])));
    let part = Part::stream(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .file_name("huge.wav");
    let form = text_form(&[("prompt", "p"), ("mode", "REMIX")]).part("audio_file", part);
    let response = post_remix(&emulator, form).await?;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (raw, _) = error_body(response).await?;
    assert_eq!(
        raw,
        json!({ "detail": "Request body too large: the limit is 104857600 bytes (100 MiB)" })
    );
    let file = last_request(&emulator, "/Remix")
        .form
        .into_iter()
        .find(|part| part.name == "audio_file")
        .context("file part recorded")?;
    assert_eq!(
        file.len,
        101 * MIB,
        "the rest of the body is drained and counted"
    );
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 0);
    Ok(())
}

#[tokio::test]
async fn path_case_is_significant_and_wrong_methods_get_405() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let form = text_form(&[
        ("prompt", "p"),
        ("mode", "REMIX"),
        ("audio_path", "https://a.example/x.mp3"),
    ]);
    let lower = http()
        .post(url(&emulator, "/remix"))
        .header("authorization", KEY)
        .multipart(form)
        .send()
        .await?;
    assert_eq!(lower.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_body(lower).await?.0, json!({ "detail": "Not Found" }));
    let by_id = http()
        .get(url(&emulator, "/byid?conversionType=REMIX&task_id=x"))
        .header("authorization", KEY)
        .send()
        .await?;
    assert_eq!(by_id.status(), StatusCode::NOT_FOUND);
    let get_remix = http()
        .get(url(&emulator, "/Remix"))
        .header("authorization", KEY)
        .send()
        .await?;
    assert_eq!(get_remix.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        error_body(get_remix).await?.0,
        json!({ "detail": "Method Not Allowed" })
    );
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 0);
    assert_eq!(last_request(&emulator, "/remix").method, "POST");
    Ok(())
}

#[tokio::test]
async fn no_credits_key_gets_402_and_creates_no_task() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let form = text_form(&[
        ("prompt", "p"),
        ("mode", "REMIX"),
        ("audio_path", "https://a.example/x.mp3"),
    ]);
    let response = http()
        .post(url(&emulator, "/Remix"))
        .header("authorization", "sk_live_no_credits")
        .multipart(form)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        error_body(response).await?.0,
        json!({ "detail": "Insufficient credits" })
    );
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 0);
    assert_eq!(last_request(&emulator, "/Remix").form.len(), 3);
    Ok(())
}

#[tokio::test]
async fn by_id_answers_in_queue_with_null_results_right_after_submission() -> Result<()> {
    // Real-time pacing: the task waits about 5 s in the queue.
    let emulator = Emulator::builder().start().await?;
    let remix = submit_by_path(&emulator, "Create an upbeat pop remix", None).await?;
    let raw: Value = http()
        .get(url(&emulator, "/byId"))
        .query(&[
            ("conversionType", "REMIX"),
            ("task_id", remix.task_id.as_str()),
        ])
        .header("authorization", KEY)
        .send()
        .await?
        .json()
        .await?;
    let conversion = &raw["conversion"];
    assert_eq!(raw["success"], json!(true));
    assert_eq!(conversion["task_id"], json!(remix.task_id));
    assert_eq!(conversion["conversion_id"], json!(remix.conversion_id_1));
    assert_eq!(conversion["status"], "IN_QUEUE");
    for field in [
        "status_msg",
        "audio_url",
        "conversion_cost",
        "title",
        "lyrics",
        "music_style",
    ] {
        assert_eq!(conversion[field], Value::Null, "{field}");
    }
    let created = conversion["createdAt"].as_str().context("createdAt")?;
    assert_eq!(created.len(), "2025-01-15T10:00:00.000Z".len(), "{created}");
    assert!(
        created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    assert_eq!(conversion["updatedAt"], conversion["createdAt"]);
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn by_id_through_the_generated_client_sees_both_conversions_complete_with_wav_audio()
-> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let remix = submit_by_path(&emulator, "Create an upbeat pop remix", None).await?;
    let first = remix.conversion_id_1.clone().context("conversion_id_1")?;
    let second = remix.conversion_id_2.clone().context("conversion_id_2")?;

    for id in [&first, &second] {
        let (conversion, seen) = until_ended(&emulator, id).await?;
        let order = ["IN_QUEUE", "PROCESSING", "COMPLETED"];
        let positions: Vec<usize> = seen
            .iter()
            .map(|s| order.iter().position(|o| o == s).expect("known status"))
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "statuses out of order: {seen:?}"
        );
        assert_eq!(conversion.status.as_deref(), Some("COMPLETED"));
        assert_eq!(
            conversion.status_msg.as_deref(),
            Some("Conversion completed")
        );
        assert_eq!(conversion.task_id.as_deref(), Some(remix.task_id.as_str()));
        assert_eq!(conversion.conversion_id.as_deref(), Some(id.as_str()));
        assert_eq!(conversion.conversion_cost, Some(0.495));
        assert_eq!(conversion.title.as_deref(), Some("Create An Upbeat Pop"));
        assert_eq!(
            conversion.music_style.as_deref(),
            Some("Create an upbeat pop remix")
        );
        assert_eq!(
            conversion.lyrics.as_deref(),
            Some("[Verse 1]\nNeon rain on the boulevard\n\n[Chorus]\nWe remix the night")
        );
        let audio_url = conversion
            .audio_url
            .clone()
            .context("audio_url once COMPLETED")?;
        assert!(
            audio_url.starts_with(emulator.root_url()) && audio_url.ends_with(&format!("{id}.wav"))
        );
        assert_wav(&audio_url).await?;
    }

    // By task id: the task's first conversion.
    let by_task = lookup(&emulator, "task_id", &remix.task_id).await?;
    assert_eq!(by_task.conversion_id.as_deref(), Some(first.as_str()));
    assert_eq!(by_task.status.as_deref(), Some("COMPLETED"));

    let request = last_request(&emulator, "/byId");
    assert_eq!(request.method, "GET");
    assert_eq!(request.header("authorization"), Some(KEY));
    assert_eq!(
        request.query.as_deref(),
        Some(format!("conversionType=REMIX&task_id={}", remix.task_id).as_str())
    );
    Ok(())
}

#[tokio::test]
async fn by_id_needs_exactly_one_id_and_a_conversion_type() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let remix = submit_by_path(&emulator, "p", None).await?;
    let task = remix.task_id.as_str();
    let conversion = remix.conversion_id_1.as_deref().context("id")?;

    let both = client(&emulator)
        .get_conversion_by_id()
        .conversion_type("REMIX")
        .task_id(task)
        .conversion_id(conversion)
        .send()
        .await;
    let none = client(&emulator)
        .get_conversion_by_id()
        .conversion_type("REMIX")
        .send()
        .await;
    for (case, result, field) in [
        ("both ids", both, "conversion_id"),
        ("no id", none, "task_id"),
    ] {
        let Err(songbind_musicgpt::Error::ErrorResponse(error)) = result else {
            panic!("{case}: expected an error response");
        };
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY, "{case}");
        let body = serde_json::to_value(error.into_inner())?;
        assert_eq!(
            body,
            json!({ "detail": [{
                "loc": ["query", field],
                "msg": "Value error, send exactly one of task_id or conversion_id",
                "type": "value_error",
            }] }),
            "{case}"
        );
    }

    let untyped = http()
        .get(url(&emulator, "/byId"))
        .query(&[("task_id", task)])
        .header("authorization", KEY)
        .send()
        .await?;
    assert_eq!(untyped.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error_body(untyped).await?.0,
        json!({ "detail": [{ "loc": ["query", "conversionType"], "msg": "Field required", "type": "missing" }] })
    );
    Ok(())
}

#[tokio::test]
async fn by_id_answers_404_for_an_unknown_id_or_another_conversion_type() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let remix = submit_by_path(&emulator, "p", None).await?;
    let unknown = lookup(
        &emulator,
        "conversion_id",
        "16f80faa-5e71-4b3d-9291-61776c4eb97f",
    )
    .await;
    let unknown_task = lookup(&emulator, "task_id", "stem123").await;
    let other_type = client(&emulator)
        .get_conversion_by_id()
        .conversion_type("VOCAL_EXTRACTION")
        .task_id(remix.task_id.as_str())
        .send()
        .await
        .map(|_| ());
    for (case, result) in [
        ("unknown conversion id", unknown.map(|_| ())),
        ("unknown task id", unknown_task.map(|_| ())),
        ("other conversion type", other_type),
    ] {
        let Err(songbind_musicgpt::Error::ErrorResponse(error)) = result else {
            panic!("{case}: expected an error response");
        };
        assert_eq!(error.status(), StatusCode::NOT_FOUND, "{case}");
        assert_eq!(
            error.into_inner().detail,
            Some(ErrorDetail::String("Conversion not found".to_owned())),
            "{case}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn webhooks_deliver_two_conversions_then_lyrics_and_cover_payloads() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let (hook_url, _receiver) = receiver().await?;
    let remix = submit_by_path(
        &emulator,
        "Create an upbeat pop remix",
        Some(hook_url.clone()),
    )
    .await?;
    let deliveries = emulator.wait_for_deliveries(4, WAIT).await?;
    assert_eq!(deliveries.len(), 4);

    let mut conversions = Vec::new();
    let mut others = Vec::new();
    for delivery in &deliveries {
        assert_eq!(delivery.provider, Provider::MusicGpt);
        assert_eq!(delivery.url, hook_url);
        assert_eq!(delivery.response_status, Some(200));
        assert_eq!(
            delivery.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        assert!(
            !delivery.headers.keys().any(|h| h.contains("signature")),
            "unsigned"
        );
        let raw = delivery.json().context("JSON body")?;
        assert_eq!(raw["task_id"], json!(remix.task_id));
        assert_eq!(raw["success"], json!(true));
        match raw["conversion_type"].as_str() {
            Some("Remix") => conversions.push(raw),
            _ => others.push(raw),
        }
    }
    assert_eq!(conversions.len(), 2, "one payload per conversion");
    conversions.sort_by_key(|raw| raw.get("conversion_path_wav").is_none());
    let (with_wav, without_wav) = (&conversions[0], &conversions[1]);
    assert_eq!(with_wav["conversion_id"], json!(remix.conversion_id_1));
    assert_eq!(without_wav["conversion_id"], json!(remix.conversion_id_2));
    assert!(
        without_wav.get("conversion_path_wav").is_none(),
        "second payload omits the wav path"
    );

    let expected_lines = vec![
        LyricsTimestampLine {
            index: 0,
            text: "[Verse 1]".into(),
            start: 0,
            end: 0,
        },
        LyricsTimestampLine {
            index: 1,
            text: "Neon rain on the boulevard".into(),
            start: 250,
            end: 500,
        },
        LyricsTimestampLine {
            index: 3,
            text: "[Chorus]".into(),
            start: 500,
            end: 500,
        },
        LyricsTimestampLine {
            index: 4,
            text: "We remix the night".into(),
            start: 750,
            end: 1000,
        },
    ];
    for raw in [with_wav, without_wav] {
        let payload: WebhookPayload = serde_json::from_value(raw.clone())?;
        let id = payload.conversion_id.clone().context("conversion_id")?;
        assert_eq!(payload.is_flagged, Some(false));
        assert_eq!(payload.reason.as_deref(), Some(""));
        assert_eq!(payload.conversion_duration, Some(1.0));
        assert_eq!(payload.title.as_deref(), Some("Create An Upbeat Pop"));
        assert_eq!(
            payload.lyrics.as_deref(),
            Some("[Verse 1]\nNeon rain on the boulevard\n\n[Chorus]\nWe remix the night")
        );
        let encoded = payload
            .lyrics_timestamped
            .clone()
            .context("lyrics_timestamped")?;
        assert!(
            raw["lyrics_timestamped"].is_string(),
            "an encoded string, not an array"
        );
        let lines: Vec<LyricsTimestampLine> = serde_json::from_str(&encoded)?;
        assert_eq!(lines, expected_lines);
        let path = payload.conversion_path.clone().context("conversion_path")?;
        assert_eq!(
            path,
            emulator.root_url().to_owned() + "/files/" + &id + ".wav"
        );
        assert_wav(&path).await?;
        // The webhook is sent after the state changed: /byId agrees.
        let confirmed = lookup(&emulator, "conversion_id", &id).await?;
        assert_eq!(confirmed.status.as_deref(), Some("COMPLETED"));
        assert_eq!(confirmed.audio_url.as_deref(), Some(path.as_str()));
    }
    assert_eq!(with_wav["conversion_path_wav"], with_wav["conversion_path"]);

    others.sort_by_key(|raw| raw["conversion_type"].as_str().unwrap_or("").to_owned());
    let [cover, lyrics] = others.as_slice() else {
        panic!("expected a cover and a lyrics payload: {others:?}");
    };
    assert_eq!(cover["conversion_type"], "Cover");
    let image = cover["image_path"].as_str().context("image_path")?;
    let (content_type, png) = download(image).await?;
    assert_eq!(content_type, "image/png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(lyrics["conversion_type"], "Lyrics");
    assert_eq!(lyrics["lyrics"], with_wav["lyrics"]);
    let lines: Vec<LyricsTimestampLine> = serde_json::from_str(
        lyrics["lyrics_timestamped"]
            .as_str()
            .context("timed lyrics")?,
    )?;
    assert_eq!(lines, expected_lines);
    Ok(())
}

#[tokio::test]
async fn fail_marker_ends_both_conversions_in_error_with_a_reason() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let (hook_url, _receiver) = receiver().await?;
    let remix = submit_by_path(&emulator, "Make it break [fail]", Some(hook_url)).await?;
    let deliveries = emulator.wait_for_deliveries(2, WAIT).await?;
    let reason = "Remix failed: the input audio could not be processed ([fail] in the prompt)";
    let mut ids = Vec::new();
    for delivery in &deliveries {
        let payload: WebhookPayload = serde_json::from_slice(&delivery.body)?;
        assert_eq!(payload.success, Some(false));
        assert_eq!(payload.conversion_type.as_deref(), Some("Remix"));
        assert_eq!(payload.reason.as_deref(), Some(reason));
        assert_eq!(payload.conversion_path, None);
        ids.push(payload.conversion_id.context("conversion_id")?);
    }
    ids.sort();
    let mut expected = vec![
        remix.conversion_id_1.clone().context("id 1")?,
        remix.conversion_id_2.clone().context("id 2")?,
    ];
    expected.sort();
    assert_eq!(ids, expected);
    // The error payloads are the task's last deliveries: no lyrics or cover.
    assert_eq!(emulator.deliveries().len(), 2);

    for id in &expected {
        let conversion = lookup(&emulator, "conversion_id", id).await?;
        assert_eq!(conversion.status.as_deref(), Some("ERROR"));
        assert_eq!(conversion.status_msg.as_deref(), Some(reason));
        assert_eq!(conversion.audio_url, None);
        assert_eq!(conversion.conversion_cost, None);
    }
    Ok(())
}

#[tokio::test]
async fn fault_status_503_answers_the_message_shape_and_creates_no_task() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let form = text_form(&[
        ("prompt", "p"),
        ("mode", "REMIX"),
        ("audio_path", "https://a.example/x.mp3"),
    ]);
    let response = http()
        .post(url(&emulator, "/Remix"))
        .header("authorization", KEY)
        .header(FAULT_HEADER, "status:503:retry-after=7")
        .multipart(form)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    let (raw, typed) = error_body(response).await?;
    assert_eq!(
        raw,
        json!({ "success": false, "message": "Service unavailable" })
    );
    assert_eq!(typed.success, Some(false));
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 0);
    assert_eq!(
        last_request(&emulator, "/Remix").header(FAULT_HEADER),
        Some("status:503:retry-after=7")
    );
    Ok(())
}

#[tokio::test]
async fn fault_lose_reply_creates_exactly_one_task_while_the_client_sees_a_transport_error()
-> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let form = Form::new()
        .text("prompt", "p")
        .text("mode", "REMIX")
        .part("audio_file", file_part(4096));
    let result = http()
        .post(url(&emulator, "/Remix"))
        .header("authorization", KEY)
        .header(FAULT_HEADER, "lose-reply")
        .multipart(form)
        .send()
        .await;
    let error = result.expect_err("no reply must reach the client");
    assert!(!error.is_status(), "{error}");
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);
    let request = last_request(&emulator, "/Remix");
    assert_eq!(
        request
            .form
            .iter()
            .find(|p| p.name == "audio_file")
            .map(|p| p.len),
        Some(4096)
    );
    Ok(())
}
