//! Worker threads: run batches of tasks, retrying host failures.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use wrun_journal::Millis;

use wrun_runtime::{Checkpoint, Checkpointing, Ended, Failure, TaskFailure};

mod tree;
use wrun_store::{BlobStore, Digest};

use crate::chunker::Task;
use crate::event::{Done, Event, RetriedAttempt, TaskMeta};
use crate::executor::{
    BatchCheckpoints, BatchExecutor, BatchOutcome, BatchReport, Executor, LostDispatch,
};
use crate::failure::failure_kind;
use crate::nest::Nest;
use crate::pace::Pace;
use crate::record::{Checkpoints, Prior};

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
    /// Children and waiting parents, when tasks run in this process.
    pub(crate) nest: Option<&'a Nest>,
}

impl Worker<'_> {
    /// Finished tasks are sent on at least this often.
    const REPORT_EVERY: Duration = Duration::from_millis(2);

    /// Run batches of tasks until the queue closes.
    pub(crate) fn work(&self, batches: &Receiver<Vec<Task>>, events: &Sender<Event>) {
        // A task that cannot spawn never waits: it takes the plain path,
        // without the tree's bookkeeping.
        let spawning = self.executor.runner().filter(|runner| runner.spawns());
        if let (Some(nest), Some(runner)) = (self.nest, spawning) {
            return self.work_tree(nest, runner, batches, events);
        }
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
        let mut sending = Sending::new(events);
        while !tasks.is_empty() && sending.open {
            let mut report = Reporter {
                worker: self,
                tasks: &tasks,
                again: Vec::new(),
                sending: &mut sending,
            };
            let checkpoints = self
                .checkpoints
                .map(|(_, checkpoints, prior)| BatchCheckpoints {
                    every: checkpoints.every,
                    requests: &checkpoints.requests,
                    resume: tasks
                        .iter()
                        .map(|t| prior.snapshot(t.index).map(Digest::from_bytes))
                        .collect(),
                });
            remote.execute_batch(&tasks, checkpoints.as_ref(), &mut report);
            let again = report.again;
            tasks = again.into_iter().map(|p| tasks[p].clone()).collect();
        }
        sending.flush();
        sending.open
    }

    /// Run one task, retrying failures that may not recur.
    fn run(&self, task: &Task, events: &Sender<Event>) -> Done {
        let index = task.index;
        let on_checkpoint = |checkpoint: Checkpoint| {
            let _ = events.send(Event::Checkpoint(index, checkpoint));
        };
        let checkpointing = self.checkpointing(index, true, &on_checkpoint);
        let mut retried = Vec::new();
        loop {
            let started_at = wrun_journal::now();
            let clock = Instant::now();
            // A panic in the host (a bug) fails this task, not the job: a
            // lost worker would leave the window waiting for its tasks.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.executor.execute(task, checkpointing.as_ref())
            }))
            .unwrap_or_else(|panic| Err(host_panic(panic)));
            let wall = clock.elapsed();
            match self.attempt_ended(task, (started_at, wall), result, retried) {
                Attempt::Again(again) => retried = again,
                Attempt::Done(done) => return done,
            }
        }
    }

    /// An attempt at `task` that started at `started_at`, took `wall` and
    /// ended with `result`, after the attempts in `retried`: observed by
    /// the pace, then run again when it failed in a way that may not recur
    /// and retries are left (the failure added to `retried`), else done.
    fn attempt_ended(
        &self,
        task: &Task,
        (started_at, wall): (Millis, Duration),
        result: Result<Ended, TaskFailure>,
        mut retried: Vec<RetriedAttempt>,
    ) -> Attempt {
        self.pace.observe(wall, task.data.len() as u64, task.weight);
        match result {
            Err(failure)
                if failure_kind(&failure.reason).is_transient()
                    && retried.len() < self.retries as usize =>
            {
                retried.push(RetriedAttempt {
                    started_at,
                    ended_at: started_at + wall.as_millis() as Millis,
                    failure,
                    node: None,
                });
                Attempt::Again(retried)
            }
            result => Attempt::Done(Done {
                meta: TaskMeta::of(task),
                result,
                started_at,
                wall,
                retried,
                node: None,
            }),
        }
    }
}

/// What follows an attempt ([`Worker::attempt_ended`]).
// Returned by value and matched at once, never stored: boxing `Done` would
// cost an allocation per task.
#[allow(clippy::large_enum_variant)]
enum Attempt {
    /// Run the task again, after these failed attempts.
    Again(Vec<RetriedAttempt>),
    /// The task is done.
    Done(Done),
}

impl<'a> Worker<'a> {
    /// How chunk `index` is checkpointed, when the job keeps snapshots:
    /// from the snapshot an earlier run left when `from_prior`.
    fn checkpointing<'c>(
        &self,
        index: u64,
        from_prior: bool,
        on_checkpoint: &'c (dyn Fn(Checkpoint) + Sync),
    ) -> Option<Checkpointing<'c>>
    where
        'a: 'c,
    {
        self.checkpoints
            .map(|(store, checkpoints, prior)| Checkpointing {
                store,
                resume: prior
                    .snapshot(index)
                    .filter(|_| from_prior)
                    .map(Digest::from_bytes),
                every: checkpoints.every,
                requests: &checkpoints.requests,
                suspend_on_fuel: true,
                on_checkpoint,
            })
    }
}

/// The failure of a task during which the host panicked (a bug).
fn host_panic(panic: Box<dyn std::any::Any + Send>) -> TaskFailure {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned());
    TaskFailure {
        reason: Failure::Host {
            message: format!("the host panicked running the task: {message}"),
        },
        log: Vec::new(),
    }
}

/// Finished tasks of a worker's batches on their way to the dispatcher,
/// sent on at least every [`Worker::REPORT_EVERY`].
struct Sending<'e> {
    events: &'e Sender<Event>,
    /// Failed attempts of tasks to run again, by chunk index.
    retried: HashMap<u64, Vec<RetriedAttempt>>,
    done: Vec<Done>,
    reported: Instant,
    /// False once the dispatcher is gone.
    open: bool,
}

impl<'e> Sending<'e> {
    fn new(events: &'e Sender<Event>) -> Self {
        Sending {
            events,
            retried: HashMap::new(),
            done: Vec::new(),
            reported: Instant::now(),
            open: true,
        }
    }

    fn flush(&mut self) {
        if self.open && !self.done.is_empty() {
            self.open = self
                .events
                .send(Event::Done(std::mem::take(&mut self.done)))
                .is_ok();
        }
        self.reported = Instant::now();
    }

    fn flush_due(&mut self) {
        if self.reported.elapsed() >= Worker::REPORT_EVERY {
            self.flush();
        }
    }
}

/// A worker's side of one round of a batch on a batch executor.
struct Reporter<'r, 'a, 'e> {
    worker: &'r Worker<'a>,
    tasks: &'r [Task],
    /// Positions in `tasks` to run again.
    again: Vec<usize>,
    sending: &'r mut Sending<'e>,
}

impl BatchReport for Reporter<'_, '_, '_> {
    fn done(&mut self, position: usize, outcome: BatchOutcome) {
        let task = &self.tasks[position];
        self.worker
            .pace
            .observe(outcome.wall, task.data.len() as u64, task.weight);
        let attempts = self.sending.retried.entry(task.index).or_default();
        match outcome.result {
            Err(failure)
                if failure_kind(&failure.reason).is_transient()
                    && attempts.len() < self.worker.retries as usize =>
            {
                attempts.push(RetriedAttempt {
                    started_at: outcome.started_at,
                    ended_at: outcome.started_at + outcome.wall.as_millis() as Millis,
                    failure,
                    node: outcome.node,
                });
                self.again.push(position);
            }
            result => {
                let retried = self.sending.retried.remove(&task.index).unwrap_or_default();
                self.sending.done.push(Done {
                    meta: TaskMeta::of(task),
                    result,
                    started_at: outcome.started_at,
                    wall: outcome.wall,
                    retried,
                    node: outcome.node,
                });
                self.sending.flush_due();
            }
        }
    }

    fn lost(&mut self, position: usize, lost: LostDispatch) {
        if self.worker.recording && self.sending.open {
            let index = self.tasks[position].index;
            self.sending.open = self.sending.events.send(Event::Lost(index, lost)).is_ok();
        }
    }

    fn checkpoint(&mut self, position: usize, checkpoint: Checkpoint) {
        if self.sending.open {
            let index = self.tasks[position].index;
            self.sending.open = self
                .sending
                .events
                .send(Event::Checkpoint(index, checkpoint))
                .is_ok();
        }
    }

    fn keep_waiting(&mut self) -> bool {
        self.sending.flush_due();
        // Tasks of a batch are in input order: once the job stopped before
        // the first, none of them is wanted.
        let first = self.tasks.first().map_or(u64::MAX, |t| t.index);
        self.sending.open && first < self.worker.skip_from.load(Ordering::Acquire)
    }
}
