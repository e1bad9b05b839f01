//! Which process owns a job.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use crate::JobId;

/// Proof that this process owns a job: an exclusive lock on the job's lock
/// file, held until dropped. The operating system releases it when the
/// process dies however it dies, so a job recorded `running` whose lock is
/// free was interrupted.
#[derive(Debug)]
pub struct JobLock {
    _file: File,
}

impl JobLock {
    fn path(dir: &Path, job: JobId) -> PathBuf {
        dir.join(format!("{job}.lock"))
    }

    fn open(dir: &Path, job: JobId) -> io::Result<File> {
        std::fs::create_dir_all(dir)?;
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(Self::path(dir, job))
    }

    /// Take job `job`'s lock in `dir`; `None` if another process holds it.
    pub fn acquire(dir: &Path, job: JobId) -> io::Result<Option<JobLock>> {
        let file = Self::open(dir, job)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(JobLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Whether a live process holds job `job`'s lock in `dir`.
    pub fn is_held(dir: &Path, job: JobId) -> io::Result<bool> {
        let file = match File::open(Self::path(dir, job)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Remove job `job`'s lock file (when the job is removed).
    pub fn remove(dir: &Path, job: JobId) -> io::Result<()> {
        match std::fs::remove_file(Self::path(dir, job)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
