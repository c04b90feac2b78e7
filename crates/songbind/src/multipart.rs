//! A small streaming reader of a `multipart/mixed` answer (RFC 2046): its
//! parts' headers, and their bodies piece by piece, never held whole.
//! ElevenLabs' `/v1/music/detailed` answers this way; the official SDKs
//! parse it by hand too, accepting CRLF and LF line ends.
//!
//! Everything a peer sends is bounded before it is buffered: the boundary
//! is checked as RFC 2046 says (1 to 70 characters from `bchars`, not
//! ending in a space) before a byte is read; the preamble is at most
//! [`PREAMBLE_LIMIT`] bytes, a part's header block at most
//! [`HEADER_LINES`] lines and [`HEADER_BYTES`] bytes, the padding after a
//! boundary at most [`PADDING_LIMIT`] bytes. A boundary counts only at the
//! start of a line and when followed by `--` (the closing one) or by
//! optional blanks and a line end, as the RFC says: the same characters
//! elsewhere are part of a body.

use bytes::{Buf, BytesMut};
use futures::{Stream, StreamExt};

use crate::error::{Error, Result};

/// Largest preamble (the bytes before the first boundary) read.
pub(crate) const PREAMBLE_LIMIT: usize = 16 * 1024;

/// Most header lines a part may have.
pub(crate) const HEADER_LINES: usize = 64;

/// Largest header block (its lines and the blank line ending it) a part may
/// have.
pub(crate) const HEADER_BYTES: usize = 16 * 1024;

/// Largest transport padding (blanks) after a boundary.
pub(crate) const PADDING_LIMIT: usize = 1024;

/// The `boundary` parameter of a `multipart/...` content type (quoted or
/// not), checked as RFC 2046 says.
pub(crate) fn boundary(content_type: &str) -> Result<String> {
    let mut found = None;
    let mut rest = match content_type.split_once(';') {
        Some((_, params)) => params,
        None => "",
    };
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            break;
        }
        let Some((name, after)) = rest.split_once('=') else {
            break; // a parameter without a value ends the list
        };
        let (value, after) = parameter_value(after.trim_start())?;
        if name.trim().eq_ignore_ascii_case("boundary") {
            if found.is_some() {
                return Err(bad("its content type names two boundaries"));
            }
            found = Some(value);
        }
        rest = after;
    }
    let boundary = found.ok_or_else(|| bad("its content type names no boundary"))?;
    let valid_char = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    if boundary.is_empty()
        || boundary.chars().count() > 70
        || !boundary.chars().all(valid_char)
        || boundary.ends_with(' ')
    {
        return Err(bad(format!(
            "its boundary {boundary:?} is not one RFC 2046 allows (1 to 70 letters, digits or \
             '()+_,-./:=? and space, not ending in a space)"
        )));
    }
    Ok(boundary)
}

/// A parameter's value at the start of `text` (a quoted string, with `\`
/// escapes, or a token) and what follows it.
fn parameter_value(text: &str) -> Result<(String, &str)> {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find([';', ' ', '\t']).unwrap_or(text.len());
        return Ok((text[..end].to_owned(), &text[end..]));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &quoted[at + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err(bad("its content type has an unterminated quoted value"))
}

/// The error of a malformed answer.
fn bad(reason: impl std::fmt::Display) -> Error {
    Error::decode("a multipart/mixed answer", reason, "")
}

/// What a boundary found in the buffer is.
enum Found {
    /// Not a boundary (the same characters inside a body).
    Not,
    /// Cannot tell yet: more bytes are needed.
    NeedMore,
    /// A delimiter `len` bytes long (its line end included), the closing
    /// one or not.
    Delimiter { len: usize, closing: bool },
}

/// Reads a multipart body from a stream of pieces.
pub(crate) struct Reader<S> {
    stream: S,
    buffer: BytesMut,
    /// `\n--<boundary>`.
    delimiter: Vec<u8>,
    /// Where in the buffer the search for the delimiter goes on from.
    scan: usize,
    /// Whether the last delimiter read was the closing one.
    closed: bool,
}

impl<S, E> Reader<S>
where
    S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    Error: From<E>,
{
    /// A reader of `stream`, delimited by `boundary` (checked by
    /// [`boundary`]).
    pub(crate) fn new(stream: S, boundary: &str) -> Self {
        let mut buffer = BytesMut::new();
        // The body may start with the delimiter (no line end before it).
        buffer.extend_from_slice(b"\n");
        Self {
            stream,
            buffer,
            delimiter: format!("\n--{boundary}").into_bytes(),
            scan: 0,
            closed: false,
        }
    }

    /// Whether the last delimiter read was the closing one (`--<boundary>--`).
    pub(crate) fn closed(&self) -> bool {
        self.closed
    }

    /// Reads more into the buffer; `false` at the end of the stream.
    async fn fill(&mut self) -> Result<bool> {
        match self.stream.next().await {
            Some(piece) => {
                self.buffer.extend_from_slice(&piece?);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// What the delimiter's characters found at `at` are.
    fn found(&self, at: usize) -> Result<Found> {
        let rest = &self.buffer[at + self.delimiter.len()..];
        match rest {
            [b'-', b'-', ..] => {
                return Ok(Found::Delimiter {
                    len: self.delimiter.len() + 2,
                    closing: true,
                });
            }
            [] | [b'-'] => return Ok(Found::NeedMore),
            _ => {}
        }
        let padding = rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        if padding > PADDING_LIMIT {
            return Err(bad(format!(
                "a boundary line has over {PADDING_LIMIT} bytes of padding"
            )));
        }
        let len = |end: usize| {
            Ok(Found::Delimiter {
                len: self.delimiter.len() + padding + end,
                closing: false,
            })
        };
        match &rest[padding..] {
            [] | [b'\r'] => Ok(Found::NeedMore),
            [b'\n', ..] => len(1),
            [b'\r', b'\n', ..] => len(2),
            _ => Ok(Found::Not),
        }
    }

    /// Drops the preamble and the first delimiter; an answer that closes
    /// there has no parts.
    pub(crate) async fn start(&mut self) -> Result<()> {
        // Bytes of preamble dropped so far (the `\n` put first included).
        let mut dropped = 0usize;
        loop {
            if let Some(at) = find(&self.buffer, &self.delimiter, self.scan) {
                if dropped + at > PREAMBLE_LIMIT + 1 {
                    return Err(preamble_too_long());
                }
                match self.found(at)? {
                    Found::Delimiter { len, closing } => {
                        self.buffer.advance(at + len);
                        self.scan = 0;
                        if closing {
                            return Err(bad("it closes before its first part"));
                        }
                        return Ok(());
                    }
                    Found::Not => self.scan = at + 1,
                    Found::NeedMore => {
                        if !self.fill().await? {
                            return Err(bad("it ended in its first boundary line"));
                        }
                    }
                }
                continue;
            }
            let keep = self.delimiter.len();
            if self.buffer.len() > keep {
                let drop = self.buffer.len() - keep;
                self.buffer.advance(drop);
                self.scan = 0;
                dropped += drop;
                if dropped > PREAMBLE_LIMIT + 1 {
                    return Err(preamble_too_long());
                }
            }
            if !self.fill().await? {
                return Err(bad("no boundary found"));
            }
        }
    }

    /// Reads a part's header lines up to the blank line that ends them:
    /// names lowercased (`content-type`), values trimmed.
    pub(crate) async fn headers(&mut self) -> Result<Vec<(String, String)>> {
        let mut headers: Vec<(String, String)> = Vec::new();
        let (mut lines, mut bytes) = (0usize, 0usize);
        loop {
            let Some(end) = self.buffer.iter().position(|b| *b == b'\n') else {
                if bytes + self.buffer.len() > HEADER_BYTES {
                    return Err(headers_too_long());
                }
                if !self.fill().await? {
                    return Err(bad("it ended inside a part's headers"));
                }
                continue;
            };
            let line = self.buffer.split_to(end + 1);
            bytes += line.len();
            if bytes > HEADER_BYTES {
                return Err(headers_too_long());
            }
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                self.scan = 0;
                return Ok(headers);
            }
            lines += 1;
            if lines > HEADER_LINES {
                return Err(bad(format!("a part has over {HEADER_LINES} header lines")));
            }
            match (line.starts_with([' ', '\t']), headers.last_mut()) {
                // A folded line continues the header before it.
                (true, Some((_, value))) => {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                _ => {
                    if let Some((name, value)) = line.split_once(':') {
                        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                    }
                }
            }
        }
    }

    /// The next piece of a part's body, `None` at the delimiter that ends
    /// it (the line end before the delimiter is not part of the body; see
    /// [`Reader::closed`] for which delimiter it was).
    pub(crate) async fn piece(&mut self) -> Result<Option<BytesMut>> {
        loop {
            if let Some(at) = find(&self.buffer, &self.delimiter, self.scan) {
                // The body ends before the line end the delimiter starts with.
                let end = if at > 0 && self.buffer[at - 1] == b'\r' {
                    at - 1
                } else {
                    at
                };
                match self.found(at)? {
                    Found::Not => {
                        self.scan = at + 1;
                        continue;
                    }
                    Found::Delimiter { len, closing } => {
                        if end > 0 {
                            self.scan = at - end;
                            return Ok(Some(self.buffer.split_to(end)));
                        }
                        self.buffer.advance(at + len);
                        self.scan = 0;
                        self.closed = closing;
                        return Ok(None);
                    }
                    Found::NeedMore => {
                        if end > 0 {
                            self.scan = at - end;
                            return Ok(Some(self.buffer.split_to(end)));
                        }
                        if !self.fill().await? {
                            return Err(ended_early());
                        }
                        continue;
                    }
                }
            }
            // Keep what could start a delimiter split across reads (and the
            // `\r` before it).
            let keep = self.delimiter.len() + 1;
            if self.buffer.len() > keep {
                let ready = self.buffer.len() - keep;
                self.scan = 0;
                return Ok(Some(self.buffer.split_to(ready)));
            }
            if !self.fill().await? {
                return Err(ended_early());
            }
        }
    }
}

fn preamble_too_long() -> Error {
    bad(format!("its preamble is over {PREAMBLE_LIMIT} bytes"))
}

fn headers_too_long() -> Error {
    bad(format!("a part's headers are over {HEADER_BYTES} bytes"))
}

fn ended_early() -> Error {
    bad("the answer ended before its closing boundary")
}

/// Where `needle` first occurs in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| at + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `body` cut into pieces of `size` bytes.
    fn pieces(
        body: &[u8],
        size: usize,
    ) -> futures::stream::Iter<std::vec::IntoIter<std::result::Result<bytes::Bytes, Error>>> {
        let chunks: Vec<_> = body
            .chunks(size)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(chunks)
    }

    /// The parts of `body` (headers, body), and whether it closed.
    async fn read(body: &[u8], size: usize) -> Result<Vec<(Vec<(String, String)>, Vec<u8>)>> {
        let mut reader = Reader::new(pieces(body, size), "b0und");
        reader.start().await?;
        let mut parts = Vec::new();
        loop {
            let headers = reader.headers().await?;
            let mut part = Vec::new();
            while let Some(piece) = reader.piece().await? {
                part.extend_from_slice(&piece);
            }
            parts.push((headers, part));
            if reader.closed() {
                return Ok(parts);
            }
        }
    }

    #[tokio::test]
    async fn both_parts_are_read_whatever_the_line_ends_and_the_piece_sizes() {
        let audio: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        for newline in ["\r\n", "\n"] {
            let mut body = format!(
                "preamble{newline}--b0und{newline}content-type: application/json{newline}{newline}{{\"a\":1}}{newline}\
                 --b0und  {newline}Content-Type: audio/mpeg{newline}\
                 content-disposition: attachment;{newline}\tfilename=\"x.mp3\"{newline}{newline}"
            )
            .into_bytes();
            body.extend_from_slice(&audio);
            body.extend_from_slice(b"\r\n--b0undary\n--b0und-x\n--b0und \tx");
            body.extend_from_slice(format!("{newline}--b0und--{newline}").as_bytes());
            let mut whole = audio.clone();
            whole.extend_from_slice(b"\r\n--b0undary\n--b0und-x\n--b0und \tx");
            for size in [1, 2, 7, 64, 4096, body.len()] {
                let parts = read(&body, size).await.unwrap();
                assert_eq!(parts.len(), 2, "{newline:?} {size}");
                assert_eq!(parts[0].1, b"{\"a\":1}", "{newline:?} {size}");
                assert_eq!(parts[1].1, whole, "{newline:?} {size}");
                assert_eq!(
                    parts[1].0,
                    vec![
                        ("content-type".to_owned(), "audio/mpeg".to_owned()),
                        (
                            "content-disposition".to_owned(),
                            "attachment; filename=\"x.mp3\"".to_owned()
                        )
                    ]
                );
            }
        }
    }

    #[tokio::test]
    async fn a_truncated_or_oversized_answer_is_an_error() {
        let cut = b"--b0und\r\n\r\n{}\r\n--b0und\r\n\r\nabc";
        let endless_headers = format!("--b0und\r\n{}", "a:b\r\n".repeat(HEADER_LINES + 1));
        let long_header = format!("--b0und\r\nx: {}\r\n\r\n", "y".repeat(HEADER_BYTES));
        let preamble = format!(
            "{}\r\n--b0und\r\n\r\n--b0und--",
            "p".repeat(PREAMBLE_LIMIT + 1)
        );
        let padding = format!("--b0und{}\r\n\r\n--b0und--", " ".repeat(PADDING_LIMIT + 1));
        for (body, says) in [
            (&cut[..], "closing boundary"),
            (endless_headers.as_bytes(), "header lines"),
            (long_header.as_bytes(), "headers are over"),
            (preamble.as_bytes(), "preamble"),
            (padding.as_bytes(), "padding"),
            (b"no boundary here", "no boundary"),
            (b"--b0und--\r\n", "closes before"),
            (b"--b0und\r\nx: y", "inside a part's headers"),
        ] {
            for size in [1, 3, 100, body.len()] {
                let error = read(body, size).await.unwrap_err();
                assert!(matches!(error, Error::Decode { .. }), "{error:?}");
                assert!(error.to_string().contains(says), "{says}: {error}");
            }
        }
        // At the limits exactly, the same answers are read.
        let lines = format!(
            "--b0und\r\n{}\r\nx\r\n--b0und--",
            "a:b\r\n".repeat(HEADER_LINES)
        );
        assert_eq!(read(lines.as_bytes(), 5).await.unwrap()[0].1, b"x");
    }

    #[test]
    fn boundaries_are_parsed_and_checked_as_rfc_2046_says() {
        let ok = |ct: &str| boundary(ct).unwrap();
        assert_eq!(ok("multipart/mixed; boundary=sb1"), "sb1");
        assert_eq!(ok("multipart/mixed; boundary=\"ab c\""), "ab c");
        assert_eq!(
            ok("multipart/mixed;charset=x;BOUNDARY=\"a\\'b\" ;q=1"),
            "a'b"
        );
        assert_eq!(
            ok(&format!("multipart/mixed; boundary={}", "x".repeat(70))).len(),
            70
        );
        for bad in [
            "multipart/mixed; boundary=\"\"",
            "multipart/mixed; boundary=",
            "multipart/mixed; boundary=\"a;b\"",
            "multipart/mixed; boundary=\"a \"",
            "multipart/mixed; boundary=\"a\r\nb\"",
            "multipart/mixed; boundary=\"unterminated",
            "multipart/mixed; boundary=a; boundary=b",
            "multipart/mixed",
            &format!("multipart/mixed; boundary={}", "x".repeat(71)),
        ] {
            let error = boundary(bad).unwrap_err();
            assert!(matches!(error, Error::Decode { .. }), "{bad}: {error:?}");
        }
    }
}
