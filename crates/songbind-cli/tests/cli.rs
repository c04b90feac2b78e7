//! The real `songbind` binary against the emulator: every operation of every
//! provider, for success and for each documented error, asserting the exit
//! status, stdout (one JSON object), stderr (nothing, or one line) and what
//! the emulator received.
//!
//! Each test starts its own emulator with instant pacing and waits on the
//! child process's exit; nothing sleeps.

use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use songbind_emulator::{Emulator, Fault, FaultRule, Pacing, Provider, RecordedRequest};

mod support;
use support::read_request;

/// The key every run uses; it must never appear in anything printed.
const KEY: &str = "sk_cli_test_5f1e2d3c4b";
/// A key the emulator answers with "insufficient credits".
const NO_CREDITS_KEY: &str = "sk_cli_test_5f1e2d3c4b_no_credits";

/// Every variable the command reads, removed from each child's environment
/// so that the developer's own settings cannot change a test.
const COMMAND_VARS: [&str; 7] = [
    "SOUNDVERSE_API_KEY",
    "SOUNDPIECE_API_KEY",
    "MUSICGPT_API_KEY",
    "SOUNDVERSE_BASE_URL",
    "SOUNDPIECE_BASE_URL",
    "MUSICGPT_BASE_URL",
    "SONGBIND_MOCK_PACING",
];

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts success: exit 0, nothing on stderr (it is not a terminal, so
    /// no progress is drawn), and exactly one JSON object on stdout.
    fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "{self:#?}");
        assert_eq!(self.stderr, "", "stderr must stay empty: {self:#?}");
        let values: Vec<Value> = serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"));
        assert_eq!(values.len(), 1, "one JSON value expected: {self:#?}");
        let value = values.into_iter().next().unwrap_or_default();
        assert!(value.is_object(), "{value}");
        value
    }

    /// Asserts a failure with `code`: nothing on stdout, exactly one line on
    /// stderr, which is returned.
    fn failure(&self, code: i32) -> &str {
        assert_eq!(self.code, Some(code), "{self:#?}");
        assert_eq!(self.stdout, "", "{self:#?}");
        let line = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        assert!(
            !line.is_empty() && !line.contains('\n'),
            "one line expected on stderr: {self:#?}"
        );
        assert!(line.starts_with("error: "), "{line}");
        line
    }
}

/// Runs the binary with `args` and extra environment variables.
async fn songbind(args: &[&str], env: &[(&str, &str)]) -> Run {
    songbind_with_cwd(None, args, env).await
}

/// [`songbind`] with `cwd` as the working directory: for runs that write
/// where they stand (`--mock` downloads into `./songbind-output`).
async fn songbind_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    songbind_with_cwd(Some(cwd), args, env).await
}

/// Runs the binary in `cwd` (or the test's own directory).
async fn songbind_with_cwd(cwd: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_songbind"));
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in COMMAND_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let output = command.output().await.expect("the songbind binary runs");
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    for (_, value) in env.iter().filter(|(var, _)| var.ends_with("_API_KEY")) {
        assert_secret_hidden(&run, value);
    }
    run
}

/// Fails if `key` appears anywhere in what the run printed.
fn assert_secret_hidden(run: &Run, key: &str) {
    assert!(
        !run.stdout.contains(key) && !run.stderr.contains(key),
        "the API key was printed: {run:#?}"
    );
}

/// Runs the binary against `provider` on the emulator with `key`, global
/// flags first, and checks that the key was not printed.
async fn against_with_key(
    emulator: &Emulator,
    provider: Provider,
    key: &str,
    args: &[&str],
) -> Run {
    let base_url = emulator.base_url(provider);
    let mut all = vec![
        "--base-url",
        &base_url,
        "--api-key",
        key,
        "--poll-interval",
        "0.01",
    ];
    all.extend_from_slice(args);
    let run = songbind(&all, &[]).await;
    assert_secret_hidden(&run, key);
    run
}

/// [`against_with_key`] with the ordinary test key.
async fn against(emulator: &Emulator, provider: Provider, args: &[&str]) -> Run {
    against_with_key(emulator, provider, KEY, args).await
}

/// The requests `provider` received.
fn received(emulator: &Emulator, provider: Provider) -> Vec<RecordedRequest> {
    emulator
        .received()
        .into_iter()
        .filter(|request| request.provider == Some(provider))
        .collect()
}

/// The one request to `method path` (asserting there was exactly one).
fn the_request(
    emulator: &Emulator,
    provider: Provider,
    method: &str,
    path: &str,
) -> RecordedRequest {
    let matching: Vec<RecordedRequest> = received(emulator, provider)
        .into_iter()
        .filter(|r| r.method.as_str() == method && r.path == path)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "one {method} {path} expected, got {:#?}",
        received(emulator, provider)
    );
    matching
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!())
}

/// Checks the report's provider, operation and id, and that every output
/// URL is served by the emulator; returns the outputs.
fn outputs_of(
    report: &Value,
    emulator: &Emulator,
    provider: &str,
    operation: &str,
    count: usize,
) -> Vec<Value> {
    assert_eq!(report["provider"], provider, "{report}");
    assert_eq!(report["operation"], operation, "{report}");
    assert!(
        report["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{report}"
    );
    let outputs = report["outputs"].as_array().cloned().unwrap_or_default();
    assert_eq!(outputs.len(), count, "{report}");
    for (index, output) in outputs.iter().enumerate() {
        let url = output["url"].as_str().unwrap_or_default();
        assert!(
            url.starts_with(&format!("{}/files/", emulator.root_url())),
            "{output}"
        );
        assert_eq!(output["version"], json!(index + 1), "{output}");
    }
    outputs
}

/// The request's JSON body.
fn body(request: &RecordedRequest) -> Value {
    request.json().expect("a JSON body")
}

/// The text of the multipart part `name`, if it was sent.
fn form_text(request: &RecordedRequest, name: &str) -> Option<String> {
    request
        .form
        .iter()
        .find(|part| part.name == name)
        .and_then(|part| part.text.clone())
}

// ---------------------------------------------------------------- Soundverse

#[tokio::test]
async fn soundverse_generate_follows_the_stream_and_reports_both_versions() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let run = against(
        &emulator,
        Provider::Soundverse,
        &[
            "soundverse",
            "generate",
            "--prompt",
            "A cheerful pop song about friendship",
            "--lyrics",
            "[Verse]\nHello friend",
            "--json",
        ],
    )
    .await;
    let report = run.json();
    let outputs = outputs_of(&report, &emulator, "soundverse", "generate", 2);
    assert!(
        report["id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("msg_")
    );
    for output in &outputs {
        assert!(output["title"].is_string(), "{output}");
        assert!(output["album_art"].is_string(), "{output}");
        assert!(output["stream_url"].is_string(), "{output}");
    }

    let request = the_request(&emulator, Provider::Soundverse, "POST", "/v6/generate/song");
    assert_eq!(
        body(&request),
        json!({"prompt": "A cheerful pop song about friendship", "lyrics": "[Verse]\nHello friend"})
    );
    assert_eq!(
        request.header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
}

#[tokio::test]
async fn soundverse_generate_sync_uses_the_sync_endpoint() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let run = against(
        &emulator,
        Provider::Soundverse,
        &[
            "--json",
            "soundverse",
            "generate",
            "--prompt",
            "Lo-fi study beat",
            "--sync",
        ],
    )
    .await;
    let report = run.json();
    let outputs = outputs_of(&report, &emulator, "soundverse", "generate", 2);
    assert!(outputs[0]["title"].is_string(), "{report}");

    let request = the_request(
        &emulator,
        Provider::Soundverse,
        "POST",
        "/v6/generate/song/sync",
    );
    assert_eq!(body(&request), json!({"prompt": "Lo-fi study beat"}));
    assert_eq!(received(&emulator, Provider::Soundverse).len(), 1);
}

#[tokio::test]
async fn soundverse_extend_follows_the_stream_with_every_field_sent() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let run = against(
        &emulator,
        Provider::Soundverse,
        &[
            "soundverse",
            "extend",
            "--audio-url",
            "https://example.com/song.mp3",
            "--lyrics",
            "[Chorus]\nOne more time",
            "--extend-at",
            "30000",
            "--prompt",
            "keep the groove",
            "--json",
        ],
    )
    .await;
    outputs_of(&run.json(), &emulator, "soundverse", "extend", 2);
    let request = the_request(&emulator, Provider::Soundverse, "POST", "/v6/extend/song");
    assert_eq!(
        body(&request),
        json!({
            "audio_url": "https://example.com/song.mp3",
            "lyrics": "[Chorus]\nOne more time",
            "extend_at": 30000,
            "prompt": "keep the groove",
        })
    );
}

#[tokio::test]
async fn soundverse_extend_sync_uses_the_sync_endpoint() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let run = against(
        &emulator,
        Provider::Soundverse,
        &[
            "soundverse",
            "extend",
            "--audio-url",
            "https://example.com/song.mp3",
            "--lyrics",
            "[Chorus]",
            "--extend-at",
            "8000",
            "--sync",
            "--json",
        ],
    )
    .await;
    outputs_of(&run.json(), &emulator, "soundverse", "extend", 2);
    let request = the_request(
        &emulator,
        Provider::Soundverse,
        "POST",
        "/v6/extend/song/sync",
    );
    assert_eq!(body(&request)["extend_at"], 8000);
}

#[tokio::test]
async fn soundverse_remix_follows_the_v7_stream() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let run = against(
        &emulator,
        Provider::Soundverse,
        &[
            "soundverse",
            "remix",
            "--song-reference-url",
            "https://example.com/song.mp3",
            "--prompt",
            "jazz version",
            "--lyrics",
            "[Verse]\nSwing it",
            "--json",
        ],
    )
    .await;
    let report = run.json();
    let outputs = outputs_of(&report, &emulator, "soundverse", "remix", 2);
    assert!(
        outputs[1]["title"]
            .as_str()
            .unwrap_or_default()
            .contains("Remix"),
        "{report}"
    );
    let request = the_request(
        &emulator,
        Provider::Soundverse,
        "POST",
        "/v7/generate/remix",
    );
    assert_eq!(
        body(&request),
        json!({
            "song_reference_url": "https://example.com/song.mp3",
            "prompt": "jazz version",
            "lyrics": "[Verse]\nSwing it",
        })
    );
}

// ---------------------------------------------------------------- SoundPiece

#[tokio::test]
async fn soundpiece_remix_sends_every_field_and_long_polls_to_the_outputs() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let key = "0b6d1a4e-8f5c-4c9b-9a51-3f1d2e7c6b80";
    let callback = format!("{}/callback", emulator.root_url());
    let run = against(
        &emulator,
        Provider::SoundPiece,
        &[
            "soundpiece",
            "remix",
            "--source-url",
            "https://example.com/source.mp3",
            "--lyrics",
            "[Verse]\nThis is a demo song",
            "--prompt",
            "rock song, energetic, male vocal",
            "--variations",
            "2",
            "--idempotency-key",
            key,
            "--callback-url",
            &callback,
            "--json",
        ],
    )
    .await;
    let report = run.json();
    let outputs = outputs_of(&report, &emulator, "soundpiece", "remix", 2);
    let id = report["id"].as_str().unwrap_or_default();
    assert!(id.starts_with("op_"), "{report}");
    assert_eq!(report["idempotency_key"], key);
    for output in &outputs {
        assert!(output["duration_secs"].is_number(), "{output}");
        assert!(output["expires_at"].is_string(), "{output}");
    }

    let put = the_request(
        &emulator,
        Provider::SoundPiece,
        "PUT",
        "/v1/create.remix_song",
    );
    assert_eq!(
        body(&put),
        json!({
            "idempotency_key": key,
            "source": {"url": "https://example.com/source.mp3"},
            "lyrics": "[Verse]\nThis is a demo song",
            "prompt": "rock song, energetic, male vocal",
            "n_variations": 2,
            "callback_url": callback,
        })
    );
    assert_eq!(put.header("authorization"), Some(&*format!("Bearer {KEY}")));
    let polls: Vec<RecordedRequest> = received(&emulator, Provider::SoundPiece)
        .into_iter()
        .filter(|r| r.method.as_str() == "GET")
        .collect();
    assert!(!polls.is_empty());
    for poll in &polls {
        let query = poll.query.clone().unwrap_or_default();
        assert!(query.contains(&format!("id={id}")), "{query}");
    }
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
}

#[tokio::test]
async fn soundpiece_reads_its_base_url_and_key_from_the_environment_and_prints_urls() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let base_url = emulator.base_url(Provider::SoundPiece);
    let run = songbind(
        &[
            "soundpiece",
            "remix",
            "--source-url",
            "https://example.com/source.mp3",
            "--lyrics",
            "[Verse]\nla la",
            "--prompt",
            "pop",
        ],
        &[
            ("SOUNDPIECE_BASE_URL", &base_url),
            ("SOUNDPIECE_API_KEY", KEY),
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.stderr, "");
    let put = the_request(
        &emulator,
        Provider::SoundPiece,
        "PUT",
        "/v1/create.remix_song",
    );
    assert_eq!(put.header("authorization"), Some(&*format!("Bearer {KEY}")));
    // The human summary names the operation and ends with its URL.
    assert!(
        run.stdout.starts_with("soundpiece remix op_"),
        "{}",
        run.stdout
    );
    let url_line = run
        .stdout
        .lines()
        .find(|line| line.starts_with("v1  "))
        .unwrap_or_default();
    assert!(
        url_line.contains(&format!("{}/files/", emulator.root_url())),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("idempotency key: "), "{}", run.stdout);
}

// ---------------------------------------------------------------- MusicGPT

#[tokio::test]
async fn musicgpt_remix_uploads_the_audio_file_and_polls_both_conversions() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("song.wav");
    std::fs::write(&file, songbind_emulator::sample_wav()).unwrap();
    let run = against(
        &emulator,
        Provider::MusicGpt,
        &[
            "musicgpt",
            "remix",
            "--audio-file",
            file.to_str().unwrap(),
            "--prompt",
            "Create an upbeat pop remix",
            "--lyrics",
            "[Verse]\nUp we go",
            "--mode",
            "INPAINT",
            "--json",
        ],
    )
    .await;
    let report = run.json();
    let outputs = outputs_of(&report, &emulator, "musicgpt", "remix", 2);
    for output in &outputs {
        assert!(output["title"].is_string(), "{output}");
        assert_eq!(output["lyrics"], "[Verse]\nUp we go", "{output}");
    }

    let post = the_request(&emulator, Provider::MusicGpt, "POST", "/Remix");
    assert_eq!(post.header("authorization"), Some(KEY));
    let upload = post
        .form
        .iter()
        .find(|part| part.name == "audio_file")
        .expect("an audio_file part");
    assert_eq!(upload.file_name.as_deref(), Some("song.wav"));
    assert_eq!(upload.len, songbind_emulator::sample_wav().len());
    assert_eq!(
        form_text(&post, "prompt").as_deref(),
        Some("Create an upbeat pop remix")
    );
    assert_eq!(
        form_text(&post, "lyrics").as_deref(),
        Some("[Verse]\nUp we go")
    );
    assert_eq!(form_text(&post, "mode").as_deref(), Some("INPAINT"));
    assert!(form_text(&post, "audio_path").is_none());
    let lookups = received(&emulator, Provider::MusicGpt)
        .into_iter()
        .filter(|r| r.method.as_str() == "GET" && r.path == "/byId")
        .count();
    assert!(lookups >= 2, "both conversions are looked up");
}

#[tokio::test]
async fn musicgpt_remix_by_audio_path_sends_the_url() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let run = against(
        &emulator,
        Provider::MusicGpt,
        &[
            "musicgpt",
            "remix",
            "--audio-path",
            "https://www.youtube.com/watch?v=example123",
            "--prompt",
            "Make it acoustic",
            "--mode",
            "over_instrumental",
            "--json",
        ],
    )
    .await;
    outputs_of(&run.json(), &emulator, "musicgpt", "remix", 2);
    let post = the_request(&emulator, Provider::MusicGpt, "POST", "/Remix");
    assert_eq!(
        form_text(&post, "audio_path").as_deref(),
        Some("https://www.youtube.com/watch?v=example123")
    );
    assert_eq!(
        form_text(&post, "mode").as_deref(),
        Some("OVER_INSTRUMENTAL")
    );
    assert!(post.form.iter().all(|part| part.name != "audio_file"));
}

// ---------------------------------------------------------------- errors

/// One command line per operation, with a prompt that may carry a marker.
fn every_operation(prompt: &str, audio_file: &Path) -> Vec<(Provider, Vec<String>)> {
    let file = audio_file.display().to_string();
    let lines: Vec<(Provider, Vec<&str>)> = vec![
        (
            Provider::Soundverse,
            vec!["soundverse", "generate", "--prompt", prompt],
        ),
        (
            Provider::Soundverse,
            vec!["soundverse", "generate", "--prompt", prompt, "--sync"],
        ),
        (
            Provider::Soundverse,
            vec![
                "soundverse",
                "extend",
                "--audio-url",
                "https://example.com/a.mp3",
                "--lyrics",
                "[Chorus]",
                "--extend-at",
                "30000",
                "--prompt",
                prompt,
            ],
        ),
        (
            Provider::Soundverse,
            vec![
                "soundverse",
                "extend",
                "--audio-url",
                "https://example.com/a.mp3",
                "--lyrics",
                "[Chorus]",
                "--extend-at",
                "30000",
                "--prompt",
                prompt,
                "--sync",
            ],
        ),
        (
            Provider::Soundverse,
            vec![
                "soundverse",
                "remix",
                "--song-reference-url",
                "https://example.com/a.mp3",
                "--prompt",
                prompt,
            ],
        ),
        (
            Provider::SoundPiece,
            vec![
                "soundpiece",
                "remix",
                "--source-url",
                "https://example.com/a.mp3",
                "--lyrics",
                "[Verse]",
                "--prompt",
                prompt,
            ],
        ),
        (
            Provider::MusicGpt,
            vec![
                "musicgpt",
                "remix",
                "--audio-file",
                &file,
                "--prompt",
                prompt,
            ],
        ),
        (
            Provider::MusicGpt,
            vec![
                "musicgpt",
                "remix",
                "--audio-path",
                "https://example.com/a.mp3",
                "--prompt",
                prompt,
            ],
        ),
    ];
    lines
        .into_iter()
        .map(|(provider, args)| (provider, args.into_iter().map(str::to_owned).collect()))
        .collect()
}

/// A small WAV file to upload, in a directory removed when dropped.
fn audio_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.wav");
    std::fs::write(&file, songbind_emulator::sample_wav()).unwrap();
    (dir, file)
}

#[tokio::test]
async fn insufficient_credits_fail_every_operation_with_the_providers_message() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let (_dir, file) = audio_file();
    for (provider, args) in every_operation("a song", &file) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = against_with_key(&emulator, provider, NO_CREDITS_KEY, &args).await;
        let line = run.failure(1);
        // An if-chain, not a match: `every_operation` lists no other
        // provider, and `Provider` grows.
        let message = if provider == Provider::Soundverse {
            "Insufficient balance for this operation."
        } else if provider == Provider::SoundPiece {
            "Not enough credits."
        } else {
            "Insufficient credits"
        };
        assert!(line.contains(message), "{args:?}: {line}");
        assert!(line.contains("insufficient balance or credits"), "{line}");
    }
    for provider in Provider::ALL {
        assert_eq!(emulator.jobs_created(provider), 0);
    }
}

#[tokio::test]
async fn a_rate_limit_that_does_not_lift_fails_every_operation_with_the_providers_message() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(
        FaultRule::new(Fault::Status {
            status: 429,
            retry_after: Some(0),
        })
        .always(),
    );
    let (_dir, file) = audio_file();
    for (provider, args) in every_operation("a song", &file) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = against(&emulator, provider, &args).await;
        let line = run.failure(1);
        let message = match provider {
            Provider::Soundverse => "Rate limits have been passed for the user.",
            _ => "Rate limit exceeded",
        };
        assert!(line.contains("rate limit"), "{line}");
        assert!(line.contains(message), "{args:?}: {line}");
        assert!(line.contains("retry after 0s"), "{line}");
    }
    for provider in Provider::ALL {
        assert_eq!(emulator.jobs_created(provider), 0);
    }
}

#[tokio::test]
async fn a_failed_job_fails_every_operation_with_the_providers_message() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let (_dir, file) = audio_file();
    for (provider, args) in every_operation("a song [fail]", &file) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = against(&emulator, provider, &args).await;
        let line = run.failure(1);
        let message = if provider == Provider::Soundverse {
            "Generation failed: the model could not produce audio for this request."
        } else if provider == Provider::SoundPiece {
            "The remix could not be produced"
        } else {
            "Remix failed: the input audio could not be processed"
        };
        assert!(line.contains(message), "{args:?}: {line}");
        if !args.contains(&"--sync") {
            // A job that ran and failed names itself.
            assert!(line.contains("job") && line.contains("failed"), "{line}");
        }
    }
}

#[tokio::test]
async fn nsfw_content_is_rejected_by_soundverse_with_its_message() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let (_dir, file) = audio_file();
    let soundverse = every_operation("a song [nsfw]", &file)
        .into_iter()
        .filter(|(provider, _)| *provider == Provider::Soundverse);
    for (provider, args) in soundverse {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = against(&emulator, provider, &args).await;
        let line = run.failure(1);
        assert!(line.contains("rejected the content"), "{line}");
        assert!(
            line.contains("NSFW words detected. Please try again with different lyrics."),
            "{args:?}: {line}"
        );
    }
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 0);
}

#[tokio::test]
async fn out_of_range_values_are_refused_with_exit_2_naming_the_flag_and_nothing_is_sent() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let long_prompt = "p".repeat(1025);
    let long_lyrics = "l".repeat(3001);
    let sv_extend = |extend_at: &'static str| {
        vec![
            "soundverse",
            "extend",
            "--audio-url",
            "https://example.com/a.mp3",
            "--lyrics",
            "[Chorus]",
            "--extend-at",
            extend_at,
        ]
    };
    let sp_remix = |extra: Vec<&'static str>| {
        let mut args = vec![
            "soundpiece",
            "remix",
            "--source-url",
            "https://example.com/a.mp3",
            "--lyrics",
            "[Verse]",
            "--prompt",
            "pop",
        ];
        args.extend(extra);
        args
    };
    let mg_remix = |extra: Vec<&'static str>| {
        let mut args = vec!["musicgpt", "remix", "--prompt", "pop"];
        args.extend(extra);
        args
    };
    // (provider, args, flag named, limit named)
    let cases: Vec<(Provider, Vec<&str>, &str, &str)> = vec![
        (
            Provider::Soundverse,
            vec!["soundverse", "generate", "--prompt", "  "],
            "--prompt",
            "must not be empty",
        ),
        (
            Provider::Soundverse,
            sv_extend("7999"),
            "--extend-at",
            "between 8000 and 420000",
        ),
        (
            Provider::Soundverse,
            sv_extend("420001"),
            "--extend-at",
            "between 8000 and 420000",
        ),
        (
            Provider::Soundverse,
            sv_extend("-5"),
            "--extend-at",
            "between 8000 and 420000",
        ),
        (
            Provider::Soundverse,
            sv_extend("soon"),
            "--extend-at",
            "invalid digit",
        ),
        (
            Provider::Soundverse,
            vec![
                "soundverse",
                "extend",
                "--audio-url",
                "song.mp3",
                "--lyrics",
                "x",
                "--extend-at",
                "9000",
            ],
            "--audio-url",
            "absolute URL",
        ),
        (
            Provider::Soundverse,
            vec![
                "soundverse",
                "remix",
                "--song-reference-url",
                "https://example.com/a.mp3",
                "--prompt",
                &long_prompt,
            ],
            "--prompt",
            "1024",
        ),
        (
            Provider::Soundverse,
            vec![
                "soundverse",
                "remix",
                "--song-reference-url",
                "ftp://example.com/a.mp3",
                "--prompt",
                "x",
            ],
            "--song-reference-url",
            "http(s)",
        ),
        (
            Provider::Soundverse,
            vec![
                "soundverse",
                "remix",
                "--song-reference-url",
                "https://example.com/a.mp3",
            ],
            "--prompt",
            "--lyrics",
        ),
        (
            Provider::SoundPiece,
            sp_remix(vec!["--variations", "0"]),
            "--variations",
            "between 1 and 3",
        ),
        (
            Provider::SoundPiece,
            sp_remix(vec!["--variations", "4"]),
            "--variations",
            "between 1 and 3",
        ),
        (
            Provider::SoundPiece,
            sp_remix(vec!["--variations", "300"]),
            "--variations",
            "0..=255",
        ),
        (
            Provider::SoundPiece,
            sp_remix(vec!["--idempotency-key", "not-a-uuid"]),
            "--idempotency-key",
            "invalid",
        ),
        (
            Provider::SoundPiece,
            sp_remix(vec!["--callback-url", "http://example.com/hook"]),
            "--callback-url",
            "https",
        ),
        (
            Provider::SoundPiece,
            vec![
                "soundpiece",
                "remix",
                "--source-url",
                "https://example.com/a.mp3",
                "--lyrics",
                &long_lyrics,
                "--prompt",
                "pop",
            ],
            "--lyrics",
            "1 to 3000",
        ),
        (
            Provider::SoundPiece,
            vec![
                "soundpiece",
                "remix",
                "--source-url",
                "https://example.com/a.mp3",
                "--lyrics",
                "x",
                "--prompt",
                &long_prompt,
            ],
            "--prompt",
            "1 to 1024",
        ),
        (
            Provider::MusicGpt,
            mg_remix(vec!["--audio-file", "/surely/missing/song.mp3"]),
            "--audio-file",
            "/surely/missing/song.mp3",
        ),
        (
            Provider::MusicGpt,
            mg_remix(vec!["--audio-path", "youtube"]),
            "--audio-path",
            "absolute URL",
        ),
        (
            Provider::MusicGpt,
            mg_remix(vec![]),
            "--audio-file",
            "--audio-path",
        ),
        (
            Provider::MusicGpt,
            mg_remix(vec![
                "--audio-file",
                "a.mp3",
                "--audio-path",
                "https://example.com/a.mp3",
            ]),
            "--audio-file",
            "--audio-path",
        ),
        (
            Provider::MusicGpt,
            mg_remix(vec![
                "--audio-path",
                "https://example.com/a.mp3",
                "--mode",
                "LOUDER",
            ]),
            "--mode",
            "OVER_INSTRUMENTAL",
        ),
        (
            Provider::MusicGpt,
            mg_remix(vec![
                "--audio-path",
                "https://example.com/a.mp3",
                "--webhook-url",
                "nowhere",
            ]),
            "--webhook-url",
            "absolute URL",
        ),
        (
            Provider::MusicGpt,
            mg_remix(vec![
                "--audio-path",
                "https://example.com/a.mp3",
                "--timeout",
                "0",
            ]),
            "--timeout",
            "more than 0",
        ),
        (
            Provider::MusicGpt,
            mg_remix(vec![
                "--audio-path",
                "https://example.com/a.mp3",
                "--poll-interval",
                "-1",
            ]),
            "--poll-interval",
            "more than 0",
        ),
        (
            Provider::MusicGpt,
            mg_remix(vec![
                "--audio-path",
                "https://example.com/a.mp3",
                "--poll-interval",
                "often",
            ]),
            "--poll-interval",
            "number of seconds",
        ),
    ];
    for (provider, args, flag, limit) in cases {
        let run = against(&emulator, provider, &args).await;
        let line = run.failure(2);
        assert!(line.contains(flag), "{args:?}: {line}");
        assert!(line.contains(limit), "{args:?}: {line}");
        assert!(
            emulator.received().is_empty(),
            "{args:?} sent {:#?}",
            emulator.received()
        );
    }
}

#[tokio::test]
async fn a_base_url_that_is_not_a_url_is_refused_before_sending() {
    let run = songbind(
        &[
            "--base-url",
            "api.soundverse.ai",
            "soundverse",
            "generate",
            "--prompt",
            "x",
        ],
        &[("SOUNDVERSE_API_KEY", KEY)],
    )
    .await;
    let line = run.failure(2);
    assert!(
        line.contains("--base-url") && line.contains("api.soundverse.ai"),
        "{line}"
    );
}

#[tokio::test]
async fn without_a_key_each_provider_names_its_variable_and_the_flag() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let (_dir, file) = audio_file();
    for (provider, args) in every_operation("a song", &file) {
        let base_url = emulator.base_url(provider);
        let mut all = vec!["--base-url", &base_url];
        all.extend(args.iter().map(String::as_str));
        let run = songbind(&all, &[]).await;
        let line = run.failure(2);
        let var = provider.info().api_key_var();
        assert!(line.contains(&var) && line.contains("--api-key"), "{line}");
    }
    assert!(emulator.received().is_empty());
}

#[tokio::test]
async fn usage_errors_are_one_line_with_exit_2() {
    let run = songbind(&["soundverse", "generate"], &[]).await;
    let line = run.failure(2);
    assert!(line.contains("--prompt"), "{line}");
    let run = songbind(&["soundverse", "generate", "--prompt", "x", "--loud"], &[]).await;
    assert!(run.failure(2).contains("--loud"));
}

// ---------------------------------------------------------------- global flags

#[tokio::test]
async fn output_dir_downloads_every_output_as_a_wav_file() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("songs");
    let run = against(
        &emulator,
        Provider::Soundverse,
        &[
            "soundverse",
            "generate",
            "--prompt",
            "A cheerful pop song",
            "--output-dir",
            out.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    let report = run.json();
    let outputs = outputs_of(&report, &emulator, "soundverse", "generate", 2);
    let expected = songbind_emulator::sample_wav();
    let id = report["id"].as_str().unwrap_or_default();
    for (index, output) in outputs.iter().enumerate() {
        let file = Path::new(output["file"].as_str().expect("a file per output"));
        assert_eq!(file, out.join(format!("{id}-v{}.wav", index + 1)));
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(bytes.len(), expected.len());
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(&bytes[8..12], b"WAVE");
    }
    let entries = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(entries, 2, "no .part file is left behind");
}

#[tokio::test]
async fn global_flags_work_after_the_subcommand() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let base_url = emulator.base_url(Provider::MusicGpt);
    let run = songbind(
        &[
            "musicgpt",
            "remix",
            "--audio-path",
            "https://example.com/a.mp3",
            "--prompt",
            "pop",
            "--json",
            "--poll-interval",
            "0.01",
            "--timeout",
            "30",
            "--base-url",
            &base_url,
        ],
        &[("MUSICGPT_API_KEY", KEY)],
    )
    .await;
    outputs_of(&run.json(), &emulator, "musicgpt", "remix", 2);
}

#[tokio::test]
async fn mock_runs_offline_with_no_key() {
    let cwd = tempfile::tempdir().unwrap();
    let run = songbind_in(
        cwd.path(),
        &[
            "--mock",
            "soundverse",
            "generate",
            "--prompt",
            "x",
            "--json",
        ],
        &[("SONGBIND_MOCK_PACING", "instant")],
    )
    .await;
    let report = run.json();
    assert_eq!(report["provider"], "soundverse");
    let outputs = report["outputs"].as_array().cloned().unwrap_or_default();
    assert_eq!(outputs.len(), 2);
    for output in outputs {
        let url = output["url"].as_str().unwrap_or_default();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    }
}

#[tokio::test]
async fn mock_refuses_a_bad_pacing_naming_the_variable() {
    let cwd = tempfile::tempdir().unwrap();
    let run = songbind_in(
        cwd.path(),
        &["--mock", "soundverse", "generate", "--prompt", "x"],
        &[("SONGBIND_MOCK_PACING", "warp")],
    )
    .await;
    assert!(run.failure(2).contains("SONGBIND_MOCK_PACING"));
}

#[tokio::test]
async fn timeout_against_a_realtime_provider_fails_with_a_timeout_message() {
    let emulator = Emulator::builder()
        .pacing(Pacing::realtime())
        .start()
        .await
        .unwrap();
    let run = against(
        &emulator,
        Provider::Soundverse,
        &[
            "soundverse",
            "generate",
            "--prompt",
            "x",
            "--timeout",
            "0.3",
        ],
    )
    .await;
    let line = run.failure(1);
    assert!(line.contains("timed out after 300ms"), "{line}");
    assert!(line.contains("Soundverse generate"), "{line}");
}

#[tokio::test]
async fn a_soundpiece_timeout_says_how_to_follow_the_same_operation() {
    let emulator = Emulator::builder()
        .pacing(Pacing::realtime())
        .start()
        .await
        .unwrap();
    let key = "6a0d3c1e-2b4f-4e8a-9c7d-5f1e3a2b4c6d";
    let run = against(
        &emulator,
        Provider::SoundPiece,
        &[
            "soundpiece",
            "remix",
            "--source-url",
            "https://example.com/a.mp3",
            "--lyrics",
            "[Verse]",
            "--prompt",
            "pop",
            "--idempotency-key",
            key,
            "--timeout",
            "1",
        ],
    )
    .await;
    let line = run.failure(1);
    // A whole second, so that the PUT surely answered: the id is named.
    assert!(line.contains("timed out after 1s"), "{line}");
    assert!(line.contains("SoundPiece remix job op_"), "{line}");
    assert!(line.contains(&format!("--idempotency-key {key}")), "{line}");
}

#[tokio::test]
async fn help_shows_an_example_for_every_operation() {
    let run = songbind(&["--help"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    let examples = [
        "songbind --mock soundverse generate --prompt",
        "songbind soundverse extend --audio-url",
        "songbind soundverse remix --song-reference-url",
        "songbind soundpiece remix --source-url",
        "songbind musicgpt remix --audio-file",
        "songbind musicgpt remix --audio-path",
        "songbind soundverse status msg_123",
        "songbind soundpiece wait op_123",
    ];
    for example in examples {
        assert!(
            run.stdout.contains(example),
            "{example} missing from --help"
        );
    }
    for var in COMMAND_VARS {
        assert!(run.stdout.contains(var), "{var} missing from --help");
    }
    let operations = [
        (
            vec!["soundverse", "generate", "--help"],
            "songbind --mock soundverse generate --prompt",
        ),
        (
            vec!["soundverse", "extend", "--help"],
            "songbind soundverse extend --audio-url",
        ),
        (
            vec!["soundverse", "remix", "--help"],
            "songbind soundverse remix --song-reference-url",
        ),
        (
            vec!["soundpiece", "remix", "--help"],
            "songbind soundpiece remix --source-url",
        ),
        (
            vec!["musicgpt", "remix", "--help"],
            "songbind musicgpt remix --audio-file",
        ),
    ];
    for (args, example) in operations {
        let run = songbind(&args, &[]).await;
        assert_eq!(run.code, Some(0), "{run:#?}");
        assert!(run.stdout.contains(example), "{args:?}: {}", run.stdout);
    }
}

#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_stops_the_wait_with_exit_130_and_one_line() {
    let emulator = Emulator::builder()
        .pacing(Pacing::realtime())
        .start()
        .await
        .unwrap();
    let base_url = emulator.base_url(Provider::Soundverse);
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_songbind"));
    command
        .args(["--base-url", &base_url, "--api-key", KEY])
        .args(["soundverse", "generate", "--prompt", "x"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in COMMAND_VARS {
        command.env_remove(var);
    }
    let child = command.spawn().expect("the songbind binary starts");
    // Once the request arrived, the command is waiting (and listening for Ctrl-C).
    emulator
        .wait_for_requests(1, std::time::Duration::from_secs(30))
        .await
        .expect("the request arrives");
    let pid = child.id().expect("still running").to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(sent.success());
    let output = child.wait_with_output().await.expect("it exits");
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_secret_hidden(&run, KEY);
    let line = run.failure(130);
    assert!(line.contains("cancelled while waiting for"), "{line}");
    assert!(line.contains("Soundverse generate"), "{line}");
}

// ---------------------------------------------------------------- --output-dir and --force

/// Runs a SoundPiece remix with a fixed idempotency key into `dir`, so that
/// every run follows the same operation and names the same files.
async fn soundpiece_into(emulator: &Emulator, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "soundpiece",
        "remix",
        "--source-url",
        "https://example.com/source.mp3",
        "--lyrics",
        "[Verse]\nSame song again",
        "--prompt",
        "pop",
        "--variations",
        "2",
        "--idempotency-key",
        "7d1f0c1e-3a52-4a4e-9b7e-2c5d8e6f4a10",
        "--output-dir",
        dir.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    against(emulator, Provider::SoundPiece, &args).await
}

#[tokio::test]
async fn output_dir_refuses_to_replace_an_existing_file_unless_forced() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("songs");

    // A first run downloads the two files; the user then edits them.
    let first = soundpiece_into(&emulator, &out, &[]).await.json();
    let files: Vec<std::path::PathBuf> = outputs_of(&first, &emulator, "soundpiece", "remix", 2)
        .iter()
        .map(|output| output["file"].as_str().expect("a file per output").into())
        .collect();
    let downloaded: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(downloaded.iter().all(|bytes| !bytes.is_empty()));
    let mine = b"my own edit, which must not be lost".to_vec();
    for file in &files {
        std::fs::write(file, &mine).unwrap();
    }

    // The same command again: same operation, same names, refused.
    let refused = soundpiece_into(&emulator, &out, &[]).await;
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    let line = refused.stderr.strip_suffix('\n').unwrap_or(&refused.stderr);
    assert!(
        line.starts_with("error: ") && !line.contains('\n'),
        "{refused:#?}"
    );
    assert!(
        line.contains(&files[0].display().to_string()),
        "the message names the file: {line}"
    );
    assert!(line.contains("--force"), "{line}");
    assert!(!line.contains("overwrite(true)"), "CLI terms only: {line}");
    for file in &files {
        assert_eq!(
            std::fs::read(file).unwrap(),
            mine,
            "{} was replaced",
            file.display()
        );
    }
    let entries = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(entries, 2, "no .part file is left behind");

    // With --force the files are replaced by the downloads.
    let forced = soundpiece_into(&emulator, &out, &["--force"]).await.json();
    let outputs = outputs_of(&forced, &emulator, "soundpiece", "remix", 2);
    for ((output, file), bytes) in outputs.iter().zip(&files).zip(&downloaded) {
        assert_eq!(output["file"].as_str(), file.to_str());
        assert_eq!(
            &std::fs::read(file).unwrap(),
            bytes,
            "{} replaced",
            file.display()
        );
    }
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
}

/// A server on loopback that answers every request with what `answer`
/// makes of its `Authorization` header and request line (a whole raw HTTP
/// response), and counts the requests.
async fn scripted_server(
    answer: fn(&str, &str) -> String,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut socket).await else {
                    return;
                };
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let authorization = request.header("authorization").unwrap_or_default();
                let response = answer(authorization, &request.request_line);
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, count)
}

fn raw_response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A 400 whose JSON message echoes the Authorization header and carries
/// terminal escape sequences (set the window title, clear the screen).
fn echo_400(auth: &str, _line: &str) -> String {
    let body = json!({
        "detail": format!("bad request; you sent {auth}\u{1b}]0;pwned\u{7}\u{1b}[2J"),
        "message": format!("bad request; you sent {auth}\u{1b}]0;pwned\u{7}\u{1b}[2J"),
    });
    raw_response("400 Bad Request", "application/json", &body.to_string())
}

/// A 500 whose plain-text body lists the request headers.
fn echo_500(auth: &str, _line: &str) -> String {
    raw_response(
        "500 Internal Server Error",
        "text/plain",
        &format!("Internal error. Request headers:\nauthorization: {auth}\nhost: x\n"),
    )
}

#[tokio::test]
async fn an_echoed_key_and_escape_sequences_never_reach_the_terminal_or_json() {
    for (answer, escapes, provider, args) in [
        (
            echo_400 as fn(&str, &str) -> String,
            true,
            "SOUNDVERSE",
            vec!["soundverse", "generate", "--prompt", "a song"],
        ),
        (
            echo_500,
            false,
            "MUSICGPT",
            vec![
                "musicgpt",
                "remix",
                "--audio-path",
                "https://www.youtube.com/watch?v=x",
                "--prompt",
                "pop",
            ],
        ),
        (
            echo_400,
            true,
            "SOUNDPIECE",
            vec![
                "soundpiece",
                "remix",
                "--source-url",
                "https://example.com/a.mp3",
                "--lyrics",
                "la la",
                "--prompt",
                "rock",
            ],
        ),
    ] {
        let (url, count) = scripted_server(answer).await;
        for json_flag in [false, true] {
            let mut all: Vec<&str> = if json_flag {
                vec!["--json"]
            } else {
                Vec::new()
            };
            all.extend(args.iter().copied());
            let key_var = format!("{provider}_API_KEY");
            let url_var = format!("{provider}_BASE_URL");
            // `songbind` checks that the key is printed nowhere.
            let run = songbind(&all, &[(&key_var, KEY), (&url_var, &url)]).await;
            let line = run.failure(1);
            assert!(line.contains("***"), "the echo is shown scrubbed: {line}");
            assert!(
                !line.contains('\u{1b}') && !line.contains('\u{7}'),
                "escape sequences reach the terminal: {line:?}"
            );
            if escapes {
                assert!(line.contains("\\u{1b}]0;pwned"), "{line}");
            }
        }
        assert!(count.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    }
}

#[tokio::test]
async fn a_base_url_with_a_password_query_or_fragment_is_refused_without_showing_it() {
    for url in [
        "http://user:hunter2secret@127.0.0.1:9/v1",
        "http://127.0.0.1:9/v1?region=eu",
        "http://127.0.0.1:9/v1#x",
    ] {
        let run = songbind(
            &["--base-url", url, "soundverse", "generate", "--prompt", "x"],
            &[("SOUNDVERSE_API_KEY", KEY)],
        )
        .await;
        let line = run.failure(2);
        assert!(!line.contains("hunter2secret"), "{line}");
        assert!(line.contains("--base-url"), "{line}");
    }
}

/// SoundPiece answering its PUT with an id of a shape the spec's docs do not
/// show, already ready.
fn ready_with_unexpected_id(_auth: &str, _line: &str) -> String {
    let body = json!({"remix_song": {
        "id": "op_01HZX3K9Q2W8E5R7T1Y4U6I0PA",
        "status": "ready",
        "outputs": [{"url": "https://cdn.example/1.flac"}],
        "error": null,
    }});
    raw_response("200 OK", "application/json", &body.to_string())
}

fn always_500(_auth: &str, _line: &str) -> String {
    raw_response("502 Bad Gateway", "text/html", "<html>Bad Gateway</html>")
}

#[tokio::test]
async fn soundpiece_ids_are_never_refused_and_failures_after_the_put_name_the_key() {
    let remix = [
        "--json",
        "soundpiece",
        "remix",
        "--source-url",
        "https://example.com/a.mp3",
        "--lyrics",
        "la la",
        "--prompt",
        "rock",
        "--idempotency-key",
        "3c90c3cc-0d44-4b50-8888-8dd25736052a",
    ];
    let (url, _) = scripted_server(ready_with_unexpected_id).await;
    let run = songbind(
        &remix,
        &[("SOUNDPIECE_API_KEY", KEY), ("SOUNDPIECE_BASE_URL", &url)],
    )
    .await;
    assert_eq!(run.json()["id"], "op_01HZX3K9Q2W8E5R7T1Y4U6I0PA");

    let (url, count) = scripted_server(always_500).await;
    let run = songbind(
        &remix[1..],
        &[("SOUNDPIECE_API_KEY", KEY), ("SOUNDPIECE_BASE_URL", &url)],
    )
    .await;
    let line = run.failure(1);
    assert!(
        line.contains("--idempotency-key 3c90c3cc-0d44-4b50-8888-8dd25736052a"),
        "{line}"
    );
    assert!(line.contains("502"), "{line}");
    // The HTML 502 is retried by status, with the same key.
    assert!(count.load(std::sync::atomic::Ordering::SeqCst) > 1);
}

fn always_429(_auth: &str, _line: &str) -> String {
    "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 0\r\n\
     content-length: 25\r\nconnection: close\r\n\r\n{\"detail\": \"slow down!!\"}"
        .to_owned()
}

#[tokio::test]
async fn a_soundpiece_create_refused_as_not_taken_names_no_key_to_resume_with() {
    let (url, count) = scripted_server(always_429).await;
    let run = songbind(
        &[
            "soundpiece",
            "remix",
            "--source-url",
            "https://example.com/a.mp3",
            "--lyrics",
            "la la",
            "--prompt",
            "rock",
            "--idempotency-key",
            "3c90c3cc-0d44-4b50-8888-8dd25736052a",
        ],
        &[("SOUNDPIECE_API_KEY", KEY), ("SOUNDPIECE_BASE_URL", &url)],
    )
    .await;
    let line = run.failure(1);
    assert!(line.contains("rate limit"), "{line}");
    // Every attempt was refused with a 429: no operation was made, so no
    // key is offered to follow one.
    assert!(!line.contains("--idempotency-key"), "{line}");
    assert!(!line.contains("resume with"), "{line}");
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 4);
}

// ---------------------------------------------------------------- status and wait

/// The fields of each output that a create and a `wait` must agree on.
fn comparable(outputs: &[Value], fields: &[&str]) -> Vec<Value> {
    outputs
        .iter()
        .map(|output| {
            let kept: serde_json::Map<String, Value> = fields
                .iter()
                .filter_map(|field| Some(((*field).to_owned(), output.get(*field)?.clone())))
                .collect();
            Value::Object(kept)
        })
        .collect()
}

/// The URL lines (`v1  http://...`) of a human summary.
fn url_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|line| line.starts_with('v') && line.contains("  http"))
        .collect()
}

#[tokio::test]
async fn soundverse_status_and_wait_follow_a_generation_by_its_message_id() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let created = against(
        &emulator,
        Provider::Soundverse,
        &["soundverse", "generate", "--prompt", "A song", "--json"],
    )
    .await
    .json();
    let created_outputs = outputs_of(&created, &emulator, "soundverse", "generate", 2);
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    assert!(id.starts_with("msg_"), "{created}");

    let status = against(
        &emulator,
        Provider::Soundverse,
        &["soundverse", "status", &id, "--json"],
    )
    .await
    .json();
    let status_outputs = outputs_of(&status, &emulator, "soundverse", "status", 2);
    assert_eq!(status["id"], id.as_str());
    assert_eq!(status["state"], "completed", "{status}");
    let fields = ["url", "version", "title", "album_art"];
    assert_eq!(
        comparable(&status_outputs, &fields),
        comparable(&created_outputs, &fields)
    );

    let waited = against(
        &emulator,
        Provider::Soundverse,
        &["soundverse", "wait", &id, "--json"],
    )
    .await
    .json();
    let waited_outputs = outputs_of(&waited, &emulator, "soundverse", "wait", 2);
    assert_eq!(waited["id"], id.as_str());
    assert_eq!(
        comparable(&waited_outputs, &fields),
        comparable(&created_outputs, &fields)
    );
    let polls: Vec<RecordedRequest> = received(&emulator, Provider::Soundverse)
        .into_iter()
        .filter(|r| r.method.as_str() == "GET")
        .collect();
    assert!(
        polls
            .iter()
            .all(|r| r.path == format!("/status/generations/{id}")),
        "{polls:#?}"
    );
    assert_eq!(emulator.jobs_created(Provider::Soundverse), 1);
}

#[tokio::test]
async fn soundpiece_wait_prints_what_remix_printed_and_downloads_with_output_dir() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let remix = [
        "soundpiece",
        "remix",
        "--source-url",
        "https://example.com/source.mp3",
        "--lyrics",
        "[Verse]\nOnce more",
        "--prompt",
        "pop",
        "--variations",
        "2",
        "--idempotency-key",
        "3c9e1b7a-5d2f-4a8e-b6c1-0f9d8e7a6b5c",
    ];
    let created = against(&emulator, Provider::SoundPiece, &remix).await;
    assert_eq!(created.code, Some(0), "{created:#?}");
    let id = created
        .stdout
        .strip_prefix("soundpiece remix ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_default()
        .to_owned();
    assert!(id.starts_with("op_"), "{}", created.stdout);

    // The human summary: the same URL lines as the create's.
    let waited = against(
        &emulator,
        Provider::SoundPiece,
        &["soundpiece", "wait", &id],
    )
    .await;
    assert_eq!(waited.code, Some(0), "{waited:#?}");
    assert_eq!(waited.stderr, "");
    assert!(
        waited
            .stdout
            .starts_with(&format!("soundpiece wait {id}: 2 outputs")),
        "{}",
        waited.stdout
    );
    assert_eq!(url_lines(&waited.stdout), url_lines(&created.stdout));
    assert_eq!(url_lines(&waited.stdout).len(), 2);

    // --json and --output-dir, as the create takes them.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("songs");
    let report = against(
        &emulator,
        Provider::SoundPiece,
        &[
            "soundpiece",
            "wait",
            &id,
            "--json",
            "--output-dir",
            out.to_str().unwrap(),
        ],
    )
    .await
    .json();
    let outputs = outputs_of(&report, &emulator, "soundpiece", "wait", 2);
    for (index, output) in outputs.iter().enumerate() {
        assert!(output["duration_secs"].is_number(), "{output}");
        assert!(output["expires_at"].is_string(), "{output}");
        let file = Path::new(output["file"].as_str().expect("a file per output"));
        assert_eq!(file, out.join(format!("{id}-v{}.wav", index + 1)));
        assert_eq!(&std::fs::read(file).unwrap()[..4], b"RIFF");
    }

    let status = against(
        &emulator,
        Provider::SoundPiece,
        &["soundpiece", "status", &id, "--json"],
    )
    .await
    .json();
    outputs_of(&status, &emulator, "soundpiece", "status", 2);
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["stage"], "ready", "{status}");
    let fields = ["url", "version", "duration_secs", "expires_at"];
    assert_eq!(
        comparable(status["outputs"].as_array().unwrap(), &fields),
        comparable(&outputs, &fields)
    );
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
}

#[tokio::test]
async fn musicgpt_status_and_wait_follow_a_task_by_its_task_id() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let created = against(
        &emulator,
        Provider::MusicGpt,
        &[
            "musicgpt",
            "remix",
            "--audio-path",
            "https://example.com/a.mp3",
            "--prompt",
            "acoustic",
            "--lyrics",
            "[Verse]\nAgain",
            "--json",
        ],
    )
    .await
    .json();
    let created_outputs = outputs_of(&created, &emulator, "musicgpt", "remix", 2);
    let id = created["id"].as_str().unwrap_or_default().to_owned();

    let status = against(
        &emulator,
        Provider::MusicGpt,
        &["musicgpt", "status", &id, "--json"],
    )
    .await
    .json();
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["stage"], "COMPLETED", "{status}");
    // MusicGPT finds a task's first conversion by its task id: version 1.
    let status_outputs = outputs_of(&status, &emulator, "musicgpt", "status", 1);
    let fields = ["url", "version", "title", "lyrics"];
    assert_eq!(
        comparable(&status_outputs, &fields),
        comparable(&created_outputs[..1], &fields)
    );

    let waited = against(
        &emulator,
        Provider::MusicGpt,
        &["musicgpt", "wait", &id, "--json"],
    )
    .await
    .json();
    assert_eq!(waited["id"], id.as_str());
    let waited_outputs = outputs_of(&waited, &emulator, "musicgpt", "wait", 1);
    assert_eq!(
        comparable(&waited_outputs, &fields),
        comparable(&created_outputs[..1], &fields)
    );
    let lookups: Vec<String> = received(&emulator, Provider::MusicGpt)
        .into_iter()
        .filter(|r| r.method.as_str() == "GET")
        .filter_map(|r| r.query)
        .collect();
    assert!(
        lookups.iter().any(|q| q.contains(&format!("task_id={id}"))),
        "{lookups:?}"
    );
    assert_eq!(emulator.jobs_created(Provider::MusicGpt), 1);
}

#[tokio::test]
async fn status_and_wait_of_an_unknown_id_fail_with_the_providers_message() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    for (provider, name, id) in [
        (Provider::Soundverse, "soundverse", "msg_nope"),
        (Provider::SoundPiece, "soundpiece", "op_nope"),
        (Provider::MusicGpt, "musicgpt", "no-such-task"),
    ] {
        for lookup in ["status", "wait"] {
            let run = against(&emulator, provider, &[name, lookup, id, "--timeout", "10"]).await;
            let line = run.failure(1);
            assert!(!line.contains(" wait "), "no wait hint: {line}");
        }
        let run = against(&emulator, provider, &[name, "status", " "]).await;
        assert!(run.failure(2).contains("must not be empty"), "{run:#?}");
    }
    let run = songbind(&["elevenlabs", "status", "x"], &[]).await;
    run.failure(2);
}

#[tokio::test]
async fn a_timed_out_create_names_the_wait_command_which_then_finishes_the_job() {
    // About 9 s of processing: the create times out long before.
    let emulator = Emulator::builder()
        .pacing(Pacing::scaled(0.2))
        .start()
        .await
        .unwrap();
    let key = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b";
    let run = against(
        &emulator,
        Provider::SoundPiece,
        &[
            "soundpiece",
            "remix",
            "--source-url",
            "https://example.com/a.mp3",
            "--lyrics",
            "[Verse]",
            "--prompt",
            "pop",
            "--idempotency-key",
            key,
            "--timeout",
            "1",
        ],
    )
    .await;
    let line = run.failure(1);
    assert!(line.contains("timed out after 1s"), "{line}");
    let command = line
        .split_once("follow it with `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(command, _)| command.to_owned())
        .unwrap_or_else(|| panic!("no wait command in {line}"));
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[..3], ["songbind", "soundpiece", "wait"], "{command}");
    let id = words[3];
    assert!(id.starts_with("op_"), "{command}");
    assert!(line.contains(&format!("--idempotency-key {key}")), "{line}");

    // Not finished yet: status says so, and names the same command.
    let status = against(
        &emulator,
        Provider::SoundPiece,
        &["soundpiece", "status", id],
    )
    .await;
    assert_eq!(status.code, Some(0), "{status:#?}");
    assert!(
        status
            .stdout
            .starts_with(&format!("soundpiece {id}: running (processing)")),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains(&command), "{}", status.stdout);
    let status = against(
        &emulator,
        Provider::SoundPiece,
        &["soundpiece", "status", id, "--json"],
    )
    .await
    .json();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(status["outputs"], json!([]), "{status}");

    // The named command, run as it is, follows the same operation to its end.
    let mut args = words[1..].to_vec();
    args.push("--json");
    let report = against(&emulator, Provider::SoundPiece, &args).await.json();
    assert_eq!(report["id"], id);
    outputs_of(&report, &emulator, "soundpiece", "wait", 1);
    assert_eq!(emulator.jobs_created(Provider::SoundPiece), 1);
}

#[tokio::test]
async fn verbose_prints_the_call_spans_on_stderr_and_never_the_key() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    for verbose in ["-v", "--verbose"] {
        let run = against(
            &emulator,
            Provider::SoundPiece,
            &[
                verbose,
                "soundpiece",
                "remix",
                "--source-url",
                "https://example.com/a.mp3",
                "--lyrics",
                "[Verse]",
                "--prompt",
                "pop",
                "--json",
            ],
        )
        .await;
        assert_eq!(run.code, Some(0), "{run:#?}");
        let report: Value =
            serde_json::from_str(&run.stdout).expect("stdout stays one JSON object");
        assert_eq!(report["provider"], "soundpiece");
        let calls: Vec<&str> = run
            .stderr
            .lines()
            .filter(|line| line.contains("songbind.call"))
            .collect();
        assert!(
            calls.iter().any(|line| line.contains("provider=SoundPiece")
                && line.contains("operation=\"create_remix_song\"")
                && line.contains("http.status=200")
                && line.contains("elapsed_ms=")),
            "{}",
            run.stderr
        );
        assert!(
            calls
                .iter()
                .any(|line| line.contains("operation=\"get_remix_song\"")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("job stage"), "{}", run.stderr);
        assert!(!run.stderr.contains('\u{1b}'), "no ANSI: {:?}", run.stderr);
        // `against` checked the key is absent; so must be its Authorization form.
        assert!(!run.stderr.contains("Bearer"), "{}", run.stderr);
    }
    // Without -v, stderr stays empty.
    let run = against(
        &emulator,
        Provider::SoundPiece,
        &["soundpiece", "status", "op_nope"],
    )
    .await;
    assert!(!run.stderr.contains("songbind.call"), "{run:#?}");
}

/// The files in `dir`, sorted by name.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts that the report's outputs were downloaded as WAV files named
/// `songbind-output/<id>-v<version>.wav`, relative to `cwd`; returns their
/// names.
fn downloaded_wavs(report: &Value, cwd: &Path) -> Vec<String> {
    let id = report["id"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{report}");
    let outputs = report["outputs"].as_array().cloned().unwrap_or_default();
    assert_eq!(outputs.len(), 2, "{report}");
    let mut names = Vec::new();
    for (index, output) in outputs.iter().enumerate() {
        let file = output["file"].as_str().expect("a file per output");
        let name = format!("{id}-v{}.wav", index + 1);
        assert_eq!(Path::new(file), Path::new("songbind-output").join(&name));
        let bytes = std::fs::read(cwd.join(file)).unwrap();
        assert_eq!(&bytes[..4], b"RIFF", "{file}");
        assert_eq!(&bytes[8..12], b"WAVE", "{file}");
        names.push(name);
    }
    names
}

#[tokio::test]
async fn mock_downloads_the_outputs_into_songbind_output_and_names_them() {
    let cwd = tempfile::tempdir().unwrap();
    let instant = [("SONGBIND_MOCK_PACING", "instant")];
    let generate = ["--mock", "soundverse", "generate", "--prompt", "Friends"];
    let run = songbind_in(cwd.path(), &[&generate[..], &["--json"]].concat(), &instant).await;
    let report = run.json();
    assert_eq!(report["provider"], "soundverse");
    let first = downloaded_wavs(&report, cwd.path());
    let out = cwd.path().join("songbind-output");
    assert_eq!(files_in(&out), first, "only the two WAV files");

    // The human summary names the files too; a second run (a new job, new
    // ids) adds its own files beside the first ones, replacing nothing.
    let run = songbind_in(cwd.path(), &generate, &instant).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(run.stderr, "", "{run:#?}");
    let files = files_in(&out);
    assert_eq!(files.len(), 4, "{files:?}");
    let second: Vec<&String> = files.iter().filter(|f| !first.contains(f)).collect();
    assert_eq!(second.len(), 2, "{files:?}");
    for name in second {
        let line = format!("  ->  songbind-output/{name}");
        assert!(
            run.stdout.lines().any(|l| l.ends_with(&line)),
            "{line} missing: {}",
            run.stdout
        );
        let bytes = std::fs::read(out.join(name)).unwrap();
        assert_eq!(&bytes[..4], b"RIFF", "{name}");
    }
}

#[tokio::test]
async fn mock_with_output_dir_downloads_there_and_no_download_leaves_no_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let instant = [("SONGBIND_MOCK_PACING", "instant")];
    let run = songbind_in(
        cwd.path(),
        &[
            "--mock",
            "soundverse",
            "generate",
            "--prompt",
            "x",
            "--no-download",
            "--json",
        ],
        &instant,
    )
    .await;
    let report = run.json();
    let outputs = report["outputs"].as_array().cloned().unwrap_or_default();
    assert_eq!(outputs.len(), 2, "{report}");
    assert!(outputs.iter().all(|o| o.get("file").is_none()), "{report}");
    assert!(files_in(cwd.path()).is_empty(), "nothing written");

    let run = songbind_in(
        cwd.path(),
        &[
            "--mock",
            "soundverse",
            "generate",
            "--prompt",
            "x",
            "--output-dir",
            "songs",
            "--json",
        ],
        &instant,
    )
    .await;
    let report = run.json();
    let id = report["id"].as_str().unwrap_or_default();
    for (index, output) in report["outputs"].as_array().unwrap().iter().enumerate() {
        let file = output["file"].as_str().expect("a file per output");
        assert_eq!(
            Path::new(file),
            Path::new("songs").join(format!("{id}-v{}.wav", index + 1))
        );
    }
    assert_eq!(files_in(cwd.path()), ["songs"], "no songbind-output");
    assert_eq!(files_in(&cwd.path().join("songs")).len(), 2);

    let run = songbind_in(
        cwd.path(),
        &[
            "--mock",
            "--no-download",
            "--output-dir",
            "songs",
            "soundverse",
            "generate",
            "--prompt",
            "x",
        ],
        &instant,
    )
    .await;
    assert!(run.failure(2).contains("--no-download"), "{run:#?}");
}

#[tokio::test]
async fn without_mock_nothing_is_downloaded_unless_output_dir_is_given() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let base_url = emulator.base_url(Provider::Soundverse);
    let run = songbind_in(
        cwd.path(),
        &[
            "--base-url",
            &base_url,
            "soundverse",
            "generate",
            "--prompt",
            "x",
            "--json",
        ],
        &[("SOUNDVERSE_API_KEY", KEY)],
    )
    .await;
    let report = run.json();
    let outputs = outputs_of(&report, &emulator, "soundverse", "generate", 2);
    assert!(outputs.iter().all(|o| o.get("file").is_none()), "{report}");
    assert!(files_in(cwd.path()).is_empty(), "nothing written");

    // --no-download is accepted and changes nothing; --output-dir downloads.
    let run = songbind_in(
        cwd.path(),
        &[
            "--base-url",
            &base_url,
            "soundverse",
            "generate",
            "--prompt",
            "x",
            "--no-download",
        ],
        &[("SOUNDVERSE_API_KEY", KEY)],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(!run.stdout.contains("  ->  "), "{}", run.stdout);
    assert!(files_in(cwd.path()).is_empty(), "nothing written");
    let run = songbind_in(
        cwd.path(),
        &[
            "--base-url",
            &base_url,
            "soundverse",
            "generate",
            "--prompt",
            "x",
            "--output-dir",
            "songs",
            "--json",
        ],
        &[("SOUNDVERSE_API_KEY", KEY)],
    )
    .await;
    run.json();
    assert_eq!(files_in(cwd.path()), ["songs"]);
    assert_eq!(files_in(&cwd.path().join("songs")).len(), 2);
}

#[tokio::test]
async fn help_says_where_mock_downloads_and_how_to_turn_it_off() {
    let run = songbind(&["--help"], &[]).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    for text in ["--no-download", "./songbind-output"] {
        assert!(run.stdout.contains(text), "{text} missing from --help");
    }
}

#[tokio::test]
async fn an_id_a_url_would_normalize_is_refused_with_exit_2_and_nothing_is_sent() {
    let (url, count) = scripted_server(always_500).await;
    for provider in ["soundverse", "soundpiece", "musicgpt"] {
        for id in [".", ".."] {
            for lookup in ["status", "wait"] {
                let run = songbind(
                    &["--base-url", &url, provider, lookup, "--", id],
                    &[(&format!("{}_API_KEY", provider.to_uppercase()), KEY)],
                )
                .await;
                let line = run.failure(2);
                assert!(
                    line.contains("is not an id"),
                    "{provider} {lookup} {id}: {line}"
                );
            }
        }
    }
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0);
}
