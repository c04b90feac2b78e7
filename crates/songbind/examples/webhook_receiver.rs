//! Receives SoundPiece and MusicGPT webhooks with axum: SoundPiece callbacks
//! are signature-checked, MusicGPT deliveries (unsigned) are confirmed with
//! `/byId` before they are trusted, and redeliveries are dropped.
//!
//! Runs offline: it starts the local emulator, points both providers'
//! callbacks at itself, submits one job to each with plain reqwest, prints
//! what arrives and exits.
//!
//! ```sh
//! cargo run -p songbind --example webhook_receiver
//! ```
//!
//! Against the real providers, drop the emulator: mount the same two
//! handlers on a public HTTPS URL, give `SoundPieceWebhookVerifier` the
//! `whsec_...` secret from your SoundPiece dashboard and the MusicGPT client
//! your API key.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::json;
use songbind::Secret;
use songbind::webhook::{
    MusicGptWebhook, SeenWebhookIds, SoundPieceWebhookEvent, SoundPieceWebhookVerifier, confirm,
};
use songbind_emulator::{Emulator, Provider};
use tokio::sync::mpsc;

/// What the handlers share.
struct Receiver {
    soundpiece: SoundPieceWebhookVerifier,
    musicgpt: songbind_musicgpt::Client,
    seen: Mutex<SeenWebhookIds>,
    /// One line per accepted delivery, for `main` to print.
    report: mpsc::UnboundedSender<String>,
}

impl Receiver {
    /// `true` the first time `id` arrives.
    fn first_time(&self, id: &str) -> bool {
        self.seen
            .lock()
            .map(|mut seen| seen.first_time(id))
            .unwrap_or(true)
    }
}

/// `POST /hooks/soundpiece`: verify, drop redeliveries, then act.
async fn soundpiece_hook(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let delivery = match receiver.soundpiece.receive(&headers, &body) {
        Ok(delivery) => delivery,
        Err(error) => {
            eprintln!("refused a SoundPiece delivery: {error}");
            return StatusCode::BAD_REQUEST;
        }
    };
    if !receiver.first_time(&delivery.webhook_id) {
        return StatusCode::OK; // A redelivery: already handled.
    }
    let line = match &delivery.event {
        SoundPieceWebhookEvent::Ready(song) => format!(
            "SoundPiece {} ready: {:?}",
            song.id,
            song.outputs
                .iter()
                .flatten()
                .map(|output| output.url.as_str())
                .collect::<Vec<_>>()
        ),
        SoundPieceWebhookEvent::Failed(song) => format!(
            "SoundPiece {} failed: {:?}",
            song.id,
            song.error
                .as_ref()
                .and_then(|error| error.message.as_deref())
        ),
        SoundPieceWebhookEvent::Other { event_type, .. } => {
            format!("SoundPiece event {event_type}")
        }
    };
    let _ = receiver.report.send(line);
    StatusCode::OK
}

/// `POST /hooks/musicgpt`: sort the delivery, answer at once, and confirm
/// conversions with `/byId` in the background before trusting them.
async fn musicgpt_hook(State(receiver): State<Arc<Receiver>>, body: Bytes) -> StatusCode {
    let delivery = match MusicGptWebhook::parse(&body) {
        Ok(delivery) => delivery,
        Err(error) => {
            eprintln!("unreadable MusicGPT delivery: {error}");
            return StatusCode::BAD_REQUEST;
        }
    };
    let line = match delivery {
        MusicGptWebhook::Conversion(conversion) => {
            if !receiver.first_time(&format!("musicgpt:{}", conversion.conversion_id)) {
                return StatusCode::OK;
            }
            let receiver = Arc::clone(&receiver);
            tokio::spawn(async move {
                let line = match confirm(&receiver.musicgpt, &conversion).await {
                    Ok(confirmed) => format!(
                        "MusicGPT conversion {} confirmed: {}",
                        conversion.conversion_id,
                        confirmed.audio_url.as_deref().unwrap_or("?")
                    ),
                    Err(error) => format!(
                        "MusicGPT conversion {} NOT trusted: {error}",
                        conversion.conversion_id
                    ),
                };
                let _ = receiver.report.send(line);
            });
            return StatusCode::OK;
        }
        MusicGptWebhook::Lyrics(lyrics) => match lyrics.timed_lyrics() {
            Ok(lines) => format!(
                "MusicGPT lyrics for task {}: {} timed lines",
                lyrics.task_id.as_deref().unwrap_or("?"),
                lines.len()
            ),
            Err(error) => format!("MusicGPT lyrics with unreadable timings: {error}"),
        },
        MusicGptWebhook::Cover(cover) => format!(
            "MusicGPT cover for task {}: {}",
            cover.task_id.as_deref().unwrap_or("?"),
            cover.image_path.as_deref().unwrap_or("?")
        ),
        MusicGptWebhook::Other(value) => format!("MusicGPT delivery of an unknown kind: {value}"),
    };
    let _ = receiver.report.send(line);
    StatusCode::OK
}

#[tokio::main]
async fn main() -> Result<()> {
    let emulator = Emulator::start_for_tests().await?;
    let (report, mut reports) = mpsc::unbounded_channel();
    let receiver = Arc::new(Receiver {
        soundpiece: SoundPieceWebhookVerifier::new(Secret::from(emulator.webhook_secret()))?,
        musicgpt: songbind_musicgpt::Client::with_api_key(
            &emulator.base_url(Provider::MusicGpt),
            "mgpt_example",
        )?,
        seen: Mutex::new(SeenWebhookIds::default()),
        report,
    });
    let app = Router::new()
        .route("/hooks/soundpiece", post(soundpiece_hook))
        .route("/hooks/musicgpt", post(musicgpt_hook))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hooks = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("receiving webhooks at {hooks}/{{soundpiece,musicgpt}}");

    let http = reqwest::Client::builder().no_proxy().build()?;
    let answer = http
        .put(format!(
            "{}/v1/create.remix_song",
            emulator.base_url(Provider::SoundPiece)
        ))
        .bearer_auth("spk_example")
        .json(&json!({
            "idempotency_key": uuid::Uuid::new_v4(),
            "source": {"url": "https://example.com/source.mp3"},
            "lyrics": "[Verse]\nThis is a demo song, don't get too excited",
            "prompt": "rock song, energetic, male vocal",
            "callback_url": format!("{hooks}/soundpiece"),
        }))
        .send()
        .await?;
    ensure!(
        answer.status().is_success(),
        "SoundPiece submit: {}",
        answer.status()
    );

    let form = reqwest::multipart::Form::new()
        .text("audio_path", "https://www.youtube.com/watch?v=example123")
        .text("prompt", "an upbeat synthwave remix")
        .text("mode", "REMIX")
        .text("webhook_url", format!("{hooks}/musicgpt"));
    let answer = http
        .post(format!("{}/Remix", emulator.base_url(Provider::MusicGpt)))
        .header("authorization", "mgpt_example")
        .multipart(form)
        .send()
        .await?;
    ensure!(
        answer.status().is_success(),
        "MusicGPT submit: {}",
        answer.status()
    );

    // One SoundPiece callback; MusicGPT: lyrics, two conversions, a cover.
    for _ in 0..5 {
        let line = tokio::time::timeout(Duration::from_secs(60), reports.recv())
            .await
            .context("no webhook within 60 s")?
            .context("the receiver stopped")?;
        println!("{line}");
    }
    emulator.shutdown().await;
    Ok(())
}
