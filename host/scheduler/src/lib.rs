//! Turning an input into tasks and running them: chunking, dispatch, the
//! local worker pool, ordered output.
//!
//! A job is three kinds of threads around one dispatcher:
//!
//! * the **reader** streams the input in blocks through the splitter plugin
//!   and the [`Chunker`], which groups records into [`Task`]s;
//! * **workers**, one per [`Executor`] slot, pull tasks from a bounded queue
//!   (so fast workers take more) and run them;
//! * the **dispatcher** (the calling thread) alone owns the job's state: it
//!   receives every event (a closed enum) as a message, writes outputs in
//!   input order as soon as the ordered prefix is complete, and decides when
//!   to stop.
//!
//! Memory stays flat whatever the input size: the queue is bounded and the
//! reader may run at most a fixed window of tasks ahead of the output.
//!
//! A job may be [recorded](Recording) in the journal: every task's state
//! changes are committed in groups, an outcome is reported (and its output
//! written) only once committed, and tasks that an earlier run of the job
//! finished are not run again; their committed outputs are written in their
//! place, so a resumed job writes the same bytes as an uninterrupted one.
//!
//! The crate knows nothing of the command line; it knows the runtime only
//! through [`Executor`] and [`wrun_runtime::Splitter`].

// Every public item is documented, with the unit of every size and time
// that is a plain number.
#![warn(missing_docs)]

mod chunker;
mod dispatch;
mod error;
mod event;
mod executor;
mod failure;
mod job;
mod nest;
mod pace;
mod pairs;
mod reader;
mod record;
mod report;
mod window;
mod worker;

pub use chunker::{ChunkError, Chunker, Chunking, Task};
pub use error::JobError;
pub use executor::{
    BatchCheckpoints, BatchExecutor, BatchOutcome, BatchReport, Executor, LocalExecutor,
    LostDispatch,
};
pub use failure::{failure_kind, task_error};
pub use job::Job;
pub use nest::SpawnLimits;
pub use pace::Adaptive;
pub use pairs::{Interleaver, Line, PairError, PairedInput};
pub use reader::Input;
pub use record::{Checkpoints, Prior, Recording};
pub use report::{FailedTask, Sink, Summary, Update};
