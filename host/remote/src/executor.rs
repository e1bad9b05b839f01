//! The scheduler's executor for cluster mode: a job's batches become lots
//! in the broker's queue, and nodes' results come back to its workers.

use std::sync::Arc;
use std::time::Duration;

use wrun_runtime::{Checkpointing, Ended, Failure, TaskFailure};
use wrun_scheduler::{BatchExecutor, BatchOutcome, Executor, Task};
use wrun_store::Digest;

use crate::broker::BrokerHandle;
use crate::convert;
use crate::protocol::{Data, MAX_INLINE, Work};
use crate::queue::{Lot, LotTask};

/// Runs a job's tasks on the broker's nodes.
#[derive(Debug)]
pub struct RemoteExecutor {
    broker: BrokerHandle,
    work: Arc<Work>,
    priority: i32,
    job: u64,
    lots: usize,
}

impl RemoteExecutor {
    /// Batches of a job in flight at once.
    pub const LOTS: usize = 16;

    /// An executor for a job running `work` at `priority`.
    pub fn new(broker: BrokerHandle, work: Work, priority: i32) -> Self {
        let job = broker.next_job();
        RemoteExecutor {
            broker,
            work: Arc::new(work),
            priority,
            job,
            lots: Self::LOTS,
        }
    }

    /// A chunk as sent: inline when small, else through the store.
    fn data(&self, bytes: &[u8]) -> Result<Data, String> {
        if bytes.len() <= MAX_INLINE {
            return Ok(Data::Inline(bytes.to_vec()));
        }
        self.broker
            .store()
            .put_unsynced(bytes)
            .map(|digest| Data::Stored(*digest.as_bytes()))
            .map_err(|e| e.to_string())
    }
}

fn host_failure(message: String) -> BatchOutcome {
    BatchOutcome {
        result: Err(TaskFailure {
            reason: Failure::Host { message },
            log: Vec::new(),
        }),
        started_at: wrun_journal::now(),
        wall: Duration::ZERO,
    }
}

impl Executor for RemoteExecutor {
    fn slots(&self) -> usize {
        self.lots
    }

    fn execute(
        &self,
        task: &Task,
        _checkpointing: Option<&Checkpointing<'_>>,
    ) -> Result<Ended, TaskFailure> {
        let mut result = None;
        self.execute_batch(std::slice::from_ref(task), &mut |_, outcome| {
            result = Some(outcome.result)
        });
        result.expect("a batch reports every task")
    }

    fn batches(&self) -> Option<&dyn BatchExecutor> {
        Some(self)
    }
}

impl BatchExecutor for RemoteExecutor {
    fn execute_batch(&self, tasks: &[Task], done: &mut dyn FnMut(usize, BatchOutcome)) {
        let mut pending = vec![true; tasks.len()];
        let mut lot_tasks = Vec::with_capacity(tasks.len());
        let mut positions = Vec::with_capacity(tasks.len());
        for (position, task) in tasks.iter().enumerate() {
            match self.data(&task.data) {
                Ok(data) => {
                    lot_tasks.push(LotTask {
                        data,
                        records: task.records.clone(),
                    });
                    positions.push(position);
                }
                Err(e) => {
                    pending[position] = false;
                    done(
                        position,
                        host_failure(format!("cannot store the chunk for the nodes: {e}")),
                    );
                }
            }
        }
        if positions.is_empty() {
            return;
        }
        let (reply, results) = crossbeam_channel::unbounded();
        let submitted = self.broker.submit(Lot {
            work: self.work.clone(),
            priority: self.priority,
            job_seq: self.job,
            tasks: lot_tasks,
            reply,
        });
        if submitted {
            // Ends when every task has its result, or when the broker's
            // queue is gone (the process is ending).
            for _ in 0..positions.len() {
                let Ok((at, result)) = results.recv() else {
                    break;
                };
                let position = positions[at];
                pending[position] = false;
                let store = self.broker.store();
                let outcome = convert::outcome_from_wire(result.outcome, |digest| {
                    store
                        .get(&Digest::from_bytes(*digest))
                        .ok()
                        .flatten()
                        .map(|bytes| bytes.to_vec())
                });
                done(
                    position,
                    BatchOutcome {
                        result: outcome.map(Ended::Finished),
                        started_at: result.started_at,
                        wall: Duration::from_micros(result.wall_us),
                    },
                );
            }
        }
        for (position, _) in pending.iter().enumerate().filter(|(_, p)| **p) {
            done(
                position,
                host_failure("the broker is shutting down".to_owned()),
            );
        }
    }
}
