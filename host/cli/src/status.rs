//! `wrun status` and `wrun logs`: what the journal knows, for people
//! (tables) and programs (`--json`).

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use wrun_journal::ChunkPos;
use wrun_journal::{
    AttemptRecord, JobLock, JobRecord, JobSpec, JobState, Journal, Millis, TaskCounts, TaskRow,
    TaskState, TaskStateKind,
};

use crate::args::{LogsArgs, StatusArgs};
use crate::exit::{Code, Fail, OrFail};
use crate::home;
use crate::summary::format_wall;

/// A job as `wrun status` shows it (field names are part of the `--json`
/// interface).
#[derive(Debug, Serialize)]
struct JobView {
    id: i64,
    name: Option<String>,
    /// `running`, `interrupted`, `done`, `failed` or `cancelled`.
    state: &'static str,
    tasks: TaskCountsView,
    /// Tasks in the job, once its whole input has been split.
    tasks_total: Option<u64>,
    input: Option<String>,
    input_bytes: Option<u64>,
    /// Input bytes of finished (done or failed) tasks.
    finished_bytes: u64,
    /// `finished_bytes / input_bytes`, from 0 to 1.
    progress: Option<f64>,
    /// Seconds left at the rate of the current run (running jobs only).
    eta_seconds: Option<f64>,
    created_at: String,
    started_at: String,
    finished_at: Option<String>,
    runs: u32,
}

#[derive(Debug, Serialize)]
struct TaskCountsView {
    queued: u64,
    running: u64,
    done: u64,
    failed: u64,
    cancelled: u64,
    #[serde(skip_serializing_if = "is_zero")]
    suspended: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A task as `wrun status JOB --json` shows it.
#[derive(Debug, Serialize)]
struct TaskView {
    index: u64,
    state: TaskStateKind,
    #[serde(flatten)]
    pos: ChunkPos,
    attempts: u32,
    lost: u32,
    started_at: Option<String>,
    finished_at: Option<String>,
    wall_us: Option<u64>,
    fuel_used: Option<u64>,
    output_len: Option<u64>,
    output_blake3: Option<String>,
    error_kind: Option<&'static str>,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suspended: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<SnapshotView>,
}

/// A task's latest snapshot.
#[derive(Debug, Serialize)]
pub(crate) struct SnapshotView {
    pub(crate) blake3: String,
    pub(crate) taken_at: String,
    pub(crate) position: String,
    pub(crate) fuel_used: Option<u64>,
}

impl SnapshotView {
    pub(crate) fn of(snapshot: &wrun_journal::SnapshotRef) -> Self {
        SnapshotView {
            blake3: wrun_store::Digest::from_bytes(snapshot.digest).to_hex(),
            taken_at: timestamp(snapshot.taken_at),
            position: snapshot.position.clone(),
            fuel_used: snapshot.fuel_used,
        }
    }
}

#[derive(Debug, Serialize)]
struct JobDetail<'a> {
    job: JobView,
    spec: &'a JobSpec,
    tasks: Vec<TaskView>,
}

/// An attempt as `wrun logs --json` shows it.
#[derive(Debug, Serialize)]
struct AttemptView {
    task: u64,
    attempt: u32,
    started_at: String,
    ended_at: String,
    /// `done`, or the failure kind.
    outcome: &'static str,
    error: Option<String>,
    log: String,
}

/// `wrun status [JOB]`.
pub(crate) fn status(args: StatusArgs) -> Result<(), Fail> {
    let journal = home::open_journal()?;
    match args.job {
        Some(id) => job_detail(&journal, id, &args),
        None => job_table(&journal, &args),
    }
}

fn job_table(journal: &Journal, args: &StatusArgs) -> Result<(), Fail> {
    const STATES: [&str; 5] = ["running", "interrupted", "done", "failed", "cancelled"];
    if let Some(state) = args
        .state
        .as_ref()
        .filter(|s| !STATES.contains(&s.as_str()))
    {
        return Err(usage(format!(
            "unknown job state {state:?}: use one of {}",
            STATES.join(", ")
        )));
    }
    let cutoff = args
        .since
        .map(|since| wrun_journal::now() - since.as_millis() as Millis);
    let mut views = Vec::new();
    for record in journal.jobs().or_fail(Code::Journal)? {
        if cutoff.is_some_and(|cutoff| record.created_at < cutoff)
            || args
                .name
                .as_ref()
                .is_some_and(|n| !record.name.as_deref().unwrap_or("").contains(n.as_str()))
        {
            continue;
        }
        let view = job_view(journal, &record)?;
        if args.state.as_deref().is_none_or(|s| s == view.state) {
            views.push(view);
        }
    }
    if args.json {
        return print_json(&views);
    }
    let mut text = format!(
        "{:<5} {:<12} {:<11} {:>8} {:>7} {:>8} {:>8} {:>9}  {:<20}  input\n",
        "job", "name", "state", "done", "failed", "total", "progress", "eta", "created"
    );
    for view in &views {
        let _ = writeln!(
            text,
            "{:<5} {:<12} {:<11} {:>8} {:>7} {:>8} {:>8} {:>9}  {:<20}  {}",
            view.id,
            view.name.as_deref().unwrap_or("-"),
            view.state,
            view.tasks.done,
            view.tasks.failed,
            view.tasks_total.map_or("?".to_owned(), |t| t.to_string()),
            view.progress
                .map_or("-".to_owned(), |p| format!("{:.1}%", p * 100.0)),
            view.eta_seconds.map_or("-".to_owned(), |s| {
                humantime::format_duration(Duration::from_secs(s.ceil() as u64)).to_string()
            }),
            view.created_at,
            view.input.as_deref().unwrap_or("-"),
        );
    }
    print!("{text}");
    Ok(())
}

fn job_detail(journal: &Journal, id: i64, args: &StatusArgs) -> Result<(), Fail> {
    let record = journal.job(id).or_fail(Code::Journal)?;
    let state = match &args.state {
        Some(state) => Some(state.parse::<TaskStateKind>().map_err(usage)?),
        None => None,
    };
    let tasks = journal.tasks(id, state).or_fail(Code::Journal)?;
    let view = job_view(journal, &record)?;
    if args.json {
        return print_json(&JobDetail {
            job: view,
            spec: &record.spec,
            tasks: tasks.iter().map(task_view).collect(),
        });
    }
    print!("{}", describe_job(&view, &record.spec));
    let mut text = format!(
        "\n{:>6}  {:<9} {:>17}  {:>23}  {:>8}  {:>9}  {:>10}  {:>10}  error\n",
        "chunk", "state", "records", "input bytes", "attempts", "wall", "fuel", "output"
    );
    for task in &tasks {
        let view = task_view(task);
        let _ = writeln!(
            text,
            "{:>6}  {:<9} {:>17}  {:>23}  {:>8}  {:>9}  {:>10}  {:>10}  {}",
            view.index,
            view.state.as_str(),
            format!(
                "{}..{}",
                view.pos.first_record + 1,
                view.pos.first_record + view.pos.records
            ),
            format!("{}..{}", view.pos.offset, view.pos.end()),
            view.attempts,
            view.wall_us
                .map_or("-".to_owned(), |us| format_wall(Duration::from_micros(us))),
            view.fuel_used.map_or("-".to_owned(), |f| f.to_string()),
            view.output_len
                .map_or("-".to_owned(), |len| bytesize::ByteSize(len).to_string()),
            view.error.as_deref().unwrap_or(""),
        );
    }
    print!("{text}");
    Ok(())
}

fn describe_job(view: &JobView, spec: &JobSpec) -> String {
    let mut text = String::new();
    let name = view
        .name
        .as_ref()
        .map_or_else(String::new, |n| format!(" ({n})"));
    let _ = writeln!(text, "job {}{name}: {}", view.id, view.state);
    let _ = writeln!(
        text,
        "  module    {} (blake3 {})",
        spec.module.source,
        &spec.module.digest[..16]
    );
    if let (Some(input), Some(format)) = (&spec.input, &spec.format) {
        let size = input
            .size
            .map_or_else(String::new, |s| format!(" ({})", bytesize::ByteSize(s)));
        let chunks = crate::job::describe_chunking(spec);
        let _ = writeln!(
            text,
            "  input     {}{size}, split as {} in chunks of {chunks}",
            input.path, format.source
        );
    }
    let _ = writeln!(
        text,
        "  output    {}",
        spec.output.as_deref().unwrap_or("standard output")
    );
    if !spec.args.is_empty() {
        let _ = writeln!(text, "  args      {}", spec.args.join(" "));
    }
    let limits = &spec.limits;
    let _ = writeln!(
        text,
        "  limits    fuel {}, timeout {}, memory {}, output {}; retries {}{}",
        limits.fuel.map_or("none".to_owned(), |f| f.to_string()),
        limits.timeout_ms.map_or("none".to_owned(), |ms| {
            humantime::format_duration(Duration::from_millis(ms)).to_string()
        }),
        bytesize::ByteSize(limits.memory),
        bytesize::ByteSize(limits.output),
        spec.retries,
        if spec.keep_going { ", keep going" } else { "" },
    );
    let _ = writeln!(
        text,
        "  created   {}, runs {}{}",
        view.created_at,
        view.runs,
        view.finished_at
            .as_ref()
            .map_or_else(String::new, |f| format!(", finished {f}")),
    );
    let t = &view.tasks;
    let _ = writeln!(
        text,
        "  chunks    {} done, {} failed, {} running, {} queued, {} cancelled{}, of {}",
        t.done,
        t.failed,
        t.running,
        t.queued,
        t.cancelled,
        match t.suspended {
            0 => String::new(),
            n => format!(", {n} suspended"),
        },
        view.tasks_total
            .map_or("? (input not fully split)".to_owned(), |n| n.to_string()),
    );
    text
}

/// `wrun logs JOB [TASK]`.
pub(crate) fn logs(args: LogsArgs) -> Result<(), Fail> {
    let journal = home::open_journal()?;
    journal.job(args.job).or_fail(Code::Journal)?;
    let attempts = journal
        .attempts(args.job, args.task)
        .or_fail(Code::Journal)?;
    let views: Vec<AttemptView> = attempts.iter().map(attempt_view).collect();
    if args.json {
        return print_json(&views);
    }
    let mut text = String::new();
    for (view, attempt) in views.iter().zip(&attempts) {
        let wall = Duration::from_millis((attempt.ended_at - attempt.started_at).max(0) as u64);
        let _ = writeln!(
            text,
            "== chunk {}, attempt {}: {} (started {}, {})",
            view.task,
            view.attempt,
            view.error.as_deref().unwrap_or("done"),
            view.started_at,
            format_wall(wall)
        );
        for line in view.log.lines() {
            let _ = writeln!(text, "{line}");
        }
    }
    if attempts.is_empty() {
        let _ = writeln!(
            text,
            "no logs: no attempt of {} failed, was retried or logged anything",
            args.task
                .map_or(format!("job {}", args.job), |t| format!("chunk {t}"))
        );
    }
    print!("{text}");
    Ok(())
}

fn job_view(journal: &Journal, record: &JobRecord) -> Result<JobView, Fail> {
    let counts: TaskCounts = journal.counts(record.id).or_fail(Code::Journal)?;
    let state = match record.state {
        JobState::Running => {
            match JobLock::is_held(&home::locks()?, record.id).or_fail(Code::Internal)? {
                true => "running",
                false => "interrupted",
            }
        }
        other => other.as_str(),
    };
    // A compressed input's size is not what its chunks cover: no progress.
    let input_bytes = record
        .spec
        .input
        .as_ref()
        .filter(|i| !i.compressed)
        .and_then(|i| i.size);
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
        state,
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
        finished_at: record.finished_at.map(timestamp),
        runs: record.runs,
    })
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
            view.error_kind = Some(error.kind.as_str());
            view.error = Some(error.message.clone());
        }
        TaskState::Cancelled { at } => view.finished_at = Some(timestamp(*at)),
        TaskState::Suspended { at, reason } => {
            view.finished_at = Some(timestamp(*at));
            view.suspended = Some(reason.as_str());
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
        outcome: attempt.error.as_ref().map_or("done", |e| e.kind.as_str()),
        error: attempt.error.as_ref().map(|e| e.message.clone()),
        log: String::from_utf8_lossy(&attempt.log).into_owned(),
    }
}

/// A journal time as RFC 3339 (UTC, milliseconds).
fn timestamp(millis: Millis) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

fn print_json(value: &impl Serialize) -> Result<(), Fail> {
    let text = serde_json::to_string_pretty(value).or_fail(Code::Internal)?;
    println!("{text}");
    Ok(())
}

fn usage(message: impl Into<String>) -> Fail {
    Fail::new(Code::Usage, anyhow::anyhow!(message.into()))
}
