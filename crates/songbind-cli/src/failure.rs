//! How a run fails: one line on stderr and an exit status that says whether
//! anything was sent.
//!
//! | status | meaning |
//! |---|---|
//! | 2 | refused before any request: clap's usage errors, values the `songbind` request types refuse, no API key |
//! | 1 | failed after a request went out: provider errors, failed jobs, timeouts, downloads |
//! | 130 | interrupted with Ctrl-C |

use std::fmt;
use std::process::ExitCode;

/// Why the command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// Refused before any request was sent (exit 2).
    Usage(String),
    /// Failed after a request was sent (exit 1).
    Runtime(String),
    /// Interrupted by the user (exit 130).
    Interrupted(String),
}

impl Failure {
    /// A usage failure for `flag`: `invalid <flag>: <reason>`.
    pub fn invalid(flag: &str, reason: impl fmt::Display) -> Self {
        Failure::Usage(format!("invalid {flag}: {reason}"))
    }

    /// The process exit status for this failure.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Usage(_) => 2,
            Failure::Runtime(_) => 1,
            Failure::Interrupted(_) => 130,
        })
    }
}

impl fmt::Display for Failure {
    /// `error: <message>` on one line, whatever the message held.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Failure::Usage(message) | Failure::Runtime(message) | Failure::Interrupted(message)) =
            self;
        write!(f, "error: {}", one_line(message))
    }
}

/// A `songbind` error that happened after a request went out, with every
/// cause in its chain (a connection error says why it could not connect).
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// `text` with every run of whitespace (newlines included) made one space,
/// and any other control character shown escaped (see
/// [`printable`](crate::output::printable)).
pub fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::output::printable(&line).into_owned()
}

/// clap's error (missing flag, bad value, unknown flag) as one line: its
/// message and tips without the usage block, and where to read more.
pub fn clap_one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let kept: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty()
                && !line.starts_with("Usage:")
                && !line.starts_with("For more information")
        })
        .collect();
    let message = one_line(&kept.join(" "));
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    format!("error: {message} (see --help)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn messages_are_one_line() {
        let failure = Failure::Runtime("provider said:\n  no\n\nmore".to_owned());
        assert_eq!(failure.to_string(), "error: provider said: no more");
    }

    #[test]
    fn escape_sequences_in_a_message_are_shown_escaped() {
        let failure = Failure::Runtime("bad \u{1b}]0;pwned\u{7}\u{1b}[2J request".to_owned());
        let text = failure.to_string();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(text.contains("\\u{1b}]0;pwned"), "{text}");
    }

    #[test]
    fn exit_statuses_tell_refusals_from_failures() {
        assert_eq!(Failure::Usage(String::new()).exit_code(), ExitCode::from(2));
        assert_eq!(
            Failure::Runtime(String::new()).exit_code(),
            ExitCode::from(1)
        );
    }

    #[test]
    fn clap_errors_keep_the_flag_and_lose_the_usage_block() {
        let error = crate::args::Cli::try_parse_from(["songbind", "soundverse", "generate"])
            .expect_err("--prompt is required");
        let line = clap_one_line(&error);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--prompt"), "{line}");
        assert!(!line.contains("Usage:"), "{line}");
    }

    #[test]
    fn causes_are_appended_once() {
        let io = std::io::Error::other("connection refused");
        let error = songbind::Error::Io {
            path: "x".to_owned(),
            source: io,
        };
        assert_eq!(describe(&error), "x: connection refused");
    }
}
