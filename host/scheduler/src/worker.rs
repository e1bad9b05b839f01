//! Worker threads: run batches of tasks, retrying host failures.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use wrun_journal::Millis;

use crate::dispatch::{Done, Event, TaskMeta};
use crate::pace::Pace;
use crate::record::{Checkpoints, Prior, RetriedAttempt};
use crate::{BatchExecutor, Executor, Task};
use wrun_runtime::{Checkpoint, Checkpointing, Failure, TaskFailure};
use wrun_store::{BlobStore, Digest};

/// What every worker thread shares.
pub(crate) struct Worker<'a> {
    pub(crate) executor: &'a dyn Executor,
    pub(crate) retries: u32,
    pub(crate) recording: bool,
    pub(crate) skip_from: &'a AtomicU64,
    pub(crate) pace: &'a Pace,
    /// Snapshots of running tasks, when the job is recorded: where they
    /// go, the policy, and the snapshots earlier runs left.
    pub(crate) checkpoints: Option<(&'a BlobStore, &'a Checkpoints, &'a Prior)>,
}

impl Worker<'_> {
    /// Finished tasks are sent on at least this often.
    const REPORT_EVERY: Duration = Duration::from_millis(2);

    /// Run batches of tasks until the queue closes.
    pub(crate) fn work(&self, batches: &Receiver<Vec<Task>>, events: &Sender<Event>) {
        for batch in batches {
            if self.recording {
                let indices = batch.iter().map(|t| t.index).collect();
                if events
                    .send(Event::Started(indices, wrun_journal::now()))
                    .is_err()
                {
                    return;
                }
            }
            if let Some(remote) = self.executor.batches() {
                if !self.run_batch(remote, batch, events) {
                    return;
                }
                continue;
            }
            let mut done = Vec::with_capacity(batch.len());
            let mut reported = Instant::now();
            for task in batch {
                if task.index >= self.skip_from.load(Ordering::Acquire) {
                    continue;
                }
                done.push(self.run(&task, events));
                // Slow tasks are reported as they finish, not with their
                // whole batch.
                if reported.elapsed() >= Self::REPORT_EVERY {
                    if events.send(Event::Done(std::mem::take(&mut done))).is_err() {
                        return;
                    }
                    reported = Instant::now();
                }
            }
            if !done.is_empty() && events.send(Event::Done(done)).is_err() {
                return;
            }
        }
    }

    /// Run a batch on a batch executor, retrying failures that may not
    /// recur in further batches. False once the dispatcher is gone.
    fn run_batch(
        &self,
        remote: &dyn BatchExecutor,
        batch: Vec<Task>,
        events: &Sender<Event>,
    ) -> bool {
        let skip_from = self.skip_from.load(Ordering::Acquire);
        let mut tasks: Vec<Task> = batch.into_iter().filter(|t| t.index < skip_from).collect();
        let mut retried: HashMap<u64, Vec<RetriedAttempt>> = HashMap::new();
        let mut done = Vec::with_capacity(tasks.len());
        let mut reported = Instant::now();
        let mut open = true;
        while !tasks.is_empty() {
            let mut again = Vec::new();
            remote.execute_batch(&tasks, &mut |position, outcome| {
                let task = &tasks[position];
                self.pace.observe(outcome.wall, task.data.len() as u64);
                let attempts = retried.entry(task.index).or_default();
                match outcome.result {
                    Err(failure)
                        if crate::failure_kind(&failure.reason).is_transient()
                            && attempts.len() < self.retries as usize =>
                    {
                        attempts.push(RetriedAttempt {
                            started_at: outcome.started_at,
                            ended_at: outcome.started_at + outcome.wall.as_millis() as Millis,
                            failure,
                        });
                        again.push(position);
                    }
                    result => {
                        done.push(Done {
                            meta: TaskMeta::of(task),
                            result,
                            started_at: outcome.started_at,
                            wall: outcome.wall,
                            retried: retried.remove(&task.index).unwrap_or_default(),
                        });
                        if open && reported.elapsed() >= Self::REPORT_EVERY {
                            open = events.send(Event::Done(std::mem::take(&mut done))).is_ok();
                            reported = Instant::now();
                        }
                    }
                }
            });
            again.sort_unstable();
            tasks = again.into_iter().map(|p| tasks[p].clone()).collect();
        }
        open && (done.is_empty() || events.send(Event::Done(done)).is_ok())
    }

    /// Run one task, retrying failures that may not recur.
    fn run(&self, task: &Task, events: &Sender<Event>) -> Done {
        let index = task.index;
        let on_checkpoint = |checkpoint: Checkpoint| {
            let _ = events.send(Event::Checkpoint(index, checkpoint));
        };
        let checkpointing = self
            .checkpoints
            .map(|(store, checkpoints, prior)| Checkpointing {
                store,
                resume: prior.snapshot(index).map(Digest::from_bytes),
                every: checkpoints.every,
                requests: &checkpoints.requests,
                suspend_on_fuel: true,
                on_checkpoint: &on_checkpoint,
            });
        let mut retried = Vec::new();
        loop {
            let started_at = wrun_journal::now();
            let clock = Instant::now();
            // A panic in the host (a bug) fails this task, not the job: a
            // lost worker would leave the window waiting for its tasks.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.executor.execute(task, checkpointing.as_ref())
            }))
            .unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                Err(TaskFailure {
                    reason: Failure::Host {
                        message: format!("the host panicked running the task: {message}"),
                    },
                    log: Vec::new(),
                })
            });
            let wall = clock.elapsed();
            self.pace.observe(wall, task.data.len() as u64);
            match result {
                Err(failure)
                    if crate::failure_kind(&failure.reason).is_transient()
                        && retried.len() < self.retries as usize =>
                {
                    retried.push(RetriedAttempt {
                        started_at,
                        ended_at: started_at + wall.as_millis() as Millis,
                        failure,
                    });
                }
                result => {
                    return Done {
                        meta: TaskMeta::of(task),
                        result,
                        started_at,
                        wall,
                        retried,
                    };
                }
            }
        }
    }
}
