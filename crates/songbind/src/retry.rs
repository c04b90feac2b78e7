//! Retries with exponential backoff and jitter, honouring `Retry-After`.
//!
//! What may be retried depends on whether sending the request twice is safe,
//! and is decided by the HTTP status, never by a message text:
//!
//! * [`Repeatable::Safe`]: GETs, and SoundPiece PUTs (which carry an
//!   idempotency key): 408, 429, 500, 502, 503, 504 and transport failures
//!   are retried; never a 409 (a key reused with another body is not
//!   transient).
//! * [`Repeatable::OnlyIfNotTaken`]: creates that are not idempotent
//!   (Soundverse and MusicGPT POSTs): only 429 and 503, which say the
//!   request was not taken, and connections that failed before any byte of
//!   the request was written; never a connection that broke after the
//!   request went out, nor any other status, since the job may exist.
//!
//! An answer whose body is not the documented JSON (a proxy's HTML 502, a
//! `text/plain` 429, an empty 503) keeps its status and `Retry-After`, so
//! it is retried by the same rules.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use reqwest::header::HeaderMap;

use crate::error::{Error, Result};

/// Whether a request may be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeatable {
    /// Sending it twice has the effect of sending it once.
    Safe,
    /// Sending it twice could create two jobs.
    OnlyIfNotTaken,
}

/// How many times, and how patiently, to retry.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 disables retries).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled for each one after.
    pub base_delay: Duration,
    /// Upper bound of a backoff delay.
    pub max_delay: Duration,
    /// Upper bound of a wait a provider asks for with `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Whether `error` may be retried for a request that is `repeatable`.
    pub fn is_retryable(&self, error: &Error, repeatable: Repeatable) -> bool {
        match (repeatable, error) {
            (Repeatable::Safe, Error::Transport { .. }) => true,
            (Repeatable::Safe, other) => other
                .status()
                .is_some_and(|s| matches!(s, 408 | 429 | 500 | 502 | 503 | 504)),
            (Repeatable::OnlyIfNotTaken, Error::Transport { source, .. }) => source.is_connect(),
            (Repeatable::OnlyIfNotTaken, other) => other.request_not_taken(),
        }
    }

    /// The wait before retry number `retry` (0 for the first retry): the
    /// provider's `Retry-After` when given (capped), otherwise exponential
    /// backoff with full jitter.
    pub fn delay(&self, retry: u32, error: &Error) -> Duration {
        if let Some(asked) = error.retry_after() {
            return asked.min(self.max_retry_after);
        }
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        if ceiling.is_zero() {
            return ceiling;
        }
        rand::rng().random_range(ceiling / 2..=ceiling)
    }

    /// Runs `attempt` until it succeeds, fails with an error that may not be
    /// retried, or runs out of attempts. `attempt` gets the attempt number
    /// (0 for the first).
    pub async fn run<T, F, Fut>(&self, repeatable: Repeatable, mut attempt: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut number = 0;
        loop {
            tracing::Span::current().record("attempt", number);
            match attempt(number).await {
                Ok(value) => return Ok(value),
                Err(error)
                    if number + 1 < self.max_attempts && self.is_retryable(&error, repeatable) =>
                {
                    let delay = self.delay(number, &error);
                    tracing::info!(
                        attempt = number,
                        status = error.status(),
                        delay_ms = delay.as_millis() as u64,
                        "retrying after a backoff"
                    );
                    tokio::time::sleep(delay).await;
                    number += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Records an answer's status and, when a header carries one, the
/// provider's request id on `span`.
fn record_answer(span: &tracing::Span, answer: Option<(u16, &HeaderMap)>) {
    let Some((status, headers)) = answer else {
        return;
    };
    crate::answers::record(status, headers);
    span.record("http.status", status);
    if let Some(id) = crate::answers::request_id(headers) {
        span.record("request_id", id);
    }
}

/// Reads `Retry-After` (defined beside the error type, which needs it).
pub use crate::error::parse_retry_after;

/// How one provider client calls: its retry policy, and the redactor that
/// scrubs its key from every error it returns.
#[derive(Clone, Debug)]
pub(crate) struct Calls {
    pub(crate) provider: crate::ProviderName,
    pub(crate) policy: RetryPolicy,
    pub(crate) redactor: crate::redact::Redactor,
    /// The caller's per-request options (timeout, extra headers, key).
    pub(crate) options: RequestOptions,
}

/// Options for the calls of one client handle, like Stripe's
/// `RequestOptions`: `client.with(&RequestOptions::new().timeout(..))`
/// returns a handle whose every call (and the polls of the jobs it
/// creates) uses them; the client itself is unchanged, so the common case
/// stays `client.submit_*(..)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestOptions {
    /// A limit on each logical call, its retries included.
    pub timeout: Option<Duration>,
    /// Headers added to every request (replacing a default of the same
    /// name).
    pub headers: HeaderMap,
    /// A retry policy for these calls instead of the client's.
    pub retry: Option<RetryPolicy>,
    /// SoundPiece: the idempotency key of a create whose request names none.
    pub idempotency_key: Option<uuid::Uuid>,
    /// The largest successful answer read whole (JSON), in bytes, instead of
    /// [`songbind_transport::DEFAULT_ANSWER_LIMIT`] (16 MiB); past it the
    /// call fails with [`Error::AnswerTooLarge`]. Streams and audio have
    /// their own bounds.
    pub answer_limit: Option<u64>,
}

impl RequestOptions {
    /// No options: the client's own behaviour.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a limit on each logical call, its retries included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds a header to every request; a name or value that a header
    /// cannot carry is refused with [`Error::Validation`].
    pub fn header(mut self, name: &str, value: &str) -> Result<Self> {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::validation("header", format!("`{name}` is not a header name")))?;
        let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
            Error::validation(
                "header",
                format!("the value of `{name}` is not a header value"),
            )
        })?;
        self.headers.insert(name, value);
        Ok(self)
    }

    /// Sets the retry policy of these calls.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Sets SoundPiece's idempotency key for a create whose request names none.
    pub fn idempotency_key(mut self, key: uuid::Uuid) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// Sets the largest successful answer read whole, in bytes (see
    /// [`RequestOptions::answer_limit`](struct.RequestOptions.html#structfield.answer_limit)).
    pub fn answer_limit(mut self, bytes: u64) -> Self {
        self.answer_limit = Some(bytes);
        self
    }
}

#[cfg_attr(not(feature = "_provider"), allow(dead_code))]
impl Calls {
    /// Calls for `provider` with the default policy, scrubbing `key`.
    pub(crate) fn new(provider: crate::ProviderName, key: &crate::Secret) -> Self {
        Self {
            provider,
            policy: RetryPolicy::default(),
            redactor: crate::redact::Redactor::new(key),
            options: RequestOptions::default(),
        }
    }

    /// Runs `attempt` under the policy, in one `songbind.call` span for the
    /// logical call (provider, operation, attempt, HTTP status, elapsed
    /// time, the provider's request id); the error returned is scrubbed.
    /// Neither the key nor any header value but the request id is recorded.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        repeatable: Repeatable,
        attempt: F,
    ) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "songbind.call",
            provider = %self.provider,
            operation,
            attempt = tracing::field::Empty,
            http.status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let policy = self.options.retry.as_ref().unwrap_or(&self.policy);
        let limit = self
            .options
            .answer_limit
            .unwrap_or(songbind_transport::DEFAULT_ANSWER_LIMIT);
        let call = songbind_transport::with_headers(
            self.options.headers.clone(),
            songbind_transport::with_answer_limit(limit, policy.run(repeatable, attempt)),
        );

        let call = async {
            match self.options.timeout {
                Some(after) => tokio::time::timeout(after, call).await.unwrap_or_else(|_| {
                    Err(Error::Timeout {
                        after,
                        waiting_for: format!("{} {operation}", self.provider),
                        resume: None,
                    })
                }),
                None => call.await,
            }
        };
        let result = call
            .instrument(span.clone())
            .await
            .map_err(|e| self.redactor.error(e));
        span.record("elapsed_ms", started.elapsed().as_millis() as u64);
        if let Err(error) = &result {
            record_answer(&span, error.answer().map(|a| (a.status, &a.headers)));
        }
        result
    }

    /// Sends a generated-client request under the policy, mapping its errors
    /// to [`Error`] so they can be classified (and returned) like any other.
    #[cfg(feature = "_provider")]
    pub(crate) async fn generated<T, E, F, Fut>(
        &self,
        operation: &'static str,
        repeatable: Repeatable,
        send: F,
    ) -> Result<T>
    where
        E: serde::Serialize,
        F: Fn() -> Fut,
        Fut: Future<
            Output = std::result::Result<
                progenitor_client::ResponseValue<T>,
                progenitor_client::Error<E>,
            >,
        >,
    {
        Ok(self
            .generated_response(operation, repeatable, send)
            .await?
            .into_inner())
    }

    /// Sends a request the generator cannot express (`build` makes it
    /// afresh for each attempt) under the policy; an error answer becomes
    /// the [`Error`] its status says, whatever its body.
    #[cfg(feature = "elevenlabs")]
    pub(crate) async fn raw<F>(
        &self,
        operation: &'static str,
        repeatable: Repeatable,
        build: F,
    ) -> Result<reqwest::Response>
    where
        F: Fn() -> reqwest::RequestBuilder,
    {
        self.run(operation, repeatable, |_| async {
            let (http, request) = build().build_split();
            let request = request.map_err(Error::from)?;
            let response = http.execute(request).await.map_err(Error::from)?;
            if response.status().is_success() {
                let status = response.status().as_u16();
                record_answer(
                    &tracing::Span::current(),
                    Some((status, response.headers())),
                );
                return Ok(response);
            }
            let (status, headers) = (response.status(), response.headers().clone());
            let mut body = Vec::new();
            let mut stream = response.bytes_stream();
            while let Some(piece) = futures::StreamExt::next(&mut stream).await {
                body.extend_from_slice(&piece.map_err(Error::from)?);
                if body.len() >= songbind_transport::ERROR_BODY_LIMIT {
                    break; // an error page is read only so far
                }
            }
            let text = String::from_utf8_lossy(&body);
            Err(Error::from_response(self.provider, status, &headers, &text))
        })
        .await
    }

    /// [`Calls::generated`], keeping the answer's status and headers.
    #[cfg(feature = "_provider")]
    pub(crate) async fn generated_response<T, E, F, Fut>(
        &self,
        operation: &'static str,
        repeatable: Repeatable,
        send: F,
    ) -> Result<progenitor_client::ResponseValue<T>>
    where
        E: serde::Serialize,
        F: Fn() -> Fut,
        Fut: Future<
            Output = std::result::Result<
                progenitor_client::ResponseValue<T>,
                progenitor_client::Error<E>,
            >,
        >,
    {
        self.run(operation, repeatable, |_| self.generated_attempt(&send))
            .await
    }

    /// [`Calls::generated`] for a create that `resume` finds again (the
    /// idempotency key it is sent with): its error names `resume` whenever
    /// the create may have been taken, that is unless every attempt was
    /// surely not taken (see [`Error::surely_not_taken`]). An attempt that
    /// may have been taken is not undone by a later one refused with a 429.
    #[cfg(feature = "soundpiece")]
    pub(crate) async fn generated_create<T, E, F, Fut>(
        &self,
        operation: &'static str,
        repeatable: Repeatable,
        resume: crate::error::ResumeWith,
        send: F,
    ) -> Result<T>
    where
        E: serde::Serialize,
        F: Fn() -> Fut,
        Fut: Future<
            Output = std::result::Result<
                progenitor_client::ResponseValue<T>,
                progenitor_client::Error<E>,
            >,
        >,
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        let taken = AtomicBool::new(false);
        let result = self
            .run(operation, repeatable, |_| async {
                let attempt = self.generated_attempt(&send).await;
                if attempt.as_ref().is_err_and(|e| !e.surely_not_taken()) {
                    taken.store(true, Ordering::Relaxed);
                }
                attempt
            })
            .await;
        match result {
            Ok(answer) => Ok(answer.into_inner()),
            // The call's own deadline may end an attempt in flight: only an
            // error that says "not taken" after attempts that all said so
            // names nothing.
            Err(error) if taken.load(Ordering::Relaxed) || !error.surely_not_taken() => {
                Err(error.resumable(resume))
            }
            Err(error) => Err(error),
        }
    }

    /// One attempt of a generated-client request: its answer, recorded, or
    /// its error as an [`Error`].
    #[cfg(feature = "_provider")]
    async fn generated_attempt<T, E, F, Fut>(
        &self,
        send: &F,
    ) -> Result<progenitor_client::ResponseValue<T>>
    where
        E: serde::Serialize,
        F: Fn() -> Fut,
        Fut: Future<
            Output = std::result::Result<
                progenitor_client::ResponseValue<T>,
                progenitor_client::Error<E>,
            >,
        >,
    {
        match send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                record_answer(
                    &tracing::Span::current(),
                    Some((status, response.headers())),
                );
                Ok(response)
            }
            Err(error) => Err(crate::error::from_generated(self.provider, error).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProviderName;
    use reqwest::header::HeaderValue;
    use reqwest::header::RETRY_AFTER;
    use std::time::SystemTime;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        // 2015-10-21 07:28:30 GMT is 30 s after `now`.
        assert_eq!(
            parse_retry_after(&headers("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(&headers("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(&headers("soon"), now), None);
        assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
    }

    /// The error an answer with `status` and a JSON `message` maps to.
    fn answered(provider: ProviderName, status: u16, message: &str, retry_after: &str) -> Error {
        let mut headers = HeaderMap::new();
        if !retry_after.is_empty() {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
        }
        Error::from_response(
            provider,
            reqwest::StatusCode::from_u16(status).unwrap(),
            &headers,
            &serde_json::json!({ "message": message, "detail": message }).to_string(),
        )
    }

    fn provider_error(status: u16) -> Error {
        answered(ProviderName::SoundPiece, status, "", "")
    }

    #[test]
    fn creates_that_are_not_idempotent_retry_only_429_and_503() {
        let policy = RetryPolicy::default();
        for status in [429, 503] {
            assert!(
                policy.is_retryable(&provider_error(status), Repeatable::OnlyIfNotTaken),
                "{status}"
            );
        }
        for status in [408, 409, 500, 502, 504] {
            assert!(
                !policy.is_retryable(&provider_error(status), Repeatable::OnlyIfNotTaken),
                "{status}"
            );
        }
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                policy.is_retryable(&provider_error(status), Repeatable::Safe),
                "{status}"
            );
        }
        for status in [400, 401, 402, 404, 409, 422, 501] {
            assert!(
                !policy.is_retryable(&provider_error(status), Repeatable::Safe),
                "{status}"
            );
        }
    }

    #[test]
    fn misleading_texts_on_a_5xx_never_make_a_create_look_not_taken() {
        let policy = RetryPolicy::default();
        for (status, text) in [
            (504, "Upstream service temporarily unavailable"),
            (
                500,
                "Job created, but the rate limit counter could not be updated",
            ),
            (
                500,
                "Service temporarily unavailable. Please try again in a moment.",
            ),
            (502, "Rate limits have been passed for the user."),
        ] {
            for provider in [ProviderName::Soundverse, ProviderName::MusicGpt] {
                let error = answered(provider, status, text, "");
                assert_eq!(error.status(), Some(status), "{error:?}");
                assert!(
                    matches!(error, Error::Provider { .. }),
                    "{status} {text}: {error:?}"
                );
                assert!(
                    !policy.is_retryable(&error, Repeatable::OnlyIfNotTaken),
                    "{status} {text}"
                );
            }
        }
    }

    #[test]
    fn retry_after_wins_over_backoff_and_is_capped_whatever_the_status() {
        let policy = RetryPolicy::default();
        let asked =
            |status, secs: u64| answered(ProviderName::MusicGpt, status, "", &secs.to_string());
        assert_eq!(policy.delay(0, &asked(503, 3)), Duration::from_secs(3));
        assert_eq!(policy.delay(0, &asked(502, 4)), Duration::from_secs(4));
        assert_eq!(policy.delay(5, &asked(429, 3600)), policy.max_retry_after);
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_stops_at_the_maximum() {
        let policy = RetryPolicy::default();
        let error = provider_error(500);
        for retry in 0..10 {
            let ceiling = (policy.base_delay * 2u32.pow(retry)).min(policy.max_delay);
            let delay = policy.delay(retry, &error);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "retry {retry}: {delay:?}"
            );
        }
    }
}
