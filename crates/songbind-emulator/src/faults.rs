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
//!
//! Text forms (for the header, for [`FaultRule`]s given to the binary's
//! `--fault`, and for [`str::parse`]):
//!
//! | text | what the emulator does |
//! |---|---|
//! | `status:<code>[:retry-after=<secs>]` | answers `<code>` with the provider's JSON error body, without handling the request |
//! | `page:<code>:<html\|text\|empty>[:retry-after=<secs>]` | answers `<code>` with a body that is not JSON (a proxy's HTML page, a `text/plain` line, or nothing), without handling the request |
//! | `misleading:<5xx>` | handles the request (the job is created), then answers the 5xx with the provider's JSON error body and a text that reads as if nothing was taken |
//! | `echo-auth:<code>[:pad=<n>]` | answers `<code>` echoing the request's key header (`Authorization`, or the provider's own such as `xi-api-key`), without handling the request: a 4xx in the provider's JSON error body (`bad request; you sent <value>`), a 5xx as a `text/plain` list of the request headers; with `pad`, after `n` characters of trace id (so the key lands anywhere in the text) |
//! | `not-audio:<json\|html>` | answers `200 OK` with the provider's JSON error body (`json`) or an HTML page (`html`) instead of handling the request: a 200 that does not carry what was asked for (the audio of a compose) |
//! | `lose-reply` | handles the request, then closes the connection with no reply |
//! | `stall:<duration>` | holds the request, then handles it |
//! | `drop-stream:<n>`, `end-stream:<n>`, `stall-stream:<n>:<duration>`, `fragment` | shape a streamed body (Soundverse's SSE; ElevenLabs' chunked audio, multipart and SSE answers, counting pieces as events) |
//!
//! Durations take `ms` or `s`; codes are 400 to 599 (500 to 599 for
//! `misleading`).

use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

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
    /// Answer with this status and a body that is not JSON (what a proxy or
    /// load balancer in front of the provider sends) instead of handling the
    /// request; with `Retry-After: <seconds>` when given.
    Page {
        /// The HTTP status to answer (e.g. 502, 429).
        status: u16,
        /// What the body is.
        body: PageBody,
        /// Seconds for the `Retry-After` header, if any.
        retry_after: Option<u64>,
    },
    /// Handle the request (a job is created), then answer this 5xx with the
    /// provider's JSON error body and a text that sounds as if the request
    /// was not taken ("Upstream service temporarily unavailable", "Job
    /// created, but the rate limit counter could not be updated"). A client
    /// that resends a create that is not idempotent on it creates a second
    /// job: only the status may decide.
    Misleading {
        /// The HTTP status to answer (500 to 599).
        status: u16,
    },
    /// Answer with this status and a body that echoes the request's key
    /// header (`Authorization`, or the provider's own, e.g. ElevenLabs'
    /// `xi-api-key`), instead of handling the request: on a 4xx,
    /// the provider's JSON error body with the message `bad request; you
    /// sent <value>`; on a 5xx, a `text/plain` list of the request headers
    /// (authorization included), as a debug page would.
    EchoAuth {
        /// The HTTP status to answer (e.g. 400, 500).
        status: u16,
        /// Characters of trace id written before the echo (0: none), so
        /// that the key can land anywhere in the text, e.g. across the end
        /// of an excerpt a client keeps.
        pad: usize,
    },
    /// Answer `200 OK` with a body that is not what was asked for, instead
    /// of handling the request: the provider's JSON error body, or a
    /// proxy's HTML page. A client that trusts a 200 without looking at it
    /// calls this a song.
    NotAudio {
        /// `true`: the provider's JSON error body; `false`: an HTML page.
        json: bool,
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

    /// The answer sent instead of handling the request, for the faults that
    /// answer a body of their own without handling it ([`Fault::Page`],
    /// [`Fault::EchoAuth`]); `headers` are the request's. ([`Fault::Status`]
    /// is answered by the middleware itself.)
    pub(crate) fn answer_instead(
        &self,
        provider: Provider,
        headers: &HeaderMap,
    ) -> Option<Response> {
        match *self {
            Fault::Page {
                status,
                body,
                retry_after,
            } => {
                let status = StatusCode::from_u16(status).ok()?;
                Some(with_retry_after(page(status, body), retry_after))
            }
            Fault::EchoAuth { status, pad } => {
                let status = StatusCode::from_u16(status).ok()?;
                Some(echo_auth(provider, status, pad, headers))
            }
            Fault::NotAudio { json: true } => Some(provider.error(
                StatusCode::OK,
                "Your request could not be completed: the composition service is busy",
            )),
            Fault::NotAudio { json: false } => {
                let mut html = page(StatusCode::OK, PageBody::Html);
                *html.body_mut() = Body::from(
                    "<html><head><title>Just a moment...</title></head>\r\n\
                     <body><h1>Checking your browser before accessing the site.</h1></body></html>\r\n",
                );
                Some(html)
            }
            _ => None,
        }
    }

    /// The answer that replaces the handler's own, for [`Fault::Misleading`].
    pub(crate) fn answer_after(&self, provider: Provider) -> Option<Response> {
        match *self {
            Fault::Misleading { status } => {
                let status = StatusCode::from_u16(status).ok()?;
                Some(provider.error(status, provider.misleading_message(status)))
            }
            _ => None,
        }
    }
}

/// The body of a [`Fault::Page`] answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageBody {
    /// An nginx-like HTML error page (`text/html`).
    Html,
    /// One line of text (`text/plain`), e.g. `502 Bad Gateway`.
    Text,
    /// No body at all (`content-length: 0`, no content type).
    Empty,
}

impl PageBody {
    /// The word for it in a fault's text form (`html`, `text`, `empty`).
    pub fn name(self) -> &'static str {
        match self {
            PageBody::Html => "html",
            PageBody::Text => "text",
            PageBody::Empty => "empty",
        }
    }
}

fn with_retry_after(mut response: Response, retry_after: Option<u64>) -> Response {
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// `<code> <reason>`, e.g. `502 Bad Gateway`.
fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    )
}

/// A non-JSON error answer, as a proxy in front of the provider sends it.
fn page(status: StatusCode, body: PageBody) -> Response {
    let line = status_line(status);
    match body {
        PageBody::Html => (
            status,
            [(header::CONTENT_TYPE, "text/html")],
            format!(
                "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n\
                 <center><h1>{line}</h1></center>\r\n<hr><center>nginx</center>\r\n\
                 </body>\r\n</html>\r\n"
            ),
        )
            .into_response(),
        PageBody::Text => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{line}\n"),
        )
            .into_response(),
        PageBody::Empty => (status, Body::empty()).into_response(),
    }
}

/// An answer echoing the request's key header (see
/// [`Fault::EchoAuth`]), after `pad` characters of trace id.
fn echo_auth(provider: Provider, status: StatusCode, pad: usize, headers: &HeaderMap) -> Response {
    let trace: String = "0123456789abcdef".chars().cycle().take(pad).collect();
    if status.is_server_error() {
        let mut text = status_line(status);
        if pad > 0 {
            let _ = write!(text, "\ntrace: {trace}");
        }
        text.push_str("\n\nrequest headers:\n");
        for (name, value) in headers {
            let _ = writeln!(
                text,
                "{name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            );
        }
        return (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response();
    }
    let sent = headers
        .get(provider.info().auth.header_name())
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let sent = sent.unwrap_or_else(|| "no key header".to_owned());
    let message = if pad > 0 {
        format!("bad request (trace {trace}); you sent {sent}")
    } else {
        format!("bad request; you sent {sent}")
    };
    provider.error(status, &message)
}

/// The longest trace id an `echo-auth` answer may carry.
const MAX_PAD: usize = 65_536;

/// Why a fault description could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid fault `{input}`: {reason} (expected e.g. `status:429:retry-after=2`, `page:502:html`, `page:429:text:retry-after=1`, `misleading:504`, `echo-auth:400`, `not-audio:json`, `lose-reply`, `stall:500ms`, `drop-stream:3`, `end-stream:3`, `stall-stream:3:2s`, `fragment`)"
)]
pub struct ParseFaultError {
    input: String,
    reason: &'static str,
}

impl FromStr for Fault {
    type Err = ParseFaultError;

    /// Text form: `status:<code>[:retry-after=<secs>]`,
    /// `page:<code>:<html|text|empty>[:retry-after=<secs>]`,
    /// `misleading:<5xx>`, `echo-auth:<code>[:pad=<n>]`,
    /// `not-audio:<json|html>`, `lose-reply`,
    /// `stall:<duration>`, `drop-stream:<n>`, `end-stream:<n>`,
    /// `stall-stream:<n>:<duration>`, `fragment`. Durations take `ms` or
    /// `s`; codes are 400 to 599 (500 to 599 for `misleading`).
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
        let error_status = |code: &str| {
            code.parse::<u16>()
                .ok()
                .filter(|c| (400..=599).contains(c))
                .ok_or_else(|| err("status must be a number in 400..=599"))
        };
        let retry_after = |rest: &[&str]| match rest {
            [] => Ok(None),
            [opt] => opt
                .strip_prefix("retry-after=")
                .and_then(|v| v.parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| err("expected retry-after=<seconds>")),
            _ => Err(err("too many parts")),
        };
        match parts.as_slice() {
            ["status", code, rest @ ..] => Ok(Fault::Status {
                status: error_status(code)?,
                retry_after: retry_after(rest)?,
            }),
            ["page", code, body, rest @ ..] => Ok(Fault::Page {
                status: error_status(code)?,
                body: match *body {
                    "html" => PageBody::Html,
                    "text" => PageBody::Text,
                    "empty" => PageBody::Empty,
                    _ => return Err(err("the page body must be html, text or empty")),
                },
                retry_after: retry_after(rest)?,
            }),
            ["misleading", code] => Ok(Fault::Misleading {
                status: code
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (500..=599).contains(c))
                    .ok_or_else(|| err("a misleading status must be a number in 500..=599"))?,
            }),
            ["echo-auth", code, rest @ ..] => Ok(Fault::EchoAuth {
                status: error_status(code)?,
                pad: match rest {
                    [] => 0,
                    [opt] => opt
                        .strip_prefix("pad=")
                        .and_then(|v| v.parse::<usize>().ok())
                        .filter(|n| *n <= MAX_PAD)
                        .ok_or_else(|| err("expected pad=<characters> (at most 65536)"))?,
                    _ => return Err(err("too many parts")),
                },
            }),
            ["not-audio", body] => Ok(Fault::NotAudio {
                json: match *body {
                    "json" => true,
                    "html" => false,
                    _ => return Err(err("the body of a not-audio 200 must be json or html")),
                },
            }),
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
        assert_eq!("not-audio:json".parse(), Ok(Fault::NotAudio { json: true }));
        assert_eq!(
            "not-audio:html".parse(),
            Ok(Fault::NotAudio { json: false })
        );
        assert!("not-audio:mp3".parse::<Fault>().is_err());
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
    fn error_page_misleading_and_echo_forms_parse() {
        assert_eq!(
            "page:502:html".parse(),
            Ok(Fault::Page {
                status: 502,
                body: PageBody::Html,
                retry_after: None
            })
        );
        assert_eq!(
            "page:429:text:retry-after=1".parse(),
            Ok(Fault::Page {
                status: 429,
                body: PageBody::Text,
                retry_after: Some(1)
            })
        );
        assert_eq!(
            "page:503:empty:retry-after=0".parse(),
            Ok(Fault::Page {
                status: 503,
                body: PageBody::Empty,
                retry_after: Some(0)
            })
        );
        assert_eq!(
            "misleading:504".parse(),
            Ok(Fault::Misleading { status: 504 })
        );
        assert_eq!(
            " misleading:500 ".parse(),
            Ok(Fault::Misleading { status: 500 })
        );
        assert_eq!(
            "echo-auth:400".parse(),
            Ok(Fault::EchoAuth {
                status: 400,
                pad: 0
            })
        );
        assert_eq!(
            "echo-auth:502:pad=77".parse(),
            Ok(Fault::EchoAuth {
                status: 502,
                pad: 77
            })
        );
        for body in [PageBody::Html, PageBody::Text, PageBody::Empty] {
            assert_eq!(
                format!("page:500:{}", body.name()).parse(),
                Ok(Fault::Page {
                    status: 500,
                    body,
                    retry_after: None
                })
            );
        }
    }

    #[test]
    fn bad_page_misleading_and_echo_forms_are_refused_with_the_reason() {
        for (bad, reason) in [
            ("page", "unknown fault"),
            ("page:502", "unknown fault"),
            ("page:502:json", "html, text or empty"),
            ("page:200:html", "400..=599"),
            ("page:502:html:retry-after=x", "retry-after=<seconds>"),
            ("page:502:html:retry-after=1:more", "too many parts"),
            ("misleading", "unknown fault"),
            ("misleading:429", "500..=599"),
            ("misleading:600", "500..=599"),
            ("misleading:504:retry-after=1", "unknown fault"),
            ("echo-auth", "unknown fault"),
            ("echo-auth:302", "400..=599"),
            ("echo-auth:4OO", "400..=599"),
            ("echo-auth:500:pad=x", "pad=<characters>"),
            ("echo-auth:500:pad=65537", "pad=<characters>"),
            ("echo-auth:500:pad=1:more", "too many parts"),
        ] {
            let error = bad.parse::<Fault>().expect_err(bad);
            let text = error.to_string();
            assert!(text.contains(&format!("`{bad}`")), "{text}");
            assert!(text.contains(reason), "{bad}: {text}");
        }
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
