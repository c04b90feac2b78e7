//! Contract tests for the generated ElevenLabs Music client
//! (`songbind-elevenlabs`), run against loopback httpmock servers whose mocks
//! are built from the examples in `specs/elevenlabs.yaml`.
//!
//! They prove that every generated operation sends the documented method,
//! path, `xi-api-key` header (and no `Authorization`), JSON content type,
//! `output_format` query and the exact JSON body (the request example with
//! the spec's documented defaults filled in, since the generated types always
//! send those); that the audio answers come back byte for byte with their
//! `song-id` header; that the SSE answer of the detailed stream comes back
//! byte for byte and every documented event decodes into
//! `DetailedStreamEvent`; that both plan formats decode into the right
//! variant of `AnyCompositionPlan` (and v2 chunks into the right variant of
//! `CompositionChunk`); that the `multipart/mixed` answer of the excluded
//! `compose_detailed` splits into a `types::DetailedMusicResponse` and the
//! audio; that a limit of the spec refuses a request before it is sent; and
//! that every documented error body (422, copyright refusals with their
//! suggestions, 401, both 429s, 500) comes back as `Error::ErrorResponse`
//! with its status and typed `ErrorBody`, for every generated operation.

use futures::TryStreamExt;
use httpmock::{Mock, MockServer, Then};
use serde_json::{Value, json};
use songbind_contract_tests::{ErrorExample, Spec};
use songbind_elevenlabs::mock::MockServerExt;
use songbind_elevenlabs::types::{
    self, AnyCompositionPlan, CompositionChunk, ErrorDetail, OutputFormat,
};
use songbind_elevenlabs::{ByteStream, Client, Error, ResponseValue};

const API_KEY: &str = "xi_contract_test_key";

const COMPOSE: &str = "/v1/music";
const STREAM: &str = "/v1/music/stream";
const DETAILED: &str = "/v1/music/detailed";
const DETAILED_STREAM: &str = "/v1/music/detailed/stream";
const PLAN: &str = "/v1/music/plan";

const JSON: &str = "application/json";
const AUDIO: &str = "audio/*";
const EVENT_STREAM: &str = "text/event-stream";
const MULTIPART_MIXED: &str = "multipart/mixed";

fn spec() -> Spec {
    Spec::load("elevenlabs").unwrap_or_else(|e| panic!("{e:#}"))
}

/// The spec as plain JSON, for what `Spec` has no accessor for (schema
/// defaults, the `song-id` header's example).
fn raw_spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/elevenlabs.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("spec reads")).expect("spec parses")
}

fn client(server: &MockServer) -> Client {
    Client::with_api_key(&server.base_url(), API_KEY).expect("client for the mock server")
}

fn request_example(spec: &Spec, path: &str, name: &str) -> Value {
    spec.request_example(path, "post", JSON, name)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// The documented `song-id` of the spec's `SongId` header.
fn documented_song_id() -> String {
    raw_spec()["components"]["headers"]["SongId"]["example"]
        .as_str()
        .expect("the SongId header has a string example")
        .to_owned()
}

/// The bytes of the `audio/*` 200 example of `path`.
fn audio_example(spec: &Spec, path: &str) -> String {
    spec.response_example(path, "post", "200", AUDIO, "audio")
        .unwrap_or_else(|e| panic!("{e:#}"))
        .as_str()
        .expect("the audio example is a string of bytes")
        .to_owned()
}

/// What the generated request type puts on the wire for `example`: the
/// example plus every top-level field whose schema states a `default` (the
/// generated types always send those), except `$ref` fields (an optional
/// `$ref`'d enum stays unset and unsent).
fn wire_body(path: &str, example: &Value) -> Value {
    let spec = raw_spec();
    let reference = spec["paths"][path]["post"]["requestBody"]["content"][JSON]["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{path}: request body is a $ref"));
    let schema = &spec["components"]["schemas"][reference.rsplit('/').next().unwrap()];
    let mut wire = example.clone();
    let fields = wire.as_object_mut().expect("request examples are objects");
    for (name, property) in schema["properties"].as_object().expect("properties") {
        if let Some(default) = property.get("default")
            && property.get("$ref").is_none()
        {
            fields
                .entry(name.clone())
                .or_insert_with(|| default.clone());
        }
    }
    wire
}

/// Numbers compared as numbers (`480` and `480.0` are the same timestamp).
fn normalized(value: &Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().expect("finite number")),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Decoding keeps every field: the typed value serializes back to `raw`.
fn assert_round_trips<T: serde::Serialize>(label: &str, typed: &T, raw: &Value) {
    assert_eq!(
        normalized(&serde_json::to_value(typed).expect("serializes")),
        normalized(raw),
        "{label}: no field is lost or added by decoding"
    );
}

/// Reads a streamed answer to its end.
async fn collect(response: ResponseValue<ByteStream>) -> Vec<u8> {
    response
        .into_inner_stream()
        .try_fold(Vec::new(), |mut bytes, chunk| async move {
            bytes.extend_from_slice(&chunk);
            Ok(bytes)
        })
        .await
        .expect("the answer reads to its end")
}

/// Answers `status` with the JSON `body`, served verbatim.
fn respond_json(then: Then, status: u16, body: &Value) {
    then.status(status)
        .header("content-type", JSON)
        .json_body(body.clone());
}

// ---- compose and compose_stream: the audio is the answer -----------------------

/// Sends the request example `name` to `compose` (with `output_format` set)
/// and answers the documented audio bytes and `song-id`.
async fn assert_compose_sends(name: &str, format: Option<OutputFormat>) {
    let spec = spec();
    let example = request_example(&spec, COMPOSE, name);
    let body: types::ComposeRequest = serde_json::from_value(example.clone())
        .unwrap_or_else(|e| panic!("`{name}` is not a ComposeRequest: {e}"));
    let audio = audio_example(&spec, COMPOSE);
    let song_id = documented_song_id();

    let server = MockServer::start_async().await;
    let mock = server.compose(|when, then| {
        when.output_format(format)
            .into_inner()
            .header("xi-api-key", API_KEY)
            .header_missing("authorization")
            .header("content-type", JSON)
            .json_body(wire_body(COMPOSE, &example));
        then.into_inner()
            .status(200)
            .header("content-type", "audio/mpeg")
            .header("song-id", &song_id)
            .body(&audio);
    });

    let client = client(&server);
    let mut call = client.compose().body(body);
    if let Some(format) = format {
        call = call.output_format(format);
    }
    let result = call.send().await;

    mock.assert_async().await;
    let answer = result.unwrap_or_else(|e| panic!("compose `{name}`: {e:?}"));
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        answer
            .headers()
            .get("song-id")
            .and_then(|v| v.to_str().ok()),
        Some(song_id.as_str()),
        "compose `{name}`: song-id"
    );
    assert_eq!(
        collect(answer).await,
        audio.as_bytes(),
        "compose `{name}`: audio bytes"
    );
}

#[tokio::test]
async fn compose_sends_the_quickstart_prompt_with_xi_api_key_and_returns_audio_and_song_id() {
    assert_compose_sends("quickstart_prompt", Some(OutputFormat::Mp344100128)).await;
}

#[tokio::test]
async fn compose_sends_a_v1_plan_without_output_format_when_none_is_set() {
    assert_compose_sends("plan_v1", None).await;
}

#[tokio::test]
async fn compose_sends_a_v2_inpainting_plan_with_audio_ref_and_generation_chunks() {
    let spec = spec();
    let example = request_example(&spec, COMPOSE, "plan_v2_inpainting");
    let body: types::ComposeRequest = serde_json::from_value(example.clone()).unwrap();
    // The untagged chunks decode into the variant their keys say.
    let Some(AnyCompositionPlan::CompositionPlan(plan)) = &body.composition_plan else {
        panic!("plan_v2_inpainting holds a v2 CompositionPlan: {body:?}");
    };
    assert!(matches!(
        &plan.chunks[..],
        [
            CompositionChunk::AudioRefChunk(_),
            CompositionChunk::GenerationChunk(_)
        ]
    ));
    if let CompositionChunk::GenerationChunk(chunk) = &plan.chunks[1] {
        assert!(chunk.conditioning_ref.is_some());
        assert_eq!(
            chunk.condition_strength,
            Some(types::GenerationChunkConditionStrength::High)
        );
    }
    assert_eq!(body.model_id, Some(types::MusicModelId::MusicV2));
    assert_compose_sends("plan_v2_inpainting", Some(OutputFormat::Opus48000192)).await;
}

/// The quickstart example sets no `model_id`: it is not sent (the server's
/// default applies), while the boolean defaults are.
#[test]
fn compose_wire_body_sends_boolean_defaults_but_no_unset_model_id() {
    let spec = spec();
    let example = request_example(&spec, COMPOSE, "quickstart_prompt");
    let body: types::ComposeRequest = serde_json::from_value(example.clone()).unwrap();
    let wire = serde_json::to_value(&body).unwrap();
    assert_eq!(wire, wire_body(COMPOSE, &example));
    assert_eq!(wire.get("model_id"), None);
    assert_eq!(wire["force_instrumental"], json!(false));
    assert_eq!(wire["respect_sections_durations"], json!(true));
    assert_eq!(wire["store_for_inpainting"], json!(false));
    assert_eq!(wire["sign_with_c2pa"], json!(false));
}

#[tokio::test]
async fn compose_stream_sends_the_quickstart_prompt_and_streams_the_audio_with_song_id() {
    let spec = spec();
    let example = request_example(&spec, STREAM, "quickstart_prompt");
    let body: types::ComposeStreamRequest = serde_json::from_value(example.clone()).unwrap();
    let audio = audio_example(&spec, STREAM);
    let song_id = documented_song_id();
    let wire = wire_body(STREAM, &example);
    // The stream body has no respect_sections_durations or sign_with_c2pa.
    assert_eq!(wire.get("respect_sections_durations"), None);
    assert_eq!(wire.get("sign_with_c2pa"), None);

    let server = MockServer::start_async().await;
    let mock = server.compose_stream(|when, then| {
        when.output_format(OutputFormat::Pcm44100)
            .into_inner()
            .header("xi-api-key", API_KEY)
            .header_missing("authorization")
            .header("content-type", JSON)
            .json_body(wire);
        then.into_inner()
            .status(200)
            .header("content-type", "audio/pcm")
            .header("song-id", &song_id)
            .body(&audio);
    });

    let result = client(&server)
        .compose_stream()
        .output_format(OutputFormat::Pcm44100)
        .body(body)
        .send()
        .await;

    mock.assert_async().await;
    let answer = result.expect("compose_stream");
    assert_eq!(
        answer
            .headers()
            .get("song-id")
            .and_then(|v| v.to_str().ok()),
        Some(song_id.as_str())
    );
    assert_eq!(collect(answer).await, audio.as_bytes());
}

/// `song-id` is documented as possibly absent (present when
/// `store_for_inpainting` was true): an answer without it still streams.
#[tokio::test]
async fn compose_without_a_song_id_header_still_returns_the_audio() {
    let spec = spec();
    let example = request_example(&spec, COMPOSE, "quickstart_prompt");
    let audio = audio_example(&spec, COMPOSE);
    let server = MockServer::start_async().await;
    let mock = server.compose(|when, then| {
        when.into_inner().header("xi-api-key", API_KEY);
        then.into_inner()
            .status(200)
            .header("content-type", "audio/mpeg")
            .body(&audio);
    });

    let answer = client(&server)
        .compose()
        .body(serde_json::from_value::<types::ComposeRequest>(example).unwrap())
        .send()
        .await
        .expect("compose");

    mock.assert_async().await;
    assert!(answer.headers().get("song-id").is_none());
    assert_eq!(collect(answer).await, audio.as_bytes());
}

/// `ComposeRequest.prompt` has `maxLength: 4100` (characters, not bytes):
/// a longer prompt cannot even be built, so it can never be sent; 4100
/// characters are sent.
#[tokio::test]
async fn a_prompt_over_the_spec_limit_cannot_be_built_and_one_at_the_limit_is_sent() {
    let limit = songbind_elevenlabs::limits::COMPOSE_REQUEST_PROMPT;
    assert_eq!(limit.field, "prompt");
    let too_long = "é".repeat(4101);
    assert!(too_long.parse::<types::Prompt>().is_err());
    assert!(
        serde_json::from_value::<types::ComposeRequest>(json!({ "prompt": too_long })).is_err()
    );

    let at_limit = "é".repeat(4100);
    let server = MockServer::start_async().await;
    let mock = server.compose(|when, then| {
        when.into_inner()
            .header("xi-api-key", API_KEY)
            .json_body_includes(json!({ "prompt": at_limit }).to_string());
        then.into_inner().status(200).body("audio");
    });
    let prompt: types::Prompt = at_limit.parse().expect("4100 characters");
    client(&server)
        .compose()
        .body(types::ComposeRequest::builder().prompt(prompt))
        .send()
        .await
        .expect("a prompt at the limit is sent");
    mock.assert_async().await;
}

// ---- compose_detailed_stream: server-sent events -----------------------------------

/// The SSE examples in spec order, concatenated, and their names.
fn sse_body(spec: &Spec) -> (String, Vec<String>) {
    let names = spec
        .response_example_names(DETAILED_STREAM, "post", "200", EVENT_STREAM)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let body = names
        .iter()
        .map(|name| {
            spec.response_example(DETAILED_STREAM, "post", "200", EVENT_STREAM, name)
                .unwrap_or_else(|e| panic!("{e:#}"))
                .as_str()
                .expect("an SSE example is event text")
                .to_owned()
        })
        .collect();
    (body, names)
}

/// Splits an SSE body into `(event name, raw data JSON, typed data)`.
fn decode_events(body: &str) -> Vec<(String, Value, types::DetailedStreamEvent)> {
    assert!(body.ends_with("\n\n"), "the last event is terminated");
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let (name, data) = event
                .split_once('\n')
                .unwrap_or_else(|| panic!("an event line and a data line: {event:?}"));
            let name = name
                .strip_prefix("event: ")
                .unwrap_or_else(|| panic!("event without `event: `: {event:?}"));
            let data = data
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("event without `data: `: {event:?}"));
            let raw: Value = serde_json::from_str(data).expect("event data is JSON");
            let typed = serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("`{name}` data is a DetailedStreamEvent: {e}"));
            (name.to_owned(), raw, typed)
        })
        .collect()
}

#[tokio::test]
async fn compose_detailed_stream_returns_every_documented_event_byte_for_byte() {
    let spec = spec();
    let example = request_example(&spec, DETAILED_STREAM, "prompt_with_timestamps");
    let body: types::ComposeDetailedStreamRequest =
        serde_json::from_value(example.clone()).unwrap();
    assert!(body.with_timestamps);
    let (events, names) = sse_body(&spec);
    let song_id = documented_song_id();

    let server = MockServer::start_async().await;
    let mock = server.compose_detailed_stream(|when, then| {
        when.output_format(OutputFormat::Mp348000192)
            .into_inner()
            .header("xi-api-key", API_KEY)
            .header_missing("authorization")
            .header("content-type", JSON)
            .json_body(wire_body(DETAILED_STREAM, &example));
        then.into_inner()
            .status(200)
            .header("content-type", EVENT_STREAM)
            .header("song-id", &song_id)
            .body(&events);
    });

    let result = client(&server)
        .compose_detailed_stream()
        .output_format(OutputFormat::Mp348000192)
        .body(body)
        .send()
        .await;

    mock.assert_async().await;
    let answer = result.expect("compose_detailed_stream");
    assert_eq!(
        answer
            .headers()
            .get("song-id")
            .and_then(|v| v.to_str().ok()),
        Some(song_id.as_str())
    );
    let bytes = collect(answer).await;
    assert_eq!(bytes, events.as_bytes(), "the stream comes back unchanged");

    let decoded = decode_events(std::str::from_utf8(&bytes).unwrap());
    assert_eq!(decoded.len(), names.len(), "one event per example");
    for (name, raw, event) in &decoded {
        assert_round_trips(&format!("event `{name}`"), event, raw);
        match name.as_str() {
            "composition_plan" => assert!(matches!(
                event.composition_plan,
                Some(AnyCompositionPlan::CompositionPlan(_))
            )),
            "song_metadata" => assert_eq!(
                event
                    .song_metadata
                    .as_ref()
                    .and_then(|m| m.title.as_deref()),
                Some("Neon Morning")
            ),
            "audio_chunk" => assert!(event.audio_base64.as_ref().is_some_and(|a| !a.is_empty())),
            "words_timestamps" => assert_eq!(event.words_timestamps.len(), 2),
            "done" => assert_eq!(event, &types::DetailedStreamEvent::default()),
            other => panic!("no expectation for event `{other}`"),
        }
    }
    let audio_chunks = decoded.iter().filter(|(n, ..)| n == "audio_chunk").count();
    assert_eq!(audio_chunks, 2);
    assert_eq!(decoded.last().map(|(n, ..)| n.as_str()), Some("done"));
}

// ---- compose_detailed: multipart/mixed, left out of generation -------------------

/// The excluded operation's JSON part is the generated
/// `types::DetailedMusicResponse`: the documented multipart body splits on the
/// boundary of its first line into that and the audio part.
#[test]
fn compose_detailed_multipart_example_splits_into_detailed_music_response_and_audio() {
    let spec = spec();
    let body = spec
        .response_example(
            DETAILED,
            "post",
            "200",
            MULTIPART_MIXED,
            "metadata_and_audio",
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let body = body.as_str().expect("the multipart example is text");
    let boundary = body.lines().next().expect("a first line").trim_end();
    assert!(boundary.starts_with("--"));
    let parts: Vec<&str> = body
        .split(boundary)
        .filter(|part| !part.is_empty() && !part.starts_with("--"))
        .collect();
    assert_eq!(parts.len(), 2, "a JSON part and an audio part");

    let (json_headers, json_part) = parts[0].split_once("\r\n\r\n").expect("headers, body");
    assert!(json_headers.contains("Content-Type: application/json"));
    let raw: Value = serde_json::from_str(json_part.trim_end()).expect("the JSON part is JSON");
    let detailed: types::DetailedMusicResponse =
        serde_json::from_value(raw.clone()).expect("the JSON part is a DetailedMusicResponse");
    assert_round_trips("DetailedMusicResponse part", &detailed, &raw);
    assert!(matches!(
        detailed.composition_plan,
        AnyCompositionPlan::CompositionPlan(_)
    ));
    assert_eq!(
        detailed.song_metadata.title.as_deref(),
        Some("Neon Morning")
    );
    assert_eq!(detailed.song_metadata.languages, ["en"]);
    let words = detailed.words_timestamps.expect("with_timestamps was true");
    assert_eq!(words[0].word, "Neon");
    assert_eq!((words[0].start_ms, words[0].end_ms), (480.0, 910.0));

    let (audio_headers, audio) = parts[1].split_once("\r\n\r\n").expect("headers, body");
    assert!(audio_headers.contains("Content-Type: audio/"));
    assert!(audio_headers.contains("Content-Disposition: attachment; filename="));
    assert_eq!(
        audio
            .strip_suffix("\r\n")
            .expect("CRLF before the boundary"),
        audio_example(&spec, COMPOSE)
    );

    // The schema's own example decodes too, and its request example is a
    // ComposeDetailedRequest that sends with_timestamps.
    let example = spec.schema_example("DetailedMusicResponse").unwrap();
    let typed: types::DetailedMusicResponse = serde_json::from_value(example.clone()).unwrap();
    assert_round_trips("DetailedMusicResponse example", &typed, &example);
    let request = request_example(&spec, DETAILED, "prompt_with_timestamps");
    let typed: types::ComposeDetailedRequest = serde_json::from_value(request.clone()).unwrap();
    assert!(typed.with_timestamps);
    assert_eq!(
        serde_json::to_value(&typed).unwrap(),
        wire_body(DETAILED, &request)
    );
}

/// A detailed answer without timestamps carries `"words_timestamps": null`.
#[test]
fn detailed_music_response_accepts_null_words_timestamps() {
    let mut example = spec().schema_example("DetailedMusicResponse").unwrap();
    example["words_timestamps"] = Value::Null;
    let typed: types::DetailedMusicResponse = serde_json::from_value(example).unwrap();
    assert_eq!(typed.words_timestamps, None);
}

// ---- create_composition_plan --------------------------------------------------------

async fn plan_round(request_name: &str, response_name: &str) -> AnyCompositionPlan {
    let spec = spec();
    let example = request_example(&spec, PLAN, request_name);
    let body: types::CreateCompositionPlanRequest =
        serde_json::from_value(example.clone()).unwrap();
    let answer = spec
        .response_example(PLAN, "post", "200", JSON, response_name)
        .unwrap_or_else(|e| panic!("{e:#}"));

    let server = MockServer::start_async().await;
    let mock = server.create_composition_plan(|when, then| {
        when.into_inner()
            .header("xi-api-key", API_KEY)
            .header_missing("authorization")
            .header("content-type", JSON)
            .header("accept", JSON)
            .query_param_count(".*", ".*", 0)
            .json_body(wire_body(PLAN, &example));
        respond_json(then.into_inner(), 200, &answer);
    });

    let result = client(&server)
        .create_composition_plan()
        .body(body)
        .send()
        .await;

    mock.assert_async().await;
    let plan = result
        .unwrap_or_else(|e| panic!("plan `{request_name}`: {e:?}"))
        .into_inner();
    assert_round_trips(&format!("plan `{response_name}`"), &plan, &answer);
    plan
}

#[tokio::test]
async fn create_composition_plan_sends_the_quickstart_prompt_and_decodes_a_v1_music_prompt() {
    let AnyCompositionPlan::MusicPrompt(plan) = plan_round("quickstart_prompt", "music_v1").await
    else {
        panic!("music_v1 answers a v1 MusicPrompt");
    };
    let durations: i64 = plan.sections.iter().map(|s| s.duration_ms).sum();
    assert_eq!(durations, 10_000, "sections add up to the 10 s requested");
    assert_eq!(plan.sections[0].section_name.as_str(), "Intro");
}

#[tokio::test]
async fn create_composition_plan_sends_a_source_plan_and_decodes_a_v2_composition_plan() {
    let AnyCompositionPlan::CompositionPlan(plan) = plan_round("refine_v2", "music_v2").await
    else {
        panic!("music_v2 answers a v2 CompositionPlan");
    };
    assert!(
        plan.chunks
            .iter()
            .all(|chunk| matches!(chunk, CompositionChunk::GenerationChunk(_)))
    );
}

// ---- errors ----------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Operation {
    Compose,
    ComposeStream,
    ComposeDetailedStream,
    CreateCompositionPlan,
}

impl Operation {
    const ALL: [Self; 4] = [
        Self::Compose,
        Self::ComposeStream,
        Self::ComposeDetailedStream,
        Self::CreateCompositionPlan,
    ];

    fn path(self) -> &'static str {
        match self {
            Self::Compose => COMPOSE,
            Self::ComposeStream => STREAM,
            Self::ComposeDetailedStream => DETAILED_STREAM,
            Self::CreateCompositionPlan => PLAN,
        }
    }

    fn request(self, spec: &Spec) -> Value {
        let name = match self {
            Self::ComposeDetailedStream => "prompt_with_timestamps",
            _ => "quickstart_prompt",
        };
        request_example(spec, self.path(), name)
    }

    fn mock<'a>(
        self,
        server: &'a MockServer,
        request: &Value,
        status: u16,
        body: &Value,
    ) -> Mock<'a> {
        let wire = wire_body(self.path(), request);
        let answer = |then: Then| respond_json(then, status, body);
        let when = |when: httpmock::When| {
            when.header("xi-api-key", API_KEY)
                .header("content-type", JSON)
                .json_body(wire.clone())
        };
        match self {
            Self::Compose => server.compose(|w, t| {
                when(w.into_inner());
                answer(t.into_inner());
            }),
            Self::ComposeStream => server.compose_stream(|w, t| {
                when(w.into_inner());
                answer(t.into_inner());
            }),
            Self::ComposeDetailedStream => server.compose_detailed_stream(|w, t| {
                when(w.into_inner());
                answer(t.into_inner());
            }),
            Self::CreateCompositionPlan => server.create_composition_plan(|w, t| {
                when(w.into_inner());
                answer(t.into_inner());
            }),
        }
    }

    /// Sends the request and returns the error answer it got.
    async fn error(self, client: &Client, request: &Value) -> ResponseValue<types::ErrorBody> {
        let request = request.clone();
        let result = match self {
            Self::Compose => client
                .compose()
                .body(serde_json::from_value::<types::ComposeRequest>(request).unwrap())
                .send()
                .await
                .map(drop),
            Self::ComposeStream => client
                .compose_stream()
                .body(serde_json::from_value::<types::ComposeStreamRequest>(request).unwrap())
                .send()
                .await
                .map(drop),
            Self::ComposeDetailedStream => client
                .compose_detailed_stream()
                .body(
                    serde_json::from_value::<types::ComposeDetailedStreamRequest>(request).unwrap(),
                )
                .send()
                .await
                .map(drop),
            Self::CreateCompositionPlan => client
                .create_composition_plan()
                .body(
                    serde_json::from_value::<types::CreateCompositionPlanRequest>(request).unwrap(),
                )
                .send()
                .await
                .map(drop),
        };
        match result {
            Err(Error::ErrorResponse(response)) => response,
            other => panic!("{self:?}: expected Error::ErrorResponse, got {other:?}"),
        }
    }
}

/// What each documented error body must decode into.
fn assert_error_meaning(label: &str, example: &ErrorExample, decoded: &types::ErrorBody) {
    let detail = decoded.detail.as_ref().expect("every error has a detail");
    let status_detail = |status: &str| match detail {
        ErrorDetail::StatusDetail(d) => {
            assert_eq!(d.status.as_deref(), Some(status), "{label}: status");
            assert!(
                d.message.as_ref().is_some_and(|m| !m.is_empty()),
                "{label}: message"
            );
            d.clone()
        }
        other => panic!("{label}: expected a status object, got {other:?}"),
    };
    match example.name.as_str() {
        "validation_error" => {
            let ErrorDetail::Array(issues) = detail else {
                panic!("{label}: expected validation issues, got {detail:?}");
            };
            let loc: Vec<String> = issues[0].loc.iter().map(ToString::to_string).collect();
            assert_eq!(loc, ["body", "music_length_ms"], "{label}: loc");
            assert_eq!(issues[0].type_.as_deref(), Some("less_than_equal"));
        }
        "bad_prompt" => {
            let d = status_detail("bad_prompt");
            let suggestion = d.data.and_then(|data| data.prompt_suggestion);
            assert!(
                suggestion.is_some_and(|s| !s.is_empty()),
                "{label}: a prompt suggestion to retry with"
            );
        }
        "bad_composition_plan" => {
            let d = status_detail("bad_composition_plan");
            let suggestion = d.data.and_then(|data| data.composition_plan_suggestion);
            assert!(
                matches!(suggestion, Some(AnyCompositionPlan::CompositionPlan(_))),
                "{label}: a typed plan suggestion to retry with"
            );
        }
        "invalid_api_key" | "too_many_concurrent_requests" | "system_busy" => {
            status_detail(&example.name);
        }
        "internal_error" => {
            assert!(
                matches!(detail, ErrorDetail::String(s) if !s.is_empty()),
                "{label}"
            );
        }
        other => panic!("{label}: no expectation written for error example `{other}`"),
    }
}

async fn assert_every_documented_error(operation: Operation) {
    let spec = spec();
    let request = operation.request(&spec);
    let examples = spec
        .error_examples(operation.path(), "post")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut statuses = Vec::new();
    for example in &examples {
        let label = format!("{operation:?} {} `{}`", example.class, example.name);
        let status = spec
            .error_status(operation.path(), "post", example)
            .unwrap_or_else(|e| panic!("{label}: {e:#}"));
        let server = MockServer::start_async().await;
        let mock = operation.mock(&server, &request, status, &example.body);

        let response = operation.error(&client(&server), &request).await;

        assert_eq!(mock.calls_async().await, 1, "{label}: requests matched");
        assert_eq!(response.status().as_u16(), status, "{label}: status");
        let decoded = response.into_inner();
        assert_round_trips(&label, &decoded, &example.body);
        assert_error_meaning(&label, example, &decoded);
        statuses.push((example.name.clone(), status));
    }
    // Every status the spec documents, read from the examples' summaries.
    assert_eq!(
        statuses,
        [
            ("validation_error".to_owned(), 422),
            ("bad_prompt".to_owned(), 400),
            ("bad_composition_plan".to_owned(), 400),
            ("invalid_api_key".to_owned(), 401),
            ("too_many_concurrent_requests".to_owned(), 429),
            ("system_busy".to_owned(), 429),
            ("internal_error".to_owned(), 500),
        ]
    );
}

#[tokio::test]
async fn compose_returns_every_documented_error_as_a_typed_error_body() {
    assert_every_documented_error(Operation::Compose).await;
}

#[tokio::test]
async fn compose_stream_returns_every_documented_error_as_a_typed_error_body() {
    assert_every_documented_error(Operation::ComposeStream).await;
}

#[tokio::test]
async fn compose_detailed_stream_returns_every_documented_error_as_a_typed_error_body() {
    assert_every_documented_error(Operation::ComposeDetailedStream).await;
}

#[tokio::test]
async fn create_composition_plan_returns_every_documented_error_as_a_typed_error_body() {
    assert_every_documented_error(Operation::CreateCompositionPlan).await;
}

/// A 429 that is not the documented JSON (a proxy's text) still comes back
/// as an error response with its status, its text in `detail`.
#[tokio::test]
async fn a_non_json_429_keeps_its_status_for_every_operation() {
    let spec = spec();
    for operation in Operation::ALL {
        let request = operation.request(&spec);
        let server = MockServer::start_async().await;
        let mock = server
            .mock_async(|when, then| {
                when.path(operation.path());
                then.status(429)
                    .header("content-type", "text/plain")
                    .body("slow down");
            })
            .await;

        let response = operation.error(&client(&server), &request).await;

        assert_eq!(mock.calls_async().await, 1);
        assert_eq!(response.status().as_u16(), 429, "{operation:?}");
        assert_eq!(
            response.into_inner().detail,
            Some(ErrorDetail::String("slow down".into()))
        );
    }
}
