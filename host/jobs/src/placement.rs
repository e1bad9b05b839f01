//! Where a job's tasks run: [`Local`] cores, or whatever a [`Placement`]
//! builds (the broker's nodes).

use wrun_journal::JobSpec;
use wrun_runtime::TaskRunner;
use wrun_scheduler::{Executor, LocalExecutor};

use crate::error::Result;

/// Where a job's tasks run: this process's cores, or a broker's nodes.
pub trait Placement {
    /// Task instances this process needs at once (the runtime's pool size,
    /// the splitter aside).
    fn local_slots(&self) -> usize;

    /// The executor for a job of `spec`, whose task `runner` this process
    /// admitted.
    ///
    /// # Errors
    ///
    /// Whatever makes the job impossible to place.
    fn executor(&self, spec: &JobSpec, runner: TaskRunner) -> Result<Box<dyn Executor>>;
}

/// Tasks run on this machine, `workers` at a time.
#[derive(Debug, Clone, Copy)]
pub struct Local {
    /// Worker threads (and task instances) at once.
    pub workers: usize,
}

impl Local {
    /// `workers` workers, or one per core.
    pub fn new(workers: Option<u32>) -> Self {
        let workers = match workers {
            Some(n) => n as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Local { workers }
    }
}

impl Placement for Local {
    fn local_slots(&self) -> usize {
        self.workers
    }

    fn executor(&self, _: &JobSpec, runner: TaskRunner) -> Result<Box<dyn Executor>> {
        Ok(Box::new(LocalExecutor::new(runner, self.workers)))
    }
}
