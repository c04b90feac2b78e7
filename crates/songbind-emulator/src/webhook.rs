//! Outgoing webhook deliveries (SoundPiece callbacks, MusicGPT webhooks).
//!
//! Every delivery is counted as pending from the moment it is started until
//! it ends (answered 2xx, or given up after its last attempt), so that
//! [`crate::Emulator::flush_deliveries`] can wait for the ones in flight
//! before a short-lived process (the CLI's `--mock`) exits.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::State;
use crate::provider::Provider;
use crate::record::WebhookDelivery;

/// How many times a delivery is attempted before it is given up.
const ATTEMPTS: usize = 3;

/// How many deliveries are still being attempted.
#[derive(Debug)]
pub(crate) struct Pending(watch::Sender<usize>);

impl Default for Pending {
    fn default() -> Self {
        Self(watch::channel(0).0)
    }
}

impl Pending {
    /// Counts one more delivery until the returned guard is dropped (also
    /// when its task panics or is cancelled).
    fn start(self: &Arc<Self>) -> PendingGuard {
        self.0.send_modify(|n| *n += 1);
        PendingGuard(Arc::clone(self))
    }

    /// How many deliveries are pending now.
    pub(crate) fn count(&self) -> usize {
        *self.0.borrow()
    }

    /// Resolves once no delivery is pending.
    pub(crate) async fn flushed(&self) {
        let mut count = self.0.subscribe();
        // The sender lives as long as `self`, so this only ends at zero.
        let _ = count.wait_for(|n| *n == 0).await;
    }
}

/// One pending delivery; dropping it ends the count.
pub(crate) struct PendingGuard(Arc<Pending>);

/// Counts a delivery as pending before it exists: take it before a job
/// settles (a change a client can see) and drop it after [`deliver`], so
/// that a client which sees the job end and then flushes cannot fall in
/// the gap between the two.
pub(crate) fn hold(state: &State) -> PendingGuard {
    state.pending_deliveries.start()
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// POSTs `body` to `url` with `headers`, in the background, retrying a
/// failed or non-2xx attempt (with the same headers, as SoundPiece documents
/// for `webhook-id`) up to three times. Every attempt is recorded. The
/// delivery counts as pending from this call until it ends.
pub(crate) fn deliver(
    state: &Arc<State>,
    provider: Provider,
    url: String,
    headers: Vec<(String, String)>,
    body: Bytes,
) {
    let state = Arc::clone(state);
    let pending = state.pending_deliveries.start();
    tokio::spawn(async move {
        let _pending = pending;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn flushed_waits_for_every_pending_delivery_to_end() {
        let pending = Arc::new(Pending::default());
        pending.flushed().await;
        let first = pending.start();
        let second = pending.start();
        assert_eq!(pending.count(), 2);
        let waiter = tokio::spawn({
            let pending = Arc::clone(&pending);
            async move { pending.flushed().await }
        });
        drop(first);
        assert!(!waiter.is_finished() || pending.count() == 0);
        // A task that ends without finishing (panic, cancellation) still
        // ends its count.
        let task = tokio::spawn(async move {
            let _second = second;
            std::future::pending::<()>().await;
        });
        task.abort();
        let _ = task.await;
        waiter.await.unwrap();
        assert_eq!(pending.count(), 0);
    }
}
