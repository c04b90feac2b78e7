//! One HTTP/1 server stack for any [`axum::Router`], bounded against a
//! hostile peer: the emulator serves through it, and so can any other
//! loopback server (the CLI's `webhooks listen`).
//!
//! [`serve`] accepts connections on a [`TcpListener`] and holds each one to
//! [`Limits`]:
//!
//! - **headers**: a request's headers must arrive within
//!   [`Limits::header_read_timeout`] (hyper's `header_read_timeout`; it also
//!   bounds how long an idle keep-alive connection waits for its next
//!   request), and within hyper's header size limit (about 400 KiB; beyond,
//!   `431`);
//! - **body**: the whole body must arrive within
//!   [`Limits::body_read_timeout`] of the headers. A body still incomplete
//!   then fails its reader, and the request is answered `408` with
//!   `Connection: close` whatever the router answered, so the connection and
//!   what was read of the body are let go. The deadline is total, not reset
//!   by each byte: a peer dripping one byte at a time is cut all the same;
//! - **size**: a declared `Content-Length` over [`Limits::max_body_bytes`] is
//!   answered `413` before the router sees the request (tower-http's
//!   `RequestBodyLimitLayer`); a body without one fails its reader once it
//!   grows past the limit (axum's extractors then answer `413`);
//! - **connections**: at most [`Limits::max_connections`] at once. At the
//!   cap nothing more is accepted (new clients wait in the kernel's listen
//!   backlog) until a connection closes;
//! - **accept failures** (out of file descriptors, say) are retried after a
//!   pause that doubles from 5 ms to 1 s, reported on stderr at most once a
//!   minute, instead of spinning a core.
//!
//! Every request carries a [`ConnectionKill`] extension, with which a
//! handler can close its connection without answering.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use axum::{Router, routing::post};
//! use songbind_emulator::stack::{self, Limits};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let router = Router::new().route("/hook", post(|body: String| async move { body.len().to_string() }));
//! let limits = Limits { max_body_bytes: 256 * 1024, ..Limits::default() };
//! stack::serve(listener, router, limits, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::{Layer as _, ServiceExt as _};
use tower_http::limit::{RequestBodyLimit, RequestBodyLimitLayer};

/// [`Limits::header_read_timeout`] unless configured otherwise.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// [`Limits::body_read_timeout`] unless configured otherwise.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// [`Limits::max_body_bytes`] unless configured otherwise: 2 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// [`Limits::max_connections`] unless configured otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// [`Limits::shutdown_grace`] unless configured otherwise.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Timeouts longer than this (a year) are cut to it: hyper adds the header
/// timeout to the current instant, which overflows for `Duration::MAX`.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// What one peer may take from a server [`serve`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection may take to send a request's headers, counted
    /// from when it is accepted (or, on a keep-alive connection, from the
    /// end of the previous answer: so it is also how long an idle
    /// connection is kept), not reset by each byte. A request being answered (a long-poll, an SSE stream) is never
    /// cut by it. Longer than a year counts as a year.
    pub header_read_timeout: Duration,
    /// How long after its headers a request's body must have arrived whole.
    /// Past it, reading the body fails and the request is answered `408`
    /// (`Connection: close`). A body the handler never reads is not waited
    /// for: hyper closes the connection after the answer. Longer than a year
    /// counts as a year.
    pub body_read_timeout: Duration,
    /// The largest request body, in bytes: a larger declared
    /// `Content-Length` is answered `413` without calling the router; a
    /// body without one fails its reader past this many bytes.
    pub max_body_bytes: usize,
    /// The most connections open at once (at least 1). At the cap the
    /// server stops accepting until one closes.
    pub max_connections: usize,
    /// Once `stop` completes: how long the requests being answered may take
    /// to finish (idle connections are closed at once) before every
    /// connection is closed. Zero closes them all at once.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    /// 10 s for headers, 30 s for a body, 2 MiB per body, 512 connections,
    /// 5 s of grace at shutdown.
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// In every request's extensions: closes the connection the request came
/// in on, with nothing more sent (an answer being written is cut short).
///
/// ```
/// use axum::{Extension, http::StatusCode};
/// use songbind_emulator::stack::ConnectionKill;
///
/// async fn hang_up(Extension(kill): Extension<ConnectionKill>) -> StatusCode {
///     kill.kill();
///     // Never sent: the connection is gone.
///     StatusCode::OK
/// }
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionKill(Arc<Notify>);

impl ConnectionKill {
    /// Closes the connection (once its task next runs): the socket is
    /// dropped, so the peer sees it close without an answer.
    pub fn kill(&self) {
        self.0.notify_one();
    }
}

/// Serves `router` on `listener` within `limits` until `stop` completes;
/// then stops accepting (the listener is closed), lets the requests being
/// answered finish for up to [`Limits::shutdown_grace`], closes every
/// connection and returns.
///
/// Dropping the returned future closes every connection at once.
pub async fn serve<F>(listener: TcpListener, router: Router, limits: Limits, stop: F)
where
    F: Future<Output = ()>,
{
    let header_read_timeout = limits.header_read_timeout.min(LONGEST_TIMEOUT);
    let body_read_timeout = limits.body_read_timeout.min(LONGEST_TIMEOUT);
    let app = RequestBodyLimitLayer::new(limits.max_body_bytes).layer(router);
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let (closing, closing_seen) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = AcceptBackoff::new();
    let mut reported: Option<Instant> = None;
    tokio::pin!(stop);
    loop {
        // A slot first: at the cap, nothing is accepted until one frees.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                // Never closed; if it were, there would be nothing to wait for.
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                backoff.succeeded();
                stream
            }
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                let delay = backoff.failed();
                if reported.is_none_or(|at| at.elapsed() >= ACCEPT_ERROR_REPORT_INTERVAL) {
                    reported = Some(Instant::now());
                    report_accept_error(&listener, &error);
                }
                // Connections that end meanwhile free what accept lacked.
                while connections.try_join_next().is_some() {}
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    () = &mut stop => break,
                }
            }
        };
        connections.spawn(connection(
            stream,
            app.clone(),
            header_read_timeout,
            body_read_timeout,
            slot,
            closing_seen.clone(),
        ));
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closing.send(true);
    if !limits.shutdown_grace.is_zero() {
        let all_ended = async { while connections.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(limits.shutdown_grace.min(LONGEST_TIMEOUT), all_ended).await;
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Serves one connection until it ends, is killed, or (once `closing`
/// turns true) has finished the request it was answering. `_slot` is held
/// until then.
async fn connection(
    stream: TcpStream,
    app: RequestBodyLimit<Router>,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    _slot: OwnedSemaphorePermit,
    mut closing: watch::Receiver<bool>,
) {
    let kill = Arc::new(Notify::new());
    let kill_handle = ConnectionKill(Arc::clone(&kill));
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(kill_handle.clone());
        let expired = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + body_read_timeout;
        let request =
            request.map(|body| Body::new(DeadlineBody::new(body, deadline, Arc::clone(&expired))));
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await?;
            if expired.load(Ordering::Relaxed) {
                return Ok::<_, std::convert::Infallible>(body_timeout_answer(body_read_timeout));
            }
            Ok(response.map(Body::new))
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        // Dropping the connection closes the socket with nothing sent.
        () = kill.notified() => return,
        _ = closing.wait_for(|closing| *closing) => {}
    }
    // Finish the request in progress, if any; close at once if idle.
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection.as_mut() => {}
        () = kill.notified() => {}
    }
}

/// The answer to a request whose body did not arrive in time.
fn body_timeout_answer(timeout: Duration) -> Response<Body> {
    let mut response = Response::new(Body::from(format!(
        "the request body did not arrive within {timeout:?}\n"
    )));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A request body that fails once its deadline has passed with the body
/// still incomplete (data already received is still handed over first).
///
/// tower-http's `TimeoutBody` is not used: it times the wait for each frame
/// and restarts with every one, so a peer sending a byte now and then holds
/// the connection (and what was read) for as long as it likes.
struct DeadlineBody<B> {
    body: B,
    deadline: Instant,
    /// Made on the first wait only: most bodies never wait.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Set when the deadline failed the body, for the 408.
    expired: Arc<AtomicBool>,
}

impl<B> DeadlineBody<B> {
    fn new(body: B, deadline: Instant, expired: Arc<AtomicBool>) -> Self {
        Self {
            body,
            deadline,
            sleep: None,
            expired,
        }
    }
}

/// Why a [`DeadlineBody`] failed.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The wait after a failed `accept`, doubling from 5 ms up to 1 s while
/// accepts keep failing, back to 5 ms after one succeeds.
///
/// A failed accept that is not about one connection (`EMFILE`, `ENFILE`,
/// `ENOBUFS`, ...) fails again at once while its cause lasts: retrying
/// without a pause spins a core until, say, a file descriptor is freed.
#[derive(Debug)]
struct AcceptBackoff {
    next: Duration,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// An accept failed: how long to wait before the next one.
    fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }

    /// An accept succeeded: the next failure waits the shortest time again.
    fn succeeded(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Errors of one connection that went away before it was accepted: the
/// next accept is unaffected, so they are retried at once.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// How often a run of failing accepts is reported on stderr at most.
const ACCEPT_ERROR_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// Says on stderr that accepts fail, naming the program (from `argv[0]`)
/// and the address.
fn report_accept_error(listener: &TcpListener, error: &io::Error) {
    let program = std::env::args_os()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "songbind".to_owned());
    let addr = listener
        .local_addr()
        .map_or_else(|_| "its address".to_owned(), |addr| addr.to_string());
    // Not eprintln!, which panics when stderr is closed.
    let _ = writeln!(
        io::stderr(),
        "{program}: cannot accept a connection on {addr} ({error}); \
         retrying with a backoff of up to {:?}",
        AcceptBackoff::MAX
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_doubles_from_5_ms_to_1_s_and_resets_on_success() {
        let mut backoff = AcceptBackoff::new();
        let delays: Vec<u64> = (0..10)
            .map(|_| backoff.failed().as_millis() as u64)
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), Duration::from_millis(5));
        assert_eq!(backoff.failed(), Duration::from_millis(10));
    }

    #[test]
    fn only_errors_of_one_connection_are_retried_at_once() {
        assert!(is_connection_error(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
        // EMFILE (24) and ENFILE (23) are about the process or the system.
        assert!(!is_connection_error(&io::Error::from_raw_os_error(24)));
        assert!(!is_connection_error(&io::Error::from_raw_os_error(23)));
    }

    #[test]
    fn the_defaults_are_10_s_30_s_2_mib_512_connections_and_5_s_of_grace() {
        assert_eq!(
            Limits::default(),
            Limits {
                header_read_timeout: Duration::from_secs(10),
                body_read_timeout: Duration::from_secs(30),
                max_body_bytes: 2 * 1024 * 1024,
                max_connections: 512,
                shutdown_grace: Duration::from_secs(5),
            }
        );
    }
}
