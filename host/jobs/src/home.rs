//! Where wrun keeps its data: the store (artifact cache, job modules and
//! large outputs), the job journal, and the jobs' lock files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wrun_journal::{JobId, JobLock, Journal};
use wrun_store::BlobStore;

use crate::error::{Error, ErrorKind, OrKind, Result};

/// A wrun data directory (`$WRUN_HOME`): `journal.db`, the store's
/// `blobs/`, and `jobs/N.lock`.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The data directory at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    /// `$WRUN_HOME`, else `$XDG_DATA_HOME/wrun`, else
    /// `~/.local/share/wrun`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Internal`] when none of the three is set.
    pub fn from_env() -> Result<Self> {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(home) = var("WRUN_HOME") {
            return Ok(Home::at(home));
        }
        if let Some(data) = var("XDG_DATA_HOME") {
            return Ok(Home::at(data.join("wrun")));
        }
        match var("HOME") {
            Some(home) => Ok(Home::at(home.join(".local/share/wrun"))),
            None => Err(Error::new(
                ErrorKind::Internal,
                "cannot locate wrun's data directory: set WRUN_HOME",
            )),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The content-addressed store in it.
    pub fn store(&self) -> Result<Arc<BlobStore>> {
        BlobStore::open_local(&self.root)
            .map(Arc::new)
            .or_kind(ErrorKind::Internal)
    }

    /// A connection to the job journal in it.
    pub fn journal(&self) -> Result<Journal> {
        Journal::open(&self.root.join("journal.db")).or_kind(ErrorKind::Journal)
    }

    /// The directory of the jobs' lock files.
    pub fn locks(&self) -> PathBuf {
        self.root.join("jobs")
    }

    /// Whether a process holds job `job`'s lock: it is running.
    pub fn is_running(&self, job: JobId) -> Result<bool> {
        JobLock::is_held(&self.locks(), job).or_kind(ErrorKind::Internal)
    }

    /// Take job `job`'s lock, if nobody holds it.
    pub fn try_lock(&self, job: JobId) -> Result<Option<JobLock>> {
        let dir = self.locks();
        JobLock::acquire(&dir, job).or_kind_with(ErrorKind::Internal, || {
            format!("cannot lock job {job} in {}", dir.display())
        })
    }

    /// Take job `job`'s lock, or say that another process runs it.
    pub fn lock(&self, job: JobId) -> Result<JobLock> {
        self.try_lock(job)?.ok_or_else(|| {
            Error::new(
                ErrorKind::JobState,
                format!("job {job} is running in another process"),
            )
        })
    }
}
