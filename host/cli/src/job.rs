//! Running a job: from a spec to a finished, journaled run. Shared by
//! `submit`, `resume` and `retry`.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wrun_journal::{
    CheckpointEvery, JobId, JobLock, JobSpec, JobState, Journal, LimitsSpec, SuspendReason,
    TaskStateKind,
};
use wrun_runtime::{Every, Limits, Module, Runtime, SplitError, Splitter, TaskRunner};
use wrun_scheduler::{
    Adaptive, Checkpoints, Chunking, Executor, Job, JobError, LocalExecutor, Prior, Recording,
    Summary, Update,
};
use wrun_store::{BlobStore, Digest};

use crate::args::When;
use crate::exit::{Code, Fail, OrFail};
use crate::progress::Progress;
use crate::{drain, reduce, summary};

/// Bytes read from the input and handed to the splitter at a time.
const BLOCK_SIZE: usize = 1 << 20;

/// A job ready to run: its spec, and everything the spec names, loaded.
pub(crate) struct Plan {
    pub(crate) spec: JobSpec,
    /// Runs the tasks: this machine's cores, or a broker's nodes.
    pub(crate) executor: Box<dyn Executor>,
    pub(crate) splitter: Splitter,
    /// The task module and the splitter plugin (for `-v`).
    pub(crate) modules: [Module; 2],
    pub(crate) input: Box<dyn Read + Send>,
    /// The input's size, when known.
    pub(crate) size: Option<u64>,
    /// Runs over the chunks' outputs once they are all done (`--reduce`).
    pub(crate) reducer: Option<TaskRunner>,
}

/// What a recorded spec names, loaded and admitted.
pub(crate) struct Loaded {
    pub(crate) runner: TaskRunner,
    pub(crate) splitter: Splitter,
    pub(crate) modules: [Module; 2],
    pub(crate) reducer: Option<TaskRunner>,
}

/// How to show a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Display {
    pub(crate) progress: When,
    pub(crate) verbose: bool,
}

/// A job's place in the journal while this process runs it.
pub(crate) struct Journaled {
    pub(crate) journal: Journal,
    pub(crate) job: JobId,
    /// Held while the job runs: `wrun status` sees it running.
    pub(crate) _lock: JobLock,
    pub(crate) store: Arc<BlobStore>,
    pub(crate) prior: Prior,
}

/// Runtime limits from a spec's.
pub(crate) fn limits(spec: &LimitsSpec) -> Limits {
    Limits {
        fuel: spec.fuel,
        timeout: spec.timeout_ms.map(Duration::from_millis),
        memory: spec.memory,
        output: usize::try_from(spec.output).unwrap_or(usize::MAX),
        ..Limits::default()
    }
}

/// Workers for `-j`: all cores by default.
pub(crate) fn workers(jobs: Option<u32>) -> usize {
    match jobs {
        Some(jobs) => jobs as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// A runtime for `workers` tasks at once (plus the splitter).
pub(crate) fn runtime(
    limits: Limits,
    workers: usize,
    cache: Option<Arc<BlobStore>>,
) -> Result<Runtime, Fail> {
    let slots = workers as u32 + 1;
    match cache {
        Some(store) => Runtime::with_store(limits, slots, store),
        None => Runtime::new(limits, slots),
    }
    .or_fail(Code::Internal)
}

/// Open `-o`, or standard output; also its name for messages.
pub(crate) fn open_output(path: Option<&Path>) -> Result<(Box<dyn Write>, String), Fail> {
    match path {
        Some(path) => {
            let name = path.display().to_string();
            let file = File::create(path)
                .or_fail_with(Code::Output, || format!("cannot create {name}"))?;
            Ok((Box::new(BufWriter::new(file)), name))
        }
        None => Ok((
            Box::new(BufWriter::new(io::stdout().lock())),
            "standard output".to_owned(),
        )),
    }
}

/// The chunking a spec records.
pub(crate) fn chunking(spec: &JobSpec) -> Chunking {
    Chunking {
        max_records: spec.chunk_records,
        max_bytes: spec.chunk_bytes,
        max_residues: spec.chunk_residues,
    }
}

/// Put a module's bytes in the store, so that the job can be resumed
/// whatever happens to the file. Returns the digest's hex.
pub(crate) fn keep_module(store: &BlobStore, bytes: &[u8]) -> Result<String, Fail> {
    store
        .put(bytes)
        .map(|digest| digest.to_hex())
        .or_fail(Code::Internal)
}

/// A module a spec names: from the store by digest, else from its source
/// file if that still has the same digest.
pub(crate) fn stored_module(
    store: &BlobStore,
    source: &str,
    digest: &str,
) -> Result<Vec<u8>, Fail> {
    let parsed = Digest::from_hex(digest).ok_or_else(|| {
        Fail::new(
            Code::Journal,
            anyhow::anyhow!("module {source}: bad digest {digest:?} in the journal"),
        )
    })?;
    if let Some(bytes) = store.get(&parsed).or_fail(Code::Internal)? {
        return Ok(bytes.to_vec());
    }
    match std::fs::read(source) {
        Ok(bytes) if Digest::of(&bytes) == parsed => Ok(bytes),
        _ => Err(Fail::new(
            Code::JobState,
            anyhow::anyhow!(
                "module {source} (blake3 {digest}) is no longer in the store, and the file \
                 is gone or changed"
            ),
        )),
    }
}

/// Where a job's output goes, and its name for messages.
pub(crate) type Destination = (Box<dyn Write>, String);

/// Run `plan`, writing to `destination` (opened by the caller once nothing
/// can refuse the run any more: an unwritable `-o` records nothing, a
/// refused resume truncates nothing), recorded in the journal when
/// `journaled` is given, and report how it went.
pub(crate) fn run(
    plan: Plan,
    destination: Destination,
    journaled: Option<Journaled>,
    display: Display,
) -> Result<(), Fail> {
    let (mut out, output_name) = destination;
    let Plan {
        spec,
        executor,
        splitter,
        modules,
        input,
        size,
        reducer,
    } = plan;
    let input_name = spec
        .input
        .as_ref()
        .map_or_else(String::new, |i| i.path.clone());
    let chunking = chunking(&spec);
    if display.verbose {
        for module in &modules {
            eprintln!(
                "wrun: {}: {} in {:.2} ms",
                module.source(),
                module.origin(),
                module.load_time().as_secs_f64() * 1e3
            );
        }
        eprintln!(
            "wrun: {} ({}) over {input_name} split as {}, {} workers, chunks of {}",
            modules[0].source(),
            modules[0].info().kind,
            modules[1].source(),
            executor.slots(),
            describe_chunking(&spec)
        );
    }
    let mut journaled = journaled;
    let job_id = journaled.as_ref().map(|j| j.job);
    let progress = Progress::new(display.progress, size);
    let job = Job {
        executor: &*executor,
        splitter,
        input,
        chunking,
        block_size: BLOCK_SIZE,
        keep_going: spec.keep_going,
        retries: spec.retries,
        adaptive: spec.adaptive_ms.map(|ms| Adaptive {
            target: Duration::from_millis(ms),
            input_size: size,
        }),
        recording: journaled.as_mut().map(|j| {
            let checkpoints = Checkpoints {
                every: spec.checkpoint_every.map(|every| match every {
                    CheckpointEvery::Calls(calls) => Every::Calls(calls),
                    CheckpointEvery::Millis(ms) => Every::Time(Duration::from_millis(ms)),
                }),
                requests: Arc::default(),
            };
            drain::attach(checkpoints.requests.clone());
            Recording {
                journal: &mut j.journal,
                job: j.job,
                store: &j.store,
                prior: std::mem::take(&mut j.prior),
                checkpoints,
            }
        }),
    };
    let (mut done, mut failed) = (0, 0);
    let mut on_update = |update: Update<'_>| match update {
        Update::Finished {
            index,
            bytes,
            log,
            error,
            ..
        } => {
            done += 1;
            failed += u64::from(error.is_some());
            for line in String::from_utf8_lossy(log).lines() {
                progress.println(&format!("[chunk {index}] {line}"));
            }
            progress.advance(bytes, done, failed);
        }
    };
    let mut collected = reducer.as_ref().map(|_| reduce::Collected::default());
    let result = match &mut collected {
        Some(collected) => job.run(collected, &mut on_update),
        None => job.run(&mut out, &mut on_update),
    };
    progress.finish();
    let reduced = match (&result, &reducer, collected) {
        (Ok(_), Some(reducer), Some(collected)) => {
            Some(reduce::run(reducer, collected, &mut out, &output_name))
        }
        _ => None,
    };
    drop(out);

    let state = match &reduced {
        Some(Err(_)) => Some(JobState::Failed),
        _ => final_state(&result),
    };
    if let (Some(journaled), Some(state)) = (&mut journaled, state) {
        journaled
            .journal
            .finish_job(journaled.job, state)
            .or_fail(Code::Journal)?;
    }
    let job_name = job_id.map_or_else(String::new, |id| format!("job {id}: "));
    let partial = match &spec.output {
        Some(_) => format!("; {output_name} holds the output of every chunk before it"),
        None => String::new(),
    };
    let retry_hint = job_id.map_or_else(String::new, |id| {
        format!(" (`wrun logs {id}` shows its log, `wrun retry {id}` runs it again)")
    });
    let resume_hint = job_id.map_or_else(String::new, |id| {
        format!("; nothing done is lost: `wrun resume {id}` goes on")
    });
    if let Some(Err(fail)) = reduced {
        return Err(fail);
    }
    match result {
        Ok(summary) => summary::finish(&summary, job_id, &input_name, display.verbose),
        Err(JobError::Task(failed)) => Err(Fail::new(
            Code::of_task(failed.error.kind),
            anyhow::anyhow!("{job_name}{input_name}: {failed}{partial}{retry_hint}"),
        )),
        Err(JobError::Split(SplitError::Rejected { plugin, message })) => Err(Fail::new(
            Code::Input,
            anyhow::anyhow!("{job_name}{input_name}: {message} (format {plugin}){partial}"),
        )),
        Err(error @ JobError::Split(_)) => Err(Fail::new(
            Code::Module,
            anyhow::anyhow!("{job_name}{input_name}: {error}{partial}"),
        )),
        Err(error @ JobError::Chunk(_)) => Err(Fail::new(
            Code::Input,
            anyhow::anyhow!("{job_name}{input_name}: {error}{partial}"),
        )),
        Err(error @ JobError::Input(_)) => Err(Fail::new(
            Code::Input,
            anyhow::anyhow!("{job_name}{input_name}: {error}{partial}{resume_hint}"),
        )),
        Err(error @ JobError::InputChanged { .. }) => Err(Fail::new(
            Code::JobState,
            anyhow::anyhow!("{job_name}{input_name}: {error}"),
        )),
        Err(JobError::Output(error)) => Err(Fail::new(
            Code::Output,
            anyhow::anyhow!("{job_name}cannot write {output_name}: {error}{resume_hint}"),
        )),
        Err(JobError::Cancelled) => Err(Fail::new(
            Code::Cancelled,
            anyhow::anyhow!("{job_name}cancelled{partial}{resume_hint}"),
        )),
        Err(error @ JobError::Suspended { reason, .. }) => {
            let how = match (reason, job_id) {
                (SuspendReason::Fuel, Some(id)) => {
                    format!("; `wrun resume {id} --add-fuel N` goes on from their snapshots")
                }
                (SuspendReason::Drain, Some(id)) => {
                    format!("; `wrun resume {id}` goes on from their snapshots")
                }
                (_, None) => String::new(),
            };
            Err(Fail::new(
                Code::Suspended,
                anyhow::anyhow!("{job_name}{error}{partial}{how}"),
            ))
        }
        Err(error @ (JobError::Journal(_) | JobError::Store(_))) => Err(Fail::new(
            Code::Journal,
            anyhow::anyhow!("{job_name}{error}"),
        )),
        Err(error @ (JobError::State(_) | JobError::Internal(_))) => Err(Fail::new(
            Code::Internal,
            anyhow::anyhow!("{job_name}{error}"),
        )),
    }
}

/// The state a run leaves its job in; `None` leaves it `running`, which
/// once this process exits reads as interrupted: resumable.
fn final_state(result: &Result<Summary, JobError>) -> Option<JobState> {
    match result {
        Ok(summary) if summary.failed.is_empty() => Some(JobState::Done),
        Ok(_) => Some(JobState::Failed),
        Err(JobError::Task(_) | JobError::Split(_) | JobError::Chunk(_)) => Some(JobState::Failed),
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

/// How a job cuts chunks, in words: `7 records or 1.0 MiB`.
pub(crate) fn describe_chunking(spec: &JobSpec) -> String {
    if let Some(ms) = spec.adaptive_ms {
        return format!("adaptive size, about {ms} ms of work each");
    }
    let chunking = chunking(spec);
    let bounds: Vec<String> = [
        chunking.max_records.map(|n| format!("{n} records")),
        chunking
            .max_bytes
            .map(|n| bytesize::ByteSize(n).to_string()),
        chunking.max_residues.map(|n| format!("{n} residues")),
    ]
    .into_iter()
    .flatten()
    .collect();
    match bounds.is_empty() {
        true => "the whole input".to_owned(),
        false => bounds.join(" or "),
    }
}

/// Take job `job`'s lock, or say who holds it.
pub(crate) fn lock(job: JobId) -> Result<JobLock, Fail> {
    let dir = crate::home::locks()?;
    JobLock::acquire(&dir, job)
        .or_fail_with(Code::Internal, || {
            format!("cannot lock job {job} in {}", dir.display())
        })?
        .ok_or_else(|| {
            Fail::new(
                Code::JobState,
                anyhow::anyhow!("job {job} is running in another process"),
            )
        })
}

/// Where `-o` goes, as recorded: absolute, so a resume from another
/// directory writes the same file.
pub(crate) fn output_ref(path: Option<&Path>) -> Option<String> {
    path.map(|p| {
        std::path::absolute(p)
            .unwrap_or_else(|_| PathBuf::from(p))
            .display()
            .to_string()
    })
}

/// Make job `id` ready for another run by this process, which holds its
/// lock: recover what a dead process left (see [`wrun_journal::recover`]),
/// queue tasks in `requeue` states again, and mark the run started. Returns
/// the job's spec and what earlier runs finished.
pub(crate) fn reopen(
    journal: &mut Journal,
    id: JobId,
    requeue: &[TaskStateKind],
) -> Result<(JobSpec, Prior), Fail> {
    let record = journal.job(id).or_fail(Code::Journal)?;
    if record.state == JobState::Running {
        // Its lock was free: the process that ran it died.
        let recovery = wrun_journal::recover(journal, id).or_fail(Code::Journal)?;
        if recovery.quarantined > 0 {
            eprintln!(
                "wrun: job {id}: {} chunks were running each of the last {} times a process \
                 running them died; they are failed (quarantined), not run again",
                recovery.quarantined,
                wrun_journal::QUARANTINE_AFTER
            );
        }
    }
    journal.requeue(id, requeue).or_fail(Code::Journal)?;
    journal.start_run(id).or_fail(Code::Journal)?;
    let prior = Prior::load(journal, id).or_fail(Code::Journal)?;
    Ok((record.spec, prior))
}

/// Load everything `spec` names, to run it again with `workers` workers
/// on this machine.
pub(crate) fn plan(
    id: JobId,
    spec: JobSpec,
    workers: usize,
    store: &Arc<BlobStore>,
) -> Result<Plan, Fail> {
    let loaded = load(&spec, workers, store)?;
    let (input, size) = open_recorded_input(id, &spec)?;
    Ok(Plan {
        executor: Box::new(LocalExecutor::new(loaded.runner, workers)),
        spec,
        splitter: loaded.splitter,
        modules: loaded.modules,
        input,
        size,
        reducer: loaded.reducer,
    })
}

/// Admit the modules `spec` names (from the store, else their files), for
/// `workers` tasks at once.
pub(crate) fn load(spec: &JobSpec, workers: usize, store: &Arc<BlobStore>) -> Result<Loaded, Fail> {
    let runtime = runtime(limits(&spec.limits), workers, Some(store.clone()))?;
    let module_bytes = stored_module(store, &spec.module.source, &spec.module.digest)?;
    let module = runtime
        .admit(&spec.module.source, &module_bytes)
        .or_fail(Code::Module)?;
    let runner = runtime
        .task_runner(&module, &spec.args)
        .or_fail(Code::Module)?;
    let Some(format) = &spec.format else {
        return Err(Fail::new(
            Code::JobState,
            anyhow::anyhow!("the job has no input to resume"),
        ));
    };
    let plugin_bytes = stored_module(store, &format.source, &format.digest)?;
    let plugin = runtime
        .admit(&format.source, &plugin_bytes)
        .or_fail(Code::Module)?;
    let splitter = runtime.splitter(&plugin).or_fail(Code::Module)?;
    let reducer = match &spec.reduce {
        Some(reduce) => {
            let bytes = stored_module(store, &reduce.source, &reduce.digest)?;
            let module = runtime
                .admit(&reduce.source, &bytes)
                .or_fail(Code::Module)?;
            Some(runtime.task_runner(&module, &[]).or_fail(Code::Module)?)
        }
        None => None,
    };
    Ok(Loaded {
        runner,
        splitter,
        modules: [module, plugin],
        reducer,
    })
}

/// Open the input job `id` recorded, refusing one that changed since.
pub(crate) fn open_recorded_input(
    id: JobId,
    spec: &JobSpec,
) -> Result<(Box<dyn Read + Send>, Option<u64>), Fail> {
    let Some(recorded) = &spec.input else {
        return Err(Fail::new(
            Code::JobState,
            anyhow::anyhow!("job {id} has no input to resume"),
        ));
    };
    if recorded.path == "-" {
        return Err(Fail::new(
            Code::JobState,
            anyhow::anyhow!(
                "job {id} read standard input, which cannot be read again; submit it again"
            ),
        ));
    }
    let path = Path::new(&recorded.path);
    let crate::input::Opened {
        reader: input,
        size,
        ..
    } = crate::input::open(path, spec.inflate)?;
    let now = crate::input::stamp(path);
    if (now.size, now.modified_ns) != (recorded.size, recorded.modified_ns) {
        return Err(Fail::new(
            Code::JobState,
            anyhow::anyhow!(
                "{}: the input changed since job {id} started (size or modification time); \
                 its finished chunks no longer match it: submit it again",
                recorded.path
            ),
        ));
    }
    Ok((input, size))
}

/// The unfinished job with this definition, if nobody runs it: locked.
/// Refused when another process runs it.
pub(crate) fn unfinished(
    journal: &Journal,
    fingerprint: &[u8; 32],
) -> Result<Option<(JobId, JobLock)>, Fail> {
    let Some(id) = journal.unfinished_job(fingerprint).or_fail(Code::Journal)? else {
        return Ok(None);
    };
    match lock(id) {
        Ok(lock) => Ok(Some((id, lock))),
        Err(_) => Err(Fail::new(
            Code::JobState,
            anyhow::anyhow!(
                "job {id}, with the same module, input, options and output, is running in \
                 another process (`wrun status {id}`); --fresh starts another anyway"
            ),
        )),
    }
}

/// The journaled job to run: `resumable` (then `spec` becomes its
/// recorded spec, and `note` says so), or a new one, its modules kept in
/// the store.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_job(
    mut journal: Journal,
    store: Arc<BlobStore>,
    resumable: Option<(JobId, JobLock)>,
    spec: &mut JobSpec,
    fingerprint: &[u8; 32],
    name: Option<&str>,
    modules: &[&[u8]],
    note: &mut dyn FnMut(String),
) -> Result<Journaled, Fail> {
    match resumable {
        Some((id, lock)) => {
            // Go on with it, cutting the chunks it cut.
            let (recorded, prior) = reopen(&mut journal, id, &[TaskStateKind::Cancelled])?;
            note(format!(
                "wrun: resuming job {id}, which has {} chunks finished (--fresh starts a new job \
                 instead)",
                prior.finished()
            ));
            *spec = recorded;
            Ok(Journaled {
                journal,
                job: id,
                _lock: lock,
                store,
                prior,
            })
        }
        None => {
            for bytes in modules {
                keep_module(&store, bytes)?;
            }
            let (id, lock) = journal.create_job(name, fingerprint, spec, self::lock)?;
            Ok(Journaled {
                journal,
                job: id,
                _lock: lock,
                store,
                prior: Default::default(),
            })
        }
    }
}
