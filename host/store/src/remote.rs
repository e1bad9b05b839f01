//! The S3 side of a store (`s3://bucket/prefix`): blobs are written once,
//! create-if-absent by digest, and read back into the local cache in
//! blocks, checked against their digest before the cache keeps them.
//!
//! `object_store`'s S3 client needs a tokio runtime; the store's API is
//! synchronous, so each remote store owns a small one (one worker thread
//! driving the sockets and timers) and blocks on it at every call.
//! Credentials, region and endpoint come only from the standard `AWS_*`
//! environment variables; they are never part of the store's URL, its
//! `Debug` form or its errors.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::stream::BLOCK;
use crate::{Digest, StoreError};

/// The longest the start-up check of a bucket may take: a wrong endpoint
/// or an unreachable server is an error within this, not a hang.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// A bucket (and prefix in it) holding blobs.
pub(crate) struct Remote {
    /// `s3://bucket/prefix`, as given: no credentials.
    url: String,
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
}

impl Remote {
    /// The bucket and prefix at `url` (`s3://BUCKET[/PREFIX]`), configured
    /// from the `AWS_*` environment variables and checked by listing the
    /// prefix once.
    ///
    /// # Errors
    ///
    /// [`StoreError::Open`] naming `url` when it is malformed, the client
    /// cannot be built, or the bucket cannot be listed within
    /// [`CHECK_TIMEOUT`] (missing bucket, wrong endpoint, refused keys).
    pub(crate) fn open(url: &str) -> Result<Self, StoreError> {
        let open_error = |message: String| StoreError::Open {
            root: url.to_owned(),
            message,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| open_error("not an s3:// URL".to_owned()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(open_error("no bucket: give s3://BUCKET/PREFIX".to_owned()));
        }
        let s3 = crate::s3::client(bucket).map_err(open_error)?;
        let store: Arc<dyn ObjectStore> = match prefix.trim_matches('/') {
            "" => Arc::new(s3),
            prefix => Arc::new(PrefixStore::new(s3, prefix)),
        };
        let runtime = crate::s3::runtime().map_err(|e| open_error(e.to_string()))?;
        let remote = Remote {
            url: url.trim_end_matches('/').to_owned(),
            store,
            runtime,
        };
        let listed = remote.runtime.block_on(async {
            tokio::time::timeout(CHECK_TIMEOUT, remote.store.list_with_delimiter(None)).await
        });
        match listed {
            Ok(Ok(_)) => Ok(remote),
            Ok(Err(e)) => Err(open_error(format!("cannot list the bucket: {e}"))),
            Err(_) => Err(open_error(format!(
                "no answer from the S3 endpoint within {}s",
                CHECK_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The URL of the store, without credentials.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    fn error(
        &self,
        operation: &'static str,
        path: &Path,
    ) -> impl FnOnce(object_store::Error) -> StoreError {
        let location = format!("{}/{path}", self.url);
        move |source| StoreError::Object {
            operation,
            location,
            source,
        }
    }

    /// Drive `future` on this store's runtime.
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Write `bytes` at `path` unless an object is there already (content
    /// addressing: it holds the same bytes).
    pub(crate) fn put(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let payload = PutPayload::from(Bytes::copy_from_slice(bytes));
        match self.block_on(self.store.put_opts(path, payload, options)) {
            Ok(_)
            | Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(()),
            Err(e) => Err(self.error("write", path)(e)),
        }
    }

    /// The size of the object at `path`; `None` when absent.
    pub(crate) fn size(&self, path: &Path) -> Result<Option<u64>, StoreError> {
        match self.block_on(self.store.head(path)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("read", path)(e)),
        }
    }

    /// Remove the object at `path` (absent is fine).
    fn delete(&self, path: &Path) -> Result<(), StoreError> {
        match self.block_on(self.store.delete(path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", path)(e)),
        }
    }

    /// A multipart upload to `path`, for [`crate::stream`].
    pub(crate) fn put_multipart(
        &self,
        path: &Path,
    ) -> Result<Box<dyn object_store::MultipartUpload>, StoreError> {
        self.block_on(self.store.put_multipart(path))
            .map_err(self.error("write", path))
    }

    /// Copy the blob `digest` at `path` into `cache` at the same path, in
    /// [`BLOCK`]-sized parts of one multipart write completed only when the
    /// bytes hash to `digest`. `false` when the bucket lacks the blob or
    /// holds other bytes under its name (that object is then deleted, so
    /// the blob can be stored again).
    pub(crate) fn fetch(
        &self,
        path: &Path,
        digest: &Digest,
        cache: &dyn ObjectStore,
    ) -> Result<bool, StoreError> {
        let read_error = |e| self.error("read", path)(e);
        let mut stream = match self.block_on(self.store.get(path)) {
            Ok(result) => result.into_stream(),
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(read_error(e)),
        };
        let local_error = |e| StoreError::Object {
            operation: "write",
            location: path.to_string(),
            source: e,
        };
        let mut upload = crate::block_on(cache.put_multipart(path)).map_err(local_error)?;
        let mut hasher = blake3::Hasher::new();
        let copied: Result<(), StoreError> = (|| {
            let mut block = BytesMut::new();
            loop {
                let next = self
                    .block_on(stream.next())
                    .transpose()
                    .map_err(read_error)?;
                let done = next.is_none();
                if let Some(bytes) = next {
                    hasher.update(&bytes);
                    block.extend_from_slice(&bytes);
                }
                if block.len() >= BLOCK || (done && !block.is_empty()) {
                    let part = PutPayload::from(block.split().freeze());
                    crate::block_on(upload.put_part(part)).map_err(local_error)?;
                }
                if done {
                    return Ok(());
                }
            }
        })();
        let intact = Digest::from_bytes(*hasher.finalize().as_bytes()) == *digest;
        match copied {
            Ok(()) if intact => {
                crate::block_on(upload.complete()).map_err(local_error)?;
                Ok(true)
            }
            outcome => {
                let _ = crate::block_on(upload.abort());
                outcome?;
                self.delete(path)?;
                Ok(false)
            }
        }
    }
}
