//! Splitter plugin: every line is a record.
//!
//! A record is a line including its `\n` (or `\r\n`); the last line may lack
//! one. Any bytes are accepted but a carriage return that does not end a
//! line (classic-Mac or mixed line endings), which is refused naming its
//! line rather than read as lines the file does not have.

use wrun_sdk::{Error, LoneCarriageReturn, Result, Splitter};

/// The `lines` splitter's state across blocks.
#[derive(Debug, Default)]
pub struct Lines {
    started: bool,
    /// Lines ended in earlier blocks.
    lines_before: u64,
    crs: LoneCarriageReturn,
}

impl Splitter for Lines {
    fn split(&mut self, block: &[u8], eof: bool, starts: &mut Vec<u32>) -> Result<()> {
        if u32::try_from(block.len()).is_err() {
            return Err(Error::failed("block longer than 4 GiB"));
        }
        if !self.started {
            self.started = true;
            starts.push(0);
        }
        let lone = self.crs.find(block, eof);
        let clean = &block[..lone.unwrap_or(block.len())];
        let before = starts.len();
        // Offsets fit in u32: checked above.
        starts.extend(memchr::memchr_iter(b'\n', clean).map(|i| (i + 1) as u32));
        // One start per line end in this block.
        self.lines_before += (starts.len() - before) as u64;
        match lone {
            Some(_) => Err(LoneCarriageReturn::error(self.lines_before + 1)),
            None => Ok(()),
        }
    }
}

wrun_sdk::export_splitter!(Lines, formats = "lines,txt,text,tsv,csv,jsonl,ndjson");

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_sdk::testing::{check_line_endings, check_lone_carriage_returns, records};

    #[test]
    fn every_line_is_a_record_whatever_the_block_size() {
        let input = b"a\nbb\r\n\nccc";
        for block in [1, 2, 3, 64] {
            let got = records::<Lines>(input, block).unwrap();
            assert_eq!(
                got,
                [&b"a\n"[..], b"bb\r\n", b"\n", b"ccc"],
                "block {block}"
            );
        }
    }

    #[test]
    fn a_carriage_return_that_ends_no_line_is_refused_with_its_line() {
        check_lone_carriage_returns::<Lines>(&[
            (&b"a\rb\rc\r"[..], 1),
            (b"a\nb\rc\n", 2),
            (b"a\r\nb\r\nc\r", 3),
        ]);
    }

    #[test]
    fn final_newline_and_empty_input() {
        assert_eq!(
            records::<Lines>(b"x\ny\n", 3).unwrap(),
            [&b"x\n"[..], b"y\n"]
        );
        assert!(records::<Lines>(b"", 8).unwrap().is_empty());
    }

    /// Property: whatever the mix of line endings and the block size, the
    /// lines are those of the LF file, or the input is refused.
    #[test]
    fn any_mix_of_line_endings_gives_the_lf_lines_or_a_refusal() {
        check_line_endings::<Lines>(0x11fe_7e57, 400, |rng| {
            let mut text = Vec::new();
            for _ in 0..rng.below(12) + 1 {
                let len = rng.below(10);
                text.extend((0..len).map(|_| b"ab c\t,"[rng.below(6) as usize]));
                text.push(b'\n');
            }
            text
        });
    }
}
