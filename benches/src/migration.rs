//! One migration of a running task with 256 MiB of memory between nodes:
//! its node drains (SIGUSR1) half-way through the chunk, the snapshot goes
//! to the broker through the shared store, and the next node resumes it;
//! against rerunning the chunk from its start, which loses the half done.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::cluster::{Process, median};
use crate::snapshot::module;
use crate::{REPEATS, Table, fmt_ms, wrun_binary};

/// Steps of the chunk, and the spin of each (about 10 ms of CPU).
const STEPS: u32 = 600;
const SPIN: u32 = 20_000_000;

/// Start `wrun node` named `name`; returns once it is connected.
fn node(root: &Path, endpoint: &str, store: &str, name: &str) -> Process {
    let node = Process::start(
        &root.join(name),
        &[
            "node",
            "--connect",
            endpoint,
            "--store",
            store,
            "--slots",
            "1",
            "--name",
            name,
        ],
    );
    node.wait_for("connected");
    node
}

/// `wrun submit --broker` of the benchmark task over a one-line input
/// (distinct per run: a new job each time), not waited for; snapshotted
/// every second, as a job run on nodes with a walltime would be, so that
/// the drain's snapshot holds only the pages written since the last one.
fn submit(root: &Path, endpoint: &str, module: &Path, run: usize) -> Child {
    let input = root.join(format!("input-{run}.txt"));
    std::fs::write(&input, format!("run {run}\n")).expect("write the input");
    Command::new(wrun_binary())
        .env("WRUN_HOME", root.join("client"))
        .arg("submit")
        .arg(module)
        .args([
            "--broker",
            endpoint,
            "--format",
            "lines",
            "--progress",
            "never",
        ])
        .args(["--checkpoint-every", "1s"])
        .arg("--input")
        .arg(&input)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run wrun submit")
}

fn finish(mut client: Child) {
    assert!(
        client.wait().expect("wait for wrun").success(),
        "the job failed"
    );
}

/// The chunk uninterrupted, then drained half-way and resumed on the next
/// node (started once the first left, as the next allocation would be).
pub(crate) fn migration(table: &mut Table, dir: &Path) {
    let root = dir.join("migration");
    std::fs::create_dir_all(&root).expect("create the benchmark directory");
    let module_path = root.join("migration.wasm");
    std::fs::write(&module_path, module(STEPS, SPIN)).expect("write the module");
    let store = format!("file://{}", root.join("shared").display());
    let (broker, endpoint) = Process::broker(&root.join("broker"), &["--store", &store]);

    let mut run = 0;
    let mut whole = Vec::new();
    for _ in 0..REPEATS {
        run += 1;
        let _node = node(&root, &endpoint, &store, &format!("whole-{run}"));
        let started = Instant::now();
        finish(submit(&root, &endpoint, &module_path, run));
        whole.push(started.elapsed());
    }
    let whole = median(whole);

    let (mut moved, mut drains) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        run += 1;
        let mut first = node(&root, &endpoint, &store, &format!("first-{run}"));
        let started = Instant::now();
        let client = submit(&root, &endpoint, &module_path, run);
        std::thread::sleep(whole / 2);
        let signalled = Instant::now();
        let sent = Command::new("kill")
            .args(["-USR1", &first.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        first.wait_for("drained (SIGUSR1); leaving");
        drains.push(signalled.elapsed());
        let _ = first.child.wait();
        let _next = node(&root, &endpoint, &store, &format!("next-{run}"));
        finish(client);
        moved.push(started.elapsed());
    }
    let (moved, drain) = (median(moved), median(drains));
    let cost = moved.saturating_sub(whole);
    let rerun = whole / 2;
    table.row(
        "migration: task with 256 MiB memory, drained half-way and resumed on the next node",
        fmt_ms(cost),
        &format!(
            "added to the uninterrupted {} (drain {}, snapshot via the shared store, next node's \
             start, restore; --checkpoint-every 1s); rerunning the chunk from its start would add {}: {:.1}x the \
             migration",
            fmt_ms(whole),
            fmt_ms(drain),
            fmt_ms(rerun),
            rerun.as_secs_f64() / cost.as_secs_f64().max(1e-3)
        ),
    );
    drop(broker);
}
