//! Checkpointing a running task: when snapshots are taken, what the host
//! can ask of a running task, and how a run that stops early ends.
//!
//! A task run with [`Checkpointing`] stops at every call boundary (after
//! `wrun_init`, each `wrun_record`, each `wrun_step`) just long enough to
//! see whether a snapshot is due: every N calls or T seconds
//! ([`Every`]), or because the host asked ([`Requests`]). A drain request
//! snapshots the task and ends the run [`Ended::Suspended`]; so does a fuel
//! budget running out, with the last snapshot taken (or none: the chunk
//! then starts over).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wrun_store::{BlobStore, Digest};

use crate::outcome::{Failure, TaskOutput};
use crate::sandbox::Sandbox;
use crate::snapshot::{
    Cursor, Identity, Live, Restored, SnapshotError, Snapshotter, TakeError, Taken,
};

/// The most of a task's time that periodic snapshots may take, in
/// percent: after a snapshot that took `t`, the next periodic one waits
/// until the task has run `t × (100 − SHARE) / SHARE` more (9 `t`), whatever
/// [`Every`] says. Snapshots asked for ([`Requests`]) are not held back.
pub const SNAPSHOT_SHARE_PERCENT: u32 = 10;

/// How often a running task is snapshotted, at most (see
/// [`SNAPSHOT_SHARE_PERCENT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// After this many calls into the guest (records and steps).
    Calls(u64),
    /// When this much time has passed since the last snapshot (checked at
    /// call boundaries).
    Time(Duration),
}

/// What the host asks of every running task, seen at the task's next call
/// boundary. Shared by all the workers of a job.
#[derive(Debug, Default)]
pub struct Requests {
    /// Bumped by every request; a task compares it with the last it saw.
    generation: AtomicU64,
    draining: AtomicBool,
}

impl Requests {
    /// Ask every running task for a snapshot now; returns the request's
    /// generation.
    pub fn snapshot_now(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Ask every running task to snapshot and stop.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether [`Requests::drain`] was called.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// How many requests were made: a relay (the broker's, to its nodes)
    /// compares it with the last it passed on.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// What a checkpointed run may do besides running its chunk.
pub struct Checkpointing<'a> {
    /// Where snapshots are kept.
    pub store: &'a BlobStore,
    /// Continue from this snapshot instead of starting the chunk.
    pub resume: Option<Digest>,
    /// Take snapshots on this schedule (besides those asked for).
    pub every: Option<Every>,
    /// The host's requests.
    pub requests: &'a Requests,
    /// A run out of fuel ends [`Ended::Suspended`] instead of failing.
    pub suspend_on_fuel: bool,
    /// Told of every snapshot taken and kept running after (not of the one
    /// a suspension ends with).
    pub on_checkpoint: &'a (dyn Fn(Checkpoint) + Sync),
}

impl std::fmt::Debug for Checkpointing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointing")
            .field("resume", &self.resume)
            .field("every", &self.every)
            .field("suspend_on_fuel", &self.suspend_on_fuel)
            .finish_non_exhaustive()
    }
}

/// A snapshot of a running task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The snapshot blob.
    pub snapshot: Taken,
    /// Where the task was.
    pub cursor: Cursor,
    /// Fuel used up to that point, in fuel units, when fuel is metered.
    pub fuel_used: Option<u64>,
}

/// Why a run stopped before the end of its chunk without failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuspendReason {
    /// The fuel budget ran out.
    Fuel,
    /// The host asked running tasks to stop ([`Requests::drain`]).
    Drain,
}

/// A run that stopped early and can go on later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspended {
    /// Why it stopped.
    pub reason: SuspendReason,
    /// The snapshot to continue from; `None`: start the chunk over.
    pub resume_from: Option<Checkpoint>,
    /// The log up to the stop.
    pub log: Vec<u8>,
}

/// How a checkpointed run ended, short of failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The chunk is done.
    Finished(TaskOutput),
    /// The run stopped early; the chunk goes on from the snapshot, if any.
    Suspended(Suspended),
}

/// What a call boundary decided.
pub(crate) enum Boundary {
    Continue,
    Suspend(SuspendReason),
}

/// The checkpointing state of one run.
pub(crate) struct Session<'c, 'a> {
    control: &'c Checkpointing<'a>,
    /// Built on first use: hashing the chunk costs time no run without
    /// snapshots should pay.
    snapshotter: Option<Snapshotter<'a>>,
    identity: &'c dyn Fn() -> Identity,
    seen: u64,
    calls: u64,
    /// When the last snapshot (or attempt) ended, and how long it took.
    since: Instant,
    cost: Duration,
    /// Whether the task log already says that a snapshot was not stored.
    told_unstored: bool,
    /// The last snapshot taken or restored: where a suspended run resumes.
    pub(crate) last: Option<Checkpoint>,
}

impl<'c, 'a> Session<'c, 'a> {
    pub(crate) fn new(control: &'c Checkpointing<'a>, identity: &'c dyn Fn() -> Identity) -> Self {
        Session {
            control,
            snapshotter: None,
            identity,
            seen: control.requests.generation(),
            calls: 0,
            since: Instant::now(),
            cost: Duration::ZERO,
            told_unstored: false,
            last: None,
        }
    }

    pub(crate) fn control(&self) -> &Checkpointing<'a> {
        self.control
    }

    fn snapshotter(&mut self) -> &mut Snapshotter<'a> {
        let (store, identity) = (self.control.store, self.identity);
        self.snapshotter
            .get_or_insert_with(|| Snapshotter::new(store, identity()))
    }

    /// Restore `digest` into a fresh instance.
    pub(crate) fn restore(
        &mut self,
        digest: &Digest,
        store: &mut Store<Sandbox>,
        live: &Live,
    ) -> Result<Restored, SnapshotError> {
        let restored = self.snapshotter().restore(digest, store, live)?;
        self.last = Some(Checkpoint {
            snapshot: Taken {
                digest: *digest,
                stored: 0,
                bases: restored.bases.clone(),
            },
            cursor: restored.cursor,
            fuel_used: restored.fuel_used,
        });
        Ok(restored)
    }

    /// The guest returned from a call and will next be called at `cursor`:
    /// snapshot it if that is due, and say whether to go on.
    pub(crate) fn boundary(
        &mut self,
        store: &mut Store<Sandbox>,
        live: &Live,
        cursor: Cursor,
        fuel_used: Option<u64>,
    ) -> Result<Boundary, Failure> {
        self.calls += 1;
        let generation = self.control.requests.generation();
        let requested = generation != self.seen;
        // Read on its own, not only on a new request: a task that started
        // after the drain began must stop too.
        let draining = self.control.requests.draining();
        let periodic = match self.control.every {
            None => false,
            Some(Every::Calls(n)) => self.calls >= n,
            Some(Every::Time(every)) => self.since.elapsed() >= every,
        } && self.since.elapsed() >= floor(self.cost);
        if !requested && !periodic && !draining {
            return Ok(Boundary::Continue);
        }
        self.seen = generation;
        let started = Instant::now();
        let taken = self.snapshotter().take(store, live, cursor, fuel_used);
        self.calls = 0;
        self.since = Instant::now();
        self.cost = self.since - started;
        let checkpoint = match taken {
            Ok(snapshot) => Some(Checkpoint {
                snapshot,
                cursor,
                fuel_used,
            }),
            Err(TakeError::Failed(failure)) => return Err(failure),
            // The task goes on without this snapshot (a drain suspends it
            // with the last one).
            Err(TakeError::Unstored(message)) => {
                self.tell_unstored(store, &message);
                None
            }
        };
        if let Some(checkpoint) = &checkpoint {
            self.last = Some(checkpoint.clone());
        }
        if draining {
            return Ok(Boundary::Suspend(SuspendReason::Drain));
        }
        if let Some(checkpoint) = checkpoint {
            (self.control.on_checkpoint)(checkpoint);
        }
        Ok(Boundary::Continue)
    }

    /// Say in the task log, once per run, that a snapshot was not stored.
    fn tell_unstored(&mut self, store: &Store<Sandbox>, message: &str) {
        if std::mem::replace(&mut self.told_unstored, true) {
            return;
        }
        let note = format!(
            "wrun: a snapshot could not be stored ({message}); the task goes on without it, and \
             later snapshots are tried as scheduled\n"
        );
        let _ = store.data().log.write(note.as_bytes());
    }
}

/// How long after a snapshot that took `cost` the next periodic one may
/// start (see [`SNAPSHOT_SHARE_PERCENT`]).
fn floor(cost: Duration) -> Duration {
    cost * (100 - SNAPSHOT_SHARE_PERCENT) / SNAPSHOT_SHARE_PERCENT
}
