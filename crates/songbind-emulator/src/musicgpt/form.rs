//! Reading and validating the multipart body of `POST /Remix`, and the
//! FastAPI-shaped 422 answers.

use axum::Json;
use axum::extract::Multipart;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use songbind_musicgpt::types::{RemixForm, RemixMode};

use super::{BODY_LIMIT, TEXT_LIMIT};
use crate::provider::Provider;
use crate::record::RecordedPart;

/// One FastAPI validation issue: `loc`, `msg`, `type`.
pub(super) struct Issue {
    pub(super) loc: Vec<&'static str>,
    pub(super) msg: String,
    pub(super) kind: &'static str,
}

impl Issue {
    pub(super) fn new(loc: [&'static str; 2], msg: impl Into<String>, kind: &'static str) -> Self {
        Self {
            loc: loc.to_vec(),
            msg: msg.into(),
            kind,
        }
    }

    pub(super) fn missing(loc: [&'static str; 2]) -> Self {
        Self::new(loc, "Field required", "missing")
    }
}

/// A 422 in FastAPI's shape. `Provider::validation_error` writes every
/// issue's type as `value_error`; pydantic v2 distinguishes `missing`,
/// `enum`, ..., so this module writes the list itself.
pub(super) fn unprocessable(issues: &[Issue]) -> Response {
    let detail: Vec<Value> = issues
        .iter()
        .map(|issue| json!({ "loc": issue.loc, "msg": issue.msg, "type": issue.kind }))
        .collect();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "detail": detail })),
    )
        .into_response()
}

/// What reading a multipart body produced.
#[derive(Default)]
pub(super) struct ReadForm {
    pub(super) parts: Vec<RecordedPart>,
    /// Why the body is refused as a whole (too large, malformed), if it is.
    pub(super) refusal: Option<Response>,
    /// The body was too large even to drain: close the connection.
    pub(super) close: bool,
}

/// Reads every part chunk by chunk, counting bytes; keeps text parts (up to
/// [`TEXT_LIMIT`]) and only the length of file parts.
pub(super) async fn read_form(multipart: &mut Multipart) -> ReadForm {
    let mut form = ReadForm::default();
    let mut total = 0usize;
    let malformed = || {
        Provider::MusicGpt.error(
            StatusCode::BAD_REQUEST,
            "There was an error parsing the body",
        )
    };
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => {
                form.refusal.get_or_insert_with(malformed);
                break;
            }
        };
        let name = field.name().unwrap_or("").to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let is_file = file_name.is_some();
        let mut len = 0usize;
        let mut text = Vec::new();
        let mut text_too_large = false;
        let mut broken = false;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    len += chunk.len();
                    total += chunk.len();
                    if total > BODY_LIMIT {
                        form.refusal.get_or_insert_with(|| {
                            Provider::MusicGpt.error(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                &format!(
                                    "Request body too large: the limit is {BODY_LIMIT} bytes ({} MiB)",
                                    BODY_LIMIT / (1024 * 1024)
                                ),
                            )
                        });
                        if total > 2 * BODY_LIMIT {
                            form.close = true;
                            broken = true;
                            break;
                        }
                    } else if !is_file && !text_too_large {
                        if text.len() + chunk.len() > TEXT_LIMIT {
                            text_too_large = true;
                            text = Vec::new();
                            form.refusal.get_or_insert_with(|| {
                                Provider::MusicGpt.error(
                                    StatusCode::PAYLOAD_TOO_LARGE,
                                    &format!(
                                        "Form field `{name}` too large: the limit is {TEXT_LIMIT} bytes"
                                    ),
                                )
                            });
                        } else {
                            text.extend_from_slice(&chunk);
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    form.refusal.get_or_insert_with(malformed);
                    broken = true;
                    break;
                }
            }
        }
        // Text parts that are not UTF-8 are recorded without their value.
        let text = (!is_file && !text_too_large)
            .then(|| String::from_utf8(text).ok())
            .flatten();
        form.parts.push(RecordedPart {
            name,
            file_name,
            content_type,
            len,
            text,
        });
        if broken {
            break;
        }
    }
    form
}

/// Validates the recorded parts and builds the generated form type.
pub(super) fn validate(parts: &[RecordedPart]) -> Result<RemixForm, Vec<Issue>> {
    let last = |name: &str| parts.iter().rev().find(|part| part.name == name);
    let mut issues = Vec::new();
    // A text field: `Ok(None)` when absent, an issue when it is a file or not UTF-8.
    let text = |field: &'static str, issues: &mut Vec<Issue>| -> Option<String> {
        let part = last(field)?;
        if part.file_name.is_some() {
            issues.push(Issue::new(
                ["body", field],
                "Input should be a valid string",
                "string_type",
            ));
            return None;
        }
        match &part.text {
            Some(text) => Some(text.clone()),
            None => {
                issues.push(Issue::new(
                    ["body", field],
                    "Input should be a valid string, unable to parse raw data as a unicode string",
                    "string_unicode",
                ));
                None
            }
        }
    };

    let mut has_file = false;
    let mut file_issue = false;
    if let Some(part) = last("audio_file") {
        if part.file_name.is_none() {
            issues.push(Issue::new(
                ["body", "audio_file"],
                "Value error, Expected UploadFile, received: <class 'str'>",
                "value_error",
            ));
            file_issue = true;
        } else if part.len == 0 {
            issues.push(Issue::new(
                ["body", "audio_file"],
                "Value error, audio_file is empty: upload a non-empty audio file",
                "value_error",
            ));
            file_issue = true;
        } else {
            has_file = true;
        }
    }
    let before = issues.len();
    let audio_path = text("audio_path", &mut issues).filter(|p| !p.is_empty());
    if audio_path.as_deref().is_some_and(|path| !is_http_url(path)) {
        issues.push(Issue::new(
            ["body", "audio_path"],
            "Value error, audio_path must be an absolute http(s) URL",
            "value_error",
        ));
    }
    let path_issue = issues.len() > before;
    if !has_file && !file_issue && !path_issue && audio_path.is_none() {
        issues.push(Issue::new(
            ["body", "audio_file"],
            "Value error, either audio_file or audio_path is required",
            "value_error",
        ));
    }
    let prompt = text("prompt", &mut issues);
    match &prompt {
        None if last("prompt").is_none() => issues.push(Issue::missing(["body", "prompt"])),
        Some(prompt) if prompt.trim().is_empty() => issues.push(Issue::new(
            ["body", "prompt"],
            "String should have at least 1 character",
            "string_too_short",
        )),
        _ => {}
    }
    let lyrics = text("lyrics", &mut issues).filter(|l| !l.is_empty());
    let mode = text("mode", &mut issues);
    match &mode {
        None if last("mode").is_none() => issues.push(Issue::missing(["body", "mode"])),
        Some(mode) if mode.parse::<RemixMode>().is_err() => issues.push(Issue::new(
            ["body", "mode"],
            "Input should be 'REMIX', 'INPAINT' or 'OVER_INSTRUMENTAL'",
            "enum",
        )),
        _ => {}
    }
    let webhook_url = text("webhook_url", &mut issues).unwrap_or_default();
    if !webhook_url.is_empty() && !is_http_url(&webhook_url) {
        issues.push(Issue::new(
            ["body", "webhook_url"],
            "Value error, webhook_url must be empty or an absolute http(s) URL",
            "value_error",
        ));
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let mut fields = serde_json::Map::new();
    let file_name = last("audio_file")
        .and_then(|p| p.file_name.clone())
        .filter(|_| has_file);
    for (key, value) in [
        ("audio_file", file_name),
        ("audio_path", audio_path),
        ("prompt", prompt),
        ("lyrics", lyrics),
        ("mode", mode),
        ("webhook_url", Some(webhook_url)),
    ] {
        if let Some(value) = value {
            fields.insert(key.to_owned(), Value::String(value));
        }
    }
    serde_json::from_value::<RemixForm>(Value::Object(fields)).map_err(|error| {
        vec![Issue {
            loc: vec!["body"],
            msg: format!("Value error, {error}"),
            kind: "value_error",
        }]
    })
}

/// Whether `text` is an absolute http or https URL with a host.
fn is_http_url(text: &str) -> bool {
    reqwest::Url::parse(text).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty())
    })
}
