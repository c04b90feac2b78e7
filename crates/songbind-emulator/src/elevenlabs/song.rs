//! What the emulated model "makes": a composition plan from a prompt
//! (deterministic), a song's metadata and word timestamps from its plan, and
//! the copyright guard's refusals with their suggestions.

use std::collections::HashSet;

use serde_json::{Value, json};
use songbind_elevenlabs::limits::COMPOSE_REQUEST_PROMPT;
use songbind_elevenlabs::types::{AnyCompositionPlan, CompositionChunk, MusicModelId};

/// How long a song is when neither `music_length_ms` nor a plan says.
pub(super) const DEFAULT_LENGTH_MS: i64 = 30_000;

/// The longest section or chunk a generated plan has (a plan of `n` ms has
/// `ceil(n / 20000)` sections of equal length).
const SECTION_MS: i64 = 20_000;

/// Artists the copyright guard knows by name (matched as whole words,
/// ignoring case), besides any text that says "in the style of".
const ARTISTS: &[&str] = &[
    "taylor swift",
    "the beatles",
    "beyonce",
    "beyoncé",
    "drake",
    "ed sheeran",
    "adele",
    "eminem",
    "metallica",
    "billie eilish",
    "daft punk",
    "coldplay",
];

/// Words that never become styles or lyrics.
const STOPWORDS: &[&str] = &[
    "about", "with", "that", "this", "from", "song", "track", "music", "make", "create", "should",
    "have", "into", "your", "their", "some", "like", "very", "more", "over", "under", "while",
];

/// The negative style every generated plan carries.
const NEGATIVE_STYLE: &str = "lo-fi";

/// Whether `text` names an artist: "in the style of", or a known artist's
/// name as whole words (case-insensitive).
pub(super) fn names_artist(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower.contains("in the style of") || ARTISTS.iter().any(|a| !find_words(&lower, a).is_empty())
}

/// Byte ranges of `phrase` in `lower` where it stands as whole words.
fn find_words(lower: &str, phrase: &str) -> Vec<(usize, usize)> {
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    lower
        .match_indices(phrase)
        .map(|(start, found)| (start, start + found.len()))
        .filter(|&(start, end)| {
            !is_word(lower[..start].chars().next_back()) && !is_word(lower[end..].chars().next())
        })
        .collect()
}

/// The prompt a `bad_prompt` refusal suggests: the prompt without its
/// "in the style of ..." clause (up to the next `,`, `.` or `;`) and without
/// artist names, plus "with an original melody and arrangement"; within the
/// prompt limit, and never itself refused.
pub(super) fn prompt_suggestion(prompt: &str) -> String {
    // Offsets found in the lowercased text are the prompt's own only if
    // lowercasing kept every character's byte length (rare letters do not);
    // otherwise work on the lowercased text, still a fine suggestion.
    let lower = prompt.to_lowercase();
    let same_offsets = prompt
        .chars()
        .all(|c| c.to_lowercase().map(char::len_utf8).sum::<usize>() == c.len_utf8());
    let mut text = if same_offsets {
        prompt.to_owned()
    } else {
        lower.clone()
    };
    let mut cuts: Vec<(usize, usize)> = ARTISTS
        .iter()
        .flat_map(|artist| find_words(&lower, artist))
        .collect();
    for (start, _) in lower.match_indices("in the style of") {
        let end = lower[start..]
            .find([',', '.', ';'])
            .map_or(lower.len(), |i| start + i);
        cuts.push((start, end));
    }
    cuts.sort_unstable();
    // Overlapping cuts become one; cut from the end so that earlier offsets
    // stay valid.
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (start, end) in cuts {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    for (start, end) in merged.into_iter().rev() {
        text.replace_range(start..end, " ");
    }
    let cleaned = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ,", ",")
        .replace(" .", ".")
        .replace(" ;", ";");
    let cleaned = cleaned.trim_matches(|c: char| c == ',' || c == '.' || c == ';' || c == ' ');
    let base = if cleaned.chars().count() < 3 {
        "An original song"
    } else {
        cleaned
    };
    let suffix = ", with an original melody and arrangement";
    let room = COMPOSE_REQUEST_PROMPT
        .max()
        .and_then(|max| usize::try_from(max).ok())
        .map_or(usize::MAX, |max| max.saturating_sub(suffix.len()));
    let base: String = base.chars().take(room).collect();
    let suggestion = format!("{base}{suffix}");
    if names_artist(&suggestion) {
        format!("An original song{suffix}")
    } else {
        suggestion
    }
}

/// The plan a `bad_composition_plan` refusal suggests: the same plan without
/// the styles that name an artist; `None` when no style names one.
pub(super) fn plan_suggestion(plan: &Value) -> Option<Value> {
    let mut suggestion = plan.clone();
    let mut removed = false;
    let mut clean = |object: &mut Value, key: &str| {
        if let Some(Value::Array(styles)) = object.get_mut(key) {
            let before = styles.len();
            styles.retain(|style| !style.as_str().is_some_and(names_artist));
            removed |= styles.len() != before;
        }
    };
    clean(&mut suggestion, "positive_global_styles");
    clean(&mut suggestion, "negative_global_styles");
    for list in ["sections", "chunks"] {
        if let Some(Value::Array(items)) = suggestion.get_mut(list) {
            for item in items {
                for key in [
                    "positive_local_styles",
                    "negative_local_styles",
                    "positive_styles",
                    "negative_styles",
                ] {
                    clean(item, key);
                }
            }
        }
    }
    removed.then_some(suggestion)
}

/// The significant words of a prompt: at least four letters, not a
/// stopword, lowercased, each once, at most six, each at most 20 characters.
fn keywords(prompt: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in prompt.split(|c: char| !(c.is_alphanumeric() || c == '-')) {
        let word: String = word.to_lowercase().chars().take(20).collect();
        if word.chars().count() >= 4
            && !STOPWORDS.contains(&word.as_str())
            && !words.contains(&word)
        {
            words.push(word);
        }
        if words.len() == 6 {
            break;
        }
    }
    if words.is_empty() {
        words = vec!["melodic".to_owned(), "warm".to_owned()];
    }
    words
}

/// Names of a plan's sections: one section is a verse; from three on, an
/// intro and an outro frame verses and choruses.
fn section_names(count: usize) -> Vec<&'static str> {
    const MIDDLE: [&str; 4] = ["Verse", "Chorus", "Verse", "Bridge"];
    match count {
        0 => Vec::new(),
        1 => vec!["Verse"],
        2 => vec!["Verse", "Chorus"],
        _ => std::iter::once("Intro")
            .chain((0..count - 2).map(|i| if i % 2 == 1 { "Chorus" } else { MIDDLE[i % 4] }))
            .chain(std::iter::once("Outro"))
            .collect(),
    }
}

/// The composition plan the emulated model makes for `prompt`: `length_ms`
/// (or [`DEFAULT_LENGTH_MS`]) split into sections of equal length (at most
/// 20 s each, the last taking the remainder), styles from the prompt's
/// significant words, two lyric lines per verse, chorus and bridge (none
/// when `instrumental`), in the format `model` takes.
pub(super) fn make_plan(
    prompt: &str,
    length_ms: Option<i64>,
    model: MusicModelId,
    instrumental: bool,
) -> Value {
    let total = length_ms.unwrap_or(DEFAULT_LENGTH_MS).max(1);
    let count = usize::try_from((total + SECTION_MS - 1) / SECTION_MS).unwrap_or(1);
    let words = keywords(prompt);
    let global: Vec<&str> = words.iter().take(3).map(String::as_str).collect();
    let each = total / count as i64;
    let sections = section_names(count)
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let duration = if i + 1 == count {
                total - each * (count as i64 - 1)
            } else {
                each
            };
            let local = words[i % words.len()].as_str();
            let sung = !instrumental && !matches!(name, "Intro" | "Outro");
            let lines: Vec<String> = if sung {
                let word = |k: usize| words[(i + k) % words.len()].as_str();
                vec![
                    format!("{} {} tonight", capitalize(word(0)), word(1)),
                    format!("we follow the {} home", word(2)),
                ]
            } else {
                Vec::new()
            };
            (name, duration, local, lines)
        });
    match model {
        MusicModelId::MusicV1 => json!({
            "positive_global_styles": global,
            "negative_global_styles": [NEGATIVE_STYLE],
            "sections": sections.map(|(name, duration, local, lines)| json!({
                "section_name": name,
                "positive_local_styles": [local],
                "negative_local_styles": [],
                "duration_ms": duration,
                "lines": lines,
            })).collect::<Vec<_>>(),
        }),
        MusicModelId::MusicV2 => json!({
            "chunks": sections.map(|(name, duration, local, lines)| {
                let body = if lines.is_empty() {
                    "{instrumental}".to_owned()
                } else {
                    lines.join("\n")
                };
                let mut styles = global.clone();
                if !styles.contains(&local) {
                    styles.push(local);
                }
                json!({
                    "text": format!("[{name}]\n{body}"),
                    "duration_ms": duration,
                    "positive_styles": styles,
                    "negative_styles": [NEGATIVE_STYLE],
                    "context_adherence": "high",
                })
            }).collect::<Vec<_>>(),
        }),
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// One stretch of a song: its length, sung lines and styles.
struct Segment {
    duration_ms: i64,
    lines: Vec<String>,
    styles: Vec<String>,
}

/// A plan's segments in order (an `AudioRefChunk` is its range, unsung).
fn segments(plan: &AnyCompositionPlan) -> (Vec<String>, Vec<Segment>) {
    match plan {
        AnyCompositionPlan::MusicPrompt(plan) => (
            plan.positive_global_styles.clone(),
            plan.sections
                .iter()
                .map(|section| Segment {
                    duration_ms: section.duration_ms.max(0),
                    lines: section.lines.iter().map(|l| l.to_string()).collect(),
                    styles: section.positive_local_styles.clone(),
                })
                .collect(),
        ),
        AnyCompositionPlan::CompositionPlan(plan) => (
            Vec::new(),
            plan.chunks
                .iter()
                .map(|chunk| match chunk {
                    CompositionChunk::GenerationChunk(chunk) => Segment {
                        duration_ms: chunk.duration_ms.max(0),
                        lines: sung_lines(&chunk.text),
                        styles: chunk.positive_styles.clone(),
                    },
                    CompositionChunk::AudioRefChunk(chunk) => Segment {
                        duration_ms: chunk
                            .range
                            .end_ms
                            .saturating_sub(chunk.range.start_ms)
                            .max(0),
                        lines: Vec::new(),
                        styles: Vec::new(),
                    },
                })
                .collect(),
        ),
    }
}

/// The lyric lines of a v2 chunk's text: without `[Section]` headers and
/// `{directions}`.
fn sung_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('['))
        .map(|line| {
            let mut out = String::new();
            let mut depth = 0usize;
            for c in line.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth = depth.saturating_sub(1),
                    _ if depth == 0 => out.push(c),
                    _ => {}
                }
            }
            out.trim().to_owned()
        })
        .filter(|line| !line.is_empty())
        .collect()
}

/// Word timestamps: each segment's words spread evenly over it, each word
/// sung for 80 % of its share.
pub(super) fn word_timestamps(plan: &AnyCompositionPlan) -> Vec<Value> {
    let mut start = 0i64;
    let mut out = Vec::new();
    for segment in segments(plan).1 {
        let words: Vec<&str> = segment
            .lines
            .iter()
            .flat_map(|line| line.split_whitespace())
            .collect();
        if !words.is_empty() {
            let share = segment.duration_ms as f64 / words.len() as f64;
            for (i, word) in words.iter().enumerate() {
                let at = start as f64 + share * i as f64;
                out.push(json!({
                    "word": word,
                    "start_ms": at.round(),
                    "end_ms": (at + share * 0.8).round(),
                }));
            }
        }
        start = start.saturating_add(segment.duration_ms);
    }
    out
}

/// Each style once, in the order first seen; linear (a plan holds up to
/// 1,550 positive styles within the spec's limits; a list scanned per style
/// made a plan of 40,000 short ones cost seconds).
fn distinct(styles: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    styles.filter(|style| seen.insert(style.clone())).collect()
}

/// The song's metadata: a title from the prompt's (or the plan's styles')
/// first words, the prompt as description, genres from the styles,
/// `["en"]` when something is sung.
pub(super) fn metadata(prompt: Option<&str>, plan: &AnyCompositionPlan) -> Value {
    let (global, segments) = segments(plan);
    let styles = distinct(
        global
            .into_iter()
            .chain(segments.iter().flat_map(|s| s.styles.iter().cloned())),
    );
    let title_words: Vec<String> = match prompt {
        Some(prompt) => keywords(prompt),
        None => styles.clone(),
    };
    let title = title_words
        .iter()
        .take(3)
        .map(|w| capitalize(w))
        .collect::<Vec<_>>()
        .join(" ");
    let description = match prompt {
        Some(prompt) => prompt.chars().take(200).collect(),
        None if styles.is_empty() => "A song made from a composition plan.".to_owned(),
        None => format!(
            "A song made from a composition plan: {}.",
            styles.join(", ")
        ),
    };
    let sung = segments.iter().any(|s| !s.lines.is_empty());
    json!({
        "title": if title.is_empty() { "Untitled".to_owned() } else { title },
        "description": description,
        "genres": styles.iter().take(2).collect::<Vec<_>>(),
        "languages": if sung { vec!["en"] } else { Vec::new() },
        "is_explicit": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artists_are_found_as_whole_words_only() {
        assert!(names_artist("A ballad like Adele"));
        assert!(names_artist("pop in the style of someone"));
        assert!(names_artist("TAYLOR SWIFT vibes"));
        assert!(!names_artist("a saddened ballad"));
        assert!(!names_artist("drakes on a pond"));
    }

    #[test]
    fn suggestions_drop_the_artist_and_are_not_refused() {
        let suggestion =
            prompt_suggestion("An upbeat pop song in the style of Taylor Swift, bright");
        assert!(!names_artist(&suggestion), "{suggestion}");
        assert!(
            suggestion.starts_with("An upbeat pop song, bright"),
            "{suggestion}"
        );
        let only = prompt_suggestion("Adele");
        assert!(!names_artist(&only), "{only}");
        let long = prompt_suggestion(&"in the style of Drake ".repeat(300));
        assert!(!names_artist(&long));
        // Letters whose lowercase is longer do not break the offsets.
        let odd = prompt_suggestion("İİİ pop like Adele, ẞ");
        assert!(!names_artist(&odd), "{odd}");
    }

    #[test]
    fn distinct_keeps_the_first_of_each_style_in_order() {
        let styles = ["pop", "rock", "pop", "jazz", "rock", "Pop"].map(String::from);
        assert_eq!(
            distinct(styles.into_iter()),
            ["pop", "rock", "jazz", "Pop"].map(String::from)
        );
    }

    #[test]
    fn plans_are_deterministic_decode_and_add_up() {
        for model in [MusicModelId::MusicV1, MusicModelId::MusicV2] {
            for length in [3_000, 25_000, 61_000, 600_000] {
                let plan = make_plan("A synthwave song about night", Some(length), model, false);
                assert_eq!(
                    plan,
                    make_plan("A synthwave song about night", Some(length), model, false)
                );
                let typed: AnyCompositionPlan = serde_json::from_value(plan).unwrap();
                assert_eq!(super::super::validate::plan_length_ms(&typed), length);
                let words = word_timestamps(&typed);
                assert!(
                    words
                        .iter()
                        .all(|w| w["end_ms"].as_f64() <= Some(length as f64))
                );
            }
        }
    }
}
