//! Splitter plugin: FASTQ records, validated.
//!
//! A record is four lines: an `@` header, the sequence, a `+` separator and
//! the quality, as long as the sequence. Every record is checked as it
//! streams past, and the first problem in the input is an error naming its
//! line: a header without `@`, a missing `+`, a quality of the wrong length,
//! a record cut short by the end of the input, a NUL byte (binary input).
//! Blank lines between records, `\r\n` line endings, a missing final
//! newline and a UTF-8 byte-order mark are fine; a record's sequence and
//! quality may be empty. A carriage return that does not end a line
//! (classic-Mac or mixed line endings) is an error naming its line.

use wrun_sdk::{ByteOrderMark, Error, LoneCarriageReturn, Residues, Result, Splitter, Weigh};

/// The lines of a record, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Header,
    Sequence,
    Separator,
    Quality,
}

/// The line being read.
#[derive(Debug, Default, Clone, Copy)]
struct Current {
    /// Bytes so far, without its `\n`.
    len: u64,
    first: Option<u8>,
    last: Option<u8>,
}

impl Current {
    /// Length without a trailing `\r`.
    fn content_len(&self) -> u64 {
        self.len - u64::from(self.last == Some(b'\r'))
    }
}

/// The `fastq` splitter's state across blocks.
#[derive(Debug)]
pub struct Fastq {
    /// Which line of a record the current line is.
    expect: Line,
    current: Current,
    /// 1-based number of the current line.
    line: u64,
    /// Line number of the current record's header.
    record_line: u64,
    /// Length of the current record's sequence.
    sequence_len: u64,
    /// Bytes of the input before this block.
    bytes_before: u64,
    bom: ByteOrderMark,
    crs: LoneCarriageReturn,
    residues: Residues,
}

impl Default for Fastq {
    fn default() -> Self {
        Fastq {
            expect: Line::Header,
            current: Current::default(),
            line: 1,
            record_line: 0,
            sequence_len: 0,
            bytes_before: 0,
            bom: ByteOrderMark::default(),
            crs: LoneCarriageReturn::default(),
            residues: Residues::default(),
        }
    }
}

fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

impl Fastq {
    /// The current line gets `bytes` (no `\n` among them), starting at
    /// `offset` in the block; a record starting there is pushed.
    fn extend(&mut self, bytes: &[u8], offset: usize, starts: &mut Vec<u32>) -> Result<()> {
        let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
            return Ok(());
        };
        if self.current.first.is_none() {
            self.current.first = Some(first);
            match self.expect {
                Line::Header if first == b'@' => {
                    self.record_line = self.line;
                    starts.push(offset as u32);
                }
                // A blank line (maybe CRLF) where a header may start.
                Line::Header if first == b'\r' => {}
                Line::Header => {
                    return Err(Error::bad_input(format!(
                        "line {}: expected a FASTQ header starting with '@', found {}",
                        self.line,
                        describe(first)
                    )));
                }
                Line::Separator if first != b'+' => {
                    return Err(Error::bad_input(format!(
                        "line {}: expected the '+' line of the record at line {}, found {}",
                        self.line,
                        self.record_line,
                        describe(first)
                    )));
                }
                _ => {}
            }
        } else if self.expect == Line::Header && self.current.first == Some(b'\r') {
            // `\r` then more: not a blank line after all.
            return Err(Error::bad_input(format!(
                "line {}: expected a FASTQ header starting with '@', found {}",
                self.line,
                describe(first)
            )));
        }
        self.current.len += bytes.len() as u64;
        self.current.last = Some(last);
        Ok(())
    }

    /// The current line ended (at a `\n`, or at the end of the input).
    fn end_line(&mut self) -> Result<()> {
        let current = std::mem::take(&mut self.current);
        let len = current.content_len();
        self.expect = match self.expect {
            Line::Header if len == 0 => Line::Header,
            Line::Header => Line::Sequence,
            Line::Sequence => {
                self.sequence_len = len;
                Line::Separator
            }
            Line::Separator if current.first.is_none() => {
                return Err(Error::bad_input(format!(
                    "line {}: expected the '+' line of the record at line {}, found an empty line",
                    self.line, self.record_line
                )));
            }
            Line::Separator => Line::Quality,
            Line::Quality if len != self.sequence_len => {
                return Err(Error::bad_input(format!(
                    "line {}: the quality has {len} characters but the sequence of the record \
                     at line {} has {}",
                    self.line, self.record_line, self.sequence_len
                )));
            }
            Line::Quality => Line::Header,
        };
        self.line += 1;
        Ok(())
    }
}

impl Splitter for Fastq {
    fn split(&mut self, block: &[u8], eof: bool, starts: &mut Vec<u32>) -> Result<()> {
        if u32::try_from(block.len()).is_err() {
            return Err(Error::failed("block longer than 4 GiB"));
        }
        let mut pos = self.bom.skip(block);
        // Content before a NUL byte or a lone carriage return is checked
        // first, so that the error reported is the first one in the input
        // whatever the blocks.
        let nul = memchr::memchr(0, block);
        let lone = self.crs.find(block, eof);
        let clean = &block[..nul.unwrap_or(block.len()).min(lone.unwrap_or(block.len()))];
        let mut newlines = memchr::memchr_iter(b'\n', clean);
        loop {
            let end = newlines.next().filter(|&i| i >= pos);
            let stop = end.unwrap_or(clean.len());
            self.extend(&clean[pos.min(stop)..stop], pos, starts)?;
            match end {
                Some(i) => {
                    self.end_line()?;
                    pos = i + 1;
                }
                None => break,
            }
        }
        match (nul, lone) {
            (Some(i), lone) if lone.is_none_or(|cr| i < cr) => {
                return Err(Error::bad_input(format!(
                    "line {} (byte {}): NUL byte: this is binary data, not FASTQ",
                    self.line,
                    self.bytes_before + i as u64
                )));
            }
            (_, Some(_)) => return Err(LoneCarriageReturn::error(self.line)),
            _ => {}
        }
        self.bytes_before += block.len() as u64;
        if eof {
            if self.current.first.is_some() {
                self.end_line()?;
            }
            if self.expect != Line::Header {
                return Err(Error::bad_input(format!(
                    "line {}: the input ends inside the record at line {}",
                    self.line, self.record_line
                )));
            }
        }
        Ok(())
    }
}

/// A record weighs its residues (the SDK's [`Residues`]): what
/// `--chunk-residues` counts.
impl Weigh for Fastq {
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

wrun_sdk::export_splitter!(Fastq, formats = "fastq,fq", weighted);

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_sdk::testing::{
        Rng, check_line_endings, check_lone_carriage_returns, records, weighed,
    };

    fn all_block_sizes(input: &[u8], expected: &[&[u8]]) {
        for block in (1..=input.len().max(1)).chain([4096]) {
            let got = records::<Fastq>(input, block).unwrap();
            assert_eq!(got, expected, "block size {block}");
        }
    }

    fn error(input: &[u8]) -> String {
        let mut messages: Vec<String> = (1..=input.len().max(1))
            .chain([4096])
            .map(|block| {
                records::<Fastq>(input, block)
                    .unwrap_err()
                    .message()
                    .to_owned()
            })
            .collect();
        messages.dedup();
        assert_eq!(
            messages.len(),
            1,
            "the same error for any block size: {messages:?}"
        );
        messages.remove(0)
    }

    #[test]
    fn four_line_records() {
        all_block_sizes(
            b"@r1 x\nACGT\n+\nIIII\n@r2\nGG\n+r2\n#I\n",
            &[b"@r1 x\nACGT\n+\nIIII\n", b"@r2\nGG\n+r2\n#I\n"],
        );
    }

    #[test]
    fn quality_may_start_with_an_at_sign() {
        all_block_sizes(
            b"@r\nAC\n+\n@@\n@s\nA\n+\n@\n",
            &[b"@r\nAC\n+\n@@\n", b"@s\nA\n+\n@\n"],
        );
    }

    #[test]
    fn crlf_blank_lines_bom_empty_sequence_no_final_newline() {
        all_block_sizes(
            b"\xef\xbb\xbf\r\n@a\r\nacgt\r\n+\r\nIIII\r\n\n@e\n\n+\n\n@b\nN\n+\nI",
            &[
                b"@a\r\nacgt\r\n+\r\nIIII\r\n\n",
                b"@e\n\n+\n\n",
                b"@b\nN\n+\nI",
            ],
        );
        assert!(records::<Fastq>(b"", 8).unwrap().is_empty());
        assert!(records::<Fastq>(b"\n\r\n", 1).unwrap().is_empty());
    }

    #[test]
    fn malformed_records_are_errors_naming_their_line() {
        assert_eq!(
            error(b"@r\nAC\n+\nII\nACGT\n"),
            "line 5: expected a FASTQ header starting with '@', found 'A'"
        );
        assert_eq!(
            error(b">r\nAC\n"),
            "line 1: expected a FASTQ header starting with '@', found '>'"
        );
        assert_eq!(
            error(b"@r\nAC\n-\nII\n"),
            "line 3: expected the '+' line of the record at line 1, found '-'"
        );
        assert_eq!(
            error(b"@r\nAC\n+\nII\n@s\nACG\n+\nII\n"),
            "line 8: the quality has 2 characters but the sequence of the record at line 5 has 3"
        );
        assert_eq!(
            error(b"@r\nAC\n+\nII\n@s\nACG\n"),
            "line 7: the input ends inside the record at line 5"
        );
        assert_eq!(
            error(b"@r\nAC\n+\nI\x00"),
            "line 4 (byte 9): NUL byte: this is binary data, not FASTQ"
        );
    }

    #[test]
    fn a_carriage_return_that_ends_no_line_is_an_error_with_its_line() {
        check_lone_carriage_returns::<Fastq>(&[
            (&b"@a\rAC\r+\rII\r"[..], 1),
            (b"@a\nAC\n+\nI\rI\n", 4),
            (b"@a\r\nAC\r\n+\r\nII\r\n@b\r\nG\r", 6),
        ]);
    }

    /// Random FASTQ: four-line records of random lengths.
    fn random_fastq(rng: &mut Rng) -> Vec<u8> {
        let mut text = Vec::new();
        for r in 0..rng.below(6) + 1 {
            let len = rng.below(12) as usize;
            let seq: Vec<u8> = (0..len).map(|_| b"ACGTN"[rng.below(5) as usize]).collect();
            text.extend_from_slice(format!("@r{r}\n").as_bytes());
            text.extend_from_slice(&seq);
            text.extend_from_slice(b"\n+\n");
            text.extend(std::iter::repeat_n(b'I', len));
            text.push(b'\n');
        }
        text
    }

    /// Property: whatever the mix of line endings and the block size, the
    /// records are those of the LF file, or the input is refused.
    #[test]
    fn any_mix_of_line_endings_gives_the_lf_records_or_a_refusal() {
        check_line_endings::<Fastq>(0x11fe_fa59, 400, random_fastq);
    }

    #[test]
    fn a_record_weighs_its_residues_whatever_the_block_size() {
        let input = b"@a x\nACGT\r\n+\r\nIIII\r\n\n@b\nA\n+b\nI\n";
        for block in 1..=input.len() {
            let got = weighed::<Fastq>(input, block).unwrap();
            assert_eq!(got, [(0, 9), (21, 4)], "block size {block}");
        }
    }
}
