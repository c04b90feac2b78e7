//! The command line, declared with clap's derive API.
//!
//! `songbind [GLOBAL] <provider> <operation> [FLAGS]`. The global flags are
//! `global = true`, so they work before or after the subcommands. clap checks
//! only presence, types and which flags go together; the documented limits
//! (lengths, ranges, URL rules) are checked by the `songbind` request types'
//! `validate()`, so that each limit is written down in one place.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgGroup, Args, Parser, Subcommand};
use songbind::elevenlabs::{MusicModelId, OutputFormat};
use songbind::musicgpt::RemixMode;
use songbind::{Secret, elevenlabs, musicgpt, soundpiece, soundverse};
use songbind_transport::Limit;
use uuid::Uuid;

/// One example command per operation, each a string literal so that help
/// texts can be assembled from them with `concat!`.
macro_rules! example {
    (generate) => {
        "songbind --mock soundverse generate --prompt \"A cheerful pop song about friendship\""
    };
    (generate_sync) => {
        "songbind soundverse generate --prompt \"Lo-fi study beat\" --lyrics \"$(cat lyrics.txt)\" --sync --json"
    };
    (extend) => {
        "songbind soundverse extend --audio-url https://example.com/song.mp3 --lyrics \"[Chorus]\" --extend-at 30000"
    };
    (soundverse_remix) => {
        "songbind soundverse remix --song-reference-url https://example.com/song.mp3 --prompt \"jazz version\""
    };
    (soundpiece_remix) => {
        "songbind soundpiece remix --source-url https://example.com/source.mp3 --lyrics \"[Verse]\" --prompt \"rock, male vocal\" --variations 2"
    };
    (musicgpt_file) => {
        "songbind musicgpt remix --audio-file ./song.mp3 --prompt \"Create an upbeat pop remix\" --output-dir songs"
    };
    (musicgpt_url) => {
        "songbind musicgpt remix --audio-path \"https://www.youtube.com/watch?v=example123\" --prompt \"Make it acoustic\" --mode OVER_INSTRUMENTAL"
    };
    (elevenlabs_compose) => {
        "songbind --mock elevenlabs compose --prompt \"A calm piano piece for a rainy morning\" --music-length-ms 10000 --output-dir songs"
    };
    (soundverse_status) => {
        "songbind soundverse status msg_123 --json"
    };
    (soundverse_wait) => {
        "songbind soundverse wait msg_123 --output-dir songs"
    };
    (soundpiece_status) => {
        "songbind soundpiece status op_123"
    };
    (soundpiece_wait) => {
        "songbind soundpiece wait op_123 --timeout 600"
    };
    (musicgpt_status) => {
        "songbind musicgpt status 5f1e2d3c-4b5a-4c6d-8e7f-0a1b2c3d4e5f"
    };
    (musicgpt_wait) => {
        "songbind musicgpt wait 5f1e2d3c-4b5a-4c6d-8e7f-0a1b2c3d4e5f --json"
    };
    (webhooks_listen) => {
        "songbind webhooks listen --provider soundpiece --port 8787 --forward-to http://127.0.0.1:3000/hooks/soundpiece"
    };
    (webhooks_listen_mock) => {
        "songbind --mock webhooks listen --provider soundpiece --port 8787 --json"
    };
    (webhooks_mock_remix) => {
        "songbind --mock soundpiece remix --source-url https://example.com/a.mp3 --lyrics \"[Verse]\" --prompt rock --callback-url http://127.0.0.1:8787/"
    };
    (soundpiece_webhook_schema) => {
        "songbind soundpiece webhook-schema > soundpiece-webhook.schema.json"
    };
    (musicgpt_webhook_schema) => {
        "songbind musicgpt webhook-schema | jq .properties"
    };
    (webhooks_verify) => {
        "songbind webhooks verify --provider soundpiece --headers-file delivery.headers --body-file delivery.json"
    };
    (elevenlabs_plan) => {
        "songbind elevenlabs plan --prompt \"An upbeat synth-pop song\" --model-id music_v2 > plan.json && songbind elevenlabs compose --plan-file plan.json --detailed"
    };
}

/// Every example, as shown by `songbind -h` and at the top of `--help`.
macro_rules! all_examples {
    () => {
        concat!(
            "Examples (one per operation):\n  ",
            example!(generate),
            "\n  ",
            example!(generate_sync),
            "\n  ",
            example!(extend),
            "\n  ",
            example!(soundverse_remix),
            "\n  ",
            example!(soundpiece_remix),
            "\n  ",
            example!(musicgpt_file),
            "\n  ",
            example!(musicgpt_url),
            "\n  ",
            example!(soundverse_status),
            "\n  ",
            example!(soundpiece_wait),
            "\n  ",
            example!(elevenlabs_compose),
            "\n  ",
            example!(elevenlabs_plan),
            "\n  ",
            example!(webhooks_listen),
            "\n  ",
            example!(webhooks_verify),
            "\n  ",
            example!(soundpiece_webhook_schema),
        )
    };
}

/// `songbind --help` (long form): the examples, the environment, the output
/// and the exit statuses.
const LONG_HELP: &str = concat!(
    all_examples!(),
    "

Environment:
  SOUNDVERSE_API_KEY, SOUNDPIECE_API_KEY, MUSICGPT_API_KEY, ELEVENLABS_API_KEY
      the provider's API key (when --api-key is not given); never printed
  SOUNDVERSE_BASE_URL, SOUNDPIECE_BASE_URL, MUSICGPT_BASE_URL, ELEVENLABS_BASE_URL
      the provider's base URL (when --base-url is not given), e.g. a proxy;
      it may carry a path prefix
  SOUNDPIECE_WEBHOOK_SECRET
      the SoundPiece webhook signing secret (`whsec_...`) for `webhooks listen`
      and `webhooks verify` when --secret is not given; never printed
  SONGBIND_MOCK_PACING
      how fast time passes under --mock: `instant`, `realtime` (a song takes
      about a minute, as with the real providers) or a factor such as 0.1;
      default 0.05 (a song in a few seconds)

Output:
  The song's URLs (and files, with --output-dir, or under --mock the files
  downloaded into ./songbind-output unless --no-download) go to stdout; with --json,
  one JSON object: {\"provider\", \"operation\", \"id\", \"idempotency_key\"
  (SoundPiece), \"outputs\": [{\"url\", \"version\", \"title\", \"duration_secs\",
  \"album_art\", \"lyrics\", \"expires_at\", \"stream_url\", \"file\"}]}, fields a
  provider does not return left out. `elevenlabs compose` writes the audio
  itself into --output-dir (default: the current directory) and prints
  {\"provider\", \"operation\", \"song_id\", \"files\", \"bytes\",
  \"content_type\"}; `elevenlabs plan` prints the plan. `<provider> wait <id>`
  prints what the create printed (operation \"wait\"); `<provider> status <id>`
  the same object (operation \"status\", the outputs ready so far) with
  \"state\" (running, completed or failed), \"stage\", \"progress\" and
  \"error\". Progress bars go to stderr, only when it is a terminal; -v adds
  the library's tracing there (one line per HTTP call, retry and stage).

Exit status:
  0    the job finished (and every download with it)
  1    it failed after a request was sent: the provider refused it (credits,
       rate limit, content), the job failed, --timeout passed, a download failed
  2    refused before any request was sent: a missing or invalid flag or
       value, or no API key
  130  interrupted (Ctrl-C)
  A create (or wait) that timed out or was interrupted once the job had an
  id names the command that follows it: `songbind <provider> wait <id>`.
  Every failure is one line on stderr, with the provider's own message."
);

/// Typed clients for AI music APIs, as a command: generate, extend and remix
/// songs with Soundverse, SoundPiece and MusicGPT, compose them with
/// ElevenLabs Music.
///
/// Follows each job with live progress bars (on stderr, when it is a
/// terminal) and ends by printing the song's URLs, or one JSON object with
/// --json. --mock runs everything offline against a built-in emulator and
/// downloads the songs into ./songbind-output.
#[derive(Debug, Parser)]
#[command(
    name = "songbind",
    version,
    propagate_version = true,
    after_help = all_examples!(),
    after_long_help = LONG_HELP,
)]
pub struct Cli {
    /// Flags every operation takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The provider and its operation.
    #[command(subcommand)]
    pub command: ProviderCommand,
}

/// Flags every operation takes, before or after the subcommands.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The provider's base URL; may carry a path prefix [env: SOUNDVERSE_BASE_URL,
    /// SOUNDPIECE_BASE_URL, MUSICGPT_BASE_URL or ELEVENLABS_BASE_URL; default: the
    /// provider's public API].
    #[arg(long, global = true, value_name = "URL", conflicts_with = "mock")]
    pub base_url: Option<String>,

    /// The provider's API key [env: SOUNDVERSE_API_KEY, SOUNDPIECE_API_KEY,
    /// MUSICGPT_API_KEY or ELEVENLABS_API_KEY]. Prefer the variable: a flag
    /// shows in the process list.
    #[arg(long, global = true, value_name = "KEY", value_parser = parse_secret)]
    pub api_key: Option<Secret>,

    /// Print one JSON object on stdout at the end (progress stays on
    /// stderr); `webhooks listen` prints one per delivery, a line each.
    #[arg(long, global = true)]
    pub json: bool,

    /// Pause between two status polls, in seconds (MusicGPT; SoundPiece after
    /// an early long-poll answer) [default: 5, or 0.25 with --mock].
    #[arg(long, global = true, value_name = "SECS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub poll_interval: Option<Duration>,

    /// Give up when the job has not finished after this many seconds,
    /// submission included (downloads are not counted) [default: no limit].
    #[arg(long, global = true, value_name = "SECS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub timeout: Option<Duration>,

    /// Download every output into this directory (created if missing), as
    /// `<id>-v<version>.<ext>` (`elevenlabs compose`: `<song-id>.<ext>`, in
    /// the current directory when not given) [default: none, or
    /// ./songbind-output with --mock]. A file already there is never
    /// replaced: that download fails (exit 1) and the file is left as it
    /// was, unless --force is given.
    #[arg(long, global = true, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// When downloading (--output-dir, --mock, `elevenlabs compose`):
    /// replace files that already exist there (and a partial `<name>.part`
    /// left by an interrupted download). Symbolic links
    /// in place of a `.part` file are never followed, even with --force.
    #[arg(long, global = true)]
    pub force: bool,

    /// Run against a built-in emulator of the provider, in this process: no
    /// key, no network. Its URLs stop working when the command exits, so
    /// a job's outputs are downloaded into ./songbind-output (or
    /// --output-dir) unless --no-download is given (`elevenlabs compose`
    /// writes its audio as it always does). SONGBIND_MOCK_PACING sets its
    /// speed.
    #[arg(long, global = true)]
    pub mock: bool,

    /// With --mock: only print the outputs' URLs, do not download them
    /// into ./songbind-output.
    #[arg(long, global = true, conflicts_with = "output_dir")]
    pub no_download: bool,

    /// Print what the library traces on stderr: one line per HTTP call
    /// (`songbind.call`: provider, operation, attempt, status, elapsed
    /// time, request id), each retry and each stage of the job. Never a key.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// Where `--mock` downloads a job's outputs when `--output-dir` is not
/// given, relative to the current directory.
pub const MOCK_OUTPUT_DIR: &str = "songbind-output";

impl GlobalArgs {
    /// Where to download a job's outputs: `--output-dir`; under `--mock`
    /// without it, [`MOCK_OUTPUT_DIR`] (the emulator's URLs die with the
    /// command) unless `--no-download`; otherwise nowhere.
    pub fn download_dir(&self) -> Option<PathBuf> {
        match &self.output_dir {
            Some(dir) => Some(dir.clone()),
            None if self.mock && !self.no_download => Some(PathBuf::from(MOCK_OUTPUT_DIR)),
            None => None,
        }
    }
}

/// The provider to talk to.
#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Soundverse: generate, extend and remix songs (two versions each),
    /// followed over their event stream.
    Soundverse {
        /// What to do.
        #[command(subcommand)]
        operation: SoundverseOperation,
    },
    /// SoundPiece: remix a track with new lyrics and style (idempotent,
    /// long-polled).
    #[command(name = "soundpiece")]
    SoundPiece {
        /// What to do.
        #[command(subcommand)]
        operation: SoundPieceOperation,
    },
    /// MusicGPT: remix a local file or a URL (two versions, polled).
    #[command(name = "musicgpt")]
    MusicGpt {
        /// What to do.
        #[command(subcommand)]
        operation: MusicGptOperation,
    },
    /// ElevenLabs Music: compose a song (its audio is the answer, written
    /// to a file) or a composition plan.
    #[command(name = "elevenlabs")]
    ElevenLabs {
        /// What to do.
        #[command(subcommand)]
        operation: ElevenLabsOperation,
    },
    /// Receive provider webhooks on this machine, like `stripe listen`:
    /// verify, de-duplicate, print and forward them; or check one saved
    /// delivery.
    Webhooks {
        /// What to do.
        #[command(subcommand)]
        command: WebhooksCommand,
    },
}

/// Soundverse's operations.
#[derive(Debug, Subcommand)]
pub enum SoundverseOperation {
    /// Generate a song from a prompt (`/v6/generate/song`).
    #[command(after_help = concat!("Examples:\n  ", example!(generate), "\n  ", example!(generate_sync)))]
    Generate(GenerateArgs),
    /// Extend a song from a position (`/v6/extend/song`).
    #[command(after_help = concat!("Example:\n  ", example!(extend)))]
    Extend(ExtendArgs),
    /// Remix a song (`/v7/generate/remix`, streamed only).
    #[command(after_help = concat!("Example:\n  ", example!(soundverse_remix)))]
    Remix(SoundverseRemixArgs),
    /// Look up a generation once by its message id
    /// (`/status/generations/{id}`) and print it.
    #[command(after_help = concat!("Example:\n  ", example!(soundverse_status)))]
    Status(MessageIdArgs),
    /// Follow a generation by its message id to its end, with the same
    /// progress, output and downloads as the create commands.
    #[command(after_help = concat!("Example:\n  ", example!(soundverse_wait)))]
    Wait(MessageIdArgs),
}

/// `soundverse status` and `soundverse wait`.
#[derive(Debug, Args)]
pub struct MessageIdArgs {
    /// The generation's message id (`msg_...`), as a create command
    /// printed it.
    #[arg(value_name = "MESSAGE_ID")]
    pub id: String,
}

/// `soundverse generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What the song should be (must not be empty).
    #[arg(long)]
    pub prompt: String,
    /// Lyrics, with section markers such as `[Verse]` on their own lines;
    /// written for you when left out.
    #[arg(long)]
    pub lyrics: Option<String>,
    /// Wait for the whole answer in one request (`/sync`) instead of
    /// following the event stream.
    #[arg(long)]
    pub sync: bool,
}

/// `soundverse extend`.
#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// Public http(s) URL of the song to extend.
    #[arg(long, value_name = "URL")]
    pub audio_url: String,
    /// Lyrics for the extension (must not be empty).
    #[arg(long)]
    pub lyrics: String,
    /// Where to extend, in milliseconds.
    #[arg(long, value_name = "MS", allow_negative_numbers = true,
          help = limited("Where to extend, in milliseconds", &soundverse::limits::EXTEND_SONG_REQUEST_EXTEND_AT))]
    pub extend_at: i64,
    /// Style prompt.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Wait for the whole answer in one request (`/sync`).
    #[arg(long)]
    pub sync: bool,
}

/// `soundverse remix`: a prompt, lyrics, or both.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("direction").required(true).multiple(true).args(["prompt", "lyrics"])))]
pub struct SoundverseRemixArgs {
    /// Public http(s) URL of the song to remix (at most 10 MB, 10 to 350 s).
    #[arg(long, value_name = "URL")]
    pub song_reference_url: String,
    /// Style prompt.
    #[arg(long, help = limited("Style prompt", &soundverse::limits::REMIX_SONG_REQUEST_PROMPT))]
    pub prompt: Option<String>,
    /// New lyrics.
    #[arg(long)]
    pub lyrics: Option<String>,
}

/// SoundPiece's operations.
#[derive(Debug, Subcommand)]
pub enum SoundPieceOperation {
    /// Remix a track with new lyrics and a style prompt (`PUT /v1/create.remix_song`).
    #[command(after_help = concat!("Example:\n  ", example!(soundpiece_remix)))]
    Remix(SoundPieceRemixArgs),
    /// Look up an operation once by its id (`GET /v1/create.remix_song`)
    /// and print it.
    #[command(after_help = concat!("Example:\n  ", example!(soundpiece_status)))]
    Status(OperationIdArgs),
    /// Follow an operation by its id to its end (long-polled), with the
    /// same progress, output and downloads as `remix`.
    #[command(after_help = concat!("Example:\n  ", example!(soundpiece_wait)))]
    Wait(OperationIdArgs),
    /// Print the JSON Schema (draft 2020-12) of the body SoundPiece POSTs
    /// to a --callback-url (the spec's `RemixSongWebhook`: `type` and
    /// `data.remix_song`), e.g. to validate deliveries elsewhere. Offline.
    #[command(name = "webhook-schema", after_help = concat!("Example:\n  ", example!(soundpiece_webhook_schema)))]
    WebhookSchema,
}

/// `soundpiece status` and `soundpiece wait`.
#[derive(Debug, Args)]
pub struct OperationIdArgs {
    /// The operation's id (`op_...`), as `remix` printed it.
    #[arg(value_name = "OPERATION_ID")]
    pub id: String,
}

/// `soundpiece remix`.
#[derive(Debug, Args)]
pub struct SoundPieceRemixArgs {
    /// Public http(s) URL of the track to remix.
    #[arg(long, value_name = "URL")]
    pub source_url: String,
    /// Lyrics with section markers.
    #[arg(long, help = limited("Lyrics with section markers", &soundpiece::limits::CREATE_REMIX_SONG_REQUEST_LYRICS))]
    pub lyrics: String,
    /// Comma-separated style tags.
    #[arg(long, help = limited("Comma-separated style tags", &soundpiece::limits::CREATE_REMIX_SONG_REQUEST_PROMPT))]
    pub prompt: String,
    /// How many variations to make.
    #[arg(long, value_name = "N", default_value_t = 1,
          help = limited("How many variations to make", &soundpiece::limits::CREATE_REMIX_SONG_REQUEST_N_VARIATIONS))]
    pub variations: u8,
    /// Idempotency key: the same key never creates a second operation, so a
    /// command run again with it follows the first one [default: a new
    /// one, printed with the result].
    #[arg(long, value_name = "UUID")]
    pub idempotency_key: Option<Uuid>,
    /// HTTPS URL SoundPiece POSTs the signed result to (http for loopback hosts only).
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
}

/// MusicGPT's operations.
#[derive(Debug, Subcommand)]
pub enum MusicGptOperation {
    /// Remix a local file or a URL (`POST /Remix`).
    #[command(after_help = concat!("Examples:\n  ", example!(musicgpt_file), "\n  ", example!(musicgpt_url)))]
    Remix(MusicGptRemixArgs),
    /// Look up a task once by its task id (`GET /byId?task_id=`: the
    /// task's first conversion) and print it.
    #[command(after_help = concat!("Example:\n  ", example!(musicgpt_status)))]
    Status(TaskIdArgs),
    /// Follow a task by its task id to its end (polled), with the same
    /// progress, output and downloads as `remix`. MusicGPT finds a task's
    /// first conversion by its task id, so this follows that one.
    #[command(after_help = concat!("Example:\n  ", example!(musicgpt_wait)))]
    Wait(TaskIdArgs),
    /// Print the JSON Schema (draft 2020-12) of a conversion delivery
    /// MusicGPT POSTs to a --webhook-url (the spec's `WebhookPayload`; its
    /// lyrics and cover deliveries are undocumented and have none). Offline.
    #[command(name = "webhook-schema", after_help = concat!("Example:\n  ", example!(musicgpt_webhook_schema)))]
    WebhookSchema,
}

/// `musicgpt status` and `musicgpt wait`.
#[derive(Debug, Args)]
pub struct TaskIdArgs {
    /// The task's id, as `remix` printed it (or its webhook named it).
    #[arg(value_name = "TASK_ID")]
    pub id: String,
}

/// `musicgpt remix`: exactly one of `--audio-file` and `--audio-path`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("audio").required(true).args(["audio_file", "audio_path"])))]
pub struct MusicGptRemixArgs {
    /// A local audio file to upload (streamed, not read into memory).
    #[arg(long, value_name = "PATH")]
    pub audio_file: Option<PathBuf>,
    /// The audio's URL (S3 or YouTube).
    #[arg(long, value_name = "URL")]
    pub audio_path: Option<String>,
    /// What the remix should sound like (must not be empty).
    #[arg(long)]
    pub prompt: String,
    /// Lyrics to sing.
    #[arg(long)]
    pub lyrics: Option<String>,
    /// What to do with the audio: one of the spec's modes.
    #[arg(long, ignore_case = true, value_parser = remix_mode(), default_value = default_remix_mode())]
    pub mode: RemixMode,
    /// Where MusicGPT POSTs its results.
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
}

/// ElevenLabs Music's operations.
#[derive(Debug, Subcommand)]
pub enum ElevenLabsOperation {
    /// Compose a song from a prompt or a plan (`/v1/music`, or
    /// `/v1/music/detailed` with --detailed) and write its audio into
    /// --output-dir as `<song-id>.<ext>`.
    #[command(after_help = concat!("Examples:\n  ", example!(elevenlabs_compose), "\n  ", example!(elevenlabs_plan)))]
    Compose(ComposeArgs),
    /// Make a composition plan (`/v1/music/plan`, free) and print it as
    /// JSON, ready for `compose --plan-file`.
    #[command(after_help = concat!("Example:\n  ", example!(elevenlabs_plan)))]
    Plan(PlanArgs),
}

/// `elevenlabs compose`: exactly one of `--prompt` and `--plan-file`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["prompt", "plan_file"])))]
pub struct ComposeArgs {
    /// What the song should be.
    #[arg(long, help = limited("What the song should be", &elevenlabs::limits::COMPOSE_REQUEST_PROMPT))]
    pub prompt: Option<String>,
    /// A composition plan in JSON (v1 `MusicPrompt` or v2 `CompositionPlan`),
    /// e.g. as `elevenlabs plan` prints it.
    #[arg(long, value_name = "PATH")]
    pub plan_file: Option<PathBuf>,
    /// The song's length in milliseconds (with --prompt; a plan's sections
    /// set its length) [default: the model chooses].
    #[arg(long, value_name = "MS", conflicts_with = "plan_file", allow_negative_numbers = true,
          help = limited("The song's length in milliseconds, with --prompt", &elevenlabs::limits::COMPOSE_REQUEST_MUSIC_LENGTH_MS))]
    pub music_length_ms: Option<i64>,
    /// The model [default: music_v1 with --prompt, the one a plan's format
    /// needs with --plan-file].
    #[arg(long, value_name = "MODEL", value_parser = model_id(&elevenlabs::limits::COMPOSE_REQUEST_MODEL_ID))]
    pub model_id: Option<MusicModelId>,
    /// The audio's format, as codec_sample_rate_bitrate [default: auto].
    #[arg(long, value_name = "FORMAT", value_parser = output_format())]
    pub output_format: Option<OutputFormat>,
    /// Use `/v1/music/detailed`: also write the song's metadata (plan,
    /// title, genres; word timestamps with --with-timestamps) as
    /// `<song-id>.json` beside the audio.
    #[arg(long)]
    pub detailed: bool,
    /// With --detailed: add each word's timing to the metadata.
    #[arg(long, requires = "detailed")]
    pub with_timestamps: bool,
}

/// `elevenlabs plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// What the song should be.
    #[arg(long, help = limited("What the song should be", &elevenlabs::limits::CREATE_COMPOSITION_PLAN_REQUEST_PROMPT))]
    pub prompt: String,
    /// The song's length in milliseconds [default: the model chooses].
    #[arg(long, value_name = "MS", allow_negative_numbers = true,
          help = limited("The song's length in milliseconds", &elevenlabs::limits::CREATE_COMPOSITION_PLAN_REQUEST_MUSIC_LENGTH_MS))]
    pub music_length_ms: Option<i64>,
    /// The model whose plan format to use (music_v1: sections; music_v2:
    /// chunks) [default: music_v1].
    #[arg(long, value_name = "MODEL", value_parser = model_id(&elevenlabs::limits::CREATE_COMPOSITION_PLAN_REQUEST_MODEL_ID))]
    pub model_id: Option<MusicModelId>,
}

/// The mock secret, the secret's sources and the exit statuses, shared by
/// both `webhooks` commands' long help.
macro_rules! webhook_secret_help {
    () => {
        "SoundPiece's signing secret comes from --secret, else SOUNDPIECE_WEBHOOK_SECRET, \
         else (with --mock) the built-in emulator's own secret, the one it signs the \
         callbacks of `songbind --mock soundpiece remix --callback-url ...` with; it is \
         never printed. MusicGPT's deliveries are not signed: no secret is taken."
    };
}

/// `webhooks`: receive or check provider webhooks.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Receive webhooks on 127.0.0.1:PORT until Ctrl-C: verify each
    /// SoundPiece delivery (Standard Webhooks; 400 when it fails, with the
    /// reason on stderr), parse each MusicGPT delivery (400 when it is not a
    /// JSON object), answer a redelivery 200 without printing or forwarding
    /// it again, print every accepted delivery on stdout and forward it to
    /// --forward-to.
    #[command(
        after_help = concat!("Examples:\n  ", example!(webhooks_listen), "\n  ", example!(webhooks_listen_mock), "\n  ", example!(webhooks_mock_remix)),
        after_long_help = concat!(
            "Examples:\n  ", example!(webhooks_listen),
            "\n  # offline, end to end: the listener, then in another shell a mock remix that calls it back\n  ",
            example!(webhooks_listen_mock), "\n  ", example!(webhooks_mock_remix),
            "\n\nSecret:\n  ", webhook_secret_help!(),
            "\n\nWhat it accepts:\n  Any path, POST only (405 otherwise), bodies up to 2 MiB. SoundPiece: the \
             webhook-id, webhook-timestamp and webhook-signature headers must verify with the secret, \
             within 5 minutes of this machine's clock, and the body must be JSON with a `type` (a \
             remix_song.* event holding its operation); else \
             400 and `rejected ...: <reason>` on stderr. MusicGPT: the body must be a JSON object.\n\n\
             Duplicates:\n  SoundPiece by webhook-id; MusicGPT (which sends no id) by conversion id and \
             outcome for a conversion delivery, by task id for a lyrics or cover delivery, not at all \
             for a body it does not recognise. A duplicate is answered 200 and reported on stderr, \
             never printed nor forwarded again. The last 10 000 keys are remembered.\n\n\
             Output:\n  stderr: `listening on http://127.0.0.1:PORT/` first, then one line per \
             rejection, duplicate and forward. stdout: one line per accepted delivery: \
             `<provider> <event> <id> <status> [task <id>] [<audio URL>...] [image <URL>] \
             [error \"<message>\"] [webhook-id <id>]`; with --json one JSON object per line: \
             {\"provider\", \"event\", \"webhook_id\", \"timestamp\", \"id\", \"task_id\", \"status\", \
             \"audio_urls\", \"image_url\", \"error\", \"body\"} (every key always present, null when \
             unknown; \"body\" is the delivery as received).\n\n\
             Forwarding:\n  --forward-to gets each accepted delivery: the same body, content-type and \
             webhook-* headers. Redirects are not followed. A delivery is answered 200 only once it \
             was printed and the forward was answered 2xx; otherwise 502 (503 when stdout is not \
             read), so that the provider sends it again: nothing waits in memory. The URL is shown \
             without its query. A URL that points at the listener itself is refused, and a forward \
             that comes back is answered 508.\n\n\
             Limits:\n  --read-timeout (10 s) to send a request's headers, then as long for its body; at most 512 \
             connections at once; the last 10 000 keys are kept as 32-byte digests.\n\n\
             Exit status:\n  0 after Ctrl-C (once the deliveries being handled are done, at most \
             5 s; the last line says how many were cut off); 2 for a bad flag, port in use or \
             unusable secret."
        )
    )]
    Listen(ListenArgs),
    /// Check one saved delivery: exit 0 and print it (as `listen` would)
    /// when it is valid; exit 1 with the reason on stderr when it is not.
    #[command(
        after_help = concat!("Example:\n  ", example!(webhooks_verify)),
        after_long_help = concat!(
            "Example:\n  ", example!(webhooks_verify),
            "\n\nSecret:\n  ", webhook_secret_help!(),
            "\n\nHeaders file:\n  One `name: value` per line, as `curl -D` or an HTTP log writes them: a \
             status or request line (`HTTP/1.1 200 OK`, `POST /hooks HTTP/1.1`), blank lines and lines \
             starting with `#` are skipped; a header given twice keeps both values. Only the webhook-* \
             headers matter.\n\n\
             Old deliveries:\n  SoundPiece deliveries older (or newer) than 5 minutes are refused, as \
             `listen` refuses them. To check a saved one, say explicitly when to check it as of: \
             --now <UNIX_SECONDS> (e.g. its own webhook-timestamp), or widen --tolerance.\n\n\
             Exit status:\n  0 valid; 1 invalid (the reason on stderr); 2 a file cannot be read or a \
             flag is wrong."
        )
    )]
    Verify(VerifyArgs),
}

/// The providers whose webhooks `webhooks` understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WebhookProvider {
    /// SoundPiece: signed (Standard Webhooks) `remix_song.*` callbacks.
    #[value(name = "soundpiece")]
    SoundPiece,
    /// MusicGPT: unsigned conversion, lyrics and cover deliveries.
    #[value(name = "musicgpt")]
    MusicGpt,
}

/// `webhooks listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Whose deliveries to expect.
    #[arg(long, value_enum)]
    pub provider: WebhookProvider,
    /// The port to listen on, on 127.0.0.1 only; 0 picks a free one (the
    /// first line on stderr names it).
    #[arg(long, value_name = "PORT")]
    pub port: u16,
    /// SoundPiece's signing secret (`whsec_...`) [env: SOUNDPIECE_WEBHOOK_SECRET;
    /// with --mock, the built-in emulator's]. Prefer the variable: a flag
    /// shows in the process list.
    #[arg(long, value_name = "SECRET", value_parser = parse_secret)]
    pub secret: Option<Secret>,
    /// Also POST each accepted delivery (same body, content-type and
    /// webhook-* headers) to this http(s) URL; a delivery is answered 2xx
    /// only once this URL answered 2xx.
    #[arg(long, value_name = "URL")]
    pub forward_to: Option<String>,
    /// How long a peer may take to send a request's headers, and then its
    /// body, in seconds (a slower peer is disconnected).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub read_timeout: u64,
}

/// `webhooks verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Whose delivery it is.
    #[arg(long, value_enum)]
    pub provider: WebhookProvider,
    /// SoundPiece's signing secret (`whsec_...`) [env: SOUNDPIECE_WEBHOOK_SECRET;
    /// with --mock, the built-in emulator's].
    #[arg(long, value_name = "SECRET", value_parser = parse_secret)]
    pub secret: Option<Secret>,
    /// The delivery's headers, one `name: value` per line (`curl -D`
    /// format); required for SoundPiece.
    #[arg(long, value_name = "FILE")]
    pub headers_file: Option<PathBuf>,
    /// The delivery's body, byte for byte.
    #[arg(long, value_name = "FILE")]
    pub body_file: PathBuf,
    /// Check the timestamp as if the clock read this (unix seconds), e.g.
    /// the delivery's own webhook-timestamp, to check a saved delivery
    /// older than the tolerance [default: the system clock].
    #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
    pub now: Option<i64>,
    /// How far the delivery's timestamp may be from the clock, either way,
    /// in seconds [default: 300].
    #[arg(long, value_name = "SECS")]
    pub tolerance: Option<u64>,
}

/// `text`, then the spec's limit in words, for a flag's help.
fn limited(text: &str, limit: &Limit) -> String {
    format!("{text} ({})", limit.describe())
}

/// MusicGPT's remix modes as the spec lists them, in any case.
fn remix_mode() -> impl TypedValueParser<Value = RemixMode> {
    let modes = musicgpt::limits::REMIX_FORM_MODE.values();
    PossibleValuesParser::new(modes).try_map(move |given| {
        let canonical = modes
            .iter()
            .find(|mode| mode.eq_ignore_ascii_case(&given))
            .copied()
            .unwrap_or_default();
        canonical.parse::<RemixMode>()
    })
}

/// ElevenLabs' models as the spec's `limit` lists them.
fn model_id(limit: &Limit) -> impl TypedValueParser<Value = MusicModelId> {
    PossibleValuesParser::new(limit.values()).try_map(|given| given.parse::<MusicModelId>())
}

/// ElevenLabs' output formats, as the generated type knows them (the spec's
/// `OutputFormat` enum; the `limits` module has no entry for a query
/// parameter whose schema is a `$ref`).
fn output_format() -> impl TypedValueParser<Value = OutputFormat> {
    PossibleValuesParser::new(output_formats()).try_map(|given| given.parse::<OutputFormat>())
}

/// Every `OutputFormat` value, in the spec's order, read from the generated
/// type itself: serde's refusal of an unknown value lists them all
/// (``expected one of `auto`, `mp3_22050_32`, ...``).
pub fn output_formats() -> Vec<&'static str> {
    static FORMATS: OnceLock<Vec<String>> = OnceLock::new();
    FORMATS
        .get_or_init(|| {
            let unknown = serde_json::Value::String(String::new());
            let refusal = serde_json::from_value::<OutputFormat>(unknown)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            let listed = refusal
                .split_once("expected one of ")
                .map_or("", |(_, list)| list);
            listed
                .split(", ")
                .filter_map(|value| value.strip_prefix('`')?.split('`').next())
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .iter()
        .map(String::as_str)
        .collect()
}

/// The spec's first remix mode (`REMIX`), the default.
fn default_remix_mode() -> &'static str {
    musicgpt::limits::REMIX_FORM_MODE
        .values()
        .first()
        .copied()
        .unwrap_or_default()
}

/// Reads a number of seconds (a float such as `0.5`) that must be positive.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| "must be a number of seconds, such as 2 or 0.5".to_owned())?;
    if seconds.is_nan() || seconds <= 0.0 {
        return Err("must be more than 0 seconds".to_owned());
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| "must be a finite number of seconds".to_owned())
}

/// Wraps an API key at once, so that no `String` copy of it stays in the
/// parsed arguments (whose `Debug` would show it).
fn parse_secret(text: &str) -> Result<Secret, String> {
    Ok(Secret::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_are_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "songbind",
            "soundverse",
            "generate",
            "--prompt",
            "p",
            "--json",
            "--timeout",
            "1.5",
        ])
        .unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.timeout, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn status_and_wait_take_the_id_and_the_same_global_flags() {
        let cli = Cli::try_parse_from([
            "songbind",
            "-v",
            "soundpiece",
            "wait",
            "op_1",
            "--json",
            "--output-dir",
            "songs",
            "--timeout",
            "5",
        ])
        .unwrap();
        assert!(cli.global.verbose && cli.global.json);
        assert_eq!(cli.global.output_dir, Some(PathBuf::from("songs")));
        assert_eq!(cli.global.timeout, Some(Duration::from_secs(5)));
        let ProviderCommand::SoundPiece {
            operation: SoundPieceOperation::Wait(args),
        } = cli.command
        else {
            panic!("parsed as another command");
        };
        assert_eq!(args.id, "op_1");
        for provider in ["soundverse", "musicgpt"] {
            let cli = Cli::try_parse_from(["songbind", provider, "status", "x", "--verbose"]);
            assert!(cli.unwrap().global.verbose, "{provider}");
        }
        assert!(Cli::try_parse_from(["songbind", "soundverse", "wait"]).is_err());
        assert!(Cli::try_parse_from(["songbind", "elevenlabs", "wait", "x"]).is_err());
    }

    #[test]
    fn mock_downloads_into_songbind_output_unless_told_otherwise() {
        let dir = |args: &[&str]| {
            let mut argv = vec!["songbind"];
            argv.extend_from_slice(args);
            argv.extend_from_slice(&["soundverse", "generate", "--prompt", "p"]);
            Cli::try_parse_from(argv).unwrap().global.download_dir()
        };
        assert_eq!(dir(&["--mock"]), Some(PathBuf::from(MOCK_OUTPUT_DIR)));
        assert_eq!(dir(&["--mock", "--no-download"]), None);
        assert_eq!(
            dir(&["--mock", "--output-dir", "songs"]),
            Some(PathBuf::from("songs"))
        );
        assert_eq!(dir(&[]), None);
        assert_eq!(dir(&["--output-dir", "s"]), Some(PathBuf::from("s")));
        let both = ["songbind", "--mock", "--no-download", "--output-dir", "s"];
        let refused =
            Cli::try_parse_from([&both[..], &["soundverse", "generate", "--prompt", "p"]].concat());
        assert!(refused.is_err());
    }

    #[test]
    fn seconds_must_be_positive_and_finite() {
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        for bad in ["0", "-1", "NaN", "inf", "soon", "1e300"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_api_key_never_shows_in_debug_output() {
        let cli = Cli::try_parse_from([
            "songbind",
            "--api-key",
            "sk_do_not_print",
            "soundpiece",
            "remix",
            "--source-url",
            "https://example.com/a.mp3",
            "--lyrics",
            "l",
            "--prompt",
            "p",
        ])
        .unwrap();
        assert!(!format!("{cli:?}").contains("sk_do_not_print"));
    }

    #[test]
    fn the_webhook_secret_never_shows_in_debug_output() {
        for command in ["listen", "verify"] {
            let mut argv = vec!["songbind", "webhooks", command, "--provider", "soundpiece"];
            argv.extend_from_slice(&["--secret", "whsec_ZG8tbm90LXByaW50"]);
            argv.extend_from_slice(match command {
                "listen" => &["--port", "0"][..],
                _ => &["--headers-file", "h", "--body-file", "b"][..],
            });
            let cli = Cli::try_parse_from(argv).unwrap();
            assert!(!format!("{cli:?}").contains("ZG8tbm90LXByaW50"), "{cli:?}");
        }
    }

    #[test]
    fn output_formats_are_read_from_the_generated_type() {
        let formats = output_formats();
        assert_eq!(formats.first(), Some(&"auto"));
        assert!(formats.len() > 1, "{formats:?}");
        for format in formats {
            let parsed: OutputFormat = format.parse().unwrap();
            assert_eq!(parsed.to_string(), format);
        }
    }

    #[test]
    fn musicgpt_takes_exactly_one_audio_source() {
        let base = ["songbind", "musicgpt", "remix", "--prompt", "p"];
        assert!(Cli::try_parse_from(base).is_err());
        let both = [
            &base[..],
            &["--audio-file", "a.mp3", "--audio-path", "https://x.y/a"],
        ]
        .concat();
        assert!(Cli::try_parse_from(both).is_err());
        let one = [
            &base[..],
            &["--audio-path", "https://x.y/a", "--mode", "inpaint"],
        ]
        .concat();
        let cli = Cli::try_parse_from(one).unwrap();
        let ProviderCommand::MusicGpt {
            operation: MusicGptOperation::Remix(args),
        } = cli.command
        else {
            panic!("parsed as another command");
        };
        assert_eq!(args.mode, RemixMode::Inpaint);
    }
}
