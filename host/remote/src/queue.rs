//! The broker's task queue: lots of tasks from every job, handed to nodes
//! by priority, tracked until each task's first result.
//!
//! A **lot** is a batch of tasks of one job, waiting for their results
//! together. Pending tasks are ordered by priority (higher first), then by
//! job (older first: FIFO within a priority), then by lot. Every dispatch of
//! a task gets a fresh **ticket**; a node's result names its ticket. When a
//! node dies its unanswered tickets are put back at the front of their lot,
//! so execution is at least once, and its job hears of each such lost
//! dispatch ([`LotEvent::Lost`]), to record it as an attempt; the first
//! result for a task resolves it and any later one (the dead node was only
//! slow, or a node re-sent results after reconnecting) is a duplicate:
//! counted and dropped.
//!
//! The queue keeps each task's latest snapshot (reported by its node while
//! it runs, or the one its job resumes it from): a task put back, because
//! its node died or drained, is sent again with it, and the next node
//! continues from there.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::Sender;
use wrun_journal::{Millis, QUARANTINE_AFTER};
use wrun_scheduler::LostDispatch;

use crate::protocol::{
    Assignment, Blake3, Checkpoints, Data, MAX_INLINE, Outcome, Snapshot, SuspendReason,
    TaskResult, WireFailure, WireTask, Work,
};

/// Which node a ticket went to.
pub type NodeId = u64;

/// A task of a lot.
#[derive(Debug, Clone)]
pub struct LotTask {
    /// The chunk.
    pub data: Data,
    /// Offsets of its records' starts in `data`.
    pub records: Vec<u32>,
    /// The snapshot to continue from, if an earlier run left one.
    pub resume: Option<Blake3>,
}

/// Tasks of one job, submitted together.
#[derive(Debug)]
pub struct Lot {
    /// What every task runs.
    pub work: Arc<Work>,
    /// How its tasks are snapshotted, if they are.
    pub checkpoints: Option<Checkpoints>,
    /// Bumped by the job for each `wrun snapshot` request: its tasks in
    /// flight are asked for a snapshot ([`Queue::snapshot_requests`]).
    pub snapshot_requests: Arc<AtomicU64>,
    /// Higher goes first.
    pub priority: i32,
    /// The job's arrival order at the broker.
    pub job_seq: u64,
    /// The tasks, in input order.
    pub tasks: Vec<LotTask>,
    /// What becomes of each task, with its position in `tasks`: its
    /// dispatches lost with their nodes, then its first result.
    pub reply: Sender<(usize, LotEvent)>,
    /// Set when the job stops waiting for the lot (it was cancelled or
    /// failed): its tasks not yet sent are dropped.
    pub abandoned: Arc<AtomicBool>,
}

/// What a lot's job hears of one of its tasks.
#[derive(Debug)]
pub enum LotEvent {
    /// A dispatch of the task died with its node, or its node drained.
    Lost(LostDispatch),
    /// The task was snapshotted (its blob is in the broker's store).
    Checkpoint(Snapshot),
    /// The task's first result (the last event of the task), and the
    /// name of the node that sent it.
    Result(TaskResult, String),
}

/// A dispatch of a task: to which lot, position and node, and when.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    lot: u64,
    position: usize,
    node: NodeId,
    sent_at: Millis,
}

struct LotState {
    lot: Lot,
    resolved: Vec<bool>,
    /// How many times each task's node died while running it since its
    /// latest snapshot.
    lost: Vec<u32>,
    /// Each task's latest snapshot.
    resume: Vec<Option<Blake3>>,
    /// The job's snapshot requests passed on to the nodes.
    snapshots_seen: u64,
    open: usize,
    tickets: Vec<u64>,
}

/// What became of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The first result for its task: handed to the job.
    Accepted,
    /// Its task had a result already (or its job is gone): dropped.
    Duplicate,
}

/// Pending tasks and tickets in flight.
pub struct Queue {
    /// Undispatched positions of each lot, in dispatch order.
    pending: BTreeMap<(Reverse<i32>, u64, u64), VecDeque<usize>>,
    lots: HashMap<u64, LotState>,
    /// Dispatches in flight, by ticket number.
    tickets: HashMap<u64, Ticket>,
    next_lot: u64,
    next_ticket: u64,
    queued: usize,
    /// Results dropped as duplicates.
    pub duplicates: u64,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("queued", &self.queued)
            .field("in_flight", &self.tickets.len())
            .field("duplicates", &self.duplicates)
            .finish()
    }
}

impl Queue {
    /// Node deaths during one task, each with no new snapshot, after
    /// which it fails: the journal's quarantine rule.
    pub const MAX_LOST: u32 = QUARANTINE_AFTER;

    /// Bytes of task data per assignment message, about.
    const MESSAGE_BYTES: usize = 8 * MAX_INLINE;

    /// An empty queue whose tickets start at `first_ticket`: a random
    /// start per broker process, so that a result a node computed for an
    /// earlier broker process cannot match a ticket of this one.
    pub fn new(first_ticket: u64) -> Queue {
        Queue {
            pending: BTreeMap::new(),
            lots: HashMap::new(),
            tickets: HashMap::new(),
            next_lot: 0,
            next_ticket: first_ticket,
            queued: 0,
            duplicates: 0,
        }
    }

    /// Queue a lot's tasks.
    pub fn push(&mut self, lot: Lot) {
        let id = self.next_lot;
        self.next_lot += 1;
        let n = lot.tasks.len();
        if n == 0 {
            return;
        }
        self.pending
            .insert((Reverse(lot.priority), lot.job_seq, id), (0..n).collect());
        self.queued += n;
        let resume = lot.tasks.iter().map(|t| t.resume).collect();
        let snapshots_seen = lot.snapshot_requests.load(Ordering::Acquire);
        self.lots.insert(
            id,
            LotState {
                lot,
                resolved: vec![false; n],
                lost: vec![0; n],
                resume,
                snapshots_seen,
                open: n,
                tickets: Vec::new(),
            },
        );
    }

    /// Tasks waiting for a node.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Tasks dispatched and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.tickets.len()
    }

    /// Tasks dispatched to `node` and not yet answered.
    pub fn in_flight_on(&self, node: NodeId) -> usize {
        self.tickets.values().filter(|t| t.node == node).count()
    }

    /// Up to `credit` tasks for `node`, highest priority first, as
    /// messages of at most about [`Self::MESSAGE_BYTES`] of inline data.
    pub fn take(&mut self, node: NodeId, credit: usize) -> Vec<Vec<Assignment>> {
        let mut messages = Vec::new();
        let mut message: Vec<Assignment> = Vec::new();
        let mut bytes = 0;
        let mut left = credit;
        while left > 0 {
            let Some(mut entry) = self.pending.first_entry() else {
                break;
            };
            let lot_id = entry.key().2;
            let state = self.lots.get_mut(&lot_id).expect("pending lots exist");
            if state.lot.abandoned.load(Ordering::Acquire) {
                // Its job stopped waiting: drop what was not sent.
                let dropped = entry.remove().len();
                self.queued -= dropped;
                state.open -= dropped;
                if state.open == 0 {
                    self.forget(lot_id);
                }
                continue;
            }
            let mut tasks = Vec::new();
            while left > 0 && bytes < Self::MESSAGE_BYTES {
                let Some(position) = entry.get_mut().pop_front() else {
                    break;
                };
                if state.resolved[position] {
                    // Put back after its node died, then answered late.
                    self.queued -= 1;
                    continue;
                }
                let task = &state.lot.tasks[position];
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                self.tickets.insert(
                    ticket,
                    Ticket {
                        lot: lot_id,
                        position,
                        node,
                        sent_at: wrun_journal::now(),
                    },
                );
                state.tickets.push(ticket);
                bytes += 64 + 4 * task.records.len();
                if let Data::Inline(data) = &task.data {
                    bytes += data.len();
                }
                tasks.push(WireTask {
                    ticket,
                    data: task.data.clone(),
                    records: task.records.clone(),
                    resume: state.resume[position],
                });
                left -= 1;
                self.queued -= 1;
            }
            if entry.get().is_empty() {
                entry.remove();
            }
            if !tasks.is_empty() {
                message.push(Assignment {
                    work: Work::clone(&state.lot.work),
                    checkpoints: state.lot.checkpoints,
                    tasks,
                });
            }
            if bytes >= Self::MESSAGE_BYTES {
                messages.push(std::mem::take(&mut message));
                bytes = 0;
            }
        }
        if !message.is_empty() {
            messages.push(message);
        }
        messages
    }

    /// A node's result for a ticket. A task its node suspended because it
    /// drains is not resolved: it is put back at the front of its lot, to
    /// continue on another node from the snapshot it was suspended with,
    /// and its job hears of the move as a dispatch lost with `drained` as
    /// the reason.
    pub fn complete(&mut self, mut result: TaskResult, node: &str, drained: &str) -> Completion {
        let Some(&Ticket {
            lot: lot_id,
            position,
            sent_at,
            ..
        }) = self.tickets.get(&result.ticket)
        else {
            self.duplicates += 1;
            return Completion::Duplicate;
        };
        self.tickets.remove(&result.ticket);
        let state = self.lots.get_mut(&lot_id).expect("tickets name live lots");
        if state.resolved[position] {
            self.duplicates += 1;
            return Completion::Duplicate;
        }
        if let Outcome::Suspended {
            reason: SuspendReason::Drain,
            resume_from,
            ..
        } = &mut result.outcome
        {
            if let Some(snapshot) = resume_from.take() {
                self.snapshotted(lot_id, position, snapshot);
            }
            let state = self.lots.get_mut(&lot_id).expect("live lot");
            let _ = state.lot.reply.send((
                position,
                LotEvent::Lost(LostDispatch {
                    node: node.to_owned(),
                    reason: drained.to_owned(),
                    started_at: sent_at,
                    ended_at: wrun_journal::now(),
                    requeued: true,
                }),
            ));
            self.put_back(lot_id, position);
            return Completion::Accepted;
        }
        self.resolve(lot_id, position, result, node);
        Completion::Accepted
    }

    /// A running task's snapshot, whose blob the broker's store holds: it
    /// is the task's latest, and its job records it. False when the ticket
    /// is no longer in flight (the snapshot is not used).
    pub fn checkpoint(&mut self, ticket: u64, snapshot: Snapshot) -> bool {
        let Some(&Ticket { lot, position, .. }) = self.tickets.get(&ticket) else {
            return false;
        };
        if self.lots.get(&lot).is_none_or(|s| s.resolved[position]) {
            return false;
        }
        self.snapshotted(lot, position, snapshot);
        true
    }

    fn snapshotted(&mut self, lot_id: u64, position: usize, snapshot: Snapshot) {
        let state = self.lots.get_mut(&lot_id).expect("live lot");
        state.resume[position] = Some(snapshot.digest);
        // A task that makes progress is not the one killing its nodes.
        state.lost[position] = 0;
        let _ = state
            .lot
            .reply
            .send((position, LotEvent::Checkpoint(snapshot)));
    }

    /// Put a task back at the front of its lot's pending tasks.
    fn put_back(&mut self, lot_id: u64, position: usize) -> bool {
        let state = &self.lots[&lot_id];
        let key = (Reverse(state.lot.priority), state.lot.job_seq, lot_id);
        let positions = self.pending.entry(key).or_default();
        if positions.contains(&position) {
            return false;
        }
        positions.push_front(position);
        self.queued += 1;
        true
    }

    /// The tickets in flight of every lot whose job asked for a snapshot
    /// since the last call, by node.
    pub fn snapshot_requests(&mut self) -> HashMap<NodeId, Vec<u64>> {
        let mut asked = HashMap::<NodeId, Vec<u64>>::new();
        for state in self.lots.values_mut() {
            let requested = state.lot.snapshot_requests.load(Ordering::Acquire);
            if requested == state.snapshots_seen {
                continue;
            }
            state.snapshots_seen = requested;
            for ticket in &state.tickets {
                if let Some(t) = self.tickets.get(ticket) {
                    asked.entry(t.node).or_default().push(*ticket);
                }
            }
        }
        asked
    }

    /// Hand a task's result to its job.
    fn resolve(&mut self, lot_id: u64, position: usize, result: TaskResult, node: &str) {
        let state = self.lots.get_mut(&lot_id).expect("live lot");
        state.resolved[position] = true;
        state.open -= 1;
        let _ = state
            .lot
            .reply
            .send((position, LotEvent::Result(result, node.to_owned())));
        if state.open == 0 {
            self.forget(lot_id);
        }
    }

    /// Drop a lot whose every task is resolved or dropped, with its
    /// tickets and anything of it still pending.
    fn forget(&mut self, lot_id: u64) {
        let state = self.lots.remove(&lot_id).expect("present");
        for ticket in state.tickets {
            self.tickets.remove(&ticket);
        }
        // A task still pending (put back after a node died, then answered
        // by the dead node's late result) is not run again.
        self.queued -= self
            .pending
            .iter()
            .filter(|(key, _)| key.2 == lot_id)
            .map(|(_, positions)| positions.len())
            .sum::<usize>();
        self.pending.retain(|key, _| key.2 != lot_id);
    }

    /// `node`, named `name`, is gone (`reason` says how it was found):
    /// put its unanswered tasks back at the front of their lots, telling
    /// each task's job of the lost dispatch. Returns how many. A task
    /// whose node died [`Self::MAX_LOST`] times while running it fails
    /// instead (a host failure, which the job's `--retries` may run
    /// again): a task that kills its node does not take down every node in
    /// turn, forever.
    pub fn requeue(&mut self, node: NodeId, name: &str, reason: &str) -> usize {
        let mut lost: Vec<(u64, usize, u64, Millis)> = self
            .tickets
            .iter()
            .filter(|(_, t)| t.node == node)
            .map(|(&ticket, t)| (t.lot, t.position, ticket, t.sent_at))
            .collect();
        lost.sort_unstable();
        let now = wrun_journal::now();
        let mut requeued = 0;
        for (lot_id, position, ticket, sent_at) in lost.into_iter().rev() {
            let Some(state) = self.lots.get_mut(&lot_id) else {
                continue;
            };
            if state.resolved[position] {
                continue;
            }
            state.lost[position] += 1;
            let deaths = state.lost[position];
            let again = deaths < Self::MAX_LOST;
            let dispatch = LostDispatch {
                node: name.to_owned(),
                reason: reason.to_owned(),
                started_at: sent_at,
                ended_at: now,
                requeued: again,
            };
            let _ = state.lot.reply.send((position, LotEvent::Lost(dispatch)));
            if !again {
                let result = lost_task(ticket, name, deaths, sent_at, now);
                self.resolve(lot_id, position, result, name);
                continue;
            }
            requeued += usize::from(self.put_back(lot_id, position));
        }
        // Its tickets stay known: a late result from it still counts.
        requeued
    }
}

/// The result of a task whose node died too often while running it: its
/// last dispatch, to `node` at `sent_at`, found dead at `now`.
fn lost_task(ticket: u64, node: &str, deaths: u32, sent_at: Millis, now: Millis) -> TaskResult {
    TaskResult {
        ticket,
        started_at: sent_at,
        wall_us: u64::try_from(now - sent_at).unwrap_or(0) * 1000,
        outcome: Outcome::Failed {
            failure: WireFailure::Host {
                message: format!(
                    "node {node} presumed dead: the nodes running it died {deaths} times with \
                     no new snapshot (the task may be what kills them); not sent to another \
                     node"
                ),
            },
            log: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Limits;

    fn lot(
        priority: i32,
        job_seq: u64,
        n: usize,
    ) -> (Lot, crossbeam_channel::Receiver<(usize, LotEvent)>) {
        let (reply, results) = crossbeam_channel::unbounded();
        let work = Arc::new(Work {
            module: [job_seq as u8; 32],
            args: Vec::new(),
            limits: Limits {
                fuel: None,
                timeout_ms: None,
                memory: 1 << 20,
                output: 1 << 20,
            },
            data: Vec::new(),
        });
        let tasks = (0..n)
            .map(|i| LotTask {
                data: Data::Inline(vec![i as u8]),
                records: vec![0],
                resume: None,
            })
            .collect();
        (
            Lot {
                work,
                checkpoints: None,
                snapshot_requests: Arc::default(),
                priority,
                job_seq,
                tasks,
                reply,
                abandoned: Arc::default(),
            },
            results,
        )
    }

    fn result(ticket: u64) -> TaskResult {
        TaskResult {
            ticket,
            started_at: 0,
            wall_us: 0,
            outcome: Outcome::Finished {
                output: Data::Inline(Vec::new()),
                log: Vec::new(),
                fuel_used: None,
            },
        }
    }

    fn tickets(messages: &[Vec<Assignment>]) -> Vec<(u8, u64)> {
        messages
            .iter()
            .flatten()
            .flat_map(|a| a.tasks.iter().map(|t| (a.work.module[0], t.ticket)))
            .collect()
    }

    #[test]
    fn higher_priority_first_then_fifo_and_never_more_than_the_credit() {
        let mut queue = Queue::new(0);
        let (low, _l) = lot(0, 1, 2);
        let (older, _o) = lot(5, 2, 2);
        let (newer, _n) = lot(5, 3, 2);
        queue.push(newer);
        queue.push(low);
        queue.push(older);
        let taken = tickets(&queue.take(1, 3));
        let jobs: Vec<u8> = taken.iter().map(|t| t.0).collect();
        assert_eq!(jobs, [2, 2, 3]);
        assert_eq!(queue.queued(), 3);
        let jobs: Vec<u8> = tickets(&queue.take(1, 10)).iter().map(|t| t.0).collect();
        assert_eq!(jobs, [3, 1, 1]);
        assert_eq!(queue.queued(), 0);
    }

    #[test]
    fn a_dead_nodes_tasks_are_requeued_and_the_first_result_wins() {
        let mut queue = Queue::new(1 << 40);
        let (lot, results) = lot(0, 1, 3);
        queue.push(lot);
        let first = tickets(&queue.take(7, 3));
        assert_eq!(
            queue.complete(result(first[0].1), "n7", ""),
            Completion::Accepted
        );
        assert!(matches!(results.try_recv(), Ok((0, LotEvent::Result(..)))));
        // Node 7 dies with two tasks unanswered: its job hears of both
        // lost dispatches.
        assert_eq!(queue.requeue(7, "n7", "node n7 presumed dead"), 2);
        let lost: Vec<(usize, String, bool)> = results
            .try_iter()
            .filter_map(|(p, event)| match event {
                LotEvent::Lost(lost) => Some((p, lost.node, lost.requeued)),
                LotEvent::Result(..) | LotEvent::Checkpoint(_) => None,
            })
            .collect();
        assert_eq!(lost, [(2, "n7".into(), true), (1, "n7".into(), true)]);
        let second = tickets(&queue.take(8, 10));
        assert_eq!(second.len(), 2);
        // Put back in order, at the front.
        let position = |queue: &Queue, ticket: u64| queue.tickets[&ticket].position;
        assert_eq!(position(&queue, second[0].1), 1);
        assert_eq!(position(&queue, second[1].1), 2);
        // The dead node was only slow: its late result wins...
        assert_eq!(
            queue.complete(result(first[1].1), "n7", ""),
            Completion::Accepted
        );
        // ...and the re-run's is a duplicate.
        assert_eq!(
            queue.complete(result(second[0].1), "n8", ""),
            Completion::Duplicate
        );
        assert_eq!(
            queue.complete(result(second[1].1), "n8", ""),
            Completion::Accepted
        );
        assert_eq!(queue.duplicates, 1);
        let mut positions: Vec<usize> = results
            .try_iter()
            .filter(|(_, event)| matches!(event, LotEvent::Result(..)))
            .map(|(p, _)| p)
            .collect();
        positions.push(0);
        positions.sort();
        assert_eq!(positions, [0, 1, 2]);
        // Everything is resolved: a result from a forgotten ticket is a
        // duplicate too.
        assert_eq!(
            queue.complete(result(first[2].1), "n7", ""),
            Completion::Duplicate
        );
        assert_eq!((queue.queued(), queue.in_flight()), (0, 0));
    }

    #[test]
    fn an_abandoned_lot_sends_nothing_more_and_is_forgotten() {
        let mut queue = Queue::new(0);
        let (lot, _results) = lot(0, 1, 4);
        let abandoned = lot.abandoned.clone();
        queue.push(lot);
        let sent = tickets(&queue.take(1, 1));
        abandoned.store(true, Ordering::Release);
        assert!(queue.take(1, 10).is_empty());
        assert_eq!(queue.queued(), 0);
        // The task in flight still ends it; then nothing is left.
        assert_eq!(
            queue.complete(result(sent[0].1), "n1", ""),
            Completion::Accepted
        );
        assert!(queue.lots.is_empty() && queue.tickets.is_empty());
    }

    #[test]
    fn a_task_whose_node_keeps_dying_fails_instead_of_going_round() {
        let mut queue = Queue::new(0);
        let (lot, results) = lot(0, 1, 1);
        queue.push(lot);
        for node in 1..u64::from(Queue::MAX_LOST) {
            assert_eq!(tickets(&queue.take(node, 1)).len(), 1);
            assert_eq!(queue.requeue(node, "n", "node n presumed dead"), 1);
        }
        queue.take(9, 1);
        assert_eq!(queue.requeue(9, "n9", "node n9 presumed dead"), 0);
        let events: Vec<LotEvent> = results.try_iter().map(|(_, event)| event).collect();
        let [lost @ .., LotEvent::Result(result, _)] = &events[..] else {
            panic!("{events:?}");
        };
        // Every death is told; the last is not sent again.
        let requeued: Vec<bool> = lost
            .iter()
            .map(|event| match event {
                LotEvent::Lost(lost) => lost.requeued,
                LotEvent::Result(..) | LotEvent::Checkpoint(_) => panic!("one result"),
            })
            .collect();
        assert_eq!(requeued, [true, true, false]);
        match &result.outcome {
            Outcome::Failed {
                failure: WireFailure::Host { message },
                ..
            } => assert!(
                message.starts_with(
                    "node n9 presumed dead: the nodes running it died 3 times \
                     with no new snapshot"
                ),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!((queue.queued(), queue.in_flight()), (0, 0));
    }

    fn snapshot(digest: u8) -> Snapshot {
        Snapshot {
            digest: [digest; 32],
            blob: None,
            stored: 1,
            bases: Vec::new(),
            cursor: crate::protocol::Cursor::Steps(u64::from(digest)),
            fuel_used: None,
        }
    }

    #[test]
    fn a_drained_task_moves_with_its_snapshot_and_a_snapshot_resets_the_deaths() {
        let mut queue = Queue::new(0);
        let (lot, results) = lot(0, 1, 1);
        queue.push(lot);
        // Two deaths, then progress: the deaths no longer count.
        for node in 1..u64::from(Queue::MAX_LOST) {
            queue.take(node, 1);
            queue.requeue(node, "n", "node n presumed dead");
        }
        let sent = tickets(&queue.take(5, 1))[0].1;
        assert!(queue.checkpoint(sent, snapshot(7)));
        queue.requeue(5, "n5", "node n5 presumed dead");
        let resent = queue.take(6, 1);
        assert_eq!(resent[0][0].tasks[0].resume, Some([7; 32]));
        // Node 6 drains: the task is suspended with a newer snapshot and
        // goes on from it elsewhere, a move, not a result.
        let drained = TaskResult {
            ticket: resent[0][0].tasks[0].ticket,
            started_at: 0,
            wall_us: 0,
            outcome: Outcome::Suspended {
                reason: SuspendReason::Drain,
                resume_from: Some(snapshot(9)),
                log: Vec::new(),
            },
        };
        assert_eq!(
            queue.complete(drained, "n6", "node n6 drained (SIGUSR1)"),
            Completion::Accepted
        );
        assert_eq!(queue.queued(), 1);
        let next = queue.take(7, 1);
        assert_eq!(next[0][0].tasks[0].resume, Some([9; 32]));
        let events: Vec<String> = results
            .try_iter()
            .map(|(_, event)| match event {
                LotEvent::Lost(lost) => format!("lost {} {}", lost.node, lost.requeued),
                LotEvent::Checkpoint(s) => format!("snapshot {}", s.digest[0]),
                LotEvent::Result(..) => "result".to_owned(),
            })
            .collect();
        assert_eq!(
            events,
            [
                "lost n true",
                "lost n true",
                "snapshot 7",
                "lost n5 true",
                "snapshot 9",
                "lost n6 true"
            ]
        );
        // A snapshot for a ticket no longer in flight is not used.
        assert!(!queue.checkpoint(resent[0][0].tasks[0].ticket, snapshot(11)));
    }
}
