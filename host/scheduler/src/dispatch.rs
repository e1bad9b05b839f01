//! Running a job: the reader, the workers and the dispatcher.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use wrun_runtime::{SplitError, Splitter, TaskFailure, TaskOutput};

use crate::{ChunkError, Chunker, Chunking, Executor, Task};

/// Input bytes the chunks in flight may add up to (see `Window`).
const IN_FLIGHT_BYTES: u64 = 64 << 20;

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
}

impl fmt::Debug for Job<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("slots", &self.executor.slots())
            .field("splitter", &self.splitter)
            .field("chunking", &self.chunking)
            .field("block_size", &self.block_size)
            .field("keep_going", &self.keep_going)
            .finish_non_exhaustive()
    }
}

/// What the dispatcher reports while a job runs.
#[derive(Debug)]
pub enum Update<'a> {
    /// A task finished, successfully or not.
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
        failure: Option<&'a TaskFailure>,
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
    pub failure: TaskFailure,
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
            self.failure
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
    /// Wall-clock time.
    pub elapsed: Duration,
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
}

/// Messages to the dispatcher.
enum Event {
    /// A worker finished a batch of tasks.
    Done(Vec<Done>),
    /// The reader stopped: the input ended, or failed.
    InputEnd(Result<(), JobError>),
}

struct Done {
    meta: TaskMeta,
    result: Result<TaskOutput, TaskFailure>,
}

/// A task's identity, kept once its data has been dropped.
#[derive(Clone, Copy)]
struct TaskMeta {
    index: u64,
    first_record: u64,
    records: u64,
    offset: u64,
    len: u64,
}

impl Job<'_> {
    /// Run the job, writing the outputs of its tasks to `out` in input
    /// order and reporting each finished task to `on_update`.
    pub fn run(
        self,
        out: &mut dyn Write,
        mut on_update: impl FnMut(Update<'_>),
    ) -> Result<Summary, JobError> {
        let started = Instant::now();
        let slots = self.executor.slots().max(1);
        let (task_tx, task_rx) = crossbeam_channel::bounded::<Vec<Task>>(slots * 2);
        let (event_tx, event_rx) = crossbeam_channel::unbounded::<Event>();
        // The reader may run this many tasks ahead of the written output:
        // enough to keep every slot fed with batches, few enough that the
        // chunks in flight stay within about 64 MiB.
        let chunk_bytes = self.chunking.max_bytes.unwrap_or(64 << 10).max(1);
        let window = Window::new((IN_FLIGHT_BYTES / chunk_bytes).clamp(slots as u64 * 4 + 4, 4096));
        // Tasks above this index are skipped (set on the first failure).
        let stop_after = AtomicU64::new(u64::MAX);
        let executor = self.executor;
        let Job {
            splitter,
            input,
            chunking,
            block_size,
            keep_going,
            ..
        } = self;

        thread::scope(|scope| {
            let events = event_tx.clone();
            let window_ref = &window;
            scope.spawn(move || {
                let result = read_input(input, splitter, chunking, block_size, window_ref, task_tx);
                let _ = events.send(Event::InputEnd(result));
            });
            for _ in 0..slots {
                let tasks = task_rx.clone();
                let events = event_tx.clone();
                let stop_after = &stop_after;
                scope.spawn(move || work(executor, &tasks, &events, stop_after));
            }
            drop(event_tx);
            drop(task_rx);
            let mut dispatcher = Dispatcher {
                out,
                window: &window,
                stop_after: &stop_after,
                keep_going,
                pending: BTreeMap::new(),
                next: 0,
                summary: Summary {
                    tasks: 0,
                    records: 0,
                    input_bytes: 0,
                    output_bytes: 0,
                    failed: Vec::new(),
                    elapsed: Duration::ZERO,
                },
                first_failure: None,
                error: None,
            };
            for event in event_rx {
                dispatcher.handle(event, &mut on_update);
            }
            dispatcher.finish(started)
        })
    }
}

/// The reader thread: stream `input` through the splitter and chunker and
/// queue the tasks, never more than the window ahead of the output.
fn read_input(
    mut input: Box<dyn Read + Send + '_>,
    mut splitter: Splitter,
    chunking: Chunking,
    block_size: usize,
    window: &Window,
    tasks: Sender<Vec<Task>>,
) -> Result<(), JobError> {
    let mut chunker = Chunker::new(chunking);
    let mut block = vec![0; block_size.max(1)];
    let mut starts = Vec::new();
    let mut batcher = Batcher {
        batch: Vec::new(),
        bytes: 0,
        tasks,
        window,
        open: true,
    };
    loop {
        let filled = read_full(&mut input, &mut block).map_err(JobError::Input)?;
        let eof = filled < block.len();
        starts.clear();
        splitter.split(&block[..filled], eof, &mut starts)?;
        chunker.push(&block[..filled], &starts, |task| batcher.add(task))?;
        if eof {
            chunker.finish(|task| batcher.add(task));
            batcher.flush();
            return Ok(());
        }
        if window.is_cancelled() {
            return Ok(());
        }
    }
}

/// Groups tasks into batches for the workers, adaptively: a batch is sent
/// as soon as the queue is empty (so no worker waits and a small job still
/// spreads over every worker), and grows while the workers are busy (so a
/// job of tiny tasks pays for a queue hand-off per batch, not per task).
struct Batcher<'a> {
    batch: Vec<Task>,
    /// Bytes of the tasks in `batch`.
    bytes: usize,
    tasks: Sender<Vec<Task>>,
    window: &'a Window,
    open: bool,
}

impl Batcher<'_> {
    /// Tasks in one batch at most.
    const MAX_TASKS: usize = 256;
    /// Bytes in one batch at most.
    const MAX_BYTES: usize = 1 << 20;

    fn add(&mut self, task: Task) {
        if !self.open {
            return;
        }
        // Never wait on the window while holding tasks it is waiting for.
        if !self.window.may_queue(task.index) {
            self.flush();
            self.open = self.window.admit(task.index);
            if !self.open {
                return;
            }
        }
        self.bytes += task.data.len();
        self.batch.push(task);
        if self.tasks.is_empty()
            || self.batch.len() >= Self::MAX_TASKS
            || self.bytes >= Self::MAX_BYTES
        {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.open && !self.batch.is_empty() {
            self.bytes = 0;
            self.open = self.tasks.send(std::mem::take(&mut self.batch)).is_ok();
        }
    }
}

/// Read until `buf` is full or the input ends; the number of bytes read.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A worker thread: run tasks until the queue closes.
fn work(
    executor: &dyn Executor,
    batches: &Receiver<Vec<Task>>,
    events: &Sender<Event>,
    stop_after: &AtomicU64,
) {
    for batch in batches {
        let mut done = Vec::with_capacity(batch.len());
        for task in batch {
            if task.index > stop_after.load(Ordering::Acquire) {
                continue;
            }
            let meta = TaskMeta {
                index: task.index,
                first_record: task.first_record,
                records: task.records.len() as u64,
                offset: task.offset,
                len: task.data.len() as u64,
            };
            let result = executor.execute(&task);
            done.push(Done { meta, result });
        }
        if events.send(Event::Done(done)).is_err() {
            return;
        }
    }
}

/// The dispatcher's state; it alone decides what is written and when to
/// stop.
struct Dispatcher<'a> {
    out: &'a mut dyn Write,
    window: &'a Window,
    stop_after: &'a AtomicU64,
    keep_going: bool,
    /// Outputs that finished ahead of `next` (`None`: failed, kept going).
    pending: BTreeMap<u64, Option<Vec<u8>>>,
    /// Index of the next output to write.
    next: u64,
    summary: Summary,
    /// The lowest-indexed failure when not keeping going.
    first_failure: Option<FailedTask>,
    /// A reader or output error.
    error: Option<JobError>,
}

impl Dispatcher<'_> {
    fn handle(&mut self, event: Event, on_update: &mut impl FnMut(Update<'_>)) {
        match event {
            Event::InputEnd(Ok(())) => {}
            Event::InputEnd(Err(error)) => self.fail(error),
            Event::Done(batch) => {
                for done in batch {
                    self.finished(done, on_update);
                }
                self.write_ready();
            }
        }
    }

    fn finished(&mut self, done: Done, on_update: &mut impl FnMut(Update<'_>)) {
        let Done { meta, result } = done;
        let (log, failure) = match &result {
            Ok(output) => (&output.log[..], None),
            Err(failure) => (&failure.log[..], Some(failure)),
        };
        on_update(Update::Finished {
            index: meta.index,
            bytes: meta.len,
            records: meta.records,
            log,
            failure,
        });
        self.summary.tasks += 1;
        self.summary.records += meta.records;
        self.summary.input_bytes += meta.len;
        match result {
            Ok(output) => {
                self.pending.insert(meta.index, Some(output.output));
            }
            Err(failure) => self.task_failed(meta, failure),
        }
    }

    fn task_failed(&mut self, meta: TaskMeta, failure: TaskFailure) {
        let failed = FailedTask {
            index: meta.index,
            first_record: meta.first_record,
            records: meta.records,
            offset: meta.offset,
            len: meta.len,
            failure,
        };
        if self.keep_going {
            self.pending.insert(meta.index, None);
            self.summary.failed.push(failed);
            return;
        }
        // Stop: finish only the tasks before this one, so the output is a
        // complete prefix of the input's.
        self.stop_after.fetch_min(meta.index, Ordering::AcqRel);
        self.window.cancel();
        if self
            .first_failure
            .as_ref()
            .is_none_or(|f| f.index > meta.index)
        {
            self.first_failure = Some(failed);
        }
    }

    fn fail(&mut self, error: JobError) {
        self.window.cancel();
        self.error.get_or_insert(error);
    }

    /// Write every output whose predecessors are all written.
    fn write_ready(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            // After an output error nothing more can be written; after an
            // input error, tasks already queued still complete the prefix.
            if *entry.key() != self.next || matches!(self.error, Some(JobError::Output(_))) {
                return;
            }
            if let Some(output) = entry.remove() {
                if let Err(error) = self.out.write_all(&output) {
                    self.fail(JobError::Output(error));
                    return;
                }
                self.summary.output_bytes += output.len() as u64;
            }
            self.next += 1;
            self.window.advance(self.next);
        }
    }

    fn finish(mut self, started: Instant) -> Result<Summary, JobError> {
        if let Err(error) = self.out.flush() {
            self.error.get_or_insert(JobError::Output(error));
        }
        self.summary.failed.sort_by_key(|f| f.index);
        self.summary.elapsed = started.elapsed();
        if let Some(failed) = self.first_failure {
            return Err(JobError::Task(Box::new(failed)));
        }
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.summary),
        }
    }
}

/// Bounds how far the reader runs ahead of the written output, and lets the
/// dispatcher stop it.
struct Window {
    state: Mutex<WindowState>,
    changed: Condvar,
    size: u64,
}

struct WindowState {
    written: u64,
    cancelled: bool,
}

impl Window {
    fn new(size: u64) -> Self {
        Window {
            state: Mutex::new(WindowState {
                written: 0,
                cancelled: false,
            }),
            changed: Condvar::new(),
            size,
        }
    }

    fn lock(&self) -> MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether task `index` may be queued now.
    fn may_queue(&self, index: u64) -> bool {
        let state = self.lock();
        !state.cancelled && index < state.written + self.size
    }

    /// Wait until task `index` may be queued; false if the job was
    /// cancelled. Progress is guaranteed: every task below `index` is queued
    /// or running, and `written` advances as they finish.
    fn admit(&self, index: u64) -> bool {
        let mut state = self.lock();
        while !state.cancelled && index >= state.written + self.size {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        !state.cancelled
    }

    fn advance(&self, written: u64) {
        self.lock().written = written;
        self.changed.notify_all();
    }

    fn cancel(&self) {
        self.lock().cancelled = true;
        self.changed.notify_all();
    }

    fn is_cancelled(&self) -> bool {
        self.lock().cancelled
    }
}
