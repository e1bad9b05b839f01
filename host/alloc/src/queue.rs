//! One allocation queue's policy, as a pure state machine: the broker tells
//! it how much work waits and what the batch system says, and it answers
//! how many allocations to submit and what changed. Nothing here runs a
//! command or reads a clock: times are milliseconds given by the caller.
//!
//! Rules:
//! * submit only while queued tasks exceed what pending allocations (not
//!   yet connected) will take (`slots` each), at most `backlog` pending
//!   and `max_nodes` unfinished at once;
//! * an allocation that fails to submit, fails in the batch system, or
//!   ends, or runs for [`CONNECT_TIMEOUT_MS`], without its node ever
//!   connecting is a failure; one whose node connected ends `finished`
//!   (or `failed` with the system's reason) and resets the count;
//! * after [`PAUSE_AFTER`] failures in a row the queue pauses itself with
//!   the last reason; `resume` clears the count.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::system::{BatchState, Observed, System};

/// Consecutive failed allocations after which a queue pauses itself.
pub const PAUSE_AFTER: u32 = 3;
/// A running allocation whose node has not connected after this long, in
/// milliseconds, is cancelled and counted as failed.
pub const CONNECT_TIMEOUT_MS: u64 = 120_000;

/// What `wrun alloc add` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSpec {
    /// The queue's name (`--name`): letters, digits, `-` and `_`.
    pub name: String,
    /// The batch system.
    pub system: System,
    /// The broker's endpoint as the nodes reach it.
    pub broker: String,
    /// Walltime of each allocation, also the node's `--lifetime` (whole
    /// seconds in JSON).
    #[serde(with = "secs")]
    pub time: Duration,
    /// Allocations unfinished at once, at most.
    pub max_nodes: u32,
    /// Tasks each node runs at once (cores asked for).
    pub slots: u32,
    /// Allocations waiting in the batch system at once, at most.
    pub backlog: u32,
    /// A node exits after this long without work (whole seconds in JSON).
    #[serde(with = "secs")]
    pub idle_timeout: Duration,
    /// Extra arguments for `sbatch`/`qsub`.
    pub extra: Vec<String>,
}

impl QueueSpec {
    /// The batch jobs' name: how polls find this queue's jobs.
    pub fn job_name(&self) -> String {
        format!("wrun-{}", self.name)
    }

    /// Whether `name` may name a queue (it becomes part of a job name and
    /// a directory name).
    pub fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

/// Whether a queue submits allocations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum QueueState {
    /// Submits when work waits.
    Active,
    /// Submits nothing: why (`paused by the user`, or the last failure).
    Paused(String),
}

/// An allocation's state as wrun records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum AllocState {
    /// Waiting in the batch system.
    Queued,
    /// Started.
    Running,
    /// Ended after its node connected.
    Finished,
    /// Did not start, or its node never connected, or ended abnormally:
    /// why.
    Failed(String),
}

impl AllocState {
    /// Whether it has ended.
    pub fn ended(&self) -> bool {
        matches!(self, AllocState::Finished | AllocState::Failed(_))
    }
}

/// One batch job submitted by a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The batch system's job id.
    pub id: String,
    /// Its state.
    #[serde(flatten)]
    pub state: AllocState,
    /// Whether its node has connected to the broker.
    pub connected: bool,
    /// When it was submitted, ms since the Unix epoch.
    pub submitted_at: u64,
    /// When the batch system first showed it running, ms since the Unix
    /// epoch.
    pub started_at: Option<u64>,
}

/// What a poll changed, for the journal and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An allocation's state or connection changed (its new form).
    Allocation(Allocation),
    /// An allocation to cancel in the batch system (its node never came).
    Cancel(String),
    /// The queue paused itself: why.
    Paused(String),
}

/// A queue, its allocations and its failure count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    /// What it was created with.
    pub spec: QueueSpec,
    /// Active or paused.
    #[serde(flatten)]
    pub state: QueueState,
    /// Allocations that failed in a row.
    pub failures: u32,
    /// Its allocations, oldest first (ended ones kept for `wrun alloc ls`).
    pub allocations: Vec<Allocation>,
}

impl Queue {
    /// A new, active queue.
    pub fn new(spec: QueueSpec) -> Queue {
        Queue {
            spec,
            state: QueueState::Active,
            failures: 0,
            allocations: Vec::new(),
        }
    }

    /// Allocations submitted whose node has not connected yet (queued, or
    /// started and starting up).
    pub fn pending(&self) -> u32 {
        self.allocations
            .iter()
            .filter(|a| !a.state.ended() && !a.connected)
            .count() as u32
    }

    /// Tasks the pending allocations will take when their nodes connect.
    pub fn pending_slots(&self) -> u64 {
        u64::from(self.pending()) * u64::from(self.spec.slots)
    }

    /// How many allocations to submit now for `unabsorbed` queued tasks
    /// that no connected or pending node (of any queue) will take.
    pub fn wanted(&self, unabsorbed: u64) -> u32 {
        if self.state != QueueState::Active || unabsorbed == 0 {
            return 0;
        }
        let unfinished = self.allocations.iter().filter(|a| !a.state.ended()).count() as u32;
        let nodes = unabsorbed.div_ceil(u64::from(self.spec.slots.max(1)));
        let room = self
            .spec
            .backlog
            .saturating_sub(self.pending())
            .min(self.spec.max_nodes.saturating_sub(unfinished));
        nodes.min(u64::from(room)) as u32
    }

    /// Job `id` was submitted at `now`.
    pub fn submitted(&mut self, id: String, now: u64) -> Change {
        let allocation = Allocation {
            id,
            state: AllocState::Queued,
            connected: false,
            submitted_at: now,
            started_at: None,
        };
        self.allocations.push(allocation.clone());
        Change::Allocation(allocation)
    }

    /// A submission failed: `why` (the submit command's words).
    pub fn submit_failed(&mut self, why: &str) -> Vec<Change> {
        self.failed(format!("submission failed: {why}"))
    }

    /// The node of allocation `id` connected (noted at `now`).
    pub fn connected(&mut self, id: &str, now: u64) -> Option<Change> {
        let allocation = self
            .allocations
            .iter_mut()
            .find(|a| a.id == id && !a.connected)?;
        allocation.connected = true;
        allocation.started_at.get_or_insert(now);
        if allocation.state == AllocState::Queued {
            allocation.state = AllocState::Running;
        }
        self.failures = 0;
        Some(Change::Allocation(allocation.clone()))
    }

    /// What a poll of the batch system showed at `now` (jobs of other
    /// names are ignored; an unfinished allocation missing from the
    /// listing has left the system).
    pub fn observe(&mut self, listing: &[Observed], now: u64) -> Vec<Change> {
        let name = self.spec.job_name();
        let mut changes = Vec::new();
        let mut failures = Vec::new();
        for allocation in self.allocations.iter_mut().filter(|a| !a.state.ended()) {
            let seen = listing
                .iter()
                .find(|o| o.id == allocation.id && o.name == name);
            let next = match (seen.map(|o| &o.state), allocation.connected) {
                (Some(BatchState::Queued), _) => AllocState::Queued,
                (Some(BatchState::Running), true) => AllocState::Running,
                (Some(BatchState::Running), false) => {
                    let started = *allocation.started_at.get_or_insert(now);
                    if now.saturating_sub(started) >= CONNECT_TIMEOUT_MS {
                        changes.push(Change::Cancel(allocation.id.clone()));
                        AllocState::Failed(format!(
                            "its node did not connect within {} s of the start",
                            CONNECT_TIMEOUT_MS / 1000
                        ))
                    } else {
                        AllocState::Running
                    }
                }
                (Some(BatchState::Finished) | None, true) => AllocState::Finished,
                (Some(BatchState::Failed(why)), _) => AllocState::Failed(why.clone()),
                (Some(BatchState::Finished), false) => {
                    AllocState::Failed("ended before its node connected".into())
                }
                (None, false) => {
                    AllocState::Failed("left the batch system before its node connected".into())
                }
            };
            if next == allocation.state {
                continue;
            }
            if let AllocState::Failed(why) = &next
                && !allocation.connected
            {
                failures.push(format!("allocation {}: {why}", allocation.id));
            }
            if next == AllocState::Running {
                allocation.started_at.get_or_insert(now);
            }
            allocation.state = next;
            changes.push(Change::Allocation(allocation.clone()));
        }
        for why in failures {
            changes.extend(self.failed(why));
        }
        changes
    }

    /// Count a failure; pause after [`PAUSE_AFTER`] in a row.
    fn failed(&mut self, why: String) -> Vec<Change> {
        self.failures += 1;
        if self.failures < PAUSE_AFTER || self.state != QueueState::Active {
            return Vec::new();
        }
        let reason = format!(
            "{} allocations failed in a row; the last: {why}",
            self.failures
        );
        self.state = QueueState::Paused(reason.clone());
        vec![Change::Paused(reason)]
    }

    /// `wrun alloc pause`.
    pub fn pause(&mut self) {
        self.state = QueueState::Paused("paused by the user".into());
    }

    /// `wrun alloc resume`: active again, failures forgotten.
    pub fn resume(&mut self) {
        self.state = QueueState::Active;
        self.failures = 0;
    }
}

/// A [`Duration`] as whole seconds.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests;
