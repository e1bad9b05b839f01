//! The dashboard's cost: the no-op job (journal on) with `wrun dashboard`
//! serving its home and a headless Chromium showing that job's page (which
//! redraws every second), against the same job with nothing watching,
//! runs alternating so both see the same machine.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{NOOP_TASK, REPEATS, Table, fmt_us, input_of_lines, wrun_binary, wrun_submit};

/// How long Chromium is given to start and load the page before the job.
const SETTLE: Duration = Duration::from_secs(3);

/// Kills its process when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn dashboard(table: &mut Table, dir: &Path, workers: usize, scale: usize) {
    let tasks = 200_000 / scale;
    let home = dir.join("dashboard-home");
    let lines = input_of_lines(dir, tasks);
    wrun_submit(&home, NOOP_TASK, &lines, workers, &[]); // job 1 fills the artifact cache
    let mut server = Command::new(wrun_binary())
        .env("WRUN_HOME", &home)
        .args(["dashboard", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wrun dashboard");
    let mut banner = String::new();
    BufReader::new(server.stderr.take().expect("stderr"))
        .read_line(&mut banner)
        .expect("the dashboard's address");
    let _server = Process(server);
    let base = banner
        .trim()
        .strip_prefix("wrun: dashboard on ")
        .expect("the dashboard's banner")
        .to_owned();
    let (mut open, mut alone) = (Vec::new(), Vec::new());
    let mut job = 1;
    for _ in 0..REPEATS {
        job += 1;
        // A profile of its own: the last Chromium may still hold its lock.
        let profile = tempfile::tempdir().expect("a Chromium profile");
        let chromium = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("{base}#/job/{job}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium (benches/run installs it)");
        let chromium = Process(chromium);
        std::thread::sleep(SETTLE);
        open.push(wrun_submit(&home, NOOP_TASK, &lines, workers, &[]).0);
        drop(chromium);
        job += 1;
        alone.push(wrun_submit(&home, NOOP_TASK, &lines, workers, &[]).0);
    }
    open.sort();
    alone.sort();
    let (open, alone) = (
        open[REPEATS / 2] / tasks as u32,
        alone[REPEATS / 2] / tasks as u32,
    );
    table.row(
        "SDK no-op, dashboard open on the job, wall per task",
        fmt_us(open),
        &format!(
            "alone {}: the dashboard costs {:+.1}% (target <= 2%)",
            fmt_us(alone),
            (open.as_secs_f64() / alone.as_secs_f64() - 1.0) * 100.0
        ),
    );
}
