//! With the `schemars` feature, every generated type has a JSON Schema that
//! says what its spec says: the same properties, the same required fields,
//! the same enum values. Every component of every spec is checked, so a
//! component added to a spec without a type fails here.

#![cfg(all(
    feature = "schemars",
    feature = "soundverse",
    feature = "soundpiece",
    feature = "musicgpt",
    feature = "elevenlabs"
))]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use songbind::schemars::{JsonSchema, schema_for};

/// The schema of `T` as JSON.
fn schema<T: JsonSchema>() -> Value {
    schema_for!(T).to_value()
}

/// One spec's `components.schemas`, as JSON.
fn components(provider: &str) -> BTreeMap<String, Value> {
    let path = format!("{}/../../specs/{provider}.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let spec: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_value(spec["components"]["schemas"].clone()).expect("a map of schemas")
}

/// The names of a JSON object's keys, or of a JSON array's strings.
fn names(value: &Value) -> BTreeSet<String> {
    match value {
        Value::Object(map) => map.keys().cloned().collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map_or_else(|| item.to_string(), str::to_owned)
            })
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Asserts that a derived schema agrees with the spec's component: the same
/// properties and required fields for an object, the same values for an enum.
fn assert_agrees(provider: &str, component: &str, spec: &Value, derived: &Value) {
    let at = format!("{provider} {component}");
    if spec.get("properties").is_some() {
        assert_eq!(
            names(&derived["properties"]),
            names(&spec["properties"]),
            "{at}: properties"
        );
        // A required field that may be null is an `Option` in Rust, which
        // schemars lists as optional (the one known difference: the key is
        // still required when decoding).
        let required_nullable: BTreeSet<String> = names(&spec["required"])
            .into_iter()
            .filter(|field| spec["properties"][field]["nullable"] == true)
            .collect();
        let spec_required = &names(&spec["required"]) - &required_nullable;
        let derived_required = &names(&derived["required"]) - &required_nullable;
        assert_eq!(derived_required, spec_required, "{at}: required");
    }
    if spec.get("enum").is_some() {
        assert_eq!(
            names(&derived["enum"]),
            names(&spec["enum"]),
            "{at}: enum values"
        );
    }
    let kind = spec.get("type").and_then(Value::as_str);
    if let Some(kind @ ("string" | "object")) = kind {
        assert_eq!(derived["type"], kind, "{at}: type");
    }
}

/// Checks the listed types against every component of the provider's spec.
macro_rules! check_provider {
    ($provider:literal, $types:path, [$($name:ident),* $(,)?]) => {{
        use $types as types;
        let mut spec = components($provider);
        $(
            let component = spec
                .remove(stringify!($name))
                .unwrap_or_else(|| panic!("{} has no component {}", $provider, stringify!($name)));
            assert_agrees($provider, stringify!($name), &component, &schema::<types::$name>());
        )*
        assert!(spec.is_empty(), "{} components without a checked type: {:?}", $provider, spec.keys());
    }};
}

#[test]
fn every_soundpiece_type_has_the_specs_schema() {
    check_provider!(
        "soundpiece",
        songbind::soundpiece::api::types,
        [
            CreateRemixSongRequest,
            AudioSource,
            RemixSongResponse,
            RemixSong,
            RemixSongOutput,
            RemixSongError,
            RemixSongWebhook,
            ErrorBody,
            ErrorDetail,
            ValidationIssue,
        ]
    );
}

#[test]
fn every_musicgpt_type_has_the_specs_schema() {
    check_provider!(
        "musicgpt",
        songbind::musicgpt::api::types,
        [
            RemixForm,
            RemixMode,
            RemixResponse,
            ConversionByIdResponse,
            Conversion,
            WebhookPayload,
            LyricsTimestampLine,
            ErrorBody,
            ErrorDetail,
            ValidationIssue,
        ]
    );
}

#[test]
fn every_soundverse_type_has_the_specs_schema() {
    check_provider!(
        "soundverse",
        songbind::soundverse::api::types,
        [
            GenerateSongRequest,
            ExtendSongRequest,
            RemixSongRequest,
            StreamChunk,
            SyncSongResponse,
            AudioData,
            Licenses,
            GenerationStatus,
            ErrorBody,
            ErrorDetail,
            ValidationIssue,
        ]
    );
}

#[test]
fn every_elevenlabs_type_has_the_specs_schema() {
    check_provider!(
        "elevenlabs",
        songbind::elevenlabs::api::types,
        [
            ComposeRequest,
            ComposeStreamRequest,
            ComposeDetailedRequest,
            ComposeDetailedStreamRequest,
            CreateCompositionPlanRequest,
            Prompt,
            FinetuneId,
            SongId,
            MusicModelId,
            OutputFormat,
            AnyCompositionPlan,
            MusicPrompt,
            SongSection,
            SectionSource,
            CompositionPlan,
            CompositionChunk,
            GenerationChunk,
            AudioRefChunk,
            TimeRange,
            DetailedMusicResponse,
            SongMetadata,
            WordTimestamp,
            DetailedStreamEvent,
            ErrorBody,
            ErrorDetail,
            ValidationIssue,
            StatusDetail,
            RefusalData,
        ]
    );
}

/// The webhook payload schemas are what a receiver in another language
/// validates against: the spec's example delivery must have every required
/// field, and the schema must define the nested operation it points to.
#[test]
fn webhook_payload_schemas_describe_the_deliveries() {
    let soundpiece = songbind::webhook::soundpiece::payload_schema().to_value();
    assert_eq!(soundpiece["title"], "RemixSongWebhook");
    assert_eq!(
        names(&soundpiece["required"]),
        names(&serde_json::json!(["type", "data"]))
    );
    let defs = names(&soundpiece["$defs"]);
    for nested in ["RemixSongResponse", "RemixSong", "RemixSongOutput"] {
        assert!(defs.contains(nested), "{nested} missing from {defs:?}");
    }
    let example = &components("soundpiece")["RemixSongWebhook"]["example"];
    for field in names(&soundpiece["required"]) {
        assert!(example.get(&field).is_some(), "the example lacks {field}");
    }

    let musicgpt = songbind::webhook::musicgpt::payload_schema().to_value();
    assert_eq!(musicgpt["title"], "WebhookPayload");
    assert!(names(&musicgpt["properties"]).contains("conversion_id"));
}
