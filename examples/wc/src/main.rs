//! Example WASI command: `wc` for a chunk.
//!
//! A plain Rust program, no SDK: it reads its chunk from stdin and prints
//! `<lines> <words> <bytes>` like `wc`. Run over many chunks, the sums of
//! the columns are the totals of the whole input:
//!
//! ```text
//! wrun submit target/wasm32-wasip1/release/wc.wasm --input big.txt --format lines
//! ```

use std::io::{self, Read, Write};

/// Line, word and byte counts.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
}

impl Counts {
    /// Count a whole input; a word is a maximal run of non-whitespace bytes.
    #[cfg(test)]
    fn of(input: &[u8]) -> Self {
        let mut counter = Counter::default();
        counter.feed(input);
        counter.finish()
    }
}

/// Counts an input block by block: memory stays constant whatever the
/// chunk's size (a word may span two blocks).
#[derive(Debug, Default)]
struct Counter {
    counts: Counts,
    in_word: bool,
}

impl Counter {
    /// Count the next block of the input.
    fn feed(&mut self, block: &[u8]) {
        self.counts.bytes += block.len() as u64;
        for &b in block {
            self.counts.lines += u64::from(b == b'\n');
            let space = b.is_ascii_whitespace() || b == 0x0b;
            self.counts.words += u64::from(self.in_word && space);
            self.in_word = !space;
        }
    }

    /// The counts of everything fed.
    fn finish(mut self) -> Counts {
        self.counts.words += u64::from(self.in_word);
        self.counts
    }
}

/// Bytes read from stdin at a time.
const BLOCK: usize = 64 << 10;

fn main() -> io::Result<()> {
    let mut counter = Counter::default();
    let mut block = vec![0; BLOCK];
    let mut stdin = io::stdin().lock();
    loop {
        match stdin.read(&mut block) {
            Ok(0) => break,
            Ok(n) => counter.feed(&block[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let Counts {
        lines,
        words,
        bytes,
    } = counter.finish();
    writeln!(io::stdout().lock(), "{lines} {words} {bytes}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_wc() {
        assert_eq!(Counts::of(b""), Counts::default());
        assert_eq!(
            Counts::of(b"one two\n  three\tfour\n\nfive"),
            Counts {
                lines: 3,
                words: 5,
                bytes: 26
            }
        );
    }

    #[test]
    fn counts_the_same_whatever_the_blocks() {
        let input = b"one two\n  three\tfour\n\nfive six  ";
        for size in 1..input.len() {
            let mut counter = Counter::default();
            for block in input.chunks(size) {
                counter.feed(block);
            }
            assert_eq!(counter.finish(), Counts::of(input), "blocks of {size}");
        }
    }
}
