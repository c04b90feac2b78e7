//! SoundPiece callbacks: Standard Webhooks signatures and typed events.
//!
//! SoundPiece POSTs `{"type": "remix_song.ready" | "remix_song.failed",
//! "data": ...}` to the `callback_url`, with the headers `webhook-id`,
//! `webhook-timestamp` (unix seconds) and `webhook-signature`
//! (space-separated `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`
//! entries, several while a secret is rotated). The secret is `whsec_` +
//! base64 of the key.
//!
//! The `standardwebhooks` crate computes the signature, but its `verify`
//! reads the system clock with a fixed five-minute window; this module
//! checks the timestamp itself against a clock you can pass in
//! ([`SoundPieceWebhookVerifier::verify_at`]) with a tolerance you choose,
//! then compares every `v1` signature in constant time with `subtle` (a
//! well-kept crate: a hand-written loop is easy for the optimiser to undo).
//!
//! Where `data` is concerned the provider's documents can be read two ways:
//! the spec's `{"remix_song": {...}}` (what the GET returns) or the bare
//! operation object. [`SoundPieceWebhookEvent::decode`] accepts both.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use serde_json::Value;
use songbind_soundpiece::types::{RemixSong, RemixSongWebhook};
use standardwebhooks::Webhook;
use subtle::{Choice, ConstantTimeEq};

use super::WebhookError;
use crate::secret::Secret;

/// How far a delivery's timestamp may be from the clock, either way, by
/// default: five minutes, as the Standard Webhooks libraries use.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const HEADER_ID: &str = "webhook-id";
const HEADER_TIMESTAMP: &str = "webhook-timestamp";
const HEADER_SIGNATURE: &str = "webhook-signature";

/// Checks that a SoundPiece callback was signed with your webhook secret and
/// is recent, then decodes it.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use songbind::Secret;
/// use songbind::webhook::{SoundPieceWebhookEvent, SoundPieceWebhookVerifier, WebhookError};
///
/// // What SoundPiece would send (signed here with `standardwebhooks`).
/// let secret = "whsec_c2VjcmV0LWtleS1mb3ItZG9jcw==";
/// let body = br#"{"type":"remix_song.ready","data":{"remix_song":{"id":"op_1","status":"ready"}}}"#;
/// let sent_at = 1_736_935_200; // unix seconds
/// let signature = standardwebhooks::Webhook::new(secret)?.sign("msg_1", sent_at, body)?;
/// let mut headers = reqwest::header::HeaderMap::new();
/// headers.insert("webhook-id", "msg_1".parse()?);
/// headers.insert("webhook-timestamp", sent_at.to_string().parse()?);
/// headers.insert("webhook-signature", signature.parse()?);
///
/// let verifier = SoundPieceWebhookVerifier::new(Secret::from(secret))?
///     .with_tolerance(Duration::from_secs(60));
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_736_935_210);
/// let delivery = verifier.receive_at(&headers, body, now)?;
/// assert_eq!(delivery.webhook_id, "msg_1");
/// assert!(matches!(delivery.event, SoundPieceWebhookEvent::Ready(ref song) if song.id == "op_1"));
///
/// // A tampered body is refused.
/// let tampered = verifier.verify_at(&headers, b"{}", now).unwrap_err();
/// assert!(matches!(tampered, WebhookError::SignatureMismatch { checked: 1 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SoundPieceWebhookVerifier {
    webhook: Webhook,
    tolerance: Duration,
}

impl fmt::Debug for SoundPieceWebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoundPieceWebhookVerifier")
            .field("secret", &"***")
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// The Standard Webhooks metadata of a delivery whose signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedWebhook {
    /// `webhook-id`: the same on every redelivery of one event (feed it to
    /// [`super::SeenWebhookIds`]).
    pub webhook_id: String,
    /// `webhook-timestamp`, in unix seconds.
    pub timestamp: i64,
}

/// A verified and decoded SoundPiece callback.
#[derive(Clone, Debug, PartialEq)]
pub struct SoundPieceDelivery {
    /// `webhook-id`: the same on every redelivery of one event.
    pub webhook_id: String,
    /// `webhook-timestamp`, in unix seconds.
    pub timestamp: i64,
    /// What happened.
    pub event: SoundPieceWebhookEvent,
}

/// What a SoundPiece callback reports.
#[derive(Clone, Debug, PartialEq)]
pub enum SoundPieceWebhookEvent {
    /// `remix_song.ready`: the operation has its outputs.
    Ready(Box<RemixSong>),
    /// `remix_song.failed`: the operation failed (see its `error`).
    Failed(Box<RemixSong>),
    /// An event type this crate does not know yet, kept whole.
    Other {
        /// The `type` field.
        event_type: String,
        /// The whole body.
        raw: Value,
    },
}

/// The JSON Schema of the body SoundPiece POSTs to a `callback_url` (the
/// spec's `RemixSongWebhook`), e.g. to validate deliveries in another
/// language or to document a receiver.
///
/// ```
/// let schema = songbind::webhook::soundpiece::payload_schema();
/// let json = serde_json::to_value(&schema)?;
/// assert_eq!(json["title"], "RemixSongWebhook");
/// assert!(json["properties"]["data"].is_object());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub fn payload_schema() -> schemars::Schema {
    schemars::schema_for!(RemixSongWebhook)
}

impl SoundPieceWebhookVerifier {
    /// A verifier for the secret SoundPiece gave you (`whsec_` + base64; the
    /// prefix is optional), with the [`DEFAULT_TOLERANCE`].
    ///
    /// Fails when the secret is blank or not base64; the error never shows
    /// the secret (not even the offending character).
    pub fn new(secret: Secret) -> Result<Self, WebhookError> {
        if secret.is_blank() {
            return Err(WebhookError::InvalidSecret {
                reason: "it is empty",
            });
        }
        let key = secret.expose().trim();
        let encoded = key.strip_prefix("whsec_").unwrap_or(key);
        if encoded.is_empty() {
            return Err(WebhookError::InvalidSecret {
                reason: "nothing follows `whsec_`",
            });
        }
        // The decode error would name the offending byte: drop it.
        let webhook = Webhook::new(key).map_err(|_| WebhookError::InvalidSecret {
            reason: "it is not `whsec_` followed by standard base64",
        })?;
        Ok(Self {
            webhook,
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// How far a delivery's timestamp may be from the clock, either way.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The tolerance in force.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// Checks the signature and the timestamp against the system clock.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<VerifiedWebhook, WebhookError> {
        self.verify_at(headers, body, SystemTime::now())
    }

    /// Checks the signature and the timestamp against `now`.
    ///
    /// Headers are checked first (all three present and readable), then the
    /// timestamp, then the signatures: every `v1` entry of
    /// `webhook-signature` (and of repeated `webhook-signature` headers) is
    /// compared in constant time, and one match is enough.
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<VerifiedWebhook, WebhookError> {
        let webhook_id = header(headers, HEADER_ID)?;
        if webhook_id.is_empty() {
            return Err(WebhookError::InvalidHeader {
                header: HEADER_ID,
                reason: "it is empty",
            });
        }
        let timestamp = header(headers, HEADER_TIMESTAMP)?;
        let signatures: Vec<&str> = headers
            .get_all(HEADER_SIGNATURE)
            .iter()
            .map(|value| {
                value.to_str().map_err(|_| WebhookError::InvalidHeader {
                    header: HEADER_SIGNATURE,
                    reason: "it is not visible ASCII",
                })
            })
            .collect::<Result<_, _>>()?;
        if signatures.is_empty() {
            return Err(WebhookError::MissingHeader(HEADER_SIGNATURE));
        }
        let timestamp: i64 = timestamp.parse().map_err(|_| WebhookError::InvalidHeader {
            header: HEADER_TIMESTAMP,
            reason: "it is not a whole number of unix seconds",
        })?;
        self.check_timestamp(timestamp, now)?;

        let expected = self
            .webhook
            .sign(webhook_id, timestamp, body)
            .map_err(|_| WebhookError::BodyNotUtf8)?;
        let expected = expected
            .split_once(',')
            .map_or(expected.as_str(), |(_, signature)| signature);
        let candidates: Vec<&str> = signatures
            .iter()
            .flat_map(|value| value.split_whitespace())
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == "v1")
            .map(|(_, signature)| signature)
            .collect();
        if candidates.is_empty() {
            return Err(WebhookError::NoSupportedSignature);
        }
        // Compare every candidate, without branching, so the time taken does
        // not depend on which one (if any) matches, nor where one differs.
        let matched = candidates.iter().fold(Choice::from(0), |found, candidate| {
            found | candidate.as_bytes().ct_eq(expected.as_bytes())
        });
        if !bool::from(matched) {
            return Err(WebhookError::SignatureMismatch {
                checked: candidates.len(),
            });
        }
        Ok(VerifiedWebhook {
            webhook_id: webhook_id.to_owned(),
            timestamp,
        })
    }

    /// Verifies against the system clock, then decodes the event.
    pub fn receive(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<SoundPieceDelivery, WebhookError> {
        self.receive_at(headers, body, SystemTime::now())
    }

    /// Verifies against `now`, then decodes the event.
    pub fn receive_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<SoundPieceDelivery, WebhookError> {
        let verified = self.verify_at(headers, body, now)?;
        Ok(SoundPieceDelivery {
            webhook_id: verified.webhook_id,
            timestamp: verified.timestamp,
            event: SoundPieceWebhookEvent::decode(body)?,
        })
    }

    fn check_timestamp(&self, timestamp: i64, now: SystemTime) -> Result<(), WebhookError> {
        let now = match now.duration_since(UNIX_EPOCH) {
            Ok(after) => i128::from(after.as_secs()),
            Err(before) => -i128::from(before.duration().as_secs()),
        };
        let age = now - i128::from(timestamp);
        let tolerance = i128::from(self.tolerance.as_secs());
        let secs = |value: i128| Duration::from_secs(u64::try_from(value).unwrap_or(u64::MAX));
        if age > tolerance {
            Err(WebhookError::TimestampTooOld {
                age: secs(age),
                tolerance: self.tolerance,
            })
        } else if -age > tolerance {
            Err(WebhookError::TimestampInFuture {
                ahead: secs(-age),
                tolerance: self.tolerance,
            })
        } else {
            Ok(())
        }
    }
}

impl SoundPieceWebhookEvent {
    /// Decodes a callback body (without checking its signature: use
    /// [`SoundPieceWebhookVerifier::receive`] for deliveries from the
    /// network).
    ///
    /// `data` may be `{"remix_song": {...}}` (the spec's reading) or the
    /// operation object itself. Unknown event types become
    /// [`SoundPieceWebhookEvent::Other`]; a known type whose operation does
    /// not decode is an error.
    pub fn decode(body: &[u8]) -> Result<Self, WebhookError> {
        const WHAT: &str = "SoundPiece webhook body";
        let text = String::from_utf8_lossy(body);
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| WebhookError::payload(WHAT, error, &text))?;
        let Some(event_type) = value.get("type").and_then(Value::as_str) else {
            return Err(WebhookError::payload(WHAT, "no `type` string", &text));
        };
        let wrap: fn(Box<RemixSong>) -> Self = match event_type {
            "remix_song.ready" => SoundPieceWebhookEvent::Ready,
            "remix_song.failed" => SoundPieceWebhookEvent::Failed,
            _ => {
                return Ok(SoundPieceWebhookEvent::Other {
                    event_type: event_type.to_owned(),
                    raw: value,
                });
            }
        };
        if let Ok(webhook) = serde_json::from_value::<RemixSongWebhook>(value.clone()) {
            return Ok(wrap(Box::new(webhook.data.remix_song)));
        }
        let data = match value.get("data") {
            Some(Value::Object(data)) if !data.contains_key("remix_song") => {
                Value::Object(data.clone())
            }
            Some(Value::Object(data)) => data.get("remix_song").cloned().unwrap_or(Value::Null),
            Some(_) => {
                return Err(WebhookError::payload(
                    WHAT,
                    "`data` is not an object",
                    &text,
                ));
            }
            None => return Err(WebhookError::payload(WHAT, "no `data` object", &text)),
        };
        let song: RemixSong = serde_json::from_value(data).map_err(|error| {
            WebhookError::payload(
                WHAT,
                format!("`data` does not hold a remix_song operation: {error}"),
                &text,
            )
        })?;
        Ok(wrap(Box::new(song)))
    }

    /// The event's `type`.
    pub fn event_type(&self) -> &str {
        match self {
            SoundPieceWebhookEvent::Ready(_) => "remix_song.ready",
            SoundPieceWebhookEvent::Failed(_) => "remix_song.failed",
            SoundPieceWebhookEvent::Other { event_type, .. } => event_type,
        }
    }

    /// The operation the event is about, for the known event types.
    pub fn remix_song(&self) -> Option<&RemixSong> {
        match self {
            SoundPieceWebhookEvent::Ready(song) | SoundPieceWebhookEvent::Failed(song) => {
                Some(song)
            }
            SoundPieceWebhookEvent::Other { .. } => None,
        }
    }
}

/// A required header, as text.
fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, WebhookError> {
    headers
        .get(name)
        .ok_or(WebhookError::MissingHeader(name))?
        .to_str()
        .map(str::trim)
        .map_err(|_| WebhookError::InvalidHeader {
            header: name,
            reason: "it is not visible ASCII",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_whole_signature_matches_and_any_candidate_may() {
        let secret = "whsec_c2lnbmF0dXJlLWNvbXBhcmlzb24ta2V5";
        let verifier = SoundPieceWebhookVerifier::new(Secret::from(secret)).unwrap();
        let body = br#"{"type":"remix_song.ready"}"#;
        let signed = Webhook::new(secret)
            .unwrap()
            .sign("msg_1", 1_700_000_000, body)
            .unwrap();
        let signature = signed.trim_start_matches("v1,");
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let verify = |header_value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER_ID, "msg_1".parse().unwrap());
            headers.insert(HEADER_TIMESTAMP, "1700000000".parse().unwrap());
            headers.insert(HEADER_SIGNATURE, header_value.parse().unwrap());
            verifier.verify_at(&headers, body, now)
        };
        let short = &signature[..signature.len() - 1];
        for wrong in [
            format!("v1,{short}"),
            format!("v1,{signature}A"),
            format!("v1,{}", &signature[..1]),
        ] {
            let error = verify(&wrong).unwrap_err();
            assert!(
                matches!(error, WebhookError::SignatureMismatch { checked: 1 }),
                "{error:?}"
            );
        }
        let last = format!("v1,{short} v1,{signature}A v1,{signature}");
        assert!(verify(&last).is_ok());
        let first = format!("v1,{signature} v1,{short}");
        assert!(verify(&first).is_ok());
    }

    #[test]
    fn bare_operation_data_is_accepted() {
        let event = SoundPieceWebhookEvent::decode(
            br#"{"type":"remix_song.failed","data":{"id":"op_1","status":"failed","error":{"message":"no"}}}"#,
        )
        .unwrap();
        let SoundPieceWebhookEvent::Failed(song) = event else {
            panic!("expected failed, got {event:?}");
        };
        assert_eq!(song.id, "op_1");
    }

    #[test]
    fn unknown_event_type_is_kept_whole() {
        let event =
            SoundPieceWebhookEvent::decode(br#"{"type":"remix_song.progress","data":{"x":1}}"#)
                .unwrap();
        assert_eq!(event.event_type(), "remix_song.progress");
        assert!(event.remix_song().is_none());
    }

    #[test]
    fn known_type_without_an_operation_is_a_payload_error() {
        for body in [
            &br#"{"type":"remix_song.ready"}"#[..],
            br#"{"type":"remix_song.ready","data":[]}"#,
            br#"{"type":"remix_song.ready","data":{"remix_song":{"status":"ready"}}}"#,
            br#"{"data":{}}"#,
            b"not json",
        ] {
            let error = SoundPieceWebhookEvent::decode(body).unwrap_err();
            assert!(
                matches!(error, WebhookError::InvalidPayload { .. }),
                "{error:?}"
            );
        }
    }

    #[test]
    fn blank_or_non_base64_secret_is_refused_without_showing_it() {
        for secret in ["", "whsec_", "whsec_not*base64!"] {
            let error = SoundPieceWebhookVerifier::new(Secret::from(secret)).unwrap_err();
            assert!(matches!(error, WebhookError::InvalidSecret { .. }));
            assert!(!error.to_string().contains('*'), "{error}");
        }
    }
}
