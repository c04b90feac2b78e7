//! Properties of the webhook receivers over generated input: a delivery
//! signed with any secret, id, timestamp in the window and body verifies;
//! any single-byte change to its body, signature, id or timestamp is
//! refused; random headers, bodies and clocks never panic, never verify and
//! never put the secret in an error; random bytes and random JSON never
//! panic either parser.
//!
//! Signatures are computed here with `hmac` + `sha2` from the Standard
//! Webhooks spec, not with the crate under test. The same checks, unbounded,
//! are the `soundpiece_webhook` and `musicgpt_webhook` fuzz targets (see
//! FUZZING.md); these run in `cargo test` with few, small cases.

#![cfg(all(feature = "soundpiece", feature = "musicgpt"))]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use proptest::sample::Index;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use songbind::Secret;
use songbind::webhook::musicgpt::decode_timed_lyrics;
use songbind::webhook::{
    MusicGptWebhook, SoundPieceWebhookEvent, SoundPieceWebhookVerifier, WebhookError,
};

/// The fixed clock of the tests, in unix seconds.
const NOW: i64 = 1_736_935_200;

/// Longest raw text an error keeps: 4 KiB and the ellipsis.
const RAW_LIMIT: usize = 4096 + '…'.len_utf8();

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
fn independent_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

fn secret(key: &[u8]) -> String {
    format!("whsec_{}", BASE64.encode(key))
}

fn verifier(key: &[u8], tolerance: Duration) -> SoundPieceWebhookVerifier {
    SoundPieceWebhookVerifier::new(Secret::from(secret(key)))
        .expect("whsec_ + base64 of a non-empty key is a valid secret")
        .with_tolerance(tolerance)
}

/// `unix_secs` as a clock reading, on either side of the epoch.
fn at(unix_secs: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(unix_secs.unsigned_abs());
    if unix_secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

fn headers(id: &[u8], timestamp: &[u8], signature: &[u8]) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_bytes(id).ok()?);
    headers.insert(
        "webhook-timestamp",
        HeaderValue::from_bytes(timestamp).ok()?,
    );
    headers.insert(
        "webhook-signature",
        HeaderValue::from_bytes(signature).ok()?,
    );
    Some(headers)
}

/// `bytes` with the byte at `index` replaced by `byte` (or `None` when
/// that is no change).
fn changed(bytes: &[u8], index: Index, byte: u8) -> Option<Vec<u8>> {
    let index = index.index(bytes.len());
    if bytes[index] == byte {
        return None;
    }
    let mut out = bytes.to_vec();
    out[index] = byte;
    Some(out)
}

fn assert_no_secret(text: &str, key: &[u8]) {
    assert!(!text.contains(&secret(key)), "the secret leaked: {text}");
    assert!(
        !text.contains(&BASE64.encode(key)),
        "the secret leaked: {text}"
    );
}

fn assert_raw_is_bounded(error: &WebhookError) {
    if let WebhookError::InvalidPayload { raw, .. } = error {
        assert!(raw.len() <= RAW_LIMIT, "error keeps {} bytes", raw.len());
    }
}

// ---- strategies ------------------------------------------------------------------

/// A webhook secret's key: any bytes, at least one.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..48)
}

/// A `webhook-id` as senders write them: visible ASCII, no surrounding
/// blanks (HTTP drops those, and the verifier trims them).
fn webhook_id() -> impl Strategy<Value = String> {
    prop_oneof!["msg_[A-Za-z0-9]{8,27}", "[!-~]{1,40}"]
}

/// A delivery body: any UTF-8 text, or a SoundPiece-shaped event.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<String>().prop_map(String::into_bytes),
        (
            prop::sample::select(vec!["remix_song.ready", "remix_song.failed", "x.y"]),
            "[a-z0-9_]{1,12}",
            "\\PC{0,20}",
        )
            .prop_map(|(kind, id, text)| {
                let song = json!({"id": id, "status": "ready", "lyrics": text});
                json!({"type": kind, "data": {"remix_song": song}})
                    .to_string()
                    .into_bytes()
            }),
    ]
}

/// Any JSON value, leaning on the keys both providers use.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        3 => prop::sample::select(vec![
            "type", "data", "remix_song", "id", "status", "outputs", "error", "url",
            "conversion_id", "conversion_type", "task_id", "success", "lyrics",
            "lyrics_timestamped", "image_path", "conversion_path", "index", "text",
            "start", "end",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::from)),
        prop::sample::select(vec![
            "remix_song.ready",
            "remix_song.failed",
            "Lyrics",
            "Cover",
            "Remix",
            "",
            "[]",
            r#"[{"index": 0, "text": "[Verse]", "start": 1, "end": 2}]"#,
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A header for a random delivery: one of the scheme's names or another,
/// with any bytes, a number, or a well-formed but wrong signature.
fn random_header() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    let name = prop::sample::select(vec![
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
    ]);
    let value = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        ((NOW - 400)..(NOW + 400)).prop_map(|n| n.to_string().into_bytes()),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 32), 1..4).prop_map(|sigs| {
            sigs.iter()
                .map(|sig| format!("v1,{}", BASE64.encode(sig)))
                .collect::<Vec<_>>()
                .join(" ")
                .into_bytes()
        }),
    ];
    (name, value)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A delivery signed with any secret, for any id and body, dated
    /// anywhere within the tolerance, verifies, also among stale rotated
    /// signatures; and `receive_at` decodes exactly what `decode` does.
    #[test]
    fn a_correctly_signed_delivery_always_verifies(
        key in key(),
        id in webhook_id(),
        body in body(),
        tolerance in 0u64..3600,
        offset in any::<Index>(),
        stale_before in prop::collection::vec(key(), 0..3),
        stale_after in prop::collection::vec(key(), 0..3),
    ) {
        let tolerance_secs = i64::try_from(tolerance).unwrap_or(i64::MAX);
        let step = i64::try_from(offset.index(2 * tolerance as usize + 1)).unwrap_or(0);
        let timestamp = NOW - tolerance_secs + step;
        let good = independent_signature(&key, &id, timestamp, &body);
        let stale = |keys: &[Vec<u8>]| -> Vec<String> {
            keys.iter()
                .map(|k| independent_signature(k, &id, timestamp, b"an older body"))
                .collect()
        };
        let mut entries = stale(&stale_before);
        entries.push(good);
        entries.extend(stale(&stale_after));
        let timestamp_text = timestamp.to_string();
        let signatures = entries.join(" ");
        let headers = headers(id.as_bytes(), timestamp_text.as_bytes(), signatures.as_bytes())
            .expect("visible ASCII makes valid header values");
        let verifier = verifier(&key, Duration::from_secs(tolerance));
        let now = at(NOW).expect("NOW is a valid clock reading");

        let verified = match verifier.verify_at(&headers, &body, now) {
            Ok(verified) => verified,
            Err(error) => return Err(TestCaseError::fail(format!("refused: {error}"))),
        };
        prop_assert_eq!(&verified.webhook_id, &id);
        prop_assert_eq!(verified.timestamp, timestamp);

        match (verifier.receive_at(&headers, &body, now), SoundPieceWebhookEvent::decode(&body)) {
            (Ok(delivery), Ok(event)) => prop_assert_eq!(delivery.event, event),
            (Err(received), Err(decoded)) => prop_assert_eq!(received, decoded),
            (received, decoded) => {
                prop_assert!(false, "receive {:?} vs decode {:?}", received, decoded)
            }
        }
    }

    /// Changing any one byte of the body of a correctly signed delivery
    /// makes it refused: the signature no longer matches, or the body is no
    /// longer UTF-8.
    #[test]
    fn any_single_byte_change_to_the_body_is_refused(
        key in key(),
        id in webhook_id(),
        body in body().prop_filter("a byte to change", |b| !b.is_empty()),
        index in any::<Index>(),
        byte in any::<u8>(),
    ) {
        let Some(tampered) = changed(&body, index, byte) else { return Ok(()) };
        let signature = independent_signature(&key, &id, NOW, &body);
        let headers = headers(id.as_bytes(), NOW.to_string().as_bytes(), signature.as_bytes())
            .expect("visible ASCII makes valid header values");
        let error = verifier(&key, Duration::from_secs(60))
            .verify_at(&headers, &tampered, at(NOW).expect("a valid clock"))
            .expect_err("a tampered body must be refused");
        prop_assert!(
            matches!(
                error,
                WebhookError::SignatureMismatch { checked: 1 } | WebhookError::BodyNotUtf8
            ),
            "{:?}", error
        );
    }

    /// Changing any one byte of the `webhook-signature`, `webhook-id` or
    /// `webhook-timestamp` header of a correctly signed delivery makes it
    /// refused (a change that makes the value unsendable as a header is
    /// skipped: no HTTP server would hand it over).
    #[test]
    fn any_single_byte_change_to_the_signature_id_or_timestamp_is_refused(
        key in key(),
        id in webhook_id(),
        body in body(),
        which in 0usize..3,
        index in any::<Index>(),
        byte in any::<u8>(),
    ) {
        let signature = independent_signature(&key, &id, NOW, &body).into_bytes();
        let timestamp = NOW.to_string().into_bytes();
        let mut parts = [id.clone().into_bytes(), timestamp, signature];
        let Some(tampered) = changed(&parts[which], index, byte) else { return Ok(()) };
        parts[which] = tampered;
        let Some(headers) = headers(&parts[0], &parts[1], &parts[2]) else { return Ok(()) };
        let result = verifier(&key, Duration::from_secs(3600))
            .verify_at(&headers, &body, at(NOW).expect("a valid clock"));
        let Err(error) = result else {
            return Err(TestCaseError::fail(format!("header {which} changed and still accepted")));
        };
        prop_assert!(
            matches!(
                error,
                WebhookError::SignatureMismatch { .. }
                    | WebhookError::NoSupportedSignature
                    | WebhookError::InvalidHeader { .. }
                    | WebhookError::TimestampTooOld { .. }
                    | WebhookError::TimestampInFuture { .. }
            ),
            "{:?}", error
        );
    }

    /// Random headers (the scheme's names with any bytes, numbers or
    /// well-formed wrong signatures), any body and any clock and tolerance:
    /// no panic, never accepted, and no error text holds the secret.
    #[test]
    fn random_headers_bodies_and_clocks_never_panic_or_verify(
        key in key(),
        random_headers in prop::collection::vec(random_header(), 0..6),
        body in prop::collection::vec(any::<u8>(), 0..256),
        now in prop_oneof![Just(NOW), any::<i64>()],
        tolerance in prop_oneof![0u64..600, any::<u64>()],
    ) {
        let mut headers = HeaderMap::new();
        for (name, value) in &random_headers {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        let Some(now) = at(now) else { return Ok(()) };
        let verifier = verifier(&key, Duration::from_secs(tolerance));
        let shown = format!("{verifier:?}");
        prop_assert!(!shown.contains(&BASE64.encode(&key)), "{}", shown);
        let verified = verifier.verify_at(&headers, &body, now);
        let received = verifier.receive_at(&headers, &body, now);
        for error in [verified.err(), received.err()] {
            let Some(error) = error else {
                return Err(TestCaseError::fail("a delivery with random signatures was accepted"));
            };
            let as_crate_error = songbind::Error::from(error.clone());
            assert_no_secret(&format!("{error} {error:?} {as_crate_error}"), &key);
        }
    }

    /// Any bytes into both parsers and the timed-lyrics decoder: no panic,
    /// and errors keep a bounded part of the input.
    #[test]
    fn random_bytes_never_panic_either_parser(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            prop::collection::vec(any::<u8>(), 4000..6000),
        ],
    ) {
        let soundpiece = SoundPieceWebhookEvent::decode(&body);
        let musicgpt = MusicGptWebhook::parse(&body);
        let timed = decode_timed_lyrics(&String::from_utf8_lossy(&body));
        for error in [soundpiece.err(), musicgpt.err(), timed.err()].iter().flatten() {
            assert_raw_is_bounded(error);
        }
    }

    /// Random JSON shaped like the deliveries: no panic, a MusicGPT body
    /// parses exactly when it is an object (sorted by the documented rule),
    /// a SoundPiece body decodes only with a `type` string, and the timed
    /// lyrics of whatever parses decode or fail without panicking.
    #[test]
    fn random_json_is_sorted_by_the_documented_rules(value in json_value()) {
        let body = value.to_string().into_bytes();
        // Compared with the body as read back (floats need not survive the trip).
        let value: Value = serde_json::from_slice(&body).expect("serde_json reads its own output");

        let parsed = MusicGptWebhook::parse(&body);
        if !value.is_object() {
            prop_assert!(parsed.is_err(), "{:?}", parsed);
        } else if parsed.is_err() {
            // Only a conversion whose fields have the wrong types is refused.
            prop_assert!(value.get("conversion_id").is_some_and(Value::is_string), "{:?}", parsed);
        }
        match parsed {
            Ok(MusicGptWebhook::Conversion(delivery)) => {
                prop_assert_eq!(
                    Some(delivery.conversion_id.as_str()),
                    value.get("conversion_id").and_then(Value::as_str)
                );
                let _ = delivery.timed_lyrics();
            }
            Ok(MusicGptWebhook::Lyrics(lyrics)) => {
                prop_assert_eq!(&lyrics.raw, &value);
                let _ = lyrics.timed_lyrics();
            }
            Ok(MusicGptWebhook::Cover(cover)) => prop_assert_eq!(&cover.raw, &value),
            Ok(MusicGptWebhook::Other(raw)) => prop_assert_eq!(&raw, &value),
            Err(error) => assert_raw_is_bounded(&error),
        }

        match SoundPieceWebhookEvent::decode(&body) {
            Ok(event) => {
                let sent_type = value.get("type").and_then(Value::as_str);
                prop_assert_eq!(Some(event.event_type()), sent_type);
            }
            Err(error) => assert_raw_is_bounded(&error),
        }
    }

    /// Timed lyrics with any numbers decode to one line per element exactly
    /// when every index fits in `u32` and no time is negative.
    #[test]
    fn timed_lyrics_decode_exactly_when_every_number_is_in_range(
        lines in prop::collection::vec(
            (any::<i64>(), "\\PC{0,12}", any::<i64>(), any::<i64>()),
            0..8,
        ),
    ) {
        let array: Vec<Value> = lines
            .iter()
            .map(|(index, text, start, end)| {
                json!({"index": index, "text": text, "start": start, "end": end})
            })
            .collect();
        let in_range = lines.iter().all(|(index, _, start, end)| {
            u32::try_from(*index).is_ok() && *start >= 0 && *end >= 0
        });
        match decode_timed_lyrics(&Value::Array(array).to_string()) {
            Ok(decoded) => {
                prop_assert!(in_range);
                prop_assert_eq!(decoded.len(), lines.len());
                for (line, (index, text, start, end)) in decoded.iter().zip(&lines) {
                    prop_assert_eq!(i64::from(line.index), *index);
                    prop_assert_eq!(&line.text, text);
                    prop_assert_eq!(i64::try_from(line.start_ms).ok(), Some(*start));
                    prop_assert_eq!(i64::try_from(line.end_ms).ok(), Some(*end));
                }
            }
            Err(error) => {
                prop_assert!(!in_range, "{}", error);
                let is_payload_error = matches!(error, WebhookError::InvalidPayload { .. });
                prop_assert!(is_payload_error, "{:?}", error);
            }
        }
    }
}
