//! Where tasks run.

use wrun_runtime::{Checkpointing, Chunk, Ended, TaskFailure, TaskRunner};

use crate::Task;

/// Something that runs tasks: the local pool here, a remote node later.
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
