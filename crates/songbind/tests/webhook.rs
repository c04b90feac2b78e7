//! Webhooks: SoundPiece signature verification (checked against an
//! independent HMAC-SHA256 implementation), typed events, redelivery
//! dedupe, MusicGPT deliveries and `confirm` over loopback servers (the
//! emulator, and httpmock where a test needs an answer the emulator never
//! gives).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, ensure};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use httpmock::prelude::*;
use serde_json::{Value, json};
use sha2::Sha256;
use songbind::lyrics::{Lyrics, SectionKind};
use songbind::webhook::{
    MusicGptWebhook, SeenWebhookIds, SoundPieceWebhookEvent, SoundPieceWebhookVerifier,
    WebhookError, confirm,
};
use songbind::{Error, Secret};
use songbind_emulator::{Emulator, Provider};
use tokio::sync::mpsc;

/// The raw key behind [`secret`].
const KEY: &[u8] = b"an independent test key, 32 byte";
/// `whsec_` + base64 of [`KEY`].
fn secret() -> String {
    format!("whsec_{}", BASE64.encode(KEY))
}

const BODY: &[u8] = br#"{"type":"remix_song.ready","data":{"remix_song":{"id":"op_k9p34y6n3wd25rq4f5zr37e3p3","status":"ready","outputs":[{"url":"https://cdn.example/1.flac","duration":182.4}],"error":null}}}"#;
const SENT_AT: i64 = 1_736_935_200;
const ID: &str = "msg_2mQx8bV9";

/// Signs as SoundPiece does, written from the Standard Webhooks spec with
/// `hmac` + `sha2` (not with the crate under test or `standardwebhooks`).
fn independent_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", id.parse().unwrap());
    headers.insert("webhook-timestamp", timestamp.parse().unwrap());
    headers.insert("webhook-signature", signature.parse().unwrap());
    headers
}

fn signed_headers() -> HeaderMap {
    headers(
        ID,
        &SENT_AT.to_string(),
        &independent_signature(KEY, ID, SENT_AT, BODY),
    )
}

fn at(unix_secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_secs).unwrap())
}

fn verifier() -> SoundPieceWebhookVerifier {
    SoundPieceWebhookVerifier::new(Secret::from(secret())).unwrap()
}

// ---------------------------------------------------------------- SoundPiece

#[test]
fn independently_signed_delivery_verifies_and_decodes_to_ready() {
    let delivery = verifier()
        .receive_at(&signed_headers(), BODY, at(SENT_AT + 3))
        .unwrap();
    assert_eq!(delivery.webhook_id, ID);
    assert_eq!(delivery.timestamp, SENT_AT);
    let SoundPieceWebhookEvent::Ready(song) = &delivery.event else {
        panic!("expected ready, got {:?}", delivery.event);
    };
    assert_eq!(song.id, "op_k9p34y6n3wd25rq4f5zr37e3p3");
    assert_eq!(song.outputs.as_ref().map(Vec::len), Some(1));
}

#[test]
fn standardwebhooks_and_independent_signatures_are_identical() {
    let theirs = standardwebhooks::Webhook::new(&secret())
        .unwrap()
        .sign(ID, SENT_AT, BODY)
        .unwrap();
    assert_eq!(theirs, independent_signature(KEY, ID, SENT_AT, BODY));
}

#[test]
fn tampered_body_is_refused() {
    let tampered = String::from_utf8(BODY.to_vec())
        .unwrap()
        .replace("1.flac", "evil.flac");
    let error = verifier()
        .verify_at(&signed_headers(), tampered.as_bytes(), at(SENT_AT))
        .unwrap_err();
    assert_eq!(error, WebhookError::SignatureMismatch { checked: 1 });
}

#[test]
fn changed_id_or_timestamp_is_refused() {
    let signature = independent_signature(KEY, ID, SENT_AT, BODY);
    let other_id = headers("msg_other", &SENT_AT.to_string(), &signature);
    let other_time = headers(ID, &(SENT_AT + 1).to_string(), &signature);
    for headers in [other_id, other_time] {
        let error = verifier()
            .verify_at(&headers, BODY, at(SENT_AT))
            .unwrap_err();
        assert!(
            matches!(error, WebhookError::SignatureMismatch { .. }),
            "{error:?}"
        );
    }
}

#[test]
fn wrong_secret_is_refused_without_naming_either_secret() {
    let wrong = format!("whsec_{}", BASE64.encode(b"some other key entirely"));
    let error = SoundPieceWebhookVerifier::new(Secret::from(wrong.as_str()))
        .unwrap()
        .verify_at(&signed_headers(), BODY, at(SENT_AT))
        .unwrap_err();
    assert_eq!(error, WebhookError::SignatureMismatch { checked: 1 });
    let text = format!("{error} {error:?} {}", Error::from(error.clone()));
    for needle in [wrong.as_str(), &secret(), &BASE64.encode(KEY)] {
        assert!(!text.contains(needle), "{text}");
    }
}

#[test]
fn one_valid_signature_among_rotated_ones_is_enough() {
    let old_key = b"the key before the rotation....";
    let header = format!(
        "{} {}",
        independent_signature(old_key, ID, SENT_AT, BODY),
        independent_signature(KEY, ID, SENT_AT, BODY)
    );
    let headers = headers(ID, &SENT_AT.to_string(), &header);
    verifier().verify_at(&headers, BODY, at(SENT_AT)).unwrap();
    let old =
        SoundPieceWebhookVerifier::new(Secret::from(format!("whsec_{}", BASE64.encode(old_key))))
            .unwrap();
    old.verify_at(&headers, BODY, at(SENT_AT)).unwrap();

    let neither =
        SoundPieceWebhookVerifier::new(Secret::from(format!("whsec_{}", BASE64.encode(b"third"))))
            .unwrap();
    let error = neither.verify_at(&headers, BODY, at(SENT_AT)).unwrap_err();
    assert_eq!(error, WebhookError::SignatureMismatch { checked: 2 });
}

#[test]
fn signatures_in_repeated_headers_are_all_checked() {
    let mut headers = headers(ID, &SENT_AT.to_string(), "v1,bm90IHRoZSBzaWduYXR1cmU=");
    headers.append(
        "webhook-signature",
        independent_signature(KEY, ID, SENT_AT, BODY)
            .parse()
            .unwrap(),
    );
    verifier().verify_at(&headers, BODY, at(SENT_AT)).unwrap();
}

#[test]
fn timestamps_outside_the_tolerance_are_refused_both_ways() {
    let verifier = verifier().with_tolerance(Duration::from_secs(60));
    let headers = signed_headers();
    verifier
        .verify_at(&headers, BODY, at(SENT_AT + 60))
        .unwrap();
    verifier
        .verify_at(&headers, BODY, at(SENT_AT - 60))
        .unwrap();

    let too_old = verifier
        .verify_at(&headers, BODY, at(SENT_AT + 61))
        .unwrap_err();
    assert_eq!(
        too_old,
        WebhookError::TimestampTooOld {
            age: Duration::from_secs(61),
            tolerance: Duration::from_secs(60)
        }
    );
    let too_new = verifier
        .verify_at(&headers, BODY, at(SENT_AT - 3600))
        .unwrap_err();
    assert_eq!(
        too_new,
        WebhookError::TimestampInFuture {
            ahead: Duration::from_secs(3600),
            tolerance: Duration::from_secs(60)
        }
    );
    assert!(too_old.to_string().contains("61 s old"), "{too_old}");
}

#[test]
fn default_tolerance_is_five_minutes_and_system_clock_verify_refuses_old_deliveries() {
    let verifier = verifier();
    assert_eq!(verifier.tolerance(), Duration::from_secs(300));
    // Signed in January 2025: far outside the window of the real clock.
    let error = verifier.verify(&signed_headers(), BODY).unwrap_err();
    assert!(
        matches!(error, WebhookError::TimestampTooOld { .. }),
        "{error:?}"
    );
}

#[test]
fn missing_or_unusable_headers_are_named() {
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut headers = signed_headers();
        headers.remove(missing);
        let error = verifier()
            .verify_at(&headers, BODY, at(SENT_AT))
            .unwrap_err();
        assert_eq!(error, WebhookError::MissingHeader(missing));
        assert!(error.to_string().contains(missing), "{error}");
    }
    let not_a_number = headers(
        ID,
        "yesterday",
        &independent_signature(KEY, ID, SENT_AT, BODY),
    );
    let error = verifier()
        .verify_at(&not_a_number, BODY, at(SENT_AT))
        .unwrap_err();
    assert!(
        matches!(
            error,
            WebhookError::InvalidHeader {
                header: "webhook-timestamp",
                ..
            }
        ),
        "{error:?}"
    );
    let unknown_version = headers(ID, &SENT_AT.to_string(), "v2,abc v1a,def");
    let error = verifier()
        .verify_at(&unknown_version, BODY, at(SENT_AT))
        .unwrap_err();
    assert_eq!(error, WebhookError::NoSupportedSignature);
}

#[test]
fn verified_but_undecodable_body_is_a_payload_error() {
    let body = br#"{"type":"remix_song.ready","data":{"remix_song":{"status":"ready"}}}"#;
    let headers = headers(
        ID,
        &SENT_AT.to_string(),
        &independent_signature(KEY, ID, SENT_AT, body),
    );
    let error = verifier()
        .receive_at(&headers, body, at(SENT_AT))
        .unwrap_err();
    assert!(
        matches!(error, WebhookError::InvalidPayload { .. }),
        "{error:?}"
    );
    assert!(matches!(Error::from(error), Error::Decode { .. }));
}

#[test]
fn seen_webhook_ids_drop_duplicates_and_stay_bounded() {
    let mut seen = SeenWebhookIds::new(100);
    assert!(seen.first_time("msg_0"));
    assert!(!seen.first_time("msg_0"));
    for n in 1..10_000 {
        assert!(seen.first_time(&format!("msg_{n}")));
        assert!(seen.len() <= 100);
    }
    assert_eq!(seen.len(), 100);
    assert!(
        !seen.first_time("msg_9999"),
        "a recent id is still remembered"
    );
    assert!(seen.first_time("msg_0"), "the oldest ids were forgotten");
}

/// A loopback webhook receiver: every POST goes to a channel; the answer
/// statuses are scripted (then 200).
struct Receiver {
    url: String,
    deliveries: mpsc::UnboundedReceiver<(String, HeaderMap, Bytes)>,
}

#[derive(Clone)]
struct ReceiverState {
    sender: mpsc::UnboundedSender<(String, HeaderMap, Bytes)>,
    statuses: Arc<Mutex<VecDeque<StatusCode>>>,
}

async fn receive(
    State(state): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let _ = state.sender.send((uri.path().to_owned(), headers, body));
    state
        .statuses
        .lock()
        .map(|mut statuses| statuses.pop_front())
        .ok()
        .flatten()
        .unwrap_or(StatusCode::OK)
}

impl Receiver {
    async fn start(statuses: &[StatusCode]) -> Result<Self> {
        let (sender, deliveries) = mpsc::unbounded_channel();
        let state = ReceiverState {
            sender,
            statuses: Arc::new(Mutex::new(statuses.iter().copied().collect())),
        };
        let app = axum::Router::new().fallback(receive).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url, deliveries })
    }

    async fn next(&mut self) -> Result<(String, HeaderMap, Bytes)> {
        tokio::time::timeout(Duration::from_secs(30), self.deliveries.recv())
            .await
            .context("no delivery within 30 s")?
            .ok_or_else(|| anyhow!("receiver closed"))
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

#[tokio::test]
async fn emulator_soundpiece_callback_verifies_and_its_redelivery_is_dropped() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    // The first attempt fails, so the emulator delivers again with the same id.
    let mut receiver = Receiver::start(&[StatusCode::INTERNAL_SERVER_ERROR]).await?;
    let answer = http()
        .put(format!(
            "{}/v1/create.remix_song",
            emulator.base_url(Provider::SoundPiece)
        ))
        .bearer_auth("spk_test")
        .json(&json!({
            "idempotency_key": "3fa21150-e872-4077-95cf-fc8e36926f2d",
            "source": {"url": "https://example.com/source.mp3"},
            "lyrics": "[Verse]\nThis is a demo song",
            "prompt": "rock song, energetic",
            "callback_url": format!("{}/soundpiece", receiver.url),
            "n_variations": 2,
        }))
        .send()
        .await?;
    ensure!(answer.status() == 200, "create: {}", answer.status());
    let created: Value = answer.json().await?;
    let operation = created["remix_song"]["id"]
        .as_str()
        .context("operation id")?
        .to_owned();

    let verifier = SoundPieceWebhookVerifier::new(Secret::from(emulator.webhook_secret()))?;
    let mut seen = SeenWebhookIds::new(16);
    let mut first_times = Vec::new();
    for _ in 0..2 {
        let (path, headers, body) = receiver.next().await?;
        assert_eq!(path, "/soundpiece");
        let delivery = verifier.receive(&headers, &body)?;
        let SoundPieceWebhookEvent::Ready(song) = &delivery.event else {
            panic!("expected ready, got {:?}", delivery.event);
        };
        assert_eq!(song.id, operation);
        assert_eq!(song.outputs.as_ref().map(Vec::len), Some(2));
        first_times.push(seen.first_time(&delivery.webhook_id));
    }
    assert_eq!(
        first_times,
        [true, false],
        "the redelivery reuses the webhook-id"
    );
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn emulator_soundpiece_failure_decodes_to_failed() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let mut receiver = Receiver::start(&[]).await?;
    let answer = http()
        .put(format!(
            "{}/v1/create.remix_song",
            emulator.base_url(Provider::SoundPiece)
        ))
        .bearer_auth("spk_test")
        .json(&json!({
            "idempotency_key": "0b6c3b8e-51a4-4b53-9d0e-2b7f0f1c9a11",
            "source": {"url": "https://example.com/source.mp3"},
            "lyrics": "[Verse]\nla",
            "prompt": "rock song [fail]",
            "callback_url": format!("{}/soundpiece", receiver.url),
        }))
        .send()
        .await?;
    ensure!(answer.status() == 200, "create: {}", answer.status());
    let (_, headers, body) = receiver.next().await?;
    let verifier = SoundPieceWebhookVerifier::new(Secret::from(emulator.webhook_secret()))?;
    let delivery = verifier.receive(&headers, &body)?;
    let SoundPieceWebhookEvent::Failed(song) = &delivery.event else {
        panic!("expected failed, got {:?}", delivery.event);
    };
    assert!(
        song.error
            .as_ref()
            .and_then(|e| e.message.as_ref())
            .is_some()
    );
    emulator.shutdown().await;
    Ok(())
}

// ------------------------------------------------------------------ MusicGPT

/// `components.schemas.WebhookPayload.example` of the MusicGPT spec, as bytes.
fn page_sample() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../specs/musicgpt.yaml");
    let spec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).expect("spec")).expect("yaml");
    let example = &spec["components"]["schemas"]["WebhookPayload"]["example"];
    let example: Value = serde_json::to_value(example).expect("json");
    serde_json::to_vec(&example).expect("bytes")
}

#[test]
fn page_sample_decodes_with_41_timed_lines() {
    let MusicGptWebhook::Conversion(delivery) = MusicGptWebhook::parse(&page_sample()).unwrap()
    else {
        panic!("a conversion delivery");
    };
    assert_eq!(
        delivery.conversion_id,
        "2104a105-2572-4412-b6fb-f67b0382582a"
    );
    assert_eq!(
        delivery.task_id(),
        Some("dff33bac-6844-4cda-83b8-75078ed916b1")
    );
    assert!(delivery.succeeded());
    assert!(
        delivery
            .audio_url_wav()
            .is_some_and(|url| url.ends_with(".wav"))
    );
    let lines = delivery.timed_lyrics().unwrap();
    assert_eq!(lines.len(), 41);
    assert_eq!(
        (lines[0].text.as_str(), lines[0].start_ms, lines[0].end_ms),
        ("[Verse 1]", 3200, 3200)
    );
    assert!(lines[0].is_section_marker());
    let last = lines.last().unwrap();
    assert_eq!(
        (last.index, last.text.as_str(), last.end_ms),
        (45, "Oh!", 142_720)
    );
    let markers = lines.iter().filter(|line| line.is_section_marker()).count();
    assert_eq!(markers, 6);

    // The delivered lyrics read as sections with the same markers.
    let lyrics = Lyrics::parse(delivery.payload.lyrics.as_deref().unwrap()).unwrap();
    let sections: Vec<String> = lyrics
        .sections()
        .iter()
        .map(|section| section.marker())
        .collect();
    assert_eq!(
        sections,
        [
            "[Verse 1]",
            "[Verse 2]",
            "[Chorus]",
            "[Verse 3]",
            "[Chorus]",
            "[Outro]"
        ]
    );
    assert_eq!(lyrics.sections()[0].kind(), &SectionKind::Verse);
}

#[test]
fn conversion_without_wav_path_decodes() {
    let mut sample: Value = serde_json::from_slice(&page_sample()).unwrap();
    sample
        .as_object_mut()
        .unwrap()
        .remove("conversion_path_wav");
    let parsed = MusicGptWebhook::parse(&serde_json::to_vec(&sample).unwrap()).unwrap();
    let MusicGptWebhook::Conversion(delivery) = parsed else {
        panic!("a conversion delivery");
    };
    assert_eq!(delivery.audio_url_wav(), None);
    assert!(delivery.audio_url().is_some());
}

#[test]
fn lyrics_cover_and_unknown_deliveries_go_to_their_cases() {
    let lyrics = MusicGptWebhook::parse(
        br#"{"success":true,"conversion_type":"Lyrics","task_id":"t1","lyrics":"[Verse 1]\nHi","lyrics_timestamped":"[{\"index\": 0, \"text\": \"[Verse 1]\", \"start\": 0, \"end\": 0}, {\"index\": 1, \"text\": \"Hi\", \"start\": 0, \"end\": 500}]"}"#,
    )
    .unwrap();
    let MusicGptWebhook::Lyrics(lyrics) = lyrics else {
        panic!("lyrics, got {lyrics:?}");
    };
    assert_eq!(lyrics.task_id.as_deref(), Some("t1"));
    assert_eq!(lyrics.timed_lyrics().unwrap()[1].end_ms, 500);

    let cover = MusicGptWebhook::parse(br#"{"success":true,"conversion_type":"Cover","task_id":"t1","image_path":"https://cdn.example/t1.png"}"#).unwrap();
    assert!(
        matches!(&cover, MusicGptWebhook::Cover(c) if c.image_path.as_deref() == Some("https://cdn.example/t1.png")),
        "{cover:?}"
    );
    let cover_without_type =
        MusicGptWebhook::parse(br#"{"task_id":"t1","image_path":"x.png"}"#).unwrap();
    assert!(matches!(cover_without_type, MusicGptWebhook::Cover(_)));

    for unknown in [
        &br#"{"conversion_type":"Extend","task_id":"t1"}"#[..],
        br#"{"conversion_type":"Remix","task_id":"t1"}"#,
        br#"{}"#,
    ] {
        let parsed = MusicGptWebhook::parse(unknown).unwrap();
        assert!(matches!(parsed, MusicGptWebhook::Other(_)), "{parsed:?}");
    }
}

#[test]
fn garbage_deliveries_are_typed_errors() {
    for garbage in [
        &b"not json"[..],
        b"",
        b"[1, 2]",
        b"\xff\xfe",
        br#"{"conversion_id":"c1","conversion_duration":"long"}"#,
    ] {
        let error = MusicGptWebhook::parse(garbage).unwrap_err();
        assert!(
            matches!(error, WebhookError::InvalidPayload { .. }),
            "{error:?}"
        );
    }
}

#[test]
fn malformed_timed_lyrics_are_a_typed_error_but_keep_the_delivery() {
    let parsed = MusicGptWebhook::parse(
        br#"{"conversion_id":"c1","conversion_path":"https://cdn.example/c1.mp3","lyrics_timestamped":"[{\"index\": 0, \"text\": \"x\"}"}"#,
    )
    .unwrap();
    let MusicGptWebhook::Conversion(delivery) = parsed else {
        panic!("a conversion delivery");
    };
    assert_eq!(delivery.audio_url(), Some("https://cdn.example/c1.mp3"));
    let error = delivery.timed_lyrics().unwrap_err();
    assert!(
        matches!(
            error,
            WebhookError::InvalidPayload {
                what: "MusicGPT lyrics_timestamped",
                ..
            }
        ),
        "{error:?}"
    );
}

/// Submits a MusicGPT remix by URL whose webhooks go to `webhook_url`.
async fn submit_musicgpt(emulator: &Emulator, prompt: &str, webhook_url: &str) -> Result<Value> {
    let form = reqwest::multipart::Form::new()
        .text("audio_path", "https://www.youtube.com/watch?v=example123")
        .text("prompt", prompt.to_owned())
        .text("mode", "REMIX")
        .text(
            "lyrics",
            "[Verse 1]\nNeon rain\n\n[Chorus]\nWe remix the night",
        )
        .text("webhook_url", webhook_url.to_owned());
    let answer = http()
        .post(format!("{}/Remix", emulator.base_url(Provider::MusicGpt)))
        .header("authorization", "mgpt_test")
        .multipart(form)
        .send()
        .await?;
    ensure!(answer.status() == 200, "remix: {}", answer.status());
    Ok(answer.json().await?)
}

/// Waits for the next conversion delivery, skipping lyrics and cover ones.
async fn next_conversion(receiver: &mut Receiver) -> Result<songbind::webhook::ConversionDelivery> {
    loop {
        let (_, _, body) = receiver.next().await?;
        if let MusicGptWebhook::Conversion(delivery) = MusicGptWebhook::parse(&body)? {
            return Ok(delivery);
        }
    }
}

#[tokio::test]
async fn emulator_musicgpt_deliveries_sort_into_kinds_and_confirm_agrees() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let mut receiver = Receiver::start(&[]).await?;
    let task = submit_musicgpt(
        &emulator,
        "an upbeat pop remix",
        &format!("{}/musicgpt", receiver.url),
    )
    .await?;
    let client = songbind_musicgpt::Client::with_api_key(
        &emulator.base_url(Provider::MusicGpt),
        "mgpt_test",
    )?;

    let (mut lyrics, mut covers, mut conversions) = (0, 0, Vec::new());
    // Lyrics, two conversions, then the cover (4 deliveries per task).
    for _ in 0..4 {
        let (_, _, body) = receiver.next().await?;
        match MusicGptWebhook::parse(&body)? {
            MusicGptWebhook::Lyrics(delivery) => {
                assert!(!delivery.timed_lyrics()?.is_empty());
                lyrics += 1;
            }
            MusicGptWebhook::Cover(delivery) => {
                assert!(delivery.image_path.is_some());
                covers += 1;
            }
            MusicGptWebhook::Conversion(delivery) => {
                assert_eq!(delivery.task_id(), task["task_id"].as_str());
                let confirmed = confirm(&client, &delivery).await?;
                assert_eq!(
                    confirmed.conversion_id.as_deref(),
                    Some(delivery.conversion_id.as_str())
                );
                assert_eq!(confirmed.status.as_deref(), Some("COMPLETED"));
                conversions.push(delivery);
            }
            MusicGptWebhook::Other(value) => panic!("unexpected delivery {value}"),
        }
    }
    assert_eq!((lyrics, covers, conversions.len()), (1, 1, 2));
    assert!(
        conversions
            .iter()
            .any(|delivery| delivery.audio_url_wav().is_none()),
        "the emulator leaves conversion_path_wav out of one delivery"
    );

    // A forged delivery naming a real conversion but another audio URL.
    let mut forged = conversions[0].clone();
    forged.payload.conversion_path = Some("https://attacker.example/song.mp3".to_owned());
    forged.payload.conversion_path_wav = None;
    let error = confirm(&client, &forged).await.unwrap_err();
    assert!(
        matches!(&error, Error::Webhook(text) if text.to_string().contains("audio_url")),
        "{error:?}"
    );

    // A delivery for a conversion the provider does not know.
    let mut unknown = conversions[0].clone();
    unknown.conversion_id = "00000000-0000-0000-0000-000000000000".to_owned();
    let error = confirm(&client, &unknown).await.unwrap_err();
    assert!(
        matches!(&error, Error::Provider { .. } if error.status() == Some(404)),
        "{error:?}"
    );
    emulator.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn confirm_of_a_failed_delivery_is_job_failed_when_the_provider_agrees() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let mut receiver = Receiver::start(&[]).await?;
    submit_musicgpt(
        &emulator,
        "a remix [fail]",
        &format!("{}/musicgpt", receiver.url),
    )
    .await?;
    let client = songbind_musicgpt::Client::with_api_key(
        &emulator.base_url(Provider::MusicGpt),
        "mgpt_test",
    )?;
    let delivery = next_conversion(&mut receiver).await?;
    assert!(!delivery.succeeded());
    let error = confirm(&client, &delivery).await.unwrap_err();
    assert!(
        matches!(&error, Error::JobFailed { id, .. } if *id == delivery.conversion_id),
        "{error:?}"
    );
    // The task was taken: the failure names it.
    let task = delivery.task_id().expect("the delivery names its task");
    assert_eq!(
        error.resume_with(),
        Some(&songbind::ResumeWith::TaskId(task.to_owned())),
        "{error:?}"
    );
    emulator.shutdown().await;
    Ok(())
}

fn delivery_for(conversion_id: &str) -> songbind::webhook::ConversionDelivery {
    let body = json!({
        "success": true,
        "conversion_type": "Remix",
        "task_id": "t1",
        "conversion_id": conversion_id,
        "conversion_path": "https://cdn.example/c1.mp3?X-Amz-Signature=abc",
    });
    match MusicGptWebhook::parse(body.to_string().as_bytes()).unwrap() {
        MusicGptWebhook::Conversion(delivery) => delivery,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn confirm_agrees_on_a_freshly_signed_url_and_refuses_a_pending_conversion() -> Result<()> {
    let server = MockServer::start_async().await;
    let completed = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/byId")
                .query_param("conversionType", "REMIX")
                .query_param("conversion_id", "c1");
            then.status(200)
                .json_body(json!({"success": true, "conversion": {
                "task_id": "t1", "conversion_id": "c1", "status": "COMPLETED",
                "audio_url": "https://cdn.example/c1.mp3?X-Amz-Signature=fresh"}}));
        })
        .await;
    let pending = server
        .mock_async(|when, then| {
            when.method(GET).path("/byId").query_param("conversion_id", "c2");
            then.status(200).json_body(json!({"success": true, "conversion": {
                "task_id": "t1", "conversion_id": "c2", "status": "PROCESSING", "audio_url": null}}));
        })
        .await;
    let other_task = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/byId")
                .query_param("conversion_id", "c3");
            then.status(200)
                .json_body(json!({"success": true, "conversion": {
                "task_id": "t9", "conversion_id": "c3", "status": "COMPLETED",
                "audio_url": "https://cdn.example/c1.mp3"}}));
        })
        .await;
    let client = songbind_musicgpt::Client::with_api_key(&server.base_url(), "mgpt_test")?;

    let confirmed = confirm(&client, &delivery_for("c1")).await?;
    assert_eq!(
        confirmed.audio_url.as_deref(),
        Some("https://cdn.example/c1.mp3?X-Amz-Signature=fresh")
    );
    let error = confirm(&client, &delivery_for("c2")).await.unwrap_err();
    assert!(
        matches!(&error, Error::Webhook(text) if text.to_string().contains("PROCESSING")),
        "{error:?}"
    );
    let error = confirm(&client, &delivery_for("c3")).await.unwrap_err();
    assert!(
        matches!(&error, Error::Webhook(text) if text.to_string().contains("task t9")),
        "{error:?}"
    );
    completed.assert_async().await;
    pending.assert_async().await;
    other_task.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn confirm_maps_provider_errors_to_their_cases() -> Result<()> {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/byId")
                .query_param("conversion_id", "limited");
            then.status(429)
                .header("retry-after", "7")
                .json_body(json!({"detail": "Rate limit exceeded"}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/byId")
                .query_param("conversion_id", "broken");
            then.status(500)
                .json_body(json!({"success": false, "message": "Internal error"}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/byId")
                .query_param("conversion_id", "garbled");
            then.status(200).body("<html>not json</html>");
        })
        .await;
    let client =
        songbind_musicgpt::Client::with_api_key(&server.base_url(), "mgpt_secret_key_123")?;

    let error = confirm(&client, &delivery_for("limited"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{error:?}"
    );
    let error = confirm(&client, &delivery_for("broken")).await.unwrap_err();
    assert!(
        matches!(&error, Error::Provider { message, .. } if message == "Internal error" && error.status() == Some(500)),
        "{error:?}"
    );
    let error = confirm(&client, &delivery_for("garbled"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Decode { raw, .. } if raw.contains("not json")),
        "{error:?}"
    );
    Ok(())
}

#[tokio::test]
async fn confirm_without_a_server_is_a_transport_error() -> Result<()> {
    // A port that was free a moment ago: nothing listens there now.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    drop(listener);
    let client = songbind_musicgpt::Client::with_api_key(&url, "mgpt_test")?;
    let error = confirm(&client, &delivery_for("c1")).await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    Ok(())
}

/// Receivers written against the provider modules alone
/// (`songbind::<provider>::webhook`): every name a receiver needs is there.
mod through_the_provider_modules {
    use httpmock::prelude::*;
    use serde_json::json;
    use songbind::musicgpt::MusicGpt;
    use songbind::musicgpt::webhook::{Conversion, Webhook, WebhookPayload, confirm};
    use songbind::soundpiece::webhook::{
        DEFAULT_TOLERANCE, Event, RemixSong, Secret, SeenWebhookIds, Verifier, WebhookError,
    };

    /// The operation a ready event reports.
    fn ready(event: &Event) -> Option<&RemixSong> {
        match event {
            Event::Ready(song) => Some(song),
            _ => None,
        }
    }

    #[test]
    fn a_soundpiece_receiver_needs_nothing_else() {
        let verifier = Verifier::new(Secret::from(super::secret())).unwrap();
        assert_eq!(verifier.tolerance(), DEFAULT_TOLERANCE);
        let mut seen = SeenWebhookIds::new(4);
        let delivery = verifier
            .receive_at(
                &super::signed_headers(),
                super::BODY,
                super::at(super::SENT_AT + 1),
            )
            .unwrap();
        assert!(seen.first_time(&delivery.webhook_id));
        assert!(!seen.first_time(&delivery.webhook_id), "a redelivery");
        let song = ready(&delivery.event).expect("a ready event");
        assert_eq!(song.id, "op_k9p34y6n3wd25rq4f5zr37e3p3");
        let refused: WebhookError = verifier
            .verify_at(&super::signed_headers(), b"{}", super::at(super::SENT_AT))
            .unwrap_err();
        assert!(
            matches!(refused, WebhookError::SignatureMismatch { checked: 1 }),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_musicgpt_receiver_needs_nothing_else() {
        let server = MockServer::start_async().await;
        let lookup = server
            .mock_async(|when, then| {
                when.method(GET)
                    .path("/byId")
                    .query_param("conversion_id", "c1");
                then.status(200)
                    .json_body(json!({"success": true, "conversion": {
                    "task_id": "t1", "conversion_id": "c1", "status": "COMPLETED",
                    "audio_url": "https://cdn.example/c1.mp3?X-Amz-Signature=fresh"}}));
            })
            .await;
        let body = json!({
            "success": true,
            "conversion_type": "Remix",
            "task_id": "t1",
            "conversion_id": "c1",
            "conversion_path": "https://cdn.example/c1.mp3?X-Amz-Signature=sent",
        });
        let Webhook::Conversion(delivery) = Webhook::parse(body.to_string().as_bytes()).unwrap()
        else {
            panic!("a conversion delivery");
        };
        let payload: &WebhookPayload = &delivery.payload;
        assert_eq!(payload.task_id.as_deref(), Some("t1"));
        let client = MusicGpt::new(&server.base_url(), &Secret::from("mgpt_test")).unwrap();
        let confirmed: Conversion = confirm(client.generated(), &delivery).await.unwrap();
        assert_eq!(
            confirmed.audio_url.as_deref(),
            Some("https://cdn.example/c1.mp3?X-Amz-Signature=fresh")
        );
        lookup.assert_async().await;
    }
}
