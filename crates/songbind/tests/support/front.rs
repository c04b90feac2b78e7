//! A misbehaving front on loopback: it answers each request by a script
//! (forward it to the emulator, forward it and lose the reply, or answer
//! with raw bytes of its own), and records every request it received.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the front does with one request.
#[derive(Clone, Debug)]
pub enum Step {
    /// Forward it upstream and send the answer back.
    Forward,
    /// Forward it upstream (the job is created), then close the connection
    /// without a reply.
    ForwardThenDrop,
    /// Answer with these raw bytes (a whole HTTP response), without
    /// forwarding.
    Answer(String),
    /// Answer an SSE head, then only keepalive comments until the client
    /// goes away: a stream that never names its song.
    Keepalives,
    /// Never answer (the connection stays open until the client goes).
    Silent,
    /// Answer `status` with `content_type` and `body` (use `{auth}` in the
    /// body to echo the request's key header: Authorization or xi-api-key).
    Echo {
        status: u16,
        content_type: &'static str,
        body: &'static str,
    },
}

/// One request the front received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The running front.
pub struct Front {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Front {
    /// Starts a front before `upstream` (a base URL with no path), playing
    /// `script` for the first requests and forwarding the rest.
    pub async fn start(upstream: &str, script: Vec<Step>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let upstream = upstream.trim_end_matches('/').to_owned();
        let seen = received.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, script, upstream, http) =
                    (seen.clone(), script.clone(), upstream.clone(), http.clone());
                tokio::spawn(async move {
                    serve(socket, &seen, &script, &upstream, &http).await;
                });
            }
        });
        Self { url, received }
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// How many requests were received with this method.
    pub fn count(&self, method: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }
}

/// Handles requests on one connection until it closes.
async fn serve(
    mut socket: TcpStream,
    seen: &Mutex<Vec<Received>>,
    script: &Mutex<VecDeque<Step>>,
    upstream: &str,
    http: &reqwest::Client,
) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    seen.lock().unwrap().push(request.clone());
    let step = script.lock().unwrap().pop_front().unwrap_or(Step::Forward);
    match step {
        Step::Keepalives => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        connection: close\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
            loop {
                tick.tick().await;
                if socket.write_all(b": keepalive\n\n").await.is_err() {
                    return;
                }
            }
        }
        Step::Silent => {
            let mut sink = [0u8; 1024];
            while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
        Step::Answer(raw) => {
            let _ = socket.write_all(raw.as_bytes()).await;
        }
        Step::Echo {
            status,
            content_type,
            body,
        } => {
            let key = request
                .header("authorization")
                .or_else(|| request.header("xi-api-key"))
                .unwrap_or("");
            let body = body.replace("{auth}", key);
            let raw = format!(
                "HTTP/1.1 {status} Whatever\r\ncontent-type: {content_type}\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(raw.as_bytes()).await;
        }
        Step::Forward | Step::ForwardThenDrop => {
            let mut builder = http.request(
                request.method.parse().unwrap(),
                format!("{upstream}{}", request.path),
            );
            for (name, value) in &request.headers {
                if !matches!(
                    name.to_ascii_lowercase().as_str(),
                    "host" | "content-length" | "connection" | "transfer-encoding"
                ) {
                    builder = builder.header(name, value);
                }
            }
            let Ok(answer) = builder.body(request.body.clone()).send().await else {
                return;
            };
            let status = answer.status();
            let headers = answer.headers().clone();
            let body = answer.bytes().await.unwrap_or_default();
            if matches!(step, Step::ForwardThenDrop) {
                return; // the job exists; the reply is lost
            }
            let mut head = format!("HTTP/1.1 {}\r\n", status);
            for (name, value) in &headers {
                if !matches!(
                    name.as_str(),
                    "content-length" | "connection" | "transfer-encoding"
                ) {
                    head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
                }
            }
            head.push_str(&format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            ));
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        }
    }
    let _ = socket.shutdown().await;
}

/// Reads one request (head and a `content-length` body).
async fn read_request(socket: &mut TcpStream) -> Option<Received> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Received {
        method,
        path,
        headers,
        body,
    })
}

/// A raw HTTP response.
pub fn raw(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    text
}
