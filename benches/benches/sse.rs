//! SSE decoding throughput: `songbind::sse::SoundverseEventStream` (typed
//! chunks and progress tracking) against the floor of raw
//! `eventsource-stream` plus `serde_json::from_str::<Value>`, both reading
//! the same pieces of the same long Soundverse stream in memory.
//!
//! `cargo bench -p songbind-benches --bench sse` prints the ratio (the
//! target is at least 1.0x the floor's throughput), then criterion's own
//! statistics for both sides.
//!
//! For information it also times the other way to frame the stream,
//! `eventsource-stream` for every SSE field with songbind's typed decoding
//! and progress tracking behind it (`es-typed`; without the byte-level
//! guards a real stream would need in front of it, so a best case), which
//! is how the choice of framing in `songbind::sse` was made (BENCHMARKS.md,
//! section 1).

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use eventsource_stream::Eventsource;
use futures::executor::block_on;
use futures::{StreamExt, stream};
use serde_json::Value;
use songbind::sse::{
    DEFAULT_MAX_EVENT_BYTES, SongProgress, SoundverseChunk, SoundverseEventStream, StreamLimits,
};
use songbind_benches::sse_fixture::{self, SseFixture};
use songbind_benches::timing::{self, Bound, Mode};

/// Songs in the stream (v6 and v7 alternating, about 100 events each).
const SONGS: usize = 40;
/// Largest piece the stream is cut into, in bytes (a TCP read's worth).
const MAX_PIECE: usize = 1024;
/// The seed of the cuts.
const SEED: u64 = 0x5EED_0006;
/// No idle timer: both sides run on a plain executor, without Tokio time.
const LIMITS: StreamLimits = StreamLimits {
    max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
    idle_timeout: None,
};

/// The subject: typed chunks and progress; returns the chunks read.
fn typed(pieces: Vec<Bytes>) -> usize {
    let bytes = stream::iter(pieces.into_iter().map(Ok::<_, songbind::Error>));
    let mut events = SoundverseEventStream::with_limits(bytes, LIMITS);
    let mut read = 0;
    block_on(async {
        while let Some(item) = events.next().await {
            match item {
                Ok(chunk) => {
                    black_box(&chunk);
                    read += 1;
                }
                Err(error) => panic!("the fixture must decode: {error}"),
            }
        }
    });
    assert!(events.progress().is_complete(), "the last song completes");
    read
}

/// The floor: raw SSE events, each `data` parsed as a JSON value.
fn raw(pieces: Vec<Bytes>) -> usize {
    let mut events = stream::iter(pieces.into_iter().map(Ok::<_, Infallible>)).eventsource();
    let mut read = 0;
    block_on(async {
        while let Some(item) = events.next().await {
            let event = match item {
                Ok(event) => event,
                Err(error) => panic!("the fixture must parse: {error}"),
            };
            let value: Value = match serde_json::from_str(&event.data) {
                Ok(value) => value,
                Err(error) => panic!("the fixture's data is JSON: {error}"),
            };
            black_box(&value);
            read += 1;
        }
    });
    read
}

/// The other framing: `eventsource-stream` for every SSE field, then the
/// same typed decoding and progress tracking as `typed`.
fn es_typed(pieces: Vec<Bytes>) -> usize {
    let mut events = stream::iter(pieces.into_iter().map(Ok::<_, Infallible>)).eventsource();
    let mut song = SongProgress::new();
    let mut read = 0;
    block_on(async {
        while let Some(item) = events.next().await {
            let event = match item {
                Ok(event) => event,
                Err(error) => panic!("the fixture must parse: {error}"),
            };
            match SoundverseChunk::decode(&event.data, &event.event) {
                Ok(chunk) => {
                    song.apply(&chunk);
                    black_box(&chunk);
                    read += 1;
                }
                Err(error) => panic!("the fixture must decode: {error}"),
            }
        }
    });
    assert!(song.is_complete(), "the last song completes");
    read
}

/// Times one decode, leaving the copy of the piece list out.
fn timed(decode: fn(Vec<Bytes>) -> usize, pieces: &[Bytes]) -> Duration {
    let input = pieces.to_vec();
    let start = Instant::now();
    black_box(decode(input));
    start.elapsed()
}

/// Decodes with `subject` and the `raw` floor in interleaved rounds;
/// returns the subject's throughput as a multiple of the floor's.
fn compare(
    name: &str,
    subject: fn(Vec<Bytes>) -> usize,
    label: &str,
    fixture: &SseFixture,
    pieces: &[Bytes],
    rounds: usize,
) -> f64 {
    for _ in 0..3 {
        timed(raw, pieces); // warm caches and the allocator on both sides
        timed(subject, pieces);
    }
    let comparison = timing::interleave(rounds, || timed(raw, pieces), || timed(subject, pieces));
    let mib = fixture.body.len() as f64 / (1024.0 * 1024.0);
    let ratio = comparison.throughput_ratio();
    println!(
        "sse {name}/raw throughput, {label}: {ratio:.3}x; paired-round median {:.3}x",
        1.0 / comparison.paired_ratio_median
    );
    timing::print_summary("raw", &comparison.floor);
    timing::print_summary(name, &comparison.subject);
    println!(
        "    raw {:.1} MiB/s, {name} {:.1} MiB/s",
        mib / comparison.floor.median,
        mib / comparison.subject.median
    );
    ratio
}

/// `SONGBIND_BENCH_PROFILE=typed|raw|es-typed[:runs]`: decodes with one side only
/// (10 times by default) and exits, for `perf record` or
/// `valgrind --tool=callgrind`.
fn profile_if_asked(pieces: &[Bytes]) {
    let Ok(spec) = std::env::var("SONGBIND_BENCH_PROFILE") else {
        return;
    };
    let (side, runs) = spec.split_once(':').unwrap_or((spec.as_str(), "10"));
    let decode: fn(Vec<Bytes>) -> usize = match side {
        "typed" => typed,
        "raw" => raw,
        "es-typed" => es_typed,
        other => panic!("SONGBIND_BENCH_PROFILE: `{other}` is not typed, raw or es-typed"),
    };
    for _ in 0..runs.parse::<usize>().unwrap_or(10) {
        black_box(decode(pieces.to_vec()));
    }
    std::process::exit(0);
}

fn main() {
    let mode = Mode::from_args();
    let fixture = sse_fixture::build(SONGS);
    let pieces = sse_fixture::split(&fixture.body, MAX_PIECE, SEED);
    profile_if_asked(&pieces);
    let small_pieces = sse_fixture::split(&fixture.body, 64, SEED);
    assert_eq!(
        typed(pieces.clone()),
        fixture.events,
        "typed reads every event"
    );
    assert_eq!(raw(pieces.clone()), fixture.events, "raw reads every event");
    assert_eq!(
        es_typed(pieces.clone()),
        fixture.events,
        "es-typed reads every event"
    );
    println!(
        "fixture: {} songs, {} events, {} keepalives, {} bytes; {} pieces of 1..={MAX_PIECE} bytes (seed {SEED:#x})",
        fixture.songs,
        fixture.events,
        fixture.keepalives,
        fixture.body.len(),
        pieces.len()
    );
    if mode == Mode::Smoke {
        println!("smoke run (cargo test --benches): not a measurement");
    }

    let rounds = mode.rounds(301, 3);
    const PIECES: &str = "pieces of 1..=1024 bytes";
    const SMALL: &str = "pieces of 1..=64 bytes";
    let ratio = compare("typed", typed, PIECES, &fixture, &pieces, rounds);
    let small = compare(
        "typed",
        typed,
        SMALL,
        &fixture,
        &small_pieces,
        rounds / 3 + 1,
    );
    let es = compare(
        "es-typed",
        es_typed,
        PIECES,
        &fixture,
        &pieces,
        rounds / 3 + 1,
    );
    let es_small = compare(
        "es-typed",
        es_typed,
        SMALL,
        &fixture,
        &small_pieces,
        rounds / 9 + 1,
    );
    println!(
        "(informational, no target) sse typed/raw throughput with 1..=64-byte pieces: {small:.3}x"
    );
    println!(
        "(informational, no target) sse es-typed/raw throughput (eventsource-stream framing, typed decoding): {es:.3}x, with 1..=64-byte pieces {es_small:.3}x"
    );
    timing::report(mode, "sse typed/raw throughput", ratio, Bound::AtLeast, 1.0);

    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut group = criterion.benchmark_group("sse");
    group.throughput(Throughput::Bytes(fixture.body.len() as u64));
    group.bench_function("raw eventsource + Value", |b| {
        b.iter_batched(|| pieces.clone(), raw, BatchSize::SmallInput)
    });
    group.bench_function("typed SoundverseEventStream", |b| {
        b.iter_batched(|| pieces.clone(), typed, BatchSize::SmallInput)
    });
    group.finish();
    criterion.final_summary();
}
