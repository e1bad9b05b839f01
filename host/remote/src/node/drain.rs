//! A node's drain: before its walltime ends (or at SIGTERM/SIGUSR1) it
//! takes no new task, suspends its running tasks at their next call
//! boundary with a snapshot, sends the snapshots to the broker, which
//! queues those tasks again to go on elsewhere, and leaves.
//!
//! [`Node::drain`] is the one entry point: the walltime timer
//! ([`Walltime`]) and the signals (through a [`DrainHandle`], from another
//! thread) both call it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::protocol::{Outcome, SuspendReason, TaskResult, ToBroker, Work};
use crate::transport::Waker;

use super::Node;

/// When a node's allocation ends, and how long before that it drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walltime {
    /// When the batch system kills the node.
    pub ends: SystemTime,
    /// How long before `ends` the drain starts; raised to the longest
    /// time-based checkpoint interval of the jobs the node runs.
    pub drain_before: Duration,
}

impl Walltime {
    /// `--drain-before`'s default for a walltime of which `left` remains:
    /// three minutes (time for a running task to reach a call boundary and
    /// for its snapshot to travel), or a tenth of `left` when that is
    /// shorter, so that a short allocation still works most of its time.
    pub fn default_drain_before(left: Duration) -> Duration {
        Duration::from_secs(180).min(left / 10)
    }
}

/// Asks a running node to drain, from any thread.
#[derive(Debug, Clone)]
pub struct DrainHandle {
    asked: Arc<Mutex<Option<String>>>,
    waker: Arc<Waker>,
}

impl DrainHandle {
    pub(super) fn new(waker: Arc<Waker>) -> DrainHandle {
        DrainHandle {
            asked: Arc::default(),
            waker,
        }
    }

    /// Drain the node now; `reason` ("SIGTERM") goes to its log and the
    /// broker's.
    pub fn drain(&self, reason: &str) {
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        asked.get_or_insert_with(|| reason.to_owned());
        drop(asked);
        self.waker.wake();
    }

    /// The reason of a drain asked for and not yet taken.
    pub(super) fn take(&self) -> Option<String> {
        self.asked.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Run times of the WASI command tasks a node finished, by what they run:
/// a command cannot be snapshotted, so none is started when the node's
/// time left is below its median (the node drains instead, and the task
/// runs elsewhere from its start).
#[derive(Debug, Default)]
pub(super) struct CommandTimes {
    by_work: HashMap<Work, VecDeque<Duration>>,
}

impl CommandTimes {
    /// Run times kept per work, the latest.
    const KEEP: usize = 101;

    pub(super) fn record(&mut self, work: &Work, wall: Duration) {
        let times = self.by_work.entry(work.clone()).or_default();
        if times.len() == Self::KEEP {
            times.pop_front();
        }
        times.push_back(wall);
    }

    /// The median run time of `work`'s tasks here, once one finished.
    pub(super) fn median(&self, work: &Work) -> Option<Duration> {
        let mut times: Vec<Duration> = self.by_work.get(work)?.iter().copied().collect();
        times.sort_unstable();
        times.get(times.len() / 2).copied()
    }
}

/// A drain in progress.
#[derive(Debug)]
pub(super) struct Draining {
    pub(super) reason: String,
    /// The node leaves then, whatever still runs (the broker queues it
    /// again from its last snapshot).
    pub(super) deadline: Instant,
}

impl Node {
    /// How long a drain waits for running tasks to reach a call boundary
    /// when the walltime leaves more (a signal's drain: Slurm's default
    /// `KillWait` is 30 s).
    pub const DRAIN_GRACE: Duration = Duration::from_secs(20);

    /// Drain: take no new task, suspend the running ones at their next
    /// call boundary with a snapshot (reported to the broker with their
    /// suspension), hand back the tasks not started, tell the broker, and
    /// leave once every task is reported ([`Node::run`] then returns
    /// `Ok`), or at the deadline: the walltime's end less a margin, at
    /// most [`Node::DRAIN_GRACE`] from now.
    pub fn drain(&mut self, reason: &str) {
        if self.draining.is_some() {
            return;
        }
        let grace = match self.config.walltime {
            Some(walltime) => walltime
                .ends
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(Duration::from_secs(2))
                .min(Self::DRAIN_GRACE),
            None => Self::DRAIN_GRACE,
        };
        self.log(format!(
            "draining ({reason}): no new tasks; {} running tasks are suspended at their next \
             call boundary and go on elsewhere from their snapshots",
            self.running()
        ));
        self.draining = Some(Draining {
            reason: reason.to_owned(),
            deadline: Instant::now() + grace,
        });
        self.requests.drain();
        self.send(&ToBroker::Draining(reason.to_owned()));
        self.unused = 0;
        let parked: Vec<u64> = std::mem::take(&mut self.parked)
            .into_iter()
            .map(|p| p.task.ticket)
            .collect();
        let queued: Vec<u64> = self.queued.try_iter().map(|t| t.ticket).collect();
        for ticket in parked.into_iter().chain(queued) {
            self.hand_back(ticket);
        }
    }

    /// A task not started, returned to the broker as suspended by the
    /// drain without a new snapshot: it goes on from the one it came with.
    pub(super) fn hand_back(&mut self, ticket: u64) {
        self.in_hand = self.in_hand.saturating_sub(1);
        self.oldest_unsent.get_or_insert_with(Instant::now);
        self.unsent.push(TaskResult {
            ticket,
            started_at: wrun_journal::now(),
            wall_us: 0,
            outcome: Outcome::Suspended {
                reason: SuspendReason::Drain,
                resume_from: None,
                log: Vec::new(),
            },
        });
    }

    /// Why a command task of `work` must not start here: the time left
    /// before the walltime ends is below its median run time.
    pub(super) fn too_little_time_for(&self, work: &Work) -> Option<String> {
        let walltime = self.config.walltime?;
        let median = self.command_times.median(work)?;
        let left = walltime
            .ends
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        (left < median).then(|| {
            format!(
                "its walltime leaves {}s, less than the median run time of its command tasks \
                 ({}s), which cannot be snapshotted",
                left.as_secs(),
                median.as_secs_f64().ceil()
            )
        })
    }

    /// Tasks received and not yet ended.
    fn running(&self) -> usize {
        self.in_hand
    }

    /// Start the drain when asked to or when the walltime says so; true
    /// once a drain is over: every task reported, or its deadline passed.
    pub(super) fn drain_due(&mut self) -> bool {
        if let Some(reason) = self.drainer.take() {
            self.drain(&reason);
        }
        if let Some(walltime) = self.config.walltime
            && self.draining.is_none()
        {
            let before = walltime.drain_before.max(self.longest_interval);
            if SystemTime::now() + before >= walltime.ends {
                let ends = humantime::format_rfc3339_seconds(walltime.ends);
                self.drain(&format!("its walltime ends at {ends}"));
            }
        }
        let Some(draining) = &self.draining else {
            return false;
        };
        let reported = self.in_hand == 0 && self.unsent.is_empty() && self.checkpoints.is_empty();
        if reported {
            self.log(format!("drained ({}); leaving", draining.reason));
            return true;
        }
        if Instant::now() >= draining.deadline {
            self.log(format!(
                "drain deadline passed with {} tasks still inside a call; leaving (the broker \
                 queues them again from their last snapshots)",
                self.in_hand
            ));
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Limits;

    #[test]
    fn the_median_command_time_is_per_work_and_of_the_latest_runs() {
        let work = |module: u8| Work {
            module: [module; 32],
            args: Vec::new(),
            limits: Limits {
                fuel: None,
                timeout_ms: None,
                memory: 1 << 20,
                output: 1 << 20,
            },
            data: Vec::new(),
        };
        let mut times = CommandTimes::default();
        assert_eq!(times.median(&work(1)), None);
        for secs in [5, 1, 3] {
            times.record(&work(1), Duration::from_secs(secs));
        }
        times.record(&work(2), Duration::from_secs(60));
        assert_eq!(times.median(&work(1)), Some(Duration::from_secs(3)));
        assert_eq!(times.median(&work(2)), Some(Duration::from_secs(60)));
        // Only the latest runs count.
        for _ in 0..CommandTimes::KEEP {
            times.record(&work(1), Duration::from_secs(9));
        }
        assert_eq!(times.median(&work(1)), Some(Duration::from_secs(9)));
    }
}
