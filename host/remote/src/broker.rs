//! The broker: one thread owns the ROUTER socket and every session; jobs
//! run on their own threads and reach it through an [`Outbox`].
//!
//! * **Sessions.** A peer's first frame is a hello sealed with the cluster
//!   key; anything else from a peer without a session, and any frame that
//!   fails to open or decode, is dropped and logged (rate-limited), before
//!   any application code sees it.
//! * **Nodes** announce credit; the broker never sends a node more tasks
//!   than it asked for ([`Queue::take`]). A node that sends nothing for
//!   three heartbeat intervals is dead: its unanswered tasks are queued
//!   again.
//! * **Clients** submit or resume a job (the [`Service`] runs it, on its own
//!   thread, through a [`ClientLink`]) or run a command.
//! * **Blobs** a node fetches (modules, large chunks, snapshots, data
//!   files) are read from the store in parts by a thread of their own
//!   ([`parts`]) and sent by the socket thread as they come.

mod parts;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use wrun_store::{BlobStore, Digest};

use crate::allocator::Load;
use crate::key::ClusterKey;
use crate::protocol::{
    self, Control, Hello, INPUT_BLOCK, MAX_CREDIT, NodeInfo, Outcome, PROTOCOL_VERSION, Reply,
    Resume, Role, Snapshot, Submission, ToBroker, ToPeer, Welcome,
};
use crate::queue::{Completion, Lot, Queue};
use crate::transport::{self, Endpoint, Outbox, TransportError, WakeReceiver};
use crate::wire::{self, FrameKey, Kind, Opener, Sealer};
use parts::PartReader;

/// How a broker listens.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where to listen (`tcp://HOST:PORT`; port `*`: any free one).
    pub bind: Endpoint,
    /// The key every peer must share.
    pub key: ClusterKey,
    /// How often each side sends a heartbeat; three missed ones mean a
    /// peer is gone.
    pub heartbeat: Duration,
}

/// What runs clients' jobs and commands (the command line's `submit`,
/// `resume` and the rest), each call on a thread of its own.
pub trait Service: Send + Sync + 'static {
    /// Run a submitted job for the client at the other end of `link`.
    fn submit(&self, submission: Submission, link: ClientLink);
    /// Go on with a job for the client at the other end of `link`.
    fn resume(&self, resume: Resume, link: ClientLink);
    /// Answer a job command from the broker's journal
    /// ([`Control::Nodes`] never reaches it: the broker answers that).
    fn control(&self, control: Control) -> Reply;
}

/// Work for the socket thread.
enum Outgoing {
    Lot(Lot),
    Send(u64, ToPeer),
    /// Answer with the connected nodes (the dashboard's).
    Nodes(Sender<Vec<NodeInfo>>),
}

/// How long [`BrokerHandle::nodes`] waits for the socket thread.
pub const NODES_WAIT: Duration = Duration::from_secs(2);

/// How jobs reach the broker's queue: cheap to clone.
#[derive(Clone)]
pub struct BrokerHandle {
    outbox: Outbox<Outgoing>,
    jobs: Arc<AtomicU64>,
    /// Nodes connected now, kept by the socket thread.
    nodes: Arc<AtomicUsize>,
    store: Arc<BlobStore>,
    load: Arc<Load>,
}

impl std::fmt::Debug for BrokerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerHandle")
    }
}

impl BrokerHandle {
    /// Nodes connected to the broker now.
    pub fn nodes_connected(&self) -> usize {
        self.nodes.load(Ordering::Relaxed)
    }

    /// The connected nodes, as `wrun nodes` lists them, asked of the socket
    /// thread; `None` when it does not answer within 2 s (it is gone, or
    /// stuck).
    pub fn nodes(&self) -> Option<Vec<NodeInfo>> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        if !self.outbox.send(Outgoing::Nodes(reply)) {
            return None;
        }
        answer.recv_timeout(NODES_WAIT).ok()
    }

    /// Queue a lot of tasks. False once the broker is gone.
    pub fn submit(&self, lot: Lot) -> bool {
        self.outbox.send(Outgoing::Lot(lot))
    }

    /// A number ordering jobs by arrival (FIFO within a priority).
    pub fn next_job(&self) -> u64 {
        self.jobs.fetch_add(1, Ordering::Relaxed)
    }

    /// The broker's store: large chunks and outputs, modules.
    pub fn store(&self) -> &Arc<BlobStore> {
        &self.store
    }

    /// The queued work and joining nodes, for the allocation queues.
    pub fn load(&self) -> &Arc<Load> {
        &self.load
    }
}

/// Input blocks a client may send ahead.
const INPUT_CREDIT: u32 = 8;
/// Output bytes sent to a client and not yet acknowledged, at most.
const OUTPUT_WINDOW: u64 = 32 << 20;
/// Output bytes per message.
const OUTPUT_BLOCK: usize = 1 << 20;

/// Sends a client messages (notes) from any thread; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    session: u64,
    outbox: Outbox<Outgoing>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notifier({})", self.session)
    }
}

impl Notifier {
    /// Send the client a message.
    pub fn send(&self, message: ToPeer) {
        self.outbox.send(Outgoing::Send(self.session, message));
    }
}

/// A job thread's end of its client's session.
pub struct ClientLink {
    session: u64,
    outbox: Outbox<Outgoing>,
    input: Receiver<InputEvent>,
    acks: Arc<Acks>,
}

impl std::fmt::Debug for ClientLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientLink({})", self.session)
    }
}

enum InputEvent {
    Block(Vec<u8>),
    End,
}

impl ClientLink {
    /// Send the client a message.
    pub fn send(&self, message: ToPeer) {
        self.outbox.send(Outgoing::Send(self.session, message));
    }

    /// A handle that sends the client messages from another thread.
    pub fn notifier(&self) -> Notifier {
        Notifier {
            session: self.session,
            outbox: self.outbox.clone(),
        }
    }

    /// Input blocks the client may send before waiting for more credit.
    pub fn input_credit(&self) -> u32 {
        INPUT_CREDIT
    }

    /// The job's input, as the client streams it. Reading it past the end
    /// of a client that went away is an error, never a short input.
    pub fn input(&self) -> InputStream {
        InputStream {
            link: self.outbox.clone(),
            session: self.session,
            input: self.input.clone(),
            block: Vec::new(),
            at: 0,
            ended: false,
        }
    }

    /// The job's output, to the client, flow-controlled by its acks.
    pub fn output(&self) -> OutputStream {
        OutputStream {
            outbox: self.outbox.clone(),
            session: self.session,
            acks: self.acks.clone(),
            buffer: Vec::with_capacity(OUTPUT_BLOCK),
        }
    }
}

impl std::fmt::Debug for InputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InputStream({})", self.session)
    }
}

impl std::fmt::Debug for OutputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutputStream({})", self.session)
    }
}

/// A client's input stream.
pub struct InputStream {
    link: Outbox<Outgoing>,
    session: u64,
    input: Receiver<InputEvent>,
    block: Vec<u8>,
    at: usize,
    ended: bool,
}

impl Read for InputStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() && !self.ended {
            match self.input.recv() {
                Ok(InputEvent::Block(block)) => {
                    self.block = block;
                    self.at = 0;
                    self.link
                        .send(Outgoing::Send(self.session, ToPeer::InputCredit(1)));
                }
                Ok(InputEvent::End) => self.ended = true,
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client went away before its input ended",
                    ));
                }
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Output acknowledged by a client.
#[derive(Default)]
struct Acks {
    state: Mutex<(u64, bool)>,
    changed: Condvar,
}

impl Acks {
    fn ack(&self, bytes: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_sub(bytes);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.changed.notify_all();
    }
}

/// A client's output stream.
pub struct OutputStream {
    outbox: Outbox<Outgoing>,
    session: u64,
    acks: Arc<Acks>,
    buffer: Vec<u8>,
}

impl OutputStream {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let len = self.buffer.len() as u64;
        let mut state = self.acks.state.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a silent client is dropped after three heartbeats,
        // which closes this.
        while state.0 + len > OUTPUT_WINDOW && !state.1 {
            state = self
                .acks
                .changed
                .wait_timeout(state, Duration::from_secs(1))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if state.1 {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client went away",
            ));
        }
        state.0 += len;
        drop(state);
        let block = std::mem::replace(&mut self.buffer, Vec::with_capacity(OUTPUT_BLOCK));
        self.outbox
            .send(Outgoing::Send(self.session, ToPeer::Output(block)));
        Ok(())
    }
}

impl Write for OutputStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(OUTPUT_BLOCK - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == OUTPUT_BLOCK {
            self.send_buffer()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

enum Peer {
    Node {
        name: String,
        slots: u32,
        version: String,
        credit: usize,
        /// Results of its that were accepted.
        done: u64,
        connected: Instant,
        /// The batch job it runs in.
        allocation: Option<String>,
        /// Why it drains, once it said so: it gets no more tasks.
        draining: Option<String>,
        /// When its walltime ends, if it has one.
        walltime_ends: Option<Instant>,
    },
    Client {
        input: Option<Sender<InputEvent>>,
        acks: Option<Arc<Acks>>,
    },
}

struct Session {
    routing: Vec<u8>,
    address: String,
    sealer: Sealer,
    opener: Opener,
    last_seen: Instant,
    last_sent: Instant,
    peer: Peer,
}

/// The broker: bound, not yet running.
pub struct Broker {
    config: BrokerConfig,
    _context: zmq::Context,
    socket: zmq::Socket,
    wake: WakeReceiver,
    inbox: Receiver<Outgoing>,
    outbox: Outbox<Outgoing>,
    store: Arc<BlobStore>,
    /// Reads the parts of blobs nodes fetch, off the socket thread.
    parts: PartReader,
    sessions: HashMap<u64, Session>,
    routes: HashMap<Vec<u8>, u64>,
    next_session: u64,
    queue: Queue,
    rotation: usize,
    rejected: u64,
    /// Shared with the handles: nodes connected now.
    nodes: Arc<AtomicUsize>,
    /// Shared with the allocation queues.
    load: Arc<Load>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("bind", &self.config.bind.url)
            .field("sessions", &self.sessions.len())
            .field("queue", &self.queue)
            .finish()
    }
}

impl Broker {
    /// Bind the socket; jobs reach the broker through the handle.
    pub fn bind(
        config: BrokerConfig,
        store: Arc<BlobStore>,
    ) -> Result<(Broker, BrokerHandle), TransportError> {
        let context = zmq::Context::new();
        let socket = transport::router(&context, &config.bind)?;
        let (waker, wake) = transport::waker(&context)?;
        let (sender, inbox) = crossbeam_channel::unbounded();
        let outbox = Outbox::new(sender, waker);
        let handle = BrokerHandle {
            outbox: outbox.clone(),
            jobs: Arc::new(AtomicU64::new(0)),
            nodes: Arc::default(),
            store: store.clone(),
            load: Arc::default(),
        };
        let nonce = wire::nonce();
        let first_ticket = u64::from_le_bytes(nonce[..8].try_into().expect("8 bytes")) >> 1;
        let broker = Broker {
            parts: PartReader::start(store.clone(), outbox.clone()),
            config,
            _context: context,
            socket,
            wake,
            inbox,
            outbox,
            store,
            sessions: HashMap::new(),
            routes: HashMap::new(),
            next_session: 1,
            queue: Queue::new(first_ticket),
            rotation: 0,
            rejected: 0,
            nodes: handle.nodes.clone(),
            load: handle.load.clone(),
        };
        Ok((broker, handle))
    }

    /// The endpoint bound, with the port chosen when it was `*`.
    pub fn endpoint(&self) -> String {
        match self.socket.get_last_endpoint() {
            Ok(Ok(endpoint)) => endpoint,
            _ => self.config.bind.url.clone(),
        }
    }

    /// Serve until the process ends.
    pub fn run(mut self, service: Arc<dyn Service>) -> ! {
        let tick = self.config.heartbeat / 8;
        let mut next_tick = Instant::now() + tick;
        loop {
            let timeout = next_tick.saturating_duration_since(Instant::now());
            let mut items = [
                self.socket.as_poll_item(zmq::POLLIN),
                self.wake.socket().as_poll_item(zmq::POLLIN),
            ];
            let _ = zmq::poll(&mut items, timeout.as_millis() as i64 + 1);
            if items[0].is_readable() {
                // At most a round's worth, so that job threads and timers
                // are served between floods.
                for _ in 0..4096 {
                    match self.recv() {
                        Some((routing, frame, address)) => {
                            self.receive(routing, frame, address, &service)
                        }
                        None => break,
                    }
                }
            }
            self.wake.drain();
            while let Ok(outgoing) = self.inbox.try_recv() {
                match outgoing {
                    Outgoing::Lot(lot) => self.queue.push(lot),
                    Outgoing::Send(session, message) => self.send(session, &message),
                    Outgoing::Nodes(reply) => {
                        let _ = reply.send(self.nodes());
                    }
                }
            }
            self.dispatch();
            self.load.set_queued(self.queue.queued() as u64);
            if Instant::now() >= next_tick {
                for (node, tickets) in self.queue.snapshot_requests() {
                    self.send(node, &ToPeer::SnapshotNow(tickets));
                }
                self.heartbeats();
                next_tick = Instant::now() + tick;
            }
        }
    }

    fn log(&self, message: impl std::fmt::Display) {
        tracing::info!(target: "wrun::broker", "{message}");
    }

    /// A frame failed authentication or decoding: count it, say so now
    /// and then, and otherwise ignore it.
    fn reject(&mut self, address: &str, why: impl std::fmt::Display) {
        self.rejected += 1;
        if self.rejected <= 20 || self.rejected.is_power_of_two() {
            self.log(format!(
                "dropped a message from {address}: {why} ({} dropped so far)",
                self.rejected
            ));
        }
    }

    /// The next message, if any: the peer's routing id, its one frame
    /// (empty if it sent several), and its address.
    fn recv(&self) -> Option<(Vec<u8>, Vec<u8>, Option<String>)> {
        let routing = self.socket.recv_msg(zmq::DONTWAIT).ok()?;
        let mut frames = Vec::new();
        let mut address = None;
        while self.socket.get_rcvmore().unwrap_or(false) {
            let Ok(mut message) = self.socket.recv_msg(0) else {
                break;
            };
            if address.is_none() {
                address = message.gets("Peer-Address").map(str::to_owned);
            }
            frames.push(message);
        }
        let frame = match &frames[..] {
            [frame] => frame.to_vec(),
            _ => Vec::new(),
        };
        Some((routing.to_vec(), frame, address))
    }

    fn receive(
        &mut self,
        routing: Vec<u8>,
        frame: Vec<u8>,
        address: Option<String>,
        service: &Arc<dyn Service>,
    ) {
        let session = self.routes.get(&routing).copied();
        let address = match session.and_then(|s| self.sessions.get(&s)) {
            Some(session) => session.address.clone(),
            None => address.unwrap_or_else(|| "an unknown peer".into()),
        };
        let header = match wire::Header::peek(&frame) {
            Ok(header) => header,
            Err(e) => return self.reject(&address, e),
        };
        match header.kind {
            Kind::Hello => self.hello(routing, address, &frame),
            Kind::Welcome => self.reject(&address, "a welcome frame sent to the broker"),
            Kind::Session => {
                let Some(id) = session else {
                    return self.reject(&address, "no session (hello first)");
                };
                let opened = {
                    let session = self.sessions.get_mut(&id).expect("routes name sessions");
                    session
                        .opener
                        .open(&frame)
                        .map_err(|e| e.to_string())
                        .and_then(|payload| {
                            protocol::decode::<ToBroker>(payload).map_err(|e| e.to_string())
                        })
                };
                match opened {
                    Ok(message) => {
                        let session = self.sessions.get_mut(&id).expect("present");
                        session.last_seen = Instant::now();
                        self.handle(id, message, service);
                    }
                    Err(why) => self.reject(&address, why),
                }
            }
        }
    }

    fn hello(&mut self, routing: Vec<u8>, address: String, frame: &[u8]) {
        let (header, payload) = match wire::open(&FrameKey::hello(&self.config.key), frame) {
            Ok(opened) => opened,
            Err(why) => return self.reject(&address, why),
        };
        let welcome_key = FrameKey::welcome(&self.config.key);
        let version = protocol::hello_version(payload);
        if let Some(version) = version.filter(|&v| v != PROTOCOL_VERSION) {
            self.log(format!(
                "refused {address}: it speaks protocol {version}, this broker {PROTOCOL_VERSION}"
            ));
            let refusal = Welcome::Refused(format!(
                "the broker speaks wrun protocol {PROTOCOL_VERSION}, this peer {version}: run \
                 the same wrun version on both"
            ));
            let frame = wire::seal(
                &welcome_key,
                Kind::Welcome,
                &header.session,
                0,
                &protocol::encode(&refusal),
            );
            let _ = self
                .socket
                .send_multipart([&routing[..], &frame[..]], zmq::DONTWAIT);
            return;
        }
        let hello = match protocol::decode::<Hello>(payload) {
            Ok(hello) => hello,
            Err(why) => return self.reject(&address, why),
        };
        if let Some(old) = self.routes.get(&routing).copied() {
            self.end_session(old, "said hello again");
        }
        let nonce = wire::nonce();
        let (up, down) = FrameKey::session(&self.config.key, &header.session, &nonce);
        let id = self.next_session;
        self.next_session += 1;
        let peer = match &hello.role {
            Role::Node {
                name,
                slots,
                version,
                allocation,
                walltime_left_ms,
            } => {
                let of = match allocation {
                    Some(id) => format!(" of allocation {id}"),
                    None => String::new(),
                };
                self.log(format!(
                    "node {name} ({address}, wrun {version}){of} joined with {slots} slots"
                ));
                self.nodes.fetch_add(1, Ordering::Relaxed);
                if let Some(id) = allocation {
                    self.load.joined(id);
                }
                Peer::Node {
                    name: name.clone(),
                    slots: *slots,
                    version: version.clone(),
                    credit: 0,
                    done: 0,
                    connected: Instant::now(),
                    allocation: allocation.clone(),
                    draining: None,
                    walltime_ends: walltime_left_ms
                        .map(|left| Instant::now() + Duration::from_millis(left)),
                }
            }
            Role::Client => Peer::Client {
                input: None,
                acks: None,
            },
        };
        let welcome = Welcome::Accepted {
            nonce,
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
        };
        let frame = wire::seal(
            &welcome_key,
            Kind::Welcome,
            &header.session,
            0,
            &protocol::encode(&welcome),
        );
        let _ = self
            .socket
            .send_multipart([&routing[..], &frame[..]], zmq::DONTWAIT);
        self.routes.insert(routing.clone(), id);
        let now = Instant::now();
        self.sessions.insert(
            id,
            Session {
                routing,
                address,
                sealer: Sealer::new(down, header.session),
                opener: Opener::new(up, header.session),
                last_seen: now,
                last_sent: now,
                peer,
            },
        );
    }

    fn handle(&mut self, id: u64, message: ToBroker, service: &Arc<dyn Service>) {
        let session = self.sessions.get_mut(&id).expect("present");
        let (node_credit, client) = match &mut session.peer {
            Peer::Node { credit, .. } => (Some(credit), None),
            Peer::Client { input, acks } => (None, Some((input, acks))),
        };
        match (message, node_credit, client) {
            (ToBroker::Heartbeat, _, _) => {}
            (ToBroker::Bye, Some(_), _) => {
                // A draining node waits for this before it exits: what it
                // sent before is handled.
                self.send(id, &ToPeer::Farewell);
                self.end_session(id, "left");
            }
            (ToBroker::Bye, _, _) => self.end_session(id, "left"),
            (ToBroker::Credit(n), Some(credit), _) => {
                *credit = (*credit + n as usize).min(MAX_CREDIT);
            }
            (ToBroker::Results(results), Some(_), _) => {
                let (name, draining) = match &session.peer {
                    Peer::Node { name, draining, .. } => (name.clone(), draining.clone()),
                    Peer::Client { .. } => unreachable!("matched a node"),
                };
                let drained = format!(
                    "node {name} drained ({}): suspended at a call boundary, to go on \
                     elsewhere from its snapshot",
                    draining.as_deref().unwrap_or("asked to")
                );
                let mut accepted = 0;
                for mut result in results {
                    if let Outcome::Suspended { resume_from, .. } = &mut result.outcome
                        && let Some(snapshot) = resume_from
                        && let Err(why) = self.keep(snapshot)
                    {
                        self.log(format!(
                            "node {name}: {why}; the task goes on from its earlier snapshot"
                        ));
                        *resume_from = None;
                    }
                    let completion = self.queue.complete(result, &name, &drained);
                    accepted += u64::from(completion == Completion::Accepted);
                    if completion == Completion::Duplicate
                        && self.queue.duplicates.is_power_of_two()
                    {
                        self.log(format!(
                            "{} duplicate results dropped so far (tasks that ran twice after a \
                             node was presumed dead)",
                            self.queue.duplicates
                        ));
                    }
                }
                if let Some(Peer::Node { done, .. }) =
                    self.sessions.get_mut(&id).map(|s| &mut s.peer)
                {
                    *done += accepted;
                }
            }
            (ToBroker::Checkpoints(checkpoints), Some(_), _) => {
                for mut checkpoint in checkpoints {
                    match self.keep(&mut checkpoint.snapshot) {
                        Ok(()) => {
                            self.queue
                                .checkpoint(checkpoint.ticket, checkpoint.snapshot);
                        }
                        Err(why) => self.log(why),
                    }
                }
            }
            (ToBroker::Draining(why), Some(credit), _) => {
                *credit = 0;
                if let Peer::Node { name, draining, .. } = &mut session.peer {
                    let name = name.clone();
                    *draining = Some(why.clone());
                    self.log(format!(
                        "node {name} drains ({why}): it takes no more tasks and suspends its \
                         running ones"
                    ));
                }
            }
            (ToBroker::Fetch { digest, offset }, Some(_), _) => {
                self.parts.ask(id, digest, offset);
            }
            (ToBroker::Submit(submission), _, Some((input @ None, acks))) => {
                let link = link(id, &self.outbox, input, acks);
                let service = service.clone();
                spawn("wrun-job", move || service.submit(*submission, link));
            }
            (ToBroker::Resume(resume), _, Some((input @ None, acks))) => {
                let link = link(id, &self.outbox, input, acks);
                let service = service.clone();
                spawn("wrun-resume", move || service.resume(resume, link));
            }
            (ToBroker::Input(block), _, Some((Some(input), _))) => {
                if block.len() > INPUT_BLOCK {
                    return self.end_session(id, "sent an oversized input block");
                }
                if let Err(TrySendError::Full(_)) = input.try_send(InputEvent::Block(block)) {
                    self.end_session(id, "sent input beyond its credit");
                }
            }
            (ToBroker::InputEnd, _, Some((Some(input), _))) => {
                let _ = input.try_send(InputEvent::End);
            }
            (ToBroker::OutputAck(bytes), _, Some((_, Some(acks)))) => acks.ack(bytes),
            (ToBroker::Control(Control::Nodes), _, Some(_)) => {
                let nodes = self.nodes();
                self.send(id, &ToPeer::Reply(Reply::Nodes(nodes)));
            }
            (ToBroker::Control(control), _, Some(_)) => {
                let service = service.clone();
                let outbox = self.outbox.clone();
                spawn("wrun-control", move || {
                    let reply = service.control(control);
                    outbox.send(Outgoing::Send(id, ToPeer::Reply(reply)));
                });
            }
            (message, _, _) => {
                let what: String = format!("{message:?}").chars().take(40).collect();
                self.end_session(id, &format!("sent an unexpected message ({what})"));
            }
        }
    }

    /// Keep a node's snapshot blob in the broker's store, or check that the
    /// shared store has it. Unsynced, as local snapshots are: a blob lost
    /// in a machine crash fails its digest check and the chunk goes on
    /// from its start; and this thread must not wait for the disk.
    fn keep(&self, snapshot: &mut Snapshot) -> Result<(), String> {
        let digest = Digest::from_bytes(snapshot.digest);
        match snapshot.blob.take() {
            Some(blob) if Digest::of(&blob) != digest => Err(format!(
                "snapshot {digest} does not match its digest; dropped"
            )),
            Some(blob) => self
                .store
                .put_unsynced(&blob)
                .map(drop)
                .map_err(|e| format!("cannot keep snapshot {digest}: {e}")),
            None => match self.store.size(&digest) {
                Ok(Some(_)) => Ok(()),
                _ => Err(format!(
                    "snapshot {digest} is not in the shared store; dropped"
                )),
            },
        }
    }

    fn send(&mut self, id: u64, message: &ToPeer) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let frame = session.sealer.seal(&protocol::encode(message));
        session.last_sent = Instant::now();
        if self
            .socket
            .send_multipart([&session.routing[..], &frame[..]], zmq::DONTWAIT)
            .is_err()
        {
            self.end_session(id, "cannot be reached");
        }
    }

    /// Hand queued tasks to nodes with credit, in turn.
    fn dispatch(&mut self) {
        if self.queue.queued() == 0 {
            return;
        }
        let mut nodes: Vec<u64> = self
            .sessions
            .iter()
            .filter(
                |(_, s)| matches!(s.peer, Peer::Node { credit, draining: None, .. } if credit > 0),
            )
            .map(|(&id, _)| id)
            .collect();
        if nodes.is_empty() {
            return;
        }
        nodes.sort_unstable();
        self.rotation = self.rotation.wrapping_add(1);
        let start = self.rotation % nodes.len();
        nodes.rotate_left(start);
        for id in nodes {
            let credit = match &self.sessions[&id].peer {
                Peer::Node { credit, .. } => *credit,
                Peer::Client { .. } => 0,
            };
            let messages = self.queue.take(id, credit);
            let sent: usize = messages
                .iter()
                .flatten()
                .map(|assignment| assignment.tasks.len())
                .sum();
            if let Some(Peer::Node { credit, .. }) = self.sessions.get_mut(&id).map(|s| &mut s.peer)
            {
                *credit -= sent;
            }
            for message in messages {
                self.send(id, &ToPeer::Assign(message));
            }
            if self.queue.queued() == 0 {
                return;
            }
        }
    }

    /// The connected nodes, by name.
    fn nodes(&self) -> Vec<NodeInfo> {
        let now = Instant::now();
        let millis = |since: Instant| now.duration_since(since).as_millis() as u64;
        let mut nodes: Vec<NodeInfo> = self
            .sessions
            .iter()
            .filter_map(|(&id, session)| match &session.peer {
                Peer::Node {
                    name,
                    slots,
                    version,
                    done,
                    connected,
                    allocation,
                    draining,
                    walltime_ends,
                    ..
                } => Some(NodeInfo {
                    name: name.clone(),
                    address: session.address.clone(),
                    version: version.clone(),
                    slots: *slots,
                    running: self.queue.in_flight_on(id) as u64,
                    done: *done,
                    connected_ms: millis(*connected),
                    last_heard_ms: millis(session.last_seen),
                    allocation: allocation.clone(),
                    draining: draining.clone(),
                    walltime_left_ms: walltime_ends
                        .map(|ends| ends.saturating_duration_since(now).as_millis() as u64),
                }),
                Peer::Client { .. } => None,
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
    }

    fn heartbeats(&mut self) {
        let interval = self.config.heartbeat;
        let now = Instant::now();
        let dead: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| now.duration_since(s.last_seen) >= interval * 3)
            .map(|(&id, _)| id)
            .collect();
        for id in dead {
            self.end_session(id, "was silent for 3 heartbeat intervals: presumed dead");
        }
        let due: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| now.duration_since(s.last_sent) >= interval)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.send(id, &ToPeer::Heartbeat);
        }
    }

    fn end_session(&mut self, id: u64, why: &str) {
        let Some(session) = self.sessions.remove(&id) else {
            return;
        };
        self.routes.remove(&session.routing);
        match session.peer {
            Peer::Node { name, slots, .. } => {
                self.nodes.fetch_sub(1, Ordering::Relaxed);
                let requeued = self.queue.requeue(id, &name, &format!("node {name} {why}"));
                self.log(format!(
                    "node {name} ({}, {slots} slots) {why}; {requeued} of its tasks queued again",
                    session.address
                ));
            }
            Peer::Client { acks, .. } => {
                if let Some(acks) = acks {
                    acks.close();
                    if why != "left" {
                        self.log(format!("client {} {why}", session.address));
                    }
                }
            }
        }
    }
}

/// The link for a client's job; the session keeps the other ends.
fn link(
    id: u64,
    outbox: &Outbox<Outgoing>,
    input: &mut Option<Sender<InputEvent>>,
    acks: &mut Option<Arc<Acks>>,
) -> ClientLink {
    let (sender, receiver) = crossbeam_channel::bounded(INPUT_CREDIT as usize + 1);
    let shared = Arc::new(Acks::default());
    *input = Some(sender);
    *acks = Some(shared.clone());
    ClientLink {
        session: id,
        outbox: outbox.clone(),
        input: receiver,
        acks: shared,
    }
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .expect("a thread starts");
}
