//! Test guest: a splitter plugin whose records are lines, each weighing the
//! first decimal number in it (0 when it has none): a user plugin that
//! weighs records by something only it knows. A line's weight is reported
//! in the block where the line ends, so the host sums parts across blocks.

use wrun_sdk::{Error, Result, Splitter, Weigh};

/// State across blocks.
#[derive(Debug, Default)]
pub struct WeighLines {
    started: bool,
    /// The current line's first number so far, once a digit was seen.
    number: Option<u64>,
    /// The current line's first number has ended.
    number_done: bool,
    /// The current line has bytes.
    in_line: bool,
}

impl Splitter for WeighLines {
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

impl Weigh for WeighLines {
    fn weigh(
        &mut self,
        block: &[u8],
        eof: bool,
        starts: &[u32],
        weights: &mut Vec<u64>,
    ) -> Result<()> {
        weights.resize(starts.len() + 1, 0);
        // The segment of the byte at `i`: how many starts are at or before it.
        let mut segment = 0;
        for (i, &b) in block.iter().enumerate() {
            while starts.get(segment).is_some_and(|&s| s as usize <= i) {
                segment += 1;
            }
            self.in_line = true;
            match b {
                b'0'..=b'9' if !self.number_done => {
                    let digit = u64::from(b - b'0');
                    let number = self.number.unwrap_or(0);
                    self.number = Some(number.saturating_mul(10).saturating_add(digit));
                }
                b'\n' => weights[segment] += self.end_line(),
                _ => self.number_done |= self.number.is_some(),
            }
        }
        if eof && self.in_line {
            // A last line without a final newline.
            weights[starts.len()] += self.end_line();
        }
        Ok(())
    }
}

impl WeighLines {
    /// The current line ended: its weight.
    fn end_line(&mut self) -> u64 {
        let weight = self.number.take().unwrap_or(0);
        self.number_done = false;
        self.in_line = false;
        weight
    }
}

wrun_sdk::export_splitter!(WeighLines, weighted);

#[cfg(test)]
mod tests {
    use super::WeighLines;
    use wrun_sdk::testing::weighed;

    #[test]
    fn a_line_weighs_its_first_number_whatever_the_block_size() {
        let input = b"12 a 7\nnone\nx40y\n3";
        for block in 1..=input.len() {
            let got = weighed::<WeighLines>(input, block).unwrap();
            assert_eq!(got, [(0, 12), (7, 0), (12, 40), (17, 3)], "block {block}");
        }
    }
}
