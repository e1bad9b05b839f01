//! The wrun sandbox: runs WebAssembly guests under limits.
//!
//! This crate owns everything wasmtime: one [`Runtime`] per process holds the
//! engine (Cranelift, pooling allocator, epoch interruption) and the linker
//! with the host side of the guest ABI (`docs/abi.md`). Around it:
//!
//! * [`admission`]: a module's bytes become a [`Module`] only after size,
//!   validation, kind and import checks; every rejection names the module.
//!   With a store, compiled artifacts are cached by content
//!   ([`ArtifactCache`]) and a known module starts from a memory-mapped
//!   artifact instead of being compiled.
//! * [`TaskRunner`]: one per module and job; built once (it holds the
//!   `InstancePre`), then [`TaskRunner::run`] executes one chunk in a fresh
//!   store and reports a [`TaskOutput`] or a [`TaskFailure`].
//! * [`Splitter`]: a data plugin instance that the scheduler streams the
//!   input through to find record boundaries; [`plugins`] has the builtin
//!   ones, compiled from `plugins/` and embedded at build time.
//! * [`Checkpointing`]: a task run with it is snapshotted between two calls
//!   into the guest (on a schedule, on request, or when its fuel runs out)
//!   and can be resumed from a snapshot in another process; see
//!   `docs/snapshots.md`.
//! * [`Limits`]: fuel, wall-clock timeout, memory, table, output, log and
//!   stack caps, each breach reported as its own [`Failure`].
//!
//! The crate knows nothing of jobs, chunking, scheduling or the CLI.

#![warn(missing_docs)]

pub mod admission;
mod cache;
mod checkpoint;
mod clock;
mod engine;
mod epoch;
mod guest;
mod host_abi;
mod limits;
mod nest;
mod outcome;
mod pipe;
pub mod plugins;
mod rewrite;
mod sandbox;
mod snapshot;
mod splitter;
mod stdin;
mod task;
mod wasi;

pub use admission::{AdmissionError, Module, ModuleInfo, Origin};
pub use cache::{ArtifactCache, CacheEntry, CacheStats, Listed};
pub use checkpoint::{
    Checkpoint, Checkpointing, Ended, Every, Requests, SNAPSHOT_SHARE_PERCENT, SuspendReason,
    Suspended,
};
pub use engine::{Runtime, RuntimeError};
pub use limits::Limits;
pub use nest::{ChildResult, Nesting, Spawn, SpawnLimit};
pub use outcome::{Failure, TaskFailure, TaskOutput};
pub use sandbox::DATA_DIR;
pub use snapshot::{Cursor, SnapshotError, Taken, bases_of};
pub use splitter::{SplitError, Splitter};
pub use task::{Chunk, Progress, TaskRunner, Waiting};
pub use wasmtime::Trap;
pub use wrun_abi::{Kind, Unit};
