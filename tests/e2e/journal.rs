//! The journal end to end: killed and resumed jobs, cancel, retry, the job
//! commands and their output.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{
    TASK_PROBE, assert_golden, spawn_wrun, status_json, wait_until, wrun, wrun_in,
};

/// Lines for the `work` probe: 600 records, 150 chunks of 4.
pub(crate) fn work_input(dir: &Path) -> PathBuf {
    let text: String = (0..600)
        .map(|i| format!("record {i:04} {}\n", "acgt".repeat(i % 7 + 1)))
        .collect();
    let path = dir.join("in.txt");
    std::fs::write(&path, text).unwrap();
    path
}

/// Iterations of the probe's hash per record: about 2.5 ms.
const WORK: &str = "150000";

pub(crate) fn work_args<'a>(input: &'a Path, out: &'a Path) -> Vec<&'a str> {
    work_args_with(input, out, WORK)
}

/// The job, with `work` iterations per record.
pub(crate) fn work_args_with<'a>(input: &'a Path, out: &'a Path, work: &'a str) -> Vec<&'a str> {
    vec![
        "submit",
        TASK_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--format",
        "lines",
        "--chunk-records",
        "4",
        "-j",
        "2",
        "-o",
        out.to_str().unwrap(),
        "--",
        "work",
        work,
    ]
}

/// What an uninterrupted run writes.
pub(crate) fn reference(input: &Path, dir: &Path) -> Vec<u8> {
    reference_with(input, dir, WORK)
}

fn reference_with(input: &Path, dir: &Path, work: &str) -> Vec<u8> {
    let out = dir.join("reference.txt");
    let mut args = work_args_with(input, &out, work);
    args.insert(1, "--no-journal");
    let run = wrun(&args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::read(out).unwrap()
}

fn done_count(home: &Path) -> u64 {
    let jobs = status_json(home, None);
    jobs[0]["tasks"]["done"].as_u64().unwrap_or(0)
}

/// The rows of the tasks done so far: index -> (finished_at, attempts).
fn done_tasks(home: &Path) -> Vec<(u64, String, u64)> {
    let detail = status_json(home, Some("1"));
    detail["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "done")
        .map(|t| {
            (
                t["index"].as_u64().unwrap(),
                t["finished_at"].as_str().unwrap().to_owned(),
                t["attempts"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Start the job, SIGKILL it once `done` chunks are committed, and return
/// what was committed at that moment.
pub(crate) fn kill_after(home: &Path, args: &[&str], done: u64) -> Vec<(u64, String, u64)> {
    let mut child = spawn_wrun(home, args);
    wait_until("the job is recorded", || {
        home.join("journal.db").exists() && status_json(home, None)[0]["id"] == 1
    });
    wait_until(&format!("{done} chunks are done"), || {
        done_count(home) >= done
    });
    child.kill().expect("SIGKILL wrun submit");
    child.wait().unwrap();
    let job = &status_json(home, None)[0];
    assert_eq!(
        job["state"], "interrupted",
        "killed after {done} chunks: {job}"
    );
    done_tasks(home)
}

#[test]
fn a_killed_submit_resumes_to_the_same_bytes_at_any_kill_point() {
    let dir = tempfile::tempdir().unwrap();
    let input = work_input(dir.path());
    let expected = reference(&input, dir.path());
    for kill_at in [0, 1, 40, 110] {
        let home = tempfile::tempdir().unwrap();
        let out = dir.path().join(format!("out-{kill_at}.txt"));
        let args = work_args(&input, &out);
        let committed = kill_after(home.path(), &args, kill_at);
        assert!(committed.len() as u64 >= kill_at);
        assert!(committed.len() < 150, "killed before the end");

        let run = wrun_in(home.path(), &["resume", "1"], None);
        assert_eq!(
            run.code, 0,
            "resume after kill at {kill_at}: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            expected,
            "output after a kill at {kill_at} chunks"
        );
        // Nothing committed was run again.
        let after = done_tasks(home.path());
        assert_eq!(after.len(), 150);
        for task in &committed {
            assert!(after.contains(task), "chunk {} ran twice", task.0);
        }
        let job = &status_json(home.path(), None)[0];
        assert_eq!(job["state"], "done");
        assert_eq!(job["tasks_total"], 150);
        assert_eq!(job["runs"], 2);
        // `wrun output` re-assembles the same bytes from the journal.
        let run = wrun_in(home.path(), &["output", "1"], None);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stdout, expected);
    }
}

#[test]
fn the_same_submit_again_resumes_and_fresh_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let input = work_input(dir.path());
    let expected = reference(&input, dir.path());
    let out = dir.path().join("out.txt");
    let args = work_args(&input, &out);
    let committed = kill_after(home.path(), &args, 20);

    let run = wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "wrun: resuming job 1, which has {} chunks finished (--fresh starts a new job instead)\n",
            committed.len()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&out).unwrap(), expected);
    let jobs = status_json(home.path(), None);
    assert_eq!(jobs.as_array().unwrap().len(), 1);

    // Done now: the same submit starts a new job; so does --fresh.
    let run = wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut fresh = args.clone();
    fresh.insert(1, "--fresh");
    assert_eq!(wrun_in(home.path(), &fresh, None).code, 0);
    let jobs = status_json(home.path(), None);
    let ids: Vec<_> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}

#[test]
fn cancel_stops_a_running_job_and_resume_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let input = work_input(dir.path());
    let expected = reference(&input, dir.path());
    let out = dir.path().join("out.txt");
    let args = work_args(&input, &out);
    let child = spawn_wrun(home.path(), &args);
    wait_until("the job is recorded", || {
        home.path().join("journal.db").exists() && status_json(home.path(), None)[0]["id"] == 1
    });
    wait_until("a chunk is done", || done_count(home.path()) >= 1);
    let run = wrun_in(home.path(), &["cancel", "1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout_text(),
        "job 1: cancel requested; it stops once its running chunks finish\n"
    );
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(7));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("wrun: error: job 1: cancelled; "),
        "{stderr}"
    );
    let job = &status_json(home.path(), None)[0];
    assert_eq!(job["state"], "cancelled");
    assert!(job["tasks"]["cancelled"].as_u64().unwrap() > 0, "{job}");
    assert_eq!(job["tasks"]["running"], 0);

    // Cancelling a cancelled job is refused; resuming it finishes it.
    let run = wrun_in(home.path(), &["cancel", "1", "--json"], None);
    assert_eq!(run.code, 8);
    assert_eq!(run.stderr, "wrun: error: job 1 is cancelled, not running\n");
    let run = wrun_in(home.path(), &["resume", "1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}

/// A small job of the probe in `mode` over five records, two per chunk.
pub(crate) fn probe_job(
    home: &Path,
    dir: &Path,
    name: &str,
    flags: &[&str],
    mode: &[&str],
) -> (PathBuf, crate::support::Run) {
    let input = dir.join("in.txt");
    std::fs::write(&input, "a\nb\nX\nc\nd\n").unwrap();
    let mut args = vec![
        "submit",
        TASK_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--chunk-records",
        "2",
        "-j",
        "1",
        "--name",
        name,
    ];
    args.extend(flags);
    args.push("--");
    args.extend(mode);
    let run = wrun_in(home, &args, None);
    (input, run)
}

/// A job whose chunk 1 fails (on the record `X`).
fn failing_job(home: &Path, dir: &Path, keep_going: bool) -> (PathBuf, crate::support::Run) {
    let flags: &[&str] = if keep_going { &["--keep-going"] } else { &[] };
    probe_job(home, dir, "probe", flags, &["fail-if", "X"])
}

/// Make a status or logs text comparable from run to run: temp paths,
/// times, durations and digests vary; alignment follows their widths.
fn normalize(text: &str, dir: &Path) -> String {
    let text = text.replace(&dir.display().to_string(), "<tmp>");
    let text = text.replace(crate::support::repo().to_str().unwrap(), "<repo>");
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").unwrap();
    let wall = regex::Regex::new(r"\b\d+\.\d\d(ms|s)\b").unwrap();
    let digest = regex::Regex::new(r"blake3 [0-9a-f]{16}").unwrap();
    let spaces = regex::Regex::new(r" {2,}").unwrap();
    let rate = regex::Regex::new(r"in \d+\.\d{3}s \([^)]+/s\)").unwrap();
    // Which chunk is slowest varies too.
    let slowest = regex::Regex::new(r"slowest: .*").unwrap();
    let text = time.replace_all(&text, "<time>");
    let text = rate.replace_all(&text, "in <secs> (<rate>)");
    let text = slowest.replace_all(&text, "slowest: <chunks>");
    let text = wall.replace_all(&text, "<wall>");
    let text = digest.replace_all(&text, "blake3 <digest>");
    spaces.replace_all(&text, "  ").into_owned()
}

#[test]
fn status_and_logs_show_jobs_tasks_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    // Job 1 fails a chunk and goes on; job 2 logs; job 3 stops at its
    // failure.
    let (input, run) = failing_job(home.path(), dir.path(), true);
    assert_eq!(run.code, 16, "{}", run.stderr);
    // Chunk 1 holds `X` and `c`.
    assert_eq!(run.stdout_text(), "a\nb\nd\n");
    assert_golden(
        "submit-keep-going.stderr",
        &normalize(&run.stderr, dir.path()),
    );
    let (_, run) = probe_job(home.path(), dir.path(), "logger", &[], &["log"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let run = wrun_in(home.path(), &["status"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_golden("status.txt", &normalize(&run.stdout_text(), dir.path()));
    let run = wrun_in(home.path(), &["status", "1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_golden("status-job.txt", &normalize(&run.stdout_text(), dir.path()));
    let mut logs = String::new();
    for job in ["1", "2"] {
        let run = wrun_in(home.path(), &["logs", job], None);
        assert_eq!(run.code, 0, "{}", run.stderr);
        logs += &format!("$ wrun logs {job}\n{}", run.stdout_text());
    }
    assert_golden("logs.txt", &normalize(&logs, dir.path()));

    let (_, run) = failing_job(home.path(), dir.path(), false);
    assert_eq!(run.code, 16, "{}", run.stderr);
    assert_golden(
        "submit-fail-fast.stderr",
        &normalize(&run.stderr, dir.path()),
    );

    // JSON: the same facts, for programs.
    let jobs = status_json(home.path(), None);
    assert_eq!(jobs[0]["state"], "failed");
    assert_eq!(jobs[0]["name"], "probe");
    assert_eq!(jobs[0]["tasks"]["done"], 2);
    assert_eq!(jobs[0]["tasks"]["failed"], 1);
    assert_eq!(jobs[0]["tasks_total"], 3);
    assert_eq!(jobs[0]["input"], input.to_str().unwrap());
    assert_eq!(jobs[1]["state"], "done");
    assert_eq!(jobs[1]["progress"], 1.0);
    // Job 3 stopped at chunk 1. Chunk 2 is done if a worker ran it before
    // the failure was seen, cancelled if it was made but not run, absent
    // if the reader had not made it yet.
    let detail = status_json(home.path(), Some("3"));
    let states: Vec<&str> = detail["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert!(
        matches!(
            states.as_slice(),
            ["done", "failed"] | ["done", "failed", "cancelled" | "done"]
        ),
        "{states:?}"
    );
    assert_eq!(detail["tasks"][1]["error_kind"], "guest");
    assert_eq!(detail["spec"]["args"], serde_json::json!(["fail-if", "X"]));
    let logs: Value =
        serde_json::from_slice(&wrun_in(home.path(), &["logs", "3", "1", "--json"], None).stdout)
            .unwrap();
    assert_eq!(logs[0]["task"], 1);
    assert_eq!(logs[0]["outcome"], "guest");
    assert_eq!(logs[0]["error"], "task failed: record contains \"X\"");

    // Filters: header line plus one per job.
    let lines = |args: &[&str]| {
        let run = wrun_in(home.path(), args, None);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        run.stdout_text().lines().count() - 1
    };
    assert_eq!(lines(&["status", "--state", "failed"]), 2);
    assert_eq!(lines(&["status", "--state", "done", "--name", "log"]), 1);
    assert_eq!(lines(&["status", "--name", "other"]), 0);
    assert_eq!(lines(&["status", "--since", "1h"]), 3);
    assert_eq!(lines(&["status", "1", "--state", "done"]) - 9, 2);
    let bad = wrun_in(home.path(), &["status", "--state", "sleeping"], None);
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stderr,
        "wrun: error: unknown job state \"sleeping\": use one of running, waiting, interrupted, suspended, done, failed, cancelled\n"
    );
}

#[test]
fn retry_output_and_rm_act_on_recorded_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_, run) = failing_job(home.path(), dir.path(), false);
    assert_eq!(run.code, 16);

    // The chunks before the failure stay done; `output` writes them.
    let run = wrun_in(home.path(), &["output", "1"], None);
    assert_eq!(run.code, 8);
    assert_eq!(run.stdout_text(), "a\nb\n");
    assert_eq!(
        run.stderr,
        "wrun: error: job 1: chunk 1 is failed; the output of every chunk before it was written\n"
    );
    // Resume refuses a failed job; retry runs the failed chunk again,
    // which fails the same way (tasks are deterministic).
    let run = wrun_in(home.path(), &["resume", "1"], None);
    assert_eq!(run.code, 8);
    assert_eq!(
        run.stderr,
        "wrun: error: job 1 failed; `wrun retry 1` runs its failed chunks again\n"
    );
    let run = wrun_in(home.path(), &["retry", "1"], None);
    assert_eq!(run.code, 16, "{}", run.stderr);
    let detail = status_json(home.path(), Some("1"));
    assert_eq!(detail["job"]["runs"], 2);
    assert_eq!(
        detail["tasks"][0]["attempts"], 1,
        "done chunks are not run again"
    );
    assert_eq!(detail["tasks"][1]["attempts"], 2);
    let logs: Value =
        serde_json::from_slice(&wrun_in(home.path(), &["logs", "1", "--json"], None).stdout)
            .unwrap();
    let attempts: Vec<_> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].clone())
        .collect();
    assert_eq!(attempts, [1, 2]);

    let run = wrun_in(home.path(), &["rm", "1"], None);
    assert_eq!(
        (run.code, run.stdout_text().as_str()),
        (0, "removed job 1\n")
    );
    let run = wrun_in(home.path(), &["status", "1"], None);
    assert_eq!(run.code, 6);
    assert_eq!(run.stderr, "wrun: error: no job 1 in the journal\n");
    assert_eq!(status_json(home.path(), None), serde_json::json!([]));
    let (_, run) = failing_job(home.path(), dir.path(), false);
    assert_eq!(run.code, 16);
    let run = wrun_in(home.path(), &["rm", "2", "--json"], None);
    assert_eq!(run.stdout_text(), "{\"removed\":[2]}\n");
}

#[test]
fn a_corrupt_journal_is_reported_and_left_alone() {
    let home = tempfile::tempdir().unwrap();
    let journal = home.path().join("journal.db");
    let garbage = b"not a journal at all; ".repeat(100);
    std::fs::write(&journal, &garbage).unwrap();
    let (fasta, _) = crate::support::sample();
    for args in [
        vec!["status"],
        vec!["submit", TASK_PROBE, "--input", fasta.to_str().unwrap()],
    ] {
        let run = wrun_in(home.path(), &args, None);
        assert_eq!(run.code, 6, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with(&format!(
                "wrun: error: the journal {} is corrupt (",
                journal.display()
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.ends_with("); move it away to start a new one\n"));
    }
    assert_eq!(std::fs::read(&journal).unwrap(), garbage);
    // Without the journal the job still runs.
    let run = wrun_in(
        home.path(),
        &[
            "submit",
            "--no-journal",
            TASK_PROBE,
            "--input",
            fasta.to_str().unwrap(),
            "--",
            "count",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn an_unwritable_output_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (fasta, _) = crate::support::sample();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let out = not_a_dir.join("out.tsv");
    let run = wrun_in(
        home.path(),
        &[
            "submit",
            TASK_PROBE,
            "--input",
            fasta.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 5);
    assert_eq!(
        run.stderr,
        format!(
            "wrun: error: cannot create {}: Not a directory (os error 20)\n",
            out.display()
        )
    );
    assert_eq!(status_json(home.path(), None), serde_json::json!([]));
}

#[test]
fn without_cache_or_journal_wrun_needs_no_home() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let home = not_a_dir.join("home");
    let (fasta, _) = crate::support::sample();
    let args = [
        "submit",
        TASK_PROBE,
        "--input",
        fasta.to_str().unwrap(),
        "--",
        "count",
    ];
    let mut bare = args.to_vec();
    bare.splice(1..1, ["--no-cache", "--no-journal"]);
    let run = wrun_in(&home, &bare, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // One `records=N bytes=M` line per chunk.
    let records: u64 = run
        .stdout_text()
        .lines()
        .map(|line| {
            line["records=".len()..line.find(' ').unwrap()]
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(records, 1200);
    // The journal needs the home.
    let run = wrun_in(&home, &args, None);
    assert_ne!(run.code, 0);
}

#[test]
fn an_adaptive_job_resumes_cutting_the_chunks_it_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let input = work_input(dir.path());
    // Four times the usual work: seconds, not a fraction of one, so that
    // the job cannot finish before it is killed however loaded the
    // machine is.
    let work = "600000";
    let expected = reference_with(&input, dir.path(), work);
    let out = dir.path().join("out.txt");
    let mut args = work_args_with(&input, &out, work);
    // Adaptive instead of 4 records a chunk: sizes follow measured cost.
    let at = args.iter().position(|&a| a == "--chunk-records").unwrap();
    args.splice(
        at..at + 2,
        ["--chunking", "adaptive", "--target-task-time", "30ms"],
    );
    let mut child = spawn_wrun(home.path(), &args);
    wait_until("the job is recorded", || {
        home.path().join("journal.db").exists() && status_json(home.path(), None)[0]["id"] == 1
    });
    // Killed as soon as a chunk is done: the earlier the kill, the more of
    // the job is left however slowly a loaded machine polls (waiting for
    // a third chunk once let the job finish first).
    wait_until("a chunk is done", || done_count(home.path()) >= 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let before = status_json(home.path(), Some("1"))["tasks"].clone();
    assert_eq!(status_json(home.path(), None)[0]["state"], "interrupted");

    let run = wrun_in(home.path(), &["resume", "1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
    // Every chunk recorded before the kill kept its byte range; the done
    // ones were not run again.
    let after = status_json(home.path(), Some("1"))["tasks"].clone();
    for task in before.as_array().unwrap() {
        let index = task["index"].as_u64().unwrap() as usize;
        assert_eq!(after[index]["offset"], task["offset"], "chunk {index}");
        assert_eq!(after[index]["len"], task["len"], "chunk {index}");
        if task["state"] == "done" {
            assert_eq!(after[index]["finished_at"], task["finished_at"]);
        }
    }
}

#[test]
fn a_full_disk_leaves_a_resumable_job_that_does_not_claim_to_be_complete() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let input = work_input(dir.path());
    // Writes to /dev/full fail with ENOSPC.
    let mut args = work_args(&input, Path::new("/dev/full"));
    let last = args.len() - 1;
    args[last] = "1000";
    let run = wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("wrun: error: job 1: cannot write /dev/full: ")
            && run
                .stderr
                .ends_with("; nothing done is lost: `wrun resume 1` goes on\n"),
        "{}",
        run.stderr
    );
    let job = &status_json(home.path(), None)[0];
    assert_eq!(job["state"], "interrupted", "{job}");
    // Whether every chunk finished (its output stored in the journal)
    // before the buffered write to /dev/full failed depends on timing.
    // Either way the job is not complete, and `wrun output` writes exactly
    // what is stored: the whole output when every chunk is done, else
    // the chunks before the first missing one and an error.
    let done = job["tasks"]["done"].as_u64().unwrap();
    let all_done = job["tasks_total"].as_u64() == Some(done);
    let copy = dir.path().join("o");
    let run = wrun_in(
        home.path(),
        &["output", "1", "-o", copy.to_str().unwrap()],
        None,
    );
    if all_done {
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            reference_with(&input, dir.path(), "1000")
        );
    } else {
        // `wrun output` does not pass off a prefix as the whole output.
        assert_eq!(run.code, 8, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("; the output of every chunk before it was written"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn the_same_submit_while_the_job_runs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let input = work_input(dir.path());
    let out = dir.path().join("out.txt");
    let mut args = work_args(&input, &out);
    // Long enough (tens of seconds) to be surely running; it is killed.
    let last = args.len() - 1;
    args[last] = "5000000";
    let mut child = spawn_wrun(home.path(), &args);
    wait_until("the job is running", || {
        home.path().join("journal.db").exists()
            && status_json(home.path(), None)[0]["state"] == "running"
    });
    let run = wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 8, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "wrun: error: job 1, with the same module, input, options and output, is running in \
         another process (`wrun status 1`); --fresh starts another anyway\n"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status_json(home.path(), None).as_array().unwrap().len(), 1);
}
