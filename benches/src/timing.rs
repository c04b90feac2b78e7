//! Interleaved timing: floor and subject alternate, medians are compared.
//!
//! On a noisy machine, measuring the floor for a while and then the subject
//! for a while lets a burst of load from elsewhere land on one side only.
//! [`interleave`] runs them in ABBA order (floor, subject, subject, floor,
//! ...), so slow drifts hit both sides alike, and [`Comparison`] compares
//! their medians, which a few outliers cannot move.

use std::time::{Duration, Instant};

/// Whether a bench binary measures or only checks that it runs.
///
/// `cargo bench` passes `--bench`; `cargo test --benches` passes nothing,
/// and then each bench runs a few rounds as a smoke test (as criterion does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Full measurement (`cargo bench`).
    Measure,
    /// A few rounds, to prove the bench works (`cargo test --benches`).
    Smoke,
}

impl Mode {
    /// Reads the mode from the process arguments, as criterion does:
    /// `--bench` without `--test` measures.
    pub fn from_args() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let bench = args.iter().any(|a| a == "--bench");
        let test = args.iter().any(|a| a == "--test");
        if bench && !test {
            Mode::Measure
        } else {
            Mode::Smoke
        }
    }

    /// `full` rounds when measuring, `smoke` otherwise; the environment
    /// variable `SONGBIND_BENCH_ROUNDS` overrides both.
    pub fn rounds(self, full: usize, smoke: usize) -> usize {
        if let Some(rounds) = std::env::var("SONGBIND_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
        {
            return rounds;
        }
        match self {
            Mode::Measure => full,
            Mode::Smoke => smoke,
        }
    }
}

/// Times one call of `f`.
pub fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

/// Runs `floor` and `subject` `rounds` times each, alternating in ABBA
/// order; each closure returns how long its run took (so that it can leave
/// setup out of the measurement).
pub fn interleave(
    rounds: usize,
    mut floor: impl FnMut() -> Duration,
    mut subject: impl FnMut() -> Duration,
) -> Comparison {
    let mut floor_times = Vec::with_capacity(rounds);
    let mut subject_times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        if round % 2 == 0 {
            floor_times.push(floor());
            subject_times.push(subject());
        } else {
            subject_times.push(subject());
            floor_times.push(floor());
        }
    }
    Comparison::of(&floor_times, &subject_times)
}

/// The median of `values` (0 for none); sorts a copy.
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// The `q` quantile of `values` (nearest rank on a sorted copy).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Median and spread of one side's run times, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// How many runs.
    pub runs: usize,
    /// The median run time.
    pub median: f64,
    /// The 10th percentile.
    pub p10: f64,
    /// The 90th percentile.
    pub p90: f64,
}

impl Summary {
    /// Summarises run times.
    pub fn of(times: &[Duration]) -> Self {
        let secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
        Self {
            runs: secs.len(),
            median: median(&secs),
            p10: quantile(&secs, 0.1),
            p90: quantile(&secs, 0.9),
        }
    }
}

/// Floor and subject run times from one interleaved run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// The floor's run times.
    pub floor: Summary,
    /// The subject's run times.
    pub subject: Summary,
    /// The median of the per-round subject/floor time ratios: a second view
    /// of the same run, less sensitive to load that lasts one round.
    pub paired_ratio_median: f64,
}

impl Comparison {
    /// Compares run times taken in pairs (round `i` of the floor with round
    /// `i` of the subject), for loops that cannot use [`interleave`] (async
    /// ones, for instance).
    pub fn of(floor: &[Duration], subject: &[Duration]) -> Self {
        Self {
            floor: Summary::of(floor),
            subject: Summary::of(subject),
            paired_ratio_median: median(
                &subject
                    .iter()
                    .zip(floor)
                    .map(|(s, f)| s.as_secs_f64() / f.as_secs_f64().max(f64::MIN_POSITIVE))
                    .collect::<Vec<_>>(),
            ),
        }
    }

    /// Subject time over floor time, from the medians (above 1: slower).
    pub fn time_ratio(&self) -> f64 {
        self.subject.median / self.floor.median
    }

    /// Subject throughput over floor throughput (below 1: slower).
    pub fn throughput_ratio(&self) -> f64 {
        self.floor.median / self.subject.median
    }
}

/// Which way a target bounds a ratio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// The figure must be at least the target.
    AtLeast,
    /// The figure must be at most the target.
    AtMost,
    /// The figure must be below the target.
    Below,
}

/// `MET` or `MISSED`; a smoke run judges nothing (its few rounds are no
/// measurement).
pub fn verdict(mode: Mode, met: bool) -> &'static str {
    match (mode, met) {
        (Mode::Smoke, _) => "not judged (smoke run)",
        (Mode::Measure, true) => "MET",
        (Mode::Measure, false) => "MISSED",
    }
}

/// Prints `<what>: <figure>x (target <op> <target>x): MET|MISSED` and
/// returns whether the target was met.
pub fn report(mode: Mode, what: &str, figure: f64, bound: Bound, target: f64) -> bool {
    let (op, met) = match bound {
        Bound::AtLeast => (">=", figure >= target),
        Bound::AtMost => ("<=", figure <= target),
        Bound::Below => ("<", figure < target),
    };
    println!(
        "{what}: {figure:.3}x (target {op} {target}x): {}",
        verdict(mode, met)
    );
    met
}

/// Formats seconds with a unit that suits them.
pub fn human(secs: f64) -> String {
    if secs >= 1.0 {
        format!("{secs:.3} s")
    } else if secs >= 1e-3 {
        format!("{:.3} ms", secs * 1e3)
    } else {
        format!("{:.1} µs", secs * 1e6)
    }
}

/// Prints one side's summary, indented, under a report line.
pub fn print_summary(label: &str, summary: &Summary) {
    println!(
        "    {label:<8} median {:>10}  p10 {:>10}  p90 {:>10}  ({} runs)",
        human(summary.median),
        human(summary.p10),
        human(summary.p90),
        summary.runs
    );
}
