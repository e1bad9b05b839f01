//! Reference data (`--data NAME=PATH`): files granted to every task of a
//! job, read-only at `/data/NAME`. Each is hashed and put in the store
//! once, streamed (a multi-gigabyte file is never held in memory), and
//! recorded in the job spec by digest; a run shows the tasks a view of
//! the store ([`BlobStore::view`]), so a task reads the verified blob,
//! never the user's file, and sees nothing else of the host.

use std::path::{Path, PathBuf};

use wrun_journal::DataRef;
use wrun_store::{BlobStore, Digest};

use crate::error::{Error, ErrorKind, OrKind, Result};

/// Hash each granted `(name, path)` file and put it in `store`: what the
/// job spec records, in the order given.
///
/// # Errors
///
/// [`ErrorKind::Usage`] for a name that is not a plain file name
/// (letters, digits, `.`, `_`, `-`; not starting with `.`) or is given
/// twice; [`ErrorKind::Input`] when a file cannot be read.
pub fn record(store: &BlobStore, granted: &[(String, PathBuf)]) -> Result<Vec<DataRef>> {
    let mut recorded: Vec<DataRef> = Vec::with_capacity(granted.len());
    for (name, path) in granted {
        check_name(name)?;
        if recorded.iter().any(|data| data.name == *name) {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("--data {name}: the name is given twice"),
            ));
        }
        recorded.push(record_one(store, name, path)?);
    }
    Ok(recorded)
}

fn record_one(store: &BlobStore, name: &str, path: &Path) -> Result<DataRef> {
    let (digest, size) = put(store, name, path)?;
    Ok(DataRef {
        name: name.to_owned(),
        path: std::path::absolute(path)
            .unwrap_or_else(|_| path.to_owned())
            .display()
            .to_string(),
        digest: digest.to_hex(),
        size,
    })
}

/// Check that every recorded data file still hashes to its digest (and
/// put it in `store` if the store lacks it): a resume, a retry or a
/// broker's run goes on only with the data the job was submitted with.
///
/// # Errors
///
/// [`ErrorKind::JobState`] for a file that changed; [`ErrorKind::Input`]
/// for one that cannot be read.
pub fn check(store: &BlobStore, recorded: &[DataRef]) -> Result<()> {
    for data in recorded {
        let (digest, _) = put(store, &data.name, Path::new(&data.path))?;
        if digest.to_hex() != data.digest {
            return Err(Error::new(
                ErrorKind::JobState,
                format!(
                    "{}: the data file {} changed since the job was submitted (blake3 {}, now \
                     {digest}); the finished chunks were computed with the old one: submit it \
                     again",
                    data.path, data.name, data.digest
                ),
            ));
        }
    }
    Ok(())
}

/// The directory to show the tasks at `/data`: the recorded files under
/// their names, each checked against its digest; `None` when the job has
/// no data.
///
/// # Errors
///
/// [`ErrorKind::JobState`] when a file is no longer in the store;
/// [`ErrorKind::Internal`] when the view cannot be made.
pub fn view(store: &BlobStore, recorded: &[DataRef]) -> Result<Option<PathBuf>> {
    if recorded.is_empty() {
        return Ok(None);
    }
    let files = recorded
        .iter()
        .map(|data| Ok((data.name.clone(), digest(data)?)))
        .collect::<Result<Vec<_>>>()?;
    match store.view(&files) {
        Ok(dir) => Ok(Some(dir)),
        Err(wrun_store::StoreError::Missing { digest }) => Err(Error::new(
            ErrorKind::JobState,
            format!("data blob {digest} is not in the store"),
        )),
        Err(e) => Err(e).or_kind(ErrorKind::Internal),
    }
}

/// The digest a data file was recorded with.
///
/// # Errors
///
/// [`ErrorKind::Journal`] for a digest that is not 64 hex digits.
pub fn digest(data: &DataRef) -> Result<Digest> {
    Digest::from_hex(&data.digest).ok_or_else(|| {
        Error::new(
            ErrorKind::Journal,
            format!("data file {}: bad digest {:?}", data.name, data.digest),
        )
    })
}

fn put(store: &BlobStore, name: &str, path: &Path) -> Result<(Digest, u64)> {
    // The store's error names the file and its cause already.
    store.put_file(path).map_err(|e| {
        Error::new(
            ErrorKind::Input,
            format!("cannot store the data file {name}: {e}"),
        )
    })
}

/// A data name is a plain file name: the task opens `/data/NAME`.
fn check_name(name: &str) -> Result<()> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !name.is_empty() && !name.starts_with('.') && name.chars().all(plain) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Usage,
        format!(
            "--data {name:?}: a data name is letters, digits, '.', '_' and '-', not starting \
             with '.' (the task opens /data/NAME)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_file_names() {
        for good in ["ref", "ref.fa", "uniprot_sprot-2024.fasta", "A1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "../x", "a b", "ref\0"] {
            assert_eq!(
                check_name(bad).unwrap_err().kind(),
                ErrorKind::Usage,
                "{bad}"
            );
        }
    }
}
