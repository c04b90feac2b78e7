//! A campaign worker: an emulator of its own and the clients that talk to
//! it, running one job at a time.
//!
//! Because a worker's emulator serves nobody else and its jobs run one after
//! the other, everything the emulator records between the start and the end
//! of a job (fault rules used, jobs created, requests received) belongs to
//! that job alone: no rule can fire on another job's request and no count
//! can mix two jobs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use songbind::elevenlabs::{ComposeRequest, Composed, ElevenLabs};
use songbind::musicgpt::{self, AudioInput, MusicGpt};
use songbind::soundpiece::{self, SoundPiece};
use songbind::soundverse::{self, Soundverse};
use songbind::sse::StreamLimits;
use songbind::{JobOutput, Output, ProviderName, Secret, WaitOptions};
use songbind_emulator::{Emulator, Pacing, Provider};

use crate::ChaosError;
use crate::judge::{self, Ended, Observed};
use crate::plan::{FaultKind, JobPlan, Operation, SHORT_IDLE_TIMEOUT};
use crate::report::JobRecord;

/// Pause between two MusicGPT status polls (and after an early SoundPiece
/// long-poll answer): a few polls per job at the default pacing.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Appended to a worker's key for the clients of "key without credits"
/// jobs: the emulator refuses every create of such a key with 402.
const NO_CREDITS: &str = "_no_credits";

/// The API key of worker `worker` in the campaign seeded with `seed`: a
/// realistic live key, `sk_live_` and 24 letters and digits, the same for
/// every client of the worker (so that a server echoing it back shows what
/// a real key would look like), drawn from the seed so that a replayed job
/// sends a key of the same shape.
pub(crate) fn worker_key(seed: u64, worker: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6b65_795f_6b65_7973);
    rng.set_stream(worker as u64);
    let secret: String = (0..24)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("sk_live_{secret}")
}

/// The clients a job may use; cheap to clone (each holds a connection pool,
/// shared by every job of the worker, as an application would).
#[derive(Clone, Debug)]
pub(crate) struct Clients {
    soundverse: Soundverse,
    soundverse_short_idle: Soundverse,
    soundverse_no_credits: Soundverse,
    soundpiece: SoundPiece,
    soundpiece_no_credits: SoundPiece,
    musicgpt: MusicGpt,
    musicgpt_no_credits: MusicGpt,
    /// Sends the key in `xi-api-key`.
    elevenlabs: ElevenLabs,
    /// Downloads outputs, with no API key (output URLs are public).
    downloads: reqwest::Client,
}

impl Clients {
    /// Every client of a worker, all with `api_key` (followed by
    /// `_no_credits` for the clients without credits).
    fn new(emulator: &Emulator, api_key: &str) -> Result<Self, ChaosError> {
        let key = |broke: bool| {
            Secret::from(if broke {
                format!("{api_key}{NO_CREDITS}")
            } else {
                api_key.to_owned()
            })
        };
        let soundverse =
            |broke| Soundverse::new(&emulator.base_url(Provider::Soundverse), &key(broke));
        let soundpiece =
            |broke| SoundPiece::new(&emulator.base_url(Provider::SoundPiece), &key(broke));
        let musicgpt = |broke| MusicGpt::new(&emulator.base_url(Provider::MusicGpt), &key(broke));
        let downloads = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ChaosError::Client(songbind::Error::from(e)))?;
        Ok(Self {
            soundverse: soundverse(false)?,
            soundverse_short_idle: soundverse(false)?.stream_limits(StreamLimits {
                idle_timeout: Some(SHORT_IDLE_TIMEOUT),
                ..StreamLimits::default()
            }),
            soundverse_no_credits: soundverse(true)?,
            soundpiece: soundpiece(false)?,
            soundpiece_no_credits: soundpiece(true)?,
            musicgpt: musicgpt(false)?,
            musicgpt_no_credits: musicgpt(true)?,
            elevenlabs: ElevenLabs::new(&emulator.base_url(Provider::ElevenLabs), &key(false))?,
            downloads,
        })
    }
}

/// What a job's task hands back when it ends on its own.
#[derive(Debug)]
pub(crate) struct Attempt {
    /// The job's result, as the caller of `songbind` sees it.
    pub(crate) result: songbind::Result<JobOutput>,
    /// For each output of a successful job: its URL and whether it
    /// downloaded as a WAV file (the reason when not).
    pub(crate) downloads: Vec<(String, Result<(), String>)>,
    /// For an ElevenLabs compose that returned: what it reported and the
    /// bytes that reached the sink.
    pub(crate) audio: Option<AudioWritten>,
    /// For an ElevenLabs compose that failed: how many bytes had reached
    /// the sink (a 200 that is not audio must leave none).
    pub(crate) written_on_error: Option<u64>,
}

/// What an ElevenLabs compose reported, and what its sink holds.
#[derive(Debug)]
pub(crate) struct AudioWritten {
    /// What `compose_to` (or the audio of `compose_detailed_to`) returned.
    pub(crate) composed: Composed,
    /// The bytes in the sink (the `Vec`, or the file read back).
    pub(crate) bytes: Vec<u8>,
    /// For a detailed compose: whether the metadata names the song (a title).
    pub(crate) metadata: Option<Result<(), String>>,
}

/// A worker: its emulator, its clients and a scratch directory for uploads.
pub(crate) struct Worker {
    emulator: Emulator,
    clients: Arc<Clients>,
    api_key: String,
    scratch: tempfile::TempDir,
    job_timeout: Duration,
}

impl Worker {
    /// Starts the worker's emulator at `pacing` and builds its clients, all
    /// with `api_key`.
    pub(crate) async fn start(
        pacing: Pacing,
        job_timeout: Duration,
        api_key: String,
    ) -> Result<Self, ChaosError> {
        let emulator = Emulator::builder()
            .pacing(pacing)
            .start()
            .await
            .map_err(ChaosError::Emulator)?;
        let clients = Arc::new(Clients::new(&emulator, &api_key)?);
        let scratch = tempfile::Builder::new()
            .prefix("songbind-chaos-")
            .tempdir()
            .map_err(|source| ChaosError::Scratch {
                path: std::env::temp_dir().display().to_string(),
                source,
            })?;
        Ok(Self {
            emulator,
            clients,
            api_key,
            scratch,
            job_timeout,
        })
    }

    /// Runs one job under its fault and judges how it ended.
    pub(crate) async fn run(&self, plan: &JobPlan) -> Result<JobRecord, ChaosError> {
        let upload = self.prepare_upload(plan).await?;
        self.emulator.clear_faults();
        let jobs_before = jobs_created(&self.emulator);
        let requests_before = self.emulator.received().len();
        for rule in plan.fault_rules() {
            self.emulator.inject(rule);
        }
        let started = Instant::now();
        let mut task = tokio::spawn(attempt(
            Arc::clone(&self.clients),
            plan.clone(),
            upload.clone(),
        ));
        let ended = match tokio::time::timeout(self.job_timeout, &mut task).await {
            Err(_) => {
                task.abort();
                let _ = task.await;
                Ended::Hang(self.job_timeout)
            }
            Ok(Err(error)) if error.is_panic() => Ended::Panic(panic_message(error.into_panic())),
            Ok(Err(error)) => Ended::Panic(format!("the job's task stopped: {error}")),
            Ok(Ok(attempt)) => Ended::Finished(attempt),
        };
        let elapsed = started.elapsed();
        self.emulator.clear_faults();
        if let Some(path) = upload {
            let _ = tokio::fs::remove_file(path).await;
        }
        let jobs_after = jobs_created(&self.emulator);
        let requests = self
            .emulator
            .received()
            .into_iter()
            .skip(requests_before)
            .collect();
        let observed = Observed {
            jobs_created: Provider::ALL
                .iter()
                .zip(jobs_before.iter().zip(jobs_after))
                .map(|(provider, (before, after))| (*provider, after.saturating_sub(*before)))
                .collect(),
            requests,
            root_url: self.emulator.root_url().to_owned(),
            api_key: self.api_key.clone(),
        };
        Ok(judge::judge(plan, ended, &observed, elapsed))
    }

    /// Writes the file a MusicGPT upload job sends (in the worker's scratch
    /// directory, removed after the job).
    async fn prepare_upload(&self, plan: &JobPlan) -> Result<Option<PathBuf>, ChaosError> {
        if plan.operation.streams_audio() {
            // The file an ElevenLabs compose writes (created by the job).
            return Ok(plan
                .sink_file
                .then(|| self.scratch.path().join(format!("song-{}.wav", plan.index))));
        }
        if plan.operation != Operation::MusicGptRemixFile {
            return Ok(None);
        }
        let extension = if plan.index.is_multiple_of(2) {
            "mp3"
        } else {
            "wav"
        };
        let path = self
            .scratch
            .path()
            .join(format!("job-{}.{extension}", plan.index));
        let bytes: Vec<u8> = (0..plan.upload_bytes).map(|i| (i % 251) as u8).collect();
        tokio::fs::write(&path, bytes)
            .await
            .map_err(|source| ChaosError::Scratch {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Some(path))
    }
}

/// Jobs created so far at each provider, in [`Provider::ALL`] order.
fn jobs_created(emulator: &Emulator) -> Vec<usize> {
    Provider::ALL
        .iter()
        .map(|provider| emulator.jobs_created(*provider))
        .collect()
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The job itself, as a caller of `songbind` would write it: submit, wait,
/// then (on success) download every output.
async fn attempt(clients: Arc<Clients>, plan: JobPlan, upload: Option<PathBuf>) -> Attempt {
    if plan.operation.streams_audio() {
        return compose(&clients.elevenlabs, &plan, upload).await;
    }
    let result = submit_and_wait(&clients, &plan, upload).await;
    let mut downloads = Vec::new();
    if let Ok(output) = &result {
        for output in &output.outputs {
            let fetched = download_wav(&clients.downloads, &output.url).await;
            downloads.push((output.url.clone(), fetched));
        }
    }
    Attempt {
        result,
        downloads,
        audio: None,
        written_on_error: None,
    }
}

/// An ElevenLabs compose, as a caller would write it: the audio streamed to
/// a `Vec` or to a new file at `path`. A success is handed back as a
/// [`JobOutput`] (its id the `song-id`, one output naming the sink), with
/// what the call reported and the bytes the sink holds.
async fn compose(client: &ElevenLabs, plan: &JobPlan, path: Option<PathBuf>) -> Attempt {
    let mut request = ComposeRequest::from_prompt(plan.prompt.clone())
        .music_length_ms(i64::from(plan.music_seconds) * 1_000)
        .with_timestamps(plan.send_lyrics);
    if plan.pcm {
        request = request.output_format(songbind::elevenlabs::OutputFormat::Pcm16000);
    }
    let detailed = plan.operation == Operation::ElevenLabsComposeDetailed;
    let progress = |_: u64| {};
    let called = match &path {
        None => {
            let mut sink = Vec::new();
            let result = if detailed {
                client
                    .compose_detailed_to(&request, &mut sink, progress)
                    .await
                    .map(|d| (d.audio, Some(title(&d.metadata))))
            } else {
                client
                    .compose_to(&request, &mut sink, progress)
                    .await
                    .map(|c| (c, None))
            };
            match result {
                Ok((composed, metadata)) => Ok((composed, metadata, Ok(sink))),
                Err(error) => Err((error, sink.len() as u64)),
            }
        }
        Some(path) => {
            let file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .await;
            match file {
                Err(source) => Err((
                    songbind::Error::Io {
                        path: path.display().to_string(),
                        source,
                    },
                    0,
                )),
                Ok(mut file) => {
                    let result = if detailed {
                        client
                            .compose_detailed_to(&request, &mut file, progress)
                            .await
                            .map(|d| (d.audio, Some(title(&d.metadata))))
                    } else {
                        client
                            .compose_to(&request, &mut file, progress)
                            .await
                            .map(|c| (c, None))
                    };
                    drop(file);
                    match result {
                        Ok((composed, metadata)) => {
                            let bytes = tokio::fs::read(path).await.map_err(|e| e.to_string());
                            Ok((composed, metadata, bytes))
                        }
                        Err(error) => {
                            let written = tokio::fs::metadata(path).await.map_or(0, |m| m.len());
                            Err((error, written))
                        }
                    }
                }
            }
        }
    };
    match called {
        Err((error, written)) => Attempt {
            result: Err(error),
            downloads: Vec::new(),
            audio: None,
            written_on_error: Some(written),
        },
        Ok((composed, metadata, bytes)) => {
            let sink = match &path {
                Some(path) => format!("file://{}", path.display()),
                None => "memory:vec".to_owned(),
            };
            let output = JobOutput {
                provider: ProviderName::ElevenLabs,
                id: composed.song_id.clone().unwrap_or_default(),
                outputs: vec![Output::new(sink.clone(), Some(1))],
            };
            let (bytes, downloads) = match bytes {
                Ok(bytes) => (bytes, vec![(sink, Ok(()))]),
                Err(reason) => (Vec::new(), vec![(sink, Err(reason))]),
            };
            Attempt {
                result: Ok(output),
                downloads,
                audio: Some(AudioWritten {
                    composed,
                    bytes,
                    metadata,
                }),
                written_on_error: None,
            }
        }
    }
}

/// Whether a detailed answer's metadata names the song.
fn title(metadata: &songbind::elevenlabs::DetailedMusicResponse) -> Result<(), String> {
    let value = serde_json::to_value(metadata).map_err(|e| e.to_string())?;
    match value
        .pointer("/song_metadata/title")
        .and_then(|t| t.as_str())
    {
        Some(title) if !title.is_empty() => Ok(()),
        _ => Err(format!("the metadata names no song: {value}")),
    }
}

async fn submit_and_wait(
    clients: &Clients,
    plan: &JobPlan,
    upload: Option<PathBuf>,
) -> songbind::Result<JobOutput> {
    let wait = WaitOptions::default().poll_interval(POLL_INTERVAL);
    let no_credits = plan.fault == FaultKind::NoCredits;
    let soundverse = if no_credits {
        &clients.soundverse_no_credits
    } else if matches!(plan.fault, FaultKind::StallPastIdle { .. }) {
        &clients.soundverse_short_idle
    } else {
        &clients.soundverse
    };
    let lyrics = plan.send_lyrics.then(|| plan.lyrics.clone());
    let generate = || soundverse::GenerateRequest {
        lyrics: lyrics.clone(),
        ..soundverse::GenerateRequest::new(plan.prompt.clone())
    };
    let extend = || soundverse::ExtendRequest {
        audio_url: format!("https://example.com/chaos/{}.mp3", plan.index),
        lyrics: plan.lyrics.clone(),
        extend_at_ms: plan.extend_at_ms,
        prompt: Some(plan.prompt.clone()),
    };
    match plan.operation {
        Operation::SoundverseGenerate => {
            let job = soundverse.submit_generate(&generate()).await?;
            job.wait(&wait).await
        }
        Operation::SoundverseExtend => {
            let job = soundverse.submit_extend(&extend()).await?;
            job.wait(&wait).await
        }
        Operation::SoundverseRemix => {
            let request = soundverse::RemixRequest {
                song_reference_url: format!("https://example.com/chaos/{}.mp3", plan.index),
                prompt: Some(plan.prompt.clone()),
                lyrics: lyrics.clone(),
                ..soundverse::RemixRequest::default()
            };
            let job = soundverse.submit_remix(&request).await?;
            job.wait(&wait).await
        }
        Operation::SoundverseGenerateSync => soundverse.generate_sync(&generate()).await,
        Operation::SoundverseExtendSync => soundverse.extend_sync(&extend()).await,
        Operation::SoundPieceRemix => {
            let client = if no_credits {
                &clients.soundpiece_no_credits
            } else {
                &clients.soundpiece
            };
            let request = soundpiece::RemixRequest {
                n_variations: plan.n_variations,
                ..soundpiece::RemixRequest::new(
                    format!("https://example.com/chaos/{}.mp3", plan.index),
                    plan.lyrics.clone(),
                    plan.prompt.clone(),
                )
            };
            let job = client.submit_remix(&request).await?;
            job.wait(&wait).await
        }
        Operation::ElevenLabsCompose | Operation::ElevenLabsComposeDetailed => {
            unreachable!("composes run in `compose`")
        }
        Operation::MusicGptRemixFile | Operation::MusicGptRemixUrl => {
            let client = if no_credits {
                &clients.musicgpt_no_credits
            } else {
                &clients.musicgpt
            };
            let audio = match upload {
                Some(path) => AudioInput::File(path),
                None => AudioInput::Url(format!("https://example.com/chaos/{}.mp3", plan.index)),
            };
            let request = musicgpt::RemixRequest {
                lyrics,
                ..musicgpt::RemixRequest::new(audio, plan.prompt.clone())
            };
            let job = client.submit_remix(&request).await?;
            job.wait(&wait).await
        }
    }
}

/// Fetches `url` and checks that a WAV file came back.
async fn download_wav(http: &reqwest::Client, url: &str) -> Result<(), String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if body.get(..4) == Some(b"RIFF".as_slice()) && body.get(8..12) == Some(b"WAVE".as_slice()) {
        Ok(())
    } else {
        Err(format!("{} bytes that are not a WAV file", body.len()))
    }
}
