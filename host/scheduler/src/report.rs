//! What a job reports: its outputs (to a [`Sink`]), progress ([`Update`]),
//! and how it went ([`Summary`], [`FailedTask`]).

use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

use wrun_journal::{ChunkPos, TaskError};

/// Where a job's outputs go: every task's output (none for a failed task
/// under `keep_going`), once, in input order. Any writer is a sink that
/// concatenates them.
pub trait Sink {
    /// The output of the next task.
    fn output(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// The job is over: make everything written durable or visible.
    fn flush(&mut self) -> io::Result<()>;
}

impl<W: Write + ?Sized> Sink for W {
    fn output(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Write::flush(self)
    }
}

/// What the dispatcher reports while a job runs.
#[derive(Debug)]
pub enum Update<'a> {
    /// A task finished, successfully or not, in this run or an earlier
    /// one (then with an empty log).
    Finished {
        /// The task's chunk index.
        index: u64,
        /// Input bytes the task covered.
        bytes: u64,
        /// Records in the task.
        records: u64,
        /// Its log (possibly empty).
        log: &'a [u8],
        /// Why it failed, if it did.
        error: Option<&'a TaskError>,
    },
}

/// A task that failed, and where its input lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTask {
    /// Chunk index.
    pub index: u64,
    /// Where the chunk lies in the input.
    pub pos: ChunkPos,
    /// What happened.
    pub error: TaskError,
}

impl fmt::Display for FailedTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chunk {} ({}): {}", self.index, self.pos, self.error)
    }
}

/// How a job went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Tasks run.
    pub tasks: u64,
    /// Records in all tasks.
    pub records: u64,
    /// Input bytes covered by the tasks.
    pub input_bytes: u64,
    /// Output bytes written.
    pub output_bytes: u64,
    /// Failed tasks (only with `keep_going`), in input order.
    pub failed: Vec<FailedTask>,
    /// Tasks done by earlier runs of the job (included in the counts
    /// above).
    pub restored: u64,
    /// The slowest tasks run, slowest first: chunk index and wall time.
    pub slowest: Vec<(u64, Duration)>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

impl Summary {
    /// Tasks listed in [`Summary::slowest`].
    pub const SLOWEST: usize = 5;

    pub(crate) fn note_wall(&mut self, index: u64, wall: Duration) {
        if self.slowest.len() == Self::SLOWEST
            && self.slowest.last().is_some_and(|&(_, w)| w >= wall)
        {
            return;
        }
        let at = self.slowest.partition_point(|&(_, w)| w >= wall);
        self.slowest.insert(at, (index, wall));
        self.slowest.truncate(Self::SLOWEST);
    }
}
