//! A recorded job's output, re-assembled from its stored chunks.

use std::io::Write;

use wrun_journal::{JobId, JobState, Journal, OutputRef, TaskState};
use wrun_store::{BlobStore, Digest};

use crate::error::{Error, ErrorKind, OrKind, Result};
use crate::home::Home;
use crate::streams::Destination;

/// Write job `id`'s output to `out`: every chunk's stored output in input
/// order (a `--reduce` job's chunks, before the reduce, with a `note`),
/// each compressed on its own when `out` is; a complete output is
/// [finished](Destination::finish).
///
/// # Errors
///
/// [`ErrorKind::JobState`] when a chunk is unfinished or its stored output
/// is missing or damaged (the chunks before it are written, except to an
/// S3 object, which gets nothing: [`Destination::keeps_unfinished`]);
/// [`ErrorKind::Output`]; [`ErrorKind::Journal`].
pub fn write(
    home: &Home,
    id: JobId,
    mut out: Destination,
    note: &mut dyn FnMut(String),
) -> Result<()> {
    let journal = home.journal()?;
    let record = journal.job(id)?;
    if let Some(reduce) = &record.spec.reduce {
        note(format!(
            "wrun: note: job {id} reduces its chunks with {}: these are the chunks' outputs, \
             before the reduce",
            reduce.source
        ));
    }
    let store = home.store()?;
    let output_name = out.name.clone();
    let write_error = |name: &str| format!("cannot write {name}");
    let mut expected = 0;
    let mut missing = None;
    for task in journal.tasks(id, None)? {
        if task.index != expected {
            missing = Some(format!("chunk {expected} was never run"));
            break;
        }
        expected += 1;
        match &task.state {
            TaskState::Done { output, .. } => {
                let Some(bytes) = stored(&journal, &store, id, task.index, output)? else {
                    missing = Some(format!(
                        "the stored output of chunk {} is missing or damaged",
                        task.index
                    ));
                    break;
                };
                out.write_all(&bytes)
                    .or_kind_with(ErrorKind::Output, || write_error(&output_name))?;
            }
            // A failed chunk has no output; `--keep-going` jobs go on.
            TaskState::Failed { .. } if record.spec.keep_going => {}
            other => {
                missing = Some(format!("chunk {} is {}", task.index, other.kind()));
                break;
            }
        }
    }
    if missing.is_none() && record.tasks_total != Some(expected) {
        missing = Some(format!("chunk {expected} was never run"));
    }
    let Some(why) = missing else {
        return out
            .finish()
            .or_kind_with(ErrorKind::Output, || write_error(&output_name));
    };
    let written = match out.keeps_unfinished() {
        true => "the output of every chunk before it was written".to_owned(),
        false => {
            format!("nothing was written to {output_name}, which gets the whole output or none")
        }
    };
    out.flush()
        .or_kind_with(ErrorKind::Output, || write_error(&output_name))?;
    Err(Error::new(
        ErrorKind::JobState,
        format!(
            "job {id}: {why}; {written}{}",
            if record.state == JobState::Running {
                " (`wrun resume` finishes the job)"
            } else {
                ""
            }
        ),
    ))
}

/// The output of job `id`'s chunk `index`, which `output` describes, read
/// from the journal or the store and checked against its digest; `None`
/// when it is missing or damaged.
///
/// # Errors
///
/// [`ErrorKind::Journal`]; [`ErrorKind::Internal`] when the store fails.
pub(crate) fn stored(
    journal: &Journal,
    store: &BlobStore,
    id: JobId,
    index: u64,
    output: &OutputRef,
) -> Result<Option<Vec<u8>>> {
    let bytes = if output.len == 0 {
        Vec::new()
    } else if output.inline {
        journal.output(id, index)?.unwrap_or_default()
    } else {
        store
            .get(&Digest::from_bytes(output.digest))
            .or_kind(ErrorKind::Internal)?
            .map(|b| b.to_vec())
            .unwrap_or_default()
    };
    Ok((*Digest::of(&bytes).as_bytes() == output.digest).then_some(bytes))
}
