//! The [`Splitter`] trait: data plugins that find record boundaries.

mod residues;

pub use residues::Residues;

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

/// A splitter that also weighs its records: what each costs a task, in
/// units of its own choosing (residues, expected work, anything).
/// `wrun submit --chunk-weight N` closes a chunk once its records weigh N,
/// and adaptive chunking times tasks per weight unit. Export it with
/// `export_splitter!(S, formats = "...", weighted)`.
///
/// A record may span blocks, so its weight is reported in parts, one per
/// block it touches, and summed by the host: report it all where the
/// record ends, or bit by bit as [`Residues`] does.
pub trait Weigh: Splitter {
    /// Called after every successful [`Splitter::split`], with the same
    /// block, `eof` and the starts it pushed. Push exactly `starts.len() + 1`
    /// weights onto `weights` (empty on entry): first the weight of the
    /// bytes before the first start, which belong to the record that began
    /// in an earlier block (0 before the first record), then for each start
    /// the weight of that record's bytes in `block`.
    fn weigh(
        &mut self,
        block: &[u8],
        eof: bool,
        starts: &[u32],
        weights: &mut Vec<u64>,
    ) -> Result<()>;
}

/// Finds carriage returns that do not end a line: a `\r` not followed by
/// `\n`, as in classic-Mac files (`\r` only) or a stray `\r` inside an LF or
/// CRLF file, however the input is cut into blocks. wrun's rule for every
/// builtin format (`lines`, `fasta`, `fastq`, and the SDK's record
/// parsers): such a file is refused, naming the line, rather than read as
/// lines it does not have (a `\r`-only file would be one long line, and
/// every record in it lost without a word).
#[derive(Debug, Default, Clone, Copy)]
pub struct LoneCarriageReturn {
    /// The previous block ended with `\r`: decided by this block's first
    /// byte.
    pending: bool,
}

impl LoneCarriageReturn {
    /// The offset in `block` (the next block of the input; `eof`: the last
    /// one) of the first lone `\r`, if any. A lone `\r` that ended the
    /// previous block is reported at offset 0: it is on the line that
    /// continues there. Call it once per block, before the block's records
    /// are reported, and process only the bytes before the offset, so that
    /// the first problem in the input is the one reported.
    pub fn find(&mut self, block: &[u8], eof: bool) -> Option<usize> {
        if std::mem::take(&mut self.pending) {
            match block.first() {
                Some(b'\n') => {}
                Some(_) => return Some(0),
                None if eof => return Some(0),
                // An empty block that is not the last decides nothing.
                None => {
                    self.pending = true;
                    return None;
                }
            }
        }
        for i in memchr::memchr_iter(b'\r', block) {
            match block.get(i + 1) {
                Some(b'\n') => {}
                Some(_) => return Some(i),
                None if eof => return Some(i),
                None => self.pending = true,
            }
        }
        None
    }

    /// The error for a lone `\r` on line `line` (counted from 1).
    pub fn error(line: u64) -> crate::Error {
        crate::Error::bad_input(format!(
            "line {line}: a carriage return (\\r) that does not end a line: classic-Mac or \
             mixed line endings, which wrun does not guess at; convert them to \\n (for \
             example `tr '\\r' '\\n' < IN > OUT` for a \\r-only file) and submit again"
        ))
    }
}

/// Whether `bytes` hold a carriage return that does not end a line; for
/// record parsers, which see whole records.
pub(crate) fn has_lone_carriage_return(bytes: &[u8]) -> bool {
    LoneCarriageReturn::default().find(bytes, true).is_some()
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
    use super::{ByteOrderMark, LoneCarriageReturn};

    /// Lone `\r` offsets found, cutting `input` into blocks of `size`,
    /// as offsets in the whole input.
    fn lone(input: &[u8], size: usize) -> Option<usize> {
        let mut finder = LoneCarriageReturn::default();
        let blocks: Vec<&[u8]> = input.chunks(size.max(1)).collect();
        let mut before = 0;
        for (n, block) in blocks.iter().enumerate() {
            if let Some(i) = finder.find(block, n + 1 == blocks.len()) {
                return Some(before + i);
            }
            before += block.len();
        }
        finder.find(&[], true).map(|i| before + i)
    }

    #[test]
    fn lone_carriage_returns_are_found_whatever_the_blocks() {
        for size in 1..8 {
            assert_eq!(lone(b"a\r\nb\r\n", size), None, "CRLF, block {size}");
            assert_eq!(lone(b"a\nb\n", size), None, "LF, block {size}");
            // Reported where the line containing it goes on.
            let cr_only = lone(b"ab\rcd\r", size).unwrap();
            assert!(cr_only == 2 || cr_only == 3, "block {size}: {cr_only}");
            assert_eq!(lone(b"ab\r", size), Some(2), "block {size}");
        }
    }

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
