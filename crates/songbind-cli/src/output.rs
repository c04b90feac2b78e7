//! What a finished run prints on stdout: a short human summary ending with
//! the song's URLs (or, for `elevenlabs compose`, its files), or with
//! `--json` one JSON object.
//!
//! The JSON objects are this crate's own shapes ([`Report`],
//! [`ComposeReport`]), not library types serialized as they are, so that
//! the command's output changes only when this file does.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use serde::Serialize;
use songbind::{JobOutput, Output, ProviderName};

/// The result of a run, as `--json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// `soundverse`, `soundpiece` or `musicgpt`.
    pub provider: &'static str,
    /// `generate`, `extend`, `remix`, or `wait` / `status` for a job
    /// followed or looked up by its id.
    pub operation: &'static str,
    /// The job's id at the provider (`msg_...`, `op_...`, a task id).
    pub id: String,
    /// SoundPiece's idempotency key: run the command again with it to
    /// follow the same operation instead of starting another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Every output, in version order.
    pub outputs: Vec<ReportOutput>,
}

/// One output of a [`Report`]: its URL and whatever else the provider said.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportOutput {
    /// Where to download it.
    pub url: String,
    /// Version (Soundverse, MusicGPT) or variation (SoundPiece), from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The track's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Length in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    /// Album art or cover image URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub album_art: Option<String>,
    /// The lyrics sung.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lyrics: Option<String>,
    /// When the URL stops working (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Where it could be played while it was being finished (Soundverse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
    /// The downloaded file, with `--output-dir` (or `--mock`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

/// The name a provider has on the command line and in the report.
pub fn provider_name(provider: ProviderName) -> &'static str {
    provider.slug()
}

impl Report {
    /// The report of a finished job, with the stream URLs seen on the way.
    pub fn new(
        operation: &'static str,
        done: JobOutput,
        stream_urls: &BTreeMap<u32, String>,
    ) -> Self {
        let outputs = done
            .outputs
            .into_iter()
            .map(|output| ReportOutput {
                stream_url: output.version.and_then(|v| stream_urls.get(&v).cloned()),
                url: output.url,
                version: output.version,
                title: output.title,
                duration_secs: output.duration_secs,
                album_art: output.album_art,
                lyrics: output.lyrics,
                expires_at: output.expires_at,
                file: None,
            })
            .collect();
        Self {
            provider: provider_name(done.provider),
            operation,
            id: done.id,
            idempotency_key: None,
            outputs,
        }
    }

    /// Prints the report on stdout: JSON (pretty on a terminal, one line
    /// otherwise) or the human summary.
    pub fn print(&self, json: bool) -> io::Result<()> {
        print(self, json, || self.summary())
    }

    /// The human summary: a heading, each output's details on one line,
    /// then, last, each output's URL (and the file it was downloaded to).
    pub fn summary(&self) -> String {
        let count = self.outputs.len();
        let mut text = format!(
            "{} {} {}: {count} output{}\n",
            self.provider,
            self.operation,
            printable(&self.id),
            if count == 1 { "" } else { "s" }
        );
        let label = |index: usize, output: &ReportOutput| {
            format!("v{}", output.version.unwrap_or(index as u32 + 1))
        };
        for (index, output) in self.outputs.iter().enumerate() {
            let mut details = Vec::new();
            if let Some(title) = &output.title {
                details.push(format!("title \"{}\"", printable(title)));
            }
            if let Some(secs) = output.duration_secs {
                details.push(format!("{secs:.1} s"));
            }
            if let Some(lyrics) = &output.lyrics {
                let lines = lyrics.lines().filter(|l| !l.trim().is_empty()).count();
                details.push(format!("lyrics of {lines} lines (--json prints them)"));
            }
            if let Some(expires) = &output.expires_at {
                details.push(format!("URL expires {}", printable(expires)));
            }
            if let Some(art) = &output.album_art {
                details.push(format!("album art {}", printable(art)));
            }
            if !details.is_empty() {
                text.push_str(&format!(
                    "  {}: {}\n",
                    label(index, output),
                    details.join(", ")
                ));
            }
        }
        if let Some(key) = &self.idempotency_key {
            text.push_str(&format!("  idempotency key: {key}\n"));
        }
        for (index, output) in self.outputs.iter().enumerate() {
            text.push_str(&format!(
                "{:<4}{}",
                label(index, output),
                printable(&output.url)
            ));
            if let Some(file) = &output.file {
                text.push_str(&format!("  ->  {}", file.display()));
            }
            text.push('\n');
        }
        text
    }
}

/// Where a job stands, in the CLI's words (each provider has its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Not finished yet: `wait` follows it.
    Running,
    /// Finished, with its outputs.
    Completed,
    /// Finished without outputs.
    Failed,
}

impl JobState {
    /// `running`, `completed` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
        }
    }
}

/// One lookup of a job (`status`), as the provider answered it.
#[derive(Clone, Debug, PartialEq)]
pub struct Looked {
    /// Who answered.
    pub provider: ProviderName,
    /// The job's id.
    pub id: String,
    /// The provider's own word for the stage (`running`, `ready`, `COMPLETED`).
    pub stage: Option<String>,
    /// Where the job stands.
    pub state: JobState,
    /// Progress in percent, when the provider says.
    pub progress: Option<u8>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The outputs ready so far.
    pub outputs: Vec<Output>,
    /// Where each version can be played while it is finished (Soundverse).
    pub stream_urls: BTreeMap<u32, String>,
}

/// What `status` prints: the job's [`Report`] (operation `status`, the
/// outputs ready so far) and where it stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusReport {
    /// Provider, operation, id and outputs, as a create reports them.
    #[serde(flatten)]
    pub report: Report,
    /// `running`, `completed` or `failed`.
    pub state: JobState,
    /// The provider's own word for the stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Progress in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StatusReport {
    /// The report of one lookup.
    pub fn new(looked: Looked) -> Self {
        let done = JobOutput {
            provider: looked.provider,
            id: looked.id,
            outputs: looked.outputs,
        };
        Self {
            report: Report::new("status", done, &looked.stream_urls),
            state: looked.state,
            stage: looked.stage,
            progress: looked.progress,
            error: looked.error,
        }
    }

    /// Prints the report on stdout, as [`Report::print`] does.
    pub fn print(&self, json: bool) -> io::Result<()> {
        print(self, json, || self.summary())
    }

    /// The human summary: where the job stands, then the outputs ready so
    /// far as a create lists them.
    pub fn summary(&self) -> String {
        let count = self.report.outputs.len();
        let mut text = format!(
            "{} {}: {}",
            self.report.provider,
            printable(&self.report.id),
            self.state.as_str()
        );
        if let Some(stage) = self.stage.as_deref().filter(|s| *s != self.state.as_str()) {
            text.push_str(&format!(" ({})", printable(stage)));
        }
        if let Some(percent) = self.progress {
            text.push_str(&format!(", {percent}%"));
        }
        text.push_str(&format!(
            ", {count} output{}\n",
            if count == 1 { "" } else { "s" }
        ));
        if let Some(error) = &self.error {
            text.push_str(&format!("  error: {}\n", printable(error)));
        }
        let listed = self.report.summary();
        if let Some((_, rest)) = listed.split_once('\n') {
            text.push_str(rest);
        }
        if self.state == JobState::Running {
            text.push_str(&format!(
                "follow it with: {}\n",
                printable(&crate::run::wait_command(
                    self.report.provider,
                    &self.report.id
                ))
            ));
        }
        text
    }
}

/// What `elevenlabs compose` made, as `--json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComposeReport {
    /// `elevenlabs`.
    pub provider: &'static str,
    /// `compose`.
    pub operation: &'static str,
    /// The song's id (`song-id`), when the provider sent one: plans can
    /// reuse the song by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub song_id: Option<String>,
    /// The files written: the audio, then (`--detailed`) the metadata.
    pub files: Vec<PathBuf>,
    /// Bytes of audio written.
    pub bytes: u64,
    /// The audio's content type, as answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

impl ComposeReport {
    /// Prints the report on stdout, as [`Report::print`] does.
    pub fn print(&self, json: bool) -> io::Result<()> {
        print(self, json, || self.summary())
    }

    /// The human summary: a heading with the song-id and the audio's size,
    /// then each file on its own line.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} {}: song-id {}, {} bytes of {}\n",
            self.provider,
            self.operation,
            self.song_id
                .as_deref()
                .map_or("(none sent)".into(), printable),
            self.bytes,
            self.content_type
                .as_deref()
                .map_or("audio".into(), printable),
        );
        let labels = ["audio", "metadata"];
        for (index, file) in self.files.iter().enumerate() {
            let label = labels.get(index).copied().unwrap_or("file");
            text.push_str(&format!("{label:<10}{}\n", file.display()));
        }
        text
    }
}

/// Prints `report` on stdout: JSON (pretty on a terminal, one line
/// otherwise) or, without `json`, its human `summary`.
fn print(report: &impl Serialize, json: bool, summary: impl FnOnce() -> String) -> io::Result<()> {
    let stdout = io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = stdout.lock();
    if json {
        let text = to_json(report, terminal).map_err(io::Error::other)?;
        writeln!(out, "{text}")?;
    } else {
        out.write_all(summary().as_bytes())?;
    }
    out.flush()
}

/// Whether `c` must never reach a terminal as it is: every control
/// character (C0, DEL and C1: escape sequences that set the window title or
/// clear the screen, carriage returns that overwrite a line) and the
/// invisible direction marks and overrides (U+202A..U+202E, U+2066..U+2069,
/// U+200E, U+200F, U+061C) that make a line read other than it is.
pub fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        )
}

/// `text` safe to show on a terminal: every [`unsafe_char`] is shown
/// escaped, as `\u{1b}`. Provider text passes through here before it is
/// printed; `--json` output goes through [`to_json`] instead.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if unsafe_char(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// `value` as JSON (pretty or on one line) in which every [`unsafe_char`]
/// is a `\uXXXX` escape: serde_json escapes only C0, so DEL, C1 and the
/// direction overrides would reach a terminal (or a log viewer) raw.
///
/// The escapes are applied to the serialized text: serde_json has escaped
/// C0 inside strings already (a raw newline is pretty-printing), and
/// outside strings JSON is ASCII, so every other such character is inside
/// a string, where `\uXXXX` stands for it exactly (all of them are in the
/// Basic Multilingual Plane).
pub fn to_json(value: &impl Serialize, pretty: bool) -> serde_json::Result<String> {
    let text = if pretty {
        serde_json::to_string_pretty(value)?
    } else {
        serde_json::to_string(value)?
    };
    let escaped = |c: char| c >= ' ' && unsafe_char(c);
    if !text.chars().any(escaped) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escaped(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c1_del_and_direction_overrides_are_escaped_in_text_and_in_json() {
        let hostile = "a\u{9b}31mb\u{7f}c\u{202e}d\u{2066}e\u{1b}f\u{200f}";
        let shown = printable(hostile);
        assert!(!shown.chars().any(unsafe_char), "{shown:?}");
        assert!(
            shown.contains("\\u{9b}") && shown.contains("\\u{202e}"),
            "{shown}"
        );
        for pretty in [false, true] {
            let text = to_json(
                &serde_json::json!({ "id": hostile, "k\u{85}": [hostile] }),
                pretty,
            )
            .unwrap();
            assert!(
                !text.chars().any(|c| c != '\n' && unsafe_char(c)),
                "{text:?}"
            );
            assert!(
                text.contains("\\u009b") && text.contains("\\u202e"),
                "{text}"
            );
            // Still JSON, and it reads back as the same text.
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back["id"], hostile);
            assert_eq!(back["k\u{85}"][0], hostile);
        }
    }

    fn done() -> JobOutput {
        JobOutput {
            provider: ProviderName::Soundverse,
            id: "msg_1".to_owned(),
            outputs: vec![
                Output {
                    title: Some("Cheerful Pop".to_owned()),
                    ..Output::new("http://x/v1.wav", Some(1))
                },
                Output::new("http://x/v2.wav", Some(2)),
            ],
        }
    }

    #[test]
    fn json_names_provider_operation_id_and_outputs_and_skips_what_is_unknown() {
        let streams = BTreeMap::from([(1, "http://x/s1.wav".to_owned())]);
        let report = Report::new("generate", done(), &streams);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["provider"], "soundverse");
        assert_eq!(json["operation"], "generate");
        assert_eq!(json["id"], "msg_1");
        assert_eq!(json["outputs"][0]["url"], "http://x/v1.wav");
        assert_eq!(json["outputs"][0]["title"], "Cheerful Pop");
        assert_eq!(json["outputs"][0]["stream_url"], "http://x/s1.wav");
        assert!(json["outputs"][1].get("title").is_none());
        assert!(json.get("idempotency_key").is_none());
    }

    #[test]
    fn control_characters_from_a_provider_are_shown_escaped() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(
            printable("a\u{1b}]0;owned\u{7}b\u{1b}[2J\u{9b}c"),
            "a\\u{1b}]0;owned\\u{7}b\\u{1b}[2J\\u{9b}c"
        );
        let mut output = done();
        output.outputs[0].title = Some("x\u{1b}[2Jy".to_owned());
        output.id = "msg\r\u{1b}]0;t\u{7}".to_owned();
        let summary = Report::new("generate", output, &BTreeMap::new()).summary();
        assert!(
            !summary.contains('\u{1b}') && !summary.contains('\r'),
            "{summary:?}"
        );
    }

    #[test]
    fn a_compose_report_names_the_song_id_and_every_file() {
        let report = ComposeReport {
            provider: "elevenlabs",
            operation: "compose",
            song_id: Some("abc123".to_owned()),
            files: vec![
                PathBuf::from("out/abc123.wav"),
                PathBuf::from("out/abc123.json"),
            ],
            bytes: 480_044,
            content_type: Some("audio/wav".to_owned()),
        };
        assert_eq!(
            report.summary(),
            "elevenlabs compose: song-id abc123, 480044 bytes of audio/wav\n\
             audio     out/abc123.wav\n\
             metadata  out/abc123.json\n"
        );
        let json = serde_json::to_value(ComposeReport {
            song_id: None,
            ..report
        })
        .unwrap();
        assert_eq!(json["files"][1], "out/abc123.json");
        assert_eq!(json["bytes"], 480_044);
        assert!(json.get("song_id").is_none());
    }

    #[test]
    fn the_summary_ends_with_every_url() {
        let summary = Report::new("generate", done(), &BTreeMap::new()).summary();
        assert_eq!(
            summary,
            "soundverse generate msg_1: 2 outputs\n  \
             v1: title \"Cheerful Pop\"\n\
             v1  http://x/v1.wav\n\
             v2  http://x/v2.wav\n"
        );
    }
}
