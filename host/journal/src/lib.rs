//! The job journal: every job, task and attempt, and their states, in one
//! SQLite database under `WRUN_HOME`, so that nothing done is ever lost.
//!
//! * [`Journal`] opens the database (WAL, `synchronous=FULL`), migrates its
//!   schema (module `schema`), and reads and writes jobs; a [`Batch`] of task
//!   changes is committed in one transaction (group commit), which is what
//!   keeps the cost per task in microseconds.
//! * [`TaskState`] is the task state machine (every change of many tasks'
//!   states at once in SQL is derived from [`TaskState::allows`]);
//!   [`JobState`] a job's.
//! * [`JobSpec`] is what a job is, enough to run it again identically.
//! * [`JobLock`] tells a running job from an interrupted one.
//! * [`AttemptRecord`] is an attempt worth telling about, [`AttemptEnd`]
//!   how it ended (done, failed, or lost with its process or node).
//! * [`QueueRow`] and [`AllocationRow`] are a broker's allocation queues
//!   and their batch jobs (`wrun alloc`).
//! * [`TaskTotals`] is a job's finished tasks in sum (wall-time histogram,
//!   output bytes), for the dashboard's metrics.
//! * [`recover`] holds every rule for what a crash leaves behind.
//! * Module `blobs` tracks which snapshot blobs each task still needs, so
//!   that superseded ones are deleted.
//!
//! The crate knows nothing of WebAssembly, networks or the command line.

#![warn(missing_docs)]

mod alloc;
mod attempt;
mod blobs;
mod chunk;
mod journal;
mod lock;
mod recovery;
mod schema;
mod spec;
mod state;
mod totals;

pub use alloc::{AllocationRow, QueueRow};
pub use attempt::{AttemptEnd, AttemptRecord};
pub use chunk::ChunkPos;
pub use journal::{Batch, Committed, JobId, JobRecord, Journal, JournalError, TaskCounts, now};
pub use lock::JobLock;
pub use recovery::{PROCESS_DIED, QUARANTINE_AFTER, Recovery, recover};
pub use spec::{
    CheckpointEvery, DataRef, InflateLimits, InputRef, JobSpec, LimitsSpec, ModuleRef, Pairs,
    SpawnSpec,
};
pub use state::{
    FailureKind, IllegalTransition, JobState, Millis, OutputRef, SuspendReason, TaskError,
    TaskState, TaskStateKind,
};
pub use totals::TaskTotals;

/// A task as the journal records it: its place in the input, its counters,
/// and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    /// Position of the chunk in the input, from 0.
    pub index: u64,
    /// Where the chunk lies in the input.
    pub pos: ChunkPos,
    /// Attempts started so far.
    pub attempts: u32,
    /// Times its host died while it was running.
    pub lost: u32,
    /// Where it ran last (`None`: this machine).
    pub node: Option<String>,
    /// Its state, with that state's data.
    pub state: TaskState,
    /// Its latest snapshot, if one was taken and it has not finished.
    pub snapshot: Option<SnapshotRef>,
    /// The snapshot its latest attempt resumed from, when it moved to
    /// another node from one (its node drained, died or was killed).
    pub resumed_from: Option<SnapshotRef>,
}

/// A snapshot of a running task, kept in the content-addressed store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    /// The snapshot blob's digest.
    pub digest: [u8; 32],
    /// When it was taken.
    pub taken_at: Millis,
    /// Where in its chunk the task was, for people ("before record 12").
    pub position: String,
    /// Fuel used up to the snapshot (wasmtime fuel units), when metered.
    pub fuel_used: Option<u64>,
}

impl TaskRow {
    /// Move to `to`, if the state machine allows it.
    pub fn transition(&mut self, to: TaskState) -> Result<(), IllegalTransition> {
        let (from, to_kind) = (self.state.kind(), to.kind());
        if !TaskState::allows(from, to_kind) {
            return Err(IllegalTransition {
                index: self.index,
                from,
                to: to_kind,
            });
        }
        self.state = to;
        Ok(())
    }
}
