//! The hostile-peer kit: what every songbind surface is tested against.
//!
//! A surface that reads from a network, a file or a pipe, or writes files,
//! or prints provider text, meets the same peers here:
//!
//! - [`Server`]: a loopback HTTP/1.1 server that answers each request by a
//!   [`Script`] (an exact answer, an answer written one byte at a time, a
//!   header block or a body without end, a body cut short, silence, a
//!   reset, an echo of the request's headers) and counts and records what
//!   it received;
//! - [`client`]: peers that connect to a server and misbehave (headers that
//!   never end or stall, a body larger than declared or never finished,
//!   many such connections at once);
//! - [`plant_link`]: a symbolic link planted where a surface will write;
//! - [`HOSTILE_TEXT`]: control characters (C0, C1, DEL) and direction
//!   overrides, as a provider or a peer may send them.
//!
//! Every server binds `127.0.0.1:0`; nothing here sleeps to wait for an
//! event (only [`Script::Slow`] paces its own writes, as its peer would).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub mod client;

/// Text that must never reach a terminal raw: ESC sequences (set the window
/// title, clear the screen), a C1 CSI, DEL, a bell, a carriage return and
/// the right-to-left override and isolate.
pub const HOSTILE_TEXT: &str =
    "a\u{1b}]0;pwned\u{7}b\u{1b}[2Jc\u{9b}31md\u{7f}e\rf\u{202e}g\u{2066}h";

/// How a [`Server`] answers one request.
#[derive(Clone, Debug)]
pub enum Script {
    /// These bytes, verbatim (a whole HTTP response, see [`response`]),
    /// then the connection is closed.
    Answer(Vec<u8>),
    /// These bytes, one at a time with `pause` between them (a slow
    /// writer), then closed.
    Slow {
        /// The whole response.
        bytes: Vec<u8>,
        /// The pause after each byte.
        pause: Duration,
    },
    /// A status line, then header lines without end (`x-n: n`), until the
    /// peer goes away.
    EndlessHeaders,
    /// These bytes (the start of an answer), then `repeat` over and over
    /// until the peer goes away: a body that never ends in a shape of the
    /// test's choosing (endless part headers, endless events).
    Repeating {
        /// What is sent first.
        start: Vec<u8>,
        /// What is sent after it, without end.
        repeat: Vec<u8>,
    },
    /// A `200` of `content_type` whose chunked body never ends (1 MiB
    /// pieces of `filler`), until the peer goes away.
    EndlessBody {
        /// The answer's `Content-Type`.
        content_type: String,
        /// The byte the body is made of.
        filler: u8,
    },
    /// A `200` of `content_type` declaring `declared` bytes but sending
    /// only `body`, then closing cleanly (an early, clean end).
    CutShort {
        /// The answer's `Content-Type`.
        content_type: String,
        /// The `Content-Length` declared.
        declared: usize,
        /// What is sent of it.
        body: Vec<u8>,
    },
    /// Never answer; the connection stays open until the peer goes.
    Silent,
    /// Close the connection at once without an answer (after reading the
    /// request).
    Close,
    /// `status` with `content_type`, the body listing every request header
    /// as received (`name: value` lines): a server that echoes the key.
    EchoHeaders {
        /// The status line's code and reason, e.g. `500 Internal Server Error`.
        status: String,
        /// The answer's `Content-Type`.
        content_type: String,
    },
}

/// One request as a [`Server`] read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// `POST /path HTTP/1.1`.
    pub request_line: String,
    /// Every header, its name lower-cased, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes, or what came before the end).
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

/// The most a [`Server`] reads of one request's head and body (a test's own
/// server must not be the unbounded one).
pub const READ_LIMIT: usize = 64 * 1024 * 1024;

/// A scripted loopback server: each request gets the next script step
/// (the last one repeats), and every request is counted and recorded.
pub struct Server {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub url: String,
    count: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    /// Starts a server playing `script` (at least one step).
    pub async fn start(script: Vec<Script>) -> Self {
        assert!(!script.is_empty(), "a script needs at least one step");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let count = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (counted, log) = (Arc::clone(&count), Arc::clone(&received));
        let script = Arc::new(script);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (counted, log, script) =
                    (Arc::clone(&counted), Arc::clone(&log), Arc::clone(&script));
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else {
                        return;
                    };
                    let n = counted.fetch_add(1, Ordering::SeqCst);
                    let step = script[n.min(script.len() - 1)].clone();
                    let headers = request.headers.clone();
                    log.lock().unwrap_or_else(|p| p.into_inner()).push(request);
                    play(&mut socket, step, &headers).await;
                });
            }
        });
        Self {
            url,
            count,
            received,
        }
    }

    /// A server that answers every request with `script`.
    pub async fn always(script: Script) -> Self {
        Self::start(vec![script]).await
    }

    /// How many requests it has received (read whole, head and body).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Every request it has received, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `host:port`, for raw clients.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }
}

/// A whole HTTP/1.1 response: `status` (`"200 OK"`), `headers`, `body`,
/// with its `Content-Length` and `Connection: close`.
pub fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    [head.as_bytes(), body].concat()
}

/// Plays one step on `socket`.
async fn play(socket: &mut TcpStream, step: Script, headers: &[(String, String)]) {
    match step {
        Script::Answer(bytes) => {
            let _ = socket.write_all(&bytes).await;
            let _ = socket.shutdown().await;
        }
        Script::Slow { bytes, pause } => {
            for byte in bytes {
                if socket.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(pause).await;
            }
            let _ = socket.shutdown().await;
        }
        Script::EndlessHeaders => {
            if socket.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
                return;
            }
            for n in 0u64.. {
                if socket
                    .write_all(format!("x-{n}: {n}\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        Script::Repeating { start, repeat } => {
            if socket.write_all(&start).await.is_err() {
                return;
            }
            while socket.write_all(&repeat).await.is_ok() {}
        }
        Script::EndlessBody {
            content_type,
            filler,
        } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
            );
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let piece = vec![filler; 1 << 20];
            let chunk = [format!("{:x}\r\n", piece.len()).as_bytes(), &piece, b"\r\n"].concat();
            while socket.write_all(&chunk).await.is_ok() {}
        }
        Script::CutShort {
            content_type,
            declared,
            body,
        } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {declared}\r\n\
                 connection: close\r\n\r\n"
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
            let _ = socket.shutdown().await;
        }
        Script::Silent => {
            let mut sink = [0u8; 1024];
            while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
        }
        Script::Close => {}
        Script::EchoHeaders {
            status,
            content_type,
        } => {
            let body: String = headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}\n"))
                .collect();
            let bytes = response(&status, &[("content-type", &content_type)], body.as_bytes());
            let _ = socket.write_all(&bytes).await;
            let _ = socket.shutdown().await;
        }
    }
}

/// Reads one request: its head, then `Content-Length` bytes of body (at
/// most [`READ_LIMIT`] in all). `None` when the connection ends before the
/// head does.
pub async fn read_request(socket: &mut TcpStream) -> Option<Received> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > READ_LIMIT {
            return None;
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
        .unwrap_or(0)
        .min(READ_LIMIT);
    while received.body.len() < length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => received.body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(received)
}

/// Plants a symbolic link at `dir/name` pointing at a file `victim` beside
/// it holding `precious`; returns the victim's path, whose content a test
/// checks afterwards.
#[cfg(unix)]
pub fn plant_link(dir: &Path, name: &str) -> PathBuf {
    let victim = dir.join(format!(".victim-of-{name}"));
    std::fs::write(&victim, b"precious").expect("write the victim");
    std::os::unix::fs::symlink(&victim, dir.join(name)).expect("plant the link");
    victim
}

/// Whether `victim` (from [`plant_link`]) still holds what it held.
pub fn untouched(victim: &Path) -> bool {
    std::fs::read(victim).is_ok_and(|bytes| bytes == b"precious")
}
