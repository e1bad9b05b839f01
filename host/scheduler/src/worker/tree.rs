//! A worker's loop when tasks run in this process, where a task may spawn
//! children and wait for them: children and resumable parents (the
//! [`Nest`]) go before new root chunks, and a waiting task holds no
//! worker.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use wrun_journal::Millis;
use wrun_runtime::{Chunk, Ended, Failure, Progress, TaskFailure, TaskRunner, Waiting};

use super::{Attempt, Sending, Worker, host_panic};
use crate::chunker::Task;
use crate::event::{Event, RetriedAttempt};
use crate::nest::{Nest, Owner, Ready, Root, Waiter, Work};

/// How often an idle worker with no more roots to take looks again at
/// whether the job's roots have all ended (it is also woken when they
/// do, and whenever work is queued).
const IDLE_CHECK: Duration = Duration::from_millis(100);

impl Worker<'_> {
    /// Run root chunks from `batches` and the work of their trees until
    /// the queue closes and every root has ended.
    pub(super) fn work_tree(
        &self,
        nest: &Nest,
        runner: &TaskRunner,
        batches: &Receiver<Vec<Task>>,
        events: &Sender<Event>,
    ) {
        let mut sending = Sending::new(events);
        let mut open = true;
        while sending.open && !nest.closed() {
            if let Some(work) = nest.pop() {
                self.work_on(nest, work, &mut sending);
                sending.flush_due();
                continue;
            }
            // Nothing is held back while this worker waits.
            sending.flush();
            if !open {
                if nest.live.load(Ordering::Acquire) == 0 {
                    break;
                }
                let _ = nest.wake_rx.recv_timeout(IDLE_CHECK);
                continue;
            }
            crossbeam_channel::select! {
                recv(batches) -> batch => match batch {
                    Ok(batch) => self.start_batch(nest, runner, batch, &mut sending),
                    Err(_) => open = false,
                },
                recv(nest.wake_rx) -> _ => {}
            }
        }
        sending.flush();
        if !sending.open {
            nest.close();
        }
    }

    /// Start a batch's root chunks, serving the trees between two of them.
    fn start_batch(
        &self,
        nest: &Nest,
        runner: &TaskRunner,
        batch: Vec<Task>,
        sending: &mut Sending<'_>,
    ) {
        if self.recording {
            let indices = batch.iter().map(|t| t.index).collect();
            sending.open = sending
                .events
                .send(Event::Started(indices, wrun_journal::now()))
                .is_ok();
        }
        for task in batch {
            while let Some(work) = nest.pop() {
                self.work_on(nest, work, sending);
            }
            if !sending.open || task.index >= self.skip_from.load(Ordering::Acquire) {
                nest.root_ended();
                continue;
            }
            self.start_root(nest, runner, task, Vec::new(), sending);
            sending.flush_due();
        }
    }

    /// Run a root chunk from its start (or its snapshot), after `retried`
    /// failed attempts.
    fn start_root(
        &self,
        nest: &Nest,
        runner: &TaskRunner,
        task: Task,
        retried: Vec<RetriedAttempt>,
        sending: &mut Sending<'_>,
    ) {
        let index = task.index;
        let events = sending.events;
        let on_checkpoint = |checkpoint| {
            let _ = events.send(Event::Checkpoint(index, checkpoint));
        };
        let checkpointing = self.checkpointing(index, true, &on_checkpoint);
        let started_at = wrun_journal::now();
        let clock = Instant::now();
        let chunk = Chunk {
            data: &task.data,
            records: &task.records,
        };
        let progress = guarded(|| runner.start(chunk, checkpointing.as_ref(), nest.limits.root()));
        let wall = clock.elapsed();
        let result = match progress {
            Ok(Progress::Waiting(waiting)) => {
                let root = Root::new(task, started_at, wall, retried);
                let owner = Owner::Root(Arc::clone(&root));
                self.wait(nest, owner, root, runner.clone(), waiting, sending);
                return;
            }
            Ok(Progress::Ended(ended)) => Ok(ended),
            Err(failure) => Err(failure),
        };
        self.root_done(
            nest,
            runner,
            task,
            (started_at, wall),
            retried,
            result,
            sending,
        );
    }

    /// A root chunk ended: retry a failure that may not recur, else
    /// report it.
    #[allow(clippy::too_many_arguments)]
    fn root_done(
        &self,
        nest: &Nest,
        runner: &TaskRunner,
        task: Task,
        (started_at, wall): (Millis, Duration),
        retried: Vec<RetriedAttempt>,
        result: Result<Ended, TaskFailure>,
        sending: &mut Sending<'_>,
    ) {
        match self.attempt_ended(&task, (started_at, wall), result, retried) {
            Attempt::Again(retried) => self.start_root(nest, runner, task, retried, sending),
            Attempt::Done(done) => {
                sending.done.push(done);
                nest.root_ended();
            }
        }
    }

    /// Run a child, or resume a parent whose children are done.
    fn work_on(&self, nest: &Nest, work: Work, sending: &mut Sending<'_>) {
        let root = Arc::clone(work.root());
        if root.task.index >= self.skip_from.load(Ordering::Acquire) {
            // The job stopped before this tree's root: drop it.
            if root.abandon() {
                nest.root_ended();
            }
            if let Work::Child { .. } = work {
                nest.child_left();
            }
            return;
        }
        match work {
            Work::Child {
                parent,
                slot,
                spawn,
            } => {
                let runner = parent.runner.for_child(&spawn);
                let chunk = Chunk {
                    data: &spawn.input,
                    records: &[0],
                };
                let progress = guarded(|| runner.start(chunk, None, parent.nesting.child()));
                let owner = Owner::Child { parent, slot };
                self.advance(nest, owner, root, runner, progress, sending);
            }
            Work::Resume(waiter) => match waiter.ready() {
                Ready::Fail(failure) => self.end(nest, waiter.owner.clone(), Err(failure), sending),
                Ready::Resume(waiting, results) => {
                    let index = root.task.index;
                    let events = sending.events;
                    let on_checkpoint = |checkpoint| {
                        let _ = events.send(Event::Checkpoint(index, checkpoint));
                    };
                    // Only a root is checkpointed (children are not
                    // journaled); it goes on live, not from a snapshot.
                    let checkpointing = match waiter.owner {
                        Owner::Root(_) => self.checkpointing(index, false, &on_checkpoint),
                        Owner::Child { .. } => None,
                    };
                    let clock = Instant::now();
                    let progress = guarded(|| {
                        waiter
                            .runner
                            .resume(waiting, results, checkpointing.as_ref())
                    });
                    if let Owner::Root(root) = &waiter.owner {
                        root.add_wall(clock.elapsed());
                    }
                    let runner = waiter.runner.clone();
                    self.advance(nest, waiter.owner.clone(), root, runner, progress, sending);
                }
            },
        }
    }

    /// Where a task's run got to: a wait, or its end.
    fn advance(
        &self,
        nest: &Nest,
        owner: Owner,
        root: Arc<Root>,
        runner: TaskRunner,
        progress: Result<Progress, TaskFailure>,
        sending: &mut Sending<'_>,
    ) {
        match progress {
            Ok(Progress::Waiting(waiting)) => {
                self.wait(nest, owner, root, runner, waiting, sending)
            }
            Ok(Progress::Ended(ended)) => self.end(nest, owner, Ok(ended), sending),
            Err(failure) => self.end(nest, owner, Err(failure), sending),
        }
    }

    /// Park a waiting task and queue its children, or fail it when they
    /// are more than the job may have in flight.
    fn wait(
        &self,
        nest: &Nest,
        owner: Owner,
        root: Arc<Root>,
        runner: TaskRunner,
        waiting: Waiting,
        sending: &mut Sending<'_>,
    ) {
        let waiter = Waiter::new(owner, root, runner, waiting);
        if let Err(limit) = nest.queue_children(&waiter) {
            let failure = TaskFailure {
                reason: Failure::SpawnLimit { limit },
                log: Vec::new(),
            };
            self.end(nest, waiter.owner.clone(), Err(failure), sending);
        }
    }

    /// A task of a tree ended: a root's outcome is reported, a child's
    /// result goes to its parent's slot (a failure past a spawn limit
    /// fails the parent too: limits are the job's, not the parent's to
    /// overlook).
    fn end(
        &self,
        nest: &Nest,
        owner: Owner,
        result: Result<Ended, TaskFailure>,
        sending: &mut Sending<'_>,
    ) {
        match owner {
            Owner::Root(root) => {
                let (wall, retried) = root.take_run();
                let runner = self
                    .executor
                    .runner()
                    .expect("a tree runs only with a local runner");
                let task = root.task.clone();
                let started_at = root.started_at;
                self.root_done(
                    nest,
                    runner,
                    task,
                    (started_at, wall),
                    retried,
                    result,
                    sending,
                );
            }
            Owner::Child { parent, slot } => {
                let delivered = match result {
                    Ok(Ended::Finished(output)) => Ok(Ok(output.output)),
                    Ok(Ended::Suspended(_)) => Ok(Err(
                        "the child was suspended, which a child run is not".to_owned(),
                    )),
                    Err(failure) if matches!(failure.reason, Failure::SpawnLimit { .. }) => {
                        Err(failure)
                    }
                    Err(failure) => Ok(Err(failure.to_string())),
                };
                nest.child_left();
                if parent.child_done(slot, delivered) {
                    nest.push_resume(parent);
                }
            }
        }
    }
}

/// Run `f`, a panic in the host (a bug) failing the task, not the job.
fn guarded(f: impl FnOnce() -> Result<Progress, TaskFailure>) -> Result<Progress, TaskFailure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| Err(host_panic(p)))
}
