//! Tasks that move between nodes: a node drained (SIGUSR1, SIGTERM) or
//! killed hands its running tasks to the next node, which resumes each from
//! its latest snapshot, to the bytes and the fuel of an uninterrupted run;
//! `wrun snapshot` and fuel suspension for `--broker` jobs.

use std::process::Child;

use serde_json::Value;

use crate::cluster::alloc::{alloc, queues, slurm};
use crate::cluster::{Cluster, signal_pid, spawn_client, wait_bounded, wait_ok};
use crate::snapshots::{fuel_used, pi_args, pi_input, reference};
use crate::support::{wait_until, wrun_in};

/// The broker's `wrun status 1 --json`.
fn detail(cluster: &Cluster) -> Value {
    let run = cluster.wrun(&["status", "1", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_slice(&run.stdout).unwrap()
}

/// The fuel each chunk of job 1 used, as the broker's journal has it.
fn remote_fuel(cluster: &Cluster) -> Vec<u64> {
    detail(cluster)["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["fuel_used"].as_u64().expect("metered"))
        .collect()
}

/// Steps after which each chunk's latest snapshot was taken (0: none), as
/// the broker's journal has them; empty before the job is accepted.
fn steps(cluster: &Cluster) -> Vec<u64> {
    let run = cluster.wrun(&["status", "1", "--json"]);
    if run.code != 0 {
        return Vec::new();
    }
    let detail: Value = serde_json::from_slice(&run.stdout).unwrap();
    detail["tasks"]
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

/// Start a node (n1) with two slots and a client running `args` (a pi job
/// of two chunks), and wait until both chunks have a snapshot; the client.
fn running_with_snapshots(cluster: &mut Cluster, args: &[&str]) -> Child {
    cluster.add_node_with(&["--slots", "2"]);
    let client = spawn_client(cluster, args);
    wait_until("both chunks have a snapshot", || {
        let steps = steps(cluster);
        steps.len() == 2 && steps.iter().all(|&s| s > 0)
    });
    client
}

/// Every chunk moved from `node`, which `how` ("drained (SIGUSR1)"), and
/// went on from a snapshot at least as far as the one it had then
/// (`before`, in steps): not from the start of its chunk. (On a loaded
/// machine a node may also be presumed dead once more: a further move,
/// from a later snapshot.)
fn assert_moved(cluster: &Cluster, node: &str, how: &str, before: &[u64]) {
    let detail = detail(cluster);
    for (task, &before) in detail["tasks"].as_array().unwrap().iter().zip(before) {
        assert_eq!(task["state"], "done", "{task}");
        let lost = task["lost"].as_u64().unwrap();
        assert!(lost >= 1, "{task}");
        assert_eq!(task["attempts"].as_u64(), Some(lost + 1), "{task}");
        let resumed = task["resumed_from"]["position"].as_str().unwrap_or("");
        let step: u64 = resumed
            .strip_prefix("after step ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not resumed from a snapshot: {task}"));
        assert!(step >= before, "{task}");
        let index = task["index"].as_u64().unwrap().to_string();
        let logs = cluster.wrun(&["logs", "1", &index, "--json"]);
        assert_eq!(logs.code, 0, "{}", logs.stderr);
        let attempts: Vec<Value> = serde_json::from_slice(&logs.stdout).unwrap();
        assert_eq!(attempts.len() as u64, lost + 1, "{attempts:?}");
        let (last, moves) = attempts.split_last().unwrap();
        assert!(moves.iter().all(|a| a["outcome"] == "lost"), "{attempts:?}");
        assert_eq!(moves[0]["node"], node);
        let reason = moves[0]["error"].as_str().unwrap();
        assert!(
            reason.starts_with(&format!("node {node} {how}")),
            "{reason}\n{}",
            cluster.broker.log()
        );
        assert_eq!(last["outcome"], "done");
        assert!(
            !last["log"].as_str().unwrap().contains("not resuming"),
            "{attempts:?}"
        );
    }
    let text = cluster.wrun(&["status", "1"]).stdout_text();
    for index in 0..2 {
        let moved = format!("chunk {index} moved ");
        assert!(text.contains(&moved), "{text}");
    }
    assert!(
        text.contains("; its last move resumed from the snapshot after step "),
        "{text}"
    );
}

/// Fuel metered, a snapshot every 50 steps.
const METERED: [&str; 4] = ["--fuel", "1000000000000", "--checkpoint-every", "50"];

/// The [`METERED`] pi job on `input`, run locally: its home (whose journal
/// has each chunk's fuel) and its output.
fn metered_local_run(cluster: &Cluster, input: &std::path::Path) -> (tempfile::TempDir, Vec<u8>) {
    let local = tempfile::tempdir().unwrap();
    let local_out = cluster.dir.path().join("local.txt");
    let run = wrun_in(local.path(), &pi_args(input, &local_out, &METERED), None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    (local, std::fs::read(&local_out).unwrap())
}

/// Drain n1 with `signal` mid-run; n2 finishes the job, to the bytes and
/// the fuel of a local run.
fn drained_by(signal: i32, name: &str) {
    let mut cluster = Cluster::with_heartbeat(0, None, false, "1s");
    let input = pi_input(cluster.dir.path(), 1_500_000_000);
    let (local, expected) = metered_local_run(&cluster, &input);
    let out = cluster.dir.path().join("out.txt");
    let client = running_with_snapshots(&mut cluster, &pi_args(&input, &out, &METERED));
    signal_pid(cluster.nodes[0].child.id(), signal);
    let status = wait_bounded(&mut cluster.nodes[0].child);
    let log = cluster.nodes[0].log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains(&format!("draining ({name})")), "{log}");
    assert!(log.contains(&format!("drained ({name}); leaving")), "{log}");
    let before = steps(&cluster);
    assert!(before.iter().all(|&s| s > 0), "{before:?}");
    cluster.add_node_with(&["--slots", "2"]);
    wait_ok(client);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
    assert_moved(&cluster, "n1", &format!("drained ({name})"), &before);
    assert_eq!(remote_fuel(&cluster), fuel_used(local.path()));
}

#[test]
fn a_node_drained_by_sigusr1_hands_its_tasks_to_the_next_from_their_snapshots() {
    drained_by(libc::SIGUSR1, "SIGUSR1");
}

#[test]
fn a_node_drained_by_sigterm_exits_0_and_its_tasks_resume_elsewhere() {
    drained_by(libc::SIGTERM, "SIGTERM");
}

#[test]
fn a_node_killed_mid_task_leaves_its_tasks_to_resume_elsewhere_from_their_snapshots() {
    let mut cluster = Cluster::with_heartbeat(0, None, false, "1s");
    let input = pi_input(cluster.dir.path(), 1_500_000_000);
    let expected = reference(&input, cluster.dir.path());
    let out = cluster.dir.path().join("out.txt");
    let args = pi_args(&input, &out, &["--checkpoint-every", "50"]);
    let client = running_with_snapshots(&mut cluster, &args);
    cluster.nodes[0].kill();
    cluster.broker.wait_for("node n1 (127.0.0.1, 2 slots) ");
    let before = steps(&cluster);
    cluster.add_node_with(&["--slots", "2"]);
    wait_ok(client);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
    assert_moved(&cluster, "n1", "", &before);
}

#[test]
fn wrun_snapshot_checkpoints_a_live_broker_job_on_its_nodes() {
    let mut cluster = Cluster::with_heartbeat(0, None, false, "1s");
    cluster.add_node_with(&["--slots", "2"]);
    let input = pi_input(cluster.dir.path(), 4_000_000_000);
    let out = cluster.dir.path().join("out.txt");
    // No periodic snapshots: only the one asked for.
    let mut client = spawn_client(&cluster, &pi_args(&input, &out, &[]));
    wait_until("both chunks run", || {
        let run = cluster.wrun(&["status", "--json"]);
        let jobs: Value = serde_json::from_slice(&run.stdout).unwrap_or(Value::Null);
        jobs[0]["tasks"]["running"] == 2
    });
    assert_eq!(steps(&cluster), [0, 0]);
    let run = cluster.wrun(&["snapshot", "1", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let answer: Value = serde_json::from_slice(&run.stdout).unwrap();
    // The answer lists the snapshots that reached the broker before it was
    // sent (on a loaded machine, possibly none yet); each is after a step.
    for task in answer["tasks"].as_array().unwrap() {
        let position = task["snapshot"]["position"].as_str().unwrap();
        assert!(position.starts_with("after step "), "{answer}");
    }
    // Without periodic snapshots, only the request can have taken them:
    // the node snapshots every task it runs.
    wait_until("both chunks have the snapshot asked for", || {
        steps(&cluster).iter().all(|&s| s > 0)
    });
    let _ = client.kill();
    let _ = client.wait();
}

#[test]
fn a_broker_job_out_of_fuel_is_suspended_and_add_fuel_finishes_it_with_the_same_fuel() {
    let mut cluster = Cluster::with_heartbeat(0, None, false, "1s");
    cluster.add_node_with(&["--slots", "2"]);
    let input = pi_input(cluster.dir.path(), 20_000_000);
    // The fuel each chunk needs, from an uninterrupted local run.
    let local = tempfile::tempdir().unwrap();
    let local_out = cluster.dir.path().join("local.txt");
    let metered = ["--fuel", "100000000000"];
    let run = wrun_in(local.path(), &pi_args(&input, &local_out, &metered), None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let needed = fuel_used(local.path());
    let expected = std::fs::read(&local_out).unwrap();

    // With 40% of it every chunk runs out on its node and is suspended.
    let budget = needed.iter().max().unwrap() * 2 / 5;
    let budget = budget.to_string();
    let out = cluster.dir.path().join("out.txt");
    let args = pi_args(
        &input,
        &out,
        &["--fuel", &budget, "--checkpoint-every", "3"],
    );
    let run = cluster.wrun(&args);
    assert_eq!(run.code, 9, "suspended: {}", run.stderr);
    assert!(run.stderr.contains("--add-fuel"), "{}", run.stderr);
    // The first chunk is suspended; the job stops there, like a local
    // one, and a later chunk is suspended too or left queued with its
    // latest snapshot, to go on from it.
    let detail = detail(&cluster);
    let tasks = detail["tasks"].as_array().unwrap();
    assert_eq!(tasks[0]["state"], "suspended", "{detail}");
    assert_eq!(tasks[0]["suspended"], "fuel", "{detail}");
    for task in tasks {
        assert!(task["snapshot"]["position"].is_string(), "{task}");
    }
    let add = (needed.iter().max().unwrap() * 2).to_string();
    let run = cluster.wrun(&["resume", "1", "--add-fuel", &add]);
    assert_eq!(run.code, 0, "resumed: {}", run.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
    assert_eq!(remote_fuel(&cluster), needed);
}

#[test]
fn a_node_drains_before_its_walltime_ends_and_exits_0() {
    let mut cluster = Cluster::with_heartbeat(0, None, false, "1s");
    let input = pi_input(cluster.dir.path(), 1_500_000_000);
    let expected = reference(&input, cluster.dir.path());
    let out = cluster.dir.path().join("out.txt");
    let client = spawn_client(
        &cluster,
        &pi_args(&input, &out, &["--checkpoint-every", "50"]),
    );
    let ends = std::time::SystemTime::now() + std::time::Duration::from_secs(8);
    let until = humantime::format_rfc3339_seconds(ends).to_string();
    cluster.add_node_with(&["--slots", "2", "--until", &until, "--drain-before", "5s"]);
    // `wrun nodes` shows the walltime it has left.
    let mut left = None;
    wait_until("the node is listed", || {
        left = crate::cluster::nodes(&cluster)
            .first()
            .map(|node| node["walltime_left_ms"].as_u64());
        left.is_some()
    });
    let left = left.flatten().expect("a walltime left");
    assert!(left <= 8_000, "{left} ms");
    let status = wait_bounded(&mut cluster.nodes[0].child);
    let log = cluster.nodes[0].log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains(&format!(
            "walltime ends at {until} (--until); draining 5s before"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("draining (its walltime ends at {until})")),
        "{log}"
    );
    cluster.add_node_with(&["--slots", "2"]);
    wait_ok(client);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}

/// Issue (b) on a real Slurm: a node that an allocation queue started is
/// signalled with `scancel --batch --signal=USR1`, as `sbatch
/// --signal=USR1@...` does before the time limit; it drains and exits 0,
/// its allocation ends, the queue starts the next one for the waiting
/// work, and that node resumes every chunk from its snapshot, to the bytes
/// and the fuel of a local run.
#[test]
fn a_slurm_node_signalled_before_its_walltime_hands_its_tasks_to_the_next_allocation() {
    if !slurm() {
        return;
    }
    let cluster = Cluster::with_heartbeat(0, None, false, "1s");
    let input = pi_input(cluster.dir.path(), 1_500_000_000);
    let (local, expected) = metered_local_run(&cluster, &input);
    let added = alloc(
        &cluster,
        "add",
        &[
            "slurm",
            "--name",
            "mig",
            "--time",
            "10m",
            "--slots",
            "2",
            "--max-nodes",
            "1",
            "--idle-timeout",
            "5s",
        ],
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let out = cluster.dir.path().join("out.txt");
    let client = spawn_client(&cluster, &pi_args(&input, &out, &METERED));
    wait_until("both chunks have a snapshot", || {
        let steps = steps(&cluster);
        steps.len() == 2 && steps.iter().all(|&s| s > 0)
    });
    let first = queues(&cluster)[0]["allocations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let signalled = std::process::Command::new("scancel")
        .args(["--batch", "--signal=USR1", &first])
        .status()
        .unwrap();
    assert!(signalled.success());
    wait_until("the signalled allocation is finished", || {
        queues(&cluster)[0]["allocations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == first.as_str() && a["state"] == "finished")
    });
    let before = steps(&cluster);
    wait_ok(client);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
    assert_moved(
        &cluster,
        &format!("wrun-mig-{first}"),
        "drained (SIGUSR1)",
        &before,
    );
    assert_eq!(remote_fuel(&cluster), fuel_used(local.path()));
    let listed = queues(&cluster);
    assert!(
        listed[0]["allocations"].as_array().unwrap().len() >= 2,
        "{listed}"
    );
}
