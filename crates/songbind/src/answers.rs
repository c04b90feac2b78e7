//! The raw answers behind a job: the HTTP status and headers of its create
//! answer and of the latest answer while following it (request ids,
//! rate-limit headers), with no need to drop to the generated crate.
//!
//! Every call made through a provider client records its answer in the
//! [`Answers`] of the job being created or followed (a task-local set while
//! the job's own futures run), so concurrent jobs never mix their answers.

use std::sync::{Arc, Mutex};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::redact::Redactor;

/// The HTTP status and headers of one answer (values that held the API key
/// are scrubbed).
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerMeta {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
}

impl AnswerMeta {
    /// A header's value, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The provider's request id (`x-request-id`, `request-id` or
    /// `x-trace-id`), if a header carries one.
    pub fn request_id(&self) -> Option<&str> {
        request_id(&self.headers)
    }
}

/// The answers of one job; cheap to clone, shared with the job. Take it
/// before waiting: `let answers = job.answers(); job.wait(..).await?;`.
#[derive(Clone, Debug, Default)]
pub struct Answers {
    recorded: Arc<Mutex<Recorded>>,
    /// Scrubs the key from every header value recorded.
    redactor: Redactor,
}

#[derive(Debug, Default)]
struct Recorded {
    created: Option<AnswerMeta>,
    last: Option<AnswerMeta>,
}

impl Answers {
    /// The create's answer (for Soundverse, the stream's).
    pub fn created(&self) -> Option<AnswerMeta> {
        self.lock().created.clone()
    }

    /// The latest answer: the final one once the job has ended.
    pub fn last(&self) -> Option<AnswerMeta> {
        self.lock().last.clone()
    }

    /// Answers recorded with `redactor`'s key scrubbed from the headers.
    #[cfg_attr(not(feature = "_provider"), allow(dead_code))]
    pub(crate) fn scrubbed_by(redactor: &Redactor) -> Self {
        Self {
            recorded: Arc::default(),
            redactor: redactor.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `meta`; the first answer recorded is the create's.
    fn record(&self, mut meta: AnswerMeta) {
        self.redactor.scrub_headers(&mut meta.headers);
        let mut recorded = self.lock();
        if recorded.created.is_none() {
            recorded.created = Some(meta.clone());
        }
        recorded.last = Some(meta);
    }

    /// Runs `work` with its calls' answers recorded here.
    #[cfg_attr(not(feature = "_polled"), allow(dead_code))]
    pub(crate) async fn scope<F: std::future::Future>(&self, work: F) -> F::Output {
        CURRENT.scope(self.clone(), work).await
    }

    /// Runs `poll` (one poll of a job's events) with its calls' answers
    /// recorded here.
    pub(crate) fn sync_scope<R>(&self, poll: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self.clone(), poll)
    }
}

tokio::task_local! {
    static CURRENT: Answers;
}

/// The provider's request id in `headers` (`x-request-id`, `request-id` or
/// `x-trace-id`), if one is there: one list for traces and answers alike.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<&str> {
    ["x-request-id", "request-id", "x-trace-id"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
}

/// A copy of `headers` that owns its bytes.
///
/// The names and values hyper parses share the connection's read buffer; a
/// job keeps its answers for its whole life, and a shared slice would keep
/// that whole buffer alive (the scale bench found it: about 15 KiB per job
/// in flight).
fn detached(headers: &HeaderMap) -> HeaderMap {
    let mut owned = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        // A standard name is a static; `from_bytes` copies the others.
        let name =
            HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        owned.append(name, copy);
    }
    owned
}

/// Records an answer in the current job's answers, if a job is being
/// created or followed.
pub(crate) fn record(status: u16, headers: &HeaderMap) {
    let _ = CURRENT.try_with(|answers| {
        answers.record(AnswerMeta {
            status,
            headers: detached(headers),
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_headers_are_equal_and_share_no_bytes() {
        let mut headers = HeaderMap::new();
        let shared = bytes::Bytes::from_static(b"req_123");
        headers.insert(
            "x-request-id",
            HeaderValue::from_maybe_shared(shared).unwrap(),
        );
        headers.append("x-custom", HeaderValue::from_static("a"));
        headers.append("x-custom", HeaderValue::from_static("b"));
        let mut secret = HeaderValue::from_static("hidden");
        secret.set_sensitive(true);
        headers.insert("x-secret", secret);

        let copy = detached(&headers);
        assert_eq!(copy, headers);
        assert!(copy["x-secret"].is_sensitive());
        for (name, value) in &headers {
            for copied in copy.get_all(name) {
                assert_ne!(
                    copied.as_bytes().as_ptr(),
                    value.as_bytes().as_ptr(),
                    "{name}"
                );
            }
        }
    }
}
