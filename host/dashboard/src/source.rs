//! What the dashboard shows, read from wherever the jobs live: the
//! [`Source`] trait, and [`LocalSource`], a `WRUN_HOME`'s journal (`wrun
//! dashboard`). The broker implements it over its journal, its nodes and
//! its allocation queues (`wrun broker --http`), so this crate knows
//! nothing of the broker.

use wrun_alloc::Queue;
use wrun_jobs::views::{self, AttemptView, Filter, JobDetail, JobView};
use wrun_jobs::{Destination, Home, Result};
use wrun_journal::{JobId, TaskTotals};
use wrun_protocol::protocol::NodeInfo;

/// Whoever keeps the nodes did not list them in time (a broker's socket
/// thread that is stuck or gone); the message says who and how long.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unanswered(pub String);

/// Jobs, their chunks and, on a broker, nodes and allocation queues; each
/// call reads them afresh. Called from blocking threads: a call may wait
/// for the journal.
pub trait Source: Send + Sync + 'static {
    /// Where the jobs run, as [`JobView::where`] says it.
    fn place(&self) -> String;
    /// The jobs `filter` selects, oldest first (`wrun status --json`).
    ///
    /// # Errors
    ///
    /// As [`views::jobs`].
    fn jobs(&self, filter: &Filter) -> Result<Vec<JobView>>;
    /// Job `id` with its spec and all its tasks (`wrun status JOB --json`).
    ///
    /// # Errors
    ///
    /// As [`views::detail`], also for a job that does not exist.
    fn job(&self, id: JobId) -> Result<JobDetail>;
    /// Job `id`'s attempts worth telling about (`wrun logs JOB --json`).
    ///
    /// # Errors
    ///
    /// As [`views::logs`].
    fn logs(&self, id: JobId) -> Result<Vec<AttemptView>>;
    /// Job `id`'s finished tasks in sum, wall times counted against
    /// `bounds_us` (microseconds, ascending): what `/metrics` reports.
    ///
    /// # Errors
    ///
    /// As [`views::totals`].
    fn totals(&self, id: JobId, bounds_us: &[u64]) -> Result<TaskTotals>;
    /// Write job `id`'s output to `out`, in input order.
    ///
    /// # Errors
    ///
    /// As [`wrun_jobs::output::write`]: an unfinished chunk, a missing
    /// stored output, the journal.
    fn output(&self, id: JobId, out: Destination) -> Result<()>;
    /// The connected nodes (`wrun nodes --json`); `None` where there are
    /// none to have (the local journal). A call waits for them a bounded
    /// time.
    ///
    /// # Errors
    ///
    /// [`Unanswered`] when whoever keeps them did not answer in that time.
    fn nodes(&self) -> Option<std::result::Result<Vec<NodeInfo>, Unanswered>>;
    /// The allocation queues with their allocations (`wrun alloc ls
    /// --json`); `None` where there are none to have.
    fn allocations(&self) -> Option<Vec<Queue>>;
}

/// The jobs of one `WRUN_HOME`, as `wrun status` reads them.
#[derive(Debug, Clone)]
pub struct LocalSource {
    home: Home,
}

impl LocalSource {
    /// The jobs recorded in `home`'s journal.
    pub fn new(home: Home) -> Self {
        LocalSource { home }
    }
}

impl Source for LocalSource {
    fn place(&self) -> String {
        views::LOCAL.to_owned()
    }

    fn jobs(&self, filter: &Filter) -> Result<Vec<JobView>> {
        views::jobs(&self.home, filter)
    }

    fn job(&self, id: JobId) -> Result<JobDetail> {
        views::detail(&self.home, id, None)
    }

    fn logs(&self, id: JobId) -> Result<Vec<AttemptView>> {
        views::logs(&self.home, id, None)
    }

    fn totals(&self, id: JobId, bounds_us: &[u64]) -> Result<TaskTotals> {
        views::totals(&self.home, id, bounds_us)
    }

    fn output(&self, id: JobId, out: Destination) -> Result<()> {
        wrun_jobs::output::write(&self.home, id, out, &mut |_| {})
    }

    fn nodes(&self) -> Option<std::result::Result<Vec<NodeInfo>, Unanswered>> {
        None
    }

    fn allocations(&self) -> Option<Vec<Queue>> {
        None
    }
}
