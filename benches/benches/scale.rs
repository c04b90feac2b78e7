//! Scale: N jobs in flight at once through one client per provider, a
//! third each streamed (Soundverse), long-polled (SoundPiece) and polled
//! (MusicGPT), against the emulator in its own process (issue 12).
//!
//! Every measured run is a fresh process (this binary started again with
//! [`RUN_ENV`] set), which starts its own emulator child with the event log
//! on: so each run's peak RSS, CPU time and connection count are its own,
//! not what an earlier run left in the allocator or the pool. The parent
//! (the orchestrator) counts the TCP connections to the run's emulator port
//! while it runs (from `/proc/net/tcp`, where a closed connection stays in
//! `TIME_WAIT` for a minute, so short ones are seen too).
//!
//! In a run, every job records when songbind yielded each typed
//! [`JobEvent`] (`CLOCK_REALTIME`); the emulator records when it wrote each
//! SSE event and made each status change ([`songbind_emulator::EventRecord`]).
//! Matching the two gives the delivery latency and proves no event was
//! missed: each progress event the emulator wrote must reach the caller, in
//! order, as a `Stage` event with that progress.
//!
//! The floor, run in the same invocation, alternating (ABBA) with songbind:
//! the same streamed jobs through raw reqwest + `eventsource-stream` +
//! `serde_json::Value`.
//!
//! Also: the emulator's capacity (instant pacing) and the webhook
//! verification throughput against a bare HMAC-SHA256.
//!
//! `cargo bench -p songbind-benches --bench scale` measures (a few minutes);
//! `cargo test -p songbind-benches --bench scale` is the CI smoke run: N = 50,
//! and it fails if any job ends wrongly or any event is missed.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use songbind::musicgpt::{self, AudioInput, MusicGpt};
use songbind::soundpiece::{self, SoundPiece};
use songbind::soundverse::{GenerateRequest, Soundverse};
use songbind::{JobEvent, Secret, Stage, WaitOptions};
use songbind_benches::emulator_process::{self, EmulatorProcess, settings};
use songbind_benches::timing::{self, Mode};
use songbind_benches::{procfs, rss};
use songbind_emulator::EventRecord;

/// Set in a run's environment: what it measures (`key=value` words).
const RUN_ENV: &str = "SONGBIND_SCALE_RUN";
/// How far emulated time runs: a Soundverse song in about 3 s, a SoundPiece
/// operation in 2.25 s, a MusicGPT task in 3.75 s.
const PACING: f64 = 0.05;
/// The pause between MusicGPT polls (and after an early SoundPiece answer).
const POLL: Duration = Duration::from_millis(500);
/// Job starts are spread over this long: N jobs arrive at N per second,
/// and all are in flight together (a job lasts about 3 s).
const RAMP: Duration = Duration::from_secs(1);
/// Outputs each kind of job must end with.
const OUTPUTS: [u32; 3] = [2, 1, 2];
/// How many events a job's trace holds without growing.
const TRACE_CAPACITY: usize = 256;

// ---------------------------------------------------------------- a run --

/// Which client runs the jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// songbind, one client per provider.
    Songbind,
    /// Raw reqwest + eventsource-stream + `Value` (streamed jobs only).
    Floor,
}

/// The three kinds of job, in the order of the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Streamed,
    LongPolled,
    Polled,
}

/// What one run does.
#[derive(Clone, Debug)]
struct Spec {
    side: Side,
    /// All three kinds (a third each) or only streamed jobs.
    mix: bool,
    n: usize,
    pacing: f64,
    poll: Duration,
    /// The emulator's event log on (latency and missed events judged).
    log: bool,
    /// Job starts spread evenly over this long (0: all at once).
    ramp: Duration,
}

impl Spec {
    fn to_env(&self) -> String {
        format!(
            "side={} mix={} n={} pacing={} poll_ms={} log={} ramp_ms={}",
            if self.side == Side::Songbind {
                "songbind"
            } else {
                "floor"
            },
            if self.mix { "all" } else { "streamed" },
            self.n,
            self.pacing,
            self.poll.as_millis(),
            u8::from(self.log),
            self.ramp.as_millis()
        )
    }

    fn from_env(text: &str) -> Self {
        let mut spec = Spec {
            side: Side::Songbind,
            mix: true,
            n: 50,
            pacing: PACING,
            poll: POLL,
            log: true,
            ramp: RAMP,
        };
        for word in text.split_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            match key {
                "side" => {
                    spec.side = if value == "floor" {
                        Side::Floor
                    } else {
                        Side::Songbind
                    }
                }
                "mix" => spec.mix = value == "all",
                "n" => spec.n = value.parse().expect("n"),
                "pacing" => spec.pacing = value.parse().expect("pacing"),
                "poll_ms" => spec.poll = Duration::from_millis(value.parse().expect("poll")),
                "log" => spec.log = value == "1",
                "ramp_ms" => spec.ramp = Duration::from_millis(value.parse().expect("ramp")),
                _ => {}
            }
        }
        spec
    }

    fn kind(&self, i: usize) -> Kind {
        match (self.mix, i % 3) {
            (false, _) | (true, 0) => Kind::Streamed,
            (true, 1) => Kind::LongPolled,
            _ => Kind::Polled,
        }
    }
}

/// One event a job's caller saw.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    unix_nanos: u64,
    /// [`SEEN_STAGE`], [`SEEN_OTHER`] (a `StreamReady`), [`SEEN_OUTPUT`],
    /// [`SEEN_COMPLETED`] or [`SEEN_RAW`] (the floor's events).
    what: u8,
    /// The stage's code ([`stage_code`]) for a stage.
    stage: u8,
    /// Progress in percent, [`NO_PROGRESS`] for none.
    progress: u8,
}

const SEEN_STAGE: u8 = 0;
const SEEN_OTHER: u8 = 1;
const SEEN_COMPLETED: u8 = 2;
const SEEN_RAW: u8 = 3;
const SEEN_OUTPUT: u8 = 4;
const NO_PROGRESS: u8 = 255;

/// What a job's caller saw, allocated before the measurement starts so
/// that it does not count as the client's memory.
#[derive(Debug)]
struct Trace {
    kind: Kind,
    id: String,
    seen: Vec<Seen>,
    outputs: u32,
    error: Option<String>,
    /// When the submit call returned the job (songbind) or the answer's
    /// headers arrived (floor).
    submitted_nanos: u64,
}

impl Trace {
    fn new(kind: Kind) -> Self {
        // Written through (not zeroed memory the kernel has yet to
        // provide), so that its pages are in the baseline, not the growth.
        let touched = Seen {
            what: u8::MAX,
            ..Seen::default()
        };
        let mut seen = vec![touched; TRACE_CAPACITY];
        seen.clear();
        let mut id = "x".repeat(64);
        id.clear();
        Self {
            kind,
            id,
            seen,
            outputs: 0,
            error: None,
            submitted_nanos: 0,
        }
    }

    fn push(&mut self, what: u8, stage: u8, progress: u8) {
        self.seen.push(Seen {
            unix_nanos: now_nanos(),
            what,
            stage,
            progress,
        });
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A code per typed stage (the order of [`Stage`]'s variants; 254 for any
/// other), so the emulator's status can be compared with a typed event.
fn stage_code(stage: &Stage) -> u8 {
    match stage {
        Stage::Created => 0,
        Stage::Validated => 1,
        Stage::Queued => 2,
        Stage::Starting => 3,
        Stage::Running => 4,
        Stage::Processing => 5,
        Stage::Streaming => 6,
        Stage::Uploading => 7,
        Stage::Composing => 8,
        Stage::StreamingAudio => 9,
        Stage::Completed => 10,
        _ => 254,
    }
}

/// The clients of one run.
struct Clients {
    soundverse: Soundverse,
    soundpiece: SoundPiece,
    musicgpt: MusicGpt,
    raw: reqwest::Client,
    root: String,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

/// Spawns one job in its own task, as a caller would run it, starting at
/// `$at`: each kind gets a task of its own future type (a task is as large
/// as the largest future it holds across an await, so folding the kinds
/// into one function would give every task the largest kind's size).
macro_rules! spawn_job {
    ($clients:expr, $at:expr, $trace:expr, |$c:ident, $t:ident| $work:expr) => {{
        let clients: Arc<Clients> = $clients;
        let at = $at;
        let mut trace: Trace = $trace;
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let now = clients.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
            clients.peak_in_flight.fetch_max(now, Ordering::Relaxed);
            let result = {
                let $c: &Clients = &clients;
                let $t: &mut Trace = &mut trace;
                $work.await
            };
            clients.in_flight.fetch_sub(1, Ordering::Relaxed);
            if let Err(error) = result {
                trace.error = Some(error);
            }
            trace
        })
    }};
}

async fn streamed_job(clients: &Clients, trace: &mut Trace) -> Result<(), String> {
    let request = GenerateRequest::new("an upbeat song about scale");
    let job = clients.soundverse.submit_generate(&request).await;
    follow(job, POLL, trace).await
}

async fn long_polled_job(
    clients: &Clients,
    poll: Duration,
    trace: &mut Trace,
) -> Result<(), String> {
    let request =
        soundpiece::RemixRequest::new("https://example.com/source.wav", "la la la", "pop, upbeat");
    let job = clients.soundpiece.submit_remix(&request).await;
    follow(job, poll, trace).await
}

async fn polled_job(clients: &Clients, poll: Duration, trace: &mut Trace) -> Result<(), String> {
    let request = musicgpt::RemixRequest::new(
        AudioInput::Url("https://example.com/source.mp3".to_owned()),
        "an upbeat remix",
    );
    let job = clients.musicgpt.submit_remix(&request).await;
    follow(job, poll, trace).await
}

/// An error with its sources, `: `-separated.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Follows a submitted job to its end, recording each typed event.
async fn follow(
    job: songbind::Result<songbind::Job>,
    poll: Duration,
    trace: &mut Trace,
) -> Result<(), String> {
    let job = job.map_err(|e| format!("submit: {}", chain(&e)))?;
    trace.submitted_nanos = now_nanos();
    trace.id.push_str(job.id());
    let options = WaitOptions::default()
        .poll_interval(poll)
        .timeout(Duration::from_secs(600));
    let mut events = std::pin::pin!(job.events(&options));
    while let Some(event) = events.next().await {
        match event.map_err(|e| format!("events: {e}"))? {
            JobEvent::Stage {
                stage, progress, ..
            } => trace.push(
                SEEN_STAGE,
                stage_code(&stage),
                progress.unwrap_or(NO_PROGRESS),
            ),
            JobEvent::Completed(output) => {
                trace.push(SEEN_COMPLETED, 0, NO_PROGRESS);
                trace.outputs = output.outputs.len() as u32;
                return Ok(());
            }
            JobEvent::Output(_) => trace.push(SEEN_OUTPUT, 0, NO_PROGRESS),
            _ => trace.push(SEEN_OTHER, 0, NO_PROGRESS),
        }
    }
    Err("the events ended without Completed".to_owned())
}

async fn floor_job(clients: &Clients, trace: &mut Trace) -> Result<(), String> {
    let response = clients
        .raw
        .post(format!("{}/soundverse/v6/generate/song", clients.root))
        .header("authorization", "Bearer bench_key")
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .body(r#"{"prompt":"an upbeat song about scale"}"#)
        .send()
        .await
        .map_err(|e| format!("send: {}", chain(&e)))?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    trace.submitted_nanos = now_nanos();
    // Diagnosis (SONGBIND_SCALE_FLOOR_KEEP_HEADERS): keep the answer's
    // headers for the job's life, as songbind's `Answers` do.
    let _kept =
        std::env::var_os("SONGBIND_SCALE_FLOOR_KEEP_HEADERS").map(|_| response.headers().clone());
    let mut events = response.bytes_stream().eventsource();
    let mut urls = HashSet::new();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| format!("stream: {e}"))?;
        let value: serde_json::Value =
            serde_json::from_str(&event.data).map_err(|e| format!("json: {e}"))?;
        trace.push(SEEN_RAW, 0, NO_PROGRESS);
        if trace.id.is_empty()
            && let Some(id) = value.get("message_id").and_then(|v| v.as_str())
        {
            trace.id.push_str(id);
        }
        if let Some(url) = value.get("audio_url").and_then(|v| v.as_str()) {
            urls.insert(url.to_owned());
        }
        if value.get("isComplete").and_then(|v| v.as_bool()) == Some(true) {
            trace.outputs = urls.len() as u32;
            return if value.get("status").and_then(|v| v.as_str()) == Some("completed") {
                Ok(())
            } else {
                Err(format!("ended with {value}"))
            };
        }
    }
    Err("the stream ended before isComplete".to_owned())
}

async fn run_jobs(clients: &Arc<Clients>, spec: &Spec, traces: Vec<Trace>) -> Vec<Trace> {
    let n = traces.len().max(1) as u32;
    let start = tokio::time::Instant::now();
    let handles: Vec<_> = traces
        .into_iter()
        .enumerate()
        .map(|(i, trace)| {
            let at = start + spec.ramp * (i as u32) / n;
            let clients = Arc::clone(clients);
            let poll = spec.poll;
            match (spec.side, trace.kind) {
                (Side::Floor, _) => spawn_job!(clients, at, trace, |c, t| floor_job(c, t)),
                (Side::Songbind, Kind::Streamed) => {
                    spawn_job!(clients, at, trace, |c, t| streamed_job(c, t))
                }
                (Side::Songbind, Kind::LongPolled) => {
                    spawn_job!(clients, at, trace, |c, t| long_polled_job(c, poll, t))
                }
                (Side::Songbind, Kind::Polled) => {
                    spawn_job!(clients, at, trace, |c, t| polled_job(c, poll, t))
                }
            }
        })
        .collect();
    let mut done = Vec::with_capacity(handles.len());
    for handle in handles {
        done.push(handle.await.expect("job task"));
    }
    done
}

/// Latencies and checks of one run, from the traces and the emulator's log.
#[derive(Debug, Default)]
struct Judged {
    ok: usize,
    wrong: Vec<String>,
    /// Progress events the emulator wrote that no typed event matched.
    missed: usize,
    /// Typed progress events with no emulator event to match.
    unmatched: usize,
    events_seen: usize,
    /// Streamed events the emulator wrote after the chunk that completed
    /// the song (songbind stops reading there, by design).
    after_completed: usize,
    /// SSE events the emulator wrote to the streamed jobs.
    sse_written: usize,
    streamed_ns: Vec<f64>,
    /// The streamed latencies of events written after the submit call
    /// returned (songbind holds the earlier ones until the song is named).
    streamed_after_submit_ns: Vec<f64>,
    long_polled_ns: Vec<f64>,
    polled_ns: Vec<f64>,
}

fn judge(traces: &[Trace], records: &[EventRecord], logged: bool) -> Judged {
    let mut by_job: HashMap<&str, Vec<&EventRecord>> = HashMap::new();
    for record in records {
        by_job.entry(record.job.as_str()).or_default().push(record);
    }
    for list in by_job.values_mut() {
        list.sort_by_key(|r| r.seq);
    }
    let mut judged = Judged::default();
    for trace in traces {
        judged.events_seen += trace.seen.len();
        let kind_at = match trace.kind {
            Kind::Streamed => 0,
            Kind::LongPolled => 1,
            Kind::Polled => 2,
        };
        let empty = Vec::new();
        let written = by_job.get(trace.id.as_str()).unwrap_or(&empty);
        if trace.kind == Kind::Streamed {
            judged.sse_written += written.len();
        }
        let mut fine = match &trace.error {
            Some(error) => {
                judged
                    .wrong
                    .push(format!("{:?} {}: {error}", trace.kind, trace.id));
                false
            }
            None if trace.outputs != OUTPUTS[kind_at] => {
                judged.wrong.push(format!(
                    "{:?} {}: {} outputs",
                    trace.kind, trace.id, trace.outputs
                ));
                false
            }
            None => true,
        };
        if !logged || trace.error.is_some() {
            judged.ok += usize::from(fine);
            continue;
        }
        if written.is_empty() {
            judged
                .wrong
                .push(format!("{:?} {}: nothing in the log", trace.kind, trace.id));
            continue;
        }
        match trace.kind {
            Kind::Streamed if trace.seen.iter().all(|s| s.what == SEEN_RAW) => {
                // The floor: the k-th event read is the k-th written.
                if trace.seen.len() != written.len() {
                    judged.missed += written.len().abs_diff(trace.seen.len());
                    fine = false;
                }
                for (seen, record) in trace.seen.iter().zip(written.iter()) {
                    let ns = seen.unix_nanos as f64 - record.unix_nanos as f64;
                    judged.streamed_ns.push(ns);
                    if record.unix_nanos > trace.submitted_nanos {
                        judged.streamed_after_submit_ns.push(ns);
                    }
                }
            }
            Kind::Streamed => {
                // Every chunk songbind turns into an event (a Stage, or a
                // StreamReady) is matched, in order, to the next written
                // event that says the same; an Output or the Completed
                // that follow come from the same chunk. Between two
                // matches only lyrics-only chunks (`completed` without
                // progress: no job event by design) may be passed over;
                // anything else passed over was missed. After the chunk
                // that completes the song, nothing more is read.
                let mut cursor = 0;
                let mut last = None;
                for seen in &trace.seen {
                    match seen.what {
                        SEEN_STAGE | SEEN_OTHER => {}
                        _ => {
                            if let Some(record) = last {
                                let record: &EventRecord = record;
                                let ns = seen.unix_nanos as f64 - record.unix_nanos as f64;
                                judged.streamed_ns.push(ns);
                                if record.unix_nanos > trace.submitted_nanos {
                                    judged.streamed_after_submit_ns.push(ns);
                                }
                            }
                            continue;
                        }
                    }
                    let says_the_same = |r: &EventRecord| {
                        if r.status == "completed" && r.progress.is_none() {
                            return false; // lyrics only
                        }
                        if seen.what == SEEN_OTHER {
                            return r.status == "streaming";
                        }
                        stage_code(&Stage::from_provider(&r.status)) == seen.stage
                            && (seen.progress == NO_PROGRESS
                                || r.progress.map(|p| p.clamp(0, 100) as u8) == Some(seen.progress))
                    };
                    match written[cursor..].iter().position(|r| says_the_same(r)) {
                        Some(at) => {
                            let passed_over = written[cursor..cursor + at]
                                .iter()
                                .filter(|r| !(r.status == "completed" && r.progress.is_none()))
                                .count();
                            if passed_over > 0 {
                                judged.missed += passed_over;
                                fine = false;
                            }
                            let record = written[cursor + at];
                            let ns = seen.unix_nanos as f64 - record.unix_nanos as f64;
                            judged.streamed_ns.push(ns);
                            if record.unix_nanos > trace.submitted_nanos {
                                judged.streamed_after_submit_ns.push(ns);
                            }
                            last = Some(record);
                            cursor += at + 1;
                        }
                        None => {
                            judged.unmatched += 1;
                            fine = false;
                        }
                    }
                }
                judged.after_completed += written.len() - cursor;
            }
            Kind::LongPolled | Kind::Polled => {
                // The final status change to the Completed event.
                if let (Some(last), Some(done)) = (
                    written.last(),
                    trace.seen.iter().find(|s| s.what == SEEN_COMPLETED),
                ) {
                    let ns = done.unix_nanos as f64 - last.unix_nanos as f64;
                    if trace.kind == Kind::LongPolled {
                        judged.long_polled_ns.push(ns);
                    } else {
                        judged.polled_ns.push(ns);
                    }
                }
            }
        }
        if fine {
            judged.ok += 1;
        }
    }
    judged
}

/// One run, in its own process: prints `port <p>`, `start` (and waits for
/// `go`), `end` (and waits for `done`), then `result <key=value ...>`.
fn run(spec: &Spec) {
    let fd_limit = procfs::raise_fd_limit();
    let env = [
        (settings::PACING, spec.pacing.to_string()),
        (settings::EVENT_LOG, u8::from(spec.log).to_string()),
        (settings::RECORD, "0".to_owned()),
    ];
    let mut emulator = EmulatorProcess::spawn_with(&env).expect("emulator child starts");
    let root = emulator.root_url().to_owned();
    let port: u16 = root
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let child = emulator.pid();
    println!("port {port}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let key = Secret::from("bench_key");
    let clients = Arc::new(Clients {
        soundverse: Soundverse::new(&format!("{root}/soundverse"), &key).expect("client"),
        soundpiece: SoundPiece::new(&format!("{root}/soundpiece"), &key).expect("client"),
        musicgpt: MusicGpt::new(&format!("{root}/musicgpt"), &key).expect("client"),
        raw: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("raw client"),
        root: root.clone(),
        in_flight: AtomicUsize::new(0),
        peak_in_flight: AtomicUsize::new(0),
    });
    if std::env::var_os("SONGBIND_SCALE_SIZES").is_some() {
        let request = GenerateRequest::new("x");
        let sp = soundpiece::RemixRequest::new("https://example.com/a.wav", "l", "p");
        let mg =
            musicgpt::RemixRequest::new(AudioInput::Url("https://example.com/a.mp3".into()), "p");
        eprintln!(
            "future sizes: soundverse submit {}, soundpiece submit {}, musicgpt submit {}, \
             streamed_job {}, floor_job {}, long_polled_job {}",
            std::mem::size_of_val(&clients.soundverse.submit_generate(&request)),
            std::mem::size_of_val(&clients.soundpiece.submit_remix(&sp)),
            std::mem::size_of_val(&clients.musicgpt.submit_remix(&mg)),
            std::mem::size_of_val(&streamed_job(&clients, &mut Trace::new(Kind::Streamed))),
            std::mem::size_of_val(&floor_job(&clients, &mut Trace::new(Kind::Streamed))),
            std::mem::size_of_val(&long_polled_job(
                &clients,
                POLL,
                &mut Trace::new(Kind::LongPolled)
            )),
        );
    }
    // Warm-up: code pages, runtime threads, a pooled connection or two.
    let warm: Vec<Trace> = (0..6).map(|i| Trace::new(spec.kind(i))).collect();
    let warm = runtime.block_on(run_jobs(&clients, spec, warm));
    assert!(
        warm.iter().all(|t| t.error.is_none()),
        "warm-up failed: {:?}",
        warm.iter().find_map(|t| t.error.as_ref())
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("events.log");
    if spec.log {
        emulator.write_event_log(&log).expect("event log"); // empties it
    }
    let traces: Vec<Trace> = (0..spec.n).map(|i| Trace::new(spec.kind(i))).collect();
    clients.peak_in_flight.store(0, Ordering::Relaxed);

    println!("start");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("go");
    rss::reset_peak().expect("clear_refs");
    let rss_base = rss::current_kib().expect("rss");
    let _ = procfs::pid_reset_peak(child);
    let child_base = procfs::pid_status_kib(child, "VmRSS").unwrap_or(0);
    let child_cpu0 = procfs::pid_cpu(child).unwrap_or_default();
    let cpu0 = procfs::self_cpu();
    let (user0, _) = procfs::self_cpu_split();
    let started = Instant::now();
    // Diagnosis only (SONGBIND_SCALE_HEAP): the peak of malloc's in-use
    // bytes, sampled every 10 ms, to tell live data from fragmentation.
    let heap_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let heap_sampler = std::env::var_os("SONGBIND_SCALE_HEAP").map(|_| {
        let done = Arc::clone(&heap_done);
        std::thread::spawn(move || {
            let in_use = || {
                // SAFETY: mallinfo2 only reads the allocator's counters.
                let info = unsafe { libc::mallinfo2() };
                (info.uordblks + info.hblkhd) as u64
            };
            let base = in_use();
            let mut peak = base;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(in_use());
                std::thread::sleep(Duration::from_millis(10));
            }
            (base, peak)
        })
    });
    let traces = runtime.block_on(run_jobs(&clients, spec, traces));
    heap_done.store(true, Ordering::Relaxed);
    if let Some(sampler) = heap_sampler {
        let (base, peak) = sampler.join().expect("sampler");
        eprintln!(
            "heap in use: base {} KiB, peak {} KiB, {:.1} KiB per job",
            base / 1024,
            peak / 1024,
            (peak - base) as f64 / 1024.0 / spec.n as f64
        );
    }
    let wall = started.elapsed();
    let cpu = procfs::self_cpu() - cpu0;
    let user = procfs::self_cpu_split().0 - user0;
    let rss_peak = rss::peak_kib().expect("rss");
    let child_cpu = procfs::pid_cpu(child).unwrap_or_default() - child_cpu0;
    let child_peak = procfs::pid_status_kib(child, "VmHWM").unwrap_or(0);
    println!("end");
    line.clear();
    std::io::stdin().read_line(&mut line).expect("done");

    let records: Vec<EventRecord> = if spec.log {
        emulator.write_event_log(&log).expect("event log");
        std::fs::read_to_string(&log)
            .expect("read event log")
            .lines()
            .filter_map(EventRecord::from_line)
            .collect()
    } else {
        Vec::new()
    };
    let judged = judge(&traces, &records, spec.log);
    if std::env::var_os("SONGBIND_SCALE_DEBUG").is_some()
        && let Some(trace) = traces.first()
    {
        for record in records.iter().filter(|r| r.job == trace.id) {
            eprintln!("written: {}", record.to_line());
        }
        for seen in &trace.seen {
            eprintln!("seen: {seen:?}");
        }
    }
    for wrong in judged.wrong.iter().take(5) {
        eprintln!("wrong: {wrong}");
    }
    let q = |v: &[f64], p: f64| timing::quantile(v, p) / 1e6;
    println!(
        "result n={} ok={} wrong={} missed={} unmatched={} after_completed={} events_seen={} sse_written={} \
         records={} cpu_us={} user_us={} wall_ms={} rss_base={} rss_peak={} peak_in_flight={} \
         child_base={} child_peak={} child_cpu_us={} fd_limit={} \
         s_p50={:.3} s_p99={:.3} s_max={:.3} sa_p50={:.3} sa_p99={:.3} s_events={} lp_p50={:.3} lp_p99={:.3} p_p50={:.3} p_p99={:.3}",
        spec.n,
        judged.ok,
        judged.wrong.len(),
        judged.missed,
        judged.unmatched,
        judged.after_completed,
        judged.events_seen,
        judged.sse_written,
        records.len(),
        cpu.as_micros(),
        user.as_micros(),
        wall.as_millis(),
        rss_base,
        rss_peak,
        clients.peak_in_flight.load(Ordering::Relaxed),
        child_base,
        child_peak,
        child_cpu.as_micros(),
        fd_limit,
        q(&judged.streamed_ns, 0.5),
        q(&judged.streamed_ns, 0.99),
        q(&judged.streamed_ns, 1.0),
        q(&judged.streamed_after_submit_ns, 0.5),
        q(&judged.streamed_after_submit_ns, 0.99),
        judged.streamed_ns.len(),
        q(&judged.long_polled_ns, 0.5),
        q(&judged.long_polled_ns, 0.99),
        q(&judged.polled_ns, 0.5),
        q(&judged.polled_ns, 0.99),
    );
    drop(clients);
    drop(runtime);
    drop(emulator);
}

// -------------------------------------------------------- orchestrator --

/// What a run reported, plus the connections the orchestrator counted.
#[derive(Clone, Debug, Default)]
struct Outcome {
    fields: HashMap<String, f64>,
    connections: usize,
    /// `ActiveOpens` of the whole network namespace over the run (an upper
    /// bound: other processes count too).
    opens_upper: u64,
    load: f64,
}

impl Outcome {
    fn get(&self, key: &str) -> f64 {
        self.fields.get(key).copied().unwrap_or(f64::NAN)
    }
    fn growth_per_job_kib(&self) -> f64 {
        (self.get("rss_peak") - self.get("rss_base")) / self.get("peak_in_flight")
    }
    fn child_growth_per_job_kib(&self) -> f64 {
        (self.get("child_peak") - self.get("child_base")) / self.get("peak_in_flight")
    }
    fn cpu_per_event_us(&self) -> f64 {
        // Per SSE event the emulator wrote (streamed) or per record.
        self.get("cpu_us") / self.get("records")
    }
    fn cpu_per_seen_us(&self) -> f64 {
        self.get("cpu_us") / self.get("events_seen")
    }
    fn correct(&self) -> bool {
        self.get("ok") == self.get("n")
            && self.get("wrong") == 0.0
            && self.get("missed") == 0.0
            && self.get("unmatched") == 0.0
    }
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Starts this binary as one run and follows it.
fn spawn_run(spec: &Spec) -> Outcome {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .env(RUN_ENV, spec.to_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let (lines, receive) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut outcome = Outcome::default();
    let mut port = 0u16;
    let mut before: HashSet<u16> = HashSet::new();
    let mut seen: HashSet<u16> = HashSet::new();
    let mut sampling = false;
    let mut opens0 = 0;
    loop {
        match receive.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                if let Some(p) = line.strip_prefix("port ") {
                    port = p.trim().parse().expect("port");
                } else if line == "start" {
                    before = procfs::connections_to(port);
                    opens0 = procfs::tcp_active_opens().unwrap_or(0);
                    sampling = true;
                    outcome.load = load_average();
                    writeln!(stdin, "go").expect("go");
                } else if line == "end" {
                    seen.extend(procfs::connections_to(port));
                    outcome.opens_upper = procfs::tcp_active_opens()
                        .unwrap_or(0)
                        .saturating_sub(opens0);
                    sampling = false;
                    writeln!(stdin, "done").expect("done");
                } else if let Some(fields) = line.strip_prefix("result ") {
                    for word in fields.split_whitespace() {
                        if let Some((k, v)) = word.split_once('=') {
                            outcome
                                .fields
                                .insert(k.to_owned(), v.parse().unwrap_or(f64::NAN));
                        }
                    }
                } else {
                    println!("    run: {line}");
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if sampling {
                    seen.extend(procfs::connections_to(port));
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().expect("run ends");
    let _ = reader.join();
    assert!(status.success(), "run {} failed: {status}", spec.to_env());
    outcome.connections = seen.difference(&before).count();
    outcome
}

fn describe(label: &str, o: &Outcome) {
    println!(
        "  {label} n={} ok={} wrong={} missed={} unmatched={} | peak in flight {} | client RSS +{} KiB \
         ({:.1} KiB/job) | CPU {:.3} s = {:.2} µs/written event, {:.2} µs/typed event | \
         conns {} ({:.3}/job; namespace opens {}) | streamed latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms \
         (after submit: p50 {:.2} p99 {:.2}) \
         | long-poll p50 {:.2} p99 {:.2} ms | poll p50 {:.1} p99 {:.1} ms | emulator +{} KiB ({:.1} KiB/job), \
         CPU {:.3} s | wall {:.2} s | load {:.2}",
        o.get("n"),
        o.get("ok"),
        o.get("wrong"),
        o.get("missed"),
        o.get("unmatched"),
        o.get("peak_in_flight"),
        o.get("rss_peak") - o.get("rss_base"),
        o.growth_per_job_kib(),
        o.get("cpu_us") / 1e6,
        o.cpu_per_event_us(),
        o.cpu_per_seen_us(),
        o.connections,
        o.connections as f64 / o.get("n"),
        o.opens_upper,
        o.get("s_p50"),
        o.get("s_p99"),
        o.get("s_max"),
        o.get("sa_p50"),
        o.get("sa_p99"),
        o.get("lp_p50"),
        o.get("lp_p99"),
        o.get("p_p50"),
        o.get("p_p99"),
        o.get("child_peak") - o.get("child_base"),
        o.child_growth_per_job_kib(),
        o.get("child_cpu_us") / 1e6,
        o.get("wall_ms") / 1e3,
        o.load,
    );
}

fn median_of(outcomes: &[Outcome], f: impl Fn(&Outcome) -> f64) -> f64 {
    timing::median(&outcomes.iter().map(f).collect::<Vec<_>>())
}

/// One row of the table and the plot.
#[derive(Clone, Debug, Default)]
struct Row {
    n: usize,
    growth_kib: f64,
    cpu_event_us: f64,
    conns_per_job: f64,
    p50_ms: f64,
    p99_ms: f64,
    lp_p99_ms: f64,
    poll_p99_ms: f64,
    emulator_kib: f64,
    floor_growth_kib: f64,
    floor_cpu_event_us: f64,
    sb_streamed_growth_kib: f64,
    sb_streamed_cpu_event_us: f64,
    floor_p99_ms: f64,
    floor_p50_ms: f64,
    after_submit_p99_ms: f64,
}

fn main() {
    emulator_process::run_child_if_asked();
    if let Ok(spec) = std::env::var(RUN_ENV) {
        run(&Spec::from_env(&spec));
        return;
    }
    let mode = Mode::from_args();
    let fd_limit = procfs::raise_fd_limit();
    println!(
        "scale: {} (fd limit {fd_limit}, pacing {PACING}, poll {POLL:?})",
        match mode {
            Mode::Measure => "measure",
            Mode::Smoke => "smoke run (cargo test): N = 50, not a measurement",
        }
    );
    let sizes: Vec<usize> = match (mode, std::env::var("SONGBIND_SCALE_N")) {
        (_, Ok(list)) => list.split(',').filter_map(|n| n.parse().ok()).collect(),
        (Mode::Smoke, _) => vec![50],
        (Mode::Measure, _) => vec![100, 1000, 10_000],
    };
    let rounds = mode.rounds(3, 1);
    // SONGBIND_SCALE_ONLY=jobs|capacity|webhook runs one part.
    let only = std::env::var("SONGBIND_SCALE_ONLY").ok();
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut rows = Vec::new();
    let mut all_correct = true;
    for &n in sizes.iter().filter(|_| part("jobs")) {
        // Each process holds about one socket per streamed or long-polled
        // job, plus some for polls and the runtime.
        if (n as u64) + 2048 > fd_limit {
            println!("N = {n}: skipped, the file-descriptor limit is {fd_limit}");
            continue;
        }
        let spec = |side, mix| Spec {
            side,
            mix,
            n,
            pacing: PACING,
            poll: POLL,
            log: true,
            ramp: RAMP,
        };
        println!("N = {n}:");
        let mut mixed = Vec::new();
        let mut floor = Vec::new();
        let mut streamed = Vec::new();
        for round in 0..rounds {
            // ABBA: floor, songbind streamed, mix | mix, songbind streamed, floor.
            let order: [(&str, Side, bool); 3] = if round % 2 == 0 {
                [
                    ("floor", Side::Floor, false),
                    ("streamed", Side::Songbind, false),
                    ("mix", Side::Songbind, true),
                ]
            } else {
                [
                    ("mix", Side::Songbind, true),
                    ("streamed", Side::Songbind, false),
                    ("floor", Side::Floor, false),
                ]
            };
            for (label, side, mix) in order {
                let outcome = spawn_run(&spec(side, mix));
                describe(label, &outcome);
                // The floor has no retries: a refused connect under a
                // burst fails its job. Reported, but only songbind's
                // jobs must all end right.
                if side == Side::Songbind {
                    all_correct &= outcome.correct();
                } else if !outcome.correct() {
                    println!("  (the floor's failures are its own: raw reqwest, no retry)");
                }
                match label {
                    "floor" => floor.push(outcome),
                    "streamed" => streamed.push(outcome),
                    _ => mixed.push(outcome),
                }
            }
        }
        let floor_events = median_of(&floor, |o| o.get("records"));
        let row = Row {
            n,
            growth_kib: median_of(&mixed, Outcome::growth_per_job_kib),
            cpu_event_us: median_of(&mixed, Outcome::cpu_per_seen_us),
            conns_per_job: median_of(&mixed, |o| o.connections as f64 / o.get("n")),
            p50_ms: median_of(&mixed, |o| o.get("s_p50")),
            p99_ms: median_of(&mixed, |o| o.get("s_p99")),
            lp_p99_ms: median_of(&mixed, |o| o.get("lp_p99")),
            poll_p99_ms: median_of(&mixed, |o| o.get("p_p99")),
            emulator_kib: median_of(&mixed, Outcome::child_growth_per_job_kib),
            floor_growth_kib: median_of(&floor, Outcome::growth_per_job_kib),
            // Per event of the job's stream (as the floor reads it whole;
            // songbind stops after the chunk that completes the song), so
            // both sides divide the same jobs' CPU by the same count.
            floor_cpu_event_us: median_of(&floor, |o| o.get("cpu_us")) / floor_events,
            sb_streamed_growth_kib: median_of(&streamed, Outcome::growth_per_job_kib),
            sb_streamed_cpu_event_us: median_of(&streamed, |o| o.get("cpu_us")) / floor_events,
            floor_p99_ms: median_of(&floor, |o| o.get("s_p99")),
            floor_p50_ms: median_of(&floor, |o| o.get("s_p50")),
            after_submit_p99_ms: median_of(&mixed, |o| o.get("sa_p99")),
        };
        println!(
            "  N = {n} medians: mix {:.1} KiB/job, {:.2} µs CPU/typed event, {:.3} conns/job, \
             streamed p50 {:.2} ms p99 {:.2} ms (after submit {:.2} ms; floor p50 {:.2} p99 {:.2} ms), long-poll p99 {:.2} ms, poll p99 {:.1} ms, \
             emulator {:.1} KiB/job | streamed only: songbind {:.1} KiB/job {:.2} µs/event, \
             floor {:.1} KiB/job {:.2} µs/event",
            row.growth_kib,
            row.cpu_event_us,
            row.conns_per_job,
            row.p50_ms,
            row.p99_ms,
            row.after_submit_p99_ms,
            row.floor_p50_ms,
            row.floor_p99_ms,
            row.lp_p99_ms,
            row.poll_p99_ms,
            row.emulator_kib,
            row.sb_streamed_growth_kib,
            row.sb_streamed_cpu_event_us,
            row.floor_growth_kib,
            row.floor_cpu_event_us,
        );
        rows.push(row);
    }
    if mode == Mode::Measure && part("capacity") {
        all_correct &= capacity(&sizes, fd_limit);
    }
    if mode == Mode::Measure && part("webhook") {
        webhook(mode);
    }
    if let Some(row) = rows.iter().find(|r| r.n == 1000) {
        println!(
            "scale N=1000 client RSS growth per job in flight (mix): {:.1} KiB (target <= 64 KiB): {}",
            row.growth_kib,
            timing::verdict(mode, row.growth_kib <= 64.0)
        );
        println!(
            "scale N=1000 streamed p99 delivery latency: {:.2} ms (target <= 20 ms): {}",
            row.p99_ms,
            timing::verdict(mode, row.p99_ms <= 20.0)
        );
        timing::report(
            mode,
            "scale N=1000 streamed CPU per event, songbind/floor",
            row.sb_streamed_cpu_event_us / row.floor_cpu_event_us,
            timing::Bound::AtMost,
            1.1,
        );
        timing::report(
            mode,
            "scale N=1000 streamed memory per job, songbind/floor",
            row.sb_streamed_growth_kib / row.floor_growth_kib,
            timing::Bound::AtMost,
            1.1,
        );
    }
    // Only a full run redraws the committed plot.
    if std::env::var_os("SONGBIND_SCALE_N").is_some() || !part("jobs") {
        println!("plot: not redrawn (SONGBIND_SCALE_N or SONGBIND_SCALE_ONLY chose a part)");
    } else if mode == Mode::Measure && !rows.is_empty() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scale.png");
        match plot::draw(&path, &rows) {
            Ok(()) => println!("plot: {}", path.display()),
            Err(error) => println!("plot: not drawn: {error}"),
        }
    }
    assert!(
        all_correct,
        "a job ended wrongly or an event was missed (see the runs above)"
    );
    println!("scale: every job ended correctly and no event was missed");
}

/// The emulator's capacity: N jobs at once, instant pacing, the log off,
/// MusicGPT polled every 10 ms. Returns whether every job ended correctly.
fn capacity(sizes: &[usize], fd_limit: u64) -> bool {
    println!("emulator capacity (instant pacing, every job in flight at once):");
    let mut correct = true;
    for &n in sizes {
        if (n as u64) + 2048 > fd_limit {
            continue;
        }
        let outcome = spawn_run(&Spec {
            side: Side::Songbind,
            mix: true,
            n,
            pacing: 0.0,
            poll: Duration::from_millis(10),
            log: false,
            ramp: Duration::ZERO,
        });
        correct &= outcome.get("ok") == outcome.get("n") && outcome.get("wrong") == 0.0;
        let wall = outcome.get("wall_ms") / 1e3;
        let emulator_cpu = outcome.get("child_cpu_us") / 1e6;
        println!(
            "  N = {n}: ok {} of {n}; {:.0} jobs/s end to end ({wall:.2} s, client and emulator \
             sharing the machine); emulator CPU {emulator_cpu:.2} s = {:.0} µs/job, i.e. {:.0} jobs \
             per emulator CPU-second; emulator RSS +{} KiB ({:.1} KiB per job in flight, peak in \
             flight {}); client CPU {:.2} s; load {:.2}",
            outcome.get("ok"),
            n as f64 / wall,
            emulator_cpu * 1e6 / n as f64,
            n as f64 / emulator_cpu,
            outcome.get("child_peak") - outcome.get("child_base"),
            outcome.child_growth_per_job_kib(),
            outcome.get("peak_in_flight"),
            outcome.get("cpu_us") / 1e6,
            outcome.load,
        );
    }
    correct
}

/// Webhook verification throughput: `SoundPieceWebhookVerifier::verify_at`
/// against a bare HMAC-SHA256 (the `hmac` crate) over the same bytes, both
/// on this thread, interleaved.
fn webhook(mode: Mode) {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use songbind::webhook::SoundPieceWebhookVerifier;

    let secret = songbind_emulator::DEFAULT_WEBHOOK_SECRET;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("secret");
    // A `remix_song.ready` delivery as the emulator sends it (3 variations).
    let outputs: Vec<String> = (1..=3)
        .map(|i| {
            format!(
                r#"{{"url":"http://127.0.0.1:40000/files/op_0123456789abcdefghijklmnop_{i}.wav","expires_at":"2026-12-02T05:00:00Z","duration":1.0}}"#
            )
        })
        .collect();
    let body = format!(
        r#"{{"type":"remix_song.ready","data":{{"remix_song":{{"id":"op_0123456789abcdefghijklmnop","created_at":"2026-12-02T04:00:00Z","idempotency_key":"8c4e0f4e-2f8a-4c55-9d55-7f0e6b3b6a10","source":{{"url":"https://example.com/source.wav"}},"lyrics":"la la la","prompt":"pop, upbeat","n_variations":3,"status":"ready","outputs":[{}],"error":null}}}}}}"#,
        outputs.join(",")
    );
    let id = "msg_2Lh9B6ZtqN4C2sFvx1YkEo8rTw";
    let timestamp: i64 = 1_796_180_000;
    let prefix = format!("{id}.{timestamp}.");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(prefix.as_bytes());
    mac.update(body.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut headers = http::HeaderMap::new();
    headers.insert("webhook-id", id.parse().expect("header"));
    headers.insert(
        "webhook-timestamp",
        timestamp.to_string().parse().expect("header"),
    );
    headers.insert(
        "webhook-signature",
        format!("v1,{signature}").parse().expect("header"),
    );
    let verifier = SoundPieceWebhookVerifier::new(Secret::from(secret)).expect("verifier");
    let now = UNIX_EPOCH + Duration::from_secs(timestamp as u64);
    verifier
        .verify_at(&headers, body.as_bytes(), now)
        .expect("the delivery verifies");
    const BATCH: usize = 2000;
    let rounds = mode.rounds(201, 3);
    let comparison = timing::interleave(
        rounds,
        || {
            timing::time(|| {
                for _ in 0..BATCH {
                    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(std::hint::black_box(&key))
                        .expect("key");
                    mac.update(prefix.as_bytes());
                    mac.update(std::hint::black_box(body.as_bytes()));
                    std::hint::black_box(mac.finalize().into_bytes());
                }
            })
            .0
        },
        || {
            timing::time(|| {
                for _ in 0..BATCH {
                    let verified =
                        verifier.verify_at(&headers, std::hint::black_box(body.as_bytes()), now);
                    std::hint::black_box(verified.is_ok());
                }
            })
            .0
        },
    );
    println!(
        "webhook verification ({} body bytes, {BATCH} per round, {rounds} rounds, load {:.2}):",
        body.len(),
        load_average()
    );
    timing::print_summary("hmac", &comparison.floor);
    timing::print_summary("verify", &comparison.subject);
    println!(
        "    per verification: floor {:.2} µs, verifier {:.2} µs; paired-round median {:.3}x time",
        comparison.floor.median / BATCH as f64 * 1e6,
        comparison.subject.median / BATCH as f64 * 1e6,
        comparison.paired_ratio_median
    );
    timing::report(
        mode,
        "webhook verify/bare HMAC throughput",
        comparison.throughput_ratio(),
        timing::Bound::AtLeast,
        0.9,
    );
}

mod plot {
    //! The PNG: one panel per figure against N (log scale), no text (CI
    //! machines may have no fonts; BENCHMARKS.md says what each panel is).

    use plotters::prelude::*;

    use super::Row;

    type Pick = fn(&Row) -> f64;

    /// One panel: its lines (value, colour), a target, a log-scale y axis.
    struct Panel {
        lines: Vec<(Pick, RGBColor)>,
        target: Option<f64>,
        log: bool,
    }

    const SONGBIND: RGBColor = RGBColor(0, 0, 255);
    const STREAMED: RGBColor = RGBColor(0, 170, 220);
    const FLOOR: RGBColor = RGBColor(128, 128, 128);

    /// Panels, left to right, top to bottom: client RSS growth per job;
    /// CPU per event (streamed); connections per job; streamed latency
    /// p50 (log); streamed latency p99 (log); emulator RSS per job. Blue:
    /// songbind (the mix); light blue: songbind, streamed jobs only, or
    /// after the submit returned; grey: the floor; red: the target.
    pub fn draw(path: &std::path::Path, rows: &[Row]) -> Result<(), Box<dyn std::error::Error>> {
        const SIZE: (u32, u32) = (1200, 800);
        let panels = [
            Panel {
                lines: vec![
                    (|r| r.growth_kib, SONGBIND),
                    (|r| r.sb_streamed_growth_kib, STREAMED),
                    (|r| r.floor_growth_kib, FLOOR),
                ],
                target: Some(64.0),
                log: false,
            },
            Panel {
                lines: vec![
                    (|r| r.sb_streamed_cpu_event_us, STREAMED),
                    (|r| r.floor_cpu_event_us, FLOOR),
                ],
                target: None,
                log: false,
            },
            Panel {
                lines: vec![(|r| r.conns_per_job, SONGBIND)],
                target: None,
                log: false,
            },
            Panel {
                lines: vec![(|r| r.p50_ms, SONGBIND), (|r| r.floor_p50_ms, FLOOR)],
                target: None,
                log: true,
            },
            Panel {
                lines: vec![
                    (|r| r.p99_ms, SONGBIND),
                    (|r| r.after_submit_p99_ms, STREAMED),
                    (|r| r.floor_p99_ms, FLOOR),
                ],
                target: Some(20.0),
                log: true,
            },
            Panel {
                lines: vec![(|r| r.emulator_kib, SONGBIND)],
                target: None,
                log: false,
            },
        ];
        let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
            root.fill(&WHITE)?;
            let areas = root.split_evenly((2, 3));
            let x_min = (rows.first().map_or(1, |r| r.n) as f64).log10();
            let x_max = (rows.last().map_or(10, |r| r.n) as f64)
                .log10()
                .max(x_min + 1.0);
            for (area, panel) in areas.iter().zip(&panels) {
                let values = rows
                    .iter()
                    .flat_map(|r| panel.lines.iter().map(move |(pick, _)| pick(r)))
                    .chain(panel.target)
                    .filter(|v| v.is_finite() && *v > 0.0);
                let (low, high) =
                    values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
                // Log panels: decades from below the lowest value; the
                // y axis then shows log10 of the value.
                let y = |v: f64| if panel.log { v.max(1e-3).log10() } else { v };
                let (y_min, y_max) = if panel.log {
                    (y(low).floor(), y(high).ceil().max(y(low).floor() + 1.0))
                } else {
                    (0.0, if high > 0.0 { high * 1.15 } else { 1.0 })
                };
                let mut chart = ChartBuilder::on(area)
                    .margin(20)
                    .build_cartesian_2d(x_min..x_max, y_min..y_max)?;
                let axis = BLACK.stroke_width(2);
                chart.draw_series(LineSeries::new([(x_min, y_min), (x_max, y_min)], axis))?;
                chart.draw_series(LineSeries::new([(x_min, y_min), (x_min, y_max)], axis))?;
                let tick = (y_max - y_min) * 0.03;
                for decade in (x_min.ceil() as i32)..=(x_max.floor() as i32) {
                    let x = f64::from(decade);
                    chart.draw_series(LineSeries::new([(x, y_min), (x, y_min + tick)], axis))?;
                }
                if panel.log {
                    // A tick per decade of the value on the y axis.
                    let x_tick = (x_max - x_min) * 0.02;
                    for decade in (y_min as i32)..=(y_max as i32) {
                        let v = f64::from(decade);
                        chart.draw_series(LineSeries::new(
                            [(x_min, v), (x_min + x_tick, v)],
                            axis,
                        ))?;
                    }
                }
                if let Some(target) = panel.target {
                    chart.draw_series(LineSeries::new(
                        [(x_min, y(target)), (x_max, y(target))],
                        RED.stroke_width(2),
                    ))?;
                }
                for (pick, color) in &panel.lines {
                    let points: Vec<(f64, f64)> = rows
                        .iter()
                        .filter(|r| pick(r).is_finite())
                        .map(|r| ((r.n as f64).log10(), y(pick(r))))
                        .collect();
                    chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))?;
                    chart.draw_series(
                        points
                            .into_iter()
                            .map(|p| Circle::new(p, 5, color.filled())),
                    )?;
                }
            }
            root.present()?;
        }
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut encoder = png::Encoder::new(file, SIZE.0, SIZE.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Best);
        encoder.write_header()?.write_image_data(&pixels)?;
        Ok(())
    }
}
