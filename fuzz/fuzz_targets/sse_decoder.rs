//! Arbitrary bytes, cut into arbitrary pieces, through
//! `SoundverseEventStream` with a small event limit and no idle timer.
//!
//! Input layout (so that libFuzzer mutates the cuts and the limit too):
//!
//! * byte 0: the event limit, `16 + 8 * byte` (16 to 2056 bytes);
//! * byte 1: how many cut points follow (`byte % 32`);
//! * then two bytes (little-endian) per cut point, taken modulo the body's
//!   length plus one (repeated points give empty pieces, as a network read
//!   can);
//! * the rest: the body.
//!
//! Besides "never panics", it checks:
//!
//! * no item follows an error that ends the stream (every error but a chunk
//!   that fails to decode), and the stream stays ended once it has ended;
//! * every decoded chunk's `raw()` is a JSON object;
//! * there are never more items than bytes (plus the closing error);
//! * a stream that ends without an error has a finished song, and one that
//!   ends with `StreamEndedEarly` has not;
//! * the stream's `progress()` is the fold of its chunks;
//! * cutting the body changes nothing: unless the event limit was hit (the
//!   limit counts a piece's unfinished line, comment or not, so where it
//!   trips depends on the cuts), the pieces decode exactly like the whole
//!   body in one piece.

#![no_main]

use bytes::Bytes;
use futures::executor::block_on;
use futures::{StreamExt, stream};
use libfuzzer_sys::fuzz_target;
use songbind::Error;
use songbind::sse::{SongProgress, SoundverseChunk, SoundverseEventStream, StreamLimits};

/// An item as compared between the two runs: the chunk, or the error text.
type Item = Result<SoundverseChunk, String>;

/// How a run went: its items, whether the event limit stopped it, and the
/// song as the stream saw it.
struct Run {
    items: Vec<Item>,
    hit_limit: bool,
}

/// Whether `error` is one after which the stream yields nothing more.
fn ends_the_stream(error: &Error) -> bool {
    !matches!(error, Error::Decode { what, .. } if what == "Soundverse stream chunk")
}

fn decode(pieces: Vec<Bytes>, max_event_bytes: usize, body_len: usize) -> Run {
    let source = stream::iter(pieces.into_iter().map(Ok::<_, Error>));
    let limits = StreamLimits {
        max_event_bytes,
        idle_timeout: None,
    };
    let mut events = SoundverseEventStream::with_limits(source, limits);
    let mut items = Vec::new();
    let mut hit_limit = false;
    let mut ended_by: Option<String> = None;
    let mut folded = SongProgress::new();
    while let Some(item) = block_on(events.next()) {
        assert!(
            ended_by.is_none(),
            "an item followed the error that ended the stream: {ended_by:?}"
        );
        match item {
            Ok(chunk) => {
                assert!(
                    chunk.raw().is_object(),
                    "chunk raw is not an object: {chunk:?}"
                );
                folded.apply(&chunk);
                items.push(Ok(chunk));
            }
            Err(error) => {
                hit_limit |= matches!(error, Error::EventTooLarge { .. });
                let text = error.to_string();
                if ends_the_stream(&error) {
                    if matches!(error, Error::StreamEndedEarly { .. }) {
                        assert!(
                            !events.progress().is_finished(),
                            "ended early with a finished song"
                        );
                    }
                    ended_by = Some(text.clone());
                }
                items.push(Err(text));
            }
        }
        assert!(
            items.len() <= body_len + 1,
            "{} items from {body_len} bytes",
            items.len()
        );
    }
    assert!(
        block_on(events.next()).is_none(),
        "the stream yielded again after it ended"
    );
    if ended_by.is_none() {
        assert!(
            events.progress().is_finished(),
            "the stream ended quietly before the song was finished"
        );
    }
    assert_eq!(
        events.progress(),
        &folded,
        "progress is not the fold of the chunks"
    );
    Run { items, hit_limit }
}

fuzz_target!(|data: &[u8]| {
    let (limit, rest) = data.split_first().map_or((0, data), |(b, r)| (*b, r));
    let (cut_count, rest) = rest.split_first().map_or((0, rest), |(b, r)| (*b, r));
    let cut_bytes = usize::from(cut_count % 32) * 2;
    let (cut_spec, body) = rest.split_at(cut_bytes.min(rest.len()));
    let max_event_bytes = 16 + 8 * usize::from(limit);

    let mut points: Vec<usize> = cut_spec
        .chunks(2)
        .map(|pair| {
            let raw = u16::from_le_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            usize::from(raw) % (body.len() + 1)
        })
        .collect();
    points.push(0);
    points.push(body.len());
    points.sort_unstable();
    let pieces: Vec<Bytes> = points
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&body[w[0]..w[1]]))
        .collect();

    let cut = decode(pieces, max_event_bytes, body.len());
    let whole = decode(
        vec![Bytes::copy_from_slice(body)],
        max_event_bytes,
        body.len(),
    );
    if !cut.hit_limit && !whole.hit_limit {
        assert_eq!(cut.items, whole.items, "cutting the body changed the items");
    }
});
