//! ElevenLabs Music over loopback, against a scripted front that counts the
//! requests: audio streamed to a writer with its song-id, the multipart
//! detailed answer split into typed metadata and audio, plans, refusals that
//! carry a suggestion, and creates that are never sent twice.

mod support;

use std::time::Duration;

use futures::StreamExt;
use songbind::elevenlabs::{AnyCompositionPlan, ComposeRequest, ElevenLabs, MusicModelId};
use songbind::{Error, JobEvent, RetryPolicy, Secret, Suggestion, WaitOptions};
use support::front::{Front, Step, raw};

const KEY: &str = "xi_live_5b4a3c2d1e0f";

fn client(front: &Front) -> ElevenLabs {
    ElevenLabs::new(&front.url, &Secret::from(KEY))
        .unwrap()
        .retry_policy(RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_retry_after: Duration::from_millis(5),
            ..RetryPolicy::default()
        })
}

fn audio_answer(audio: &str) -> Step {
    Step::Answer(raw(
        "200 OK",
        &[("content-type", "audio/mpeg"), ("song-id", "song_123")],
        audio,
    ))
}

#[tokio::test]
async fn compose_streams_the_audio_and_returns_the_song_id() {
    // At least half of 10 s at the 128 kb/s of `auto` (music_v1).
    let audio = format!("ID3{}", "x".repeat(80_000));
    let front = Front::start("http://127.0.0.1:9", vec![audio_answer(&audio)]).await;
    let mut sink = Vec::new();
    let mut seen = 0;
    let request = ComposeRequest::from_prompt("calm piano").music_length_ms(10_000);
    let composed = client(&front)
        .compose_to(&request, &mut sink, |n| seen = n)
        .await
        .unwrap();
    assert_eq!(sink, audio.as_bytes());
    assert_eq!(
        (composed.bytes, seen),
        (audio.len() as u64, audio.len() as u64)
    );
    assert_eq!(composed.song_id.as_deref(), Some("song_123"));
    let sent = &front.received()[0];
    assert_eq!(sent.header("xi-api-key"), Some(KEY));
    assert!(
        sent.path.starts_with("/v1/music?output_format=auto"),
        "{}",
        sent.path
    );
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["prompt"], "calm piano");
    assert_eq!(body["model_id"], "music_v1");
    assert_eq!(body["music_length_ms"], 10_000);
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_sent() {
    let front = Front::start("http://127.0.0.1:9", Vec::new()).await;
    let plan: AnyCompositionPlan = serde_json::from_value(serde_json::json!({
        "positive_global_styles": ["pop"], "negative_global_styles": [],
        "sections": [{"section_name": "Verse", "positive_local_styles": [], "negative_local_styles": [],
                      "duration_ms": 10000, "lines": ["la"]}]
    }))
    .unwrap();
    for (request, field) in [
        (ComposeRequest::from_prompt("x".repeat(4101)), "prompt"),
        (
            ComposeRequest::from_prompt("pop").music_length_ms(2999),
            "music_length_ms",
        ),
        (ComposeRequest::from_prompt("pop").seed(1), "seed"),
        (
            ComposeRequest::from_plan(plan.clone()).model(MusicModelId::MusicV2),
            "composition_plan",
        ),
    ] {
        let error = client(&front)
            .compose_to(&request, &mut Vec::new(), |_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Validation { field: f, .. } if f == field),
            "{field}: {error:?}"
        );
    }
    let mut both = ComposeRequest::from_plan(plan);
    both.prompt = Some("pop".into());
    assert!(both.validate().is_err());
    assert_eq!(front.received().len(), 0);
}

#[tokio::test]
async fn a_refusal_carries_the_suggestion_and_a_retry_takes_it_in_one_line() {
    let refusal = r#"{"detail": {"status": "bad_prompt", "message": "The prompt names an artist.", "data": {"prompt_suggestion": "an upbeat pop song with bright synths"}}}"#;
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![
            Step::Answer(raw(
                "400 Bad Request",
                &[("content-type", "application/json")],
                refusal,
            )),
            audio_answer("ID3"),
        ],
    )
    .await;
    let client = client(&front);
    let request = ComposeRequest::from_prompt("a song like Taylor Swift");
    let error = client
        .compose_to(&request, &mut Vec::new(), |_| {})
        .await
        .unwrap_err();
    let Error::ContentRejected {
        suggestion: Some(suggestion),
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(
        suggestion,
        &Suggestion::Prompt("an upbeat pop song with bright synths".into())
    );
    assert!(error.to_string().contains("suggested prompt"), "{error}");
    assert_eq!(front.count("POST"), 1, "a refusal is not retried");
    // One line: the same request with the suggestion.
    let retried = client
        .compose_to(
            &request.retry_with(suggestion).unwrap(),
            &mut Vec::new(),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(retried.song_id.as_deref(), Some("song_123"));
    let body: serde_json::Value = serde_json::from_slice(&front.received()[1].body).unwrap();
    assert_eq!(body["prompt"], "an upbeat pop song with bright synths");
}

#[tokio::test]
async fn a_compose_is_resent_only_when_not_taken() {
    let busy = r#"{"detail": {"status": "too_many_concurrent_requests", "message": "busy"}}"#;
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![
            Step::Answer(raw(
                "429 Too Many Requests",
                &[("content-type", "application/json")],
                busy,
            )),
            audio_answer("ID3"),
        ],
    )
    .await;
    let request = ComposeRequest::from_prompt("pop");
    client(&front)
        .compose_to(&request, &mut Vec::new(), |_| {})
        .await
        .unwrap();
    assert_eq!(front.count("POST"), 2);

    let front = Front::start(
        "http://127.0.0.1:9",
        vec![Step::Answer(raw(
            "502 Bad Gateway",
            &[("content-type", "text/html")],
            "<html>bad</html>",
        ))],
    )
    .await;
    let error = client(&front)
        .compose_to(&request, &mut Vec::new(), |_| {})
        .await
        .unwrap_err();
    assert_eq!((error.status(), front.count("POST")), (Some(502), 1));
}

#[tokio::test]
async fn a_detailed_answer_gives_typed_metadata_and_the_audio() {
    let metadata = serde_json::json!({
        "composition_plan": {"chunks": [{"text": "[Verse] la", "duration_ms": 10000, "positive_styles": ["pop"]}]},
        "song_metadata": {"title": "Bright", "genres": ["pop"], "languages": ["en"]},
        "words_timestamps": [{"word": "la", "start_ms": 0.0, "end_ms": 250.0}]
    });
    let audio = "ID3\u{1}\u{2} audio bytes\r\n--not the boundary";
    let body = format!(
        "--sb1\r\ncontent-type: application/json\r\n\r\n{metadata}\r\n--sb1\r\ncontent-type: audio/mpeg\r\n\
         content-disposition: attachment; filename=\"song.mp3\"\r\n\r\n{audio}\r\n--sb1--\r\n"
    );
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![Step::Answer(raw(
            "200 OK",
            &[
                ("content-type", "multipart/mixed; boundary=sb1"),
                ("song-id", "song_9"),
            ],
            &body,
        ))],
    )
    .await;
    let mut sink = Vec::new();
    let request = ComposeRequest::from_prompt("pop").with_timestamps(true);
    let detailed = client(&front)
        .compose_detailed_to(&request, &mut sink, |_| {})
        .await
        .unwrap();
    assert_eq!(sink, audio.as_bytes());
    assert_eq!(detailed.audio.song_id.as_deref(), Some("song_9"));
    assert_eq!(detailed.audio.content_type.as_deref(), Some("audio/mpeg"));
    assert_eq!(
        detailed.metadata.song_metadata.title.as_deref(),
        Some("Bright")
    );
    assert_eq!(detailed.metadata.words_timestamps.unwrap().len(), 1);
    let sent: serde_json::Value = serde_json::from_slice(&front.received()[0].body).unwrap();
    assert_eq!(sent["with_timestamps"], true);
    assert!(front.received()[0].path.starts_with("/v1/music/detailed"));
}

#[tokio::test]
async fn a_plan_comes_back_typed_in_the_model_s_format() {
    let plan =
        r#"{"chunks": [{"text": "[Intro]", "duration_ms": 8000, "positive_styles": ["ambient"]}]}"#;
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![Step::Answer(raw(
            "200 OK",
            &[("content-type", "application/json")],
            plan,
        ))],
    )
    .await;
    let plan = client(&front)
        .plan("ambient intro", MusicModelId::MusicV2, Some(8000))
        .await
        .unwrap();
    assert!(matches!(plan, AnyCompositionPlan::CompositionPlan(_)));
    // The plan goes straight back into a request, with the model it needs.
    let request = ComposeRequest::from_plan(plan);
    assert_eq!(request.model_id, MusicModelId::MusicV2);
    request.validate().unwrap();
}

#[tokio::test]
async fn a_compose_job_reports_composing_then_streaming_then_the_file() {
    let front = Front::start("http://127.0.0.1:9", vec![audio_answer("ID3 tagged mp3")]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("song.mp3");
    let job = client(&front)
        .submit_compose(ComposeRequest::from_prompt("pop"), &path)
        .unwrap();
    let events: Vec<JobEvent> = job
        .events(&WaitOptions::default())
        .map(|e| e.unwrap())
        .collect()
        .await;
    let stages: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            JobEvent::Stage { stage, .. } => Some(stage.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(stages, ["composing", "streaming audio"]);
    let Some(JobEvent::Completed(done)) = events.last() else {
        panic!("{events:?}");
    };
    assert_eq!(done.id, "song_123");
    assert!(done.outputs[0].url.starts_with("file://"));
    assert_eq!(std::fs::read(&path).unwrap(), b"ID3 tagged mp3");
}

#[tokio::test]
async fn an_echoed_key_is_scrubbed() {
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![Step::Echo {
            status: 400,
            content_type: "application/json",
            body: r#"{"detail": "bad key {auth}"}"#,
        }],
    )
    .await;
    let error = client(&front)
        .compose_to(&ComposeRequest::from_prompt("pop"), &mut Vec::new(), |_| {})
        .await
        .unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(!text.contains(KEY) && text.contains("***"), "{text}");
}

#[tokio::test]
async fn an_audio_answer_that_ends_early_is_an_error_not_a_short_song() {
    // A WAV whose RIFF header declares 44 + 1000 bytes, cut after 100.
    let mut wav = b"RIFF".to_vec();
    wav.extend_from_slice(&(36u32 + 1000).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.resize(100, 0);
    let cut = String::from_utf8_lossy(&wav).into_owned();
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![
            Step::Answer(raw("200 OK", &[("content-type", "audio/wav")], &cut)),
            Step::Answer(raw("200 OK", &[("content-type", "audio/wav")], "")),
        ],
    )
    .await;
    let request = ComposeRequest::from_prompt("pop");
    for _ in 0..2 {
        let error = client(&front)
            .compose_to(&request, &mut Vec::new(), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    }
    assert_eq!(front.count("POST"), 2, "an early end is never resent");
}
