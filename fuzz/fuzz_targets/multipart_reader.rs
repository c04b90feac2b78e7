//! Arbitrary bytes, cut into arbitrary pieces, read as the answer to an
//! ElevenLabs detailed compose (`songbind::elevenlabs::fuzz_detailed_answer`:
//! the `multipart/mixed` reader, the metadata part's decoding, and the
//! audio part's checks), exactly as `compose_detailed_to` reads an answer.
//!
//! Input layout (so that libFuzzer mutates the request, the content type and
//! the cuts too):
//!
//! * byte 0: the request: bits 0-2 pick the output format (`auto`,
//!   `pcm_16000`, `mp3_44100_128`, `ulaw_8000`, `alaw_8000`,
//!   `opus_48000_64`, `pcm_8000`, `mp3_22050_32`), bit 3 asks for a length
//!   (`music_length_ms` 3000 + 1000 * bits 4-7);
//! * byte 1: how many cut points follow (`byte % 32`);
//! * then two bytes (little-endian) per cut point, taken modulo the body's
//!   length plus one;
//! * then the answer's content type, up to the first `\n`;
//! * the rest: the body.
//!
//! Besides "never panics", it checks:
//!
//! * an accepted answer wrote exactly `audio.bytes` bytes, at least one, and
//!   they are one contiguous run of the body; a WAV, Ogg or MP3 starts with
//!   its signature;
//! * an answer refused as not audio (`Error::Provider`, status 200) wrote
//!   nothing;
//! * cutting the body changes nothing: the pieces read exactly like the
//!   whole body in one piece (the same answer and bytes, or the same error
//!   text).

#![no_main]

use bytes::Bytes;
use futures::executor::block_on;
use futures::stream;
use libfuzzer_sys::fuzz_target;
use songbind::Error;
use songbind::elevenlabs::{AudioFormat, ComposeRequest, OutputFormat, fuzz_detailed_answer};

const FORMATS: [OutputFormat; 8] = [
    OutputFormat::Auto,
    OutputFormat::Pcm16000,
    OutputFormat::Mp344100128,
    OutputFormat::Ulaw8000,
    OutputFormat::Alaw8000,
    OutputFormat::Opus4800064,
    OutputFormat::Pcm8000,
    OutputFormat::Mp32205032,
];

/// How a run went: the answer (or the error's text) and the bytes written.
type Run = (Result<songbind::elevenlabs::Detailed, String>, Vec<u8>);

fn read(request: &ComposeRequest, content_type: &str, pieces: Vec<Bytes>) -> Run {
    let body = stream::iter(pieces.into_iter().map(Ok::<_, Error>));
    let mut sink = Vec::new();
    let result = block_on(fuzz_detailed_answer(request, content_type, body, &mut sink));
    if let Err(error @ Error::Provider { .. }) = &result {
        assert_eq!(error.status(), Some(200), "{error}");
        assert!(
            sink.is_empty(),
            "an answer that is not audio was written: {error}"
        );
    }
    (result.map_err(|e| e.to_string()), sink)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let (setup, rest) = data.split_first().map_or((0, data), |(b, r)| (*b, r));
    let (cut_count, rest) = rest.split_first().map_or((0, rest), |(b, r)| (*b, r));
    let cut_bytes = usize::from(cut_count % 32) * 2;
    let (cut_spec, rest) = rest.split_at(cut_bytes.min(rest.len()));
    let (content_type, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let content_type = String::from_utf8_lossy(content_type);

    let mut request =
        ComposeRequest::from_prompt("fuzz").output_format(FORMATS[usize::from(setup & 7)]);
    if setup & 8 != 0 {
        request = request.music_length_ms(3000 + 1000 * i64::from(setup >> 4));
    }

    let mut points: Vec<usize> = cut_spec
        .chunks(2)
        .map(|pair| {
            let raw = u16::from_le_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            usize::from(raw) % (body.len() + 1)
        })
        .collect();
    points.push(0);
    points.push(body.len());
    points.sort_unstable();
    let pieces: Vec<Bytes> = points
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&body[w[0]..w[1]]))
        .collect();

    let cut = read(&request, &content_type, pieces);
    let whole = read(&request, &content_type, vec![Bytes::copy_from_slice(body)]);
    if let (Ok(detailed), sink) = &whole {
        assert_eq!(detailed.audio.bytes, sink.len() as u64);
        assert!(!sink.is_empty(), "empty audio accepted");
        assert!(contains(body, sink), "the audio is not a run of the body");
        let starts = |signature: &[u8]| sink.starts_with(signature);
        match detailed.audio.format {
            AudioFormat::Wav => assert!(starts(b"RIFF") && sink.get(8..12) == Some(b"WAVE")),
            AudioFormat::Ogg => assert!(starts(b"OggS")),
            AudioFormat::Mp3 => assert!(starts(b"ID3") || starts(&[0xFF])),
            _ => {}
        }
    }
    assert_eq!(cut, whole, "cutting the body changed the answer");
});
