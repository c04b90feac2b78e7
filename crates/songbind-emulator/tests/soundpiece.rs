//! Integration tests of the emulated SoundPiece API, over loopback, with plain
//! reqwest and with the generated `songbind-soundpiece` client.
//!
//! They prove the create/poll contract (echoed fields, id pattern, the
//! processing -> ready/failed lifecycle, long-polling), idempotency (replays,
//! conflicts, concurrent creates, a lost reply), every validation error, the
//! Standard Webhooks callbacks (checked with the independent `standardwebhooks`
//! crate) and the injected faults.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, ensure};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};
use songbind_emulator::{Emulator, Fault, FaultRule, Pacing, Provider};
use songbind_soundpiece::Error as ClientError;
use songbind_soundpiece::types::{
    self, CreateRemixSongRequest, ErrorDetail, RemixSongWebhook, ValidationIssueLocItem,
};
use tokio::sync::mpsc;

const PATH: &str = "/v1/create.remix_song";
const KEY: &str = "spk_test_key";
const WAIT: Duration = Duration::from_secs(10);
const LYRICS: &str = "[Verse]\nThis is a demo song, don't get too excited\n\n[Chorus]\nIt's only a demo, keep your hopes low";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a reqwest client")
}

fn endpoint(emulator: &Emulator) -> String {
    format!("{}{PATH}", emulator.base_url(Provider::SoundPiece))
}

fn client(emulator: &Emulator) -> songbind_soundpiece::Client {
    songbind_soundpiece::Client::with_api_key(&emulator.base_url(Provider::SoundPiece), KEY)
        .expect("a generated client")
}

/// A valid create body with a fresh idempotency key.
fn body() -> Value {
    json!({
        "idempotency_key": uuid::Uuid::new_v4().to_string(),
        "source": { "url": "https://example.com/source.mp3" },
        "lyrics": LYRICS,
        "prompt": "rock song, energetic, male vocal",
        "n_variations": 2,
    })
}

fn typed(body: &Value) -> CreateRemixSongRequest {
    serde_json::from_value(body.clone()).expect("a valid typed request")
}

/// PUTs `body` (as bytes) with the test key; answers status and raw body.
async fn put_raw(emulator: &Emulator, body: &[u8]) -> Result<(StatusCode, Bytes)> {
    put_with(emulator, KEY, body, &[]).await
}

async fn put_with(
    emulator: &Emulator,
    key: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Result<(StatusCode, Bytes)> {
    let mut request = http()
        .put(endpoint(emulator))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    Ok((response.status(), response.bytes().await?))
}

async fn put_json(emulator: &Emulator, body: &Value) -> Result<(StatusCode, Value)> {
    let (status, bytes) = put_raw(emulator, &serde_json::to_vec(body)?).await?;
    Ok((status, serde_json::from_slice(&bytes)?))
}

/// GETs the operation with a raw query string.
async fn get_query(emulator: &Emulator, query: &str) -> Result<(StatusCode, Value)> {
    let response = http()
        .get(format!("{}?{query}", endpoint(emulator)))
        .bearer_auth(KEY)
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.json().await?))
}

async fn create_id(emulator: &Emulator, body: &Value) -> Result<String> {
    let (status, answer) = put_json(emulator, body).await?;
    ensure!(
        status == StatusCode::OK,
        "create answered {status}: {answer}"
    );
    Ok(answer["remix_song"]["id"]
        .as_str()
        .context("no id")?
        .to_owned())
}

fn is_operation_id(id: &str) -> bool {
    id.strip_prefix("op_").is_some_and(|rest| {
        rest.len() == 26
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// The single 422 issue of an answer: (loc, msg).
fn single_issue(answer: &Value) -> Result<(Value, String)> {
    let detail = answer["detail"]
        .as_array()
        .context("detail is not a list")?;
    ensure!(detail.len() == 1, "expected one issue, got {answer}");
    ensure!(
        detail[0]["type"].is_string(),
        "issue without type: {answer}"
    );
    Ok((
        detail[0]["loc"].clone(),
        detail[0]["msg"].as_str().context("no msg")?.to_owned(),
    ))
}

// ---------------------------------------------------------------- create

#[tokio::test]
async fn create_answers_a_processing_operation_echoing_the_request() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let body = body();
    let before = unix_now();
    let (status, answer) = put_json(&emulator, &body).await?;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let song = answer["remix_song"].as_object().context("no remix_song")?;
    let id = song["id"].as_str().context("id")?;
    assert!(is_operation_id(id), "{id}");
    assert_eq!(song["status"], "processing");
    assert_eq!(song["outputs"], Value::Null);
    assert_eq!(song["error"], Value::Null);
    assert_eq!(song["idempotency_key"], body["idempotency_key"]);
    assert_eq!(
        song["source"],
        json!({ "url": "https://example.com/source.mp3" })
    );
    assert_eq!(song["lyrics"], LYRICS);
    assert_eq!(song["prompt"], "rock song, energetic, male vocal");
    assert_eq!(song["n_variations"], 2);
    assert!(!song.contains_key("callback_url"));
    // created_at is RFC 3339 (it decodes into the generated chrono field) and now.
    let decoded: types::RemixSongResponse = serde_json::from_value(answer.clone())?;
    let created = decoded
        .remix_song
        .created_at
        .context("created_at")?
        .timestamp();
    assert!(
        (before - 1..=unix_now() + 1).contains(&created),
        "{created}"
    );

    let received = emulator.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, Method::PUT);
    assert_eq!(received[0].path, PATH);
    assert_eq!(
        received[0].header("authorization"),
        Some("Bearer spk_test_key")
    );
    assert_eq!(received[0].json(), Some(body));
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
    Ok(())
}

#[tokio::test]
async fn generated_client_creates_and_long_polls_to_ready_outputs_that_download_as_wav()
-> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let client = client(&emulator);
    let key = uuid::Uuid::new_v4();
    let created = client
        .create_remix_song()
        .body(
            CreateRemixSongRequest::builder()
                .idempotency_key(key)
                .source(types::AudioSource {
                    url: "https://example.com/source.mp3".to_owned(),
                })
                .lyrics(LYRICS)
                .prompt("synthwave, melancholic, mid-tempo")
                .n_variations(std::num::NonZeroU64::new(3).context("3")?),
        )
        .send()
        .await?
        .into_inner()
        .remix_song;
    assert!(is_operation_id(&created.id), "{}", created.id);
    assert_eq!(created.status.as_deref(), Some("processing"));
    assert_eq!(created.idempotency_key, Some(key));
    assert_eq!(created.n_variations, Some(3));
    assert_eq!(created.outputs, None);

    let ready = client
        .get_remix_song()
        .id(created.id.as_str())
        .wait(true)
        .send()
        .await?
        .into_inner()
        .remix_song;
    assert_eq!(ready.id, created.id);
    assert_eq!(ready.status.as_deref(), Some("ready"));
    assert_eq!(ready.error, None);
    assert_eq!(ready.created_at, created.created_at);
    let outputs = ready.outputs.context("ready without outputs")?;
    assert_eq!(outputs.len(), 3);
    let created_at = created.created_at.context("created_at")?.timestamp();
    for (i, output) in outputs.iter().enumerate() {
        assert_eq!(
            output.url,
            format!("{}/files/{}_{}.wav", emulator.root_url(), created.id, i + 1)
        );
        assert_eq!(output.duration, Some(1.0));
        let expires = output.expires_at.context("expires_at")?.timestamp();
        assert!(
            (created_at + 3600..=created_at + 3660).contains(&expires),
            "expires_at {expires} is not an hour after {created_at}"
        );
        let file = http().get(&output.url).send().await?;
        assert_eq!(file.status(), StatusCode::OK);
        let bytes = file.bytes().await?;
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(&bytes[8..12], b"WAVE");
    }

    let polls: Vec<_> = emulator
        .received()
        .into_iter()
        .filter(|r| r.method == Method::GET && r.provider == Some(Provider::SoundPiece))
        .collect();
    assert_eq!(polls.len(), 1);
    assert_eq!(polls[0].path, PATH);
    assert_eq!(
        polls[0].query.as_deref(),
        Some(format!("id={}&wait=true", created.id).as_str())
    );
    assert_eq!(
        polls[0].header("authorization"),
        Some("Bearer spk_test_key")
    );
    Ok(())
}

#[tokio::test]
async fn boundary_values_are_accepted() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let mut body = body();
    body["lyrics"] = json!("é".repeat(3000)); // characters, not bytes
    body["prompt"] = json!("p".repeat(1024));
    body["n_variations"] = json!(3);
    body["callback_url"] = json!(format!("https://example.com/{}", "h".repeat(2020)));
    let (status, answer) = put_json(&emulator, &body).await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["remix_song"]["n_variations"], 3);

    // n_variations defaults to 1; callback_url may be null.
    let mut body = body.clone();
    body["idempotency_key"] = json!(uuid::Uuid::new_v4().to_string());
    body.as_object_mut()
        .context("object")?
        .remove("n_variations");
    body["callback_url"] = Value::Null;
    let (status, answer) = put_json(&emulator, &body).await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["remix_song"]["n_variations"], 1);
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 2);
    Ok(())
}

// ---------------------------------------------------------------- idempotency

#[tokio::test]
async fn same_key_and_same_request_replays_the_byte_identical_original_response() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let key = uuid::Uuid::new_v4().to_string();
    let first_body = format!(
        r#"{{"idempotency_key":"{key}","source":{{"url":"https://example.com/a.mp3"}},"lyrics":"la la","prompt":"pop"}}"#
    );
    let (status, original) = put_raw(&emulator, first_body.as_bytes()).await?;
    assert_eq!(status, StatusCode::OK);
    let id = serde_json::from_slice::<Value>(&original)?["remix_song"]["id"]
        .as_str()
        .context("id")?
        .to_owned();

    // The operation is ready by now...
    let (_, polled) = get_query(&emulator, &format!("id={id}&wait=true")).await?;
    assert_eq!(polled["remix_song"]["status"], "ready");

    // ...yet the same request (other key order, whitespace, the default
    // n_variations written out) gets the original answer, byte for byte.
    let same_request = format!(
        "{{ \"prompt\": \"pop\", \"n_variations\": 1, \"lyrics\": \"la la\",\n  \"source\": {{\"url\": \"https://example.com/a.mp3\"}}, \"idempotency_key\": \"{key}\" }}"
    );
    let (status, replay) = put_raw(&emulator, same_request.as_bytes()).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay, original);
    assert_eq!(
        serde_json::from_slice::<Value>(&replay)?["remix_song"]["status"],
        "processing"
    );
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
    let puts = emulator
        .received()
        .iter()
        .filter(|r| r.method == Method::PUT)
        .count();
    assert_eq!(puts, 2);
    Ok(())
}

/// The spec's `idempotency_conflict` example: the body of the 409.
const IDEMPOTENCY_CONFLICT: &str =
    "This idempotency_key was already used with a different request body.";

#[tokio::test]
async fn same_key_with_a_different_request_is_a_409_conflict_and_the_same_request_still_replays()
-> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let body = body();
    let (status, original) = put_raw(&emulator, &serde_json::to_vec(&body)?).await?;
    assert_eq!(status, StatusCode::OK);
    let mut changed = body.clone();
    changed["prompt"] = json!("jazz, mellow");
    let (status, answer) = put_raw(&emulator, &serde_json::to_vec(&changed)?).await?;
    assert_eq!(status, StatusCode::CONFLICT, "{answer:?}");
    assert_eq!(
        serde_json::from_slice::<Value>(&answer)?,
        json!({ "detail": IDEMPOTENCY_CONFLICT })
    );

    // The generated client decodes it as a string detail.
    let error = client(&emulator)
        .create_remix_song()
        .body(typed(&changed))
        .send()
        .await
        .expect_err("a conflicting replay must fail");
    let ClientError::ErrorResponse(response) = error else {
        return Err(anyhow!("expected an error response, got {error:?}"));
    };
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(matches!(
        &response.detail,
        Some(ErrorDetail::String(text)) if text == IDEMPOTENCY_CONFLICT
    ));

    // The conflicts changed nothing: the original request still replays the
    // original answer byte for byte, and only one operation exists.
    let (status, replay) = put_raw(&emulator, &serde_json::to_vec(&body)?).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay, original);
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
    let puts = emulator
        .received()
        .iter()
        .filter(|r| r.method == Method::PUT)
        .count();
    assert_eq!(puts, 4, "one create, two conflicts, one replay");
    Ok(())
}

#[test]
fn the_conflict_text_is_the_spec_example() -> Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../specs/soundpiece.yaml");
    let spec = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let example = spec
        .split_once("idempotency_conflict:")
        .context("the spec has no idempotency_conflict example")?
        .1;
    let value = example
        .split_once("value:")
        .context("the example has no value")?
        .1;
    let detail = value
        .lines()
        .find_map(|line| line.trim().strip_prefix("detail:"))
        .context("the example has no detail")?
        .trim();
    assert_eq!(detail, IDEMPOTENCY_CONFLICT);
    Ok(())
}

#[tokio::test]
async fn concurrent_identical_creates_make_exactly_one_operation() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let bytes = serde_json::to_vec(&body())?;
    let (a, b, c, d) = tokio::join!(
        put_raw(&emulator, &bytes),
        put_raw(&emulator, &bytes),
        put_raw(&emulator, &bytes),
        put_raw(&emulator, &bytes),
    );
    let answers = [a?, b?, c?, d?];
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK);
        assert_eq!(answer, &answers[0].1);
    }
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
    assert_eq!(emulator.received().len(), 4);
    Ok(())
}

// ---------------------------------------------------------------- lifecycle

#[tokio::test]
async fn fail_in_the_prompt_ends_the_operation_failed_with_an_error_and_no_outputs() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let mut body = body();
    body["prompt"] = json!("rock song [fail]");
    let id = create_id(&emulator, &body).await?;

    let song = client(&emulator)
        .get_remix_song()
        .id(id.as_str())
        .wait(true)
        .send()
        .await?
        .into_inner()
        .remix_song;
    assert_eq!(song.status.as_deref(), Some("failed"));
    assert_eq!(song.outputs, None);
    let message = song.error.and_then(|e| e.message).context("no message")?;
    assert!(message.contains("[fail]"), "{message}");

    // Raw JSON: outputs is an explicit null next to the error.
    let (status, raw) = get_query(&emulator, &format!("id={id}")).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(raw["remix_song"]["outputs"], Value::Null);
    assert_eq!(raw["remix_song"]["error"]["message"], message.as_str());
    Ok(())
}

#[tokio::test]
async fn wait_false_answers_processing_at_once_and_long_polls_return_when_ready() -> Result<()> {
    // 45 s scaled by 0.1: the job takes 4.5 s, so it cannot be over when the
    // first GETs arrive; each long-poll window is the 2 s floor.
    let emulator = Emulator::builder()
        .pacing(Pacing::scaled(0.1))
        .start()
        .await?;
    let id = create_id(&emulator, &body()).await?;

    for query in [format!("id={id}&wait=false"), format!("id={id}")] {
        let (status, answer) = get_query(&emulator, &query).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["remix_song"]["status"], "processing", "{query}");
        assert_eq!(answer["remix_song"]["outputs"], Value::Null);
        assert_eq!(answer["remix_song"]["error"], Value::Null);
    }

    let mut statuses = Vec::new();
    for _ in 0..10 {
        let (status, answer) = get_query(&emulator, &format!("id={id}&wait=true")).await?;
        assert_eq!(status, StatusCode::OK);
        let state = answer["remix_song"]["status"].clone();
        statuses.push(state.clone());
        if state != "processing" {
            assert_eq!(
                answer["remix_song"]["outputs"].as_array().map(Vec::len),
                Some(2)
            );
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&json!("ready")), "{statuses:?}");
    assert!(
        statuses.len() > 1,
        "a long-poll returned ready before 4.5 s had passed"
    );
    Ok(())
}

#[tokio::test]
async fn malformed_operation_ids_are_refused_with_422_naming_id() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    for query in [
        "id=op_short",
        "id=op_ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "id=xx_abcdefghijklmnopqrstuvwxyz",
        "id=op_abcdefghijklmnopqrstuvwxyz0",
        "id=",
        "wait=true",
    ] {
        let (status, answer) = get_query(&emulator, query).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let (loc, msg) = single_issue(&answer)?;
        assert_eq!(loc, json!(["query", "id"]), "{query}");
        if query.starts_with("id=") {
            assert!(msg.contains("^op_[0-9a-z]{26}$"), "{query}: {msg}");
        } else {
            assert_eq!(msg, "Field required");
        }
    }
    let (status, answer) =
        get_query(&emulator, "id=op_abcdefghijklmnopqrstuvwxyz&wait=maybe").await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(single_issue(&answer)?.0, json!(["query", "wait"]));
    Ok(())
}

#[tokio::test]
async fn unknown_operation_ids_are_404_with_a_detail() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let id = "op_abcdefghijklmnopqrstuvwxyz";
    let (status, answer) = get_query(&emulator, &format!("id={id}&wait=true")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer,
        json!({ "detail": format!("Operation {id} not found") })
    );

    let error = client(&emulator)
        .get_remix_song()
        .id(id)
        .send()
        .await
        .expect_err("unknown id");
    let ClientError::ErrorResponse(response) = error else {
        return Err(anyhow!("expected an error response, got {error:?}"));
    };
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(matches!(&response.detail, Some(ErrorDetail::String(t)) if t.contains(id)));
    Ok(())
}

// ---------------------------------------------------------------- validation

#[tokio::test]
async fn every_invalid_field_is_refused_with_422_naming_the_field_and_the_limit() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, Value, &str); 12] = [
        (
            "n_variations 0",
            |b| b["n_variations"] = json!(0),
            json!(["body", "n_variations"]),
            "greater than or equal to 1",
        ),
        (
            "n_variations 4",
            |b| b["n_variations"] = json!(4),
            json!(["body", "n_variations"]),
            "less than or equal to 3",
        ),
        (
            "n_variations huge",
            |b| b["n_variations"] = json!(u64::MAX),
            json!(["body", "n_variations"]),
            "less than or equal to 3",
        ),
        (
            "n_variations text",
            |b| b["n_variations"] = json!("2"),
            json!(["body", "n_variations"]),
            "valid integer",
        ),
        (
            "lyrics 3001",
            |b| b["lyrics"] = json!("a".repeat(3001)),
            json!(["body", "lyrics"]),
            "at most 3000 characters",
        ),
        (
            "prompt empty",
            |b| b["prompt"] = json!(""),
            json!(["body", "prompt"]),
            "at least 1 character",
        ),
        (
            "prompt 1025",
            |b| b["prompt"] = json!("p".repeat(1025)),
            json!(["body", "prompt"]),
            "at most 1024 characters",
        ),
        (
            "bad uuid",
            |b| b["idempotency_key"] = json!("not-a-uuid"),
            json!(["body", "idempotency_key"]),
            "valid UUID",
        ),
        (
            "ftp source",
            |b| b["source"]["url"] = json!("ftp://example.com/a.mp3"),
            json!(["body", "source", "url"]),
            "'http' or 'https'",
        ),
        (
            "relative source",
            |b| b["source"]["url"] = json!("source.mp3"),
            json!(["body", "source", "url"]),
            "valid URL",
        ),
        (
            "http callback to a public host",
            |b| b["callback_url"] = json!("http://example.com/hook"),
            json!(["body", "callback_url"]),
            "'https'",
        ),
        (
            "missing lyrics",
            |b| {
                b.as_object_mut().map(|o| o.remove("lyrics"));
            },
            json!(["body", "lyrics"]),
            "Field required",
        ),
    ];
    for (name, edit, loc, limit) in cases {
        let mut body = body();
        edit(&mut body);
        let (status, answer) = put_json(&emulator, &body).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {answer}");
        let (got_loc, msg) = single_issue(&answer)?;
        assert_eq!(got_loc, loc, "{name}");
        assert!(
            msg.contains(limit),
            "{name}: {msg:?} does not name {limit:?}"
        );
    }

    // Several problems at once are all reported.
    let mut body = body();
    body["n_variations"] = json!(9);
    body["prompt"] = json!("");
    let (status, answer) = put_json(&emulator, &body).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<_> = answer["detail"]
        .as_array()
        .context("list")?
        .iter()
        .map(|issue| issue["loc"].clone())
        .collect();
    assert!(locs.contains(&json!(["body", "prompt"])), "{answer}");
    assert!(locs.contains(&json!(["body", "n_variations"])), "{answer}");

    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 0);
    Ok(())
}

#[tokio::test]
async fn malformed_json_and_non_object_bodies_are_422() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let (status, answer) = put_raw(&emulator, b"{\"idempotency_key\": ").await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let answer: Value = serde_json::from_slice(&answer)?;
    let (loc, msg) = single_issue(&answer)?;
    assert_eq!(loc[0], "body");
    assert!(loc[1].is_u64(), "{loc}");
    assert!(msg.starts_with("JSON decode error"), "{msg}");

    for raw in [&b"[1, 2]"[..], b"\"text\"", b"", b"\xff\xfe"] {
        let (status, answer) = put_raw(&emulator, raw).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{raw:?}");
        let answer: Value = serde_json::from_slice(&answer)?;
        assert_eq!(single_issue(&answer)?.0[0], "body", "{raw:?}");
    }
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 0);
    Ok(())
}

#[tokio::test]
async fn generated_client_sees_a_validation_error_as_typed_issues() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    // The generated type enforces n_variations >= 1 but not <= 3.
    let mut body = body();
    body["n_variations"] = json!(4);
    let error = client(&emulator)
        .create_remix_song()
        .body(typed(&body))
        .send()
        .await
        .expect_err("n_variations 4 must be refused");
    let ClientError::ErrorResponse(response) = error else {
        return Err(anyhow!("expected an error response, got {error:?}"));
    };
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let Some(ErrorDetail::Array(issues)) = &response.detail else {
        return Err(anyhow!(
            "expected a list of issues, got {:?}",
            response.detail
        ));
    };
    assert_eq!(issues.len(), 1);
    assert_eq!(
        issues[0].loc,
        vec![
            ValidationIssueLocItem::String("body".to_owned()),
            ValidationIssueLocItem::String("n_variations".to_owned())
        ]
    );
    assert_eq!(
        issues[0].msg.as_deref(),
        Some("Input should be less than or equal to 3")
    );
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 0);
    Ok(())
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn a_no_credits_key_gets_402_and_creates_nothing() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let (status, answer) = put_with(
        &emulator,
        "spk_test_no_credits",
        &serde_json::to_vec(&body())?,
        &[],
    )
    .await?;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        serde_json::from_slice::<Value>(&answer)?,
        json!({ "detail": "Not enough credits." })
    );

    let broke = songbind_soundpiece::Client::with_api_key(
        &emulator.base_url(Provider::SoundPiece),
        "spk_test_no_credits",
    )?;
    let error = broke
        .create_remix_song()
        .body(typed(&body()))
        .send()
        .await
        .expect_err("402");
    assert_eq!(error.status(), Some(StatusCode::PAYMENT_REQUIRED));
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 0);
    Ok(())
}

#[tokio::test]
async fn missing_auth_unknown_routes_and_wrong_methods_get_detail_errors() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let base = emulator.base_url(Provider::SoundPiece);

    let response = http().put(endpoint(&emulator)).json(&body()).send().await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.json::<Value>().await?["detail"].is_string());

    let response = http()
        .get(format!("{base}/v1/create.remix_songs"))
        .bearer_auth(KEY)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await?,
        json!({ "detail": "Not Found" })
    );

    let response = http()
        .post(endpoint(&emulator))
        .bearer_auth(KEY)
        .json(&body())
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response.json::<Value>().await?,
        json!({ "detail": "Method Not Allowed" })
    );
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 0);
    // The unauthenticated PUT is not recorded; the other two are.
    assert_eq!(emulator.received().len(), 2);
    Ok(())
}

// ---------------------------------------------------------------- callbacks

/// A loopback webhook receiver answering `status`; every request it gets
/// (headers, body) comes out of the channel.
async fn receiver(
    status: StatusCode,
) -> Result<(String, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                status
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, rx))
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) -> Result<(HeaderMap, Bytes)> {
    tokio::time::timeout(WAIT, rx.recv())
        .await?
        .context("receiver closed")
}

#[tokio::test]
async fn ready_callback_is_signed_per_standard_webhooks_and_carries_the_get_object() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let (url, mut rx) = receiver(StatusCode::NO_CONTENT).await?;
    let mut body = body();
    body["callback_url"] = json!(url);
    let id = create_id(&emulator, &body).await?;

    let deliveries = emulator.wait_for_deliveries(1, WAIT).await?;
    let (headers, payload) = next(&mut rx).await?;

    // An independent implementation accepts the signature...
    standardwebhooks::Webhook::new(emulator.webhook_secret())?.verify(&payload, &headers)?;
    // ...and refuses it under another secret or for another body.
    let other = standardwebhooks::Webhook::new("whsec_b3RoZXItc2VjcmV0LWZvci10ZXN0cw==")?;
    assert!(other.verify(&payload, &headers).is_err());
    let mut tampered = payload.to_vec();
    tampered.push(b' ');
    assert!(
        standardwebhooks::Webhook::new(emulator.webhook_secret())?
            .verify(&tampered, &headers)
            .is_err()
    );

    let webhook_id = headers["webhook-id"].to_str()?;
    assert!(webhook_id.starts_with("msg_"), "{webhook_id}");
    let timestamp: i64 = headers["webhook-timestamp"].to_str()?.parse()?;
    assert!((timestamp - unix_now()).abs() < 60, "{timestamp}");
    assert!(headers["webhook-signature"].to_str()?.starts_with("v1,"));
    assert_eq!(headers["content-type"], "application/json");

    let payload: Value = serde_json::from_slice(&payload)?;
    assert_eq!(payload["type"], "remix_song.ready");
    let (_, polled) = get_query(&emulator, &format!("id={id}")).await?;
    assert_eq!(payload["data"], polled);
    assert_eq!(payload["data"]["remix_song"]["status"], "ready");
    let typed: RemixSongWebhook = serde_json::from_value(payload)?;
    assert_eq!(typed.data.remix_song.id, id);

    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].provider, Provider::SoundPiece);
    assert_eq!(deliveries[0].url, url);
    assert_eq!(deliveries[0].response_status, Some(204));
    assert_eq!(
        deliveries[0].headers.get("webhook-id").map(String::as_str),
        Some(webhook_id)
    );
    Ok(())
}

#[tokio::test]
async fn failed_callback_has_type_remix_song_failed_and_an_error() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let (url, mut rx) = receiver(StatusCode::OK).await?;
    let mut body = body();
    body["callback_url"] = json!(url.replace("127.0.0.1", "localhost"));
    body["prompt"] = json!("[fail] ambient");
    create_id(&emulator, &body).await?;

    emulator.wait_for_deliveries(1, WAIT).await?;
    let (headers, payload) = next(&mut rx).await?;
    standardwebhooks::Webhook::new(emulator.webhook_secret())?.verify(&payload, &headers)?;
    let payload: Value = serde_json::from_slice(&payload)?;
    assert_eq!(payload["type"], "remix_song.failed");
    let song = &payload["data"]["remix_song"];
    assert_eq!(song["status"], "failed");
    assert_eq!(song["outputs"], Value::Null);
    assert!(
        song["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    Ok(())
}

#[tokio::test]
async fn a_receiver_answering_500_gets_a_retry_with_the_same_id_and_signature() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let (url, mut rx) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await?;
    let mut body = body();
    body["callback_url"] = json!(url);
    create_id(&emulator, &body).await?;

    let deliveries = emulator.wait_for_deliveries(2, WAIT).await?;
    assert_eq!(deliveries[0].response_status, Some(500));
    assert_eq!(deliveries[1].response_status, Some(500));
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert!(
            deliveries[0]
                .headers
                .get(name)
                .map(String::as_str)
                .is_some(),
            "{name}"
        );
        assert_eq!(
            deliveries[0].headers.get(name).map(String::as_str),
            deliveries[1].headers.get(name).map(String::as_str),
            "{name}"
        );
    }
    assert_eq!(deliveries[0].body, deliveries[1].body);

    // What the receiver saw: the same message twice, still verifiable.
    let (first_headers, first_body) = next(&mut rx).await?;
    let (second_headers, second_body) = next(&mut rx).await?;
    assert_eq!(first_headers["webhook-id"], second_headers["webhook-id"]);
    assert_eq!(first_body, second_body);
    standardwebhooks::Webhook::new(emulator.webhook_secret())?
        .verify(&second_body, &second_headers)?;
    Ok(())
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn a_lost_reply_still_creates_the_job_and_the_same_key_returns_that_operation() -> Result<()>
{
    let emulator = Emulator::start_for_tests().await?;
    emulator.inject(
        FaultRule::new(Fault::LoseReply)
            .provider(Provider::SoundPiece)
            .route(Method::PUT, PATH),
    );
    let client = client(&emulator);
    let body = body();

    let error = client
        .create_remix_song()
        .body(typed(&body))
        .send()
        .await
        .expect_err("the reply was lost");
    assert!(
        matches!(error, ClientError::CommunicationError(_)),
        "expected a transport error, got {error:?}"
    );
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);

    // The retry with the same key finds the operation the lost reply created.
    let replay = client
        .create_remix_song()
        .body(typed(&body))
        .send()
        .await?
        .into_inner()
        .remix_song;
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
    assert_eq!(
        replay.idempotency_key.map(|k| k.to_string()).as_deref(),
        body["idempotency_key"].as_str()
    );
    let polled = client
        .get_remix_song()
        .id(replay.id.as_str())
        .wait(true)
        .send()
        .await?
        .into_inner()
        .remix_song;
    assert_eq!(polled.id, replay.id);
    assert_eq!(polled.status.as_deref(), Some("ready"));

    let puts: Vec<_> = emulator
        .received()
        .into_iter()
        .filter(|r| r.method == Method::PUT)
        .collect();
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0].json(), puts[1].json());
    Ok(())
}

#[tokio::test]
async fn a_rate_limit_rule_answers_429_with_retry_after_twice_then_lets_the_create_through()
-> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    emulator.inject(
        FaultRule::new(Fault::Status {
            status: 429,
            retry_after: Some(2),
        })
        .provider(Provider::SoundPiece)
        .route(Method::PUT, PATH)
        .times(2),
    );
    let body = body();

    let response = http()
        .put(endpoint(&emulator))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "2");
    let answer: Value = response.json().await?;
    assert!(answer["detail"].is_string(), "{answer}");

    let client = client(&emulator);
    let error = client
        .create_remix_song()
        .body(typed(&body))
        .send()
        .await
        .expect_err("second 429");
    let ClientError::ErrorResponse(response) = error else {
        return Err(anyhow!("expected an error response, got {error:?}"));
    };
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "2");
    assert!(matches!(response.detail, Some(ErrorDetail::String(_))));
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 0);

    let created = client.create_remix_song().body(typed(&body)).send().await?;
    assert_eq!(created.status(), StatusCode::OK);
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
    assert_eq!(emulator.received().len(), 3);
    Ok(())
}

#[tokio::test]
async fn a_stalled_create_answers_after_a_request_sent_later() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let bytes = serde_json::to_vec(&body())?;
    let (done_tx, mut done) = mpsc::unbounded_channel();

    let stalled = {
        let done_tx = done_tx.clone();
        let emulator = &emulator;
        async move {
            let answer = put_with(
                emulator,
                KEY,
                &bytes,
                &[("x-emulator-fault", "stall:300ms")],
            )
            .await;
            let _ = done_tx.send("stalled create");
            answer
        }
    };
    let quick = async {
        // Sent only once the stalled PUT has arrived.
        emulator.wait_for_requests(1, WAIT).await?;
        let answer = get_query(&emulator, "id=op_abcdefghijklmnopqrstuvwxyz").await;
        let _ = done_tx.send("quick poll");
        answer
    };
    let (stalled, quick) = tokio::join!(stalled, quick);
    let (status, _) = stalled?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(quick?.0, StatusCode::NOT_FOUND);
    assert_eq!(done.recv().await, Some("quick poll"));
    assert_eq!(done.recv().await, Some("stalled create"));
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
    let received = emulator.received();
    assert_eq!(received[0].method, Method::PUT);
    assert_eq!(received[0].header("x-emulator-fault"), Some("stall:300ms"));
    Ok(())
}
