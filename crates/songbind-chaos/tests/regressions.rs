//! Bugs the fault campaign found, each reproduced on its own so that it
//! stays fixed.

use std::time::Duration;

use reqwest::Method;
use songbind::musicgpt::{AudioInput, MusicGpt, RemixRequest};
use songbind::{RetryPolicy, Secret};
use songbind_emulator::{Emulator, Fault, FaultRule, Provider};

/// Found by the first runs of `cargo chaos --seed 1` (1 to 4 MusicGPT
/// upload jobs in 100 per run): the emulator answered an injected 429/503 without reading the
/// upload, then closed the connection with the rest of the upload unread
/// (a TCP reset). The client, still writing the file, got `Broken pipe`
/// instead of the answer, so a refused create became `Error::Transport`
/// (not retried: a MusicGPT create is not idempotent) instead of being
/// retried after `Retry-After`.
///
/// The race was lost in about 4 runs out of 10 on one submission with three
/// refusals, so the scenario runs 10 times: before the fix this test failed
/// with a probability above 99 %.
#[tokio::test]
async fn a_refused_upload_gets_its_answer_so_the_create_is_retried() {
    let file = tempfile::Builder::new().suffix(".mp3").tempfile().unwrap();
    std::fs::write(file.path(), vec![0x5a; 64 * 1024]).unwrap();
    let request = RemixRequest::new(AudioInput::File(file.path().to_owned()), "jazz");
    for round in 0..10 {
        let emulator = Emulator::start_for_tests().await.unwrap();
        emulator.inject(
            FaultRule::new(Fault::Status {
                status: 429,
                retry_after: Some(0),
            })
            .provider(Provider::MusicGpt)
            .route(Method::POST, "/Remix")
            .times(3),
        );
        let client = MusicGpt::new(
            &emulator.base_url(Provider::MusicGpt),
            &Secret::from("mgpt_test"),
        )
        .unwrap()
        .retry_policy(RetryPolicy {
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        });
        let submitted = client.submit_remix(&request).await;
        let creates = emulator
            .received()
            .iter()
            .filter(|r| r.method == Method::POST && r.path == "/Remix")
            .count();
        assert!(
            submitted.is_ok(),
            "round {round}: after {creates} creates: {:?}",
            submitted.map(|job| job.id().to_owned())
        );
        assert_eq!(creates, 4, "round {round}: three refusals, then the create");
        assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);
    }
}
