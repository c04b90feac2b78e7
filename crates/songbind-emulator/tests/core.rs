//! The emulator's shared machinery: served files, the binary, and waiting on
//! events. Provider behaviour is proven in the per-provider test files.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use songbind_emulator::{Emulator, Provider, sample_wav};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

#[tokio::test]
async fn output_files_are_valid_wav_and_png_served_by_the_emulator() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let wav = http()
        .get(format!("{}/files/anything_v1.wav", emulator.root_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(wav.status(), 200);
    assert_eq!(wav.headers()["content-type"], "audio/wav");
    let bytes = wav.bytes().await.unwrap();
    assert_eq!(bytes, sample_wav());
    assert_eq!(&bytes[..4], b"RIFF");

    let png = http()
        .get(format!("{}/files/cover.png", emulator.root_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    assert_eq!(&png.bytes().await.unwrap()[..8], b"\x89PNG\r\n\x1a\n");

    let missing = http()
        .get(format!("{}/files/notes.txt", emulator.root_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn sized_files_stream_exactly_the_requested_length() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let size = 300_001u32; // odd on purpose: the data part is padded to length
    let response = http()
        .get(format!("{}/files/sized-{size}.wav", emulator.root_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.content_length(), Some(u64::from(size)));
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), size as usize);
    let data_len = u32::from_le_bytes(bytes[40..44].try_into().unwrap());
    assert_eq!(data_len + 44, size);
}

#[tokio::test]
async fn waiting_for_requests_times_out_with_a_typed_error_when_none_arrive() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let error = emulator
        .wait_for_requests(1, Duration::from_millis(50))
        .await
        .expect_err("nothing was sent");
    assert!(error.to_string().contains("timed out"), "{error}");
}

#[tokio::test]
async fn every_provider_has_its_own_base_url_on_one_port() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let root = emulator.root_url().to_owned();
    assert_eq!(
        emulator.base_url(Provider::Soundverse),
        format!("{root}/soundverse")
    );
    assert_eq!(
        emulator.base_url(Provider::SoundPiece),
        format!("{root}/soundpiece")
    );
    assert_eq!(
        emulator.base_url(Provider::MusicGpt),
        format!("{root}/musicgpt")
    );
    assert_eq!(
        emulator.base_url(Provider::ElevenLabs),
        format!("{root}/elevenlabs")
    );
    assert_ne!(
        emulator.addr().port(),
        0,
        "port 0 was resolved to a real port"
    );
}

/// Kills the child when the test ends, whatever happens.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_prints_its_base_urls_and_serves_them() {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_songbind-emulator"))
            .args(["--port", "0", "--pacing", "instant"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let count = Provider::ALL.len() + 2;
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(count)
            .map(Result::unwrap)
            .collect()
    })
    .await
    .unwrap();
    let root = lines[0]
        .strip_prefix("songbind-emulator listening on ")
        .expect("first line names the root URL")
        .to_owned();
    for (line, provider) in lines[1..count - 1].iter().zip(Provider::ALL) {
        assert!(
            line.contains(&format!("{root}/{}", provider.name())),
            "{line}"
        );
    }
    assert!(lines[count - 1].contains("whsec_"), "{}", lines[count - 1]);
    let wav = http()
        .get(format!("{root}/files/x.wav"))
        .send()
        .await
        .unwrap();
    assert_eq!(wav.bytes().await.unwrap(), sample_wav());
}

#[test]
fn the_binary_refuses_a_bad_fault_flag_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_songbind-emulator"))
        .args(["--port", "0", "--fault", "soundpiece=explode"])
        .output()
        .expect("binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("explode"), "{stderr}");
}
