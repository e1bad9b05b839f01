//! Attempts worth telling about: how each ended, where it ran.

use std::str::FromStr;

use crate::state::{FailureKind, Millis, TaskError, TaskStateKind};

/// One attempt at running a task, when worth keeping: it failed, was
/// retried, died with its process or node, followed such an attempt, or
/// logged something. (A lone silent successful attempt is fully described
/// by its task row.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The task's index.
    pub index: u64,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The cluster node it ran on (`None`: the machine of the process
    /// that ran the job, or not known).
    pub node: Option<String>,
    /// When the attempt started, in milliseconds since the epoch.
    pub started_at: Millis,
    /// When it ended, in milliseconds since the epoch (for a lost attempt:
    /// when its loss was found).
    pub ended_at: Millis,
    /// How it ended.
    pub end: AttemptEnd,
    /// The task's log (stderr or SDK `log`), as much as the log limit kept.
    pub log: Vec<u8>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEnd {
    /// It ran to its end (finished, or suspended with a snapshot).
    Done,
    /// It failed.
    Failed(TaskError),
    /// The process or node running it died before it ended; the reason
    /// says which, and how it was found ("node n1 was silent for 3
    /// heartbeat intervals: presumed dead").
    Lost(String),
}

impl AttemptEnd {
    /// The outcome's name, as stored in the journal and shown by `wrun
    /// logs`: `done`, a [`FailureKind`]'s name, or `lost`.
    pub fn outcome(&self) -> &'static str {
        match self {
            AttemptEnd::Done => TaskStateKind::Done.as_str(),
            AttemptEnd::Failed(error) => error.kind.as_str(),
            AttemptEnd::Lost(_) => LOST,
        }
    }

    /// Its message: the failure's, or the reason of a loss.
    pub fn message(&self) -> Option<&str> {
        match self {
            AttemptEnd::Done => None,
            AttemptEnd::Failed(error) => Some(&error.message),
            AttemptEnd::Lost(reason) => Some(reason),
        }
    }

    /// The end stored as `outcome` and `message` (see [`Self::outcome`]).
    pub(crate) fn parse(outcome: &str, message: Option<String>) -> Result<AttemptEnd, String> {
        let message = message.unwrap_or_default();
        Ok(match outcome {
            LOST => AttemptEnd::Lost(message),
            _ if outcome == TaskStateKind::Done.as_str() => AttemptEnd::Done,
            _ => AttemptEnd::Failed(TaskError {
                kind: FailureKind::from_str(outcome)?,
                message,
            }),
        })
    }
}

/// The outcome of an attempt lost with its process or node. No
/// [`FailureKind`] has this name: a loss is not a failure of the task.
pub(crate) const LOST: &str = "lost";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_round_trip_through_their_stored_names() {
        let ends = [
            AttemptEnd::Done,
            AttemptEnd::Lost("node n1 presumed dead".into()),
            AttemptEnd::Failed(TaskError {
                kind: FailureKind::Host,
                message: "pool exhausted".into(),
            }),
        ];
        for end in ends {
            let message = end.message().map(str::to_owned);
            assert_eq!(AttemptEnd::parse(end.outcome(), message), Ok(end));
        }
        assert!(AttemptEnd::parse("sleeping", None).is_err());
        assert!(
            LOST.parse::<FailureKind>().is_err(),
            "no failure is named lost"
        );
    }
}
