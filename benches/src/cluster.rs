//! Remote dispatch: no-op tasks through a broker and two nodes on
//! loopback, against the same job in local mode, in the same run.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{NOOP_TASK, REPEATS, Table, fmt_ms, fmt_us, input_of_lines, wrun_binary, wrun_submit};

/// A `wrun broker` or `wrun node`; killed when dropped.
pub(crate) struct Process {
    pub(crate) child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    pub(crate) fn start(home: &Path, args: &[&str]) -> Process {
        let mut child = Command::new(wrun_binary())
            .env("WRUN_HOME", home)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wrun");
        let (sender, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        Process { child, lines }
    }

    /// The first line containing all of `texts` (within 60 s).
    fn wait_for_all(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if texts.iter().all(|text| line.contains(text)) => return line,
                Ok(_) => {}
                Err(_) => panic!("no {texts:?} from wrun within 60 s"),
            }
        }
    }

    pub(crate) fn wait_for(&self, text: &str) -> String {
        self.wait_for_all(&[text])
    }
}

impl Process {
    /// A broker on a free loopback port, with `extra` arguments (`--store
    /// URL`), and its endpoint.
    pub(crate) fn broker(home: &Path, extra: &[&str]) -> (Process, String) {
        let mut args = vec!["broker", "--bind", "tcp://127.0.0.1:*"];
        args.extend(extra);
        let broker = Process::start(home, &args);
        let line = broker.wait_for("listening on ");
        let endpoint = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .expect("the broker says where it listens")
            .to_owned();
        (broker, endpoint)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A broker on loopback and two nodes, `a` and `b`, with half the cores
/// each; killed when dropped.
pub(crate) struct Cluster {
    pub(crate) broker: Process,
    /// Where the broker listens.
    pub(crate) endpoint: String,
    pub(crate) nodes: Vec<Process>,
}

impl Cluster {
    /// Start it under `root` (a home per process), all on the store
    /// `store` (`file:///...`) if given, else each on its own.
    pub(crate) fn start(root: &Path, workers: usize, store: Option<&str>) -> Cluster {
        let with_store = |mut args: Vec<String>| {
            if let Some(store) = store {
                args.extend(["--store".to_owned(), store.to_owned()]);
            }
            args
        };
        let strings = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let store_args = with_store(Vec::new());
        let store_args: Vec<&str> = store_args.iter().map(String::as_str).collect();
        let (broker, endpoint) = Process::broker(&root.join("broker"), &store_args);
        let slots = (workers / 2).max(1).to_string();
        let nodes = ["a", "b"]
            .iter()
            .map(|name| {
                let args = strings(&[
                    "node",
                    "--connect",
                    &endpoint,
                    "--slots",
                    &slots,
                    "--name",
                    name,
                ]);
                let args = with_store(args);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let node = Process::start(&root.join(name), &args);
                node.wait_for("connected");
                node
            })
            .collect();
        Cluster {
            broker,
            endpoint,
            nodes,
        }
    }
}

/// `wrun submit` of the no-op task over `lines` through the broker.
pub(crate) fn remote_submit(home: &Path, endpoint: &str, lines: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new(wrun_binary())
        .env("WRUN_HOME", home)
        .args([
            "submit",
            NOOP_TASK,
            "--format",
            "lines",
            "--chunk-records",
            "1",
        ])
        .args(["--progress", "never", "--broker", endpoint, "--input"])
        .arg(lines)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run wrun");
    assert!(status.success(), "wrun submit --broker failed");
    started.elapsed()
}

pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Tasks per second through broker + 2 nodes, and one task's latency at
/// low load, each against local mode on the same machine.
pub(crate) fn remote(table: &mut Table, dir: &Path, workers: usize, scale: usize) {
    let root = dir.join("cluster");
    let Cluster {
        broker,
        endpoint,
        nodes,
    } = Cluster::start(&root, workers, None);
    let client = root.join("client");
    let local_home = root.join("local");

    let tasks = 200_000 / scale;
    let lines = input_of_lines(dir, tasks);
    let one = input_of_lines(dir, 1);
    // Warm every cache: the client's, the broker's and the nodes'.
    remote_submit(&client, &endpoint, &lines);
    wrun_submit(&local_home, NOOP_TASK, &lines, workers, &[]);
    let (mut remote, mut local, mut remote_one, mut local_one) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        remote.push(remote_submit(&client, &endpoint, &lines));
        local.push(wrun_submit(&local_home, NOOP_TASK, &lines, workers, &[]).0);
        remote_one.push(remote_submit(&client, &endpoint, &one));
        local_one.push(wrun_submit(&local_home, NOOP_TASK, &one, workers, &[]).0);
    }
    let (remote, local) = (median(remote), median(local));
    let rate = |d: Duration| tasks as f64 / d.as_secs_f64();
    table.row(
        "remote: SDK no-op via broker + 2 nodes, tasks/s",
        format!("{:.0}", rate(remote)),
        &format!(
            "{} per task; local mode {:.0} tasks/s ({} per task): remote is {:.2}x local's \
             rate (target >= 50k tasks/s)",
            fmt_us(remote / tasks as u32),
            rate(local),
            fmt_us(local / tasks as u32),
            rate(remote) / rate(local)
        ),
    );
    let (remote_one, local_one) = (median(remote_one), median(local_one));
    table.row(
        "remote: one-task job end to end (low load)",
        fmt_ms(remote_one),
        &format!(
            "local mode {}: the broker adds {}",
            fmt_ms(local_one),
            fmt_ms(remote_one.saturating_sub(local_one))
        ),
    );
    drop(nodes);
    detection(table, &root, &broker, &endpoint);
}

/// How long the broker (default heartbeat) takes to notice a node
/// that died (SIGKILL: its connection closes) and one that hangs (SIGSTOP:
/// silent, connection open), median of [`REPEATS`] each.
fn detection(table: &mut Table, root: &Path, broker: &Process, endpoint: &str) {
    let measure = |signal: &str, round: usize| {
        let name = format!("{}-{round}", signal.to_lowercase());
        let node = Process::start(
            &root.join(&name),
            &[
                "node",
                "--connect",
                endpoint,
                "--slots",
                "1",
                "--name",
                &name,
            ],
        );
        node.wait_for("connected");
        let started = Instant::now();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &node.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        broker.wait_for_all(&[&format!("node {name} ("), "queued again"]);
        started.elapsed()
    };
    for signal in ["KILL", "STOP"] {
        let times: Vec<Duration> = (0..REPEATS).map(|round| measure(signal, round)).collect();
        let what = match signal {
            "KILL" => "remote: node killed (SIGKILL), detected after",
            _ => "remote: node hung (SIGSTOP), detected after",
        };
        table.row(
            what,
            fmt_ms(median(times)),
            "default heartbeat (750 ms); target <= 3 s (a silent node is dead after 3 intervals)",
        );
    }
}
