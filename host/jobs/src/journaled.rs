//! A job's place in the journal while a process runs it: found by its
//! fingerprint or created, locked, recovered from what a dead process left
//! behind, and reopened for another run.

use std::sync::Arc;

use wrun_journal::{JobId, JobLock, JobSpec, JobState, Journal, TaskStateKind};
use wrun_scheduler::Prior;
use wrun_store::BlobStore;

use crate::error::{Error, ErrorKind, OrKind, Result};
use crate::home::Home;
use crate::prefix::Unchecked;
use crate::streams::Destination;

/// A recorded job that this process runs: its journal connection, its
/// lock (held while it runs: `wrun status` sees it running), the store of
/// its modules and large outputs, and what earlier runs finished.
#[derive(Debug)]
pub struct Journaled {
    pub(crate) journal: Journal,
    pub(crate) job: JobId,
    _lock: JobLock,
    pub(crate) store: Arc<BlobStore>,
    pub(crate) prior: Prior,
    /// Leading chunks whose outputs the output already holds (set once it
    /// is opened: [`Journaled::open_output`]).
    pub(crate) kept: u64,
}

impl Journaled {
    /// The job's id.
    pub fn job(&self) -> JobId {
        self.job
    }

    /// Cut `output` to the prefix of this job's finished outputs that it
    /// holds (`note` says what is kept and rewritten), and remember how
    /// many chunks that is, so the run does not write them again.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Output`] when the file cannot be read or cut.
    pub(crate) fn open_output(
        &mut self,
        output: Unchecked,
        spec: &JobSpec,
        note: &mut dyn FnMut(String),
    ) -> Result<Destination> {
        let (destination, kept) = output.keep(self.job, spec, &self.prior, note)?;
        self.kept = kept;
        Ok(destination)
    }
}

/// Which finished states a reopened job runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// `resume`: cancelled tasks run again, failed ones stay failed.
    Cancelled,
    /// `retry`: failed and cancelled tasks run again.
    FailedAndCancelled,
}

impl Requeue {
    fn states(self) -> &'static [TaskStateKind] {
        match self {
            Requeue::Cancelled => &[TaskStateKind::Cancelled],
            Requeue::FailedAndCancelled => &[TaskStateKind::Failed, TaskStateKind::Cancelled],
        }
    }
}

/// The first step of submitting a job: the unfinished job with the same
/// definition, if there is one, locked; refused if another process runs
/// it. Nothing is written until [`Claim::open`].
#[derive(Debug)]
pub struct Claim {
    journal: Journal,
    store: Arc<BlobStore>,
    home: Home,
    resumable: Option<(JobId, JobLock)>,
}

impl Claim {
    /// Look for the unfinished job with this `fingerprint` (unless
    /// `fresh`) in `home`'s journal; modules and large outputs go to
    /// `store`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::JobState`] when another process runs that job;
    /// [`ErrorKind::Journal`] when the journal cannot be read.
    pub fn new(
        home: &Home,
        store: Arc<BlobStore>,
        fingerprint: &[u8; 32],
        fresh: bool,
    ) -> Result<Self> {
        let journal = home.journal()?;
        let resumable = match fresh {
            true => None,
            false => match journal.unfinished_job(fingerprint)? {
                None => None,
                Some(id) => match home.try_lock(id)? {
                    Some(lock) => Some((id, lock)),
                    None => {
                        return Err(Error::new(
                            ErrorKind::JobState,
                            format!(
                                "job {id}, with the same module, input, options and output, is \
                                 running in another process (`wrun status {id}`); --fresh \
                                 starts another anyway"
                            ),
                        ));
                    }
                },
            },
        };
        Ok(Claim {
            journal,
            store,
            home: home.clone(),
            resumable,
        })
    }

    /// The job to run: the unfinished one found (then `spec` becomes its
    /// recorded spec, and `note` says so), or a new one named `name`, its
    /// `modules` kept in the store first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Journal`] when the journal cannot be written.
    pub fn open(
        self,
        spec: &mut JobSpec,
        fingerprint: &[u8; 32],
        name: Option<&str>,
        modules: &[&[u8]],
        note: &mut dyn FnMut(String),
    ) -> Result<Journaled> {
        let Claim {
            mut journal,
            store,
            home,
            resumable,
        } = self;
        match resumable {
            Some((id, lock)) => {
                // Go on with it, cutting the chunks it cut.
                let (recorded, journaled) =
                    reopen_locked(journal, id, lock, store, Requeue::Cancelled, note)?;
                note(format!(
                    "wrun: resuming job {id}, which has {} chunks finished (--fresh starts a new \
                     job instead)",
                    journaled.prior.finished()
                ));
                *spec = recorded;
                Ok(journaled)
            }
            None => {
                for bytes in modules {
                    store.put(bytes).or_kind(ErrorKind::Internal)?;
                }
                let (id, lock) = journal.create_job(name, fingerprint, spec, |id| home.lock(id))?;
                Ok(Journaled {
                    journal,
                    job: id,
                    _lock: lock,
                    store,
                    prior: Prior::default(),
                    kept: 0,
                })
            }
        }
    }
}

/// Job `id`, locked by this process, made ready for another run: what a
/// dead process left is recovered, tasks in `requeue`'s states are queued
/// again, and the run is marked started; its recorded spec and its journal
/// side. Call it only once nothing else can refuse the run.
///
/// # Errors
///
/// [`ErrorKind::Journal`] when the journal cannot be read or written.
pub(crate) fn reopen_locked(
    mut journal: Journal,
    id: JobId,
    lock: JobLock,
    store: Arc<BlobStore>,
    requeue: Requeue,
    note: &mut dyn FnMut(String),
) -> Result<(JobSpec, Journaled)> {
    let (spec, prior) = reopen(&mut journal, id, requeue, note)?;
    let journaled = Journaled {
        journal,
        job: id,
        _lock: lock,
        store,
        prior,
        kept: 0,
    };
    Ok((spec, journaled))
}

/// Recover, requeue and start job `id`; its spec and what earlier runs
/// finished.
fn reopen(
    journal: &mut Journal,
    id: JobId,
    requeue: Requeue,
    note: &mut dyn FnMut(String),
) -> Result<(JobSpec, Prior)> {
    let record = journal.job(id)?;
    if record.state == JobState::Running {
        // Its lock was free: the process that ran it died.
        let recovery = wrun_journal::recover(journal, id)?;
        if recovery.quarantined > 0 {
            note(format!(
                "wrun: job {id}: {} chunks died {} times with no new snapshot (a process \
                 running them died each time); they are failed (quarantined), not run again",
                recovery.quarantined,
                wrun_journal::QUARANTINE_AFTER
            ));
        }
    }
    journal.requeue(id, requeue.states())?;
    journal.start_run(id)?;
    let prior = Prior::load(journal, id)?;
    Ok((record.spec, prior))
}
