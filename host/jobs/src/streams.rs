//! A job's two streams: the input it reads ([`Source`]) and the output it
//! writes in input order ([`Destination`]), each with what messages call
//! it.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::error::{ErrorKind, OrKind, Result};

/// Where a job's output goes, and its name for messages.
pub struct Destination {
    /// The stream.
    pub writer: Box<dyn Write>,
    /// `-o`'s path, `standard output`, `the client's output`.
    pub name: String,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Destination {
    /// Create (truncate) `path`, or take standard output.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Output`] naming the file.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(path) => {
                let name = path.display().to_string();
                let file = File::create(path)
                    .or_kind_with(ErrorKind::Output, || format!("cannot create {name}"))?;
                Ok(Destination {
                    writer: Box::new(BufWriter::new(file)),
                    name,
                })
            }
            None => Ok(Destination {
                writer: Box::new(BufWriter::new(io::stdout().lock())),
                name: "standard output".to_owned(),
            }),
        }
    }
}

/// A job's input: its bytes, decompressed, and what is known of it.
pub struct Source {
    /// Its bytes, decompressed.
    pub reader: Box<dyn Read + Send>,
    /// Its size in bytes, when known in advance (a regular file, not
    /// compressed).
    pub size: Option<u64>,
    /// Whether it is compressed.
    pub compressed: bool,
    /// What its reader noticed and went on past, for the user.
    pub notices: Notices,
}

/// What an input's reader noticed and went on past (bytes after the last
/// gzip member), told to the user once the input is read. Cheap to clone:
/// the reader and the run share one list.
#[derive(Debug, Clone, Default)]
pub struct Notices(Arc<Mutex<Vec<String>>>);

impl Notices {
    /// Add one.
    pub fn push(&self, notice: String) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(notice);
    }

    /// Take every one so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("size", &self.size)
            .field("compressed", &self.compressed)
            .finish_non_exhaustive()
    }
}
