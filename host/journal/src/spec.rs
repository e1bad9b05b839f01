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
    /// Paired records: the second mates' file (`--mate`), or mates in
    /// turn in `input` (`--paired interleaved`); `None` (absent in specs
    /// recorded before pairs): records are not paired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<Pairs>,
    /// Where the output goes; `None` is standard output.
    pub output: Option<String>,
    /// Chunk bounds, resolved (auto chunking is recorded as the sizes it
    /// chose, so a resume with other `-j` cuts the same chunks): a chunk
    /// holds at most this many records; `None`: no bound on records.
    pub chunk_records: Option<u64>,
    /// A chunk closes once it holds this many input bytes; `None`: no
    /// bound on bytes.
    pub chunk_bytes: Option<u64>,
    /// A chunk closes once its records weigh this much, in the splitter
    /// plugin's units (residues for the builtin `fasta` and `fastq`);
    /// `None`: no bound on weight. Recorded as `chunk_residues` before
    /// plugins weighed records, with the same meaning for those plugins.
    #[serde(default, alias = "chunk_residues")]
    pub chunk_weight: Option<u64>,
    /// Adaptive chunking: the wall time a task should take, in
    /// milliseconds (chunks are cut from measured cost; a resume cuts the
    /// chunks already recorded the same way again).
    #[serde(default)]
    pub adaptive_ms: Option<u64>,
    /// Arguments passed to the task.
    pub args: Vec<String>,
    /// Limits on each task.
    pub limits: LimitsSpec,
    /// Go on after a failed task.
    pub keep_going: bool,
    /// Host-side failures are retried this many times (a count; `wrun
    /// submit --retries` defaults to 2).
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
    /// Reference data every task reads at `/data/<name>` (`--data`), in
    /// the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataRef>,
    /// Jobs of the same journal that must finish (`done`) before this
    /// one runs (`--after JOB`, and the job whose output `--input
    /// job:JOB` reads), in the order given, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<i64>,
}

impl JobSpec {
    /// The bytes its chunks cover, when known before they are read: the
    /// input's size, and a paired job's mate's too, unless compressed;
    /// `None` for standard input, a compressed file, or no input.
    pub fn chunked_bytes(&self) -> Option<u64> {
        let size = |input: &InputRef| input.size.filter(|_| !input.compressed);
        match (&self.input, &self.pairs) {
            (Some(input), Some(Pairs::Mate(mate))) => {
                size(input).zip(size(mate)).map(|(a, b)| a + b)
            }
            (input, _) => input.as_ref().and_then(size),
        }
    }
}

/// A reference data file granted to a job (`--data NAME=PATH`, or
/// `NAME=s3://BUCKET/KEY`): kept in the store under its digest; a resume
/// or retry re-hashes the file, or compares the object's size and ETag,
/// and refuses to go on if it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRef {
    /// The name the task opens it by (`/data/<name>`).
    pub name: String,
    /// The file, as an absolute path, or the object's URL,
    /// `s3://BUCKET/KEY` (no credentials).
    pub path: String,
    /// blake3 of its bytes, hex; the bytes are in the store under it.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// An object's ETag, as the server gave it (`None` for a file, and in
    /// journals from before data could come from S3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// How far a compressed input may expand before it is refused as a
/// decompression bomb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InflateLimits {
    /// Decompressed bytes, in all (bytes; default 1 TiB, `--max-inflated`).
    pub max_bytes: u64,
    /// Decompressed bytes per compressed byte read (a ratio; default
    /// 1000, `--max-ratio`).
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

/// The input (a file, standard input or an S3 object) and the stamp that
/// tells whether it changed: a file's size and modification time, an
/// object's size and ETag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRef {
    /// Absolute path, `-` for standard input (which cannot be resumed), an
    /// object's URL, `s3://BUCKET/KEY` (no credentials), or `job:N`, the
    /// output of job `N` of the same journal.
    pub path: String,
    /// Its size in bytes when it was submitted (`None` for standard input,
    /// or when it could not be read).
    pub size: Option<u64>,
    /// A file's modification time, nanoseconds since the Unix epoch.
    pub modified_ns: Option<i128>,
    /// An object's ETag, as the server gave it (schema version 7); for
    /// `job:N`, `blake3:` and the hex blake3 of its chunks' output
    /// digests in input order, taken once `N` is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// gzip-compressed: `size` is not what the chunks cover.
    #[serde(default)]
    pub compressed: bool,
}

/// How a job's records pair up: chunks hold whole pairs, interleaved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pairs {
    /// Record `i` of the input and record `i` of this file are mates
    /// (`--mate`); checked for changes as the input is.
    Mate(InputRef),
    /// Records `2k` and `2k + 1` of the input are mates (`--paired
    /// interleaved`).
    Interleaved,
}

/// Per-task limits. The defaults named are those of `wrun submit`; this
/// type has none of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitsSpec {
    /// Instruction budget per task, in wasmtime fuel units; `None` (the
    /// default, `--fuel`): not metered.
    pub fuel: Option<u64>,
    /// Wall-clock limit per task, in milliseconds (default 600 000, ten
    /// minutes, `--timeout`); `None`: no limit (`--timeout none`).
    pub timeout_ms: Option<u64>,
    /// Linear memory limit per task, in bytes, at most 4 GiB (default
    /// 1 GiB, `--memory`).
    pub memory: u64,
    /// Output limit per task, in bytes (default 256 MiB, `--output-limit`).
    pub output: u64,
    /// Limits on tasks that spawn tasks; `None` (absent from specs that
    /// set none, so their fingerprints are unchanged): the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn: Option<SpawnSpec>,
}

/// Limits on tasks that spawn tasks, for a whole job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SpawnSpec {
    /// Deepest a child may be, a root chunk being depth 0
    /// (`--max-spawn-depth`, default 16).
    pub max_depth: u32,
    /// Most children one task may spawn over its run (`--max-children`,
    /// default 10,000).
    pub max_children: u32,
    /// Most children of the job queued, running or waiting at once
    /// (`--max-children-in-flight`, default 100,000).
    pub max_in_flight: u32,
}

/// How often running tasks are snapshotted (`--checkpoint-every`; no
/// default: a job without one has no schedule, though `wrun snapshot`
/// still asks for snapshots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointEvery {
    /// After this many calls into the task (records and steps; a count).
    Calls(u64),
    /// After this many milliseconds (wall-clock).
    Millis(u64),
}

#[cfg(test)]
mod tests {
    use super::{InputRef, JobSpec, Pairs};

    /// A spec recorded before plugins weighed records named the weight
    /// bound `chunk_residues`; it reads back as `chunk_weight`, so such a
    /// job resumes with the chunks it had.
    #[test]
    fn a_spec_with_chunk_residues_reads_as_chunk_weight() {
        let old = r#"{
            "module": {"source": "t.wasm", "digest": "00"},
            "format": null, "input": null, "output": null,
            "chunk_records": null, "chunk_bytes": null, "chunk_residues": 5000,
            "args": [],
            "limits": {"fuel": null, "timeout_ms": 1000, "memory": 65536, "output": 1024},
            "keep_going": false, "retries": 2
        }"#;
        let spec: JobSpec = serde_json::from_str(old).unwrap();
        assert_eq!(spec.chunk_weight, Some(5000));
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["chunk_weight"], 5000);
        // Unpaired: no `pairs` key, so its fingerprint is what it was.
        assert!(json.get("pairs").is_none());
        assert_eq!(spec.pairs, None);
    }

    #[test]
    fn pairs_read_back() {
        let mate = InputRef {
            path: "/r2.fq".to_owned(),
            size: Some(7),
            modified_ns: Some(1),
            etag: None,
            compressed: false,
        };
        for pairs in [Pairs::Mate(mate), Pairs::Interleaved] {
            let json = serde_json::to_string(&pairs).unwrap();
            assert_eq!(serde_json::from_str::<Pairs>(&json).unwrap(), pairs);
        }
        assert_eq!(
            serde_json::to_string(&Pairs::Interleaved).unwrap(),
            "\"interleaved\""
        );
    }
}
