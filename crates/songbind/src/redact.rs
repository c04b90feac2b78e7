//! Scrubbing the API key out of provider text.
//!
//! Servers echo what they were sent: a 400 that quotes the `Authorization`
//! header, a 500 that lists the request headers, an SSE `failed` event that
//! repeats them. Every client keeps a [`Redactor`] for its key and passes
//! every error and job event through it before the caller sees them, so the
//! key is never stored in an error, printed or logged.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderValue};

use crate::error::{Answer, Error, ResumeWith, Suggestion};
use crate::secret::Secret;

/// What replaces a secret in text.
pub const MASK: &str = "***";

/// Keys shorter than this are not scrubbed: no real key is this short, and
/// masking every occurrence of one or two characters would garble the text.
const SHORTEST_KEY: usize = 4;

/// Replaces every occurrence of one API key (as sent, JSON-escaped and
/// percent-encoded) in text. Cheap to clone; its `Debug` shows no key.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    needles: Arc<[String]>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor(***)")
    }
}

impl Redactor {
    /// A redactor for `key`.
    pub(crate) fn new(key: &Secret) -> Self {
        let key = key.expose().trim();
        if key.len() < SHORTEST_KEY {
            return Self::default();
        }
        let mut needles = vec![key.to_owned()];
        let json = serde_json::to_string(key).unwrap_or_default();
        let json = json.trim_matches('"');
        let percent: String = key
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        for form in [json.to_owned(), percent] {
            if !needles.contains(&form) {
                needles.push(form);
            }
        }
        // Longest first, so that no shorter form splits a longer one.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self {
            needles: needles.into(),
        }
    }

    /// `text` with every form of the key replaced by [`MASK`].
    pub(crate) fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for needle in self.needles.iter() {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), MASK));
            }
        }
        // An excerpt (cut to a length, ending in `…`) may have cut the key
        // itself: its start, just before the `…`, is masked too.
        if let Some(cut) = out.strip_suffix('…') {
            let start = self
                .needles
                .iter()
                .filter_map(|needle| key_start_at_end(cut, needle))
                .min();
            if let Some(start) = start {
                out = Cow::Owned(format!("{}{MASK}…", &cut[..start]));
            }
        }
        out
    }

    /// Scrubs `text` in place.
    pub(crate) fn scrub(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.text(text) {
            *text = clean;
        }
    }

    pub(crate) fn scrub_option(&self, text: &mut Option<String>) {
        if let Some(text) = text {
            self.scrub(text);
        }
    }

    /// Scrubs the key from every value of `headers`, in place.
    pub(crate) fn scrub_headers(&self, headers: &mut HeaderMap) {
        for value in headers.values_mut() {
            let raw = String::from_utf8_lossy(value.as_bytes());
            if let Cow::Owned(clean) = self.text(&raw) {
                *value = HeaderValue::from_str(&clean).unwrap_or(HeaderValue::from_static(MASK));
            }
        }
    }

    fn scrub_answer(&self, answer: &mut Answer) {
        self.scrub(&mut answer.body);
        self.scrub_headers(&mut answer.headers);
    }

    /// `error` with the key scrubbed from every text it holds.
    pub(crate) fn error(&self, mut error: Error) -> Error {
        if self.needles.is_empty() {
            return error;
        }
        if let Some(resume) = error.take_resume_with() {
            error = error.resumable(self.resume(resume));
        }
        match &mut error {
            Error::RateLimited {
                message, answer, ..
            }
            | Error::InsufficientCredits {
                message, answer, ..
            }
            | Error::Unauthorized {
                message, answer, ..
            }
            | Error::ServiceUnavailable {
                message, answer, ..
            }
            | Error::IdempotencyConflict {
                message, answer, ..
            }
            | Error::Provider {
                message, answer, ..
            } => {
                self.scrub(message);
                self.scrub_answer(answer);
            }
            Error::ContentRejected {
                message,
                suggestion,
                answer,
                ..
            } => {
                self.scrub(message);
                if let Some(Suggestion::Prompt(prompt)) = suggestion {
                    self.scrub(prompt);
                }
                self.scrub_answer(answer);
            }
            Error::InvalidRequest {
                message,
                fields,
                answer,
                ..
            } => {
                self.scrub(message);
                for field in fields {
                    self.scrub(&mut field.field);
                    self.scrub(&mut field.message);
                }
                self.scrub_answer(answer);
            }
            Error::JobFailed { id, message, .. } => {
                self.scrub(id);
                self.scrub(message);
            }
            Error::StreamEndedEarly { message_id, .. } => self.scrub_option(message_id),
            Error::Timeout { waiting_for, .. } | Error::Cancelled { waiting_for, .. } => {
                self.scrub(waiting_for);
            }
            Error::Decode {
                what, reason, raw, ..
            } => {
                self.scrub(what);
                self.scrub(reason);
                self.scrub(raw);
            }
            Error::Validation { field, reason, .. } => {
                self.scrub(field);
                self.scrub(reason);
            }
            Error::Io { path, .. } => self.scrub(path),
            Error::EventTooLarge { .. }
            | Error::AnswerTooLarge { .. }
            | Error::Transport { .. }
            | Error::Webhook(_)
            | Error::Config(_) => {}
        }
        error
    }

    /// `resume` with the key scrubbed from the id it names.
    pub(crate) fn resume(&self, resume: ResumeWith) -> ResumeWith {
        match resume {
            ResumeWith::OperationId(id) => ResumeWith::OperationId(self.text(&id).into_owned()),
            ResumeWith::TaskId(id) => ResumeWith::TaskId(self.text(&id).into_owned()),
            ResumeWith::MessageId(id) => ResumeWith::MessageId(self.text(&id).into_owned()),
            key @ ResumeWith::IdempotencyKey(_) => key,
        }
    }
}

/// Where `text` ends with the first characters of `needle` (at least
/// [`SHORTEST_KEY`] of them, or all of a shorter rest), if it does.
fn key_start_at_end(text: &str, needle: &str) -> Option<usize> {
    (SHORTEST_KEY..needle.len())
        .rev()
        .filter(|len| needle.is_char_boundary(*len))
        .find(|len| text.ends_with(&needle[..*len]))
        .map(|len| text.len() - len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_the_key_is_masked() {
        let redactor = Redactor::new(&Secret::from("sk_live_a\"b c"));
        let text = r#"sent Bearer sk_live_a"b c; json "sk_live_a\"b c"; url sk_live_a%22b%20c"#;
        let clean = redactor.text(text);
        assert!(!clean.contains("sk_live"), "{clean}");
        assert_eq!(clean.matches(MASK).count(), 3, "{clean}");
    }

    #[test]
    fn a_key_cut_by_an_excerpt_is_masked_from_its_start() {
        let redactor = Redactor::new(&Secret::from("sk_live_UAPS6ASInk4I4sv7QxYz"));
        let cut = "authorization: Bearer sk_live_UAPS6ASInk4I4sv7Q…";
        assert_eq!(redactor.text(cut), "authorization: Bearer ***…");
        // Only at the cut: the same start elsewhere, or text that merely ends
        // in an ellipsis, is left alone.
        assert_eq!(
            redactor.text("sk_live_UAPS and more…"),
            "sk_live_UAPS and more…"
        );
        assert_eq!(redactor.text("nothing to see…"), "nothing to see…");
        let mut error = crate::Error::from_response(
            crate::ProviderName::Soundverse,
            reqwest::StatusCode::INTERNAL_SERVER_ERROR,
            &Default::default(),
            &format!(
                "{}authorization: Bearer sk_live_UAPS6ASInk4I4sv7QxYz",
                "x".repeat(190)
            ),
        );
        error = redactor.error(error);
        let text = format!("{error} {error:?}");
        assert!(!text.contains("sk_live_UAPS"), "{text}");
    }

    #[test]
    fn text_without_the_key_is_not_copied_and_tiny_keys_are_ignored() {
        let redactor = Redactor::new(&Secret::from("sk_live_123"));
        assert!(matches!(redactor.text("nothing here"), Cow::Borrowed(_)));
        let tiny = Redactor::new(&Secret::from("k"));
        assert_eq!(tiny.text("keep"), "keep");
        assert_eq!(format!("{redactor:?}"), "Redactor(***)");
    }
}
