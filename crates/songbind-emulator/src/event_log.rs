//! An opt-in log of when the emulator wrote each job event, for measuring
//! event-delivery latency from outside ([`EmulatorBuilder::event_log`]).
//!
//! Off by default: then recording is one branch on a `bool` and nothing is
//! allocated. On, every Soundverse SSE event is recorded just before its
//! bytes go to the connection, and every status change of a SoundPiece
//! operation or a MusicGPT task when it happens, each with the wall-clock
//! time (`CLOCK_REALTIME`, nanoseconds since the Unix epoch), so that a
//! client on the same machine can subtract its own clock reading.
//!
//! [`EmulatorBuilder::event_log`]: crate::EmulatorBuilder::event_log

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// One event the emulator wrote, or one status change it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// The job's id as its client knows it: Soundverse's `message_id`,
    /// SoundPiece's `op_...`, MusicGPT's `task_id`.
    pub job: String,
    /// The event's place among the job's recorded events, from 0.
    pub seq: u32,
    /// When it was written, in nanoseconds since the Unix epoch.
    pub unix_nanos: u64,
    /// The status the event carries (Soundverse's chunk `status`,
    /// SoundPiece's `ready` / `failed`, MusicGPT's conversion status).
    pub status: String,
    /// The chunk's `progress`, where it has one.
    pub progress: Option<i64>,
}

impl EventRecord {
    /// One line of text: `job seq unix_nanos status progress` (`-` for no
    /// progress), as users of [`crate::EmulatorBuilder::event_log`] write it out.
    pub fn to_line(&self) -> String {
        let progress = self
            .progress
            .map_or_else(|| "-".to_owned(), |p| p.to_string());
        format!(
            "{} {} {} {} {progress}",
            self.job, self.seq, self.unix_nanos, self.status
        )
    }

    /// Reads a line written by [`EventRecord::to_line`].
    pub fn from_line(line: &str) -> Option<Self> {
        let mut fields = line.split_ascii_whitespace();
        let job = fields.next()?.to_owned();
        let seq = fields.next()?.parse().ok()?;
        let unix_nanos = fields.next()?.parse().ok()?;
        let status = fields.next()?.to_owned();
        let progress = match fields.next()? {
            "-" => None,
            p => Some(p.parse().ok()?),
        };
        Some(Self {
            job,
            seq,
            unix_nanos,
            status,
            progress,
        })
    }
}

/// The log itself: disabled unless the builder asked for it.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    enabled: bool,
    records: Mutex<Vec<EventRecord>>,
}

impl EventLog {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            records: Mutex::new(Vec::new()),
        }
    }

    /// Whether events are recorded.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Records one event now (nothing when the log is off).
    pub(crate) fn record(&self, job: &str, seq: u32, status: &str, progress: Option<i64>) {
        if !self.enabled {
            return;
        }
        let unix_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let record = EventRecord {
            job: job.to_owned(),
            seq,
            unix_nanos,
            status: status.to_owned(),
            progress,
        };
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(record);
    }

    /// Takes every record so far, leaving the log empty.
    pub(crate) fn take(&self) -> Vec<EventRecord> {
        std::mem::take(
            &mut *self
                .records
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_records_nothing_and_on_records_in_order() {
        let off = EventLog::new(false);
        off.record("job", 0, "queued", None);
        assert!(off.take().is_empty());

        let on = EventLog::new(true);
        on.record("job", 0, "queued", Some(5));
        on.record("job", 1, "completed", None);
        let records = on.take();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].status, "completed");
        assert!(records[0].unix_nanos <= records[1].unix_nanos);
        assert!(on.take().is_empty());
    }

    #[test]
    fn a_line_reads_back_as_the_same_record() {
        let record = EventRecord {
            job: "msg_1".into(),
            seq: 3,
            unix_nanos: 1_700_000_000_123_456_789,
            status: "streaming".into(),
            progress: Some(42),
        };
        assert_eq!(
            EventRecord::from_line(&record.to_line()),
            Some(record.clone())
        );
        let none = EventRecord {
            progress: None,
            ..record
        };
        assert_eq!(EventRecord::from_line(&none.to_line()), Some(none));
    }
}
