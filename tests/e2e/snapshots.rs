//! Snapshots of running tasks end to end: a killed job resumes from them,
//! fuel exhaustion suspends, SIGTERM drains, `wrun snapshot` checkpoints a
//! live job, and a snapshot that does not verify is never resumed from.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::Value;
use wrun_runtime::{
    Checkpointing, Chunk, Ended, Limits, Requests, Runtime, SuspendReason, TaskRunner,
};
use wrun_store::{BlobStore, Digest};

use crate::support::{PI, TASK_PROBE, spawn_wrun, status_json, wait_until, wrun, wrun_in};

/// Two Monte Carlo runs of `samples` points: one chunk each.
pub(crate) fn pi_input(dir: &Path, samples: u64) -> PathBuf {
    let path = dir.join("runs.txt");
    std::fs::write(&path, format!("11 {samples}\n12 {samples}\n")).unwrap();
    path
}

/// pi over `input`, one chunk a record, into `out`, with `extra` flags.
pub(crate) fn pi_args<'a>(input: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "submit",
        PI,
        "--input",
        input.to_str().unwrap(),
        "--chunk-records",
        "1",
        "-j",
        "2",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

/// What an uninterrupted run writes.
pub(crate) fn reference(input: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("reference.txt");
    let mut args = pi_args(input, &out, &[]);
    args.insert(1, "--no-journal");
    let run = wrun(&args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::read(out).unwrap()
}

/// Steps after which each task's latest snapshot was taken (0: none).
fn snapshot_steps(home: &Path) -> Vec<u64> {
    status_json(home, Some("1"))["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["snapshot"]["position"]
                .as_str()
                .and_then(|p| p.strip_prefix("after step "))
                .map_or(0, |n| n.parse().unwrap())
        })
        .collect()
}

/// Start `wrun args…` and wait until both of its chunks run.
fn spawn_running(home: &Path, args: &[&str]) -> std::process::Child {
    let child = spawn_wrun(home, args);
    wait_until("both chunks run", || {
        home.join("journal.db").exists()
            && status_json(home, None)
                .as_array()
                .is_some_and(|jobs| jobs.first().is_some_and(|j| j["tasks"]["running"] == 2))
    });
    child
}

fn job_logs(home: &Path) -> String {
    wrun_in(home, &["logs", "1"], None).stdout_text()
}

#[test]
fn a_killed_job_resumes_from_its_snapshots_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let input = pi_input(dir.path(), 400_000_000);
    let expected = reference(&input, dir.path());
    // Kill at different points of the runs: after the first snapshots,
    // and well into them.
    for kill_after in [1, 60] {
        let home = tempfile::tempdir().unwrap();
        let out = dir.path().join(format!("out-{kill_after}.txt"));
        let args = pi_args(&input, &out, &["--checkpoint-every", "2"]);
        let mut child = spawn_wrun(home.path(), &args);
        wait_until(&format!("a snapshot after step {kill_after}"), || {
            home.path().join("journal.db").exists()
                && status_json(home.path(), None)
                    .as_array()
                    .is_some_and(|jobs| !jobs.is_empty())
                && snapshot_steps(home.path()).iter().any(|&s| s >= kill_after)
        });
        child.kill().expect("SIGKILL wrun submit");
        child.wait().unwrap();
        let before = snapshot_steps(home.path());
        assert!(before.iter().any(|&s| s >= kill_after), "{before:?}");

        let run = wrun_in(home.path(), &["resume", "1"], None);
        assert_eq!(run.code, 0, "resume: {}", run.stderr);
        assert_eq!(
            std::fs::read(&out).unwrap(),
            expected,
            "output after a kill at step {kill_after}"
        );
        // Every snapshot restored: none was rejected.
        let logs = job_logs(home.path());
        assert!(!logs.contains("not resuming"), "{logs}");
        let job = &status_json(home.path(), None)[0];
        assert_eq!(job["state"], "done");
    }
}

#[test]
fn fuel_exhaustion_suspends_and_add_fuel_finishes_with_the_same_output_and_fuel() {
    let dir = tempfile::tempdir().unwrap();
    let input = pi_input(dir.path(), 20_000_000);
    let expected = reference(&input, dir.path());

    // The fuel each chunk needs, from an uninterrupted metered run.
    let home = tempfile::tempdir().unwrap();
    let out = dir.path().join("metered.txt");
    let run = wrun_in(
        home.path(),
        &pi_args(&input, &out, &["--fuel", "100000000000"]),
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let needed = fuel_used(home.path());
    assert_eq!(std::fs::read(&out).unwrap(), expected);

    // With 40% of it, every chunk runs out and is suspended.
    let home = tempfile::tempdir().unwrap();
    let out = dir.path().join("suspended.txt");
    let budget = needed.iter().max().unwrap() * 2 / 5;
    let budget_text = budget.to_string();
    let args = pi_args(
        &input,
        &out,
        &["--fuel", &budget_text, "--checkpoint-every", "3"],
    );
    let run = wrun_in(home.path(), &args, None);
    assert_eq!(run.code, 9, "suspended: {}", run.stderr);
    assert!(run.stderr.contains("--add-fuel"), "{}", run.stderr);
    let job = &status_json(home.path(), None)[0];
    assert_eq!(job["state"], "suspended");
    let detail = status_json(home.path(), Some("1"));
    for task in detail["tasks"].as_array().unwrap() {
        assert_eq!(task["state"], "suspended", "{task}");
        assert_eq!(task["suspended"], "fuel", "{task}");
        assert!(task["snapshot"]["fuel_used"].as_u64().unwrap() <= budget);
    }

    // Twice: the first top-up is not enough either.
    let add = (budget / 2).to_string();
    let run = wrun_in(home.path(), &["resume", "1", "--add-fuel", &add], None);
    assert_eq!(run.code, 9, "still short: {}", run.stderr);
    let add = (needed.iter().max().unwrap() * 2).to_string();
    let run = wrun_in(home.path(), &["resume", "1", "--add-fuel", &add], None);
    assert_eq!(run.code, 0, "resumed: {}", run.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
    // The fuel counted is the uninterrupted run's: what ran before a
    // snapshot is counted once, what ran after it (and was lost) not.
    assert_eq!(fuel_used(home.path()), needed);
    assert!(!job_logs(home.path()).contains("not resuming"));
}

pub(crate) fn fuel_used(home: &Path) -> Vec<u64> {
    status_json(home, Some("1"))["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["fuel_used"].as_u64().expect("metered"))
        .collect()
}

#[test]
fn sigterm_drains_running_tasks_into_snapshots_and_resume_finishes() {
    let dir = tempfile::tempdir().unwrap();
    // Seconds of work per chunk: still running when the signal comes.
    let input = pi_input(dir.path(), 1_000_000_000);
    let home = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let mut child = spawn_running(home.path(), &pi_args(&input, &out, &[]));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(9), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    let job = &status_json(home.path(), None)[0];
    assert_eq!(job["state"], "suspended", "{job}");
    let detail = status_json(home.path(), Some("1"));
    let steps: Vec<u64> = snapshot_steps(home.path());
    for task in detail["tasks"].as_array().unwrap() {
        assert_eq!(task["state"], "suspended", "{task}");
        assert_eq!(task["suspended"], "drain", "{task}");
    }
    assert!(steps.iter().all(|&s| s > 0), "{steps:?}");

    let run = wrun_in(home.path(), &["resume", "1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!job_logs(home.path()).contains("not resuming"));
    assert_eq!(std::fs::read(&out).unwrap(), reference(&input, dir.path()));
}

#[test]
fn wrun_snapshot_checkpoints_a_live_job() {
    let dir = tempfile::tempdir().unwrap();
    let input = pi_input(dir.path(), 1_000_000_000);
    let home = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let mut child = spawn_running(home.path(), &pi_args(&input, &out, &[]));
    let run = wrun_in(home.path(), &["snapshot", "1", "--json"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let answer: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(answer["request"], 1);
    let tasks = answer["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "{answer}");
    for task in tasks {
        let position = task["snapshot"]["position"].as_str().unwrap();
        assert!(position.starts_with("after step "), "{answer}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(snapshot_steps(home.path()).iter().all(|&s| s > 0));
    // Not running any more: nothing to snapshot.
    let run = wrun_in(home.path(), &["snapshot", "1"], None);
    assert_eq!(run.code, 8, "{}", run.stderr);
    assert!(run.stderr.contains("not running"), "{}", run.stderr);
}

/// The runtime directly: a pi task suspended for fuel, and the snapshot it
/// left, intact or damaged.
struct Suspension {
    _dir: tempfile::TempDir,
    store: BlobStore,
    runner: TaskRunner,
    chunk: Bytes,
    records: Vec<u32>,
    snapshot: Digest,
    expected: Vec<u8>,
}

fn suspend_pi() -> Suspension {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_local(&dir.path().join("store")).unwrap();
    let bytes = std::fs::read(PI).unwrap();
    let chunk = Bytes::from_static(b"5 3000000\n");
    let records = vec![0u32];
    let run = |fuel: Option<u64>, resume: Option<Digest>| {
        let limits = Limits {
            fuel,
            ..Limits::default()
        };
        let runtime = Runtime::new(limits, 1).unwrap();
        let module = runtime.admit(PI, &bytes).unwrap();
        let runner = runtime.task_runner(&module, &[]).unwrap();
        let requests = Requests::default();
        let checkpointing = Checkpointing {
            store: &store,
            resume,
            every: Some(wrun_runtime::Every::Calls(1)),
            requests: &requests,
            suspend_on_fuel: true,
            on_checkpoint: &|_| {},
        };
        let chunk = Chunk {
            data: &chunk,
            records: &records,
        };
        (runner.run_checkpointed(chunk, &checkpointing), runner)
    };
    let (finished, _) = run(Some(u64::MAX / 4), None);
    let Ok(Ended::Finished(expected)) = finished else {
        panic!("the uninterrupted run finishes")
    };
    let budget = expected.fuel_used.unwrap() / 2;
    let (suspended, runner) = run(Some(budget), None);
    let Ok(Ended::Suspended(suspended)) = suspended else {
        panic!("half the fuel suspends")
    };
    assert_eq!(suspended.reason, SuspendReason::Fuel);
    let snapshot = suspended
        .resume_from
        .expect("snapshots every step")
        .snapshot
        .digest;
    drop(runner);
    // Resumes run with all the fuel they need.
    let (_, runner) = run(Some(u64::MAX / 4), None);
    Suspension {
        _dir: dir,
        store,
        runner,
        chunk,
        records,
        snapshot,
        expected: expected.output,
    }
}

impl Suspension {
    /// Resume from `snapshot` with `runner`: the output and the log.
    fn resume(&self, runner: &TaskRunner, snapshot: Digest) -> (Vec<u8>, String) {
        let requests = Requests::default();
        let checkpointing = Checkpointing {
            store: &self.store,
            resume: Some(snapshot),
            every: None,
            requests: &requests,
            suspend_on_fuel: true,
            on_checkpoint: &|_| {},
        };
        let chunk = Chunk {
            data: &self.chunk,
            records: &self.records,
        };
        match runner.run_checkpointed(chunk, &checkpointing) {
            Ok(Ended::Finished(output)) => (output.output, String::from_utf8(output.log).unwrap()),
            other => panic!("the resumed run finishes: {other:?}"),
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self._dir
            .path()
            .join("store/blobs")
            .join(&hex[..2])
            .join(hex)
    }
}

#[test]
fn a_good_snapshot_resumes_to_the_same_bytes() {
    let suspension = suspend_pi();
    let (output, log) = suspension.resume(&suspension.runner, suspension.snapshot);
    assert_eq!(output, suspension.expected);
    assert!(log.is_empty(), "{log}");
}

#[test]
fn a_corrupted_page_is_rejected_and_the_chunk_starts_over() {
    let suspension = suspend_pi();
    let path = suspension.blob_path(&suspension.snapshot);
    let mut bytes = std::fs::read(&path).unwrap();
    // The last byte is in the data: a stored page or piece of output.
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5a;
    std::fs::write(&path, bytes).unwrap();
    let (output, log) = suspension.resume(&suspension.runner, suspension.snapshot);
    assert_eq!(output, suspension.expected);
    assert!(log.contains("not resuming from a snapshot"), "{log}");
    assert!(log.contains("missing from the store or corrupt"), "{log}");
}

#[test]
fn a_truncated_manifest_is_rejected_and_the_chunk_starts_over() {
    let suspension = suspend_pi();
    let bytes = std::fs::read(suspension.blob_path(&suspension.snapshot)).unwrap();
    // A blob that is intact in the store (named by its own digest) but
    // whose manifest is cut short.
    let truncated = suspension.store.put(&bytes[..40]).unwrap();
    let (output, log) = suspension.resume(&suspension.runner, truncated);
    assert_eq!(output, suspension.expected);
    assert!(log.contains("is malformed"), "{log}");
}

#[test]
fn a_snapshot_of_another_module_is_rejected() {
    let suspension = suspend_pi();
    let runtime = Runtime::new(Limits::default(), 1).unwrap();
    let bytes = std::fs::read(TASK_PROBE).unwrap();
    let module = runtime.admit("probe", &bytes).unwrap();
    let probe = runtime.task_runner(&module, &["echo".to_owned()]).unwrap();
    let (output, log) = suspension.resume(&probe, suspension.snapshot);
    assert!(log.contains("taken of another module"), "{log}");
    // The probe ran its chunk from the start instead: it echoes it.
    assert_eq!(output, suspension.chunk);
}
