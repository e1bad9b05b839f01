//! Example SDK task: length and GC content of every FASTA or FASTQ record.
//!
//! For each record it writes `<id>\t<length>\t<GC percent>\n`, where the id
//! is the header up to the first whitespace, the length counts every
//! sequence byte but line endings, and the GC percent has two decimals:
//! byte for byte what `seqkit fx2tab -n -i -l -g` prints.
//!
//! ```text
//! wrun submit examples/gc-content --input examples/data/reads.fa -o gc.tsv
//! ```

use std::io::Write;

use wrun_sdk::{Args, Error, Output, Result, Task, bases, fasta, fastq};

/// The task; it keeps no state between records.
#[derive(Debug)]
pub struct GcContent;

impl Task for GcContent {
    fn init(args: &Args) -> Result<Self> {
        match args.get(0) {
            None => Ok(GcContent),
            Some(arg) => Err(Error::bad_args(format!(
                "gc-content takes no arguments, got {arg:?}"
            ))),
        }
    }

    fn record(&mut self, record: &[u8], out: &mut Output) -> Result<()> {
        write_line(record, out)?;
        Ok(())
    }
}

/// Write `<id>\t<length>\t<GC percent>\n` for one FASTA or FASTQ record:
/// the whole task, callable natively too (the benchmarks' native peer uses
/// it).
pub fn write_line(record: &[u8], out: &mut impl Write) -> Result<()> {
    let (id, count) = match record.first() {
        Some(b'@') => {
            let record = fastq::Record::parse(record)?;
            (record.id(), bases::count_gc(record.sequence()))
        }
        _ => {
            let record = fasta::Record::parse(record)?;
            (record.id(), bases::count_gc(record.wrapped_sequence()))
        }
    };
    out.write_all(id)?;
    writeln!(out, "\t{}\t{:.2}", count.residues, count.percent())?;
    Ok(())
}

wrun_sdk::export_task!(GcContent, formats = "fasta,fastq");

#[cfg(test)]
mod tests {
    use super::*;
    use wrun_plugin_fasta::Fasta;
    use wrun_sdk::testing::{records, run_task};

    fn gc(input: &[u8]) -> String {
        let records = records::<Fasta>(input, 7).unwrap();
        String::from_utf8(run_task::<GcContent>(&[], &records).unwrap()).unwrap()
    }

    #[test]
    fn matches_seqkit_on_edge_cases() {
        // Expected lines are seqkit 2.3.0's `fx2tab -n -i -l -g` output.
        assert_eq!(
            gc(b">a desc\nACGTNN\nac\n\n>b\n>c x\nGGCC\r\n>s\nSSNNsGC\n>sp\nAC GT"),
            "a\t8\t37.50\nb\t0\t0.00\nc\t4\t100.00\ns\t7\t28.57\nsp\t5\t40.00\n"
        );
    }

    #[test]
    fn reads_fastq_records_too() {
        let records = records::<wrun_plugin_fastq::Fastq>(b"@r1 x\nACGG\n+\nIIII\n@r2\n\n+\n\n", 5);
        let out = run_task::<GcContent>(&[], &records.unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "r1\t4\t75.00\nr2\t0\t0.00\n"
        );
    }

    #[test]
    fn rounds_ties_like_seqkit() {
        // 1 C in 800 bases is 0.125%, which seqkit prints as 0.12.
        let record = format!(">t\nC{}\n", "A".repeat(799));
        assert_eq!(gc(record.as_bytes()), "t\t800\t0.12\n");
    }

    #[test]
    fn rejects_arguments_and_non_fasta_records() {
        assert_eq!(
            run_task::<GcContent>(&["-x"], &[]).unwrap_err().kind(),
            wrun_sdk::ErrorKind::BadArgs
        );
        assert_eq!(
            run_task::<GcContent>(&[], &[b"ACGT\n"]).unwrap_err().kind(),
            wrun_sdk::ErrorKind::BadInput
        );
    }
}
