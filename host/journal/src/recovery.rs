//! What becomes of a job when a process takes it over from one that died.

use rusqlite::params;

use crate::journal::transition;
use crate::state::{FailureKind, TaskStateKind};
use crate::{JobId, Journal, JournalError};

/// A task that was running this many times when its host died is not tried
/// again: it fails as [`FailureKind::Quarantined`].
pub const QUARANTINE_AFTER: u32 = 3;

/// What [`recover`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Running tasks put back in the queue.
    pub requeued: u64,
    /// Running tasks failed for having been running at too many crashes.
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
/// 3. A `running` task's outcome was never committed: it goes back to
///    `queued`, and the crash is counted against it (`lost`).
/// 4. A task counted at [`QUARANTINE_AFTER`] crashes is presumed to be what
///    kills its host: it becomes `failed` (quarantined) instead.
/// 5. `queued` tasks, and tasks never recorded at all, simply run.
///
/// The job's own state is left to the caller, who runs it next.
pub fn recover(journal: &mut Journal, job: JobId) -> Result<Recovery, JournalError> {
    journal.check_integrity()?;
    journal.job(job)?;
    let message =
        format!("running each of the last {QUARANTINE_AFTER} times its host died; not tried again");
    let quarantine = transition(job, &[TaskStateKind::Running], TaskStateKind::Failed)?;
    let requeue = transition(job, &[TaskStateKind::Running], TaskStateKind::Queued)?;
    journal.transaction(|tx| {
        let now = crate::now();
        let quarantined = tx.execute(
            &format!(
                "UPDATE tasks SET {}, lost = lost + 1, finished_at = ?2,
                 wall_us = 0, failure_kind = ?3, failure_message = ?4, started_at = NULL
                 WHERE job = ?1 AND {} AND lost + 1 >= ?5",
                quarantine.set(),
                quarantine.filter()
            ),
            params![
                job,
                now,
                FailureKind::Quarantined.as_str(),
                message,
                QUARANTINE_AFTER
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
