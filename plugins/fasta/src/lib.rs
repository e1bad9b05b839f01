//! Splitter plugin: FASTA records.
//!
//! A record starts at a `>` that begins a line and runs to the next one.
//! Blank lines before the first record are skipped; anything else there is
//! an error naming its line, as is a NUL byte anywhere (binary input).
//! `\r\n` line endings, lowercase sequence, a missing final newline and a
//! UTF-8 byte-order mark are fine: the splitter only looks at line starts.
//! A carriage return that does not end a line (classic-Mac or mixed line
//! endings) is an error naming its line: read as one long line, such a file
//! would lose every record without a word.

use wrun_sdk::{ByteOrderMark, Error, LoneCarriageReturn, Residues, Result, Splitter, Weigh};

/// The `fasta` splitter's state across blocks.
#[derive(Debug)]
pub struct Fasta {
    /// The next byte begins a line.
    at_line_start: bool,
    /// A record has started; from then on only line starts matter.
    in_records: bool,
    /// Newlines seen in earlier blocks.
    lines_before: u64,
    /// Bytes seen in earlier blocks.
    bytes_before: u64,
    bom: ByteOrderMark,
    crs: LoneCarriageReturn,
    residues: Residues,
}

impl Default for Fasta {
    fn default() -> Self {
        Fasta {
            at_line_start: true,
            in_records: false,
            lines_before: 0,
            bytes_before: 0,
            bom: ByteOrderMark::default(),
            crs: LoneCarriageReturn::default(),
            residues: Residues::default(),
        }
    }
}

impl Fasta {
    /// 1-based line number of `block[offset]`.
    fn line_of(&self, block: &[u8], offset: usize) -> u64 {
        self.lines_before + memchr::memchr_iter(b'\n', &block[..offset]).count() as u64 + 1
    }

    /// Before the first record: skip blank lines and find the first `>`.
    /// Returns its offset, or `None` if the block holds only blank lines.
    fn find_first(&mut self, block: &[u8]) -> Result<Option<usize>> {
        for (i, &b) in block.iter().enumerate() {
            match b {
                b'\n' => self.at_line_start = true,
                b'\r' | b' ' | b'\t' => self.at_line_start = false,
                b'>' if self.at_line_start => return Ok(Some(i)),
                b'>' => {
                    let line = self.line_of(block, i);
                    return Err(Error::bad_input(format!(
                        "line {line}: a FASTA header's '>' must be the first character of its line"
                    )));
                }
                _ => {
                    let line = self.line_of(block, i);
                    return Err(Error::bad_input(format!(
                        "line {line}: expected a FASTA header starting with '>', found {}",
                        describe(b)
                    )));
                }
            }
        }
        Ok(None)
    }
}

fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

impl Splitter for Fasta {
    fn split(&mut self, block: &[u8], eof: bool, starts: &mut Vec<u32>) -> Result<()> {
        if u32::try_from(block.len()).is_err() {
            return Err(Error::failed("block longer than 4 GiB"));
        }
        // Content before a NUL byte or a lone carriage return is checked
        // first, so that the error reported is the first one in the input
        // whatever the block boundaries are.
        let nul = memchr::memchr(0, block);
        let lone = self.crs.find(block, eof);
        let clean = &block[..nul.unwrap_or(block.len()).min(lone.unwrap_or(block.len()))];
        let mut from = 0;
        let mark = match self.in_records {
            true => 0,
            false => self.bom.skip(clean),
        };
        if !self.in_records {
            match self.find_first(&clean[mark..])? {
                Some(first) => {
                    self.in_records = true;
                    starts.push((mark + first) as u32);
                    from = mark + first + 1;
                }
                None => from = clean.len(),
            }
        } else if self.at_line_start && block.first() == Some(&b'>') {
            starts.push(0);
        }
        match (nul, lone) {
            (Some(i), lone) if lone.is_none_or(|cr| i < cr) => {
                let line = self.line_of(block, i);
                return Err(Error::bad_input(format!(
                    "line {line} (byte {}): NUL byte: this is binary data, not FASTA",
                    self.bytes_before + i as u64
                )));
            }
            (_, Some(cr)) => {
                // Records before it are reported for nothing: the job stops.
                return Err(LoneCarriageReturn::error(self.line_of(block, cr)));
            }
            _ => {}
        }
        // A `>` right after a newline at or past `from`. `>` is rare in
        // FASTA (one per header), so looking for it alone and checking the
        // byte before is a plain vectorised scan; `memmem` of "\n>" stops
        // at candidate pairs and cost a no-op job 12% of its CPU.
        // Offsets fit in u32: checked above.
        let rest = &block[from..];
        starts.extend(
            memchr::memchr_iter(b'>', rest)
                .filter(|&i| i > 0 && rest[i - 1] == b'\n')
                .map(|i| (from + i) as u32),
        );
        if let Some(&last) = block[mark..].last() {
            self.at_line_start = last == b'\n';
        }
        self.lines_before += memchr::memchr_iter(b'\n', block).count() as u64;
        self.bytes_before += block.len() as u64;
        Ok(())
    }
}

/// A record weighs its residues (the SDK's [`Residues`]): what
/// `--chunk-residues` counts.
impl Weigh for Fasta {
    fn weigh(
        &mut self,
        block: &[u8],
        _eof: bool,
        starts: &[u32],
        weights: &mut Vec<u64>,
    ) -> Result<()> {
        self.residues.weigh(block, starts, weights);
        Ok(())
    }
}

wrun_sdk::export_splitter!(
    Fasta,
    formats = "fasta,fa,fna,faa,ffn,frn,fas,fsa,mpfa",
    weighted
);

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_sdk::testing::{
        Rng, check_line_endings, check_lone_carriage_returns, records, weighed,
    };

    fn all_block_sizes(input: &[u8], expected: &[&[u8]]) {
        for block in (1..=input.len().max(1)).chain([4096]) {
            let got = records::<Fasta>(input, block).unwrap();
            assert_eq!(got, expected, "block size {block}");
        }
    }

    #[test]
    fn records_start_at_line_initial_gt() {
        all_block_sizes(
            b">a x\nACGT\nAC\n>b\nGG\n",
            &[b">a x\nACGT\nAC\n", b">b\nGG\n"],
        );
    }

    #[test]
    fn crlf_blank_lines_lowercase_no_final_newline() {
        all_block_sizes(
            b"\n\r\n>a\r\nacgt\r\n\r\n>b\r\nnnn",
            &[b">a\r\nacgt\r\n\r\n", b">b\r\nnnn"],
        );
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        all_block_sizes(b"\xef\xbb\xbf>a\nAC\n>b\n", &[b">a\nAC\n", b">b\n"]);
    }

    #[test]
    fn gt_inside_a_line_is_not_a_record() {
        all_block_sizes(b">a>b\nAC>GT\n", &[b">a>b\nAC>GT\n"]);
    }

    #[test]
    fn header_only_and_empty_inputs() {
        all_block_sizes(b">only", &[b">only"]);
        assert!(records::<Fasta>(b"", 8).unwrap().is_empty());
        assert!(records::<Fasta>(b"\n\n", 1).unwrap().is_empty());
    }

    #[test]
    fn missing_header_is_an_error_with_its_line() {
        for block in [1, 3, 100] {
            let error = records::<Fasta>(b"\n\nACGT\n>a\n", block).unwrap_err();
            assert_eq!(error.kind(), wrun_sdk::ErrorKind::BadInput);
            assert_eq!(
                error.message(),
                "line 3: expected a FASTA header starting with '>', found 'A'"
            );
        }
        let error = records::<Fasta>(b"  >a\n", 2).unwrap_err();
        assert_eq!(
            error.message(),
            "line 1: a FASTA header's '>' must be the first character of its line"
        );
    }

    #[test]
    fn the_first_error_in_the_input_wins_whatever_the_blocks() {
        for block in [1, 2, 5, 100] {
            let error = records::<Fasta>(b"junk\n\x00", block).unwrap_err();
            assert_eq!(
                error.message(),
                "line 1: expected a FASTA header starting with '>', found 'j'",
                "block {block}"
            );
        }
    }

    #[test]
    fn a_carriage_return_that_ends_no_line_is_an_error_with_its_line() {
        check_lone_carriage_returns::<Fasta>(&[
            (&b">a\rACGT\r>b\rGG\r"[..], 1),
            (b">a\nAC\rGT\n>b\n", 2),
            (b">a\r\nACGT\r\n>b\r\nGG\r", 4),
        ]);
    }

    #[test]
    fn binary_input_is_an_error() {
        let error = records::<Fasta>(b">a\nAC\n\x00\x01", 4).unwrap_err();
        assert_eq!(
            error.message(),
            "line 3 (byte 6): NUL byte: this is binary data, not FASTA"
        );
    }

    /// Random FASTA: records with headers, blank lines, lowercase, and
    /// sequence lines of random lengths.
    fn random_fasta(rng: &mut Rng) -> Vec<u8> {
        let mut text = Vec::new();
        for r in 0..rng.below(6) + 1 {
            text.extend_from_slice(format!(">r{r} d\n").as_bytes());
            for _ in 0..rng.below(4) {
                let len = rng.below(12);
                text.extend((0..len).map(|_| b"ACGTacgtN"[rng.below(9) as usize]));
                text.push(b'\n');
            }
        }
        text
    }

    /// Property: whatever the mix of line endings and the block size, the
    /// records are those of the LF file, or the input is refused.
    #[test]
    fn any_mix_of_line_endings_gives_the_lf_records_or_a_refusal() {
        check_line_endings::<Fasta>(0x11fe_fa57, 400, random_fasta);
    }

    #[test]
    fn a_record_weighs_its_residues_whatever_the_block_size() {
        let input = b"\n>a x\nACGT\r\nAC\n>b\n>c\nGGG";
        for block in 1..=input.len() {
            let got = weighed::<Fasta>(input, block).unwrap();
            assert_eq!(got, [(1, 6), (15, 0), (18, 3)], "block size {block}");
        }
    }
}
