//! What the emulator received and what it sent out, for tests to read.
//!
//! The request log is bounded: it keeps the last
//! [`DEFAULT_MAX_RECORDED_REQUESTS`] requests (oldest dropped first) and at
//! most [`DEFAULT_MAX_RECORDED_BODY_BYTES`] of each body (the rest is counted,
//! not stored), both configurable on the builder, so that a long run or a
//! flood of large uploads cannot grow the emulator without bound. Only
//! requests that passed the provider's auth check are recorded.

use std::collections::{BTreeMap, VecDeque};
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
    /// not `multipart/form-data` (empty otherwise; see `form`): whole when it
    /// fits the per-request cap (`EmulatorBuilder::max_recorded_body_bytes`,
    /// [`DEFAULT_MAX_RECORDED_BODY_BYTES`] by default), else its first bytes
    /// up to the cap.
    pub body: Bytes,
    /// For multipart requests: the parts the provider handler read, within
    /// the same per-request cap (text values that do not fit are left out,
    /// as are the parts after the cap is reached).
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

/// Bodies larger than this (by `Content-Length`) are not read by the
/// recorder at all (uploads stream through to the handler); of the bodies it
/// reads, at most the per-request cap is kept.
pub const RECORDED_BODY_LIMIT: usize = 1024 * 1024;

/// How many requests the log keeps unless configured otherwise (the oldest
/// are dropped first).
pub const DEFAULT_MAX_RECORDED_REQUESTS: usize = 1000;

/// How many body bytes the log keeps per request unless configured
/// otherwise (64 KiB; the rest of a longer body is counted, not stored).
pub const DEFAULT_MAX_RECORDED_BODY_BYTES: usize = 64 * 1024;

/// Bounds on the request log, set on the builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordLimits {
    /// Most requests kept.
    pub(crate) max_requests: usize,
    /// Most body (and form) bytes kept per request.
    pub(crate) max_body_bytes: usize,
}

impl Default for RecordLimits {
    fn default() -> Self {
        Self {
            max_requests: DEFAULT_MAX_RECORDED_REQUESTS,
            max_body_bytes: DEFAULT_MAX_RECORDED_BODY_BYTES,
        }
    }
}

/// What the request log holds and what it let go, from
/// `Emulator::record_stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordStats {
    /// Requests recorded since the start (authenticated ones only), kept or
    /// since dropped.
    pub recorded: usize,
    /// Requests the log holds now (at most the configured maximum).
    pub kept: usize,
    /// Requests dropped to make room for newer ones.
    pub dropped: usize,
    /// Body and form bytes the log holds now (at most the per-request cap
    /// times the number of requests kept; a form part's fixed size counts).
    pub kept_bytes: usize,
    /// Body bytes the recorder read, whether kept or not (bodies streamed
    /// to the handler unread, see [`RECORDED_BODY_LIMIT`], are not counted).
    pub body_bytes_read: u64,
    /// Recorded requests whose body or form was cut to the per-request cap.
    pub truncated: usize,
}

/// One kept request and its position in arrival order.
#[derive(Debug)]
struct Entry {
    seq: usize,
    request: RecordedRequest,
    /// Body and form bytes held for this request.
    kept_bytes: usize,
}

/// The bounded log of recorded requests.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    limits: RecordLimits,
    entries: VecDeque<Entry>,
    stats: RecordStats,
}

impl RequestLog {
    pub(crate) fn new(limits: RecordLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Records `request` with (the first bytes of) `body`; answers its
    /// sequence number (the count of requests recorded before it). The kept
    /// bytes are copied, so the log never holds on to a larger buffer the
    /// body was a slice of.
    pub(crate) fn push(&mut self, mut request: RecordedRequest, body: &[u8]) -> usize {
        let seq = self.stats.recorded;
        self.stats.recorded += 1;
        self.stats.body_bytes_read = self
            .stats
            .body_bytes_read
            .saturating_add(u64::try_from(body.len()).unwrap_or(u64::MAX));
        let kept = body.len().min(self.limits.max_body_bytes);
        if kept < body.len() {
            self.stats.truncated += 1;
        }
        if self.limits.max_requests == 0 {
            self.stats.dropped += 1;
            return seq;
        }
        while self.entries.len() >= self.limits.max_requests {
            self.evict_oldest();
        }
        request.body = Bytes::copy_from_slice(&body[..kept]);
        self.stats.kept_bytes += kept;
        self.entries.push_back(Entry {
            seq,
            request,
            kept_bytes: kept,
        });
        self.stats.kept = self.entries.len();
        seq
    }

    fn evict_oldest(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            self.stats.kept_bytes -= entry.kept_bytes;
            self.stats.dropped += 1;
            self.stats.kept = self.entries.len();
        }
    }

    /// Attaches the parts a multipart handler read to request `seq`, if it
    /// is still kept, within what is left of its per-request cap.
    pub(crate) fn attach_form(&mut self, seq: usize, parts: Vec<RecordedPart>) {
        let Some(first) = self.entries.front().map(|entry| entry.seq) else {
            return;
        };
        let Some(entry) = seq
            .checked_sub(first)
            .and_then(|offset| self.entries.get_mut(offset))
        else {
            return;
        };
        let budget = self.limits.max_body_bytes.saturating_sub(entry.kept_bytes);
        let (form, used, cut) = fit_form(parts, budget);
        entry.request.form = form;
        entry.kept_bytes += used;
        self.stats.kept_bytes += used;
        if cut {
            self.stats.truncated += 1;
        }
    }

    /// The kept requests, in arrival order.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.since(0)
    }

    /// The kept requests recorded as number `seq` or later.
    pub(crate) fn since(&self, seq: usize) -> Vec<RecordedRequest> {
        self.entries
            .iter()
            .filter(|entry| entry.seq >= seq)
            .map(|entry| entry.request.clone())
            .collect()
    }

    pub(crate) fn stats(&self) -> RecordStats {
        self.stats
    }
}

/// What a recorded part costs against the per-request cap: its fixed size
/// plus its strings.
fn part_cost(part: &RecordedPart) -> usize {
    std::mem::size_of::<RecordedPart>()
        + part.name.len()
        + part.file_name.as_ref().map_or(0, String::len)
        + part.content_type.as_ref().map_or(0, String::len)
        + part.text.as_ref().map_or(0, String::len)
}

/// Keeps the parts that fit `budget` bytes, in order: a text value that does
/// not fit is left out, and so is every part after the first that does not
/// fit even without its value. Answers the parts kept, their cost and
/// whether anything was left out.
fn fit_form(parts: Vec<RecordedPart>, budget: usize) -> (Vec<RecordedPart>, usize, bool) {
    let mut kept = Vec::new();
    let mut used = 0;
    let mut cut = false;
    for mut part in parts {
        if used + part_cost(&part) > budget && part.text.is_some() {
            part.text = None;
            cut = true;
        }
        let cost = part_cost(&part);
        if used + cost > budget {
            cut = true;
            break;
        }
        used += cost;
        kept.push(part);
    }
    (kept, used, cut)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str) -> RecordedRequest {
        RecordedRequest {
            provider: Some(Provider::MusicGpt),
            method: Method::POST,
            path: path.to_owned(),
            query: None,
            headers: BTreeMap::new(),
            body: Bytes::new(),
            form: Vec::new(),
            received_at: SystemTime::now(),
        }
    }

    fn text(name: &str, value: &str) -> RecordedPart {
        RecordedPart {
            name: name.to_owned(),
            file_name: None,
            content_type: None,
            len: value.len(),
            text: Some(value.to_owned()),
        }
    }

    fn paths(log: &RequestLog) -> Vec<String> {
        log.requests().into_iter().map(|r| r.path).collect()
    }

    #[test]
    fn the_oldest_requests_are_dropped_and_bodies_cut_to_the_cap() {
        let mut log = RequestLog::new(RecordLimits {
            max_requests: 2,
            max_body_bytes: 4,
        });
        assert_eq!(log.push(request("/a"), b"12"), 0);
        assert_eq!(log.push(request("/b"), b"123456"), 1);
        assert_eq!(log.push(request("/c"), b""), 2);
        assert_eq!(paths(&log), ["/b", "/c"]);
        assert_eq!(log.requests()[0].body, Bytes::from_static(b"1234"));
        assert_eq!(
            log.stats(),
            RecordStats {
                recorded: 3,
                kept: 2,
                dropped: 1,
                kept_bytes: 4,
                body_bytes_read: 8,
                truncated: 1,
            }
        );
        assert_eq!(log.since(2).len(), 1);
        assert_eq!(log.since(0).len(), 2);
        assert!(log.since(3).is_empty());
    }

    #[test]
    fn a_zero_cap_keeps_nothing_but_counts() {
        let mut log = RequestLog::new(RecordLimits {
            max_requests: 0,
            max_body_bytes: 0,
        });
        assert_eq!(log.push(request("/a"), b"body"), 0);
        assert_eq!(log.push(request("/b"), b""), 1);
        log.attach_form(1, vec![text("prompt", "p")]);
        assert!(log.requests().is_empty());
        let stats = log.stats();
        assert_eq!((stats.recorded, stats.kept, stats.dropped), (2, 0, 2));
        assert_eq!((stats.kept_bytes, stats.body_bytes_read), (0, 4));
    }

    #[test]
    fn a_form_goes_to_its_own_request_even_after_older_ones_were_dropped() {
        let mut log = RequestLog::new(RecordLimits {
            max_requests: 2,
            max_body_bytes: 1024,
        });
        for path in ["/a", "/b", "/c"] {
            log.push(request(path), b"");
        }
        log.attach_form(0, vec![text("dropped", "x")]);
        log.attach_form(2, vec![text("prompt", "for c")]);
        let kept = log.requests();
        assert!(kept[0].form.is_empty());
        assert_eq!(kept[1].form, [text("prompt", "for c")]);
        assert_eq!(log.stats().kept_bytes, part_cost(&text("prompt", "for c")));
    }

    #[test]
    fn form_values_over_the_cap_are_left_out_and_so_are_parts_past_it() {
        let small = text("mode", "REMIX");
        let budget = part_cost(&small) + part_cost(&text("prompt", ""));
        let parts = vec![
            small.clone(),
            text("prompt", "a long prompt"),
            text("x", ""),
        ];
        let (kept, used, cut) = fit_form(parts, budget);
        let mut prompt = text("prompt", "a long prompt");
        prompt.text = None;
        assert_eq!(kept, [small, prompt]);
        assert_eq!(used, budget);
        assert!(cut);

        // Empty parts still cost their fixed size, so their number is bounded.
        let many = vec![text("", ""); 10_000];
        let (kept, used, cut) = fit_form(many, 1024);
        assert!(cut);
        assert!(used <= 1024);
        assert_eq!(kept.len(), 1024 / std::mem::size_of::<RecordedPart>());
    }
}
