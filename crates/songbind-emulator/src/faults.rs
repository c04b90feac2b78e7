//! Fault injection: what can go wrong, chosen per run or per request.
//!
//! A fault comes from one of two places:
//! * a [`FaultRule`] registered on the running emulator (per run): it matches
//!   requests by provider, method and path and applies to the next `times`
//!   of them;
//! * the `x-emulator-fault` request header (per request), whose value is a
//!   [`Fault`] in its text form, e.g. `status:429:retry-after=2`.
//!
//! A header wins over a rule for the request that carries it.

use std::str::FromStr;
use std::time::Duration;

use axum::http::{Method, StatusCode};

use crate::provider::Provider;

/// The request header that selects a fault for one request.
pub const FAULT_HEADER: &str = "x-emulator-fault";

/// One thing that goes wrong with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and the provider's error body instead of
    /// handling the request; with `Retry-After: <seconds>` when given.
    Status {
        /// The HTTP status to answer (e.g. 429, 503).
        status: u16,
        /// Seconds for the `Retry-After` header, if any.
        retry_after: Option<u64>,
    },
    /// Handle the request (a job is created), then close the connection
    /// without sending any reply: the client cannot know the job exists.
    LoseReply,
    /// Hold the request this long (real time, not scaled) before handling it.
    Stall(Duration),
    /// Close the connection abruptly after this many SSE events (an
    /// incomplete chunked body: the client sees a transport error).
    DropStream {
        /// Events sent before the connection is cut.
        after_events: usize,
    },
    /// End the SSE body cleanly after this many events, without a completed
    /// event: a stream that ends early.
    EndStream {
        /// Events sent before the body ends.
        after_events: usize,
    },
    /// After this many SSE events, go silent (connection open, nothing sent)
    /// for the given time (real time, not scaled), then carry on.
    StallStream {
        /// Events sent before the silence.
        after_events: usize,
        /// Length of the silence.
        duration: Duration,
    },
    /// Write the SSE body in tiny pieces (1 to 7 bytes each) split at
    /// arbitrary byte boundaries, including inside UTF-8 characters.
    Fragment,
}

impl Fault {
    /// Whether this fault shapes an SSE body (applied by the stream writer)
    /// rather than the request as a whole.
    pub fn is_stream_fault(&self) -> bool {
        matches!(
            self,
            Fault::DropStream { .. }
                | Fault::EndStream { .. }
                | Fault::StallStream { .. }
                | Fault::Fragment
        )
    }

    /// The HTTP status of a [`Fault::Status`].
    pub(crate) fn status_code(&self) -> Option<StatusCode> {
        match self {
            Fault::Status { status, .. } => StatusCode::from_u16(*status).ok(),
            _ => None,
        }
    }
}

/// Why a fault description could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid fault `{input}`: {reason} (expected e.g. `status:429:retry-after=2`, `lose-reply`, `stall:500ms`, `drop-stream:3`, `end-stream:3`, `stall-stream:3:2s`, `fragment`)"
)]
pub struct ParseFaultError {
    input: String,
    reason: &'static str,
}

impl FromStr for Fault {
    type Err = ParseFaultError;

    /// Text form: `status:<code>[:retry-after=<secs>]`, `lose-reply`,
    /// `stall:<duration>`, `drop-stream:<n>`, `end-stream:<n>`,
    /// `stall-stream:<n>:<duration>`, `fragment`. Durations take `ms` or `s`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseFaultError {
            input: input.to_owned(),
            reason,
        };
        let parts: Vec<&str> = input.trim().split(':').collect();
        let count = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| err("event count is not a number"))
        };
        match parts.as_slice() {
            ["status", code, rest @ ..] => {
                let status = code
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (400..=599).contains(c))
                    .ok_or_else(|| err("status must be a number in 400..=599"))?;
                let retry_after = match rest {
                    [] => None,
                    [opt] => Some(
                        opt.strip_prefix("retry-after=")
                            .and_then(|v| v.parse::<u64>().ok())
                            .ok_or_else(|| err("expected retry-after=<seconds>"))?,
                    ),
                    _ => return Err(err("too many parts")),
                };
                Ok(Fault::Status {
                    status,
                    retry_after,
                })
            }
            ["lose-reply"] => Ok(Fault::LoseReply),
            ["stall", d] => Ok(Fault::Stall(
                parse_duration(d).ok_or_else(|| err("bad duration"))?,
            )),
            ["drop-stream", n] => Ok(Fault::DropStream {
                after_events: count(n)?,
            }),
            ["end-stream", n] => Ok(Fault::EndStream {
                after_events: count(n)?,
            }),
            ["stall-stream", n, d] => Ok(Fault::StallStream {
                after_events: count(n)?,
                duration: parse_duration(d).ok_or_else(|| err("bad duration"))?,
            }),
            ["fragment"] => Ok(Fault::Fragment),
            _ => Err(err("unknown fault")),
        }
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    if let Some(ms) = text.strip_suffix("ms") {
        ms.parse().ok().map(Duration::from_millis)
    } else if let Some(s) = text.strip_suffix('s') {
        s.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
    } else {
        None
    }
}

/// A per-run fault: applies `fault` to the next `times` requests that match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// The fault to apply.
    pub fault: Fault,
    /// Only requests to this provider (any provider when `None`).
    pub provider: Option<Provider>,
    /// Only requests with this method (any when `None`).
    pub method: Option<Method>,
    /// Only requests to this path, relative to the provider's base URL, e.g.
    /// `/v1/create.remix_song` (any when `None`).
    pub path: Option<String>,
    /// How many matching requests it applies to; `u32::MAX` for every one.
    pub times: u32,
}

impl FaultRule {
    /// A rule applying `fault` once, to any request.
    pub fn new(fault: Fault) -> Self {
        Self {
            fault,
            provider: None,
            method: None,
            path: None,
            times: 1,
        }
    }

    /// Restricts the rule to one provider.
    pub fn provider(mut self, provider: Provider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Restricts the rule to one method and path (relative to the provider's
    /// base URL).
    pub fn route(mut self, method: Method, path: &str) -> Self {
        self.method = Some(method);
        self.path = Some(path.to_owned());
        self
    }

    /// Applies the rule to the next `times` matching requests.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Applies the rule to every matching request.
    pub fn always(self) -> Self {
        self.times(u32::MAX)
    }

    fn matches(&self, provider: Provider, method: &Method, path: &str) -> bool {
        self.times > 0
            && self.provider.is_none_or(|p| p == provider)
            && self.method.as_ref().is_none_or(|m| m == method)
            && self.path.as_deref().is_none_or(|p| p == path)
    }
}

/// The registered rules, consumed in registration order.
#[derive(Debug, Default)]
pub(crate) struct FaultPlan {
    rules: Vec<FaultRule>,
}

impl FaultPlan {
    pub(crate) fn push(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// The fault for this request, if a rule matches; uses up one of its times.
    pub(crate) fn take(
        &mut self,
        provider: Provider,
        method: &Method,
        path: &str,
    ) -> Option<Fault> {
        let rule = self
            .rules
            .iter_mut()
            .find(|rule| rule.matches(provider, method, path))?;
        if rule.times != u32::MAX {
            rule.times -= 1;
        }
        let fault = rule.fault.clone();
        self.rules.retain(|rule| rule.times > 0);
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_parse() {
        assert_eq!(
            "status:429:retry-after=2".parse(),
            Ok(Fault::Status {
                status: 429,
                retry_after: Some(2)
            })
        );
        assert_eq!("lose-reply".parse(), Ok(Fault::LoseReply));
        assert_eq!(
            "stall:250ms".parse(),
            Ok(Fault::Stall(Duration::from_millis(250)))
        );
        assert_eq!(
            "stall-stream:3:1.5s".parse(),
            Ok(Fault::StallStream {
                after_events: 3,
                duration: Duration::from_millis(1500)
            })
        );
        assert_eq!(
            "drop-stream:4".parse(),
            Ok(Fault::DropStream { after_events: 4 })
        );
        assert_eq!("fragment".parse(), Ok(Fault::Fragment));
    }

    #[test]
    fn bad_text_forms_are_refused_with_the_input_named() {
        for bad in [
            "",
            "status",
            "status:200",
            "status:429:retry=1",
            "stall:5",
            "drop-stream:x",
            "explode",
        ] {
            let error = bad.parse::<Fault>().expect_err(bad);
            assert!(error.to_string().contains(&format!("`{bad}`")), "{error}");
        }
    }

    #[test]
    fn a_rule_applies_only_to_its_route_and_only_its_times() {
        let mut plan = FaultPlan::default();
        plan.push(
            FaultRule::new(Fault::LoseReply)
                .provider(Provider::SoundPiece)
                .route(Method::PUT, "/v1/create.remix_song")
                .times(2),
        );
        assert_eq!(
            plan.take(Provider::SoundPiece, &Method::GET, "/v1/create.remix_song"),
            None
        );
        assert_eq!(
            plan.take(Provider::MusicGpt, &Method::PUT, "/v1/create.remix_song"),
            None
        );
        for _ in 0..2 {
            assert_eq!(
                plan.take(Provider::SoundPiece, &Method::PUT, "/v1/create.remix_song"),
                Some(Fault::LoseReply)
            );
        }
        assert_eq!(
            plan.take(Provider::SoundPiece, &Method::PUT, "/v1/create.remix_song"),
            None
        );
    }
}
