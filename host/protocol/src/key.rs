//! The cluster key: a 32-byte secret shared by the broker, its nodes and
//! its clients, from which every message's authentication key is derived.
//!
//! The key file holds 64 hex digits and a newline. It is created with mode
//! 0600 and refused when anyone but its owner may read it: a key others can
//! read authenticates them too.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A cluster key could not be made, written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system gave no randomness.
    #[error("cannot generate a key: no randomness from the operating system: {0}")]
    Random(String),
    /// The key file exists already (keygen does not overwrite it).
    #[error("{0}: a key file exists there already; remove it first to replace the key")]
    Exists(PathBuf),
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The file's permissions let others read it.
    #[error(
        "{path}: the key file is readable by other users (mode {mode:o}); \
         `chmod 600 {path}` and try again"
    )]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold a key.
    #[error("{0}: not a wrun cluster key (expected 64 hex digits, as `wrun keygen` writes)")]
    Malformed(PathBuf),
}

/// The secret every peer of a cluster shares.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    /// The key peers use when none is configured. It is public, so it only
    /// keeps honest peers of different versions apart: a broker without a
    /// real key accepts only loopback connections.
    pub fn loopback_default() -> ClusterKey {
        ClusterKey(blake3::derive_key(
            "wrun 2026 loopback cluster key, not a secret",
            b"",
        ))
    }

    /// A fresh random key.
    pub fn generate() -> Result<ClusterKey, KeyError> {
        let mut key = [0; 32];
        getrandom::fill(&mut key).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(ClusterKey(key))
    }

    /// A key from its bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> ClusterKey {
        ClusterKey(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Write the key to a new file `path`, readable by its owner only.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(KeyError::Exists(path.to_owned()));
            }
            Err(e) => return Err(io(e)),
        };
        let hex = blake3::Hash::from_bytes(self.0).to_hex();
        file.write_all(format!("{hex}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)
    }

    /// Read the key file `path`, refusing one that others may read.
    pub fn read(path: &Path) -> Result<ClusterKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mode = fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.to_owned(),
                mode: mode & 0o777,
            });
        }
        let text = fs::read_to_string(path).map_err(io)?;
        blake3::Hash::from_hex(text.trim())
            .map(|hash| ClusterKey(*hash.as_bytes()))
            .map_err(|_| KeyError::Malformed(path.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        let key = ClusterKey::generate().unwrap();
        key.write_new(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(ClusterKey::read(&path).unwrap(), key);
        assert!(matches!(key.write_new(&path), Err(KeyError::Exists(_))));
    }

    #[test]
    fn an_exposed_or_malformed_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        ClusterKey::generate().unwrap().write_new(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            ClusterKey::read(&path),
            Err(KeyError::Exposed { mode: 0o644, .. })
        ));
        fs::write(&path, "not a key\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            ClusterKey::read(&path),
            Err(KeyError::Malformed(_))
        ));
    }
}
