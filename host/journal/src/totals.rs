//! A job's finished tasks in sum, for metrics: how many, their wall times
//! as a histogram, their output bytes. One pass over the job's finished
//! rows, nothing held per task.

use rusqlite::params;

use crate::journal::{JobId, Journal, JournalError};
use crate::state::TaskStateKind;

/// Job totals over its done and failed tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskTotals {
    /// Finished (done or failed) tasks.
    pub finished: u64,
    /// Finished tasks by wall time, one count per bucket of the bounds
    /// given to [`Journal::totals`]: bucket `i` holds wall times above
    /// bound `i - 1` and at most bound `i`; the last (one more than the
    /// bounds) those above every bound.
    pub wall_buckets: Vec<u64>,
    /// Their wall times added up, in microseconds.
    pub wall_us: u64,
    /// Output bytes of the done tasks.
    pub output_bytes: u64,
}

impl Journal {
    /// Totals of job `id`'s finished tasks, with wall times counted
    /// against `bounds_us` (microseconds, ascending).
    ///
    /// # Errors
    ///
    /// [`JournalError::Sqlite`].
    pub fn totals(&self, id: JobId, bounds_us: &[u64]) -> Result<TaskTotals, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT wall_us, output_len FROM tasks
                 WHERE job = ?1 AND state IN (?2, ?3) AND wall_us IS NOT NULL",
            )
            .map_err(self.error())?;
        let mut rows = stmt
            .query(params![
                id,
                TaskStateKind::Done.as_str(),
                TaskStateKind::Failed.as_str()
            ])
            .map_err(self.error())?;
        let mut totals = TaskTotals {
            wall_buckets: vec![0; bounds_us.len() + 1],
            ..TaskTotals::default()
        };
        while let Some(row) = rows.next().map_err(self.error())? {
            let wall: u64 = row.get(0).map_err(self.error())?;
            let output: Option<u64> = row.get(1).map_err(self.error())?;
            totals.finished += 1;
            totals.wall_us += wall;
            totals.output_bytes += output.unwrap_or(0);
            totals.wall_buckets[bounds_us.partition_point(|bound| *bound < wall)] += 1;
        }
        Ok(totals)
    }
}
