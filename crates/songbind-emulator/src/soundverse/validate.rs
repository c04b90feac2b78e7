//! Request validation: the body must deserialize into the generated request
//! type, and meet every documented rule the type does not enforce. A refusal
//! is the `detail` of a 422, naming the field and the limit.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use songbind_soundverse::limits::{EXTEND_SONG_REQUEST_EXTEND_AT, REMIX_SONG_REQUEST_PROMPT};
use songbind_soundverse::types::{ExtendSongRequest, GenerateSongRequest, RemixSongRequest};

use super::Operation;

/// The Generate and Extend pages' "Invalid Prompt" error, word for word.
pub(super) const INVALID_PROMPT: &str = "Invalid or empty prompt provided";

/// What a valid request asks for.
#[derive(Debug)]
pub(super) struct Accepted {
    pub(super) prompt: Option<String>,
    pub(super) lyrics: Option<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Url,
    Integer,
    Object,
}

struct Field {
    name: &'static str,
    kind: Kind,
    required: bool,
}

const fn field(name: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        name,
        kind,
        required,
    }
}

const GENERATE_FIELDS: &[Field] = &[
    field("prompt", Kind::Text, true),
    field("lyrics", Kind::Text, false),
    field("reference_url", Kind::Url, false),
    field("instrumental_url", Kind::Url, false),
    field("vocal_url", Kind::Url, false),
    field("melody_url", Kind::Url, false),
];

const EXTEND_FIELDS: &[Field] = &[
    field("audio_url", Kind::Url, true),
    field("lyrics", Kind::Text, true),
    field("prompt", Kind::Text, false),
    field("extend_at", Kind::Integer, true),
];

const REMIX_FIELDS: &[Field] = &[
    field("song_reference_url", Kind::Url, true),
    field("prompt", Kind::Text, false),
    field("lyrics", Kind::Text, false),
    field("parameters", Kind::Object, false),
];

/// Checks a request body for `operation`; `Err` is the 422's `detail`.
pub(super) fn validate(operation: Operation, body: &[u8]) -> Result<Accepted, String> {
    let mut object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err("Request body must be a JSON object".to_owned()),
        Err(error) => return Err(format!("Request body is not valid JSON: {error}")),
    };
    // An explicit null is the same as an absent field.
    object.retain(|_, value| !value.is_null());

    let fields = match operation {
        Operation::Generate => GENERATE_FIELDS,
        Operation::Extend => EXTEND_FIELDS,
        Operation::Remix => REMIX_FIELDS,
    };
    // The page's own error for a missing generate prompt comes first.
    if operation == Operation::Generate && !object.contains_key("prompt") {
        return Err(INVALID_PROMPT.to_owned());
    }
    for field in fields {
        check_field(field, object.get(field.name))?;
    }
    let text = |name: &str| object.get(name).and_then(Value::as_str);
    if text("prompt").is_some_and(is_blank) {
        return Err(INVALID_PROMPT.to_owned());
    }
    match operation {
        Operation::Generate => {}
        Operation::Extend => {
            if text("lyrics").is_some_and(is_blank) {
                return Err("Invalid or empty lyrics provided".to_owned());
            }
            // check_field made sure it is a number; only the range is left.
            // The range is the spec's (`limits`).
            let extend_at = object.get("extend_at").and_then(Value::as_i64);
            let limit = EXTEND_SONG_REQUEST_EXTEND_AT;
            if extend_at.is_none_or(|ms| limit.check_number(ms).is_err()) {
                return Err(format!(
                    "extend_at must be {} (ms), got {}",
                    limit.describe(),
                    object["extend_at"]
                ));
            }
        }
        Operation::Remix => {
            if let Some(Err(reason)) =
                text("prompt").map(|p| REMIX_SONG_REQUEST_PROMPT.check_text(p))
            {
                return Err(format!("prompt {reason}"));
            }
            if text("prompt").is_none() && text("lyrics").is_none_or(is_blank) {
                return Err("At least one of prompt or lyrics is required".to_owned());
            }
        }
    }
    let accepted = match operation {
        Operation::Generate => {
            let request: GenerateSongRequest = typed(object)?;
            Accepted {
                prompt: Some(request.prompt),
                lyrics: request.lyrics.filter(|l| !is_blank(l)),
            }
        }
        Operation::Extend => {
            let request: ExtendSongRequest = typed(object)?;
            Accepted {
                prompt: request.prompt,
                lyrics: Some(request.lyrics),
            }
        }
        Operation::Remix => {
            let request: RemixSongRequest = typed(object)?;
            Accepted {
                prompt: request.prompt.map(String::from),
                lyrics: request.lyrics.filter(|l| !is_blank(l)),
            }
        }
    };
    Ok(accepted)
}

/// The field's JSON type, required-ness and URL-ness.
fn check_field(field: &Field, value: Option<&Value>) -> Result<(), String> {
    let name = field.name;
    let Some(value) = value else {
        return if field.required {
            Err(format!("{name} is required"))
        } else {
            Ok(())
        };
    };
    match field.kind {
        Kind::Text if !value.is_string() => Err(format!("{name} must be a string")),
        Kind::Url => match value.as_str() {
            Some(url) if is_http_url(url) => Ok(()),
            _ => Err(format!("{name} must be an absolute http(s) URL")),
        },
        Kind::Integer if !value.is_number() || value.is_f64() => {
            Err(format!("{name} must be an integer"))
        }
        Kind::Object if !value.is_object() => Err(format!("{name} must be an object")),
        _ => Ok(()),
    }
}

fn is_http_url(text: &str) -> bool {
    reqwest::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// Deserializes into the generated type (the checks above make this succeed
/// for every body they let through; a failure is still a 422).
fn typed<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, String> {
    serde_json::from_value(Value::Object(object))
        .map_err(|error| format!("Invalid request body: {error}"))
}
