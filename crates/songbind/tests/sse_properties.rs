//! Properties of the Soundverse event stream decoder over generated input:
//! how the bytes are cut, which line ends they use and what garbage they
//! hold never changes the events, never panics, always terminates, and never
//! makes the decoder hold more memory than its event limit allows.
//!
//! Memory is measured with a counting allocator that tracks, per thread,
//! the bytes allocated while one case is decoded (`block_on` runs the
//! decoder on the test's own thread).

#![cfg(feature = "soundverse")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use futures::executor::block_on;
use futures::{Stream, StreamExt, stream};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};
use songbind::Error;
use songbind::sse::{SoundverseChunk, SoundverseEventStream, StreamLimits};

// ---- a per-thread counting allocator -----------------------------------------

struct CountingAllocator;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// only addition is arithmetic on thread-local counters, which never
// allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            track(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

// ---- decoding helpers ------------------------------------------------------------

/// An item as compared across runs: the chunk, or the error's text.
type Item = Result<SoundverseChunk, String>;

fn limits(max_event_bytes: usize) -> StreamLimits {
    StreamLimits {
        max_event_bytes,
        idle_timeout: None,
    }
}

/// Decodes `bytes` to the end (no idle timer: no runtime needed).
fn decode<S>(bytes: S, max_event_bytes: usize) -> Vec<Item>
where
    S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
{
    block_on(
        SoundverseEventStream::with_limits(bytes, limits(max_event_bytes))
            .map(|item| item.map_err(|e| e.to_string()))
            .collect(),
    )
}

/// Decodes `bytes` to the end without keeping the items, checking on the
/// way that no item follows a fatal error. Returns how many items there
/// were, the last error's text, and the most memory held above the
/// starting point.
fn decode_measured<S>(bytes: S, max_event_bytes: usize) -> (usize, Option<String>, usize)
where
    S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
{
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let (count, fatal) = block_on(
        SoundverseEventStream::with_limits(bytes, limits(max_event_bytes)).fold(
            (0usize, None),
            |(count, fatal): (usize, Option<String>), item| async move {
                assert!(fatal.is_none(), "an item followed a fatal error");
                let error = item
                    .err()
                    .map(|e| e.to_string())
                    .filter(|e| ends_the_stream(e));
                (count + 1, error)
            },
        ),
    );
    let peak = PEAK.with(Cell::get);
    (count, fatal, usize::try_from(peak - start).unwrap_or(0))
}

/// `body` cut at `cuts` (positions taken modulo its length).
fn cut(body: &[u8], cuts: &[Index]) -> Vec<Bytes> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
    points.push(0);
    points.push(body.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&body[w[0]..w[1]]))
        .collect()
}

fn pieces(pieces: Vec<Bytes>) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
    stream::iter(pieces.into_iter().map(Ok))
}

/// Errors that end the stream; a chunk that fails to decode does not.
fn ends_the_stream(error: &str) -> bool {
    !error.starts_with("could not decode Soundverse stream chunk")
}

/// No item follows an error that ends the stream.
fn assert_only_last_is_fatal(items: &[Item]) {
    if let Some((_, before_last)) = items.split_last() {
        for item in before_last {
            if let Err(error) = item {
                assert!(
                    !ends_the_stream(error),
                    "an item followed a fatal error: {error}"
                );
            }
        }
    }
}

// ---- generated valid streams ---------------------------------------------------

fn chunk() -> impl Strategy<Value = Value> {
    let status = prop::sample::select(vec![
        "initializing",
        "validated",
        "streaming",
        "running",
        "processing",
        "completed",
        "uploading",
        "job_created",
        "queued",
        "failed",
        "a_future_stage",
    ]);
    (
        status,
        proptest::option::of("[a-z0-9_]{1,12}"),
        proptest::option::of("\\PC{0,12}"),
        proptest::option::of(0..=100i64),
        proptest::option::of(1..=2i64),
        proptest::option::of("https://x/[a-z0-9ü🎵]{1,8}"),
        0..1000i64,
    )
        .prop_map(
            |(status, message_id, song_name, progress, version, url, index)| {
                let mut chunk = Map::new();
                chunk.insert("status".into(), status.into());
                chunk.insert("chunkIndex".into(), index.into());
                chunk.insert("isComplete".into(), false.into());
                let mut put = |key: &str, value: Option<Value>| {
                    if let Some(value) = value {
                        chunk.insert(key.into(), value);
                    }
                };
                put("message_id", message_id.map(Value::from));
                put("song_name", song_name.map(Value::from));
                put("progress", progress.map(Value::from));
                put("version", version.map(Value::from));
                match status {
                    "streaming" => put("stream_url", url.map(Value::from)),
                    "completed" => put("audio_url", url.map(Value::from)),
                    "job_created" => put("job_id", url.map(Value::from)),
                    _ => {}
                }
                Value::Object(chunk)
            },
        )
}

/// How one event is written: as one `data:` line or several (pretty JSON,
/// one line each), with a keepalive comment and field lines before it.
#[derive(Clone, Debug)]
struct Writing {
    multiline: bool,
    keepalive: bool,
    field_lines: bool,
}

fn writing() -> impl Strategy<Value = Writing> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(multiline, keepalive, field_lines)| {
        Writing {
            multiline,
            keepalive,
            field_lines,
        }
    })
}

/// The stream text of `chunks`, every line ended by `eol`.
fn write_stream(chunks: &[(Value, Writing)], eol: &str, bom: bool) -> Vec<u8> {
    let mut lines: Vec<String> = Vec::new();
    for (chunk, how) in chunks {
        if how.keepalive {
            lines.push(": keepalive".into());
            lines.push(String::new());
        }
        if how.field_lines {
            lines.extend([
                "event: message".into(),
                "id: 42".into(),
                "retry: 1000".into(),
            ]);
        }
        let json = if how.multiline {
            serde_json::to_string_pretty(chunk)
        } else {
            serde_json::to_string(chunk)
        }
        .unwrap_or_default();
        lines.extend(json.lines().map(|line| format!("data: {line}")));
        lines.push(String::new());
    }
    let mut text = if bom {
        "\u{feff}".to_owned()
    } else {
        String::new()
    };
    for line in lines {
        text.push_str(&line);
        text.push_str(eol);
    }
    text.into_bytes()
}

fn valid_stream() -> impl Strategy<Value = Vec<(Value, Writing)>> {
    prop::collection::vec((chunk(), writing()), 0..12)
}

fn line_end() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["\n", "\r\n", "\r"])
}

/// Pieces of a byte soup: arbitrary bytes and bits of SSE and JSON.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        3 => any::<u8>().prop_map(|b| vec![b]),
        1 => prop::sample::select(vec![
            &b"data: "[..], b"data:", b"\n", b"\r", b"\r\n", b"\n\n", b":", b": keepalive\n",
            b"event: x\n", b"id: \x00\n", b"retry: 9\n", b"{", b"}", b"\"status\": \"completed\"",
            b"\"isComplete\": true", b",", b"\xEF\xBB\xBF", b"\xC3", b"\xBC", b"\xF0\x9F\x8E\xB5",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    prop::collection::vec(token, 0..400).prop_map(|tokens| tokens.concat())
}

/// The text of a JSON object of documented and unknown fields (each key
/// once), each holding a value of the right type or a wrong one, valid JSON
/// or not quite (a lone surrogate, a number out of range).
fn chunk_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "status",
        "message_id",
        "job_id",
        "song_name",
        "album_art",
        "stream_url",
        "audio_url",
        "error",
        "operation",
        "chunkIndex",
        "progress",
        "version",
        "isComplete",
        "streaming_ready",
        "lyrics_sections",
        "extra",
        "Status",
    ]);
    let value = prop::sample::select(vec![
        "null",
        "true",
        "0",
        "-3",
        "250",
        "1.5",
        "-0",
        "1e999",
        "18446744073709551615",
        "\"running\"",
        "\"completed\"",
        "\"failed\"",
        "\"streaming\"",
        "\"job_created\"",
        "\"caf\\u00e9\"",
        "\"\\ud800\"",
        "\"  \"",
        "[]",
        "[{}]",
        "[{\"a\": [1, null]}]",
        "[1]",
        "{}",
        "{\"a\": {\"b\": [true, \"\\n\"]}}",
    ]);
    prop::collection::btree_map(key, value, 0..8).prop_map(|fields| {
        let fields: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        format!("{{{}}}", fields.join(", "))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The typed decoder reads each chunk in one pass, without a `Value`;
    /// it accepts exactly the chunks that parse as a JSON value and then
    /// as the generated `StreamChunk` (the former two-pass decoding), and
    /// its typed fields and `raw()` say what that value says.
    #[test]
    fn typed_decoding_accepts_what_a_value_and_the_generated_chunk_accept(
        text in chunk_text(),
        name in prop::sample::select(vec!["", "message", "job_created"]),
    ) {
        use serde::Deserialize;
        use songbind_soundverse::types::StreamChunk;

        let reference = serde_json::from_str::<Value>(&text)
            .ok()
            .filter(Value::is_object)
            .filter(|value| StreamChunk::deserialize(value).is_ok());
        let decoded = SoundverseChunk::decode(&text, name);
        prop_assert_eq!(decoded.is_ok(), reference.is_some(), "{}: {:?}", text, decoded);
        if let (Ok(chunk), Some(value)) = (decoded, reference) {
            let text_of = |key: &str| value.get(key).and_then(Value::as_str);
            prop_assert_eq!(chunk.raw(), &value);
            prop_assert_eq!(chunk.status.as_deref(), text_of("status"));
            prop_assert_eq!(chunk.message_id.as_deref(), text_of("message_id"));
            prop_assert_eq!(chunk.song_name.as_deref(), text_of("song_name"));
            prop_assert_eq!(chunk.album_art.as_deref(), text_of("album_art"));
            prop_assert_eq!(chunk.chunk_index, value.get("chunkIndex").and_then(Value::as_i64));
            prop_assert_eq!(
                chunk.progress,
                value.get("progress").and_then(Value::as_i64).map(|p| p.clamp(0, 100) as u8)
            );
            prop_assert_eq!(
                chunk.version,
                value.get("version").and_then(Value::as_i64).and_then(|v| u32::try_from(v).ok())
            );
            prop_assert_eq!(chunk.is_complete, value.get("isComplete") == Some(&Value::Bool(true)));
        }
    }

    /// Cutting a valid stream anywhere, with any line-end style, a byte
    /// order mark, comments, field lines and multi-line data, decodes to
    /// exactly the items of the plain, unsplit LF stream.
    #[test]
    fn random_cuts_and_line_ends_decode_like_the_unsplit_stream(
        chunks in valid_stream(),
        eol in line_end(),
        bom in any::<bool>(),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
    ) {
        let plain: Vec<(Value, Writing)> = chunks
            .iter()
            .map(|(chunk, _)| (chunk.clone(), Writing { multiline: false, keepalive: false, field_lines: false }))
            .collect();
        let plain_body = write_stream(&plain, "\n", false);
        let expected = decode(pieces(vec![Bytes::from(plain_body)]), 1 << 20);

        let body = write_stream(&chunks, eol, bom);
        let actual = decode(pieces(cut(&body, &cuts)), 1 << 20);
        prop_assert_eq!(&actual, &expected);

        // And the unsplit stream holds exactly the chunks that were written.
        let decoded: Vec<Value> = expected.iter().filter_map(|item| item.as_ref().ok()).map(|c| c.raw().clone()).collect();
        let written: Vec<Value> = chunks.into_iter().map(|(chunk, _)| chunk).collect();
        prop_assert_eq!(decoded, written);
    }

    /// Any bytes, cut anywhere: no panic, the stream ends, no item follows
    /// a fatal error, and memory stays within a small multiple of the event
    /// limit.
    #[test]
    fn random_bytes_never_panic_and_decode_in_bounded_memory(
        body in soup(),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
    ) {
        const LIMIT: usize = 512;
        let (count, _, peak) = decode_measured(pieces(cut(&body, &cuts)), LIMIT);
        prop_assert!(count <= body.len() + 1);
        prop_assert!(peak <= 64 * LIMIT + 2 * body.len(), "peak {} bytes", peak);
    }

    /// Garbage spliced into a valid stream: no panic, the stream ends, no
    /// item follows a fatal error, and every chunk it yields is one that was
    /// written or one the garbage formed.
    #[test]
    fn garbage_spliced_into_a_valid_stream_never_panics(
        chunks in valid_stream(),
        eol in line_end(),
        garbage in prop::collection::vec((any::<Index>(), soup()), 1..4),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
    ) {
        let mut body = write_stream(&chunks, eol, false);
        for (at, junk) in garbage {
            let at = at.index(body.len() + 1);
            body.splice(at..at, junk);
        }
        let items = decode(pieces(cut(&body, &cuts)), 4096);
        prop_assert!(items.len() <= body.len() + 1);
        assert_only_last_is_fatal(&items);
    }
}

/// A lazily generated endless byte soup of valid UTF-8 SSE fragments (so
/// that no UTF-8 error stops it early): the decoder reads megabytes of it
/// and never holds more than its limit allows.
#[test]
fn long_garbage_stream_is_decoded_in_memory_bounded_by_the_event_limit() {
    const LIMIT: usize = 4096;
    const TOTAL: usize = 4 * 1024 * 1024;
    const TOKENS: &[&str] = &[
        "data: ",
        "\n",
        "\n",
        "\r\n",
        "\r",
        ": keepalive",
        "{",
        "}",
        "\"status\": \"running\"",
        ",",
        "x",
        "event: e",
        "id: 1",
        "retry: 5",
        "\"progress\": 90",
        "ü",
        "🎵",
    ];
    for seed in [1u64, 7, 42, 1234] {
        let mut state = seed;
        let mut next = move || {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let piece_sizes = [1usize, 7, 100, 4096];
        let mut sent = 0usize;
        let generator = std::iter::from_fn(move || {
            if sent >= TOTAL {
                return None;
            }
            let size = piece_sizes[(next() % 4) as usize];
            let mut piece = String::with_capacity(size + 16);
            while piece.len() < size {
                piece.push_str(TOKENS[(next() % TOKENS.len() as u64) as usize]);
            }
            sent += piece.len();
            Some(Ok(Bytes::from(piece)))
        });
        let (_, _, peak) = decode_measured(stream::iter(generator), LIMIT);
        assert!(
            peak <= 64 * LIMIT,
            "seed {seed}: peak {peak} bytes for a {LIMIT}-byte limit"
        );
    }
}

/// An event that never ends, as one endless line or as endless `data:`
/// lines, stops with the event-size error once past the limit, having held
/// a few times the limit at most (and far less than the 16 MiB offered).
#[test]
fn endless_event_stops_at_the_limit_in_bounded_memory() {
    const LIMIT: usize = 64 * 1024;
    let endless_line = std::iter::once(Bytes::from_static(b"data: "))
        .chain(std::iter::repeat_n(Bytes::from(vec![b'a'; 4096]), 4096));
    let endless_lines = std::iter::repeat_n(Bytes::from("data: abc\n".repeat(400)), 4096);
    for (name, body) in [
        (
            "one endless line",
            stream::iter(endless_line.map(Ok)).boxed(),
        ),
        (
            "endless data lines",
            stream::iter(endless_lines.map(Ok)).boxed(),
        ),
    ] {
        let (_, fatal, peak) = decode_measured(body, LIMIT);
        assert_eq!(
            fatal.as_deref(),
            Some("Soundverse event stream: an event exceeded the limit of 65536 bytes"),
            "{name}"
        );
        assert!(
            peak <= 8 * LIMIT,
            "{name}: peak {peak} bytes for a {LIMIT}-byte limit"
        );
    }
}
