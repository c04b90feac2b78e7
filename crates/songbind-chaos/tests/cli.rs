//! `songbind-chaos` (`cargo chaos`): what it prints and how it exits.

use std::process::{Command, Output};

fn chaos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_songbind-chaos"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// The number printed after `label` on its line of the summary.
fn figure(stdout: &str, label: &str) -> Option<usize> {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
}

#[test]
fn a_clean_campaign_prints_every_figure_and_exits_zero() {
    let output = chaos(&["--jobs", "4", "--seed", "2026", "--concurrency", "2"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for label in [
        "seed 2026",
        "jobs run",
        "jobs ending with correct outputs",
        "jobs ending with the right typed error",
        "wrong outcomes",
        "duplicate jobs created",
        "keys leaked",
        "hangs past the timeout",
        "panics",
        "by fault",
        "by operation",
    ] {
        assert!(stdout.contains(label), "no `{label}` in:\n{stdout}");
    }
    assert_eq!(figure(&stdout, "jobs run"), Some(4), "{stdout}");
    assert_eq!(figure(&stdout, "wrong outcomes"), Some(0), "{stdout}");
    assert_eq!(figure(&stdout, "keys leaked"), Some(0), "{stdout}");
}

#[test]
fn a_job_still_running_at_the_timeout_is_a_hang_and_fails_the_run() {
    let output = chaos(&["--jobs", "2", "--seed", "2026", "--timeout-secs", "0"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert_eq!(
        figure(&stdout, "hangs past the timeout"),
        Some(2),
        "{stdout}"
    );
    assert!(
        stdout.contains("cargo chaos --seed 2026 --job 0"),
        "{stdout}"
    );
}

#[test]
fn a_campaign_that_cannot_run_exits_two() {
    let output = chaos(&["--jobs", "1", "--concurrency", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("concurrency"));
}
