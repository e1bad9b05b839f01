//! Acting on recorded jobs: resume (with more fuel), retry, cancel, take a
//! snapshot, remove.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wrun_journal::{JobId, JobLock, JobSpec, JobState, TaskStateKind};
use wrun_store::Digest;

use crate::admit::admit_recorded;
use crate::after;
use crate::error::{Error, ErrorKind, OrKind, Result};
use crate::home::Home;
use crate::journaled::{Requeue, reopen_locked};
use crate::pairs::open_recorded;
use crate::placement::Placement;
use crate::prefix::Unchecked;
use crate::run::Run;
use crate::views::SnapshotView;

/// Whether job `id` can be resumed: `false` (with a note) when it is
/// done; its fuel budget per chunk raised by `add_fuel` first.
///
/// # Errors
///
/// [`ErrorKind::JobState`] for a failed job (retry it) or one that runs;
/// [`ErrorKind::Usage`] for `add_fuel` on a job without a fuel budget;
/// [`ErrorKind::Journal`].
pub fn resumable(
    home: &Home,
    id: JobId,
    add_fuel: Option<u64>,
    note: &mut dyn FnMut(String),
) -> Result<bool> {
    let mut journal = home.journal()?;
    let record = journal.job(id)?;
    match record.state {
        JobState::Done => {
            note(format!(
                "wrun: job {id} is done; `wrun output {id}` writes its output"
            ));
            return Ok(false);
        }
        JobState::Failed => {
            return Err(Error::new(
                ErrorKind::JobState,
                format!("job {id} failed; `wrun retry {id}` runs its failed chunks again"),
            ));
        }
        JobState::Running | JobState::Cancelled | JobState::Suspended => {}
    }
    if let Some(add) = add_fuel {
        let _lock = home.lock(id)?;
        let mut spec = journal.job(id)?.spec;
        let Some(fuel) = spec.limits.fuel else {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("job {id} has no fuel budget (it was submitted without --fuel)"),
            ));
        };
        spec.limits.fuel = Some(fuel.saturating_add(add));
        journal.set_spec(id, &spec)?;
        note(format!(
            "wrun: job {id}: fuel budget per chunk raised from {fuel} to {}",
            fuel.saturating_add(add)
        ));
    }
    Ok(true)
}

/// Another run of recorded job `id` on this machine, reading the input it
/// recorded and writing the output it recorded: tasks in `requeue`'s
/// states run again. Everything that can refuse the run (its lock, its
/// modules, a changed input) is checked before the job or its output is
/// touched.
///
/// # Errors
///
/// [`ErrorKind::JobState`] when another process runs it or its input
/// changed; as [`admit_recorded`]; [`ErrorKind::Output`] when the output cannot be
/// opened, read or cut.
pub fn rerun(
    home: &Home,
    id: JobId,
    requeue: Requeue,
    placement: &dyn Placement,
    note: &mut dyn FnMut(String),
) -> Result<Run> {
    let journal = home.journal()?;
    let lock = home.lock(id)?;
    let mut spec = journal.job(id)?.spec;
    let store = home.store()?;
    let admitted = admit_recorded(&spec, placement.local_slots(), &store)?;
    // Another job's output is opened once the jobs it waits for are done.
    let path = spec.input.as_ref().map_or("", |input| input.path.as_str());
    let file = match after::job_input(path)? {
        Some(_) => None,
        None => Some(open_recorded(id, &spec, &|| admitted.another_splitter())?),
    };
    let output = Unchecked::open(spec.output.as_deref().map(std::path::Path::new))?;
    let (_, mut journaled) = reopen_locked(journal, id, lock, store, requeue, note)?;
    let input = match after::wait_and_open(home, &mut spec, Some(&mut journaled), note)? {
        Some(input) => input,
        None => file.ok_or_else(|| Error::new(ErrorKind::Internal, "no input was opened"))?,
    };
    let output = journaled.open_output(output, &spec, note)?;
    Run::new(spec, admitted, placement, input, output, Some(journaled))
}

/// Job `id`, locked and reopened for a run whose input and output the
/// caller provides (a broker resuming a client's job): its spec and
/// journal side. Tasks in `requeue`'s states run again.
///
/// # Errors
///
/// [`ErrorKind::JobState`] when another process runs it; [`ErrorKind::Journal`].
pub fn reopen(
    home: &Home,
    id: JobId,
    requeue: Requeue,
    store: std::sync::Arc<wrun_store::BlobStore>,
    note: &mut dyn FnMut(String),
) -> Result<(JobSpec, crate::journaled::Journaled)> {
    let lock = home.lock(id)?;
    reopen_locked(home.journal()?, id, lock, store, requeue, note)
}

/// What [`cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Cancelled {
    /// Nobody ran it: it is cancelled, with this many unfinished chunks.
    Cancelled {
        /// Chunks that were not finished.
        unfinished: u64,
    },
    /// Its process stops at its next commit, once its running chunks
    /// finish.
    CancelRequested,
}

/// Cancel job `id`: at once if nobody runs it, else by asking its process.
///
/// # Errors
///
/// [`ErrorKind::JobState`] for a job that is not running or suspended;
/// [`ErrorKind::Journal`].
pub fn cancel(home: &Home, id: JobId) -> Result<Cancelled> {
    let mut journal = home.journal()?;
    let not_running = |state: JobState| {
        Error::new(
            ErrorKind::JobState,
            format!("job {id} is {state}, not running"),
        )
    };
    let state = journal.job(id)?.state;
    if !matches!(state, JobState::Running | JobState::Suspended) {
        return Err(not_running(state));
    }
    match home.try_lock(id)? {
        // Nobody runs it (it was interrupted, or has just ended): cancel it
        // here, if it is still unfinished now that nobody can change it.
        Some(_lock) => {
            let state = journal.job(id)?.state;
            if !matches!(state, JobState::Running | JobState::Suspended) {
                return Err(not_running(state));
            }
            let unfinished = journal.cancel_unfinished(id, Some(JobState::Cancelled))?;
            Ok(Cancelled::Cancelled { unfinished })
        }
        // Its process stops at its next commit (within a fraction of a
        // second, once its running chunks finish).
        None => {
            journal.request_cancel(id)?;
            Ok(Cancelled::CancelRequested)
        }
    }
}

/// A snapshot [`snapshot`] took: the request's number and the running
/// tasks' latest snapshots.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotTaken {
    /// The job.
    pub job: JobId,
    /// The request's number (requests of a job count from 1).
    pub request: u64,
    /// The running tasks with their latest snapshot.
    pub tasks: Vec<TaskSnapshot>,
}

/// A running task's latest snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSnapshot {
    /// The chunk's index.
    pub index: u64,
    /// Its snapshot.
    pub snapshot: SnapshotView,
}

/// Ask running job `id` to snapshot every running task, and wait up to
/// `wait` for it.
///
/// # Errors
///
/// [`ErrorKind::JobState`] for a job that does not run, ends first, or
/// takes no snapshot in time (the request stands); [`ErrorKind::Journal`].
pub fn snapshot(home: &Home, id: JobId, wait: Duration) -> Result<SnapshotTaken> {
    let mut journal = home.journal()?;
    let not_running = || {
        Error::new(
            ErrorKind::JobState,
            format!("job {id} is not running: nothing to snapshot"),
        )
    };
    if journal.job(id)?.state != JobState::Running || home.try_lock(id)?.is_some() {
        // Not running, or nobody holds its lock: the process that ran it
        // died.
        return Err(not_running());
    }
    let request = journal.request_snapshot(id)?;
    let deadline = Instant::now() + wait;
    // The job's process sees the request at its next commit (at least
    // every 200 ms) and records it served once every task then running has
    // checkpointed or ended.
    while journal.snapshots_taken(id)? < request {
        let state = journal.job(id)?.state;
        if state != JobState::Running {
            return Err(Error::new(
                ErrorKind::JobState,
                format!("job {id} ended ({state}) before taking the snapshot"),
            ));
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                ErrorKind::JobState,
                format!(
                    "job {id} took no snapshot within {} (its tasks snapshot between two \
                     calls; the request stands)",
                    humantime::format_duration(wait)
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let tasks = journal
        .tasks(id, None)?
        .into_iter()
        .filter(|t| t.state.kind() == TaskStateKind::Running)
        .filter_map(|t| {
            t.snapshot.as_ref().map(|snapshot| TaskSnapshot {
                index: t.index,
                snapshot: SnapshotView::of(snapshot),
            })
        })
        .collect();
    Ok(SnapshotTaken {
        job: id,
        request,
        tasks,
    })
}

/// Remove job `id` from the journal, with the blobs only it used.
///
/// # Errors
///
/// [`ErrorKind::JobState`] for a running job; [`ErrorKind::Journal`].
pub fn remove(home: &Home, id: JobId) -> Result<()> {
    let mut journal = home.journal()?;
    let store = home.store()?;
    let _lock = home.try_lock(id)?.ok_or_else(|| {
        Error::new(
            ErrorKind::JobState,
            format!("job {id} is running; `wrun cancel {id}` first"),
        )
    })?;
    for digest in journal.remove_job(id)? {
        store
            .delete(&Digest::from_bytes(digest))
            .or_kind(ErrorKind::Internal)?;
    }
    JobLock::remove(&home.locks(), id).or_kind(ErrorKind::Internal)
}
