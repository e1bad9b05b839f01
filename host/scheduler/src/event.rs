//! What the reader and the workers tell the dispatcher: the closed
//! [`Event`] enum and what its variants carry.

use std::time::Duration;

use wrun_journal::{ChunkPos, Millis};
use wrun_runtime::{Checkpoint, Ended, TaskFailure};

use crate::chunker::Task;
use crate::error::JobError;
use crate::executor::LostDispatch;

/// Messages to the dispatcher.
pub(crate) enum Event {
    /// The reader queued these tasks (sent only when recording).
    Queued(Vec<TaskMeta>),
    /// A worker took these tasks (sent only when recording).
    Started(Vec<u64>, Millis),
    /// A worker finished a batch of tasks.
    Done(Vec<Done>),
    /// An earlier run of the job finished this task.
    Restored(TaskMeta),
    /// A running task was snapshotted.
    Checkpoint(u64, Checkpoint),
    /// A dispatch of a running task died with its node (sent only when
    /// recording).
    Lost(u64, LostDispatch),
    /// The reader stopped: the input ended after this many tasks, or
    /// failed.
    InputEnd(Result<Option<u64>, JobError>),
}

/// A task a worker finished.
pub(crate) struct Done {
    pub(crate) meta: TaskMeta,
    pub(crate) result: Result<Ended, TaskFailure>,
    /// When the last attempt started, and how long it ran.
    pub(crate) started_at: Millis,
    pub(crate) wall: Duration,
    /// Earlier attempts of this run that failed and were retried.
    pub(crate) retried: Vec<RetriedAttempt>,
    /// The node that ran the last attempt; `None` when it ran here.
    pub(crate) node: Option<String>,
}

/// A task's identity, kept once its data has been dropped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskMeta {
    pub(crate) index: u64,
    pub(crate) pos: ChunkPos,
}

impl TaskMeta {
    pub(crate) fn of(task: &Task) -> Self {
        TaskMeta {
            index: task.index,
            pos: task.pos(),
        }
    }
}

/// One attempt that failed and was retried.
pub(crate) struct RetriedAttempt {
    pub(crate) started_at: Millis,
    pub(crate) ended_at: Millis,
    pub(crate) failure: TaskFailure,
    /// The node it ran on; `None` when it ran here.
    pub(crate) node: Option<String>,
}
