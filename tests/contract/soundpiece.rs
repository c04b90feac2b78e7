//! Contract tests for the generated SoundPiece client (`songbind-soundpiece`).
//!
//! Every mock is built from the examples in `specs/soundpiece.yaml` and served
//! by a loopback httpmock server. The tests prove that `create_remix_song` and
//! `get_remix_song` send exactly what the spec documents (method, path,
//! `Authorization: Bearer <key>`, content type, the JSON body or the query),
//! that every documented 200 body and error body decodes into the generated
//! types with the right values (including the `Retry-After` header of a 429),
//! that a malformed operation id is refused before anything is sent, and that
//! the `RemixSongWebhook` example decodes into its generated type.

use httpmock::{Mock, MockServer, Then};
use serde_json::{Value, json};
use songbind_contract_tests::Spec;
use songbind_soundpiece::mock::MockServerExt;
use songbind_soundpiece::types::{self, ErrorDetail, ValidationIssueLocItem};
use songbind_soundpiece::{Client, Error, ResponseValue};

const PATH: &str = "/v1/create.remix_song";
const JSON: &str = "application/json";
const API_KEY: &str = "spk_contract_test_key";
const BEARER: &str = "Bearer spk_contract_test_key";

type Outcome = Result<ResponseValue<types::RemixSongResponse>, Error<types::ErrorBody>>;

fn spec() -> Spec {
    Spec::load("soundpiece").unwrap_or_else(|e| panic!("{e:#}"))
}

fn client(server: &MockServer) -> Client {
    Client::with_api_key(&server.base_url(), API_KEY).expect("client for the mock server")
}

fn request_example(spec: &Spec, name: &str) -> Value {
    spec.request_example(PATH, "put", JSON, name)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn response_example(spec: &Spec, method: &str, name: &str) -> Value {
    spec.response_example(PATH, method, "200", JSON, name)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn response_example_names(spec: &Spec, method: &str) -> Vec<String> {
    let names = spec
        .response_example_names(PATH, method, "200", JSON)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !names.is_empty(),
        "{method} {PATH} documents no 200 example"
    );
    names
}

fn typed_request(example: &Value, name: &str) -> types::CreateRemixSongRequest {
    serde_json::from_value(example.clone())
        .unwrap_or_else(|e| panic!("request example `{name}` is not a CreateRemixSongRequest: {e}"))
}

/// The id of the spec's `ready` example: a documented, well-formed operation id.
fn documented_operation_id(spec: &Spec) -> String {
    response_example(spec, "get", "ready")["remix_song"]["id"]
        .as_str()
        .expect("the `ready` example has a string id")
        .to_owned()
}

/// Answers `status` with the JSON `body` (served verbatim, not re-serialized
/// through the generated types) and the extra `headers`.
fn respond(then: Then, status: u16, headers: &[(&str, &str)], body: &Value) {
    let then = headers.iter().fold(
        then.status(status).header("content-type", JSON),
        |then, (name, value)| then.header(*name, *value),
    );
    then.json_body(body.clone());
}

/// What the per-example loops (200 and error bodies) send: the spec's
/// `concrete_example` request body and the `ready` example's operation id.
struct Fixture {
    request: Value,
    body: types::CreateRemixSongRequest,
    id: types::GetRemixSongId,
}

impl Fixture {
    fn load(spec: &Spec) -> Self {
        let request = request_example(spec, "concrete_example");
        let body = typed_request(&request, "concrete_example");
        let id = documented_operation_id(spec)
            .parse()
            .expect("the `ready` example id matches ^op_[0-9a-z]{26}$");
        Self { request, body, id }
    }
}

#[derive(Clone, Copy, Debug)]
enum Operation {
    Create,
    Get,
}

impl Operation {
    const ALL: [Self; 2] = [Self::Create, Self::Get];

    fn method(self) -> &'static str {
        match self {
            Self::Create => "put",
            Self::Get => "get",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Self::Create => "create_remix_song",
            Self::Get => "get_remix_song",
        }
    }

    /// A mock of this operation's documented request for `fixture` that
    /// answers `status`, `headers` and `body`.
    fn mock<'a>(
        self,
        server: &'a MockServer,
        fixture: &Fixture,
        status: u16,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Mock<'a> {
        match self {
            Self::Create => server.create_remix_song(|when, then| {
                when.into_inner()
                    .path(PATH)
                    .header("authorization", BEARER)
                    .header("content-type", JSON)
                    .json_body(fixture.request.clone());
                respond(then.into_inner(), status, headers, body);
            }),
            Self::Get => server.get_remix_song(|when, then| {
                when.id(&fixture.id)
                    .wait(false)
                    .into_inner()
                    .path(PATH)
                    .header("authorization", BEARER);
                respond(then.into_inner(), status, headers, body);
            }),
        }
    }

    async fn call(self, client: &Client, fixture: &Fixture) -> Outcome {
        match self {
            Self::Create => {
                client
                    .create_remix_song()
                    .body(fixture.body.clone())
                    .send()
                    .await
            }
            Self::Get => {
                client
                    .get_remix_song()
                    .id(fixture.id.clone())
                    .wait(false)
                    .send()
                    .await
            }
        }
    }
}

/// Asserts that `decoded` holds the values of the spec's 200 example `name`
/// (`example` is that example's JSON), including the lifecycle the example
/// stands for; `label` names the case in failure messages.
fn assert_decodes_remix_song_example(
    label: &str,
    name: &str,
    decoded: &types::RemixSongResponse,
    example: &Value,
) {
    let song = &decoded.remix_song;
    let expected = &example["remix_song"];
    let text = |field: &str| expected[field].as_str().map(str::to_owned);

    assert_eq!(Some(song.id.clone()), text("id"), "{label}: id");
    assert_eq!(
        song.idempotency_key.map(|key| key.to_string()),
        text("idempotency_key"),
        "{label}: idempotency_key"
    );
    assert_eq!(
        serde_json::to_value(song.created_at).unwrap(),
        expected["created_at"],
        "{label}: created_at"
    );
    assert_eq!(
        song.source.as_ref().map(|source| source.url.clone()),
        expected["source"]["url"].as_str().map(str::to_owned),
        "{label}: source.url"
    );
    assert_eq!(song.lyrics, text("lyrics"), "{label}: lyrics");
    assert_eq!(song.prompt, text("prompt"), "{label}: prompt");
    assert_eq!(
        song.n_variations,
        expected["n_variations"].as_i64(),
        "{label}: n_variations"
    );
    assert_eq!(song.status, text("status"), "{label}: status");

    let outputs = song.outputs.as_deref().unwrap_or_default();
    let expected_outputs = expected["outputs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert_eq!(
        outputs.len(),
        expected_outputs.len(),
        "{label}: number of outputs"
    );
    for (i, (output, want)) in outputs.iter().zip(expected_outputs).enumerate() {
        assert_eq!(
            Some(output.url.as_str()),
            want["url"].as_str(),
            "{label}: outputs[{i}].url"
        );
        assert_eq!(
            output.duration,
            want["duration"].as_f64(),
            "{label}: outputs[{i}].duration"
        );
        assert_eq!(
            serde_json::to_value(output.expires_at).unwrap(),
            want["expires_at"],
            "{label}: outputs[{i}].expires_at"
        );
    }
    let message = song.error.as_ref().and_then(|error| error.message.clone());
    assert_eq!(
        message,
        expected["error"]["message"].as_str().map(str::to_owned),
        "{label}: error.message"
    );

    // The lifecycle each documented example stands for.
    let status = song.status.as_deref();
    match name {
        "page_example" => {
            // Verbatim page sample: no status, one output and an error at once.
            assert_eq!(status, None, "{label}: status");
            assert_eq!(outputs.len(), 1, "{label}: number of outputs");
            assert!(song.error.is_some(), "{label}: error must be set");
        }
        "processing" => {
            assert_eq!(status, Some("processing"), "{label}: status");
            assert!(song.outputs.is_none(), "{label}: outputs must be null");
            assert!(song.error.is_none(), "{label}: error must be null");
        }
        "ready" => {
            assert_eq!(status, Some("ready"), "{label}: status");
            assert_eq!(
                outputs.len(),
                2,
                "{label}: one output per requested variation"
            );
            assert!(
                outputs
                    .iter()
                    .all(|output| output.url.starts_with("https://")),
                "{label}: outputs must be signed https URLs"
            );
            assert!(song.error.is_none(), "{label}: error must be null");
        }
        "failed" => {
            assert_eq!(status, Some("failed"), "{label}: status");
            assert!(song.outputs.is_none(), "{label}: outputs must be null");
            assert!(
                message.is_some_and(|m| !m.is_empty()),
                "{label}: error.message must be set"
            );
        }
        other => panic!("{label}: no expectations written for the 200 example `{other}`"),
    }
}

/// Asserts that the decoded error body carries the example's `detail`: the
/// message text, or (422) every validation issue's `loc`, `msg` and `type`.
fn assert_error_body(label: &str, decoded: &types::ErrorBody, example: &Value) {
    match (&decoded.detail, &example["detail"]) {
        (Some(ErrorDetail::String(text)), Value::String(want)) => {
            assert_eq!(text, want, "{label}: detail");
        }
        (Some(ErrorDetail::Array(issues)), Value::Array(want)) => {
            assert_eq!(
                issues.len(),
                want.len(),
                "{label}: number of validation issues"
            );
            for (i, (issue, want)) in issues.iter().zip(want).enumerate() {
                let loc: Vec<Value> = issue
                    .loc
                    .iter()
                    .map(|item| match item {
                        ValidationIssueLocItem::String(field) => json!(field),
                        ValidationIssueLocItem::Integer(index) => json!(index),
                    })
                    .collect();
                assert_eq!(Value::Array(loc), want["loc"], "{label}: detail[{i}].loc");
                assert_eq!(
                    issue.msg.as_deref(),
                    want["msg"].as_str(),
                    "{label}: detail[{i}].msg"
                );
                assert_eq!(
                    issue.type_.as_deref(),
                    want["type"].as_str(),
                    "{label}: detail[{i}].type"
                );
            }
        }
        (got, want) => {
            panic!("{label}: decoded detail {got:?} does not match the example's {want}")
        }
    }
}

/// Sends the request example `request_name` through `create_remix_song` and
/// answers the 200 example `response_name`: the mock only matches the exact
/// method, path, bearer auth, content type and JSON body of the example.
async fn assert_create_sends_request_example(request_name: &str, response_name: &str) {
    let spec = spec();
    let request = request_example(&spec, request_name);
    let response = response_example(&spec, "put", response_name);
    let body = typed_request(&request, request_name);

    let server = MockServer::start_async().await;
    let mock = server.create_remix_song(|when, then| {
        when.into_inner()
            .path(PATH)
            .header("authorization", BEARER)
            .header("content-type", JSON)
            .header("accept", JSON)
            .json_body(request.clone());
        respond(then.into_inner(), 200, &[], &response);
    });

    let result = client(&server).create_remix_song().body(body).send().await;

    mock.assert_async().await;
    let label = format!("create_remix_song `{request_name}` -> `{response_name}`");
    let decoded = result.unwrap_or_else(|e| panic!("{label}: {e:?}"));
    assert_eq!(decoded.status().as_u16(), 200, "{label}: status");
    assert_decodes_remix_song_example(&label, response_name, &decoded.into_inner(), &response);
}

#[tokio::test]
async fn create_remix_song_sends_the_page_example_with_bearer_auth() {
    assert_create_sends_request_example("page_example", "page_example").await;
}

#[tokio::test]
async fn create_remix_song_sends_the_concrete_example_verbatim() {
    assert_create_sends_request_example("concrete_example", "processing").await;
}

/// `n_variations` has `default: 1` in the spec and the generated type always
/// serializes it: a request built without it sends `"n_variations": 1`.
#[tokio::test]
async fn create_remix_song_sends_the_documented_n_variations_default_when_omitted() {
    let spec = spec();
    let mut without = request_example(&spec, "concrete_example");
    let fields = without
        .as_object_mut()
        .expect("the request example is an object");
    assert!(
        fields.remove("n_variations").is_some(),
        "concrete_example sets n_variations"
    );
    let body = typed_request(&without, "concrete_example without n_variations");
    let mut expected = without.clone();
    // The spec's `default: 1` of CreateRemixSongRequest.n_variations.
    expected["n_variations"] = json!(1);

    let server = MockServer::start_async().await;
    let mock = server.create_remix_song(|when, then| {
        when.into_inner()
            .path(PATH)
            .header("authorization", BEARER)
            .header("content-type", JSON)
            .json_body(expected);
        respond(
            then.into_inner(),
            200,
            &[],
            &response_example(&spec, "put", "processing"),
        );
    });

    let result = client(&server).create_remix_song().body(body).send().await;

    mock.assert_async().await;
    result.expect("the default-filled request is answered");
}

#[tokio::test]
async fn create_remix_song_decodes_every_documented_200_example() {
    let spec = spec();
    let fixture = Fixture::load(&spec);
    for name in response_example_names(&spec, "put") {
        let example = response_example(&spec, "put", &name);
        let server = MockServer::start_async().await;
        let mock = Operation::Create.mock(&server, &fixture, 200, &[], &example);

        let result = Operation::Create.call(&client(&server), &fixture).await;

        let label = format!("create_remix_song 200 `{name}`");
        assert_eq!(mock.calls_async().await, 1, "{label}: requests matched");
        let decoded = result.unwrap_or_else(|e| panic!("{label}: {e:?}"));
        assert_decodes_remix_song_example(&label, &name, &decoded.into_inner(), &example);
    }
}

#[tokio::test]
async fn get_remix_song_sends_exactly_id_and_wait_as_query_parameters() {
    let spec = spec();
    let id: types::GetRemixSongId = documented_operation_id(&spec)
        .parse()
        .expect("documented id");
    let ready = response_example(&spec, "get", "ready");
    for wait in [true, false] {
        let server = MockServer::start_async().await;
        let mock = server.get_remix_song(|when, then| {
            when.id(&id)
                .wait(wait)
                .into_inner()
                .path(PATH)
                .header("authorization", BEARER)
                .header("accept", JSON)
                .header_missing("content-type")
                .query_param_count(".*", ".*", 2);
            respond(then.into_inner(), 200, &[], &ready);
        });

        let result = client(&server)
            .get_remix_song()
            .id(id.as_str())
            .wait(wait)
            .send()
            .await;

        mock.assert_async().await;
        let label = format!("get_remix_song wait={wait} `ready`");
        let decoded = result.unwrap_or_else(|e| panic!("{label}: {e:?}"));
        assert_decodes_remix_song_example(&label, "ready", &decoded.into_inner(), &ready);
    }
}

/// `wait` is optional (documented default false): left unset, it is not sent.
#[tokio::test]
async fn get_remix_song_omits_wait_when_it_is_not_set() {
    let spec = spec();
    let id: types::GetRemixSongId = documented_operation_id(&spec)
        .parse()
        .expect("documented id");
    let server = MockServer::start_async().await;
    let mock = server.get_remix_song(|when, then| {
        when.id(&id)
            .wait(None)
            .into_inner()
            .path(PATH)
            .header("authorization", BEARER)
            .query_param_count(".*", ".*", 1);
        respond(
            then.into_inner(),
            200,
            &[],
            &response_example(&spec, "get", "processing"),
        );
    });

    let result = client(&server).get_remix_song().id(id).send().await;

    mock.assert_async().await;
    let decoded = result.expect("get_remix_song without wait").into_inner();
    assert_eq!(decoded.remix_song.status.as_deref(), Some("processing"));
}

#[tokio::test]
async fn get_remix_song_decodes_every_documented_200_example() {
    let spec = spec();
    let fixture = Fixture::load(&spec);
    for name in response_example_names(&spec, "get") {
        let example = response_example(&spec, "get", &name);
        let server = MockServer::start_async().await;
        let mock = Operation::Get.mock(&server, &fixture, 200, &[], &example);

        let result = Operation::Get.call(&client(&server), &fixture).await;

        let label = format!("get_remix_song 200 `{name}`");
        assert_eq!(mock.calls_async().await, 1, "{label}: requests matched");
        let decoded = result.unwrap_or_else(|e| panic!("{label}: {e:?}"));
        assert_decodes_remix_song_example(&label, &name, &decoded.into_inner(), &example);
    }
}

#[tokio::test]
async fn get_remix_song_sends_any_id_the_provider_may_return_and_refuses_only_an_empty_one() {
    // The spec keeps the documented format (`^op_[0-9a-z]{26}$`) in the
    // description only (`# ASSUMED`): an id the provider returned is never
    // refused by the client, whatever its shape. Only an empty id is.
    let spec = spec();
    let valid = documented_operation_id(&spec);
    let tail = valid
        .strip_prefix("op_")
        .expect("documented id starts with op_");
    let unexpected = [
        format!("op_{}", tail.to_uppercase()), // upper-case characters (a ULID)
        valid[..valid.len() - 1].to_owned(),   // 25 characters after op_
        format!("{valid}0"),                   // 27 characters after op_
        format!("po_{tail}"),                  // another prefix
    ];

    let server = MockServer::start_async().await;
    // Catch-all: records any request at all, whatever its method or path.
    let anything = server
        .mock_async(|_when, then| respond(then, 200, &[], &response_example(&spec, "get", "ready")))
        .await;
    let client = client(&server);

    for id in &unexpected {
        client
            .get_remix_song()
            .id(id.as_str())
            .wait(false)
            .send()
            .await
            .unwrap_or_else(|e| panic!("id {id:?} was refused: {e:?}"));
    }
    assert_eq!(anything.calls_async().await, unexpected.len());

    let result = client.get_remix_song().id("").wait(false).send().await;
    match result {
        Err(Error::InvalidRequest(message)) => assert!(
            message.contains("GetRemixSongId"),
            "unexpected refusal message {message:?}"
        ),
        other => panic!("an empty id was not refused before sending: {other:?}"),
    }
    assert_eq!(
        anything.calls_async().await,
        unexpected.len(),
        "an empty id reached the server"
    );
}

/// Every 4XX/5XX body documented for `operation`, served with the status its
/// summary names, comes back as `Error::ErrorResponse` with the decoded body.
async fn assert_every_error_example(operation: Operation) {
    let spec = spec();
    let fixture = Fixture::load(&spec);
    let examples = spec
        .error_examples(PATH, operation.method())
        .unwrap_or_else(|e| panic!("{e:#}"));
    for example in examples {
        let label = format!("{} {} `{}`", operation.id(), example.class, example.name);
        let status = spec
            .error_status(PATH, operation.method(), &example)
            .unwrap_or_else(|e| panic!("{label}: {e:#}"));
        let server = MockServer::start_async().await;
        let mock = operation.mock(&server, &fixture, status, &[], &example.body);

        let result = operation.call(&client(&server), &fixture).await;

        assert_eq!(mock.calls_async().await, 1, "{label}: requests matched");
        let response = match result {
            Err(Error::ErrorResponse(response)) => response,
            other => panic!("{label}: expected Error::ErrorResponse, got {other:?}"),
        };
        assert_eq!(response.status().as_u16(), status, "{label}: status");
        assert_error_body(&label, &response.into_inner(), &example.body);
    }
}

#[tokio::test]
async fn create_remix_song_returns_every_documented_error_body_as_error_response() {
    assert_every_error_example(Operation::Create).await;
}

#[tokio::test]
async fn get_remix_song_returns_every_documented_error_body_as_error_response() {
    assert_every_error_example(Operation::Get).await;
}

/// The 4XX response documents `Retry-After` (seconds) on a 429: the error a
/// caller gets keeps that header.
#[tokio::test]
async fn rate_limited_errors_expose_the_retry_after_header() {
    let spec = spec();
    let fixture = Fixture::load(&spec);
    for operation in Operation::ALL {
        let example = spec
            .error_examples(PATH, operation.method())
            .unwrap_or_else(|e| panic!("{e:#}"))
            .into_iter()
            .find(|example| example.name == "rate_limited")
            .unwrap_or_else(|| panic!("{}: no `rate_limited` error example", operation.id()));
        let label = format!("{} `rate_limited`", operation.id());
        let status = spec
            .error_status(PATH, operation.method(), &example)
            .unwrap_or_else(|e| panic!("{label}: {e:#}"));
        assert_eq!(status, 429, "{label}: the example's summary names 429");
        let server = MockServer::start_async().await;
        let mock = operation.mock(
            &server,
            &fixture,
            status,
            &[("Retry-After", "7")],
            &example.body,
        );

        let result = operation.call(&client(&server), &fixture).await;

        assert_eq!(mock.calls_async().await, 1, "{label}: requests matched");
        let response = match result {
            Err(Error::ErrorResponse(response)) => response,
            other => panic!("{label}: expected Error::ErrorResponse, got {other:?}"),
        };
        assert_eq!(response.status().as_u16(), 429, "{label}: status");
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .unwrap_or_else(|| panic!("{label}: no Retry-After header"))
            .to_str()
            .expect("Retry-After is ASCII");
        assert_eq!(
            retry_after.parse::<u64>(),
            Ok(7),
            "{label}: Retry-After seconds"
        );
        assert_error_body(&label, &response.into_inner(), &example.body);
    }
}

#[test]
fn remix_song_webhook_example_decodes_into_the_typed_payload() {
    let example = spec()
        .schema_example("RemixSongWebhook")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let webhook: types::RemixSongWebhook = serde_json::from_value(example.clone())
        .unwrap_or_else(|e| panic!("RemixSongWebhook example: {e}"));

    assert_eq!(webhook.type_, "remix_song.ready");
    assert_eq!(Some(webhook.type_.as_str()), example["type"].as_str());
    assert_decodes_remix_song_example(
        "RemixSongWebhook example data",
        "ready",
        &webhook.data,
        &example["data"],
    );
}
