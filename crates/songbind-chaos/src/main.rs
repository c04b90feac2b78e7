//! `songbind-chaos` (`cargo chaos`): runs the fault campaign and prints its
//! figures; exits non-zero if any job ended wrong, made a duplicate job,
//! hung or panicked.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use songbind_chaos::{
    CampaignConfig, DEFAULT_CONCURRENCY, DEFAULT_PACING, Verdict, run_campaign_with_progress,
};

/// Runs randomized jobs across every provider and operation against
/// in-process emulators, each with an injected fault, and checks each
/// outcome against the one its fault calls for (see RELIABILITY.md).
#[derive(Debug, Parser)]
#[command(name = "cargo chaos", version)]
struct Args {
    /// Jobs to run.
    #[arg(long, default_value_t = 1000)]
    jobs: usize,
    /// Seed of the job plans (a random one when not given; it is printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Workers running jobs at once, each with its own emulator.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Seconds after which a job still running counts as hung.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// The emulator's pacing factor (provider delays are multiplied by it).
    #[arg(long, default_value_t = DEFAULT_PACING)]
    pacing: f64,
    /// Run only this job of the seed's campaign (repeatable), to replay a finding.
    #[arg(long = "job", value_name = "INDEX")]
    only: Vec<usize>,
    /// Print one line per job.
    #[arg(long)]
    verbose: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let config = CampaignConfig {
        jobs: args.jobs,
        seed,
        concurrency: args.concurrency,
        job_timeout: Duration::from_secs(args.timeout_secs),
        pacing: args.pacing,
        only: args.only,
    };
    let total = if config.only.is_empty() {
        config.jobs
    } else {
        config.only.len()
    };
    eprintln!("running {total} jobs with seed {seed} ...");
    let done = AtomicUsize::new(0);
    let verbose = args.verbose;
    let step = (total / 10).max(1);
    let progress = move |record: &songbind_chaos::JobRecord| {
        let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
        if verbose {
            let mark = match record.verdict {
                Verdict::Outputs | Verdict::TypedError => "ok   ",
                Verdict::Wrong(_) => "WRONG",
                Verdict::Hang => "HANG ",
                Verdict::Panic => "PANIC",
                Verdict::KnownBug => "KNOWN",
            };
            eprintln!(
                "{mark} {} -> {} ({} ms)",
                record.plan,
                record.actual,
                record.elapsed.as_millis()
            );
        } else if finished.is_multiple_of(step) || finished == total {
            eprintln!("  {finished}/{total} jobs done");
        }
    };
    match run_campaign_with_progress(&config, progress).await {
        Ok(report) => {
            println!("{report}");
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("songbind-chaos: {error}");
            ExitCode::from(2)
        }
    }
}
