//! The JSON MusicGPT sends: `/byId` conversion states and webhook payloads,
//! and the made-up content (title, lyrics, timestamps) they carry.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{CONVERSION_COST, Status, Task};
use crate::State;

/// `status_msg` and webhook `reason` of a conversion failed by `[fail]`.
pub(super) const FAILURE_REASON: &str =
    "Remix failed: the input audio could not be processed ([fail] in the prompt)";

/// Length in seconds of the served audio file (`files::sample_wav`).
const DURATION_SECONDS: f64 = 1.0;

/// The `.wav` URL of a conversion's audio, served by the emulator.
fn audio_url(state: &State, conversion_id: &str) -> String {
    state.output_url(&format!("{conversion_id}.wav"))
}

/// The `conversion` object of a `/byId` answer.
pub(super) fn conversion_state(state: &State, task: &Task, which: usize) -> Value {
    let conversion = &task.conversions[which];
    let done = conversion.status == Status::Completed;
    json!({
        "task_id": task.task_id,
        "conversion_id": conversion.id,
        "status": conversion.status.as_str(),
        "status_msg": conversion.status_msg,
        "audio_url": done.then(|| audio_url(state, &conversion.id)),
        "conversion_cost": done.then_some(CONVERSION_COST),
        "title": done.then(|| task.title.clone()),
        "lyrics": done.then(|| task.lyrics.clone()),
        "music_style": done.then(|| task.prompt.clone()),
        "createdAt": task.created_at,
        "updatedAt": conversion.updated_at,
    })
}

/// The webhook payload of one ended conversion: the page's sample shape,
/// without `conversion_path_wav` for the second conversion; on `ERROR`,
/// `success: false` and the `reason`.
pub(super) fn conversion(state: &State, task: &Task, which: usize) -> Value {
    let conversion = &task.conversions[which];
    if conversion.status != Status::Completed {
        return json!({
            "success": false,
            "conversion_type": "Remix",
            "task_id": task.task_id,
            "conversion_id": conversion.id,
            "is_flagged": false,
            "reason": conversion.status_msg.as_deref().unwrap_or(FAILURE_REASON),
        });
    }
    let url = audio_url(state, &conversion.id);
    let mut payload = json!({
        "success": true,
        "conversion_type": "Remix",
        "task_id": task.task_id,
        "conversion_id": conversion.id,
        "conversion_path": url,
        "conversion_path_wav": url,
        "conversion_duration": DURATION_SECONDS,
        "is_flagged": false,
        "reason": "",
        "lyrics": task.lyrics,
        "lyrics_timestamped": lyrics_timestamped(&task.lyrics),
        "title": task.title,
    });
    if which != 0
        && let Some(object) = payload.as_object_mut()
    {
        object.remove("conversion_path_wav");
    }
    payload
}

/// The lyrics delivery of a task.
pub(super) fn lyrics(task: &Task) -> Value {
    json!({
        "success": true,
        "conversion_type": "Lyrics",
        "task_id": task.task_id,
        "lyrics": task.lyrics,
        "lyrics_timestamped": lyrics_timestamped(&task.lyrics),
    })
}

/// The cover-art delivery of a task.
pub(super) fn cover(state: &State, task: &Task) -> Value {
    json!({
        "success": true,
        "conversion_type": "Cover",
        "task_id": task.task_id,
        "image_path": state.output_url(&format!("{}.png", task.task_id)),
    })
}

/// The words of a prompt, without scenario markers such as `[fail]`.
fn words(prompt: &str) -> impl Iterator<Item = &str> {
    prompt
        .split_whitespace()
        .filter(|word| !(word.starts_with('[') && word.ends_with(']')))
        .map(|word| word.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|word| !word.is_empty())
}

/// A title from the prompt: its first four words in title case.
pub(super) fn title(prompt: &str) -> String {
    let title: Vec<String> = words(prompt)
        .take(4)
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        })
        .collect();
    if title.is_empty() {
        "Untitled Remix".to_owned()
    } else {
        title.join(" ")
    }
}

/// Lyrics for a remix requested without any: a short sheet from the prompt.
pub(super) fn default_lyrics(prompt: &str) -> String {
    let line = words(prompt).collect::<Vec<_>>().join(" ");
    let line = if line.is_empty() {
        "Turn it up"
    } else {
        line.as_str()
    };
    format!("[Verse 1]\n{line}\n\n[Chorus]\nTurn it up, turn it around\nThis is the remix sound")
}

/// `lyrics_timestamped`: a JSON array of `{index, text, start, end}` encoded
/// as a string (Python `json.dumps` style), one element per non-blank line,
/// numbered as in the text, spread over the one-second file.
pub(super) fn lyrics_timestamped(lyrics: &str) -> String {
    let lines: Vec<(usize, &str)> = lyrics
        .lines()
        .enumerate()
        .map(|(index, line)| (index, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .collect();
    let slot = 1000 / i64::try_from(lines.len().max(1)).unwrap_or(i64::MAX);
    let mut out = String::from("[");
    for (position, (index, text)) in lines.iter().enumerate() {
        let start = i64::try_from(position)
            .unwrap_or(i64::MAX)
            .saturating_mul(slot);
        let marker = text.starts_with('[') && text.ends_with(']');
        let end = if marker {
            start
        } else {
            start.saturating_add(slot)
        };
        if position > 0 {
            out.push_str(", ");
        }
        let _ = write!(
            out,
            "{{\"index\": {index}, \"text\": {}, \"start\": {start}, \"end\": {end}}}",
            python_json_string(text)
        );
    }
    out.push(']');
    out
}

/// A JSON string literal with non-ASCII characters escaped, as Python's
/// `json.dumps` writes it by default.
fn python_json_string(text: &str) -> String {
    let json = serde_json::to_string(text).unwrap_or_default();
    let mut out = String::with_capacity(json.len());
    for ch in json.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// An ISO 8601 UTC timestamp with milliseconds (`2025-01-15T10:00:00.000Z`).
pub(super) fn iso8601(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_iso8601_utc() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let time = UNIX_EPOCH + Duration::from_millis(1_736_935_384_250);
        assert_eq!(iso8601(time), "2025-01-15T10:03:04.250Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(iso8601(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn timed_lyrics_skip_blank_lines_and_keep_markers_instant() {
        let text = lyrics_timestamped("[Verse 1]\nHello é\n\nBye");
        assert_eq!(
            text,
            "[{\"index\": 0, \"text\": \"[Verse 1]\", \"start\": 0, \"end\": 0}, \
             {\"index\": 1, \"text\": \"Hello \\u00e9\", \"start\": 333, \"end\": 666}, \
             {\"index\": 3, \"text\": \"Bye\", \"start\": 666, \"end\": 999}]"
        );
        assert_eq!(lyrics_timestamped(""), "[]");
    }

    #[test]
    fn titles_come_from_the_prompt_without_markers() {
        assert_eq!(
            title("Create an upbeat pop remix [fail]"),
            "Create An Upbeat Pop"
        );
        assert_eq!(title("[fail]"), "Untitled Remix");
    }
}
