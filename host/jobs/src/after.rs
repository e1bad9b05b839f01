//! Jobs that wait for jobs: `--after JOB` (start once job `JOB` of the
//! same journal is done) and `--input job:JOB` (read that job's output as
//! the input, which implies waiting for it). A job's dependencies are its
//! spec's [`JobSpec::after`]; the job is recorded first (so `wrun status`
//! shows it waiting), then [`wait_and_open`] waits, polling the journal,
//! bounded by nothing but the jobs it waits for: it goes on once each is
//! `done`, and fails the job when one failed, was cancelled or removed.
//!
//! A `job:N` input is stamped, once `N` is done, with the blake3 of its
//! chunks' output digests in input order ([`InputRef::etag`]); a resume
//! reads `N`'s output again and refuses it if the stamp differs. A done
//! job cannot change (`done` is final), but it can be removed and its
//! number given to a new job: the digest, not the number, says it is
//! the same output.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use wrun_journal::{
    InputRef, JobId, JobRecord, JobSpec, JobState, Journal, JournalError, OutputRef, TaskState,
    TaskStateKind,
};
use wrun_store::{BlobStore, Digest};

use crate::error::{Error, ErrorKind, Result};
use crate::home::Home;
use crate::journaled::Journaled;
use crate::output::stored;
use crate::streams::Source;

/// How often a waiting job reads the journal again.
pub const POLL: Duration = Duration::from_millis(100);

/// The prefix of an input that is another job's output (`job:N`).
pub const JOB_INPUT: &str = "job:";

/// The job an input names as `job:N`, if it names one.
///
/// # Errors
///
/// [`ErrorKind::Usage`] for `job:` followed by anything but a job
/// number.
pub fn job_input(path: &str) -> Result<Option<JobId>> {
    let Some(number) = path.strip_prefix(JOB_INPUT) else {
        return Ok(None);
    };
    match number.parse::<JobId>() {
        Ok(id) if id > 0 => Ok(Some(id)),
        _ => Err(Error::new(
            ErrorKind::Usage,
            format!(
                "--input {path}: `job:` must be followed by a job's number (--input job:3 reads \
                 job 3's output)"
            ),
        )),
    }
}

/// Refuse, before anything is recorded, dependencies that are not jobs of
/// `home`'s journal, and a `job:N` input whose job `N` reduces its chunks
/// (its journal holds the chunks' outputs, not the reduced one).
///
/// # Errors
///
/// [`ErrorKind::Dependency`] naming the first unknown job;
/// [`ErrorKind::Usage`] for a reducing job's output as the input;
/// [`ErrorKind::Journal`].
pub fn check_known(home: &Home, spec: &JobSpec) -> Result<()> {
    if spec.after.is_empty() {
        return Ok(());
    }
    let journal = home.journal()?;
    let input = match &spec.input {
        Some(input) => job_input(&input.path)?,
        None => None,
    };
    for &dep in &spec.after {
        match journal.job(dep) {
            Ok(record) if Some(dep) == input => refuse_reduced(&record)?,
            Ok(_) => {}
            Err(JournalError::NoJob(_)) => {
                return Err(Error::new(
                    ErrorKind::Dependency,
                    format!(
                        "job {dep} does not exist, so no job can wait for it (`wrun status` \
                         lists the jobs)"
                    ),
                ));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Refuse job `record`'s output as an input when it reduces its chunks.
///
/// # Errors
///
/// [`ErrorKind::Usage`], saying to give its output file instead.
fn refuse_reduced(record: &JobRecord) -> Result<()> {
    match record.spec.reduce {
        None => Ok(()),
        Some(_) => {
            let dep = record.id;
            Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "--input job:{dep}: job {dep} reduces its chunks, and only its output file \
                     holds the reduced output: give that file as --input (after --after {dep})"
                ),
            ))
        }
    }
}

/// Wait until every job of `spec.after` is done (`note` says what it
/// waits for, again whenever that changes), then open the input when it
/// is a `job:N`, stamping `spec.input` the first time and checking the
/// stamp after that (a stamped spec is recorded through `journaled`).
/// `None`: the input is not another job's. The waiting job (if
/// `journaled`) checks its own cancel request at every poll; on any
/// error it is recorded cancelled (after a cancel) or failed.
///
/// # Errors
///
/// [`ErrorKind::Dependency`] when a job it waits for failed, was
/// cancelled or removed; [`ErrorKind::Cancelled`] when `wrun cancel`
/// asked for this job while it waited; [`ErrorKind::JobState`] when a
/// `job:N` input's output changed since it was stamped;
/// [`ErrorKind::Journal`].
pub fn wait_and_open(
    home: &Home,
    spec: &mut JobSpec,
    mut journaled: Option<&mut Journaled>,
    note: &mut dyn FnMut(String),
) -> Result<Option<Source>> {
    let opened = wait_then_open(home, spec, journaled.as_deref_mut(), note);
    if let (Err(error), Some(journaled)) = (&opened, journaled) {
        // The job ends here, as its error says: not left running for a
        // process that is gone (which `wrun status` would call
        // interrupted).
        match error.kind() {
            ErrorKind::Cancelled => {
                journaled
                    .journal
                    .cancel_unfinished(journaled.job, Some(JobState::Cancelled))?;
            }
            _ => journaled
                .journal
                .finish_job(journaled.job, JobState::Failed)?,
        }
    }
    opened
}

/// [`wait_and_open`]'s work, leaving the job's state to it.
fn wait_then_open(
    home: &Home,
    spec: &mut JobSpec,
    journaled: Option<&mut Journaled>,
    note: &mut dyn FnMut(String),
) -> Result<Option<Source>> {
    let this = journaled.as_ref().map(|j| j.job());
    wait(home, this, &spec.after, note)?;
    let Some(recorded) = &spec.input else {
        return Ok(None);
    };
    let Some(dep) = job_input(&recorded.path)? else {
        return Ok(None);
    };
    let (source, stamp) = open_output(home, dep)?;
    if recorded.etag.is_some() && (recorded.size, &recorded.etag) != (stamp.size, &stamp.etag) {
        let which = this.map_or_else(|| "this job".to_owned(), |id| format!("job {id}"));
        return Err(Error::new(
            ErrorKind::JobState,
            format!(
                "{}: job {dep}'s output changed since {which} started (job {dep} was removed \
                 and its number given to another job); its finished chunks no longer match: \
                 submit it again",
                recorded.path
            ),
        ));
    }
    if recorded.etag.is_none() {
        spec.input = Some(stamp);
        if let Some(journaled) = journaled {
            journaled.journal.set_spec(journaled.job, spec)?;
        }
    }
    Ok(Some(source))
}

/// Wait until every job of `after` is done; `this` is the waiting job's
/// number, if it has one: a cancel requested for it ends the wait
/// ([`ErrorKind::Cancelled`]).
fn wait(
    home: &Home,
    this: Option<JobId>,
    after: &[JobId],
    note: &mut dyn FnMut(String),
) -> Result<()> {
    if after.is_empty() {
        return Ok(());
    }
    let which = this.map_or_else(|| "this job".to_owned(), |id| format!("job {id}"));
    let journal = home.journal()?;
    for &dep in after {
        let mut told = None;
        loop {
            if let Some(id) = this
                && journal.job(id)?.cancel_requested
            {
                return Err(Error::new(
                    ErrorKind::Cancelled,
                    format!("job {id} was cancelled while it waited for job {dep}"),
                ));
            }
            let record = match journal.job(dep) {
                Err(JournalError::NoJob(_)) => {
                    return Err(Error::new(
                        ErrorKind::Dependency,
                        format!(
                            "{which} waits for job {dep}, which was removed: it cannot run \
                             (submit it again after another job)"
                        ),
                    ));
                }
                other => other?,
            };
            match record.state {
                JobState::Done => break,
                JobState::Failed | JobState::Cancelled => {
                    return Err(Error::new(
                        ErrorKind::Dependency,
                        format!(
                            "{which} waits for job {dep}, which {}: it does not run (`wrun \
                             status {dep}` says why; once job {dep} is done, {})",
                            match record.state {
                                JobState::Failed => "failed",
                                _ => "was cancelled",
                            },
                            match this {
                                Some(id) => format!("`wrun retry {id}` runs it"),
                                None => "submit it again".to_owned(),
                            }
                        ),
                    ));
                }
                JobState::Running | JobState::Suspended => {}
            }
            let standing = standing(home, &journal, &record)?;
            if told.as_ref() != Some(&standing) {
                note(format!("wrun: {which} waits for job {dep} ({standing})"));
                told = Some(standing);
            }
            std::thread::sleep(POLL);
        }
    }
    Ok(())
}

/// How unfinished job `record` stands, in words: its state (a running job
/// whose process died is interrupted) and its chunks done.
fn standing(home: &Home, journal: &Journal, record: &JobRecord) -> Result<String> {
    let state = match record.state {
        JobState::Running if !home.is_running(record.id)? => {
            format!("interrupted: `wrun resume {}` goes on", record.id)
        }
        state => state.as_str().to_owned(),
    };
    let done = journal.counts(record.id)?.get(TaskStateKind::Done);
    Ok(match record.tasks_total {
        Some(total) => format!("{state}, {done} of {total} chunks done"),
        None => format!("{state}, {done} chunks done"),
    })
}

/// Job `dep`'s output as an input, with its stamp: its size and the
/// digest of its chunks' outputs.
///
/// # Errors
///
/// [`ErrorKind::Dependency`] when it is not done; [`ErrorKind::Usage`]
/// when it reduces its chunks ([`refuse_reduced`]); [`ErrorKind::Journal`].
fn open_output(home: &Home, dep: JobId) -> Result<(Source, InputRef)> {
    let journal = home.journal()?;
    let record = journal.job(dep)?;
    if record.state != JobState::Done {
        return Err(Error::new(
            ErrorKind::Dependency,
            format!(
                "job {dep} is {}, not done: its output is not complete",
                record.state.as_str()
            ),
        ));
    }
    refuse_reduced(&record)?;
    let mut chunks = Vec::new();
    let mut digests = Vec::new();
    let mut size = 0u64;
    for task in journal.tasks(dep, None)? {
        let TaskState::Done { output, .. } = task.state else {
            return Err(Error::new(
                ErrorKind::Internal,
                format!("job {dep} is done but its chunk {} is not", task.index),
            ));
        };
        digests.extend_from_slice(&output.digest);
        size += output.len;
        chunks.push((task.index, output));
    }
    let stamp = InputRef {
        path: format!("{JOB_INPUT}{dep}"),
        size: Some(size),
        modified_ns: None,
        etag: Some(format!("blake3:{}", Digest::of(&digests).to_hex())),
        compressed: false,
    };
    let reader = Chunks {
        journal,
        store: home.store()?,
        job: dep,
        chunks: chunks.into_iter(),
        piece: io::Cursor::new(Vec::new()),
    };
    let source = Source {
        reader: Box::new(reader),
        size: Some(size),
        compressed: false,
        notices: Default::default(),
    };
    Ok((source, stamp))
}

/// A done job's chunk outputs, read one after the other.
struct Chunks {
    journal: Journal,
    store: Arc<BlobStore>,
    job: JobId,
    chunks: std::vec::IntoIter<(u64, OutputRef)>,
    piece: io::Cursor<Vec<u8>>,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.piece.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some((index, output)) = self.chunks.next() else {
                return Ok(0);
            };
            let bytes = stored(&self.journal, &self.store, self.job, index, &output)
                .map_err(io::Error::other)?
                .ok_or_else(|| {
                    io::Error::other(format!(
                        "job {}: the stored output of chunk {index} is missing or damaged",
                        self.job
                    ))
                })?;
            self.piece = io::Cursor::new(bytes);
        }
    }
}
