//! A job's two streams: the input it reads ([`Source`]) and the output it
//! writes in input order ([`Destination`]: a file, standard output or an
//! S3 object, compressed as its name says: [`encoding`]), each with what
//! messages call it.

pub(crate) mod encoding;

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wrun_store::object::{self, Object, Upload};

use self::encoding::{Encoder, Encoding};
use crate::error::{ErrorKind, OrKind, Result};

/// Where a job's output goes, and its name for messages. Each write is
/// one piece of the output (a chunk's, the reducer's), compressed into
/// units of its own when the name asks for compression; [`finish`]
/// (Destination::finish) ends a complete output. An S3 object
/// (`s3://BUCKET/KEY`) is one multipart upload that only `finish`
/// completes: dropped unfinished (a failed, cancelled or suspended job),
/// it is aborted and the key gets nothing.
pub struct Destination {
    /// The stream, compressed bytes when encoded.
    stream: Sink,
    encoder: Encoder,
    /// `-o`'s path, `standard output`, `the client's output`.
    pub name: String,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("encoder", &self.encoder)
            .finish_non_exhaustive()
    }
}

impl Destination {
    /// Create (truncate) `path`, or start an upload to the S3 object it
    /// names (`s3://BUCKET/KEY`), compressed as its extension says; or
    /// take standard output (plain).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Output`] naming the file or object.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(path) if path.to_str().is_some_and(object::is_url) => {
                let name = path.display().to_string();
                let upload = Object::new(&name)
                    .and_then(Object::upload)
                    .or_kind_with(ErrorKind::Output, || format!("cannot create {name}"))?;
                let encoder = Encoder::new(Encoding::of(path))
                    .or_kind_with(ErrorKind::Output, || format!("cannot compress {name}"))?;
                Ok(Destination {
                    stream: Sink::Object(upload),
                    encoder,
                    name,
                })
            }
            Some(path) => {
                let name = path.display().to_string();
                let file = File::create(path)
                    .or_kind_with(ErrorKind::Output, || format!("cannot create {name}"))?;
                Destination::encoded(Box::new(BufWriter::new(file)), Encoding::of(path), name)
            }
            None => Ok(Destination::new(
                Box::new(BufWriter::new(io::stdout().lock())),
                "standard output".to_owned(),
            )),
        }
    }

    /// A plain stream named `name`.
    pub fn new(stream: Box<dyn Write>, name: String) -> Self {
        Destination {
            stream: Sink::Stream(stream),
            encoder: Encoder::Plain,
            name,
        }
    }

    /// `stream`, compressed with `encoding`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Output`] when the compressor cannot be created.
    pub(crate) fn encoded(
        stream: Box<dyn Write>,
        encoding: Encoding,
        name: String,
    ) -> Result<Self> {
        let encoder = Encoder::new(encoding)
            .or_kind_with(ErrorKind::Output, || format!("cannot compress {name}"))?;
        Ok(Destination {
            stream: Sink::Stream(stream),
            encoder,
            name,
        })
    }

    /// Whether what is written stays when the output is not finished: a
    /// file's or a stream's bytes do; an S3 object's upload is aborted,
    /// so its key gets nothing.
    pub fn keeps_unfinished(&self) -> bool {
        matches!(self.stream, Sink::Stream(_))
    }

    /// End a complete output (BGZF's end-of-file block) and flush it, or
    /// complete its upload. An output that stops early is only dropped: a
    /// file holds whole pieces, and no end-of-file block says it is
    /// complete; an upload is aborted.
    ///
    /// # Errors
    ///
    /// The stream's.
    pub fn finish(mut self) -> io::Result<()> {
        let trailer = self.encoder.trailer()?;
        self.stream.write_all(&trailer)?;
        match self.stream {
            Sink::Stream(mut stream) => stream.flush(),
            Sink::Object(upload) => upload.complete().map_err(io::Error::other),
        }
    }
}

/// The bytes of a [`Destination`], once encoded.
enum Sink {
    /// A file or standard output.
    Stream(Box<dyn Write>),
    /// An S3 object's upload.
    Object(Upload),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stream(stream) => stream.write(buf),
            Sink::Object(upload) => upload.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stream(stream) => stream.flush(),
            Sink::Object(upload) => upload.flush(),
        }
    }
}

impl Write for Destination {
    /// Write `buf` as one piece: compressed, all of it at once, into whole
    /// units of its own.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.encoder
            .write(buf, &mut self.stream)
            .map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// A job's input: its bytes, decompressed, and what is known of it.
pub struct Source {
    /// Its bytes, decompressed.
    pub reader: Box<dyn Read + Send>,
    /// All its bytes, memory-mapped, when it is a plain regular file: the
    /// same bytes as `reader`'s, which a job then reads from here instead.
    pub mapped: Option<Bytes>,
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
