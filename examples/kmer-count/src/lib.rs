//! Example SDK task: count the k-mers of every FASTA or FASTQ record in a
//! chunk, the *map* half of a map/reduce. At the end of the chunk it writes
//! one `KMER\tCOUNT` line per k-mer, sorted; `examples/kmer-merge` adds up
//! the tables of all chunks:
//!
//! ```text
//! wrun submit examples/kmer-count --input reads.fq --reduce examples/kmer-merge -- 21
//! ```
//!
//! The argument is k (1 to 32, default 21). Bases are read case-blind; a
//! k-mer never spans anything but `ACGT`, so `N`s break k-mers.

use std::collections::HashMap;
use std::io::Write;

use wrun_sdk::{Args, Error, Output, Result, Task, fasta, fastq};

/// Counts of the chunk's k-mers, 2 bits a base (`A`<`C`<`G`<`T`, so the
/// numeric order of the codes is the text order of the k-mers).
#[derive(Debug)]
pub struct KmerCount {
    k: usize,
    counts: HashMap<u64, u64>,
}

impl Task for KmerCount {
    fn init(args: &Args) -> Result<Self> {
        let k = match args.get(0) {
            None => 21,
            Some(text) => text
                .parse()
                .ok()
                .filter(|k| (1..=32).contains(k))
                .ok_or_else(|| Error::bad_args(format!("k must be 1 to 32, got {text:?}")))?,
        };
        Ok(KmerCount {
            k,
            counts: HashMap::new(),
        })
    }

    fn record(&mut self, record: &[u8], _out: &mut Output) -> Result<()> {
        let mut window = Window::new(self.k);
        match record.first() {
            Some(b'@') => self.count(&mut window, fastq::Record::parse(record)?.sequence()),
            _ => {
                for line in fasta::Record::parse(record)?.sequence_lines() {
                    self.count(&mut window, line);
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        let mut counts: Vec<(u64, u64)> = self.counts.drain().collect();
        counts.sort_unstable();
        let mut text = vec![0; self.k];
        for (code, count) in counts {
            decode(code, &mut text);
            out.write(&text);
            writeln!(out, "\t{count}")?;
        }
        Ok(())
    }
}

impl KmerCount {
    fn count(&mut self, window: &mut Window, bases: &[u8]) {
        for &base in bases {
            if let Some(code) = window.push(base) {
                *self.counts.entry(code).or_default() += 1;
            }
        }
    }
}

/// The last k bases, as a code, across the lines of a record.
struct Window {
    k: usize,
    mask: u64,
    code: u64,
    /// Valid bases at the end of `code`.
    filled: usize,
}

impl Window {
    fn new(k: usize) -> Self {
        let mask = if k == 32 {
            u64::MAX
        } else {
            (1 << (2 * k)) - 1
        };
        Window {
            k,
            mask,
            code: 0,
            filled: 0,
        }
    }

    /// Add a base; the k-mer ending at it, once k valid bases are in.
    fn push(&mut self, base: u8) -> Option<u64> {
        let bits = match base {
            b'A' | b'a' => 0,
            b'C' | b'c' => 1,
            b'G' | b'g' => 2,
            b'T' | b't' => 3,
            b'\r' | b'\n' => return None,
            _ => {
                self.filled = 0;
                return None;
            }
        };
        self.code = ((self.code << 2) | bits) & self.mask;
        self.filled = (self.filled + 1).min(self.k);
        (self.filled == self.k).then_some(self.code)
    }
}

fn decode(mut code: u64, text: &mut [u8]) {
    for slot in text.iter_mut().rev() {
        *slot = b"ACGT"[(code & 3) as usize];
        code >>= 2;
    }
}

wrun_sdk::export_task!(KmerCount, formats = "fasta,fastq");

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_sdk::testing::run_task;

    #[test]
    fn counts_kmers_that_do_not_span_n_or_records() {
        let out = run_task::<KmerCount>(&["2"], &[b">a\nACG\nTN\nAC\n", b"@r\nacac\n+\nIIII\n"]);
        assert_eq!(
            String::from_utf8(out.unwrap()).unwrap(),
            "AC\t4\nCA\t1\nCG\t1\nGT\t1\n"
        );
    }

    #[test]
    fn k_is_checked() {
        for bad in ["0", "33", "x"] {
            assert!(run_task::<KmerCount>(&[bad], &[]).is_err(), "{bad}");
        }
        let out = run_task::<KmerCount>(&["32"], &[b">a\nACGTACGTACGTACGTACGTACGTACGTACGTA\n"]);
        assert_eq!(
            String::from_utf8(out.unwrap()).unwrap(),
            "ACGTACGTACGTACGTACGTACGTACGTACGT\t1\nCGTACGTACGTACGTACGTACGTACGTACGTA\t1\n"
        );
    }
}
