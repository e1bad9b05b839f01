//! Views: a local directory of named, verified blobs, which a task is
//! shown as its read-only `/data`.

use std::path::PathBuf;

use crate::{BlobStore, Digest, FileStamp, StoreError};

impl BlobStore {
    /// A directory holding each `(name, digest)` blob under its name (a
    /// hard link to the blob's file, checked against its digest first):
    /// `<root>/views/<digest of the list>/<name>`. The same list always
    /// gives the same directory; building it again re-links every name, so
    /// it never shows a blob it did not just check (a name already linked to
    /// the checked blob's file is kept; a blob file whose stamp is unchanged
    /// since its last check is not hashed again, [`BlobStore::checked_file`]). Names must be plain
    /// file names (no `/`, not `.` or `..`); the caller checks them.
    ///
    /// # Errors
    ///
    /// [`StoreError::Missing`] for a blob the store does not hold intact;
    /// [`StoreError::Io`] when the directory or a link cannot be made.
    pub fn view(&self, files: &[(String, Digest)]) -> Result<PathBuf, StoreError> {
        let root = &self.local_root;
        let listing: String = files
            .iter()
            .map(|(name, digest)| format!("{name}\0{digest}\n"))
            .collect();
        let dir = root
            .join("views")
            .join(Digest::of(listing.as_bytes()).to_hex());
        let io_error = |path: &std::path::Path| {
            let path = path.display().to_string();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        for (name, digest) in files {
            let blob = self
                .checked_file(digest)?
                .ok_or(StoreError::Missing { digest: *digest })?;
            let named = dir.join(name);
            if same_file(&blob, &named) {
                continue;
            }
            // Linked under a name of this thread's, then renamed over the
            // view's: a reader sees the old link or the new, never none.
            let staged = dir.join(format!(
                ".{name}.{}.{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_file(&staged);
            std::fs::hard_link(&blob, &staged).map_err(io_error(&staged))?;
            std::fs::rename(&staged, &named).map_err(io_error(&named))?;
        }
        Ok(dir)
    }
}

/// The namespace of the stamps of blob files already checked: a large
/// reference is hashed once, not at every job that uses it.
const CHECKED: &str = "checked";

impl BlobStore {
    /// [`BlobStore::verified_file`] that remembers each check: a file whose
    /// stamp is the one recorded when it last hashed right is not hashed
    /// again (any rewrite changes the stamp). `None` when the blob is
    /// absent, corrupt (then deleted) or the store is not local. With a
    /// bucket, a blob not cached yet is fetched into the cache first.
    pub(crate) fn checked_file(&self, digest: &Digest) -> Result<Option<PathBuf>, StoreError> {
        match self.local_file(digest)? {
            None if self.fetch(digest)? => self.local_file(digest),
            found => Ok(found),
        }
    }

    /// [`BlobStore::checked_file`] from the local directory alone.
    pub(crate) fn local_file(&self, digest: &Digest) -> Result<Option<PathBuf>, StoreError> {
        let key = digest.to_hex();
        let known: Option<FileStamp> = self
            .get_entry(CHECKED, &key)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let Some((file, stamp)) = self.verified_local_file(digest, known.as_ref())? else {
            return Ok(None);
        };
        if known != Some(stamp) {
            self.record_checked(digest, &stamp);
        }
        Ok(Some(file))
    }

    /// Record that the blob file of `digest` hashed right with `stamp`.
    /// Best effort: without the record the next use hashes the file again.
    pub(crate) fn record_checked(&self, digest: &Digest, stamp: &FileStamp) {
        let json = serde_json::to_vec(stamp).expect("stamps serialize");
        let _ = self.put_entry_unsynced(CHECKED, &digest.to_hex(), &json);
    }
}

/// Whether `a` and `b` are links to one file (`false` if either is absent).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_names_verified_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_local(dir.path()).unwrap();
        let a = store.put(b"reference a").unwrap();
        let b = store.put(b"reference b").unwrap();
        let files = [("a.fa".to_owned(), a), ("b".to_owned(), b)];
        let view = store.view(&files).unwrap();
        assert_eq!(std::fs::read(view.join("a.fa")).unwrap(), b"reference a");
        assert_eq!(std::fs::read(view.join("b")).unwrap(), b"reference b");
        assert_eq!(
            store.view(&files).unwrap(),
            view,
            "the same list, the same view"
        );
        let names = std::fs::read_dir(&view).unwrap().count();
        assert_eq!(names, 2, "no staged link is left behind");
        let missing = Digest::of(b"never stored");
        let error = store.view(&[("c".to_owned(), missing)]).unwrap_err();
        assert!(matches!(error, StoreError::Missing { digest } if digest == missing));
    }
}
