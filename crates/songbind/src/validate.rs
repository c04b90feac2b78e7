//! Checks that run before any request is sent, so that a value the provider
//! documents as invalid fails here with a message naming the field and the
//! limit, instead of costing a round trip (or credits).
//!
//! The limits themselves are the specs': each provider crate's `limits`
//! module, written by `cargo xtask generate`, checked here by [`limit`] and
//! [`limit_number`]. What a spec cannot state (an absolute URL, "prompt or
//! lyrics") is checked by the other functions, called from one place per
//! request type.

use songbind_transport::Limit;

use crate::error::{Error, Result};

/// `value` must satisfy the spec's `limit` (a length, or one of an enum's
/// values); the error names the field, the limit and the value.
pub fn limit(limit: &Limit, value: &str) -> Result<()> {
    limit
        .check_text(value)
        .map_err(|reason| Error::validation(limit.field, reason))
}

/// `value` must lie in the spec's range `limit`.
pub fn limit_number(limit: &Limit, value: i64) -> Result<()> {
    limit
        .check_number(value)
        .map_err(|reason| Error::validation(limit.field, reason))
}

/// `value` must be `min..=max` characters long (Unicode scalar values, as
/// the providers count them).
pub fn length(field: &str, value: &str, min: usize, max: usize) -> Result<()> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(Error::validation(
            field,
            if min == max {
                format!("must be exactly {min} characters long (got {len})")
            } else if len < min && min == 1 {
                "must not be empty".to_owned()
            } else {
                format!("must be {min} to {max} characters long (got {len})")
            },
        ));
    }
    Ok(())
}

/// `request` as the generated wire type `T`, through serde: no field is
/// copied by hand, and the generated types check on the way what the spec
/// lets them check (a refusal there names the request's field).
#[cfg_attr(not(feature = "soundverse"), allow(dead_code))]
pub(crate) fn to_wire<T: serde::de::DeserializeOwned>(
    request: &impl serde::Serialize,
) -> Result<T> {
    serde_json::to_value(request)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::validation("request", e.to_string()))
}

/// `value` must hold something other than whitespace.
pub fn not_blank(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::validation(field, "must not be empty"));
    }
    Ok(())
}

/// `value` must be usable as a job id in a URL: not blank, and not `.` or
/// `..`, which a URL normalizes away (`/status/..` would ask for
/// `/status/`, another resource), so that a lookup always asks for the job
/// it names.
pub fn id(field: &str, value: &str) -> Result<()> {
    not_blank(field, value)?;
    if matches!(value, "." | "..") {
        return Err(Error::validation(
            field,
            format!("`{value}` is not an id: a URL would resolve it to another path"),
        ));
    }
    Ok(())
}

/// `value` must lie in `min..=max`.
pub fn range(field: &str, value: i64, min: i64, max: i64) -> Result<()> {
    if value < min || value > max {
        return Err(Error::validation(
            field,
            format!("must be between {min} and {max} (got {value})"),
        ));
    }
    Ok(())
}

/// Which URL schemes a field accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlRule {
    /// `http` or `https`.
    HttpOrHttps,
    /// `https`, or `http` to a loopback host (local development and tests).
    HttpsOrLoopback,
}

/// `value` must be an absolute URL with a host, under `rule`.
pub fn url(field: &str, value: &str, rule: UrlRule) -> Result<()> {
    let parsed = reqwest::Url::parse(value.trim())
        .map_err(|e| Error::validation(field, format!("must be an absolute URL ({e})")))?;
    let host = parsed.host_str().unwrap_or("");
    if host.is_empty() {
        return Err(Error::validation(
            field,
            "must be an absolute URL with a host",
        ));
    }
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1");
    match (parsed.scheme(), rule) {
        ("https", _) | ("http", UrlRule::HttpOrHttps) => Ok(()),
        ("http", UrlRule::HttpsOrLoopback) if loopback => Ok(()),
        ("http", UrlRule::HttpsOrLoopback) => Err(Error::validation(
            field,
            "must be an https URL (http is accepted for loopback hosts only)",
        )),
        (scheme, _) => Err(Error::validation(
            field,
            format!("must be an http(s) URL, not `{scheme}:`"),
        )),
    }
}

/// At least one of the named values must be present (and not blank).
pub fn at_least_one(fields: &[(&str, Option<&str>)]) -> Result<()> {
    if fields
        .iter()
        .any(|(_, value)| value.is_some_and(|v| !v.trim().is_empty()))
    {
        return Ok(());
    }
    let names: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
    Err(Error::validation(
        names.join(" or "),
        format!("at least one of {} is required", names.join(", ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<()>) -> String {
        result.expect_err("should be refused").to_string()
    }

    #[test]
    fn length_names_the_field_and_the_limit() {
        assert!(length("lyrics", "la", 1, 3000).is_ok());
        let text = message(length("lyrics", &"a".repeat(3001), 1, 3000));
        assert!(
            text.contains("lyrics") && text.contains("1 to 3000") && text.contains("3001"),
            "{text}"
        );
        assert!(message(length("prompt", "", 1, 1024)).contains("must not be empty"));
        // Characters, not bytes: 1024 umlauts are 2048 bytes but within the limit.
        assert!(length("prompt", &"ü".repeat(1024), 1, 1024).is_ok());
    }

    #[test]
    fn range_names_the_bounds_and_the_value() {
        assert!(range("extend_at", 8000, 8000, 420_000).is_ok());
        assert!(range("extend_at", 420_000, 8000, 420_000).is_ok());
        let text = message(range("extend_at", 7999, 8000, 420_000));
        assert!(
            text.contains("extend_at") && text.contains("8000 and 420000") && text.contains("7999"),
            "{text}"
        );
    }

    #[test]
    fn urls_must_be_absolute_and_of_an_allowed_scheme() {
        assert!(
            url(
                "audio_url",
                "https://cdn.example.com/a.mp3",
                UrlRule::HttpOrHttps
            )
            .is_ok()
        );
        assert!(
            url(
                "audio_url",
                "http://cdn.example.com/a.mp3",
                UrlRule::HttpOrHttps
            )
            .is_ok()
        );
        assert!(
            message(url(
                "audio_url",
                "cdn.example.com/a.mp3",
                UrlRule::HttpOrHttps
            ))
            .contains("absolute URL")
        );
        assert!(
            message(url("audio_url", "ftp://x/a.mp3", UrlRule::HttpOrHttps)).contains("`ftp:`")
        );
        assert!(
            url(
                "callback_url",
                "http://127.0.0.1:9/hook",
                UrlRule::HttpsOrLoopback
            )
            .is_ok()
        );
        assert!(
            message(url(
                "callback_url",
                "http://example.com/hook",
                UrlRule::HttpsOrLoopback
            ))
            .contains("https")
        );
    }

    #[test]
    fn at_least_one_lists_every_alternative() {
        assert!(at_least_one(&[("prompt", Some("jazz")), ("lyrics", None)]).is_ok());
        let text = message(at_least_one(&[("prompt", Some("  ")), ("lyrics", None)]));
        assert!(text.contains("prompt or lyrics"), "{text}");
    }
}
