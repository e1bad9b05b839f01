//! Example SDK task: Smith–Waterman local alignment, with affine gaps, of
//! every FASTA query record against every sequence of a reference, written
//! as BLAST tabular output (`-outfmt "6 std score"`): query, subject,
//! percent identity, alignment length, mismatches, gap opens, query start
//! and end, subject start and end, e-value, bit score, raw score.
//!
//! ```text
//! wrun submit examples/sw-search --input queries.fa --data ref=ref.fa -- --reference ref
//! ```
//!
//! Arguments: `--reference NAME` (required: the data file granted with
//! `--data NAME=PATH`, streamed one record at a time for every query, so a
//! reference of any size fits; or, starting with `>`, the FASTA text
//! itself, for a small one),
//! `--matrix blosum62|dna` (default: from the reference, `dna` when 90% of
//! its letters are nucleotides, else `blosum62`; `dna` scores +5/-4),
//! `--gap-open N` and `--gap-extend N` (defaults 11 and 1: a gap of k
//! residues costs open + k × extend, as in BLAST and as ssearch36's
//! `-f -N -g -N`), `--min-score N` (default 1). Letters BLOSUM62 does not
//! name (`U`, `*`, …) score as `X`. The raw score is exact: equal to
//! ssearch36's (the tests check); e-values and bit scores use BLAST's
//! Karlin–Altschul parameters for BLOSUM62 with gaps 11/1 (λ 0.267,
//! K 0.041), and are `*` for other scorings.

use std::io::Write;

use wrun_sdk::{Args, Error, Output, Result, Task, fasta};

mod align;
mod matrix;
mod reference;

pub use align::{Alignment, Scoring, align};
pub use matrix::{Composition, Matrix};
pub use reference::Reference;

/// The task: the reference and how to score.
#[derive(Debug)]
pub struct SwSearch {
    reference: Reference,
    scoring: Scoring,
    min_score: i32,
}

fn flag_value<'a>(args: &[&'a str], i: usize, flag: &str) -> Result<&'a str> {
    args.get(i + 1)
        .copied()
        .ok_or_else(|| Error::bad_args(format!("{flag} needs a value")))
}

fn number(text: &str, flag: &str) -> Result<i32> {
    text.parse()
        .ok()
        .filter(|n: &i32| *n >= 0)
        .ok_or_else(|| Error::bad_args(format!("{flag} wants a number, got {text:?}")))
}

impl Task for SwSearch {
    fn init(args: &Args) -> Result<Self> {
        let args: Vec<&str> = args.iter().collect();
        let (mut reference, mut matrix) = (None, None);
        let (mut open, mut extend, mut min_score) = (11, 1, 1);
        let mut i = 0;
        while i < args.len() {
            let flag = args[i];
            let value = flag_value(&args, i, flag)?;
            match flag {
                "--reference" => reference = Some(value),
                "--matrix" => {
                    matrix = Some(Matrix::named(value).ok_or_else(|| {
                        Error::bad_args(format!("unknown matrix {value:?}: use blosum62 or dna"))
                    })?)
                }
                "--gap-open" => open = number(value, flag)?,
                "--gap-extend" => extend = number(value, flag)?,
                "--min-score" => min_score = number(value, flag)?,
                other => return Err(Error::bad_args(format!("unknown argument {other:?}"))),
            }
            i += 2;
        }
        let reference = Reference::from_argument(reference.ok_or_else(|| {
            Error::bad_args("--reference NAME is required (a file granted with --data NAME=PATH)")
        })?);
        // One pass checks the reference and, without --matrix, reads its
        // letters to pick the scoring.
        let mut composition = Composition::default();
        reference.for_each(|_, residues| {
            composition.add(residues);
            Ok(())
        })?;
        Ok(SwSearch {
            reference,
            scoring: Scoring::new(matrix.unwrap_or(composition.matrix()), open, extend),
            min_score,
        })
    }

    fn record(&mut self, record: &[u8], out: &mut Output) -> Result<()> {
        let record = fasta::Record::parse(record)?;
        let query: Vec<u8> = record.sequence_lines().flatten().copied().collect();
        self.reference.for_each(|id, subject| {
            let hit = align(&query, subject, &self.scoring);
            if hit.score < self.min_score {
                return Ok(());
            }
            out.write(record.id());
            out.write(b"\t");
            out.write(id);
            let (evalue, bits) = self.statistics(hit.score, query.len(), subject.len());
            writeln!(
                out,
                "\t{:.2}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{evalue}\t{bits}\t{}",
                100.0 * hit.identities as f64 / hit.length.max(1) as f64,
                hit.length,
                hit.mismatches,
                hit.gap_opens,
                hit.query_start,
                hit.query_end,
                hit.subject_start,
                hit.subject_end,
                hit.score
            )?;
            Ok(())
        })?;
        Ok(())
    }
}

impl SwSearch {
    /// E-value and bit score, where the Karlin–Altschul parameters are
    /// known.
    fn statistics(&self, score: i32, query: usize, subject: usize) -> (String, String) {
        let known = self.scoring.matrix == Matrix::Blosum62
            && (self.scoring.gap_open, self.scoring.gap_extend) == (11, 1);
        if !known {
            return ("*".into(), "*".into());
        }
        let (lambda, k) = (0.267f64, 0.041f64);
        let bits = (lambda * f64::from(score) - k.ln()) / std::f64::consts::LN_2;
        let evalue = (query * subject) as f64 * 2f64.powf(-bits);
        (format!("{evalue:.2e}"), format!("{bits:.1}"))
    }
}

wrun_sdk::export_task!(SwSearch, formats = "fasta");
