//! `wrun output`: a job's output, re-assembled from its stored chunks.

use std::io::Write;

use wrun_journal::{JobState, TaskState};
use wrun_store::Digest;

use crate::args::OutputArgs;
use crate::exit::{Code, Fail, OrFail};
use crate::home;
use crate::job::open_output;

pub(crate) fn run(args: OutputArgs) -> Result<(), Fail> {
    let journal = home::open_journal()?;
    let record = journal.job(args.job).or_fail(Code::Journal)?;
    if let Some(reduce) = &record.spec.reduce {
        eprintln!(
            "wrun: note: job {} reduces its chunks with {}: these are the chunks' outputs, \
             before the reduce",
            args.job, reduce.source
        );
    }
    let store = home::open_store()?;
    let (mut out, output_name) = open_output(args.output.as_deref())?;
    let write_error = |name: &str| format!("cannot write {name}");
    let mut expected = 0;
    let mut missing = None;
    for task in journal.tasks(args.job, None).or_fail(Code::Journal)? {
        if task.index != expected {
            missing = Some(format!("chunk {expected} was never run"));
            break;
        }
        expected += 1;
        match &task.state {
            TaskState::Done { output, .. } => {
                let bytes = if output.len == 0 {
                    Vec::new()
                } else if output.inline {
                    journal
                        .output(args.job, task.index)
                        .or_fail(Code::Journal)?
                        .unwrap_or_default()
                } else {
                    store
                        .get(&Digest::from_bytes(output.digest))
                        .or_fail(Code::Internal)?
                        .map(|b| b.to_vec())
                        .unwrap_or_default()
                };
                if *Digest::of(&bytes).as_bytes() != output.digest {
                    missing = Some(format!(
                        "the stored output of chunk {} is missing or damaged",
                        task.index
                    ));
                    break;
                }
                out.write_all(&bytes)
                    .or_fail_with(Code::Output, || write_error(&output_name))?;
            }
            // A failed chunk has no output; `--keep-going` jobs go on.
            TaskState::Failed { .. } if record.spec.keep_going => {}
            other => {
                missing = Some(format!("chunk {} is {}", task.index, other.kind()));
                break;
            }
        }
    }
    out.flush()
        .or_fail_with(Code::Output, || write_error(&output_name))?;
    if missing.is_none() && record.tasks_total != Some(expected) {
        missing = Some(format!("chunk {expected} was never run"));
    }
    match missing {
        None => Ok(()),
        Some(why) => Err(Fail::new(
            Code::JobState,
            anyhow::anyhow!(
                "job {}: {why}; the output of every chunk before it was written{}",
                args.job,
                if record.state == JobState::Running {
                    " (`wrun resume` finishes the job)"
                } else {
                    ""
                }
            ),
        )),
    }
}
