//! Record weights: where `--chunk-residues` and `--chunk-weight` cut
//! chunks, read back from `wrun status --json`.

use std::path::Path;

use crate::cluster::Cluster;
use crate::formats::{bowtie2, c_guest};
use crate::support::{GC_CONTENT, WC, assert_golden, repo, status_json, wrun, wrun_in};
use wrun_tests::{WEIGH_LINES, WEIGH_LINES_C};

/// The chunks a job was cut into, from its `wrun status JOB --json`, one
/// `offset len first_record records` line each.
fn chunk_table(status: &serde_json::Value) -> String {
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
    chunks_of_task(GC_CONTENT, input, chunking)
}

/// [`chunks_of`] with `task` (and whatever else `options` say).
fn chunks_of_task(task: &str, input: &Path, options: &[&str]) -> String {
    let chunking = options;
    let home = tempfile::tempdir().unwrap();
    let mut args = vec!["submit", task, "--input", input.to_str().unwrap()];
    args.extend_from_slice(chunking);
    let run = wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 0, "{chunking:?}: {}", run.stderr);
    chunk_table(&status_json(home.path(), Some("1")))
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

/// A user plugin weighs each line by the first number in it: chunks close
/// once their lines weigh `--chunk-weight`, whatever the lines' lengths,
/// across the host's 1 MiB blocks (the plugin reports a line's weight in
/// the block where it ends).
#[test]
fn a_user_plugins_chunks_follow_its_weights() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("weighed.txt");
    // Lines of very different lengths and weights, 2.3 MB in all.
    let weights: Vec<u64> = (0..60_000u64).map(|i| (i * 7919) % 23).collect();
    let text: String = weights
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{w} {}\n", "x".repeat(i % 70)))
        .collect();
    std::fs::write(&input, text).unwrap();
    const BOUND: u64 = 1000;
    // The rule: a chunk closes before the line that would start it once
    // its lines weigh BOUND.
    let mut expected = Vec::new();
    let (mut weight, mut lines) = (0, 0);
    for &w in &weights {
        if lines > 0 && weight >= BOUND {
            expected.push(lines);
            (weight, lines) = (0, 0);
        }
        weight += w;
        lines += 1;
    }
    expected.push(lines);

    let table = chunks_of_task(
        WC,
        &input,
        &[
            "--format",
            WEIGH_LINES,
            "--chunk-weight",
            &BOUND.to_string(),
        ],
    );
    let got: Vec<u64> = table
        .lines()
        .map(|line| line.split(' ').nth(3).unwrap().parse().unwrap())
        .collect();
    assert!(got.len() > 100, "{} chunks", got.len());
    assert_eq!(got, expected);
}

/// `--chunk-weight` with a plugin that reports no weights is refused
/// before the job is recorded, naming the plugin.
#[test]
fn chunk_weight_needs_a_plugin_that_weighs() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\nb\n").unwrap();
    let args = ["--input", input.to_str().unwrap(), "--format", "lines"];
    let run = wrun(
        &[&["submit", WC][..], &args, &["--chunk-weight", "5"]].concat(),
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_golden("chunk-weight-unweighed.txt", &run.stderr);
}

/// A splitter written in C with `wrun.h` weighs records too: each line by
/// its length, so `--chunk-weight N` cuts as `--chunk-bytes N` does.
#[test]
fn a_splitter_in_c_weighs_records() {
    let plugin = c_guest(WEIGH_LINES_C);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines.txt");
    let text: String = (0..50_000)
        .map(|i| format!("{}\n", "y".repeat(i % 90)))
        .collect();
    std::fs::write(&input, text).unwrap();
    let by_weight = chunks_of_task(WC, &input, &["--format", plugin, "--chunk-weight", "65536"]);
    let by_bytes = chunks_of_task(WC, &input, &["--format", "lines", "--chunk-bytes", "64KiB"]);
    assert!(by_weight.lines().count() > 10, "{by_weight}");
    assert_eq!(by_weight, by_bytes);
}

/// Through a broker and two nodes, the weights cut the chunks a local run
/// cuts, and the output is the same.
#[test]
fn a_broker_cuts_the_chunks_by_weight_as_a_local_run_does() {
    let sample = repo().join("examples/data/reads.fa");
    let local = chunks_of(&sample, &["--chunk-weight", "5000"]);
    let cluster = Cluster::start(2);
    let out = cluster.dir.path().join("gc.tsv");
    let run = cluster.wrun(&[
        "submit",
        GC_CONTENT,
        "--input",
        sample.to_str().unwrap(),
        "--chunk-weight",
        "5000",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let status = cluster.wrun(&["status", "1", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(chunk_table(&status), local);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(repo().join("examples/data/reads.gc.tsv")).unwrap()
    );
}
