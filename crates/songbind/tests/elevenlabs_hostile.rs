//! ElevenLabs composes against a hostile peer on loopback (issue 17): a 200
//! that is not audio, a detailed answer with a bad boundary, an audio part
//! typed as something else, audio that ends cleanly but early, endless part
//! headers. Each is a typed error, the writer receives none of an answer
//! that is not audio, a job leaves no file, and nothing is sent twice.

mod support;

use std::time::Duration;

use futures::StreamExt;
use songbind::elevenlabs::{ComposeRequest, ElevenLabs, OutputFormat};
use songbind::{Error, RetryPolicy, Secret, WaitOptions};
use songbind_emulator::{Emulator, Fault, FaultRule, Provider};
use support::front::{Front, Step, raw};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "xi_live_5b4a3c2d1e0f";

/// A detailed answer's metadata part.
const METADATA: &str = r#"{"composition_plan": {"chunks": []}, "song_metadata": {"title": "t", "genres": [], "languages": []}, "words_timestamps": null}"#;

fn client(url: &str) -> ElevenLabs {
    ElevenLabs::new(url, &Secret::from(KEY))
        .unwrap()
        .retry_policy(RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_retry_after: Duration::from_millis(5),
            ..RetryPolicy::default()
        })
}

fn answer(content_type: &str, body: &str) -> Step {
    Step::Answer(raw(
        "200 OK",
        &[("content-type", content_type), ("song-id", "song_1")],
        body,
    ))
}

/// A detailed answer with `boundary` (as the content type gives it) around
/// a metadata part and an audio part typed `audio_type` holding `audio`.
fn detailed(content_type_boundary: &str, boundary: &str, audio_type: &str, audio: &str) -> Step {
    let body = format!(
        "--{boundary}\r\ncontent-type: application/json\r\n\r\n{METADATA}\r\n--{boundary}\r\n\
         content-type: {audio_type}\r\n\r\n{audio}\r\n--{boundary}--\r\n"
    );
    answer(
        &format!("multipart/mixed; boundary={content_type_boundary}"),
        &body,
    )
}

/// A WAV whose RIFF header declares `data` bytes of samples, cut after
/// `held` bytes (every header byte ASCII, so that it travels as text).
fn wav(data: u32, held: usize) -> String {
    let mut wav = b"RIFF".to_vec();
    wav.extend_from_slice(&(36 + data).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.resize(36, 0);
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data.to_le_bytes());
    wav.resize(held, b'a');
    String::from_utf8(wav).unwrap()
}

#[tokio::test]
async fn a_200_that_is_json_or_html_is_the_provider_s_error_and_nothing_is_written() {
    let json = r#"{"detail": {"status": "quota_exceeded", "message": "You have no credits left"}}"#;
    let html = "<!DOCTYPE html><html><body><h1>Maintenance</h1></body></html>";
    for (content_type, body, says) in [
        ("application/json", json, "You have no credits left"),
        ("text/html", html, "Maintenance"),
        ("audio/mpeg", json, "You have no credits left"),
    ] {
        let front = Front::start("http://127.0.0.1:9", vec![answer(content_type, body)]).await;
        let mut sink = Vec::new();
        let error = client(&front.url)
            .compose_to(&ComposeRequest::from_prompt("pop"), &mut sink, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Provider { .. }), "{error:?}");
        assert_eq!(error.status(), Some(200));
        let text = error.to_string();
        assert!(text.contains("not audio") && text.contains(says), "{text}");
        assert!(
            sink.is_empty(),
            "{content_type}: {} bytes written",
            sink.len()
        );
        assert_eq!(front.count("POST"), 1, "a billed compose is not resent");
    }
}

#[tokio::test]
async fn a_compose_job_leaves_no_file_for_an_answer_that_is_not_a_song() {
    let json = r#"{"detail": "internal error"}"#;
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![
            answer("application/json", json),
            answer("audio/wav", &wav(1028, 100)),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    for says in ["internal error", "declares 1072 bytes"] {
        let path = dir.path().join("song.audio");
        let job = client(&front.url)
            .submit_compose(ComposeRequest::from_prompt("pop"), &path)
            .unwrap();
        let events: Vec<_> = job.events(&WaitOptions::default()).collect().await;
        let error = events
            .into_iter()
            .find_map(Result::err)
            .expect("the job fails");
        assert!(error.to_string().contains(says), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
    assert_eq!(front.count("POST"), 2);
}

#[tokio::test]
async fn a_detailed_answer_with_a_bad_boundary_writes_nothing() {
    // `boundary=""` would make every "\n--" a delimiter; `"a;b"` was read as
    // `a`, cutting the audio at its first "\n--a".
    let audio = "ID3 audio\r\n--a and more audio";
    for (given, used) in [("\"\"", ""), ("\"a;b\"", "a;b"), ("\"a \"", "a ")] {
        let front = Front::start(
            "http://127.0.0.1:9",
            vec![detailed(given, used, "audio/mpeg", audio)],
        )
        .await;
        let mut sink = Vec::new();
        let error = client(&front.url)
            .compose_detailed_to(&ComposeRequest::from_prompt("pop"), &mut sink, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Decode { .. }), "{error:?}");
        assert!(error.to_string().contains("boundary"), "{error}");
        assert!(sink.is_empty(), "{given}");
        assert_eq!(front.count("POST"), 1);
    }
}

#[tokio::test]
async fn a_detailed_audio_part_must_be_whole_audio() {
    for (audio_type, audio, says) in [
        ("audio/json", r#"{"not": "audio"}"#, "typed audio/json"),
        (
            "application/json",
            "ID3 typed as JSON",
            "typed application/json",
        ),
        ("audio/mpeg", "", "held no audio"),
        ("audio/wav", &wav(1028, 100), "declares 1072 bytes"),
    ] {
        let front = Front::start(
            "http://127.0.0.1:9",
            vec![detailed("sb1", "sb1", audio_type, audio)],
        )
        .await;
        let mut sink = Vec::new();
        let error = client(&front.url)
            .compose_detailed_to(&ComposeRequest::from_prompt("pop"), &mut sink, |_| {})
            .await
            .unwrap_err();
        assert!(error.to_string().contains(says), "{audio_type}: {error}");
        if let Error::Provider { .. } = error {
            assert!(sink.is_empty(), "{audio_type}");
        }
    }
}

#[tokio::test]
async fn pcm_that_ends_cleanly_but_early_is_an_error() {
    // The emulator's own fault: the body ends after 3 of its 10 one-second
    // chunks of 16 kHz 16-bit PCM (96 000 of 320 000 bytes).
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(
        FaultRule::new(Fault::EndStream { after_events: 3 }).provider(Provider::ElevenLabs),
    );
    let request = ComposeRequest::from_prompt("pop")
        .music_length_ms(10_000)
        .output_format(OutputFormat::Pcm16000);
    let client = client(&emulator.base_url(Provider::ElevenLabs));
    let error = client
        .compose_to(&request, &mut Vec::new(), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("ended early") && text.contains("96000") && text.contains("320000"),
        "{text}"
    );
    assert_eq!(emulator.jobs_created(Provider::ElevenLabs), 1, "sent once");
    // Without the fault the same request passes: the check is not too strict.
    let mut sink = Vec::new();
    let composed = client
        .compose_to(&request, &mut sink, |_| {})
        .await
        .unwrap();
    assert_eq!((composed.bytes, sink.len()), (320_000, 320_000));
    assert_eq!(composed.content_type.as_deref(), Some("audio/pcm"));
}

#[tokio::test]
async fn endless_part_headers_are_cut_off() {
    // A server that sends the metadata part, then header lines for ever.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let sent_tx = sent_tx.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: multipart/mixed; boundary=sb1\r\n\
                     connection: close\r\n\r\n--sb1\r\ncontent-type: application/json\r\n\r\n\
                     {METADATA}\r\n--sb1\r\n"
                );
                let mut sent = 0usize;
                if socket.write_all(head.as_bytes()).await.is_ok() {
                    let lines = "a:b\r\n".repeat(1000);
                    while socket.write_all(lines.as_bytes()).await.is_ok() {
                        sent += lines.len();
                    }
                }
                let _ = sent_tx.send(sent);
            });
        }
    });
    let mut sink = Vec::new();
    let request = ComposeRequest::from_prompt("pop");
    let client = client(&url);
    let compose = client.compose_detailed_to(&request, &mut sink, |_| {});
    // A guard, not a pause: without a cap the reader never returns.
    let error = tokio::time::timeout(Duration::from_secs(30), compose)
        .await
        .expect("the endless headers were read for 30 s")
        .unwrap_err();
    assert!(error.to_string().contains("64 header lines"), "{error}");
    assert!(sink.is_empty());
    // The server stops once the client has gone: it sent little (what
    // loopback's socket buffers hold included, several MiB under load).
    let sent = sent_rx.recv().await.unwrap();
    assert!(sent < 32 * 1024 * 1024, "{sent} bytes of headers were read");
}
