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
    /// The store's URL when it is not the directory itself (`s3://...`,
    /// cached in the directory); from `WRUN_STORE`.
    store: Option<String>,
}

impl Home {
    /// The data directory at `root`, its own store.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Home {
            root: root.into(),
            store: None,
        }
    }

    /// `$WRUN_HOME`, else `$XDG_DATA_HOME/wrun`, else
    /// `~/.local/share/wrun`; its store at `$WRUN_STORE` when set (see
    /// [`BlobStore::open`]).
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
        let root = if let Some(home) = var("WRUN_HOME") {
            home
        } else if let Some(data) = var("XDG_DATA_HOME") {
            data.join("wrun")
        } else if let Some(home) = var("HOME") {
            home.join(".local/share/wrun")
        } else {
            return Err(Error::new(
                ErrorKind::Internal,
                "cannot locate wrun's data directory: set WRUN_HOME",
            ));
        };
        let store = std::env::var("WRUN_STORE").ok().filter(|v| !v.is_empty());
        Ok(Home { root, store })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's local directory alone (a bucket store's cache), opened
    /// without contacting any bucket: this machine's bookkeeping, such as
    /// the digests of module files remembered by their stamps.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Internal`] when the directory cannot be opened.
    pub fn local_store(&self) -> Result<BlobStore> {
        BlobStore::open_local(&self.root).or_kind(ErrorKind::Internal)
    }

    /// The content-addressed store: the directory's own, or the one at
    /// `$WRUN_STORE` cached in it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Usage`] when `$WRUN_STORE` cannot be opened (a missing
    /// or unreachable bucket); [`ErrorKind::Internal`] when the directory
    /// cannot be.
    pub fn store(&self) -> Result<Arc<BlobStore>> {
        match &self.store {
            Some(url) => BlobStore::open(url, &self.root).or_kind(ErrorKind::Usage),
            None => BlobStore::open_local(&self.root).or_kind(ErrorKind::Internal),
        }
        .map(Arc::new)
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
