//! Where tasks run.

use std::time::Duration;

use wrun_journal::Millis;
use wrun_runtime::{Checkpointing, Chunk, Ended, TaskFailure, TaskRunner};

use crate::Task;

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
    /// flight. Such tasks are not snapshotted.
    fn batches(&self) -> Option<&dyn BatchExecutor> {
        None
    }
}

/// How one task of a batch ended.
#[derive(Debug)]
pub struct BatchOutcome {
    pub result: Result<Ended, TaskFailure>,
    /// When it started, in milliseconds since the epoch.
    pub started_at: Millis,
    /// How long it ran.
    pub wall: Duration,
}

/// Runs batches of tasks, reporting each task's outcome as it arrives.
pub trait BatchExecutor: Send + Sync {
    /// Run `tasks`; call `done` exactly once per task, with its position in
    /// `tasks`, in any order, before returning.
    fn execute_batch(&self, tasks: &[Task], done: &mut dyn FnMut(usize, BatchOutcome));
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
}
