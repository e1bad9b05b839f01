//! Running a job: a [`Run`] holds everything one run needs (spec, loaded
//! modules, executor, input and output streams, its place in the journal)
//! and [`Run::execute`] drives the scheduler to the end, records the
//! job's final state and turns what went wrong into an [`Error`] that says
//! what to do next.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use wrun_journal::{
    CheckpointEvery, FailureKind, JobId, JobSpec, JobState, SpawnSpec, SuspendReason,
};
use wrun_runtime::{Every, Module, Requests, SplitError, Splitter, TaskRunner};
use wrun_scheduler::{
    Adaptive, Checkpoints, Chunking, Executor, Input, Job, JobError, Recording, SpawnLimits,
    Summary, Update,
};

use crate::admit::Admitted;
use crate::error::{Error, ErrorKind, Result};
use crate::journaled::Journaled;
use crate::placement::Placement;
use crate::reduce;
use crate::streams::{Destination, Source};

/// Bytes read from the input and handed to the splitter at a time.
const BLOCK_SIZE: usize = 1 << 20;

/// One run of a job, ready to execute.
pub struct Run {
    spec: JobSpec,
    executor: Box<dyn Executor>,
    splitter: Splitter,
    modules: [Module; 2],
    reducer: Option<TaskRunner>,
    input: Source,
    output: Destination,
    journaled: Option<Journaled>,
    requests: Arc<Requests>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("job", &self.job())
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

/// What a run tells its caller as it goes.
pub trait Observer {
    /// A task finished (or failed): its input bytes, log and outcome.
    fn finished(&mut self, update: &Update<'_>);
    /// A line for the user (the reducer's log).
    fn note(&mut self, line: &str);
}

impl Run {
    /// A run of `spec` with its `admitted` modules, tasks placed by
    /// `placement`, reading `input` and writing `output`, recorded in the
    /// journal if `journaled`.
    ///
    /// # Errors
    ///
    /// As [`Placement::executor`].
    pub fn new(
        spec: JobSpec,
        admitted: Admitted,
        placement: &dyn Placement,
        input: Source,
        output: Destination,
        journaled: Option<Journaled>,
    ) -> Result<Self> {
        Ok(Run {
            executor: placement.executor(&spec, admitted.runner)?,
            spec,
            splitter: admitted.splitter,
            modules: admitted.modules,
            reducer: admitted.reducer,
            input,
            output,
            journaled,
            requests: Arc::default(),
        })
    }

    /// The job's id, when it is recorded.
    pub fn job(&self) -> Option<JobId> {
        self.journaled.as_ref().map(|j| j.job)
    }

    /// Its spec.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The task module and the splitter plugin.
    pub fn modules(&self) -> &[Module; 2] {
        &self.modules
    }

    /// Tasks run at once.
    pub fn slots(&self) -> usize {
        self.executor.slots()
    }

    /// The input's size in bytes, when known.
    pub fn input_size(&self) -> Option<u64> {
        self.input.size
    }

    /// The input's name for messages (its recorded path).
    pub fn input_name(&self) -> String {
        self.spec
            .input
            .as_ref()
            .map_or_else(String::new, |i| i.path.clone())
    }

    /// Chunks finished by earlier runs of a recorded job.
    pub fn finished_before(&self) -> usize {
        self.journaled.as_ref().map_or(0, |j| j.prior.finished())
    }

    /// Snapshot and drain requests for the running tasks of a recorded job
    /// (a signal handler drains the job through them).
    pub fn requests(&self) -> Arc<Requests> {
        self.requests.clone()
    }

    /// Run every task, write the outputs in input order, run the reducer,
    /// and record the job's final state.
    ///
    /// # Errors
    ///
    /// The first task failure (without `--keep-going`), a bad input, an
    /// unwritable output, a cancel or a suspension, each as its kind, with
    /// what the output holds and the command that goes on.
    pub fn execute(self, observer: &mut dyn Observer) -> Result<Summary> {
        let Run {
            spec,
            executor,
            splitter,
            modules: _,
            reducer,
            input,
            mut output,
            mut journaled,
            requests,
        } = self;
        let job = Job {
            executor: &*executor,
            splitter,
            input: match input.mapped {
                Some(whole) => Input::Whole(whole),
                None => Input::Stream(input.reader),
            },
            chunking: chunking(&spec),
            paired: spec.pairs.is_some(),
            block_size: BLOCK_SIZE,
            keep_going: spec.keep_going,
            retries: spec.retries,
            spawn: spawn_limits(spec.limits.spawn),
            adaptive: spec.adaptive_ms.map(|ms| Adaptive {
                target: Duration::from_millis(ms),
                input_size: input.size,
            }),
            recording: journaled.as_mut().map(|j| Recording {
                journal: &mut j.journal,
                job: j.job,
                store: &j.store,
                prior: std::mem::take(&mut j.prior),
                kept: j.kept,
                checkpoints: Checkpoints {
                    every: spec.checkpoint_every.map(|every| match every {
                        CheckpointEvery::Calls(calls) => Every::Calls(calls),
                        CheckpointEvery::Millis(ms) => Every::Time(Duration::from_millis(ms)),
                    }),
                    requests,
                },
            }),
        };
        let notices = input.notices.clone();
        let mut on_update = |update: Update<'_>| observer.finished(&update);
        let mut collected = reducer.as_ref().map(|_| reduce::Collected::default());
        let result = match &mut collected {
            Some(collected) => job.run(collected, &mut on_update),
            None => job.run(&mut output, &mut on_update),
        };
        let reduced = match (&result, &reducer, collected) {
            (Ok(_), Some(reducer), Some(collected)) => {
                Some(reduce::run(reducer, collected, &mut output, &mut |line| {
                    observer.note(line)
                }))
            }
            _ => None,
        };
        let input_name = spec.input.as_ref().map_or("", |i| i.path.as_str());
        for notice in notices.take() {
            observer.note(&format!("wrun: warning: {input_name}: {notice}"));
        }
        let output_name = output.name.clone();
        // A complete output is finished (BGZF's end-of-file block); one
        // that stops early is left as whole chunks, without it.
        let result = match (result, &reduced) {
            (Ok(summary), None | Some(Ok(()))) => {
                output.finish().map(|()| summary).map_err(JobError::Output)
            }
            (result, _) => result,
        };
        let state = match &reduced {
            Some(Err(_)) => Some(JobState::Failed),
            _ => final_state(&result),
        };
        let id = journaled.as_ref().map(|j| j.job);
        if let (Some(journaled), Some(state)) = (&mut journaled, state) {
            journaled.journal.finish_job(journaled.job, state)?;
        }
        if let Some(Err(error)) = reduced {
            return Err(error);
        }
        let context = Context {
            job: id,
            input: spec
                .input
                .as_ref()
                .map_or_else(String::new, |i| i.path.clone()),
            output: output_name,
            has_output_file: spec.output.is_some(),
        };
        result.map_err(|error| context.error(error))
    }
}

/// The chunking a spec records.
pub fn chunking(spec: &JobSpec) -> Chunking {
    Chunking {
        max_records: spec.chunk_records,
        max_bytes: spec.chunk_bytes,
        max_weight: spec.chunk_weight,
    }
}

/// How a job cuts chunks, in words: `7 records or 1.0 MiB`.
pub fn describe_chunking(spec: &JobSpec) -> String {
    if let Some(ms) = spec.adaptive_ms {
        return format!("adaptive size, about {ms} ms of work each");
    }
    let chunking = chunking(spec);
    let bounds: Vec<String> = [
        chunking.max_records.map(|n| match spec.pairs {
            Some(_) => format!("{n} pairs"),
            None => format!("{n} records"),
        }),
        chunking
            .max_bytes
            .map(|n| bytesize::ByteSize(n).to_string()),
        chunking.max_weight.map(|n| format!("weight {n}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    match bounds.is_empty() {
        true => "the whole input".to_owned(),
        false => bounds.join(" or "),
    }
}

/// The error for a run whose tasks failed with `--keep-going`: `N of M
/// chunks failed`, as the first failure's kind; `Ok` when none did.
///
/// # Errors
///
/// [`ErrorKind::Task`] of the first failure in input order.
pub fn check(summary: &Summary, job: Option<JobId>) -> Result<()> {
    let Some(first) = summary.failed.first() else {
        return Ok(());
    };
    let kinds: Vec<FailureKind> = summary.failed.iter().map(|f| f.error.kind).collect();
    let hint = advice(job, &kinds, "their logs", "them");
    Err(Error::new(
        ErrorKind::Task(first.error.kind),
        format!(
            "{} of {} chunks failed{hint}",
            summary.failed.len(),
            summary.tasks
        ),
    ))
}

/// What to do about failed tasks of `kinds`, as a parenthesis: where the
/// logs are (`logs`: "its log" or "their logs") and the one step that can
/// change the outcome. Tasks are deterministic: only a host failure is
/// worth running again as it is (`wrun retry`); a limit is part of the job,
/// so the step is a new submit with the flag named; a trap, an exit status
/// or the task's own error happens again on every run.
fn advice(job: Option<JobId>, kinds: &[FailureKind], logs: &str, them: &str) -> String {
    let Some(id) = job else {
        return String::new();
    };
    let limit = |flag: &str| {
        format!(
            "; the limit is part of the job: submit it again with a higher {flag} (it resumes \
             nothing: a new job)"
        )
    };
    let step = if kinds
        .iter()
        .any(|k| matches!(k, FailureKind::Host | FailureKind::Quarantined))
    {
        format!(", `wrun retry {id}` runs {them} again")
    } else if kinds.contains(&FailureKind::Timeout) {
        limit("--timeout")
    } else if kinds.contains(&FailureKind::Memory) {
        limit("--memory")
    } else if kinds.contains(&FailureKind::OutputLimit) {
        limit("--output-limit")
    } else if kinds.contains(&FailureKind::Fuel) {
        limit("--fuel")
    } else {
        let they = if them == "it" { "it" } else { "they" };
        format!("; {they} would fail the same way on every run: the task or the input must change")
    };
    format!(" (`wrun logs {id}` shows {logs}{step})")
}

/// The state a run leaves its job in; `None` leaves it `running`, which
/// once this process exits reads as interrupted: resumable.
fn final_state(result: &Result<Summary, JobError>) -> Option<JobState> {
    match result {
        Ok(summary) if summary.failed.is_empty() => Some(JobState::Done),
        Ok(_) => Some(JobState::Failed),
        Err(JobError::Task(_) | JobError::Split(_) | JobError::Pair(_) | JobError::Chunk(_)) => {
            Some(JobState::Failed)
        }
        Err(JobError::Cancelled) => Some(JobState::Cancelled),
        Err(JobError::Suspended { .. }) => Some(JobState::Suspended),
        Err(
            JobError::Input(_)
            | JobError::InputChanged { .. }
            | JobError::Output(_)
            | JobError::Journal(_)
            | JobError::Store(_)
            | JobError::State(_)
            | JobError::Internal(_),
        ) => None,
    }
}

/// What an error message names: the job, its input and output.
struct Context {
    job: Option<JobId>,
    input: String,
    output: String,
    /// Whether the output is a file (which then holds a prefix).
    has_output_file: bool,
}

impl Context {
    /// `error`, with the job, input and output named, and what to do next.
    fn error(&self, error: JobError) -> Error {
        let Context { job, input, .. } = self;
        let output = &self.output;
        let name = job.map_or_else(String::new, |id| format!("job {id}: "));
        let partial = match self.has_output_file {
            true => format!("; {output} holds the output of every chunk before it"),
            false => String::new(),
        };

        // Standard input cannot be read again: no resume can go on.
        let stdin = input == "-";
        let resume = match (job, stdin) {
            (_, true) => "; standard input cannot be read again, so the job cannot be \
                          resumed: submit the same input again"
                .to_owned(),
            (Some(id), false) => format!("; nothing done is lost: `wrun resume {id}` goes on"),
            (None, false) => String::new(),
        };
        let (kind, message) = match error {
            JobError::Task(failed) => (
                ErrorKind::Task(failed.error.kind),
                format!(
                    "{name}{input}: {failed}{partial}{}",
                    advice(*job, &[failed.error.kind], "its log", "it")
                ),
            ),
            JobError::Split(SplitError::Rejected { plugin, message }) => (
                ErrorKind::Input,
                format!("{name}{input}: {message} (format {plugin}){partial}"),
            ),
            error @ JobError::Split(_) => (
                ErrorKind::Module,
                format!("{name}{input}: {error}{partial}"),
            ),
            error @ (JobError::Chunk(_) | JobError::Pair(_)) => {
                (ErrorKind::Input, format!("{name}{input}: {error}{partial}"))
            }
            // A damaged input (truncated, corrupt) fails the same way on
            // every resume: say so instead of promising one.
            JobError::Input(ref cause)
                if matches!(
                    cause.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ) =>
            {
                (
                    ErrorKind::Input,
                    format!(
                        "{name}{input}: {error}{partial}; the input itself is damaged \
                         (truncated or corrupt): repair or replace it and submit again"
                    ),
                )
            }
            // Over --max-inflated or --max-ratio: recorded with the job, so
            // a resume would stop there again.
            JobError::Input(ref cause) if cause.kind() == io::ErrorKind::FileTooLarge => (
                ErrorKind::Input,
                format!(
                    "{name}{input}: {error}{partial}; if the input is genuine, submit it again \
                     with a higher --max-inflated or --max-ratio"
                ),
            ),
            error @ JobError::Input(_) => (
                ErrorKind::Input,
                format!("{name}{input}: {error}{partial}{resume}"),
            ),
            error @ JobError::InputChanged { .. } => {
                (ErrorKind::JobState, format!("{name}{input}: {error}"))
            }
            JobError::Output(error) => (
                ErrorKind::Output,
                format!("{name}cannot write {output}: {error}{resume}"),
            ),
            JobError::Cancelled => (
                ErrorKind::Cancelled,
                format!("{name}cancelled{partial}{resume}"),
            ),
            error @ JobError::Suspended { reason, .. } => {
                let how = match (reason, job) {
                    (_, Some(_)) if stdin => resume.clone(),
                    (SuspendReason::Fuel, Some(id)) => {
                        format!("; `wrun resume {id} --add-fuel N` goes on from their snapshots")
                    }
                    (SuspendReason::Drain, Some(id)) => {
                        format!("; `wrun resume {id}` goes on from their snapshots")
                    }
                    (_, None) => String::new(),
                };
                (ErrorKind::Suspended, format!("{name}{error}{partial}{how}"))
            }
            error @ (JobError::Journal(_) | JobError::Store(_)) => {
                (ErrorKind::Journal, format!("{name}{error}"))
            }
            error @ (JobError::State(_) | JobError::Internal(_)) => {
                (ErrorKind::Internal, format!("{name}{error}"))
            }
        };
        Error::new(kind, message)
    }
}

/// A job's limits on spawning: its spec's, or the defaults.
fn spawn_limits(spec: Option<SpawnSpec>) -> SpawnLimits {
    spec.map_or_else(SpawnLimits::default, |spec| SpawnLimits {
        max_depth: spec.max_depth,
        max_children: spec.max_children,
        max_in_flight: spec.max_in_flight,
    })
}
