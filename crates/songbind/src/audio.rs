//! An answer is checked before it is called a song: its content type and
//! its first bytes must name the same audio format, and once it has ended
//! it must be whole where its length can be known.
//!
//! [`Checked`] sits between an answer's bytes and the caller's writer. It
//! holds the first bytes back until they can be checked, so that a writer
//! never receives a byte of an answer that is not audio (a JSON error or an
//! HTML page sent with a 200): that answer becomes [`Error::Provider`] with
//! its status, headers and a bounded excerpt, the provider's message read
//! from it as from any error answer.
//!
//! What "audio" means here:
//!
//! * **MP3** (`audio/mpeg`, `audio/mp3`): an `ID3` tag or an MPEG audio frame
//!   header (sync `0xFFE`, no reserved version, layer, bitrate or sample
//!   rate) first;
//! * **WAV** (`audio/wav`, `audio/x-wav`, `audio/wave`): `RIFF....WAVE`;
//! * **Ogg** (`audio/ogg`, `audio/opus`): `OggS`;
//! * **raw** PCM (`audio/pcm`, `audio/l16`), μ-law (`audio/basic`,
//!   `audio/ulaw`, `audio/mulaw`) and A-law (`audio/alaw`): no header to
//!   check, so only when the request asked for that raw format.
//!
//! Once the answer has ended, [`Checked::finish`] refuses it as incomplete
//! ([`Error::Decode`]) when it is empty, when it is shorter than its
//! `Content-Length`, when a WAV holds other than its RIFF header's length or
//! less than its `data` chunk's, when raw audio ends inside a sample, and
//! when the request gave a length and the format a byte rate: raw audio and
//! WAV must hold at least 95% of `length × byte rate` (the 5% is slack for
//! a model that rounds a song's length), MP3 at least 50% of `length ×
//! bitrate` (generous: a variable-bitrate encoder or long silences make a
//! file smaller than its nominal bitrate says). An Ogg stream has no length
//! to check without parsing its pages: only its first bytes are checked.

#![cfg(feature = "elevenlabs")]

use reqwest::header::HeaderMap;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::{Error, ProviderName, Result};

/// How many first bytes decide the format (`RIFF....WAVE` is the longest
/// signature).
const SNIFF: usize = 12;

/// How many first bytes are kept: enough for a WAV header's chunks, and the
/// excerpt an answer that is not audio is quoted by.
const HEAD: usize = 4096;

/// Slack, in percent, for audio whose byte rate is exact (raw and WAV).
const EXACT_SLACK: u64 = 5;

/// Slack, in percent, for MP3 (its bitrate is nominal).
const MP3_SLACK: u64 = 50;

/// The audio format an answer was checked to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AudioFormat {
    /// MP3: an `ID3` tag or an MPEG audio frame first.
    Mp3,
    /// WAV: `RIFF....WAVE`.
    Wav,
    /// Ogg (Opus): `OggS`.
    Ogg,
    /// Raw signed 16-bit little-endian mono PCM.
    Pcm,
    /// Raw 8-bit μ-law.
    Ulaw,
    /// Raw 8-bit A-law.
    Alaw,
}

impl AudioFormat {
    /// The format's usual content type (`audio/mpeg`, `audio/wav`,
    /// `audio/ogg`, `audio/pcm`, `audio/basic`, `audio/alaw`).
    pub fn content_type(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Ogg => "audio/ogg",
            AudioFormat::Pcm => "audio/pcm",
            AudioFormat::Ulaw => "audio/basic",
            AudioFormat::Alaw => "audio/alaw",
        }
    }

    /// The format's name in messages.
    fn name(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "MP3",
            AudioFormat::Wav => "WAV",
            AudioFormat::Ogg => "Ogg",
            AudioFormat::Pcm => "raw PCM",
            AudioFormat::Ulaw => "raw μ-law",
            AudioFormat::Alaw => "raw A-law",
        }
    }

    /// Whether the format has no header (only the request can say it).
    fn is_raw(self) -> bool {
        matches!(
            self,
            AudioFormat::Pcm | AudioFormat::Ulaw | AudioFormat::Alaw
        )
    }

    /// The format a content type names, if it names an audio one.
    fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
        Some(match essence.strip_prefix("audio/")? {
            "mpeg" | "mp3" | "mpeg3" | "x-mpeg" | "x-mp3" | "x-mpeg-3" => AudioFormat::Mp3,
            "wav" | "x-wav" | "wave" | "vnd.wave" => AudioFormat::Wav,
            "ogg" | "opus" | "x-opus" => AudioFormat::Ogg,
            "pcm" | "x-pcm" | "l16" => AudioFormat::Pcm,
            "basic" | "ulaw" | "mulaw" | "x-mulaw" | "pcmu" => AudioFormat::Ulaw,
            "alaw" | "x-alaw" | "pcma" => AudioFormat::Alaw,
            _ => return None,
        })
    }

    /// The format `head` (an answer's first bytes) starts with, among those
    /// that have a signature.
    fn sniff(head: &[u8]) -> Option<Self> {
        match head {
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'A',
                b'V',
                b'E',
                ..,
            ] => Some(AudioFormat::Wav),
            [b'O', b'g', b'g', b'S', ..] => Some(AudioFormat::Ogg),
            [b'I', b'D', b'3', ..] => Some(AudioFormat::Mp3),
            [0xFF, b1, b2, ..] if mpeg_frame(*b1, *b2) => Some(AudioFormat::Mp3),
            _ => None,
        }
    }
}

/// Whether `0xFF b1 b2` starts an MPEG audio frame header: the sync's last
/// three bits, then no reserved version, layer, bitrate or sample rate.
fn mpeg_frame(b1: u8, b2: u8) -> bool {
    let sync = b1 & 0xE0 == 0xE0;
    let version = (b1 >> 3) & 0b11;
    let layer = (b1 >> 1) & 0b11;
    let bitrate = b2 >> 4;
    let rate = (b2 >> 2) & 0b11;
    sync && version != 0b01 && layer != 0b00 && bitrate != 0b1111 && rate != 0b11
}

/// What the request says about the audio to expect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Expected {
    /// The raw format asked for and its bytes per second: raw audio is
    /// accepted only then.
    pub raw: Option<(AudioFormat, u64)>,
    /// The MP3 bitrate asked for, in bits per second.
    pub mp3_bits_per_second: Option<u64>,
    /// The song's length asked for, in milliseconds.
    pub length_ms: Option<u64>,
    /// The body's length its `Content-Length` declares.
    pub content_length: Option<u64>,
}

/// Where the answer is at.
#[derive(Debug)]
enum State {
    /// Its first bytes are being held back until they can be checked.
    Sniffing,
    /// Checked: its bytes go to the writer.
    Writing(AudioFormat),
    /// Not audio, for this reason: more of it is read for the excerpt.
    Rejected(String),
}

/// An answer's bytes on their way to a writer, checked (see the module).
pub(crate) struct Checked<'a, W, P> {
    sink: &'a mut W,
    progress: P,
    provider: ProviderName,
    /// The answer's headers, for the error of an answer that is not audio.
    headers: HeaderMap,
    /// What is checked, in messages ("the answer", "its audio part").
    what: &'static str,
    content_type: Option<String>,
    expected: Expected,
    /// The first [`HEAD`] bytes (a copy).
    head: Vec<u8>,
    /// The bytes held back until the format is decided.
    pending: Vec<u8>,
    state: State,
    written: u64,
}

impl<'a, W, P> Checked<'a, W, P>
where
    W: AsyncWrite + Unpin,
    P: FnMut(u64),
{
    /// Checks `what`, typed `content_type`, on its way to `sink`
    /// (`progress` gets the bytes written so far).
    pub(crate) fn new(
        sink: &'a mut W,
        progress: P,
        provider: ProviderName,
        headers: HeaderMap,
        what: &'static str,
        content_type: Option<String>,
        expected: Expected,
    ) -> Self {
        Self {
            sink,
            progress,
            provider,
            headers,
            what,
            content_type,
            expected,
            head: Vec::new(),
            pending: Vec::new(),
            state: State::Sniffing,
            written: 0,
        }
    }

    /// Takes the next piece of the answer.
    pub(crate) async fn push(&mut self, piece: &[u8]) -> Result<()> {
        self.keep(piece);
        match self.state {
            State::Writing(_) => self.write(piece).await,
            State::Sniffing => {
                self.pending.extend_from_slice(piece);
                if self.pending.len() >= SNIFF {
                    self.decide().await?;
                }
                self.rejected_when_full()
            }
            State::Rejected(_) => self.rejected_when_full(),
        }
    }

    /// The answer has ended: checks it whole and returns its format and
    /// the bytes written.
    pub(crate) async fn finish(mut self) -> Result<(AudioFormat, u64)> {
        if let State::Sniffing = self.state {
            if self.head.is_empty() {
                return Err(self.incomplete("it held no audio".to_owned()));
            }
            self.decide().await?;
        }
        let format = match &self.state {
            State::Writing(format) => *format,
            State::Rejected(reason) => return Err(self.not_audio(reason)),
            State::Sniffing => return Err(self.incomplete("it held no audio".to_owned())),
        };
        self.sink
            .flush()
            .await
            .map_err(|e| io(format!("writing {}", self.what), e))?;
        if let Err(reason) = whole(format, self.written, &self.head, &self.expected) {
            return Err(self.incomplete(reason));
        }
        Ok((format, self.written))
    }

    /// Keeps the first [`HEAD`] bytes.
    fn keep(&mut self, piece: &[u8]) {
        let room = HEAD.saturating_sub(self.head.len());
        self.head.extend_from_slice(&piece[..room.min(piece.len())]);
    }

    /// Decides from the first bytes; once audio, writes what was held back.
    async fn decide(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        match check(self.content_type.as_deref(), &self.head, &self.expected) {
            Ok(format) => {
                self.state = State::Writing(format);
                self.write(&pending).await
            }
            Err(reason) => {
                self.state = State::Rejected(reason);
                Ok(())
            }
        }
    }

    /// Once enough of an answer that is not audio was read, its error.
    fn rejected_when_full(&self) -> Result<()> {
        match &self.state {
            State::Rejected(reason) if self.head.len() >= HEAD => Err(self.not_audio(reason)),
            _ => Ok(()),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.sink
            .write_all(bytes)
            .await
            .map_err(|e| io(format!("writing {}", self.what), e))?;
        self.written += bytes.len() as u64;
        (self.progress)(self.written);
        Ok(())
    }

    /// The error of an answer that is not audio, with the provider's text.
    fn not_audio(&self, reason: &str) -> Error {
        let problem = format!("{} is not audio ({reason})", self.what);
        not_audio(self.provider, &self.headers, &problem, &self.head)
    }

    /// The error of audio that is not whole.
    fn incomplete(&self, reason: String) -> Error {
        Error::decode(
            format!("{} audio ({})", self.provider, self.what),
            reason,
            "",
        )
    }
}

/// The error of an answer that is not what was asked for (`problem` says
/// why): [`Error::Provider`] with the status 200, `headers`, and the
/// provider's message read from `body` (its first bytes) as from any error
/// answer.
pub(crate) fn not_audio(
    provider: ProviderName,
    headers: &HeaderMap,
    problem: &str,
    body: &[u8],
) -> Error {
    let text = String::from_utf8_lossy(body);
    match Error::from_response(provider, reqwest::StatusCode::OK, headers, &text) {
        Error::Provider {
            provider,
            message,
            answer,
            resume,
        } => Error::Provider {
            provider,
            message: format!("{problem}: {message}"),
            answer,
            resume,
        },
        other => other,
    }
}

/// The format of an answer typed `content_type` that starts with `head`,
/// or why it is not audio.
fn check(
    content_type: Option<&str>,
    head: &[u8],
    expected: &Expected,
) -> std::result::Result<AudioFormat, String> {
    let Some(content_type) = content_type else {
        return Err("it has no content type".to_owned());
    };
    let Some(typed) = AudioFormat::from_content_type(content_type) else {
        return Err(format!("typed {content_type}, not an audio format"));
    };
    if typed.is_raw() {
        return match expected.raw {
            Some((asked, _)) if asked == typed => Ok(typed),
            Some((asked, _)) => Err(format!(
                "typed {content_type} ({}), but {} was asked for",
                typed.name(),
                asked.name()
            )),
            None => Err(format!(
                "typed {content_type} ({}), but no raw format was asked for",
                typed.name()
            )),
        };
    }
    match AudioFormat::sniff(head) {
        Some(found) if found == typed => Ok(found),
        Some(found) => Err(format!(
            "typed {content_type}, but its first bytes are {}",
            found.name()
        )),
        None => Err(format!(
            "typed {content_type}, but its first bytes are not {}",
            typed.name()
        )),
    }
}

/// Whether `written` bytes of `format` (that started with `head`) make a
/// whole answer; why not, if not.
fn whole(
    format: AudioFormat,
    written: u64,
    head: &[u8],
    expected: &Expected,
) -> std::result::Result<(), String> {
    if written == 0 {
        return Err("it held no audio".to_owned());
    }
    if let Some(declared) = expected.content_length.filter(|d| *d != written) {
        return Err(format!(
            "it held {written} bytes, its Content-Length declares {declared}"
        ));
    }
    let (bytes_per_second, slack) = match format {
        AudioFormat::Wav => (wav_whole(written, head)?, EXACT_SLACK),
        AudioFormat::Pcm | AudioFormat::Ulaw | AudioFormat::Alaw => {
            let sample = if format == AudioFormat::Pcm { 2 } else { 1 };
            if !written.is_multiple_of(sample) {
                return Err(format!(
                    "it held {written} bytes, which ends inside a {sample}-byte sample"
                ));
            }
            (expected.raw.map(|(_, rate)| rate), EXACT_SLACK)
        }
        AudioFormat::Mp3 => (expected.mp3_bits_per_second.map(|b| b / 8), MP3_SLACK),
        AudioFormat::Ogg => (None, 0),
    };
    if let (Some(rate), Some(ms)) = (bytes_per_second, expected.length_ms) {
        let nominal = rate.saturating_mul(ms) / 1000;
        let least = nominal / 100 * (100 - slack) + nominal % 100 * (100 - slack) / 100;
        if written < least {
            return Err(format!(
                "it ended early: it held {written} bytes, where {ms} ms of {} at {rate} bytes/s \
                 is {nominal} bytes",
                format.name()
            ));
        }
    }
    Ok(())
}

/// A WAV's length checks: its RIFF header's length (unless the streaming
/// placeholder 0 or `0xFFFFFFFF`) and its `data` chunk's; its byte rate
/// (from its `fmt ` chunk), if `head` holds it.
fn wav_whole(written: u64, head: &[u8]) -> std::result::Result<Option<u64>, String> {
    let u32_at = |at: usize| {
        head.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if let Some(riff) = u32_at(4).filter(|n| *n != 0 && *n != u32::MAX) {
        let declared = u64::from(riff) + 8;
        if written != declared {
            return Err(format!(
                "its WAV header declares {declared} bytes, it held {written}"
            ));
        }
    }
    let mut byte_rate = None;
    let mut at = 12usize;
    while let (Some(id), Some(size)) = (head.get(at..at + 4), u32_at(at + 4)) {
        match id {
            b"fmt " => byte_rate = u32_at(at + 16).map(u64::from).filter(|r| *r > 0),
            b"data" => {
                if size != 0 && size != u32::MAX {
                    let end = (at as u64) + 8 + u64::from(size);
                    if written < end {
                        return Err(format!(
                            "its WAV data chunk declares {size} bytes ending at byte {end}, \
                             it held {written}"
                        ));
                    }
                }
                break;
            }
            _ => {}
        }
        let next = u64::from(size) + u64::from(size & 1) + 8;
        match usize::try_from(next).ok().and_then(|n| at.checked_add(n)) {
            Some(next) => at = next,
            None => break,
        }
    }
    Ok(byte_rate)
}

fn io(what: String, source: std::io::Error) -> Error {
    Error::Io { path: what, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(data: u32, held: usize) -> Vec<u8> {
        let mut wav = b"RIFF".to_vec();
        wav.extend_from_slice(&(36 + data).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&[1, 0, 1, 0]); // PCM, mono
        wav.extend_from_slice(&8000u32.to_le_bytes());
        wav.extend_from_slice(&16000u32.to_le_bytes());
        wav.extend_from_slice(&[2, 0, 16, 0]);
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&data.to_le_bytes());
        wav.resize(held, 0);
        wav
    }

    async fn run(
        content_type: &str,
        body: &[u8],
        expected: Expected,
        piece: usize,
    ) -> (Result<(AudioFormat, u64)>, Vec<u8>) {
        let mut sink = Vec::new();
        let mut checked = Checked::new(
            &mut sink,
            |_| {},
            ProviderName::ElevenLabs,
            HeaderMap::new(),
            "the answer",
            Some(content_type.to_owned()),
            expected,
        );
        let mut result = Ok(());
        for chunk in body.chunks(piece.max(1)) {
            result = checked.push(chunk).await;
            if result.is_err() {
                break;
            }
        }
        let result = match result {
            Ok(()) => checked.finish().await,
            Err(e) => Err(e),
        };
        (result, sink)
    }

    #[tokio::test]
    async fn audio_passes_whole_whatever_the_pieces() {
        let mut mp3 = vec![0xFF, 0xFB, 0x90, 0x64];
        mp3.extend((0..10_000u32).map(|i| i as u8));
        let pcm = vec![7u8; 32_000];
        let raw = Expected {
            raw: Some((AudioFormat::Pcm, 32_000)),
            length_ms: Some(1000),
            ..Expected::default()
        };
        for (content_type, body, expected, format) in [
            (
                "audio/mpeg",
                mp3.clone(),
                Expected::default(),
                AudioFormat::Mp3,
            ),
            (
                "audio/wav",
                wav(5000, 5044),
                Expected::default(),
                AudioFormat::Wav,
            ),
            ("audio/pcm", pcm.clone(), raw, AudioFormat::Pcm),
            (
                "audio/ogg",
                b"OggS rest".to_vec(),
                Expected::default(),
                AudioFormat::Ogg,
            ),
        ] {
            for piece in [1, 3, 11, 12, 13, 4095, 4096, 4097, 100_000] {
                let (result, sink) = run(content_type, &body, expected, piece).await;
                assert_eq!(result.unwrap(), (format, body.len() as u64), "{piece}");
                assert_eq!(sink, body, "{content_type} {piece}");
            }
        }
    }

    #[tokio::test]
    async fn what_is_not_audio_never_reaches_the_writer() {
        let json = br#"{"detail": {"status": "quota_exceeded", "message": "No credits left"}}"#;
        for (content_type, body) in [
            ("application/json", &json[..]),
            ("text/html", b"<html><body>Bad gateway</body></html>"),
            ("audio/mpeg", &json[..]),
            ("audio/json", b"ID3 but typed as no audio format"),
            ("audio/wav", b"ID3 typed as WAV"),
            ("audio/pcm", b"raw, but not asked for"),
        ] {
            for piece in [1, 5, 4096, 10_000] {
                let (result, sink) = run(content_type, body, Expected::default(), piece).await;
                let error = result.unwrap_err();
                assert!(sink.is_empty(), "{content_type}: {sink:?}");
                assert_eq!(error.status(), Some(200), "{error}");
                assert!(error.to_string().contains("is not audio"), "{error}");
            }
        }
        let (result, _) = run("application/json", json, Expected::default(), 7).await;
        assert!(result.unwrap_err().to_string().contains("No credits left"));
    }

    #[tokio::test]
    async fn audio_that_is_not_whole_is_an_error() {
        let pcm = Expected {
            raw: Some((AudioFormat::Pcm, 32_000)),
            length_ms: Some(10_000),
            ..Expected::default()
        };
        let mp3 = Expected {
            mp3_bits_per_second: Some(128_000),
            length_ms: Some(10_000),
            ..Expected::default()
        };
        let mut frames = vec![0xFF, 0xFB, 0x90, 0x64];
        frames.resize(40_000, 0);
        let declared = Expected {
            content_length: Some(100),
            ..Expected::default()
        };
        for (content_type, body, expected, says) in [
            ("audio/pcm", vec![0u8; 96_000], pcm, "ended early"),
            (
                "audio/pcm",
                vec![0u8; 320_001],
                pcm,
                "inside a 2-byte sample",
            ),
            (
                "audio/wav",
                wav(1000, 100),
                Expected::default(),
                "declares 1044",
            ),
            ("audio/mpeg", frames.clone(), mp3, "ended early"),
            (
                "audio/mpeg",
                frames[..50].to_vec(),
                declared,
                "Content-Length",
            ),
            ("audio/mpeg", Vec::new(), Expected::default(), "no audio"),
        ] {
            let (result, _) = run(content_type, &body, expected, 1000).await;
            let error = result.unwrap_err();
            assert!(matches!(error, Error::Decode { .. }), "{error:?}");
            assert!(error.to_string().contains(says), "{error}");
        }
        let (result, _) = run("audio/pcm", &vec![0u8; 304_000], pcm, 1000).await;
        result.unwrap();
        let (result, _) = run("audio/mpeg", &frames[..], Expected::default(), 1000).await;
        result.unwrap();
    }

    #[test]
    fn only_real_frame_headers_are_mp3() {
        assert_eq!(
            AudioFormat::sniff(&[0xFF, 0xFB, 0x90]),
            Some(AudioFormat::Mp3)
        );
        assert_eq!(
            AudioFormat::sniff(&[0xFF, 0xF3, 0x64]),
            Some(AudioFormat::Mp3)
        );
        // ADTS AAC (layer 00), a reserved version, a bad bitrate.
        assert_eq!(AudioFormat::sniff(&[0xFF, 0xF1, 0x50]), None);
        assert_eq!(AudioFormat::sniff(&[0xFF, 0xEB, 0x90]), None);
        assert_eq!(AudioFormat::sniff(&[0xFF, 0xFB, 0xF0]), None);
        assert_eq!(AudioFormat::sniff(b"{\"detail\""), None);
        assert_eq!(AudioFormat::sniff(b"RIFF\0\0\0\0AVI "), None);
    }
}
