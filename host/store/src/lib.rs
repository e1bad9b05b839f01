//! Content-addressed storage for wrun.
//!
//! Every module, compiled artifact (and, later, chunk output and snapshot
//! page) is a **blob** named by the blake3 [`Digest`] of its bytes. A blob
//! is written once, atomically (staged to a temporary file, fsynced, renamed
//! into place), and checked against its name on every read: a blob whose
//! bytes do not match is treated as missing and removed, so a torn write or
//! a flipped bit costs a re-fetch or a recompile, never a wrong result.
//!
//! Beside blobs the store keeps small **entries**: named records in a
//! namespace (the artifact cache's index, for instance) that point at blobs.
//!
//! The store speaks `object_store`, so the same interface serves the local
//! file system (`WRUN_HOME`, or a shared path for a cluster) and an S3
//! bucket (`s3://bucket/prefix`, see [`BlobStore::open`]). A store with a
//! bucket behind it keeps a local **cache**: every blob it writes or reads
//! is also a verified file on local disk, so compiled artifacts are still
//! memory-mapped and reference data still hard-linked from there; entries
//! stay local (they are this machine's bookkeeping). Its API is
//! synchronous: wrun's callers are worker threads, and the local store runs
//! its I/O inline on the calling thread.
//!
//! Layout under the root: `blobs/<first two hex digits>/<digest>`,
//! `entries/<namespace>/<key>` and `views/<digest>/<name>` (named hard
//! links to blobs: a job's reference data, see [`BlobStore::view`]).

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

mod digests;
pub mod object;
mod parts;
mod remote;
mod s3;
mod stream;
mod view;

pub use parts::BlobWriter;
pub use stream::read_full;

/// The blake3 hash of a blob: its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// A digest from raw hash bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        blake3::Hash::from_hex(hex)
            .ok()
            .map(|h| Digest(*h.as_bytes()))
    }

    /// The raw hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", &self.to_hex()[..16])
    }
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened or created.
    #[error("cannot open the store at {root}: {message}")]
    Open { root: String, message: String },
    /// Reading or writing an object failed.
    #[error("store {operation} of {location} failed: {source}")]
    Object {
        operation: &'static str,
        location: String,
        #[source]
        source: object_store::Error,
    },
    /// A blob the operation needs is not in the store (or not intact).
    #[error("blob {digest} is not in the store")]
    Missing { digest: Digest },
    /// Bytes written as the blob `expected` hash to another digest.
    #[error("the bytes written as blob {expected} hash to {actual}")]
    Mismatch { expected: Digest, actual: Digest },
    /// A local file of the store could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The identity and version of a local file: device, inode, size and
/// modification and change times. Two equal stamps mean the file was not
/// written in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        FileStamp {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
            ctime_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// An entry's name and metadata, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// The entry's key within its namespace.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A content-addressed blob store with named entries.
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// The same store without fsync, for data whose loss in a crash is
    /// harmless (usage statistics).
    relaxed: Arc<dyn ObjectStore>,
    /// The local directory (the store itself, or the cache of the bucket
    /// behind it): blobs are memory-mapped and read in parts in place.
    local_root: PathBuf,
    /// The bucket behind the store, whose local cache `store` then is.
    remote: Option<Arc<remote::Remote>>,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore")
            .field("store", &self.store.to_string())
            .field("remote", &self.remote.as_ref().map(|r| r.url()))
            .finish_non_exhaustive()
    }
}

/// Drive a store operation to completion on the calling thread.
///
/// The local store does its file I/O inline when no tokio runtime is
/// current, so a plain executor avoids a hand-off to a blocking-pool thread
/// on every call (it would cost more than the small reads and writes the
/// cache makes). A remote store will bring its own runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

impl BlobStore {
    /// A store in the local directory `root`, created if needed. Writes are
    /// fsynced: what the store acknowledges survives a crash.
    pub fn open_local(root: &FsPath) -> Result<Self, StoreError> {
        let open_error = |message: String| StoreError::Open {
            root: root.display().to_string(),
            message,
        };
        std::fs::create_dir_all(root).map_err(|e| open_error(e.to_string()))?;
        let root = root.canonicalize().map_err(|e| open_error(e.to_string()))?;
        let local = || {
            LocalFileSystem::new_with_prefix(&root)
                .map(|fs| fs.with_automatic_cleanup(true))
                .map_err(|e| open_error(e.to_string()))
        };
        let store = local()?.with_fsync(true);
        let relaxed = local()?;
        Ok(BlobStore {
            store: Arc::new(store),
            relaxed: Arc::new(relaxed),
            local_root: root,
            remote: None,
        })
    }

    /// The store at `url`: `file:///PATH` (or an absolute `/PATH`), a
    /// local or shared directory; or `s3://BUCKET[/PREFIX]`, a bucket
    /// reached with the `AWS_*` environment variables (endpoint, region,
    /// keys, `AWS_ALLOW_HTTP`), checked at once and cached in the local
    /// directory `cache`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Open`] naming `url` for another scheme, a relative
    /// path, a directory that cannot be created, or a bucket that cannot be
    /// listed within 20 s (missing, unreachable, keys refused).
    pub fn open(url: &str, cache: &FsPath) -> Result<Self, StoreError> {
        let path = match url.split_once("://") {
            Some(("s3", _)) => {
                let remote = remote::Remote::open(url)?;
                let local = Self::open_local(cache)?;
                return Ok(BlobStore {
                    remote: Some(Arc::new(remote)),
                    ..local
                });
            }
            Some(("file", path)) => path,
            Some((scheme, _)) => {
                return Err(StoreError::Open {
                    root: url.to_owned(),
                    message: format!(
                        "{scheme}:// stores are not supported; use file:///PATH or \
                         s3://BUCKET/PREFIX"
                    ),
                });
            }
            None => url,
        };
        if !FsPath::new(path).is_absolute() {
            return Err(StoreError::Open {
                root: url.to_owned(),
                message: "give an absolute path, as file:///PATH".to_owned(),
            });
        }
        Self::open_local(FsPath::new(path))
    }

    /// The store's URL when a bucket is behind it (`s3://bucket/prefix`,
    /// never with credentials).
    pub fn remote_url(&self) -> Option<&str> {
        self.remote.as_deref().map(remote::Remote::url)
    }

    /// This machine's part of the store: the store itself when local, its
    /// cache when a bucket is behind it. For what only this machine uses
    /// (compiled artifacts, which are specific to its CPU).
    pub fn local(self: &Arc<Self>) -> Arc<BlobStore> {
        match self.remote {
            None => self.clone(),
            Some(_) => Arc::new(BlobStore {
                store: self.store.clone(),
                relaxed: self.relaxed.clone(),
                local_root: self.local_root.clone(),
                remote: None,
            }),
        }
    }

    /// Copy the blob `digest` from the bucket into the local cache;
    /// `false` without a bucket, or when the bucket lacks it intact.
    fn fetch(&self, digest: &Digest) -> Result<bool, StoreError> {
        match &self.remote {
            None => Ok(false),
            Some(remote) => remote.fetch(&Self::blob_path(digest), digest, &*self.relaxed),
        }
    }

    fn blob_path(digest: &Digest) -> Path {
        let hex = digest.to_hex();
        Path::from(format!("blobs/{}/{hex}", &hex[..2]))
    }

    fn entry_path(namespace: &str, key: &str) -> Path {
        Path::from(format!("entries/{namespace}/{key}"))
    }

    fn object_error(
        operation: &'static str,
        location: &Path,
    ) -> impl FnOnce(object_store::Error) -> StoreError {
        let location = location.to_string();
        move |source| StoreError::Object {
            operation,
            location,
            source,
        }
    }

    /// Store `bytes`; returns their digest. Writing a blob that is already
    /// present (and intact) does nothing. With a bucket, the blob is cached
    /// locally and created in the bucket unless an object is there under
    /// its name.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        self.put_into(&*self.store, bytes)
    }

    /// Like [`BlobStore::put`], without fsync: for blobs whose loss in a
    /// machine crash is harmless because every reader checks the digest and
    /// can do without the blob (task snapshots). A process crash loses
    /// nothing: the bytes are in the page cache.
    pub fn put_unsynced(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        self.put_into(&*self.relaxed, bytes)
    }

    fn put_into(&self, store: &dyn ObjectStore, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        let path = Self::blob_path(&digest);
        if self.get_local(&digest)?.is_none() {
            self.write(store, &path, bytes)?;
        }
        if let Some(remote) = &self.remote {
            remote.put(&path, bytes)?;
        }
        Ok(digest)
    }

    /// The blob named `digest`, if present and intact. A blob whose bytes do
    /// not hash to its name is deleted and reported missing. With a bucket,
    /// a blob not cached yet is fetched into the cache first.
    pub fn get(&self, digest: &Digest) -> Result<Option<Bytes>, StoreError> {
        match self.get_local(digest)? {
            None if self.fetch(digest)? => self.get_local(digest),
            found => Ok(found),
        }
    }

    /// [`BlobStore::get`] from the local directory alone.
    fn get_local(&self, digest: &Digest) -> Result<Option<Bytes>, StoreError> {
        let path = Self::blob_path(digest);
        let bytes = match block_on(async { self.store.get(&path).await?.bytes().await }) {
            Ok(bytes) => bytes,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Self::object_error("read", &path)(e)),
        };
        if Digest::of(&bytes) != *digest {
            self.delete(digest)?;
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// The local file holding the blob `digest`, with its [`FileStamp`],
    /// after checking that its bytes match (a mismatching file is deleted
    /// and `None` returned). `None` too for a store that is not local.
    ///
    /// `known` is the stamp of an earlier successful check of the same
    /// blob: when the file still has exactly that stamp it is not hashed
    /// again. Any rewrite, truncation or replacement changes the stamp (its
    /// ctime cannot be set from user space), so it is hashed then.
    ///
    /// With a bucket, a blob not cached yet is fetched into the cache first.
    pub fn verified_file(
        &self,
        digest: &Digest,
        known: Option<&FileStamp>,
    ) -> Result<Option<(PathBuf, FileStamp)>, StoreError> {
        match self.verified_local_file(digest, known)? {
            None if self.fetch(digest)? => self.verified_local_file(digest, None),
            found => Ok(found),
        }
    }

    /// [`BlobStore::verified_file`] from the local directory alone.
    fn verified_local_file(
        &self,
        digest: &Digest,
        known: Option<&FileStamp>,
    ) -> Result<Option<(PathBuf, FileStamp)>, StoreError> {
        let file = self.local_root.join(Self::blob_path(digest).as_ref());
        let io_error = |source| StoreError::Io {
            path: file.display().to_string(),
            source,
        };
        let stamp = match std::fs::metadata(&file) {
            Ok(metadata) => FileStamp::of(&metadata),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_error(source)),
        };
        if known == Some(&stamp) {
            return Ok(Some((file, stamp)));
        }
        let mut hasher = blake3::Hasher::new();
        match hasher.update_mmap_rayon(&file) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_error(source)),
        }
        if Digest::from_bytes(*hasher.finalize().as_bytes()) != *digest {
            self.delete(digest)?;
            return Ok(None);
        }
        Ok(Some((file, stamp)))
    }

    /// The size in bytes of the blob `digest` as stored (not verified),
    /// in the local directory or else the bucket; `None` when absent.
    pub fn size(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let path = Self::blob_path(digest);
        match block_on(self.store.head(&path)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => match &self.remote {
                Some(remote) => remote.size(&path),
                None => Ok(None),
            },
            Err(e) => Err(Self::object_error("read", &path)(e)),
        }
    }

    /// Remove a blob (absent is fine). With a bucket, only the cached copy:
    /// the bucket is written once by digest and read by other machines.
    pub fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        self.delete_path(&Self::blob_path(digest))
    }

    fn delete_path(&self, path: &Path) -> Result<(), StoreError> {
        match block_on(self.store.delete(path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Self::object_error("delete", path)(e)),
        }
    }

    /// Write the entry `namespace/key` (atomically replacing it).
    pub fn put_entry(&self, namespace: &str, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.write(&*self.store, &Self::entry_path(namespace, key), bytes)
    }

    /// Write the entry `namespace/key` atomically but without fsync: for
    /// data a crash may lose.
    pub fn put_entry_unsynced(
        &self,
        namespace: &str,
        key: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.write(&*self.relaxed, &Self::entry_path(namespace, key), bytes)
    }

    /// Put `bytes` at `path` through `store` (staged and renamed by
    /// `object_store`, so readers see the old or the new object, never half).
    fn write(&self, store: &dyn ObjectStore, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        block_on(store.put(path, PutPayload::from(Bytes::copy_from_slice(bytes))))
            .map_err(Self::object_error("write", path))?;
        Ok(())
    }

    /// Append `bytes` to the entry `namespace/key`, creating it if needed,
    /// without fsync: for logs a crash may shorten. Appends of up to a few
    /// hundred bytes from concurrent processes do not interleave. Kept in the
    /// local directory (never in a bucket): one `write` system call, where
    /// a replacing put costs a file creation and a rename.
    pub fn append_entry(&self, namespace: &str, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        use std::io::Write;
        let file = self
            .local_root
            .join(Self::entry_path(namespace, key).as_ref());
        let io_error = |source| StoreError::Io {
            path: file.display().to_string(),
            source,
        };
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)
        };
        let mut log = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir).map_err(io_error)?;
                }
                open()
            }
            opened => opened,
        }
        .map_err(io_error)?;
        log.write_all(bytes).map_err(io_error)
    }

    /// The entry `namespace/key`, if present.
    pub fn get_entry(&self, namespace: &str, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = Self::entry_path(namespace, key);
        match block_on(async { self.store.get(&path).await?.bytes().await }) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Self::object_error("read", &path)(e)),
        }
    }

    /// Remove an entry (absent is fine).
    pub fn delete_entry(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        self.delete_path(&Self::entry_path(namespace, key))
    }

    /// The entries of a namespace, in key order.
    pub fn list_entries(&self, namespace: &str) -> Result<Vec<EntryMeta>, StoreError> {
        let prefix = Path::from(format!("entries/{namespace}"));
        let objects: Vec<_> = block_on(self.store.list(Some(&prefix)).try_collect())
            .map_err(Self::object_error("list", &prefix))?;
        let mut entries: Vec<EntryMeta> = objects
            .into_iter()
            .filter_map(|meta| {
                Some(EntryMeta {
                    key: meta.location.filename()?.to_owned(),
                    size: meta.size,
                })
            })
            .collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob_file(root: &FsPath, digest: &Digest) -> PathBuf {
        root.join(BlobStore::blob_path(digest).as_ref())
    }

    #[test]
    fn blobs_round_trip_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_local(dir.path()).unwrap();
        let digest = store.put(b"hello").unwrap();
        assert_eq!(digest, Digest::of(b"hello"));
        assert_eq!(Digest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(store.get(&digest).unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(store.put(b"hello").unwrap(), digest);
        assert!(store.get(&Digest::of(b"other")).unwrap().is_none());
        assert_eq!(store.size(&digest).unwrap(), Some(5));
        store.delete(&digest).unwrap();
        assert_eq!(store.size(&digest).unwrap(), None);
    }

    #[test]
    fn a_corrupt_blob_is_missing_and_can_be_stored_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_local(dir.path()).unwrap();
        let digest = store.put(b"precious bytes").unwrap();
        let file = blob_file(&store.local_root, &digest);
        std::fs::write(&file, b"precious bytez").unwrap();
        assert!(store.get(&digest).unwrap().is_none());
        assert!(!file.exists(), "the corrupt blob is removed");
        assert_eq!(store.put(b"precious bytes").unwrap(), digest);
        let (_, stamp) = store.verified_file(&digest, None).unwrap().unwrap();
        assert!(
            store
                .verified_file(&digest, Some(&stamp))
                .unwrap()
                .is_some()
        );
        // Rewriting the file changes its stamp, so a known stamp does not
        // spare it the check.
        std::fs::write(&file, b"precious bytez").unwrap();
        assert!(
            store
                .verified_file(&digest, Some(&stamp))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_store_url_is_a_directory_or_a_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shared");
        let url = format!("file://{}", root.display());
        let store = BlobStore::open(&url, dir.path()).unwrap();
        assert_eq!(store.remote_url(), None);
        let digest = store.put(b"shared").unwrap();
        assert!(blob_file(&root, &digest).exists());
        for (url, message) in [
            ("ftp://host/x", "ftp:// stores are not supported"),
            ("file://relative/x", "give an absolute path"),
            ("s3:///prefix", "no bucket"),
        ] {
            let error = BlobStore::open(url, dir.path()).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("cannot open the store at {url}: ")),
                "{error}"
            );
            assert!(error.contains(message), "{error}");
        }
    }

    #[test]
    fn entries_are_listed_replaced_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_local(dir.path()).unwrap();
        store.put_entry("ns", "b", b"2").unwrap();
        store.put_entry("ns", "a", b"1").unwrap();
        store.put_entry("ns", "a", b"one").unwrap();
        let keys: Vec<_> = store
            .list_entries("ns")
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.size))
            .collect();
        assert_eq!(keys, [("a".to_owned(), 3), ("b".to_owned(), 1)]);
        assert_eq!(
            store.get_entry("ns", "a").unwrap().as_deref(),
            Some(&b"one"[..])
        );
        assert!(store.list_entries("empty").unwrap().is_empty());
        store.delete_entry("ns", "a").unwrap();
        store.delete_entry("ns", "absent").unwrap();
        assert_eq!(store.list_entries("ns").unwrap().len(), 1);
    }
}
