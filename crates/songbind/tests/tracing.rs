//! Tracing: one `songbind.call` span per logical call with its provider,
//! operation, attempt, HTTP status, elapsed time and request id; an event
//! per retry and per job stage; never the key. Captured with a
//! `tracing-subscriber` layer that writes down every field it sees.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use songbind::soundpiece::{RemixRequest, SoundPiece};
use songbind::{RetryPolicy, Secret, WaitOptions};
use support::front::{Front, Step, raw};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const KEY: &str = "spk_live_7e6d5c4b3a29";

/// Every span (with its fields as finally recorded) and event, as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Fields(format!("span {}", attrs.metadata().name()));
        attrs.record(&mut fields);
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        let span = ctx.span(id).unwrap();
        let mut extensions = span.extensions_mut();
        values.record(extensions.get_mut::<Fields>().unwrap());
    }

    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let text = span.extensions().get::<Fields>().unwrap().0.clone();
        self.0.lock().unwrap().push(text);
    }

    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields("event".to_owned());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
}

#[tokio::test]
async fn calls_retries_and_stages_are_traced_without_the_key() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    let song = |status: &str| {
        format!(
            r#"{{"remix_song": {{"id": "op_abc", "status": "{status}", "outputs": {}, "error": null}}}}"#,
            if status == "ready" {
                r#"[{"url": "https://cdn.example/1.flac"}]"#
            } else {
                "null"
            }
        )
    };
    let front = Front::start(
        "http://127.0.0.1:9",
        vec![
            Step::Answer(raw(
                "429 Too Many Requests",
                &[("content-type", "application/json"), ("retry-after", "0")],
                r#"{"detail": "slow down"}"#,
            )),
            Step::Answer(raw(
                "200 OK",
                &[
                    ("content-type", "application/json"),
                    ("x-request-id", "req_42"),
                ],
                &song("processing"),
            )),
            Step::Answer(raw(
                "200 OK",
                &[("content-type", "application/json")],
                &song("ready"),
            )),
        ],
    )
    .await;
    let client = SoundPiece::new(&format!("{}/soundpiece", front.url), &Secret::from(KEY))
        .unwrap()
        .retry_policy(RetryPolicy {
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        });
    let request = RemixRequest::new("https://example.com/a.mp3", "la", "rock");
    let job = client.submit_remix(&request).await.unwrap();
    job.wait(&WaitOptions::default().poll_interval(Duration::from_millis(1)))
        .await
        .unwrap();

    let lines = capture.0.lock().unwrap().clone();
    let all = lines.join("\n");
    let create = lines
        .iter()
        .find(|l| {
            l.starts_with("span songbind.call") && l.contains("operation=\"create_remix_song\"")
        })
        .unwrap_or_else(|| panic!("{all}"));
    for field in [
        "provider=SoundPiece",
        "attempt=1",
        "http.status=200",
        "request_id=\"req_42\"",
        "elapsed_ms=",
    ] {
        assert!(create.contains(field), "{field} in {create}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("event") && l.contains("retrying") && l.contains("status=429")),
        "{all}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("operation=\"get_remix_song\"") && l.contains("http.status=200")),
        "{all}"
    );
    for stage in ["stage=processing", "stage=completed"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("event") && l.contains(stage)),
            "{stage}: {all}"
        );
    }
    assert!(!all.contains(KEY), "the key was traced: {all}");
}
