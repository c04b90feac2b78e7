//! Receiving provider webhooks safely.
//!
//! * SoundPiece signs its callbacks per [Standard Webhooks]:
//!   [`SoundPieceWebhookVerifier`] checks the signature (constant time, every
//!   `v1` signature of a rotation, a tolerance window with an injectable
//!   clock) and decodes the `remix_song.ready|failed` events.
//! * MusicGPT's deliveries carry no signature: [`MusicGptWebhook::parse`]
//!   sorts them into conversion, lyrics and cover deliveries, and
//!   [`confirm`] asks `/byId` whether the provider agrees before a result is
//!   trusted.
//! * Both providers may deliver the same event more than once:
//!   [`SeenWebhookIds`] remembers recent ids in bounded memory.
//!
//! Errors are [`WebhookError`]s, which say what is wrong (a missing header, a
//! stale timestamp, no matching signature) and never quote a secret; they
//! convert into [`crate::Error`].
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::collections::{HashSet, VecDeque};

use crate::error::{Error, truncate_raw};

mod headers_file;
#[cfg(feature = "musicgpt")]
pub mod musicgpt;
#[cfg(feature = "soundpiece")]
pub mod soundpiece;

pub use headers_file::{HeadersFileError, MAX_HEADER_LINES, parse_headers_file};
#[cfg(feature = "musicgpt")]
pub use musicgpt::{
    ConversionDelivery, CoverDelivery, LyricsDelivery, MusicGptWebhook, TimedLyricLine, confirm,
};
#[cfg(feature = "soundpiece")]
pub use soundpiece::{
    SoundPieceDelivery, SoundPieceWebhookEvent, SoundPieceWebhookVerifier, VerifiedWebhook,
};

pub use crate::error::WebhookError;

impl WebhookError {
    /// An [`WebhookError::InvalidPayload`], keeping a bounded part of `raw`.
    #[cfg_attr(not(feature = "_webhooks"), allow(dead_code))]
    pub(crate) fn payload(what: &'static str, reason: impl std::fmt::Display, raw: &str) -> Self {
        WebhookError::InvalidPayload {
            what,
            reason: reason.to_string(),
            raw: truncate_raw(raw),
        }
    }
}

impl From<WebhookError> for Error {
    /// Undecodable bodies become [`Error::Decode`] (keeping the raw text);
    /// everything else becomes [`Error::Webhook`] with the same message.
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::InvalidPayload { what, reason, raw } => Error::Decode {
                what: what.to_owned(),
                reason,
                raw,
                resume: None,
            },
            other => Error::Webhook(other),
        }
    }
}

/// Remembers the most recent webhook ids, to drop redeliveries.
///
/// Providers deliver at least once: SoundPiece retries with the same
/// `webhook-id`, and MusicGPT may POST the same conversion twice (use its
/// `conversion_id`). Memory stays bounded: past `capacity` distinct ids,
/// the oldest one is forgotten. Share one between handlers behind a
/// `Mutex`.
///
/// ```
/// use songbind::webhook::SeenWebhookIds;
///
/// let mut seen = SeenWebhookIds::new(2);
/// assert!(seen.first_time("msg_1"));
/// assert!(!seen.first_time("msg_1")); // a redelivery: drop it
/// assert!(seen.first_time("msg_2"));
/// assert!(seen.first_time("msg_3")); // msg_1 is forgotten now
/// assert_eq!(seen.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct SeenWebhookIds {
    capacity: usize,
    order: VecDeque<Digest>,
    ids: HashSet<Digest>,
}

/// What is remembered of an id: its SHA-256, so that each id costs the
/// same few bytes however long the sender made it.
type Digest = [u8; 32];

/// The [`Digest`] of `id`.
fn digest(id: &str) -> Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(id.as_bytes()).into()
}

impl Default for SeenWebhookIds {
    /// Room for 10 000 ids: about a megabyte, whatever their length (each
    /// is kept as a 32-byte digest).
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl SeenWebhookIds {
    /// Remembers up to `capacity` ids (at least one). Each is kept as a
    /// 32-byte SHA-256 digest, so the memory used is bounded by
    /// `capacity` alone, not by the ids' length.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            order: VecDeque::new(),
            ids: HashSet::new(),
        }
    }

    /// `true` the first time `id` is seen (process the delivery), `false`
    /// for a redelivery still remembered (answer 2xx and drop it).
    pub fn first_time(&mut self, id: &str) -> bool {
        let id = digest(id);
        if self.ids.contains(&id) {
            return false;
        }
        while self.order.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.ids.remove(&oldest);
                }
                None => break,
            }
        }
        self.order.push_back(id);
        self.ids.insert(id);
        true
    }

    /// Forgets `id`, so that a redelivery is processed again: call it when
    /// handling a delivery failed after [`SeenWebhookIds::first_time`]
    /// accepted it. Returns whether `id` was remembered.
    pub fn forget(&mut self, id: &str) -> bool {
        let id = digest(id);
        if !self.ids.remove(&id) {
            return false;
        }
        self.order.retain(|kept| *kept != id);
        true
    }

    /// Whether `id` is remembered.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(&digest(id))
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The most ids remembered at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgotten_id_is_first_time_again() {
        let mut seen = SeenWebhookIds::new(4);
        assert!(seen.first_time("a"));
        assert!(seen.forget("a"));
        assert!(!seen.forget("a"));
        assert!(seen.first_time("a"));
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn long_ids_cost_no_more_than_short_ones() {
        let mut seen = SeenWebhookIds::new(3);
        let long = "x".repeat(1 << 20);
        assert!(seen.first_time(&long));
        assert!(!seen.first_time(&long));
        assert!(seen.contains(&long));
        // What is kept is the digest, never the id's bytes.
        assert_eq!(
            std::mem::size_of_val(seen.order.front().unwrap()),
            32,
            "a digest per id"
        );
        assert!(seen.first_time(&format!("{long}y")));
    }

    #[test]
    fn zero_capacity_still_drops_an_immediate_redelivery() {
        let mut seen = SeenWebhookIds::new(0);
        assert_eq!(seen.capacity(), 1);
        assert!(seen.first_time("a"));
        assert!(!seen.first_time("a"));
    }

    #[test]
    fn payload_errors_become_decode_errors() {
        let error: Error = WebhookError::payload("a body", "bad", "{").into();
        assert!(matches!(error, Error::Decode { ref raw, .. } if raw == "{"));
        let error: Error = WebhookError::MissingHeader("webhook-id").into();
        assert!(
            matches!(error, Error::Webhook(ref text) if text.to_string().contains("webhook-id"))
        );
    }
}
