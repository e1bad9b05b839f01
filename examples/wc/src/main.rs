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
    fn of(input: &[u8]) -> Self {
        let mut counts = Counts {
            bytes: input.len() as u64,
            ..Counts::default()
        };
        let mut in_word = false;
        for &b in input {
            counts.lines += u64::from(b == b'\n');
            let space = b.is_ascii_whitespace() || b == 0x0b;
            counts.words += u64::from(in_word && space);
            in_word = !space;
        }
        counts.words += u64::from(in_word);
        counts
    }
}

fn main() -> io::Result<()> {
    let mut input = Vec::new();
    io::stdin().lock().read_to_end(&mut input)?;
    let Counts {
        lines,
        words,
        bytes,
    } = Counts::of(&input);
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
}
