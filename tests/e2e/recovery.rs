//! What `wrun resume` makes of a job whose process was killed (SIGKILL)
//! while a chunk ran: the dead run is an attempt, lost, in `wrun status`
//! and `wrun logs` alike; a chunk that made progress (a newer snapshot) is
//! resumed however often its process dies; one that dies three times with
//! no new snapshot is quarantined.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::snapshots::pi_args;
use crate::support::{spawn_wrun, status_json, wait_until, wrun, wrun_in};

/// One Monte Carlo run of about a thousand `step` calls: one chunk, a few
/// seconds of work.
fn pi_input(dir: &Path) -> PathBuf {
    let path = dir.join("run.txt");
    std::fs::write(&path, format!("7 {}\n", 1000u64 << 20)).unwrap();
    path
}

/// Chunk 0 of job 1 as `wrun status 1 --json` shows it.
fn chunk(home: &Path) -> Value {
    status_json(home, Some("1"))["tasks"][0].clone()
}

/// The step after which chunk 0's latest snapshot was taken (0: none).
fn snapshot_step(task: &Value) -> u64 {
    task["snapshot"]["position"]
        .as_str()
        .and_then(|p| p.strip_prefix("after step "))
        .map_or(0, |n| n.parse().unwrap())
}

/// Wait until the journal shows job 1's chunk 0 running its `attempt`th
/// attempt and `ready` holds of it; then SIGKILL the process.
fn kill_when(
    home: &Path,
    mut child: std::process::Child,
    attempt: u64,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let mut seen = Value::Null;
    wait_until(&format!("attempt {attempt} runs as wanted"), || {
        if !home.join("journal.db").exists()
            || status_json(home, None).as_array().is_none_or(Vec::is_empty)
        {
            return false;
        }
        seen = chunk(home);
        seen["state"] == "running" && seen["attempts"] == attempt && ready(&seen)
    });
    child.kill().expect("SIGKILL wrun");
    child.wait().unwrap();
    seen
}

/// `wrun logs 1 0 --json`: chunk 0's recorded attempts.
fn attempts(home: &Path) -> Vec<Value> {
    let run = wrun_in(home, &["logs", "1", "0", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_slice::<Vec<Value>>(&run.stdout).unwrap()
}

/// The outcomes of chunk 0's recorded attempts, by number.
fn outcomes(home: &Path) -> Vec<(u64, String)> {
    attempts(home)
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_chunk_whose_snapshot_advanced_is_resumed_however_often_its_process_dies() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let input = pi_input(dir.path());
    let reference = dir.path().join("reference.txt");
    let mut args = pi_args(&input, &reference, &[]);
    args.insert(1, "--no-journal");
    let run = wrun(&args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let out = dir.path().join("out.txt");
    let args = pi_args(&input, &out, &["--checkpoint-every", "2"]);
    let mut child = spawn_wrun(home, &args);
    // Killed three times (the submit and two resumes), each time only once
    // the run has snapshotted past where the previous one had: every death
    // made progress.
    let mut step = 0;
    for attempt in 1..=3 {
        let killed = kill_when(home, child, attempt, |task| snapshot_step(task) > step);
        step = snapshot_step(&killed);
        if attempt == 3 {
            break;
        }
        child = spawn_wrun(home, &["resume", "1"]);
    }
    let run = wrun_in(home, &["resume", "1"], None);
    assert_eq!(run.code, 0, "resume: {}", run.stderr);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&reference).unwrap()
    );

    // Status and logs agree: three attempts lost with their process, and
    // the one that finished.
    let task = chunk(home);
    assert_eq!(task["state"], "done");
    assert_eq!(
        (task["attempts"].as_u64(), task["lost"].as_u64()),
        (Some(4), Some(3)),
        "{task}"
    );
    assert_eq!(
        outcomes(home),
        [
            (1, "lost".into()),
            (2, "lost".into()),
            (3, "lost".into()),
            (4, "done".into())
        ]
    );
    let first = &attempts(home)[0];
    assert_eq!(first["error"], "the wrun process running it died");
    let logs = wrun_in(home, &["logs", "1", "0"], None).stdout_text();
    assert!(
        logs.contains("== chunk 0, attempt 1: the wrun process running it died"),
        "{logs}"
    );
    let table = wrun_in(home, &["status", "1"], None).stdout_text();
    assert!(table.contains("4 (3 lost)"), "{table}");
}

#[test]
fn a_chunk_that_dies_three_times_with_no_new_snapshot_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let input = pi_input(dir.path());
    let out = dir.path().join("out.txt");
    // No checkpoints: no run leaves a snapshot.
    let mut child = spawn_wrun(home, &pi_args(&input, &out, &[]));
    for attempt in 1..=3 {
        let killed = kill_when(home, child, attempt, |_| true);
        assert_eq!(snapshot_step(&killed), 0, "{killed}");
        if attempt == 3 {
            break;
        }
        child = spawn_wrun(home, &["resume", "1"]);
    }
    let run = wrun_in(home, &["resume", "1"], None);
    assert_eq!(run.code, 17, "{}", run.stderr);
    assert!(
        run.stderr.contains("died 3 times with no new snapshot"),
        "{}",
        run.stderr
    );
    let task = chunk(home);
    assert_eq!(task["state"], "failed");
    assert_eq!(task["error_kind"], "quarantined");
    assert_eq!(
        (task["attempts"].as_u64(), task["lost"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        outcomes(home),
        [(1, "lost".into()), (2, "lost".into()), (3, "lost".into())]
    );
}
