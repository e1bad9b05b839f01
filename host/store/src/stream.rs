//! Streaming a local file into the store: hashed and written in blocks,
//! so a multi-gigabyte file is never held in memory.

use std::io::Read;
use std::path::Path as FsPath;

use futures::future::BoxFuture;
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};

use crate::{BlobStore, Digest, StoreError, block_on};

/// Bytes read and written at a time (8 MiB: above S3's 5 MiB minimum part,
/// so every part but the last is a valid multipart part).
pub(crate) const BLOCK: usize = 8 << 20;

impl BlobStore {
    /// Store the file at `path` as a blob; returns its digest and size in
    /// bytes. The file is hashed first (memory-mapped, or its digest
    /// remembered by its stamp: [`BlobStore::file_digest`]), then, when the
    /// store lacks the blob, copied in [`BLOCK`]-sized parts of one
    /// multipart write that is completed only if the bytes copied hash to
    /// the same digest: a file changed meanwhile leaves nothing behind.
    /// With a bucket behind the store, the blob goes to the local cache
    /// first and from there to the bucket the same way, unless the bucket
    /// holds it already.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the file cannot be read or changed while it
    /// was stored; [`StoreError::Object`] when the store refuses the write.
    pub fn put_file(&self, path: &FsPath) -> Result<(Digest, u64), StoreError> {
        let (digest, size) = self.file_digest(path).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let location = Self::blob_path(&digest);
        // The local copy alone: a blob absent from the bucket is not fetched
        // just to learn that.
        let cached = match self.local_file(&digest)? {
            Some(file) => file,
            None => {
                let upload = block_on(self.store.put_multipart(&location))
                    .map_err(Self::object_error("write", &location))?;
                upload_file(path, &digest, upload, &|f| block_on(f))
                    .map_err(|e| e.located(&location))?;
                self.local_file(&digest)?
                    .ok_or(StoreError::Missing { digest })?
            }
        };
        self.push(&digest, size, &cached)?;
        Ok((digest, size))
    }

    /// With a bucket behind the store, copy the blob `digest` of `size`
    /// bytes from its cached file `cached` to the bucket unless the bucket
    /// holds it already; nothing without a bucket.
    pub(crate) fn push(
        &self,
        digest: &Digest,
        size: u64,
        cached: &FsPath,
    ) -> Result<(), StoreError> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let location = Self::blob_path(digest);
        if remote.size(&location)? != Some(size) {
            let upload = remote.put_multipart(&location)?;
            upload_file(cached, digest, upload, &|f| remote.block_on(f))
                .map_err(|e| e.located(&format!("{}/{location}", remote.url())))?;
        }
        Ok(())
    }
}

/// Why [`upload_file`] failed.
enum UploadError {
    Io(StoreError),
    Object(object_store::Error),
}

impl UploadError {
    fn located(self, location: &dyn std::fmt::Display) -> StoreError {
        match self {
            UploadError::Io(error) => error,
            UploadError::Object(source) => StoreError::Object {
                operation: "write",
                location: location.to_string(),
                source,
            },
        }
    }
}

/// Copy the file at `path` into `upload` in [`BLOCK`]-sized parts (every
/// part but the last is a valid S3 part) and complete it only if the bytes
/// copied hash to `digest`: a file changed meanwhile leaves nothing behind.
/// `run` drives one future of the upload's store to completion.
fn upload_file(
    path: &FsPath,
    digest: &Digest,
    mut upload: Box<dyn MultipartUpload>,
    run: &dyn Fn(BoxFuture<'_, object_store::Result<()>>) -> object_store::Result<()>,
) -> Result<(), UploadError> {
    let io_error = |source| {
        UploadError::Io(StoreError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    let mut file = std::fs::File::open(path).map_err(io_error)?;
    let mut copied = blake3::Hasher::new();
    let written: Result<(), UploadError> = (|| {
        loop {
            let mut block = vec![0; BLOCK];
            let n = read_full(&mut file, &mut block).map_err(io_error)?;
            if n == 0 {
                return Ok(());
            }
            block.truncate(n);
            copied.update(&block);
            run(upload.put_part(PutPayload::from(block))).map_err(UploadError::Object)?;
        }
    })();
    let unchanged = Digest::from_bytes(*copied.finalize().as_bytes()) == *digest;
    match written {
        Ok(()) if unchanged => run(Box::pin(async { upload.complete().await.map(|_| ()) }))
            .map_err(UploadError::Object),
        outcome => {
            let _ = run(upload.abort());
            outcome?;
            Err(io_error(std::io::Error::other(
                "the file changed while it was being stored",
            )))
        }
    }
}

/// Fill `block` from `file` as far as it goes, retrying interrupted
/// reads; the count read (less than the block only at the end of the
/// file).
///
/// # Errors
///
/// The first read error other than [`std::io::ErrorKind::Interrupted`].
pub fn read_full(file: &mut dyn Read, block: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < block.len() {
        match file.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_stored_in_parts_under_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_local(&dir.path().join("store")).unwrap();
        // Two whole parts and a short last one.
        let bytes: Vec<u8> = (0..2 * BLOCK + 12345).map(|i| (i % 251) as u8).collect();
        let file = dir.path().join("ref.bin");
        std::fs::write(&file, &bytes).unwrap();
        let (digest, size) = store.put_file(&file).unwrap();
        assert_eq!((digest, size), (Digest::of(&bytes), bytes.len() as u64));
        assert_eq!(store.get(&digest).unwrap().as_deref(), Some(&bytes[..]));
        // Again: already there.
        assert_eq!(store.put_file(&file).unwrap(), (digest, size));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(store.put_file(&empty).unwrap(), (Digest::of(b""), 0));
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_local(dir.path()).unwrap();
        let error = store.put_file(&dir.path().join("absent.fa")).unwrap_err();
        assert!(error.to_string().contains("absent.fa"), "{error}");
    }
}
