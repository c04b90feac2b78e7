//! Arbitrary bytes, read lossily as text, into
//! `songbind::webhook::parse_headers_file` (what `webhooks verify
//! --headers-file` reads).
//!
//! Besides "never panics" (a `HeaderMap` panics past 24,576 names; a
//! parser that appends blindly would), it checks:
//!
//! * an answer holds at most `MAX_HEADER_LINES` values;
//! * an error names a line that exists (1 ..= the number of lines);
//! * every header kept is one of the input's lines, `name: value` with
//!   the value trimmed: nothing is made up.

#![no_main]

use libfuzzer_sys::fuzz_target;
use songbind::webhook::{MAX_HEADER_LINES, parse_headers_file};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The parser skips a leading byte order mark; so does every check here.
    let lines = text.strip_prefix('\u{feff}').unwrap_or(&text);
    match parse_headers_file(&text) {
        Ok(headers) => {
            assert!(headers.len() <= MAX_HEADER_LINES);
            for (name, value) in &headers {
                let value = value.to_str().expect("visible ASCII, as parsed");
                let found = lines.lines().any(|line| {
                    line.split_once(':').is_some_and(|(n, v)| {
                        n.trim().eq_ignore_ascii_case(name.as_str()) && v.trim() == value
                    })
                });
                assert!(found, "{name}: {value} is not in the input");
            }
        }
        Err(error) => {
            let count = lines.lines().count();
            assert!(error.line >= 1 && error.line <= count.max(1), "{error}");
            let _ = error.to_string();
        }
    }
});
