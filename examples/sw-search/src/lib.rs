//! Example SDK task: Smith–Waterman local alignment, with affine gaps, of
//! every FASTA query record against every sequence of a reference, written
//! as BLAST tabular output (`-outfmt "6 std score"`): query, subject,
//! percent identity, alignment length, mismatches, gap opens, query start
//! and end, subject start and end, e-value, bit score, raw score.
//!
//! ```text
//! wrun submit examples/sw-search --input queries.fa -- --reference "$(cat ref.fa)"
//! ```
//!
//! Arguments: `--reference FASTA` (the reference's text; required),
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

pub use align::{Alignment, Scoring, align};
pub use matrix::Matrix;

/// The task: the reference and how to score.
#[derive(Debug)]
pub struct SwSearch {
    subjects: Vec<(Vec<u8>, Vec<u8>)>,
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
        let reference =
            reference.ok_or_else(|| Error::bad_args("--reference FASTA is required"))?;
        let subjects = parse_reference(reference.as_bytes())?;
        let matrix = matrix.unwrap_or_else(|| {
            Matrix::for_sequences(subjects.iter().map(|(_, residues)| &residues[..]))
        });
        Ok(SwSearch {
            subjects,
            scoring: Scoring::new(matrix, open, extend),
            min_score,
        })
    }

    fn record(&mut self, record: &[u8], out: &mut Output) -> Result<()> {
        let record = fasta::Record::parse(record)?;
        let query: Vec<u8> = record.sequence_lines().flatten().copied().collect();
        for (id, subject) in &self.subjects {
            let hit = align(&query, subject, &self.scoring);
            if hit.score < self.min_score {
                continue;
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
        }
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

/// The reference's sequences: (id, residues), in order.
fn parse_reference(text: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut subjects = Vec::new();
    let mut starts = vec![];
    for (i, window) in text.windows(2).enumerate() {
        if window == b"\n>" {
            starts.push(i + 1);
        }
    }
    if text.first() == Some(&b'>') {
        starts.insert(0, 0);
    }
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(text.len());
        let record = fasta::Record::parse(&text[start..end])
            .map_err(|e| Error::bad_args(format!("--reference: {}", e.message())))?;
        let residues = record.sequence_lines().flatten().copied().collect();
        subjects.push((record.id().to_vec(), residues));
    }
    if subjects.is_empty() {
        return Err(Error::bad_args("--reference holds no FASTA record"));
    }
    Ok(subjects)
}

wrun_sdk::export_task!(SwSearch, formats = "fasta");
