//! The HTTP server: one port, one router per provider, and the middleware
//! that records requests, applies faults and checks auth.

use std::io::{self, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::faults::{FAULT_HEADER, Fault};
use crate::provider::Provider;
use crate::record::{RECORDED_BODY_LIMIT, RecordedRequest, header_map};
use crate::{State, elevenlabs, files, musicgpt, soundpiece, soundverse};

/// Closes the connection a request came in on, without a reply.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionKill(Arc<Notify>);

/// The fault chosen for this request, if any; handlers of SSE endpoints read
/// it to shape their stream.
#[derive(Clone, Debug, Default)]
pub(crate) struct ActiveFault(pub(crate) Option<Fault>);

impl ActiveFault {
    /// The fault, if it is one that shapes an SSE body.
    pub(crate) fn stream_fault(&self) -> Option<Fault> {
        self.0.clone().filter(Fault::is_stream_fault)
    }
}

/// Sequence number of this request in the request log (to attach multipart
/// parts); only requests that passed the auth check have one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordIndex(pub(crate) usize);

fn app(state: Arc<State>) -> Router {
    let provider = |provider: Provider, router: Router<Arc<State>>| {
        router.layer(middleware::from_fn_with_state(
            (Arc::clone(&state), provider),
            provider_middleware,
        ))
    };
    Router::new()
        .nest(
            &Provider::Soundverse.prefix(),
            provider(Provider::Soundverse, soundverse::router()),
        )
        .nest(
            &Provider::SoundPiece.prefix(),
            provider(Provider::SoundPiece, soundpiece::router()),
        )
        .nest(
            &Provider::MusicGpt.prefix(),
            provider(Provider::MusicGpt, musicgpt::router()),
        )
        .nest(
            &Provider::ElevenLabs.prefix(),
            provider(Provider::ElevenLabs, elevenlabs::router()),
        )
        .route("/files/{name}", get(files::serve))
        .with_state(state)
}

/// How long a connection may take to send a request's headers unless
/// configured otherwise; it is also how long an idle keep-alive connection
/// waits for its next request.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The wait after a failed `accept`, doubling from 5 ms up to 1 s while
/// accepts keep failing, back to 5 ms after one succeeds.
///
/// A failed accept that is not about one connection (`EMFILE`, `ENFILE`,
/// `ENOBUFS`, ...) fails again at once while its cause lasts: retrying
/// without a pause spins a core until, say, a file descriptor is freed.
#[derive(Debug)]
pub(crate) struct AcceptBackoff {
    next: Duration,
}

impl AcceptBackoff {
    pub(crate) const FIRST: Duration = Duration::from_millis(5);
    pub(crate) const MAX: Duration = Duration::from_secs(1);

    pub(crate) fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// An accept failed: how long to wait before the next one.
    pub(crate) fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }

    /// An accept succeeded: the next failure waits the shortest time again.
    pub(crate) fn succeeded(&mut self) {
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

/// Accepts connections until `stop` turns true; each connection can be cut
/// by its handler (see [`ConnectionKill`]) and is closed if it does not send
/// a request's headers within `header_read_timeout`. After a failed accept
/// it waits ([`AcceptBackoff`]) and says so on stderr (at most once a minute).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let app = app(state);
    let mut connections = JoinSet::new();
    let mut backoff = AcceptBackoff::new();
    let mut reported: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => break,
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
                    // Not eprintln!, which panics when stderr is closed.
                    let _ = writeln!(
                        io::stderr(),
                        "songbind-emulator: cannot accept a connection ({error}); \
                         retrying with a backoff of up to {:?}",
                        AcceptBackoff::MAX
                    );
                }
                // Connections that end meanwhile free what accept lacked.
                while connections.try_join_next().is_some() {}
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    _ = stop.wait_for(|stopped| *stopped) => break,
                }
            }
        };
        let kill = Arc::new(Notify::new());
        let app = app.clone();
        let kill_handle = ConnectionKill(Arc::clone(&kill));
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(kill_handle.clone());
            app.clone().oneshot(request.map(Body::new))
        });
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                // Dropping the connection closes the socket with nothing sent.
                _ = kill.notified() => {}
            }
        });
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Runs around every provider route: record (authenticated requests only),
/// choose a fault, check auth.
///
/// A fault answers before the auth check, as before; recording only depends
/// on the key, so that requests without a valid key (which anyone can send)
/// never grow the log.
async fn provider_middleware(
    AxumState((state, provider)): AxumState<(Arc<State>, Provider)>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let is_multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    let small = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len <= RECORDED_BODY_LIMIT);
    let refusal = provider.auth_refusal(&parts.headers);
    let read_body = !is_multipart && small;
    let path = parts.uri.path().to_owned();
    let mut body = body;
    if refusal.is_none() {
        let mut recorded_body = bytes::Bytes::new();
        if read_body {
            match axum::body::to_bytes(body, RECORDED_BODY_LIMIT).await {
                Ok(bytes) => {
                    recorded_body = bytes.clone();
                    body = Body::from(bytes);
                }
                Err(_) => {
                    return provider
                        .error(StatusCode::BAD_REQUEST, "could not read the request body");
                }
            }
        }
        let seq = state.record_request(
            RecordedRequest {
                provider: Some(provider),
                method: parts.method.clone(),
                path: path.clone(),
                query: parts.uri.query().map(str::to_owned),
                headers: header_map(&parts.headers),
                body: bytes::Bytes::new(),
                form: Vec::new(),
                received_at: SystemTime::now(),
            },
            &recorded_body,
        );
        parts.extensions.insert(RecordIndex(seq));
    }

    let fault = match parts
        .headers
        .get(FAULT_HEADER)
        .map(|v| v.to_str().unwrap_or(""))
    {
        Some(text) => match text.parse::<Fault>() {
            Ok(fault) => Some(fault),
            Err(error) => return provider.error(StatusCode::BAD_REQUEST, &error.to_string()),
        },
        None => state.take_fault(provider, &parts.method, &path),
    };
    if let Some(response) = fault
        .as_ref()
        .and_then(|fault| fault.answer_instead(provider, &parts.headers))
    {
        // An error page or an echo of the request: read the body first, as below.
        discard(body).await;
        return response;
    }
    if let Some(status) = fault.as_ref().and_then(Fault::status_code) {
        // Read the rest of the body first: answering with an upload still
        // unread closes the connection under the client (a reset), which then
        // sees a broken pipe instead of the status the fault stands for.
        discard(body).await;
        let mut response = provider.error(status, provider.fault_message(status));
        if let Some(Fault::Status {
            retry_after: Some(seconds),
            ..
        }) = &fault
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
        }
        return response;
    }
    if let Some(Fault::Stall(duration)) = &fault {
        tokio::time::sleep(*duration).await;
    }
    if let Some(refused) = refusal {
        if read_body {
            // As if it had been read for the log (which it is not): the
            // refusal then reaches the client instead of a reset.
            discard(body).await;
        }
        return refused;
    }
    let kill = parts.extensions.get::<ConnectionKill>().cloned();
    parts.extensions.insert(ActiveFault(fault.clone()));
    let response = next.run(Request::from_parts(parts, body)).await;
    if fault == Some(Fault::LoseReply)
        && let Some(ConnectionKill(kill)) = kill
    {
        kill.notify_one();
        // The connection task drops the connection; never answer.
        std::future::pending::<()>().await;
    }
    // The request was handled (the job exists); the answer says otherwise.
    if let Some(misleading) = fault.as_ref().and_then(|f| f.answer_after(provider)) {
        return misleading;
    }
    response.into_response()
}

/// Reads and drops a request body (up to the largest body any route
/// accepts), so that the answer sent instead of handling it reaches the client.
async fn discard(body: Body) {
    let mut chunks = body.into_data_stream();
    let mut read = 0;
    while let Some(Ok(chunk)) = chunks.next().await {
        read += chunk.len();
        if read > musicgpt::BODY_LIMIT {
            break;
        }
    }
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
}
