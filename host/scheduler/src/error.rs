//! Why a job stopped early: [`JobError`].

use std::io;

use wrun_journal::{IllegalTransition, JournalError, SuspendReason};
use wrun_runtime::SplitError;

use crate::chunker::ChunkError;
use crate::pairs::PairError;
use crate::report::FailedTask;

/// Why a job stopped early. Output of every task before the failing point
/// has been written.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Reading the input failed.
    #[error("cannot read the input: {0}")]
    Input(#[source] io::Error),
    /// The splitter rejected the input or failed.
    #[error(transparent)]
    Split(#[from] SplitError),
    /// Paired files are not pairs: names differ, or one ended first.
    #[error(transparent)]
    Pair(PairError),
    /// A record could not be made into a task.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[source] io::Error),
    /// A task failed (and `keep_going` was off).
    #[error("{0}")]
    Task(Box<FailedTask>),
    /// `wrun cancel` stopped the job.
    #[error("the job was cancelled")]
    Cancelled,
    /// Tasks were suspended (their fuel ran out, or the job was drained):
    /// `wrun resume` goes on.
    #[error("{} suspended ({})", chunks(*tasks), match reason {
        SuspendReason::Fuel => "out of fuel",
        SuspendReason::Drain => "the job was asked to stop",
    })]
    Suspended {
        /// Tasks suspended (0 when the job was drained before any ran).
        tasks: u64,
        /// Why the first of them was.
        reason: SuspendReason,
    },
    /// The input is not what an earlier run of the job split.
    #[error(
        "the input changed since the job started: chunk {index} now covers bytes \
         {offset}..{end}, it covered {was_offset}..{was_end}"
    )]
    InputChanged {
        /// The chunk that moved.
        index: u64,
        /// Where it starts now, in bytes.
        offset: u64,
        /// Where it ends now (exclusive), in bytes.
        end: u64,
        /// Where it started, in bytes.
        was_offset: u64,
        /// Where it ended (exclusive), in bytes.
        was_end: u64,
    },
    /// The journal could not record the job.
    #[error(transparent)]
    Journal(JournalError),
    /// A stored output could not be kept or read back.
    #[error("{0}")]
    Store(String),
    /// The task state machine was broken (a bug).
    #[error("internal error: {0}")]
    State(IllegalTransition),
    /// Events arrived in an impossible order (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl JobError {
    /// A failed read of the input: [`JobError::Pair`] or
    /// [`JobError::Split`] when an [`Interleaver`](crate::Interleaver)
    /// found that its files are no pairs or a plugin rejected one,
    /// else [`JobError::Input`].
    pub fn from_input(error: io::Error) -> Self {
        let inner = error.get_ref();
        if inner.is_some_and(|e| e.is::<PairError>() || e.is::<SplitError>()) {
            let inner = error.into_inner().expect("checked above");
            return match inner.downcast::<PairError>() {
                Ok(pair) => JobError::Pair(*pair),
                Err(other) => match other.downcast::<SplitError>() {
                    Ok(split) => JobError::Split(*split),
                    Err(other) => JobError::Input(io::Error::other(other)),
                },
            };
        }
        JobError::Input(error)
    }
}

/// "1 running chunk", "3 running chunks".
fn chunks(n: u64) -> String {
    match n {
        1 => "1 running chunk".to_owned(),
        n => format!("{n} running chunks"),
    }
}
