#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[allow(missing_docs, clippy::all, rustdoc::all)]
mod generated;

pub use generated::*;
pub use songbind_transport::{BuildError, HttpOptions};

/// Typed [httpmock](https://docs.rs/httpmock) helpers generated from the spec:
/// `server.get_conversion_by_id(|when, then| ...)` with one typed `When`/`Then` pair per operation.
#[cfg(feature = "httpmock")]
#[allow(missing_docs, clippy::all, rustdoc::all)]
#[path = "generated_httpmock.rs"]
pub mod mock;

/// The production base URL of the MusicGPT API.
pub const DEFAULT_BASE_URL: &str = "https://api.musicgpt.com/api/public/v1";

impl Client {
    /// A client for `base_url` (for example [`DEFAULT_BASE_URL`]) that sends
    /// `api_key` as `Authorization: <key>` (the raw key, no scheme) on every request, with the default
    /// [`HttpOptions`]: connect and idle-read timeouts, but no total timeout.
    pub fn with_api_key(base_url: &str, api_key: &str) -> Result<Self, BuildError> {
        Self::with_options(base_url, api_key, &HttpOptions::default())
    }

    /// Like [`Client::with_api_key`], with your own timeouts and user agent.
    pub fn with_options(
        base_url: &str,
        api_key: &str,
        options: &HttpOptions,
    ) -> Result<Self, BuildError> {
        let base_url = songbind_transport::normalize_base_url(base_url)?;
        let http =
            songbind_transport::http_client(api_key, songbind_transport::AuthScheme::Raw, options)?;
        Ok(Self::new_with_client(&base_url, http))
    }
}
