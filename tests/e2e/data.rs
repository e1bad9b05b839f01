//! Reference data (`--data NAME=PATH`): what a task sees at `/data`, what
//! it cannot do there, resume's check of the digests, and a cluster node's
//! fetch of a data blob.

use std::path::{Path, PathBuf};

use crate::cluster::Cluster;
use crate::journal::probe_job;
use crate::support::{COMMAND_PROBE, TASK_PROBE, assert_golden, wrun, wrun_in};

/// `len` deterministic bytes that are not all alike (a 64-bit LCG).
fn reference_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

pub(crate) fn write_reference(dir: &Path, len: usize) -> (PathBuf, Vec<u8>) {
    let path = dir.join("ref.bin");
    let bytes = reference_bytes(len);
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

#[test]
fn a_task_reads_a_20_mb_data_file_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = write_reference(dir.path(), 20 << 20);
    let grant = format!("ref={}", path.display());
    let run = wrun(
        &[
            "submit",
            COMMAND_PROBE,
            "--data",
            &grant,
            "--",
            "data-cat",
            "ref",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout == bytes, "the task read other bytes");
}

#[test]
fn every_task_of_a_job_sees_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let data = dir.path().join("small.txt");
    std::fs::write(&data, "reference\n").unwrap();
    let grant = format!("small={}", data.display());
    let input = dir.path().join("three.txt");
    std::fs::write(&input, "a\nb\nc\n").unwrap();
    let run = wrun_in(
        home.path(),
        &[
            "submit",
            COMMAND_PROBE,
            "--input",
            input.to_str().unwrap(),
            "--chunk-records",
            "1",
            "--data",
            &grant,
            "--",
            "data-cat",
            "small",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "reference\n".repeat(3));
}

/// The task probe's `data` mode's line for `bytes`.
pub(crate) fn probe_line(name: &str, bytes: &[u8]) -> String {
    let sum = bytes.iter().fold(0u64, |sum, &b| {
        sum.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    format!("{name} {} {sum:016x}\n", bytes.len())
}

#[test]
fn sdk_tasks_open_data_through_the_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (path, bytes) = write_reference(dir.path(), 2 << 20);
    let grant = format!("ref={}", path.display());
    let (_, run) = probe_job(
        home.path(),
        dir.path(),
        "sdk",
        &["--data", &grant],
        &["data", "ref"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Five records: one line each.
    assert_eq!(run.stdout_text(), probe_line("ref", &bytes).repeat(5));
    // A name the job was not granted fails the chunk, saying how to grant it.
    let (_, run) = probe_job(
        home.path(),
        dir.path(),
        "sdk2",
        &["--data", &grant],
        &["data", "other"],
    );
    assert_eq!(run.code, 16, "{}", run.stderr);
    assert!(run.stderr.contains("--data other=PATH"), "{}", run.stderr);
}

#[test]
fn a_task_cannot_leave_data_or_write_there() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_reference(dir.path(), 1000);
    let grant = format!("ref={}", path.display());
    let run = wrun(
        &[
            "submit",
            COMMAND_PROBE,
            "--data",
            &grant,
            "--",
            "data-escape",
            "ref",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_golden("data-escape.txt", &run.stdout_text());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        reference_bytes(1000),
        "the file is untouched"
    );
}

#[test]
fn bad_grants_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_reference(dir.path(), 10);
    let cases = [
        (format!("../ref={}", path.display()), 2),
        (format!("ref={}", dir.path().join("absent.fa").display()), 3),
        ("ref".to_owned(), 2),
    ];
    let mut seen = String::new();
    for (grant, code) in cases {
        let run = wrun(&["submit", COMMAND_PROBE, "--data", &grant], None);
        assert_eq!(run.code, code, "--data {grant}: {}", run.stderr);
        let first = run.stderr.lines().next().unwrap_or_default().to_owned();
        seen.push_str(&first.replace(&dir.path().display().to_string(), "<tmp>"));
        seen.push('\n');
    }
    let twice = format!("ref={}", path.display());
    let run = wrun(
        &["submit", COMMAND_PROBE, "--data", &twice, "--data", &twice],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    seen.push_str(&run.stderr);
    assert_golden("data-refused.txt", &seen);
}

#[test]
fn a_changed_data_file_refuses_retry_and_the_same_bytes_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (path, bytes) = write_reference(dir.path(), 4096);
    let grant = format!("ref={}", path.display());
    let flags = ["--data", grant.as_str()];
    let (_, run) = probe_job(home.path(), dir.path(), "data", &flags, &["fail-if", "X"]);
    assert_eq!(run.code, 16, "{}", run.stderr);

    let mut changed = bytes.clone();
    changed[100] ^= 1;
    std::fs::write(&path, &changed).unwrap();
    let run = wrun_in(home.path(), &["retry", "1"], None);
    assert_eq!(run.code, 8, "{}", run.stderr);
    let digest = regex::Regex::new(r"[0-9a-f]{64}").unwrap();
    let message = digest.replace_all(&run.stderr, "<digest>");
    assert_golden(
        "data-changed.stderr",
        &message.replace(&dir.path().display().to_string(), "<tmp>"),
    );
    let detail = crate::support::status_json(home.path(), Some("1"));
    assert_eq!(detail["job"]["runs"], 1, "a refused retry does not run");

    // The same bytes again (a new modification time) are the same data.
    std::fs::write(&path, &bytes).unwrap();
    let run = wrun_in(home.path(), &["retry", "1"], None);
    assert_eq!(run.code, 16, "the failed chunk runs again: {}", run.stderr);
}

#[test]
fn a_cluster_node_fetches_a_data_blob_once_for_two_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(1);
    let (path, bytes) = write_reference(dir.path(), 3 << 20);
    let grant = format!("ref={}", path.display());
    let input = dir.path().join("two.txt");
    std::fs::write(&input, "a\nb\n").unwrap();
    for records in ["1", "2"] {
        let run = cluster.wrun(&[
            "submit",
            COMMAND_PROBE,
            "--input",
            input.to_str().unwrap(),
            "--chunk-records",
            records,
            "--data",
            &grant,
            "--",
            "data-cat",
            "ref",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let chunks = 2 / records.parse::<usize>().unwrap();
        assert!(
            run.stdout == bytes.repeat(chunks),
            "job over {records}-record chunks"
        );
    }
    let log = cluster.nodes[0].log();
    assert_eq!(
        log.matches("fetching data file ref").count(),
        1,
        "node log:\n{log}"
    );
}

/// A data file larger than a message (80 MiB): a broker and two nodes,
/// each with a store of its own, no shared one. The nodes fetch it from
/// the broker in parts, written to their stores as they come, and every
/// task reads it whole: the output is the local run's.
#[test]
fn nodes_without_a_shared_store_fetch_a_data_file_larger_than_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (path, bytes) = write_reference(dir.path(), 80 << 20);
    let grant = format!("ref={}", path.display());
    let (input, local) = probe_job(
        home.path(),
        dir.path(),
        "local",
        &["--data", &grant],
        &["data", "ref"],
    );
    assert_eq!(local.code, 0, "{}", local.stderr);
    // Five records in chunks of two: three chunks, a line per record.
    assert_eq!(local.stdout_text(), probe_line("ref", &bytes).repeat(5));

    let cluster = Cluster::start(2);
    let run = cluster.wrun(&[
        "submit",
        TASK_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--chunk-records",
        "1",
        "--data",
        &grant,
        "--",
        "data",
        "ref",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), local.stdout_text());
    let fetched: usize = cluster
        .nodes
        .iter()
        .map(|node| {
            let log = node.log();
            assert!(!log.contains("cannot fetch"), "node log:\n{log}");
            let fetches = log.matches("fetching data file ref").count();
            assert!(fetches <= 1, "node log:\n{log}");
            fetches
        })
        .sum();
    assert!(fetched >= 1, "a node fetched the data file");
}
