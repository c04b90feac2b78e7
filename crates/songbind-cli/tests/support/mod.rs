//! What the CLI's test files share: reading one HTTP/1.1 request off a raw
//! socket, for the scripted loopback servers that answer (or misbehave)
//! exactly as a test says.

// Each test file is its own crate and uses part of this module.
#![allow(dead_code)]

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// One request as a scripted server read it.
#[derive(Clone, Debug)]
pub struct Received {
    /// `POST /path HTTP/1.1`.
    pub request_line: String,
    /// Every header, its name lower-cased, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body (`content-length` bytes, or what came before the end).
    pub body: Vec<u8>,
}

impl Received {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request: its head, then `content-length` bytes of body.
/// `None` when the connection ends before the head does.
pub async fn read_request(socket: &mut TcpStream) -> Option<Received> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut received = Received {
        request_line,
        headers,
        body: buffer[head_end..].to_vec(),
    };
    let length: usize = received
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while received.body.len() < length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => received.body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(received)
}
