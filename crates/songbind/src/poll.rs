//! One engine for every polled job (SoundPiece, MusicGPT, any provider
//! whose status is read by asking again).
//!
//! A provider implements [`StatusSource`]: one poll answers what the job
//! looks like now (its stages, the outputs that are final, and whether it
//! is running, done or failed). Everything else is here, once: the pause
//! between polls, stage de-duplication, each output announced once, and the
//! final [`JobEvent::Completed`] or [`Error::JobFailed`]. The deadline and
//! cancellation are [`Job::events`](crate::Job::events)'s, for every
//! provider alike.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;

use crate::error::{Error, ProviderName, Result};
use crate::job::{JobEvent, JobOutput, Output, OutputKind, Stage};

/// What a job looks like after one poll.
#[derive(Debug, Default)]
pub(crate) struct Status {
    /// Stages, by version (`None` for the job as a whole): the provider's
    /// own names. Only a change is reported.
    pub stages: Vec<(Option<u32>, String)>,
    /// Outputs that are final, each with its version. Each version is
    /// announced once.
    pub outputs: Vec<Output>,
    /// Where the job stands.
    pub state: State,
}

/// Where a polled job stands.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) enum State {
    /// Still running: poll again.
    #[default]
    Running,
    /// Finished: the outputs announced so far are all of them.
    Done,
    /// Failed, with the provider's reason.
    Failed(String),
}

/// A boxed future of one poll.
pub(crate) type PollFuture<'a> = Pin<Box<dyn Future<Output = Result<Status>> + Send + 'a>>;

/// A provider's way to look at one job.
pub(crate) trait StatusSource: Send + 'static {
    /// Looks at the job once.
    fn poll(&mut self) -> PollFuture<'_>;
}

/// The events of the job `id` at `provider`, read from `source` with
/// `poll_interval` between polls that found nothing new.
pub(crate) fn follow<S: StatusSource>(
    provider: ProviderName,
    id: String,
    source: S,
    poll_interval: Duration,
) -> BoxStream<'static, Result<JobEvent>> {
    let engine = Engine {
        provider,
        id,
        source,
        poll_interval,
        stages: HashMap::new(),
        outputs: BTreeMap::new(),
        done: false,
    };
    futures::stream::unfold(engine, |mut engine| async move {
        let events = engine.step().await?;
        Some((futures::stream::iter(events), engine))
    })
    .flatten()
    .boxed()
}

struct Engine<S> {
    provider: ProviderName,
    id: String,
    source: S,
    poll_interval: Duration,
    /// The last stage reported, by version.
    stages: HashMap<Option<u32>, String>,
    /// The outputs announced, by version.
    outputs: BTreeMap<(OutputKind, u32), Output>,
    done: bool,
}

impl<S: StatusSource> Engine<S> {
    /// One poll and the events it makes; `None` once the job has ended.
    async fn step(&mut self) -> Option<Vec<Result<JobEvent>>> {
        if self.done {
            return None;
        }
        let started = Instant::now();
        let status = match self.source.poll().await {
            Ok(status) => status,
            Err(error) => {
                self.done = true;
                return Some(vec![Err(error)]);
            }
        };
        let mut events = Vec::new();
        for (version, stage) in status.stages {
            if self.stages.get(&version) != Some(&stage) {
                self.stages.insert(version, stage.clone());
                events.push(Ok(JobEvent::Stage {
                    stage: Stage::from_provider(&stage),
                    progress: None,
                    version,
                }));
            }
        }
        for output in status.outputs {
            let key = (output.kind.clone(), output.version.unwrap_or(1));
            if let std::collections::btree_map::Entry::Vacant(slot) = self.outputs.entry(key) {
                slot.insert(output.clone());
                events.push(Ok(JobEvent::Output(output)));
            }
        }
        match status.state {
            State::Done => {
                self.done = true;
                events.push(Ok(JobEvent::Completed(JobOutput {
                    provider: self.provider,
                    id: self.id.clone(),
                    outputs: self.outputs.values().cloned().collect(),
                })));
            }
            State::Failed(message) => {
                self.done = true;
                events.push(Err(Error::JobFailed {
                    provider: self.provider,
                    id: self.id.clone(),
                    message,
                    resume: None, // the job's own, set by `Job::events`
                }));
            }
            State::Running if events.is_empty() => {
                // Nothing new (an early answer, or a quick one): pause for
                // what is left of the interval before asking again.
                if let Some(rest) = self.poll_interval.checked_sub(started.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
            }
            State::Running => {}
        }
        Some(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers the scripted statuses in turn.
    struct Script(std::collections::VecDeque<Result<Status>>);

    impl StatusSource for Script {
        fn poll(&mut self) -> PollFuture<'_> {
            let next = self.0.pop_front().expect("polled past the script");
            Box::pin(async move { next })
        }
    }

    fn running(stage: &str, outputs: Vec<Output>) -> Result<Status> {
        Ok(Status {
            stages: vec![(Some(1), stage.to_owned()), (Some(2), stage.to_owned())],
            outputs,
            state: State::Running,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn stages_are_reported_once_outputs_once_and_completion_last() {
        let script = Script(
            vec![
                running("PENDING", vec![]),
                running("PENDING", vec![]),
                running("DONE", vec![Output::new("u2", Some(2))]),
                Ok(Status {
                    stages: vec![(Some(1), "DONE".into())],
                    outputs: vec![Output::new("u1", Some(1)), Output::new("u2", Some(2))],
                    state: State::Done,
                }),
            ]
            .into(),
        );
        let started = tokio::time::Instant::now();
        let events: Vec<JobEvent> = follow(
            ProviderName::MusicGpt,
            "task".into(),
            script,
            Duration::from_secs(5),
        )
        .map(|e| e.unwrap())
        .collect()
        .await;
        let stages = events
            .iter()
            .filter(|e| matches!(e, JobEvent::Stage { .. }))
            .count();
        assert_eq!(stages, 4, "{events:?}");
        let outputs: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                JobEvent::Output(o) => Some(o.url.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(outputs, ["u2", "u1"]);
        let Some(JobEvent::Completed(done)) = events.last() else {
            panic!("{events:?}");
        };
        assert_eq!(
            done.outputs
                .iter()
                .map(|o| o.url.as_str())
                .collect::<Vec<_>>(),
            ["u1", "u2"]
        );
        // Only the poll that found nothing new paused.
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_failure_or_an_error_ends_the_events() {
        let script = Script(
            vec![
                running("RUNNING", vec![]),
                Ok(Status {
                    state: State::Failed("no".into()),
                    ..Status::default()
                }),
            ]
            .into(),
        );
        let events: Vec<_> = follow(
            ProviderName::SoundPiece,
            "op".into(),
            script,
            Duration::ZERO,
        )
        .collect()
        .await;
        assert!(matches!(
            events.last(),
            Some(Err(Error::JobFailed { id, message, .. })) if id == "op" && message == "no"
        ));
    }
}
