//! What a job is: everything needed to run it again, byte for byte.

use serde::{Deserialize, Serialize};

/// A job's definition, recorded when it is submitted. Resuming a job runs
/// exactly this again: the same module and plugin (by digest, from the
/// store), the same input (checked by size and modification time), the
/// same chunk boundaries, arguments and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The task module.
    pub module: ModuleRef,
    /// The splitter plugin; `None` when the job has no input and runs the
    /// module once.
    pub format: Option<ModuleRef>,
    /// The input; `None` when the job has no input.
    pub input: Option<InputRef>,
    /// Where the output goes; `None` is standard output.
    pub output: Option<String>,
    /// Chunk bounds, resolved (auto chunking is recorded as the sizes it
    /// chose, so a resume with other `-j` cuts the same chunks).
    pub chunk_records: Option<u64>,
    pub chunk_bytes: Option<u64>,
    #[serde(default)]
    pub chunk_residues: Option<u64>,
    /// Adaptive chunking: the wall time a task should take, in
    /// milliseconds (chunks are cut from measured cost; a resume cuts the
    /// chunks already recorded the same way again).
    #[serde(default)]
    pub adaptive_ms: Option<u64>,
    /// Arguments passed to the task.
    pub args: Vec<String>,
    pub limits: LimitsSpec,
    /// Go on after a failed task.
    pub keep_going: bool,
    /// Host-side failures are retried this many times.
    pub retries: u32,
    /// Caps on decompressing a gzip input.
    #[serde(default)]
    pub inflate: InflateLimits,
    /// The task that reduces the chunks' outputs into the job's output.
    #[serde(default)]
    pub reduce: Option<ModuleRef>,
    /// Snapshot running tasks on this schedule (`--checkpoint-every`).
    #[serde(default)]
    pub checkpoint_every: Option<CheckpointEvery>,
}

/// How far a compressed input may expand before it is refused as a
/// decompression bomb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InflateLimits {
    /// Decompressed bytes, in all.
    pub max_bytes: u64,
    /// Decompressed bytes per compressed byte read.
    pub max_ratio: u64,
}

impl Default for InflateLimits {
    fn default() -> Self {
        InflateLimits {
            max_bytes: 1 << 40,
            max_ratio: 1000,
        }
    }
}

/// A module, by where it came from and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRef {
    /// As the user named it (a path, or `builtin:fasta`).
    pub source: String,
    /// blake3 of its bytes, hex; the bytes are in the store under it.
    pub digest: String,
}

/// The input file and the stamp that tells whether it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRef {
    /// Absolute path, or `-` for standard input (which cannot be resumed).
    pub path: String,
    pub size: Option<u64>,
    /// Modification time, nanoseconds since the Unix epoch.
    pub modified_ns: Option<i128>,
    /// gzip-compressed: `size` is not what the chunks cover.
    #[serde(default)]
    pub compressed: bool,
}

/// Per-task limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitsSpec {
    pub fuel: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub memory: u64,
    pub output: u64,
}

/// How often running tasks are snapshotted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointEvery {
    /// After this many calls into the task (records and steps).
    Calls(u64),
    /// After this many milliseconds.
    Millis(u64),
}
