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

/// Skips a UTF-8 byte-order mark at the start of an input, however the
/// input is cut into blocks (files saved by Windows tools often start with
/// one). Bytes of an incomplete mark are skipped too: no text format
/// starts with them.
#[derive(Debug, Default, Clone, Copy)]
pub struct ByteOrderMark {
    state: MarkState,
}

#[derive(Debug, Clone, Copy)]
enum MarkState {
    /// This many bytes of the mark have been seen.
    Matching(usize),
    /// Past the mark, or there was none.
    Done,
}

impl Default for MarkState {
    fn default() -> Self {
        MarkState::Matching(0)
    }
}

impl ByteOrderMark {
    const MARK: &'static [u8] = b"\xef\xbb\xbf";

    /// How many bytes at the start of `block` (the next block of the input)
    /// belong to a leading mark.
    pub fn skip(&mut self, block: &[u8]) -> usize {
        let mut skipped = 0;
        while let MarkState::Matching(matched) = self.state {
            if matched == Self::MARK.len() {
                self.state = MarkState::Done;
                break;
            }
            match block.get(skipped) {
                None => break,
                Some(&b) if b == Self::MARK[matched] => {
                    self.state = MarkState::Matching(matched + 1);
                    skipped += 1;
                }
                Some(_) => self.state = MarkState::Done,
            }
        }
        skipped
    }
}

#[cfg(test)]
mod tests {
    use super::ByteOrderMark;

    #[test]
    fn a_mark_is_skipped_across_blocks_and_only_at_the_start() {
        let mut mark = ByteOrderMark::default();
        assert_eq!(mark.skip(b"\xef"), 1);
        assert_eq!(mark.skip(b""), 0);
        assert_eq!(mark.skip(b"\xbb\xbf>a"), 2);
        assert_eq!(mark.skip(b"\xef\xbb\xbf"), 0);
        let mut none = ByteOrderMark::default();
        assert_eq!(none.skip(b">a\n"), 0);
        assert_eq!(none.skip(b"\xef\xbb\xbf"), 0);
    }
}
