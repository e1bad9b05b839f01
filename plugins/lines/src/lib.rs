//! Splitter plugin: every line is a record.
//!
//! A record is a line including its `\n` (or `\r\n`); the last line may lack
//! one. Any bytes are accepted: this is the format for plain text.

use wrun_sdk::{Error, Result, Splitter};

/// The `lines` splitter. Stateless but for knowing whether the first block
/// was seen.
#[derive(Debug, Default)]
pub struct Lines {
    started: bool,
}

impl Splitter for Lines {
    fn split(&mut self, block: &[u8], _eof: bool, starts: &mut Vec<u32>) -> Result<()> {
        if u32::try_from(block.len()).is_err() {
            return Err(Error::failed("block longer than 4 GiB"));
        }
        if !self.started {
            self.started = true;
            starts.push(0);
        }
        // Offsets fit in u32: checked above.
        starts.extend(memchr::memchr_iter(b'\n', block).map(|i| (i + 1) as u32));
        Ok(())
    }
}

wrun_sdk::export_splitter!(Lines, formats = "lines,txt,text,tsv,csv,jsonl,ndjson");

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_sdk::testing::records;

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
    fn final_newline_and_empty_input() {
        assert_eq!(
            records::<Lines>(b"x\ny\n", 3).unwrap(),
            [&b"x\n"[..], b"y\n"]
        );
        assert!(records::<Lines>(b"", 8).unwrap().is_empty());
    }
}
