//! Lyrics in the section format the providers read: `[Verse]`, `[Chorus]`,
//! `[Bridge]`, `[Intro]`, `[Outro]`, `[Instrumental]` markers on their own
//! line, and every line after a marker a separate vocal line.
//!
//! SoundPiece documents the format for its `lyrics` field (at most 3000
//! characters); MusicGPT sends lyrics back in it, with numbered markers such
//! as `[Verse 2]`. [`Lyrics::builder`] writes it, [`Lyrics::parse`] reads it,
//! and `Display` renders it again, so that
//! `Lyrics::parse(&lyrics.to_string()) == Ok(lyrics)` for every value either
//! of them produces.
//!
//! The parser is tolerant: markers in any letter case, with a number
//! (`[Verse 2]`) or with spaces inside the brackets, blank lines anywhere,
//! lines before the first marker (kept as [`Lyrics::preamble`]), and
//! markers it does not know (`[Pre-Chorus]`, kept as [`SectionKind::Other`]).
//! A line holding only `[...]` is always read as a marker, as a provider
//! would read it.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// What a section is, as its marker says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SectionKind {
    /// `[Intro]`.
    Intro,
    /// `[Verse]`.
    Verse,
    /// `[Chorus]`.
    Chorus,
    /// `[Bridge]`.
    Bridge,
    /// `[Outro]`.
    Outro,
    /// `[Instrumental]`: a section without vocals.
    Instrumental,
    /// Any other marker, kept with its text as written (`Pre-Chorus`,
    /// `Hook`), so that nothing a provider sent is lost.
    Other(String),
}

impl SectionKind {
    /// The marker name as the providers document it (`Verse`), or the
    /// original text of an [`SectionKind::Other`] marker.
    pub fn name(&self) -> &str {
        match self {
            SectionKind::Intro => "Intro",
            SectionKind::Verse => "Verse",
            SectionKind::Chorus => "Chorus",
            SectionKind::Bridge => "Bridge",
            SectionKind::Outro => "Outro",
            SectionKind::Instrumental => "Instrumental",
            SectionKind::Other(name) => name,
        }
    }

    /// The documented kind named `word` (any letter case), if it is one.
    fn known(word: &str) -> Option<Self> {
        const KNOWN: [SectionKind; 6] = [
            SectionKind::Intro,
            SectionKind::Verse,
            SectionKind::Chorus,
            SectionKind::Bridge,
            SectionKind::Outro,
            SectionKind::Instrumental,
        ];
        KNOWN
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(word))
    }
}

/// One section: its marker and the vocal lines under it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Section {
    kind: SectionKind,
    number: Option<u32>,
    lines: Vec<String>,
}

impl Section {
    /// What the marker says the section is.
    pub fn kind(&self) -> &SectionKind {
        &self.kind
    }

    /// The marker's number (`2` for `[Verse 2]`), if it has one.
    pub fn number(&self) -> Option<u32> {
        self.number
    }

    /// The vocal lines, in order, each trimmed and non-empty.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The marker line, brackets included (`[Verse 2]`).
    pub fn marker(&self) -> String {
        match self.number {
            Some(number) => format!("[{} {number}]", self.kind.name()),
            None => format!("[{}]", self.kind.name()),
        }
    }
}

/// Song lyrics split into marked sections.
///
/// ```
/// use songbind::lyrics::{Lyrics, SectionKind};
///
/// let lyrics = Lyrics::builder()
///     .verse(["This is a demo song, don't get too excited", "Wrote it in me lounge"])
///     .chorus(["It's only a demo, keep your hopes low"])
///     .build();
/// let text = lyrics.to_string();
/// assert_eq!(
///     text,
///     "[Verse]\nThis is a demo song, don't get too excited\nWrote it in me lounge\n\n\
///      [Chorus]\nIt's only a demo, keep your hopes low"
/// );
/// // SoundPiece's limit, as its spec states it.
/// let limit = songbind::soundpiece::limits::CREATE_REMIX_SONG_REQUEST_LYRICS;
/// assert!(limit.check_text(&text).is_ok());
///
/// let read = Lyrics::parse("[verse 2]\n\nEvery road leads back\n[Pre-Chorus]\nto the sea").unwrap();
/// assert_eq!(read.sections()[0].kind(), &SectionKind::Verse);
/// assert_eq!(read.sections()[0].number(), Some(2));
/// assert_eq!(read.sections()[1].kind(), &SectionKind::Other("Pre-Chorus".into()));
/// assert_eq!(Lyrics::parse(&read.to_string()).unwrap(), read);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Lyrics {
    preamble: Vec<String>,
    sections: Vec<Section>,
}

impl Lyrics {
    /// Starts building lyrics section by section.
    pub fn builder() -> LyricsBuilder {
        LyricsBuilder::default()
    }

    /// Reads lyrics in the section format.
    ///
    /// Tolerant of what providers and people write (see the module docs);
    /// blank lines are dropped and every line is trimmed. Fails only on
    /// control characters other than tab and line breaks, which no vocal
    /// line holds: the error names the line.
    pub fn parse(text: &str) -> Result<Self> {
        for (number, line) in split_lines(text).enumerate() {
            if let Some(bad) = line.chars().find(|c| c.is_control() && *c != '\t') {
                return Err(Error::validation(
                    "lyrics",
                    format!(
                        "line {} holds the control character U+{:04X}",
                        number + 1,
                        u32::from(bad)
                    ),
                ));
            }
        }
        Ok(Self::parse_clean(text))
    }

    /// Reads text that holds no control characters besides tab and line
    /// breaks (anything else is kept as written).
    fn parse_clean(text: &str) -> Self {
        let mut lyrics = Lyrics::default();
        for line in split_lines(text) {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some((kind, number)) = read_marker(line) {
                lyrics.sections.push(Section {
                    kind,
                    number,
                    lines: Vec::new(),
                });
            } else {
                let lines = match lyrics.sections.last_mut() {
                    Some(section) => &mut section.lines,
                    None => &mut lyrics.preamble,
                };
                lines.push(line.to_owned());
            }
        }
        lyrics
    }

    /// Lines before the first marker (often none).
    pub fn preamble(&self) -> &[String] {
        &self.preamble
    }

    /// The sections, in order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// Whether there is no line and no section at all.
    pub fn is_empty(&self) -> bool {
        self.preamble.is_empty() && self.sections.is_empty()
    }

    /// Length of the rendered text in characters (Unicode scalar values),
    /// the unit in which providers' specs limit lyrics.
    pub fn len_chars(&self) -> usize {
        self.to_string().chars().count()
    }
}

impl FromStr for Lyrics {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl fmt::Display for Lyrics {
    /// The provider format: each marker on its own line, its vocal lines
    /// under it, one blank line between sections, no trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut blocks: Vec<String> = Vec::with_capacity(self.sections.len() + 1);
        if !self.preamble.is_empty() {
            blocks.push(self.preamble.join("\n"));
        }
        for section in &self.sections {
            let mut block = section.marker();
            for line in &section.lines {
                block.push('\n');
                block.push_str(line);
            }
            blocks.push(block);
        }
        f.write_str(&blocks.join("\n\n"))
    }
}

/// Builds [`Lyrics`] section by section.
///
/// Lines are normalised to what a provider will read: each is trimmed,
/// text with line breaks becomes several lines, blank lines and control
/// characters are dropped, and a line that is only `[...]` starts a new
/// section (a provider would read it as a marker).
#[derive(Clone, Debug, Default)]
pub struct LyricsBuilder {
    text: String,
}

impl LyricsBuilder {
    /// Lines before any marker.
    pub fn preamble<I, S>(self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.push_lines(lines)
    }

    /// An `[Intro]` section.
    pub fn intro<I, S>(self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.section(SectionKind::Intro, lines)
    }

    /// A `[Verse]` section.
    pub fn verse<I, S>(self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.section(SectionKind::Verse, lines)
    }

    /// A `[Chorus]` section.
    pub fn chorus<I, S>(self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.section(SectionKind::Chorus, lines)
    }

    /// A `[Bridge]` section.
    pub fn bridge<I, S>(self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.section(SectionKind::Bridge, lines)
    }

    /// An `[Outro]` section.
    pub fn outro<I, S>(self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.section(SectionKind::Outro, lines)
    }

    /// An `[Instrumental]` section (no vocal lines).
    pub fn instrumental(self) -> Self {
        self.section(SectionKind::Instrumental, std::iter::empty::<String>())
    }

    /// A section of any kind, unnumbered.
    pub fn section<I, S>(self, kind: SectionKind, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.push_marker(&kind, None).push_lines(lines)
    }

    /// A numbered section, such as `[Verse 2]`.
    pub fn numbered_section<I, S>(self, kind: SectionKind, number: u32, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.push_marker(&kind, Some(number)).push_lines(lines)
    }

    /// The finished lyrics, exactly as [`Lyrics::parse`] reads their
    /// rendering.
    pub fn build(self) -> Lyrics {
        Lyrics::parse_clean(&self.text)
    }

    fn push_marker(mut self, kind: &SectionKind, number: Option<u32>) -> Self {
        let name: String = kind
            .name()
            .chars()
            .filter(|c| !c.is_control() && !matches!(c, '[' | ']'))
            .collect();
        let name = name.trim();
        // A marker must have a name to read back as one.
        let name = if name.is_empty() { "Section" } else { name };
        self.text.push('\n');
        match number {
            Some(number) => self.text.push_str(&format!("[{name} {number}]")),
            None => self.text.push_str(&format!("[{name}]")),
        }
        self.text.push('\n');
        self
    }

    fn push_lines<I, S>(mut self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for line in lines {
            let line: String = line.into();
            for part in split_lines(&line) {
                let clean: String = part
                    .chars()
                    .filter(|c| !c.is_control() || *c == '\t')
                    .collect();
                self.text.push_str(&clean);
                self.text.push('\n');
            }
        }
        self
    }
}

/// Splits at `\r\n`, `\n` or a lone `\r` (old Mac files and some forms).
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .flat_map(|line| line.strip_suffix('\r').unwrap_or(line).split('\r'))
}

/// The kind and number of a marker line (already trimmed), or `None` when
/// the line is a vocal line.
fn read_marker(line: &str) -> Option<(SectionKind, Option<u32>)> {
    let inner = line.strip_prefix('[')?.strip_suffix(']')?.trim();
    if inner.is_empty() || inner.contains(['[', ']']) {
        return None;
    }
    let words: Vec<&str> = inner.split_whitespace().collect();
    let known = match words.as_slice() {
        [word] => SectionKind::known(word).map(|kind| (kind, None)),
        [word, number] => SectionKind::known(word)
            .zip(number.parse::<u32>().ok())
            .map(|(kind, number)| (kind, Some(number))),
        _ => None,
    };
    Some(known.unwrap_or_else(|| (SectionKind::Other(inner.to_owned()), None)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn page_example_reads_as_verse_then_chorus() {
        let text = "[Verse]\nThis is a demo song, don't get too excited\nWrote it in me lounge while slightly half-sighted\n\n[Chorus]\nIt's only a demo, keep your hopes low\nRecorded it once, then decided \"that'll go\"";
        let lyrics = Lyrics::parse(text).unwrap();
        assert_eq!(lyrics.sections().len(), 2);
        assert_eq!(lyrics.sections()[0].kind(), &SectionKind::Verse);
        assert_eq!(lyrics.sections()[0].lines().len(), 2);
        assert_eq!(lyrics.sections()[1].kind(), &SectionKind::Chorus);
        assert_eq!(lyrics.to_string(), text);
    }

    #[test]
    fn numbered_markers_and_crlf_are_read() {
        let lyrics =
            Lyrics::parse("[Verse 1]\r\nI've been staring\r\n[Verse 2]\r\nevery turn").unwrap();
        let numbers: Vec<_> = lyrics.sections().iter().map(Section::number).collect();
        assert_eq!(numbers, [Some(1), Some(2)]);
        assert_eq!(lyrics.sections()[1].lines(), ["every turn"]);
    }

    #[test]
    fn text_before_any_marker_is_kept_as_preamble() {
        let lyrics = Lyrics::parse("spoken words\n\n[Chorus]\nla la").unwrap();
        assert_eq!(lyrics.preamble(), ["spoken words"]);
        assert_eq!(lyrics.to_string(), "spoken words\n\n[Chorus]\nla la");
    }

    #[test]
    fn unknown_markers_are_kept_by_name() {
        let lyrics = Lyrics::parse("[ Pre-Chorus ]\nup\n[Chorus x2]\n[Verse 99999999999]").unwrap();
        let kinds: Vec<_> = lyrics.sections().iter().map(|s| s.kind().clone()).collect();
        assert_eq!(
            kinds,
            [
                SectionKind::Other("Pre-Chorus".into()),
                SectionKind::Other("Chorus x2".into()),
                SectionKind::Other("Verse 99999999999".into()),
            ]
        );
    }

    #[test]
    fn bracketed_text_inside_a_line_is_a_vocal_line() {
        let lyrics = Lyrics::parse("[Verse]\n[laughs] oh no\n[a] [b]\n[unclosed").unwrap();
        assert_eq!(lyrics.sections().len(), 1);
        assert_eq!(
            lyrics.sections()[0].lines(),
            ["[laughs] oh no", "[a] [b]", "[unclosed"]
        );
    }

    #[test]
    fn control_characters_are_refused_with_the_line_number() {
        let error = Lyrics::parse("[Verse]\nok\nbad\u{7}line").unwrap_err();
        assert!(error.to_string().contains("line 3"), "{error}");
        assert!(error.to_string().contains("U+0007"), "{error}");
    }

    #[test]
    fn builder_reads_a_bracketed_line_as_the_marker_a_provider_would_see() {
        let lyrics = Lyrics::builder()
            .verse(["one\ntwo", "  ", "[Chorus]", "three\u{0}"])
            .instrumental()
            .numbered_section(SectionKind::Verse, 2, ["four"])
            .build();
        assert_eq!(
            lyrics.to_string(),
            "[Verse]\none\ntwo\n\n[Chorus]\nthree\n\n[Instrumental]\n\n[Verse 2]\nfour"
        );
    }

    #[test]
    fn len_chars_counts_characters_not_bytes() {
        let lyrics = Lyrics::builder().verse(["héé"]).build();
        assert_eq!(lyrics.to_string(), "[Verse]\nhéé");
        assert_eq!(lyrics.len_chars(), 11);
    }

    fn kind_strategy() -> impl Strategy<Value = SectionKind> {
        prop_oneof![
            Just(SectionKind::Intro),
            Just(SectionKind::Verse),
            Just(SectionKind::Chorus),
            Just(SectionKind::Bridge),
            Just(SectionKind::Outro),
            Just(SectionKind::Instrumental),
            any::<String>().prop_map(SectionKind::Other),
            "[A-Za-z -]{1,12}".prop_map(SectionKind::Other),
        ]
    }

    fn line_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-zA-Z0-9 ,.'!?éü\\[\\]-]{0,40}",
            "\\[[A-Za-z]{1,8}( [0-9]{1,3})?\\]",
        ]
    }

    fn built_lyrics() -> impl Strategy<Value = Lyrics> {
        (
            prop::collection::vec(line_strategy(), 0..3),
            prop::collection::vec(
                (
                    kind_strategy(),
                    prop::option::of(any::<u32>()),
                    prop::collection::vec(line_strategy(), 0..5),
                ),
                0..6,
            ),
        )
            .prop_map(|(preamble, sections)| {
                let mut builder = Lyrics::builder().preamble(preamble);
                for (kind, number, lines) in sections {
                    builder = match number {
                        Some(number) => builder.numbered_section(kind, number, lines),
                        None => builder.section(kind, lines),
                    };
                }
                builder.build()
            })
    }

    proptest! {
        #[test]
        fn parse_of_rendered_lyrics_gives_them_back(lyrics in built_lyrics()) {
            prop_assert_eq!(Lyrics::parse(&lyrics.to_string()).unwrap(), lyrics);
        }

        #[test]
        fn parse_never_panics_and_its_result_round_trips(text in any::<String>()) {
            if let Ok(lyrics) = Lyrics::parse(&text) {
                prop_assert_eq!(Lyrics::parse(&lyrics.to_string()).unwrap(), lyrics);
            }
        }

        #[test]
        fn parse_of_marker_heavy_text_round_trips(
            text in "(\\[[ A-Za-z0-9\\[\\]-]{0,12}\\]|[a-z ]{0,8}|\r|\n|\t){0,30}"
        ) {
            let lyrics = Lyrics::parse(&text).unwrap();
            prop_assert_eq!(Lyrics::parse(&lyrics.to_string()).unwrap(), lyrics);
        }
    }
}
