//! The snapshot blob: what is stored, and how it is encoded and checked.
//!
//! A snapshot is one blob in the content-addressed store, named by the
//! blake3 digest of all its bytes (so the name checks the whole blob):
//!
//! ```text
//! "WRUNSNAP" | format version: u32 LE | manifest length: u32 LE | manifest (postcard) | data
//! ```
//!
//! The manifest lists the 64 KiB pages of linear memory that differ from a
//! freshly instantiated module, each by digest and by where its bytes are:
//! in this blob's data, in an earlier snapshot of the same task (only the
//! pages that changed are stored again), or nowhere (an all-zero page). The
//! task's output so far is kept the same way, in 64 KiB pieces.

use serde::{Deserialize, Serialize};
use wrun_store::Digest;

/// The first bytes of every snapshot blob.
const MAGIC: &[u8; 8] = b"WRUNSNAP";

/// The format this build writes and reads.
pub(crate) const VERSION: u32 = 2;

/// The unit of memory and output a snapshot stores: a wasm page.
pub(crate) const PAGE: usize = 64 << 10;

/// A snapshot that cannot be used, and why. Every variant means the task
/// restarts from an older snapshot or from scratch; none is ever resumed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The blob (or one it builds on) is not in the store, or its bytes do
    /// not match its digest (the store drops such a blob).
    #[error("snapshot {digest} is missing from the store or corrupt")]
    Missing {
        /// The missing blob's digest, in hex.
        digest: String,
    },
    /// The blob is not a snapshot this build understands.
    #[error("snapshot {digest} is malformed: {reason}")]
    Malformed {
        /// The snapshot's digest, in hex.
        digest: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The snapshot belongs to another module, chunk or argument list.
    #[error("snapshot {digest} was taken of {what} than this task's")]
    Mismatch {
        /// The snapshot's digest, in hex.
        digest: String,
        /// What differs, as a phrase (`another module`, `another chunk`,
        /// `other arguments`).
        what: &'static str,
    },
    /// The store failed.
    #[error("cannot read snapshot {digest}: {message}")]
    Store {
        /// The digest of the blob being read, in hex.
        digest: String,
        /// What the store reported.
        message: String,
    },
}

/// A mutable global's value, by its type's bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum GlobalValue {
    I32(u32),
    I64(u64),
    F32(u32),
    F64(u64),
    V128(u128),
}

/// Where a page's (or output piece's) bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Location {
    /// All zero; nothing stored.
    Zero,
    /// In this blob's data, at this offset.
    Here { offset: u64 },
    /// In the earlier snapshot `bases[base]`, at this offset of its data.
    Base { base: u32, offset: u64 },
}

/// One stored page of memory, or piece of output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Piece {
    /// Page index (memory) or piece index (output).
    pub(crate) index: u32,
    /// blake3 of the bytes (of the whole page; of the piece's bytes).
    pub(crate) digest: [u8; 32],
    pub(crate) location: Location,
}

/// Where the task was when the snapshot was taken: always between two
/// calls into the guest, after `wrun_init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cursor {
    /// The next call is `wrun_record` for record `next` of the chunk (with
    /// `unit=chunk`, 0 before the one call and 1 after it).
    Records {
        /// Index of the next record in the chunk, from 0.
        next: u32,
    },
    /// Every record is done and `wrun_step` returned `MORE` some times.
    Steps {
        /// How many times `wrun_step` returned `MORE`.
        done: u64,
    },
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cursor::Records { next } => write!(f, "before record {}", next + 1),
            Cursor::Steps { done } => write!(f, "after step {done}"),
        }
    }
}

/// Everything about a task's state except the bytes of its pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// Digest of the module the job names (before admission added exports).
    pub(crate) module: [u8; 32],
    /// Digest of the chunk's bytes and of the encoded arguments.
    pub(crate) chunk: [u8; 32],
    pub(crate) args: [u8; 32],
    /// The snapshot this one was taken after, in the same task.
    pub(crate) parent: Option<[u8; 32]>,
    /// Earlier snapshots whose data holds some of the pages.
    pub(crate) bases: Vec<[u8; 32]>,
    /// Linear memory size in bytes.
    pub(crate) memory_bytes: u64,
    /// Pages that differ from a fresh instance's, ascending by index.
    pub(crate) pages: Vec<Piece>,
    /// Every mutable global, in the order of [`crate::admission`]'s list.
    pub(crate) globals: Vec<GlobalValue>,
    pub(crate) cursor: Cursor,
    /// The task's output so far: its length and its 64 KiB pieces.
    pub(crate) output_len: u64,
    pub(crate) output: Vec<Piece>,
    /// The task's log so far (it is capped, so it is kept inline).
    pub(crate) log: Vec<u8>,
    /// Fuel consumed up to this point, when fuel is metered.
    pub(crate) fuel_used: Option<u64>,
    /// Bytes the guest has drawn from its secure and insecure random
    /// streams.
    pub(crate) random_drawn: [u64; 2],
    /// The guest's virtual clock, in nanoseconds (version 2 on).
    pub(crate) clock_nanos: u64,
}

/// Length of piece `index` of something `total` bytes long.
pub(crate) fn piece_len(index: u32, total: u64) -> usize {
    (total - u64::from(index) * PAGE as u64).min(PAGE as u64) as usize
}

/// Encode a snapshot blob.
pub(crate) fn encode(manifest: &Manifest, data: &[u8]) -> Vec<u8> {
    let encoded = postcard::to_stdvec(manifest).expect("a manifest always serializes");
    let mut blob = Vec::with_capacity(16 + encoded.len() + data.len());
    blob.extend_from_slice(MAGIC);
    blob.extend_from_slice(&VERSION.to_le_bytes());
    blob.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
    blob.extend_from_slice(&encoded);
    blob.extend_from_slice(data);
    blob
}

/// Decode a snapshot blob into its manifest and data, checking that every
/// piece it holds lies inside the data.
pub(crate) fn decode<'b>(
    digest: &Digest,
    blob: &'b [u8],
) -> Result<(Manifest, &'b [u8]), SnapshotError> {
    let malformed = |reason: String| SnapshotError::Malformed {
        digest: digest.to_hex(),
        reason,
    };
    let header = blob
        .get(..16)
        .ok_or_else(|| malformed(format!("{} bytes is too short", blob.len())))?;
    if &header[..8] != MAGIC {
        return Err(malformed("it does not start with WRUNSNAP".into()));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(malformed(format!(
            "format version {version}; this wrun reads version {VERSION}"
        )));
    }
    let len = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes")) as usize;
    let encoded = blob
        .get(16..16 + len)
        .ok_or_else(|| malformed(format!("the manifest ({len} bytes) is truncated")))?;
    let manifest: Manifest =
        postcard::from_bytes(encoded).map_err(|e| malformed(format!("manifest: {e}")))?;
    let data = &blob[16 + len..];
    check_pieces(&manifest, data.len() as u64).map_err(malformed)?;
    Ok((manifest, data))
}

/// The manifest's pieces are in range, ascending and unique, and pages
/// stay inside the memory.
fn check_pieces(manifest: &Manifest, data_len: u64) -> Result<(), String> {
    let pages = manifest.memory_bytes.div_ceil(PAGE as u64);
    if !manifest.memory_bytes.is_multiple_of(PAGE as u64) {
        return Err(format!(
            "memory size {} is not a whole number of pages",
            manifest.memory_bytes
        ));
    }
    let pieces = manifest.output_len.div_ceil(PAGE as u64);
    for (list, what, count, total) in [
        (&manifest.pages, "page", pages, manifest.memory_bytes),
        (
            &manifest.output,
            "output piece",
            pieces,
            manifest.output_len,
        ),
    ] {
        let mut previous = None;
        for piece in list {
            if u64::from(piece.index) >= count || previous.is_some_and(|p| p >= piece.index) {
                return Err(format!("{what} {} is out of order or range", piece.index));
            }
            previous = Some(piece.index);
            let len = piece_len(piece.index, total) as u64;
            let inside = match piece.location {
                Location::Zero => true,
                Location::Here { offset } => {
                    offset.checked_add(len).is_some_and(|end| end <= data_len)
                }
                Location::Base { base, .. } => (base as usize) < manifest.bases.len(),
            };
            if !inside {
                return Err(format!(
                    "{what} {} points outside the snapshot",
                    piece.index
                ));
            }
        }
    }
    if manifest.output.len() as u64 != pieces {
        return Err(format!(
            "{} output pieces for {} bytes",
            manifest.output.len(),
            manifest.output_len
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            module: [1; 32],
            chunk: [2; 32],
            args: [3; 32],
            parent: None,
            bases: vec![[4; 32]],
            memory_bytes: 3 * PAGE as u64,
            pages: vec![
                Piece {
                    index: 0,
                    digest: [5; 32],
                    location: Location::Here { offset: 0 },
                },
                Piece {
                    index: 2,
                    digest: [6; 32],
                    location: Location::Base { base: 0, offset: 0 },
                },
            ],
            globals: vec![GlobalValue::I32(7), GlobalValue::V128(u128::MAX)],
            cursor: Cursor::Records { next: 3 },
            output_len: 5,
            output: vec![Piece {
                index: 0,
                digest: [8; 32],
                location: Location::Here {
                    offset: PAGE as u64,
                },
            }],
            log: b"log".to_vec(),
            fuel_used: Some(9),
            random_drawn: [10, 11],
            clock_nanos: 12,
        }
    }

    #[test]
    fn a_blob_round_trips() {
        let data = vec![0xab; 2 * PAGE];
        let blob = encode(&manifest(), &data);
        let digest = Digest::of(&blob);
        let (decoded, rest) = decode(&digest, &blob).unwrap();
        assert_eq!(decoded, manifest());
        assert_eq!(rest, &data[..]);
    }

    #[test]
    fn truncated_or_foreign_blobs_are_malformed() {
        let blob = encode(&manifest(), &vec![0; 2 * PAGE]);
        let digest = Digest::of(&blob);
        // Cut in the header, in the manifest, and in the first page.
        for cut in [0, 7, 15, 16, 40, blob.len() - 2 * PAGE + 100] {
            match decode(&digest, &blob[..cut]) {
                Err(SnapshotError::Malformed { .. }) => {}
                Err(other) => panic!("cut at {cut}: {other}"),
                Ok(_) => panic!("cut at {cut}: accepted"),
            }
        }
        let mut other = blob.clone();
        other[8] = VERSION as u8 + 1;
        assert!(
            decode(&digest, &other)
                .unwrap_err()
                .to_string()
                .contains(&format!("version {}", VERSION + 1))
        );
    }

    #[test]
    fn pieces_outside_the_data_or_memory_are_refused() {
        let mut bad = manifest();
        bad.pages[1].index = 3;
        let blob = encode(&bad, &vec![0; 2 * PAGE]);
        assert!(decode(&Digest::of(&blob), &blob).is_err());
        let mut bad = manifest();
        bad.pages[1].location = Location::Base { base: 1, offset: 0 };
        let blob = encode(&bad, &vec![0; 2 * PAGE]);
        assert!(decode(&Digest::of(&blob), &blob).is_err());
        let mut bad = manifest();
        bad.output_len = PAGE as u64 + 1;
        let blob = encode(&bad, &vec![0; 2 * PAGE]);
        assert!(decode(&Digest::of(&blob), &blob).is_err());
    }
}
