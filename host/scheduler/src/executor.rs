//! Where tasks run.

use std::time::Duration;

use wrun_journal::Millis;
use wrun_runtime::{
    Checkpoint, Checkpointing, Chunk, Ended, Every, Requests, TaskFailure, TaskRunner,
};
use wrun_store::Digest;

use crate::chunker::Task;

/// Something that runs tasks: the local pool, or nodes through a broker.
///
/// The dispatcher starts one worker thread per slot; each calls
/// [`Executor::execute`] for one task at a time, so at most `slots()` calls
/// run at once.
pub trait Executor: Send + Sync {
    /// How many tasks may run at once.
    fn slots(&self) -> usize;

    /// Run one task to completion, or until `checkpointing` (when the job
    /// keeps snapshots) suspends it.
    fn execute(
        &self,
        task: &Task,
        checkpointing: Option<&Checkpointing<'_>>,
    ) -> Result<Ended, TaskFailure>;

    /// An executor that runs whole batches elsewhere (on remote nodes)
    /// returns itself here: each worker thread then hands it a batch at a
    /// time instead of one task, and `slots()` is the number of batches in
    /// flight.
    fn batches(&self) -> Option<&dyn BatchExecutor> {
        None
    }

    /// An executor that runs tasks in this process returns its runner
    /// here: the workers then drive tasks themselves, and a task that
    /// spawns children and waits ([`wrun_runtime::Progress::Waiting`]) has
    /// them run by the same workers. Without one, a task that waits fails.
    fn runner(&self) -> Option<&TaskRunner> {
        None
    }
}

/// How one task of a batch ended.
#[derive(Debug)]
pub struct BatchOutcome {
    /// Its end: finished or suspended, or how it failed.
    pub result: Result<Ended, TaskFailure>,
    /// When it started, in milliseconds since the epoch.
    pub started_at: Millis,
    /// How long it ran.
    pub wall: Duration,
    /// The node that ran it (`--name`); `None` when it ran here.
    pub node: Option<String>,
}

/// A dispatch of a task that died with the node running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostDispatch {
    /// The node's name.
    pub node: String,
    /// Why it is presumed dead ("node n1 was silent for 3 heartbeat
    /// intervals: presumed dead").
    pub reason: String,
    /// When the task was dispatched to it, in milliseconds since the epoch.
    pub started_at: Millis,
    /// When the node was found dead, in milliseconds since the epoch.
    pub ended_at: Millis,
    /// The task was queued again, for another dispatch. When false it is
    /// not sent again, and its outcome (a failure saying why) follows.
    pub requeued: bool,
}

/// What a batch executor reports to, and asks, while a batch runs.
pub trait BatchReport {
    /// Task `position` of the batch ended.
    fn done(&mut self, position: usize, outcome: BatchOutcome);
    /// A dispatch of task `position` died with its node, or its node
    /// drained and suspended it (reported before the task's outcome).
    fn lost(&mut self, position: usize, lost: LostDispatch);
    /// Task `position` was snapshotted and keeps running (or moves on to
    /// another node from this snapshot).
    fn checkpoint(&mut self, position: usize, checkpoint: Checkpoint);
    /// Asked at least every [`BatchReport::PATIENCE`] while waiting for
    /// results; false abandons the tasks not yet done (the job stopped).
    fn keep_waiting(&mut self) -> bool;
}

impl dyn BatchReport {
    /// How long a batch executor waits for results before asking again.
    pub const PATIENCE: Duration = Duration::from_millis(2);
}

/// How a batch's tasks are snapshotted, when the job keeps snapshots.
#[derive(Debug)]
pub struct BatchCheckpoints<'a> {
    /// Periodic snapshots, if any.
    pub every: Option<Every>,
    /// The job's snapshot requests (`wrun snapshot JOB`), relayed to the
    /// tasks wherever they run.
    pub requests: &'a Requests,
    /// Each task's snapshot to continue from, by position in the batch.
    pub resume: Vec<Option<Digest>>,
}

/// Runs batches of tasks, reporting each task's outcome as it arrives.
pub trait BatchExecutor: Send + Sync {
    /// Run `tasks`, reporting each one's outcome once, with its position in
    /// `tasks`, in any order; snapshotted as `checkpoints` says (a task out
    /// of fuel then ends suspended). Tasks not reported when it returns
    /// were abandoned because [`BatchReport::keep_waiting`] said so.
    fn execute_batch(
        &self,
        tasks: &[Task],
        checkpoints: Option<&BatchCheckpoints<'_>>,
        report: &mut dyn BatchReport,
    );
}

/// Runs tasks on this machine's cores, in the sandbox.
#[derive(Debug)]
pub struct LocalExecutor {
    runner: TaskRunner,
    workers: usize,
}

impl LocalExecutor {
    /// `workers` threads (at least one) running `runner`'s module.
    pub fn new(runner: TaskRunner, workers: usize) -> Self {
        LocalExecutor {
            runner,
            workers: workers.max(1),
        }
    }
}

impl Executor for LocalExecutor {
    fn slots(&self) -> usize {
        self.workers
    }

    fn execute(
        &self,
        task: &Task,
        checkpointing: Option<&Checkpointing<'_>>,
    ) -> Result<Ended, TaskFailure> {
        let chunk = Chunk {
            data: &task.data,
            records: &task.records,
        };
        match checkpointing {
            Some(checkpointing) => self.runner.run_checkpointed(chunk, checkpointing),
            None => self.runner.run(chunk).map(Ended::Finished),
        }
    }

    fn runner(&self) -> Option<&TaskRunner> {
        Some(&self.runner)
    }
}
