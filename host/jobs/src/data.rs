//! Reference data (`--data NAME=PATH`, `NAME=s3://BUCKET/KEY`): files
//! granted to every task of a job, read-only at `/data/NAME`. Each is
//! hashed and put in the store once, streamed (a multi-gigabyte file or
//! object is never held in memory), and recorded in the job spec by digest
//! (an object with its size and ETag, as an S3 input is); a run shows the
//! tasks a view of the store ([`BlobStore::view`]), so a task reads the
//! verified blob, never the user's file, and sees nothing else of the
//! host.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wrun_journal::DataRef;
use wrun_store::object::{self, Object, ObjectStamp};
use wrun_store::{BlobStore, Digest};

use crate::error::{Error, ErrorKind, OrKind, Result};

/// Hash each granted `(name, path)` file (or S3 object, when the path is
/// an `s3://` URL) and put it in `store`: what the job spec records, in
/// the order given.
///
/// # Errors
///
/// [`ErrorKind::Usage`] for a name that is not a plain file name
/// (letters, digits, `.`, `_`, `-`; not starting with `.`) or is given
/// twice; [`ErrorKind::Input`] when a file or object cannot be read.
pub fn record(store: &Arc<BlobStore>, granted: &[(String, PathBuf)]) -> Result<Vec<DataRef>> {
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

fn record_one(store: &Arc<BlobStore>, name: &str, path: &Path) -> Result<DataRef> {
    if let Some(url) = path.to_str().filter(|p| object::is_url(p)) {
        let (object, stamp) = object_stamp(name, url)?;
        let (digest, size) = put_object(store, name, object, stamp.clone())?;
        return Ok(DataRef {
            name: name.to_owned(),
            path: url.to_owned(),
            digest: digest.to_hex(),
            size,
            etag: stamp.etag,
        });
    }
    let (digest, size) = put(store, name, path)?;
    Ok(DataRef {
        name: name.to_owned(),
        path: std::path::absolute(path)
            .unwrap_or_else(|_| path.to_owned())
            .display()
            .to_string(),
        digest: digest.to_hex(),
        size,
        etag: None,
    })
}

/// Check that every recorded data file still hashes to its digest, or
/// every object still has its size and ETag (and put it in `store` if the
/// store lacks it): a resume, a retry or a broker's run goes on only with
/// the data the job was submitted with.
///
/// # Errors
///
/// [`ErrorKind::JobState`] for a file or object that changed;
/// [`ErrorKind::Input`] for one that cannot be read.
pub fn check(store: &Arc<BlobStore>, recorded: &[DataRef]) -> Result<()> {
    for data in recorded {
        if object::is_url(&data.path) {
            check_object(store, data)?;
            continue;
        }
        let (digest, _) = put(store, &data.name, Path::new(&data.path))?;
        if digest.to_hex() != data.digest {
            return Err(changed(
                data,
                &format!("blake3 {}, now {digest}", data.digest),
            ));
        }
    }
    Ok(())
}

/// [`check`] of a data file read from S3: its size and ETag now against
/// those recorded; read into the store again (at the recorded version)
/// only when the store lacks its blob.
fn check_object(store: &Arc<BlobStore>, data: &DataRef) -> Result<()> {
    let (object, stamp) = object_stamp(&data.name, &data.path)?;
    let recorded = ObjectStamp {
        size: data.size,
        etag: data.etag.clone(),
    };
    if stamp != recorded {
        return Err(changed(data, "size or ETag"));
    }
    let digest = digest(data)?;
    if store.size(&digest).or_kind(ErrorKind::Internal)?.is_some() {
        return Ok(());
    }
    let (read, _) = put_object(store, &data.name, object, recorded)?;
    if read != digest {
        return Err(changed(
            data,
            &format!("blake3 {}, now {read}", data.digest),
        ));
    }
    Ok(())
}

/// A recorded data file that changed since the job was submitted; `how`
/// says what differs.
fn changed(data: &DataRef, how: &str) -> Error {
    Error::new(
        ErrorKind::JobState,
        format!(
            "{}: the data file {} changed since the job was submitted ({how}); the finished \
             chunks were computed with the old one: submit it again",
            data.path, data.name
        ),
    )
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
    store.put_file(path).map_err(|e| cannot_store(name, &e))
}

/// The object at `url` and its size and ETag now.
fn object_stamp(name: &str, url: &str) -> Result<(Object, ObjectStamp)> {
    let object = Object::new(url).map_err(|e| cannot_store(name, &e))?;
    let stamp = object.stamp().map_err(|e| cannot_store(name, &e))?;
    Ok((object, stamp))
}

/// Stream the version `stamp` of `object` into the store (ranged reads,
/// each refused if the object changed meanwhile).
fn put_object(
    store: &Arc<BlobStore>,
    name: &str,
    object: Object,
    stamp: ObjectStamp,
) -> Result<(Digest, u64)> {
    let url = object.url().to_owned();
    let mut reader = object.reader(stamp);
    store
        .put_reader(&url, &mut reader)
        .map_err(|e| cannot_store(name, &e))
}

/// A data file or object that cannot be read into the store (the error
/// names it and its cause).
fn cannot_store(name: &str, error: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Input,
        format!("cannot store the data file {name}: {error}"),
    )
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
