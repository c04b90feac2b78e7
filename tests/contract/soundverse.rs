//! Contract tests for the generated Soundverse client (`songbind-soundverse`),
//! run against a loopback httpmock server whose mocks are built from the
//! examples in `specs/soundverse.yaml`.
//!
//! They prove that every operation sends the documented method, path,
//! `Authorization: Bearer <key>` header, JSON content type and exact request
//! body; that the streaming (SSE) operations hand the event stream back byte
//! for byte and that every documented event decodes into `StreamChunk` (stage
//! values the spec does not list included); that the synchronous samples and
//! the open status object decode with their values; that the extend page's
//! verbatim example (which lacks the required `extend_at`) is refused before
//! anything is sent; and that every documented error body comes back as
//! `Error::ErrorResponse` carrying the typed `ErrorBody`, for every operation.

use futures::TryStreamExt;
use httpmock::{Mock, MockServer};
use serde_json::{Value, json};
use songbind_contract_tests::{ErrorExample, Spec};
use songbind_soundverse::mock::MockServerExt;
use songbind_soundverse::{ByteStream, Client, Error, ResponseValue, types};

const API_KEY: &str = "sv_contract_test_key";

const GENERATE: &str = "/v6/generate/song";
const GENERATE_SYNC: &str = "/v6/generate/song/sync";
const EXTEND: &str = "/v6/extend/song";
const EXTEND_SYNC: &str = "/v6/extend/song/sync";
const REMIX: &str = "/v7/generate/remix";
const STATUS: &str = "/status/generations/{message_id}";

const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream";

/// A realistic message id (the spec's samples only show the placeholder `...`).
const MESSAGE_ID: &str = "msg_123";

fn spec() -> Spec {
    Spec::load("soundverse").expect("specs/soundverse.yaml loads")
}

fn bearer() -> String {
    format!("Bearer {API_KEY}")
}

fn client_for(server: &MockServer) -> Client {
    Client::with_api_key(&server.base_url(), API_KEY).expect("the client builds")
}

fn generate_request(spec: &Spec, path: &str) -> (Value, types::GenerateSongRequest) {
    let raw = spec
        .request_example(path, "post", JSON, "cheerful_pop")
        .expect("cheerful_pop request example");
    let typed = serde_json::from_value(raw.clone())
        .expect("cheerful_pop deserializes into GenerateSongRequest");
    (raw, typed)
}

fn extend_request(spec: &Spec, path: &str) -> (Value, types::ExtendSongRequest) {
    let raw = spec
        .request_example(path, "post", JSON, "extend_example_with_position")
        .expect("extend_example_with_position request example");
    let typed = serde_json::from_value(raw.clone())
        .expect("extend_example_with_position deserializes into ExtendSongRequest");
    (raw, typed)
}

fn remix_request(spec: &Spec) -> (Value, types::RemixSongRequest) {
    let raw = spec
        .request_example(REMIX, "post", JSON, "jazz_remix")
        .expect("jazz_remix request example");
    let typed =
        serde_json::from_value(raw.clone()).expect("jazz_remix deserializes into RemixSongRequest");
    (raw, typed)
}

/// The operation's 200 `text/event-stream` examples, in the order the spec
/// writes them, concatenated into one SSE body; and how many events that is.
fn sse_body(spec: &Spec, path: &str) -> (String, usize) {
    let names = spec
        .response_example_names(path, "post", "200", EVENT_STREAM)
        .expect("SSE example names");
    let mut sorted = names.clone();
    sorted.sort();
    let mut listed = spec
        .response_example_names(path, "post", "200", EVENT_STREAM)
        .expect("SSE example names");
    listed.sort();
    assert_eq!(
        sorted, listed,
        "{path}: both name lists cover the same examples"
    );
    let body: String = names
        .iter()
        .map(|name| {
            let value = spec
                .response_example(path, "post", "200", EVENT_STREAM, name)
                .expect("SSE example");
            value
                .as_str()
                .unwrap_or_else(|| panic!("{path} `{name}`: an SSE example is event text"))
                .to_owned()
        })
        .collect();
    (body, names.len())
}

/// Reads a streamed response to its end.
async fn collect(response: ResponseValue<ByteStream>) -> Vec<u8> {
    response
        .into_inner_stream()
        .try_fold(Vec::new(), |mut bytes, chunk| async move {
            bytes.extend_from_slice(&chunk);
            Ok(bytes)
        })
        .await
        .expect("the event stream reads to its end")
}

/// Splits an SSE body on its blank lines and decodes the JSON after `data: `
/// of every event, keeping the raw JSON next to the typed chunk.
fn decode_events(body: &str) -> Vec<(Value, types::StreamChunk)> {
    assert!(
        body.ends_with("\n\n"),
        "the last event is terminated: {body:?}"
    );
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let data = event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("event without `data: `: {event:?}"));
            assert!(!data.contains('\n'), "one data line per event: {event:?}");
            let raw: Value = serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("event data is JSON ({e}): {data}"));
            let chunk: types::StreamChunk = serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("event data decodes into StreamChunk ({e}): {data}"));
            (raw, chunk)
        })
        .collect()
}

/// Every field of the event's JSON survives decoding: serializing the typed
/// chunk gives the same JSON back. (`StreamChunk` skips an empty
/// `lyrics_sections` when serializing, so an empty array there is compared
/// separately.)
fn assert_no_field_is_lost(events: &[(Value, types::StreamChunk)]) {
    for (raw, chunk) in events {
        let mut expected = raw.clone();
        if expected.get("lyrics_sections") == Some(&json!([])) {
            assert!(chunk.lyrics_sections.is_empty());
            expected
                .as_object_mut()
                .expect("event JSON is an object")
                .remove("lyrics_sections");
        }
        assert_eq!(
            serde_json::to_value(chunk).expect("chunk serializes"),
            expected,
            "StreamChunk keeps every field of {raw}"
        );
    }
}

fn statuses(chunks: &[types::StreamChunk]) -> Vec<&str> {
    chunks
        .iter()
        .map(|chunk| chunk.status.as_deref().unwrap_or("<no status>"))
        .collect()
}

fn chunk_indices(chunks: &[types::StreamChunk]) -> Vec<i64> {
    chunks
        .iter()
        .map(|chunk| {
            chunk
                .chunk_index
                .expect("every sample chunk has a chunkIndex")
        })
        .collect()
}

/// The stages and values of the v6 stream the generate page documents.
fn assert_v6_stages(chunks: &[types::StreamChunk]) {
    assert_eq!(
        statuses(chunks),
        [
            "initializing",
            "validated",
            "streaming",
            "processing",
            "running",
            "streaming",
            "completed",
            "uploading",
            "completed",
        ]
    );
    assert_eq!(chunk_indices(chunks), [0, 1, 2, 3, 4, 8, 10, 11, 12]);
    // No documented chunk says the stream is complete.
    assert!(chunks.iter().all(|chunk| chunk.is_complete == Some(false)));
    // The request id arrives with validation, not with initialization.
    assert_eq!(chunks[0].message_id, None);
    assert!(
        chunks[1..]
            .iter()
            .all(|chunk| chunk.message_id.as_deref() == Some("..."))
    );

    let validated = &chunks[1];
    assert_eq!(
        validated.album_art.as_deref(),
        Some("https://storage.soundverse.ai/...")
    );
    assert_eq!(validated.song_name.as_deref(), Some("Song Title"));

    assert_eq!(chunks[4].progress, Some(2), "running reports progress");

    let ready: Vec<&types::StreamChunk> = chunks
        .iter()
        .filter(|chunk| chunk.streaming_ready == Some(true))
        .collect();
    assert_eq!(ready.len(), 1, "one streaming-ready chunk");
    assert_eq!(ready[0].chunk_index, Some(8));
    assert_eq!(
        ready[0].stream_url.as_deref(),
        Some("https://api.soundverse.ai/...")
    );
    assert_eq!(ready[0].version, Some(1));

    let completed = &chunks[6];
    assert_eq!(
        completed.audio_url.as_deref(),
        Some("https://storage.soundverse.ai/...")
    );
    assert_eq!(completed.progress, Some(100));
    assert_eq!(completed.stream_url, None);

    assert_eq!(chunks[7].version, Some(1), "uploading names its version");

    let last = &chunks[8];
    assert_eq!(last.version, Some(1));
    assert!(last.lyrics_sections.is_empty());
    assert_eq!(last.audio_url, None);
}

#[tokio::test]
async fn generate_song_streams_every_documented_v6_stage_with_bearer_auth() {
    let spec = spec();
    let (request, typed) = generate_request(&spec, GENERATE);
    let (stream_body, events) = sse_body(&spec, GENERATE);
    let server = MockServer::start_async().await;
    let mock = server.generate_song(|when, then| {
        when.into_inner()
            .header("authorization", bearer())
            .header("content-type", JSON)
            .json_body(request.clone());
        then.into_inner()
            .status(200)
            .header("content-type", EVENT_STREAM)
            .body(stream_body.as_bytes());
    });

    let response = client_for(&server)
        .generate_song()
        .body(typed)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], EVENT_STREAM);
    let bytes = collect(response).await;
    mock.assert_async().await;

    assert_eq!(
        bytes,
        stream_body.as_bytes(),
        "the stream arrives byte for byte"
    );
    let decoded = decode_events(std::str::from_utf8(&bytes).expect("UTF-8 events"));
    assert_eq!(decoded.len(), events);
    assert_no_field_is_lost(&decoded);
    let chunks: Vec<types::StreamChunk> = decoded.into_iter().map(|(_, chunk)| chunk).collect();
    assert_v6_stages(&chunks);
}

#[tokio::test]
async fn generate_song_stream_decodes_a_stage_the_spec_does_not_list() {
    let spec = spec();
    let (request, typed) = generate_request(&spec, GENERATE);
    let (documented, events) = sse_body(&spec, GENERATE);
    let unknown = json!({"status": "brand_new_stage", "isComplete": false, "chunkIndex": 13});
    let stream_body = format!("{documented}data: {unknown}\n\n");
    let server = MockServer::start_async().await;
    let mock = server.generate_song(|when, then| {
        when.into_inner()
            .header("authorization", bearer())
            .json_body(request.clone());
        then.into_inner()
            .status(200)
            .header("content-type", EVENT_STREAM)
            .body(stream_body.as_bytes());
    });

    let response = client_for(&server)
        .generate_song()
        .body(typed)
        .send()
        .await
        .expect("the stream opens");
    let bytes = collect(response).await;
    mock.assert_async().await;

    let decoded = decode_events(std::str::from_utf8(&bytes).expect("UTF-8 events"));
    assert_eq!(decoded.len(), events + 1);
    let (_, last) = decoded.last().expect("the extra event");
    assert_eq!(last.status.as_deref(), Some("brand_new_stage"));
    assert_eq!(last.chunk_index, Some(13));
    assert_eq!(last.message_id, None);
}

#[tokio::test]
async fn generate_song_sync_sends_the_page_example_and_decodes_midnight_drizzle() {
    let spec = spec();
    let (request, typed) = generate_request(&spec, GENERATE_SYNC);
    let sample = spec
        .response_example(GENERATE_SYNC, "post", "200", JSON, "midnight_drizzle")
        .expect("midnight_drizzle sample");
    let server = MockServer::start_async().await;
    let mock = server.generate_song_sync(|when, then| {
        when.into_inner()
            .header("authorization", bearer())
            .header("content-type", JSON)
            .header("accept", JSON)
            .json_body(request.clone());
        then.into_inner()
            .status(200)
            .header("content-type", JSON)
            .json_body(sample.clone());
    });

    let song = client_for(&server)
        .generate_song_sync()
        .body(typed)
        .send()
        .await
        .expect("the sync generation answers")
        .into_inner();
    mock.assert_async().await;

    assert_eq!(song.message_id.as_deref(), Some("..."));
    assert_eq!(
        song.album_art.as_deref(),
        Some(
            "https://storage.soundverse.ai/x-one/.../userData/album-arts/album_art_1766599034.webp"
        )
    );
    assert_eq!(song.song_name.as_deref(), Some("Midnight Drizzle Beats"));
    assert_eq!(song.ai_reply, None);
    let urls: Vec<Option<&str>> = song
        .audio_data
        .iter()
        .map(|audio| audio.audio_url.as_deref())
        .collect();
    assert_eq!(
        urls,
        [
            Some(
                "https://storage.soundverse.ai/x-one/.../userData/generated-audio/midnight_drizzle_beats_v1.mp3"
            ),
            Some(
                "https://storage.soundverse.ai/x-one/.../userData/generated-audio/midnight_drizzle_beats_v2.mp3"
            ),
        ]
    );
    for audio in &song.audio_data {
        assert_eq!(audio.song_name.as_deref(), Some("Midnight Drizzle Beats"));
        assert_eq!(audio.licenses, None);
    }
    assert_eq!(
        serde_json::to_value(&song).expect("serializes"),
        sample,
        "SyncSongResponse keeps every field of the sample"
    );
}

#[tokio::test]
async fn extend_song_page_example_without_extend_at_is_refused_before_sending() {
    let spec = spec();
    let server = MockServer::start_async().await;
    let anything = server
        .mock_async(|when, then| {
            when.any_request();
            then.status(200);
        })
        .await;
    let client = client_for(&server);

    for path in [EXTEND, EXTEND_SYNC] {
        let verbatim = spec
            .request_example(path, "post", JSON, "extend_example")
            .expect("extend_example request example");
        assert_eq!(
            verbatim.get("extend_at"),
            None,
            "{path}: the page's example omits extend_at"
        );
        let refusal = serde_json::from_value::<types::ExtendSongRequest>(verbatim.clone())
            .expect_err("ExtendSongRequest refuses a body without extend_at");
        assert!(
            refusal.to_string().contains("extend_at"),
            "{path}: the refusal names extend_at: {refusal}"
        );
    }

    // The builder refuses the same fields: nothing reaches the wire.
    let verbatim = spec
        .request_example(EXTEND, "post", JSON, "extend_example")
        .expect("extend_example request example");
    let audio_url = verbatim["audio_url"].as_str().expect("audio_url");
    let lyrics = verbatim["lyrics"].as_str().expect("lyrics");
    let streamed = client
        .extend_song()
        .body_map(|body| body.audio_url(audio_url).lyrics(lyrics))
        .send()
        .await
        .map(|response| response.status())
        .expect_err("extend_song refuses a body without extend_at");
    let synced = client
        .extend_song_sync()
        .body_map(|body| body.audio_url(audio_url).lyrics(lyrics))
        .send()
        .await
        .expect_err("extend_song_sync refuses a body without extend_at");
    for (operation, error) in [("extend_song", streamed), ("extend_song_sync", synced)] {
        match error {
            Error::InvalidRequest(message) => assert!(
                message.contains("extend_at"),
                "{operation}: the refusal names extend_at: {message}"
            ),
            other => panic!("{operation}: expected Error::InvalidRequest, got {other:?}"),
        }
    }
    assert_eq!(anything.calls_async().await, 0, "no request was sent");
}

#[tokio::test]
async fn extend_song_streams_v6_stages_for_the_example_with_position() {
    let spec = spec();
    let (request, typed) = extend_request(&spec, EXTEND);
    assert_eq!(typed.extend_at, 30000);
    let (stream_body, events) = sse_body(&spec, EXTEND);
    let server = MockServer::start_async().await;
    let mock = server.extend_song(|when, then| {
        when.into_inner()
            .header("authorization", bearer())
            .header("content-type", JSON)
            .json_body(request.clone());
        then.into_inner()
            .status(200)
            .header("content-type", EVENT_STREAM)
            .body(stream_body.as_bytes());
    });

    let response = client_for(&server)
        .extend_song()
        .body(typed)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], EVENT_STREAM);
    let bytes = collect(response).await;
    mock.assert_async().await;

    assert_eq!(
        bytes,
        stream_body.as_bytes(),
        "the stream arrives byte for byte"
    );
    let decoded = decode_events(std::str::from_utf8(&bytes).expect("UTF-8 events"));
    assert_eq!(decoded.len(), events);
    assert_no_field_is_lost(&decoded);
    let chunks: Vec<types::StreamChunk> = decoded.into_iter().map(|(_, chunk)| chunk).collect();
    assert_v6_stages(&chunks);
}

#[tokio::test]
async fn extend_song_sync_sends_the_example_with_position_and_decodes_extended_song() {
    let spec = spec();
    let (request, typed) = extend_request(&spec, EXTEND_SYNC);
    let sample = spec
        .response_example(EXTEND_SYNC, "post", "200", JSON, "extended_song")
        .expect("extended_song sample");
    let server = MockServer::start_async().await;
    let mock = server.extend_song_sync(|when, then| {
        when.into_inner()
            .header("authorization", bearer())
            .header("content-type", JSON)
            .header("accept", JSON)
            .json_body(request.clone());
        then.into_inner()
            .status(200)
            .header("content-type", JSON)
            .json_body(sample.clone());
    });

    let song = client_for(&server)
        .extend_song_sync()
        .body(typed)
        .send()
        .await
        .expect("the sync extension answers")
        .into_inner();
    mock.assert_async().await;

    assert_eq!(song.message_id.as_deref(), Some("..."));
    assert_eq!(
        song.album_art.as_deref(),
        Some("https://storage.soundverse.ai/soundverse-album-art/...album_art.png")
    );
    assert_eq!(
        song.ai_reply.as_deref(),
        Some("Your song has been extended successfully.")
    );
    assert_eq!(song.song_name, None);
    let urls: Vec<Option<&str>> = song
        .audio_data
        .iter()
        .map(|audio| audio.audio_url.as_deref())
        .collect();
    assert_eq!(
        urls,
        [
            Some("https://storage.soundverse.ai/x-one/.../.../extended_song_v1.mp3"),
            Some("https://storage.soundverse.ai/x-one/.../.../extended_song_v2.mp3"),
        ]
    );
    for audio in &song.audio_data {
        assert_eq!(audio.song_name.as_deref(), Some("Extended Song"));
        let licenses = audio.licenses.as_ref().expect("each version is licensed");
        assert_eq!(licenses.licenses.as_deref(), Some("Royalty Free"));
    }
    assert_eq!(
        serde_json::to_value(&song).expect("serializes"),
        sample,
        "SyncSongResponse keeps every field of the sample"
    );
}

#[tokio::test]
async fn remix_song_streams_v7_stages_starting_with_job_created() {
    let spec = spec();
    let (request, typed) = remix_request(&spec);
    let (stream_body, events) = sse_body(&spec, REMIX);
    let server = MockServer::start_async().await;
    let mock = server.remix_song(|when, then| {
        when.into_inner()
            .header("authorization", bearer())
            .header("content-type", JSON)
            .json_body(request.clone());
        then.into_inner()
            .status(200)
            .header("content-type", EVENT_STREAM)
            .body(stream_body.as_bytes());
    });

    let response = client_for(&server)
        .remix_song()
        .body(typed)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], EVENT_STREAM);
    let bytes = collect(response).await;
    mock.assert_async().await;

    assert_eq!(
        bytes,
        stream_body.as_bytes(),
        "the stream arrives byte for byte"
    );
    let decoded = decode_events(std::str::from_utf8(&bytes).expect("UTF-8 events"));
    assert_eq!(decoded.len(), events);
    assert_no_field_is_lost(&decoded);
    let chunks: Vec<types::StreamChunk> = decoded.into_iter().map(|(_, chunk)| chunk).collect();

    assert_eq!(
        statuses(&chunks),
        [
            "job_created",
            "validating",
            "queued",
            "starting",
            "uploading",
            "streaming",
            "streaming",
            "completed",
        ]
    );
    assert_eq!(chunk_indices(&chunks), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(chunks[0].job_id.as_deref(), Some("..."));
    assert!(chunks[1..].iter().all(|chunk| chunk.job_id.is_none()));
    assert_eq!(chunks[0].message_id, None);
    assert_eq!(chunks[1].message_id, None);
    assert!(
        chunks[2..]
            .iter()
            .all(|chunk| chunk.message_id.as_deref() == Some("...")),
        "the message id arrives with the queued stage"
    );
    let progress: Vec<Option<i64>> = chunks.iter().map(|chunk| chunk.progress).collect();
    assert_eq!(
        progress,
        [None, None, None, None, None, Some(45), Some(90), Some(100)]
    );
    let completed = &chunks[7];
    assert_eq!(
        completed.audio_url.as_deref(),
        Some("https://storage.soundverse.ai/...")
    );
    assert_eq!(completed.operation.as_deref(), Some("remix_song"));
    assert!(chunks.iter().all(|chunk| chunk.is_complete == Some(false)));
}

#[tokio::test]
async fn get_generation_status_requests_the_message_id_path_and_decodes_an_open_object() {
    let spec = spec();
    // The spec publishes no status sample (the shape is unpublished); any JSON
    // object must decode, so the spec's own StreamChunk example stands in.
    let document = spec
        .schema_example("StreamChunk")
        .expect("StreamChunk schema example");
    let typed_document: types::GenerationStatus =
        serde_json::from_value(document.clone()).expect("an object is a GenerationStatus");
    let server = MockServer::start_async().await;
    let mock = server.get_generation_status(|when, then| {
        when.message_id(MESSAGE_ID)
            .into_inner()
            .path(format!("/status/generations/{MESSAGE_ID}"))
            .header("authorization", bearer())
            .header("accept", JSON)
            .header_missing("content-type");
        then.ok(&typed_document);
    });

    let status = client_for(&server)
        .get_generation_status()
        .message_id(MESSAGE_ID)
        .send()
        .await
        .expect("the status answers")
        .into_inner();
    mock.assert_async().await;

    assert_eq!(Value::Object(status.0.clone()), document);
    assert_eq!(status.get("status"), Some(&json!("streaming")));
    assert_eq!(
        status.get("stream_url"),
        Some(&json!("https://api.soundverse.ai/..."))
    );
    assert_eq!(status.get("chunkIndex"), Some(&json!(8)));
}

#[tokio::test]
async fn get_generation_status_percent_encodes_the_message_id() {
    let spec = spec();
    let document = spec
        .schema_example("StreamChunk")
        .expect("StreamChunk schema example");
    let server = MockServer::start_async().await;
    let mock = server.get_generation_status(|when, then| {
        when.into_inner()
            .path("/status/generations/msg%201%2F2%3Fx")
            .header("authorization", bearer());
        then.into_inner()
            .status(200)
            .header("content-type", JSON)
            .json_body(document.clone());
    });

    let status = client_for(&server)
        .get_generation_status()
        .message_id("msg 1/2?x")
        .send()
        .await
        .expect("the status answers")
        .into_inner();
    mock.assert_async().await;
    assert_eq!(status.get("status"), Some(&json!("streaming")));
}

// ---- errors ---------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Operation {
    GenerateSong,
    GenerateSongSync,
    ExtendSong,
    ExtendSongSync,
    RemixSong,
    GetGenerationStatus,
}

impl Operation {
    /// `(method, path)` as the spec writes them.
    fn route(self) -> (&'static str, &'static str) {
        match self {
            Self::GenerateSong => ("post", GENERATE),
            Self::GenerateSongSync => ("post", GENERATE_SYNC),
            Self::ExtendSong => ("post", EXTEND),
            Self::ExtendSongSync => ("post", EXTEND_SYNC),
            Self::RemixSong => ("post", REMIX),
            Self::GetGenerationStatus => ("get", STATUS),
        }
    }

    /// Sends the operation's spec request example; the status of a success.
    async fn send(
        self,
        spec: &Spec,
        client: &Client,
    ) -> Result<reqwest::StatusCode, Error<types::ErrorBody>> {
        let (_, path) = self.route();
        match self {
            Self::GenerateSong => client
                .generate_song()
                .body(generate_request(spec, path).1)
                .send()
                .await
                .map(|response| response.status()),
            Self::GenerateSongSync => client
                .generate_song_sync()
                .body(generate_request(spec, path).1)
                .send()
                .await
                .map(|response| response.status()),
            Self::ExtendSong => client
                .extend_song()
                .body(extend_request(spec, path).1)
                .send()
                .await
                .map(|response| response.status()),
            Self::ExtendSongSync => client
                .extend_song_sync()
                .body(extend_request(spec, path).1)
                .send()
                .await
                .map(|response| response.status()),
            Self::RemixSong => client
                .remix_song()
                .body(remix_request(spec).1)
                .send()
                .await
                .map(|response| response.status()),
            Self::GetGenerationStatus => client
                .get_generation_status()
                .message_id(MESSAGE_ID)
                .send()
                .await
                .map(|response| response.status()),
        }
    }

    /// A mock of this operation (method and path from the typed helper) that
    /// answers `status` with `body` as JSON.
    fn mock_error<'a>(self, server: &'a MockServer, status: u16, body: &Value) -> Mock<'a> {
        let answer = |when: httpmock::When, then: httpmock::Then| {
            when.header("authorization", bearer());
            then.status(status)
                .header("content-type", JSON)
                .json_body(body.clone());
        };
        match self {
            Self::GenerateSong => {
                server.generate_song(|when, then| answer(when.into_inner(), then.into_inner()))
            }
            Self::GenerateSongSync => {
                server.generate_song_sync(|when, then| answer(when.into_inner(), then.into_inner()))
            }
            Self::ExtendSong => {
                server.extend_song(|when, then| answer(when.into_inner(), then.into_inner()))
            }
            Self::ExtendSongSync => {
                server.extend_song_sync(|when, then| answer(when.into_inner(), then.into_inner()))
            }
            Self::RemixSong => {
                server.remix_song(|when, then| answer(when.into_inner(), then.into_inner()))
            }
            Self::GetGenerationStatus => server.get_generation_status(|when, then| {
                answer(when.message_id(MESSAGE_ID).into_inner(), then.into_inner())
            }),
        }
    }
}

/// The `ErrorBody` the example should decode into, read field by field from
/// its JSON (not through serde), after checking the body has no field that
/// `ErrorBody` would drop.
fn expected_error_body(example: &ErrorExample) -> types::ErrorBody {
    let name = &example.name;
    let body = example
        .body
        .as_object()
        .unwrap_or_else(|| panic!("`{name}`: an error body is an object"));
    for key in body.keys() {
        assert!(
            ["success", "message", "error", "detail"].contains(&key.as_str()),
            "`{name}`: field `{key}` has no place in ErrorBody"
        );
    }
    let text = |key: &str| {
        body.get(key).map(|value| {
            value
                .as_str()
                .unwrap_or_else(|| panic!("`{name}`: {key} is a string"))
                .to_owned()
        })
    };
    let expected = types::ErrorBody {
        success: body.get("success").map(|value| {
            value
                .as_bool()
                .unwrap_or_else(|| panic!("`{name}`: success is a boolean"))
        }),
        message: text("message"),
        error: text("error"),
        detail: text("detail").map(types::ErrorDetail::String),
    };
    assert_ne!(
        expected,
        types::ErrorBody::default(),
        "`{name}`: the example says something"
    );
    expected
}

/// Serves every documented error body of `operation` in turn and checks the
/// client returns it as `Error::ErrorResponse` with the typed `ErrorBody`.
async fn assert_every_documented_error_is_typed(operation: Operation) {
    let spec = spec();
    let (method, path) = operation.route();
    let examples = spec
        .error_examples(path, method)
        .expect("documented error bodies");
    let server = MockServer::start_async().await;
    let client = client_for(&server);
    for example in &examples {
        let name = &example.name;
        let status = spec
            .error_status(path, method, example)
            .expect("error status from the example summary");
        let expected = expected_error_body(example);
        let mock = operation.mock_error(&server, status, &example.body);

        let error = operation.send(&spec, &client).await.expect_err(&format!(
            "{operation:?} `{name}`: a {status} answer is an error"
        ));
        let Error::ErrorResponse(response) = error else {
            panic!("{operation:?} `{name}`: expected Error::ErrorResponse, got {error:?}");
        };
        assert_eq!(
            response.status().as_u16(),
            status,
            "{operation:?} `{name}`: status"
        );
        assert_eq!(
            response.into_inner(),
            expected,
            "{operation:?} `{name}`: typed ErrorBody"
        );
        assert_eq!(
            mock.calls_async().await,
            1,
            "{operation:?} `{name}`: one request"
        );
        mock.delete_async().await;
    }
}

#[tokio::test]
async fn generate_song_stream_returns_every_documented_error_as_a_typed_error_body() {
    assert_every_documented_error_is_typed(Operation::GenerateSong).await;
}

#[tokio::test]
async fn generate_song_sync_returns_every_documented_error_as_a_typed_error_body() {
    assert_every_documented_error_is_typed(Operation::GenerateSongSync).await;
}

#[tokio::test]
async fn extend_song_stream_returns_every_documented_error_as_a_typed_error_body() {
    assert_every_documented_error_is_typed(Operation::ExtendSong).await;
}

#[tokio::test]
async fn extend_song_sync_returns_every_documented_error_as_a_typed_error_body() {
    assert_every_documented_error_is_typed(Operation::ExtendSongSync).await;
}

#[tokio::test]
async fn remix_song_stream_returns_every_documented_error_as_a_typed_error_body() {
    assert_every_documented_error_is_typed(Operation::RemixSong).await;
}

#[tokio::test]
async fn get_generation_status_returns_every_documented_error_as_a_typed_error_body() {
    assert_every_documented_error_is_typed(Operation::GetGenerationStatus).await;
}
