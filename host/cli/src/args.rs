//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use clap::{Args, Parser, Subcommand};
use wrun_journal::CheckpointEvery;

/// Run a WebAssembly task over every record of an input, each chunk in its
/// own sandbox, on all cores.
#[derive(Debug, Parser)]
#[command(
    name = "wrun",
    version,
    after_help = crate::exit::TABLE,
    after_long_help = crate::exit::TABLE,
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    Submit(Box<SubmitArgs>),
    Status(StatusArgs),
    Logs(LogsArgs),
    Resume(ResumeArgs),
    Retry(RetryArgs),
    /// Stop a running job
    ///
    /// The job's process finishes the chunks it is running, records the
    /// rest cancelled and exits with code 7; `wrun resume JOB` goes on. A
    /// job whose process died is marked cancelled at once.
    Cancel(CancelArgs),
    Snapshot(SnapshotArgs),
    Rm(RmArgs),
    Output(OutputArgs),
    Inspect(InspectArgs),
    Compile(CompileArgs),
    #[command(subcommand)]
    Cache(CacheCommand),
    Broker(BrokerArgs),
    Node(NodeArgs),
    Nodes(NodesArgs),
    Dashboard(DashboardArgs),
    #[command(subcommand)]
    Alloc(AllocCommand),
    Keygen(KeygenArgs),
}

/// Allocation queues: a broker's nodes from Slurm, Grid Engine or PBS
///
/// A queue submits batch jobs (sbatch, qsub) that start `wrun node`, only
/// while the broker has queued work that its connected and pending nodes
/// cannot take, never more than --max-nodes at once, at most --backlog
/// waiting in the batch system. A node leaves before its walltime ends and
/// after --idle-timeout without work. An allocation that fails to start or
/// whose node never connects is counted; after 3 in a row the queue pauses
/// itself with the reason (`wrun alloc ls`).
#[derive(Debug, Subcommand)]
pub(crate) enum AllocCommand {
    Add(AllocAddArgs),
    /// List the broker's allocation queues and their allocations
    Ls {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop a queue submitting allocations (running ones go on)
    Pause(AllocNameArgs),
    /// Let a paused queue submit again, its failure count cleared
    Resume(AllocNameArgs),
    /// Remove a queue; allocations whose node has not connected are
    /// cancelled, connected nodes leave when idle
    Rm(AllocNameArgs),
}

/// Add an allocation queue to a broker
///
/// Example (nodes of 8 slots for 2 hours from partition `short`):
///
///   wrun alloc add slurm --broker tcp://login1:7878 --key cluster.key \
///       --time 2h --slots 8 --max-nodes 10 -- --partition=short
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct AllocAddArgs {
    /// The batch system: slurm, sge or pbs.
    #[arg(value_name = "SYSTEM", value_parser = ["slurm", "sge", "pbs"])]
    pub(crate) system: String,

    /// Walltime of each allocation; the node drains and leaves before it
    /// ends.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_positive_duration)]
    pub(crate) time: Duration,

    /// Allocations at once, at most.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub(crate) max_nodes: u32,

    /// Tasks each node runs at once (the cores each allocation asks for).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) slots: u32,

    /// Allocations waiting in the batch system at once, at most.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) backlog: u32,

    /// A node leaves after this long without work.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_positive_duration)]
    pub(crate) idle_timeout: Duration,

    /// The queue's name [default: the system's].
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// Print the batch script and submit nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    #[command(flatten)]
    pub(crate) remote: Remote,

    /// Extra arguments for sbatch or qsub (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    pub(crate) extra: Vec<String>,
}

/// A queue by name.
#[derive(Debug, Args)]
pub(crate) struct AllocNameArgs {
    /// The queue.
    #[arg(value_name = "QUEUE")]
    pub(crate) name: String,

    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// List the nodes connected to a broker
///
/// Each node's name, address, wrun version, slots, the tasks it runs now,
/// the tasks it finished and how long ago the broker last heard from it.
/// A node that falls silent for three heartbeat intervals is presumed dead
/// and leaves the list (its tasks are queued again).
#[derive(Debug, Args)]
pub(crate) struct NodesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// Serve a live web dashboard of this user's jobs
///
/// Pages that update themselves every second: the jobs (state, progress,
/// rate, ETA, failures; filters like `wrun status`), and for each job its
/// chunk timeline, throughput, failures by reason with their logs,
/// snapshots and moves, its definition and its output. Behind them, a JSON
/// API with the shapes of `--json` (`/api/jobs`, `/api/jobs/ID`,
/// `/api/jobs/ID/logs`) and Prometheus metrics (`/metrics`). Read-only.
/// A broker serves its own with `wrun broker --http ADDR`.
#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    /// The address to listen on (port 0: any free one; it is printed).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub(crate) bind: SocketAddr,

    #[command(flatten)]
    pub(crate) token: TokenArgs,
}

/// Who may read a dashboard.
#[derive(Debug, Clone, Args)]
pub(crate) struct TokenArgs {
    /// A file whose first line is the token every request must carry (as
    /// `Authorization: Bearer TOKEN`, or open the page once as
    /// `/?token=TOKEN`, which sets a cookie); required to listen on an
    /// address other than loopback.
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
}

/// Where the broker is, for commands that can run against one.
#[derive(Debug, Clone, Args)]
pub(crate) struct Remote {
    /// Run against the broker at this endpoint (`wrun broker`) instead of
    /// this machine: jobs run on its nodes and live in its journal.
    #[arg(long, env = "WRUN_BROKER", value_name = "tcp://HOST:PORT")]
    pub(crate) broker: Option<String>,

    /// The cluster key file (`wrun keygen`); without one, only a broker on
    /// a loopback address can be reached.
    #[arg(long, env = "WRUN_KEY", value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
}

/// Run a broker: queue the tasks of jobs submitted with --broker for nodes
///
/// The broker owns the journal (in $WRUN_HOME) of the jobs submitted to it:
/// clients stream it their input and receive the output in order; `wrun
/// status|logs|cancel|resume --broker` work against it. Tasks of
/// every job wait in one queue, higher --priority first, oldest job first
/// within a priority; a node gets no more tasks than it asked for. A node
/// silent for 3 heartbeat intervals is presumed dead and its tasks run
/// elsewhere. Every message is authenticated with the cluster key; without
/// --key the broker only binds a loopback address. Killed, it loses no
/// job: start it again and `wrun resume JOB --broker ...`.
///
/// Example:
///
///   wrun keygen -o cluster.key
///   wrun broker --bind tcp://0.0.0.0:7878 --key cluster.key
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct BrokerArgs {
    /// The address to listen on.
    #[arg(long, value_name = "tcp://ADDR:PORT")]
    pub(crate) bind: String,

    /// The cluster key file (`wrun keygen`); required unless ADDR is a
    /// loopback address.
    #[arg(long, env = "WRUN_KEY", value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,

    /// How often peers must show they are alive; one silent for 3 intervals
    /// is presumed dead (a node: its tasks run elsewhere).
    #[arg(long, value_name = "DURATION", default_value = "750ms", value_parser = parse_positive_duration)]
    pub(crate) heartbeat: Duration,

    /// Where modules and large chunks and outputs are kept: a directory
    /// shared with the nodes (`file:///shared/wrun`) or an S3 bucket
    /// (`s3://BUCKET/PREFIX`, reached with the AWS_* variables and cached
    /// in the broker's home) lets nodes read them directly [default: the
    /// broker's home].
    #[arg(long, env = "WRUN_STORE", value_name = "URL")]
    pub(crate) store: Option<String>,

    /// The broker's own data directory (its journal, its store), apart
    /// from this user's local jobs [default: $WRUN_HOME/broker].
    #[arg(long, value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,

    /// Serve the broker's web dashboard (its jobs, nodes and allocation
    /// queues, as `wrun dashboard` serves local jobs) on this address.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) http: Option<SocketAddr>,

    #[command(flatten)]
    pub(crate) token: TokenArgs,

    #[command(flatten)]
    pub(crate) log: LogArgs,
}

/// How a long-running process (broker, node) writes its log.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct LogArgs {
    /// Log lines on stderr as `text` (an RFC 3339 UTC timestamp, the level,
    /// the source and the message) or `json` (one object a line, the same
    /// fields), for a log collector.
    #[arg(
        long,
        env = "WRUN_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub(crate) log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// Run a node: take tasks from a broker and run them on this machine
///
/// The node announces its slots, keeps its own compiled-module cache (in
/// $WRUN_HOME or --store), fetches a module or large chunk from the broker
/// only when it lacks it, and reconnects by itself (backing off up to 5 s)
/// when the broker goes away. Start one per machine.
///
/// Example:
///
///   wrun node --connect tcp://broker:7878 --key cluster.key
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct NodeArgs {
    /// The broker's address.
    #[arg(long, value_name = "tcp://HOST:PORT")]
    pub(crate) connect: String,

    /// Tasks to run at once [default: all cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub(crate) slots: Option<u32>,

    /// The cluster key file (`wrun keygen`).
    #[arg(long, env = "WRUN_KEY", value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,

    /// The node's name in the broker's log [default: host name and pid].
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// The store shared with the broker (`file:///shared/wrun` or
    /// `s3://BUCKET/PREFIX`, cached in $WRUN_HOME): large outputs are
    /// returned through it [default: a store of its own in $WRUN_HOME].
    #[arg(long, env = "WRUN_STORE", value_name = "URL")]
    pub(crate) store: Option<String>,

    /// Live this long (the batch job's walltime, counted from the node's
    /// start): drain --drain-before its end, exit 0 before it. `wrun
    /// alloc` scripts pass it.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, conflicts_with = "until")]
    pub(crate) lifetime: Option<Duration>,

    /// When this node's allocation ends (`2026-12-01T05:30:00Z`; without a
    /// zone, local time) [default: asked of Slurm (`squeue`) or Grid Engine
    /// (`qstat`) when the node runs in one of their jobs].
    #[arg(long, value_name = "TIME", value_parser = parse_until)]
    pub(crate) until: Option<std::time::SystemTime>,

    /// Drain this long before the allocation ends: take no new task,
    /// suspend the running ones at their next call boundary with a
    /// snapshot, hand them to the broker and exit 0 (at least the longest
    /// time-based --checkpoint-every of the jobs run). SIGTERM and SIGUSR1
    /// drain at once [default: 3 minutes, or a tenth of a shorter walltime
    /// than 30 minutes].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) drain_before: Option<Duration>,

    /// Exit 0 after this long without a task.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub(crate) idle_timeout: Option<Duration>,

    /// The batch job this node runs in, told to the broker (`wrun alloc`
    /// scripts pass it).
    #[arg(long, value_name = "ID")]
    pub(crate) allocation: Option<String>,

    #[command(flatten)]
    pub(crate) log: LogArgs,
}

fn parse_until(text: &str) -> Result<std::time::SystemTime, String> {
    crate::clock::parse_time(text)
}

/// Write a new cluster key file, readable only by you
///
/// Copy it (privately) to every machine of the cluster and pass it as
/// --key (or WRUN_KEY) to the broker, the nodes and the clients.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// The file to create (never overwritten).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: PathBuf,
}

/// Split an input into records, run MODULE on every chunk of records in
/// parallel, and write the outputs in input order.
///
/// The input is streamed through a splitter plugin (`--format`) that finds
/// record boundaries; records are grouped into chunks; every chunk runs in a
/// fresh sandbox with no file system, network, environment or host clock, under
/// the limits below. The output of chunk N is written as soon as chunks
/// 0..N are done, so `-o` always holds a prefix of the final result.
///
/// Every job is recorded in the journal in $WRUN_HOME: a chunk's outcome is
/// committed before it is reported, so if wrun is killed, `wrun resume JOB`
/// (or the same `wrun submit` again) runs only the chunks not yet done and
/// writes the same output. `wrun status` shows jobs from any terminal.
///
/// Besides the limits below, everything else a task hands back is capped
/// per chunk: its log (SDK `log`, a command's stderr) at 64 KiB and its
/// error message (also a trap's message) at 64 KiB; a longer one is cut and
/// ends with "… [truncated: …]" saying so. A task's clock is virtual: a
/// sleep returns at once, so no task waits out --timeout.
///
/// Examples:
///
///   wrun submit examples/gc-content --input reads.fa -o gc.tsv
///
///   wrun submit wc.wasm --input big.txt --format lines --chunk-bytes 4MiB
///
///   wrun submit task.wasm --input - -j 8 --timeout 30s -- --min-len 50
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    about = "Run a task over every record of an input, in parallel, in input order",
    after_help = crate::exit::TABLE
)]
pub(crate) struct SubmitArgs {
    /// The task: a `.wasm` file (SDK task or WASI command), or the directory
    /// of a guest crate, which is built for wasm32-wasip1 first (like
    /// `cargo run`).
    pub(crate) module: PathBuf,

    /// Input file to split into records; `-` reads standard input. Either
    /// may be gzip-compressed (`reads.fq.gz`). `job:JOB` reads job JOB's
    /// output (as `wrun output JOB` writes it), once JOB is done.
    /// Without it the module runs once, with no records: for tasks that do
    /// their work in `step()`, or commands that need no input.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,

    /// Start once job JOB (of the same journal, or of the broker's with
    /// --broker) is done (repeatable): the job is recorded at once and
    /// waits, saying what for; it fails with exit code 19 if JOB failed,
    /// was cancelled or removed, and is refused if JOB does not exist.
    #[arg(long, value_name = "JOB", value_parser = clap::value_parser!(i64).range(1..))]
    pub(crate) after: Vec<i64>,

    /// Paired reads: FILE holds the second mates of --input's records,
    /// record for record (reads_2.fq.gz beside reads_1.fq.gz). Both files
    /// are split in lockstep, each mate's name checked against its
    /// partner's (up to a trailing /1 or /2 and a comment), and each chunk
    /// holds whole pairs, interleaved: --chunk-records counts pairs.
    #[arg(
        long,
        value_name = "FILE",
        requires = "input",
        conflicts_with = "paired"
    )]
    pub(crate) mate: Option<PathBuf>,

    /// `--paired interleaved`: --input holds mates in turn (records 2k and
    /// 2k+1 are a pair), checked and chunked as with --mate.
    #[arg(long, value_name = "LAYOUT", requires = "input")]
    pub(crate) paired: Option<PairedLayout>,

    /// Write the output here instead of standard output: FILE.gz as BGZF
    /// (gzip that samtools and tabix index), FILE.zst as zstd, others plain.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Grant every task the file PATH, read-only at /data/NAME (repeatable):
    /// a reference database or genome; PATH may be s3://BUCKET/KEY (an S3
    /// object, through the AWS_* variables). It is hashed and kept in the
    /// store once; a resume refuses a file or object that changed since.
    /// Tasks see nothing else of the host.
    #[arg(long = "data", value_name = "NAME=PATH", value_parser = parse_data)]
    pub(crate) data: Vec<(String, PathBuf)>,

    /// Tasks to run at once [default: all cores].
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub(crate) jobs: Option<u32>,

    /// Record format: `auto` (from the task's metadata, then the input's
    /// extension, else lines), a builtin (`lines`, `fasta`, `fastq`), or a splitter
    /// plugin `.wasm`.
    #[arg(short, long, value_name = "FORMAT", default_value = "auto")]
    pub(crate) format: String,

    /// A gzip-compressed input (found by its magic bytes, whatever its
    /// name) is refused once it decompresses to more than SIZE.
    #[arg(long, value_name = "SIZE", default_value = "1TiB", value_parser = parse_size)]
    pub(crate) max_inflated: u64,

    /// A gzip-compressed input is refused once it has decompressed to
    /// more than N times the compressed bytes read (past the first 16 MiB):
    /// real data compresses 3 to 10 times, decompression bombs a million.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_ratio: u64,

    /// Put at most N records in a chunk.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) chunk_records: Option<u64>,

    /// Close a chunk once it holds SIZE bytes (e.g. 256KiB, 4MiB)
    /// [default: input size / (16 x workers), between 4 KiB and 8 MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_positive_size)]
    pub(crate) chunk_bytes: Option<u64>,

    /// Close a chunk once its records weigh N, in the units of the
    /// splitter plugin, which must weigh records (export `wrun_weights`).
    /// The builtin fasta and fastq plugins weigh a record by its residues
    /// (its bytes after its first line, line breaks excluded), so chunks of
    /// a FASTA file hold about equal sequence however record lengths vary:
    /// what BLAST-like tasks need to take equal time. --chunk-residues is
    /// the same option.
    #[arg(long, visible_alias = "chunk-residues", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) chunk_weight: Option<u64>,

    /// `adaptive`: size chunks from the measured cost of the tasks so that
    /// each takes about --target-task-time, smaller and smaller towards the
    /// end of the input so that no core idles while another finishes a long
    /// chunk (guided self-scheduling). For SDK tasks of `unit=record`,
    /// whose output does not depend on where chunks are cut.
    #[arg(long, value_name = "MODE", default_value = "static")]
    pub(crate) chunking: ChunkingMode,

    /// The wall time a task should take with `--chunking adaptive`.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_positive_duration)]
    pub(crate) target_task_time: Duration,

    /// Instruction budget per chunk (wasmtime fuel). Metering costs speed,
    /// so it is off unless set.
    #[arg(long, value_name = "N")]
    pub(crate) fuel: Option<u64>,

    /// Wall-clock limit per chunk (e.g. 500ms, 30s, 10m), or `none`.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_timeout)]
    pub(crate) timeout: Timeout,

    /// Linear memory limit per chunk (at most 4GiB).
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_memory)]
    pub(crate) memory: u64,

    /// Output limit per chunk (everything it emits, or a command's
    /// stdout); more fails the chunk.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub(crate) output_limit: u64,

    /// Deepest a spawned child task may be (a chunk is depth 0, its
    /// children 1, ...); a task at this depth that spawns fails the job
    /// with exit code 20.
    #[arg(long, value_name = "N", default_value_t = wrun_runtime::Nesting::DEFAULT_MAX_DEPTH)]
    pub(crate) max_spawn_depth: u32,

    /// Most children one task may spawn over its run; more fails the job
    /// with exit code 20.
    #[arg(long, value_name = "N", default_value_t = wrun_runtime::Nesting::DEFAULT_MAX_CHILDREN)]
    pub(crate) max_children: u32,

    /// Most spawned children of the job queued, running or waiting at
    /// once; a wait that would pass it fails the job with exit code 20.
    #[arg(long, value_name = "N", default_value_t = wrun_scheduler::SpawnLimits::DEFAULT_MAX_IN_FLIGHT)]
    pub(crate) max_children_in_flight: u32,

    /// Keep running the other chunks when one fails; failed chunks write no
    /// output. By default the first failure stops the job after the chunks
    /// before it are written.
    #[arg(long)]
    pub(crate) keep_going: bool,

    /// Reduce: once every chunk has run, run this task (a `.wasm` or a
    /// crate directory) over the chunks' outputs, each one record, in
    /// input order; its output is the job's output.
    #[arg(long, value_name = "MODULE")]
    pub(crate) reduce: Option<PathBuf>,

    /// Snapshot every running chunk after N calls into the task (records
    /// and steps), or every DURATION (e.g. `30s`): a killed job then resumes
    /// from the snapshots instead of from the start of those chunks.
    /// Snapshots store only the memory pages that changed. SDK tasks only.
    /// Floor: snapshots take at most 10% of a chunk's time (after one that
    /// took T, the next waits until the chunk has run 9 T more). Only the
    /// snapshot a chunk would resume from is kept (older ones are deleted);
    /// one the store cannot hold (a full disk) is skipped, and the chunk
    /// runs on.
    #[arg(long, value_name = "N|DURATION", value_parser = parse_checkpoint_every)]
    pub(crate) checkpoint_every: Option<CheckpointEvery>,

    #[command(flatten)]
    pub(crate) drain: DrainArgs,

    /// Run a chunk again up to N times when the host failed running it.
    /// Failures of the task itself (traps, limits, errors) are
    /// deterministic and never retried.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub(crate) retries: u32,

    /// Name the job (for `wrun status --name`).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,

    /// Start a new job even if an unfinished job with the same module,
    /// input, options and arguments exists (by default that job is
    /// resumed).
    #[arg(long)]
    pub(crate) fresh: bool,

    /// Do not record the job in the journal: nothing to resume, no
    /// `wrun status`.
    #[arg(long, conflicts_with = "fresh")]
    pub(crate) no_journal: bool,

    /// Progress on standard error: `auto` shows a bar when standard error
    /// is a terminal; `always` also prints a plain line about once a
    /// second when it is not.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub(crate) progress: When,

    /// Print the job's plan (including whether each module was compiled or
    /// loaded from the cache) and a summary on standard error.
    #[arg(short, long)]
    pub(crate) verbose: bool,

    /// Compile modules without reading or writing the artifact cache.
    #[arg(long)]
    pub(crate) no_cache: bool,

    #[command(flatten)]
    pub(crate) remote: Remote,

    /// With --broker: tasks of jobs with a higher priority run first;
    /// jobs of one priority run oldest first.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub(crate) priority: i32,

    /// Arguments passed to the task (its `init`, or a command's argv).
    #[arg(last = true, value_name = "ARGS")]
    pub(crate) args: Vec<String>,
}

/// Show jobs and their progress, or one job's tasks
///
/// Without JOB, a table of every job with its progress and ETA; with JOB,
/// the job's definition and every task.
///
/// A job is `running` while a process runs it (`waiting for JOB` while it
/// waits for a job it comes after, `--after`), `interrupted` when that
/// process died (`wrun resume JOB` goes on), else `done`, `failed` or
/// `cancelled`.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct StatusArgs {
    /// A job number.
    pub(crate) job: Option<i64>,

    /// Only jobs (or, with JOB, tasks) in this state.
    #[arg(long, value_name = "STATE")]
    pub(crate) state: Option<String>,

    /// Only jobs whose name contains this.
    #[arg(long, value_name = "TEXT")]
    pub(crate) name: Option<String>,

    /// Only jobs created within this long (e.g. 2h, 3days).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) since: Option<Duration>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// Show what a job's tasks logged, attempt by attempt
///
/// What each attempt wrote to stderr (or its SDK log), and how it ended.
/// Attempts are kept when they failed, were retried or logged something.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// A job number.
    pub(crate) job: i64,

    /// Only this chunk (its index, as `wrun status JOB` lists it).
    #[arg(value_name = "CHUNK")]
    pub(crate) task: Option<u64>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// How to run a job again.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A job number.
    pub(crate) job: i64,

    /// Tasks to run at once [default: all cores].
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub(crate) jobs: Option<u32>,

    /// Progress on standard error: `auto` shows a bar when standard error
    /// is a terminal; `always` also prints a plain line about once a
    /// second when it is not.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub(crate) progress: When,

    /// Print the plan and a summary on standard error.
    #[arg(short, long)]
    pub(crate) verbose: bool,

    #[command(flatten)]
    pub(crate) drain: DrainArgs,
}

/// What SIGTERM and SIGINT do to a running job.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct DrainArgs {
    /// On SIGTERM or SIGINT (Ctrl-C), running SDK tasks are snapshotted at
    /// their next call boundary and recorded `suspended`, and wrun exits
    /// (code 9): `wrun resume` goes on from the snapshots. Tasks still
    /// inside a call after DURATION are abandoned (they resume from their
    /// last snapshot, or their start). A second signal exits at once.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) grace: Duration,
}

/// Go on with an interrupted or cancelled job
///
/// Runs the chunks the job has not finished and writes its whole output
/// again: the same bytes an uninterrupted run writes.
///
/// The module and plugin come from the store by digest; the input must be
/// unchanged (same size and modification time).
#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,

    /// Raise the job's fuel budget per chunk by N: chunks suspended because
    /// their fuel ran out go on from their last snapshot, and the fuel they
    /// used before counts against the new budget.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) add_fuel: Option<u64>,

    #[command(flatten)]
    pub(crate) remote: Remote,

    /// With --broker: the job's priority (see `wrun submit --priority`).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub(crate) priority: i32,
}

/// Snapshot a running job's tasks now
///
/// Asks the process running JOB to snapshot each of its running SDK tasks
/// at the task's next call boundary, waits until it has, and lists the
/// snapshots. The job keeps running; if it is killed later, `wrun resume`
/// starts those tasks from these snapshots.
#[derive(Debug, Args)]
pub(crate) struct SnapshotArgs {
    /// A job number.
    pub(crate) job: i64,

    /// Give up waiting after DURATION (the request stands).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    pub(crate) wait: Duration,

    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// Run a job's failed chunks again
///
/// Resets the job's failed chunks, runs them with its unfinished ones, and
/// writes its whole output.
///
/// Tasks are deterministic: a chunk that failed on a trap or a limit fails
/// again the same way unless something changed (e.g. a quarantined chunk
/// whose host crashes were not its fault).
#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

/// `wrun cancel`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// A job number.
    pub(crate) job: i64,

    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) remote: Remote,
}

/// Delete jobs from the journal, with their stored outputs.
#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// Job numbers.
    #[arg(required = true)]
    pub(crate) jobs: Vec<i64>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Write a job's output again, from its stored chunk outputs
///
/// The outputs are written in input order, each checked against its
/// digest.
/// For an unfinished job, the output of every chunk before the first
/// missing one is written, then wrun exits with code 8.
#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// A job number.
    pub(crate) job: i64,

    /// Write here instead of standard output: FILE.gz as BGZF, FILE.zst as
    /// zstd, others plain.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

/// Show what a module is: kind, ABI, metadata, imports and exports.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// A `.wasm` file or a guest crate directory.
    pub(crate) module: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Compile modules into the artifact cache, so that later runs start them
/// without compiling.
///
/// The cache lives in $WRUN_HOME (default $XDG_DATA_HOME/wrun, or
/// ~/.local/share/wrun). `wrun submit` fills it too; this command lets you
/// do it ahead of time, e.g. on every node of a cluster.
#[derive(Debug, Args)]
pub(crate) struct CompileArgs {
    /// `.wasm` files or guest crate directories.
    #[arg(required = true)]
    pub(crate) modules: Vec<PathBuf>,
}

/// Look after the artifact cache in $WRUN_HOME.
#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// List cached artifacts: module, sizes, age, hits.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove artifacts unused for longer than --max-age, then the least
    /// recently used until the cache fits in --max-size.
    Gc {
        /// Remove artifacts unused for this long (e.g. 30days, 12h).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        max_age: Option<Duration>,
        /// Keep the cache below this size (e.g. 2GiB).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
    },
    /// Remove everything from the cache.
    Clear,
}

/// How chunk sizes are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ChunkingMode {
    /// By the --chunk-* bounds (default: about 16 chunks per worker).
    Static,
    /// From the measured cost of the tasks.
    Adaptive,
}

/// How one file holds paired records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PairedLayout {
    /// Mates in turn: first, second, first, second, ...
    Interleaved,
}

/// When to do something that depends on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum When {
    Auto,
    Always,
    Never,
}

/// `--timeout`'s value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeout(pub(crate) Option<Duration>);

fn parse_checkpoint_every(text: &str) -> Result<CheckpointEvery, String> {
    if let Ok(calls) = text.parse::<u64>() {
        return match calls {
            0 => Err("must be at least 1".to_owned()),
            calls => Ok(CheckpointEvery::Calls(calls)),
        };
    }
    let every = parse_positive_duration(text)
        .map_err(|e| format!("{e} (give a number of calls, or a duration such as 30s)"))?;
    Ok(CheckpointEvery::Millis(every.as_millis().max(1) as u64))
}

fn parse_timeout(text: &str) -> Result<Timeout, String> {
    if text == "none" {
        return Ok(Timeout(None));
    }
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("use `none` for no timeout".to_owned()),
        Ok(d) => Ok(Timeout(Some(d))),
        Err(e) => Err(format!("{e} (examples: 500ms, 30s, 10m, none)")),
    }
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be more than 0".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (examples: 200ms, 2s, 1m)")),
    }
}

fn parse_data(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(path)))
        }
        _ => Err("expected NAME=PATH (example: --data ref=uniprot.fa)".to_owned()),
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    text.parse::<ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|e| format!("{e} (examples: 64KiB, 512MiB, 2GiB)"))
}

fn parse_memory(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        size if size > wrun_runtime::Limits::MAX_MEMORY => {
            Err("at most 4GiB: a wasm32 memory cannot be larger".to_owned())
        }
        size => Ok(size),
    }
}

fn parse_positive_size(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err("must be more than 0 bytes".to_owned()),
        size => Ok(size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn limits_parse_with_units() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert!(parse_size("lots").is_err());
        assert!(parse_positive_size("0").is_err());
        assert_eq!(parse_memory("4GiB"), Ok(4 << 30));
        assert!(parse_memory("5GiB").is_err());
        assert_eq!(parse_timeout("none"), Ok(Timeout(None)));
        assert_eq!(
            parse_timeout("1m 30s"),
            Ok(Timeout(Some(Duration::from_secs(90))))
        );
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("soon").is_err());
    }
}
