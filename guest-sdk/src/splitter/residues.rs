//! [`Residues`]: the weight of a sequence record, for FASTA and FASTQ
//! splitters.

/// Weighs records by their residues: a record's bytes after its first
/// line, line breaks (`\n`, `\r`) excluded. For FASTA that is the sequence
/// length; for FASTQ, the sequence, the `+` line and the quality. What
/// `--chunk-residues N` (the same as `--chunk-weight N` with such a
/// splitter) counts, so that chunks hold about equal sequence whatever the
/// record lengths.
///
/// It keeps, across blocks, whether the last record's first line has
/// ended; call [`Residues::weigh`] from [`Weigh::weigh`](crate::Weigh::weigh)
/// with every block and the starts the splitter found in it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Residues {
    /// A record has started.
    started: bool,
    /// The last record's first line has not ended yet.
    in_first_line: bool,
}

impl Residues {
    /// Push the weights of `block` whose records start at `starts`
    /// (ascending offsets within it): `starts.len() + 1` residue counts,
    /// as [`Weigh::weigh`](crate::Weigh::weigh) reports them.
    pub fn weigh(&mut self, block: &[u8], starts: &[u32], weights: &mut Vec<u64>) {
        let mut from = 0;
        for &start in starts {
            let start = (start as usize).min(block.len());
            weights.push(self.count(&block[from..start]));
            self.started = true;
            self.in_first_line = true;
            from = start;
        }
        weights.push(self.count(&block[from..]));
    }

    /// Residues in `bytes`, the next bytes of the current record.
    fn count(&mut self, bytes: &[u8]) -> u64 {
        if !self.started {
            return 0;
        }
        let mut rest = bytes;
        if self.in_first_line {
            match memchr::memchr(b'\n', rest) {
                Some(end) => {
                    self.in_first_line = false;
                    rest = &rest[end + 1..];
                }
                None => return 0,
            }
        }
        // One pass of lane counters (`bases::line_endings`): iterating
        // `memchr2` matches stops at every line end, which on 60-column
        // FASTA cost a no-op job 13% of its CPU.
        let breaks = crate::bases::line_endings(rest);
        rest.len() as u64 - breaks
    }
}

#[cfg(test)]
mod tests {
    use super::Residues;

    #[test]
    fn residues_skip_first_lines_and_line_breaks_across_blocks() {
        // Starts of ">a hdr\nAC\r\nGT\n>b\nT\n" in blocks [0..5), [5..12), [12..19).
        let mut residues = Residues::default();
        let mut weights = Vec::new();
        residues.weigh(b"\n>a h", &[1], &mut weights);
        residues.weigh(b"dr\nAC\r\n", &[], &mut weights);
        residues.weigh(b"GT\n>b\nT\n", &[3], &mut weights);
        assert_eq!(weights, [0, 0, 2, 2, 1]);
    }
}
