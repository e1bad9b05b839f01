//! Running a job: the reader, the workers and the dispatcher.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use wrun_journal::{IllegalTransition, JournalError, Millis, TaskError, TaskState};
use wrun_runtime::{SplitError, Splitter, TaskFailure, TaskOutput};

use crate::pace::{Adaptive, Pace};
use crate::record::{Prior, PriorOutcome, Recorder, Recording, RetriedAttempt};
use crate::{ChunkError, Chunker, Chunking, Executor, Task};

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

    fn note_wall(&mut self, index: u64, wall: Duration) {
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

/// Messages to the dispatcher.
enum Event {
    /// The reader queued these tasks (sent only when recording).
    Queued(Vec<TaskMeta>),
    /// A worker took these tasks (sent only when recording).
    Started(Vec<u64>, Millis),
    /// A worker finished a batch of tasks.
    Done(Vec<Done>),
    /// An earlier run of the job finished this task.
    Restored(TaskMeta),
    /// The reader stopped: the input ended after this many tasks, or
    /// failed.
    InputEnd(Result<u64, JobError>),
}

/// A task a worker finished.
pub(crate) struct Done {
    pub(crate) meta: TaskMeta,
    pub(crate) result: Result<TaskOutput, TaskFailure>,
    /// When the last attempt started, and how long it ran.
    pub(crate) started_at: Millis,
    pub(crate) wall: Duration,
    /// Earlier attempts of this run that failed and were retried.
    pub(crate) retried: Vec<RetriedAttempt>,
}

/// A task's identity, kept once its data has been dropped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskMeta {
    pub(crate) index: u64,
    pub(crate) first_record: u64,
    pub(crate) records: u64,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

impl TaskMeta {
    fn of(task: &Task) -> Self {
        TaskMeta {
            index: task.index,
            first_record: task.first_record,
            records: task.records.len() as u64,
            offset: task.offset,
            len: task.data.len() as u64,
        }
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
        let (recorder, prior) = match recording {
            Some(Recording {
                journal,
                job,
                store,
                prior,
            }) => (Some((journal, job, store)), prior),
            None => (None, Prior::default()),
        };
        let recording = recorder.is_some();
        let prior = &prior;
        let pace = Pace::new();
        let worker = Worker {
            executor,
            retries,
            recording,
            skip_from: &skip_from,
            pace: &pace,
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
            let mut dispatcher = Dispatcher {
                out,
                window: &window,
                skip_from: &skip_from,
                keep_going,
                recorder: recorder
                    .map(|(journal, job, store)| Recorder::new(journal, job, store, prior)),
                pending: BTreeMap::new(),
                next: 0,
                summary: Summary {
                    tasks: 0,
                    records: 0,
                    input_bytes: 0,
                    output_bytes: 0,
                    failed: Vec::new(),
                    restored: 0,
                    slowest: Vec::new(),
                    elapsed: Duration::ZERO,
                },
                input_done: false,
                cancelled: false,
                first_failure: None,
                error: None,
            };
            while let Some(event) = dispatcher.next_event(&event_rx, &mut on_update) {
                dispatcher.handle(event, &mut on_update);
                if dispatcher
                    .recorder
                    .as_ref()
                    .is_some_and(Recorder::commit_due)
                {
                    dispatcher.commit(false, &mut on_update);
                }
            }
            dispatcher.finish(started, &mut on_update)
        })
    }
}

/// The reader thread: stream `input` through the splitter and chunker and
/// queue the tasks, never more than the window ahead of the output.
/// Returns the number of tasks the input made.
fn read_input(
    mut input: Box<dyn Read + Send + '_>,
    mut splitter: Splitter,
    chunking: Chunking,
    sizing: Sizing<'_>,
    block_size: usize,
    mut batcher: Batcher<'_>,
) -> Result<u64, JobError> {
    let mut chunker = Chunker::new(chunking);
    // Chunks that earlier runs cut are cut the same way again, whatever
    // cut them (adaptive sizes depend on timing).
    chunker.replay(batcher.prior.lengths());
    let mut block = vec![0; block_size.max(1)];
    let mut starts = Vec::new();
    loop {
        let filled = read_full(&mut input, &mut block).map_err(JobError::Input)?;
        let eof = filled < block.len();
        starts.clear();
        splitter.split(&block[..filled], eof, &mut starts)?;
        if let Some(adaptive) = &sizing.adaptive {
            // A quarter of the window per worker: chunks in flight stay
            // many enough to keep every worker busy.
            let max = Window::MAX_BYTES / (4 * sizing.slots as u64);
            let bytes = adaptive.chunk_bytes(sizing.pace, chunker.consumed(), sizing.slots, max);
            chunker.set_max_bytes(Some(bytes));
        }
        chunker.push(&block[..filled], &starts, |task| batcher.add(task))?;
        if eof {
            chunker.finish(|task| batcher.add(task));
            batcher.flush();
        }
        if let Some(error) = batcher.error.take() {
            return Err(error);
        }
        if eof || batcher.window.is_cancelled() {
            return Ok(batcher.made);
        }
    }
}

/// How the reader sizes chunks as it goes (adaptive chunking only).
struct Sizing<'a> {
    adaptive: Option<Adaptive>,
    pace: &'a Pace,
    slots: usize,
}

/// Groups tasks into batches for the workers, adaptively: a batch is sent
/// as soon as the queue is empty (so no worker waits and a small job still
/// spreads over every worker), and grows while the workers are busy (so a
/// job of tiny tasks pays for a queue hand-off per batch, not per task), but
/// only to about [`Pace::BATCH_TIME`] of work (so slow tasks are spread one
/// by one and no worker is left holding a long batch while others idle).
/// Tasks that an earlier run finished go to the dispatcher instead.
struct Batcher<'a> {
    batch: Vec<Task>,
    /// Bytes of the tasks in `batch`.
    bytes: usize,
    tasks: Sender<Vec<Task>>,
    events: Sender<Event>,
    /// Tell the dispatcher about queued tasks, for the journal.
    recording: bool,
    prior: &'a Prior,
    window: &'a Window,
    pace: &'a Pace,
    open: bool,
    /// Tasks the input has made so far.
    made: u64,
    /// Why the batcher closed, if it was not told to.
    error: Option<JobError>,
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
        self.made = task.index + 1;
        let finished_before = self
            .prior
            .get(task.index)
            .filter(|prior| !matches!(prior.outcome, PriorOutcome::Pending));
        if let Some(prior) = finished_before {
            let end = task.offset + task.data.len() as u64;
            if (prior.offset, prior.offset + prior.len) != (task.offset, end) {
                self.open = false;
                self.error = Some(JobError::InputChanged {
                    index: task.index,
                    offset: task.offset,
                    end,
                    was_offset: prior.offset,
                    was_end: prior.offset + prior.len,
                });
                return;
            }
            // Its place in the window is taken like any task's, after every
            // task before it has been handed on.
            self.flush();
            self.open = self.window.admit(task.index, task.data.len() as u64)
                && self
                    .events
                    .send(Event::Restored(TaskMeta::of(&task)))
                    .is_ok();
            return;
        }
        // Never wait on the window while holding tasks it is waiting for.
        if !self.window.try_admit(task.index, task.data.len() as u64) {
            self.flush();
            self.open = self.window.admit(task.index, task.data.len() as u64);
            if !self.open {
                return;
            }
        }
        self.bytes += task.data.len();
        self.batch.push(task);
        if self.tasks.is_empty()
            || self.batch.len() >= self.pace.batch_tasks(Self::MAX_TASKS)
            || self.bytes >= Self::MAX_BYTES
        {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.open && !self.batch.is_empty() {
            self.bytes = 0;
            if self.recording {
                // Sent before the tasks, so it reaches the dispatcher before
                // any outcome of theirs.
                let metas = self.batch.iter().map(TaskMeta::of).collect();
                self.open = self.events.send(Event::Queued(metas)).is_ok();
            }
            self.open = self.open && self.tasks.send(std::mem::take(&mut self.batch)).is_ok();
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

/// What every worker thread shares.
struct Worker<'a> {
    executor: &'a dyn Executor,
    retries: u32,
    recording: bool,
    skip_from: &'a AtomicU64,
    pace: &'a Pace,
}

impl Worker<'_> {
    /// Finished tasks are sent on at least this often.
    const REPORT_EVERY: Duration = Duration::from_millis(2);

    /// Run batches of tasks until the queue closes.
    fn work(&self, batches: &Receiver<Vec<Task>>, events: &Sender<Event>) {
        for batch in batches {
            if self.recording {
                let indices = batch.iter().map(|t| t.index).collect();
                if events
                    .send(Event::Started(indices, wrun_journal::now()))
                    .is_err()
                {
                    return;
                }
            }
            let mut done = Vec::with_capacity(batch.len());
            let mut reported = Instant::now();
            for task in batch {
                if task.index >= self.skip_from.load(Ordering::Acquire) {
                    continue;
                }
                done.push(self.run(&task));
                // Slow tasks are reported as they finish, not with their
                // whole batch.
                if reported.elapsed() >= Self::REPORT_EVERY {
                    if events.send(Event::Done(std::mem::take(&mut done))).is_err() {
                        return;
                    }
                    reported = Instant::now();
                }
            }
            if !done.is_empty() && events.send(Event::Done(done)).is_err() {
                return;
            }
        }
    }

    /// Run one task, retrying failures that may not recur.
    fn run(&self, task: &Task) -> Done {
        let mut retried = Vec::new();
        loop {
            let started_at = wrun_journal::now();
            let clock = Instant::now();
            let result = self.executor.execute(task);
            let wall = clock.elapsed();
            self.pace.observe(wall, task.data.len() as u64);
            match result {
                Err(failure)
                    if crate::failure_kind(&failure.reason).is_transient()
                        && retried.len() < self.retries as usize =>
                {
                    retried.push(RetriedAttempt {
                        started_at,
                        ended_at: started_at + wall.as_millis() as Millis,
                        failure,
                    });
                }
                result => {
                    return Done {
                        meta: TaskMeta::of(task),
                        result,
                        started_at,
                        wall,
                        retried,
                    };
                }
            }
        }
    }
}

/// The dispatcher's state; it alone decides what is written and when to
/// stop.
struct Dispatcher<'a> {
    out: &'a mut dyn Sink,
    window: &'a Window,
    skip_from: &'a AtomicU64,
    keep_going: bool,
    /// Records the job in the journal, when it is journaled.
    recorder: Option<Recorder<'a>>,
    /// Outputs that finished ahead of `next` (`None`: failed, kept going),
    /// with the input bytes of their tasks.
    pending: BTreeMap<u64, (u64, Option<Vec<u8>>)>,
    /// Index of the next output to write.
    next: u64,
    summary: Summary,
    /// The reader split the whole input.
    input_done: bool,
    /// `wrun cancel` asked the job to stop.
    cancelled: bool,
    /// The lowest-indexed failure when not keeping going.
    first_failure: Option<FailedTask>,
    /// A reader, output or journal error.
    error: Option<JobError>,
}

impl Dispatcher<'_> {
    /// The next event, committing to the journal whenever nothing else is
    /// waiting; `None` once every thread is done.
    fn next_event(
        &mut self,
        events: &Receiver<Event>,
        on_update: &mut impl FnMut(Update<'_>),
    ) -> Option<Event> {
        let Some(recorder) = &self.recorder else {
            return events.recv().ok();
        };
        match events.try_recv() {
            Ok(event) => return Some(event),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        if recorder.has_uncommitted() {
            self.commit(false, on_update);
            return self.next_event(events, on_update);
        }
        loop {
            match events.recv_timeout(Recorder::LIVE_DELAY) {
                Ok(event) => return Some(event),
                Err(RecvTimeoutError::Disconnected) => return None,
                // Commit what changed, and see whether a cancel came.
                Err(RecvTimeoutError::Timeout) => self.commit(false, on_update),
            }
        }
    }

    fn handle(&mut self, event: Event, on_update: &mut impl FnMut(Update<'_>)) {
        let result = match event {
            Event::InputEnd(Ok(tasks)) => {
                self.input_done = true;
                if let Some(recorder) = &mut self.recorder {
                    recorder.input_done(tasks);
                }
                Ok(())
            }
            Event::InputEnd(Err(error)) => Err(error),
            Event::Queued(tasks) => match &mut self.recorder {
                Some(recorder) => {
                    recorder.queued(&tasks);
                    Ok(())
                }
                None => Ok(()),
            },
            Event::Started(indices, at) => match &mut self.recorder {
                Some(recorder) => recorder.started(&indices, at),
                None => Ok(()),
            },
            Event::Restored(meta) => self.restored(meta, on_update),
            Event::Done(batch) => {
                for done in batch {
                    self.summary.note_wall(done.meta.index, done.wall);
                    match &mut self.recorder {
                        Some(recorder) => {
                            if let Err(error) = recorder.finished(done) {
                                self.fail(error);
                            }
                        }
                        None => self.finished(done, on_update),
                    }
                }
                self.write_ready();
                Ok(())
            }
        };
        if let Err(error) = result {
            self.fail(error);
        }
    }

    /// Commit what the journal has not seen (`all`: live rows too); then
    /// report the outcomes it now holds.
    fn commit(&mut self, all: bool, on_update: &mut impl FnMut(Update<'_>)) {
        let Some(recorder) = &mut self.recorder else {
            return;
        };
        let result = match all {
            true => recorder.commit_all(),
            false => recorder.commit(),
        };
        match result {
            Ok((committed, outcomes)) => {
                for done in outcomes {
                    self.finished(done, on_update);
                }
                self.write_ready();
                if committed.cancel_requested && !self.cancelled {
                    self.cancelled = true;
                    self.stop(0);
                }
            }
            Err(error) => self.fail(error),
        }
    }

    /// A task finished by an earlier run: its committed outcome counts as
    /// if it had just finished.
    fn restored(
        &mut self,
        meta: TaskMeta,
        on_update: &mut impl FnMut(Update<'_>),
    ) -> Result<(), JobError> {
        let Some(recorder) = &self.recorder else {
            return Err(JobError::Internal(format!(
                "task {} restored without a journal",
                meta.index
            )));
        };
        let result = match recorder.prior(meta.index).map(|p| &p.outcome) {
            Some(PriorOutcome::Done(output)) => Ok(recorder.prior_output(meta.index, output)?),
            Some(PriorOutcome::Failed(error)) => Err(error.clone()),
            _ => {
                return Err(JobError::Internal(format!(
                    "task {} restored unfinished",
                    meta.index
                )));
            }
        };
        self.summary.restored += 1;
        self.outcome(meta, &[], result, on_update);
        self.write_ready();
        Ok(())
    }

    fn finished(&mut self, done: Done, on_update: &mut impl FnMut(Update<'_>)) {
        let Done { meta, result, .. } = done;
        match result {
            Ok(output) => self.outcome(meta, &output.log, Ok(output.output), on_update),
            Err(failure) => {
                let error = crate::task_error(&failure.reason);
                self.outcome(meta, &failure.log, Err(error), on_update);
            }
        }
    }

    fn outcome(
        &mut self,
        meta: TaskMeta,
        log: &[u8],
        result: Result<Vec<u8>, TaskError>,
        on_update: &mut impl FnMut(Update<'_>),
    ) {
        on_update(Update::Finished {
            index: meta.index,
            bytes: meta.len,
            records: meta.records,
            log,
            error: result.as_ref().err(),
        });
        self.summary.tasks += 1;
        self.summary.records += meta.records;
        self.summary.input_bytes += meta.len;
        match result {
            Ok(output) => {
                self.pending.insert(meta.index, (meta.len, Some(output)));
            }
            Err(error) => self.task_failed(meta, error),
        }
    }

    fn task_failed(&mut self, meta: TaskMeta, error: TaskError) {
        let failed = FailedTask {
            index: meta.index,
            first_record: meta.first_record,
            records: meta.records,
            offset: meta.offset,
            len: meta.len,
            error,
        };
        if self.keep_going {
            self.pending.insert(meta.index, (meta.len, None));
            self.summary.failed.push(failed);
            return;
        }
        // Stop: finish only the tasks before this one, so the output is a
        // complete prefix of the input's.
        self.stop(meta.index + 1);
        if self
            .first_failure
            .as_ref()
            .is_none_or(|f| f.index > meta.index)
        {
            self.first_failure = Some(failed);
        }
    }

    /// Run no task from index `from` on, and read no more input.
    fn stop(&self, from: u64) {
        self.skip_from.fetch_min(from, Ordering::AcqRel);
        self.window.cancel();
    }

    fn fail(&mut self, error: JobError) {
        self.window.cancel();
        self.error.get_or_insert(error);
    }

    /// Write every output whose predecessors are all written.
    fn write_ready(&mut self) {
        let (mut freed, first) = (0, self.next);
        while let Some(entry) = self.pending.first_entry() {
            // After an output error nothing more can be written; after an
            // input error, tasks already queued still complete the prefix.
            if *entry.key() != self.next || matches!(self.error, Some(JobError::Output(_))) {
                break;
            }
            let (len, output) = entry.remove();
            if let Some(output) = output {
                if let Err(error) = self.out.output(&output) {
                    self.fail(JobError::Output(error));
                    break;
                }
                self.summary.output_bytes += output.len() as u64;
            }
            freed += len;
            self.next += 1;
        }
        if self.next > first {
            self.window.advance(self.next, freed);
        }
    }

    fn finish(
        mut self,
        started: Instant,
        on_update: &mut impl FnMut(Update<'_>),
    ) -> Result<Summary, JobError> {
        if let Some(recorder) = &mut self.recorder {
            // Tasks that will not run now: cancelled when the job stopped
            // for good, queued again when it can be resumed.
            let stopped = self.cancelled || self.first_failure.is_some();
            let unfinished = match stopped {
                true => TaskState::Cancelled {
                    at: wrun_journal::now(),
                },
                false => TaskState::Queued,
            };
            let result = recorder.stop(unfinished);
            if let Err(error) = result {
                self.fail(error);
            }
            self.commit(true, on_update);
        }
        if let Err(error) = self.out.flush() {
            self.error.get_or_insert(JobError::Output(error));
        }
        self.summary.failed.sort_by_key(|f| f.index);
        self.summary.elapsed = started.elapsed();
        if let Some(failed) = self.first_failure {
            return Err(JobError::Task(Box::new(failed)));
        }
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.cancelled {
            return Err(JobError::Cancelled);
        }
        debug_assert!(self.input_done, "the reader reported its end");
        Ok(self.summary)
    }
}

/// Bounds how far the reader runs ahead of the written output, and lets the
/// dispatcher stop it. Tasks read but not yet written may hold at most
/// [`Window::MAX_BYTES`] of input and number at most [`Window::MAX_TASKS`]:
/// memory stays flat whatever the input, and a job of tiny tasks still has
/// tens of thousands in flight, so a journal commit waiting on the disk
/// does not starve the workers.
struct Window {
    state: Mutex<WindowState>,
    changed: Condvar,
}

struct WindowState {
    /// Tasks below this index are written.
    written: u64,
    /// Input bytes of the tasks admitted and not yet written.
    bytes: u64,
    cancelled: bool,
}

impl WindowState {
    fn fits(&self, index: u64, bytes: u64) -> bool {
        index < self.written + Window::MAX_TASKS
            && (self.bytes == 0 || self.bytes + bytes <= Window::MAX_BYTES)
    }
}

impl Window {
    const MAX_BYTES: u64 = 64 << 20;
    const MAX_TASKS: u64 = 1 << 16;

    fn new() -> Self {
        Window {
            state: Mutex::new(WindowState {
                written: 0,
                bytes: 0,
                cancelled: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admit task `index` of `bytes` if it fits now.
    fn try_admit(&self, index: u64, bytes: u64) -> bool {
        let mut state = self.lock();
        let fits = !state.cancelled && state.fits(index, bytes);
        if fits {
            state.bytes += bytes;
        }
        fits
    }

    /// Wait until task `index` of `bytes` fits, and admit it; false if the
    /// job was cancelled. Progress is guaranteed: every task below `index`
    /// is queued or running, and the window frees as they are written (a
    /// task larger than the window fits once the window is empty).
    fn admit(&self, index: u64, bytes: u64) -> bool {
        let mut state = self.lock();
        while !state.cancelled && !state.fits(index, bytes) {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if !state.cancelled {
            state.bytes += bytes;
        }
        !state.cancelled
    }

    /// Tasks below `written` are written; they freed `freed` input bytes.
    fn advance(&self, written: u64, freed: u64) {
        let mut state = self.lock();
        state.written = written;
        state.bytes -= freed;
        drop(state);
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
