//! HTTP client construction shared by the songbind provider crates.
//!
//! Every provider crate builds its [`reqwest::Client`] here so that they all
//! agree on three things:
//!
//! * the API key travels in a default header that is marked *sensitive*, so it
//!   never shows up in `Debug` output of the client;
//! * connecting has a short timeout and every read has an idle timeout;
//! * there is **no total timeout**: a Soundverse SSE stream may stay open for
//!   many minutes (progress holds at 90 while the model finalises), and a
//!   total timeout would cut it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

/// How a provider expects its API key in the `Authorization` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <key>` (Soundverse, SoundPiece).
    Bearer,
    /// `Authorization: <key>`, the raw key with no scheme (MusicGPT).
    Raw,
}

/// Timeouts and identification for the HTTP client.
///
/// The defaults suit long-lived streams: 10 s to connect, 5 minutes of
/// silence before a read gives up, and no limit on a whole request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// Limit on establishing a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Limit on the silence between two reads of a response, not on its total
    /// length. Soundverse documents progress holding at 90 "for several
    /// minutes" with keepalives, so keep this generous.
    pub read_timeout: Duration,
    /// `User-Agent` sent with every request.
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(300),
            user_agent: concat!("songbind/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Why an HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The API key holds characters a header cannot carry (newlines, control
    /// characters or non-visible ASCII). The key itself is never included.
    #[error("the API key contains characters that are not allowed in an HTTP header")]
    InvalidApiKey,
    /// The API key is empty or only whitespace.
    #[error("the API key is empty")]
    EmptyApiKey,
    /// The `User-Agent` holds characters a header cannot carry.
    #[error("the user agent contains characters that are not allowed in an HTTP header")]
    InvalidUserAgent,
    /// The base URL is not an absolute `http` or `https` URL.
    #[error("the base URL `{0}` is not an absolute http(s) URL")]
    InvalidBaseUrl(String),
    /// reqwest refused the configuration (for example no TLS backend).
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Builds a [`reqwest::Client`] that sends `api_key` in the provider's
/// `Authorization` form on every request.
///
/// ```
/// use songbind_transport::{AuthScheme, HttpOptions, http_client};
///
/// let client = http_client("sk_live_123", AuthScheme::Bearer, &HttpOptions::default()).unwrap();
/// assert!(!format!("{client:?}").contains("sk_live_123"));
/// ```
pub fn http_client(
    api_key: &str,
    scheme: AuthScheme,
    options: &HttpOptions,
) -> Result<reqwest::Client, BuildError> {
    let api_key = api_key.trim();
    if api_key.is_empty() {
        return Err(BuildError::EmptyApiKey);
    }
    let value = match scheme {
        AuthScheme::Bearer => format!("Bearer {api_key}"),
        AuthScheme::Raw => api_key.to_owned(),
    };
    let mut auth = HeaderValue::from_str(&value).map_err(|_| BuildError::InvalidApiKey)?;
    auth.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    let user_agent =
        HeaderValue::from_str(&options.user_agent).map_err(|_| BuildError::InvalidUserAgent)?;
    reqwest::Client::builder()
        .default_headers(headers)
        .user_agent(user_agent)
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .build()
        .map_err(BuildError::Client)
}

/// Checks that `base_url` is an absolute `http(s)` URL and drops trailing
/// slashes, so that a path prefix (`https://host/api/public/v1/`) joins
/// cleanly with the generated paths.
///
/// ```
/// assert_eq!(
///     songbind_transport::normalize_base_url("http://127.0.0.1:8080/musicgpt/").unwrap(),
///     "http://127.0.0.1:8080/musicgpt"
/// );
/// assert!(songbind_transport::normalize_base_url("api.soundverse.ai").is_err());
/// ```
pub fn normalize_base_url(base_url: &str) -> Result<String, BuildError> {
    let trimmed = base_url.trim().trim_end_matches('/');
    match reqwest::Url::parse(trimmed) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            Ok(trimmed.to_owned())
        }
        _ => Err(BuildError::InvalidBaseUrl(base_url.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_never_appears_in_debug_output() {
        let client = http_client("sk_secret_value", AuthScheme::Raw, &HttpOptions::default())
            .expect("client builds");
        let debug = format!("{client:?}");
        assert!(!debug.contains("sk_secret_value"), "{debug}");
    }

    #[test]
    fn header_breaking_keys_are_refused_without_echoing_them() {
        let error = http_client(
            "abc\r\nX-Evil: 1",
            AuthScheme::Bearer,
            &HttpOptions::default(),
        )
        .expect_err("newline in key");
        assert!(matches!(error, BuildError::InvalidApiKey));
        assert!(!error.to_string().contains("Evil"));
    }

    #[test]
    fn empty_key_is_refused() {
        let error =
            http_client("  ", AuthScheme::Bearer, &HttpOptions::default()).expect_err("empty key");
        assert!(matches!(error, BuildError::EmptyApiKey));
    }
}
