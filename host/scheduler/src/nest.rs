//! Tasks that spawn tasks, run by the workers of this process: the queue
//! of children and waiting parents that workers serve before new root
//! chunks, and the tree of waiting tasks.
//!
//! A task that returns `WAIT` holds no worker: its parked instance goes
//! into a [`Waiter`], its children onto the [`Nest`]'s stack (last in,
//! first out, so the deepest work goes first and the number of parked
//! tasks stays near workers × depth), and the worker moves on. Each
//! child's result lands in its parent's slot, by spawn index; the last
//! one puts the parent back on the stack, to be resumed by whichever
//! worker is free. Only a root's end leaves the tree, as the root chunk's
//! outcome.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use wrun_journal::Millis;
use wrun_runtime::{ChildResult, Nesting, Spawn, SpawnLimit, TaskFailure, TaskRunner, Waiting};

use crate::chunker::Task;
use crate::event::RetriedAttempt;

/// Limits on spawning, for a whole job (`wrun submit --max-spawn-depth`,
/// `--max-children`, `--max-children-in-flight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnLimits {
    /// Deepest a child may be (a root chunk is depth 0).
    pub max_depth: u32,
    /// Most children one task may spawn over its run.
    pub max_children: u32,
    /// Most children of the job queued, running or waiting at once.
    pub max_in_flight: u32,
}

impl SpawnLimits {
    /// Default most children in flight per job: 100,000 (each queued child
    /// holds its input; a parked parent holds an instance).
    pub const DEFAULT_MAX_IN_FLIGHT: u32 = 100_000;

    /// A root task's nesting under these limits.
    pub fn root(&self) -> Nesting {
        Nesting {
            depth: 0,
            max_depth: self.max_depth,
            max_children: self.max_children,
        }
    }
}

impl Default for SpawnLimits {
    fn default() -> Self {
        SpawnLimits {
            max_depth: Nesting::DEFAULT_MAX_DEPTH,
            max_children: Nesting::DEFAULT_MAX_CHILDREN,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// What a worker can do for the tree: run a child, or resume a parent
/// whose children are all done.
pub(crate) enum Work {
    Child {
        parent: Arc<Waiter>,
        slot: usize,
        spawn: Spawn,
    },
    Resume(Arc<Waiter>),
}

impl Work {
    pub(crate) fn root(&self) -> &Arc<Root> {
        match self {
            Work::Child { parent, .. } | Work::Resume(parent) => &parent.root,
        }
    }
}

/// A root chunk whose run went through a wait: what its outcome will
/// carry.
pub(crate) struct Root {
    pub(crate) task: Task,
    pub(crate) started_at: Millis,
    /// Time spent running its own segments, not its children's.
    wall: Mutex<Duration>,
    retried: Mutex<Vec<RetriedAttempt>>,
    /// Set once the job stopped before it: its tree is dropped.
    abandoned: AtomicBool,
}

impl Root {
    pub(crate) fn new(
        task: Task,
        started_at: Millis,
        wall: Duration,
        retried: Vec<RetriedAttempt>,
    ) -> Arc<Self> {
        Arc::new(Root {
            task,
            started_at,
            wall: Mutex::new(wall),
            retried: Mutex::new(retried),
            abandoned: AtomicBool::new(false),
        })
    }

    /// Count the time of one more of its segments.
    pub(crate) fn add_wall(&self, wall: Duration) {
        *self.wall.lock().expect("a root's lock is never poisoned") += wall;
    }

    /// Its time and earlier failed attempts, for its outcome.
    pub(crate) fn take_run(&self) -> (Duration, Vec<RetriedAttempt>) {
        let wall = *self.wall.lock().expect("a root's lock is never poisoned");
        let retried = std::mem::take(&mut *self.retried.lock().expect("never poisoned"));
        (wall, retried)
    }

    /// Mark it abandoned; true the first time only.
    pub(crate) fn abandon(&self) -> bool {
        !self.abandoned.swap(true, Ordering::AcqRel)
    }
}

/// Who receives a task's end.
#[derive(Clone)]
pub(crate) enum Owner {
    /// The job: the task is its root chunk.
    Root(Arc<Root>),
    /// A parent, in the slot of its spawn index.
    Child { parent: Arc<Waiter>, slot: usize },
}

/// A task waiting for its children.
pub(crate) struct Waiter {
    pub(crate) owner: Owner,
    pub(crate) root: Arc<Root>,
    /// Its module with its arguments: its children's runners derive from
    /// it, and it resumes it.
    pub(crate) runner: TaskRunner,
    pub(crate) nesting: Nesting,
    pending: Mutex<Pending>,
}

struct Pending {
    waiting: Option<Waiting>,
    results: Vec<Option<ChildResult>>,
    left: usize,
    /// A child that failed past a spawn limit fails this task the same
    /// way instead of being handed to it.
    failed: Option<TaskFailure>,
}

/// What a waiter's last child hands the worker that resumes it.
pub(crate) enum Ready {
    Resume(Waiting, Vec<ChildResult>),
    Fail(TaskFailure),
}

impl Waiter {
    pub(crate) fn new(
        owner: Owner,
        root: Arc<Root>,
        runner: TaskRunner,
        waiting: Waiting,
    ) -> Arc<Self> {
        let count = waiting.children.len();
        Arc::new(Waiter {
            owner,
            root,
            runner,
            nesting: waiting.nesting(),
            pending: Mutex::new(Pending {
                waiting: Some(waiting),
                results: vec![None; count],
                left: count,
                failed: None,
            }),
        })
    }

    /// The children it asked for, moved out to be queued.
    pub(crate) fn take_children(&self) -> Vec<Spawn> {
        let mut pending = self
            .pending
            .lock()
            .expect("a waiter's lock is never poisoned");
        pending
            .waiting
            .as_mut()
            .map(|w| std::mem::take(&mut w.children))
            .unwrap_or_default()
    }

    /// Child `slot` ended; true when it was the last.
    pub(crate) fn child_done(&self, slot: usize, result: Result<ChildResult, TaskFailure>) -> bool {
        let mut pending = self
            .pending
            .lock()
            .expect("a waiter's lock is never poisoned");
        match result {
            Ok(result) => pending.results[slot] = Some(result),
            Err(failure) => {
                pending.failed.get_or_insert(failure);
            }
        }
        pending.left -= 1;
        pending.left == 0
    }

    /// Its parked instance and its children's results, in spawn order.
    pub(crate) fn ready(&self) -> Ready {
        let mut pending = self
            .pending
            .lock()
            .expect("a waiter's lock is never poisoned");
        if let Some(failure) = pending.failed.take() {
            return Ready::Fail(failure);
        }
        let waiting = pending
            .waiting
            .take()
            .expect("a waiter is resumed once, when its last child is done");
        let results = std::mem::take(&mut pending.results)
            .into_iter()
            .map(|r| r.expect("every child delivered its result"))
            .collect();
        Ready::Resume(waiting, results)
    }
}

/// The work shared by a job's workers besides its root chunks.
pub(crate) struct Nest {
    pub(crate) limits: SpawnLimits,
    stack: Mutex<Vec<Work>>,
    /// One token per item pushed, and one per worker when the last root
    /// ends: what a worker with nothing to do waits on.
    wake_tx: Sender<()>,
    pub(crate) wake_rx: Receiver<()>,
    /// Root chunks queued for or held by the workers and not yet ended
    /// (counted by the reader before it queues them).
    pub(crate) live: AtomicUsize,
    /// Children spawned and not yet handed to their parent.
    in_flight: AtomicU32,
    workers: usize,
    /// Set when a worker found the dispatcher gone: the others stop too.
    closed: AtomicBool,
}

impl Nest {
    pub(crate) fn new(limits: SpawnLimits, workers: usize) -> Self {
        let (wake_tx, wake_rx) = crossbeam_channel::unbounded();
        Nest {
            limits,
            stack: Mutex::new(Vec::new()),
            wake_tx,
            wake_rx,
            live: AtomicUsize::new(0),
            in_flight: AtomicU32::new(0),
            workers,
            closed: AtomicBool::new(false),
        }
    }

    /// Whether a worker found the dispatcher gone.
    pub(crate) fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The dispatcher is gone: every worker stops.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for _ in 0..self.workers {
            let _ = self.wake_tx.send(());
        }
    }

    /// The newest work, if any.
    pub(crate) fn pop(&self) -> Option<Work> {
        self.stack
            .lock()
            .expect("the nest's lock is never poisoned")
            .pop()
    }

    /// Queue a waiter's children (the first spawned on top), or fail it
    /// when they would put more children in flight than allowed.
    pub(crate) fn queue_children(&self, waiter: &Arc<Waiter>) -> Result<(), SpawnLimit> {
        let children = waiter.take_children();
        let count = children.len() as u32;
        let max = self.limits.max_in_flight;
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                n.checked_add(count).filter(|&total| total <= max)
            });
        if admitted.is_err() {
            return Err(SpawnLimit::InFlight { max });
        }
        let mut stack = self
            .stack
            .lock()
            .expect("the nest's lock is never poisoned");
        for (slot, spawn) in children.into_iter().enumerate().rev() {
            stack.push(Work::Child {
                parent: Arc::clone(waiter),
                slot,
                spawn,
            });
            let _ = self.wake_tx.send(());
        }
        Ok(())
    }

    /// A child's result has reached its parent (or its tree was dropped).
    pub(crate) fn child_left(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Put a parent whose children are done back on the stack.
    pub(crate) fn push_resume(&self, waiter: Arc<Waiter>) {
        self.stack
            .lock()
            .expect("the nest's lock is never poisoned")
            .push(Work::Resume(waiter));
        let _ = self.wake_tx.send(());
    }

    /// Count root chunks about to be queued for the workers.
    pub(crate) fn roots_queued(&self, count: usize) {
        self.live.fetch_add(count, Ordering::AcqRel);
    }

    /// A root chunk ended (or was skipped): when it was the last, wake
    /// every worker so that those waiting see there is nothing left.
    pub(crate) fn root_ended(&self) {
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            for _ in 0..self.workers {
                let _ = self.wake_tx.send(());
            }
        }
    }
}
