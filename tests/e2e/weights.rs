//! Record weights: where `--chunk-residues` and `--chunk-weight` cut
//! chunks, read back from `wrun status --json`.

use std::path::Path;

use crate::formats::bowtie2;
use crate::support::{GC_CONTENT, assert_golden, repo, status_json, wrun_in};

/// The chunks job 1 of `home` was cut into, one `offset len first_record
/// records` line each.
fn chunk_table(home: &Path) -> String {
    let status = status_json(home, Some("1"));
    let tasks = status["tasks"].as_array().expect("tasks");
    tasks
        .iter()
        .map(|t| {
            format!(
                "{} {} {} {}\n",
                t["offset"], t["len"], t["first_record"], t["records"]
            )
        })
        .collect()
}

/// Submit gc-content on `input` with `chunking` in a fresh home; its
/// chunks as [`chunk_table`] prints them.
fn chunks_of(input: &Path, chunking: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut args = vec!["submit", GC_CONTENT, "--input", input.to_str().unwrap()];
    args.extend_from_slice(chunking);
    let run = wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 0, "{chunking:?}: {}", run.stderr);
    chunk_table(home.path())
}

/// `--chunk-residues` cuts the chunks it cut when the host counted
/// residues itself (the golden files were recorded with that host): FASTA
/// (LF, and CRLF with blank lines) and gzipped FASTQ.
#[test]
fn chunk_residues_cut_the_chunks_they_always_cut() {
    let dir = tempfile::tempdir().unwrap();
    let awkward = dir.path().join("awkward.fasta");
    std::fs::write(
        &awkward,
        b"\r\n>a desc\r\nACGTNN\r\nac\r\n\r\n>b\n>c x\nGGCC\n>s\nSSNNsGC\n>sp\nAC GT",
    )
    .unwrap();
    let sample = repo().join("examples/data/reads.fa");
    let fastq = bowtie2("reads/reads_1.fq.gz");
    let mut table = String::new();
    for (name, input, residues) in [
        ("reads.fa", sample.as_path(), "5000"),
        ("reads.fa", &sample, "1"),
        ("reads.fa", &sample, "100000"),
        ("awkward.fasta", &awkward, "4"),
        ("reads_1.fq.gz", &fastq, "20000"),
    ] {
        table.push_str(&format!("# {name} --chunk-residues {residues}\n"));
        table.push_str(&chunks_of(input, &["--chunk-residues", residues]));
    }
    assert_golden("chunk-residues.txt", &table);
}
