//! Retries with exponential backoff and jitter, honouring `Retry-After`.
//!
//! What may be retried depends on whether sending the request twice is safe:
//!
//! * [`Repeatable::Safe`]: GETs, and SoundPiece PUTs (which carry an
//!   idempotency key): 408, 409, 429, 5xx and transport failures are retried.
//! * [`Repeatable::OnlyIfNotTaken`]: creates that are not idempotent
//!   (Soundverse and MusicGPT POSTs): only answers that say the request was
//!   not taken (429, 503) and connections that never opened are retried,
//!   never a connection that broke after the request went out, since the job
//!   may exist.

use std::future::Future;
use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

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
        match repeatable {
            Repeatable::Safe => match error {
                Error::Transport(_) => true,
                other => other
                    .status()
                    .is_some_and(|s| matches!(s, 408 | 409 | 429) || (500..600).contains(&s)),
            },
            Repeatable::OnlyIfNotTaken => match error {
                Error::Transport(e) => e.is_connect(),
                other => other.request_not_taken(),
            },
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
            match attempt(number).await {
                Ok(value) => return Ok(value),
                Err(error)
                    if number + 1 < self.max_attempts && self.is_retryable(&error, repeatable) =>
                {
                    tokio::time::sleep(self.delay(number, &error)).await;
                    number += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Reads `Retry-After` as seconds or as an HTTP date (relative to `now`).
/// A date in the past means "now"; an unreadable value is ignored.
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Sends a generated-client request under `policy`, mapping its errors to
/// [`Error`] so they can be classified (and returned) like any other.
#[cfg(any(feature = "soundverse", feature = "soundpiece", feature = "musicgpt"))]
pub(crate) async fn run_generated<T, E, F, Fut>(
    policy: &RetryPolicy,
    provider: crate::ProviderName,
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
    policy
        .run(repeatable, |_| async {
            match send().await {
                Ok(response) => Ok(response.into_inner()),
                Err(error) => Err(crate::error::from_generated(provider, error).await),
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProviderName;
    use reqwest::header::HeaderValue;

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

    fn provider_error(status: u16) -> Error {
        Error::Provider {
            provider: ProviderName::SoundPiece,
            status,
            message: String::new(),
            body: String::new(),
        }
    }

    #[test]
    fn creates_that_are_not_idempotent_retry_only_answers_that_say_not_taken() {
        let policy = RetryPolicy::default();
        let limited = Error::RateLimited {
            provider: ProviderName::Soundverse,
            retry_after: None,
            message: String::new(),
        };
        assert!(policy.is_retryable(&limited, Repeatable::OnlyIfNotTaken));
        for status in [408, 409, 500, 502, 504] {
            assert!(
                !policy.is_retryable(&provider_error(status), Repeatable::OnlyIfNotTaken),
                "{status}"
            );
            assert!(
                policy.is_retryable(&provider_error(status), Repeatable::Safe),
                "{status}"
            );
        }
        for status in [400, 404, 422] {
            assert!(
                !policy.is_retryable(&provider_error(status), Repeatable::Safe),
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_wins_over_backoff_and_is_capped() {
        let policy = RetryPolicy::default();
        let asked = |secs| Error::ServiceUnavailable {
            provider: ProviderName::MusicGpt,
            retry_after: Some(Duration::from_secs(secs)),
            message: String::new(),
        };
        assert_eq!(policy.delay(0, &asked(3)), Duration::from_secs(3));
        assert_eq!(policy.delay(5, &asked(3600)), policy.max_retry_after);
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
