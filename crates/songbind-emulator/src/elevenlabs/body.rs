//! The audio the emulator makes, and the paced body that sends it piece by
//! piece, with the stream faults applied.
//!
//! The body is pulled by the server (not pushed from a task): when the
//! client goes away the body is dropped at once, even in a pause, and with
//! it the generation's concurrency slot.

use std::io;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use rand::Rng;

use super::Slot;
use super::validate::AudioFormat;
use crate::faults::Fault;
use crate::files;
use crate::pacing::Pacing;

/// A song's audio: its format and length. Chunks are made on demand, one
/// second of audio each, so that a long song is never held whole.
#[derive(Clone, Copy, Debug)]
pub(super) struct Audio {
    format: AudioFormat,
    /// Sample rate in Hz.
    rate: u32,
    /// Number of (mono, 16-bit) samples.
    samples: u64,
}

impl Audio {
    /// `length_ms` of audio in `format`.
    pub(super) fn new(format: AudioFormat, length_ms: i64) -> Self {
        let rate = match format {
            AudioFormat::Wav => files::SAMPLE_RATE,
            AudioFormat::Pcm(rate) => rate,
        };
        let length_ms = u64::try_from(length_ms).unwrap_or(0);
        // A WAV file's length field is 32 bits: stay well within it.
        let samples =
            (length_ms.saturating_mul(u64::from(rate)) / 1000).min(u64::from(u32::MAX / 4));
        Self {
            format,
            rate,
            samples,
        }
    }

    /// The `Content-Type` of the audio.
    pub(super) fn content_type(self) -> &'static str {
        match self.format {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Pcm(_) => "audio/pcm",
        }
    }

    /// The file extension of the audio.
    pub(super) fn extension(self) -> &'static str {
        match self.format {
            AudioFormat::Wav => "wav",
            AudioFormat::Pcm(_) => "pcm",
        }
    }

    /// How many chunks the audio is sent in (one per second, at least one).
    pub(super) fn chunk_count(self) -> u64 {
        self.samples.div_ceil(u64::from(self.rate.max(1))).max(1)
    }

    /// Chunk `i`: its second of samples, after the WAV header for the first.
    pub(super) fn chunk(self, i: u64) -> Bytes {
        let rate = u64::from(self.rate.max(1));
        let first = (i * rate).min(self.samples);
        let count = rate.min(self.samples - first);
        let samples = files::tone_at(
            self.rate,
            usize::try_from(first).unwrap_or(0),
            usize::try_from(count * 2).unwrap_or(0),
        );
        match (self.format, i) {
            (AudioFormat::Wav, 0) => {
                let data_len = u32::try_from(self.samples * 2).unwrap_or(u32::MAX);
                let mut bytes = files::wav_header_at(self.rate, data_len);
                bytes.extend_from_slice(&samples);
                Bytes::from(bytes)
            }
            _ => Bytes::from(samples),
        }
    }
}

/// One piece of a paced body: sent after `wait` (real time, scaled).
pub(super) struct Piece {
    /// The pause before it.
    pub(super) wait: Duration,
    /// What is sent.
    pub(super) bytes: Bytes,
}

/// The state of a paced body between two pulls.
struct Writer<I> {
    pieces: I,
    pacing: Pacing,
    fault: Option<Fault>,
    /// Pieces sent so far (the "events" stream faults count).
    sent: usize,
    /// What is left of a piece being sent in fragments.
    rest: Bytes,
    /// Held until the body ends or is dropped.
    slot: Option<Slot>,
}

/// A body that sends `pieces` in order, each after its pause, with `fault`
/// (a stream fault) applied; `slot` is freed when the last piece is out or
/// the body is dropped.
pub(super) fn paced<I>(pieces: I, pacing: Pacing, fault: Option<Fault>, slot: Slot) -> Body
where
    I: Iterator<Item = Piece> + Send + 'static,
{
    let writer = Writer {
        pieces,
        pacing,
        fault,
        sent: 0,
        rest: Bytes::new(),
        slot: Some(slot),
    };
    Body::from_stream(futures::stream::unfold(writer, next))
}

/// The next bytes of a paced body, or its end.
async fn next<I>(mut writer: Writer<I>) -> Option<(io::Result<Bytes>, Writer<I>)>
where
    I: Iterator<Item = Piece>,
{
    if !writer.rest.is_empty() {
        let bytes = fragment(&mut writer.rest);
        tokio::task::yield_now().await;
        return Some((Ok(bytes), writer));
    }
    let Some(piece) = writer.pieces.next() else {
        writer.slot = None;
        return None;
    };
    writer.pacing.sleep(piece.wait).await;
    match writer.fault {
        Some(Fault::DropStream { after_events }) if writer.sent == after_events => {
            writer.slot = None;
            // Ends the body on the next pull, after this error cut it.
            writer.pieces_done();
            let cut = io::Error::new(io::ErrorKind::ConnectionAborted, "emulated drop");
            return Some((Err(cut), writer));
        }
        Some(Fault::EndStream { after_events }) if writer.sent == after_events => {
            writer.slot = None;
            return None;
        }
        Some(Fault::StallStream {
            after_events,
            duration,
        }) if writer.sent == after_events => tokio::time::sleep(duration).await,
        _ => {}
    }
    writer.sent += 1;
    if writer.fault == Some(Fault::Fragment) {
        writer.rest = piece.bytes;
        let bytes = fragment(&mut writer.rest);
        return Some((Ok(bytes), writer));
    }
    Some((Ok(piece.bytes), writer))
}

impl<I> Writer<I> {
    /// Sends nothing more: the fault that cut the body is not repeated.
    fn pieces_done(&mut self) {
        self.fault = Some(Fault::EndStream {
            after_events: self.sent,
        });
    }
}

/// The first 1 to 7 bytes of `rest` (split anywhere, even inside a UTF-8
/// character).
fn fragment(rest: &mut Bytes) -> Bytes {
    let len = rand::rng().random_range(1..=7).min(rest.len());
    rest.split_to(len)
}
