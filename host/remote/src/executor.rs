//! The scheduler's executor for cluster mode: a job's batches become lots
//! in the broker's queue, and nodes' results come back to its workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;
use wrun_runtime::{Checkpointing, Ended, Failure, TaskFailure};
use wrun_scheduler::{
    BatchCheckpoints, BatchExecutor, BatchOutcome, BatchReport, Executor, LostDispatch, Task,
};
use wrun_store::Digest;

use crate::broker::BrokerHandle;
use crate::convert;
use crate::protocol::{Data, MAX_INLINE, Work};
use crate::queue::{Lot, LotEvent, LotTask};

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
    pub const LOTS: usize = 64;

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
            .map_err(|e| format!("cannot store the chunk for the nodes: {e}"))
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
        node: None,
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
        let mut one = One(None);
        self.execute_batch(std::slice::from_ref(task), None, &mut one);
        one.0
            .expect("a batch reports every task it does not abandon")
    }

    fn batches(&self) -> Option<&dyn BatchExecutor> {
        Some(self)
    }
}

impl BatchExecutor for RemoteExecutor {
    fn execute_batch(
        &self,
        tasks: &[Task],
        checkpoints: Option<&BatchCheckpoints<'_>>,
        report: &mut dyn BatchReport,
    ) {
        let mut pending = vec![true; tasks.len()];
        let mut lot_tasks = Vec::with_capacity(tasks.len());
        let mut positions = Vec::with_capacity(tasks.len());
        for (position, task) in tasks.iter().enumerate() {
            match self.data(&task.data) {
                Ok(data) => {
                    lot_tasks.push(LotTask {
                        data,
                        records: task.records.clone(),
                        resume: checkpoints
                            .and_then(|c| c.resume[position])
                            .map(|digest| *digest.as_bytes()),
                    });
                    positions.push(position);
                }
                Err(e) => {
                    pending[position] = false;
                    report.done(position, host_failure(e));
                }
            }
        }
        if positions.is_empty() {
            return;
        }
        let (reply, results) = crossbeam_channel::unbounded();
        let abandoned = Arc::new(AtomicBool::new(false));
        let requests = checkpoints.map(|c| c.requests);
        let snapshot_requests = Arc::new(AtomicU64::new(requests.map_or(0, |r| r.generation())));
        let submitted = self.broker.submit(Lot {
            work: self.work.clone(),
            checkpoints: checkpoints.map(|c| convert::checkpoints_to_wire(c.every)),
            snapshot_requests: snapshot_requests.clone(),
            priority: self.priority,
            job_seq: self.job,
            tasks: lot_tasks,
            reply,
            abandoned: abandoned.clone(),
        });
        let mut open = positions.len();
        let mut gone = !submitted;
        while open > 0 && !gone {
            let (at, result) = match results.recv_timeout(<dyn BatchReport>::PATIENCE) {
                Ok((at, LotEvent::Lost(lost))) => {
                    report.lost(positions[at], lost);
                    continue;
                }
                Ok((at, LotEvent::Checkpoint(snapshot))) => {
                    report.checkpoint(positions[at], convert::checkpoint_from_wire(snapshot));
                    continue;
                }
                Ok((at, LotEvent::Result(result, node))) => (at, (result, node)),
                Err(RecvTimeoutError::Timeout) => {
                    // `wrun snapshot JOB`: the broker asks the nodes.
                    if let Some(requests) = requests {
                        snapshot_requests.store(requests.generation(), Ordering::Release);
                    }
                    if report.keep_waiting() {
                        continue;
                    }
                    // The job stopped: the broker drops what it has not
                    // sent; what runs finishes unheard.
                    abandoned.store(true, Ordering::Release);
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    gone = true;
                    break;
                }
            };
            open -= 1;
            let position = positions[at];
            pending[position] = false;
            let store = self.broker.store();
            let (result, node) = result;
            let outcome = convert::outcome_from_wire(result.outcome, |digest| {
                store
                    .get(&Digest::from_bytes(*digest))
                    .ok()
                    .flatten()
                    .map(|bytes| bytes.to_vec())
            });
            report.done(
                position,
                BatchOutcome {
                    result: outcome,
                    started_at: result.started_at,
                    wall: Duration::from_micros(result.wall_us),
                    node: Some(node),
                },
            );
        }
        if gone {
            for (position, _) in pending.iter().enumerate().filter(|(_, p)| **p) {
                report.done(
                    position,
                    host_failure("the broker is shutting down".to_owned()),
                );
            }
        }
    }
}

/// Runs the batch and keeps waiting: for a single task.
struct One(Option<Result<Ended, TaskFailure>>);

impl BatchReport for One {
    fn done(&mut self, _: usize, outcome: BatchOutcome) {
        self.0 = Some(outcome.result);
    }

    /// `execute` returns only the task's end: its lost dispatches go untold.
    fn lost(&mut self, _: usize, _: LostDispatch) {}

    /// `execute` runs without checkpoints: none is reported.
    fn checkpoint(&mut self, _: usize, _: wrun_runtime::Checkpoint) {}

    fn keep_waiting(&mut self) -> bool {
        true
    }
}
