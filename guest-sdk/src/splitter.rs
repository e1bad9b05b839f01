//! The [`Splitter`] trait: data plugins that find record boundaries.

use crate::Result;

/// A data plugin: finds where records start in a stream of input blocks.
///
/// The host reads the input in blocks and hands them to `split` in order,
/// once each; the last has `eof` set (it may be empty). For every record
/// that starts in `block`, push its offset within `block` onto `starts`, in
/// ascending order. An offset equal to `block.len()` means "a record starts
/// at the first byte of the next block" (for example after a final newline).
/// Bytes before the first reported start are not part of any record.
///
/// State that spans blocks (was the previous block's last byte a newline?
/// which line are we on?) lives in `self`; one value sees the whole input.
pub trait Splitter: Default {
    /// Scan the next block.
    fn split(&mut self, block: &[u8], eof: bool, starts: &mut Vec<u32>) -> Result<()>;
}
