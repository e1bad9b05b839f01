//! Task and job states, and the transitions allowed between them.
//!
//! ```text
//!            ┌──────────── retry / recovery ────────────┐
//!            v                                          │
//!  queued ──> running ──> done                          │
//!    │        │ ^  │ └──> failed ───────────────────────┤
//!    │        │ │  └────> queued (host lost, retried)   │
//!    │        v │ resume                                │
//!    │     suspended (out of fuel, drained) ──> queued  │
//!    └────────┴───┴──────> cancelled ───────────────────┘
//! ```
//!
//! A task's latest snapshot ([`crate::SnapshotRef`]) is kept beside its
//! state: a queued, running or suspended task with one resumes from it.
//!
//! `done` is final. Each variant holds only the data of its state: a queued
//! task has no start time, a done task has an output, a failed one a reason.
//!
//! [`sql`] is the only place where SQL text names a task state: a statement
//! that changes many tasks at once takes its clauses from a
//! [`sql::Transition`], which exists only for pairs that
//! [`TaskState::allows`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub(crate) mod sql;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Where a task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Known, not started.
    Queued,
    /// An attempt is under way.
    Running {
        /// When the attempt started.
        started_at: Millis,
    },
    /// Finished; its output is stored.
    Done {
        /// When the successful attempt ended.
        finished_at: Millis,
        /// Wall time of the successful attempt.
        wall: Duration,
        /// Fuel the attempt consumed (wasmtime fuel units), when fuel was
        /// metered.
        fuel_used: Option<u64>,
        /// Where its output is.
        output: OutputRef,
    },
    /// Finished without an output.
    Failed {
        /// When the last attempt ended.
        finished_at: Millis,
        /// Wall time of the last attempt.
        wall: Duration,
        /// Why it failed.
        error: TaskError,
    },
    /// Will not run: the job was cancelled or stopped at an earlier failure.
    Cancelled {
        /// When it was cancelled.
        at: Millis,
    },
    /// Stopped before the end of its chunk, to be resumed (from its
    /// snapshot, if it has one).
    Suspended {
        /// When it stopped.
        at: Millis,
        /// Why it stopped.
        reason: SuspendReason,
    },
}

/// Why a task was suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuspendReason {
    /// Its fuel budget ran out: `wrun resume JOB --add-fuel N` goes on.
    Fuel,
    /// Its process was asked to stop (SIGTERM, SIGINT).
    Drain,
}

impl SuspendReason {
    /// The name stored in the journal and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            SuspendReason::Fuel => "fuel",
            SuspendReason::Drain => "drain",
        }
    }
}

impl FromStr for SuspendReason {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [SuspendReason::Fuel, SuspendReason::Drain]
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| format!("unknown suspend reason {text:?}"))
    }
}

/// A [`TaskState`] without its data: what filters and counts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStateKind {
    /// [`TaskState::Queued`].
    Queued,
    /// [`TaskState::Running`].
    Running,
    /// [`TaskState::Done`].
    Done,
    /// [`TaskState::Failed`].
    Failed,
    /// [`TaskState::Cancelled`].
    Cancelled,
    /// [`TaskState::Suspended`].
    Suspended,
}

impl TaskStateKind {
    /// Every kind, in the order of the life of a task.
    pub const ALL: [TaskStateKind; 6] = [
        TaskStateKind::Queued,
        TaskStateKind::Running,
        TaskStateKind::Suspended,
        TaskStateKind::Done,
        TaskStateKind::Failed,
        TaskStateKind::Cancelled,
    ];

    /// The name stored in the journal and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStateKind::Queued => "queued",
            TaskStateKind::Running => "running",
            TaskStateKind::Done => "done",
            TaskStateKind::Failed => "failed",
            TaskStateKind::Cancelled => "cancelled",
            TaskStateKind::Suspended => "suspended",
        }
    }
}

impl fmt::Display for TaskStateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStateKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| format!("unknown task state {text:?}"))
    }
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {index}: cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// The task's index.
    pub index: u64,
    /// The state it is in.
    pub from: TaskStateKind,
    /// The state it was to go to.
    pub to: TaskStateKind,
}

impl TaskState {
    /// The state's kind.
    pub fn kind(&self) -> TaskStateKind {
        match self {
            TaskState::Queued => TaskStateKind::Queued,
            TaskState::Running { .. } => TaskStateKind::Running,
            TaskState::Done { .. } => TaskStateKind::Done,
            TaskState::Failed { .. } => TaskStateKind::Failed,
            TaskState::Cancelled { .. } => TaskStateKind::Cancelled,
            TaskState::Suspended { .. } => TaskStateKind::Suspended,
        }
    }

    /// Whether the state machine allows going from `from` to `to`.
    pub fn allows(from: TaskStateKind, to: TaskStateKind) -> bool {
        use TaskStateKind::*;
        matches!(
            (from, to),
            (Queued, Running | Cancelled)
                | (Running, Done | Failed | Queued | Cancelled | Suspended)
                | (Suspended, Running | Queued | Cancelled)
                | (Failed | Cancelled, Queued)
        )
    }
}

/// Where a done task's output is: its digest and length always, its bytes
/// in the journal itself when small, else in the content-addressed store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRef {
    /// blake3 of the output.
    pub digest: [u8; 32],
    /// Its length in bytes.
    pub len: u64,
    /// The bytes are in the journal's `outputs` table (else in the store,
    /// named by `digest`).
    pub inline: bool,
}

/// Why a task failed, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    /// Its class.
    pub kind: FailureKind,
    /// The full message, as shown to users.
    pub message: String,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The classes of task failure. Each maps to one exit code of `wrun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The guest trapped (panic, out-of-bounds access, stack overflow, …).
    Trap,
    /// The fuel budget ran out.
    Fuel,
    /// The wall-clock budget ran out.
    Timeout,
    /// The memory or table limit was hit.
    Memory,
    /// The output limit was hit.
    OutputLimit,
    /// A command exited with a non-zero status.
    Exit,
    /// An SDK guest returned an error.
    Guest,
    /// The guest broke the ABI.
    Abi,
    /// The host failed running the task (retried up to `--retries`).
    Host,
    /// The task was running each time its host died, too often to try
    /// again (see [`crate::recover`]).
    Quarantined,
    /// The task spawned past a limit on spawning (depth, children per task,
    /// children in flight per job).
    SpawnLimit,
}

impl FailureKind {
    const ALL: [FailureKind; 11] = [
        FailureKind::Trap,
        FailureKind::Fuel,
        FailureKind::Timeout,
        FailureKind::Memory,
        FailureKind::OutputLimit,
        FailureKind::Exit,
        FailureKind::Guest,
        FailureKind::Abi,
        FailureKind::Host,
        FailureKind::Quarantined,
        FailureKind::SpawnLimit,
    ];

    /// The name stored in the journal and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Fuel => "fuel",
            FailureKind::Timeout => "timeout",
            FailureKind::Memory => "memory",
            FailureKind::OutputLimit => "output-limit",
            FailureKind::Exit => "exit",
            FailureKind::Guest => "guest",
            FailureKind::Abi => "abi",
            FailureKind::Host => "host",
            FailureKind::Quarantined => "quarantined",
            FailureKind::SpawnLimit => "spawn-limit",
        }
    }

    /// Whether running the task again can give another result. Guests are
    /// deterministic (frozen clock, seeded randomness, fuel), so only a
    /// failure of the host or of time itself is worth retrying.
    pub fn is_transient(self) -> bool {
        matches!(self, FailureKind::Host)
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| format!("unknown failure kind {text:?}"))
    }
}

/// Where a job stands, as recorded. Whether a `running` job's process is
/// still alive is not recorded but asked of its [`crate::JobLock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// A process runs it (or ran it and died: see [`crate::JobLock`]).
    Running,
    /// Every task is done.
    Done,
    /// It ended with failed tasks.
    Failed,
    /// `wrun cancel` stopped it.
    Cancelled,
    /// Some tasks are suspended (out of fuel, or drained): `wrun resume`
    /// goes on.
    Suspended,
}

impl JobState {
    const ALL: [JobState; 5] = [
        JobState::Running,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Suspended,
    ];

    /// The name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Suspended => "suspended",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| format!("unknown job state {text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_is_final_and_failures_can_be_retried() {
        use TaskStateKind::*;
        for to in TaskStateKind::ALL {
            assert!(!TaskState::allows(Done, to), "done -> {to}");
        }
        assert!(TaskState::allows(Queued, Running));
        assert!(TaskState::allows(Running, Done));
        assert!(TaskState::allows(Running, Queued));
        assert!(TaskState::allows(Failed, Queued));
        assert!(TaskState::allows(Cancelled, Queued));
        assert!(TaskState::allows(Running, Suspended));
        assert!(TaskState::allows(Suspended, Running));
        assert!(!TaskState::allows(Suspended, Done));
        assert!(!TaskState::allows(Queued, Suspended));
        assert!(!TaskState::allows(Queued, Done));
        assert!(!TaskState::allows(Failed, Done));
        assert!(!TaskState::allows(Queued, Queued));
    }

    #[test]
    fn names_round_trip() {
        for kind in TaskStateKind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        for kind in FailureKind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse(), Ok(state));
        }
        assert!("sleeping".parse::<TaskStateKind>().is_err());
    }
}
