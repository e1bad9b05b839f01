//! The messages broker, nodes and clients exchange, and their encoding.
//!
//! Every message is a postcard-encoded enum inside a sealed frame
//! ([`crate::wire`]). Peers state [`PROTOCOL_VERSION`] in their hello; the
//! broker refuses another version with a message saying which it speaks.
//! No frame may exceed [`MAX_MESSAGE`] bytes: libzmq drops the connection of
//! a peer that sends a larger one, before it is read, and [`decode`] checks
//! again. Decoding never trusts a length prefix to allocate.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use wrun_journal::LimitsSpec;

use crate::wire::Nonce;

/// The version of these messages; bumped on any change to them.
pub const PROTOCOL_VERSION: u32 = 2;
/// The largest frame accepted, in bytes.
pub const MAX_MESSAGE: usize = 72 << 20;
/// Chunks and outputs up to this size travel inside messages; larger ones
/// through the store (fetched from the broker when the node's store lacks
/// them).
pub const MAX_INLINE: usize = 1 << 20;
/// The largest blob a node fetches from the broker in one message; larger
/// chunks need a store both share.
pub const MAX_FETCH: usize = 64 << 20;
/// Tasks a node may ask for at once, at most.
pub const MAX_CREDIT: usize = 1 << 16;
/// Input bytes per message from a client.
pub const INPUT_BLOCK: usize = 1 << 20;

/// A blake3 digest.
pub type Blake3 = [u8; 32];

/// The first message of a connection (sealed as a hello frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    pub role: Role,
}

/// Who is connecting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A node that runs tasks, `slots` at a time; `version` is its wrun
    /// version, for `wrun nodes`.
    Node {
        name: String,
        slots: u32,
        version: String,
    },
    /// A command-line client (submit, status, ...).
    Client,
}

/// The broker's answer to a hello (sealed as a welcome frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Welcome {
    /// Go ahead: the session keys derive from both nonces.
    Accepted { nonce: Nonce, heartbeat_ms: u64 },
    /// Not this peer: why.
    Refused(String),
}

/// Messages to the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToBroker {
    /// Still here.
    Heartbeat,
    /// Node: send this many more tasks.
    Credit(u32),
    /// Node: tasks that ended.
    Results(Vec<TaskResult>),
    /// Node: send the blob with this digest (a module or a large chunk).
    Fetch(Blake3),
    /// Client: run a job; the input follows as [`ToBroker::Input`].
    Submit(Box<Submission>),
    /// Client: go on with a job; the broker answers
    /// [`ToPeer::Resuming`] and the input follows.
    Resume(Resume),
    /// Client: the next block of the job's input.
    Input(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Client: the input ended.
    InputEnd,
    /// Client: these many more output bytes were written.
    OutputAck(u64),
    /// Client: a job command, answered from the broker's own journal (or,
    /// for [`Control::Nodes`], its sessions) with [`ToPeer::Reply`].
    Control(Control),
    /// Leaving.
    Bye,
}

/// Messages from the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToPeer {
    /// Still here.
    Heartbeat,
    /// Node: run these.
    Assign(Vec<Assignment>),
    /// Node: the blob asked for, or `None` when the broker has none.
    Blob {
        digest: Blake3,
        bytes: Option<serde_bytes::ByteBuf>,
    },
    /// Client: the job runs (journaled as `job`); send up to `credit`
    /// input blocks before waiting for [`ToPeer::InputCredit`].
    Accepted { job: Option<u64>, credit: u32 },
    /// Client: the job to resume, as recorded; stream its input.
    Resuming {
        job: u64,
        spec_json: String,
        credit: u32,
    },
    /// Client: send this many more input blocks.
    InputCredit(u32),
    /// Client: the next bytes of the job's output, in order.
    Output(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Client: a line for the user's terminal (a resumed job's note).
    Note(String),
    /// Client: the job is over; `code` is wrun's exit code.
    Ended { code: u8, message: String },
    /// Client: the answer to a [`ToBroker::Control`].
    Reply(Reply),
}

/// A job command a client asks the broker for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// `wrun status`: every job the filter selects, or one job in detail
    /// (its tasks in `state`, if given).
    Status {
        job: Option<i64>,
        /// A job state (the list) or a task state (one job).
        state: Option<String>,
        /// Jobs whose name contains this.
        name: Option<String>,
        /// Jobs created in the last this many milliseconds.
        since_ms: Option<u64>,
    },
    /// `wrun logs JOB [CHUNK]`.
    Logs { job: i64, task: Option<u64> },
    /// `wrun cancel JOB`.
    Cancel { job: i64 },
    /// `wrun snapshot JOB`: wait up to `wait_ms` milliseconds for it.
    Snapshot { job: i64, wait_ms: u64 },
    /// `wrun nodes`: the connected nodes.
    Nodes,
}

/// The broker's answer to a [`Control`]. Job reports travel as the JSON
/// that `wrun status|logs|snapshot --json` print (their one definition is
/// the job library's `views`): those shapes omit empty fields, which
/// postcard cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// `Status` without a job: the jobs, as JSON.
    Jobs(String),
    /// `Status` of one job: the job, its spec and tasks, as JSON.
    Job(String),
    /// `Logs`: the attempts, as JSON.
    Logs(String),
    /// `Cancel`: cancelled at once (`requested` false, with the count of
    /// unfinished chunks), or asked of the process running it.
    Cancelled { requested: bool, unfinished: u64 },
    /// `Snapshot`: the snapshot taken, as JSON.
    Snapshot(String),
    /// `Nodes`: the connected nodes.
    Nodes(Vec<NodeInfo>),
    /// The command failed: wrun's exit code and the message.
    Failed { code: u8, message: String },
}

/// A connected node, as `wrun nodes` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its `--name`.
    pub name: String,
    /// Where it connects from.
    pub address: String,
    /// Its wrun version.
    pub version: String,
    /// Tasks it runs at once.
    pub slots: u32,
    /// Tasks dispatched to it and not yet answered.
    pub running: u64,
    /// Tasks it finished (results the broker accepted).
    pub done: u64,
    /// Milliseconds since it connected.
    pub connected_ms: u64,
    /// Milliseconds since the broker last heard from it.
    pub last_heard_ms: u64,
}

/// A job submitted to the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The job spec as JSON (its journal form).
    pub spec_json: String,
    /// What identifies the same job again (see `wrun submit`).
    pub fingerprint: Blake3,
    pub name: Option<String>,
    /// Start a new job even if an unfinished one has this fingerprint.
    pub fresh: bool,
    /// Record the job in the broker's journal.
    pub journal: bool,
    /// Higher runs first.
    pub priority: i32,
    /// The input's size, when known (for adaptive chunking).
    pub size: Option<u64>,
    /// The task module, the splitter plugin and the reducer, if any.
    pub modules: Vec<serde_bytes::ByteBuf>,
}

/// Go on with job `job`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub job: u64,
    pub add_fuel: Option<u64>,
    pub priority: i32,
}

/// Tasks of one job for a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub work: Work,
    pub tasks: Vec<WireTask>,
}

/// What a task runs: the same for every task of a job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Work {
    /// The task module's digest; the node fetches it on a miss.
    pub module: Blake3,
    pub args: Vec<String>,
    pub limits: LimitsSpec,
}

/// One task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTask {
    /// The broker's name for this dispatch of the task.
    pub ticket: u64,
    pub data: Data,
    /// Offsets of its records' starts in `data`.
    pub records: Vec<u32>,
}

/// Bytes, inline or by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Data {
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    Stored(Blake3),
}

/// How a task ended on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    pub ticket: u64,
    /// Milliseconds since the epoch.
    pub started_at: i64,
    pub wall_us: u64,
    pub outcome: Outcome,
}

/// A task's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Finished {
        output: Data,
        #[serde(with = "serde_bytes")]
        log: Vec<u8>,
        fuel_used: Option<u64>,
    },
    Failed {
        failure: WireFailure,
        #[serde(with = "serde_bytes")]
        log: Vec<u8>,
    },
}

/// `wrun_runtime::Failure` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireFailure {
    Trap { code: u8, message: Option<String> },
    OutOfFuel { limit: u64 },
    TimedOut { ms: u64 },
    MemoryLimit { limit: u64 },
    TableLimit { limit: u32 },
    OutputLimit { limit: u64 },
    Exit { code: i32 },
    Guest { status: i32, message: String },
    Abi { message: String },
    Host { message: String },
}

/// A message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {0} bytes is over the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Encode a message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    postcard::to_stdvec(message).expect("messages serialise")
}

/// The protocol version a hello states, read before the rest so that a
/// peer of another version is told so even if its hello has another shape.
pub fn hello_version(bytes: &[u8]) -> Option<u32> {
    postcard::take_from_bytes::<u32>(bytes).ok().map(|(v, _)| v)
}

/// Decode a message, which must fill `bytes` exactly.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    match postcard::take_from_bytes(bytes) {
        Ok((message, [])) => Ok(message),
        Ok((_, rest)) => Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        ))),
        Err(e) => Err(DecodeError::Malformed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let results = ToBroker::Results(vec![TaskResult {
            ticket: 9,
            started_at: 1,
            wall_us: 2,
            outcome: Outcome::Failed {
                failure: WireFailure::Trap {
                    code: 3,
                    message: Some("boom".into()),
                },
                log: b"log".to_vec(),
            },
        }]);
        assert_eq!(decode::<ToBroker>(&encode(&results)).unwrap(), results);
        let assign = ToPeer::Assign(vec![Assignment {
            work: Work {
                module: [1; 32],
                args: vec!["-k".into()],
                limits: LimitsSpec {
                    fuel: None,
                    timeout_ms: Some(5),
                    memory: 1 << 20,
                    output: 1 << 20,
                },
            },
            tasks: vec![WireTask {
                ticket: 4,
                data: Data::Inline(b">a\nACGT\n".to_vec()),
                records: vec![0],
            }],
        }]);
        assert_eq!(decode::<ToPeer>(&encode(&assign)).unwrap(), assign);
    }

    #[test]
    fn garbage_and_trailing_bytes_are_refused() {
        assert!(decode::<ToBroker>(&[0xff; 9]).is_err());
        let mut bytes = encode(&ToBroker::Heartbeat);
        bytes.push(0);
        assert!(matches!(
            decode::<ToBroker>(&bytes),
            Err(DecodeError::Malformed(_))
        ));
        // A length prefix claiming 2^60 bytes allocates nothing.
        let mut claim = encode(&ToBroker::Input(Vec::new()));
        claim.truncate(1);
        claim.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode::<ToBroker>(&claim).is_err());
    }
}
