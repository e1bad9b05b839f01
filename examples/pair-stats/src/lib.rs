//! Example SDK task over paired FASTQ reads: per pair one line,
//!
//! ```text
//! <name>\t<length 1>\t<length 2>\t<GC% 1>\t<GC% 2>\t<overlap>
//! ```
//!
//! where the name is the one the mates share (their id without `/1` or
//! `/2`), lengths and GC percents are those `seqkit fx2tab -n -i -l -g`
//! prints for each mate, and the overlap is the length of the longest
//! suffix of the first mate's sequence that equals a prefix of the
//! reverse complement of the second's (the mates read the two ends of
//! one fragment towards each other, so a fragment shorter than both
//! reads makes them overlap), compared case-insensitively with A/T and
//! C/G complementary and any other byte its own complement; 0 when that
//! is shorter than N bases, the task's argument (default 10).
//!
//! ```text
//! wrun submit examples/pair-stats --input reads_1.fq.gz --mate reads_2.fq.gz -- 12
//! ```

use std::io::Write;

use wrun_sdk::pairs::{Pair, PairTask, Paired};
use wrun_sdk::{Args, Error, Output, Result, bases, fastq};

/// Overlaps shorter than this are not reported, by default.
pub const DEFAULT_MIN_OVERLAP: usize = 10;

/// The task: the overlap threshold and buffers reused from pair to pair.
#[derive(Debug)]
pub struct PairStats {
    min_overlap: usize,
    first: Vec<u8>,
    second: Vec<u8>,
}

impl PairTask for PairStats {
    fn init(args: &Args) -> Result<Self> {
        let min_overlap = match (args.get(0), args.get(1)) {
            (None, _) => DEFAULT_MIN_OVERLAP,
            (Some(n), None) => n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                Error::bad_args(format!(
                    "pair-stats takes the least overlap worth reporting, in bases (a \
                     positive number, default {DEFAULT_MIN_OVERLAP}), got {n:?}"
                ))
            })?,
            (Some(_), Some(extra)) => {
                return Err(Error::bad_args(format!(
                    "pair-stats takes one argument, got another: {extra:?}"
                )));
            }
        };
        Ok(PairStats {
            min_overlap,
            first: Vec::new(),
            second: Vec::new(),
        })
    }

    fn pair(&mut self, pair: Pair<'_>, out: &mut Output) -> Result<()> {
        let (r1, r2) = (
            fastq::Record::parse(pair.r1)?,
            fastq::Record::parse(pair.r2)?,
        );
        let (gc1, gc2) = (
            bases::count_gc(r1.sequence()),
            bases::count_gc(r2.sequence()),
        );
        self.first.clear();
        self.first
            .extend(r1.sequence().iter().map(u8::to_ascii_uppercase));
        self.second.clear();
        self.second
            .extend(r2.sequence().iter().rev().map(|&b| complement(b)));
        let overlap = overlap(&self.first, &self.second, self.min_overlap);
        out.write_all(pair.name())?;
        writeln!(
            out,
            "\t{}\t{}\t{:.2}\t{:.2}\t{overlap}",
            gc1.residues,
            gc2.residues,
            gc1.percent(),
            gc2.percent()
        )?;
        Ok(())
    }
}

/// The complement of a base, upper-cased: A/T and C/G swap, any other
/// byte (N) is its own.
fn complement(base: u8) -> u8 {
    match base.to_ascii_uppercase() {
        b'A' => b'T',
        b'T' => b'A',
        b'C' => b'G',
        b'G' => b'C',
        other => other,
    }
}

/// The longest `k >= min` with `first`'s last `k` bytes equal to
/// `second_rc`'s first `k`; 0 when there is none.
pub fn overlap(first: &[u8], second_rc: &[u8], min: usize) -> usize {
    let longest = first.len().min(second_rc.len());
    (min..=longest)
        .rev()
        .find(|&k| first[first.len() - k..] == second_rc[..k])
        .unwrap_or(0)
}

wrun_sdk::export_task!(Paired<PairStats>, formats = "fastq");

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_sdk::testing::run_task;

    fn stats(args: &[&str], records: &[&[u8]]) -> Result<String> {
        run_task::<Paired<PairStats>>(args, records).map(|out| String::from_utf8(out).unwrap())
    }

    #[test]
    fn one_line_per_pair() {
        // r2's reverse complement is r1's last 12 bases and 3 more: they
        // overlap by 12.
        let r1 = b"@f/1 x\nAAAAACCCGGGTTTAC\n+\nIIIIIIIIIIIIIIII\n";
        let r2 = b"@f/2 y\nCCCGTAAACCCGGGT\n+\nIIIIIIIIIIIIIII\n";
        assert_eq!(
            stats(&[], &[r1, r2]).unwrap(),
            "f\t16\t15\t43.75\t66.67\t12\n"
        );
        assert_eq!(
            stats(&["13"], &[r1, r2]).unwrap(),
            "f\t16\t15\t43.75\t66.67\t0\n"
        );
    }

    #[test]
    fn overlap_is_the_longest_at_least_min() {
        assert_eq!(overlap(b"ACGTACGT", b"ACGTACGT", 1), 8);
        assert_eq!(overlap(b"AAAC", b"ACGG", 2), 2);
        assert_eq!(overlap(b"AAAC", b"ACGG", 3), 0);
        assert_eq!(overlap(b"", b"A", 1), 0);
    }

    #[test]
    fn refuses_bad_arguments_and_unpaired_records() {
        let kind = |result: Result<String>| result.unwrap_err().kind();
        assert_eq!(kind(stats(&["0"], &[])), wrun_sdk::ErrorKind::BadArgs);
        assert_eq!(kind(stats(&["5", "6"], &[])), wrun_sdk::ErrorKind::BadArgs);
        let lone: &[u8] = b"@a\nA\n+\nI\n";
        assert_eq!(kind(stats(&[], &[lone])), wrun_sdk::ErrorKind::BadInput);
    }
}
