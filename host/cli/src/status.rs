//! `wrun status` and `wrun logs`: what the journal knows, for people
//! (tables) and programs (`--json`).

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;
use wrun_jobs::views::{self, AttemptView, Filter, JobDetail, JobView};
use wrun_jobs::{Home, describe_chunking};
use wrun_journal::{JobSpec, Pairs, TaskStateKind};

use crate::args::{LogsArgs, StatusArgs};
use crate::exit::{Code, Fail, OrFail};
use crate::summary::format_wall;

/// `wrun status [JOB]`.
pub(crate) fn status(args: StatusArgs) -> Result<(), Fail> {
    let home = Home::from_env()?;
    match args.job {
        Some(id) => {
            let state = match &args.state {
                Some(state) => Some(state.parse::<TaskStateKind>().map_err(usage)?),
                None => None,
            };
            let detail = views::detail(&home, id, state)?;
            show_detail(&detail, args.json)
        }
        None => {
            let filter = Filter {
                state: args.state.clone(),
                name: args.name.clone(),
                since_ms: args.since.map(|since| since.as_millis() as u64),
            };
            show_jobs(&views::jobs(&home, &filter)?, args.json)
        }
    }
}

/// The job table, or its `--json`.
pub(crate) fn show_jobs(views: &[JobView], json: bool) -> Result<(), Fail> {
    if json {
        return print_json(&views);
    }
    let mut text = format!(
        "{:<5} {:<12} {:<16} {:<11} {:>8} {:>7} {:>8} {:>8} {:>9}  {:<20}  {:<8}  input\n",
        "job",
        "name",
        "module",
        "state",
        "done",
        "failed",
        "total",
        "progress",
        "eta",
        "created",
        "where"
    );
    for view in views {
        let _ = writeln!(
            text,
            "{:<5} {:<12} {:<16} {:<11} {:>8} {:>7} {:>8} {:>8} {:>9}  {:<20}  {:<8}  {}",
            view.id,
            view.name.as_deref().unwrap_or("-"),
            view.module,
            state_text(view),
            view.tasks.done,
            view.tasks.failed,
            view.tasks_total.map_or("?".to_owned(), |t| t.to_string()),
            view.progress
                .map_or("-".to_owned(), |p| format!("{:.1}%", p * 100.0)),
            view.eta_seconds.map_or("-".to_owned(), |s| {
                humantime::format_duration(Duration::from_secs(s.ceil() as u64)).to_string()
            }),
            view.created_at,
            view.r#where,
            view.input.as_deref().unwrap_or("-"),
        );
    }
    print!("{text}");
    Ok(())
}

/// One job with its tasks, or its `--json`.
pub(crate) fn show_detail(detail: &JobDetail, json: bool) -> Result<(), Fail> {
    if json {
        return print_json(detail);
    }
    let view = &detail.job;
    print!("{}", describe_job(view, &detail.spec));
    if detail.snapshot_bytes > 0 {
        println!(
            "  snapshots {} in the store",
            bytesize::ByteSize(detail.snapshot_bytes)
        );
    }
    let mut text = format!(
        "\n{:>6}  {:<9} {:>17}  {:>23}  {:>8}  {:>9}  {:>10}  {:>10}  error\n",
        "chunk", "state", "records", "input bytes", "attempts", "wall", "fuel", "output"
    );
    for view in &detail.tasks {
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
            // Attempts lost with their process or node are counted in.
            match view.lost {
                0 => view.attempts.to_string(),
                lost => format!("{} ({lost} lost)", view.attempts),
            },
            view.wall_us
                .map_or("-".to_owned(), |us| format_wall(Duration::from_micros(us))),
            view.fuel_used.map_or("-".to_owned(), |f| f.to_string()),
            view.output_len
                .map_or("-".to_owned(), |len| bytesize::ByteSize(len).to_string()),
            view.error.as_deref().unwrap_or(""),
        );
    }
    text.push_str(&describe_moves(&detail.tasks));
    print!("{text}");
    Ok(())
}

/// A line for each chunk that moved to another node from a snapshot.
fn describe_moves(tasks: &[wrun_jobs::views::TaskView]) -> String {
    let mut text = String::new();
    for view in tasks {
        if let Some(resumed) = &view.resumed_from {
            let times = match view.lost {
                1 => "once".to_owned(),
                n => format!("{n} times"),
            };
            let _ = writeln!(
                text,
                "chunk {} moved {times}; its last move resumed from the snapshot {} (blake3 {})",
                view.index,
                resumed.position,
                &resumed.blake3[..16]
            );
        }
    }
    text
}

/// A job's state as the tables show it: `waiting for JOB` while it waits.
fn state_text(view: &JobView) -> String {
    match view.waiting_for {
        Some(dep) => format!("waiting for {dep}"),
        None => view.state.clone(),
    }
}

fn describe_job(view: &JobView, spec: &JobSpec) -> String {
    let mut text = String::new();
    let name = view
        .name
        .as_ref()
        .map_or_else(String::new, |n| format!(" ({n})"));
    let _ = writeln!(text, "job {}{name}: {}", view.id, state_text(view));
    if !view.after.is_empty() {
        let jobs: Vec<String> = view.after.iter().map(|id| id.to_string()).collect();
        let _ = writeln!(text, "  after     job {}", jobs.join(", job "));
    }
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
        let chunks = describe_chunking(spec);
        let _ = writeln!(
            text,
            "  input     {}{size}, split as {} in chunks of {chunks}",
            input.path, format.source
        );
        match &spec.pairs {
            Some(Pairs::Mate(mate)) => {
                let size = mate
                    .size
                    .map_or_else(String::new, |s| format!(" ({})", bytesize::ByteSize(s)));
                let _ = writeln!(
                    text,
                    "  mate      {}{size}, paired record for record",
                    mate.path
                );
            }
            Some(Pairs::Interleaved) => {
                let _ = writeln!(text, "  paired    interleaved (records 2k and 2k+1)");
            }
            None => {}
        }
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
    let attempts = views::logs(&Home::from_env()?, args.job, args.task)?;
    show_logs(&attempts, args.job, args.task, args.json)
}

/// Attempts' logs, or their `--json`.
pub(crate) fn show_logs(
    views: &[AttemptView],
    job: i64,
    task: Option<u64>,
    json: bool,
) -> Result<(), Fail> {
    if json {
        return print_json(&views);
    }
    let mut text = String::new();
    for view in views {
        let time = |t: &str| humantime::parse_rfc3339(t).ok();
        let wall = match (time(&view.started_at), time(&view.ended_at)) {
            (Some(started), Some(ended)) => ended.duration_since(started).unwrap_or_default(),
            _ => Duration::ZERO,
        };
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
    if views.is_empty() {
        let _ = writeln!(
            text,
            "no logs: no attempt of {} failed, was lost, was retried or logged anything",
            task.map_or(format!("job {job}"), |t| format!("chunk {t}"))
        );
    }
    print!("{text}");
    Ok(())
}

fn print_json(value: &impl Serialize) -> Result<(), Fail> {
    let text = serde_json::to_string_pretty(value).or_fail(Code::Internal)?;
    println!("{text}");
    Ok(())
}

fn usage(message: impl Into<String>) -> Fail {
    Fail::new(Code::Usage, anyhow::anyhow!(message.into()))
}
