//! The songbind fault campaign: many randomized jobs across every provider
//! and operation, each meeting a fault, each checked against the outcome its
//! fault calls for.
//!
//! A job ([`JobPlan`]) is one operation (Soundverse generate, extend or
//! remix over SSE, or generate/extend `/sync`; SoundPiece remix; MusicGPT
//! remix by file upload or by URL; ElevenLabs compose and compose detailed,
//! the audio written to a `Vec` or a file) meeting one fault (none, 429/503 bursts
//! with `Retry-After`, a lost reply after the job was created, a stalled
//! request, a dropped, cut, stalled or fragmented stream, a `[fail]` prompt,
//! a key without credits, a 5xx with a "not taken" text after the job was
//! created, a non-JSON error page, a server echoing the `Authorization`
//! header). Its [`Expectation`] comes from the fault alone: success with
//! the right outputs, or one typed [`songbind::Error`] with its status; how
//! many jobs the provider may create (a create the client believes failed
//! counts once, never twice); how many create requests may reach it.
//!
//! Every client of a worker sends one realistic key (`sk_live_` and 24
//! random characters); a job whose error or output shows it (or a piece of
//! it) is wrong and counted as a leaked key.
//!
//! Jobs run on workers, each with an emulator of its own and one job at a
//! time, so a job's fault rules, job counts and request log are its own.
//! Every job runs in its own task, under a timeout (a job still running then
//! is a hang) and with its panics caught (a panic is counted, never fatal).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), songbind_chaos::ChaosError> {
//! use songbind_chaos::{CampaignConfig, run_campaign};
//!
//! let report = run_campaign(&CampaignConfig::new(3, 42)).await?;
//! assert_eq!(report.jobs_run(), 3);
//! assert!(report.is_clean(), "{report}");
//! println!("{report}");
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod judge;
pub mod plan;
pub mod report;
mod worker;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use songbind_emulator::Pacing;

pub use plan::{
    AnswerBody, AnswerCase, Expectation, ExpectedError, ExpectedOutcome, FaultKind, JobPlan,
    Operation, StreamShape, Target,
};
pub use report::{CampaignReport, JobRecord, Verdict};

/// The emulator's default pacing: every provider delay times 0.002. A
/// Soundverse song takes about 120 ms (its hold at 90 % lasts 50 ms, with a
/// keepalive every 10 ms), a SoundPiece operation 90 ms (so the client's
/// long-poll really waits), a MusicGPT task 150 ms (several `/byId` polls):
/// every waiting path of the client runs, and 1000 jobs take about a minute.
pub const DEFAULT_PACING: f64 = 0.002;

/// Default number of workers (emulators) running jobs at once. A job
/// mostly waits (paced providers, `Retry-After`, stalls): 16 workers keep
/// two cores far from busy.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Default per-job timeout: a job still running after it is a hang. The
/// slowest expected job (four refusals with `Retry-After: 1`) takes 3 s.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignConfig {
    /// Jobs to run (indexes `0..jobs`), unless `only` names some.
    pub jobs: usize,
    /// The seed every job is drawn from.
    pub seed: u64,
    /// Workers running at once, each with its own emulator.
    pub concurrency: usize,
    /// Past this, a job counts as hung.
    pub job_timeout: Duration,
    /// The emulator's pacing factor (see [`DEFAULT_PACING`]).
    pub pacing: f64,
    /// Run only these job indexes (to replay jobs of an earlier run).
    pub only: Vec<usize>,
}

impl CampaignConfig {
    /// `jobs` jobs drawn from `seed`, with the default concurrency, timeout
    /// and pacing.
    pub fn new(jobs: usize, seed: u64) -> Self {
        Self {
            jobs,
            seed,
            concurrency: DEFAULT_CONCURRENCY,
            job_timeout: DEFAULT_JOB_TIMEOUT,
            pacing: DEFAULT_PACING,
            only: Vec::new(),
        }
    }
}

/// Why a campaign could not run (a finding about the client is never an
/// error: it is in the [`CampaignReport`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChaosError {
    /// The configuration cannot run.
    #[error("invalid campaign configuration: {0}")]
    Config(String),
    /// An emulator could not start.
    #[error("could not start an emulator: {0}")]
    Emulator(#[source] std::io::Error),
    /// A client could not be built.
    #[error("could not build a client: {0}")]
    Client(#[from] songbind::Error),
    /// The scratch directory for uploads could not be written.
    #[error("{path}: {source}")]
    Scratch {
        /// The file or directory.
        path: String,
        /// What happened.
        #[source]
        source: std::io::Error,
    },
    /// A worker stopped before its jobs were done.
    #[error("a campaign worker stopped: {0}")]
    Worker(String),
}

/// Runs the campaign and returns what it found.
pub async fn run_campaign(config: &CampaignConfig) -> Result<CampaignReport, ChaosError> {
    run_campaign_with_progress(config, |_| {}).await
}

/// Like [`run_campaign`], calling `on_job` as each job ends (from the
/// worker that ran it).
pub async fn run_campaign_with_progress(
    config: &CampaignConfig,
    on_job: impl Fn(&JobRecord) + Send + Sync + 'static,
) -> Result<CampaignReport, ChaosError> {
    if config.concurrency == 0 {
        return Err(ChaosError::Config("concurrency must be at least 1".into()));
    }
    if !config.pacing.is_finite() || config.pacing < 0.0 {
        return Err(ChaosError::Config(format!(
            "pacing must be a finite number >= 0, got {}",
            config.pacing
        )));
    }
    let indexes: Vec<usize> = if config.only.is_empty() {
        (0..config.jobs).collect()
    } else {
        config.only.clone()
    };
    count_panics();
    let panics_before = PANICS.load(Ordering::SeqCst);
    let started = Instant::now();
    let indexes = Arc::new(indexes);
    let next = Arc::new(AtomicUsize::new(0));
    let on_job = Arc::new(on_job);
    let workers = config.concurrency.min(indexes.len()).max(1);
    let mut handles = Vec::with_capacity(workers);
    for number in 0..workers {
        let (indexes, next, on_job) = (Arc::clone(&indexes), Arc::clone(&next), on_job.clone());
        let (seed, timeout, pacing) = (config.seed, config.job_timeout, config.pacing);
        handles.push(tokio::spawn(async move {
            let key = worker::worker_key(seed, number);
            let worker = worker::Worker::start(Pacing::scaled(pacing), timeout, key).await?;
            let mut records = Vec::new();
            while let Some(index) = indexes.get(next.fetch_add(1, Ordering::SeqCst)) {
                let record = worker.run(&JobPlan::new(seed, *index)).await?;
                on_job(&record);
                records.push(record);
            }
            Ok::<_, ChaosError>(records)
        }));
    }
    let mut records = Vec::with_capacity(indexes.len());
    for handle in handles {
        match handle.await {
            Ok(done) => records.extend(done?),
            Err(error) => return Err(ChaosError::Worker(error.to_string())),
        }
    }
    records.sort_by_key(|r| r.plan.index);
    let job_panics = records
        .iter()
        .filter(|r| r.verdict == Verdict::Panic)
        .count();
    let all_panics = PANICS.load(Ordering::SeqCst).saturating_sub(panics_before);
    Ok(CampaignReport {
        seed: config.seed,
        concurrency: workers,
        job_timeout: config.job_timeout,
        pacing: config.pacing,
        records,
        stray_panics: all_panics.saturating_sub(job_panics),
        duration: started.elapsed(),
    })
}

/// Panics seen in this process since [`count_panics`] was first called.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts every panic of the process (then lets the previous hook print it),
/// so that a panic in an emulator's handler or a client's background task
/// is counted too, not only those that end a job's task. Installed once;
/// campaigns running at the same time in one process share the count.
fn count_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}
