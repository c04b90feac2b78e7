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

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

/// How a provider expects its API key: read from the spec's
/// `securitySchemes` by `cargo xtask generate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <key>` (`type: http, scheme: bearer`).
    Bearer,
    /// `Authorization: <key>`, the raw key with no scheme (`type: apiKey,
    /// in: header, name: Authorization`).
    Raw,
    /// The raw key in a header of its own (`type: apiKey, in: header`), e.g.
    /// `xi-api-key`.
    Header(&'static str),
}

impl AuthScheme {
    /// The header that carries the key.
    pub fn header_name(&self) -> &'static str {
        match self {
            AuthScheme::Bearer | AuthScheme::Raw => "authorization",
            AuthScheme::Header(name) => name,
        }
    }

    /// The header value for `api_key`.
    pub fn header_value(&self, api_key: &str) -> String {
        match self {
            AuthScheme::Bearer => format!("Bearer {api_key}"),
            AuthScheme::Raw | AuthScheme::Header(_) => api_key.to_owned(),
        }
    }
}

/// Everything that names one provider, written once: `cargo xtask generate`
/// writes each provider crate's `PROVIDER` from its spec (`servers`,
/// `securitySchemes`) and the generator's provider table (name, slug).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    /// The provider's name as people write it, e.g. `SoundPiece`.
    pub name: &'static str,
    /// The lowercase slug: the spec's file name, the crate's suffix, the
    /// CLI's subcommand, the emulator's path prefix.
    pub slug: &'static str,
    /// The prefix of its environment variables (`<PREFIX>_API_KEY`,
    /// `<PREFIX>_BASE_URL`).
    pub env_prefix: &'static str,
    /// The production base URL: the spec's first `servers` entry.
    pub default_base_url: &'static str,
    /// How the API key is sent.
    pub auth: AuthScheme,
}

impl ProviderInfo {
    /// The environment variable holding the API key, e.g. `SOUNDPIECE_API_KEY`.
    pub fn api_key_var(&self) -> String {
        format!("{}_API_KEY", self.env_prefix)
    }

    /// The environment variable holding a base URL, e.g. `SOUNDPIECE_BASE_URL`.
    pub fn base_url_var(&self) -> String {
        format!("{}_BASE_URL", self.env_prefix)
    }
}

/// A limit the spec states for one request field (`minLength`/`maxLength`,
/// `minimum`/`maximum`, `enum`). `cargo xtask generate` writes every one of
/// them into the provider crate's `limits` module, so that the library, the
/// CLI and the emulator check the spec's values, never a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The field's name in the provider's terms (the spec's property name).
    pub field: &'static str,
    /// What it must satisfy.
    pub rule: Rule,
}

/// What a [`Limit`] asks of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A length in characters (Unicode scalar values, as the providers count).
    Length {
        /// Fewest characters, if bounded.
        min: Option<usize>,
        /// Most characters, if bounded.
        max: Option<usize>,
    },
    /// A number in a range.
    Range {
        /// Smallest value, if bounded.
        min: Option<i64>,
        /// Largest value, if bounded.
        max: Option<i64>,
    },
    /// One of these values.
    OneOf(&'static [&'static str]),
    /// A number of items in a list.
    Items {
        /// Fewest items, if bounded.
        min: Option<usize>,
        /// Most items, if bounded.
        max: Option<usize>,
    },
}

impl Limit {
    /// The most characters (a length limit) or the largest value (a range).
    pub const fn max(&self) -> Option<i64> {
        match self.rule {
            Rule::Length { max: Some(max), .. } | Rule::Items { max: Some(max), .. } => {
                Some(max as i64)
            }
            Rule::Range { max, .. } => max,
            _ => None,
        }
    }

    /// The fewest characters (a length limit) or the smallest value (a range).
    pub const fn min(&self) -> Option<i64> {
        match self.rule {
            Rule::Length { min: Some(min), .. } | Rule::Items { min: Some(min), .. } => {
                Some(min as i64)
            }
            Rule::Range { min, .. } => min,
            _ => None,
        }
    }

    /// The allowed values of an enum limit (empty otherwise).
    pub const fn values(&self) -> &'static [&'static str] {
        match self.rule {
            Rule::OneOf(values) => values,
            _ => &[],
        }
    }

    /// The limit in words, for help texts: `1 to 3000 characters`,
    /// `between 8000 and 420000`, `one of REMIX, INPAINT`.
    pub fn describe(&self) -> String {
        match self.rule {
            Rule::Length { min, max } => match (min.filter(|m| *m > 0), max) {
                (Some(min), Some(max)) => format!("{min} to {max} characters"),
                (None, Some(max)) => format!("at most {max} characters"),
                (Some(min), None) => format!("at least {min} characters"),
                (None, None) => "any length".to_owned(),
            },
            Rule::Range { min, max } => match (min, max) {
                (Some(min), Some(max)) => format!("between {min} and {max}"),
                (None, Some(max)) => format!("at most {max}"),
                (Some(min), None) => format!("at least {min}"),
                (None, None) => "any number".to_owned(),
            },
            Rule::OneOf(values) => format!("one of {}", values.join(", ")),
            Rule::Items { min, max } => match (min.filter(|m| *m > 0), max) {
                (Some(min), Some(max)) => format!("{min} to {max} items"),
                (None, Some(max)) => format!("at most {max} items"),
                (Some(min), None) => format!("at least {min} items"),
                (None, None) => "any number of items".to_owned(),
            },
        }
    }

    /// Checks how many items a list holds against an items limit.
    pub fn check_count(&self, count: usize) -> Result<(), String> {
        match self.rule {
            Rule::Items { min, max }
                if min.is_some_and(|min| count < min) || max.is_some_and(|max| count > max) =>
            {
                Err(format!("must hold {} (got {count})", self.describe()))
            }
            _ => Ok(()),
        }
    }

    /// Checks a text value (its length, or its membership of an enum); the
    /// error says what the limit is and what the value was.
    pub fn check_text(&self, value: &str) -> Result<(), String> {
        match self.rule {
            Rule::Length { min, max } => {
                let len = value.chars().count();
                let min = min.unwrap_or(0);
                if len < min && min == 1 {
                    return Err("must not be empty".to_owned());
                }
                if len < min || max.is_some_and(|max| len > max) {
                    return Err(format!("must be {} long (got {len})", self.describe()));
                }
                Ok(())
            }
            Rule::OneOf(values) if !values.contains(&value) => {
                Err(format!("must be {} (got `{value}`)", self.describe()))
            }
            Rule::Range { .. } => match value.trim().parse::<i64>() {
                Ok(number) => self.check_number(number),
                Err(_) => Err(format!("must be a whole number {}", self.describe())),
            },
            Rule::OneOf(_) | Rule::Items { .. } => Ok(()),
        }
    }

    /// Checks a number against a range limit.
    pub fn check_number(&self, value: i64) -> Result<(), String> {
        match self.rule {
            Rule::Range { min, max }
                if min.is_some_and(|min| value < min) || max.is_some_and(|max| value > max) =>
            {
                Err(format!("must be {} (got {value})", self.describe()))
            }
            _ => Ok(()),
        }
    }
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
    /// The base URL is not an absolute `http` or `https` URL, or carries
    /// what a base URL must not: credentials (`user:password@`; the API key
    /// travels in its own header, and reqwest would turn them into a Basic
    /// `Authorization` that replaces the key), a query or a fragment (the API
    /// path would be appended inside them). The URL is kept with any password
    /// replaced by `***`.
    #[error("the base URL `{url}` {reason}")]
    InvalidBaseUrl {
        /// The URL as given, its password (if any) replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
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
    let mut auth = HeaderValue::from_str(&scheme.header_value(api_key))
        .map_err(|_| BuildError::InvalidApiKey)?;
    auth.set_sensitive(true);
    let mut headers = HeaderMap::new();
    let name = match scheme {
        AuthScheme::Bearer | AuthScheme::Raw => AUTHORIZATION,
        AuthScheme::Header(name) => {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| BuildError::InvalidApiKey)?
        }
    };
    headers.insert(name, auth);
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

/// Checks that `base_url` is an absolute `http(s)` URL without credentials,
/// query or fragment, and drops trailing slashes, so that a path prefix
/// (`https://host/api/public/v1/`) joins cleanly with the generated paths.
///
/// ```
/// assert_eq!(
///     songbind_transport::normalize_base_url("http://127.0.0.1:8080/musicgpt/").unwrap(),
///     "http://127.0.0.1:8080/musicgpt"
/// );
/// assert!(songbind_transport::normalize_base_url("api.soundverse.ai").is_err());
/// let refused = songbind_transport::normalize_base_url("http://me:hunter2@host").unwrap_err();
/// assert!(!refused.to_string().contains("hunter2"));
/// ```
pub fn normalize_base_url(base_url: &str) -> Result<String, BuildError> {
    let trimmed = base_url.trim().trim_end_matches('/');
    let refuse = |reason| BuildError::InvalidBaseUrl {
        url: redact_url_password(base_url),
        reason,
    };
    let url = reqwest::Url::parse(trimmed).map_err(|_| refuse("is not an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(refuse("is not an absolute http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "carries credentials (user:password@): pass the API key on its own instead",
        ));
    }
    if url.query().is_some() || trimmed.contains('?') {
        return Err(refuse(
            "has a query (?...): the API path would be appended inside it",
        ));
    }
    if url.fragment().is_some() || trimmed.contains('#') {
        return Err(refuse(
            "has a fragment (#...): the API path would be appended inside it",
        ));
    }
    Ok(trimmed.to_owned())
}

/// `url` with the password of its userinfo (`user:password@`) replaced by
/// `***`, whether or not the rest of it parses.
pub fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let user = userinfo.split(':').next().unwrap_or_default();
    let masked = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        // A lone user part may be a token (`https://<token>@host`).
        "***".to_owned()
    };
    format!("{}{masked}{}", &url[..scheme_end], &rest[at..])
}

tokio::task_local! {
    static EXTRA_HEADERS: HeaderMap;
}

/// Runs `work` with `headers` added to every request [`execute`] sends
/// meanwhile (a caller's per-request headers; they replace a default header
/// of the same name).
pub async fn with_headers<F: std::future::Future>(headers: HeaderMap, work: F) -> F::Output {
    EXTRA_HEADERS.scope(headers, work).await
}

tokio::task_local! {
    static ANSWER_LIMIT: u64;
}

/// The largest successful answer [`execute`] lets a caller read unless
/// [`with_answer_limit`] says otherwise: 16 MiB, hundreds of times the
/// largest documented answer. An event stream or audio is not capped here
/// (each has its own bound where it is read).
pub const DEFAULT_ANSWER_LIMIT: u64 = 16 * 1024 * 1024;

/// Runs `work` with every successful answer [`execute`] returns meanwhile
/// capped at `limit` bytes instead of [`DEFAULT_ANSWER_LIMIT`].
pub async fn with_answer_limit<F: std::future::Future>(limit: u64, work: F) -> F::Output {
    ANSWER_LIMIT.scope(limit, work).await
}

/// The cap in force for this task: [`with_answer_limit`]'s, else
/// [`DEFAULT_ANSWER_LIMIT`].
pub fn answer_limit() -> u64 {
    ANSWER_LIMIT
        .try_with(|limit| *limit)
        .unwrap_or(DEFAULT_ANSWER_LIMIT)
}

/// Whether reading an answer failed because it was larger than its cap
/// (see [`execute`]), rather than because the connection failed.
pub fn is_answer_too_large(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Whether a successful answer with this content type is read whole by the
/// generated client (JSON, text, anything unnamed), so that [`execute`]
/// caps it; an event stream, audio or a multipart answer is read piece by
/// piece by its own reader, which bounds what it holds.
fn read_whole(headers: &HeaderMap) -> bool {
    let essence = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    !(essence == "text/event-stream"
        || essence == "application/octet-stream"
        || essence.starts_with("audio/")
        || essence.starts_with("multipart/"))
}

/// `response` with its body cut off past `limit` bytes: reading further
/// fails with an error [`is_answer_too_large`] recognises.
fn capped(response: reqwest::Response, limit: u64) -> reqwest::Response {
    use reqwest::ResponseBuilderExt as _;
    let url = response.url().clone();
    let response: http::Response<reqwest::Body> = response.into();
    let (mut parts, body) = response.into_parts();
    // The URL travels as an extension only `ResponseBuilderExt` can set.
    if let Ok(with_url) = http::Response::builder().url(url).body(()) {
        parts.extensions.extend(with_url.into_parts().0.extensions);
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let body = reqwest::Body::wrap(http_body_util::Limited::new(body, limit));
    reqwest::Response::from(http::Response::from_parts(parts, body))
}

/// Largest error body [`execute`] reads; the rest of a longer one is dropped.
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Sends `request` with `client`, the way every generated client's
/// `ClientHooks::exec` does.
///
/// Successful answers pass through as streams (an SSE stream stays a
/// stream), but one that the generated client reads whole (JSON, text: see
/// `read_whole`) is capped at [`DEFAULT_ANSWER_LIMIT`] bytes (or
/// [`with_answer_limit`]'s): past it, reading fails and
/// [`is_answer_too_large`] says why, so that a huge answer cannot exhaust
/// memory.
/// An error answer (4xx, 5xx) is read up to [`ERROR_BODY_LIMIT`] bytes, so
/// that a huge error page cannot exhaust memory. If that body does not decode
/// as the provider's documented error body `E` (a proxy's HTML 502, a
/// `text/plain` 429, an empty 503, a cut-off body), it is replaced by the
/// JSON `{"detail": "<the body as text>"}`, which every provider's error
/// schema accepts. The generated client then reports an error response with
/// its status and headers kept (its `Content-Type` still says what the body
/// really was), instead of an undecodable payload that has lost both.
pub async fn execute<E: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    mut request: reqwest::Request,
) -> reqwest::Result<reqwest::Response> {
    let _ = EXTRA_HEADERS.try_with(|extra| {
        for (name, value) in extra {
            request.headers_mut().insert(name, value.clone());
        }
    });
    let mut response = client.execute(request).await?;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        if !read_whole(response.headers()) {
            return Ok(response);
        }
        return Ok(capped(response, answer_limit()));
    }
    let mut body = Vec::new();
    let mut complete = true;
    while let Some(chunk) = response.chunk().await? {
        let room = ERROR_BODY_LIMIT - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            complete = false;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let readable = complete && serde_json::from_slice::<E>(&body).is_ok();
    let body = if readable {
        body
    } else {
        let text = String::from_utf8_lossy(&body);
        serde_json::to_vec(&serde_json::json!({ "detail": text.trim() })).unwrap_or_default()
    };
    let mut rebuilt = http::Response::new(bytes::Bytes::from(body));
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = response.version();
    let mut headers = response.headers().clone();
    headers.remove(reqwest::header::CONTENT_LENGTH);
    headers.remove(reqwest::header::CONTENT_ENCODING);
    headers.remove(reqwest::header::TRANSFER_ENCODING);
    *rebuilt.headers_mut() = headers;
    Ok(reqwest::Response::from(rebuilt))
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
    fn base_urls_with_credentials_query_or_fragment_are_refused_without_the_password() {
        for (url, says) in [
            ("http://user:hunter2@127.0.0.1:1/v1", "credentials"),
            ("https://tok3n@api.example.com", "credentials"),
            ("http://127.0.0.1:1/v1?x=1", "query"),
            ("http://127.0.0.1:1/v1#top", "fragment"),
            ("http://127.0.0.1:1/v1?", "query"),
        ] {
            let error = normalize_base_url(url).expect_err(url);
            let text = format!("{error} {error:?}");
            assert!(text.contains(says), "{url}: {text}");
            assert!(
                !text.contains("hunter2") && !text.contains("tok3n"),
                "{text}"
            );
        }
        assert_eq!(
            redact_url_password("http://me:pw@host:1/p?q#f"),
            "http://me:***@host:1/p?q#f"
        );
        assert_eq!(redact_url_password("not a url"), "not a url");
    }

    #[test]
    fn limits_name_the_bound_and_the_value() {
        let lyrics = Limit {
            field: "lyrics",
            rule: Rule::Length {
                min: Some(1),
                max: Some(3000),
            },
        };
        assert_eq!(lyrics.check_text("la"), Ok(()));
        assert_eq!(lyrics.check_text(""), Err("must not be empty".to_owned()));
        assert_eq!(
            lyrics.check_text(&"ü".repeat(3001)),
            Err("must be 1 to 3000 characters long (got 3001)".to_owned())
        );
        assert!(
            lyrics.check_text(&"ü".repeat(3000)).is_ok(),
            "characters, not bytes"
        );
        let at = Limit {
            field: "extend_at",
            rule: Rule::Range {
                min: Some(8000),
                max: Some(420_000),
            },
        };
        assert_eq!(
            at.check_number(7999),
            Err("must be between 8000 and 420000 (got 7999)".to_owned())
        );
        assert_eq!((at.min(), at.max()), (Some(8000), Some(420_000)));
        let mode = Limit {
            field: "mode",
            rule: Rule::OneOf(&["REMIX", "INPAINT"]),
        };
        assert!(mode.check_text("REMIX").is_ok());
        assert_eq!(
            mode.check_text("remix"),
            Err("must be one of REMIX, INPAINT (got `remix`)".to_owned())
        );
    }

    #[test]
    fn empty_key_is_refused() {
        let error =
            http_client("  ", AuthScheme::Bearer, &HttpOptions::default()).expect_err("empty key");
        assert!(matches!(error, BuildError::EmptyApiKey));
    }
}

#[cfg(test)]
mod execute_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// `{"detail": ...}` as the providers' error bodies all accept it.
    #[derive(serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        detail: String,
    }

    /// Answers one request on a loopback port with `answer`, verbatim.
    async fn answering(answer: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 4096];
            let _ = socket.read(&mut request).await;
            socket.write_all(answer.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
        });
        url
    }

    #[tokio::test]
    async fn an_html_error_page_keeps_its_status_headers_and_text() {
        let url = answering(
            "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\nretry-after: 7\r\n\
             content-length: 33\r\nconnection: close\r\n\r\n<html><h1>Bad Gateway</h1></html>",
        )
        .await;
        let client = reqwest::Client::new();
        let request = client.get(url).build().unwrap();
        let response = execute::<Body>(&client, request).await.unwrap();
        assert_eq!(response.status(), 502);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(response.headers()["content-type"], "text/html");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["detail"], "<html><h1>Bad Gateway</h1></html>");
    }

    #[tokio::test]
    async fn a_documented_error_body_and_a_success_pass_untouched() {
        let url = answering(
            "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
             content-length: 17\r\nconnection: close\r\n\r\n{\"detail\":\"slow\"}",
        )
        .await;
        let client = reqwest::Client::new();
        let response = execute::<Body>(&client, client.get(url).build().unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.text().await.unwrap(), "{\"detail\":\"slow\"}");

        let url = answering(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\
             connection: close\r\n\r\nok",
        )
        .await;
        let response = execute::<Body>(&client, client.get(url).build().unwrap())
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "ok");
    }

    #[tokio::test]
    async fn an_empty_or_endless_error_body_is_bounded() {
        let url = answering(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .await;
        let client = reqwest::Client::new();
        let response = execute::<Body>(&client, client.get(url).build().unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["detail"], "");

        // A body far over the limit is cut to it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\
                        connection: close\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            let block = vec![b'x'; 64 * 1024];
            for _ in 0..64 {
                if socket.write_all(&block).await.is_err() {
                    break;
                }
            }
        });
        let response = execute::<Body>(&client, client.get(url).build().unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["detail"].as_str().unwrap().len(), ERROR_BODY_LIMIT);
    }

    /// Answers one request with a 200 of `content_type` whose chunked body
    /// never ends (1 MiB pieces until the client hangs up); returns the URL
    /// and how many bytes were sent.
    async fn endless(
        content_type: &'static str,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = sent.clone();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 4096];
            let _ = socket.read(&mut request).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
            );
            socket.write_all(head.as_bytes()).await.unwrap();
            let piece = vec![b' '; 1 << 20];
            loop {
                let chunk = [format!("{:x}\r\n", piece.len()).as_bytes(), &piece, b"\r\n"].concat();
                if socket.write_all(&chunk).await.is_err() {
                    break;
                }
                counted.fetch_add(piece.len() as u64, std::sync::atomic::Ordering::SeqCst);
            }
        });
        (url, sent)
    }

    #[tokio::test]
    async fn a_successful_answer_read_whole_is_capped_and_the_cap_can_be_raised() {
        let client = reqwest::Client::new();
        for (limit, expected_cap) in [(None, DEFAULT_ANSWER_LIMIT), (Some(3 << 20), 3 << 20)] {
            let (url, sent) = endless("application/json").await;
            let request = client.get(url).build().unwrap();
            let read = async {
                let response = execute::<Body>(&client, request).await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await
            };
            let error = match limit {
                Some(limit) => with_answer_limit(limit, read).await,
                None => read.await,
            }
            .unwrap_err();
            assert!(is_answer_too_large(&error), "{error:?}");
            // What the server wrote includes what loopback's socket buffers
            // and the client's read-ahead hold (25 MiB seen for a 16 MiB
            // cap under load): a bound far below "everything", not a count
            // of what was read.
            let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
            assert!(
                sent < expected_cap + (32 << 20),
                "read on: {sent} bytes sent"
            );
        }
        // A stream is never capped here: its reader bounds its events.
        let (url, _) = endless("text/event-stream").await;
        let mut response = execute::<Body>(&client, client.get(url).build().unwrap())
            .await
            .unwrap();
        let mut read = 0u64;
        while read <= DEFAULT_ANSWER_LIMIT {
            read += response.chunk().await.unwrap().unwrap().len() as u64;
        }
    }
}
