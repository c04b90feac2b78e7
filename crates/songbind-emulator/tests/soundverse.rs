//! Integration tests of the Soundverse emulation, over loopback, with plain
//! reqwest and with the generated `songbind-soundverse` client.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures::StreamExt;
use serde_json::{Value, json};
use songbind_emulator::{Emulator, FAULT_HEADER, Provider};
use songbind_soundverse::types::{
    ErrorBody, ErrorDetail, ExtendSongRequest, GenerateSongRequest, RemixSongRequest,
    RemixSongRequestPrompt, StreamChunk,
};
use songbind_soundverse::{ByteStream, Client, Error, ResponseValue};

const KEY: &str = "sk_test_key";
/// Upper bound on any single wait (instant pacing: everything takes ms).
const LIMIT: Duration = Duration::from_secs(20);

const GENERATE_PROMPT: &str = "A cheerful pop song about friendship and adventure.";
const GENERATE_LYRICS: &str = "Through every road we roam, together we are home";
const SOURCE_URL: &str = "https://storage.soundverse.ai/library/original_song.mp3";
const INVALID_PROMPT: &str = "Invalid or empty prompt provided";

/// The v6 stages in the order the emulator sends them.
const V6_STAGES: [&str; 20] = [
    "initializing",
    "validated",
    "streaming",
    "processing",
    "running",
    "running",
    "running",
    "running",
    "streaming",
    "streaming",
    "running",
    "running",
    "running",
    "running",
    "completed",
    "uploading",
    "completed",
    "completed",
    "uploading",
    "completed",
];

// ---- helpers -------------------------------------------------------------------

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

fn client(emulator: &Emulator) -> Client {
    Client::with_api_key(&emulator.base_url(Provider::Soundverse), KEY).expect("client")
}

fn url(emulator: &Emulator, path: &str) -> String {
    format!("{}{path}", emulator.base_url(Provider::Soundverse))
}

async fn post(emulator: &Emulator, path: &str, body: &Value) -> Result<reqwest::Response> {
    post_with(emulator, path, body, KEY, None).await
}

async fn post_with(
    emulator: &Emulator,
    path: &str,
    body: &Value,
    key: &str,
    fault: Option<&str>,
) -> Result<reqwest::Response> {
    let mut request = http().post(url(emulator, path)).bearer_auth(key).json(body);
    if let Some(fault) = fault {
        request = request.header(FAULT_HEADER, fault);
    }
    Ok(tokio::time::timeout(LIMIT, request.send()).await??)
}

async fn get_status(emulator: &Emulator, message_id: &str) -> Result<reqwest::Response> {
    let request = http()
        .get(url(emulator, &format!("/status/generations/{message_id}")))
        .bearer_auth(KEY);
    Ok(tokio::time::timeout(LIMIT, request.send()).await??)
}

fn generate_body() -> Value {
    json!({ "prompt": GENERATE_PROMPT, "lyrics": GENERATE_LYRICS })
}

fn extend_body() -> Value {
    json!({ "audio_url": SOURCE_URL, "lyrics": "These are the song lyrics to guide the extension", "extend_at": 30000 })
}

fn remix_body() -> Value {
    json!({ "song_reference_url": SOURCE_URL, "prompt": "jazz remix with horns" })
}

/// One item of an SSE body.
#[derive(Clone, Debug, PartialEq)]
enum Item {
    Event(Value),
    Comment(String),
}

/// Parses the complete `\n\n`-terminated blocks of an SSE body.
fn parse_sse(body: &str) -> Result<Vec<Item>> {
    let complete = body.rfind("\n\n").map_or("", |end| &body[..end]);
    let mut items = Vec::new();
    for block in complete.split("\n\n") {
        for line in block.lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                items.push(Item::Event(
                    serde_json::from_str(data).with_context(|| format!("chunk {data}"))?,
                ));
            } else if let Some(comment) = line.strip_prefix(':') {
                items.push(Item::Comment(comment.trim().to_owned()));
            } else {
                bail!("unexpected SSE line {line:?}");
            }
        }
    }
    Ok(items)
}

fn events(items: &[Item]) -> Vec<Value> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Event(event) => Some(event.clone()),
            Item::Comment(_) => None,
        })
        .collect()
}

fn statuses(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["status"].as_str().unwrap_or("<none>").to_owned())
        .collect()
}

fn keys(event: &Value) -> BTreeSet<String> {
    event
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default()
}

fn key_set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// Reads a whole body (with a time limit).
async fn read_body(response: reqwest::Response) -> Result<String> {
    Ok(tokio::time::timeout(LIMIT, response.text()).await??)
}

/// Reads a generated-client byte stream to its end.
async fn read_byte_stream(stream: ByteStream) -> Result<String> {
    let mut inner = stream.into_inner();
    let mut bytes = Vec::new();
    while let Some(piece) = tokio::time::timeout(LIMIT, inner.next()).await? {
        bytes.extend_from_slice(&piece?);
    }
    Ok(String::from_utf8(bytes)?)
}

/// Every `data:` chunk of a body, decoded as the generated `StreamChunk`.
fn stream_chunks(body: &str) -> Result<Vec<StreamChunk>> {
    events(&parse_sse(body)?)
        .into_iter()
        .map(|event| Ok(serde_json::from_value(event)?))
        .collect()
}

/// The error status and body of a generated-client call that failed with a
/// documented error response.
fn error_response<T>(result: Result<T, Error<ErrorBody>>) -> Result<ResponseValue<ErrorBody>> {
    match result {
        Err(Error::ErrorResponse(response)) => Ok(response),
        Err(other) => bail!("expected an error response, got {other}"),
        Ok(_) => bail!("expected an error response, got a success"),
    }
}

fn detail_text(body: &ErrorBody) -> Option<&str> {
    match &body.detail {
        Some(ErrorDetail::String(text)) => Some(text),
        _ => None,
    }
}

/// What a v6 stream named.
#[derive(Debug)]
struct V6Summary {
    message_id: String,
    song_name: String,
    stream_urls: Vec<String>,
    audio_urls: Vec<String>,
}

/// Asserts the full v6 stream: stages in order, exact fields per stage,
/// chunk numbering, progress holding at 90 with keepalives, both versions.
fn assert_v6_stream(emulator: &Emulator, items: &[Item], operation: &str) -> Result<V6Summary> {
    let events = events(items);
    ensure!(
        statuses(&events) == V6_STAGES,
        "stages {:?}",
        statuses(&events)
    );
    let named = [
        "message_id",
        "isComplete",
        "status",
        "album_art",
        "song_name",
        "chunkIndex",
    ];
    let message_id = events[1]["message_id"]
        .as_str()
        .context("message_id")?
        .to_owned();
    ensure!(
        message_id.starts_with("msg_") && message_id.len() == 36,
        "{message_id}"
    );
    let root = emulator.root_url();
    let mut stream_urls = Vec::new();
    let mut audio_urls = Vec::new();
    for (index, event) in events.iter().enumerate() {
        ensure!(event["chunkIndex"] == json!(index), "chunkIndex of {event}");
        let last = index == events.len() - 1;
        ensure!(event["isComplete"] == json!(last), "isComplete of {event}");
        let expected: Vec<&str> = match index {
            0 => vec!["isComplete", "status", "chunkIndex"],
            1..=3 => named.to_vec(),
            4..=7 | 10..=13 => [&named[..], &["progress"]].concat(),
            8 | 9 => [&named[..], &["stream_url", "version", "streaming_ready"]].concat(),
            14 | 17 => [
                &named[..],
                &["progress", "audio_url", "version", "operation"],
            ]
            .concat(),
            15 | 18 => vec![
                "message_id",
                "isComplete",
                "status",
                "version",
                "chunkIndex",
            ],
            _ => vec![
                "message_id",
                "isComplete",
                "status",
                "version",
                "lyrics_sections",
                "chunkIndex",
                "operation",
            ],
        };
        ensure!(
            keys(event) == key_set(&expected),
            "fields of chunk {index}: {event}"
        );
        if index > 0 {
            ensure!(
                event["message_id"] == json!(message_id),
                "message_id of {event}"
            );
        }
        if let Some(art) = event.get("album_art") {
            let art = art.as_str().context("album_art")?;
            ensure!(art.starts_with(root) && art.ends_with(".png"), "{art}");
        }
        if event.get("operation").is_some() {
            ensure!(
                event["operation"] == json!(operation),
                "operation of {event}"
            );
        }
        if let Some(url) = event.get("stream_url") {
            ensure!(event["streaming_ready"] == json!(true), "{event}");
            ensure!(event["version"] == json!(stream_urls.len() + 1), "{event}");
            stream_urls.push(url.as_str().context("stream_url")?.to_owned());
        }
        if let Some(url) = event.get("audio_url") {
            ensure!(event["version"] == json!(audio_urls.len() + 1), "{event}");
            ensure!(event["progress"] == json!(100), "{event}");
            audio_urls.push(url.as_str().context("audio_url")?.to_owned());
        }
        if index == 16 || index == 19 {
            ensure!(
                event["version"] == json!(if index == 16 { 1 } else { 2 }),
                "{event}"
            );
            let sections = event["lyrics_sections"]
                .as_array()
                .context("lyrics_sections")?;
            ensure!(!sections.is_empty(), "{event}");
        }
    }
    ensure!(events[15]["version"] == json!(1) && events[18]["version"] == json!(2));
    for urls in [&stream_urls, &audio_urls] {
        ensure!(urls.len() == 2 && urls[0] != urls[1], "{urls:?}");
        ensure!(
            urls.iter()
                .all(|u| u.starts_with(root) && u.ends_with(".wav")),
            "{urls:?}"
        );
    }
    assert_progress_holds_at_90(items)?;
    Ok(V6Summary {
        message_id,
        song_name: events[1]["song_name"]
            .as_str()
            .context("song_name")?
            .to_owned(),
        stream_urls,
        audio_urls,
    })
}

/// Progress never goes down, reaches 90, and holds there (keepalive comments,
/// no event) until the first `completed` chunk, which has 100.
fn assert_progress_holds_at_90(items: &[Item]) -> Result<()> {
    let progress: Vec<i64> = events(items)
        .iter()
        .filter_map(|event| event["progress"].as_i64())
        .collect();
    ensure!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "not monotonic: {progress:?}"
    );
    let at_90 = items
        .iter()
        .position(|item| matches!(item, Item::Event(e) if e["progress"] == json!(90)))
        .context("no event at 90")?;
    let completed = items
        .iter()
        .position(|item| matches!(item, Item::Event(e) if e["status"] == json!("completed")))
        .context("no completed event")?;
    ensure!(at_90 < completed);
    let between = &items[at_90 + 1..completed];
    ensure!(!between.is_empty(), "no hold between 90 and completed");
    ensure!(
        between
            .iter()
            .all(|item| *item == Item::Comment("keepalive".into())),
        "between 90 and completed: {between:?}"
    );
    let Item::Event(first_completed) = &items[completed] else {
        unreachable!()
    };
    ensure!(first_completed["progress"] == json!(100));
    Ok(())
}

/// Reads from a live response until at least `count` events have arrived.
async fn read_events(
    response: &mut reqwest::Response,
    buffer: &mut Vec<u8>,
    count: usize,
) -> Result<Vec<Value>> {
    loop {
        let complete = buffer
            .windows(2)
            .rposition(|w| w == b"\n\n")
            .map_or(0, |end| end + 2);
        let parsed = events(&parse_sse(std::str::from_utf8(&buffer[..complete])?)?);
        if parsed.len() >= count {
            return Ok(parsed);
        }
        let piece = tokio::time::timeout(LIMIT, response.chunk())
            .await??
            .context("the stream ended early")?;
        buffer.extend_from_slice(&piece);
    }
}

/// Polls the status endpoint (as a client would) until `done` holds.
async fn poll_status(
    emulator: &Emulator,
    message_id: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let poll = async {
        loop {
            let status: Value = get_status(emulator, message_id).await?.json().await?;
            if done(&status) {
                return Ok::<_, anyhow::Error>(status);
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(LIMIT, poll).await?
}

// ---- streams -----------------------------------------------------------------

#[tokio::test]
async fn generate_song_streams_every_v6_stage_in_order_and_holds_at_90_with_keepalives()
-> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let response = post(&emulator, "/v6/generate/song", &generate_body()).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = read_body(response).await?;
    let items = parse_sse(&body)?;
    let summary = assert_v6_stream(&emulator, &items, "generate_song")?;
    assert_eq!(summary.song_name, "Cheerful Pop Friendship");
    let keepalives = items
        .iter()
        .filter(|i| matches!(i, Item::Comment(_)))
        .count();
    assert_eq!(keepalives, 5, "one keepalive every 5 s of a 25 s hold");

    let progress: Vec<i64> = events(&items)
        .iter()
        .filter_map(|e| e["progress"].as_i64())
        .collect();
    assert_eq!(progress, [2, 14, 27, 39, 52, 66, 78, 90, 100, 100]);
    let first = &events(&items)[0];
    assert_eq!(
        *first,
        json!({ "isComplete": false, "status": "initializing", "chunkIndex": 0 })
    );
    let lyrics = &events(&items)[16]["lyrics_sections"][0];
    assert_eq!(lyrics["lines"], json!([GENERATE_LYRICS]));

    let received = emulator.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].path, "/v6/generate/song");
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(received[0].json(), Some(generate_body()));
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
    Ok(())
}

#[tokio::test]
async fn generate_song_via_generated_client_decodes_into_stream_chunks() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let response = client(&emulator)
        .generate_song()
        .body(
            GenerateSongRequest::builder()
                .prompt(GENERATE_PROMPT)
                .lyrics(GENERATE_LYRICS.to_owned()),
        )
        .send()
        .await?;
    let body = read_byte_stream(response.into_inner()).await?;
    let chunks = stream_chunks(&body)?;
    let stages: Vec<&str> = chunks
        .iter()
        .map(|c| c.status.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(stages, V6_STAGES);
    assert_v6_stream(&emulator, &parse_sse(&body)?, "generate_song")?;

    let ready: Vec<(i64, bool)> = chunks
        .iter()
        .filter(|c| c.stream_url.is_some())
        .map(|c| (c.version.unwrap_or(0), c.streaming_ready == Some(true)))
        .collect();
    assert_eq!(ready, [(1, true), (2, true)]);
    let finished: Vec<i64> = chunks
        .iter()
        .filter(|c| c.audio_url.is_some())
        .map(|c| c.version.unwrap_or(0))
        .collect();
    assert_eq!(finished, [1, 2]);
    let last = chunks.last().context("no chunks")?;
    assert_eq!(last.is_complete, Some(true));
    assert_eq!(last.lyrics_sections.len(), 1);
    assert_eq!(last.operation.as_deref(), Some("generate_song"));

    let received = emulator.received();
    assert_eq!(received[0].path, "/v6/generate/song");
    assert_eq!(received[0].json(), Some(generate_body()));
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
    Ok(())
}

#[tokio::test]
async fn extend_song_streams_the_v6_stages_with_operation_extend_song() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let response = post(&emulator, "/v6/extend/song", &extend_body()).await?;
    assert_eq!(response.status(), 200);
    let items = parse_sse(&read_body(response).await?)?;
    let plain = assert_v6_stream(&emulator, &items, "extend_song")?;
    assert_eq!(plain.song_name, "Extended Song");

    let response = client(&emulator)
        .extend_song()
        .body(
            ExtendSongRequest::builder()
                .audio_url(SOURCE_URL)
                .lyrics("New verse\nAnother line")
                .extend_at(8000)
                .prompt("keep the groove".to_owned()),
        )
        .send()
        .await?;
    let body = read_byte_stream(response.into_inner()).await?;
    let typed = assert_v6_stream(&emulator, &parse_sse(&body)?, "extend_song")?;
    assert_ne!(typed.message_id, plain.message_id);
    let chunks = stream_chunks(&body)?;
    let final_chunk = chunks.last().context("no chunks")?;
    assert_eq!(
        final_chunk.lyrics_sections[0]["lines"],
        json!(["New verse", "Another line"])
    );

    let received = emulator.received();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|r| r.path == "/v6/extend/song"));
    assert_eq!(received[1].json().context("json")?["extend_at"], 8000);
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 2);
    Ok(())
}

/// Asserts the full v7 stream; returns the completed chunks.
fn assert_v7_stream(emulator: &Emulator, items: &[Item]) -> Result<Vec<Value>> {
    let events = events(items);
    let mut expected = vec![
        "job_created",
        "validating",
        "queued",
        "starting",
        "uploading",
    ];
    expected.extend(["streaming"; 10]);
    expected.extend(["completed", "completed"]);
    ensure!(
        statuses(&events) == expected,
        "stages {:?}",
        statuses(&events)
    );
    for (index, event) in events.iter().enumerate() {
        ensure!(event["chunkIndex"] == json!(index), "{event}");
        ensure!(
            event["isComplete"] == json!(index == events.len() - 1),
            "{event}"
        );
    }
    let job_id = events[0]["job_id"].as_str().context("job_id")?;
    ensure!(job_id.starts_with("job_"), "{job_id}");
    ensure!(keys(&events[0]) == key_set(&["isComplete", "status", "job_id", "chunkIndex"]));
    ensure!(keys(&events[1]) == key_set(&["isComplete", "status", "chunkIndex"]));
    let message_id = events[2]["message_id"].as_str().context("message_id")?;
    ensure!(message_id.starts_with("msg_") && message_id != job_id);
    ensure!(
        events[2..]
            .iter()
            .all(|e| e["message_id"] == json!(message_id))
    );
    let progress: Vec<i64> = events[5..15]
        .iter()
        .filter_map(|e| e["progress"].as_i64())
        .collect();
    ensure!(
        progress == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90],
        "{progress:?}"
    );
    assert_progress_holds_at_90(items)?;
    let completed = events[15..].to_vec();
    for (chunk, version) in completed.iter().zip(1..) {
        ensure!(chunk["version"] == json!(version), "{chunk}");
        ensure!(chunk["progress"] == json!(100), "{chunk}");
        ensure!(chunk["operation"] == json!("remix_song"), "{chunk}");
        let audio = chunk["audio_url"].as_str().context("audio_url")?;
        ensure!(
            audio.starts_with(emulator.root_url()) && audio.ends_with(".wav"),
            "{audio}"
        );
        let art = chunk["album_art"].as_str().context("album_art")?;
        ensure!(art.ends_with(".png"), "{art}");
    }
    ensure!(completed[0]["audio_url"] != completed[1]["audio_url"]);
    Ok(completed)
}

#[tokio::test]
async fn remix_song_streams_job_created_first_then_the_v7_stages_to_completion() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let response = post(&emulator, "/v7/generate/remix", &remix_body()).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let items = parse_sse(&read_body(response).await?)?;
    let completed = assert_v7_stream(&emulator, &items)?;
    assert_eq!(completed[0]["song_name"], "Jazz Horns (Remix)");

    let received = emulator.received();
    assert_eq!(received[0].path, "/v7/generate/remix");
    assert_eq!(received[0].json(), Some(remix_body()));
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
    Ok(())
}

#[tokio::test]
async fn remix_song_via_generated_client_gives_both_versions() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let response = client(&emulator)
        .remix_song()
        .body(
            RemixSongRequest::builder()
                .song_reference_url(SOURCE_URL)
                .lyrics("A brand new chorus".to_owned())
                .parameters(serde_json::Map::from_iter([(
                    "tempo".to_owned(),
                    json!(120),
                )])),
        )
        .send()
        .await?;
    let body = read_byte_stream(response.into_inner()).await?;
    assert_v7_stream(&emulator, &parse_sse(&body)?)?;
    let chunks = stream_chunks(&body)?;
    assert_eq!(chunks[0].status.as_deref(), Some("job_created"));
    assert!(chunks[0].job_id.is_some() && chunks[0].message_id.is_none());
    let versions: Vec<(Option<i64>, bool)> = chunks
        .iter()
        .filter(|c| c.status.as_deref() == Some("completed"))
        .map(|c| (c.version, c.audio_url.is_some()))
        .collect();
    assert_eq!(versions, [(Some(1), true), (Some(2), true)]);
    assert_eq!(
        chunks[15].song_name.as_deref(),
        Some("Brand New Chorus (Remix)")
    );

    let sent = emulator.received()[0].json().context("json")?;
    assert_eq!(sent["parameters"], json!({ "tempo": 120 }));
    assert_eq!(sent["lyrics"], "A brand new chorus");
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
    Ok(())
}

// ---- sync ----------------------------------------------------------------------

#[tokio::test]
async fn generate_song_sync_answers_both_versions_after_running_the_job() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let response = post(&emulator, "/v6/generate/song/sync", &generate_body()).await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(
        keys(&body),
        key_set(&["message_id", "album_art", "song_name", "audio_data"])
    );
    let message_id = body["message_id"].as_str().context("message_id")?;
    assert_eq!(body["song_name"], "Cheerful Pop Friendship");
    let audio = body["audio_data"].as_array().context("audio_data")?;
    assert_eq!(audio.len(), 2);
    for (entry, version) in audio.iter().zip(1..) {
        assert_eq!(keys(entry), key_set(&["audio_url", "song_name"]));
        assert_eq!(entry["song_name"], "Cheerful Pop Friendship");
        let url = entry["audio_url"].as_str().context("audio_url")?;
        assert!(url.ends_with(&format!("_v{version}.wav")), "{url}");
    }
    // The job ran to its end: the status endpoint has both versions.
    let status: Value = get_status(&emulator, message_id).await?.json().await?;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["progress"], 100);
    assert_eq!(status["isComplete"], true);
    assert_eq!(status["versions"][0]["audio_url"], audio[0]["audio_url"]);
    assert_eq!(status["versions"][1]["audio_url"], audio[1]["audio_url"]);

    let typed = client(&emulator)
        .generate_song_sync()
        .body(GenerateSongRequest::builder().prompt("Lo-fi beats for a rainy midnight"))
        .send()
        .await?
        .into_inner();
    assert_eq!(typed.song_name.as_deref(), Some("Lo Fi Beats"));
    assert_eq!(typed.audio_data.len(), 2);
    assert!(typed.audio_data.iter().all(|a| a.licenses.is_none()));
    assert_ne!(typed.message_id.as_deref(), Some(message_id));
    assert!(typed.ai_reply.is_none());

    let received = emulator.received();
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    let status_path = format!("/status/generations/{message_id}");
    assert_eq!(
        paths,
        [
            "/v6/generate/song/sync",
            &status_path,
            "/v6/generate/song/sync"
        ]
    );
    assert_eq!(
        received[2].json(),
        Some(json!({ "prompt": "Lo-fi beats for a rainy midnight" }))
    );
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 2);
    Ok(())
}

#[tokio::test]
async fn extend_song_sync_answers_licenses_and_ai_reply() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let response = post(&emulator, "/v6/extend/song/sync", &extend_body()).await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(
        keys(&body),
        key_set(&["message_id", "album_art", "audio_data", "ai_reply"])
    );
    assert_eq!(
        body["ai_reply"],
        "Your song has been extended successfully."
    );
    for entry in body["audio_data"].as_array().context("audio_data")? {
        assert_eq!(entry["song_name"], "Extended Song");
        assert_eq!(entry["licenses"], json!({ "licenses": "Royalty Free" }));
    }

    let typed = client(&emulator)
        .extend_song_sync()
        .body(
            ExtendSongRequest::builder()
                .audio_url(SOURCE_URL)
                .lyrics("la la")
                .extend_at(420000),
        )
        .send()
        .await?
        .into_inner();
    assert_eq!(
        typed.ai_reply.as_deref(),
        Some("Your song has been extended successfully.")
    );
    let licenses: Vec<Option<&str>> = typed
        .audio_data
        .iter()
        .map(|a| a.licenses.as_ref().and_then(|l| l.licenses.as_deref()))
        .collect();
    assert_eq!(licenses, [Some("Royalty Free"), Some("Royalty Free")]);
    assert!(typed.album_art.is_some_and(|a| a.ends_with(".png")));

    let status = client(&emulator)
        .get_generation_status()
        .message_id(typed.message_id.context("message_id")?)
        .send()
        .await?
        .into_inner();
    assert_eq!(status["operation"], "extend_song");
    assert_eq!(status["status"], "completed");
    assert_eq!(emulator.received()[1].path, "/v6/extend/song/sync");
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 2);
    Ok(())
}

// ---- status and files --------------------------------------------------------------

#[tokio::test]
async fn status_endpoint_reflects_a_stream_mid_way_and_at_the_end() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    // Six events (up to running at 14), then a long silence.
    let mut response = post_with(
        &emulator,
        "/v6/generate/song",
        &generate_body(),
        KEY,
        Some("stall-stream:6:60s"),
    )
    .await?;
    let mut buffer = Vec::new();
    let seen = read_events(&mut response, &mut buffer, 6).await?;
    assert_eq!(seen.len(), 6);
    let message_id = seen[1]["message_id"].as_str().context("message_id")?;

    let status = client(&emulator)
        .get_generation_status()
        .message_id(message_id)
        .send()
        .await?
        .into_inner();
    assert_eq!(status["message_id"], message_id);
    assert_eq!(status["status"], "running");
    assert_eq!(status["progress"], 14);
    assert_eq!(status["chunkIndex"], 5);
    assert_eq!(status["isComplete"], false);
    assert_eq!(status["operation"], "generate_song");
    assert_eq!(status["song_name"], "Cheerful Pop Friendship");
    assert_eq!(
        status["versions"],
        json!([{ "version": 1 }, { "version": 2 }])
    );
    drop(response);

    // A stream played to its end: the status has every URL.
    let body = read_body(post(&emulator, "/v7/generate/remix", &remix_body()).await?).await?;
    let events = events(&parse_sse(&body)?);
    let remix_id = events[2]["message_id"].as_str().context("message_id")?;
    let status: Value = get_status(&emulator, remix_id).await?.json().await?;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["progress"], 100);
    assert_eq!(status["isComplete"], true);
    assert_eq!(status["operation"], "remix_song");
    assert_eq!(status["job_id"], events[0]["job_id"]);
    assert_eq!(status["versions"][0]["audio_url"], events[15]["audio_url"]);
    assert_eq!(status["versions"][1]["audio_url"], events[16]["audio_url"]);
    assert_eq!(status["song_name"], events[15]["song_name"]);

    let received = emulator.received();
    assert_eq!(received[1].method, "GET");
    assert_eq!(
        received[1].path,
        format!("/status/generations/{message_id}")
    );
    Ok(())
}

#[tokio::test]
async fn status_endpoint_answers_404_for_an_unknown_message_id() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let response = get_status(&emulator, "msg_does_not_exist").await?;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await?;
    assert_eq!(
        body,
        json!({ "success": false, "message": "Generation not found." })
    );

    let refused = error_response(
        client(&emulator)
            .get_generation_status()
            .message_id("msg_other ünknown/id")
            .send()
            .await,
    )?;
    assert_eq!(refused.status(), 404);
    assert_eq!(refused.success, Some(false));
    assert_eq!(refused.message.as_deref(), Some("Generation not found."));
    Ok(())
}

#[tokio::test]
async fn audio_and_album_art_urls_download_from_the_emulator() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let body = read_body(post(&emulator, "/v6/generate/song", &generate_body()).await?).await?;
    let summary = assert_v6_stream(&emulator, &parse_sse(&body)?, "generate_song")?;
    for url in summary.audio_urls.iter().chain(&summary.stream_urls) {
        let response = http().get(url).send().await?;
        assert_eq!(response.status(), 200, "{url}");
        let bytes = response.bytes().await?;
        assert_eq!(&bytes[0..4], b"RIFF", "{url}");
        assert_eq!(&bytes[8..12], b"WAVE", "{url}");
    }
    let art = events(&parse_sse(&body)?)[1]["album_art"]
        .as_str()
        .context("album_art")?
        .to_owned();
    let png = http().get(&art).send().await?.bytes().await?;
    assert_eq!(&png[0..8], b"\x89PNG\r\n\x1a\n");
    Ok(())
}

// ---- validation and scenario triggers -------------------------------------------

/// Posts `body` and returns the status and the JSON answer.
async fn refused(emulator: &Emulator, path: &str, body: &Value) -> Result<(u16, Value)> {
    let response = post(emulator, path, body).await?;
    Ok((response.status().as_u16(), response.json().await?))
}

#[tokio::test]
async fn invalid_prompts_get_the_documented_422_detail() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let expected = json!({ "detail": INVALID_PROMPT });
    for path in ["/v6/generate/song", "/v6/generate/song/sync"] {
        for body in [
            json!({ "prompt": "" }),
            json!({ "prompt": " \t\n " }),
            json!({}),
            json!({ "prompt": null, "lyrics": "x" }),
        ] {
            assert_eq!(
                refused(&emulator, path, &body).await?,
                (422, expected.clone()),
                "{path} {body}"
            );
        }
    }
    let blank_extend =
        json!({ "audio_url": SOURCE_URL, "lyrics": "x", "extend_at": 9000, "prompt": "  " });
    assert_eq!(
        refused(&emulator, "/v6/extend/song", &blank_extend).await?,
        (422, expected.clone())
    );
    let blank_remix = json!({ "song_reference_url": SOURCE_URL, "prompt": "", "lyrics": "x" });
    assert_eq!(
        refused(&emulator, "/v7/generate/remix", &blank_remix).await?,
        (422, expected.clone())
    );

    let typed = error_response(
        client(&emulator)
            .generate_song()
            .body(GenerateSongRequest::builder().prompt("   "))
            .send()
            .await,
    )?;
    assert_eq!(typed.status(), 422);
    assert_eq!(detail_text(&typed), Some(INVALID_PROMPT));
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);
    Ok(())
}

#[tokio::test]
async fn malformed_or_mistyped_bodies_are_refused_with_422_naming_the_problem() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let raw = http()
        .post(url(&emulator, "/v6/generate/song"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{\"prompt\": \"unterminated")
        .send()
        .await?;
    assert_eq!(raw.status(), 422);
    let detail = raw.json::<Value>().await?["detail"]
        .as_str()
        .context("detail")?
        .to_owned();
    assert!(
        detail.starts_with("Request body is not valid JSON"),
        "{detail}"
    );

    let cases = [
        (
            "/v6/generate/song",
            json!(["prompt"]),
            "Request body must be a JSON object",
        ),
        (
            "/v6/generate/song",
            json!({ "prompt": 5 }),
            "prompt must be a string",
        ),
        (
            "/v6/generate/song/sync",
            json!({ "prompt": "ok", "lyrics": ["a"] }),
            "lyrics must be a string",
        ),
        (
            "/v6/extend/song",
            json!({ "audio_url": SOURCE_URL, "lyrics": "x" }),
            "extend_at is required",
        ),
        (
            "/v6/extend/song",
            json!({ "lyrics": "x", "extend_at": 9000 }),
            "audio_url is required",
        ),
        (
            "/v6/extend/song/sync",
            json!({ "audio_url": SOURCE_URL, "extend_at": 9000 }),
            "lyrics is required",
        ),
        (
            "/v6/extend/song",
            json!({ "audio_url": SOURCE_URL, "lyrics": " ", "extend_at": 9000 }),
            "Invalid or empty lyrics provided",
        ),
        (
            "/v6/extend/song",
            json!({ "audio_url": SOURCE_URL, "lyrics": "x", "extend_at": "9000" }),
            "extend_at must be an integer",
        ),
        (
            "/v6/extend/song",
            json!({ "audio_url": SOURCE_URL, "lyrics": "x", "extend_at": 9000.5 }),
            "extend_at must be an integer",
        ),
        (
            "/v7/generate/remix",
            json!({ "prompt": "jazz" }),
            "song_reference_url is required",
        ),
        (
            "/v7/generate/remix",
            json!({ "song_reference_url": SOURCE_URL, "prompt": "jazz", "parameters": [1] }),
            "parameters must be an object",
        ),
    ];
    for (path, body, detail) in cases {
        assert_eq!(
            refused(&emulator, path, &body).await?,
            (422, json!({ "detail": detail })),
            "{path} {body}"
        );
    }
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);
    Ok(())
}

#[tokio::test]
async fn hostile_bodies_are_refused_without_harming_the_emulator() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let send = |body: Vec<u8>| {
        http()
            .post(url(&emulator, "/v6/generate/song"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Larger than the 1 MiB the emulator reads.
    let huge = serde_json::to_vec(&json!({ "prompt": "x".repeat(2 * 1024 * 1024) }))?;
    let response = send(huge).await?;
    assert_eq!(response.status(), 413);
    assert_eq!(response.json::<Value>().await?["success"], false);
    // Nested far deeper than any JSON parser follows.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(send(deep.into_bytes()).await?.status(), 422);
    // Not UTF-8 at all.
    assert_eq!(send(vec![0xff, 0xfe, 0x00, 0x7b]).await?.status(), 422);
    // An empty body.
    assert_eq!(send(Vec::new()).await?.status(), 422);
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);
    // The emulator still serves ordinary requests.
    let response = post(&emulator, "/v6/generate/song/sync", &generate_body()).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
    Ok(())
}

#[tokio::test]
async fn extend_at_outside_8000_to_420000_is_refused_and_the_bounds_are_accepted() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let body = |extend_at: Value| json!({ "audio_url": SOURCE_URL, "lyrics": "x", "extend_at": extend_at });
    for (value, shown) in [
        (json!(7999), "7999"),
        (json!(420001), "420001"),
        (json!(-1), "-1"),
        (json!(u64::MAX), "18446744073709551615"),
    ] {
        let detail = format!("extend_at must be between 8000 and 420000 (ms), got {shown}");
        for path in ["/v6/extend/song", "/v6/extend/song/sync"] {
            assert_eq!(
                refused(&emulator, path, &body(value.clone())).await?,
                (422, json!({ "detail": detail }))
            );
        }
    }
    let typed = error_response(
        client(&emulator)
            .extend_song_sync()
            .body(
                ExtendSongRequest::builder()
                    .audio_url(SOURCE_URL)
                    .lyrics("x")
                    .extend_at(500_000),
            )
            .send()
            .await,
    )?;
    assert_eq!(typed.status(), 422);
    assert_eq!(
        detail_text(&typed),
        Some("extend_at must be between 8000 and 420000 (ms), got 500000")
    );
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);

    for bound in [8000, 420000] {
        let response = post(&emulator, "/v6/extend/song/sync", &body(json!(bound))).await?;
        assert_eq!(response.status(), 200, "extend_at {bound}");
    }
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 2);
    Ok(())
}

#[tokio::test]
async fn remix_requires_prompt_or_lyrics_and_a_prompt_of_at_most_1024_chars() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let one_of = json!({ "detail": "At least one of prompt or lyrics is required" });
    for body in [
        json!({ "song_reference_url": SOURCE_URL }),
        json!({ "song_reference_url": SOURCE_URL, "lyrics": "   " }),
        json!({ "song_reference_url": SOURCE_URL, "prompt": null, "lyrics": null }),
    ] {
        assert_eq!(
            refused(&emulator, "/v7/generate/remix", &body).await?,
            (422, one_of.clone()),
            "{body}"
        );
    }
    let typed = error_response(
        client(&emulator)
            .remix_song()
            .body(RemixSongRequest::builder().song_reference_url(SOURCE_URL))
            .send()
            .await,
    )?;
    assert_eq!(
        detail_text(&typed),
        Some("At least one of prompt or lyrics is required")
    );

    // 1025 characters (multi-byte ones count once each).
    let long = "é".repeat(1025);
    let body = json!({ "song_reference_url": SOURCE_URL, "prompt": long });
    let detail = json!({ "detail": "prompt must be at most 1024 characters long (got 1025)" });
    assert_eq!(
        refused(&emulator, "/v7/generate/remix", &body).await?,
        (422, detail)
    );
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);

    let longest = json!({ "song_reference_url": SOURCE_URL, "prompt": "é".repeat(1024) });
    let accepted = post(&emulator, "/v7/generate/remix", &longest).await?;
    assert_eq!(accepted.status(), 200);
    let lyrics_only = json!({ "song_reference_url": SOURCE_URL, "lyrics": "only lyrics" });
    let accepted = post(&emulator, "/v7/generate/remix", &lyrics_only).await?;
    assert_eq!(accepted.status(), 200);
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 2);
    Ok(())
}

#[tokio::test]
async fn url_fields_must_be_absolute_http_urls() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let bad_urls = [
        "not a url",
        "/relative/song.mp3",
        "ftp://example.com/song.mp3",
        "file:///etc/passwd",
        "",
        "https://",
    ];
    let mut cases = Vec::new();
    for field in [
        "reference_url",
        "instrumental_url",
        "vocal_url",
        "melody_url",
    ] {
        let mut body = generate_body();
        body[field] = json!("https://example.com/ok.mp3");
        cases.push(("/v6/generate/song", body, field));
    }
    cases.push(("/v6/extend/song", extend_body(), "audio_url"));
    cases.push(("/v7/generate/remix", remix_body(), "song_reference_url"));
    for (path, good, field) in cases {
        for bad in bad_urls {
            let mut body = good.clone();
            body[field] = json!(bad);
            let detail = json!({ "detail": format!("{field} must be an absolute http(s) URL") });
            assert_eq!(
                refused(&emulator, path, &body).await?,
                (422, detail),
                "{path} {field}={bad:?}"
            );
        }
        let mut body = good.clone();
        body[field] = json!(42);
        let detail = json!({ "detail": format!("{field} must be an absolute http(s) URL") });
        assert_eq!(refused(&emulator, path, &body).await?, (422, detail));
        assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);
    }
    let typed = error_response(
        client(&emulator)
            .generate_song_sync()
            .body(
                GenerateSongRequest::builder()
                    .prompt("fine")
                    .vocal_url("vocals.wav".to_owned()),
            )
            .send()
            .await,
    )?;
    assert_eq!(
        detail_text(&typed),
        Some("vocal_url must be an absolute http(s) URL")
    );

    let mut good = generate_body();
    good["melody_url"] = json!("http://127.0.0.1:9/melody.wav");
    assert_eq!(
        post(&emulator, "/v6/generate/song/sync", &good)
            .await?
            .status(),
        200
    );
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
    Ok(())
}

#[tokio::test]
async fn a_no_credits_key_gets_402_insufficient_balance_on_every_operation() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let expected =
        json!({ "success": false, "message": "Insufficient balance for this operation." });
    let cases = [
        ("/v6/generate/song", generate_body()),
        ("/v6/generate/song/sync", generate_body()),
        ("/v6/extend/song", extend_body()),
        ("/v6/extend/song/sync", extend_body()),
        ("/v7/generate/remix", remix_body()),
    ];
    for (path, body) in cases {
        let response = post_with(&emulator, path, &body, "sk_broke_no_credits", None).await?;
        assert_eq!(response.status(), 402, "{path}");
        assert_eq!(response.json::<Value>().await?, expected, "{path}");
    }
    let broke = Client::with_api_key(&emulator.base_url(Provider::Soundverse), "sk_no_credits")?;
    let typed = error_response(
        broke
            .remix_song()
            .body(
                RemixSongRequest::builder()
                    .song_reference_url(SOURCE_URL)
                    .prompt(Some(RemixSongRequestPrompt::try_from("jazz")?)),
            )
            .send()
            .await,
    )?;
    assert_eq!(typed.status(), 402);
    assert_eq!(
        typed.message.as_deref(),
        Some("Insufficient balance for this operation.")
    );
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);
    // Validation comes first: an invalid body is a 422 even without credits.
    let response = post_with(
        &emulator,
        "/v6/generate/song",
        &json!({ "prompt": "" }),
        "sk_no_credits",
        None,
    )
    .await?;
    assert_eq!(response.status(), 422);
    Ok(())
}

#[tokio::test]
async fn nsfw_in_prompt_or_lyrics_gets_the_documented_400() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let expected = json!({ "success": false, "message": "NSFW words detected. Please try again with different lyrics." });
    let cases = [
        ("/v6/generate/song", json!({ "prompt": "a song [nsfw]" })),
        (
            "/v6/generate/song/sync",
            json!({ "prompt": "fine", "lyrics": "bad [nsfw] words" }),
        ),
        (
            "/v6/extend/song",
            json!({ "audio_url": SOURCE_URL, "lyrics": "[nsfw]", "extend_at": 9000 }),
        ),
        (
            "/v6/extend/song/sync",
            json!({ "audio_url": SOURCE_URL, "lyrics": "ok", "prompt": "[nsfw]", "extend_at": 9000 }),
        ),
        (
            "/v7/generate/remix",
            json!({ "song_reference_url": SOURCE_URL, "prompt": "[nsfw] jazz" }),
        ),
    ];
    for (path, body) in cases {
        assert_eq!(
            refused(&emulator, path, &body).await?,
            (400, expected.clone()),
            "{path}"
        );
    }
    let typed = error_response(
        client(&emulator)
            .generate_song_sync()
            .body(
                GenerateSongRequest::builder()
                    .prompt("x")
                    .lyrics("[nsfw]".to_owned()),
            )
            .send()
            .await,
    )?;
    assert_eq!(typed.status(), 400);
    assert_eq!(typed.message.as_deref(), expected["message"].as_str());
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);
    Ok(())
}

#[tokio::test]
async fn fail_trigger_ends_streams_with_a_failed_chunk_and_error() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let body = json!({ "prompt": "a song that will [fail]" });
    let events = events(&parse_sse(
        &read_body(post(&emulator, "/v6/generate/song", &body).await?).await?,
    )?);
    assert_eq!(
        statuses(&events),
        [
            "initializing",
            "validated",
            "streaming",
            "processing",
            "running",
            "running",
            "failed"
        ]
    );
    let failed = events.last().context("no events")?;
    let error = failed["error"].as_str().context("error")?;
    assert!(error.starts_with("Generation failed"), "{error}");
    assert_eq!(failed["isComplete"], true);
    assert_eq!(failed["chunkIndex"], 6);
    assert!(events.iter().all(|e| e.get("audio_url").is_none()));
    let message_id = failed["message_id"].as_str().context("message_id")?;
    let status: Value = get_status(&emulator, message_id).await?.json().await?;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["error"], error);
    assert_eq!(status["progress"], 14);

    let response = client(&emulator)
        .remix_song()
        .body(
            RemixSongRequest::builder()
                .song_reference_url(SOURCE_URL)
                .lyrics("[fail]".to_owned()),
        )
        .send()
        .await?;
    let chunks = stream_chunks(&read_byte_stream(response.into_inner()).await?)?;
    let last = chunks.last().context("no chunks")?;
    assert_eq!(last.status.as_deref(), Some("failed"));
    assert_eq!(last.error.as_deref(), Some(error));
    assert_eq!(last.operation.as_deref(), Some("remix_song"));
    let progress: Vec<i64> = chunks.iter().filter_map(|c| c.progress).collect();
    assert_eq!(progress, [0, 10, 20]);
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 2);
    Ok(())
}

#[tokio::test]
async fn fail_trigger_makes_sync_requests_answer_500() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let (status, body) = refused(
        &emulator,
        "/v6/generate/song/sync",
        &json!({ "prompt": "[fail]" }),
    )
    .await?;
    assert_eq!(status, 500);
    assert_eq!(body["success"], false);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Generation failed")),
        "{body}"
    );

    let typed = error_response(
        client(&emulator)
            .extend_song_sync()
            .body(
                ExtendSongRequest::builder()
                    .audio_url(SOURCE_URL)
                    .lyrics("[fail]")
                    .extend_at(9000),
            )
            .send()
            .await,
    )?;
    assert_eq!(typed.status(), 500);
    assert_eq!(typed.success, Some(false));
    assert_eq!(typed.message.as_deref(), body["message"].as_str());
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 2);
    Ok(())
}

#[tokio::test]
async fn requests_without_a_bearer_key_are_refused_with_401() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let target = url(&emulator, "/v6/generate/song");
    let attempts = [
        http().post(&target).json(&generate_body()),
        http()
            .post(&target)
            .header("authorization", KEY)
            .json(&generate_body()),
        http()
            .post(&target)
            .header("authorization", "Basic dXNlcjpwYXNz")
            .json(&generate_body()),
        http()
            .post(&target)
            .header("authorization", "Bearer   ")
            .json(&generate_body()),
        http().get(url(&emulator, "/status/generations/msg_x")),
    ];
    for attempt in attempts {
        let response = attempt.send().await?;
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await?;
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("Bearer")),
            "{body}"
        );
    }
    // Refused for their key, they are not recorded either.
    assert!(emulator.received().is_empty());
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);
    Ok(())
}

#[tokio::test]
async fn unknown_routes_get_404_not_found() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let (status, body) = refused(&emulator, "/v7/generate/remix/sync", &remix_body()).await?;
    assert_eq!((status, body), (404, json!({ "detail": "Not Found" })));
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);
    Ok(())
}

// ---- faults --------------------------------------------------------------------

#[tokio::test]
async fn drop_stream_fault_cuts_the_body_after_n_events() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let mut response = post_with(
        &emulator,
        "/v6/generate/song",
        &generate_body(),
        KEY,
        Some("drop-stream:3"),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let mut buffer = Vec::new();
    let error = loop {
        match tokio::time::timeout(LIMIT, response.chunk()).await? {
            Ok(Some(piece)) => buffer.extend_from_slice(&piece),
            Ok(None) => bail!("the stream ended cleanly"),
            Err(error) => break error,
        }
    };
    assert!(
        error.is_body() || error.is_decode() || error.is_request(),
        "{error:?}"
    );
    let seen = events(&parse_sse(std::str::from_utf8(&buffer)?)?);
    assert_eq!(statuses(&seen), ["initializing", "validated", "streaming"]);

    let response = http()
        .post(url(&emulator, "/v7/generate/remix"))
        .bearer_auth(KEY)
        .header(FAULT_HEADER, "drop-stream:5")
        .json(&remix_body())
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut failed = false;
    while let Some(piece) = tokio::time::timeout(LIMIT, stream.next()).await? {
        match piece {
            Ok(piece) => buffer.extend_from_slice(&piece),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body did not fail");
    let seen = events(&parse_sse(std::str::from_utf8(&buffer)?)?);
    assert_eq!(
        statuses(&seen),
        [
            "job_created",
            "validating",
            "queued",
            "starting",
            "uploading"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn drop_stream_fault_surfaces_as_an_error_in_the_generated_byte_stream() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    // The generated client sends no fault header; a per-run rule applies instead.
    emulator.inject(
        songbind_emulator::FaultRule::new("drop-stream:4".parse()?)
            .provider(Provider::Soundverse)
            .route(reqwest::Method::POST, "/v6/generate/song"),
    );
    let response = client(&emulator)
        .generate_song()
        .body(GenerateSongRequest::builder().prompt(GENERATE_PROMPT))
        .send()
        .await?;
    let mut inner = response.into_inner().into_inner();
    let mut buffer = Vec::new();
    let outcome = loop {
        match tokio::time::timeout(LIMIT, inner.next()).await? {
            Some(Ok(piece)) => buffer.extend_from_slice(&piece),
            Some(Err(error)) => break Some(error),
            None => break None,
        }
    };
    assert!(outcome.is_some(), "the byte stream ended without an error");
    let chunks = stream_chunks(std::str::from_utf8(&buffer)?)?;
    let indexes: Vec<Option<i64>> = chunks.iter().map(|c| c.chunk_index).collect();
    assert_eq!(indexes, [Some(0), Some(1), Some(2), Some(3)]);
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
    Ok(())
}

#[tokio::test]
async fn end_stream_fault_ends_cleanly_after_exactly_n_events() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let response = post_with(
        &emulator,
        "/v6/extend/song",
        &extend_body(),
        KEY,
        Some("end-stream:9"),
    )
    .await?;
    let events = events(&parse_sse(&read_body(response).await?)?);
    assert_eq!(statuses(&events), V6_STAGES[..9]);
    assert!(events.iter().all(|e| e["isComplete"] == false));

    let response = post_with(
        &emulator,
        "/v7/generate/remix",
        &remix_body(),
        KEY,
        Some("end-stream:1"),
    )
    .await?;
    let events = events_of(response).await?;
    assert_eq!(statuses(&events), ["job_created"]);
    Ok(())
}

async fn events_of(response: reqwest::Response) -> Result<Vec<Value>> {
    Ok(events(&parse_sse(&read_body(response).await?)?))
}

#[tokio::test]
async fn stall_stream_fault_resumes_with_every_event_in_order() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let response = post_with(
        &emulator,
        "/v6/generate/song",
        &generate_body(),
        KEY,
        Some("stall-stream:3:200ms"),
    )
    .await?;
    let items = parse_sse(&read_body(response).await?)?;
    assert_v6_stream(&emulator, &items, "generate_song")?;
    Ok(())
}

#[tokio::test]
async fn fragment_fault_still_parses_into_the_same_events() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let lyrics = "Ünïcödé lýrics ♪ 歌詞";
    let body = json!({ "prompt": GENERATE_PROMPT, "lyrics": lyrics });
    let whole = events_of(post(&emulator, "/v6/generate/song", &body).await?).await?;
    let fragmented =
        post_with(&emulator, "/v6/generate/song", &body, KEY, Some("fragment")).await?;
    let mut stream = fragmented.bytes_stream();
    let mut pieces = 0;
    let mut bytes = Vec::new();
    while let Some(piece) = tokio::time::timeout(LIMIT, stream.next()).await? {
        bytes.extend_from_slice(&piece?);
        pieces += 1;
    }
    let items = parse_sse(std::str::from_utf8(&bytes)?)?;
    assert_v6_stream(&emulator, &items, "generate_song")?;
    let pieces_events = events(&items);
    assert!(
        pieces > pieces_events.len(),
        "{pieces} pieces for {} events",
        pieces_events.len()
    );
    // Equal but for the per-request ids and URLs.
    let strip = |events: &[Value]| -> Vec<Value> {
        let id = events[1]["message_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        events
            .iter()
            .map(|e| serde_json::from_str(&e.to_string().replace(&id, "ID")).unwrap_or(Value::Null))
            .collect()
    };
    assert_eq!(strip(&pieces_events), strip(&whole));
    assert_eq!(
        pieces_events[16]["lyrics_sections"][0]["lines"],
        json!([lyrics])
    );
    Ok(())
}

#[tokio::test]
async fn rate_limit_fault_answers_429_with_retry_after_before_any_job() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let expected =
        json!({ "success": false, "message": "Rate limits have been passed for the user." });
    let response = post_with(
        &emulator,
        "/v6/generate/song",
        &generate_body(),
        KEY,
        Some("status:429:retry-after=3"),
    )
    .await?;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(response.json::<Value>().await?, expected);

    emulator.inject(
        songbind_emulator::FaultRule::new("status:429:retry-after=3".parse()?)
            .provider(Provider::Soundverse)
            .route(reqwest::Method::POST, "/v6/generate/song/sync"),
    );
    let typed = error_response(
        client(&emulator)
            .generate_song_sync()
            .body(GenerateSongRequest::builder().prompt(GENERATE_PROMPT))
            .send()
            .await,
    )?;
    assert_eq!(typed.status(), 429);
    assert_eq!(typed.headers()["retry-after"], "3");
    assert_eq!(typed.message.as_deref(), expected["message"].as_str());
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);
    assert_eq!(emulator.received().len(), 2);
    Ok(())
}

#[tokio::test]
async fn lose_reply_fault_creates_the_job_but_sends_no_reply() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let outcome = http()
        .post(url(&emulator, "/v6/generate/song"))
        .bearer_auth(KEY)
        .header(FAULT_HEADER, "lose-reply")
        .json(&generate_body())
        .send();
    let error = tokio::time::timeout(LIMIT, outcome)
        .await?
        .expect_err("a reply arrived");
    assert!(error.status().is_none(), "{error:?}");
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);

    emulator.inject(
        songbind_emulator::FaultRule::new("lose-reply".parse()?)
            .provider(Provider::Soundverse)
            .route(reqwest::Method::POST, "/v6/generate/song/sync"),
    );
    let typed = client(&emulator)
        .generate_song_sync()
        .body(GenerateSongRequest::builder().prompt(GENERATE_PROMPT))
        .send()
        .await;
    assert!(
        matches!(typed, Err(Error::CommunicationError(_))),
        "{typed:?}"
    );
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 2);
    assert_eq!(emulator.received().len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_cut_stream_job_still_finishes_and_the_status_endpoint_shows_it() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let response = post_with(
        &emulator,
        "/v6/generate/song",
        &generate_body(),
        KEY,
        Some("end-stream:3"),
    )
    .await?;
    let events = events_of(response).await?;
    assert_eq!(
        statuses(&events),
        ["initializing", "validated", "streaming"]
    );
    let message_id = events[1]["message_id"].as_str().context("message_id")?;
    let status = poll_status(&emulator, message_id, |s| s["isComplete"] == true).await?;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["progress"], 100);
    assert_eq!(status["chunkIndex"], 19);
    for version in 0..2 {
        let entry = &status["versions"][version];
        assert!(
            entry["stream_url"]
                .as_str()
                .is_some_and(|u| u.ends_with("_stream.wav")),
            "{entry}"
        );
        assert!(
            entry["audio_url"]
                .as_str()
                .is_some_and(|u| u.ends_with(".wav")),
            "{entry}"
        );
    }
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
    Ok(())
}
