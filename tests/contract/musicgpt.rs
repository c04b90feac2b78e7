//! Contract tests for the generated MusicGPT client (`songbind-musicgpt`)
//! against `specs/musicgpt.yaml`.
//!
//! They prove, over a loopback httpmock server and with mocks built from the
//! spec's own examples, that:
//! - `get_conversion_by_id` sends `GET <base>/byId` under the production path
//!   prefix (`/api/public/v1`), with the raw key as `Authorization`, no body
//!   and exactly the documented query parameters (`conversionType` plus one of
//!   `task_id` / `conversion_id`), and decodes both documented 200 bodies;
//! - every documented error body comes back as `Error::ErrorResponse` with the
//!   status the example names and a typed `ErrorBody` holding its text;
//! - the types of the multipart `remix` operation (left out of generation)
//!   accept every documented request and response example, and the webhook
//!   payload sample decodes, including its string-encoded timed lyrics.
//!
//! Tests of types that no generated operation sends or receives (`RemixForm`,
//! `RemixMode`, `RemixResponse`, `WebhookPayload`) are plain serde checks.

use anyhow::{Context, Result, anyhow};
use httpmock::{Method::GET, MockServer};
use serde_json::{Value, json};
use songbind_contract_tests::Spec;
use songbind_musicgpt::mock::MockServerExt;
use songbind_musicgpt::{Client, Error, types};

/// The API key the tests give the client; MusicGPT wants it raw, no scheme.
const API_KEY: &str = "mgpt-contract-test-key";
/// The production base URL's path (`https://api.musicgpt.com/api/public/v1`).
const PATH_PREFIX: &str = "/api/public/v1";
const JSON: &str = "application/json";

const BY_ID: &str = "/byId";
const REMIX: &str = "/Remix";

fn spec() -> Spec {
    Spec::load("musicgpt").expect("specs/musicgpt.yaml loads")
}

/// A client rooted like production: the mock server plus the `/api/public/v1`
/// path prefix.
fn prefixed_client(server: &MockServer) -> Client {
    Client::with_api_key(&format!("{}{PATH_PREFIX}", server.base_url()), API_KEY)
        .expect("client builds")
}

/// The `example` of one of `GET /byId`'s query parameters.
fn query_param_example(spec: &Spec, name: &str) -> Result<String> {
    let params = spec
        .operation(BY_ID, "get")?
        .get("parameters")
        .and_then(Value::as_array)
        .context("GET /byId declares no parameters")?;
    params
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|p| p.get("example"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("GET /byId: no string example for query parameter {name}"))
}

/// The string at a JSON pointer of an example.
fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("example has no string at {pointer}: {value}"))
}

/// `value` without its `null` members (recursively): what a typed value whose
/// optional fields skip `None` serializes back to.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Checks that a decoded `ErrorBody` carries exactly the example's fields.
fn assert_error_body_is(body: &types::ErrorBody, example: &Value, name: &str) {
    assert!(
        body.message.is_some() || body.detail.is_some(),
        "error example `{name}`: neither message nor detail decoded: {body:?}"
    );
    assert_eq!(
        body.success,
        example.get("success").and_then(Value::as_bool),
        "error example `{name}`: success"
    );
    assert_eq!(
        body.message.as_deref(),
        example.get("message").and_then(Value::as_str),
        "error example `{name}`: message"
    );
    match (&body.detail, example.get("detail")) {
        (None, None) => {}
        (Some(types::ErrorDetail::String(text)), Some(Value::String(expected))) => {
            assert_eq!(text, expected, "error example `{name}`: detail text");
        }
        (Some(types::ErrorDetail::Array(issues)), Some(Value::Array(expected))) => {
            assert_eq!(
                issues.len(),
                expected.len(),
                "error example `{name}`: number of validation issues"
            );
            for (issue, want) in issues.iter().zip(expected) {
                assert_eq!(
                    issue.msg.as_deref(),
                    want.get("msg").and_then(Value::as_str),
                    "error example `{name}`: issue msg"
                );
                assert_eq!(
                    issue.type_.as_deref(),
                    want.get("type").and_then(Value::as_str),
                    "error example `{name}`: issue type"
                );
                let loc: Vec<Value> = issue
                    .loc
                    .iter()
                    .map(|item| match item {
                        types::ValidationIssueLocItem::String(s) => json!(s),
                        types::ValidationIssueLocItem::Integer(i) => json!(i),
                    })
                    .collect();
                assert_eq!(
                    Some(&Value::Array(loc)),
                    want.get("loc"),
                    "error example `{name}`: issue loc"
                );
            }
        }
        (got, want) => panic!("error example `{name}`: detail {got:?} does not match {want:?}"),
    }
    assert_eq!(
        &serde_json::to_value(body).expect("ErrorBody serializes"),
        example,
        "error example `{name}`: the typed body does not hold the whole example"
    );
}

// ---------------------------------------------------------------------------
// The spec's operations
// ---------------------------------------------------------------------------

/// Guards this file's coverage: a new operation in the spec must get tests here.
#[test]
fn spec_declares_exactly_the_two_operations_covered_here() {
    let mut operations = spec().operations();
    operations.sort();
    assert_eq!(
        operations,
        vec![
            (
                "get".to_owned(),
                BY_ID.to_owned(),
                "get_conversion_by_id".to_owned()
            ),
            ("post".to_owned(), REMIX.to_owned(), "remix".to_owned()),
        ]
    );
}

// ---------------------------------------------------------------------------
// GET /byId
// ---------------------------------------------------------------------------

#[tokio::test]
async fn get_conversion_by_id_with_task_id_sends_exact_query_under_the_path_prefix_with_raw_key()
-> Result<()> {
    let spec = spec();
    let conversion_type = query_param_example(&spec, "conversionType")?;
    let task_id = query_param_example(&spec, "task_id")?;
    let completed = spec.response_example(BY_ID, "get", "200", JSON, "completed")?;
    assert_eq!(conversion_type, "REMIX");
    assert_eq!(task_id, str_at(&completed, "/conversion/task_id"));

    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path(format!("{PATH_PREFIX}{BY_ID}"))
                .header("authorization", API_KEY)
                .header("accept", JSON)
                .header_missing("content-type")
                .query_param("conversionType", conversion_type.as_str())
                .query_param("task_id", task_id.as_str())
                .query_param_missing("conversion_id")
                .query_param_count(".*", ".*", 2)
                .is_true(|request| request.body_ref().is_empty());
            then.status(200)
                .header("content-type", JSON)
                .json_body(completed.clone());
        })
        .await;

    let response = prefixed_client(&server)
        .get_conversion_by_id()
        .conversion_type(conversion_type.as_str())
        .task_id(task_id.as_str())
        .send()
        .await?;
    mock.assert_async().await;
    assert_eq!(response.status().as_u16(), 200);

    let body = response.into_inner();
    assert_eq!(body.success, Some(true));
    let conversion = body.conversion.as_ref().context("no conversion decoded")?;
    assert_eq!(conversion.task_id.as_deref(), Some(task_id.as_str()));
    assert_eq!(
        conversion.conversion_id.as_deref(),
        Some("2104a105-2572-4412-b6fb-f67b0382582a")
    );
    assert_eq!(conversion.status.as_deref(), Some("COMPLETED"));
    assert_eq!(
        conversion.status_msg.as_deref(),
        Some(str_at(&completed, "/conversion/status_msg"))
    );
    assert_eq!(
        conversion.audio_url.as_deref(),
        Some(
            "https://lalals.s3.amazonaws.com/conversions/2104a105-2572-4412-b6fb-f67b0382582a.mp3"
        )
    );
    assert_eq!(conversion.conversion_cost, Some(0.99));
    assert_eq!(conversion.title.as_deref(), Some("Boundless"));
    let lyrics = conversion.lyrics.as_deref().context("no lyrics decoded")?;
    assert_eq!(lyrics, str_at(&completed, "/conversion/lyrics"));
    assert!(
        lyrics.starts_with("[Verse 1]\nI've been staring"),
        "{lyrics}"
    );
    assert_eq!(conversion.music_style.as_deref(), Some("Pop"));
    assert_eq!(
        conversion.created_at.as_deref(),
        Some(str_at(&completed, "/conversion/createdAt"))
    );
    assert_eq!(
        conversion.updated_at.as_deref(),
        Some(str_at(&completed, "/conversion/updatedAt"))
    );
    // Nothing in the example was dropped or renamed on the way in.
    assert_eq!(serde_json::to_value(&body)?, completed);
    Ok(())
}

#[tokio::test]
async fn get_conversion_by_id_with_conversion_id_sends_exact_query_and_decodes_the_in_queue_example()
-> Result<()> {
    let spec = spec();
    let conversion_type = query_param_example(&spec, "conversionType")?;
    let in_queue = spec.response_example(BY_ID, "get", "200", JSON, "in_queue")?;
    let conversion_id = str_at(&in_queue, "/conversion/conversion_id").to_owned();

    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path(format!("{PATH_PREFIX}{BY_ID}"))
                .header("authorization", API_KEY)
                .header_missing("content-type")
                .query_param("conversionType", conversion_type.as_str())
                .query_param("conversion_id", conversion_id.as_str())
                .query_param_missing("task_id")
                .query_param_count(".*", ".*", 2)
                .is_true(|request| request.body_ref().is_empty());
            then.status(200)
                .header("content-type", JSON)
                .json_body(in_queue.clone());
        })
        .await;

    let response = prefixed_client(&server)
        .get_conversion_by_id()
        .conversion_type(conversion_type.as_str())
        .conversion_id(conversion_id.as_str())
        .send()
        .await?;
    mock.assert_async().await;

    let body = response.into_inner();
    assert_eq!(body.success, Some(true));
    let conversion = body.conversion.as_ref().context("no conversion decoded")?;
    assert_eq!(
        conversion.conversion_id.as_deref(),
        Some("16f80faa-5e71-4b3d-9291-61776c4eb97f")
    );
    assert_eq!(
        conversion.task_id.as_deref(),
        Some("dff33bac-6844-4cda-83b8-75078ed916b1")
    );
    assert_eq!(conversion.status.as_deref(), Some("IN_QUEUE"));
    // The result fields are documented as null while queued.
    assert_eq!(conversion.status_msg, None);
    assert_eq!(conversion.audio_url, None);
    assert_eq!(conversion.conversion_cost, None);
    assert_eq!(conversion.title, None);
    assert_eq!(conversion.lyrics, None);
    assert_eq!(conversion.music_style, None);
    assert_eq!(
        conversion.created_at.as_deref(),
        Some(str_at(&in_queue, "/conversion/createdAt"))
    );
    assert_eq!(serde_json::to_value(&body)?, without_nulls(&in_queue));
    Ok(())
}

/// The generated typed helpers (`server.get_conversion_by_id`, `when.task_id`,
/// `then.ok`) match paths without the base URL's prefix, so they serve a client
/// rooted at the server itself.
#[tokio::test]
async fn typed_get_conversion_by_id_mock_serves_the_completed_example_to_a_root_client()
-> Result<()> {
    let spec = spec();
    let conversion_type = query_param_example(&spec, "conversionType")?;
    let task_id = query_param_example(&spec, "task_id")?;
    let completed: types::ConversionByIdResponse =
        serde_json::from_value(spec.response_example(BY_ID, "get", "200", JSON, "completed")?)?;

    let server = MockServer::start_async().await;
    let mock = server.get_conversion_by_id(|when, then| {
        when.conversion_type(&conversion_type)
            .task_id(task_id.as_str())
            .conversion_id(None)
            .into_inner()
            .header("authorization", API_KEY);
        then.ok(&completed);
    });

    let client = Client::with_api_key(&server.base_url(), API_KEY)?;
    let response = client
        .get_conversion_by_id()
        .conversion_type(conversion_type.as_str())
        .task_id(task_id.as_str())
        .send()
        .await?;
    mock.assert_async().await;
    assert_eq!(response.into_inner(), completed);
    Ok(())
}

#[tokio::test]
async fn get_conversion_by_id_turns_every_documented_error_body_into_a_typed_error_response()
-> Result<()> {
    let spec = spec();
    let conversion_type = query_param_example(&spec, "conversionType")?;
    let task_id = query_param_example(&spec, "task_id")?;
    let examples = spec.error_examples(BY_ID, "get")?;
    assert!(
        examples.len() >= 5,
        "expected the five documented error bodies"
    );

    for example in examples {
        let name = &example.name;
        let status = spec.error_status(BY_ID, "get", &example)?;
        let server = MockServer::start_async().await;
        let mock = server
            .mock_async(|when, then| {
                when.method(GET)
                    .path(format!("{PATH_PREFIX}{BY_ID}"))
                    .header("authorization", API_KEY)
                    .query_param("task_id", task_id.as_str());
                then.status(status)
                    .header("content-type", JSON)
                    .json_body(example.body.clone());
            })
            .await;

        let result = prefixed_client(&server)
            .get_conversion_by_id()
            .conversion_type(conversion_type.as_str())
            .task_id(task_id.as_str())
            .send()
            .await;
        assert_eq!(mock.calls_async().await, 1, "error example `{name}`: calls");

        let response = match result {
            Err(Error::ErrorResponse(response)) => response,
            other => {
                panic!("error example `{name}` ({status}): expected ErrorResponse, got {other:?}")
            }
        };
        assert_eq!(
            response.status().as_u16(),
            status,
            "error example `{name}`: status"
        );
        assert_error_body_is(&response.into_inner(), &example.body, name);
    }
    Ok(())
}

/// The status each error example names is the one the tests above answer with.
#[test]
fn error_examples_name_their_status_in_the_summary_where_the_page_documents_one() -> Result<()> {
    let spec = spec();
    let statuses: Vec<(String, u16)> = spec
        .error_examples(BY_ID, "get")?
        .into_iter()
        .map(|e| {
            let status = spec.error_status(BY_ID, "get", &e)?;
            Ok((e.name, status))
        })
        .collect::<Result<_>>()?;
    let status_of = |name: &str| {
        statuses
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
            .unwrap_or_else(|| panic!("no error example `{name}`"))
    };
    assert_eq!(status_of("validation_error"), 422);
    assert_eq!(status_of("rate_limited"), 429);
    assert_eq!(status_of("internal_error"), 500);
    assert_eq!(status_of("detail_error"), 400);
    Ok(())
}

// ---------------------------------------------------------------------------
// POST /Remix (multipart: not generated, its schemas are types)
// ---------------------------------------------------------------------------

const REMIX_FORM_EXAMPLES: [&str; 4] = [
    "url_option",
    "file_option",
    "python_file_option",
    "m4a_file_option",
];

const MULTIPART: &str = "multipart/form-data";

#[test]
fn every_remix_request_example_round_trips_through_remix_form() -> Result<()> {
    let spec = spec();
    for name in REMIX_FORM_EXAMPLES {
        let example = spec.request_example(REMIX, "post", MULTIPART, name)?;
        let form: types::RemixForm = serde_json::from_value(example.clone())
            .with_context(|| format!("request example `{name}` does not decode"))?;
        assert_eq!(form.mode, types::RemixMode::Remix, "`{name}`: mode");
        assert_eq!(form.prompt, str_at(&example, "/prompt"), "`{name}`: prompt");
        assert!(
            form.audio_file.is_some() || form.audio_path.is_some(),
            "`{name}`: neither audio_file nor audio_path"
        );

        // `webhook_url` has a documented default of "", and the generated type
        // always writes it back; every other field comes back unchanged.
        let mut expected = example.clone();
        expected
            .as_object_mut()
            .context("example is an object")?
            .entry("webhook_url")
            .or_insert(json!(""));
        assert_eq!(
            serde_json::to_value(&form)?,
            expected,
            "request example `{name}` does not serialize back to itself"
        );
        let again: types::RemixForm = serde_json::from_value(serde_json::to_value(&form)?)?;
        assert_eq!(again, form, "`{name}`: second round trip");
    }
    Ok(())
}

#[test]
fn remix_form_keeps_the_url_and_file_options_apart() -> Result<()> {
    let spec = spec();
    let by_url: types::RemixForm =
        serde_json::from_value(spec.request_example(REMIX, "post", MULTIPART, "url_option")?)?;
    assert_eq!(
        by_url.audio_path.as_deref(),
        Some("https://www.youtube.com/watch?v=example123")
    );
    assert_eq!(by_url.audio_file, None);
    assert_eq!(by_url.prompt, "Generate a soothing ambient soundscape.");
    assert_eq!(by_url.webhook_url, "");

    let by_file: types::RemixForm =
        serde_json::from_value(spec.request_example(REMIX, "post", MULTIPART, "file_option")?)?;
    assert_eq!(
        by_file.audio_file.as_deref(),
        Some("@/path/to/your/audio.mp3")
    );
    assert_eq!(by_file.audio_path, None);
    assert_eq!(by_file.prompt, "Create an upbeat pop remix");
    assert_eq!(by_file.webhook_url, "http://webhook.musicgpt.com");
    assert_eq!(by_file.lyrics, None);
    Ok(())
}

#[test]
fn remix_form_refuses_an_unknown_mode_and_a_missing_prompt_or_mode() -> Result<()> {
    let example = spec().request_example(REMIX, "post", MULTIPART, "url_option")?;

    let mut unknown_mode = example.clone();
    unknown_mode["mode"] = json!("KARAOKE");
    assert!(serde_json::from_value::<types::RemixForm>(unknown_mode).is_err());

    for required in ["mode", "prompt"] {
        let mut missing = example.clone();
        missing
            .as_object_mut()
            .context("example is an object")?
            .remove(required)
            .with_context(|| format!("url_option has no {required}"))?;
        assert!(
            serde_json::from_value::<types::RemixForm>(missing).is_err(),
            "a form without {required} decoded"
        );
    }
    Ok(())
}

#[test]
fn remix_mode_serializes_as_the_documented_wire_names_and_rejects_others() -> Result<()> {
    let modes = [
        (types::RemixMode::Remix, "REMIX"),
        (types::RemixMode::Inpaint, "INPAINT"),
        (types::RemixMode::OverInstrumental, "OVER_INSTRUMENTAL"),
    ];
    for (mode, wire) in modes {
        assert_eq!(serde_json::to_value(mode)?, json!(wire));
        assert_eq!(
            serde_json::from_value::<types::RemixMode>(json!(wire))?,
            mode
        );
        assert_eq!(mode.to_string(), wire);
        assert_eq!(wire.parse::<types::RemixMode>().ok(), Some(mode));
    }
    for unknown in ["remix", "Remix", "KARAOKE", ""] {
        assert!(
            serde_json::from_value::<types::RemixMode>(json!(unknown)).is_err(),
            "{unknown:?} decoded as a RemixMode"
        );
        assert!(
            unknown.parse::<types::RemixMode>().is_err(),
            "{unknown:?} parsed as a RemixMode"
        );
    }
    Ok(())
}

#[test]
fn remix_first_sample_decodes_with_a_single_conversion_id() -> Result<()> {
    let example = spec().response_example(REMIX, "post", "200", JSON, "first_sample")?;
    let response: types::RemixResponse = serde_json::from_value(example.clone())?;
    assert!(response.success);
    assert_eq!(response.task_id, "stem123");
    assert_eq!(response.conversion_id.as_deref(), Some("conv456"));
    assert_eq!(response.conversion_id_1, None);
    assert_eq!(response.conversion_id_2, None);
    assert_eq!(response.eta, Some(-1));
    assert_eq!(response.credit_estimate, Some(100.1));
    assert_eq!(
        response.message.as_deref(),
        Some("Successfully published to queue")
    );
    assert_eq!(response.status, None);
    assert_eq!(serde_json::to_value(&response)?, example);
    Ok(())
}

#[test]
fn remix_success_sample_decodes_with_one_conversion_id_per_version() -> Result<()> {
    let example = spec().response_example(REMIX, "post", "200", JSON, "success_sample")?;
    let response: types::RemixResponse = serde_json::from_value(example.clone())?;
    assert!(response.success);
    assert_eq!(response.task_id, "dff33bac-6844-4cda-83b8-75078ed916b1");
    assert_eq!(response.conversion_id, None);
    assert_eq!(
        response.conversion_id_1.as_deref(),
        Some("2104a105-2572-4412-b6fb-f67b0382582a")
    );
    assert_eq!(
        response.conversion_id_2.as_deref(),
        Some("16f80faa-5e71-4b3d-9291-61776c4eb97f")
    );
    assert_eq!(response.eta, Some(184));
    assert_eq!(response.status.as_deref(), Some("IN_QUEUE"));
    assert_eq!(response.credit_estimate, Some(0.99));
    assert_eq!(
        response.message.as_deref(),
        Some("Remix request submitted successfully")
    );
    assert_eq!(serde_json::to_value(&response)?, example);
    Ok(())
}

#[test]
fn remix_documents_exactly_the_two_200_samples() -> Result<()> {
    let mut names = spec().response_example_names(REMIX, "post", "200", JSON)?;
    names.sort();
    assert_eq!(names, ["first_sample", "success_sample"]);
    Ok(())
}

#[test]
fn every_remix_error_body_decodes_into_error_body() -> Result<()> {
    let spec = spec();
    let examples = spec.error_examples(REMIX, "post")?;
    assert!(
        examples.len() >= 5,
        "expected the five documented error bodies"
    );
    for example in examples {
        let body: types::ErrorBody = serde_json::from_value(example.body.clone())
            .with_context(|| format!("error example `{}` does not decode", example.name))?;
        assert_error_body_is(&body, &example.body, &example.name);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Webhook payloads
// ---------------------------------------------------------------------------

#[test]
fn webhook_sample_decodes_into_webhook_payload() -> Result<()> {
    let example = spec().schema_example("WebhookPayload")?;
    let payload: types::WebhookPayload = serde_json::from_value(example.clone())?;
    assert_eq!(payload.success, Some(true));
    assert_eq!(payload.conversion_type.as_deref(), Some("Remix"));
    assert_eq!(
        payload.task_id.as_deref(),
        Some("dff33bac-6844-4cda-83b8-75078ed916b1")
    );
    assert_eq!(
        payload.conversion_id.as_deref(),
        Some("2104a105-2572-4412-b6fb-f67b0382582a")
    );
    assert_eq!(
        payload.conversion_path.as_deref(),
        Some(
            "https://lalals.s3.amazonaws.com/conversions/2104a105-2572-4412-b6fb-f67b0382582a.mp3"
        )
    );
    assert_eq!(
        payload.conversion_path_wav.as_deref(),
        Some(
            "https://lalals.s3.amazonaws.com/conversions/2104a105-2572-4412-b6fb-f67b0382582a.wav"
        )
    );
    assert_eq!(payload.conversion_duration, Some(162.44680272108843));
    assert_eq!(payload.is_flagged, Some(false));
    assert_eq!(payload.reason.as_deref(), Some(""));
    assert_eq!(payload.title.as_deref(), Some("Boundless"));
    assert_eq!(payload.lyrics.as_deref(), Some(str_at(&example, "/lyrics")));
    assert_eq!(serde_json::to_value(&payload)?, example);
    Ok(())
}

#[test]
fn webhook_lyrics_timestamped_parses_into_41_timed_lines() -> Result<()> {
    let payload: types::WebhookPayload =
        serde_json::from_value(spec().schema_example("WebhookPayload")?)?;
    let encoded = payload
        .lyrics_timestamped
        .as_deref()
        .context("no lyrics_timestamped")?;
    let lines: Vec<types::LyricsTimestampLine> = serde_json::from_str(encoded)?;
    assert_eq!(lines.len(), 41);

    let first = &lines[0];
    assert_eq!(first.index, 0);
    assert_eq!(first.text, "[Verse 1]");
    assert_eq!(first.start, 3200);
    assert_eq!(first.end, 3200);

    assert_eq!(lines[1].text, "I've been staring at the edge of the water");
    assert_eq!((lines[1].start, lines[1].end), (3200, 7040));

    let last = lines.last().context("no lines")?;
    assert_eq!(last.index, 45);
    assert_eq!(last.text, "Oh!");

    // Indices skip blank lines: strictly increasing, with gaps.
    assert!(lines.windows(2).all(|w| w[0].index < w[1].index));
    assert!(lines.iter().all(|l| l.start <= l.end));
    Ok(())
}

#[test]
fn webhook_payload_without_conversion_path_wav_still_decodes() -> Result<()> {
    let mut example = spec().schema_example("WebhookPayload")?;
    example
        .as_object_mut()
        .context("example is an object")?
        .remove("conversion_path_wav")
        .context("the sample carries conversion_path_wav")?;
    let payload: types::WebhookPayload = serde_json::from_value(example.clone())?;
    assert_eq!(payload.conversion_path_wav, None);
    assert_eq!(
        payload.conversion_id.as_deref(),
        Some(str_at(&example, "/conversion_id"))
    );
    assert_eq!(
        payload.conversion_path.as_deref(),
        Some(str_at(&example, "/conversion_path"))
    );
    assert_eq!(serde_json::to_value(&payload)?, example);
    Ok(())
}
