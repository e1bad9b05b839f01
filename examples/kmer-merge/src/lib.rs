//! Example SDK task: add up k-mer count tables, the *reduce* half of
//! `examples/kmer-count`. Each record is one table (`KMER\tCOUNT` lines,
//! as a map chunk wrote it); at the end it writes the total of every k-mer,
//! sorted by k-mer:
//!
//! ```text
//! wrun submit examples/kmer-count --input reads.fq --reduce examples/kmer-merge -- 21
//! ```

use std::collections::HashMap;
use std::io::Write;

use wrun_sdk::{Args, Error, Output, Result, Task};

/// The totals so far.
#[derive(Debug, Default)]
pub struct KmerMerge {
    totals: HashMap<Vec<u8>, u64>,
}

impl Task for KmerMerge {
    fn init(args: &Args) -> Result<Self> {
        match args.get(0) {
            None => Ok(KmerMerge::default()),
            Some(arg) => Err(Error::bad_args(format!(
                "kmer-merge takes no arguments, got {arg:?}"
            ))),
        }
    }

    fn record(&mut self, table: &[u8], _out: &mut Output) -> Result<()> {
        for line in table.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let bad = || {
                Error::bad_input(format!(
                    "not a `KMER\\tCOUNT` line: {:?}",
                    String::from_utf8_lossy(line)
                ))
            };
            let tab = line.iter().position(|&b| b == b'\t').ok_or_else(bad)?;
            let count: u64 = std::str::from_utf8(&line[tab + 1..])
                .ok()
                .and_then(|c| c.parse().ok())
                .ok_or_else(bad)?;
            *self.totals.entry(line[..tab].to_vec()).or_default() += count;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        let mut totals: Vec<(Vec<u8>, u64)> = self.totals.drain().collect();
        totals.sort_unstable();
        for (kmer, count) in totals {
            out.write(&kmer);
            writeln!(out, "\t{count}")?;
        }
        Ok(())
    }
}

wrun_sdk::export_task!(KmerMerge);

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_sdk::testing::run_task;

    #[test]
    fn adds_up_tables() {
        let out = run_task::<KmerMerge>(&[], &[b"AC\t3\nGT\t1\n", b"", b"AC\t2\nAA\t5\n"]);
        assert_eq!(
            String::from_utf8(out.unwrap()).unwrap(),
            "AA\t5\nAC\t5\nGT\t1\n"
        );
        assert!(run_task::<KmerMerge>(&[], &[b"AC 3\n"]).is_err());
    }
}
