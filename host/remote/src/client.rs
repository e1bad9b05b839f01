//! The command line's end of a session with the broker: the handshake,
//! heartbeats, a command's round trip, and a job's streams (input up,
//! output down, both flow-controlled).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::key::ClusterKey;
use crate::protocol::{
    self, Control, Hello, INPUT_BLOCK, JobProgress, PROTOCOL_VERSION, Reply, Role, ToBroker,
    ToPeer, Welcome,
};
use crate::transport::{self, Endpoint, TransportError, WakeReceiver, Waker};
use crate::wire::{self, FrameKey, Kind, Opener, Sealer};

/// The client's side could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be made or connected.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Nothing accepted a connection at the address.
    #[error(
        "cannot connect to {0}: nothing accepted a connection there within {1:?} (is `wrun \
         broker` running there, and is the address right?)"
    )]
    Unreachable(String, Duration),
    /// Something accepted the connection, but no welcome came.
    #[error(
        "connected to {0} but no answer within {1:?}: a broker with another cluster key? (give \
         the broker's key with --key; the broker logs the frames it drops)"
    )]
    NoWelcome(String, Duration),
    /// The broker refused this client.
    #[error("the broker at {0} refused this client: {1}")]
    Refused(String, String),
    /// The broker fell silent.
    #[error("lost the broker at {0}: silent for 3 heartbeat intervals")]
    Lost(String),
    /// The broker sent something out of place.
    #[error("the broker at {0} sent an unexpected message: {1}")]
    Unexpected(String, String),
    /// Reading the input failed.
    #[error("cannot read the input: {0}")]
    Input(#[source] io::Error),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

/// A session with the broker.
pub struct Client {
    endpoint: Endpoint,
    /// Dropped before the context.
    _watch: transport::ConnectWatch,
    _context: zmq::Context,
    socket: zmq::Socket,
    sealer: Sealer,
    opener: Opener,
    heartbeat: Duration,
    last_seen: Instant,
    last_sent: Instant,
    /// Wakes the session thread when an input block is ready.
    waker: Arc<Waker>,
    wake: WakeReceiver,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.endpoint.url)
    }
}

/// What a streamed job tells its user besides its output.
pub trait Watch {
    /// A line for the user (a resumed job's note).
    fn note(&mut self, line: &str);
    /// How far the job is.
    fn progress(&mut self, progress: JobProgress);
}

/// How a streamed job ended, as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// wrun's exit code.
    pub code: u8,
    /// Why the job ended, when not successfully (empty otherwise).
    pub message: String,
}

impl Client {
    /// Connect and say hello; wait up to `timeout` for the welcome.
    pub fn connect(
        endpoint: &Endpoint,
        key: &ClusterKey,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let context = zmq::Context::new();
        let (socket, mut watch) = transport::watched_dealer(&context, endpoint)?;
        let nonce = wire::nonce();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            role: Role::Client,
        };
        let frame = wire::seal(
            &FrameKey::hello(key),
            Kind::Hello,
            &nonce,
            0,
            &protocol::encode(&hello),
        );
        let _ = socket.send(frame, 0);
        let deadline = Instant::now() + timeout;
        let welcome_key = FrameKey::welcome(key);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero()
                || socket
                    .poll(zmq::POLLIN, left.as_millis() as i64 + 1)
                    .unwrap_or(0)
                    == 0
            {
                let url = endpoint.url.clone();
                return Err(match watch.connected() {
                    true => ClientError::NoWelcome(url, timeout),
                    false => ClientError::Unreachable(url, timeout),
                });
            }
            let Ok(frame) = socket.recv_bytes(0) else {
                continue;
            };
            let Ok((header, payload)) = wire::open(&welcome_key, &frame) else {
                continue;
            };
            if header.kind != Kind::Welcome || header.session != nonce {
                continue;
            }
            match protocol::decode::<Welcome>(payload) {
                Ok(Welcome::Accepted {
                    nonce: broker,
                    heartbeat_ms,
                }) => {
                    let (up, down) = FrameKey::session(key, &nonce, &broker);
                    let now = Instant::now();
                    let (waker, wake) = transport::waker(&context)?;
                    return Ok(Client {
                        endpoint: endpoint.clone(),
                        _watch: watch,
                        _context: context,
                        socket,
                        sealer: Sealer::new(up, nonce),
                        opener: Opener::new(down, nonce),
                        heartbeat: Duration::from_millis(heartbeat_ms.max(10)),
                        last_seen: now,
                        last_sent: now,
                        waker,
                        wake,
                    });
                }
                Ok(Welcome::Refused(why)) => {
                    return Err(ClientError::Refused(endpoint.url.clone(), why));
                }
                Err(_) => continue,
            }
        }
    }

    /// Send a message.
    pub fn send(&mut self, message: &ToBroker) -> Result<(), ClientError> {
        let frame = self.sealer.seal(&protocol::encode(message));
        self.last_sent = Instant::now();
        self.socket
            .send(frame, 0)
            .map_err(|e| ClientError::Unexpected(self.endpoint.url.clone(), e.to_string()))
    }

    /// The next message, keeping the session alive meanwhile; an error if
    /// the broker is silent for three heartbeat intervals.
    pub fn recv(&mut self) -> Result<ToPeer, ClientError> {
        loop {
            if let Next::Message(message) = self.next(None)? {
                return Ok(message);
            }
        }
    }

    /// The next message, or `Input` as soon as `input` holds a block.
    fn next(&mut self, input: Option<&Receiver<InputBlock>>) -> Result<Next, ClientError> {
        loop {
            if input.is_some_and(|blocks| !blocks.is_empty()) {
                return Ok(Next::Input);
            }
            let now = Instant::now();
            if now.duration_since(self.last_sent) >= self.heartbeat {
                self.send(&ToBroker::Heartbeat)?;
            }
            let wait = (self.heartbeat / 2).as_millis() as i64;
            let mut items = [
                self.socket.as_poll_item(zmq::POLLIN),
                self.wake.socket().as_poll_item(zmq::POLLIN),
            ];
            let _ = zmq::poll(&mut items, wait);
            let readable = items[0].is_readable();
            self.wake.drain();
            if !readable {
                // Silent only if nothing is waiting either: this process
                // may have been busy writing the output.
                if now.duration_since(self.last_seen) >= self.heartbeat * 3 {
                    return Err(ClientError::Lost(self.endpoint.url.clone()));
                }
                continue;
            }
            let Ok(frame) = self.socket.recv_bytes(0) else {
                continue;
            };
            let Ok(message) = self
                .opener
                .open(&frame)
                .map_err(|_| ())
                .and_then(|p| protocol::decode::<ToPeer>(p).map_err(|_| ()))
            else {
                continue;
            };
            self.last_seen = Instant::now();
            if message != ToPeer::Heartbeat {
                return Ok(Next::Message(message));
            }
        }
    }

    /// Ask the broker a job command and wait for its reply.
    pub fn control(&mut self, control: Control) -> Result<Reply, ClientError> {
        self.send(&ToBroker::Control(control))?;
        match self.recv()? {
            ToPeer::Reply(reply) => Ok(reply),
            other => Err(self.unexpected(&other)),
        }
    }

    fn unexpected(&self, message: &ToPeer) -> ClientError {
        let text: String = format!("{message:?}").chars().take(60).collect();
        ClientError::Unexpected(self.endpoint.url.clone(), text)
    }

    /// Stream a job: `input` up while the broker grants credit, the
    /// job's output down into `output` (acknowledged as written), notes and
    /// progress to `watch`, until the broker says how the job ended. `credit` is what
    /// the broker granted with the job's acceptance. The input is read on a
    /// thread of its own, so that a slow producer does not silence the
    /// session.
    pub fn stream(
        &mut self,
        mut credit: u32,
        input: Box<dyn Read + Send>,
        output: &mut dyn Write,
        watch: &mut dyn Watch,
    ) -> Result<Ended, ClientError> {
        let (sender, blocks) = crossbeam_channel::bounded(INPUT_AHEAD);
        let waker = self.waker.clone();
        std::thread::Builder::new()
            .name("wrun-input".into())
            .spawn(move || read_blocks(input, &sender, &waker))
            .map_err(ClientError::Input)?;
        let mut input_done = false;
        loop {
            while credit > 0 && !input_done {
                let Ok(block) = blocks.try_recv() else {
                    break;
                };
                let block = block.map_err(ClientError::Input)?;
                let last = block.len() < INPUT_BLOCK;
                if !block.is_empty() {
                    self.send(&ToBroker::Input(block))?;
                    credit -= 1;
                }
                if last {
                    self.send(&ToBroker::InputEnd)?;
                    input_done = true;
                }
            }
            let waiting = credit > 0 && !input_done;
            let message = match self.next(waiting.then_some(&blocks))? {
                Next::Input => continue,
                Next::Message(message) => message,
            };
            match message {
                ToPeer::InputCredit(more) => credit += more,
                ToPeer::Output(bytes) => {
                    output.write_all(&bytes)?;
                    self.send(&ToBroker::OutputAck(bytes.len() as u64))?;
                }
                ToPeer::Note(line) => watch.note(&line),
                ToPeer::Progress(progress) => watch.progress(progress),
                ToPeer::Ended { code, message } => {
                    output.flush()?;
                    return Ok(Ended { code, message });
                }
                other => return Err(self.unexpected(&other)),
            }
        }
    }
}

/// A block of input, read ahead; shorter than [`INPUT_BLOCK`] at the end.
type InputBlock = io::Result<Vec<u8>>;

/// Input blocks read ahead of the broker's credit.
const INPUT_AHEAD: usize = 8;

/// What the session thread waits for.
enum Next {
    Message(ToPeer),
    Input,
}

/// The input thread: blocks until the end or an error, each announced.
fn read_blocks(mut input: Box<dyn Read + Send>, blocks: &Sender<InputBlock>, waker: &Waker) {
    loop {
        let mut block = Vec::with_capacity(INPUT_BLOCK);
        let read = (&mut input)
            .take(INPUT_BLOCK as u64)
            .read_to_end(&mut block)
            .map(|_| block);
        let last = !matches!(&read, Ok(block) if block.len() == INPUT_BLOCK);
        // The session ended first: nobody wants the rest.
        if blocks.send(read).is_err() {
            return;
        }
        waker.wake();
        if last {
            return;
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Given a moment to leave, so that the broker ends the session now
        // rather than after three heartbeats.
        let _ = self.socket.set_linger(100);
        let _ = self.send(&ToBroker::Bye);
    }
}
