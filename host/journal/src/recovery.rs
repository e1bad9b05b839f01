//! What becomes of a job when a process takes it over from one that died.

use rusqlite::params;

use crate::attempt::LOST;
use crate::journal::transition;
use crate::state::{FailureKind, TaskStateKind};
use crate::{JobId, Journal, JournalError};

/// A task whose host died this many times while it was running, with no
/// new snapshot in any of those runs, is not tried again: it fails as
/// [`FailureKind::Quarantined`]. Deaths after which the task's snapshot had
/// advanced do not count: a checkpointed task that makes progress is
/// resumed however often its host dies.
pub const QUARANTINE_AFTER: u32 = 3;

/// The reason recorded for an attempt whose process died, found by
/// [`recover`].
pub const PROCESS_DIED: &str = "the wrun process running it died";

/// What [`recover`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Running tasks put back in the queue.
    pub requeued: u64,
    /// Running tasks failed for having died too often without progress.
    pub quarantined: u64,
}

/// The recovery rules, all of them, applied to job `job` before a new
/// process runs it after its previous one died (was killed, crashed, or
/// lost its machine). The caller holds the job's [`crate::JobLock`], so no
/// live process owns the job.
///
/// 1. The journal itself is checked first (`quick_check`): an unclean
///    shutdown must not leave us trusting a damaged file.
/// 2. `done`, `failed` and `cancelled` tasks were committed before anything
///    was reported, so they stand as they are: nothing is run twice.
/// 3. A `running` task's outcome was never committed: its attempt is
///    recorded as lost ([`PROCESS_DIED`], ended when found), the death is
///    counted against it (`lost`), and it goes back to `queued`, to resume
///    from its latest snapshot if it has one.
/// 4. A death counts towards quarantine only if the task made no progress:
///    its lost attempts that started after its latest snapshot was taken
///    (all of them, for a task without a snapshot; remote attempts lost
///    with their node count too). A task with [`QUARANTINE_AFTER`] such
///    deaths is presumed to be what kills its host: it becomes `failed`
///    (quarantined) instead.
/// 5. `queued` tasks, and tasks never recorded at all, simply run.
///
/// The job's own state is left to the caller, who runs it next.
///
/// # Errors
///
/// [`JournalError::Corrupt`] when the check fails, [`JournalError::NoJob`],
/// or any SQLite failure (then nothing changed).
pub fn recover(journal: &mut Journal, job: JobId) -> Result<Recovery, JournalError> {
    journal.check_integrity()?;
    journal.job(job)?;
    let message = format!(
        "the process running it died {QUARANTINE_AFTER} times with no new snapshot (the task \
         may be what kills it); not tried again"
    );
    let quarantine = transition(job, &[TaskStateKind::Running], TaskStateKind::Failed)?;
    let requeue = transition(job, &[TaskStateKind::Running], TaskStateKind::Queued)?;
    journal.transaction(|tx| {
        let now = crate::now();
        tx.execute(
            &format!(
                "INSERT OR IGNORE INTO attempts
                     (job, idx, attempt, node, started_at, ended_at, outcome, message, log)
                 SELECT job, idx, attempts, NULL, started_at, ?2, ?3, ?4, x''
                 FROM tasks WHERE job = ?1 AND {}",
                requeue.filter()
            ),
            params![job, now, LOST, PROCESS_DIED],
        )?;
        let quarantined = tx.execute(
            &format!(
                "UPDATE tasks SET {}, lost = lost + 1, finished_at = ?2,
                 wall_us = 0, failure_kind = ?3, failure_message = ?4, started_at = NULL
                 WHERE job = ?1 AND {} AND ?5 <= (
                     SELECT count(*) FROM attempts a
                     WHERE a.job = tasks.job AND a.idx = tasks.idx AND a.outcome = ?6
                     AND (tasks.snapshot_at IS NULL OR a.started_at > tasks.snapshot_at))",
                quarantine.set(),
                quarantine.filter()
            ),
            params![
                job,
                now,
                FailureKind::Quarantined.as_str(),
                message,
                QUARANTINE_AFTER,
                LOST
            ],
        )?;
        let requeued = tx.execute(
            &format!(
                "UPDATE tasks SET {}, lost = lost + 1, started_at = NULL
                 WHERE job = ?1 AND {}",
                requeue.set(),
                requeue.filter()
            ),
            [job],
        )?;
        Ok(Recovery {
            requeued: requeued as u64,
            quarantined: quarantined as u64,
        })
    })
}
