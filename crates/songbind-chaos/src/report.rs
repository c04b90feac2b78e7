//! The campaign's results: one [`JobRecord`] per job and the figures the
//! campaign is judged on ([`CampaignReport`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::plan::{Expectation, FaultKind, JobPlan, Operation};

/// How one job ended, judged against its [`Expectation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It succeeded with the right outputs, as expected.
    Outputs,
    /// It failed with the right typed error, as expected.
    TypedError,
    /// It ended otherwise; the reasons.
    Wrong(String),
    /// It was still running at the per-job timeout.
    Hang,
    /// It panicked.
    Panic,
    /// It met a known library bug the judge tolerates (see
    /// [`JobRecord::known_bug`]): neither right nor counted as wrong.
    KnownBug,
}

/// One job: its plan, what it had to end with, and how it ended.
#[derive(Clone, Debug)]
pub struct JobRecord {
    /// What the job did and which fault it met.
    pub plan: JobPlan,
    /// What it had to end with.
    pub expectation: Expectation,
    /// What happened, in a line.
    pub actual: String,
    /// The judgement.
    pub verdict: Verdict,
    /// Jobs the provider created for it.
    pub jobs_created: usize,
    /// Jobs created beyond what its fault allows (must be 0).
    pub duplicates: usize,
    /// 1 if the client's API key appeared in what the job handed back (its
    /// error's `Display` or `Debug`, or its output), else 0 (must be 0).
    pub keys_leaked: usize,
    /// A known library bug the job met and the judge tolerated (see
    /// `judge::TOLERATE_KEY_CUT_BY_EXCERPT` and
    /// `judge::TOLERATE_SHORT_AUDIO_REPORTED_AS_SUCCESS`), with what was seen.
    pub known_bug: Option<String>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Everything a campaign found.
#[derive(Clone, Debug)]
pub struct CampaignReport {
    /// The seed every job was drawn from.
    pub seed: u64,
    /// Concurrent workers (one emulator each).
    pub concurrency: usize,
    /// The per-job timeout past which a job counts as hung.
    pub job_timeout: Duration,
    /// The emulator's pacing factor.
    pub pacing: f64,
    /// Every job, by index.
    pub records: Vec<JobRecord>,
    /// Panics anywhere else in the process while the campaign ran (the
    /// emulators, the clients' background tasks); must be 0.
    pub stray_panics: usize,
    /// Wall-clock time of the whole campaign.
    pub duration: Duration,
}

impl CampaignReport {
    /// Jobs run.
    pub fn jobs_run(&self) -> usize {
        self.records.len()
    }

    /// Jobs that succeeded with the right outputs, as their fault allowed.
    pub fn correct_outputs(&self) -> usize {
        self.count(|v| *v == Verdict::Outputs)
    }

    /// Jobs that ended with the typed error their fault calls for.
    pub fn right_typed_errors(&self) -> usize {
        self.count(|v| *v == Verdict::TypedError)
    }

    /// Jobs that ended any other way than expected.
    pub fn wrong_outcomes(&self) -> Vec<&JobRecord> {
        self.records
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Wrong(_)))
            .collect()
    }

    /// Jobs created beyond what the faults legitimately cause.
    pub fn duplicate_jobs(&self) -> usize {
        self.records.iter().map(|r| r.duplicates).sum()
    }

    /// Jobs whose error or output showed the client's API key.
    pub fn keys_leaked(&self) -> usize {
        self.records.iter().map(|r| r.keys_leaked).sum()
    }

    /// Jobs that met a known library bug the judge tolerates (reported,
    /// not counted as wrong).
    pub fn known_bugs(&self) -> Vec<&JobRecord> {
        self.records
            .iter()
            .filter(|r| r.known_bug.is_some())
            .collect()
    }

    /// Jobs still running at the per-job timeout.
    pub fn hangs(&self) -> usize {
        self.count(|v| *v == Verdict::Hang)
    }

    /// Panics: in jobs, plus [`CampaignReport::stray_panics`].
    pub fn panics(&self) -> usize {
        self.count(|v| *v == Verdict::Panic) + self.stray_panics
    }

    /// Whether the campaign found nothing wrong: no wrong outcome, no
    /// duplicate job, no leaked key, no hang, no panic.
    pub fn is_clean(&self) -> bool {
        self.wrong_outcomes().is_empty()
            && self.duplicate_jobs() == 0
            && self.keys_leaked() == 0
            && self.hangs() == 0
            && self.panics() == 0
    }

    fn count(&self, which: impl Fn(&Verdict) -> bool) -> usize {
        self.records.iter().filter(|r| which(&r.verdict)).count()
    }

    /// Per-row tallies for a table grouped by `key`.
    fn tally<K: Ord>(&self, key: impl Fn(&JobRecord) -> K) -> BTreeMap<K, Tally> {
        let mut rows: BTreeMap<K, Tally> = BTreeMap::new();
        for record in &self.records {
            let row = rows.entry(key(record)).or_default();
            row.jobs += 1;
            match record.verdict {
                Verdict::Outputs => row.outputs += 1,
                Verdict::TypedError => row.errors += 1,
                Verdict::KnownBug => row.known += 1,
                _ => row.bad += 1,
            }
        }
        rows
    }
}

#[derive(Default)]
struct Tally {
    jobs: usize,
    outputs: usize,
    errors: usize,
    bad: usize,
    known: usize,
}

fn write_table(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    rows: impl Iterator<Item = (String, Tally)>,
) -> fmt::Result {
    writeln!(
        f,
        "  {title:<34} {:>6} {:>8} {:>8} {:>6} {:>6}",
        "jobs", "outputs", "errors", "wrong", "known"
    )?;
    for (name, row) in rows {
        writeln!(
            f,
            "  {name:<34} {:>6} {:>8} {:>8} {:>6} {:>6}",
            row.jobs, row.outputs, row.errors, row.bad, row.known
        )?;
    }
    Ok(())
}

impl fmt::Display for CampaignReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "songbind fault campaign: seed {}, {} workers (one emulator each), pacing {}, job timeout {}s",
            self.seed,
            self.concurrency,
            self.pacing,
            self.job_timeout.as_secs_f64()
        )?;
        writeln!(f)?;
        let wrong = self.wrong_outcomes();
        let lines = [
            ("jobs run", self.jobs_run()),
            ("jobs ending with correct outputs", self.correct_outputs()),
            (
                "jobs ending with the right typed error",
                self.right_typed_errors(),
            ),
            ("wrong outcomes", wrong.len()),
            ("duplicate jobs created", self.duplicate_jobs()),
            ("keys leaked", self.keys_leaked()),
            ("known library bugs (tolerated)", self.known_bugs().len()),
            ("hangs past the timeout", self.hangs()),
            ("panics", self.panics()),
        ];
        for (label, value) in lines {
            writeln!(f, "  {label:<40} {value:>6}")?;
        }
        writeln!(
            f,
            "  {:<40} {:>6.1}s",
            "duration",
            self.duration.as_secs_f64()
        )?;
        writeln!(f)?;
        let families = self.tally(|r| {
            FaultKind::FAMILIES
                .iter()
                .position(|family| *family == r.plan.fault.family())
                .unwrap_or(usize::MAX)
        });
        write_table(
            f,
            "by fault",
            families.into_iter().map(|(position, row)| {
                let name = FaultKind::FAMILIES.get(position).copied().unwrap_or("?");
                (name.to_owned(), row)
            }),
        )?;
        writeln!(f)?;
        let operations = self.tally(|r| r.plan.operation);
        write_table(
            f,
            "by operation",
            operations
                .into_iter()
                .map(|(operation, row): (Operation, Tally)| (operation.name().to_owned(), row)),
        )?;
        let hung_or_panicked: Vec<&JobRecord> = self
            .records
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Hang | Verdict::Panic))
            .collect();
        for record in wrong.iter().chain(&hung_or_panicked) {
            writeln!(f)?;
            writeln!(f, "  {}", record.plan)?;
            writeln!(f, "    expected: {}", record.expectation.outcome)?;
            writeln!(f, "    actual:   {}", record.actual)?;
            if let Verdict::Wrong(reason) = &record.verdict {
                writeln!(f, "    wrong:    {reason}")?;
            }
            writeln!(
                f,
                "    again:    cargo chaos --seed {} --job {}",
                record.plan.seed, record.plan.index
            )?;
        }
        for record in self.known_bugs() {
            writeln!(f)?;
            writeln!(f, "  known bug: {}", record.plan)?;
            if let Some(seen) = &record.known_bug {
                writeln!(f, "    seen:     {seen}")?;
            }
            writeln!(
                f,
                "    again:    cargo chaos --seed {} --job {}",
                record.plan.seed, record.plan.index
            )?;
        }
        if self.stray_panics > 0 {
            writeln!(f)?;
            writeln!(
                f,
                "  {} panics outside the jobs (see stderr for their messages)",
                self.stray_panics
            )?;
        }
        Ok(())
    }
}
