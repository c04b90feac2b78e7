//! Line framing in front of `eventsource-stream`, where the byte-level
//! guarantees are enforced.
//!
//! `eventsource-stream` 0.2.3 parses fields and assembles events well, but
//! taken alone over untrusted bytes it
//!
//! * panics on a stream that starts with a byte order mark (it slices one
//!   byte into the three-byte U+FEFF; upstream PR #10 is open),
//! * buffers without bound after an invalid UTF-8 byte (it keeps the bytes
//!   from there on and only reports them at the end of the stream),
//! * holds an event ended by a lone CR until the next byte arrives, and
//!   drops it if none does,
//! * re-scans its whole buffer for every piece of a long line.
//!
//! [`LineFramer`] therefore cuts the byte stream into lines itself (CRLF,
//! CR and LF alike, also when a CRLF is split between two reads) and hands
//! `eventsource-stream` one LF-terminated, valid UTF-8 line at a time. On
//! the way it strips the single leading byte order mark the SSE spec allows,
//! drops comment lines (keepalives), counts the bytes of the event being
//! assembled and stops with [`Error::EventTooLarge`] past the limit, and
//! stops with [`Error::Timeout`] when no byte at all arrives for the idle
//! timeout.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::time::{Instant, Sleep};

use crate::error::{Error, ProviderName};

/// The byte stream a framer reads, with its errors already converted.
pub(super) type ByteSource = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Cuts a byte stream into SSE lines; see the module documentation.
pub(super) struct LineFramer {
    source: ByteSource,
    /// The piece being cut, and how far it has been read.
    chunk: Bytes,
    read: usize,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The last line ended with CR: an LF right after it belongs to it.
    after_cr: bool,
    /// No line has ended yet (the byte order mark may still be ahead).
    at_stream_start: bool,
    /// Nothing has been handed on yet (see [`LineFramer::hand_on`]).
    primed: bool,
    /// Bytes of the event being assembled (its lines so far, comments
    /// excepted), not counting `partial`.
    event_bytes: usize,
    max_event_bytes: usize,
    idle: Option<IdleTimer>,
    source_ended: bool,
    finished: bool,
}

/// Fires when the byte stream has been silent for `after`.
struct IdleTimer {
    after: Duration,
    /// Created on first use, so that a stream can be built outside a runtime.
    sleep: Option<Pin<Box<Sleep>>>,
    /// `sleep` counts from the last byte received.
    armed: bool,
}

impl LineFramer {
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
            at_stream_start: true,
            primed: false,
            event_bytes: 0,
            max_event_bytes,
            idle: idle_timeout.map(|after| IdleTimer {
                after,
                sleep: None,
                armed: false,
            }),
            source_ended: false,
            finished: false,
        }
    }

    /// Cuts the next line out of `chunk`: `Ok(None)` when the piece ended
    /// inside a line (kept in `partial`) or the line is not handed on.
    fn next_line(&mut self) -> Result<Option<String>, Error> {
        let rest = self.chunk.get(self.read..).unwrap_or_default();
        if std::mem::take(&mut self.after_cr) && rest.first() == Some(&b'\n') {
            self.read += 1;
            return Ok(None);
        }
        match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            None => {
                self.partial.extend_from_slice(rest);
                self.read = self.chunk.len();
                self.check_size()?;
                Ok(None)
            }
            Some(end) => {
                self.partial
                    .extend_from_slice(rest.get(..end).unwrap_or_default());
                self.after_cr = rest.get(end) == Some(&b'\r');
                self.read += end + 1;
                let line = std::mem::take(&mut self.partial);
                self.end_line(line)
            }
        }
    }

    /// Decides what happens to one whole line (without its terminator).
    fn end_line(&mut self, line: Vec<u8>) -> Result<Option<String>, Error> {
        let mut text: &[u8] = &line;
        if std::mem::take(&mut self.at_stream_start) {
            text = text.strip_prefix(BOM).unwrap_or(text);
        }
        if text.is_empty() {
            self.event_bytes = 0;
            return Ok(Some(self.hand_on("")));
        }
        if text.starts_with(b":") {
            return Ok(None); // a comment: a keepalive, nothing to assemble
        }
        // The line and its terminator join the event being assembled.
        self.event_bytes = self.event_bytes.saturating_add(text.len() + 1);
        self.check_size()?;
        match std::str::from_utf8(text) {
            Ok(text) => Ok(Some(self.hand_on(text))),
            Err(e) => Err(Error::decode(
                "Soundverse event stream",
                format_args!("invalid UTF-8 in a line ({e})"),
                &String::from_utf8_lossy(text),
            )),
        }
    }

    /// The line, LF-terminated, as `eventsource-stream` is given it. The
    /// very first piece it gets starts with an empty comment line, so that
    /// its own byte order mark check (which panics on U+FEFF) never sees a
    /// line that starts with a second U+FEFF.
    fn hand_on(&mut self, line: &str) -> String {
        let prefix = if std::mem::replace(&mut self.primed, true) {
            ""
        } else {
            ":\n"
        };
        let mut out = String::with_capacity(prefix.len() + line.len() + 1);
        out.push_str(prefix);
        out.push_str(line);
        out.push('\n');
        out
    }

    /// Fails when the event being assembled, plus `partial`, is over the limit.
    fn check_size(&self) -> Result<(), Error> {
        if self.event_bytes.saturating_add(self.partial.len()) > self.max_event_bytes {
            return Err(Error::EventTooLarge {
                provider: ProviderName::Soundverse,
                limit: self.max_event_bytes,
            });
        }
        Ok(())
    }

    /// Called when the source has nothing: fails once the idle timeout has
    /// passed since the last byte.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<String, Error>>> {
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
                })))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Stream for LineFramer {
    type Item = Result<String, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            if this.read < this.chunk.len() {
                match this.next_line() {
                    Ok(Some(line)) => return Poll::Ready(Some(Ok(line))),
                    Ok(None) => continue,
                    Err(e) => {
                        this.finished = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            if this.source_ended {
                // A line without its end at the end of the stream belongs to
                // an event that never ended: the SSE spec discards both.
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

    fn lines(pieces: &[&[u8]], max_event_bytes: usize) -> Vec<Result<String, String>> {
        let owned: Vec<Result<Bytes, Error>> = pieces
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        let framer = LineFramer::new(
            Box::pin(futures::stream::iter(owned)),
            max_event_bytes,
            None,
        );
        block_on(framer.map(|r| r.map_err(|e| e.to_string())).collect())
    }

    fn ok(lines: &[&str]) -> Vec<Result<String, String>> {
        lines.iter().map(|l| Ok((*l).to_owned())).collect()
    }

    #[test]
    fn crlf_split_between_pieces_is_one_line_end() {
        assert_eq!(
            lines(&[b"data: a\r", b"\n\r", b"\n"], 100),
            ok(&[":\ndata: a\n", "\n"])
        );
    }

    #[test]
    fn lone_cr_ends_a_line_at_once() {
        assert_eq!(lines(&[b"data: a\r\r"], 100), ok(&[":\ndata: a\n", "\n"]));
    }

    #[test]
    fn comments_are_dropped_and_one_bom_is_stripped() {
        assert_eq!(
            lines(
                &[b"\xEF\xBB", b"\xBF: hi\n", b"data: \xEF\xBB\xBFx\n\n"],
                100
            ),
            ok(&[":\ndata: \u{feff}x\n", "\n"])
        );
    }

    #[test]
    fn unterminated_last_line_is_discarded() {
        assert_eq!(
            lines(&[b"data: a\n\ndata: b"], 100),
            ok(&[":\ndata: a\n", "\n"])
        );
    }

    #[test]
    fn event_over_the_limit_stops_the_stream() {
        let out = lines(&[b"data: 12345\n", b"data: 6789", b"0\n\n"], 20);
        assert_eq!(out.len(), 2);
        assert!(
            out[1]
                .as_ref()
                .is_err_and(|e| e.contains("limit of 20 bytes"))
        );
    }

    #[test]
    fn limit_counts_from_the_last_blank_line() {
        let out = lines(&[b"data: 1234567\n\ndata: 1234567\n\n"], 15);
        assert!(out.iter().all(Result::is_ok), "{out:?}");
    }

    #[test]
    fn invalid_utf8_is_a_decode_error() {
        let out = lines(&[b"data: \xFF\xFE\n\n"], 100);
        assert!(
            out[0].as_ref().is_err_and(|e| e.contains("invalid UTF-8")),
            "{out:?}"
        );
        assert_eq!(out.len(), 1);
    }
}
