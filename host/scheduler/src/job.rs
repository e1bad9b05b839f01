//! A job and how it runs: the reader, the workers and the dispatcher
//! around one set of channels.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::thread;
use std::time::Instant;

use wrun_runtime::Splitter;

use crate::chunker::{Chunking, Task};
use crate::dispatch::Dispatcher;
use crate::error::JobError;
use crate::event::Event;
use crate::executor::Executor;
use crate::nest::{Nest, SpawnLimits};
use crate::pace::{Adaptive, Pace};
use crate::reader::{Batcher, Input, Sizing, read_input};
use crate::record::{Prior, Recorder, Recording};
use crate::report::{Sink, Summary, Update};
use crate::window::Window;
use crate::worker::Worker;

/// A job: an input, how to split and chunk it, and where to run the tasks.
pub struct Job<'a> {
    /// Runs the tasks.
    pub executor: &'a dyn Executor,
    /// Finds record boundaries in `input`.
    pub splitter: Splitter,
    /// The input, read once, front to back.
    pub input: Input<'a>,
    /// How records are grouped into tasks.
    pub chunking: Chunking,
    /// The input is pairs interleaved (an [`Interleaver`](crate::Interleaver)'s
    /// stream): records `2k` and `2k + 1` stay in one chunk, and
    /// `chunking.max_records` counts pairs.
    pub paired: bool,
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
    /// Limits on tasks that spawn tasks (which run in this process only:
    /// with an executor that has a [`Executor::runner`]).
    pub spawn: SpawnLimits,
}

impl fmt::Debug for Job<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("slots", &self.executor.slots())
            .field("splitter", &self.splitter)
            .field("chunking", &self.chunking)
            .field("paired", &self.paired)
            .field("block_size", &self.block_size)
            .field("keep_going", &self.keep_going)
            .field("retries", &self.retries)
            .field("recording", &self.recording)
            .field("adaptive", &self.adaptive)
            .field("spawn", &self.spawn)
            .finish_non_exhaustive()
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
            paired,
            block_size,
            keep_going,
            retries,
            recording,
            adaptive,
            spawn,
            ..
        } = self;
        let nest = executor.runner().map(|_| Nest::new(spawn, slots));
        let (recorder, prior, checkpoints) = match recording {
            Some(Recording {
                journal,
                job,
                store,
                prior,
                kept,
                checkpoints,
            }) => (Some((journal, job, store, kept)), prior, Some(checkpoints)),
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
                .map(|((_, _, store, _), checkpoints)| (&**store, checkpoints, prior)),
            nest: nest.as_ref(),
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
                    nest: worker.nest,
                };
                let sizing = Sizing {
                    adaptive,
                    pace: worker.pace,
                    slots,
                };
                let result = read_input(
                    input, splitter, chunking, paired, sizing, block_size, batcher,
                );
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
            let recorder = recorder.map(|(journal, job, store, kept)| {
                Recorder::new(journal, job, store, prior, kept, eager)
            });
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
