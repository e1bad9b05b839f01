//! What `wrun broker --http` shows: the broker's journal (its clients'
//! jobs, read as the local dashboard reads a journal), the nodes
//! connected now and the allocation queues.

use std::sync::Arc;

use wrun_alloc::Queue;
use wrun_dashboard::{LocalSource, Source};
use wrun_jobs::views::{AttemptView, Filter, JobDetail, JobView};
use wrun_jobs::{Destination, Home, Result};
use wrun_journal::{JobId, TaskTotals};

use crate::allocator::Allocator;
use crate::broker::BrokerHandle;
use crate::protocol::NodeInfo;

/// The broker's side of the dashboard.
#[derive(Debug)]
pub struct BrokerSource {
    journal: LocalSource,
    endpoint: String,
    handle: BrokerHandle,
    allocator: Arc<Allocator>,
}

impl BrokerSource {
    /// The jobs in the broker's `home`, the nodes of `handle`'s broker
    /// (listening on `endpoint`) and `allocator`'s queues.
    pub fn new(
        home: Home,
        endpoint: String,
        handle: BrokerHandle,
        allocator: Arc<Allocator>,
    ) -> Self {
        BrokerSource {
            journal: LocalSource::new(home),
            endpoint,
            handle,
            allocator,
        }
    }
}

impl Source for BrokerSource {
    fn place(&self) -> String {
        self.endpoint.clone()
    }

    fn jobs(&self, filter: &Filter) -> Result<Vec<JobView>> {
        let mut jobs = self.journal.jobs(filter)?;
        for job in &mut jobs {
            job.r#where = self.endpoint.clone();
        }
        Ok(jobs)
    }

    fn job(&self, id: JobId) -> Result<JobDetail> {
        let mut detail = self.journal.job(id)?;
        detail.job.r#where = self.endpoint.clone();
        Ok(detail)
    }

    fn logs(&self, id: JobId) -> Result<Vec<AttemptView>> {
        self.journal.logs(id)
    }

    fn totals(&self, id: JobId, bounds_us: &[u64]) -> Result<TaskTotals> {
        self.journal.totals(id, bounds_us)
    }

    fn output(&self, id: JobId, out: Destination) -> Result<()> {
        self.journal.output(id, out)
    }

    fn nodes(&self) -> Option<Vec<NodeInfo>> {
        Some(self.handle.nodes().unwrap_or_default())
    }

    fn allocations(&self) -> Option<Vec<Queue>> {
        Some(self.allocator.queues())
    }
}
