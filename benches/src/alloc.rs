//! An allocation queue on the machine's Slurm (`.ci/slurm-up.sh`): the time
//! from submitting a one-task job to a broker with no node to its result
//! (the queue's sbatch, Slurm's scheduling, the node's start and hello, the
//! task), against what Slurm alone takes from `sbatch --wrap` to the job's
//! start, measured in the same run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cluster::{Process, median, remote_submit};
use crate::{REPEATS, Table, fmt_ms, input_of_lines, wrun_binary};

/// Median submit-to-first-result through a Slurm queue, and sbatch's
/// submit-to-start.
pub(crate) fn first_result(table: &mut Table, dir: &Path) {
    let slurm = Command::new("sinfo")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !slurm {
        table.row(
            "alloc: zero nodes to first result (Slurm)",
            "skipped",
            "no Slurm answers `sinfo` (start one with .ci/slurm-up.sh)",
        );
        return;
    }
    let root = dir.join("alloc");
    let (broker, endpoint) = Process::broker(&root.join("broker"), &[]);
    let client = root.join("client");
    let wrun = |args: &[&str]| {
        let status = Command::new(wrun_binary())
            .env("WRUN_HOME", &client)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("run wrun");
        assert!(status.success(), "wrun {args:?} failed");
    };
    wrun(&[
        "alloc",
        "add",
        "slurm",
        "--broker",
        &endpoint,
        "--time",
        "10m",
        "--idle-timeout",
        "1s",
        "--max-nodes",
        "1",
    ]);
    let one = input_of_lines(dir, 1);
    let (mut queued, mut sbatch) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        queued.push(remote_submit(&client, &endpoint, &one));
        sbatch.push(sbatch_to_start(&root));
        // The next round starts with no node: this one leaves when idle.
        broker.wait_for("left;");
    }
    let (queued, sbatch) = (median(queued), median(sbatch));
    table.row(
        "alloc: zero nodes to first result (Slurm, loopback)",
        fmt_ms(queued),
        &format!(
            "sbatch --wrap submit-to-start {}: {:.2}x it (Slurm starts batch jobs on a 1 s \
             tick)",
            fmt_ms(sbatch),
            queued.as_secs_f64() / sbatch.as_secs_f64()
        ),
    );
}

/// From `sbatch --wrap` to the job's first command, by the clock.
fn sbatch_to_start(root: &Path) -> Duration {
    let mark = root.join("started");
    let _ = std::fs::remove_file(&mark);
    let since_epoch = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let submitted = since_epoch();
    let status = Command::new("sbatch")
        .args(["--parsable", "-o", "/dev/null", "--wrap"])
        .arg(format!("date +%s.%N > {}", mark.display()))
        .stdout(Stdio::null())
        .status()
        .expect("run sbatch");
    assert!(status.success(), "sbatch failed");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(started) = std::fs::read_to_string(&mark)
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok())
        {
            return Duration::from_secs_f64(started).saturating_sub(submitted);
        }
        assert!(
            Instant::now() < deadline,
            "the sbatch job did not start in 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
