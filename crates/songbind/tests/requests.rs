//! Requests are edited by value (issue 18, item 7): every field has a
//! setter, the required ones too, so a request made once can be changed
//! and sent again without rebuilding it field by field.

use songbind::elevenlabs::{AnyCompositionPlan, ComposeRequest, MusicModelId};
use songbind::musicgpt::{AudioInput, RemixMode};
use songbind::{soundpiece, soundverse};

#[test]
fn a_soundpiece_remix_is_edited_by_value_required_fields_included() {
    let key = soundpiece::Uuid::new_v4();
    let first = soundpiece::RemixRequest::new("https://example.com/a.mp3", "la la", "rock")
        .idempotency_key(key)
        .variations(2);
    let edited = first
        .clone()
        .source_url("https://example.com/b.mp3")
        .lyrics("[Verse]\nnew words")
        .prompt("jazz, brushed drums");
    assert_eq!(
        edited,
        soundpiece::RemixRequest::new(
            "https://example.com/b.mp3",
            "[Verse]\nnew words",
            "jazz, brushed drums"
        )
        .idempotency_key(key)
        .variations(2)
    );
    assert_ne!(edited, first);
    edited.validate().unwrap();
    // A setter's value is checked like `new`'s.
    assert!(edited.prompt(" ").validate().is_err());
}

#[test]
fn soundverse_requests_are_edited_by_value_required_fields_included() {
    let generate = soundverse::GenerateRequest::new("a pop song")
        .lyrics("la")
        .prompt("a sea shanty");
    assert_eq!(
        generate,
        soundverse::GenerateRequest::new("a sea shanty").lyrics("la")
    );

    let extend = soundverse::ExtendRequest::new("https://example.com/a.mp3", "la", 10_000)
        .prompt("slower")
        .audio_url("https://example.com/b.mp3")
        .lyrics("[Chorus]\nagain")
        .extend_at_ms(42_000);
    assert_eq!(
        extend,
        soundverse::ExtendRequest::new("https://example.com/b.mp3", "[Chorus]\nagain", 42_000)
            .prompt("slower")
    );
    extend.validate().unwrap();
    assert!(extend.extend_at_ms(-1).validate().is_err());

    let remix = soundverse::RemixRequest::new("https://example.com/a.mp3")
        .prompt("make it jazz")
        .song_reference_url("https://example.com/b.mp3");
    assert_eq!(
        remix,
        soundverse::RemixRequest::new("https://example.com/b.mp3").prompt("make it jazz")
    );
    assert!(remix.song_reference_url("not a url").validate().is_err());
}

#[test]
fn a_musicgpt_remix_is_edited_by_value_required_fields_included() {
    let first = songbind::musicgpt::RemixRequest::new(
        AudioInput::Url("https://example.com/a.mp3".into()),
        "upbeat pop",
    )
    .mode(RemixMode::Inpaint);
    let edited = first
        .clone()
        .audio(AudioInput::Url("https://example.com/b.mp3".into()))
        .prompt("slow ballad");
    assert_eq!(
        edited,
        songbind::musicgpt::RemixRequest::new(
            AudioInput::Url("https://example.com/b.mp3".into()),
            "slow ballad",
        )
        .mode(RemixMode::Inpaint)
    );
    edited.validate().unwrap();
    assert!(edited.prompt("").validate().is_err());
}

#[test]
fn an_elevenlabs_compose_switches_between_prompt_and_plan_by_value() {
    let plan: AnyCompositionPlan = serde_json::from_value(serde_json::json!({
        "chunks": [{"text": "[Verse] city lights", "duration_ms": 12000,
                    "positive_styles": ["synthwave"], "negative_styles": []}]
    }))
    .unwrap();
    let from_prompt = ComposeRequest::from_prompt("calm piano").plan(plan.clone());
    assert_eq!(from_prompt, ComposeRequest::from_plan(plan.clone()));
    assert_eq!(from_prompt.model_id, MusicModelId::MusicV2);
    from_prompt.validate().unwrap();

    let back = ComposeRequest::from_plan(plan).prompt("calm piano");
    assert_eq!(back.plan, None);
    assert_eq!(back.prompt.as_deref(), Some("calm piano"));
    back.validate().unwrap();
}
