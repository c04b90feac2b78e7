//! Validation of SoundPiece requests: the create body (against the generated
//! `CreateRemixSongRequest` plus the documented limits it does not enforce)
//! and the poll query, as FastAPI-style 422 issues.

use std::net::IpAddr;

use serde_json::{Value, json};
use songbind_soundpiece::limits::{
    CREATE_REMIX_SONG_REQUEST_CALLBACK_URL as CALLBACK_URL,
    CREATE_REMIX_SONG_REQUEST_LYRICS as LYRICS,
    CREATE_REMIX_SONG_REQUEST_N_VARIATIONS as N_VARIATIONS,
    CREATE_REMIX_SONG_REQUEST_PROMPT as PROMPT,
};
use songbind_soundpiece::types::CreateRemixSongRequest;
use songbind_transport::Limit;
use uuid::Uuid;

/// One 422 issue: its `loc` and `msg`.
pub(super) type Issue = (Vec<Value>, String);

/// Reads and validates a create body; every problem found is one issue.
pub(super) fn parse_request(bytes: &[u8]) -> Result<CreateRemixSongRequest, Vec<Issue>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|error| {
        let offset = offset_of(bytes, error.line(), error.column());
        vec![(
            vec![json!("body"), json!(offset)],
            format!("JSON decode error: {error}"),
        )]
    })?;
    let Some(body) = value.as_object() else {
        return Err(vec![issue(&["body"], "Input should be a valid dictionary")]);
    };
    let mut issues = Vec::new();

    match body.get("idempotency_key") {
        None => issues.push(issue(&["body", "idempotency_key"], "Field required")),
        Some(key) => {
            if serde_json::from_value::<Uuid>(key.clone()).is_err() {
                issues.push(issue(
                    &["body", "idempotency_key"],
                    "Input should be a valid UUID",
                ));
            }
        }
    }

    match body.get("source") {
        None => issues.push(issue(&["body", "source"], "Field required")),
        Some(Value::Object(source)) => match source.get("url") {
            None => issues.push(issue(&["body", "source", "url"], "Field required")),
            Some(Value::String(url)) => {
                if let Err(msg) = check_url(url, false) {
                    issues.push(issue(&["body", "source", "url"], &msg));
                }
            }
            Some(_) => issues.push(issue(
                &["body", "source", "url"],
                "Input should be a valid string",
            )),
        },
        Some(_) => issues.push(issue(
            &["body", "source"],
            "Input should be a valid dictionary",
        )),
    }

    check_string(body.get("lyrics"), &LYRICS, &mut issues);
    check_string(body.get("prompt"), &PROMPT, &mut issues);

    match body.get("callback_url") {
        None | Some(Value::Null) => {}
        Some(value) => {
            let before = issues.len();
            check_string(Some(value), &CALLBACK_URL, &mut issues);
            if issues.len() == before
                && let Some(Err(msg)) = value.as_str().map(|url| check_url(url, true))
            {
                issues.push(issue(&["body", "callback_url"], &msg));
            }
        }
    }

    match body.get("n_variations") {
        None => {}
        Some(value) => {
            let loc = ["body", "n_variations"];
            let (min, max) = (N_VARIATIONS.min(), N_VARIATIONS.max());
            match value.as_i64() {
                Some(n) if min.is_some_and(|min| n < min) => issues.push(issue(
                    &loc,
                    &format!(
                        "Input should be greater than or equal to {}",
                        min.unwrap_or_default()
                    ),
                )),
                Some(n) if max.is_some_and(|max| n > max) => issues.push(issue(
                    &loc,
                    &format!(
                        "Input should be less than or equal to {}",
                        max.unwrap_or_default()
                    ),
                )),
                Some(_) => {}
                None if value.as_u64().is_some() => issues.push(issue(
                    &loc,
                    &format!(
                        "Input should be less than or equal to {}",
                        max.unwrap_or_default()
                    ),
                )),
                None => issues.push(issue(&loc, "Input should be a valid integer")),
            }
        }
    }

    if !issues.is_empty() {
        return Err(issues);
    }
    // The generated type is the final judge of the shape.
    serde_json::from_value::<CreateRemixSongRequest>(value)
        .map_err(|error| vec![issue(&["body"], &error.to_string())])
}

/// Checks a string field's presence, type and length (in characters)
/// against the spec's `limit`.
fn check_string(value: Option<&Value>, limit: &Limit, issues: &mut Vec<Issue>) {
    let loc = ["body", limit.field];
    match value {
        None => issues.push(issue(&loc, "Field required")),
        Some(Value::String(text)) => {
            let len = text.chars().count() as i64;
            if let Some(min) = limit.min().filter(|min| len < *min) {
                issues.push(issue(
                    &loc,
                    &format!("String should have at least {min} character"),
                ));
            } else if let Some(max) = limit.max().filter(|max| len > *max) {
                issues.push(issue(
                    &loc,
                    &format!("String should have at most {max} characters"),
                ));
            }
        }
        Some(_) => issues.push(issue(&loc, "Input should be a valid string")),
    }
}

/// An absolute http(s) URL with a host; when `callback` is set, https only,
/// except plain http to a loopback host.
fn check_url(text: &str, callback: bool) -> Result<(), String> {
    let url = reqwest::Url::parse(text)
        .map_err(|error| format!("Input should be a valid URL, {error}"))?;
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| "Input should be a valid URL, empty host".to_owned())?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if !callback => Ok(()),
        "http" if is_loopback(host) => Ok(()),
        "http" => Err(
            "URL scheme should be 'https' (plain http is accepted only for loopback hosts)"
                .to_owned(),
        ),
        _ if callback => Err("URL scheme should be 'https'".to_owned()),
        _ => Err("URL scheme should be 'http' or 'https'".to_owned()),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The byte offset of a serde_json error position (1-based line and column).
fn offset_of(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = bytes
        .split(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

/// An issue at `loc` (path parts as strings).
pub(super) fn issue(loc: &[&str], msg: &str) -> Issue {
    (loc.iter().map(|part| json!(part)).collect(), msg.to_owned())
}

/// A query boolean in any of pydantic's spellings.
pub(super) fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// Whether `id` matches the documented `^op_[0-9a-z]{26}$`.
pub(super) fn is_operation_id(id: &str) -> bool {
    id.strip_prefix("op_").is_some_and(|rest| {
        rest.len() == 26
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_scheme_rules() {
        assert!(check_url("https://example.com/a.mp3", false).is_ok());
        assert!(check_url("http://example.com/a.mp3", false).is_ok());
        assert!(check_url("ftp://example.com/a.mp3", false).is_err());
        assert!(check_url("example.com/a.mp3", false).is_err());
        assert!(check_url("https://example.com/hook", true).is_ok());
        assert!(check_url("http://example.com/hook", true).is_err());
        for loopback in [
            "http://127.0.0.1:9/h",
            "http://localhost/h",
            "http://[::1]:80/h",
        ] {
            assert!(check_url(loopback, true).is_ok(), "{loopback}");
        }
    }

    #[test]
    fn json_error_offsets_count_bytes_across_lines() {
        let text = b"{\n  \"a\": 1,\n  oops\n}";
        let error = serde_json::from_slice::<Value>(text).unwrap_err();
        assert_eq!(
            &text[offset_of(text, error.line(), error.column())..][..1],
            b"o"
        );
    }
}
