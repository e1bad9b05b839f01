//! `wrun resume`, `retry`, `cancel` and `rm`: acting on recorded jobs.

use wrun_journal::{JobId, JobLock, JobState, TaskStateKind};
use wrun_store::Digest;

use crate::args::{CancelArgs, ResumeArgs, RmArgs, RunArgs, SnapshotArgs};
use crate::exit::{Code, Fail, OrFail};
use crate::home;
use crate::job::{self, Display, Journaled};

/// `wrun resume JOB`.
pub(crate) fn resume(resume: ResumeArgs) -> Result<(), Fail> {
    if resume.remote.broker.is_some() {
        return crate::cluster::resume(&resume);
    }
    let args = resume.run;
    let mut journal = home::open_journal()?;
    if !resumable(&mut journal, args.job, resume.add_fuel, &mut |n| {
        eprintln!("{n}")
    })? {
        return Ok(());
    }
    rerun(journal, args, &[TaskStateKind::Cancelled])
}

/// Whether job `id` can be resumed (false, with a note, when it is done;
/// an error when it failed), after raising its fuel budget by `add_fuel`.
pub(crate) fn resumable(
    journal: &mut wrun_journal::Journal,
    id: JobId,
    add_fuel: Option<u64>,
    note: &mut dyn FnMut(String),
) -> Result<bool, Fail> {
    let record = journal.job(id).or_fail(Code::Journal)?;
    match record.state {
        JobState::Done => {
            note(format!(
                "wrun: job {} is done; `wrun output {}` writes its output",
                record.id, record.id
            ));
            return Ok(false);
        }
        JobState::Failed => {
            return Err(Fail::new(
                Code::JobState,
                anyhow::anyhow!(
                    "job {} failed; `wrun retry {}` runs its failed chunks again",
                    record.id,
                    record.id
                ),
            ));
        }
        JobState::Running | JobState::Cancelled | JobState::Suspended => {}
    }
    if let Some(add) = add_fuel {
        let _lock = job::lock(id)?;
        let mut spec = journal.job(id).or_fail(Code::Journal)?.spec;
        let Some(fuel) = spec.limits.fuel else {
            return Err(Fail::new(
                Code::Usage,
                anyhow::anyhow!("job {id} has no fuel budget (it was submitted without --fuel)"),
            ));
        };
        spec.limits.fuel = Some(fuel.saturating_add(add));
        journal.set_spec(id, &spec).or_fail(Code::Journal)?;
        note(format!(
            "wrun: job {id}: fuel budget per chunk raised from {fuel} to {}",
            fuel.saturating_add(add)
        ));
    }
    Ok(true)
}

/// `wrun retry JOB`.
pub(crate) fn retry(args: RunArgs) -> Result<(), Fail> {
    let journal = home::open_journal()?;
    rerun(
        journal,
        args,
        &[TaskStateKind::Failed, TaskStateKind::Cancelled],
    )
}

fn rerun(
    mut journal: wrun_journal::Journal,
    args: RunArgs,
    requeue: &[TaskStateKind],
) -> Result<(), Fail> {
    let lock = job::lock(args.job)?;
    // Everything that can refuse the run is checked before the job or its
    // output is touched.
    let spec = journal.job(args.job).or_fail(Code::Journal)?.spec;
    let store = home::open_store()?;
    let workers = job::workers(args.jobs);
    let plan = job::plan(args.job, spec, workers, &store)?;
    let (_, prior) = job::reopen(&mut journal, args.job, requeue)?;
    let destination = job::open_output(plan.spec.output.as_deref().map(std::path::Path::new))?;
    if args.verbose {
        eprintln!(
            "wrun: job {}: {} chunks finished by earlier runs",
            args.job,
            prior.finished()
        );
    }
    let journaled = Journaled {
        journal,
        job: args.job,
        _lock: lock,
        store,
        prior,
    };
    let display = Display {
        progress: args.progress,
        verbose: args.verbose,
    };
    job::run(plan, destination, Some(journaled), display)
}

/// `wrun cancel JOB`.
pub(crate) fn cancel(args: CancelArgs) -> Result<(), Fail> {
    let mut journal = home::open_journal()?;
    let record = journal.job(args.job).or_fail(Code::Journal)?;
    if !matches!(record.state, JobState::Running | JobState::Suspended) {
        return Err(Fail::new(
            Code::JobState,
            anyhow::anyhow!("job {} is {}, not running", record.id, record.state),
        ));
    }
    let lock = JobLock::acquire(&home::locks()?, args.job).or_fail(Code::Internal)?;
    let (state, text) = match lock {
        // Nobody runs it (it was interrupted, or has just ended): cancel it
        // here, if it is still unfinished now that nobody can change it.
        Some(_lock) => {
            let state = journal.job(args.job).or_fail(Code::Journal)?.state;
            if !matches!(state, JobState::Running | JobState::Suspended) {
                return Err(Fail::new(
                    Code::JobState,
                    anyhow::anyhow!("job {} is {state}, not running", args.job),
                ));
            }
            let cancelled = journal
                .cancel_unfinished(args.job, Some(JobState::Cancelled))
                .or_fail(Code::Journal)?;
            (
                "cancelled",
                format!("cancelled ({cancelled} chunks unfinished)"),
            )
        }
        // Its process stops at its next commit (within a fraction of a
        // second, once its running chunks finish).
        None => {
            journal.request_cancel(args.job).or_fail(Code::Journal)?;
            (
                "cancel-requested",
                "cancel requested; it stops once its running chunks finish".to_owned(),
            )
        }
    };
    match args.json {
        true => println!("{}", serde_json::json!({ "job": args.job, "state": state })),
        false => println!("job {}: {text}", args.job),
    }
    Ok(())
}

/// `wrun snapshot JOB`.
pub(crate) fn snapshot(args: SnapshotArgs) -> Result<(), Fail> {
    let mut journal = home::open_journal()?;
    let record = journal.job(args.job).or_fail(Code::Journal)?;
    let not_running = || {
        Fail::new(
            Code::JobState,
            anyhow::anyhow!("job {} is not running: nothing to snapshot", args.job),
        )
    };
    if record.state != JobState::Running {
        return Err(not_running());
    }
    if JobLock::acquire(&home::locks()?, args.job)
        .or_fail(Code::Internal)?
        .is_some()
    {
        // Nobody holds the lock: the process that ran it died.
        return Err(not_running());
    }
    let request = journal.request_snapshot(args.job).or_fail(Code::Journal)?;
    let deadline = std::time::Instant::now() + args.wait;
    // The job's process sees the request at its next commit (at least
    // every 200 ms) and records it served once every task then running has
    // checkpointed or ended.
    loop {
        if journal.snapshots_taken(args.job).or_fail(Code::Journal)? >= request {
            break;
        }
        let state = journal.job(args.job).or_fail(Code::Journal)?.state;
        if state != JobState::Running {
            return Err(Fail::new(
                Code::JobState,
                anyhow::anyhow!(
                    "job {} ended ({state}) before taking the snapshot",
                    args.job
                ),
            ));
        }
        if std::time::Instant::now() >= deadline {
            return Err(Fail::new(
                Code::JobState,
                anyhow::anyhow!(
                    "job {} took no snapshot within {} (its tasks snapshot between two                      calls; the request stands)",
                    args.job,
                    humantime::format_duration(args.wait)
                ),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let tasks: Vec<_> = journal
        .tasks(args.job, None)
        .or_fail(Code::Journal)?
        .into_iter()
        .filter(|t| t.snapshot.is_some() && t.state.kind() == TaskStateKind::Running)
        .collect();
    if args.json {
        let list: Vec<_> = tasks
            .iter()
            .map(|t| {
                serde_json::json!({
                    "index": t.index,
                    "snapshot": t.snapshot.as_ref().map(crate::status::SnapshotView::of),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "job": args.job, "request": request, "tasks": list })
        );
    } else {
        println!("job {}: snapshot {request} taken", args.job);
        for task in &tasks {
            if let Some(snapshot) = &task.snapshot {
                println!(
                    "  chunk {}: {} ({})",
                    task.index,
                    snapshot.position,
                    &Digest::from_bytes(snapshot.digest).to_hex()[..16]
                );
            }
        }
    }
    Ok(())
}

/// `wrun rm JOB...`.
pub(crate) fn rm(args: RmArgs) -> Result<(), Fail> {
    let mut journal = home::open_journal()?;
    let locks = home::locks()?;
    let store = home::open_store()?;
    for &id in &args.jobs {
        let _lock = JobLock::acquire(&locks, id)
            .or_fail(Code::Internal)?
            .ok_or_else(|| {
                Fail::new(
                    Code::JobState,
                    anyhow::anyhow!("job {id} is running; `wrun cancel {id}` first"),
                )
            })?;
        remove(&mut journal, &store, id)?;
        JobLock::remove(&locks, id).or_fail(Code::Internal)?;
        if !args.json {
            println!("removed job {id}");
        }
    }
    if args.json {
        println!("{}", serde_json::json!({ "removed": args.jobs }));
    }
    Ok(())
}

fn remove(
    journal: &mut wrun_journal::Journal,
    store: &wrun_store::BlobStore,
    id: JobId,
) -> Result<(), Fail> {
    let orphans = journal.remove_job(id).or_fail(Code::Journal)?;
    for digest in orphans {
        store
            .delete(&Digest::from_bytes(digest))
            .or_fail(Code::Internal)?;
    }
    Ok(())
}
