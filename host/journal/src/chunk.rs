//! Where a chunk lies in its job's input.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a chunk lies in its job's input: a byte range of the input (after
/// decompression, when the input is compressed) and the records it holds.
/// A chunk's index, its number from 0 in input order, is its key beside
/// this. The field names are part of `wrun status JOB --json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkPos {
    /// Offset of the chunk's first byte in the input, in bytes.
    pub offset: u64,
    /// Length of the chunk, in bytes.
    pub len: u64,
    /// Index of the chunk's first record in the input, from 0.
    pub first_record: u64,
    /// Number of records in the chunk.
    pub records: u64,
}

impl ChunkPos {
    /// Offset just past the chunk's last byte, in bytes.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// `records 11..20, bytes 100..250`: records counted from 1, both ends
/// included; bytes counted from 0, the end excluded.
impl fmt::Display for ChunkPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "records {}..{}, bytes {}..{}",
            self.first_record + 1,
            self.first_record + self.records,
            self.offset,
            self.end()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_records_from_one_and_bytes_from_zero() {
        let pos = ChunkPos {
            offset: 100,
            len: 150,
            first_record: 10,
            records: 10,
        };
        assert_eq!(pos.end(), 250);
        assert_eq!(pos.to_string(), "records 11..20, bytes 100..250");
    }
}
