//! A node: connects to the broker, asks for as many tasks as it can run
//! soon, runs them in the sandbox on its slots, and returns the results.
//!
//! One thread owns the socket; `slots` threads run tasks. The node keeps its
//! own store (compiled-module cache, fetched modules and chunks): a module
//! or a large chunk is fetched from the broker by digest only when the store
//! lacks it, in parts written to the store as they come (see [`fetch`]).
//! Credit follows measured task time: about
//! [`Node::QUEUE_TIME`] of work per slot is kept at hand, so tiny tasks
//! travel in large batches and slow ones one at a time. When the broker
//! falls silent for three heartbeat intervals the node says hello again,
//! backing off exponentially up to five seconds; results that were not
//! sent are kept and sent in the new session (the broker drops any it has
//! already had from another node).
//!
//! A recorded job's tasks run checkpointed: their snapshots go to the
//! broker as they are taken (only the blob's new pages: earlier snapshots of
//! the task are its bases, already sent), and a task that comes with a
//! snapshot continues from it, its blobs fetched like chunks. The node
//! drains (see [`drain`]) before its walltime ends or at a signal, and
//! leaves after `--idle-timeout` without work (see [`idle`]).

mod drain;
mod fetch;
mod idle;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use wrun_runtime::{
    Checkpoint, Checkpointing, Chunk, Ended, Failure, Limits, Nesting, Requests, Runtime,
    TaskFailure, TaskOutput, TaskRunner,
};
use wrun_store::{BlobStore, Digest};

use drain::{CommandTimes, Draining};
pub use drain::{DrainHandle, Walltime};

use crate::convert;
use crate::key::ClusterKey;
use crate::protocol::{
    self, Blake3, Checkpoints, Data, Hello, MAX_CREDIT, MAX_INLINE, MAX_MESSAGE, Outcome,
    PROTOCOL_VERSION, Role, Snapshot, TaskCheckpoint, TaskResult, ToBroker, ToPeer, Welcome,
    WireTask, Work,
};
use crate::transport::{self, Endpoint, TransportError, WakeReceiver, Waker};
use crate::wire::{self, FrameKey, Kind, Nonce, Opener, Sealer};
use fetch::{Fetches, Progress};
use idle::Idle;

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The broker's endpoint.
    pub connect: Endpoint,
    /// The key every peer must share.
    pub key: ClusterKey,
    /// The node's name, as the broker reports it.
    pub name: String,
    /// Tasks run at once.
    pub slots: usize,
    /// Compiled modules, fetched blobs, large outputs.
    pub store: Arc<BlobStore>,
    /// The store is the broker's too (a shared path or bucket): large
    /// outputs go there instead of into messages.
    pub shared_store: bool,
    /// Runtime limits besides each job's own (log size, stack, ...).
    pub base_limits: Limits,
    /// When the node's allocation ends, if it does.
    pub walltime: Option<Walltime>,
    /// Leave after this long without work.
    pub idle_timeout: Option<Duration>,
    /// The batch job the node runs in, told to the broker.
    pub allocation: Option<String>,
}

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The socket could not be made or connected.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The broker refused this node for good (another protocol version).
    #[error("the broker refused this node: {0}")]
    Refused(String),
}

/// A task ready for a slot.
struct SlotTask {
    runner: Arc<TaskRunner>,
    ticket: u64,
    data: Bytes,
    records: Vec<u32>,
    checkpoints: Option<Checkpoints>,
    resume: Option<Digest>,
}

enum Availability {
    Here(Bytes),
    Fetching,
    Gone(String),
}

/// A task waiting for its module, chunk or snapshot.
struct Parked {
    work: Arc<Work>,
    checkpoints: Option<Checkpoints>,
    task: WireTask,
}

enum State {
    Connecting {
        nonce: Nonce,
        sent: Instant,
        backoff: Duration,
    },
    Live {
        sealer: Sealer,
        opener: Opener,
        heartbeat: Duration,
        last_seen: Instant,
        last_sent: Instant,
    },
}

/// A running node.
pub struct Node {
    config: NodeConfig,
    _context: zmq::Context,
    socket: zmq::Socket,
    wake: WakeReceiver,
    slots: Sender<SlotTask>,
    queued: Receiver<SlotTask>,
    results: Receiver<TaskResult>,
    /// Snapshots the slots took, to send.
    snapshots: Receiver<TaskCheckpoint>,
    checkpoints: Vec<TaskCheckpoint>,
    /// What the slots' running tasks are asked (snapshot now, drain).
    requests: Arc<Requests>,
    drainer: DrainHandle,
    draining: Option<Draining>,
    /// The broker answered this node's goodbye.
    farewell: bool,
    /// Command tasks running, by ticket, and how long finished ones took.
    commands: HashMap<u64, Arc<Work>>,
    command_times: CommandTimes,
    /// The longest time-based checkpoint interval of the tasks received.
    longest_interval: Duration,
    state: State,
    runtimes: HashMap<protocol::Limits, Runtime>,
    runners: HashMap<Work, Result<Arc<TaskRunner>, String>>,
    parked: Vec<Parked>,
    fetches: Fetches,
    /// Blobs the broker cannot send (it lacks them, or sent other bytes),
    /// and why; forgotten when the node connects again.
    unavailable: HashMap<Blake3, String>,
    /// Tasks received and not yet reported.
    in_hand: usize,
    /// Credit granted and not yet used by the broker.
    unused: usize,
    /// Mean task time, microseconds.
    mean_us: f64,
    unsent: Vec<TaskResult>,
    oldest_unsent: Option<Instant>,
    ran: u64,
    ran_logged: u64,
    logged_at: Instant,
    idle: Idle,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.config.name)
            .field("in_hand", &self.in_hand)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Work kept at hand per slot.
    const QUEUE_TIME: Duration = Duration::from_millis(20);
    /// Results are sent at least this often while tasks run.
    const REPORT_EVERY: Duration = Duration::from_millis(2);
    /// Results per message, at most.
    const REPORT_TASKS: usize = 512;
    /// The first wait for a welcome; doubled on each silence up to the cap.
    const FIRST_BACKOFF: Duration = Duration::from_millis(500);
    const MAX_BACKOFF: Duration = Duration::from_secs(5);

    /// Connect (in the background) and start the slots.
    pub fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let context = zmq::Context::new();
        let socket = transport::dealer(&context, &config.connect)?;
        let (waker, wake) = transport::waker(&context)?;
        let (slots, queued) = crossbeam_channel::unbounded::<SlotTask>();
        let (done, results) = crossbeam_channel::unbounded();
        let (snapshot, snapshots) = crossbeam_channel::unbounded();
        let requests = Arc::new(Requests::default());
        for slot in 0..config.slots.max(1) {
            let slot_ends = SlotEnds {
                queued: queued.clone(),
                done: done.clone(),
                snapshots: snapshot.clone(),
                waker: waker.clone(),
                store: config.store.clone(),
                shared_store: config.shared_store,
                requests: requests.clone(),
            };
            std::thread::Builder::new()
                .name(format!("wrun-slot-{slot}"))
                .spawn(move || slot_ends.run())
                .expect("a thread starts");
        }
        let fetches = Fetches::new(config.store.clone());
        let mut node = Node {
            idle: Idle::new(Instant::now(), config.idle_timeout),
            config,
            _context: context,
            socket,
            wake,
            slots,
            queued,
            results,
            snapshots,
            checkpoints: Vec::new(),
            requests,
            drainer: DrainHandle::new(waker),
            draining: None,
            farewell: false,
            commands: HashMap::new(),
            command_times: CommandTimes::default(),
            longest_interval: Duration::ZERO,
            state: State::Connecting {
                nonce: [0; 16],
                sent: Instant::now(),
                backoff: Duration::ZERO,
            },
            runtimes: HashMap::new(),
            runners: HashMap::new(),
            parked: Vec::new(),
            fetches,
            unavailable: HashMap::new(),
            in_hand: 0,
            unused: 0,
            mean_us: Self::QUEUE_TIME.as_micros() as f64 / 2.0,
            unsent: Vec::new(),
            oldest_unsent: None,
            ran: 0,
            ran_logged: 0,
            logged_at: Instant::now(),
        };
        node.hello(Self::FIRST_BACKOFF);
        Ok(node)
    }

    fn log(&self, message: impl std::fmt::Display) {
        tracing::info!(target: "wrun::node", node = %self.config.name, "{message}");
    }

    /// A handle that drains this node from another thread (a signal's).
    pub fn drainer(&self) -> DrainHandle {
        self.drainer.clone()
    }

    /// Run until the broker refuses this node (an error), or it drained or
    /// was idle for its `--idle-timeout`.
    pub fn run(mut self) -> Result<(), NodeError> {
        loop {
            let busy = self.in_hand > 0 || !self.unsent.is_empty();
            if self.draining.is_none()
                && let Some(after) = self.idle.expired(Instant::now(), busy)
            {
                self.log(format!(
                    "leaving: it had no work for {}; {} tasks run",
                    humantime::format_duration(after),
                    self.ran
                ));
                self.leave();
                return Ok(());
            }
            let timeout = match (&self.state, self.oldest_unsent) {
                (State::Live { .. }, Some(_)) => Duration::from_millis(1),
                (State::Live { heartbeat, .. }, None) => *heartbeat / 4,
                (State::Connecting { .. }, _) => Duration::from_millis(100),
            };
            let mut items = [
                self.socket.as_poll_item(zmq::POLLIN),
                self.wake.socket().as_poll_item(zmq::POLLIN),
            ];
            let _ = zmq::poll(&mut items, timeout.as_millis() as i64);
            self.wake.drain();
            while let Ok(frame) = self.socket.recv_bytes(zmq::DONTWAIT) {
                self.receive(&frame)?;
            }
            for result in self.results.try_iter() {
                if let Some(work) = self.commands.remove(&result.ticket)
                    && let Outcome::Finished { .. } = result.outcome
                {
                    self.command_times
                        .record(&work, Duration::from_micros(result.wall_us));
                }
                self.mean_us = 0.9 * self.mean_us + 0.1 * result.wall_us as f64;
                self.in_hand = self.in_hand.saturating_sub(1);
                self.ran += 1;
                self.oldest_unsent.get_or_insert_with(Instant::now);
                self.unsent.push(result);
            }
            for checkpoint in self.snapshots.try_iter() {
                self.oldest_unsent.get_or_insert_with(Instant::now);
                self.checkpoints.push(checkpoint);
            }
            self.timers();
            if self.drain_due() {
                self.leave();
                return Ok(());
            }
        }
    }

    /// Say goodbye, and wait (at most 3 heartbeat intervals) for the
    /// broker's farewell: it has then handled the results and snapshots
    /// of the drain, sent before.
    fn leave(&mut self) {
        self.flush_now();
        self.send(&ToBroker::Bye);
        let State::Live { heartbeat, .. } = self.state else {
            return;
        };
        let deadline = Instant::now() + heartbeat * 3;
        while !self.farewell && Instant::now() < deadline {
            let mut items = [self.socket.as_poll_item(zmq::POLLIN)];
            let _ = zmq::poll(&mut items, (heartbeat / 4).as_millis() as i64);
            while let Ok(frame) = self.socket.recv_bytes(zmq::DONTWAIT) {
                let _ = self.receive(&frame);
            }
        }
    }

    fn hello(&mut self, backoff: Duration) {
        let nonce = wire::nonce();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            role: Role::Node {
                name: self.config.name.clone(),
                slots: self.config.slots as u32,
                version: env!("CARGO_PKG_VERSION").to_owned(),
                allocation: self.config.allocation.clone(),
                walltime_left_ms: self.config.walltime.as_ref().map(|walltime| {
                    let left = walltime.ends.duration_since(SystemTime::now());
                    left.unwrap_or_default().as_millis() as u64
                }),
            },
        };
        let frame = wire::seal(
            &FrameKey::hello(&self.config.key),
            Kind::Hello,
            &nonce,
            0,
            &protocol::encode(&hello),
        );
        let _ = self.socket.send(frame, zmq::DONTWAIT);
        self.state = State::Connecting {
            nonce,
            sent: Instant::now(),
            backoff,
        };
    }

    fn receive(&mut self, frame: &[u8]) -> Result<(), NodeError> {
        match &mut self.state {
            State::Connecting { nonce, .. } => {
                let Ok((header, payload)) = wire::open(&FrameKey::welcome(&self.config.key), frame)
                else {
                    return Ok(());
                };
                if header.kind != Kind::Welcome || header.session != *nonce {
                    return Ok(());
                }
                match protocol::decode::<Welcome>(payload) {
                    Ok(Welcome::Accepted {
                        nonce: broker,
                        heartbeat_ms,
                    }) => {
                        let (up, down) = FrameKey::session(&self.config.key, nonce, &broker);
                        let now = Instant::now();
                        self.state = State::Live {
                            sealer: Sealer::new(up, *nonce),
                            opener: Opener::new(down, *nonce),
                            heartbeat: Duration::from_millis(heartbeat_ms.max(10)),
                            last_seen: now,
                            last_sent: now,
                        };
                        self.in_hand = 0;
                        self.unused = 0;
                        // What failed before may work now.
                        self.unavailable.clear();
                        self.runners.retain(|_, runner| runner.is_ok());
                        self.log(format!(
                            "connected to {} with {} slots",
                            self.config.connect.url, self.config.slots
                        ));
                        self.top_up();
                    }
                    Ok(Welcome::Refused(why)) => return Err(NodeError::Refused(why)),
                    Err(_) => {}
                }
                Ok(())
            }
            State::Live {
                opener, last_seen, ..
            } => {
                let Ok(message) = opener
                    .open(frame)
                    .map_err(|_| ())
                    .and_then(|p| protocol::decode::<ToPeer>(p).map_err(|_| ()))
                else {
                    return Ok(());
                };
                *last_seen = Instant::now();
                self.handle(message);
                Ok(())
            }
        }
    }

    fn handle(&mut self, message: ToPeer) {
        match message {
            ToPeer::Assign(assignments) => {
                for assignment in assignments {
                    let n = assignment.tasks.len();
                    self.unused = self.unused.saturating_sub(n);
                    self.in_hand += n;
                    if self.draining.is_some() {
                        for task in assignment.tasks {
                            self.hand_back(task.ticket);
                        }
                        continue;
                    }
                    if let Some(Checkpoints {
                        every: Some(protocol::Every::Millis(ms)),
                        ..
                    }) = assignment.checkpoints
                    {
                        self.longest_interval =
                            self.longest_interval.max(Duration::from_millis(ms));
                    }
                    // One work per assignment, shared by its tasks.
                    let work = Arc::new(assignment.work);
                    for task in assignment.tasks {
                        self.parked.push(Parked {
                            work: work.clone(),
                            checkpoints: assignment.checkpoints,
                            task,
                        });
                    }
                }
                self.unpark();
            }
            // Every running task is asked: those of other jobs take one
            // snapshot more than their schedule.
            ToPeer::SnapshotNow(_) => {
                self.requests.snapshot_now();
            }
            ToPeer::Farewell => self.farewell = true,
            ToPeer::Blob { digest, part } => match self.fetches.receive(digest, part) {
                Some(Progress::Asking(requests)) => {
                    for request in requests {
                        self.send(&request);
                    }
                }
                Some(Progress::Done) => self.unpark(),
                Some(Progress::Failed { why, lasting }) => {
                    self.log(format!(
                        "cannot fetch blob {}: {why}",
                        Digest::from_bytes(digest)
                    ));
                    // The tasks waiting for it fail (a host failure, retried
                    // per the job's --retries); a failure that may pass is
                    // not remembered, so a later task fetches it again.
                    self.unavailable.insert(digest, why);
                    self.unpark();
                    if !lasting {
                        self.unavailable.remove(&digest);
                    }
                }
                None => {}
            },
            _ => {}
        }
    }

    /// Hand every parked task whose module and chunk are here to the
    /// slots; fetch what is missing; fail what the broker does not have.
    fn unpark(&mut self) {
        for Parked {
            work,
            checkpoints,
            task,
        } in std::mem::take(&mut self.parked)
        {
            // A drain that began in this loop hands back the rest.
            if self.draining.is_some() {
                self.hand_back(task.ticket);
                continue;
            }
            let runner = match self.runners.get(&work) {
                Some(runner) => runner.clone(),
                None => match self.work_available(&work) {
                    Availability::Here(_) => self.runner(&work),
                    Availability::Fetching => {
                        self.parked.push(Parked {
                            work,
                            checkpoints,
                            task,
                        });
                        continue;
                    }
                    Availability::Gone(why) => Err(why),
                },
            };
            if let Some(snapshot) = task.resume
                && !self.resumable(snapshot)
            {
                self.parked.push(Parked {
                    work,
                    checkpoints,
                    task,
                });
                continue;
            }
            let data = match task.data {
                Data::Inline(bytes) => Ok(Bytes::from(bytes)),
                Data::Stored(digest) => match self.available(digest) {
                    Availability::Here(bytes) => Ok(bytes),
                    Availability::Fetching => {
                        let task = WireTask {
                            data: Data::Stored(digest),
                            ..task
                        };
                        self.parked.push(Parked {
                            work,
                            checkpoints,
                            task,
                        });
                        continue;
                    }
                    Availability::Gone(why) => Err(why),
                },
            };
            match (runner, data) {
                (Ok(runner), Ok(data)) => {
                    if !runner.snapshottable() {
                        if let Some(why) = self.too_little_time_for(&work) {
                            self.drain(&why);
                        }
                        if self.draining.is_some() {
                            self.hand_back(task.ticket);
                            continue;
                        }
                        self.commands.insert(task.ticket, work.clone());
                    }
                    let _ = self.slots.send(SlotTask {
                        runner,
                        ticket: task.ticket,
                        data,
                        records: task.records,
                        checkpoints,
                        resume: task.resume.map(Digest::from_bytes),
                    });
                }
                (Err(why), _) | (_, Err(why)) => self.fail(task.ticket, why),
            }
        }
    }

    /// Whether snapshot `digest` and the blobs it builds on are here (or
    /// cannot be had: the restore then fails and the chunk starts over,
    /// its log saying why); false while some are being fetched.
    fn resumable(&mut self, digest: Blake3) -> bool {
        let bytes = match self.available(digest) {
            Availability::Fetching => return false,
            Availability::Gone(_) => return true,
            Availability::Here(bytes) => bytes,
        };
        let bases = wrun_runtime::bases_of(&Digest::from_bytes(digest), &bytes).unwrap_or_default();
        // Every missing base is fetched at once, not one after another.
        let mut ready = true;
        for base in bases {
            ready &= !matches!(self.available(*base.as_bytes()), Availability::Fetching);
        }
        ready
    }

    /// Whether a work's data files and then its module are here (the
    /// module's bytes), being fetched, or not to be had.
    fn work_available(&mut self, work: &Work) -> Availability {
        match self.data_available(work) {
            Availability::Here(_) => self.available(work.module),
            other => other,
        }
    }

    /// A blob from the node's store, or a fetch from the broker.
    fn available(&mut self, digest: Blake3) -> Availability {
        if let Ok(Some(bytes)) = self.config.store.get(&Digest::from_bytes(digest)) {
            return Availability::Here(bytes);
        }
        if let Some(why) = self.unavailable.get(&digest) {
            return Availability::Gone(format!(
                "blob {} is not in the node's store and cannot be fetched: {why}",
                Digest::from_bytes(digest)
            ));
        }
        if let Some(request) = self.fetches.start(digest) {
            self.send(&request);
        }
        Availability::Fetching
    }

    /// Whether every data file of `work` is in the node's store (`Here`
    /// with no bytes: it is checked against its digest when the runner's
    /// view is made), fetching the missing ones from the broker once.
    fn data_available(&mut self, work: &Work) -> Availability {
        let mut fetching = false;
        for data in &work.data {
            let digest = Digest::from_bytes(data.digest);
            if let Ok(Some(_)) = self.config.store.size(&digest) {
                continue;
            }
            if let Some(why) = self.unavailable.get(&data.digest) {
                return Availability::Gone(format!(
                    "data file {} (blake3 {digest}) is not in the node's store and cannot be \
                     fetched: {why}",
                    data.name
                ));
            }
            if let Some(request) = self.fetches.start(data.digest) {
                self.log(format!(
                    "fetching data file {} (blake3 {digest})",
                    data.name
                ));
                self.send(&request);
            }
            fetching = true;
        }
        match fetching {
            true => Availability::Fetching,
            false => Availability::Here(Bytes::new()),
        }
    }

    /// A task that cannot run here: a host failure (retried elsewhere per
    /// the job's --retries).
    fn fail(&mut self, ticket: u64, why: String) {
        let result = TaskResult {
            ticket,
            started_at: wrun_journal::now(),
            wall_us: 0,
            outcome: Outcome::Failed {
                failure: convert::failure_to_wire(&Failure::Host {
                    message: format!("node {}: {why}", self.config.name),
                }),
                log: Vec::new(),
            },
        };
        self.in_hand = self.in_hand.saturating_sub(1);
        self.oldest_unsent.get_or_insert_with(Instant::now);
        self.unsent.push(result);
    }

    /// The runner for `work`, compiled (or loaded from the cache) once.
    fn runner(&mut self, work: &Work) -> Result<Arc<TaskRunner>, String> {
        if let Some(runner) = self.runners.get(work) {
            return runner.clone();
        }
        // Compiling a large module takes a while on this thread: the
        // broker hears from the node just before.
        self.send(&ToBroker::Heartbeat);
        let made = self.make_runner(work);
        if let Err(why) = &made {
            self.log(why);
        }
        self.runners.insert(work.clone(), made.clone());
        made
    }

    fn make_runner(&mut self, work: &Work) -> Result<Arc<TaskRunner>, String> {
        let digest = Digest::from_bytes(work.module);
        let bytes = self
            .config
            .store
            .get(&digest)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("module {digest} is not in the node's store"))?;
        if !self.runtimes.contains_key(&work.limits) {
            let limits = convert::runtime_limits(&work.limits, &self.config.base_limits);
            // A slot runs a task's children inline, each waiting ancestor
            // keeping its instance.
            let per_slot = Nesting::instances_per_thread(Nesting::DEFAULT_MAX_DEPTH);
            let instances = (self.config.slots as u32).saturating_mul(per_slot);
            let runtime = Runtime::with_store(limits, instances, self.config.store.clone())
                .map_err(|e| format!("cannot start a runtime: {e}"))?;
            self.runtimes.insert(work.limits.clone(), runtime);
        }
        let runtime = &self.runtimes[&work.limits];
        let source = format!("module {}", &digest.to_hex()[..16]);
        // The store verified the bytes against `digest` as it read them.
        let module = runtime
            .admit_digested(&source, &bytes, digest)
            .map_err(|e| format!("cannot load {source}: {e}"))?;
        let runner = runtime
            .task_runner(&module, &work.args)
            .map_err(|e| format!("cannot load {source}: {e}"))?;
        if work.data.is_empty() {
            return Ok(Arc::new(runner));
        }
        let files: Vec<(String, Digest)> = work
            .data
            .iter()
            .map(|data| (data.name.clone(), Digest::from_bytes(data.digest)))
            .collect();
        let view = self
            .config
            .store
            .view(&files)
            .map_err(|e| format!("cannot show the job's data: {e}"))?;
        Ok(Arc::new(runner.with_data(&view)))
    }

    fn send(&mut self, message: &ToBroker) {
        if let State::Live {
            sealer, last_sent, ..
        } = &mut self.state
        {
            let frame = sealer.seal(&protocol::encode(message));
            *last_sent = Instant::now();
            let _ = self.socket.send(frame, zmq::DONTWAIT);
        }
    }

    /// Ask for more tasks when fewer than about `QUEUE_TIME` per slot are
    /// at hand or promised (none while draining).
    fn top_up(&mut self) {
        if self.draining.is_some() {
            return;
        }
        let per_slot =
            (Self::QUEUE_TIME.as_micros() as f64 / self.mean_us.max(1.0)).clamp(1.0, 512.0);
        let want = ((per_slot as usize + 1) * self.config.slots.max(1)).min(MAX_CREDIT);
        let have = self.in_hand + self.unused;
        if have < want && (want - have) * 4 >= want.min(4 * self.config.slots.max(1)) {
            let more = want - have;
            self.unused += more;
            self.send(&ToBroker::Credit(more as u32));
        }
    }

    fn timers(&mut self) {
        let now = Instant::now();
        // What it did, once it is idle, at most once a second.
        if self.in_hand == 0
            && self.ran != self.ran_logged
            && now.duration_since(self.logged_at) >= Duration::from_secs(1)
        {
            self.log(format!("idle; {} tasks run", self.ran));
            self.ran_logged = self.ran;
            self.logged_at = now;
        }
        match &self.state {
            State::Connecting { sent, backoff, .. } => {
                if now.duration_since(*sent) >= *backoff {
                    let next = (*backoff * 2).min(Self::MAX_BACKOFF);
                    self.log(format!(
                        "no answer from the broker at {} (is it running, with the same cluster \
                         key?); trying again in {:.1}s",
                        self.config.connect.url,
                        next.as_secs_f64()
                    ));
                    self.hello(next);
                }
            }
            State::Live {
                heartbeat,
                last_seen,
                last_sent,
                ..
            } => {
                let (heartbeat, last_seen, last_sent) = (*heartbeat, *last_seen, *last_sent);
                if now.duration_since(last_seen) >= heartbeat * 3 {
                    self.log(format!(
                        "the broker was silent for 3 heartbeat intervals; {} results kept, \
                         connecting again",
                        self.unsent.len()
                    ));
                    self.lost();
                    return;
                }
                self.flush(now);
                self.top_up();
                if now.duration_since(last_sent) >= heartbeat {
                    self.send(&ToBroker::Heartbeat);
                }
            }
        }
    }

    /// Send results: many at once while tasks are quick, at once when the
    /// node has nothing else at hand (low latency at low load).
    fn flush(&mut self, now: Instant) {
        let Some(oldest) = self.oldest_unsent else {
            return;
        };
        let idle = self.in_hand == 0 || self.queued.is_empty() && self.in_hand <= self.config.slots;
        if idle
            || self.unsent.len() >= Self::REPORT_TASKS
            || now.duration_since(oldest) >= Self::REPORT_EVERY
        {
            self.flush_now();
        }
    }

    /// Send every snapshot, then every result.
    fn flush_now(&mut self) {
        if !self.checkpoints.is_empty() {
            let mut bytes = 0;
            let mut batch = Vec::new();
            for checkpoint in std::mem::take(&mut self.checkpoints) {
                let size = snapshot_size(&checkpoint.snapshot);
                if bytes + size > MAX_MESSAGE / 2 && !batch.is_empty() {
                    self.send(&ToBroker::Checkpoints(std::mem::take(&mut batch)));
                    bytes = 0;
                }
                bytes += size;
                batch.push(checkpoint);
            }
            self.send(&ToBroker::Checkpoints(batch));
        }
        if !self.unsent.is_empty() {
            let mut bytes = 0;
            let mut batch = Vec::new();
            for result in std::mem::take(&mut self.unsent) {
                let size = result_size(&result);
                if bytes + size > MAX_MESSAGE / 2 && !batch.is_empty() {
                    self.send(&ToBroker::Results(std::mem::take(&mut batch)));
                    bytes = 0;
                }
                bytes += size;
                batch.push(result);
            }
            self.send(&ToBroker::Results(batch));
        }
        self.oldest_unsent = None;
    }

    /// The broker is gone: queued tasks are dropped (it queues them again
    /// elsewhere), running ones finish and are reported next session.
    fn lost(&mut self) {
        let dropped = self.queued.try_iter().count() + self.parked.len();
        self.parked.clear();
        self.fetches.clear();
        if dropped > 0 {
            self.log(format!("dropped {dropped} tasks not yet started"));
        }
        self.hello(Self::FIRST_BACKOFF);
    }
}

fn result_size(result: &TaskResult) -> usize {
    match &result.outcome {
        Outcome::Finished {
            output: Data::Inline(output),
            log,
            ..
        } => output.len() + log.len() + 64,
        Outcome::Finished { log, .. } | Outcome::Failed { log, .. } => log.len() + 64,
        Outcome::Suspended {
            resume_from, log, ..
        } => log.len() + resume_from.as_ref().map_or(0, snapshot_size),
    }
}

fn snapshot_size(snapshot: &Snapshot) -> usize {
    snapshot.blob.as_ref().map_or(0, |b| b.len()) + 64 + 32 * snapshot.bases.len()
}

/// What a slot thread holds: its ends of the node's channels, and where
/// its tasks' snapshots go.
struct SlotEnds {
    queued: Receiver<SlotTask>,
    done: Sender<TaskResult>,
    snapshots: Sender<TaskCheckpoint>,
    waker: Arc<Waker>,
    /// The node's store: snapshots are written here first.
    store: Arc<BlobStore>,
    /// The store is the broker's too: large outputs and snapshots stay
    /// there instead of travelling in messages.
    shared_store: bool,
    requests: Arc<Requests>,
}

impl SlotEnds {
    /// Run tasks until the node ends.
    fn run(self) {
        for task in &self.queued {
            let started_at = wrun_journal::now();
            let clock = Instant::now();
            let outcome = self.execute(&task);
            let wall_us = clock.elapsed().as_micros() as u64;
            if self
                .done
                .send(TaskResult {
                    ticket: task.ticket,
                    started_at,
                    wall_us,
                    outcome,
                })
                .is_err()
            {
                return;
            }
            self.waker.wake();
        }
    }

    /// Run one task, checkpointed when its job keeps snapshots.
    fn execute(&self, task: &SlotTask) -> Outcome {
        let chunk = Chunk {
            data: &task.data,
            records: &task.records,
        };
        let ticket = task.ticket;
        let on_checkpoint = |checkpoint: Checkpoint| {
            if let Some(snapshot) = self.snapshot(&checkpoint) {
                let _ = self.snapshots.send(TaskCheckpoint { ticket, snapshot });
                self.waker.wake();
            }
        };
        let result = match task.checkpoints {
            Some(checkpoints) => task.runner.run_checkpointed(
                chunk,
                &Checkpointing {
                    store: &self.store,
                    resume: task.resume,
                    every: checkpoints.every.map(convert::every_from_wire),
                    requests: &self.requests,
                    suspend_on_fuel: checkpoints.suspend_on_fuel,
                    on_checkpoint: &on_checkpoint,
                },
            ),
            None => task.runner.run(chunk).map(Ended::Finished),
        };
        match result {
            Ok(Ended::Finished(output)) => self.finished(output),
            Ok(Ended::Suspended(suspended)) => Outcome::Suspended {
                reason: convert::suspend_reason_to_wire(suspended.reason),
                resume_from: suspended
                    .resume_from
                    .as_ref()
                    .and_then(|checkpoint| self.snapshot(checkpoint)),
                log: suspended.log,
            },
            Err(TaskFailure { reason, log }) => Outcome::Failed {
                failure: convert::failure_to_wire(&reason),
                log,
            },
        }
    }

    /// A snapshot as sent: its blob travels unless the store is shared.
    /// `None` when it cannot travel (larger than half a message without a
    /// shared store, or gone from the store): the broker keeps the task's
    /// previous one.
    fn snapshot(&self, checkpoint: &Checkpoint) -> Option<Snapshot> {
        if self.shared_store {
            return Some(convert::snapshot_to_wire(checkpoint, None));
        }
        let blob = self.store.get(&checkpoint.snapshot.digest).ok().flatten()?;
        if blob.len() > MAX_MESSAGE / 2 {
            tracing::warn!(
                target: "wrun::node",
                "a snapshot of {} bytes is too large for a message; not sent (run the broker \
                 and nodes with a shared --store)",
                blob.len()
            );
            return None;
        }
        Some(convert::snapshot_to_wire(checkpoint, Some(blob.to_vec())))
    }

    /// A finished task's outcome: its output inline, or in the shared
    /// store when large.
    fn finished(&self, output: TaskOutput) -> Outcome {
        let TaskOutput {
            output,
            log,
            fuel_used,
        } = output;
        if self.shared_store
            && output.len() > MAX_INLINE
            && let Ok(digest) = self.store.put_unsynced(&output)
        {
            return Outcome::Finished {
                output: Data::Stored(*digest.as_bytes()),
                log,
                fuel_used,
            };
        }
        if output.len() > MAX_MESSAGE / 2 {
            return Outcome::Failed {
                failure: convert::failure_to_wire(&Failure::Host {
                    message: format!(
                        "an output of {} bytes is too large to return in a message; run the \
                         broker and nodes with a shared --store",
                        output.len()
                    ),
                }),
                log,
            };
        }
        Outcome::Finished {
            output: Data::Inline(output),
            log,
            fuel_used,
        }
    }
}
