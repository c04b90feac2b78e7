//! Outgoing webhook deliveries (SoundPiece callbacks, MusicGPT webhooks).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::State;
use crate::provider::Provider;
use crate::record::WebhookDelivery;

/// How many times a delivery is attempted before it is given up.
const ATTEMPTS: usize = 3;

/// POSTs `body` to `url` with `headers`, in the background, retrying a
/// failed or non-2xx attempt (with the same headers, as SoundPiece documents
/// for `webhook-id`) up to three times. Every attempt is recorded.
pub(crate) fn deliver(
    state: &Arc<State>,
    provider: Provider,
    url: String,
    headers: Vec<(String, String)>,
    body: Bytes,
) {
    let state = Arc::clone(state);
    tokio::spawn(async move {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                state.pacing.sleep(Duration::from_secs(5 << attempt)).await;
            }
            let mut request = state
                .webhook_client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone());
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            let response_status = request.send().await.ok().map(|r| r.status().as_u16());
            state.record_delivery(WebhookDelivery {
                provider,
                url: url.clone(),
                headers: headers
                    .iter()
                    .cloned()
                    .chain([("content-type".to_owned(), "application/json".to_owned())])
                    .collect(),
                body: body.clone(),
                response_status,
            });
            if response_status.is_some_and(|s| (200..300).contains(&s)) {
                return;
            }
        }
    });
}
