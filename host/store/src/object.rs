//! Single S3 objects named by URL (`s3://BUCKET/KEY`), outside any blob
//! store: a job's input, read in ranged blocks and refused if it changes
//! while it is read ([`ObjectReader`]), and a job's output, written as one
//! multipart upload that becomes an object only when completed
//! ([`Upload`]).
//!
//! The client is [`crate::s3`]'s: configured from the `AWS_*` variables
//! only, so a URL, an error or a `Debug` form never holds a credential.

use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{GetOptions, MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};

/// Bytes per ranged read of an input and per part of an upload (8 MiB;
/// S3 wants parts of at least 5 MiB, all but the last).
pub const PART: usize = 8 << 20;

/// Whether `name` (an `--input` or `-o`) names an S3 object.
pub fn is_url(name: &str) -> bool {
    name.starts_with("s3://")
}

/// An S3 object request failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The URL is not `s3://BUCKET/KEY`, or the client cannot be built
    /// from the `AWS_*` variables.
    #[error("{url}: {message}")]
    Url { url: String, message: String },
    /// No object at the URL (or no such bucket).
    #[error("{url}: no such object or bucket")]
    Missing { url: String },
    /// The object changed (another ETag or size) or went away while it
    /// was read.
    #[error("{url} changed while it was read")]
    Changed { url: String },
    /// A request failed (the endpoint, the network, the server).
    #[error("{url}: S3 {operation} failed: {source}")]
    Request {
        url: String,
        operation: &'static str,
        #[source]
        source: object_store::Error,
    },
}

/// What identifies an object's content for a resume: its size and ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStamp {
    /// Bytes.
    pub size: u64,
    /// The server's entity tag, as it gave it (quotes included); `None`
    /// when it gave none.
    pub etag: Option<String>,
}

/// One object, by URL, with the client that reaches it.
pub struct Object {
    /// `s3://BUCKET/KEY`, as given.
    url: String,
    key: Path,
    client: Arc<AmazonS3>,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object").field("url", &self.url).finish()
    }
}

impl Object {
    /// The object at `url` (`s3://BUCKET/KEY`); no request is made yet.
    ///
    /// # Errors
    ///
    /// [`ObjectError::Url`] naming `url` when it has no bucket or key, or
    /// the client cannot be built.
    pub fn new(url: &str) -> Result<Self, ObjectError> {
        let url_error = |message: String| ObjectError::Url {
            url: url.to_owned(),
            message,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| url_error("not an s3:// URL".to_owned()))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || key.is_empty() || key.ends_with('/') {
            return Err(url_error("give s3://BUCKET/KEY".to_owned()));
        }
        let key = Path::parse(key).map_err(|e| url_error(e.to_string()))?;
        let client = crate::s3::client(bucket).map_err(url_error)?;
        let runtime = crate::s3::runtime().map_err(|e| url_error(e.to_string()))?;
        Ok(Object {
            url: url.to_owned(),
            key,
            client: Arc::new(client),
            runtime: Arc::new(runtime),
        })
    }

    /// Its URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its size and ETag now.
    ///
    /// # Errors
    ///
    /// [`ObjectError::Missing`] when there is no such object or bucket;
    /// [`ObjectError::Request`].
    pub fn stamp(&self) -> Result<ObjectStamp, ObjectError> {
        match self.runtime.block_on(self.client.head(&self.key)) {
            Ok(meta) => Ok(ObjectStamp {
                size: meta.size,
                etag: meta.e_tag,
            }),
            Err(e) => Err(self.error("read", e)),
        }
    }

    /// Its bytes as they were at `stamp`: read in ranged blocks of
    /// [`PART`] bytes, each asked for only if the ETag still matches, so
    /// an object replaced while it is read fails the read
    /// ([`ObjectError::Changed`], as an [`io::Error`]) instead of mixing
    /// two versions.
    pub fn reader(self, stamp: ObjectStamp) -> ObjectReader {
        ObjectReader {
            object: self,
            stamp,
            next: 0,
            block: Bytes::new(),
        }
    }

    /// Start a multipart upload to its key: nothing is at the key until
    /// [`Upload::complete`].
    ///
    /// # Errors
    ///
    /// [`ObjectError::Missing`] for a missing bucket;
    /// [`ObjectError::Request`].
    pub fn upload(self) -> Result<Upload, ObjectError> {
        let upload = self
            .runtime
            .block_on(self.client.put_multipart(&self.key))
            .map_err(|e| self.error("write", e))?;
        Ok(Upload {
            object: self,
            upload: Some(upload),
            part: Vec::new(),
        })
    }

    fn error(&self, operation: &'static str, source: object_store::Error) -> ObjectError {
        let url = self.url.clone();
        match source {
            object_store::Error::NotFound { .. } => ObjectError::Missing { url },
            source => ObjectError::Request {
                url,
                operation,
                source,
            },
        }
    }
}

/// An object's bytes, read in ranged blocks ([`Object::reader`]).
#[derive(Debug)]
pub struct ObjectReader {
    object: Object,
    stamp: ObjectStamp,
    /// The offset of the next block to ask for.
    next: u64,
    /// What is left of the block read last.
    block: Bytes,
}

impl ObjectReader {
    /// The next block, `bytes next..next + PART` of the version `stamp`
    /// names.
    fn fetch(&mut self) -> Result<Bytes, ObjectError> {
        let end = (self.next + PART as u64).min(self.stamp.size);
        let options = GetOptions::new()
            .with_range(Some(self.next..end))
            .with_if_match(self.stamp.etag.clone());
        let object = &self.object;
        let got = object.runtime.block_on(async {
            object
                .client
                .get_opts(&object.key, options)
                .await?
                .bytes()
                .await
        });
        let changed = || ObjectError::Changed {
            url: object.url.clone(),
        };
        let bytes = match got {
            Ok(bytes) => bytes,
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => {
                return Err(changed());
            }
            Err(e) => return Err(object.error("read", e)),
        };
        if bytes.len() as u64 != end - self.next {
            return Err(changed());
        }
        self.next = end;
        Ok(bytes)
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.block.is_empty() {
            if self.next >= self.stamp.size {
                return Ok(0);
            }
            self.block = self.fetch().map_err(io::Error::other)?;
        }
        let n = buf.len().min(self.block.len());
        buf[..n].copy_from_slice(&self.block[..n]);
        self.block.advance(n);
        Ok(n)
    }
}

/// A multipart upload to an object's key ([`Object::upload`]): written in
/// parts of [`PART`] bytes as they fill, completed only by
/// [`complete`](Upload::complete). Dropped unfinished, it is aborted, so
/// the key gets no object; a process killed meanwhile leaves only an
/// uncompleted upload, which is no object either.
pub struct Upload {
    object: Object,
    /// `None` once completed or aborted.
    upload: Option<Box<dyn MultipartUpload>>,
    /// Bytes written since the last part was sent.
    part: Vec<u8>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("object", &self.object)
            .field("buffered", &self.part.len())
            .finish_non_exhaustive()
    }
}

impl Upload {
    /// Its object's URL.
    pub fn url(&self) -> &str {
        self.object.url()
    }

    /// Send the buffered bytes as one part.
    fn send_part(&mut self) -> Result<(), ObjectError> {
        let Some(upload) = self.upload.as_mut() else {
            return Ok(());
        };
        let part = PutPayload::from(std::mem::take(&mut self.part));
        self.object
            .runtime
            .block_on(upload.put_part(part))
            .map_err(|e| self.object.error("write", e))
    }

    /// Send what is buffered and complete the upload: the object appears
    /// at its key, whole.
    ///
    /// # Errors
    ///
    /// [`ObjectError::Request`]; the upload is then aborted.
    pub fn complete(mut self) -> Result<(), ObjectError> {
        if !self.part.is_empty() {
            self.send_part()?;
        }
        let Some(mut upload) = self.upload.take() else {
            return Ok(());
        };
        match self.object.runtime.block_on(upload.complete()) {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = self.object.runtime.block_on(upload.abort());
                Err(self.object.error("write", e))
            }
        }
    }

    /// Abort the upload: its parts are discarded and the key gets nothing.
    ///
    /// # Errors
    ///
    /// [`ObjectError::Request`].
    pub fn abort(mut self) -> Result<(), ObjectError> {
        self.abort_now()
    }

    fn abort_now(&mut self) -> Result<(), ObjectError> {
        let Some(mut upload) = self.upload.take() else {
            return Ok(());
        };
        self.object
            .runtime
            .block_on(upload.abort())
            .map_err(|e| self.object.error("abort", e))
    }
}

impl Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.part.extend_from_slice(buf);
        if self.part.len() >= PART {
            self.send_part().map_err(io::Error::other)?;
        }
        Ok(buf.len())
    }

    /// Parts are sent as they fill: nothing to do before
    /// [`complete`](Upload::complete).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = self.abort_now();
    }
}
