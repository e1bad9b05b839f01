//! Blobs in parts: a [`BlobWriter`] takes a blob's bytes as they come (a
//! cluster node's fetch from its broker; any reader, such as an S3
//! object, through [`BlobStore::put_reader`]) without holding them, and
//! [`BlobStore::read_part`] reads a range of a checked blob to send it
//! so.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};

use crate::stream::{BLOCK, read_full};
use crate::{BlobStore, Digest, FileStamp, StoreError, block_on};

/// A blob being written part by part ([`BlobStore::writer`]): staged in a
/// temporary object of the local directory, hashed as it goes, and put
/// under its digest only by [`BlobWriter::finish`], when whole. Dropped
/// unfinished, the staged bytes are removed.
pub struct BlobWriter {
    store: Arc<BlobStore>,
    /// The local directory, fsynced or not, that the blob is written to.
    target: Arc<dyn ObjectStore>,
    /// Where the bytes are staged until their digest is known.
    staged: Path,
    upload: Box<dyn MultipartUpload>,
    hasher: blake3::Hasher,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("staged", &self.staged)
            .field("written", &self.written())
            .finish_non_exhaustive()
    }
}

/// A staging name no other writer of this store has: the process, a
/// counter and the time (stores may be shared by several machines).
fn staging_name() -> Path {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    Path::from(format!(
        "incoming/{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

impl BlobStore {
    /// A writer for a blob whose bytes come in parts. The blob goes to the
    /// local directory (fsynced, as [`BlobStore::put`]), and, with a bucket
    /// behind the store, from there to the bucket when finished.
    ///
    /// # Errors
    ///
    /// [`StoreError::Object`] when the staged object cannot be created.
    pub fn writer(self: &Arc<Self>) -> Result<BlobWriter, StoreError> {
        self.writer_into(self.store.clone())
    }

    /// Like [`BlobStore::writer`], without fsync: for blobs whose loss in
    /// a machine crash costs only fetching them again (a node's copies of
    /// its broker's blobs). A process crash loses nothing.
    ///
    /// # Errors
    ///
    /// As [`BlobStore::writer`].
    pub fn writer_unsynced(self: &Arc<Self>) -> Result<BlobWriter, StoreError> {
        self.writer_into(self.relaxed.clone())
    }

    fn writer_into(
        self: &Arc<Self>,
        target: Arc<dyn ObjectStore>,
    ) -> Result<BlobWriter, StoreError> {
        let staged = staging_name();
        let upload = block_on(target.put_multipart(&staged))
            .map_err(Self::object_error("write", &staged))?;
        Ok(BlobWriter {
            store: self.clone(),
            target,
            staged,
            upload,
            hasher: blake3::Hasher::new(),
        })
    }

    /// Store what `reader` gives as a blob, read in [`BLOCK`]-sized parts
    /// and written as they come (never held whole: an S3 object, say);
    /// returns its digest and size in bytes. `name` names the source in
    /// errors.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] naming `name` when a read fails;
    /// [`StoreError::Object`] when the store refuses the write.
    pub fn put_reader(
        self: &Arc<Self>,
        name: &str,
        reader: &mut dyn Read,
    ) -> Result<(Digest, u64), StoreError> {
        let mut writer = self.writer()?;
        loop {
            let mut block = vec![0; BLOCK];
            let n = read_full(reader, &mut block).map_err(|source| StoreError::Io {
                path: name.to_owned(),
                source,
            })?;
            if n == 0 {
                return writer.finish(None);
            }
            block.truncate(n);
            writer.write(block)?;
        }
    }

    /// Up to `len` bytes of the blob `digest` from byte `offset` (fewer at
    /// its end, none from or past it), with the blob's whole size in
    /// bytes; `None` when the store lacks the blob intact. Read from the
    /// blob's local file after checking it as [`BlobStore::view`] does (it
    /// is hashed unless its stamp is the one of its last good check), so a
    /// part is never read from a file that changed since it hashed right.
    /// With a bucket, a blob not cached yet is fetched into the cache
    /// first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the file cannot be read.
    pub fn read_part(
        &self,
        digest: &Digest,
        offset: u64,
        len: usize,
    ) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let Some(path) = self.checked_file(digest)? else {
            return Ok(None);
        };
        let io_error = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(io_error)?;
        let size = file.metadata().map_err(io_error)?.len();
        let start = offset.min(size);
        let end = start.saturating_add(len as u64).min(size);
        let mut bytes = vec![0; (end - start) as usize];
        file.read_exact_at(&mut bytes, start).map_err(io_error)?;
        Ok(Some((bytes, size)))
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.count()
    }

    /// Append `bytes` (any length, none is fine).
    ///
    /// # Errors
    ///
    /// [`StoreError::Object`] when the local directory refuses the write.
    pub fn write(&mut self, bytes: Vec<u8>) -> Result<(), StoreError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.hasher.update(&bytes);
        block_on(self.upload.put_part(PutPayload::from(bytes)))
            .map_err(BlobStore::object_error("write", &self.staged))
    }

    /// Put the bytes written under their digest, which must be `expected`
    /// when given; returns the digest and the size in bytes. The blob's
    /// file is recorded as checked (it was hashed as it was written), so
    /// its first use does not hash it again.
    ///
    /// # Errors
    ///
    /// [`StoreError::Mismatch`] when the bytes hash to another digest than
    /// `expected` (nothing is kept); [`StoreError::Object`] or
    /// [`StoreError::Io`] when the blob cannot be put in place.
    pub fn finish(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        let digest = Digest::from_bytes(*self.hasher.finalize().as_bytes());
        let size = self.written();
        if let Some(expected) = expected.filter(|&e| *e != digest) {
            let _ = block_on(self.upload.abort());
            return Err(StoreError::Mismatch {
                expected: *expected,
                actual: digest,
            });
        }
        let store = &self.store;
        block_on(self.upload.complete()).map_err(BlobStore::object_error("write", &self.staged))?;
        let location = BlobStore::blob_path(&digest);
        if let Err(e) = block_on(self.target.rename(&self.staged, &location)) {
            let _ = store.delete_path(&self.staged);
            return Err(BlobStore::object_error("write", &location)(e));
        }
        let file = store.local_root.join(location.as_ref());
        let metadata = std::fs::metadata(&file).map_err(|source| StoreError::Io {
            path: file.display().to_string(),
            source,
        })?;
        store.record_checked(&digest, &FileStamp::of(&metadata));
        store.push(&digest, size, &file)?;
        Ok((digest, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_written_in_parts_reads_back_in_parts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(BlobStore::open_local(dir.path()).unwrap());
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let digest = Digest::of(&bytes);
        let mut writer = store.writer_unsynced().unwrap();
        for part in bytes.chunks(30_000) {
            writer.write(part.to_vec()).unwrap();
        }
        writer.write(Vec::new()).unwrap();
        assert_eq!(writer.written(), 100_000);
        assert_eq!(writer.finish(Some(&digest)).unwrap(), (digest, 100_000));
        assert_eq!(store.get(&digest).unwrap().as_deref(), Some(&bytes[..]));
        let mut read = Vec::new();
        for offset in (0..100_000).step_by(40_000) {
            let (part, size) = store.read_part(&digest, offset, 40_000).unwrap().unwrap();
            assert_eq!(size, 100_000);
            read.extend(part);
        }
        assert_eq!(read, bytes);
        let (past, _) = store.read_part(&digest, 200_000, 10).unwrap().unwrap();
        assert!(past.is_empty());
        let absent = Digest::of(b"absent");
        assert!(store.read_part(&absent, 0, 10).unwrap().is_none());
        let incoming = std::fs::read_dir(dir.path().join("incoming"))
            .unwrap()
            .count();
        assert_eq!(incoming, 0, "nothing staged is left");
    }

    #[test]
    fn bytes_that_hash_to_another_digest_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(BlobStore::open_local(dir.path()).unwrap());
        let expected = Digest::of(b"expected");
        let mut writer = store.writer().unwrap();
        writer.write(b"other".to_vec()).unwrap();
        let error = writer.finish(Some(&expected)).unwrap_err();
        assert!(
            matches!(error, StoreError::Mismatch { expected: e, actual }
                if e == expected && actual == Digest::of(b"other")),
            "{error}"
        );
        assert!(store.get(&Digest::of(b"other")).unwrap().is_none());
        // Dropped unfinished: nothing is staged either.
        let mut writer = store.writer().unwrap();
        writer.write(b"half".to_vec()).unwrap();
        drop(writer);
        let incoming = std::fs::read_dir(dir.path().join("incoming"))
            .unwrap()
            .count();
        assert_eq!(incoming, 0, "nothing staged is left");
        // Without an expected digest, the bytes are stored under theirs.
        let mut writer = store.writer().unwrap();
        writer.write(b"any".to_vec()).unwrap();
        assert_eq!(writer.finish(None).unwrap(), (Digest::of(b"any"), 3));
        let bytes: Vec<u8> = (0..BLOCK + 7).map(|i| (i % 13) as u8).collect();
        let stored = store.put_reader("bytes", &mut &bytes[..]).unwrap();
        assert_eq!(stored, (Digest::of(&bytes), bytes.len() as u64));
        assert_eq!(store.get(&stored.0).unwrap().as_deref(), Some(&bytes[..]));
    }
}
