//! A large data file through a cluster without a shared store: a job
//! granted a 100 MB `--data` file through a broker and two fresh nodes,
//! each on its own store (they fetch the blob from the broker in 16 MiB
//! parts), against the same job with all three on one shared `file://`
//! store (the nodes find the blob there). Every sample starts a fresh
//! cluster, so that each pays the fetch; the two kinds alternate.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, median};
use crate::{NOOP_TASK, REPEATS, Table, fmt_ms, input_of_lines, wrun_binary};

/// The data file's size in bytes.
const SIZE: usize = 100 << 20;

/// `wrun submit` of the no-op task over `lines` (a task per line) with the
/// data file `data`, through the broker at `endpoint`.
fn submit(home: &Path, endpoint: &str, lines: &Path, data: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new(wrun_binary())
        .env("WRUN_HOME", home)
        .args(["submit", NOOP_TASK, "--format", "lines", "--chunk-records"])
        .args(["1", "--progress", "never", "--broker", endpoint, "--input"])
        .arg(lines)
        .arg("--data")
        .arg(format!("ref={}", data.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run wrun");
    assert!(status.success(), "wrun submit --data --broker failed");
    started.elapsed()
}

pub(crate) fn fetch(table: &mut Table, dir: &Path, workers: usize) {
    let root = dir.join("fetch");
    std::fs::create_dir_all(&root).unwrap();
    let data = root.join("ref.bin");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&data, bytes).unwrap();
    let lines = input_of_lines(&root, 4);
    // The client's own store holds the blob after the first job: every
    // sample then costs the client the same (a hash of the file).
    let client = root.join("client");
    let (mut own, mut shared) = (Vec::new(), Vec::new());
    for sample in 0..REPEATS {
        let sample_root = root.join(format!("own-{sample}"));
        let cluster = Cluster::start(&sample_root, workers, None);
        own.push(submit(&client, &cluster.endpoint, &lines, &data));
        drop(cluster);
        let _ = std::fs::remove_dir_all(&sample_root);

        let sample_root = root.join(format!("shared-{sample}"));
        let store = format!("file://{}", sample_root.join("store").display());
        let cluster = Cluster::start(&sample_root, workers, Some(&store));
        shared.push(submit(&client, &cluster.endpoint, &lines, &data));
        drop(cluster);
        let _ = std::fs::remove_dir_all(&sample_root);
    }
    let (own, shared) = (median(own), median(shared));
    let what = "fetch: no-op job, 4 tasks, 100 MB --data, broker + 2 fresh nodes";
    table.row(
        &format!("{what}, own stores (ranged fetch)"),
        fmt_ms(own),
        &format!(
            "{:.2}x the shared file:// store ({}), where the nodes find the blob",
            own.as_secs_f64() / shared.as_secs_f64(),
            fmt_ms(shared)
        ),
    );
}
