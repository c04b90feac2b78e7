//! `songbind_emulator::stack` against hostile peers, over loopback with raw
//! TCP clients: stalled and dripping bodies (408), the connection cap,
//! endless header blocks, bodies over the limit (413), killing a
//! connection, and stopping with and without grace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use songbind_emulator::stack::{self, ConnectionKill, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Only a safety net, far longer than any limit under test: a missing limit
/// fails the test instead of hanging it.
const SAFETY_NET: Duration = Duration::from_secs(30);

/// What the routes tell the test, and how the test lets them go on.
#[derive(Clone)]
struct Hooks {
    arrived: mpsc::UnboundedSender<&'static str>,
    release: Arc<Notify>,
}

/// `POST /echo`: the body's length (axum's `Bytes` extractor);
/// `GET /ok`; `GET /hold`: says `hold` and waits to be released;
/// `POST /late`: says `late`, waits to be released, then reads the body;
/// `GET /kill`: kills its connection and never answers.
fn router(hooks: Hooks) -> Router {
    Router::new()
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/hold",
            get(|State(hooks): State<Hooks>| async move {
                let _ = hooks.arrived.send("hold");
                hooks.release.notified().await;
                "released"
            }),
        )
        .route(
            "/late",
            post(|State(hooks): State<Hooks>, request: Request| async move {
                let _ = hooks.arrived.send("late");
                hooks.release.notified().await;
                match axum::body::to_bytes(request.into_body(), usize::MAX).await {
                    Ok(body) => (StatusCode::OK, body.len().to_string()),
                    Err(error) => (StatusCode::BAD_REQUEST, error.to_string()),
                }
            }),
        )
        .route(
            "/kill",
            get(|Extension(kill): Extension<ConnectionKill>| async move {
                kill.kill();
                std::future::pending::<()>().await;
            }),
        )
        .with_state(hooks)
}

/// A server on a free loopback port, stopped when `stop` is sent or dropped.
struct Server {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    arrived: mpsc::UnboundedReceiver<&'static str>,
    release: Arc<Notify>,
}

impl Server {
    async fn start(limits: Limits) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (arrived_tx, arrived) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let app = router(Hooks {
            arrived: arrived_tx,
            release: Arc::clone(&release),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(stack::serve(listener, app, limits, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
            arrived,
            release,
        })
    }

    async fn connect(&self) -> Result<TcpStream> {
        Ok(TcpStream::connect(self.addr).await?)
    }

    /// Waits for a route to say it has the request.
    async fn arrived(&mut self) -> Result<&'static str> {
        tokio::time::timeout(SAFETY_NET, self.arrived.recv())
            .await
            .context("no request reached the route")?
            .context("the router is gone")
    }
}

/// Reads until the server closes the connection (EOF, or a reset, which is
/// a close too); answers what it sent first.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// [`read_until_closed`] within the safety net; the first line of what was
/// read, and how long it took.
async fn answer(stream: &mut TcpStream) -> Result<(String, Vec<u8>, Duration)> {
    let started = Instant::now();
    let received = tokio::time::timeout(SAFETY_NET, read_until_closed(stream))
        .await
        .with_context(|| format!("the connection was still open after {SAFETY_NET:?}"))?;
    let first = String::from_utf8_lossy(&received)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    Ok((first, received, started.elapsed()))
}

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(60),
        body_read_timeout: Duration::from_secs(60),
        ..Limits::default()
    }
}

/// The request head of a `Content-Length: len` POST to `path`.
fn post_head(path: &str, len: usize) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n")
}

// ---------------------------------------------------------------- body timeout

/// A body that stops arriving is answered 408 after the body timeout and
/// its connection closed; a body sent whole in time is served.
#[tokio::test]
async fn a_stalled_body_is_answered_408_after_the_body_timeout() -> Result<()> {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let server = Server::start(Limits {
        body_read_timeout: TIMEOUT,
        ..limits()
    })
    .await?;

    let mut stalled = server.connect().await?;
    // The server's clock starts once it has the headers.
    let sent = Instant::now();
    stalled
        .write_all(post_head("/echo", 1024 * 1024).as_bytes())
        .await?;
    stalled.write_all(&[b'x'; 1000]).await?;
    let (status, received, _) = answer(&mut stalled).await?;
    let elapsed = sent.elapsed();
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    let text = String::from_utf8_lossy(&received).to_ascii_lowercase();
    assert!(text.contains("connection: close"), "{text}");
    assert!(elapsed >= TIMEOUT, "answered after only {elapsed:?}");

    // The same body, sent whole, is served.
    let mut whole = server.connect().await?;
    whole
        .write_all(post_head("/echo", 1024 * 1024).as_bytes())
        .await?;
    whole.write_all(&vec![b'x'; 1024 * 1024]).await?;
    let (status, received, _) = answer(&mut whole).await?;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(String::from_utf8_lossy(&received).ends_with("\r\n\r\n1048576"));
    Ok(())
}

/// The deadline is for the whole body, not for each piece: a peer that
/// sends a byte every 20 ms (so that no wait between two pieces ever comes
/// near the timeout) is cut all the same.
#[tokio::test]
async fn a_dripping_body_is_cut_at_the_deadline_too() -> Result<()> {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let server = Server::start(Limits {
        body_read_timeout: TIMEOUT,
        ..limits()
    })
    .await?;
    let stream = server.connect().await?;
    let (mut reader, mut writer) = stream.into_split();
    // The server's clock starts once it has the headers.
    let started = Instant::now();
    writer
        .write_all(post_head("/echo", 100_000).as_bytes())
        .await?;
    let drip = tokio::spawn(async move {
        let mut sent = 0usize;
        while sent < 100_000 && writer.write_all(b"x").await.is_ok() {
            sent += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    });
    let mut received = Vec::new();
    tokio::time::timeout(SAFETY_NET, reader.read_to_end(&mut received))
        .await
        .context("still open")?
        .ok();
    let elapsed = started.elapsed();
    drip.abort();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(elapsed >= TIMEOUT, "answered after only {elapsed:?}");
    Ok(())
}

/// Data that has arrived is handed over even when the handler reads it
/// after the deadline: only a body still incomplete fails.
#[tokio::test]
async fn a_body_that_arrived_in_time_is_read_even_if_the_handler_reads_it_late() -> Result<()> {
    const TIMEOUT: Duration = Duration::from_millis(100);
    let mut server = Server::start(Limits {
        body_read_timeout: TIMEOUT,
        ..limits()
    })
    .await?;
    let mut client = server.connect().await?;
    client
        .write_all(post_head("/late", 5000).as_bytes())
        .await?;
    client.write_all(&[b'y'; 5000]).await?;
    assert_eq!(server.arrived().await?, "late");
    // Past the deadline before the handler reads a byte.
    tokio::time::sleep(TIMEOUT * 3).await;
    server.release.notify_one();
    let (status, received, _) = answer(&mut client).await?;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(String::from_utf8_lossy(&received).ends_with("\r\n\r\n5000"));
    Ok(())
}

// ---------------------------------------------------------------- connection cap

/// With `max_connections = N`, N connections that send nothing keep the
/// (N+1)th waiting unserved; once one of them closes, it is served.
#[tokio::test]
async fn at_the_connection_cap_the_next_connection_waits_until_one_closes() -> Result<()> {
    const CAP: usize = 3;
    // How long the waiting client is watched for an answer it must not get
    // (a cap that does not hold answers it within milliseconds).
    const WATCH: Duration = Duration::from_millis(500);
    let server = Server::start(Limits {
        max_connections: CAP,
        ..limits()
    })
    .await?;
    // Stalled mid-headers; the header timeout is 60 s.
    let mut stalled = Vec::new();
    for _ in 0..CAP {
        let mut stream = server.connect().await?;
        stream.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n").await?;
        stalled.push(stream);
    }
    // Accepted after them (the listen backlog is first in, first out).
    let mut next = server.connect().await?;
    next.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut buffer = [0u8; 64];
    match tokio::time::timeout(WATCH, next.read(&mut buffer)).await {
        Err(_elapsed) => {}
        Ok(read) => bail!(
            "connection {} of a cap of {CAP} was served: {read:?} {:?}",
            CAP + 1,
            String::from_utf8_lossy(&buffer)
        ),
    }
    // One stalled client leaves: its slot goes to the waiting one.
    drop(stalled.pop());
    let (status, received, _) = answer(&mut next).await?;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(String::from_utf8_lossy(&received).ends_with("\r\n\r\nok"));
    // The others are still open (the server has not touched them).
    for stream in &mut stalled {
        stream.write_all(b"Connection: close\r\n\r\n").await?;
        let (status, _, _) = answer(stream).await?;
        assert_eq!(status, "HTTP/1.1 200 OK");
    }
    Ok(())
}

// ---------------------------------------------------------------- headers

/// Header lines as fast as the socket takes them: hyper's header size
/// limit cuts the connection long before the (60 s) header timeout.
#[tokio::test]
async fn an_endless_header_block_is_cut_by_the_header_size_limit() -> Result<()> {
    let server = Server::start(limits()).await?;
    let stream = server.connect().await?;
    let (mut reader, mut writer) = stream.into_split();
    let flood = tokio::spawn(async move {
        let line = format!("X-Pad: {}\r\n", "a".repeat(1000));
        let mut sent = 0usize;
        if writer
            .write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_err()
        {
            return sent;
        }
        // Stops when the server closes (a write fails), or at 64 MiB.
        while sent < 64 * 1024 * 1024 && writer.write_all(line.as_bytes()).await.is_ok() {
            sent += line.len();
        }
        sent
    });
    let mut received = Vec::new();
    let closed = tokio::time::timeout(SAFETY_NET, reader.read_to_end(&mut received)).await;
    ensure!(closed.is_ok(), "still open after {SAFETY_NET:?}");
    let text = String::from_utf8_lossy(&received);
    // A 431, unless the close under the still-writing client reset the
    // connection before it was read.
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431 "),
        "{text}"
    );
    let sent = tokio::time::timeout(SAFETY_NET, flood).await??;
    assert!(
        sent < 64 * 1024 * 1024,
        "the server took {sent} bytes of headers"
    );
    Ok(())
}

/// Header lines dripped slowly enough never to reach the size limit: the
/// header timeout cuts them, counted from the first byte (not reset by each
/// line).
#[tokio::test]
async fn a_dripped_header_block_is_cut_by_the_header_timeout() -> Result<()> {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let server = Server::start(Limits {
        header_read_timeout: TIMEOUT,
        ..limits()
    })
    .await?;
    // Before the connection exists, so before the server's clock starts.
    let started = Instant::now();
    let stream = server.connect().await?;
    let (mut reader, mut writer) = stream.into_split();
    let drip = tokio::spawn(async move {
        let mut lines = 0usize;
        if writer.write_all(b"GET /ok HTTP/1.1\r\n").await.is_err() {
            return lines;
        }
        while writer.write_all(b"X-Drip: 1\r\n").await.is_ok() {
            lines += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        lines
    });
    // Shorter than hyper's own default header timeout (30 s), so that only
    // the configured one can pass the test.
    const HYPER_DEFAULT: Duration = Duration::from_secs(30);
    let mut received = Vec::new();
    tokio::time::timeout(HYPER_DEFAULT / 2, reader.read_to_end(&mut received))
        .await
        .context("still open")?
        .ok();
    let elapsed = started.elapsed();
    drip.abort();
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408 "),
        "{text}"
    );
    assert!(elapsed >= TIMEOUT, "closed after only {elapsed:?}");
    Ok(())
}

// ---------------------------------------------------------------- body size

/// A declared length over the limit is answered 413 at once, the body
/// unsent; one at the limit is served; a chunked body growing past it fails
/// axum's extractor with 413 too.
#[tokio::test]
async fn a_body_over_the_limit_gets_413() -> Result<()> {
    const MAX: usize = 1024;
    let server = Server::start(Limits {
        max_body_bytes: MAX,
        ..limits()
    })
    .await?;

    let mut over = server.connect().await?;
    over.write_all(post_head("/echo", MAX + 1).as_bytes())
        .await?;
    let (status, _, _) = answer(&mut over).await?;
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");

    let mut at = server.connect().await?;
    at.write_all(post_head("/echo", MAX).as_bytes()).await?;
    at.write_all(&[b'z'; MAX]).await?;
    let (status, received, _) = answer(&mut at).await?;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(String::from_utf8_lossy(&received).ends_with("\r\n\r\n1024"));

    let mut chunked = server.connect().await?;
    let chunk = "z".repeat(600);
    chunked
        .write_all(
            format!(
                "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Transfer-Encoding: chunked\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let (status, _, _) = answer(&mut chunked).await?;
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
    Ok(())
}

// ---------------------------------------------------------------- kill and stop

#[tokio::test]
async fn a_killed_connection_closes_without_an_answer() -> Result<()> {
    let server = Server::start(limits()).await?;
    let mut client = server.connect().await?;
    client
        .write_all(b"GET /kill HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let (_, received, _) = answer(&mut client).await?;
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    Ok(())
}

/// Stopping with grace: the listener closes, an idle connection is closed
/// at once, and the request being answered still gets its answer.
#[tokio::test]
async fn stopping_lets_the_request_in_progress_finish_within_the_grace() -> Result<()> {
    let mut server = Server::start(Limits {
        shutdown_grace: SAFETY_NET,
        ..limits()
    })
    .await?;
    let mut busy = server.connect().await?;
    busy.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    assert_eq!(server.arrived().await?, "hold");
    // Idle: served one request, kept alive.
    let mut idle = server.connect().await?;
    idle.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let mut buffer = [0u8; 1024];
    let n = tokio::time::timeout(SAFETY_NET, idle.read(&mut buffer)).await??;
    assert!(String::from_utf8_lossy(&buffer[..n]).ends_with("\r\n\r\nok"));

    drop(server.stop.take());
    let (_, received, _) = answer(&mut idle).await?;
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    server.release.notify_one();
    let (status, received, _) = answer(&mut busy).await?;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(String::from_utf8_lossy(&received).ends_with("\r\n\r\nreleased"));
    tokio::time::timeout(SAFETY_NET, &mut server.task).await??;
    ensure!(
        TcpStream::connect(server.addr).await.is_err(),
        "the listener still accepts after the stop"
    );
    Ok(())
}

/// Stopping without grace closes the request in progress too.
#[tokio::test]
async fn stopping_without_grace_closes_every_connection_at_once() -> Result<()> {
    let mut server = Server::start(Limits {
        shutdown_grace: Duration::ZERO,
        ..limits()
    })
    .await?;
    let mut busy = server.connect().await?;
    busy.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    assert_eq!(server.arrived().await?, "hold");
    drop(server.stop.take());
    let (_, received, _) = answer(&mut busy).await?;
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    tokio::time::timeout(SAFETY_NET, &mut server.task).await??;
    Ok(())
}
