//! `wrun resume`, `retry`, `cancel` and `rm`: acting on recorded jobs.

use wrun_journal::{JobId, JobLock, JobState, TaskStateKind};
use wrun_store::Digest;

use crate::args::{CancelArgs, RmArgs, RunArgs};
use crate::exit::{Code, Fail, OrFail};
use crate::home;
use crate::job::{self, Display, Journaled};

/// `wrun resume JOB`.
pub(crate) fn resume(args: RunArgs) -> Result<(), Fail> {
    let journal = home::open_journal()?;
    let record = journal.job(args.job).or_fail(Code::Journal)?;
    match record.state {
        JobState::Done => {
            eprintln!(
                "wrun: job {} is done; `wrun output {}` writes its output",
                record.id, record.id
            );
            return Ok(());
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
        JobState::Running | JobState::Cancelled => {}
    }
    rerun(journal, args, &[TaskStateKind::Cancelled])
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
    if record.state != JobState::Running {
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
            if state != JobState::Running {
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
