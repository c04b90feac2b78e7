//! The SSE parser: bytes in, events out, with the byte-level guarantees.
//!
//! [`EventParser`] does all of it in one pass over each piece: it cuts the
//! byte stream into lines (CRLF, CR and LF alike, also when a CRLF is split
//! between two reads), strips the single leading byte order mark the SSE
//! spec allows, drops comment lines (keepalives), splits each other line
//! into its field and value, and assembles events (`data` lines joined with
//! `\n`, the `event` name; `id`, `retry` and unknown fields are ignored, as
//! this crate never reconnects). On the way it counts the bytes of the
//! event being assembled and stops with [`Error::EventTooLarge`] past the
//! limit, and stops with [`Error::Timeout`] when no byte at all arrives for
//! the idle timeout.
//!
//! A line that lies whole inside one piece is read where it lies; only a
//! line cut between pieces is copied (into one reused buffer), so that the
//! bytes are scanned once. The field rules are those of the HTML spec's
//! "interpreting an event stream", which `eventsource-stream` 0.2.3 (used
//! here before, for the fields only) also follows; the first section of
//! BENCHMARKS.md gives the measurements behind parsing them here. Taken
//! alone over untrusted bytes, `eventsource-stream` panics on a stream that
//! starts with a byte order mark, buffers without bound after an invalid
//! UTF-8 byte, holds an event ended by a lone CR until the next byte, and
//! re-scans its whole buffer for every piece of a long line; this parser
//! does none of that.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::time::{Instant, Sleep};

use crate::error::{Error, ProviderName};

/// The byte stream a parser reads, with its errors already converted.
pub(super) type ByteSource = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event.
#[derive(Debug, PartialEq)]
pub(super) struct SseEvent {
    /// Its `data` lines, joined with `\n`.
    pub(super) data: String,
    /// Its `event:` name, empty when none was sent.
    pub(super) name: String,
}

/// Parses a byte stream into SSE events; see the module documentation.
pub(super) struct EventParser {
    source: ByteSource,
    /// The piece being read, and how far it has been read.
    chunk: Bytes,
    read: usize,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The last line ended with CR: an LF right after it belongs to it.
    after_cr: bool,
    fields: Fields,
    idle: Option<IdleTimer>,
    source_ended: bool,
    finished: bool,
}

/// The event being assembled from its lines.
struct Fields {
    data: String,
    /// Whether a `data` line has been seen (`data` may still be empty).
    has_data: bool,
    name: String,
    /// No line has ended yet (the byte order mark may still be ahead).
    at_stream_start: bool,
    /// Bytes of the event being assembled (its lines so far, comments
    /// excepted), not counting a line still in `partial`.
    event_bytes: usize,
    max_event_bytes: usize,
}

/// Fires when the byte stream has been silent for `after`.
struct IdleTimer {
    after: Duration,
    /// Created on first use, so that a stream can be built outside a runtime.
    sleep: Option<Pin<Box<Sleep>>>,
    /// `sleep` counts from the last byte received.
    armed: bool,
}

impl EventParser {
    pub(super) fn new(
        source: ByteSource,
        max_event_bytes: usize,
        idle_timeout: Option<Duration>,
    ) -> Self {
        Self {
            source,
            chunk: Bytes::new(),
            read: 0,
            partial: Vec::new(),
            after_cr: false,
            fields: Fields {
                data: String::new(),
                has_data: false,
                name: String::new(),
                at_stream_start: true,
                event_bytes: 0,
                max_event_bytes,
            },
            idle: idle_timeout.map(|after| IdleTimer {
                after,
                sleep: None,
                armed: false,
            }),
            source_ended: false,
            finished: false,
        }
    }

    /// Reads lines from `chunk` until one completes an event (`Ok(Some)`)
    /// or the piece is used up (`Ok(None)`; an unfinished line is kept in
    /// `partial`).
    fn next_in_chunk(&mut self) -> Result<Option<SseEvent>, Error> {
        loop {
            let rest = self.chunk.get(self.read..).unwrap_or_default();
            if rest.is_empty() {
                // Let the piece go while waiting for the next: held, it
                // pins the connection's read buffer, which then allocates
                // a new one for every read (profiled at 1,000 streams).
                self.chunk = Bytes::new();
                self.read = 0;
                return Ok(None);
            }
            if std::mem::take(&mut self.after_cr) && rest.first() == Some(&b'\n') {
                self.read += 1;
                continue;
            }
            let Some(end) = line_end(rest) else {
                self.partial.extend_from_slice(rest);
                // Copied: let the piece go now, as above.
                self.chunk = Bytes::new();
                self.read = 0;
                self.fields.check_size(self.partial.len())?;
                return Ok(None);
            };
            self.after_cr = rest.get(end) == Some(&b'\r');
            self.read += end + 1;
            let line = rest.get(..end).unwrap_or_default();
            let event = if self.partial.is_empty() {
                self.fields.line(line)?
            } else {
                self.partial.extend_from_slice(line);
                let event = self.fields.line(&self.partial);
                self.partial.clear();
                event?
            };
            if event.is_some() {
                return Ok(event);
            }
        }
    }

    /// Called when the source has nothing: fails once the idle timeout has
    /// passed since the last byte.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<SseEvent, Error>>> {
        let Some(idle) = &mut self.idle else {
            return Poll::Pending;
        };
        let after = idle.after;
        let Some(deadline) = Instant::now().checked_add(after) else {
            return Poll::Pending; // a timeout beyond the clock's range never fires
        };
        let sleep = match &mut idle.sleep {
            Some(sleep) => {
                if !idle.armed {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            None => idle
                .sleep
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        idle.armed = true;
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.finished = true;
                Poll::Ready(Some(Err(Error::Timeout {
                    after,
                    waiting_for: "the next bytes of the Soundverse event stream".to_owned(),
                    resume: None,
                })))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Fields {
    /// Takes one whole line (without its terminator); returns the event it
    /// completes, if any.
    fn line(&mut self, line: &[u8]) -> Result<Option<SseEvent>, Error> {
        let mut text = line;
        if std::mem::take(&mut self.at_stream_start) {
            text = text.strip_prefix(BOM).unwrap_or(text);
        }
        let Some(&first) = text.first() else {
            self.event_bytes = 0;
            return Ok(self.dispatch());
        };
        if first == b':' {
            return Ok(None); // a comment: a keepalive, nothing to assemble
        }
        // The line and its terminator join the event being assembled.
        self.event_bytes = self.event_bytes.saturating_add(text.len() + 1);
        self.check_size(0)?;
        let text = match std::str::from_utf8(text) {
            Ok(text) => text,
            Err(e) => {
                return Err(Error::decode(
                    "Soundverse event stream",
                    format_args!("invalid UTF-8 in a line ({e})"),
                    &String::from_utf8_lossy(text),
                ));
            }
        };
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text, ""),
        };
        match field {
            "data" => {
                if std::mem::replace(&mut self.has_data, true) {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            "event" => {
                self.name.clear();
                self.name.push_str(value);
            }
            _ => {} // `id`, `retry` and unknown fields: nothing to keep
        }
        Ok(None)
    }

    /// A blank line: the event is complete, unless it had no `data`.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let name = std::mem::take(&mut self.name);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(SseEvent {
            data: std::mem::take(&mut self.data),
            name,
        })
    }

    /// Fails when the event being assembled, plus `pending` bytes of an
    /// unfinished line, is over the limit.
    fn check_size(&self, pending: usize) -> Result<(), Error> {
        if self.event_bytes.saturating_add(pending) > self.max_event_bytes {
            return Err(Error::EventTooLarge {
                provider: ProviderName::Soundverse,
                limit: self.max_event_bytes,
                resume: None,
            });
        }
        Ok(())
    }
}

/// Where the first CR or LF in `bytes` is.
///
/// Eight bytes at a time (a byte-by-byte search was three quarters of the
/// parser's instructions): in `x = word ^ (b * ONES)` a byte is zero where
/// `word` holds `b`, and `(x - ONES) & !x & HIGHS` marks the lowest such
/// byte exactly (a borrow only ever runs from a zero byte upwards, so no
/// byte below the first zero is marked).
fn line_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const LF: u64 = ONES * b'\n' as u64;
    const CR: u64 = ONES * b'\r' as u64;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let (lf, cr) = (word ^ LF, word ^ CR);
        let found = ((lf.wrapping_sub(ONES) & !lf) | (cr.wrapping_sub(ONES) & !cr)) & HIGHS;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let rest = words.remainder();
    rest.iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map(|at| offset + at)
}

impl Stream for EventParser {
    type Item = Result<SseEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            match this.next_in_chunk() {
                Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                Ok(None) => {}
                Err(e) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            if this.source_ended {
                // A line without its end, or an event without its blank
                // line, at the end of the stream: the SSE spec discards both.
                this.finished = true;
                return Poll::Ready(None);
            }
            match this.source.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    if let Some(idle) = &mut this.idle {
                        idle.armed = false;
                    }
                    this.chunk = bytes;
                    this.read = 0;
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => this.source_ended = true,
                Poll::Pending => return this.poll_idle(cx),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use futures::executor::block_on;

    use super::*;

    fn events(pieces: &[&[u8]], max_event_bytes: usize) -> Vec<Result<(String, String), String>> {
        let owned: Vec<Result<Bytes, Error>> = pieces
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        let parser = EventParser::new(
            Box::pin(futures::stream::iter(owned)),
            max_event_bytes,
            None,
        );
        block_on(
            parser
                .map(|r| r.map(|e| (e.name, e.data)).map_err(|e| e.to_string()))
                .collect(),
        )
    }

    fn ok(events: &[(&str, &str)]) -> Vec<Result<(String, String), String>> {
        events
            .iter()
            .map(|(name, data)| Ok(((*name).to_owned(), (*data).to_owned())))
            .collect()
    }

    #[test]
    fn crlf_split_between_pieces_is_one_line_end() {
        assert_eq!(
            events(&[b"data: a\r", b"\n\r", b"\n"], 100),
            ok(&[("", "a")])
        );
    }

    #[test]
    fn lone_cr_ends_a_line_at_once() {
        assert_eq!(events(&[b"data: a\r\r"], 100), ok(&[("", "a")]));
    }

    #[test]
    fn comments_are_dropped_and_one_bom_is_stripped() {
        assert_eq!(
            events(
                &[b"\xEF\xBB", b"\xBF: hi\n", b"data: \xEF\xBB\xBFx\n\n"],
                100
            ),
            ok(&[("", "\u{feff}x")])
        );
    }

    #[test]
    fn a_second_bom_starts_an_unknown_field() {
        assert_eq!(
            events(&[b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n"], 100),
            ok(&[("", "b")])
        );
    }

    #[test]
    fn fields_follow_the_sse_rules() {
        assert_eq!(
            events(
                &[b"event: job_created\nid: 7\nretry: 5\nfoo: bar\ndata:a\ndata:  b\ndata\ndata: c:d\n\n"],
                100
            ),
            ok(&[("job_created", "a\n b\n\nc:d")])
        );
        // The event name lasts one event; an event without data is none.
        assert_eq!(
            events(&[b"event: x\n\nevent: y\ndata: 1\n\ndata: 2\n\n"], 100),
            ok(&[("y", "1"), ("", "2")])
        );
        assert_eq!(events(&[b"data\n\n"], 100), ok(&[("", "")]));
    }

    #[test]
    fn unterminated_last_line_or_event_is_discarded() {
        assert_eq!(events(&[b"data: a\n\ndata: b"], 100), ok(&[("", "a")]));
        assert_eq!(events(&[b"data: a\n\ndata: b\n"], 100), ok(&[("", "a")]));
    }

    #[test]
    fn event_over_the_limit_stops_the_stream() {
        let out = events(&[b"data: 12345\n", b"data: 6789", b"0\n\n"], 20);
        assert_eq!(out.len(), 1);
        assert!(
            out[0]
                .as_ref()
                .is_err_and(|e| e.contains("limit of 20 bytes"))
        );
    }

    #[test]
    fn limit_counts_from_the_last_blank_line() {
        let out = events(&[b"data: 1234567\n\ndata: 1234567\n\n"], 15);
        assert!(out.iter().all(Result::is_ok), "{out:?}");
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn line_end_finds_the_first_cr_or_lf_at_any_position() {
        let naive = |b: &[u8]| b.iter().position(|&c| c == b'\n' || c == b'\r');
        let mut bytes = vec![b'a'; 40];
        assert_eq!(line_end(&bytes), None);
        for at in 0..40 {
            for end in [b'\n', b'\r'] {
                bytes.fill(b'a');
                bytes[at] = end;
                assert_eq!(line_end(&bytes), Some(at));
                // Bytes next to a line end in value, and a later one.
                bytes[(at + 1) % 40] = 0x0B;
                bytes[(at + 7) % 40] = 0x8D;
                bytes[39] = b'\r';
                assert_eq!(line_end(&bytes), naive(&bytes), "{bytes:?}");
            }
        }
        for len in 0..20 {
            let all: Vec<u8> = (0..=255).cycle().skip(len * 13).take(len).collect();
            assert_eq!(line_end(&all), naive(&all), "{all:?}");
        }
    }

    #[test]
    fn a_piece_is_let_go_while_waiting_for_the_next() {
        // Held, it would pin the connection's read buffer: whether it was
        // read to its end or ends inside a line (copied to the partial line).
        for bytes in [&b"data: a\n\n"[..], b"data: a\n\ndata: b"] {
            let piece = Bytes::copy_from_slice(bytes);
            let source =
                futures::stream::iter(vec![Ok(piece.clone())]).chain(futures::stream::pending());
            let mut parser = EventParser::new(Box::pin(source), 100, None);
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            let first = Pin::new(&mut parser).poll_next(&mut cx);
            assert!(matches!(first, Poll::Ready(Some(Ok(_)))), "{first:?}");
            assert!(Pin::new(&mut parser).poll_next(&mut cx).is_pending());
            assert!(piece.is_unique(), "the parser still holds {bytes:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_a_decode_error() {
        let out = events(&[b"data: \xFF\xFE\n\n"], 100);
        assert!(
            out[0].as_ref().is_err_and(|e| e.contains("invalid UTF-8")),
            "{out:?}"
        );
        assert_eq!(out.len(), 1);
        // In a comment it is not looked at.
        assert_eq!(events(&[b": \xFF\ndata: a\n\n"], 100), ok(&[("", "a")]));
    }
}
