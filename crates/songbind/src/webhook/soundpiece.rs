//! SoundPiece callbacks: Standard Webhooks signatures and typed events.
//!
//! SoundPiece POSTs `{"type": "remix_song.ready" | "remix_song.failed",
//! "data": ...}` to the `callback_url`, with the headers `webhook-id`,
//! `webhook-timestamp` (unix seconds) and `webhook-signature`
//! (space-separated `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`
//! entries, several while a secret is rotated). The secret is `whsec_` +
//! base64 of the key.
//!
//! The signature is HMAC-SHA256 from the `hmac` and `sha2` crates (`sha2`
//! uses the CPU's SHA instructions where it has them: the `standardwebhooks`
//! crate's portable SHA-256 verified at 0.18x their speed, BENCHMARKS.md
//! section 6). The timestamp is checked against a clock you can pass in
//! ([`SoundPieceWebhookVerifier::verify_at`]) with a tolerance you choose
//! (`standardwebhooks`' own `verify` reads the system clock with a fixed
//! window), then every `v1` signature is compared in constant time with
//! `subtle` (a well-kept crate: a hand-written loop is easy for the
//! optimiser to undo). The tests check signatures made by
//! `standardwebhooks`, the reference implementation.
//!
//! Where `data` is concerned the provider's documents can be read two ways:
//! the spec's `{"remix_song": {...}}` (what the GET returns) or the bare
//! operation object. [`SoundPieceWebhookEvent::decode`] accepts both.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName};
use serde_json::Value;
use sha2::Sha256;
use songbind_soundpiece::types::{RemixSong, RemixSongWebhook};
use subtle::{Choice, ConstantTimeEq};

use super::WebhookError;
use crate::secret::Secret;

/// How far a delivery's timestamp may be from the clock, either way, by
/// default: five minutes, as the Standard Webhooks libraries use.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Whether `candidate` is `expected` (a base64 signature), in constant time:
/// the length is public, the bytes are compared as 64-bit words (`subtle`
/// hides each comparison from the optimiser, so fewer comparisons are
/// faster; per byte, this was a tenth of a verification's time).
fn same_signature(candidate: &[u8], expected: &[u8]) -> Choice {
    if candidate.len() != expected.len() || expected.len() > SIGNATURE_BASE64_LEN {
        return Choice::from(0);
    }
    let words = |bytes: &[u8]| {
        let mut padded = [0u8; SIGNATURE_BASE64_LEN.next_multiple_of(8)];
        padded[..bytes.len()].copy_from_slice(bytes);
        padded
    };
    let (candidate, expected) = (words(candidate), words(expected));
    candidate
        .chunks_exact(8)
        .zip(expected.chunks_exact(8))
        .fold(Choice::from(1), |same, (a, b)| {
            let word = |chunk: &[u8]| u64::from_ne_bytes(chunk.try_into().unwrap_or_default());
            same & word(a).ct_eq(&word(b))
        })
}

/// The length of a base64 HMAC-SHA256 (32 bytes, padded).
const SIGNATURE_BASE64_LEN: usize = 44;

const HEADER_ID: &str = "webhook-id";
const HEADER_TIMESTAMP: &str = "webhook-timestamp";
const HEADER_SIGNATURE: &str = "webhook-signature";
// The same names, parsed once (a `&str` key is parsed on every lookup).
static WEBHOOK_ID: HeaderName = HeaderName::from_static(HEADER_ID);
static WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static(HEADER_TIMESTAMP);
static WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static(HEADER_SIGNATURE);

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
    /// HMAC-SHA256 keyed with the decoded secret, cloned for each delivery
    /// (so the key schedule is computed once).
    mac: Hmac<Sha256>,
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
        let invalid = |_| WebhookError::InvalidSecret {
            reason: "it is not `whsec_` followed by standard base64",
        };
        let key = BASE64.decode(encoded).map_err(invalid)?;
        let mac =
            Hmac::<Sha256>::new_from_slice(&key).map_err(|_| WebhookError::InvalidSecret {
                reason: "its key cannot key HMAC-SHA256",
            })?;
        Ok(Self {
            mac,
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
        let webhook_id = header(headers, &WEBHOOK_ID)?;
        if webhook_id.is_empty() {
            return Err(WebhookError::InvalidHeader {
                header: HEADER_ID,
                reason: "it is empty",
            });
        }
        let timestamp = header(headers, &WEBHOOK_TIMESTAMP)?;
        let signatures = headers.get_all(&WEBHOOK_SIGNATURE);
        if signatures.iter().next().is_none() {
            return Err(WebhookError::MissingHeader(HEADER_SIGNATURE));
        }
        for value in &signatures {
            value.to_str().map_err(|_| WebhookError::InvalidHeader {
                header: HEADER_SIGNATURE,
                reason: "it is not visible ASCII",
            })?;
        }
        let timestamp: i64 = timestamp.parse().map_err(|_| WebhookError::InvalidHeader {
            header: HEADER_TIMESTAMP,
            reason: "it is not a whole number of unix seconds",
        })?;
        self.check_timestamp(timestamp, now)?;

        let mut expected = [0u8; SIGNATURE_BASE64_LEN];
        let expected = self.signature(webhook_id, timestamp, body, &mut expected);
        // Compare every candidate, without branching, so the time taken does
        // not depend on which one (if any) matches, nor where one differs.
        let (matched, checked) = signatures
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(str::split_ascii_whitespace)
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == "v1")
            .fold((Choice::from(0), 0), |(found, checked), (_, candidate)| {
                (
                    found | same_signature(candidate.as_bytes(), expected),
                    checked + 1,
                )
            });
        if checked == 0 {
            return Err(WebhookError::NoSupportedSignature);
        }
        if !bool::from(matched) {
            return Err(WebhookError::SignatureMismatch { checked });
        }
        Ok(VerifiedWebhook {
            webhook_id: webhook_id.to_owned(),
            timestamp,
        })
    }

    /// The base64 `v1` signature of `{id}.{timestamp}.{body}`, written into
    /// `out` (verification allocates nothing but the returned id).
    fn signature<'a>(
        &self,
        webhook_id: &str,
        timestamp: i64,
        body: &[u8],
        out: &'a mut [u8; SIGNATURE_BASE64_LEN],
    ) -> &'a [u8] {
        // `itoa`: the digits without `fmt`, on the stack.
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(timestamp);
        let mut mac = self.mac.clone();
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(digits.as_bytes());
        mac.update(b".");
        mac.update(body);
        let length = BASE64
            .encode_slice(mac.finalize().into_bytes(), out)
            .unwrap_or(0);
        &out[..length]
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
fn header<'a>(headers: &'a HeaderMap, key: &'static HeaderName) -> Result<&'a str, WebhookError> {
    let name = key.as_str();
    headers
        .get(key)
        .ok_or(WebhookError::MissingHeader(name))?
        .to_str()
        .map(str::trim_ascii)
        .map_err(|_| WebhookError::InvalidHeader {
            header: name,
            reason: "it is not visible ASCII",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_the_reference_implementations_for_any_timestamp() {
        let secret = "whsec_c2lnbmF0dXJlLWNvbXBhcmlzb24ta2V5";
        let verifier = SoundPieceWebhookVerifier::new(Secret::from(secret)).unwrap();
        let reference = standardwebhooks::Webhook::new(secret).unwrap();
        for timestamp in [0, 7, 10, 1_700_000_000, -42, i64::MAX, i64::MIN] {
            let body = br#"{"type":"remix_song.ready"}"#;
            let mut out = [0u8; SIGNATURE_BASE64_LEN];
            let ours = verifier.signature("msg_1", timestamp, body, &mut out);
            let theirs = reference.sign("msg_1", timestamp, body).unwrap();
            assert_eq!(
                theirs.strip_prefix("v1,"),
                std::str::from_utf8(ours).ok(),
                "{timestamp}"
            );
        }
    }

    #[test]
    fn only_the_whole_signature_matches_and_any_candidate_may() {
        let secret = "whsec_c2lnbmF0dXJlLWNvbXBhcmlzb24ta2V5";
        let verifier = SoundPieceWebhookVerifier::new(Secret::from(secret)).unwrap();
        let body = br#"{"type":"remix_song.ready"}"#;
        let signed = standardwebhooks::Webhook::new(secret)
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
