//! A small streaming reader of a two-part `multipart/mixed` answer: a JSON
//! part read whole (bounded), then a binary part streamed to a writer,
//! never held in memory. ElevenLabs' `/v1/music/detailed` answers this way;
//! the official SDKs parse it by hand too, accepting CRLF and LF line ends.

use bytes::{Buf, BytesMut};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};

/// What [`split`] read: the first part's body, and how many bytes of the
/// second it wrote.
#[derive(Debug)]
pub(crate) struct Split {
    /// The first part's body (the JSON).
    pub first: Vec<u8>,
    /// The second part's headers, lowercased names (e.g. `content-type`).
    pub second_headers: Vec<(String, String)>,
    /// Bytes of the second part written to the sink.
    pub written: u64,
}

/// The `boundary` parameter of a `multipart/...` content type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        (name.trim().eq_ignore_ascii_case("boundary"))
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Reads `stream` as a two-part multipart body delimited by `boundary`: the
/// first part (at most `first_limit` bytes) is returned, the second is
/// written to `sink` as it arrives, `progress` called with the total.
pub(crate) async fn split<S, E>(
    stream: S,
    boundary: &str,
    first_limit: usize,
    sink: &mut (impl AsyncWrite + Unpin),
    mut progress: impl FnMut(u64),
) -> Result<Split>
where
    S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    Error: From<E>,
{
    let mut reader = Reader {
        stream,
        buffer: BytesMut::new(),
        delimiter: format!("\n--{boundary}").into_bytes(),
    };
    // The body starts with the delimiter (no newline before it) or a preamble.
    reader.buffer.extend_from_slice(b"\n");
    reader.skip_to_delimiter().await?;
    reader.headers().await?;
    let mut first = Vec::new();
    reader
        .body(|piece| {
            first.extend_from_slice(piece);
            if first.len() > first_limit {
                return Err(bad(format!("its first part is over {first_limit} bytes")));
            }
            Ok(())
        })
        .await?;
    let second_headers = reader.headers().await?;
    let mut written = 0u64;
    while let Some(piece) = reader.piece().await? {
        sink.write_all(&piece)
            .await
            .map_err(|e| bad(format!("writing the second part: {e}")))?;
        written += piece.len() as u64;
        progress(written);
    }
    sink.flush()
        .await
        .map_err(|e| bad(format!("writing the second part: {e}")))?;
    Ok(Split {
        first,
        second_headers,
        written,
    })
}

fn bad(reason: impl std::fmt::Display) -> Error {
    Error::decode("a multipart/mixed answer", reason, "")
}

struct Reader<S> {
    stream: S,
    buffer: BytesMut,
    delimiter: Vec<u8>,
}

impl<S, E> Reader<S>
where
    S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    Error: From<E>,
{
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

    /// Drops everything up to and including the first delimiter.
    async fn skip_to_delimiter(&mut self) -> Result<()> {
        loop {
            if let Some(at) = find(&self.buffer, &self.delimiter) {
                self.buffer.advance(at + self.delimiter.len());
                return Ok(());
            }
            let keep = self.delimiter.len();
            if self.buffer.len() > keep {
                let drop = self.buffer.len() - keep;
                self.buffer.advance(drop);
            }
            if !self.fill().await? {
                return Err(bad("no boundary found"));
            }
        }
    }

    /// Reads the rest of the delimiter line and a part's headers, up to the
    /// blank line.
    async fn headers(&mut self) -> Result<Vec<(String, String)>> {
        let mut headers = Vec::new();
        let mut first_line = true;
        loop {
            let Some(end) = self.buffer.iter().position(|b| *b == b'\n') else {
                if self.buffer.len() > 16 * 1024 {
                    return Err(bad("a part's headers are over 16 KiB"));
                }
                if !self.fill().await? {
                    return Err(bad("the answer ended inside a part's headers"));
                }
                continue;
            };
            let line = self.buffer.split_to(end + 1);
            let text = String::from_utf8_lossy(&line).trim().to_owned();
            if first_line {
                // The delimiter line's end: "--" would close the body.
                first_line = false;
                if text.starts_with("--") {
                    return Err(bad("the answer has fewer than two parts"));
                }
                continue;
            }
            if text.is_empty() {
                return Ok(headers);
            }
            if let Some((name, value)) = text.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
    }

    /// Hands a part's body to `take`, piece by piece.
    async fn body(&mut self, mut take: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        while let Some(piece) = self.piece().await? {
            take(&piece)?;
        }
        Ok(())
    }

    /// The next piece of a part's body, `None` at the delimiter that ends it
    /// (the line end before the delimiter is not part of the body).
    async fn piece(&mut self) -> Result<Option<BytesMut>> {
        loop {
            if let Some(at) = find(&self.buffer, &self.delimiter) {
                if at == 0 {
                    self.buffer.advance(self.delimiter.len());
                    return Ok(None);
                }
                let end = if self.buffer[at - 1] == b'\r' {
                    at - 1
                } else {
                    at
                };
                let piece = self.buffer.split_to(end);
                if end < at {
                    self.buffer.advance(1); // the \r of the line end
                }
                if !piece.is_empty() {
                    return Ok(Some(piece));
                }
                continue;
            }
            // Keep what could be the start of a delimiter split across reads.
            let keep = self.delimiter.len() + 1;
            if self.buffer.len() > keep {
                let ready = self.buffer.len() - keep;
                return Ok(Some(self.buffer.split_to(ready)));
            }
            if !self.fill().await? {
                return Err(bad("the answer ended before its closing boundary"));
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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

    async fn read(body: &[u8], size: usize) -> Result<(Split, Vec<u8>)> {
        let mut audio = Vec::new();
        let split = split(pieces(body, size), "b0und", 1024, &mut audio, |_| {}).await?;
        Ok((split, audio))
    }

    #[tokio::test]
    async fn both_parts_are_read_whatever_the_line_ends_and_the_piece_sizes() {
        let audio: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        for newline in ["\r\n", "\n"] {
            let mut body = format!(
                "--b0und{newline}content-type: application/json{newline}{newline}{{\"a\":1}}{newline}\
                 --b0und{newline}Content-Type: audio/mpeg{newline}\
                 content-disposition: attachment; filename=\"x.mp3\"{newline}{newline}"
            )
            .into_bytes();
            body.extend_from_slice(&audio);
            body.extend_from_slice(format!("{newline}--b0und--{newline}").as_bytes());
            for size in [1, 2, 7, 64, 4096, body.len()] {
                let (split, got) = read(&body, size).await.unwrap();
                assert_eq!(split.first, b"{\"a\":1}", "{newline:?} {size}");
                assert_eq!(got, audio, "{newline:?} {size}");
                assert_eq!(split.written, audio.len() as u64);
                assert!(
                    split
                        .second_headers
                        .contains(&("content-type".into(), "audio/mpeg".into()))
                );
            }
        }
    }

    #[tokio::test]
    async fn a_truncated_or_oversized_answer_is_an_error() {
        let cut = b"--b0und\r\n\r\n{}\r\n--b0und\r\n\r\nabc";
        assert!(read(cut, 3).await.is_err());
        let big = format!(
            "--b0und\r\n\r\n{}\r\n--b0und\r\n\r\nx\r\n--b0und--",
            "x".repeat(2000)
        );
        assert!(read(big.as_bytes(), 100).await.is_err());
        assert!(read(b"no boundary here", 4).await.is_err());
        assert_eq!(
            boundary("multipart/mixed; boundary=\"ab c\"").as_deref(),
            Some("ab c")
        );
    }
}
