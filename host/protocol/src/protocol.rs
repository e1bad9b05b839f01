//! The messages broker, nodes and clients exchange, and their encoding.
//!
//! Every message is a postcard-encoded enum inside a sealed frame
//! ([`crate::wire`]). Peers state [`PROTOCOL_VERSION`] in their hello; the
//! broker refuses another version with a message saying which it speaks.
//! No frame may exceed [`MAX_MESSAGE`] bytes: libzmq drops the connection of
//! a peer that sends a larger one, before it is read, and [`decode`] checks
//! again. Decoding never trusts a length prefix to allocate.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::wire::Nonce;

/// The version of these messages; bumped on any change to them (a change of
/// a Rust type that leaves the postcard encoding as it was is none).
/// Version 2: typed job commands ([`Control`], [`Reply`]) instead of
/// forwarded arguments, and a node's wrun version in its hello.
/// Version 3: a job's progress for its client ([`ToPeer::Progress`]).
/// Version 4: allocation queues ([`Control::Alloc`], [`Reply::Allocs`]);
/// a job's reference data in its [`Work`] ([`DataFile`]);
/// a node names the batch job it runs in ([`Role::Node`]'s `allocation`,
/// shown in [`NodeInfo`]); remote snapshots: an assignment's
/// [`Checkpoints`], a task's snapshot to resume from
/// ([`WireTask::resume`]), a node's snapshots ([`ToBroker::Checkpoints`]),
/// suspended tasks ([`Outcome::Suspended`]), snapshot requests
/// ([`ToPeer::SnapshotNow`]), a draining node ([`ToBroker::Draining`]) and
/// the broker's answer to a node's goodbye ([`ToPeer::Farewell`]).
/// 5: a node's walltime left in its hello, and its drain and walltime in
/// [`NodeInfo`].
/// 6: blobs of any size fetched in parts ([`ToBroker::Fetch`]'s offset,
/// [`BlobPart`]) instead of whole in one message.
/// 7: a blob the broker cannot send says why ([`NoPart`]): missing, or
/// unreadable for now.
/// 8: a task that spawned past a limit on spawning
/// ([`WireFailure::SpawnLimit`]).
pub const PROTOCOL_VERSION: u32 = 8;
/// The largest frame accepted, in bytes.
pub const MAX_MESSAGE: usize = 72 << 20;
/// Chunks and outputs up to this size travel inside messages; larger ones
/// through the store (fetched from the broker when the node's store lacks
/// them).
pub const MAX_INLINE: usize = 1 << 20;
/// Bytes of a blob per part a node fetches from the broker (16 MiB; the
/// last part of a blob is shorter).
pub const FETCH_PART: usize = 16 << 20;
/// Tasks a node may ask for at once, at most.
pub const MAX_CREDIT: usize = 1 << 16;
/// Input bytes per message from a client.
pub const INPUT_BLOCK: usize = 1 << 20;

/// A blake3 digest.
pub type Blake3 = [u8; 32];

/// The first message of a connection (sealed as a hello frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's [`PROTOCOL_VERSION`]; first, so that [`hello_version`]
    /// reads it whatever follows.
    pub version: u32,
    /// Who is connecting.
    pub role: Role,
}

/// Who is connecting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A node that runs tasks, `slots` at a time.
    Node {
        /// The node's name, for logs and `wrun nodes`.
        name: String,
        /// Tasks it runs at once.
        slots: u32,
        /// Its wrun version, for `wrun nodes`.
        version: String,
        /// The batch job it runs in (`--allocation`, rendered by `wrun
        /// alloc`), so the broker knows that allocation's node came.
        allocation: Option<String>,
        /// Milliseconds of its walltime left when it said hello; `None`
        /// without a walltime.
        walltime_left_ms: Option<u64>,
    },
    /// A command-line client (submit, status, ...).
    Client,
}

/// The broker's answer to a hello (sealed as a welcome frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Welcome {
    /// Go ahead: the session keys derive from both nonces.
    Accepted {
        /// The broker's session nonce.
        nonce: Nonce,
        /// How often each side sends a heartbeat, in milliseconds.
        heartbeat_ms: u64,
    },
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
    /// Node: send the part of the blob `digest` (a module, a large chunk,
    /// a snapshot or a data file) that starts at byte `offset`, a multiple
    /// of [`FETCH_PART`]; answered with [`ToPeer::Blob`].
    Fetch {
        /// The blob's digest.
        digest: Blake3,
        /// The part's first byte.
        offset: u64,
    },
    /// Node: running tasks were snapshotted (and keep running).
    Checkpoints(Vec<TaskCheckpoint>),
    /// Node: this node takes no more tasks; it suspends its running ones
    /// at their next call boundary, reports them, and leaves (`why`: its
    /// walltime ends, or a signal).
    Draining(String),
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
    /// Node: snapshot the tasks with these tickets at their next call
    /// boundary (`wrun snapshot JOB`).
    SnapshotNow(Vec<u64>),
    /// Node: your [`ToBroker::Bye`] was handled, and so was everything
    /// sent before it: a draining node may exit.
    Farewell,
    /// Node: the part of a blob asked for, or why the broker sends none.
    Blob {
        /// The digest asked for.
        digest: Blake3,
        /// The part.
        part: Result<BlobPart, NoPart>,
    },
    /// Client: the job runs (journaled as `job`); send up to `credit`
    /// input blocks before waiting for [`ToPeer::InputCredit`].
    Accepted {
        /// The job's id in the broker's journal, if it is journaled.
        job: Option<u64>,
        /// Input blocks the client may send now.
        credit: u32,
    },
    /// Client: the job to resume, as recorded; stream its input.
    Resuming {
        /// The job's id in the broker's journal.
        job: u64,
        /// Its spec as recorded, as JSON (its journal form).
        spec_json: String,
        /// Input blocks the client may send now.
        credit: u32,
    },
    /// Client: send this many more input blocks.
    InputCredit(u32),
    /// Client: the next bytes of the job's output, in order.
    Output(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Client: a line for the user's terminal (a resumed job's note).
    Note(String),
    /// Client: the job is over; `code` is wrun's exit code.
    Ended {
        /// wrun's exit code for the job.
        code: u8,
        /// Why it ended, when not successfully (empty otherwise).
        message: String,
    },
    /// Client: the answer to a [`ToBroker::Control`].
    Reply(Reply),
    /// Client: how far the job is (a few times a second at most, while
    /// chunks finish).
    Progress(JobProgress),
}

/// Why the broker sends no part of a blob a node asked for
/// ([`ToPeer::Blob`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoPart {
    /// Its store does not hold the blob intact: asking again is useless.
    Missing,
    /// Its store holds the blob but could not read it (the error): it may
    /// be read later.
    Unreadable(String),
}

/// A part of a blob ([`ToPeer::Blob`]): [`FETCH_PART`] bytes from
/// `offset`, fewer for the last part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobPart {
    /// Its first byte's offset in the blob.
    pub offset: u64,
    /// The whole blob's size in bytes.
    pub size: u64,
    /// Its bytes.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// How far a job is: its chunks that finished, in this run or an earlier
/// one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    /// Input bytes of the chunks that finished (done or failed).
    pub bytes: u64,
    /// Chunks that finished.
    pub tasks: u64,
    /// Chunks that failed.
    pub failed: u64,
}

/// A job command a client asks the broker for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// `wrun status`: every job the filter selects, or one job in detail
    /// (its tasks in `state`, if given).
    Status {
        /// One job in detail, or every job the filter selects.
        job: Option<i64>,
        /// A job state (the list) or a task state (one job).
        state: Option<String>,
        /// Jobs whose name contains this.
        name: Option<String>,
        /// Jobs created in the last this many milliseconds.
        since_ms: Option<u64>,
    },
    /// `wrun logs JOB [CHUNK]`.
    Logs {
        /// The job.
        job: i64,
        /// Only this chunk's attempts.
        task: Option<u64>,
    },
    /// `wrun cancel JOB`.
    Cancel {
        /// The job.
        job: i64,
    },
    /// `wrun snapshot JOB`.
    Snapshot {
        /// The job.
        job: i64,
        /// How long to wait for the snapshot, in milliseconds.
        wait_ms: u64,
    },
    /// `wrun nodes`: the connected nodes.
    Nodes,
    /// `wrun alloc ...`: the broker's allocation queues.
    Alloc(AllocCommand),
}

/// A `wrun alloc` command; each is answered with [`Reply::Allocs`] (the
/// queues after it) or [`Reply::Failed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllocCommand {
    /// `wrun alloc add`: a new queue.
    Add(wrun_alloc::QueueSpec),
    /// `wrun alloc ls`.
    List,
    /// `wrun alloc pause Q`: submit nothing more.
    Pause(String),
    /// `wrun alloc resume Q`: submit again, failures forgotten.
    Resume(String),
    /// `wrun alloc rm Q`: forget the queue (its running allocations go on
    /// until their nodes exit).
    Remove(String),
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
    Cancelled {
        /// Whether the process running it was asked to stop.
        requested: bool,
        /// Chunks cancelled at once (0 when requested).
        unfinished: u64,
    },
    /// `Snapshot`: the snapshot taken, as JSON.
    Snapshot(String),
    /// `Nodes`: the connected nodes.
    Nodes(Vec<NodeInfo>),
    /// `Alloc`: every queue with its allocations, as the JSON `wrun alloc
    /// ls --json` prints.
    Allocs(String),
    /// The command failed: wrun's exit code and the message.
    Failed {
        /// wrun's exit code for the failure.
        code: u8,
        /// What went wrong.
        message: String,
    },
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
    /// The batch job it runs in, if an allocation queue started it.
    pub allocation: Option<String>,
    /// Why it drains (it takes no more tasks), once it said so.
    pub draining: Option<String>,
    /// Milliseconds until its walltime ends, if it has one.
    pub walltime_left_ms: Option<u64>,
}

/// A job submitted to the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The job spec as JSON (its journal form).
    pub spec_json: String,
    /// What identifies the same job again (see `wrun submit`).
    pub fingerprint: Blake3,
    /// The job's name (`--name`).
    pub name: Option<String>,
    /// Start a new job even if an unfinished one has this fingerprint.
    pub fresh: bool,
    /// Record the job in the broker's journal.
    pub journal: bool,
    /// Higher runs first.
    pub priority: i32,
    /// The input's size in bytes, when known (for adaptive chunking).
    pub size: Option<u64>,
    /// The task module, the splitter plugin and the reducer, if any.
    pub modules: Vec<serde_bytes::ByteBuf>,
}

/// Go on with job `job`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The job's id in the broker's journal.
    pub job: u64,
    /// Fuel (wasmtime fuel units) added to each suspended task's budget
    /// (`--add-fuel`).
    pub add_fuel: Option<u64>,
    /// Higher runs first.
    pub priority: i32,
}

/// Tasks of one job for a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// What every task runs.
    pub work: Work,
    /// How its tasks are snapshotted; `None`: they are not (a job run
    /// without a journal).
    pub checkpoints: Option<Checkpoints>,
    /// The tasks.
    pub tasks: Vec<WireTask>,
}

/// How a job's running tasks are snapshotted (`--checkpoint-every`, fuel
/// suspension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Checkpoints {
    /// Periodic snapshots, if any.
    pub every: Option<Every>,
    /// A task out of fuel is suspended with its last snapshot
    /// ([`Outcome::Suspended`]) instead of failing.
    pub suspend_on_fuel: bool,
}

/// How often a running task is snapshotted, at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Every {
    /// After this many calls into the guest.
    Calls(u64),
    /// After this many milliseconds since the last snapshot.
    Millis(u64),
}

/// Where a snapshotted task was: between two calls into the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cursor {
    /// The next call is `wrun_record` for record `next` of the chunk.
    Records(u32),
    /// Every record is done and `wrun_step` returned `MORE` this often.
    Steps(u64),
}

/// A snapshot of a running task, as a node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The snapshot blob's digest.
    pub digest: Blake3,
    /// The blob itself, unless the node's store is the broker's: a blob
    /// holds only the pages that changed since the task's previous
    /// snapshot, and names the earlier blobs holding the others.
    pub blob: Option<serde_bytes::ByteBuf>,
    /// Bytes of the blob that were new.
    pub stored: u64,
    /// The earlier snapshot blobs restoring it needs (sent before).
    pub bases: Vec<Blake3>,
    /// Where the task was.
    pub cursor: Cursor,
    /// Fuel used up to it, when metered.
    pub fuel_used: Option<u64>,
}

/// A running task's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCheckpoint {
    /// The dispatch's [`WireTask::ticket`].
    pub ticket: u64,
    /// The snapshot.
    pub snapshot: Snapshot,
}

/// Why a task stopped early without failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SuspendReason {
    /// Its fuel budget ran out.
    Fuel,
    /// Its node drains.
    Drain,
}

/// What a task runs: the same for every task of a job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Work {
    /// The task module's digest; the node fetches it on a miss.
    pub module: Blake3,
    /// The task's arguments.
    pub args: Vec<String>,
    /// Each task's limits.
    pub limits: Limits,
    /// Reference data every task reads at `/data/<name>`: the node
    /// fetches each blob by digest once (in parts, through
    /// [`ToBroker::Fetch`], whatever its size), verifies it and keeps it
    /// in its store for later jobs.
    pub data: Vec<DataFile>,
}

/// A reference data file of a job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataFile {
    /// The name tasks open it by.
    pub name: String,
    /// blake3 of its bytes.
    pub digest: Blake3,
}

/// A job's limits on each of its tasks, as the job spec states them.
///
/// Encoded as the journal's `LimitsSpec` was (same fields, same order), so
/// introducing this type left the encoding of [`Work`] unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limits {
    /// Fuel per task, in wasmtime fuel units (about one per wasm
    /// instruction); `None`: not metered.
    pub fuel: Option<u64>,
    /// Wall-clock time per task, in milliseconds; `None`: unlimited.
    pub timeout_ms: Option<u64>,
    /// The most linear memory a task may have, in bytes.
    pub memory: u64,
    /// The most output a task may produce, in bytes.
    pub output: u64,
}

/// One task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTask {
    /// The broker's name for this dispatch of the task.
    pub ticket: u64,
    /// The chunk.
    pub data: Data,
    /// Offsets of its records' starts in `data`.
    pub records: Vec<u32>,
    /// Continue from this snapshot (fetched, with the blobs it names,
    /// when the node's store lacks it) instead of starting the chunk.
    pub resume: Option<Blake3>,
}

/// Bytes, inline or by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Data {
    /// The bytes themselves (up to [`MAX_INLINE`]).
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The blake3 digest of bytes in the store.
    Stored(Blake3),
}

/// How a task ended on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The dispatch's [`WireTask::ticket`].
    pub ticket: u64,
    /// When the task started, in milliseconds since the Unix epoch.
    pub started_at: i64,
    /// How long it ran, in microseconds of wall-clock time.
    pub wall_us: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// A task's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// It ran to completion.
    Finished {
        /// What it emitted.
        output: Data,
        /// Its log.
        #[serde(with = "serde_bytes")]
        log: Vec<u8>,
        /// Fuel consumed, in wasmtime fuel units, when fuel is metered.
        fuel_used: Option<u64>,
    },
    /// It failed.
    Failed {
        /// Why.
        failure: WireFailure,
        /// Its log up to the failure.
        #[serde(with = "serde_bytes")]
        log: Vec<u8>,
    },
    /// It stopped early and goes on later from `resume_from` (or from the
    /// start of its chunk when `None`).
    Suspended {
        /// Why it stopped.
        reason: SuspendReason,
        /// The snapshot to continue from.
        resume_from: Option<Snapshot>,
        /// Its log up to the stop.
        #[serde(with = "serde_bytes")]
        log: Vec<u8>,
    },
}

/// `wrun_runtime::Failure` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireFailure {
    /// The guest trapped.
    Trap {
        /// The trap's kind.
        code: TrapCode,
        /// What the guest said before trapping (an SDK panic message).
        message: Option<String>,
    },
    /// The fuel budget ran out.
    OutOfFuel {
        /// The budget, in wasmtime fuel units.
        limit: u64,
    },
    /// The wall-clock budget ran out.
    TimedOut {
        /// The budget, in milliseconds.
        ms: u64,
    },
    /// The guest tried to grow its memory past the limit.
    MemoryLimit {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The guest tried to grow a table past the limit.
    TableLimit {
        /// The limit, in table elements.
        limit: u32,
    },
    /// The guest produced more output than allowed.
    OutputLimit {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A command exited with a non-zero status.
    Exit {
        /// Its exit status.
        code: i32,
    },
    /// An SDK guest returned an error status.
    Guest {
        /// The ABI status code (`wrun_abi::status`).
        status: i32,
        /// The guest's message.
        message: String,
    },
    /// The guest broke the ABI.
    Abi {
        /// What it did.
        message: String,
    },
    /// Anything else the node's runtime reported.
    Host {
        /// What happened.
        message: String,
    },
    /// The task spawned past a limit on spawning.
    SpawnLimit {
        /// Which: 0 depth, 1 children per task, 2 children in flight per
        /// job (numbers fixed here).
        which: u8,
        /// The limit's value.
        max: u32,
    },
}

/// The kind of a trap, as the wire numbers it.
///
/// The numbers are this protocol's own, fixed here; they do not follow any
/// runtime's enum. (They were chosen equal to the codes that wasmtime 48
/// gave these traps, which version 1 of the protocol sent, so the encoding
/// did not change.) A number may be added but never reused. A code this
/// build does not know, from a newer peer, decodes as
/// [`TrapCode::Unknown`], and encodes back as the same number; only
/// decoding makes one, so every value has exactly one number.
///
/// Encoded as one `u8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "u8", into = "u8")]
pub enum TrapCode {
    /// The call stack was exhausted (code 0).
    StackOverflow,
    /// An out-of-bounds linear memory access (code 1).
    MemoryOutOfBounds,
    /// An atomic access at a misaligned address (code 2).
    HeapMisaligned,
    /// An out-of-bounds table access (code 3).
    TableOutOfBounds,
    /// An indirect call to a null table entry (code 4).
    IndirectCallToNull,
    /// An indirect call whose signature did not match (code 5).
    BadSignature,
    /// An integer operation overflowed (code 6).
    IntegerOverflow,
    /// An integer division by zero (code 7).
    IntegerDivisionByZero,
    /// A float-to-integer conversion out of range (code 8).
    BadConversionToInteger,
    /// An `unreachable` instruction ran: an SDK guest's panic (code 9).
    UnreachableCodeReached,
    /// Execution was interrupted (code 10); wrun reports it as a timeout.
    Interrupt,
    /// The fuel ran out (code 11); wrun reports it as out of fuel.
    OutOfFuel,
    /// An atomic wait on a memory that is not shared (code 12).
    AtomicWaitNonSharedMemory,
    /// A null reference was used (code 13).
    NullReference,
    /// An out-of-bounds array access (code 14).
    ArrayOutOfBounds,
    /// An allocation too large to succeed (code 15).
    AllocationTooLarge,
    /// A reference cast failed (code 16).
    CastFailure,
    /// A code this build does not know (from a newer peer).
    Unknown(UnknownTrapCode),
}

/// A trap code that names none of [`TrapCode`]'s kinds; made only by
/// [`TrapCode::from_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnknownTrapCode(u8);

impl UnknownTrapCode {
    /// The number as received.
    pub fn code(self) -> u8 {
        self.0
    }
}

impl TrapCode {
    /// The number this kind travels as.
    pub fn code(self) -> u8 {
        match self {
            TrapCode::StackOverflow => 0,
            TrapCode::MemoryOutOfBounds => 1,
            TrapCode::HeapMisaligned => 2,
            TrapCode::TableOutOfBounds => 3,
            TrapCode::IndirectCallToNull => 4,
            TrapCode::BadSignature => 5,
            TrapCode::IntegerOverflow => 6,
            TrapCode::IntegerDivisionByZero => 7,
            TrapCode::BadConversionToInteger => 8,
            TrapCode::UnreachableCodeReached => 9,
            TrapCode::Interrupt => 10,
            TrapCode::OutOfFuel => 11,
            TrapCode::AtomicWaitNonSharedMemory => 12,
            TrapCode::NullReference => 13,
            TrapCode::ArrayOutOfBounds => 14,
            TrapCode::AllocationTooLarge => 15,
            TrapCode::CastFailure => 16,
            TrapCode::Unknown(unknown) => unknown.0,
        }
    }

    /// The kind a number stands for; [`TrapCode::Unknown`] if none.
    pub fn from_code(code: u8) -> TrapCode {
        match code {
            0 => TrapCode::StackOverflow,
            1 => TrapCode::MemoryOutOfBounds,
            2 => TrapCode::HeapMisaligned,
            3 => TrapCode::TableOutOfBounds,
            4 => TrapCode::IndirectCallToNull,
            5 => TrapCode::BadSignature,
            6 => TrapCode::IntegerOverflow,
            7 => TrapCode::IntegerDivisionByZero,
            8 => TrapCode::BadConversionToInteger,
            9 => TrapCode::UnreachableCodeReached,
            10 => TrapCode::Interrupt,
            11 => TrapCode::OutOfFuel,
            12 => TrapCode::AtomicWaitNonSharedMemory,
            13 => TrapCode::NullReference,
            14 => TrapCode::ArrayOutOfBounds,
            15 => TrapCode::AllocationTooLarge,
            16 => TrapCode::CastFailure,
            code => TrapCode::Unknown(UnknownTrapCode(code)),
        }
    }
}

impl From<u8> for TrapCode {
    fn from(code: u8) -> TrapCode {
        TrapCode::from_code(code)
    }
}

impl From<TrapCode> for u8 {
    fn from(code: TrapCode) -> u8 {
        code.code()
    }
}

/// A message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message is larger than [`MAX_MESSAGE`]; its size in bytes.
    #[error("message of {0} bytes is over the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
    /// The bytes are not a message of the expected type; why.
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
                    code: TrapCode::TableOutOfBounds,
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
                limits: Limits {
                    fuel: None,
                    timeout_ms: Some(5),
                    memory: 1 << 20,
                    output: 1 << 20,
                },
                data: vec![DataFile {
                    name: "ref.fa".into(),
                    digest: [9; 32],
                }],
            },
            checkpoints: Some(Checkpoints {
                every: Some(Every::Millis(30_000)),
                suspend_on_fuel: true,
            }),
            tasks: vec![WireTask {
                ticket: 4,
                data: Data::Inline(b">a\nACGT\n".to_vec()),
                records: vec![0],
                resume: Some([3; 32]),
            }],
        }]);
        assert_eq!(decode::<ToPeer>(&encode(&assign)).unwrap(), assign);
        let progress = ToPeer::Progress(JobProgress {
            bytes: 1 << 40,
            tasks: 7,
            failed: 1,
        });
        assert_eq!(decode::<ToPeer>(&encode(&progress)).unwrap(), progress);
        let fetch = ToBroker::Fetch {
            digest: [7; 32],
            offset: 3 * FETCH_PART as u64,
        };
        assert_eq!(decode::<ToBroker>(&encode(&fetch)).unwrap(), fetch);
        let part = ToPeer::Blob {
            digest: [7; 32],
            part: Ok(BlobPart {
                offset: 3 * FETCH_PART as u64,
                size: 5 << 30,
                bytes: b"part".to_vec(),
            }),
        };
        assert_eq!(decode::<ToPeer>(&encode(&part)).unwrap(), part);
        for refusal in [
            NoPart::Missing,
            NoPart::Unreadable("disk on fire".to_owned()),
        ] {
            let none = ToPeer::Blob {
                digest: [7; 32],
                part: Err(refusal),
            };
            assert_eq!(decode::<ToPeer>(&encode(&none)).unwrap(), none);
        }
        let snapshot = Snapshot {
            digest: [5; 32],
            blob: Some(serde_bytes::ByteBuf::from(b"WRUNSNAP".to_vec())),
            stored: 8,
            bases: vec![[6; 32]],
            cursor: Cursor::Steps(12),
            fuel_used: Some(1 << 33),
        };
        let checkpoints = ToBroker::Checkpoints(vec![TaskCheckpoint {
            ticket: 4,
            snapshot: snapshot.clone(),
        }]);
        assert_eq!(
            decode::<ToBroker>(&encode(&checkpoints)).unwrap(),
            checkpoints
        );
        let suspended = ToBroker::Results(vec![TaskResult {
            ticket: 4,
            started_at: 1,
            wall_us: 2,
            outcome: Outcome::Suspended {
                reason: SuspendReason::Drain,
                resume_from: Some(snapshot),
                log: Vec::new(),
            },
        }]);
        assert_eq!(decode::<ToBroker>(&encode(&suspended)).unwrap(), suspended);
    }

    #[test]
    fn work_encodes_as_in_version_1_then_its_data() {
        // Version 1 sent the journal's `LimitsSpec` here; the protocol's
        // own `Limits` must encode the same. Version 4 appended the data
        // files (none here: one zero byte).
        let work = Work {
            module: [1; 32],
            args: vec!["-k".into()],
            limits: Limits {
                fuel: None,
                timeout_ms: Some(5),
                memory: 1 << 20,
                output: 300,
            },
            data: Vec::new(),
        };
        let mut expected = vec![1; 32];
        expected.extend_from_slice(&[1, 2, b'-', b'k']);
        expected.extend_from_slice(&[0, 1, 5, 0x80, 0x80, 0x40, 0xac, 0x02]);
        expected.push(0);
        assert_eq!(encode(&work), expected);
        assert_eq!(decode::<Work>(&expected).unwrap(), work);
    }

    #[test]
    fn trap_codes_are_fixed_and_every_byte_round_trips() {
        // The numbering is part of the protocol: changing one breaks peers.
        let fixed = [
            (TrapCode::StackOverflow, 0),
            (TrapCode::MemoryOutOfBounds, 1),
            (TrapCode::HeapMisaligned, 2),
            (TrapCode::TableOutOfBounds, 3),
            (TrapCode::IndirectCallToNull, 4),
            (TrapCode::BadSignature, 5),
            (TrapCode::IntegerOverflow, 6),
            (TrapCode::IntegerDivisionByZero, 7),
            (TrapCode::BadConversionToInteger, 8),
            (TrapCode::UnreachableCodeReached, 9),
            (TrapCode::Interrupt, 10),
            (TrapCode::OutOfFuel, 11),
            (TrapCode::AtomicWaitNonSharedMemory, 12),
            (TrapCode::NullReference, 13),
            (TrapCode::ArrayOutOfBounds, 14),
            (TrapCode::AllocationTooLarge, 15),
            (TrapCode::CastFailure, 16),
        ];
        for (kind, code) in fixed {
            assert_eq!(kind.code(), code);
            assert_eq!(TrapCode::from_code(code), kind);
            assert_eq!(encode(&kind), [code]);
        }
        for code in 0..=u8::MAX {
            let kind = TrapCode::from_code(code);
            assert_eq!(kind.code(), code);
            assert_eq!(
                matches!(kind, TrapCode::Unknown(_)),
                !fixed.iter().any(|&(_, c)| c == code)
            );
            let failure = WireFailure::Trap {
                code: kind,
                message: None,
            };
            assert_eq!(encode(&failure), [0, code, 0]);
            assert_eq!(decode::<WireFailure>(&encode(&failure)).unwrap(), failure);
        }
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
