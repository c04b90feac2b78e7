//! The real `songbind` binary composing with ElevenLabs against the
//! emulator (and, where a fixed `song-id` is needed, a scripted loopback
//! server): the audio file and its name, the detailed metadata, plans
//! round-tripped through `--plan-file`, refusals with their suggestions,
//! and flags refused before anything is sent.
//!
//! Each test starts its own emulator with instant pacing (or runs `--mock`
//! with `SONGBIND_MOCK_PACING=instant`) and waits on the child's exit.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use songbind_emulator::{Emulator, Fault, FaultRule, Pacing, Provider, RecordedRequest};

mod support;
use support::read_request;

/// The key every run uses; it must never appear in anything printed.
const KEY: &str = "xi_cli_test_7c6b5a4d3e";

/// The variables the command reads, removed from each child's environment.
const COMMAND_VARS: [&str; 3] = [
    "ELEVENLABS_API_KEY",
    "ELEVENLABS_BASE_URL",
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
    /// Asserts success with nothing on stderr and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self:#?}");
        assert_eq!(self.stderr, "", "stderr must stay empty: {self:#?}");
        &self.stdout
    }

    /// Asserts success and one JSON object on stdout.
    fn json(&self) -> Value {
        let value: Value = serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {self:#?}"));
        assert!(value.is_object(), "{value}");
        value
    }

    /// Asserts a failure with `code`: nothing on stdout, one line on stderr.
    fn failure(&self, code: i32) -> &str {
        assert_eq!(self.code, Some(code), "{self:#?}");
        assert_eq!(self.stdout, "", "{self:#?}");
        let line = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        assert!(
            line.starts_with("error: ") && !line.contains('\n'),
            "one line expected on stderr: {self:#?}"
        );
        line
    }
}

/// Runs the binary with `args` (and instant `--mock` pacing); the key must
/// not be printed.
async fn songbind(args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_songbind"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in COMMAND_VARS {
        command.env_remove(var);
    }
    command.env("SONGBIND_MOCK_PACING", "instant");
    let output = command.output().await.expect("the songbind binary runs");
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !run.stdout.contains(KEY) && !run.stderr.contains(KEY),
        "the API key was printed: {run:#?}"
    );
    run
}

/// Runs `songbind elevenlabs <args>` against `base_url` with the test key.
async fn against(base_url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--base-url", base_url, "--api-key", KEY, "elevenlabs"];
    all.extend_from_slice(args);
    songbind(&all).await
}

/// The requests ElevenLabs received.
fn received(emulator: &Emulator) -> Vec<RecordedRequest> {
    emulator
        .received()
        .into_iter()
        .filter(|request| request.provider == Some(Provider::ElevenLabs))
        .collect()
}

/// The files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// A limit of the spec (`key` of `schema.field`, or of `schema` itself
/// when `field` is empty), read from the spec file at test time.
fn spec(schema: &str, field: &str, key: &str) -> serde_yaml::Value {
    let path = format!("{}/../../specs/elevenlabs.yaml", env!("CARGO_MANIFEST_DIR"));
    let spec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let schemas = &spec["components"]["schemas"];
    let mut property = if field.is_empty() {
        &schemas[schema]
    } else {
        &schemas[schema]["properties"][field]
    };
    // A shared schema (`prompt: $ref: Prompt`) holds the limit itself.
    if let Some(name) = property["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        property = &schemas[name];
    }
    let value = &property[key];
    assert!(!value.is_null(), "{schema}.{field}.{key} not in the spec");
    value.clone()
}

#[tokio::test]
async fn mock_compose_leaves_a_wav_file_named_by_its_song_id_and_prints_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = songbind(&[
        "--mock",
        "elevenlabs",
        "compose",
        "--prompt",
        "A calm piano piece for a rainy morning",
        "--music-length-ms",
        "10000",
        "--output-dir",
        out.to_str().unwrap(),
    ])
    .await;
    let summary = run.ok();
    let files = files_in(&out);
    assert_eq!(files.len(), 1, "one file and no .part left: {files:?}");
    let file = &files[0];
    assert_eq!(file.extension().and_then(|e| e.to_str()), Some("wav"));
    let song_id = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    assert!(!song_id.is_empty() && song_id != "song", "{file:?}");
    assert!(summary.contains(&format!("song-id {song_id}")), "{summary}");
    assert!(summary.contains(&file.display().to_string()), "{summary}");
    let bytes = std::fs::read(file).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
}

#[tokio::test]
async fn compose_sends_every_flag_and_reports_the_file_as_json() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = against(
        &emulator.base_url(Provider::ElevenLabs),
        &[
            "compose",
            "--prompt",
            "calm piano",
            "--music-length-ms",
            "10000",
            "--model-id",
            "music_v2",
            "--output-format",
            "mp3_44100_128",
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    let report = run.json();
    assert_eq!(report["provider"], "elevenlabs");
    assert_eq!(report["operation"], "compose");
    let song_id = report["song_id"].as_str().unwrap_or_default();
    let files = report["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 1, "{report}");
    let file = PathBuf::from(files[0].as_str().unwrap_or_default());
    assert_eq!(file, dir.path().join(format!("{song_id}.wav")));
    assert_eq!(report["content_type"], "audio/wav");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(report["bytes"], bytes.len() as u64);

    let requests = received(&emulator);
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/music")
    );
    assert_eq!(
        request.query.as_deref(),
        Some("output_format=mp3_44100_128")
    );
    assert_eq!(
        request.headers.get("xi-api-key").map(String::as_str),
        Some(KEY)
    );
    let body = request.json().unwrap_or_default();
    assert_eq!(body["prompt"], "calm piano");
    assert_eq!(body["music_length_ms"], 10_000);
    assert_eq!(body["model_id"], "music_v2");
}

#[tokio::test]
async fn detailed_also_writes_the_metadata_beside_the_audio() {
    let dir = tempfile::tempdir().unwrap();
    let run = songbind(&[
        "--mock",
        "elevenlabs",
        "compose",
        "--prompt",
        "a bright pop song about the sea",
        "--music-length-ms",
        "10000",
        "--detailed",
        "--with-timestamps",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--json",
    ])
    .await;
    let report = run.json();
    let song_id = report["song_id"].as_str().unwrap_or_default();
    let audio = dir.path().join(format!("{song_id}.wav"));
    let metadata = dir.path().join(format!("{song_id}.json"));
    assert_eq!(
        report["files"],
        serde_json::json!([audio.display().to_string(), metadata.display().to_string()])
    );
    assert_eq!(files_in(dir.path()), vec![metadata.clone(), audio.clone()]);
    assert_eq!(&std::fs::read(&audio).unwrap()[..4], b"RIFF");
    let metadata: Value = serde_json::from_slice(&std::fs::read(&metadata).unwrap()).unwrap();
    assert!(metadata["composition_plan"].is_object(), "{metadata}");
    assert!(metadata["song_metadata"].is_object(), "{metadata}");
    assert!(metadata["words_timestamps"].is_array(), "{metadata}");
}

#[tokio::test]
async fn a_plan_printed_by_plan_is_accepted_by_plan_file() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let base_url = emulator.base_url(Provider::ElevenLabs);
    let dir = tempfile::tempdir().unwrap();
    for model in ["music_v1", "music_v2"] {
        let run = against(
            &base_url,
            &[
                "plan",
                "--prompt",
                "an upbeat synth-pop song",
                "--music-length-ms",
                "12000",
                "--model-id",
                model,
            ],
        )
        .await;
        let plan: Value = serde_json::from_str(run.ok()).unwrap();
        let format_key = if model == "music_v1" {
            "sections"
        } else {
            "chunks"
        };
        assert!(plan[format_key].is_array(), "{model}: {plan}");
        let plan_file = dir.path().join(format!("{model}.json"));
        std::fs::write(&plan_file, &run.stdout).unwrap();

        let before = received(&emulator).len();
        let run = against(
            &base_url,
            &[
                "compose",
                "--plan-file",
                plan_file.to_str().unwrap(),
                "--output-dir",
                dir.path().join(model).to_str().unwrap(),
                "--json",
            ],
        )
        .await;
        assert_eq!(run.json()["content_type"], "audio/wav");
        let requests = received(&emulator);
        let compose = &requests[before];
        assert_eq!(compose.path, "/v1/music");
        let body = compose.json().unwrap_or_default();
        assert_eq!(body["composition_plan"], plan, "{model}");
        assert_eq!(body["model_id"], model);
        assert!(body.get("prompt").is_none(), "{body}");
    }
    let plans = received(&emulator)
        .into_iter()
        .filter(|r| r.path == "/v1/music/plan")
        .count();
    assert_eq!(plans, 2);
}

#[tokio::test]
async fn a_prompt_naming_an_artist_exits_1_with_the_suggested_prompt() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = against(
        &emulator.base_url(Provider::ElevenLabs),
        &[
            "compose",
            "--prompt",
            "an upbeat song in the style of Taylor Swift",
            "--output-dir",
            dir.path().to_str().unwrap(),
        ],
    )
    .await;
    let line = run.failure(1);
    assert!(line.contains("rejected the content"), "{line}");
    let (_, suggested) = line
        .split_once("run the same command with --prompt \"")
        .unwrap_or_else(|| panic!("no suggested --prompt: {line}"));
    let suggested = suggested.strip_suffix('"').unwrap_or(suggested);
    assert!(!suggested.to_lowercase().contains("taylor swift"), "{line}");
    assert!(files_in(dir.path()).is_empty(), "nothing is left behind");
    assert_eq!(emulator.jobs_created(Provider::ElevenLabs), 0);

    // The suggestion is accepted as it is printed.
    let run = against(
        &emulator.base_url(Provider::ElevenLabs),
        &[
            "compose",
            "--prompt",
            suggested,
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    assert_eq!(run.json()["content_type"], "audio/wav");
}

#[tokio::test]
async fn a_plan_naming_an_artist_writes_the_suggested_plan_for_plan_file() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let base_url = emulator.base_url(Provider::ElevenLabs);
    let dir = tempfile::tempdir().unwrap();
    let plan = serde_json::json!({"chunks": [
        {"text": "[Verse]\nla la", "duration_ms": 10000, "positive_styles": ["synth-pop", "Daft Punk"]}
    ]});
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let out = dir.path().join("out");
    let compose = |plan_file: PathBuf| {
        let (base_url, out) = (base_url.clone(), out.clone());
        async move {
            let args = [
                "compose",
                "--plan-file",
                plan_file.to_str().unwrap_or_default(),
                "--output-dir",
                out.to_str().unwrap_or_default(),
            ];
            against(&base_url, &args).await
        }
    };
    let run = compose(plan_file).await;
    let line = run.failure(1);
    let suggested = out.join("suggested-plan.json");
    assert!(
        line.contains(&format!("--plan-file {}", suggested.display())),
        "{line}"
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&suggested).unwrap()).unwrap();
    assert!(!written.to_string().contains("Daft Punk"), "{written}");
    assert_eq!(emulator.jobs_created(Provider::ElevenLabs), 0);

    let run = compose(suggested).await;
    assert!(run.ok().contains("elevenlabs compose: song-id"), "{run:#?}");
    assert_eq!(emulator.jobs_created(Provider::ElevenLabs), 1);
}

#[tokio::test]
async fn out_of_range_values_exit_2_naming_the_flag_and_the_spec_s_limit_before_sending() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let base_url = emulator.base_url(Provider::ElevenLabs);
    let max = spec("ComposeRequest", "prompt", "maxLength")
        .as_u64()
        .unwrap_or_default() as usize;
    let long = "ü".repeat(max + 1);
    let minimum = spec("ComposeRequest", "music_length_ms", "minimum")
        .as_i64()
        .unwrap_or_default();
    let maximum = spec("ComposeRequest", "music_length_ms", "maximum")
        .as_i64()
        .unwrap_or_default();
    let too_short = (minimum - 1).to_string();
    let plan_max = spec("CreateCompositionPlanRequest", "prompt", "maxLength")
        .as_u64()
        .unwrap_or_default() as usize;
    let plan_long = "p".repeat(plan_max + 1);
    for (args, flag, limit) in [
        (
            vec!["compose", "--prompt", long.as_str()],
            "--prompt",
            format!("at most {max} characters"),
        ),
        (
            vec!["compose", "--prompt", "p", "--music-length-ms", &too_short],
            "--music-length-ms",
            format!("between {minimum} and {maximum}"),
        ),
        (
            vec!["plan", "--prompt", plan_long.as_str()],
            "--prompt",
            format!("at most {plan_max} characters"),
        ),
        (
            vec!["compose", "--prompt", "   "],
            "--prompt",
            "must not be empty".to_owned(),
        ),
    ] {
        // Refused before the key is looked for, too.
        for run in [against(&base_url, &args).await, {
            let mut bare = vec!["elevenlabs"];
            bare.extend_from_slice(&args);
            songbind(&bare).await
        }] {
            let line = run.failure(2);
            assert!(
                line.contains(flag) && line.contains(&limit),
                "{args:?}: {line}"
            );
        }
    }
    assert!(received(&emulator).is_empty());

    let help = songbind(&["elevenlabs", "compose", "--help"]).await;
    let help = help.ok();
    assert!(
        help.contains(&format!("at most {max} characters")),
        "{help}"
    );
    assert!(
        help.contains(&format!("between {minimum} and {maximum}")),
        "{help}"
    );
    let formats = spec("OutputFormat", "", "enum");
    for format in formats.as_sequence().into_iter().flatten() {
        let format = format.as_str().unwrap_or_default();
        assert!(help.contains(format), "{format} missing from --help");
    }
}

#[tokio::test]
async fn flags_that_do_not_go_together_are_refused_by_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let plan = plan.to_str().unwrap();
    std::fs::write(plan, "{\"sections\": []}").unwrap();
    for (args, names) in [
        (vec!["compose"], "--prompt"),
        (
            vec!["compose", "--prompt", "p", "--plan-file", plan],
            "--plan-file",
        ),
        (
            vec!["compose", "--plan-file", plan, "--music-length-ms", "10000"],
            "--music-length-ms",
        ),
        (
            vec!["compose", "--prompt", "p", "--model-id", "music_v9"],
            "--model-id",
        ),
        (
            vec!["compose", "--prompt", "p", "--output-format", "flac"],
            "--output-format",
        ),
        (
            vec!["compose", "--prompt", "p", "--with-timestamps"],
            "--detailed",
        ),
    ] {
        let mut all = vec!["--mock", "elevenlabs"];
        all.extend_from_slice(&args);
        let line = songbind(&all).await.failure(2).to_owned();
        assert!(line.contains(names), "{args:?}: {line}");
    }
    let missing = dir.path().join("missing.json");
    let run = songbind(&[
        "--mock",
        "elevenlabs",
        "compose",
        "--plan-file",
        missing.to_str().unwrap(),
    ])
    .await;
    assert!(run.failure(2).contains("--plan-file"));
}

#[tokio::test]
async fn a_rate_limit_that_does_not_lift_exits_1_and_leaves_no_file() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(
        FaultRule::new(Fault::Status {
            status: 429,
            retry_after: Some(0),
        })
        .always(),
    );
    let dir = tempfile::tempdir().unwrap();
    let run = against(
        &emulator.base_url(Provider::ElevenLabs),
        &[
            "compose",
            "--prompt",
            "pop",
            "--output-dir",
            dir.path().to_str().unwrap(),
        ],
    )
    .await;
    let line = run.failure(1);
    assert!(line.contains("rate limit"), "{line}");
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[tokio::test]
async fn a_timeout_counts_the_whole_compose_and_leaves_no_file() {
    let emulator = Emulator::builder()
        .pacing(Pacing::realtime())
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = against(
        &emulator.base_url(Provider::ElevenLabs),
        &[
            "compose",
            "--prompt",
            "pop",
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--timeout",
            "0.5",
        ],
    )
    .await;
    let line = run.failure(1);
    assert!(line.contains("timed out after 500ms"), "{line}");
    assert!(line.contains("ElevenLabs compose"), "{line}");
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[tokio::test]
async fn without_a_key_the_error_names_the_variable_and_the_flag() {
    let run = songbind(&[
        "--base-url",
        "http://127.0.0.1:9",
        "elevenlabs",
        "compose",
        "--prompt",
        "pop",
    ])
    .await;
    let line = run.failure(2);
    assert!(
        line.contains("ELEVENLABS_API_KEY") && line.contains("--api-key"),
        "{line}"
    );
}

#[tokio::test]
async fn help_shows_both_examples() {
    let run = songbind(&["--help"]).await;
    let help = run.ok();
    assert!(
        help.contains("songbind --mock elevenlabs compose --prompt"),
        "{help}"
    );
    assert!(help.contains("songbind elevenlabs plan --prompt"), "{help}");
    assert!(help.contains("ELEVENLABS_API_KEY"), "{help}");
}

// ------------------------------------------------ a fixed song-id, scripted

/// A loopback server answering every request with `response` (a whole raw
/// HTTP answer), after reading the request.
async fn scripted(response: String) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                if read_request(&mut socket).await.is_none() {
                    return;
                }
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

/// An audio answer with `song_id` and `body`.
fn audio(song_id: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: audio/mpeg\r\nsong-id: {song_id}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn an_existing_file_is_never_replaced_unless_forced_and_the_audio_is_kept() {
    let base_url = scripted(audio("fixed_id", "ID3 new audio")).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("fixed_id.mp3");
    std::fs::write(&target, "old audio").unwrap();
    let args = [
        "compose",
        "--prompt",
        "pop",
        "--output-dir",
        dir.path().to_str().unwrap(),
    ];
    let run = against(&base_url, &args).await;
    let line = run.failure(1);
    assert!(
        line.contains("--force") && line.contains("already exists"),
        "{line}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old audio");
    // The paid-for audio is kept under the name the message gives.
    let kept: Vec<PathBuf> = files_in(dir.path())
        .into_iter()
        .filter(|f| f != &target)
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(line.contains(&kept[0].display().to_string()), "{line}");
    assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), "ID3 new audio");

    let mut forced = args.to_vec();
    forced.push("--force");
    against(&base_url, &forced).await.ok();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "ID3 new audio");
}

#[tokio::test]
async fn a_song_id_cannot_name_a_file_outside_the_directory() {
    let base_url = scripted(audio("../../escape", "ID3")).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a").join("b");
    let run = against(
        &base_url,
        &[
            "compose",
            "--prompt",
            "pop",
            "--output-dir",
            out.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    let report = run.json();
    assert_eq!(report["song_id"], "../../escape");
    assert_eq!(files_in(&out), vec![out.join("______escape.mp3")]);
    assert!(!dir.path().join("escape.mp3").exists());
}

// ------------------------------------------------------- a hostile peer

/// The hostile-peer kit's scripted server: each request is answered with
/// a whole raw answer (or, for endless bodies, a start and then a repeat).
use songbind_hostile::{Script, Server as Hostile};

/// A server answering every request with `answer` and then, with
/// `endless`, sending `endless` over and over until the client goes away.
async fn hostile(answer: Vec<u8>, endless: Option<Vec<u8>>) -> Hostile {
    Hostile::always(match endless {
        None => Script::Answer(answer),
        Some(repeat) => Script::Repeating {
            start: answer,
            repeat,
        },
    })
    .await
}

/// A 200 typed `content_type` with `body` and a fixed song-id.
fn answer_200(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\nsong-id: hostile_id\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body);
    answer
}

/// A detailed answer's metadata part.
const METADATA: &str = r#"{"composition_plan": {"chunks": []}, "song_metadata": {"title": "t", "genres": [], "languages": []}, "words_timestamps": null}"#;

/// A detailed answer: the content type names `given` as its boundary, the
/// body is delimited by `used`, its audio part typed `audio_type`.
fn detailed_answer(given: &str, used: &str, audio_type: &str, audio: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{used}\r\ncontent-type: application/json\r\n\r\n{METADATA}\r\n--{used}\r\n\
         content-type: {audio_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(audio);
    body.extend_from_slice(format!("\r\n--{used}--\r\n").as_bytes());
    answer_200(&format!("multipart/mixed; boundary={given}"), &body)
}

/// A WAV whose RIFF header declares `data` bytes of samples, cut after
/// `held` bytes.
fn short_wav(data: u32, held: usize) -> Vec<u8> {
    let mut wav = b"RIFF".to_vec();
    wav.extend_from_slice(&(36 + data).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.resize(36, 0);
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data.to_le_bytes());
    wav.resize(held, 1);
    wav
}

/// Runs `compose` (plus `extra` flags) against `server` into a fresh
/// directory; asserts exit 1 with one line naming `says`, nothing left in
/// the directory, and one request sent.
async fn refused(server: &Hostile, extra: &[&str], says: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "compose",
        "--prompt",
        "pop",
        "--output-dir",
        dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = against(&server.url, &args).await;
    let line = run.failure(1);
    for says in says {
        assert!(line.contains(says), "{extra:?}: {says:?} not in {line}");
    }
    assert!(
        files_in(dir.path()).is_empty(),
        "{extra:?}: {:?}",
        files_in(dir.path())
    );
    assert_eq!(
        server.count(),
        1,
        "{extra:?}: a billed compose is sent once"
    );
}

#[tokio::test]
async fn a_200_holding_a_json_error_exits_1_with_its_message_and_leaves_no_file() {
    let json =
        br#"{"detail": {"status": "quota_exceeded", "message": "You have no credits left"}}"#;
    let server = hostile(answer_200("application/json", json), None).await;
    refused(
        &server,
        &[],
        &["not audio", "application/json", "You have no credits left"],
    )
    .await;
}

#[tokio::test]
async fn a_200_holding_an_html_page_exits_1_and_leaves_no_file() {
    let html = b"<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>";
    for content_type in ["text/html", "audio/mpeg"] {
        let server = hostile(answer_200(content_type, html), None).await;
        refused(&server, &[], &["not audio", "Down for maintenance"]).await;
    }
}

#[tokio::test]
async fn an_audio_part_typed_audio_json_is_refused_and_never_named_json() {
    let server = hostile(
        detailed_answer("sb1", "sb1", "audio/json", br#"{"fake": "audio"}"#),
        None,
    )
    .await;
    refused(
        &server,
        &["--detailed", "--force"],
        &["audio part is not audio", "audio/json"],
    )
    .await;
}

#[tokio::test]
async fn a_boundary_rfc_2046_forbids_exits_1_before_any_byte_is_written() {
    // Read as `a` (or as nothing), these cut the audio at "\n--a".
    let audio = b"ID3 the song\r\n--a and the rest of the song";
    for (given, used) in [("\"\"", ""), ("\"a;b\"", "a;b")] {
        let server = hostile(detailed_answer(given, used, "audio/mpeg", audio), None).await;
        refused(&server, &["--detailed"], &["boundary", "RFC 2046"]).await;
    }
}

#[tokio::test]
async fn pcm_that_ends_cleanly_but_early_exits_1_and_leaves_no_file() {
    // The emulator's own fault: 3 of 10 one-second chunks of 16 kHz PCM.
    let emulator = Emulator::start_for_tests().await.unwrap();
    emulator.inject(
        FaultRule::new(Fault::EndStream { after_events: 3 }).provider(Provider::ElevenLabs),
    );
    let dir = tempfile::tempdir().unwrap();
    let run = against(
        &emulator.base_url(Provider::ElevenLabs),
        &[
            "compose",
            "--prompt",
            "pop",
            "--music-length-ms",
            "10000",
            "--output-format",
            "pcm_16000",
            "--output-dir",
            dir.path().to_str().unwrap(),
        ],
    )
    .await;
    let line = run.failure(1);
    assert!(
        line.contains("ended early") && line.contains("96000") && line.contains("320000"),
        "{line}"
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
    assert_eq!(received(&emulator).len(), 1);
}

#[tokio::test]
async fn detailed_checks_its_audio_as_plain_compose_does() {
    for (audio, says) in [
        (Vec::new(), "held no audio"),
        (short_wav(1000, 100), "declares 1044 bytes"),
    ] {
        let server = hostile(detailed_answer("sb1", "sb1", "audio/wav", &audio), None).await;
        refused(&server, &["--detailed"], &[says]).await;
        let plain = hostile(answer_200("audio/wav", &audio), None).await;
        refused(&plain, &[], &[says]).await;
    }
}

#[tokio::test]
async fn endless_part_headers_exit_1_without_reading_them_all() {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: multipart/mixed; boundary=sb1\r\nsong-id: hostile_id\r\n\
         connection: close\r\n\r\n--sb1\r\ncontent-type: application/json\r\n\r\n{METADATA}\r\n--sb1\r\n"
    );
    let server = hostile(head.into_bytes(), Some("a:b\r\n".repeat(1000).into_bytes())).await;
    refused(
        &server,
        &["--detailed", "--timeout", "20"],
        &["64 header lines"],
    )
    .await;
}

#[tokio::test]
async fn a_plan_file_that_never_ends_is_refused_at_its_cap_with_exit_2() {
    let run = songbind(&["elevenlabs", "compose", "--plan-file", "/dev/zero"]).await;
    let line = run.failure(2);
    assert!(
        line.contains("--plan-file") && line.contains("larger than"),
        "{line}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn force_never_writes_a_suggested_plan_through_a_planted_link() {
    let emulator = Emulator::start_for_tests().await.unwrap();
    let base_url = emulator.base_url(Provider::ElevenLabs);
    let dir = tempfile::tempdir().unwrap();
    let plan = serde_json::json!({"chunks": [
        {"text": "[Verse]\nla la", "duration_ms": 10000, "positive_styles": ["synth-pop", "Daft Punk"]}
    ]});
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let victim = songbind_hostile::plant_link(&out, "suggested-plan.json");
    let args = [
        "compose",
        "--force",
        "--plan-file",
        plan_file.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ];
    let run = against(&base_url, &args).await;
    let line = run.failure(1);
    assert!(
        songbind_hostile::untouched(&victim),
        "written through the link"
    );
    // Written beside it instead, under the next free name.
    let beside = out.join("suggested-plan-2.json");
    assert!(line.contains(&beside.display().to_string()), "{line}");
    let written: Value = serde_json::from_slice(&std::fs::read(&beside).unwrap()).unwrap();
    assert!(written.get("chunks").is_some(), "{written}");
}
