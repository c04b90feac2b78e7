//! Writing server-sent event bodies, with pacing and stream faults applied.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::SinkExt;
use futures::channel::mpsc;
use rand::Rng;
use serde_json::Value;

use crate::faults::Fault;
use crate::pacing::Pacing;

/// One step of an SSE body.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A `data: <json>` event.
    Event(Value),
    /// Nothing sent for this long (real time; scaled by the pacing).
    Wait(Duration),
    /// A `: <text>` comment line, as keepalives are sent.
    Comment(String),
}

/// Called with every event as it is sent (to keep job state current).
pub type OnEvent = Arc<dyn Fn(&Value) + Send + Sync>;

/// A `text/event-stream` response that plays `frames` in order.
///
/// `fault` (if it is a stream fault) cuts, ends, stalls or fragments the
/// body; `on_event` sees each event as it goes out.
pub fn response(
    frames: Vec<Frame>,
    pacing: Pacing,
    fault: Option<Fault>,
    on_event: OnEvent,
) -> Response {
    let (mut tx, rx) = mpsc::channel::<io::Result<Bytes>>(1);
    tokio::spawn(async move {
        let mut sent = 0usize;
        for frame in frames {
            let bytes = match frame {
                Frame::Wait(real) => {
                    pacing.sleep(real).await;
                    continue;
                }
                Frame::Comment(text) => Bytes::from(format!(": {text}\n\n")),
                Frame::Event(value) => {
                    match &fault {
                        Some(Fault::DropStream { after_events }) if sent == *after_events => {
                            let _ = tx
                                .send(Err(io::Error::new(
                                    io::ErrorKind::ConnectionAborted,
                                    "emulated drop",
                                )))
                                .await;
                            return;
                        }
                        Some(Fault::EndStream { after_events }) if sent == *after_events => return,
                        Some(Fault::StallStream {
                            after_events,
                            duration,
                        }) if sent == *after_events => tokio::time::sleep(*duration).await,
                        _ => {}
                    }
                    on_event(&value);
                    sent += 1;
                    Bytes::from(format!("data: {value}\n\n"))
                }
            };
            let delivered = if fault == Some(Fault::Fragment) {
                send_fragmented(&mut tx, bytes).await
            } else {
                tx.send(Ok(bytes)).await.is_ok()
            };
            if !delivered {
                return; // the client went away
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(rx),
    )
        .into_response()
}

/// Sends `bytes` in pieces of 1 to 7 bytes, yielding between them so that
/// each goes out as its own chunk.
async fn send_fragmented(tx: &mut mpsc::Sender<io::Result<Bytes>>, mut bytes: Bytes) -> bool {
    while !bytes.is_empty() {
        let len = rand::rng().random_range(1..=7).min(bytes.len());
        if tx.send(Ok(bytes.split_to(len))).await.is_err() {
            return false;
        }
        tokio::task::yield_now().await;
    }
    true
}
