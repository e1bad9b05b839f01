//! Recording a job in the journal while it runs.
//!
//! The dispatcher keeps the row of every task in flight. It commits the
//! rows of finished tasks in one transaction when it has nothing else to do
//! (so while one commit waits for the disk, the next one grows: group
//! commit) or when [`Recorder::MAX_UNCOMMITTED`] outcomes wait; a task's
//! outcome is reported, and its output written, only after that commit.
//! The rows of queued and running tasks are written at most every
//! [`Recorder::LIVE_DELAY`] (so `wrun status` elsewhere sees the job live):
//! a task that finishes sooner is written once, in its final state, which
//! is what keeps the journal's cost per task in microseconds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wrun_journal::{
    AttemptEnd, AttemptRecord, Batch, ChunkPos, Committed, JobId, Journal, JournalError, Millis,
    OutputRef, SnapshotRef, TaskError, TaskRow, TaskState, TaskStateKind,
};
use wrun_runtime::{Checkpoint, Ended, Every, Requests, TaskOutput};
use wrun_store::{BlobStore, Digest};

use crate::error::JobError;
use crate::event::{Done, TaskMeta};
use crate::executor::LostDispatch;
use crate::failure::{suspend_reason, task_error};

/// Outputs up to this size are kept in the journal itself; larger ones in
/// the content-addressed store.
const INLINE_MAX: usize = 1 << 20;

/// A job to record: where, and what earlier runs committed.
#[derive(Debug)]
pub struct Recording<'a> {
    /// The journal the job is recorded in.
    pub journal: &'a mut Journal,
    /// The job, created in `journal` beforehand.
    pub job: JobId,
    /// Holds outputs too large for the journal.
    pub store: &'a BlobStore,
    /// What earlier runs of this job committed.
    pub prior: Prior,
    /// How many leading chunks' outputs the sink already holds (a resumed
    /// `-o` file's verified prefix, see [`Prior::leading_outputs`]): they
    /// are neither read back nor written again.
    pub kept: u64,
    /// How running tasks are snapshotted.
    pub checkpoints: Checkpoints,
}

/// How the running tasks of a recorded job are snapshotted. A task whose
/// fuel runs out is suspended (with its last snapshot), not failed.
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    /// Snapshot every running task on this schedule.
    pub every: Option<Every>,
    /// Requests to the running tasks: `wrun snapshot` (relayed by the
    /// dispatcher) and draining (from a signal handler).
    pub requests: Arc<Requests>,
}

/// The tasks of a job that earlier runs recorded: done and failed ones are
/// not run again, and every task's attempt counters carry on.
#[derive(Debug, Default)]
pub struct Prior {
    tasks: HashMap<u64, PriorTask>,
}

#[derive(Debug)]
pub(crate) struct PriorTask {
    pub(crate) pos: ChunkPos,
    attempts: u32,
    lost: u32,
    pub(crate) outcome: PriorOutcome,
    /// The snapshot to resume from.
    snapshot: Option<SnapshotRef>,
    /// The snapshot it last moved with.
    resumed_from: Option<SnapshotRef>,
}

/// How a recorded task ended, if it did.
#[derive(Debug)]
pub(crate) enum PriorOutcome {
    /// To run (queued, or never started).
    Pending,
    Done(OutputRef),
    Failed(TaskError),
}

impl Prior {
    /// Read job `job`'s tasks. Call after [`wrun_journal::recover`] and any
    /// requeueing, so that no task is `running` or `cancelled`.
    pub fn load(journal: &Journal, job: JobId) -> Result<Prior, JournalError> {
        let tasks = journal
            .tasks(job, None)?
            .into_iter()
            .map(|row| {
                let outcome = match row.state {
                    TaskState::Done { output, .. } => PriorOutcome::Done(output),
                    TaskState::Failed { error, .. } => PriorOutcome::Failed(error),
                    _ => PriorOutcome::Pending,
                };
                let task = PriorTask {
                    pos: row.pos,
                    attempts: row.attempts,
                    lost: row.lost,
                    outcome,
                    snapshot: row.snapshot,
                    resumed_from: row.resumed_from,
                };
                (row.index, task)
            })
            .collect();
        Ok(Prior { tasks })
    }

    /// The outputs of the chunks that earlier runs finished, from chunk 0
    /// on in input order, up to the first chunk that is not finished:
    /// `Some` for a done chunk, `None` for a failed one (which writes
    /// nothing). A resume checks an output file's existing bytes against
    /// these.
    pub fn leading_outputs(&self) -> impl Iterator<Item = Option<&OutputRef>> + '_ {
        (0..).map_while(|index| match &self.tasks.get(&index)?.outcome {
            PriorOutcome::Done(output) => Some(Some(output)),
            PriorOutcome::Failed(_) => Some(None),
            PriorOutcome::Pending => None,
        })
    }

    /// Tasks that earlier runs finished (done or failed).
    pub fn finished(&self) -> usize {
        self.tasks
            .values()
            .filter(|t| !matches!(t.outcome, PriorOutcome::Pending))
            .count()
    }

    pub(crate) fn get(&self, index: u64) -> Option<&PriorTask> {
        self.tasks.get(&index)
    }

    /// The snapshot an unfinished task resumes from.
    pub(crate) fn snapshot(&self, index: u64) -> Option<[u8; 32]> {
        self.tasks
            .get(&index)
            .and_then(|t| t.snapshot.as_ref())
            .map(|s| s.digest)
    }

    /// The byte length of every recorded chunk, by index (`None`: not
    /// recorded).
    pub(crate) fn lengths(&self) -> Vec<Option<u64>> {
        let count = self.tasks.keys().max().map_or(0, |&last| last + 1);
        let mut lengths = vec![None; count as usize];
        for (&index, task) in &self.tasks {
            lengths[index as usize] = Some(task.pos.len);
        }
        lengths
    }
}

/// The dispatcher's side of the journal.
pub(crate) struct Recorder<'a> {
    journal: &'a mut Journal,
    job: JobId,
    store: &'a BlobStore,
    prior: &'a Prior,
    /// Leading chunks whose outputs the sink already holds.
    kept: u64,
    /// Rows of tasks queued or running.
    live: HashMap<u64, TaskRow>,
    /// Tasks whose live row changed since it was last written (some may
    /// have finished since).
    changed: Vec<u64>,
    /// Rows of finished tasks, to write at the next commit.
    finished: Vec<TaskRow>,
    outputs: Vec<(u64, Vec<u8>)>,
    attempts: Vec<AttemptRecord>,
    tasks_total: Option<u64>,
    /// Finished tasks whose outcome awaits the next commit.
    uncommitted: Vec<Done>,
    /// When the oldest unwritten change to a live row was made.
    since: Option<Instant>,
    /// Tasks whose latest snapshot changed since the last commit, with
    /// the blobs it needs (none: the task needs no snapshot any more).
    snapshots: Vec<(u64, Vec<[u8; 32]>)>,
    /// The `wrun snapshot` request being served, and the tasks that were
    /// running when it came and have not checkpointed or finished since.
    request: Option<(u64, HashSet<u64>)>,
    /// The last request served, and whether the journal has been told.
    served: Option<u64>,
    served_unwritten: bool,
    /// Write live rows at every commit, not every [`Self::LIVE_DELAY`]:
    /// when chunk boundaries depend on timing (adaptive chunking), a resume
    /// must find every chunk before a finished one recorded, to cut it
    /// again the same way.
    eager: bool,
}

impl<'a> Recorder<'a> {
    /// Commit at the latest once this many outcomes wait.
    pub(crate) const MAX_UNCOMMITTED: usize = 8192;
    /// Commit at the latest this long after a change.
    pub(crate) const LIVE_DELAY: Duration = Duration::from_millis(200);

    pub(crate) fn new(
        journal: &'a mut Journal,
        job: JobId,
        store: &'a BlobStore,
        prior: &'a Prior,
        kept: u64,
        eager: bool,
    ) -> Self {
        Recorder {
            journal,
            job,
            store,
            prior,
            kept,
            live: HashMap::new(),
            changed: Vec::new(),
            finished: Vec::new(),
            outputs: Vec::new(),
            attempts: Vec::new(),
            tasks_total: None,
            uncommitted: Vec::new(),
            since: None,
            snapshots: Vec::new(),
            request: None,
            served: None,
            served_unwritten: false,
            eager,
        }
    }

    /// `wrun snapshot` has asked for `requested` snapshots so far. Returns
    /// whether a new request came (the running tasks must be asked).
    pub(crate) fn snapshots_requested(&mut self, requested: u64) -> bool {
        let seen = self
            .request
            .as_ref()
            .map(|(n, _)| *n)
            .or(self.served)
            .unwrap_or(0);
        if requested <= seen {
            return false;
        }
        let running = self
            .live
            .values()
            .filter(|row| row.state.kind() == TaskStateKind::Running)
            .map(|row| row.index)
            .collect();
        self.request = Some((requested, running));
        self.answered(None);
        true
    }

    /// Task `index` checkpointed or finished (`None`: nothing happened,
    /// but the request may be served already).
    fn answered(&mut self, index: Option<u64>) {
        if let Some((requested, waiting)) = &mut self.request {
            if let Some(index) = index {
                waiting.remove(&index);
            }
            if waiting.is_empty() {
                self.served = Some(*requested);
                self.served_unwritten = true;
                self.request = None;
                self.touch_job();
            }
        }
    }

    fn touch_job(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }

    /// Task `index` was snapshotted and keeps running.
    pub(crate) fn checkpoint(
        &mut self,
        index: u64,
        checkpoint: &Checkpoint,
    ) -> Result<(), JobError> {
        let Some(row) = self.live.get_mut(&index) else {
            return Err(JobError::Internal(format!(
                "task {index} checkpointed unqueued"
            )));
        };
        row.snapshot = Some(snapshot_ref(checkpoint));
        self.snapshots.push((index, needs(checkpoint)));
        self.touch(index);
        self.answered(Some(index));
        Ok(())
    }

    fn touch(&mut self, index: u64) {
        self.since.get_or_insert_with(Instant::now);
        self.changed.push(index);
    }

    /// The reader made these tasks.
    pub(crate) fn queued(&mut self, tasks: &[TaskMeta]) {
        for meta in tasks {
            let (attempts, lost) = self
                .prior
                .get(meta.index)
                .map_or((0, 0), |p| (p.attempts, p.lost));
            let row = TaskRow {
                index: meta.index,
                pos: meta.pos,
                attempts,
                lost,
                node: None,
                state: TaskState::Queued,
                snapshot: self.prior.get(meta.index).and_then(|p| p.snapshot.clone()),
                resumed_from: self
                    .prior
                    .get(meta.index)
                    .and_then(|p| p.resumed_from.clone()),
            };
            self.live.insert(meta.index, row);
            self.touch(meta.index);
        }
    }

    /// A worker took these tasks.
    pub(crate) fn started(&mut self, indices: &[u64], at: Millis) -> Result<(), JobError> {
        for index in indices {
            let Some(row) = self.live.get_mut(index) else {
                return Err(JobError::Internal(format!("task {index} started unqueued")));
            };
            row.transition(TaskState::Running { started_at: at })
                .map_err(JobError::State)?;
            row.attempts += 1;
            self.touch(*index);
        }
        Ok(())
    }

    /// A task finished: record its outcome, and hold it until committed.
    pub(crate) fn finished(&mut self, done: Done) -> Result<(), JobError> {
        let index = done.meta.index;
        let Some(mut row) = self.live.remove(&index) else {
            return Err(JobError::Internal(format!(
                "task {index} finished unqueued"
            )));
        };
        let first = row.attempts;
        row.attempts += done.retried.len() as u32;
        row.node = done.node.clone();
        for (n, retried) in done.retried.iter().enumerate() {
            self.attempts.push(AttemptRecord {
                index,
                attempt: first + n as u32,
                node: retried.node.clone(),
                started_at: retried.started_at,
                ended_at: retried.ended_at,
                end: AttemptEnd::Failed(task_error(&retried.failure.reason)),
                log: retried.failure.log.clone(),
            });
        }
        let finished_at = done.started_at + done.wall.as_millis() as Millis;
        let (state, log, end) = match &done.result {
            Ok(Ended::Finished(TaskOutput {
                output,
                log,
                fuel_used,
            })) => {
                let output = self.keep_output(index, output)?;
                let state = TaskState::Done {
                    finished_at,
                    wall: done.wall,
                    fuel_used: *fuel_used,
                    output,
                };
                // Done is final: its snapshots are needed no more.
                if row.snapshot.take().is_some() {
                    self.snapshots.push((index, Vec::new()));
                }
                // After a lost attempt, the one that made it is told too.
                let told = row.lost > 0;
                (state, log.clone(), told.then_some(AttemptEnd::Done))
            }
            Ok(Ended::Suspended(suspended)) => {
                let reason = suspend_reason(suspended.reason);
                row.snapshot = suspended.resume_from.as_ref().map(snapshot_ref);
                if let Some(checkpoint) = &suspended.resume_from
                    && checkpoint.snapshot.stored > 0
                {
                    self.snapshots.push((index, needs(checkpoint)));
                }
                let state = TaskState::Suspended {
                    at: finished_at,
                    reason,
                };
                (state, suspended.log.clone(), None)
            }
            Err(failure) => {
                let error = task_error(&failure.reason);
                let state = TaskState::Failed {
                    finished_at,
                    wall: done.wall,
                    error: error.clone(),
                };
                (state, failure.log.clone(), Some(AttemptEnd::Failed(error)))
            }
        };
        if end.is_some() || !log.is_empty() || !done.retried.is_empty() {
            self.attempts.push(AttemptRecord {
                index,
                attempt: row.attempts,
                node: done.node.clone(),
                started_at: done.started_at,
                ended_at: finished_at,
                end: end.unwrap_or(AttemptEnd::Done),
                log,
            });
        }
        row.transition(state).map_err(JobError::State)?;
        self.finished.push(row);
        self.uncommitted.push(done);
        self.answered(Some(index));
        Ok(())
    }

    /// A dispatch of task `index` died with its node (or its node
    /// drained): it is an attempt, lost, and the move is counted. When the
    /// task was sent again, that dispatch is its next attempt, which
    /// resumes from the task's latest snapshot (reported before this); when
    /// it was not, its outcome (which says why) follows as this attempt's.
    pub(crate) fn lost(&mut self, index: u64, lost: LostDispatch) -> Result<(), JobError> {
        let Some(row) = self.live.get_mut(&index) else {
            return Err(JobError::Internal(format!("task {index} lost unqueued")));
        };
        row.lost += 1;
        if lost.requeued {
            self.attempts.push(AttemptRecord {
                index,
                attempt: row.attempts,
                node: Some(lost.node),
                started_at: lost.started_at,
                ended_at: lost.ended_at,
                end: AttemptEnd::Lost(lost.reason),
                log: Vec::new(),
            });
            row.attempts += 1;
            row.resumed_from = row.snapshot.clone();
        }
        self.touch(index);
        Ok(())
    }

    /// Keep a task's output (in the journal, or in the store when large).
    fn keep_output(&mut self, index: u64, output: &[u8]) -> Result<OutputRef, JobError> {
        let inline = output.len() <= INLINE_MAX;
        let digest = if inline {
            if !output.is_empty() {
                self.outputs.push((index, output.to_vec()));
            }
            Digest::of(output)
        } else {
            self.store
                .put(output)
                .map_err(|e| JobError::Store(e.to_string()))?
        };
        Ok(OutputRef {
            digest: *digest.as_bytes(),
            len: output.len() as u64,
            inline,
        })
    }

    /// The output an earlier run committed for task `index`, verified.
    pub(crate) fn prior_output(&self, index: u64, output: &OutputRef) -> Result<Vec<u8>, JobError> {
        let lost = |what: &str| {
            JobError::Store(format!(
                "the output of chunk {index} ({} bytes, blake3 {}) {what}",
                output.len,
                Digest::from_bytes(output.digest).to_hex()
            ))
        };
        let bytes = if output.len == 0 {
            Vec::new()
        } else if output.inline {
            self.journal
                .output(self.job, index)
                .map_err(JobError::Journal)?
                .ok_or_else(|| lost("is missing from the journal"))?
        } else {
            self.store
                .get(&Digest::from_bytes(output.digest))
                .map_err(|e| JobError::Store(e.to_string()))?
                .ok_or_else(|| lost("is missing from the store"))?
                .to_vec()
        };
        if *Digest::of(&bytes).as_bytes() != output.digest {
            return Err(lost("does not match its digest"));
        }
        Ok(bytes)
    }

    /// Whether the sink already holds task `index`'s output (so it is not
    /// written again).
    pub(crate) fn is_kept(&self, index: u64) -> bool {
        index < self.kept
    }

    /// What earlier runs recorded of task `index`.
    pub(crate) fn prior(&self, index: u64) -> Option<&'a PriorTask> {
        self.prior.get(index)
    }

    /// The input has been split into `total` tasks.
    pub(crate) fn input_done(&mut self, total: u64) {
        self.tasks_total = Some(total);
    }

    /// Whether outcomes wait for a commit.
    pub(crate) fn has_uncommitted(&self) -> bool {
        !self.uncommitted.is_empty()
    }

    /// Whether a commit is due whatever else is waiting.
    pub(crate) fn commit_due(&self) -> bool {
        self.uncommitted.len() >= Self::MAX_UNCOMMITTED || self.live_due()
    }

    /// Whether live rows have waited [`Self::LIVE_DELAY`] to be written.
    fn live_due(&self) -> bool {
        self.since.is_some_and(|t| t.elapsed() >= Self::LIVE_DELAY)
    }

    /// Commit the finished tasks (and the live rows, when due); returns the
    /// outcomes now safe to report.
    pub(crate) fn commit(&mut self) -> Result<(Committed, Vec<Done>), JobError> {
        self.write(self.live_due())
    }

    /// Commit everything, live rows included (when the job stops).
    pub(crate) fn commit_all(&mut self) -> Result<(Committed, Vec<Done>), JobError> {
        self.write(true)
    }

    fn write(&mut self, live: bool) -> Result<(Committed, Vec<Done>), JobError> {
        let mut tasks = std::mem::take(&mut self.finished);
        if live || self.eager {
            self.changed.sort_unstable();
            self.changed.dedup();
            tasks.extend(
                self.changed
                    .drain(..)
                    .filter_map(|index| self.live.get(&index).cloned()),
            );
            self.since = None;
        }
        let batch = Batch {
            tasks,
            outputs: std::mem::take(&mut self.outputs),
            attempts: std::mem::take(&mut self.attempts),
            tasks_total: self.tasks_total.take(),
            snapshots: std::mem::take(&mut self.snapshots),
            snapshots_taken: self
                .served
                .filter(|_| std::mem::take(&mut self.served_unwritten)),
        };
        match self.journal.commit(self.job, &batch) {
            Ok(committed) => {
                self.collect(&committed.superseded);
                Ok((committed, std::mem::take(&mut self.uncommitted)))
            }
            // Never reported: a resume runs these tasks again.
            Err(error) => {
                self.uncommitted.clear();
                Err(JobError::Journal(error))
            }
        }
    }

    /// Delete the snapshot blobs that no task needs any more, now that the
    /// journal no longer names them. A blob that cannot be deleted is left
    /// behind (garbage, never read: `wrun rm` does not know it either).
    fn collect(&self, superseded: &[[u8; 32]]) {
        for digest in superseded {
            let _ = self.store.delete(&Digest::from_bytes(*digest));
        }
    }

    /// The job stops: tasks still queued or running become `state`
    /// (cancelled when the job was stopped, queued again when it was
    /// interrupted and can be resumed).
    pub(crate) fn stop(&mut self, state: TaskState) -> Result<(), JobError> {
        for (_, mut row) in std::mem::take(&mut self.live) {
            // Every task a worker ran has finished by now: a running one was
            // skipped, and its attempt never happened.
            if row.state.kind() == TaskStateKind::Running {
                row.attempts -= 1;
            }
            if row.state != TaskState::Queued || state != TaskState::Queued {
                row.transition(state.clone()).map_err(JobError::State)?;
            }
            self.finished.push(row);
        }
        self.changed.clear();
        Ok(())
    }
}

/// Every blob restoring `checkpoint` needs: its own and its bases.
fn needs(checkpoint: &Checkpoint) -> Vec<[u8; 32]> {
    let snapshot = &checkpoint.snapshot;
    std::iter::once(&snapshot.digest)
        .chain(&snapshot.bases)
        .map(|d| *d.as_bytes())
        .collect()
}

/// How the journal names a snapshot.
fn snapshot_ref(checkpoint: &Checkpoint) -> SnapshotRef {
    SnapshotRef {
        digest: *checkpoint.snapshot.digest.as_bytes(),
        taken_at: wrun_journal::now(),
        position: checkpoint.cursor.to_string(),
        fuel_used: checkpoint.fuel_used,
    }
}
