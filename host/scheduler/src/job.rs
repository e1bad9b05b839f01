//! A job and how it runs: the reader, the workers and the dispatcher
//! around one set of channels, and what a run reports.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::atomic::AtomicU64;
use std::thread;
use std::time::{Duration, Instant};

use wrun_journal::{IllegalTransition, JournalError, SuspendReason, TaskError};
use wrun_runtime::{SplitError, Splitter};

use crate::dispatch::{Dispatcher, Event};
use crate::pace::{Adaptive, Pace};
use crate::reader::{Batcher, Sizing, read_input};
use crate::record::{Prior, Recorder, Recording};
use crate::window::Window;
use crate::worker::Worker;
use crate::{ChunkError, Chunking, Executor, Task};

/// A job: an input, how to split and chunk it, and where to run the tasks.
pub struct Job<'a> {
    /// Runs the tasks.
    pub executor: &'a dyn Executor,
    /// Finds record boundaries in `input`.
    pub splitter: Splitter,
    /// The input, read once, front to back.
    pub input: Box<dyn Read + Send + 'a>,
    /// How records are grouped into tasks.
    pub chunking: Chunking,
    /// Bytes read from the input at a time.
    pub block_size: usize,
    /// On a task failure, go on with the other tasks (the failed ones
    /// contribute no output) instead of stopping.
    pub keep_going: bool,
    /// Run a task again this many times when it fails for a reason that
    /// may not recur (a host error); deterministic failures are final.
    pub retries: u32,
    /// Record the job in the journal (and skip what earlier runs did).
    pub recording: Option<Recording<'a>>,
    /// Size chunks from measured cost instead of `chunking.max_bytes`.
    pub adaptive: Option<Adaptive>,
}

impl fmt::Debug for Job<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("slots", &self.executor.slots())
            .field("splitter", &self.splitter)
            .field("chunking", &self.chunking)
            .field("block_size", &self.block_size)
            .field("keep_going", &self.keep_going)
            .field("retries", &self.retries)
            .field("recording", &self.recording)
            .field("adaptive", &self.adaptive)
            .finish_non_exhaustive()
    }
}

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
    /// Index of its first record.
    pub first_record: u64,
    /// Records in the chunk.
    pub records: u64,
    /// Byte offset of the chunk in the input.
    pub offset: u64,
    /// Chunk length in bytes.
    pub len: u64,
    /// What happened.
    pub error: TaskError,
}

impl fmt::Display for FailedTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chunk {} (records {}..{}, bytes {}..{}): {}",
            self.index,
            self.first_record + 1,
            self.first_record + self.records,
            self.offset,
            self.offset + self.len,
            self.error
        )
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
    Suspended { tasks: u64, reason: SuspendReason },
    /// The input is not what an earlier run of the job split.
    #[error(
        "the input changed since the job started: chunk {index} now covers bytes \
         {offset}..{end}, it covered {was_offset}..{was_end}"
    )]
    InputChanged {
        index: u64,
        offset: u64,
        end: u64,
        was_offset: u64,
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

/// "1 running chunk", "3 running chunks".
fn chunks(n: u64) -> String {
    match n {
        1 => "1 running chunk".to_owned(),
        n => format!("{n} running chunks"),
    }
}

impl Job<'_> {
    /// Run the job, handing the outputs of its tasks to `out` in input
    /// order and reporting each finished task to `on_update`.
    pub fn run(
        self,
        out: &mut dyn Sink,
        mut on_update: impl FnMut(Update<'_>),
    ) -> Result<Summary, JobError> {
        let started = Instant::now();
        let slots = self.executor.slots().max(1);
        let (task_tx, task_rx) = crossbeam_channel::bounded::<Vec<Task>>(slots * 2);
        let (event_tx, event_rx) = crossbeam_channel::unbounded::<Event>();
        let window = Window::new();
        // Tasks from this index on are skipped (set when the job stops).
        let skip_from = AtomicU64::new(u64::MAX);
        let executor = self.executor;
        let Job {
            splitter,
            input,
            chunking,
            block_size,
            keep_going,
            retries,
            recording,
            adaptive,
            ..
        } = self;
        let (recorder, prior, checkpoints) = match recording {
            Some(Recording {
                journal,
                job,
                store,
                prior,
                checkpoints,
            }) => (Some((journal, job, store)), prior, Some(checkpoints)),
            None => (None, Prior::default(), None),
        };
        let requests = checkpoints
            .as_ref()
            .map(|c| c.requests.clone())
            .unwrap_or_default();
        let recording = recorder.is_some();
        let prior = &prior;
        let pace = Pace::new();
        let worker = Worker {
            executor,
            retries,
            recording,
            skip_from: &skip_from,
            pace: &pace,
            checkpoints: recorder
                .as_ref()
                .zip(checkpoints.as_ref())
                .map(|((_, _, store), checkpoints)| (&**store, checkpoints, prior)),
        };

        thread::scope(|scope| {
            let events = event_tx.clone();
            let window_ref = &window;
            scope.spawn(move || {
                let batcher = Batcher {
                    batch: Vec::new(),
                    bytes: 0,
                    tasks: task_tx,
                    events: events.clone(),
                    recording,
                    prior,
                    window: window_ref,
                    pace: worker.pace,
                    open: true,
                    made: 0,
                    error: None,
                };
                let sizing = Sizing {
                    adaptive,
                    pace: worker.pace,
                    slots,
                };
                let result = read_input(input, splitter, chunking, sizing, block_size, batcher);
                let _ = events.send(Event::InputEnd(result));
            });
            for _ in 0..slots {
                let tasks = task_rx.clone();
                let events = event_tx.clone();
                let worker = &worker;
                scope.spawn(move || worker.work(&tasks, &events));
            }
            drop(event_tx);
            drop(task_rx);
            let eager = adaptive.is_some();
            let recorder = recorder
                .map(|(journal, job, store)| Recorder::new(journal, job, store, prior, eager));
            let mut dispatcher =
                Dispatcher::new(out, &window, &skip_from, keep_going, recorder, &requests);
            while let Some(event) = dispatcher.next_event(&event_rx, &mut on_update) {
                dispatcher.handle(event, &mut on_update);
                if dispatcher.commit_due() {
                    dispatcher.commit(false, &mut on_update);
                }
            }
            dispatcher.finish(started, &mut on_update)
        })
    }
}
