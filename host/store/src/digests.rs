//! Digests of files outside the store (modules, reference data),
//! remembered by each file's [`FileStamp`]: a file unchanged since it was
//! last hashed is not hashed again. The stamp includes the size, the inode
//! and the change time, which user space cannot set, so a replacement, a
//! change of size or a write in a later tick of the file system's clock
//! makes it hash again (as `make` and the artifact cache trust the same
//! stamps).
//!
//! Entries `file-digests/<blake3 of the absolute path>` hold the stamp and
//! the digest, written without fsync (a crash costs one re-hash).

use std::fs::File;
use std::io::Read;
use std::path::Path as FsPath;

use serde::{Deserialize, Serialize};

use crate::{BlobStore, Digest, FileStamp};

/// The namespace of the remembered digests.
const DIGESTS: &str = "file-digests";

/// What is remembered of one file.
#[derive(Serialize, Deserialize)]
struct Remembered {
    stamp: FileStamp,
    digest: String,
}

impl BlobStore {
    /// Read the whole file at `path` and its blake3 digest, hashing the
    /// bytes only when the file's stamp is not the one remembered with a
    /// digest (the stamp is taken from the open file before and after
    /// reading, so a file written meanwhile is hashed).
    ///
    /// # Errors
    ///
    /// The I/O error when the file cannot be opened or read.
    pub fn read_digested(&self, path: &FsPath) -> std::io::Result<(Vec<u8>, Digest)> {
        let mut file = File::open(path)?;
        let before = stamp(&file)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let after = stamp(&file)?;
        if before == after
            && let Some(digest) = self.recall(path, &after)
        {
            return Ok((bytes, digest));
        }
        let digest = Digest::of(&bytes);
        if before == after {
            self.remember(path, &after, &digest);
        }
        Ok((bytes, digest))
    }

    /// The blake3 digest and size in bytes of the file at `path`, hashed
    /// (memory-mapped, on all cores) only when its stamp is not the one
    /// remembered with a digest.
    ///
    /// # Errors
    ///
    /// The I/O error when the file cannot be opened or read.
    pub fn file_digest(&self, path: &FsPath) -> std::io::Result<(Digest, u64)> {
        let file = File::open(path)?;
        let before = stamp(&file)?;
        if let Some(digest) = self.recall(path, &before) {
            return Ok((digest, before.size));
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update_mmap_rayon(path)?;
        let digest = Digest::from_bytes(*hasher.finalize().as_bytes());
        if stamp(&file)? == before && hasher.count() == before.size {
            self.remember(path, &before, &digest);
        }
        Ok((digest, hasher.count()))
    }

    /// The digest remembered for `path` with exactly `stamp`.
    fn recall(&self, path: &FsPath, stamp: &FileStamp) -> Option<Digest> {
        let bytes = self.get_entry(DIGESTS, &key(path)).ok()??;
        let remembered: Remembered = serde_json::from_slice(&bytes).ok()?;
        (remembered.stamp == *stamp)
            .then(|| Digest::from_hex(&remembered.digest))
            .flatten()
    }

    /// Remember `digest` for `path` at `stamp`. Best effort: without it the
    /// next read hashes the file again.
    fn remember(&self, path: &FsPath, stamp: &FileStamp, digest: &Digest) {
        let remembered = Remembered {
            stamp: *stamp,
            digest: digest.to_hex(),
        };
        let json = serde_json::to_vec(&remembered).expect("stamps serialize");
        let _ = self.put_entry_unsynced(DIGESTS, &key(path), &json);
    }
}

/// The stamp of an open file.
fn stamp(file: &File) -> std::io::Result<FileStamp> {
    Ok(FileStamp::of(&file.metadata()?))
}

/// The entry key of `path`: the blake3 of its absolute form.
fn key(path: &FsPath) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    blake3::hash(absolute.as_os_str().as_encoded_bytes())
        .to_hex()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_again_only_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_local(&dir.path().join("store")).unwrap();
        let path = dir.path().join("module.wasm");
        std::fs::write(&path, b"first").unwrap();
        let (bytes, digest) = store.read_digested(&path).unwrap();
        assert_eq!(
            (bytes.as_slice(), digest),
            (&b"first"[..], Digest::of(b"first"))
        );
        assert_eq!(store.file_digest(&path).unwrap(), (Digest::of(b"first"), 5));

        // Remembered: a forged entry for the same stamp is believed, which
        // shows that the file was not hashed again.
        let stamp = stamp(&File::open(&path).unwrap()).unwrap();
        let forged = Digest::of(b"forged");
        store.remember(&path, &stamp, &forged);
        assert_eq!(store.read_digested(&path).unwrap().1, forged);
        assert_eq!(store.file_digest(&path).unwrap().0, forged);

        // A write changes the stamp, so the new bytes are hashed.
        std::fs::write(&path, b"changed").unwrap();
        assert_eq!(
            store.read_digested(&path).unwrap().1,
            Digest::of(b"changed")
        );
        assert_eq!(
            store.file_digest(&path).unwrap(),
            (Digest::of(b"changed"), 7)
        );
    }
}
