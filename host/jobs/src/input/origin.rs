//! Where an input's bytes come from: standard input, a file, or an S3
//! object (`s3://BUCKET/KEY`). Each is opened as a raw stream (maybe
//! compressed) with the [`InputRef`] that identifies its content for a
//! resume: a file by size and modification time, an object by size and
//! ETag.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::time::UNIX_EPOCH;

use bytes::Bytes;

use wrun_journal::InputRef;
use wrun_store::object::{self, Object, ObjectStamp};

use crate::error::{Error, ErrorKind, OrKind, Result};

/// An input's origin, from what the user gave (`-`, a path or a URL).
pub(super) enum Origin<'a> {
    Stdin,
    File(&'a Path),
    Object(&'a str),
}

/// An input opened at its origin: its raw bytes and its identity.
pub(super) struct Raw {
    pub(super) reader: Box<dyn Read + Send>,
    /// All its bytes, memory-mapped, when it is a regular file that maps.
    pub(super) mapped: Option<Bytes>,
    /// Its size in bytes when known in advance (a regular file, an
    /// object).
    pub(super) size: Option<u64>,
    /// What identifies it; its `size` is the raw (compressed) size.
    pub(super) stamp: InputRef,
}

impl<'a> Origin<'a> {
    /// The origin `path` names.
    pub(super) fn of(path: &'a Path) -> Self {
        match path.to_str() {
            Some("-") => Origin::Stdin,
            Some(url) if object::is_url(url) => Origin::Object(url),
            _ => Origin::File(path),
        }
    }

    /// Open it, and take its identity now.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Input`] naming the input: a missing file, object or
    /// bucket, a malformed URL, an S3 request that failed.
    pub(super) fn open(&self) -> Result<Raw> {
        match self {
            Origin::Stdin => Ok(Raw {
                reader: Box::new(io::stdin()),
                mapped: None,
                size: None,
                stamp: InputRef {
                    path: "-".to_owned(),
                    size: None,
                    modified_ns: None,
                    etag: None,
                    compressed: false,
                },
            }),
            Origin::File(path) => {
                let file = File::open(path).or_kind_with(ErrorKind::Input, || {
                    format!("cannot open input {}", path.display())
                })?;
                let metadata = file.metadata().ok();
                let size = metadata.as_ref().filter(|m| m.is_file()).map(|m| m.len());
                Ok(Raw {
                    mapped: size.filter(|&size| size > 0).and_then(|_| map(&file)),
                    size,
                    stamp: file_stamp(path, metadata),
                    reader: Box::new(file),
                })
            }
            Origin::Object(url) => {
                let (object, stamp) = object_stamp(url)?;
                Ok(Raw {
                    size: Some(stamp.size),
                    stamp: InputRef {
                        path: (*url).to_owned(),
                        size: Some(stamp.size),
                        modified_ns: None,
                        etag: stamp.etag.clone(),
                        compressed: false,
                    },
                    reader: Box::new(object.reader(stamp)),
                    mapped: None,
                })
            }
        }
    }

    /// Open it as `recorded` says it was, refusing it if it changed since
    /// (a file's size or modification time, an object's size or ETag).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::JobState`] when it changed, with `changed` as the
    /// message's end; what [`Origin::open`] returns.
    pub(super) fn open_unchanged(&self, recorded: &InputRef, changed: &str) -> Result<Raw> {
        let raw = self.open()?;
        let (what, same) = match self {
            Origin::Object(_) => (
                "size or ETag",
                (raw.stamp.size, &raw.stamp.etag) == (recorded.size, &recorded.etag),
            ),
            _ => (
                "size or modification time",
                (raw.stamp.size, raw.stamp.modified_ns) == (recorded.size, recorded.modified_ns),
            ),
        };
        if !same {
            return Err(Error::new(
                ErrorKind::JobState,
                format!(
                    "{}: the input changed {changed} ({what}); its finished chunks no longer match it: submit it again",
                    recorded.path
                ),
            ));
        }
        Ok(raw)
    }
}

/// All of `file` (a regular file), memory-mapped read-only: what the
/// scheduler splits and cuts into chunks without reading it into buffers
/// and copying it into chunks. `None` when it cannot be mapped (it is then
/// read as a stream).
fn map(file: &File) -> Option<Bytes> {
    // SAFETY: a read-only private mapping, used only as bytes. wrun never
    // writes an input; if another process rewrites the file in place while
    // the job runs, tasks see the new bytes, as a stream read would; if it
    // truncates it, touching the lost pages ends the process (SIGBUS),
    // which the journal's recovery treats as any crash (the job is
    // interrupted, and its resume refuses the changed input).
    let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
    Some(Bytes::from_owner(map))
}

/// A file's identity: its absolute path, size and modification time.
fn file_stamp(path: &Path, metadata: Option<std::fs::Metadata>) -> InputRef {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    InputRef {
        path: absolute.display().to_string(),
        size: metadata.as_ref().map(|m| m.len()),
        modified_ns: metadata
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128),
        etag: None,
        compressed: false,
    }
}

/// The object at `url` and its size and ETag now.
fn object_stamp(url: &str) -> Result<(Object, ObjectStamp)> {
    let context = || format!("cannot open input {url}");
    let object = Object::new(url).or_kind_with(ErrorKind::Input, context)?;
    let stamp = object.stamp().or_kind_with(ErrorKind::Input, context)?;
    Ok((object, stamp))
}
