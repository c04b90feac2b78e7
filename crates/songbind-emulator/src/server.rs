//! The emulator's routes: one router per provider on one port, and the
//! middleware that records requests, applies faults and checks auth. The
//! connections are [`crate::stack`]'s.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use tokio::sync::watch;

use crate::faults::{FAULT_HEADER, Fault};
use crate::provider::Provider;
use crate::record::{RECORDED_BODY_LIMIT, RecordedRequest, header_map};
use crate::stack::{self, ConnectionKill};
use crate::{State, elevenlabs, files, musicgpt, soundpiece, soundverse};

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

/// Serves the emulator's routes through [`stack::serve`] until `stop` turns
/// true (or its sender is dropped); then closes every connection at once.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    limits: stack::Limits,
    mut stop: watch::Receiver<bool>,
) {
    let stop = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    stack::serve(listener, app(state), limits, stop).await;
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
        && let Some(kill) = kill
    {
        kill.kill();
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
