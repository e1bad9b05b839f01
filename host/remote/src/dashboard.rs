//! What `wrun broker --http` shows: the broker's journal (its clients'
//! jobs, read as the local dashboard reads a journal), the nodes
//! connected now and the allocation queues.

use std::sync::Arc;

use wrun_alloc::Queue;
use wrun_dashboard::{LocalSource, Source, Unanswered};
use wrun_jobs::views::{AttemptView, Filter, JobDetail, JobView};
use wrun_jobs::{Destination, Home, Result};
use wrun_journal::{JobId, TaskTotals};

use crate::allocator::Allocator;
use crate::broker::{BrokerHandle, NODES_WAIT};
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

    fn nodes(&self) -> Option<std::result::Result<Vec<NodeInfo>, Unanswered>> {
        Some(self.handle.nodes().ok_or_else(|| {
            Unanswered(format!(
                "the broker on {} did not list its nodes within {} s (its socket thread is busy \
                 or stuck): try again, and see the broker's log",
                self.endpoint,
                NODES_WAIT.as_secs()
            ))
        }))
    }

    fn allocations(&self) -> Option<Vec<Queue>> {
        Some(self.allocator.queues())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use wrun_store::BlobStore;

    use super::*;
    use crate::allocator::AllocatorConfig;
    use crate::broker::{Broker, BrokerConfig};
    use crate::key::ClusterKey;
    use crate::transport::Endpoint;

    #[test]
    fn nodes_a_stuck_socket_thread_does_not_list_are_unanswered_in_bounded_time() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let config = BrokerConfig {
            bind: Endpoint::parse("tcp://127.0.0.1:*").unwrap(),
            key: ClusterKey::loopback_default(),
            heartbeat: Duration::from_secs(1),
        };
        let store = Arc::new(BlobStore::open_local(dir.path()).unwrap());
        // Bound, never run: its socket thread answers nothing.
        let (broker, handle) = Broker::bind(config, store).unwrap();
        let allocator = Allocator::start(
            AllocatorConfig {
                home: home.clone(),
                wrun: "wrun".into(),
                key: None,
                poll: Duration::from_secs(60),
            },
            handle.load().clone(),
        )
        .unwrap();
        let source = BrokerSource::new(home, broker.endpoint(), handle, allocator);
        let asked = Instant::now();
        let error = source.nodes().expect("a broker has nodes").unwrap_err();
        assert!(asked.elapsed() < NODES_WAIT * 5, "{:?}", asked.elapsed());
        assert!(
            error.to_string().starts_with(&format!(
                "the broker on {} did not list its nodes within 2 s",
                broker.endpoint()
            )),
            "{error}"
        );
    }
}
