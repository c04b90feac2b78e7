//! MusicGPT's multipart `POST /Remix` upload against a raw loopback server
//! that records every connection: what it received, byte for byte, and
//! whether the multipart body was whole.
//!
//! Files that are not regular files are refused before any connection is
//! made; a file that changes while it is being sent never reaches the server
//! as a corrupt body reported as a success. Nothing sleeps: the server
//! pauses after the first bytes of a body and waits for the test, and the
//! test counts connections by sending a sentinel connection of its own,
//! which the server (handling connections one at a time, in order) sees
//! only after every connection the client made.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use songbind::musicgpt::{AudioInput, MusicGpt, RemixRequest};
use songbind::{Error, RetryPolicy, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// The first line the sentinel connection sends.
const SENTINEL: &str = "SENTINEL";

/// The receive buffer of the server's sockets: small, so that a paused
/// server holds the client back after a few kilobytes.
const RECV_BUFFER: u32 = 16 * 1024;

/// What the server saw on one connection.
#[derive(Debug)]
struct Seen {
    /// The request line and headers.
    head: String,
    /// The `Content-Length` the request declared.
    declared: Option<usize>,
    /// The body bytes received (at most the declared length).
    body: Vec<u8>,
    /// Whether every declared byte arrived (and the server answered 200).
    complete: bool,
}

impl Seen {
    fn is_sentinel(&self) -> bool {
        self.head.starts_with(SENTINEL)
    }

    /// The multipart boundary from the `Content-Type` header.
    fn boundary(&self) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            if !name.trim().eq_ignore_ascii_case("content-type") {
                return None;
            }
            let (_, boundary) = value.split_once("boundary=")?;
            Some(boundary.trim().trim_matches('"').to_owned())
        })
    }
}

/// One part of a multipart body.
#[derive(Debug, PartialEq, Eq)]
struct ParsedPart {
    headers: String,
    len: usize,
}

/// Parses a whole `multipart/form-data` body strictly: it must start with
/// the first boundary and end with the closing one.
fn parse_multipart(body: &[u8], boundary: &str) -> Result<Vec<ParsedPart>, String> {
    let first = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body
        .strip_prefix(first.as_bytes())
        .ok_or("the body does not start with the boundary")?;
    let mut parts = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix(b"--") {
            return match after {
                b"" | b"\r\n" => Ok(parts),
                _ => Err(format!("{} bytes after the closing boundary", after.len())),
            };
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("no line break after a boundary")?;
        let head_end = find(rest, b"\r\n\r\n").ok_or("a part has no end of headers")?;
        let headers = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        rest = &rest[head_end + 4..];
        let data_end = find(rest, delimiter.as_bytes())
            .ok_or_else(|| format!("no boundary after the part {headers:?}"))?;
        parts.push(ParsedPart {
            headers,
            len: data_end,
        });
        rest = &rest[data_end + delimiter.len()..];
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(offset) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + offset;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Pauses the server's first connection once `after` body bytes arrived:
/// `reached` fires, and reading resumes when `resume` does.
struct Gate {
    after: usize,
    reached: oneshot::Sender<()>,
    resume: oneshot::Receiver<()>,
}

/// A raw HTTP/1.1 server on 127.0.0.1:0 that handles one connection at a
/// time and reports what it saw on each.
struct Server {
    addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Server {
    async fn start(mut gate: Option<Gate>) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(RECV_BUFFER).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(16).unwrap();
        let addr = listener.local_addr().unwrap();
        let (report, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = handle(stream, gate.take()).await;
                if report.send(seen).is_err() {
                    break;
                }
            }
        });
        Self { addr, seen }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every connection the server handled before the sentinel, that is,
    /// every connection made before this call.
    async fn settle(&mut self) -> Vec<Seen> {
        let mut sentinel = TcpStream::connect(self.addr).await.unwrap();
        sentinel
            .write_all(format!("{SENTINEL}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        sentinel.shutdown().await.unwrap();
        let mut connections = Vec::new();
        while let Some(seen) = self.seen.recv().await {
            if seen.is_sentinel() {
                return connections;
            }
            connections.push(seen);
        }
        panic!("the server stopped before the sentinel");
    }
}

/// Reads one request: the head, then up to the declared length of body
/// (pausing at the gate), and answers 200 with a remix answer if the whole
/// body arrived.
async fn handle(mut stream: TcpStream, mut gate: Option<Gate>) -> Seen {
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut head_len = None;
    let mut declared = None;
    loop {
        if let (Some(head), Some(length)) = (head_len, declared)
            && received.len() - head >= length
        {
            break;
        }
        if let Some(head) = head_len
            && let Some(pause) = gate.take_if(|g| received.len() - head >= g.after)
        {
            let _ = pause.reached.send(());
            let _ = pause.resume.await;
        }
        let read = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        received.extend_from_slice(&buffer[..read]);
        if head_len.is_none()
            && let Some(end) = find(&received, b"\r\n\r\n")
        {
            head_len = Some(end + 4);
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            declared = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            });
            if head.starts_with(SENTINEL) {
                declared = Some(0);
            }
        }
    }
    let head_end = head_len.unwrap_or(received.len());
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let mut body = received[head_end..].to_vec();
    let complete = declared.is_some_and(|length| body.len() >= length);
    if let Some(length) = declared {
        body.truncate(length);
    }
    if complete && !head.starts_with(SENTINEL) {
        let answer = r#"{"success":true,"task_id":"task-1","conversion_id_1":"c-1","conversion_id_2":"c-2"}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
    Seen {
        head,
        declared,
        body,
        complete,
    }
}

fn client(server: &Server) -> MusicGpt {
    MusicGpt::new(&server.base_url(), &Secret::from("mgpt_upload_test"))
        .unwrap()
        .retry_policy(RetryPolicy::none())
}

fn request(path: &Path) -> RemixRequest {
    RemixRequest::new(AudioInput::File(path.to_path_buf()), "an upbeat remix")
}

/// Submits a remix of `path`; the client is dropped before returning, so
/// that no pooled connection stays open.
async fn submit(server: &Server, path: &Path) -> songbind::Result<String> {
    let client = client(server);
    let job = client.submit_remix(&request(path)).await;
    job.map(|job| job.id().to_owned())
}

/// `len` bytes that never contain a CR LF followed by dashes, so that a
/// boundary can only be found where the client put one.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The `audio_file` part's length in a whole body, or why the body is not
/// a whole multipart body.
fn uploaded_len(seen: &Seen) -> Result<usize, String> {
    let boundary = seen.boundary().ok_or("no multipart boundary")?;
    let parts = parse_multipart(&seen.body, &boundary)?;
    parts
        .iter()
        .find(|part| part.headers.contains("name=\"audio_file\""))
        .map(|part| part.len)
        .ok_or_else(|| "no audio_file part".to_owned())
}

/// Asserts that `error` refuses `path` before sending, saying what it is.
fn assert_refused(error: &Error, path: &Path, what: &str) {
    match error {
        Error::Validation {
            field,
            reason,
            resume: None,
        } => {
            assert_eq!(field, "audio_file", "{error}");
            assert!(
                reason.contains(&path.display().to_string()),
                "the path is named: {error}"
            );
            assert!(reason.contains(what), "{error}");
            assert!(reason.contains("not a regular file"), "{error}");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_directory_is_refused_before_anything_is_sent() {
    let mut server = Server::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let error = submit(&server, dir.path()).await.unwrap_err();
    assert_refused(&error, dir.path(), "a directory");
    let connections = server.settle().await;
    assert!(connections.is_empty(), "nothing is sent: {connections:#?}");
}

#[cfg(unix)]
#[tokio::test]
async fn dev_zero_is_refused_before_anything_is_sent() {
    let mut server = Server::start(None).await;
    let zero = Path::new("/dev/zero");
    let error = submit(&server, zero).await.unwrap_err();
    assert_refused(&error, zero, "a character device");
    let connections = server.settle().await;
    assert!(connections.is_empty(), "nothing is sent: {connections:#?}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_fifo_is_refused_before_it_is_opened_or_anything_is_sent() {
    let mut server = Server::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.mp3");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", fifo.display());
    // A guard, not a synchronisation: opening a FIFO for reading blocks
    // until a writer comes, so a client that opened it would hang here.
    let submitted = tokio::time::timeout(Duration::from_secs(60), submit(&server, &fifo)).await;
    let Ok(result) = submitted else {
        // Let the blocked open return, so the runtime can shut down.
        drop(std::fs::OpenOptions::new().write(true).open(&fifo));
        panic!("the client opened the FIFO and blocked");
    };
    assert_refused(&result.unwrap_err(), &fifo, "a FIFO");
    let connections = server.settle().await;
    assert!(connections.is_empty(), "nothing is sent: {connections:#?}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_symbolic_link_to_a_regular_file_is_followed_and_sent_whole() {
    let mut server = Server::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real.wav");
    let len = 300_000;
    std::fs::write(&target, content(len)).unwrap();
    let link = dir.path().join("link.wav");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let id = submit(&server, &link).await.unwrap();
    assert_eq!(id, "task-1");
    let connections = server.settle().await;
    assert_eq!(connections.len(), 1, "{connections:#?}");
    let seen = &connections[0];
    assert!(seen.complete, "{seen:?}");
    assert_eq!(uploaded_len(seen), Ok(len));
    let boundary = seen.boundary().unwrap();
    let parts = parse_multipart(&seen.body, &boundary).unwrap();
    assert!(
        parts
            .iter()
            .any(|p| p.headers.contains("filename=\"link.wav\"")),
        "{parts:?}"
    );
}

/// Bytes that may be in flight between the client's file reader and the
/// paused server: the client's socket send buffer at its largest, the
/// server's receive buffer and hyper's write buffer, with room to spare.
fn in_flight_bound() -> usize {
    let send_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|text| text.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(8 * 1024 * 1024);
    send_max + RECV_BUFFER as usize + 2 * 1024 * 1024
}

/// Starts uploading a file larger than [`in_flight_bound`] to a server that
/// pauses after the first body bytes, runs `change` on the file while the
/// client is still reading it, and returns the call's result, the file's
/// path and length at the start, and what the server saw.
async fn upload_while(
    change: impl FnOnce(&Path),
) -> (songbind::Result<String>, PathBuf, usize, Vec<Seen>) {
    let (reached_tx, reached) = oneshot::channel();
    let (resume, resume_rx) = oneshot::channel();
    let mut server = Server::start(Some(Gate {
        after: 1,
        reached: reached_tx,
        resume: resume_rx,
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing.wav");
    let len = 2 * in_flight_bound();
    std::fs::write(&path, content(len)).unwrap();

    let upload = tokio::spawn({
        let client = client(&server);
        let path = path.clone();
        async move {
            let result = client.submit_remix(&request(&path)).await;
            result.map(|job| job.id().to_owned())
        }
    });
    // The server holds the body after its first byte: the client cannot
    // have read more than what fits in the buffers between them, less than
    // half the file.
    reached
        .await
        .expect("the server received the first body bytes");
    change(&path);
    resume.send(()).unwrap();
    let result = upload.await.unwrap();
    let connections = server.settle().await;
    drop(dir);
    (result, path, len, connections)
}

#[tokio::test]
async fn a_file_that_grows_during_the_upload_is_never_sent_as_a_corrupt_success() {
    let (result, path, len, connections) = upload_while(|path| {
        let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        std::io::Write::write_all(&mut file, &content(100_000)).unwrap();
    })
    .await;
    assert_eq!(
        connections.len(),
        1,
        "one request, no retry: {connections:#?}"
    );
    let seen = &connections[0];
    assert!(seen.declared.is_some(), "{}", seen.head);
    match &result {
        Ok(_) => {
            // Allowed only if exactly the measured length went out, whole.
            assert!(seen.complete);
            assert_eq!(uploaded_len(seen), Ok(len), "a success sent a corrupt body");
        }
        Err(Error::Io {
            path: named,
            source,
        }) => {
            assert_eq!(named, &path.display().to_string(), "{result:?}");
            assert!(source.to_string().contains("grew"), "{source}");
            // The server never got a whole body to take for the file.
            if seen.complete {
                assert_eq!(uploaded_len(seen), Ok(len));
            }
        }
        Err(other) => panic!("expected an I/O error naming the file, got {other:?}"),
    }
    // The file was appended to while the client was still reading it: a
    // client that stops at the measured length must notice the extra bytes.
    let error = result.expect_err("the file grew under the upload");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn a_file_that_shrinks_during_the_upload_fails_naming_the_file() {
    let (result, path, len, connections) = upload_while(|path| {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_len((in_flight_bound() + 1) as u64).unwrap();
    })
    .await;
    assert_eq!(connections.len(), 1, "{connections:#?}");
    assert!(!connections[0].complete, "the body was left unfinished");
    match result {
        Err(Error::Io {
            path: named,
            source,
        }) => {
            assert_eq!(named, path.display().to_string());
            let message = source.to_string();
            assert!(message.contains("shrank"), "{message}");
            assert!(message.contains(&len.to_string()), "{message}");
        }
        other => panic!("expected an I/O error naming the file, got {other:?}"),
    }
}
