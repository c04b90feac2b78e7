//! A caller's task is as large as the largest future it awaits, and it
//! keeps that size for its whole life: a backend with thousands of jobs in
//! flight pays it per job. Each provider's submit boxes its work, so the
//! future a caller awaits stays small (the scale bench, BENCHMARKS.md
//! section 6, measured 43 KB, 24 KB and 18 KB before).

#![cfg(all(feature = "soundverse", feature = "soundpiece", feature = "musicgpt"))]

use songbind::Secret;

/// The most a submit future may take.
const LIMIT: usize = 1024;

fn assert_small<F>(what: &str, future: &F) {
    let size = std::mem::size_of_val(future);
    assert!(size <= LIMIT, "{what}'s submit future is {size} bytes");
}

#[test]
fn every_providers_submit_future_is_small() {
    let key = Secret::from("key");
    let base = "http://127.0.0.1:9";

    let soundverse = songbind::soundverse::Soundverse::new(base, &key).unwrap();
    let generate = songbind::soundverse::GenerateRequest::new("a song");
    assert_small("Soundverse", &soundverse.submit_generate(&generate));

    let soundpiece = songbind::soundpiece::SoundPiece::new(base, &key).unwrap();
    let remix = songbind::soundpiece::RemixRequest::new("https://example.com/a.mp3", "la", "pop");
    assert_small("SoundPiece", &soundpiece.submit_remix(&remix));

    let musicgpt = songbind::musicgpt::MusicGpt::new(base, &key).unwrap();
    let remix = songbind::musicgpt::RemixRequest::new(
        songbind::musicgpt::AudioInput::Url("https://example.com/a.mp3".into()),
        "pop",
    );
    assert_small("MusicGPT", &musicgpt.submit_remix(&remix));
}
