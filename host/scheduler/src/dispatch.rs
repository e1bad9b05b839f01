//! The dispatcher: the one owner of a running job's state. It receives
//! every event as a message, records outcomes in the journal, writes
//! outputs in input order, and decides when to stop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use wrun_journal::{SuspendReason, TaskError, TaskState};
use wrun_runtime::{Ended, Requests};

use crate::error::JobError;
use crate::event::{Done, Event, TaskMeta};
use crate::failure::{suspend_reason, task_error};
use crate::record::{PriorOutcome, Recorder};
use crate::report::{FailedTask, Sink, Summary, Update};
use crate::window::Window;

/// The dispatcher's state; it alone decides what is written and when to
/// stop.
pub(crate) struct Dispatcher<'a> {
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
    /// What running tasks are asked (snapshots, draining).
    requests: &'a Requests,
    /// The job is draining: no task starts, running ones are suspended.
    draining: bool,
    /// Tasks suspended, and why the first was.
    suspended: Option<(u64, SuspendReason)>,
    /// The lowest-indexed failure when not keeping going.
    first_failure: Option<FailedTask>,
    /// A reader, output or journal error.
    error: Option<JobError>,
}

impl<'a> Dispatcher<'a> {
    pub(crate) fn new(
        out: &'a mut dyn Sink,
        window: &'a Window,
        skip_from: &'a AtomicU64,
        keep_going: bool,
        recorder: Option<Recorder<'a>>,
        requests: &'a Requests,
    ) -> Self {
        Dispatcher {
            out,
            window,
            skip_from,
            keep_going,
            recorder,
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
            requests,
            draining: false,
            suspended: None,
            first_failure: None,
            error: None,
        }
    }

    /// Whether the journal wants a commit now, whatever else waits.
    pub(crate) fn commit_due(&self) -> bool {
        self.recorder.as_ref().is_some_and(Recorder::commit_due)
    }

    /// The next event, committing to the journal whenever nothing else is
    /// waiting; `None` once every thread is done.
    pub(crate) fn next_event(
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
            // Committed (or failed, and dropped): look again.
            return match events.try_recv() {
                Ok(event) => Some(event),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => events.recv().ok(),
            };
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

    pub(crate) fn handle(&mut self, event: Event, on_update: &mut impl FnMut(Update<'_>)) {
        self.check_drain();
        let result = match event {
            Event::Checkpoint(index, checkpoint) => match &mut self.recorder {
                Some(recorder) => recorder.checkpoint(index, &checkpoint),
                None => Ok(()),
            },
            Event::Lost(index, lost) => match &mut self.recorder {
                Some(recorder) => recorder.lost(index, lost),
                None => Ok(()),
            },
            Event::InputEnd(Ok(None)) => Ok(()),
            Event::InputEnd(Ok(Some(tasks))) => {
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
    pub(crate) fn commit(&mut self, all: bool, on_update: &mut impl FnMut(Update<'_>)) {
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
                // A cancel seen by the last commit of a job comes too late
                // to stop anything.
                if committed.cancel_requested && !self.cancelled && !all {
                    self.cancelled = true;
                    self.stop(0);
                }
                if let Some(recorder) = &mut self.recorder
                    && recorder.snapshots_requested(committed.snapshots_requested)
                {
                    self.requests.snapshot_now();
                }
                self.check_drain();
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
            // Already in the sink: counted, not read back or written.
            Some(PriorOutcome::Done(output)) if recorder.is_kept(meta.index) => {
                self.summary.output_bytes += output.len;
                Ok(Vec::new())
            }
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

    /// Start draining once asked: no more input, no task starts; the
    /// running ones suspend at their next call boundary.
    fn check_drain(&mut self) {
        if !self.draining && self.requests.draining() {
            self.draining = true;
            self.stop(0);
        }
    }

    fn finished(&mut self, done: Done, on_update: &mut impl FnMut(Update<'_>)) {
        let Done { meta, result, .. } = done;
        match result {
            Ok(Ended::Finished(output)) => {
                self.outcome(meta, &output.log, Ok(output.output), on_update);
            }
            Ok(Ended::Suspended(suspended)) => {
                let reason = suspend_reason(suspended.reason);
                let (count, _) = self.suspended.get_or_insert((0, reason));
                *count += 1;
                // The output stops here until it is resumed: finish only
                // the tasks before it, as for a failure.
                self.stop(meta.index + 1);
            }
            Err(failure) => {
                let error = task_error(&failure.reason);
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
            bytes: meta.pos.len,
            records: meta.pos.records,
            log,
            error: result.as_ref().err(),
        });
        self.summary.tasks += 1;
        self.summary.records += meta.pos.records;
        self.summary.input_bytes += meta.pos.len;
        match result {
            Ok(output) => {
                self.pending
                    .insert(meta.index, (meta.pos.len, Some(output)));
            }
            Err(error) => self.task_failed(meta, error),
        }
    }

    fn task_failed(&mut self, meta: TaskMeta, error: TaskError) {
        let failed = FailedTask {
            index: meta.index,
            pos: meta.pos,
            error,
        };
        if self.keep_going {
            self.pending.insert(meta.index, (meta.pos.len, None));
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
        // Nothing more can be written or recorded: queued tasks would run
        // for nothing. (After an input error they still complete the
        // prefix.)
        if matches!(
            error,
            JobError::Output(_) | JobError::Journal(_) | JobError::Store(_)
        ) {
            self.skip_from.store(0, Ordering::Release);
        }
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

    pub(crate) fn finish(
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
        if let Some((tasks, reason)) = self.suspended {
            return Err(JobError::Suspended { tasks, reason });
        }
        if self.draining {
            return Err(JobError::Suspended {
                tasks: 0,
                reason: SuspendReason::Drain,
            });
        }
        debug_assert!(self.input_done, "the reader reported its end");
        Ok(self.summary)
    }
}

#[cfg(test)]
mod tests;
