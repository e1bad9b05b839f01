//! Jobs that wait for jobs: `--input job:JOB` reads another job's output
//! (locally and through a broker) as running the task on that output file
//! does; `--after JOB` waits for a running job (shown by `wrun status`
//! as waiting) and starts once it is done; a job after a failed job fails
//! with the reason, and one after an unknown job is refused; a waiting
//! job is cancelled by `wrun cancel`; a reducing job's output is refused
//! as an input before anything is recorded.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::cluster::{Cluster, wait_bounded};
use crate::support::{
    GC_CONTENT, KMER_COUNT, KMER_MERGE, TASK_PROBE, assert_golden, repo, sample, status_json,
    wait_until, wrun_binary, wrun_in,
};

/// `wrun submit` of the probe over `input` as lines, 100 records a chunk,
/// into `out`, each record followed by its hash: arguments before `extra`.
fn probe_job<'a>(input: &'a str, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "submit",
        TASK_PROBE,
        "--input",
        input,
        "--format",
        "lines",
        "--chunk-records",
        "100",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    args.extend(["--", "work", "1"]);
    args
}

#[test]
fn a_job_reads_another_jobs_output_as_the_same_task_reads_that_file() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (fasta, expected) = sample();
    let gc = dir.path().join("gc.tsv");
    let run = wrun_in(
        home.path(),
        &[
            "submit",
            GC_CONTENT,
            "--input",
            fasta.to_str().unwrap(),
            "-o",
            gc.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&gc).unwrap(), expected);

    let chained = dir.path().join("chained.txt");
    let run = wrun_in(home.path(), &probe_job("job:1", &chained, &[]), None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let direct = dir.path().join("direct.txt");
    let run = wrun_in(
        home.path(),
        &probe_job(gc.to_str().unwrap(), &direct, &[]),
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let chained = std::fs::read(&chained).unwrap();
    assert!(chained.len() > expected.len());
    assert_eq!(chained, std::fs::read(&direct).unwrap());

    // The dependency is recorded, with the stamp of the output it read.
    let detail = status_json(home.path(), Some("2"));
    assert_eq!(detail["job"]["after"], serde_json::json!([1]));
    assert_eq!(detail["job"]["state"], "done");
    assert_eq!(detail["job"]["input"], "job:1");
    assert_eq!(detail["spec"]["input"]["size"], expected.len() as u64);
    assert!(
        detail["spec"]["input"]["etag"]
            .as_str()
            .is_some_and(|tag| tag.starts_with("blake3:")),
        "{detail}"
    );
    let table = wrun_in(home.path(), &["status", "2"], None);
    assert!(table.stdout_text().contains("  after     job 1\n"));
}

/// `wrun submit args…` in `home`, its standard input piped, its standard
/// error piped.
fn spawn_piped(home: &Path, args: &[&str]) -> Child {
    Command::new(wrun_binary())
        .env("WRUN_HOME", home)
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wrun")
}

/// Wait (bounded) for `child` to succeed; its standard error.
fn succeeds(child: Child) -> String {
    let (code, stderr) = ends(child);
    assert_eq!(code, Some(0), "{stderr}");
    stderr
}

#[test]
fn after_waits_for_a_running_job_and_status_shows_it_waiting() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Job 1 reads standard input: it runs until the test closes it.
    let first = dir.path().join("first.txt");
    let mut job1 = spawn_piped(
        home.path(),
        &[
            "submit",
            TASK_PROBE,
            "--input",
            "-",
            "--format",
            "lines",
            "-o",
            first.to_str().unwrap(),
        ],
    );
    let mut stdin = job1.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\n").unwrap();
    wait_until("job 1 runs", || {
        status_json(home.path(), None)
            .get(0)
            .is_some_and(|job| job["state"] == "running")
    });

    let input = dir.path().join("second.in");
    std::fs::write(&input, "a\nb\n").unwrap();
    let second = dir.path().join("second.txt");
    let job2 = spawn_piped(
        home.path(),
        &[
            "submit",
            TASK_PROBE,
            "--input",
            input.to_str().unwrap(),
            "--format",
            "lines",
            "--after",
            "1",
            "-o",
            second.to_str().unwrap(),
        ],
    );
    wait_until("job 2 waits for job 1", || {
        let jobs = status_json(home.path(), None);
        jobs.get(1)
            .is_some_and(|job| job["state"] == "waiting" && job["waiting_for"] == 1)
    });
    let table = wrun_in(home.path(), &["status"], None).stdout_text();
    assert!(table.contains(" waiting for 1 "), "{table}");
    let detail = wrun_in(home.path(), &["status", "2"], None).stdout_text();
    assert!(
        detail.starts_with("job 2: waiting for 1\n  after     job 1\n"),
        "{detail}"
    );
    assert!(!second.exists() || std::fs::read(&second).unwrap().is_empty());

    // Job 1 ends; job 2 starts, having said what it waited for.
    stdin.write_all(b"three\n").unwrap();
    drop(stdin);
    succeeds(job1);
    assert_eq!(
        std::fs::read_to_string(&first).unwrap(),
        "one\ntwo\nthree\n"
    );
    let stderr = succeeds(job2);
    assert!(
        stderr.contains("wrun: job 2 waits for job 1 (running, "),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&second).unwrap(), "a\nb\n");
    assert_eq!(status_json(home.path(), Some("2"))["job"]["state"], "done");
}

#[test]
fn a_job_after_a_failed_job_fails_with_the_reason() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\nX\n").unwrap();
    let input = input.to_str().unwrap();
    let run = wrun_in(
        home.path(),
        &["submit", TASK_PROBE, "--input", input, "--", "fail-if", "X"],
        None,
    );
    assert_eq!(run.code, 16, "{}", run.stderr);

    let out = dir.path().join("out.txt");
    let args = probe_job(input, &out, &["--after", "1"]);
    let run = wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 19, "{}", run.stderr);
    assert_golden("after-failed.stderr", &run.stderr);
    let detail = status_json(home.path(), Some("2"));
    assert_eq!(detail["job"]["state"], "failed");
    assert_eq!(detail["job"]["after"], serde_json::json!([1]));

    // Reading a failed job's output is the same wait, failed the same way.
    let args = probe_job("job:1", &out, &["--fresh"]);
    let run = wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 19, "{}", run.stderr);
    assert!(run.stderr.contains("waits for job 1, which failed"));
}

#[test]
fn a_job_after_an_unknown_job_is_refused_and_nothing_is_recorded() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\n").unwrap();
    let out = dir.path().join("out.txt");
    let args = probe_job(input.to_str().unwrap(), &out, &["--after", "7"]);
    let run = wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 19, "{}", run.stderr);
    assert_golden("after-unknown.stderr", &run.stderr);
    assert_eq!(status_json(home.path(), None), serde_json::json!([]));

    let run = wrun_in(home.path(), &probe_job("job:x", &out, &[]), None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--input job:x: `job:` must be followed")
    );
}

#[test]
fn through_a_broker_a_job_reads_another_jobs_output() {
    let cluster = Cluster::start(1);
    let (fasta, expected) = sample();
    let gc = cluster.dir.path().join("gc.tsv");
    let run = cluster.wrun(&[
        "submit",
        GC_CONTENT,
        "--input",
        fasta.to_str().unwrap(),
        "-o",
        gc.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&gc).unwrap(), expected);

    let chained = cluster.dir.path().join("chained.txt");
    let run = cluster.wrun(&probe_job("job:1", &chained, &["--after", "1"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The same task on the same bytes, locally.
    let home = tempfile::tempdir().unwrap();
    let direct = cluster.dir.path().join("direct.txt");
    let run = wrun_in(
        home.path(),
        &probe_job(gc.to_str().unwrap(), &direct, &[]),
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read(&chained).unwrap(),
        std::fs::read(&direct).unwrap()
    );
    let status = cluster.wrun(&["status", "2", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let detail: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(detail["job"]["after"], serde_json::json!([1]));

    // A broker refuses to wait for a job its journal does not hold.
    let run = cluster.wrun(&probe_job("job:5", &chained, &["--fresh"]));
    assert_eq!(run.code, 19, "{}", run.stderr);
    assert!(
        run.stderr.contains("job 5 does not exist"),
        "{}",
        run.stderr
    );
}

/// Job 1, the probe over standard input with `job1_args` after it, its
/// first line `first` written and running, and job 2, the probe over a
/// file of its own with `--after 1`, waiting for it: job 1, its standard
/// input (open), job 2.
fn a_job_waiting_for_a_running_one(
    home: &Path,
    dir: &Path,
    first: &[u8],
    job1_args: &[&str],
) -> (Child, ChildStdin, Child) {
    let mut args = vec!["submit", TASK_PROBE, "--input", "-", "--format", "lines"];
    args.extend(job1_args);
    let mut job1 = spawn_piped(home, &args);
    let mut stdin = job1.stdin.take().unwrap();
    // It is recorded once its first bytes arrive (compression is sniffed).
    stdin.write_all(first).unwrap();
    wait_until("job 1 runs", || {
        status_json(home, None)
            .get(0)
            .is_some_and(|job| job["state"] == "running")
    });
    let input = dir.join("second.in");
    std::fs::write(&input, "a\n").unwrap();
    let out = dir.join("second.txt");
    let job2 = spawn_piped(
        home,
        &probe_job(input.to_str().unwrap(), &out, &["--after", "1"]),
    );
    wait_until("job 2 waits for job 1", || {
        status_json(home, None)
            .get(1)
            .is_some_and(|job| job["state"] == "waiting")
    });
    (job1, stdin, job2)
}

/// Wait (bounded) for `child` to end: its exit code and standard error.
fn ends(mut child: Child) -> (Option<i32>, String) {
    let code = wait_bounded(&mut child).code();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (code, stderr)
}

#[test]
fn a_waiting_job_fails_with_the_reason_when_the_job_it_waits_for_fails() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Job 1 fails on the record `X`.
    let (job1, mut stdin, job2) =
        a_job_waiting_for_a_running_one(home.path(), dir.path(), b"ok\n", &["--", "fail-if", "X"]);
    stdin.write_all(b"X\n").unwrap();
    drop(stdin);
    assert_eq!(ends(job1).0, Some(16));
    let (code, stderr) = ends(job2);
    assert_eq!(code, Some(19), "{stderr}");
    assert!(
        stderr.ends_with(
            "wrun: error: job 2 waits for job 1, which failed: it does not run (`wrun status 1` \
             says why; once job 1 is done, `wrun retry 2` runs it)\n"
        ),
        "{stderr}"
    );
    assert_eq!(
        status_json(home.path(), Some("2"))["job"]["state"],
        "failed"
    );
}

#[test]
fn a_waiting_job_is_cancelled_by_wrun_cancel() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (job1, stdin, job2) =
        a_job_waiting_for_a_running_one(home.path(), dir.path(), b"one\n", &[]);
    let cancel = wrun_in(home.path(), &["cancel", "2"], None);
    assert_eq!(cancel.code, 0, "{}", cancel.stderr);
    // It stops waiting at once, cancelled, while job 1 still runs.
    let (code, stderr) = ends(job2);
    assert_eq!(code, Some(7), "{stderr}");
    assert!(
        stderr.contains("job 2 was cancelled while it waited for job 1"),
        "{stderr}"
    );
    assert_eq!(
        status_json(home.path(), Some("2"))["job"]["state"],
        "cancelled"
    );
    assert_eq!(
        status_json(home.path(), Some("1"))["job"]["state"],
        "running"
    );
    drop(stdin);
    succeeds(job1);
}

#[test]
fn a_reducing_jobs_output_is_refused_as_an_input_before_anything_is_recorded() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("reads.fa");
    std::fs::write(&input, ">r1\nACGTACGTAC\n>r2\nGGGCCCAAAT\n").unwrap();
    let counts = dir.path().join("counts.tsv");
    let run = wrun_in(
        home.path(),
        &[
            "submit",
            KMER_COUNT,
            "--input",
            input.to_str().unwrap(),
            "-o",
            counts.to_str().unwrap(),
            "--reduce",
            KMER_MERGE,
            "--",
            "3",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    let out = dir.path().join("out.txt");
    let run = wrun_in(home.path(), &probe_job("job:1", &out, &[]), None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "--input job:1: job 1 reduces its chunks, and only its output file holds the \
             reduced output: give that file as --input (after --after 1)"
        ),
        "{}",
        run.stderr
    );
    // Refused before it was recorded: no job 2 is left behind.
    let jobs = status_json(home.path(), None);
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{jobs}");
}
