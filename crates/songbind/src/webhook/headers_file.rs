//! A delivery's headers as saved to a file (`curl -D`, an HTTP log), read
//! back for checking a delivery after the fact.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Most headers a headers file may hold: a delivery carries a dozen, and a
/// `HeaderMap` holds at most 24,576 names (it panics past that).
pub const MAX_HEADER_LINES: usize = 1000;

/// Why a headers file could not be read: the line, from 1, and what is
/// wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct HeadersFileError {
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Reads a headers file: `name: value` lines as `curl -D` writes them.
/// Skipped: a UTF-8 byte order mark, blank lines, `#` comments, and status
/// or request lines (`HTTP/1.1 200 OK`, `POST /hooks HTTP/1.1`). A name
/// given twice keeps both values. Anything else, or more than
/// [`MAX_HEADER_LINES`] headers, is an error naming the line. No input
/// panics.
///
/// ```
/// use songbind::webhook::parse_headers_file;
///
/// let headers = parse_headers_file("HTTP/1.1 200 OK\r\nwebhook-id: msg_1\r\n\r\n").unwrap();
/// assert_eq!(headers["webhook-id"], "msg_1");
/// assert_eq!(parse_headers_file("just words").unwrap_err().line, 1);
/// ```
pub fn parse_headers_file(text: &str) -> Result<HeaderMap, HeadersFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut headers = HeaderMap::new();
    for (index, line) in text.lines().enumerate() {
        let refuse = |reason: String| HeadersFileError {
            line: index + 1,
            reason,
        };
        let line = line.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || is_start_line(trimmed) {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(refuse("not `name: value`".to_owned()));
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| refuse("not a header name".to_owned()))?;
        // `HeaderValue` also takes bytes past ASCII (obs-text), which a
        // Standard Webhooks header never holds and a lossy read of a file
        // that is not UTF-8 would have changed.
        let value = Some(value.trim())
            .filter(|value| value.is_ascii())
            .and_then(|value| HeaderValue::from_str(value).ok())
            .ok_or_else(|| refuse(format!("the value of {name} is not visible ASCII")))?;
        if headers.len() >= MAX_HEADER_LINES || headers.try_append(name, value).is_err() {
            return Err(refuse(format!(
                "more than {MAX_HEADER_LINES} headers (no delivery has that many)"
            )));
        }
    }
    Ok(headers)
}

/// Whether `line` is an HTTP status line (`HTTP/1.1 200 OK`) or request
/// line (`POST /hooks HTTP/1.1`: a method in capitals, a target, a version).
fn is_start_line(line: &str) -> bool {
    if line.starts_with("HTTP/") {
        return true;
    }
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some(method), Some(_), Some(version), None) => {
            version.starts_with("HTTP/") && method.chars().all(|c| c.is_ascii_uppercase())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_files_read_curl_dumps() {
        let text = "POST /hooks HTTP/1.1\r\nHost: 127.0.0.1:8787\r\nwebhook-id: msg_1\r\n\
                    # a comment\r\nwebhook-signature: v1,a\r\nwebhook-signature: v1,b\r\n\r\n";
        let headers = parse_headers_file(text).unwrap();
        assert_eq!(headers.get("webhook-id").unwrap(), "msg_1");
        assert_eq!(headers.get_all("webhook-signature").iter().count(), 2);
        assert_eq!(headers.get("host").unwrap(), "127.0.0.1:8787");
        let dump = parse_headers_file("HTTP/1.1 200 OK\ncontent-type: text/plain\n").unwrap();
        assert_eq!(dump.len(), 1);
        let error = parse_headers_file("webhook-id: a\njust words\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.to_string().starts_with("line 2"), "{error}");
        assert!(parse_headers_file("bad name: x").is_err());
    }

    #[test]
    fn a_value_past_ascii_is_refused() {
        // Found by the `headers_file` fuzz target: a byte that is not UTF-8,
        // read lossily, became U+FFFD, which `HeaderValue` took as obs-text.
        let text = String::from_utf8_lossy(b"webhook-id: msg_1\nwebhook-signature: v\xbc1,b\n");
        let error = parse_headers_file(&text).unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.reason.contains("not visible ASCII"), "{error}");
        assert!(parse_headers_file("webhook-id: caf\u{e9}\n").is_err());
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let bom = parse_headers_file("\u{feff}webhook-id: msg_1\r\n").unwrap();
        assert_eq!(bom.get("webhook-id").unwrap(), "msg_1");
    }

    #[test]
    fn endless_headers_files_are_refused_without_a_panic() {
        let many: String = (0..30_000).map(|i| format!("x-{i}: v\n")).collect();
        let error = parse_headers_file(&many).unwrap_err();
        assert_eq!(error.line, MAX_HEADER_LINES + 1);
        assert!(error.reason.contains("more than 1000 headers"), "{error}");
        let repeated = "a: b\n".repeat(30_000);
        assert!(parse_headers_file(&repeated).is_err());
    }
}
