//! `wrun resume`, `retry`, `cancel`, `snapshot`, `rm` and `output`: the
//! job library's control operations, shown.

use wrun_jobs::control::{self, Cancelled, SnapshotTaken};
use wrun_jobs::{Destination, Home, Local, Requeue};

use crate::args::{CancelArgs, OutputArgs, ResumeArgs, RmArgs, RunArgs, SnapshotArgs};
use crate::exit::Fail;
use crate::run::{self, Display};

/// `wrun resume JOB`.
pub(crate) fn resume(resume: ResumeArgs) -> Result<(), Fail> {
    let home = Home::from_env()?;
    let id = resume.run.job;
    if !control::resumable(&home, id, resume.add_fuel, &mut |n| eprintln!("{n}"))? {
        return Ok(());
    }
    rerun(&home, resume.run, Requeue::Cancelled)
}

/// `wrun retry JOB`.
pub(crate) fn retry(args: RunArgs) -> Result<(), Fail> {
    rerun(&Home::from_env()?, args, Requeue::FailedAndCancelled)
}

fn rerun(home: &Home, args: RunArgs, requeue: Requeue) -> Result<(), Fail> {
    let placement = Local::new(args.jobs);
    let run = control::rerun(home, args.job, requeue, &placement, &mut |n| {
        eprintln!("{n}")
    })?;
    if args.verbose {
        eprintln!(
            "wrun: job {}: {} chunks finished by earlier runs",
            args.job,
            run.finished_before()
        );
    }
    let display = Display {
        progress: args.progress,
        verbose: args.verbose,
    };
    run::execute(run, display)
}

/// `wrun cancel JOB`.
pub(crate) fn cancel(args: CancelArgs) -> Result<(), Fail> {
    let cancelled = control::cancel(&Home::from_env()?, args.job)?;
    print_cancelled(args.job, cancelled, args.json);
    Ok(())
}

/// What `wrun cancel` prints.
pub(crate) fn print_cancelled(job: i64, cancelled: Cancelled, json: bool) {
    let (state, text) = match cancelled {
        Cancelled::Cancelled { unfinished } => (
            "cancelled",
            format!("cancelled ({unfinished} chunks unfinished)"),
        ),
        Cancelled::CancelRequested => (
            "cancel-requested",
            "cancel requested; it stops once its running chunks finish".to_owned(),
        ),
    };
    match json {
        true => println!("{}", serde_json::json!({ "job": job, "state": state })),
        false => println!("job {job}: {text}"),
    }
}

/// `wrun snapshot JOB`.
pub(crate) fn snapshot(args: SnapshotArgs) -> Result<(), Fail> {
    let taken = control::snapshot(&Home::from_env()?, args.job, args.wait)?;
    print_snapshot(&taken, args.json);
    Ok(())
}

/// What `wrun snapshot` prints.
pub(crate) fn print_snapshot(taken: &SnapshotTaken, json: bool) {
    if json {
        // Through a `Value`: its keys are sorted, as they always were.
        let value = serde_json::to_value(taken).expect("a snapshot serialises");
        println!("{value}");
        return;
    }
    println!("job {}: snapshot {} taken", taken.job, taken.request);
    for task in &taken.tasks {
        println!(
            "  chunk {}: {} ({})",
            task.index,
            task.snapshot.position,
            &task.snapshot.blake3[..16]
        );
    }
}

/// `wrun rm JOB...`.
pub(crate) fn rm(args: RmArgs) -> Result<(), Fail> {
    let home = Home::from_env()?;
    for &id in &args.jobs {
        control::remove(&home, id)?;
        if !args.json {
            println!("removed job {id}");
        }
    }
    if args.json {
        println!("{}", serde_json::json!({ "removed": args.jobs }));
    }
    Ok(())
}

/// `wrun output JOB`.
pub(crate) fn output(args: OutputArgs) -> Result<(), Fail> {
    let home = Home::from_env()?;
    // Checked before -o is created.
    let spec = home.journal()?.job(args.job)?.spec;
    if let Some(output) = &args.output {
        let reads: Vec<&std::path::Path> = [spec.input.as_ref().map(|i| i.path.as_str())]
            .into_iter()
            .flatten()
            .chain([spec.module.source.as_str()])
            .map(std::path::Path::new)
            .collect();
        wrun_jobs::guard::check_output(output, &reads, &home)?;
    }
    let out = Destination::open(args.output.as_deref())?;
    wrun_jobs::output::write(&home, args.job, out, &mut |n| eprintln!("{n}"))?;
    Ok(())
}
