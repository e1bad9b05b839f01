//! What `wrun status` and `wrun logs` show, as data: the one definition of
//! the `--json` shapes, used by the command line, by the broker's replies
//! and by anything else that reports jobs. Field names are part of the
//! `--json` interface.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use wrun_journal::{
    AttemptRecord, ChunkPos, JobId, JobRecord, JobSpec, JobState, Journal, Millis, TaskCounts,
    TaskRow, TaskState, TaskStateKind, TaskTotals,
};

use crate::error::{Error, ErrorKind, OrKind, Result};
use crate::home::Home;

/// The job states `wrun status --state` filters by.
pub const JOB_STATES: [&str; 7] = [
    "running",
    "waiting",
    "interrupted",
    "suspended",
    "done",
    "failed",
    "cancelled",
];

/// Which jobs [`jobs`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Only jobs in this state (one of [`JOB_STATES`]).
    pub state: Option<String>,
    /// Only jobs whose name contains this.
    pub name: Option<String>,
    /// Only jobs created in the last this many milliseconds.
    pub since_ms: Option<u64>,
}

/// A job as `wrun status` shows it (field names are part of the `--json`
/// interface).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    /// The job's number.
    pub id: i64,
    /// Its `--name`.
    pub name: Option<String>,
    /// `running`, `waiting` (running, but a job it comes after is not
    /// done: see `waiting_for`), `interrupted`, `suspended`, `done`,
    /// `failed` or `cancelled`.
    pub state: String,
    /// The jobs it comes after (`--after`, `--input job:JOB`), in order;
    /// omitted when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<i64>,
    /// The job it waits for now (state `waiting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<i64>,
    /// Its tasks by state.
    pub tasks: TaskCountsView,
    /// Tasks in the job, once its whole input has been split.
    pub tasks_total: Option<u64>,
    /// The input's path (`-`: standard input).
    pub input: Option<String>,
    /// The input's size in bytes, when known and not compressed.
    pub input_bytes: Option<u64>,
    /// Input bytes of finished (done or failed) tasks.
    pub finished_bytes: u64,
    /// `finished_bytes / input_bytes`, from 0 to 1.
    pub progress: Option<f64>,
    /// Seconds left at the rate of the current run (running jobs only).
    pub eta_seconds: Option<f64>,
    /// When it was submitted (RFC 3339, UTC).
    pub created_at: String,
    /// When its latest run started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended (RFC 3339, UTC).
    pub finished_at: Option<String>,
    /// Runs so far (a resume is another run).
    pub runs: u32,
    /// The task module's file name (a crate's directory name when built
    /// from one).
    #[serde(default)]
    pub module: String,
    /// Where it runs: [`LOCAL`], or the address of the broker that runs it
    /// (set by whoever asked the broker).
    #[serde(default = "local")]
    pub r#where: String,
}

/// [`JobView::where`] of a job this machine's journal holds.
pub const LOCAL: &str = "local";

fn local() -> String {
    LOCAL.to_owned()
}

/// A job's tasks by state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskCountsView {
    /// Tasks waiting to run.
    pub queued: u64,
    /// Tasks running (or left running by a process that died).
    pub running: u64,
    /// Tasks done.
    pub done: u64,
    /// Tasks failed.
    pub failed: u64,
    /// Tasks cancelled.
    pub cancelled: u64,
    /// Tasks suspended with a snapshot (omitted when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suspended: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A task as `wrun status JOB --json` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskView {
    /// The chunk's index in the input, from 0.
    pub index: u64,
    /// Its state.
    pub state: TaskStateKind,
    /// Where it lies in the input (flattened: `offset`, `len`,
    /// `first_record`, `records`).
    #[serde(flatten)]
    pub pos: ChunkPos,
    /// Attempts started.
    pub attempts: u32,
    /// Times it moved: the process or node running it died, or the node
    /// drained.
    pub lost: u32,
    /// When its running attempt started (RFC 3339, UTC).
    pub started_at: Option<String>,
    /// When it ended (RFC 3339, UTC).
    pub finished_at: Option<String>,
    /// Wall time of its last attempt, in microseconds.
    pub wall_us: Option<u64>,
    /// Fuel it used, when metered (wasmtime fuel units).
    pub fuel_used: Option<u64>,
    /// Its output's length in bytes.
    pub output_len: Option<u64>,
    /// Its output's blake3 digest, in hex.
    pub output_blake3: Option<String>,
    /// How it failed (`trap`, `timeout`, …).
    pub error_kind: Option<String>,
    /// Its failure's message.
    pub error: Option<String>,
    /// Why it is suspended (`fuel`, `drain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended: Option<String>,
    /// Its latest snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotView>,
    /// The snapshot its latest attempt resumed from, when it moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<SnapshotView>,
    /// The cluster node it ran on last (omitted: the machine of the
    /// process that ran the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A task's latest snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotView {
    /// The snapshot blob's blake3 digest, in hex.
    pub blake3: String,
    /// When it was taken (RFC 3339, UTC).
    pub taken_at: String,
    /// Where in its chunk the task was, in words.
    pub position: String,
    /// Fuel used up to it, when metered (wasmtime fuel units).
    pub fuel_used: Option<u64>,
}

impl SnapshotView {
    /// The view of `snapshot`.
    pub fn of(snapshot: &wrun_journal::SnapshotRef) -> Self {
        SnapshotView {
            blake3: wrun_store::Digest::from_bytes(snapshot.digest).to_hex(),
            taken_at: timestamp(snapshot.taken_at),
            position: snapshot.position.clone(),
            fuel_used: snapshot.fuel_used,
        }
    }
}

/// A job with its spec and tasks, as `wrun status JOB --json` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobDetail {
    /// The job.
    pub job: JobView,
    /// What it runs.
    pub spec: JobSpec,
    /// Its tasks, in input order.
    pub tasks: Vec<TaskView>,
    /// Bytes the store holds for the snapshots its tasks may resume from
    /// (each blob once; superseded snapshots are deleted).
    #[serde(default)]
    pub snapshot_bytes: u64,
}

/// An attempt as `wrun logs --json` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptView {
    /// The chunk's index.
    pub task: u64,
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended (RFC 3339, UTC).
    pub ended_at: String,
    /// `done`, the failure kind, or `lost` (its process or node died).
    pub outcome: String,
    /// Its failure's message, or why it was lost.
    pub error: Option<String>,
    /// The cluster node it ran on, when known (omitted when not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// What it logged (lossy UTF-8).
    pub log: String,
}

/// The jobs `filter` selects, oldest first.
///
/// # Errors
///
/// [`ErrorKind::Usage`] for an unknown state; [`ErrorKind::Journal`].
pub fn jobs(home: &Home, filter: &Filter) -> Result<Vec<JobView>> {
    if let Some(state) = filter
        .state
        .as_ref()
        .filter(|s| !JOB_STATES.contains(&s.as_str()))
    {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "unknown job state {state:?}: use one of {}",
                JOB_STATES.join(", ")
            ),
        ));
    }
    let journal = home.journal()?;
    let cutoff = filter
        .since_ms
        .map(|since| wrun_journal::now() - since as Millis);
    let mut views = Vec::new();
    for record in journal.jobs()? {
        if cutoff.is_some_and(|cutoff| record.created_at < cutoff)
            || filter
                .name
                .as_ref()
                .is_some_and(|n| !record.name.as_deref().unwrap_or("").contains(n.as_str()))
        {
            continue;
        }
        let view = job_view(home, &journal, &record)?;
        if filter.state.as_deref().is_none_or(|s| s == view.state) {
            views.push(view);
        }
    }
    Ok(views)
}

/// Job `id` with its spec and its tasks (those in `state`, if given).
///
/// # Errors
///
/// [`ErrorKind::Journal`], also for a job that does not exist.
pub fn detail(home: &Home, id: JobId, state: Option<TaskStateKind>) -> Result<JobDetail> {
    let journal = home.journal()?;
    let record = journal.job(id)?;
    let tasks = journal.tasks(id, state)?;
    Ok(JobDetail {
        job: job_view(home, &journal, &record)?,
        tasks: tasks.iter().map(task_view).collect(),
        spec: record.spec,
        snapshot_bytes: snapshot_bytes(home, &journal, id)?,
    })
}

/// Job `id`'s finished tasks in sum, their wall times counted against
/// `bounds_us` (microseconds, ascending): what metrics report.
///
/// # Errors
///
/// [`ErrorKind::Journal`].
pub fn totals(home: &Home, id: JobId, bounds_us: &[u64]) -> Result<TaskTotals> {
    Ok(home.journal()?.totals(id, bounds_us)?)
}

/// What job `id`'s snapshots hold in the store, in bytes.
fn snapshot_bytes(home: &Home, journal: &Journal, id: JobId) -> Result<u64> {
    let blobs = journal.snapshot_blobs(id)?;
    if blobs.is_empty() {
        return Ok(0);
    }
    let store = home.store()?;
    let mut bytes = 0;
    for digest in blobs {
        bytes += store
            .size(&wrun_store::Digest::from_bytes(digest))
            .or_kind(ErrorKind::Journal)?
            .unwrap_or(0);
    }
    Ok(bytes)
}

/// The attempts of job `id` (of its chunk `task`, if given) that failed,
/// were retried, were lost with their process or node, followed such an
/// attempt, or logged anything.
///
/// # Errors
///
/// [`ErrorKind::Journal`], also for a job that does not exist.
pub fn logs(home: &Home, id: JobId, task: Option<u64>) -> Result<Vec<AttemptView>> {
    let journal = home.journal()?;
    journal.job(id)?;
    Ok(journal
        .attempts(id, task)?
        .iter()
        .map(attempt_view)
        .collect())
}

/// The first job of `after` that is not done (a removed one counts as
/// not waited for: its waiter fails).
fn waiting_for(journal: &Journal, after: &[i64]) -> Result<Option<i64>> {
    for &dep in after {
        match journal.job(dep) {
            Ok(record) if record.state != JobState::Done => return Ok(Some(dep)),
            Ok(_) | Err(wrun_journal::JournalError::NoJob(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(None)
}

fn job_view(home: &Home, journal: &Journal, record: &JobRecord) -> Result<JobView> {
    let counts: TaskCounts = journal.counts(record.id)?;
    let state = match record.state {
        JobState::Running => match home.is_running(record.id)? {
            true => "running",
            false => "interrupted",
        },
        other => other.as_str(),
    };
    let waiting_for = match state {
        "running" => waiting_for(journal, &record.spec.after)?,
        _ => None,
    };
    let state = match waiting_for {
        Some(_) => "waiting",
        None => state,
    };
    // A compressed input's size is not what its chunks cover: no progress.
    let input_bytes = record.spec.chunked_bytes();
    let progress = match (record.state, input_bytes) {
        (JobState::Done, _) => Some(1.0),
        (_, Some(0)) => None,
        (_, Some(size)) => Some(counts.finished_bytes as f64 / size as f64),
        (_, None) => None,
    };
    let eta_seconds = match (state, input_bytes) {
        ("running", Some(size)) if counts.finished_bytes > 0 => {
            let elapsed = (wrun_journal::now() - record.started_at).max(1) as f64 / 1e3;
            let rate = counts.finished_bytes as f64 / elapsed;
            Some(size.saturating_sub(counts.finished_bytes) as f64 / rate)
        }
        _ => None,
    };
    let get = |state| counts.get(state);
    Ok(JobView {
        id: record.id,
        name: record.name.clone(),
        state: state.to_owned(),
        after: record.spec.after.clone(),
        waiting_for,
        tasks: TaskCountsView {
            queued: get(TaskStateKind::Queued),
            running: get(TaskStateKind::Running),
            done: get(TaskStateKind::Done),
            failed: get(TaskStateKind::Failed),
            cancelled: get(TaskStateKind::Cancelled),
            suspended: get(TaskStateKind::Suspended),
        },
        tasks_total: record.tasks_total,
        input: record.spec.input.as_ref().map(|i| i.path.clone()),
        input_bytes,
        finished_bytes: counts.finished_bytes,
        progress,
        eta_seconds,
        created_at: timestamp(record.created_at),
        started_at: timestamp(record.started_at),
        // A suspended job is not finished: `wrun resume` goes on.
        finished_at: record
            .finished_at
            .filter(|_| record.state != JobState::Suspended)
            .map(timestamp),
        runs: record.runs,
        module: module_name(&record.spec.module.source),
        r#where: local(),
    })
}

/// The file name of a module's source (all of it when it has none).
fn module_name(source: &str) -> String {
    std::path::Path::new(source).file_name().map_or_else(
        || source.to_owned(),
        |name| name.to_string_lossy().into_owned(),
    )
}

fn task_view(task: &TaskRow) -> TaskView {
    let mut view = TaskView {
        index: task.index,
        state: task.state.kind(),
        pos: task.pos,
        attempts: task.attempts,
        lost: task.lost,
        started_at: None,
        finished_at: None,
        wall_us: None,
        fuel_used: None,
        output_len: None,
        output_blake3: None,
        error_kind: None,
        error: None,
        suspended: None,
        snapshot: task.snapshot.as_ref().map(SnapshotView::of),
        resumed_from: task.resumed_from.as_ref().map(SnapshotView::of),
        node: task.node.clone(),
    };
    match &task.state {
        TaskState::Queued => {}
        TaskState::Running { started_at } => view.started_at = Some(timestamp(*started_at)),
        TaskState::Done {
            finished_at,
            wall,
            fuel_used,
            output,
        } => {
            view.finished_at = Some(timestamp(*finished_at));
            view.wall_us = Some(wall.as_micros() as u64);
            view.fuel_used = *fuel_used;
            view.output_len = Some(output.len);
            view.output_blake3 = Some(wrun_store::Digest::from_bytes(output.digest).to_hex());
        }
        TaskState::Failed {
            finished_at,
            wall,
            error,
        } => {
            view.finished_at = Some(timestamp(*finished_at));
            view.wall_us = Some(wall.as_micros() as u64);
            view.error_kind = Some(error.kind.as_str().to_owned());
            view.error = Some(error.message.clone());
        }
        TaskState::Cancelled { at } => view.finished_at = Some(timestamp(*at)),
        TaskState::Suspended { at, reason } => {
            view.finished_at = Some(timestamp(*at));
            view.suspended = Some(reason.as_str().to_owned());
        }
    }
    view
}

fn attempt_view(attempt: &AttemptRecord) -> AttemptView {
    AttemptView {
        task: attempt.index,
        attempt: attempt.attempt,
        started_at: timestamp(attempt.started_at),
        ended_at: timestamp(attempt.ended_at),
        outcome: attempt.end.outcome().to_owned(),
        error: attempt.end.message().map(str::to_owned),
        node: attempt.node.clone(),
        log: String::from_utf8_lossy(&attempt.log).into_owned(),
    }
}

/// A journal time as RFC 3339 (UTC, milliseconds).
fn timestamp(millis: Millis) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}
