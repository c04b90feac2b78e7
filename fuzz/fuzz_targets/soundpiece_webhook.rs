//! Arbitrary headers and body into `SoundPieceWebhookVerifier::verify_at`
//! (fixed secret, clock from the input) and `SoundPieceWebhookEvent::decode`.
//!
//! Input layout, like an HTTP request without its request line: header
//! lines (`name: value`, ended by LF) up to the first empty line, then the
//! body. Names are lowercased; lines that do not make a valid header are
//! skipped. Three pseudo-headers steer the harness and are not passed on:
//!
//! * `x-fuzz-now: <unix seconds>`: the clock (default 1736935200);
//! * `x-fuzz-tolerance: <seconds>`: the verifier's tolerance (default 300);
//! * `x-fuzz-sign:` (any value): the harness appends a correct `v1`
//!   signature over the `webhook-id`, `webhook-timestamp` and body it was
//!   given, computed independently (hmac + sha2), as SoundPiece would.
//!
//! Besides "never panics", it checks:
//!
//! * soundness: an accepted delivery carries a `v1` entry equal to the
//!   independently computed signature, its timestamp is within the
//!   tolerance, and its id is the header's;
//! * completeness: a delivery the harness signed, whose headers are
//!   readable and whose timestamp is within the tolerance, is accepted;
//! * `receive_at` agrees with `verify_at` followed by `decode`;
//! * no error text (Display or Debug) holds the secret or the key (unless
//!   the input did: an error may quote the body).

#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use songbind::Secret;
use songbind::webhook::{SoundPieceWebhookEvent, SoundPieceWebhookVerifier};

/// The raw webhook key; the secret is `whsec_` + its base64.
const KEY: &[u8] = b"songbind fuzzing key, 32 bytes!!";
const DEFAULT_NOW: i64 = 1_736_935_200;
const DEFAULT_TOLERANCE: u64 = 300;

fn secret_base64() -> String {
    BASE64.encode(KEY)
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, written from
/// the Standard Webhooks spec (not with the crate under test).
fn independent_signature(id: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(KEY) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

fn clock(seconds: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// The header as the verifier reads it: first value, visible ASCII, trimmed.
fn first_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// A pseudo-header's number.
fn number<T: std::str::FromStr>(value: &[u8]) -> Option<T> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// Fails when `text` holds the secret or the key, unless the input itself
/// did (an error may quote the body, and the fuzzer can learn the secret's
/// text from the comparisons it watches).
fn assert_no_secret(text: &str, input: &[u8]) {
    let secret = secret_base64();
    for needle in [secret.as_bytes(), KEY] {
        if input.windows(needle.len()).any(|w| w == needle) {
            return;
        }
    }
    assert!(
        !text.contains(&secret),
        "error text holds the secret: {text}"
    );
    assert!(
        !text.contains(std::str::from_utf8(KEY).unwrap_or("\u{0}")),
        "error text holds the key: {text}"
    );
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    let mut now = DEFAULT_NOW;
    let mut tolerance = DEFAULT_TOLERANCE;
    let mut sign = false;
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        match name {
            b"x-fuzz-now" => now = number(value).unwrap_or(DEFAULT_NOW),
            b"x-fuzz-tolerance" => tolerance = number(value).unwrap_or(DEFAULT_TOLERANCE),
            b"x-fuzz-sign" => sign = true,
            _ => {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
                {
                    headers.append(name, value);
                }
            }
        }
    }
    let Some(at) = clock(now) else { return };
    let tolerance = Duration::from_secs(tolerance);

    // What a correct signature would need, read as the verifier reads it.
    let id = first_text(&headers, "webhook-id").filter(|id| !id.is_empty());
    let timestamp: Option<i64> =
        first_text(&headers, "webhook-timestamp").and_then(|t| t.parse().ok());
    let expected = match (id, timestamp) {
        (Some(id), Some(timestamp)) => Some(independent_signature(id, timestamp, body)),
        _ => None,
    };
    let signatures_readable = headers
        .get_all("webhook-signature")
        .iter()
        .all(|value| value.to_str().is_ok());
    let in_window = timestamp.is_some_and(|t| {
        (i128::from(now) - i128::from(t)).unsigned_abs() <= u128::from(tolerance.as_secs())
    });
    let owned_id = id.map(str::to_owned);
    if sign && let Some(expected) = &expected {
        let value = HeaderValue::from_str(&format!("v1,{expected}"));
        if let Ok(value) = value {
            headers.append("webhook-signature", value);
        }
    }

    let Ok(verifier) =
        SoundPieceWebhookVerifier::new(Secret::from(format!("whsec_{}", secret_base64())))
    else {
        unreachable!("the fixed secret is valid")
    };
    let verifier = verifier.with_tolerance(tolerance);
    assert_no_secret(&format!("{verifier:?}"), b"");

    let verified = verifier.verify_at(&headers, body, at);
    match &verified {
        Ok(delivery) => {
            let Some(expected) = &expected else {
                panic!("accepted without a readable id and timestamp: {delivery:?}")
            };
            let matched = headers
                .get_all("webhook-signature")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(str::split_whitespace)
                .any(|entry| entry.strip_prefix("v1,") == Some(expected.as_str()));
            assert!(matched, "accepted without a matching v1 signature");
            assert!(in_window, "accepted outside the tolerance");
            assert!(
                std::str::from_utf8(body).is_ok(),
                "accepted a non-UTF-8 body"
            );
            assert_eq!(Some(delivery.webhook_id.as_str()), owned_id.as_deref());
            assert_eq!(Some(delivery.timestamp), timestamp);
        }
        Err(error) => {
            assert_no_secret(&error.to_string(), data);
            assert_no_secret(&format!("{error:?}"), data);
            let should_pass = sign && expected.is_some() && signatures_readable && in_window;
            assert!(
                !(should_pass && std::str::from_utf8(body).is_ok()),
                "a correctly signed delivery was refused: {error}"
            );
        }
    }

    let decoded = SoundPieceWebhookEvent::decode(body);
    if let Err(error) = &decoded {
        assert_no_secret(&error.to_string(), data);
    }
    if let Ok(event) = &decoded {
        let _ = (event.event_type(), event.remix_song());
    }
    match (verifier.receive_at(&headers, body, at), verified, decoded) {
        (Ok(delivery), Ok(verified), Ok(event)) => {
            assert_eq!(delivery.webhook_id, verified.webhook_id);
            assert_eq!(delivery.timestamp, verified.timestamp);
            assert_eq!(delivery.event, event);
        }
        (Err(_), Err(_), _) | (Err(_), Ok(_), Err(_)) => {}
        (received, verified, decoded) => {
            panic!("receive_at disagrees: {received:?} vs verify {verified:?} / decode {decoded:?}")
        }
    }
});
