//! A long, realistic Soundverse event stream for the SSE bench.
//!
//! Built from the spec's v6 (generate song) and v7 (remix) example chunks
//! (`specs/soundverse.yaml`, `components/examples/v6_*` and `v7_*`), with
//! the `"..."` the pages elide filled in at realistic sizes: `msg_` + 32 hex
//! ids, signed storage URLs of about 300 characters, eight lyrics sections
//! of four lines each on the final chunks. Progress advances one percent per
//! chunk and holds at 90 with `: keepalive` comments, as the provider notes
//! describe. Songs follow one another in one stream, v6 and v7 alternating,
//! so the stream holds thousands of events; the last chunk of each song has
//! `isComplete: true`.
//!
//! [`split`] cuts the bytes at random boundaries (a seeded generator, so
//! every run decodes the same pieces), inside lines, JSON strings and
//! multi-byte characters alike.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// The stream and what it holds.
#[derive(Clone, Debug)]
pub struct SseFixture {
    /// The whole body.
    pub body: Bytes,
    /// How many `data:` events (non-blank) it holds.
    pub events: usize,
    /// How many `: keepalive` comments it holds.
    pub keepalives: usize,
    /// How many songs (each a complete v6 or v7 stream).
    pub songs: usize,
}

/// Builds a stream of `songs` songs, v6 and v7 alternating (v6 first).
pub fn build(songs: usize) -> SseFixture {
    let mut writer = Writer::default();
    for song in 0..songs {
        if song % 2 == 0 {
            v6_song(&mut writer, song);
        } else {
            v7_song(&mut writer, song);
        }
    }
    SseFixture {
        body: Bytes::from(writer.body),
        events: writer.events,
        keepalives: writer.keepalives,
        songs,
    }
}

/// Cuts `body` into pieces of 1 to `max_piece` bytes (uniformly drawn from
/// a generator seeded with `seed`).
pub fn split(body: &Bytes, max_piece: usize, seed: u64) -> Vec<Bytes> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let len = rng.random_range(1..=max_piece.max(1)).min(body.len() - at);
        pieces.push(body.slice(at..at + len));
        at += len;
    }
    pieces
}

#[derive(Default)]
struct Writer {
    body: Vec<u8>,
    events: usize,
    keepalives: usize,
}

impl Writer {
    fn event(&mut self, chunk: &Value) {
        self.body.extend_from_slice(b"data: ");
        self.body.extend_from_slice(chunk.to_string().as_bytes());
        self.body.extend_from_slice(b"\n\n");
        self.events += 1;
    }

    fn keepalive(&mut self) {
        self.body.extend_from_slice(b": keepalive\n\n");
        self.keepalives += 1;
    }
}

/// A deterministic 32-hex-digit id for song `song`, salted by `kind`.
fn hex_id(song: usize, kind: u64) -> String {
    let mut state = (song as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ kind;
    let mut out = String::with_capacity(32);
    for _ in 0..2 {
        state ^= state >> 33;
        state = state.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        state ^= state >> 29;
        out.push_str(&format!("{state:016x}"));
    }
    out
}

/// A signed storage URL of about 300 characters.
fn signed_url(song: usize, what: &str, ext: &str) -> String {
    format!(
        "https://storage.soundverse.ai/{what}/2025/06/{id}.{ext}?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIAEXAMPLE7Q2%2F20250601%2Fus-east-1%2Fs3%2Faws4_request\
         &X-Amz-Date=20250601T120000Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host\
         &X-Amz-Signature={sig}{sig2}",
        id = hex_id(song, 0xA1),
        sig = hex_id(song, 0xB2),
        sig2 = hex_id(song, 0xC3),
    )
}

/// Eight sections of four lines, as the final `completed` chunk carries them.
fn lyrics_sections(song: usize) -> Value {
    const NAMES: [&str; 8] = [
        "Intro",
        "Verse 1",
        "Pre-Chorus",
        "Chorus",
        "Verse 2",
        "Chorus",
        "Bridge",
        "Outro",
    ];
    const WORDS: [&str; 16] = [
        "friendship",
        "sunlight",
        "together",
        "we are",
        "running",
        "through",
        "the summer",
        "rain",
        "hold on",
        "never let go",
        "café",
        "lights",
        "of the city",
        "dancing",
        "all night",
        "home",
    ];
    let sections: Vec<Value> = NAMES
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let lines: Vec<String> = (0..4)
                .map(|line| {
                    (0..6)
                        .map(|word| WORDS[(song + index * 7 + line * 3 + word * 5) % WORDS.len()])
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            json!({
                "section": name,
                "lines": lines,
                "start_time": index as f64 * 22.5,
                "end_time": (index + 1) as f64 * 22.5 - 0.25,
            })
        })
        .collect();
    Value::Array(sections)
}

/// One v6 generate-song stream (the spec's `v6_*` examples, in order).
fn v6_song(out: &mut Writer, song: usize) {
    let message_id = format!("msg_{}", hex_id(song, 1));
    let album_art = signed_url(song, "album-art", "png");
    let song_name = "Friendship in the Summer Sunlight";
    let mut index = 0;
    let mut next = || {
        index += 1;
        index - 1
    };
    out.event(&json!({"isComplete": false, "status": "initializing", "chunkIndex": next()}));
    let stage = |status: &str, index: i64| {
        json!({
            "message_id": message_id, "isComplete": false, "status": status,
            "album_art": album_art, "song_name": song_name, "chunkIndex": index,
        })
    };
    out.event(&stage("validated", next()));
    out.event(&stage("streaming", next()));
    out.event(&stage("processing", next()));
    for progress in 1..=90 {
        let mut chunk = stage("running", next());
        chunk["progress"] = json!(progress);
        out.event(&chunk);
        if progress == 40 {
            for version in 1..=2 {
                out.event(&json!({
                    "message_id": message_id, "isComplete": false, "status": "streaming",
                    "chunkIndex": next(),
                    "stream_url": format!("https://api.soundverse.ai/v6/stream/{message_id}/{version}"),
                    "version": version, "streaming_ready": true,
                    "album_art": album_art, "song_name": song_name,
                }));
            }
        }
    }
    for _ in 0..24 {
        out.keepalive(); // the hold at 90: a keepalive every 5 s for 2 minutes
    }
    for version in 1..=2 {
        out.event(&json!({
            "message_id": message_id, "isComplete": false, "chunkIndex": next(),
            "status": "completed", "album_art": album_art,
            "audio_url": signed_url(song * 2 + version, "audio", "mp3"),
            "song_name": song_name, "progress": 100, "version": version,
            "operation": "generate_song",
        }));
        out.event(&json!({
            "message_id": message_id, "isComplete": false, "status": "uploading",
            "version": version, "chunkIndex": next(),
        }));
        out.event(&json!({
            "message_id": message_id, "isComplete": version == 2, "status": "completed",
            "version": version, "lyrics_sections": lyrics_sections(song + version),
            "chunkIndex": next(), "operation": "generate_song",
        }));
    }
}

/// One v7 remix stream (the spec's `v7_*` examples, in order).
fn v7_song(out: &mut Writer, song: usize) {
    let message_id = format!("msg_{}", hex_id(song, 1));
    let job_id = format!("job_{}", hex_id(song, 2));
    let mut index = 0;
    let mut next = || {
        index += 1;
        index - 1
    };
    out.event(&json!({"isComplete": false, "status": "job_created", "job_id": job_id, "chunkIndex": next()}));
    out.event(&json!({"isComplete": false, "status": "validating", "chunkIndex": next()}));
    for status in ["queued", "starting", "uploading"] {
        out.event(&json!({"message_id": message_id, "isComplete": false, "status": status, "chunkIndex": next()}));
    }
    for progress in 0..=90 {
        out.event(&json!({
            "message_id": message_id, "isComplete": false, "status": "streaming",
            "progress": progress, "chunkIndex": next(),
        }));
        if progress % 30 == 29 {
            out.keepalive();
        }
    }
    for _ in 0..24 {
        out.keepalive();
    }
    for version in 1..=2 {
        out.event(&json!({
            "message_id": message_id, "isComplete": version == 2, "status": "completed",
            "progress": 100, "version": version,
            "audio_url": signed_url(song * 2 + version, "audio", "mp3"),
            "song_name": "Friendship in the Summer Sunlight (Remix)",
            "album_art": signed_url(song, "album-art", "png"),
            "operation": "remix_song", "chunkIndex": next(),
        }));
    }
}
