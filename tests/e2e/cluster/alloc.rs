//! Allocation queues (`wrun alloc`) against a real batch system on this
//! machine: Slurm (`.ci/slurm-up.sh`) and Grid Engine (`.ci/sge-up.sh`).
//! Where the system does not answer, a test fails under `CI=true` and is
//! skipped (saying why) elsewhere.

use std::process::{Command, Stdio};

use super::{
    Cluster, Peer, gc_job, local_reference, nodes, slow_input, slow_job, start_broker, wait_bounded,
};
use crate::support::{repo, spawn_wrun, wait_until, wrun, wrun_in};

/// Whether the batch system whose `probe` command this is answers; under
/// CI it must.
fn available(system: &str, probe: &[&str]) -> bool {
    let answers = Command::new(probe[0])
        .args(&probe[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !answers {
        let why = format!(
            "{system} does not answer `{}` (start it with .ci/{system}-up.sh)",
            probe.join(" ")
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipped: {why}");
    }
    answers
}

pub(crate) fn slurm() -> bool {
    available("slurm", &["sinfo", "-h"])
}

fn sge() -> bool {
    available("sge", &["qstat", "-f"])
}

/// `wrun alloc SUBCOMMAND --broker ENDPOINT ARGS` from the client's home.
pub(crate) fn alloc(cluster: &Cluster, subcommand: &str, args: &[&str]) -> crate::support::Run {
    let mut all = vec!["alloc", subcommand, "--broker", &cluster.endpoint];
    all.extend(args);
    wrun_in(&cluster.client(), &all, None)
}

/// `wrun alloc ls --json`, parsed.
pub(crate) fn queues(cluster: &Cluster) -> serde_json::Value {
    let run = alloc(cluster, "ls", &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_slice(&run.stdout).unwrap()
}

/// A broker with a queue on `system` and no node: a submitted job makes it
/// submit a batch job, whose node connects and runs the job; the output is
/// local mode's; the node leaves after its idle timeout, and the
/// allocation shows as finished.
fn a_queue_starts_a_node_for_a_job_and_the_node_leaves_when_idle(system: &str) {
    let cluster = Cluster::start(0);
    let added = alloc(
        &cluster,
        "add",
        &[
            system,
            "--name",
            "q",
            "--time",
            "10m",
            "--idle-timeout",
            "2s",
            "--max-nodes",
            "1",
        ],
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert_eq!(queues(&cluster)[0]["allocations"], serde_json::json!([]));

    let out = cluster.dir.path().join("gc.tsv");
    let input = repo().join("examples/data/reads.fa");
    let run = cluster.wrun(&gc_job(&input, &out));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let local = cluster.dir.path().join("local.tsv");
    let mut job = gc_job(&input, &local);
    job.insert(1, "--no-journal");
    let reference = wrun(&job, None);
    assert_eq!(reference.code, 0, "{}", reference.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&local).unwrap());

    // The allocator notes the node's hello at its next round (each second).
    wait_until("the allocation's node is noted as connected", || {
        queues(&cluster)[0]["allocations"][0]["connected"] == true
    });
    let listed = queues(&cluster);
    let allocations = listed[0]["allocations"].as_array().unwrap();
    assert_eq!(allocations.len(), 1, "{listed}");
    let id = allocations[0]["id"].as_str().unwrap().to_owned();
    assert!(
        cluster
            .broker
            .log()
            .contains(&format!("node wrun-q-{id} (")),
        "{}",
        cluster.broker.log()
    );
    wait_until(
        "the idle node leaves and its allocation is finished",
        || queues(&cluster)[0]["allocations"][0]["state"] == "finished",
    );
    let text = alloc(&cluster, "ls", &[]).stdout_text();
    assert!(
        text.contains(&format!("  allocation {id:<12} finished  node connected\n")),
        "{text}"
    );
    // The node said why it left, in the batch system's output file.
    let logs = cluster.dir.path().join("broker/broker/alloc/q");
    let said = std::fs::read_dir(&logs)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default())
        .any(|text| text.contains("leaving: it had no work for 2s"));
    assert!(said, "no node output in {} says it left", logs.display());
}

#[test]
fn slurm_a_queue_starts_a_node_for_a_job_and_the_node_leaves_when_idle() {
    if slurm() {
        a_queue_starts_a_node_for_a_job_and_the_node_leaves_when_idle("slurm");
    }
}

#[test]
fn sge_a_queue_starts_a_node_for_a_job_and_the_node_leaves_when_idle() {
    if sge() {
        a_queue_starts_a_node_for_a_job_and_the_node_leaves_when_idle("sge");
    }
}

#[test]
fn slurm_a_queue_whose_allocations_fail_pauses_itself_with_the_reason() {
    if !slurm() {
        return;
    }
    let cluster = Cluster::start(0);
    let added = alloc(&cluster, "add", &["slurm", "--", "--partition=nope"]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let out = cluster.dir.path().join("gc.tsv");
    let input = repo().join("examples/data/reads.fa");
    let mut client = spawn_wrun(&cluster.client(), &cluster.remote(&gc_job(&input, &out)));
    wait_until("the queue pauses itself", || {
        queues(&cluster)[0]["state"] == "paused"
    });
    let listed = queues(&cluster);
    assert_eq!(listed[0]["failures"], 3, "{listed}");
    assert_eq!(
        listed[0]["reason"],
        "3 allocations failed in a row; the last: submission failed: sbatch failed (exit \
         status: 1): sbatch: error: invalid partition specified: nope; sbatch: error: Batch \
         job submission failed: Invalid partition name specified"
    );
    let text = alloc(&cluster, "ls", &[]).stdout_text();
    assert!(
        text.contains("): paused: 3 allocations failed in a row"),
        "{text}"
    );
    // Resumed, it tries again (and fails again).
    let resumed = alloc(&cluster, "resume", &["slurm"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    wait_until("the queue pauses itself again", || {
        queues(&cluster)[0]["state"] == "paused"
    });
    let removed = alloc(&cluster, "rm", &["slurm"]);
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert_eq!(queues(&cluster), serde_json::json!([]));
    let _ = client.kill();
    let _ = client.wait();
}

/// `wrun node --lifetime`: the node tells the broker its allocation, drains
/// before the end of its walltime, says goodbye and exits 0; the job
/// completes on the other node, as local mode writes it.
#[test]
fn a_node_with_a_lifetime_leaves_with_code_0_and_the_job_completes_elsewhere() {
    // A 1 s heartbeat, not the fast one: the node's goodbye must not race
    // the broker presuming it dead on a loaded machine.
    let cluster = Cluster::with_heartbeat(1, None, false, "1s");
    let home = cluster.dir.path().join("short");
    let mut short = Peer::start(
        &home,
        &[
            "node",
            "--connect",
            &cluster.endpoint,
            "--slots",
            "1",
            "--name",
            "short",
            "--lifetime",
            "2s",
            "--allocation",
            "42",
        ],
    );
    short.wait_for("connected");
    let listed = nodes(&cluster);
    let entry = listed.iter().find(|n| n["name"] == "short").unwrap();
    assert_eq!(entry["allocation"], "42", "{entry}");
    // Its lifetime is its walltime: at most 2 s of it are left.
    let left = entry["walltime_left_ms"].as_u64().expect("a walltime left");
    assert!(left <= 2_000, "{entry}");
    let table = cluster.wrun(&["nodes"]).stdout_text();
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .ends_with(" up  walltime left allocation   state"),
        "{table}"
    );
    let row = table.lines().find(|l| l.starts_with("short ")).unwrap();
    assert!(row.contains(" 42 "), "{table}");
    let input = slow_input(cluster.dir.path());
    let out = cluster.dir.path().join("out.txt");
    let run = cluster.wrun(&slow_job(&input, &out));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        local_reference(&input, cluster.dir.path())
    );
    let status = wait_bounded(&mut short.child);
    assert_eq!(status.code(), Some(0), "{}", short.log());
    assert!(
        short.log().contains("(its walltime ends at "),
        "{}",
        short.log()
    );
    cluster
        .broker
        .wait_for("node short (127.0.0.1, 1 slots) left");
}

/// Queues live in the broker's journal: a restarted broker has them, paused
/// as they were.
#[test]
fn queues_survive_a_broker_restart() {
    let mut cluster = Cluster::start(0);
    for args in [
        &["add", "slurm", "--name", "a"][..],
        &["add", "sge", "--name", "b"],
    ] {
        let run = alloc(&cluster, args[0], &args[1..]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    assert_eq!(alloc(&cluster, "pause", &["b"]).code, 0);
    let before = queues(&cluster);
    cluster.broker.kill();
    let port = cluster.endpoint.rsplit(':').next().unwrap().to_owned();
    let (broker, _) = start_broker(
        &cluster.dir.path().join("broker"),
        &port,
        None,
        None,
        Cluster::HEARTBEAT,
    );
    cluster.broker = broker;
    assert_eq!(queues(&cluster), before);
    assert_eq!(before[1]["state"], "paused");
    assert_eq!(before[1]["reason"], "paused by the user");
}

#[test]
fn alloc_commands_name_what_is_wrong() {
    let cluster = Cluster::start(0);
    let missing = alloc(&cluster, "pause", &["nope"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("no allocation queue named \"nope\""),
        "{}",
        missing.stderr
    );
    let bad = alloc(&cluster, "add", &["slurm", "--name", "a b"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("--name \"a b\": use 1 to 64 letters, digits, '-' and '_'"),
        "{}",
        bad.stderr
    );
    assert_eq!(alloc(&cluster, "add", &["pbs"]).code, 0);
    let twice = alloc(&cluster, "add", &["pbs"]);
    assert!(
        twice
            .stderr
            .contains("an allocation queue named \"pbs\" exists already"),
        "{}",
        twice.stderr
    );
    let none = wrun_in(&cluster.client(), &["alloc", "ls"], None);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("give --broker"), "{}", none.stderr);
}

#[test]
fn alloc_add_dry_run_prints_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("cluster.key");
    let run = wrun_in(
        dir.path(),
        &[
            "alloc",
            "add",
            "slurm",
            "--broker",
            "tcp://10.0.0.1:7878",
            "--key",
            key.to_str().unwrap(),
            "--slots",
            "4",
            "--time",
            "90m",
            "--dry-run",
            "--",
            "--partition=short",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let wrun = crate::support::wrun_binary();
    let expected = format!(
        "#!/bin/bash\n\
         #SBATCH --job-name=wrun-slurm\n\
         #SBATCH --time=1:30:00\n\
         #SBATCH --nodes=1\n\
         #SBATCH --ntasks=1\n\
         #SBATCH --cpus-per-task=4\n\
         #SBATCH --output={}/broker/alloc/slurm/%x-%j.out\n\
         exec '{}' node --connect 'tcp://10.0.0.1:7878' --key '{}' --slots 4 --lifetime 5400s \
         --idle-timeout 300s --allocation \"$SLURM_JOB_ID\" --name \"wrun-slurm-$SLURM_JOB_ID\"\n",
        dir.path().display(),
        wrun.display(),
        key.display(),
    );
    assert_eq!(run.stdout_text(), expected);
}
