//! The reader thread: the input, through the splitter and the chunker,
//! into batches of tasks for the workers.

use std::io::Read;

use bytes::Bytes;
use crossbeam_channel::Sender;
use wrun_runtime::Splitter;

use crate::chunker::{Chunker, Chunking, Task};
use crate::error::JobError;
use crate::event::{Event, TaskMeta};
use crate::nest::Nest;
use crate::pace::{Adaptive, Pace};
use crate::record::{Prior, PriorOutcome};
use crate::window::Window;
use wrun_store::read_full;

/// A job's input, read once, front to back.
pub enum Input<'a> {
    /// A stream, read in blocks: each block is copied into the chunks.
    Stream(Box<dyn Read + Send + 'a>),
    /// The whole input in memory (a memory-mapped file): blocks and chunks
    /// are slices of it, and no chunk's bytes are copied.
    Whole(Bytes),
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Stream(_) => f.write_str("Stream"),
            Input::Whole(bytes) => write!(f, "Whole({} bytes)", bytes.len()),
        }
    }
}

/// Where the reader's blocks come from.
enum Blocks<'a> {
    Stream {
        input: Box<dyn Read + Send + 'a>,
        buffer: Vec<u8>,
    },
    Whole {
        input: Bytes,
        /// Bytes of it handed out so far.
        at: usize,
        size: usize,
    },
}

impl Blocks<'_> {
    /// The next block and whether it is the last; a block shorter than the
    /// block size (maybe empty) is the last.
    fn next(&mut self) -> Result<(&[u8], bool), JobError> {
        match self {
            Blocks::Stream { input, buffer } => {
                let filled = read_full(input, buffer).map_err(JobError::from_input)?;
                Ok((&buffer[..filled], filled < buffer.len()))
            }
            Blocks::Whole { input, at, size } => {
                let start = *at;
                let end = input.len().min(start + *size);
                *at = end;
                Ok((&input[start..end], end - start < *size))
            }
        }
    }
}

/// The reader thread: stream `input` through the splitter and chunker and
/// queue the tasks, never more than the window ahead of the output.
/// Returns the number of tasks the whole input made, or `None` when the
/// job stopped before the input ended.
pub(crate) fn read_input(
    input: Input<'_>,
    mut splitter: Splitter,
    chunking: Chunking,
    paired: bool,
    sizing: Sizing<'_>,
    block_size: usize,
    mut batcher: Batcher<'_>,
) -> Result<Option<u64>, JobError> {
    let mut chunker = Chunker::new(chunking).in_pairs(paired);
    // Chunks that earlier runs cut are cut the same way again, whatever
    // cut them (adaptive sizes depend on timing).
    chunker.replay(batcher.prior.lengths());
    let size = block_size.max(1);
    let mut blocks = match input {
        Input::Stream(input) => Blocks::Stream {
            input,
            buffer: vec![0; size],
        },
        Input::Whole(input) => {
            chunker = chunker.over(input.clone());
            Blocks::Whole { input, at: 0, size }
        }
    };
    let (mut starts, mut weights) = (Vec::new(), Vec::new());
    loop {
        let (block, eof) = blocks.next()?;
        starts.clear();
        splitter.split(block, eof, &mut starts, &mut weights)?;
        if let Some(adaptive) = &sizing.adaptive {
            // A quarter of the window per worker: chunks in flight stay
            // many enough to keep every worker busy.
            let max = Window::MAX_BYTES / (4 * sizing.slots as u64);
            let bounds = adaptive.chunk_bounds(
                sizing.pace,
                chunker.consumed(),
                sizing.slots,
                max,
                splitter.weighs(),
            );
            chunker.set_max_bytes(Some(bounds.bytes));
            chunker.set_max_weight(bounds.weight);
        }
        chunker.push(block, &starts, &weights, |task| batcher.add(task))?;
        if eof {
            chunker.finish(|task| batcher.add(task));
            batcher.flush();
        }
        if let Some(error) = batcher.error.take() {
            return Err(error);
        }
        if eof && batcher.open {
            return Ok(Some(batcher.made));
        }
        if eof || batcher.window.is_cancelled() {
            return Ok(None);
        }
    }
}

/// How the reader sizes chunks as it goes (adaptive chunking only).
pub(crate) struct Sizing<'a> {
    pub(crate) adaptive: Option<Adaptive>,
    pub(crate) pace: &'a Pace,
    pub(crate) slots: usize,
}

/// Groups tasks into batches for the workers, adaptively: a batch is sent
/// as soon as the queue is empty (so no worker waits and a small job still
/// spreads over every worker), and grows while the workers are busy (so a
/// job of tiny tasks pays for a queue hand-off per batch, not per task), but
/// only to about [`Pace::BATCH_TIME`] of work (so slow tasks are spread one
/// by one and no worker is left holding a long batch while others idle).
/// Tasks that an earlier run finished go to the dispatcher instead.
pub(crate) struct Batcher<'a> {
    pub(crate) batch: Vec<Task>,
    /// Bytes of the tasks in `batch`.
    pub(crate) bytes: usize,
    pub(crate) tasks: Sender<Vec<Task>>,
    pub(crate) events: Sender<Event>,
    /// Tell the dispatcher about queued tasks, for the journal.
    pub(crate) recording: bool,
    pub(crate) prior: &'a Prior,
    pub(crate) window: &'a Window,
    pub(crate) pace: &'a Pace,
    pub(crate) open: bool,
    /// Tasks the input has made so far.
    pub(crate) made: u64,
    /// Why the batcher closed, if it was not told to.
    pub(crate) error: Option<JobError>,
    /// Counts the roots queued, when tasks may spawn (before they are
    /// queued, so no worker takes the queue for empty too soon).
    pub(crate) nest: Option<&'a Nest>,
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
        let index = task.index;
        let finished_before = self
            .prior
            .get(task.index)
            .filter(|prior| !matches!(prior.outcome, PriorOutcome::Pending));
        if let Some(prior) = finished_before {
            let (now, was) = (task.pos(), prior.pos);
            if (now.offset, now.end()) != (was.offset, was.end()) {
                self.open = false;
                self.error = Some(JobError::InputChanged {
                    index: task.index,
                    offset: now.offset,
                    end: now.end(),
                    was_offset: was.offset,
                    was_end: was.end(),
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
            if self.open {
                self.made = index + 1;
            }
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
        self.made = index + 1;
        if self.tasks.is_empty()
            || self.batch.len() >= self.pace.batch_tasks(Self::MAX_TASKS)
            || self.bytes >= Self::MAX_BYTES
        {
            self.flush();
        }
    }

    pub(crate) fn flush(&mut self) {
        if self.open && !self.batch.is_empty() {
            self.bytes = 0;
            if self.recording {
                // Sent before the tasks, so it reaches the dispatcher before
                // any outcome of theirs.
                let metas = self.batch.iter().map(TaskMeta::of).collect();
                self.open = self.events.send(Event::Queued(metas)).is_ok();
            }
            if let (true, Some(nest)) = (self.open, self.nest) {
                nest.roots_queued(self.batch.len());
            }
            self.open = self.open && self.tasks.send(std::mem::take(&mut self.batch)).is_ok();
        }
    }
}
