//! Soundverse event streams over a real HTTP connection.
//!
//! httpmock sends a body in one piece, so these tests use a purpose-built
//! server: a TcpListener on 127.0.0.1:0 that writes a raw HTTP/1.1 response
//! (chunked or close-delimited) in exactly the pieces a test chooses, each
//! flushed on its own, and ends it cleanly, abruptly or not at all.

#![cfg(feature = "soundverse")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Map, Value, json};
use songbind::Error;
use songbind::sse::{
    SongProgress, SoundverseChunk, SoundverseEvent, SoundverseEventStream, StreamLimits,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

// ---- the purpose-built server ------------------------------------------------

/// How the response body is delimited.
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// `Transfer-Encoding: chunked`, one HTTP chunk per piece.
    Chunked,
    /// No length: the body ends when the server closes the connection.
    CloseDelimited,
}

/// How the server ends the response after the last piece.
#[derive(Debug)]
enum Ending {
    /// The zero-length last chunk (chunked) or a clean close.
    Clean,
    /// Announces a chunk, sends only these bytes of it and closes.
    DropMidChunk(Vec<u8>),
    /// Sends nothing more and keeps the connection open until the client
    /// closes it.
    HoldOpen,
}

/// A server for one request; `request` receives the request head.
struct Served {
    url: String,
    request: oneshot::Receiver<String>,
}

async fn serve<P>(framing: Framing, pieces: P, ending: Ending) -> Served
where
    P: IntoIterator<Item = Vec<u8>> + Send + 'static,
    P::IntoIter: Send,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let (head_tx, request) = oneshot::channel();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await?;
        respond(socket, framing, pieces, ending, head_tx).await
    });
    Served { url, request }
}

async fn respond<P>(
    mut socket: TcpStream,
    framing: Framing,
    pieces: P,
    ending: Ending,
    head_tx: oneshot::Sender<String>,
) -> std::io::Result<()>
where
    P: IntoIterator<Item = Vec<u8>>,
{
    let head = read_request(&mut socket).await?;
    let _ = head_tx.send(head);
    let headers: &[u8] = match framing {
        Framing::Chunked => {
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        }
        Framing::CloseDelimited => b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
    };
    socket.write_all(headers).await?;
    socket.flush().await?;
    for piece in pieces {
        if piece.is_empty() {
            continue; // an empty HTTP chunk would end the body
        }
        let framed = match framing {
            Framing::Chunked => [
                format!("{:x}\r\n", piece.len()).into_bytes(),
                piece,
                b"\r\n".to_vec(),
            ]
            .concat(),
            Framing::CloseDelimited => piece,
        };
        socket.write_all(&framed).await?;
        socket.flush().await?;
    }
    match ending {
        Ending::Clean => {
            if let Framing::Chunked = framing {
                socket.write_all(b"0\r\n\r\n").await?;
            }
            socket.shutdown().await?;
        }
        Ending::DropMidChunk(partial) => {
            socket
                .write_all(format!("{:x}\r\n", partial.len() + 100).as_bytes())
                .await?;
            socket.write_all(&partial).await?;
            socket.flush().await?;
        }
        Ending::HoldOpen => {
            let mut buf = [0u8; 256];
            while socket.read(&mut buf).await? > 0 {}
        }
    }
    Ok(())
}

/// Reads the request head and its `content-length` body; returns the head.
async fn read_request(socket: &mut TcpStream) -> std::io::Result<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = socket.read(&mut buf).await?;
        if n == 0 || data.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let body_len: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    let mut have = data.len() - head_end;
    while have < body_len {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok(head)
}

// ---- helpers -------------------------------------------------------------------

/// `body` cut into pieces of `size` bytes (the last one shorter).
fn pieces_of(body: &[u8], size: usize) -> Vec<Vec<u8>> {
    body.chunks(size).map(<[u8]>::to_vec).collect()
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .send()
        .await
        .expect("the server answers")
}

async fn read_all(
    url: &str,
    limits: StreamLimits,
) -> (Vec<Result<SoundverseChunk, Error>>, SongProgress) {
    let mut events = SoundverseEventStream::with_limits(get(url).await.bytes_stream(), limits);
    let mut items = Vec::new();
    while let Some(item) = events.next().await {
        items.push(item);
    }
    (items, events.into_progress())
}

fn events_of(items: &[Result<SoundverseChunk, Error>]) -> Vec<SoundverseEvent> {
    items
        .iter()
        .map(|item| match item {
            Ok(chunk) => chunk.event.clone(),
            Err(e) => panic!("unexpected error item: {e:?}"),
        })
        .collect()
}

/// One example event of specs/soundverse.yaml (`components.examples`), as
/// the wire text it documents.
fn spec_event(name: &str) -> String {
    const SPEC: &str = include_str!("../../../specs/soundverse.yaml");
    let key = format!("    {name}:");
    let value = SPEC
        .lines()
        .skip_while(|line| *line != key)
        .find_map(|line| line.trim_start().strip_prefix("value: "))
        .unwrap_or_else(|| panic!("no example {name} in the spec"));
    serde_json::from_str(value).unwrap_or_else(|e| panic!("example {name}: {e}"))
}

/// A spec example with some of its JSON fields changed.
fn edited(name: &str, changes: Value) -> String {
    let text = spec_event(name);
    let json = text
        .strip_prefix("data: ")
        .and_then(|t| t.strip_suffix("\n\n"))
        .expect("a single data line");
    let mut chunk: Map<String, Value> = serde_json::from_str(json).expect("JSON chunk");
    if let Value::Object(changes) = changes {
        chunk.extend(changes);
    }
    format!("data: {}\n\n", Value::Object(chunk))
}

/// The v6 stream the Generate Song page describes, from the spec's
/// examples: the page shows samples for version 1; version 2's chunks are
/// the same samples with version 2's number and URLs.
fn v6_sample_stream() -> String {
    [
        spec_event("v6_initializing"),
        spec_event("v6_validated"),
        spec_event("v6_streaming"),
        spec_event("v6_processing"),
        spec_event("v6_running"),
        spec_event("v6_streaming_ready"),
        edited(
            "v6_streaming_ready",
            json!({"version": 2, "stream_url": "https://api.soundverse.ai/v2", "chunkIndex": 9}),
        ),
        spec_event("v6_completed_generation"),
        spec_event("v6_uploading"),
        spec_event("v6_final_completed"),
        edited(
            "v6_completed_generation",
            json!({"audio_url": "https://storage.soundverse.ai/v2", "chunkIndex": 13}),
        ),
        edited("v6_uploading", json!({"version": 2, "chunkIndex": 14})),
        edited(
            "v6_final_completed",
            json!({"version": 2, "chunkIndex": 15}),
        ),
    ]
    .concat()
}

/// The v6 events that stream decodes to.
fn v6_sample_events() -> Vec<SoundverseEvent> {
    let art = Some("https://storage.soundverse.ai/...".to_owned());
    vec![
        SoundverseEvent::Initializing,
        SoundverseEvent::Validated {
            message_id: Some("...".into()),
            song_name: Some("Song Title".into()),
            album_art: art,
        },
        SoundverseEvent::Streaming,
        SoundverseEvent::Progress {
            status: "processing".into(),
            progress: None,
        },
        SoundverseEvent::Progress {
            status: "running".into(),
            progress: Some(2),
        },
        SoundverseEvent::StreamingReady {
            version: 1,
            stream_url: "https://api.soundverse.ai/...".into(),
        },
        SoundverseEvent::StreamingReady {
            version: 2,
            stream_url: "https://api.soundverse.ai/v2".into(),
        },
        SoundverseEvent::Completed {
            version: None,
            audio_url: Some("https://storage.soundverse.ai/...".into()),
            progress: Some(100),
        },
        SoundverseEvent::Uploading { version: Some(1) },
        SoundverseEvent::LyricsSections {
            version: Some(1),
            sections: vec![],
        },
        SoundverseEvent::Completed {
            version: None,
            audio_url: Some("https://storage.soundverse.ai/v2".into()),
            progress: Some(100),
        },
        SoundverseEvent::Uploading { version: Some(2) },
        SoundverseEvent::LyricsSections {
            version: Some(2),
            sections: vec![],
        },
    ]
}

fn assert_v6_song(song: &SongProgress) {
    assert!(song.is_complete());
    assert_eq!(song.message_id.as_deref(), Some("..."));
    assert_eq!(song.song_name.as_deref(), Some("Song Title"));
    let [one, two] = &song.versions;
    assert_eq!(
        one.stream_url.as_deref(),
        Some("https://api.soundverse.ai/...")
    );
    assert_eq!(
        one.audio_url.as_deref(),
        Some("https://storage.soundverse.ai/...")
    );
    assert_eq!(one.lyrics_sections, Some(vec![]));
    assert_eq!(
        two.stream_url.as_deref(),
        Some("https://api.soundverse.ai/v2")
    );
    assert_eq!(
        two.audio_url.as_deref(),
        Some("https://storage.soundverse.ai/v2")
    );
    assert_eq!(two.lyrics_sections, Some(vec![]));
}

fn validated(message_id: &str, song_name: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"message_id": message_id, "isComplete": false, "status": "validated", "song_name": song_name, "chunkIndex": 1})
    )
}

const BOTH_VERSIONS_DONE: &str = concat!(
    "data: {\"status\": \"completed\", \"version\": 1, \"audio_url\": \"https://a/1\"}\n\n",
    "data: {\"status\": \"completed\", \"version\": 2, \"audio_url\": \"https://a/2\"}\n\n",
);

// ---- the server itself ---------------------------------------------------------

#[tokio::test]
async fn each_written_piece_arrives_as_its_own_body_frame() {
    // The split tests below rely on this: one HTTP chunk, one frame.
    let pieces = vec![
        b"da".to_vec(),
        b"ta: \xC3".to_vec(),
        b"\xBC\n".to_vec(),
        b"\n".to_vec(),
    ];
    let served = serve(Framing::Chunked, pieces.clone(), Ending::Clean).await;
    let frames: Vec<Bytes> = get(&served.url)
        .await
        .bytes_stream()
        .try_collect()
        .await
        .expect("body");
    assert_eq!(
        frames.iter().map(|f| f.to_vec()).collect::<Vec<_>>(),
        pieces
    );
}

// ---- decoding ------------------------------------------------------------------

#[tokio::test]
async fn v6_sample_stream_decodes_to_every_stage_with_both_versions_tracked() {
    let body = v6_sample_stream();
    let served = serve(
        Framing::Chunked,
        pieces_of(body.as_bytes(), 13),
        Ending::Clean,
    )
    .await;
    let (items, song) = read_all(&served.url, StreamLimits::default()).await;
    assert_eq!(events_of(&items), v6_sample_events());
    let indexes: Vec<Option<i64>> = items
        .iter()
        .map(|i| i.as_ref().ok().and_then(|c| c.chunk_index))
        .collect();
    assert_eq!(
        indexes[..6],
        [Some(0), Some(1), Some(2), Some(3), Some(4), Some(8)]
    );
    assert_v6_song(&song);
}

#[tokio::test]
async fn v7_sample_stream_decodes_to_every_stage_with_both_versions_tracked() {
    let body = [
        spec_event("v7_job_created"),
        spec_event("v7_validating"),
        spec_event("v7_queued"),
        spec_event("v7_starting"),
        spec_event("v7_uploading"),
        spec_event("v7_streaming"),
        spec_event("v7_streaming_hold_at_90"),
        ": keepalive\n\n".to_owned(),
        ": keepalive\n\n".to_owned(),
        spec_event("v7_completed"),
        edited(
            "v7_completed",
            json!({"audio_url": "https://storage.soundverse.ai/v2", "chunkIndex": 8}),
        ),
    ]
    .concat();
    let served = serve(
        Framing::Chunked,
        pieces_of(body.as_bytes(), 29),
        Ending::Clean,
    )
    .await;
    let (items, song) = read_all(&served.url, StreamLimits::default()).await;
    let completed = |url: &str| SoundverseEvent::Completed {
        version: None,
        audio_url: Some(url.into()),
        progress: Some(100),
    };
    let streaming = |progress| SoundverseEvent::Progress {
        status: "streaming".into(),
        progress: Some(progress),
    };
    assert_eq!(
        events_of(&items),
        vec![
            SoundverseEvent::JobCreated {
                job_id: "...".into()
            },
            SoundverseEvent::Validating,
            SoundverseEvent::Queued,
            SoundverseEvent::Starting,
            SoundverseEvent::Uploading { version: None },
            streaming(45),
            streaming(90),
            completed("https://storage.soundverse.ai/..."),
            completed("https://storage.soundverse.ai/v2"),
        ]
    );
    assert!(song.is_complete());
    assert_eq!(song.job_id.as_deref(), Some("..."));
    assert_eq!(song.message_id.as_deref(), Some("..."));
    assert_eq!(
        song.audio_urls().collect::<Vec<_>>(),
        [
            "https://storage.soundverse.ai/...",
            "https://storage.soundverse.ai/v2"
        ]
    );
}

#[tokio::test]
async fn crlf_endings_comments_field_lines_and_multiline_data_decode() {
    let body = concat!(
        ": stream opened\r\n\r\n",
        "retry: 3000\r\n",
        "event: message\r\nid: 1\r\n",
        "data: {\"status\": \"validated\",\r\n",
        "data:  \"message_id\": \"msg_crlf\",\r\n",
        "data: \"song_name\": \"Lines\"}\r\n\r\n",
        ":keepalive\r\n",
        ": keepalive\r\n\r\n",
        "id: 2\r\n",
        "data: {\"status\": \"running\", \"progress\": 90}\r\n",
        "\r\n",
        "data: {\"status\": \"completed\", \"version\": 1, \"audio_url\": \"https://a/1\"}\r\r",
        "data: {\"status\": \"completed\", \"version\": 2, \"audio_url\": \"https://a/2\"}\n\n",
    );
    // Pieces of 5 bytes cut some CRLF pairs in two.
    let served = serve(
        Framing::Chunked,
        pieces_of(body.as_bytes(), 5),
        Ending::Clean,
    )
    .await;
    let (items, song) = read_all(&served.url, StreamLimits::default()).await;
    assert_eq!(
        events_of(&items),
        vec![
            SoundverseEvent::Validated {
                message_id: Some("msg_crlf".into()),
                song_name: Some("Lines".into()),
                album_art: None,
            },
            SoundverseEvent::Progress {
                status: "running".into(),
                progress: Some(90),
            },
            SoundverseEvent::Completed {
                version: Some(1),
                audio_url: Some("https://a/1".into()),
                progress: None,
            },
            SoundverseEvent::Completed {
                version: Some(2),
                audio_url: Some("https://a/2".into()),
                progress: None,
            },
        ]
    );
    assert!(song.is_complete());
    assert_eq!(song.message_id.as_deref(), Some("msg_crlf"));
}

#[tokio::test]
async fn song_name_split_inside_utf8_characters_decodes_intact() {
    let name = "Grüße 🎵 Ünïcødé";
    let body = validated("msg_utf8", name) + BOTH_VERSIONS_DONE;
    // One byte per piece: every multi-byte character is split.
    let served = serve(
        Framing::Chunked,
        pieces_of(body.as_bytes(), 1),
        Ending::Clean,
    )
    .await;
    let (items, song) = read_all(&served.url, StreamLimits::default()).await;
    assert!(matches!(
        &events_of(&items)[0],
        SoundverseEvent::Validated { song_name: Some(n), .. } if n == name
    ));
    assert_eq!(song.song_name.as_deref(), Some(name));
    assert!(song.is_complete());
}

#[tokio::test]
async fn garbled_chunk_is_a_decode_error_with_raw_text_and_the_song_still_completes() {
    let body = validated("msg_garbled", "G")
        + "data: {\"status\": \"running\", oops\n\n"
        + BOTH_VERSIONS_DONE;
    let served = serve(
        Framing::Chunked,
        pieces_of(body.as_bytes(), 8),
        Ending::Clean,
    )
    .await;
    let (items, song) = read_all(&served.url, StreamLimits::default()).await;
    assert_eq!(items.len(), 4);
    assert!(
        matches!(&items[1], Err(Error::Decode { raw, .. }) if raw == "{\"status\": \"running\", oops")
    );
    assert!(items[3].is_ok());
    assert!(song.is_complete());
}

// ---- how streams end -----------------------------------------------------------

#[tokio::test]
async fn stream_that_ends_before_completion_is_stream_ended_early_with_the_message_id() {
    let body = validated("msg_early", "Early")
        + "data: {\"status\": \"running\", \"progress\": 40}\n\n"
        + "data: {\"status\": \"completed\", \"version\": 1, \"audio_url\": \"https://a/1\"}\n\n";
    let served = serve(
        Framing::CloseDelimited,
        pieces_of(body.as_bytes(), 17),
        Ending::Clean,
    )
    .await;
    let (items, song) = read_all(&served.url, StreamLimits::default()).await;
    assert_eq!(items.len(), 4, "{items:?}");
    assert!(items[..3].iter().all(Result::is_ok));
    assert!(matches!(
        &items[3],
        Err(Error::StreamEndedEarly { message_id: Some(id), .. }) if id == "msg_early"
    ));
    // The song was named: the error says what to resume it with.
    assert_eq!(
        items[3].as_ref().err().and_then(Error::resume_with),
        Some(&songbind::ResumeWith::MessageId("msg_early".into()))
    );
    // What did arrive stays readable.
    assert_eq!(song.versions[0].audio_url.as_deref(), Some("https://a/1"));
}

#[tokio::test]
async fn connection_dropped_mid_event_is_a_transport_error() {
    let body = validated("msg_cut", "Cut");
    let served = serve(
        Framing::Chunked,
        vec![body.into_bytes()],
        Ending::DropMidChunk(b"data: {\"status\": \"runn".to_vec()),
    )
    .await;
    let (items, _) = read_all(&served.url, StreamLimits::default()).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].is_ok());
    assert!(
        matches!(items[1], Err(Error::Transport { .. })),
        "{:?}",
        items[1]
    );
    // Cut after the song was named: the error names it.
    assert_eq!(
        items[1].as_ref().err().and_then(Error::resume_with),
        Some(&songbind::ResumeWith::MessageId("msg_cut".into()))
    );
}

#[tokio::test]
async fn invalid_utf8_is_a_decode_error_that_ends_the_stream() {
    let body = [
        validated("msg_bad", "Bad").into_bytes(),
        b"data: {\"song_name\": \"\xFF\xFE\"}\n\n".to_vec(),
    ]
    .concat();
    let served = serve(
        Framing::Chunked,
        vec![body, BOTH_VERSIONS_DONE.as_bytes().to_vec()],
        Ending::Clean,
    )
    .await;
    let (items, _) = read_all(&served.url, StreamLimits::default()).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(
        matches!(&items[1], Err(Error::Decode { reason, .. }) if reason.contains("invalid UTF-8"))
    );
}

#[tokio::test]
async fn oversized_event_is_event_too_large_after_reading_little_past_the_limit() {
    const LIMIT: usize = 64 * 1024;
    const PIECE: usize = 16 * 1024;
    // An event that never ends: up to 16 MiB of one data line.
    let pieces = std::iter::once(validated("msg_big", "Big").into_bytes())
        .chain(std::iter::once(b"data: ".to_vec()))
        .chain(std::iter::repeat_n(vec![b'a'; PIECE], 1024));
    let served = serve(Framing::Chunked, pieces, Ending::HoldOpen).await;
    let consumed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&consumed);
    let bytes = get(&served.url)
        .await
        .bytes_stream()
        .inspect_ok(move |frame| {
            counter.fetch_add(frame.len(), Ordering::Relaxed);
        });
    let limits = StreamLimits {
        max_event_bytes: LIMIT,
        ..StreamLimits::default()
    };
    let items: Vec<_> = SoundverseEventStream::with_limits(bytes, limits)
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(matches!(
        items[1],
        Err(Error::EventTooLarge { limit: LIMIT, .. })
    ));
    // The decoder stopped pulling bytes within one piece of the limit.
    let read = consumed.load(Ordering::Relaxed);
    assert!(
        read <= LIMIT + PIECE + 512,
        "read {read} bytes for a {LIMIT}-byte limit"
    );
}

#[tokio::test]
async fn silent_server_is_a_timeout_after_the_idle_timeout() {
    let served = serve(
        Framing::Chunked,
        vec![validated("msg_quiet", "Quiet").into_bytes()],
        Ending::HoldOpen,
    )
    .await;
    let limits = StreamLimits {
        idle_timeout: Some(Duration::from_millis(200)),
        ..StreamLimits::default()
    };
    let (items, song) = read_all(&served.url, limits).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(
        matches!(items[1], Err(Error::Timeout { after, .. }) if after == Duration::from_millis(200))
    );
    assert_eq!(song.message_id.as_deref(), Some("msg_quiet"));
}

// ---- the idle timer, on tokio's paused clock ---------------------------------

/// Bytes that arrive after the given (virtual) delays.
fn timed(
    script: Vec<(Duration, &'static str)>,
) -> impl futures::Stream<Item = Result<Bytes, Error>> + Send {
    stream::iter(script).then(|(delay, text)| async move {
        tokio::time::sleep(delay).await;
        Ok(Bytes::from_static(text.as_bytes()))
    })
}

#[tokio::test(start_paused = true)]
async fn progress_held_for_twenty_minutes_with_keepalives_is_not_an_error() {
    let four_minutes = Duration::from_secs(4 * 60);
    let mut script = vec![(
        Duration::ZERO,
        "data: {\"status\": \"running\", \"progress\": 90}\n\n",
    )];
    script.extend(std::iter::repeat_n((four_minutes, ": keepalive\n\n"), 5));
    script.push((four_minutes, BOTH_VERSIONS_DONE));
    let started = tokio::time::Instant::now();
    let song = SoundverseEventStream::new(timed(script))
        .finish()
        .await
        .expect("a complete song");
    assert!(song.is_complete());
    assert_eq!(started.elapsed(), Duration::from_secs(24 * 60));
}

#[tokio::test(start_paused = true)]
async fn no_byte_for_five_minutes_is_a_timeout_by_default() {
    let bytes = timed(vec![(
        Duration::ZERO,
        "data: {\"status\": \"running\", \"progress\": 90}\n\n",
    )])
    .chain(stream::pending());
    let started = tokio::time::Instant::now();
    let items: Vec<_> = SoundverseEventStream::new(bytes).collect().await;
    assert_eq!(items.len(), 2);
    assert!(matches!(items[1], Err(Error::Timeout { .. })));
    assert_eq!(started.elapsed(), Duration::from_secs(5 * 60));
}

// ---- through the generated client ----------------------------------------------

#[tokio::test]
async fn generated_client_generate_song_byte_stream_decodes() {
    let body = v6_sample_stream();
    let served = serve(
        Framing::Chunked,
        pieces_of(body.as_bytes(), 64),
        Ending::Clean,
    )
    .await;
    let client =
        songbind_soundverse::Client::with_api_key(&served.url, "test-key").expect("client");
    let response = client
        .generate_song()
        .body(
            songbind_soundverse::types::GenerateSongRequest::builder()
                .prompt("A cheerful pop song."),
        )
        .send()
        .await
        .expect("a streaming answer");
    let mut events = SoundverseEventStream::from_byte_stream(response.into_inner());
    let mut seen = Vec::new();
    while let Some(item) = events.next().await {
        seen.push(item.expect("a chunk").event);
    }
    assert_eq!(seen, v6_sample_events());
    assert_v6_song(events.progress());
    let head = served.request.await.expect("the request head");
    assert!(
        head.starts_with("POST /v6/generate/song HTTP/1.1\r\n"),
        "{head}"
    );
}

// ---- against the emulator ----------------------------------------------------

mod emulator {
    use songbind_emulator::{Emulator, Fault, FaultRule, Provider};
    use songbind_soundverse::Client;
    use songbind_soundverse::types::{GenerateSongRequest, RemixSongRequest};

    use super::*;

    async fn generate(emulator: &Emulator) -> SoundverseEventStream {
        let client = Client::with_api_key(&emulator.base_url(Provider::Soundverse), "test-key")
            .expect("client");
        let response = client
            .generate_song()
            .body(
                GenerateSongRequest::builder()
                    .prompt("A cheerful pop song about friendship.")
                    .lyrics(Some(
                        "Grüße an alle 🎵\nThrough every road we roam".to_owned(),
                    )),
            )
            .send()
            .await
            .expect("a streaming answer");
        SoundverseEventStream::from_byte_stream(response.into_inner())
    }

    #[tokio::test]
    async fn generate_song_stream_cut_into_tiny_pieces_completes_with_both_versions() {
        let emulator = Emulator::start_for_tests().await.expect("emulator");
        // 1 to 7 bytes per piece, cut inside UTF-8 characters too.
        emulator.inject(FaultRule::new(Fault::Fragment).provider(Provider::Soundverse));
        let song = generate(&emulator)
            .await
            .finish()
            .await
            .expect("a complete song");
        assert!(song.is_complete());
        assert!(song.provider_said_complete);
        let message_id = song.message_id.as_deref().expect("a message id");
        for version in &song.versions {
            let audio = version.audio_url.as_deref().expect("an audio URL");
            assert!(audio.contains(message_id), "{audio}");
            assert!(version.stream_url.is_some());
            let sections = version.lyrics_sections.as_ref().expect("lyrics sections");
            assert!(
                sections
                    .iter()
                    .any(|s| s.to_string().contains("Grüße an alle 🎵"))
            );
        }
        emulator.shutdown().await;
    }

    #[tokio::test]
    async fn remix_stream_decodes_job_created_and_both_versions() {
        let emulator = Emulator::start_for_tests().await.expect("emulator");
        let client = Client::with_api_key(&emulator.base_url(Provider::Soundverse), "test-key")
            .expect("client");
        let response = client
            .remix_song()
            .body(
                RemixSongRequest::builder()
                    .song_reference_url("https://example.com/song.mp3")
                    .prompt(Some(
                        "jazz remix with horns".parse().expect("a valid prompt"),
                    )),
            )
            .send()
            .await
            .expect("a streaming answer");
        let mut events = SoundverseEventStream::from_byte_stream(response.into_inner());
        let mut stages = Vec::new();
        while let Some(item) = events.next().await {
            stages.push(item.expect("a chunk").event);
        }
        assert!(matches!(
            stages.first(),
            Some(SoundverseEvent::JobCreated { .. })
        ));
        assert!(stages.contains(&SoundverseEvent::Queued));
        assert!(stages.contains(&SoundverseEvent::Progress {
            status: "streaming".into(),
            progress: Some(90)
        }));
        let song = events.progress();
        assert!(song.is_complete());
        assert!(song.job_id.is_some());
        assert_eq!(song.audio_urls().count(), 2);
        emulator.shutdown().await;
    }

    #[tokio::test]
    async fn stream_ended_by_the_provider_early_is_stream_ended_early_with_the_message_id() {
        let emulator = Emulator::start_for_tests().await.expect("emulator");
        emulator.inject(
            FaultRule::new(Fault::EndStream { after_events: 5 }).provider(Provider::Soundverse),
        );
        let mut events = generate(&emulator).await;
        let mut items = Vec::new();
        while let Some(item) = events.next().await {
            items.push(item);
        }
        assert_eq!(items.len(), 6, "{items:?}");
        let expected = events.progress().message_id.clone();
        assert!(expected.is_some());
        assert!(matches!(
            &items[5],
            Err(Error::StreamEndedEarly { message_id, .. }) if *message_id == expected
        ));
        emulator.shutdown().await;
    }

    #[tokio::test]
    async fn stream_cut_by_the_provider_is_a_transport_error() {
        let emulator = Emulator::start_for_tests().await.expect("emulator");
        emulator.inject(
            FaultRule::new(Fault::DropStream { after_events: 4 }).provider(Provider::Soundverse),
        );
        let result = generate(&emulator).await.finish().await;
        assert!(matches!(result, Err(Error::Transport { .. })), "{result:?}");
        emulator.shutdown().await;
    }
}
