//! Where wrun keeps its data: the store (artifact cache, job modules and
//! large outputs), the job journal, and the jobs' lock files.

use std::path::PathBuf;
use std::sync::Arc;

use wrun_journal::Journal;
use wrun_store::BlobStore;

use crate::exit::{Code, Fail, OrFail};

/// `$WRUN_HOME`, else `$XDG_DATA_HOME/wrun`, else `~/.local/share/wrun`.
pub(crate) fn home() -> Result<PathBuf, Fail> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(home) = var("WRUN_HOME") {
        return Ok(home);
    }
    if let Some(data) = var("XDG_DATA_HOME") {
        return Ok(data.join("wrun"));
    }
    match var("HOME") {
        Some(home) => Ok(home.join(".local/share/wrun")),
        None => Err(Fail::new(
            Code::Internal,
            anyhow::anyhow!("cannot locate wrun's data directory: set WRUN_HOME"),
        )),
    }
}

/// The store in [`home`].
pub(crate) fn open_store() -> Result<Arc<BlobStore>, Fail> {
    BlobStore::open_local(&home()?)
        .map(Arc::new)
        .or_fail(Code::Internal)
}

/// The job journal in [`home`].
pub(crate) fn open_journal() -> Result<Journal, Fail> {
    Journal::open(&home()?.join("journal.db")).or_fail(Code::Journal)
}

/// The directory of the jobs' lock files.
pub(crate) fn locks() -> Result<PathBuf, Fail> {
    Ok(home()?.join("jobs"))
}
