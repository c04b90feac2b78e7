//! Contract tests for the generated Beatoven client (`songbind-beatoven`).
//!
//! Every mock is built from the examples in `specs/beatoven.yaml` and served
//! by a loopback httpmock server. The tests prove that `compose_track` and
//! `get_task` send exactly what the spec documents (method, path,
//! `Authorization: Bearer <key>`, content type, the JSON body with the
//! documented defaults filled in, the task id in the path), that every
//! documented 200 body and error body decodes into the generated types with
//! the right values (a 200 body re-serializes to the example itself, so no
//! field of an example is lost), that the task's status is an open string,
//! and that the prompt-text limits and an empty task id are refused before
//! anything is sent.

use httpmock::{Mock, MockServer, Then};
use serde_json::{Value, json};
use songbind_beatoven::mock::MockServerExt;
use songbind_beatoven::types;
use songbind_beatoven::{Client, Error};
use songbind_contract_tests::Spec;

const COMPOSE_PATH: &str = "/api/v1/tracks/compose";
const TASK_PATH: &str = "/api/v1/tasks/{task_id}";
const JSON: &str = "application/json";
const API_KEY: &str = "beatoven_contract_test_key";
const BEARER: &str = "Bearer beatoven_contract_test_key";

/// What an operation answered: its 200 body re-serialized to JSON, or the error.
type Outcome = Result<Value, Error<types::ErrorBody>>;

fn spec() -> Spec {
    Spec::load("beatoven").unwrap_or_else(|e| panic!("{e:#}"))
}

fn client(server: &MockServer) -> Client {
    Client::with_api_key(&server.base_url(), API_KEY).expect("client for the mock server")
}

fn request_example_names(spec: &Spec) -> Vec<String> {
    let names = spec
        .request_example_names(COMPOSE_PATH, "post", JSON)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !names.is_empty(),
        "post {COMPOSE_PATH} documents no request example"
    );
    names
}

fn request_example(spec: &Spec, name: &str) -> Value {
    spec.request_example(COMPOSE_PATH, "post", JSON, name)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn response_example_names(spec: &Spec, path: &str, method: &str) -> Vec<String> {
    let names = spec
        .response_example_names(path, method, "200", JSON)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !names.is_empty(),
        "{method} {path} documents no 200 example"
    );
    names
}

fn response_example(spec: &Spec, path: &str, method: &str, name: &str) -> Value {
    spec.response_example(path, method, "200", JSON, name)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn typed_request(example: &Value, name: &str) -> types::ComposeTrackRequest {
    serde_json::from_value(example.clone())
        .unwrap_or_else(|e| panic!("request example `{name}` is not a ComposeTrackRequest: {e}"))
}

/// The `default` of every `ComposeTrackRequest` property that documents one.
fn documented_defaults(spec: &Spec) -> serde_json::Map<String, Value> {
    let schema = spec
        .schema("ComposeTrackRequest")
        .unwrap_or_else(|e| panic!("{e:#}"));
    schema["properties"]
        .as_object()
        .expect("ComposeTrackRequest has properties")
        .iter()
        .filter_map(|(field, property)| Some((field.clone(), property.get("default")?.clone())))
        .collect()
}

/// What goes on the wire for a request example: the example, with the
/// documented default of every field it leaves out (the generated type always
/// sends them).
fn wire_body(spec: &Spec, example: &Value) -> Value {
    let mut body = example
        .as_object()
        .expect("a request example is an object")
        .clone();
    for (field, default) in documented_defaults(spec) {
        body.entry(field).or_insert(default);
    }
    Value::Object(body)
}

/// The task id of the spec's compose answer (the fact sheet's example).
fn documented_task_id(spec: &Spec) -> String {
    response_example(spec, COMPOSE_PATH, "post", "started")["task_id"]
        .as_str()
        .expect("the `started` example has a string task_id")
        .to_owned()
}

/// The JSON pointer of the request's prompt text schema (an inline object).
const PROMPT_TEXT: &str = "/properties/prompt/properties/text";

/// The spec's `minLength` and `maxLength` of the prompt text.
fn prompt_text_limits(spec: &Spec) -> (usize, usize) {
    let text = spec
        .schema("ComposeTrackRequest")
        .unwrap_or_else(|e| panic!("{e:#}"))
        .pointer(PROMPT_TEXT)
        .expect("ComposeTrackRequest.prompt.text");
    let limit = |key: &str| {
        text[key]
            .as_u64()
            .unwrap_or_else(|| panic!("prompt.text has no {key}")) as usize
    };
    (limit("minLength"), limit("maxLength"))
}

/// Answers `status` with the JSON `body` (served verbatim, not re-serialized
/// through the generated types).
fn respond(then: Then, status: u16, body: &Value) {
    then.status(status)
        .header("content-type", JSON)
        .json_body(body.clone());
}

/// What the per-example loops (200 and error bodies) send: the spec's
/// `every_field` request body and the documented task id.
struct Fixture {
    wire: Value,
    body: types::ComposeTrackRequest,
    task_id: types::GetTaskTaskId,
}

impl Fixture {
    fn load(spec: &Spec) -> Self {
        let request = request_example(spec, "every_field");
        let body = typed_request(&request, "every_field");
        let task_id = documented_task_id(spec)
            .parse()
            .expect("the documented task id is not empty");
        Self {
            wire: wire_body(spec, &request),
            body,
            task_id,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Operation {
    Compose,
    GetTask,
}

impl Operation {
    const ALL: [Self; 2] = [Self::Compose, Self::GetTask];

    fn path(self) -> &'static str {
        match self {
            Self::Compose => COMPOSE_PATH,
            Self::GetTask => TASK_PATH,
        }
    }

    fn method(self) -> &'static str {
        match self {
            Self::Compose => "post",
            Self::GetTask => "get",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Self::Compose => "compose_track",
            Self::GetTask => "get_task",
        }
    }

    /// A mock of this operation's documented request for `fixture` that
    /// answers `status` and `body`.
    fn mock<'a>(
        self,
        server: &'a MockServer,
        fixture: &Fixture,
        status: u16,
        body: &Value,
    ) -> Mock<'a> {
        match self {
            Self::Compose => server.compose_track(|when, then| {
                when.into_inner()
                    .path(COMPOSE_PATH)
                    .header("authorization", BEARER)
                    .header("content-type", JSON)
                    .header("accept", JSON)
                    .json_body(fixture.wire.clone());
                respond(then.into_inner(), status, body);
            }),
            Self::GetTask => server.get_task(|when, then| {
                when.task_id(&fixture.task_id)
                    .into_inner()
                    .path(format!("/api/v1/tasks/{}", fixture.task_id.as_str()))
                    .header("authorization", BEARER)
                    .header("accept", JSON)
                    .header_missing("content-type");
                respond(then.into_inner(), status, body);
            }),
        }
    }

    async fn call(self, client: &Client, fixture: &Fixture) -> Outcome {
        match self {
            Self::Compose => client
                .compose_track()
                .body(fixture.body.clone())
                .send()
                .await
                .map(|answer| serde_json::to_value(answer.into_inner()).unwrap()),
            Self::GetTask => client
                .get_task()
                .task_id(fixture.task_id.clone())
                .send()
                .await
                .map(|answer| serde_json::to_value(answer.into_inner()).unwrap()),
        }
    }
}

/// Asserts that the decoded task is the spec's 200 example `name` (`example`
/// is its JSON), including the lifecycle the example stands for.
fn assert_task_example(label: &str, name: &str, task: &types::TaskStatusResponse, example: &Value) {
    assert_eq!(
        &serde_json::to_value(task).unwrap(),
        example,
        "{label}: the decoded task re-serializes to the example"
    );
    match name {
        "composing" | "running" => {
            assert_eq!(task.status, name, "{label}: status");
            assert!(task.meta.is_none(), "{label}: no meta before composed");
        }
        "composed" => {
            assert_eq!(task.status, "composed", "{label}: status");
            let meta = task
                .meta
                .as_ref()
                .unwrap_or_else(|| panic!("{label}: meta must be set"));
            let stems = meta
                .stems_url
                .as_ref()
                .unwrap_or_else(|| panic!("{label}: stems_url must be set"));
            // Five outputs: the full mix and four stems, each a signed https URL.
            let outputs = [
                ("track_url", &meta.track_url),
                ("stems_url.bass", &stems.bass),
                ("stems_url.chords", &stems.chords),
                ("stems_url.melody", &stems.melody),
                ("stems_url.percussion", &stems.percussion),
            ];
            for (field, url) in outputs {
                assert!(
                    url.as_deref().is_some_and(|u| u.starts_with("https://")),
                    "{label}: {field} must be an https URL, got {url:?}"
                );
            }
            assert!(meta.version.is_some(), "{label}: version");
            assert!(
                meta.prompt.as_ref().is_some_and(|p| p.text.is_some()),
                "{label}: prompt.text"
            );
        }
        "failed" => {
            assert_eq!(task.status, "failed", "{label}: status");
            assert!(task.meta.is_none(), "{label}: no meta when failed");
        }
        other => panic!("{label}: no expectations written for the 200 example `{other}`"),
    }
}

/// The spec's defaults are the ones the generated type fills in: a request
/// with only a prompt serializes with every documented default.
#[test]
fn documented_defaults_are_what_the_generated_request_sends() {
    let spec = spec();
    let defaults = documented_defaults(&spec);
    assert_eq!(
        defaults.keys().map(String::as_str).collect::<Vec<_>>(),
        ["format", "looping"],
        "ComposeTrackRequest's documented defaults"
    );
    let prompt_only = json!({"prompt": {"text": "30 seconds peaceful lo-fi chill hop track"}});
    let typed = typed_request(&prompt_only, "prompt only");
    assert_eq!(
        serde_json::to_value(typed).unwrap(),
        wire_body(&spec, &prompt_only)
    );
}

/// Every request example goes out verbatim (defaults filled in) with bearer
/// auth; the mock matches only that exact method, path, headers and body.
#[tokio::test]
async fn compose_track_sends_every_request_example_with_bearer_auth() {
    let spec = spec();
    let started = response_example(&spec, COMPOSE_PATH, "post", "started");
    for name in request_example_names(&spec) {
        let request = request_example(&spec, &name);
        let wire = wire_body(&spec, &request);
        let body = typed_request(&request, &name);
        let server = MockServer::start_async().await;
        let mock = server.compose_track(|when, then| {
            when.into_inner()
                .path(COMPOSE_PATH)
                .header("authorization", BEARER)
                .header("content-type", JSON)
                .header("accept", JSON)
                .json_body(wire.clone());
            respond(then.into_inner(), 200, &started);
        });

        let result = client(&server).compose_track().body(body).send().await;

        let label = format!("compose_track `{name}` -> `started`");
        assert_eq!(mock.calls_async().await, 1, "{label}: requests matched");
        let answer = result.unwrap_or_else(|e| panic!("{label}: {e:?}"));
        assert_eq!(answer.status().as_u16(), 200, "{label}: status");
        let answer = answer.into_inner();
        assert_eq!(
            Some(answer.task_id.as_str()),
            started["task_id"].as_str(),
            "{label}: task_id"
        );
        assert_eq!(
            answer.status.as_deref(),
            started["status"].as_str(),
            "{label}: status"
        );
    }
}

#[tokio::test]
async fn compose_track_decodes_every_documented_200_example() {
    let spec = spec();
    let fixture = Fixture::load(&spec);
    for name in response_example_names(&spec, COMPOSE_PATH, "post") {
        let example = response_example(&spec, COMPOSE_PATH, "post", &name);
        let server = MockServer::start_async().await;
        let mock = Operation::Compose.mock(&server, &fixture, 200, &example);

        let result = Operation::Compose.call(&client(&server), &fixture).await;

        let label = format!("compose_track 200 `{name}`");
        assert_eq!(mock.calls_async().await, 1, "{label}: requests matched");
        let decoded = result.unwrap_or_else(|e| panic!("{label}: {e:?}"));
        assert_eq!(decoded, example, "{label}: re-serializes to the example");
        assert!(
            decoded["task_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{label}: a task id to poll"
        );
    }
}

/// `get_task` puts the task id in the path, sends no body, and decodes every
/// documented task state.
#[tokio::test]
async fn get_task_polls_the_task_path_and_decodes_every_documented_200_example() {
    let spec = spec();
    let task_id: types::GetTaskTaskId = documented_task_id(&spec).parse().expect("task id");
    for name in response_example_names(&spec, TASK_PATH, "get") {
        let example = response_example(&spec, TASK_PATH, "get", &name);
        let server = MockServer::start_async().await;
        let mock = server.get_task(|when, then| {
            when.task_id(&task_id)
                .into_inner()
                .path(format!("/api/v1/tasks/{}", task_id.as_str()))
                .header("authorization", BEARER)
                .header("accept", JSON)
                .header_missing("content-type")
                .query_param_count(".*", ".*", 0);
            respond(then.into_inner(), 200, &example);
        });

        let result = client(&server)
            .get_task()
            .task_id(task_id.as_str())
            .send()
            .await;

        let label = format!("get_task 200 `{name}`");
        assert_eq!(mock.calls_async().await, 1, "{label}: requests matched");
        let decoded = result.unwrap_or_else(|e| panic!("{label}: {e:?}"));
        assert_eq!(decoded.status().as_u16(), 200, "{label}: status");
        assert_task_example(&label, &name, &decoded.into_inner(), &example);
    }
}

/// The status is an open string (specs/README.md, "Open enums"): `started`
/// (listed only by the API catalogue) and a value nobody documented still
/// decode, and so does a `meta` that is null or empty before the task is
/// composed (the spec's ASSUMED tolerance).
#[tokio::test]
async fn get_task_decodes_statuses_and_metas_the_examples_do_not_show() {
    let spec = spec();
    let fixture = Fixture::load(&spec);
    let bodies = [
        (json!({"status": "started"}), "started", false),
        (json!({"status": "mastering"}), "mastering", false),
        (json!({"status": "running", "meta": null}), "running", false),
        (json!({"status": "running", "meta": {}}), "running", true),
    ];
    for (body, status, has_meta) in bodies {
        let server = MockServer::start_async().await;
        let mock = Operation::GetTask.mock(&server, &fixture, 200, &body);

        let result = client(&server)
            .get_task()
            .task_id(fixture.task_id.clone())
            .send()
            .await;

        assert_eq!(mock.calls_async().await, 1, "{body}: requests matched");
        let task = result
            .unwrap_or_else(|e| panic!("{body}: {e:?}"))
            .into_inner();
        assert_eq!(task.status, status, "{body}: status");
        assert_eq!(task.meta.is_some(), has_meta, "{body}: meta");
    }
}

/// Any non-empty task id is sent as it is (no format is documented beyond one
/// example); an empty one is refused before anything is sent.
#[tokio::test]
async fn get_task_sends_any_non_empty_task_id_and_refuses_an_empty_one() {
    let spec = spec();
    let documented = documented_task_id(&spec);
    let unexpected = [
        documented.trim_end_matches("_1").to_owned(), // no suffix
        documented.to_uppercase(),                    // upper case
        format!("{documented}_2"),                    // a second suffix
        "42".to_owned(),                              // not a UUID at all
    ];
    let running = response_example(&spec, TASK_PATH, "get", "running");
    let server = MockServer::start_async().await;
    // Catch-all: records any request at all, whatever its method or path.
    let anything = server
        .mock_async(|_when, then| respond(then, 200, &running))
        .await;
    let client = client(&server);

    for id in &unexpected {
        client
            .get_task()
            .task_id(id.as_str())
            .send()
            .await
            .unwrap_or_else(|e| panic!("task id {id:?} was refused: {e:?}"));
    }
    assert_eq!(anything.calls_async().await, unexpected.len());

    match client.get_task().task_id("").send().await {
        Err(Error::InvalidRequest(message)) => assert!(
            message.contains("GetTaskTaskId"),
            "unexpected refusal message {message:?}"
        ),
        other => panic!("an empty task id was not refused before sending: {other:?}"),
    }
    assert_eq!(
        anything.calls_async().await,
        unexpected.len(),
        "an empty task id reached the server"
    );
}

/// The prompt text's `minLength` and `maxLength` (read from the spec) are
/// enforced by the generated type: the longest allowed text is sent, one
/// character more (or an empty text) is refused before anything is sent.
#[tokio::test]
async fn compose_track_refuses_a_prompt_text_outside_the_spec_limits_before_sending() {
    let spec = spec();
    let (min, max) = prompt_text_limits(&spec);
    let started = response_example(&spec, COMPOSE_PATH, "post", "started");
    let server = MockServer::start_async().await;
    let anything = server
        .mock_async(|_when, then| respond(then, 200, &started))
        .await;
    let client = client(&server);
    let compose = |text: String| {
        client
            .compose_track()
            .body(
                types::ComposeTrackRequest::builder()
                    .prompt(types::ComposeTrackRequestPrompt::builder().text(text)),
            )
            .send()
    };

    // The limits count characters, not bytes.
    for accepted in ["é".repeat(max), "a".repeat(min.max(1))] {
        let chars = accepted.chars().count();
        compose(accepted)
            .await
            .unwrap_or_else(|e| panic!("a {chars}-character prompt was refused: {e:?}"));
    }
    assert_eq!(anything.calls_async().await, 2);

    let too_short = "a".repeat(min.saturating_sub(1));
    for refused in ["a".repeat(max + 1), too_short] {
        let chars = refused.chars().count();
        match compose(refused).await {
            Err(Error::InvalidRequest(message)) => assert!(
                message.contains("ComposeTrackRequest"),
                "unexpected refusal message {message:?}"
            ),
            other => panic!("a {chars}-character prompt was not refused: {other:?}"),
        }
    }
    assert_eq!(
        anything.calls_async().await,
        2,
        "a prompt outside the limits reached the server"
    );
}

/// Every 4XX/5XX body documented for `operation`, served with the status its
/// summary names, comes back as `Error::ErrorResponse` with the decoded body.
async fn assert_every_error_example(operation: Operation) {
    let spec = spec();
    let fixture = Fixture::load(&spec);
    let examples = spec
        .error_examples(operation.path(), operation.method())
        .unwrap_or_else(|e| panic!("{e:#}"));
    for example in examples {
        let label = format!("{} {} `{}`", operation.id(), example.class, example.name);
        let status = spec
            .error_status(operation.path(), operation.method(), &example)
            .unwrap_or_else(|e| panic!("{label}: {e:#}"));
        let server = MockServer::start_async().await;
        let mock = operation.mock(&server, &fixture, status, &example.body);

        let result = operation.call(&client(&server), &fixture).await;

        assert_eq!(mock.calls_async().await, 1, "{label}: requests matched");
        let response = match result {
            Err(Error::ErrorResponse(response)) => response,
            other => panic!("{label}: expected Error::ErrorResponse, got {other:?}"),
        };
        assert_eq!(response.status().as_u16(), status, "{label}: status");
        let body = response.into_inner();
        assert_eq!(
            body.error.as_deref(),
            example.body["error"].as_str(),
            "{label}: error"
        );
        assert_eq!(
            body.detail.as_deref(),
            example.body["detail"].as_str(),
            "{label}: detail"
        );
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            example.body,
            "{label}: re-serializes to the example"
        );
    }
}

#[tokio::test]
async fn compose_track_returns_every_documented_error_body_as_error_response() {
    assert_every_error_example(Operation::Compose).await;
}

#[tokio::test]
async fn get_task_returns_every_documented_error_body_as_error_response() {
    assert_every_error_example(Operation::GetTask).await;
}

/// Every operation of the spec is covered by the loops above.
#[test]
fn the_operations_enum_covers_the_spec() {
    let spec = spec();
    let mut documented: Vec<(String, String, String)> = spec.operations();
    documented.sort();
    let mut covered: Vec<(String, String, String)> = Operation::ALL
        .iter()
        .map(|op| {
            (
                op.method().to_owned(),
                op.path().to_owned(),
                op.id().to_owned(),
            )
        })
        .collect();
    covered.sort();
    assert_eq!(covered, documented);
}
