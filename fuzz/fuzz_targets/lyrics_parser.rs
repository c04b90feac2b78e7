//! Arbitrary text into `Lyrics::parse`; what parses must render and parse
//! back to the same value. The same text, fed line by line to the
//! builder, must build lyrics that round-trip too.
//!
//! Non-UTF-8 input is read lossily (U+FFFD), so that no execution is
//! wasted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use songbind::lyrics::{Lyrics, SectionKind};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let has_control = text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
    match Lyrics::parse(&text) {
        Ok(lyrics) => {
            assert!(!has_control, "accepted a control character");
            let rendered = lyrics.to_string();
            let again = Lyrics::parse(&rendered);
            assert_eq!(
                again.as_ref().ok(),
                Some(&lyrics),
                "parse(render(x)) != x for {rendered:?}"
            );
            assert_eq!(lyrics.len_chars(), rendered.chars().count());
            assert_eq!(lyrics.is_empty(), rendered.is_empty());
        }
        Err(error) => {
            assert!(
                has_control,
                "refused text without a control character: {error}"
            );
        }
    }

    // The builder: the first line names an unknown section, the rest are
    // its lines, between a preamble and a numbered verse.
    let mut lines = text.lines();
    let name = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.collect();
    let number = data.first().map_or(0, |b| u32::from(*b));
    let built = Lyrics::builder()
        .preamble(rest.iter().take(1).copied())
        .section(SectionKind::Other(name.to_owned()), rest.iter().copied())
        .numbered_section(SectionKind::Verse, number, rest.iter().rev().copied())
        .instrumental()
        .build();
    let rendered = built.to_string();
    assert_eq!(
        Lyrics::parse(&rendered).ok().as_ref(),
        Some(&built),
        "built lyrics do not round-trip: {rendered:?}"
    );
});
