//! Output files: every URL the emulator names is served by the emulator
//! itself, so downloads work end to end: audio as a small valid WAV file,
//! album art and covers (`.png`) as a valid 1x1 PNG image.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream;

/// Sample rate of the emulator's audio files.
pub(crate) const SAMPLE_RATE: u32 = 8_000;

/// A mono 16-bit PCM WAV file of `data_len` bytes of samples (a 440 Hz tone).
fn wav_header(data_len: u32) -> Vec<u8> {
    wav_header_at(SAMPLE_RATE, data_len)
}

/// The 44-byte header of a mono 16-bit PCM WAV file sampled at `rate` Hz
/// whose samples take `data_len` bytes.
pub(crate) fn wav_header_at(rate: u32, data_len: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(44);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&rate.saturating_mul(2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out
}

/// `len` bytes of 16-bit samples of a 440 Hz tone starting at sample `first`.
/// An odd `len` ends with a zero padding byte.
fn tone(first: usize, len: usize) -> Vec<u8> {
    tone_at(SAMPLE_RATE, first, len)
}

/// `len` bytes of 16-bit little-endian samples of a 440 Hz tone sampled at
/// `rate` Hz, starting at sample `first`. An odd `len` ends with a zero
/// padding byte.
pub(crate) fn tone_at(rate: u32, first: usize, len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (first..first + len.div_ceil(2))
        .flat_map(|i| {
            let t = i as f64 / f64::from(rate.max(1));
            let sample = ((t * 440.0 * std::f64::consts::TAU).sin() * 8_000.0) as i16;
            sample.to_le_bytes()
        })
        .collect();
    bytes.truncate(len);
    bytes
}

/// The one-second file served for every ordinary output name.
pub fn sample_wav() -> Bytes {
    let data = tone(0, SAMPLE_RATE as usize * 2);
    let mut file = wav_header(data.len() as u32);
    file.extend_from_slice(&data);
    Bytes::from(file)
}

/// A valid 1x1 transparent PNG (signature, IHDR, IDAT, IEND).
const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// The public URL path of an output file (`<name>` ends in `.wav` or `.png`).
pub(crate) fn output_path(name: &str) -> String {
    format!("/files/{name}")
}

/// `GET /files/{name}`: the sample WAV, or for `sized-<bytes>.wav` a WAV of
/// exactly that many bytes, streamed in 64 KiB pieces (for download tests).
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    if let Some(size) = name
        .strip_prefix("sized-")
        .and_then(|rest| rest.strip_suffix(".wav"))
        .and_then(|n| n.parse::<u32>().ok())
    {
        if !(44..=u32::MAX - 8).contains(&size) {
            return (StatusCode::NOT_FOUND, "size out of range").into_response();
        }
        return sized(size);
    }
    if name.ends_with(".png") {
        return (
            [(header::CONTENT_TYPE, "image/png")],
            Bytes::from_static(PIXEL_PNG),
        )
            .into_response();
    }
    if !name.ends_with(".wav") || name.contains('/') {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    }
    ([(header::CONTENT_TYPE, "audio/wav")], sample_wav()).into_response()
}

fn sized(total: u32) -> Response {
    const PIECE: usize = 64 * 1024;
    let data_len = total - 44;
    let header = Bytes::from(wav_header(data_len));
    let pieces = (0..data_len as usize).step_by(PIECE).map(move |offset| {
        let len = PIECE.min(data_len as usize - offset);
        Ok::<_, std::io::Error>(Bytes::from(tone(offset / 2, len)))
    });
    let body = stream::iter(std::iter::once(Ok(header)).chain(pieces));
    (
        [
            (header::CONTENT_TYPE, "audio/wav".to_owned()),
            (header::CONTENT_LENGTH, total.to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_a_well_formed_wav() {
        let wav = sample_wav();
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(&wav[8..12], b"WAVE");
        let riff_len = u32::from_le_bytes(wav[4..8].try_into().unwrap()) as usize;
        assert_eq!(riff_len + 8, wav.len());
        let data_len = u32::from_le_bytes(wav[40..44].try_into().unwrap()) as usize;
        assert_eq!(data_len + 44, wav.len());
    }
}
