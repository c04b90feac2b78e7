//! Live progress on stderr, drawn from a job's events: one line for the job,
//! one bar per version (Soundverse and MusicGPT make two, SoundPiece one per
//! variation), then one bar per download. An ElevenLabs compose, whose
//! answer is the audio, shows the job line and one byte counter.
//!
//! indicatif draws only when stderr is a terminal; when it is not (a pipe, a
//! file, a test), nothing here writes anything, so stderr carries only the
//! final error line, if any.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::output::printable;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use songbind::Output;

/// How often spinners turn.
const TICK: Duration = Duration::from_millis(120);

/// A spinner with a label and a message (stages without a percentage).
fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.green} {prefix:.bold} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// A percentage bar (stages with a percentage).
fn percent_style() -> ProgressStyle {
    ProgressStyle::with_template("  {prefix:.bold} [{bar:30.cyan/blue}] {pos:>3}% {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A byte-count bar (downloads).
fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "  {prefix:.bold} [{bar:30.green/blue}] {bytes:>9}/{total_bytes:<9} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

/// A byte counter of unknown total (audio answered in chunks).
fn counter_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "  {spinner:.green} {prefix:.bold} {bytes:>9} ({binary_bytes_per_sec}) {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// One version's bar and what it has shown so far.
struct VersionBar {
    bar: ProgressBar,
    /// Whether it switched from a spinner to a percentage bar.
    has_percent: bool,
    /// Whether its output is final.
    done: bool,
}

/// The progress display of one run.
pub struct JobProgress {
    multi: MultiProgress,
    job: ProgressBar,
    versions: BTreeMap<u32, VersionBar>,
}

impl JobProgress {
    /// A display for `title` (e.g. `Soundverse generate`) expecting
    /// `versions` outputs, drawn on stderr when it is a terminal.
    pub fn new(title: &str, versions: u32) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let job = multi.add(ProgressBar::new_spinner());
        job.set_style(spinner_style());
        job.set_prefix(title.to_owned());
        job.set_message("sending the request");
        let mut progress = Self {
            multi,
            job,
            versions: BTreeMap::new(),
        };
        if progress.is_visible() {
            progress.job.enable_steady_tick(TICK);
        }
        for version in 1..=versions {
            progress.version_bar(version);
        }
        progress
    }

    /// Whether anything is drawn (stderr is a terminal).
    pub fn is_visible(&self) -> bool {
        !self.multi.is_hidden()
    }

    /// The bar of `version`, made on first use.
    fn version_bar(&mut self, version: u32) -> &mut VersionBar {
        let multi = &self.multi;
        self.versions.entry(version).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(100));
            bar.set_style(spinner_style());
            bar.set_prefix(format!("  v{version}"));
            bar.set_message("waiting");
            if !multi.is_hidden() {
                bar.enable_steady_tick(TICK);
            }
            VersionBar {
                bar,
                has_percent: false,
                done: false,
            }
        })
    }

    /// The job was accepted under `id`.
    pub fn started(&self, id: &str) {
        self.job.set_message(format!("job {}", printable(id)));
    }

    /// Waiting for a one-request answer (Soundverse `--sync`).
    pub fn waiting_for_answer(&self) {
        self.job
            .set_message("waiting for the whole song in one answer (--sync)");
    }

    /// The job (or one `version` of it) reached `stage`, at `percent` if known.
    pub fn stage(&mut self, stage: &str, percent: Option<u8>, version: Option<u32>) {
        let targets: Vec<u32> = match version {
            Some(version) => {
                self.version_bar(version);
                vec![version]
            }
            None => self.versions.keys().copied().collect(),
        };
        for version in targets {
            let Some(entry) = self.versions.get_mut(&version) else {
                continue;
            };
            if entry.done {
                continue;
            }
            if let Some(percent) = percent {
                if !entry.has_percent {
                    entry.has_percent = true;
                    entry.bar.disable_steady_tick();
                    entry.bar.set_style(percent_style());
                    entry.bar.set_prefix(format!("v{version}"));
                }
                entry.bar.set_position(u64::from(percent.min(100)));
            }
            entry.bar.set_message(printable(stage).into_owned());
        }
    }

    /// `version` can be played at `url` while it is being finished.
    pub fn stream_ready(&mut self, version: u32, url: &str) {
        let entry = self.version_bar(version);
        if !entry.done {
            entry.bar.set_message("streaming ready");
        }
        self.log(&format!(
            "v{version} can be played while it finishes: {}",
            printable(url)
        ));
    }

    /// One output is final.
    pub fn output(&mut self, output: &Output) {
        let version = output.version.unwrap_or(1);
        let entry = self.version_bar(version);
        entry.done = true;
        entry.bar.disable_steady_tick();
        entry.bar.set_style(percent_style());
        entry.bar.set_prefix(format!("v{version}"));
        entry.bar.set_position(100);
        entry
            .bar
            .finish_with_message(format!("done {}", printable(&output.url)));
    }

    /// The job finished with `outputs` outputs.
    pub fn finished(&mut self, outputs: &[Output]) {
        for output in outputs {
            if !self
                .versions
                .get(&output.version.unwrap_or(1))
                .is_some_and(|entry| entry.done)
            {
                self.output(output);
            }
        }
        for entry in self.versions.values().filter(|entry| !entry.done) {
            entry.bar.finish_and_clear();
        }
        self.job.finish_with_message(format!(
            "done: {} output{}",
            outputs.len(),
            if outputs.len() == 1 { "" } else { "s" }
        ));
    }

    /// The run failed: every bar stops where it was.
    pub fn failed(&self) {
        for entry in self.versions.values().filter(|entry| !entry.done) {
            entry.bar.abandon();
        }
        self.job.abandon_with_message("failed");
    }

    /// A bar for downloading `label` (e.g. `v1`) to `file`.
    pub fn download_bar(&self, label: &str, file: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::no_length());
        bar.set_style(bytes_style());
        bar.set_prefix(label.to_owned());
        bar.set_message(file.to_owned());
        bar
    }

    /// The job line's message, for work without stages (an ElevenLabs
    /// compose: "composing", "writing the audio").
    pub fn status(&self, message: &str) {
        self.job.set_message(message.to_owned());
    }

    /// The job line ends with `message` (work without outputs to list).
    pub fn done(&self, message: &str) {
        self.job.finish_with_message(message.to_owned());
    }

    /// A counter of the bytes of `label` (e.g. `audio`) written to `file`
    /// as they arrive, when the total is not known in advance.
    pub fn byte_counter(&self, label: &str, file: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::no_length());
        bar.set_style(counter_style());
        bar.set_prefix(label.to_owned());
        bar.set_message(file.to_owned());
        if self.is_visible() {
            bar.enable_steady_tick(TICK);
        }
        bar
    }

    /// A line above the bars (dropped when nothing is drawn).
    pub fn log(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_for_unknown_versions_make_their_bar() {
        let mut progress = JobProgress::new("MusicGPT remix", 0);
        progress.stage("IN_QUEUE", None, Some(2));
        progress.stage("running", Some(40), None);
        assert_eq!(progress.versions.len(), 1);
        let bar = &progress.versions[&2];
        assert!(bar.has_percent);
        assert_eq!(bar.bar.position(), 40);
    }

    #[test]
    fn a_finished_version_ignores_later_stages() {
        let mut progress = JobProgress::new("Soundverse generate", 2);
        progress.stage("running", Some(50), None);
        progress.output(&Output::new("http://x/v1.wav", Some(1)));
        progress.stage("uploading", Some(95), None);
        assert_eq!(progress.versions[&1].bar.position(), 100);
        assert_eq!(progress.versions[&2].bar.position(), 95);
        assert!(progress.versions[&1].bar.is_finished());
    }
}
