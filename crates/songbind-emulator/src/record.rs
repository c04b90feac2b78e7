//! What the emulator received and what it sent out, for tests to read.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::http::{HeaderMap, Method};
use bytes::Bytes;

use crate::provider::Provider;

/// One request the emulator received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The provider it was addressed to (`None` for `/files/...`).
    pub provider: Option<Provider>,
    /// HTTP method.
    pub method: Method,
    /// Path relative to the provider's base URL (e.g. `/v1/create.remix_song`).
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Request headers (values that are not UTF-8 are left out).
    pub headers: BTreeMap<String, String>,
    /// The body, for bodies of at most [`RECORDED_BODY_LIMIT`] bytes that are
    /// not `multipart/form-data` (empty otherwise; see `form`).
    pub body: Bytes,
    /// For multipart requests: the parts the provider handler read.
    pub form: Vec<RecordedPart>,
    /// When it arrived.
    pub received_at: SystemTime,
}

impl RecordedRequest {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A header value by (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// One part of a multipart request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedPart {
    /// The form field name.
    pub name: String,
    /// The file name, for file parts.
    pub file_name: Option<String>,
    /// The part's content type, if sent.
    pub content_type: Option<String>,
    /// Length of the part in bytes.
    pub len: usize,
    /// The value of a text part (file parts are not kept).
    pub text: Option<String>,
}

/// Bodies larger than this are not kept in the log (uploads stream through).
pub const RECORDED_BODY_LIMIT: usize = 1024 * 1024;

/// One webhook the emulator sent out.
#[derive(Clone, Debug)]
pub struct WebhookDelivery {
    /// The provider that sent it.
    pub provider: Provider,
    /// Where it was POSTed.
    pub url: String,
    /// The headers sent (signature headers included).
    pub headers: BTreeMap<String, String>,
    /// The exact body sent.
    pub body: Bytes,
    /// The receiver's status code, or `None` if the POST failed.
    pub response_status: Option<u16>,
}

impl WebhookDelivery {
    /// The body parsed as JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

pub(crate) fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}
