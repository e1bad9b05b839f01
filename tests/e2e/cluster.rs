//! Cluster mode on loopback: one broker and several node processes.

pub(crate) mod alloc;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::support::{
    GC_CONTENT, TASK_PROBE, repo, spawn_wrun, wait_until, wrun, wrun_binary, wrun_in,
};

/// A `wrun broker` or `wrun node` process, its standard error collected.
pub(crate) struct Peer {
    pub(crate) child: Child,
    log: Arc<Mutex<String>>,
    /// A node's name, which is also its home's.
    name: String,
}

impl Peer {
    fn start(home: &Path, args: &[&str]) -> Peer {
        std::fs::create_dir_all(home).unwrap();
        let mut child = Command::new(wrun_binary())
            .env("WRUN_HOME", home)
            .env_remove("WRUN_BROKER")
            .env_remove("WRUN_KEY")
            .args(args)
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wrun");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Peer {
            child,
            log,
            name: String::new(),
        }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub(crate) fn wait_for(&self, text: &str) {
        wait_until(&format!("the log says {text:?}"), || {
            self.log().contains(text)
        });
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A broker with a fast heartbeat, and its nodes.
pub(crate) struct Cluster {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) broker: Peer,
    endpoint: String,
    key: Option<PathBuf>,
    store: Option<String>,
    pub(crate) nodes: Vec<Peer>,
}

impl Cluster {
    pub(crate) fn start(nodes: usize) -> Cluster {
        Self::with(nodes, None, false)
    }

    fn with_key(nodes: usize, key: Option<PathBuf>) -> Cluster {
        Self::with(nodes, key, false)
    }

    /// With `shared_store`, the broker and the nodes share a store
    /// directory (`--store file://...`).
    fn with(nodes: usize, key: Option<PathBuf>, shared_store: bool) -> Cluster {
        Self::with_heartbeat(nodes, key, shared_store, Self::HEARTBEAT)
    }

    /// The broker's heartbeat: fast, so that deaths are found quickly.
    const HEARTBEAT: &str = "200ms";

    /// A cluster whose broker's heartbeat is `heartbeat`: a slower one
    /// for tests in which a node presumed dead under load would count as
    /// a move.
    pub(crate) fn with_heartbeat(
        nodes: usize,
        key: Option<PathBuf>,
        shared_store: bool,
        heartbeat: &str,
    ) -> Cluster {
        Self::build(nodes, key, heartbeat, |dir| {
            shared_store.then(|| format!("file://{}", dir.join("shared").display()))
        })
    }

    /// With every peer on the store at `url` (`s3://...`), and no shared
    /// directory.
    pub(crate) fn on_store(nodes: usize, url: &str) -> Cluster {
        Self::build(nodes, None, Self::HEARTBEAT, |_| Some(url.to_owned()))
    }

    /// `store` gives the `--store` URL, if any, from the cluster's
    /// directory.
    fn build(
        nodes: usize,
        key: Option<PathBuf>,
        heartbeat: &str,
        store: impl FnOnce(&Path) -> Option<String>,
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let (broker, endpoint) = start_broker(
            &dir.path().join("broker"),
            "*",
            key.as_deref(),
            store.as_deref(),
            heartbeat,
        );
        let mut cluster = Cluster {
            dir,
            broker,
            endpoint,
            key,
            store,
            nodes: Vec::new(),
        };
        for _ in 0..nodes {
            cluster.add_node();
        }
        cluster
    }

    fn add_node(&mut self) -> &Peer {
        self.add_node_with(&["--slots", "1"])
    }

    /// A node started with `args` (its `--slots` among them).
    pub(crate) fn add_node_with(&mut self, args: &[&str]) -> &Peer {
        let name = format!("n{}", self.nodes.len() + 1);
        let mut node = start_node(
            &self.dir.path().join(&name),
            &name,
            &self.endpoint,
            self.key.as_deref(),
            self.store.as_deref(),
            args,
        );
        node.wait_for("connected");
        node.name = name;
        self.nodes.push(node);
        self.nodes.last().unwrap()
    }

    fn client(&self) -> PathBuf {
        let home = self.dir.path().join("client");
        std::fs::create_dir_all(&home).unwrap();
        home
    }

    /// `COMMAND --broker ENDPOINT [--key KEY] ARGS`: before any task
    /// arguments after `--`.
    pub(crate) fn remote<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut args: Vec<&str> = args.to_vec();
        let mut remote = vec!["--broker", &self.endpoint];
        if let Some(key) = &self.key {
            remote.extend(["--key", key.to_str().unwrap()]);
        }
        args.splice(1..1, remote);
        args
    }

    /// `wrun ARGS` against the broker, from the client's home.
    pub(crate) fn wrun(&self, args: &[&str]) -> crate::support::Run {
        let args = self.remote(args);
        wrun_in(&self.client(), &args, None)
    }

    /// Chunks of the first job done; 0 while the broker has not accepted
    /// it yet.
    fn done(&self) -> u64 {
        let run = self.wrun(&["status", "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let jobs: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        jobs[0]["tasks"]["done"].as_u64().unwrap_or(0)
    }
}

pub(crate) fn start_broker(
    home: &Path,
    port: &str,
    key: Option<&Path>,
    store: Option<&str>,
    heartbeat: &str,
) -> (Peer, String) {
    start_broker_with(home, port, key, store, heartbeat, &[])
}

/// [`start_broker`] with the flags `extra` as well.
pub(crate) fn start_broker_with(
    home: &Path,
    port: &str,
    key: Option<&Path>,
    store: Option<&str>,
    heartbeat: &str,
    extra: &[&str],
) -> (Peer, String) {
    let bind = format!("tcp://127.0.0.1:{port}");
    let mut args = vec!["broker", "--bind", &bind, "--heartbeat", heartbeat];
    args.extend_from_slice(extra);
    if let Some(key) = key {
        args.extend(["--key", key.to_str().unwrap()]);
    }
    if let Some(store) = store {
        args.extend(["--store", store]);
    }
    let broker = Peer::start(home, &args);
    broker.wait_for("listening on ");
    let log = broker.log();
    let endpoint = log
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .to_owned();
    (broker, endpoint)
}

pub(crate) fn start_node(
    home: &Path,
    name: &str,
    endpoint: &str,
    key: Option<&Path>,
    store: Option<&str>,
    extra: &[&str],
) -> Peer {
    let mut args = vec!["node", "--connect", endpoint, "--name", name];
    args.extend_from_slice(extra);
    if let Some(key) = key {
        args.extend(["--key", key.to_str().unwrap()]);
    }
    if let Some(store) = store {
        args.extend(["--store", store]);
    }
    Peer::start(home, &args)
}

/// A job of 200 chunks of deterministic work (a few seconds on 2 cores).
fn slow_input(dir: &Path) -> PathBuf {
    let input = dir.join("work.txt");
    let lines: String = (0..400).map(|i| format!("record {i}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    input
}

fn slow_job<'a>(input: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "submit",
        TASK_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--format",
        "lines",
        "--chunk-records",
        "2",
        "-o",
        out.to_str().unwrap(),
        "--",
        "work",
        "1000000",
    ]
}

/// The same job run locally.
fn local_reference(input: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("local.txt");
    let mut args = slow_job(input, &out);
    args.insert(1, "--no-journal");
    let run = wrun(&args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::read(out).unwrap()
}

/// `wrun ARGS` against the broker, from the client's home, not waited for.
pub(crate) fn spawn_client(cluster: &Cluster, args: &[&str]) -> Child {
    spawn_wrun(&cluster.client(), &cluster.remote(args))
}

/// gc-content over the sample FASTA, into `out`.
fn gc_job<'a>(input: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "submit",
        GC_CONTENT,
        "--input",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]
}

/// `wrun resume 1` against the broker gives what local mode writes.
fn assert_resumes_to_local(cluster: &Cluster, input: &Path, out: &Path) {
    let run = cluster.wrun(&["resume", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read(out).unwrap(),
        local_reference(input, cluster.dir.path())
    );
}

pub(crate) fn wait_ok(child: Child) {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_broker_and_three_nodes_write_what_local_mode_writes() {
    let cluster = Cluster::start(3);
    let out = cluster.dir.path().join("gc.tsv");
    let input = repo().join("examples/data/reads.fa");
    let mut job = gc_job(&input, &out);
    job.extend(["--chunk-records", "5"]);
    let run = cluster.wrun(&job);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("wrun: job 1 on tcp://127.0.0.1:"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(repo().join("examples/data/reads.gc.tsv")).unwrap()
    );
    // The broker's journal has the job, and the commands reach it.
    let status = cluster.wrun(&["status", "--json"]);
    let jobs: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(jobs[0]["state"], "done");
    // It says which module, and which broker runs it, in both forms.
    assert_eq!(jobs[0]["module"], "gc_content.wasm");
    assert_eq!(jobs[0]["where"], cluster.endpoint.as_str());
    let table = cluster.wrun(&["status"]).stdout_text();
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.contains(" gc_content.wasm ") && row.contains(&format!(" {} ", cluster.endpoint)),
        "{table}"
    );
    let detail = cluster.wrun(&["status", "1", "--json"]);
    let detail: serde_json::Value = serde_json::from_slice(&detail.stdout).unwrap();
    assert_eq!(detail["job"]["where"], cluster.endpoint.as_str());
    // The broker keeps its jobs in its own home, apart from the local ones
    // of the user who started it.
    assert!(cluster.dir.path().join("broker/broker/journal.db").exists());
    assert!(!cluster.dir.path().join("broker/journal.db").exists());
    // Nothing of it is in the client's own journal.
    let local = wrun_in(&cluster.client(), &["status", "--json"], None);
    assert_eq!(local.stdout_text().trim(), "[]");
    let missing = cluster.wrun(&["logs", "7"]);
    assert_eq!(missing.code, 6, "{}", missing.stderr);
    assert!(missing.stderr.contains("no job 7"), "{}", missing.stderr);
}

/// A job of two chunks that each spin until their 1.5 s timeout: at least
/// 3 s on one node of one slot, whatever the machine.
fn spinning_job(input: &Path) -> Vec<&str> {
    vec![
        "submit",
        TASK_PROBE,
        "--input",
        input.to_str().unwrap(),
        "--format",
        "lines",
        "--chunk-records",
        "1",
        "--timeout",
        "1500ms",
        "--keep-going",
        "--",
        "spin",
    ]
}

#[test]
fn a_cluster_job_shows_the_progress_a_local_one_does() {
    let cluster = Cluster::start(1);
    let input = cluster.dir.path().join("in.txt");
    std::fs::write(&input, "a\nb\n").unwrap();
    let mut job = spinning_job(&input);
    job.splice(1..1, ["--progress", "always"]);
    let run = cluster.wrun(&job);
    assert_eq!(run.code, 12, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("wrun: job 1 on {}", cluster.endpoint)),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\x1b'), "{}", run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("wrun: progress "))
        .collect();
    crate::cli::assert_progress_lines(&lines);
    // The broker's progress reached the client: the last line, at the
    // end, has the final counts.
    let last = lines.last().expect("progress lines");
    assert!(last.contains(" 4 B/4 B (100.0%), "), "{last}");
    assert!(last.ends_with(", 2 chunks done, 2 failed"), "{last}");
}

#[test]
fn sigint_on_a_cluster_client_leaves_the_job_with_code_9_saying_how_to_go_on() {
    let cluster = Cluster::start(1);
    let input = cluster.dir.path().join("in.txt");
    std::fs::write(&input, "a\nb\nc\nd\ne\nf\ng\nh\n").unwrap();
    let mut client = spawn_client(&cluster, &spinning_job(&input));
    let stderr = BufReader::new(client.stderr.take().unwrap());
    let (lines, told) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // The client says which job it streams before the signal comes.
    let mut seen = String::new();
    wait_until("the client names its job", || {
        seen.extend(told.try_iter().map(|l| l + "\n"));
        seen.contains("wrun: job 1 on ")
    });
    signal_pid(client.id(), libc::SIGINT);
    let status = wait_bounded(&mut client);
    seen.extend(told.iter().map(|l| l + "\n"));
    assert_eq!(status.code(), Some(9), "{seen}");
    let how = format!(
        "`wrun status 1 --broker {0}`); `wrun resume 1 --broker {0}` goes on",
        cluster.endpoint
    );
    assert!(seen.contains("wrun: SIGINT: leaving job 1 on "), "{seen}");
    assert!(seen.contains(&how), "{seen}");
    // The broker stops the job when it misses the client.
    wait_until("the broker stops the job", || {
        let run = cluster.wrun(&["status", "--json"]);
        let jobs: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        jobs[0]["state"] != "running"
    });
}

/// Wait for `child` to exit, for at most the tests' process limit.
pub(crate) fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_until("the client exits", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

pub(crate) fn signal_pid(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a child process this test started and still owns.
    unsafe { libc::kill(pid as i32, signal) };
}

#[test]
fn a_node_killed_mid_job_is_detected_and_the_job_completes_the_same() {
    let mut cluster = Cluster::start(3);
    let input = slow_input(cluster.dir.path());
    let expected = local_reference(&input, cluster.dir.path());
    let out = cluster.dir.path().join("remote.txt");
    let client = spawn_client(&cluster, &slow_job(&input, &out));
    wait_until("chunks are done", || cluster.done() >= 10);
    cluster.nodes[0].kill();
    // Its connection closed; had it only gone silent, three heartbeats.
    let lost = "node n1 (127.0.0.1, 1 slots) ";
    wait_until("the broker notices", || {
        cluster
            .broker
            .log()
            .lines()
            .any(|l| l.contains(lost) && l.contains("queued again"))
    });
    wait_ok(client);
    assert_eq!(std::fs::read(&out).unwrap(), expected);
    let log = cluster.broker.log();
    let requeued: u64 = log
        .split(lost)
        .nth(1)
        .and_then(|rest| rest.split("; ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(requeued >= 1, "{log}");
    // The broker's journal tells the same: each chunk a dead node held
    // (n1, and any other the broker presumed dead on a loaded machine)
    // shows its lost dispatches, and one attempt more, in `wrun status` and
    // `wrun logs`.
    let requeued_in_all: u64 = log
        .lines()
        .filter_map(|l| l.split_once(" of its tasks queued again"))
        .filter_map(|(before, _)| before.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    let status = cluster.wrun(&["status", "1", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let detail: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let (mut lost_n1, mut lost_all) = (0, 0);
    for task in detail["tasks"].as_array().unwrap() {
        let (index, lost) = (
            task["index"].as_u64().unwrap(),
            task["lost"].as_u64().unwrap(),
        );
        assert_eq!(task["state"], "done", "{task}");
        assert_eq!(task["attempts"].as_u64(), Some(lost + 1), "{task}");
        let logs = cluster.wrun(&["logs", "1", &index.to_string(), "--json"]);
        assert_eq!(logs.code, 0, "{}", logs.stderr);
        let attempts: Vec<serde_json::Value> = serde_json::from_slice(&logs.stdout).unwrap();
        if lost == 0 {
            assert!(attempts.is_empty(), "chunk {index}: {attempts:?}");
            continue;
        }
        let told: Vec<(u64, &str)> = attempts
            .iter()
            .map(|a| {
                (
                    a["attempt"].as_u64().unwrap(),
                    a["outcome"].as_str().unwrap(),
                )
            })
            .collect();
        let mut expected: Vec<(u64, &str)> = (1..=lost).map(|n| (n, "lost")).collect();
        expected.push((lost + 1, "done"));
        assert_eq!(told, expected, "chunk {index}");
        for attempt in &attempts[..lost as usize] {
            let node = attempt["node"].as_str().unwrap();
            let reason = attempt["error"].as_str().unwrap();
            assert!(reason.starts_with(&format!("node {node} ")), "{reason}");
            assert!(log.contains(&format!("node {node} (")), "{node}: {log}");
            lost_n1 += u64::from(node == "n1");
        }
        lost_all += lost;
    }
    // n1's dispatches are lost attempts. The counts need not equal the
    // broker's requeue counts: on a loaded machine it may presume a live
    // node dead too, whose late results then settle tasks it requeued.
    assert!(lost_n1 >= 1, "{log}");
    assert!(lost_all >= lost_n1 && requeued_in_all >= 1, "{log}");
}

#[test]
fn a_node_started_after_the_job_began_takes_work() {
    let mut cluster = Cluster::start(1);
    let input = slow_input(cluster.dir.path());
    let out = cluster.dir.path().join("remote.txt");
    let client = spawn_client(&cluster, &slow_job(&input, &out));
    wait_until("chunks are done", || cluster.done() >= 5);
    let late = cluster.add_node();
    wait_until("the late node runs tasks", || {
        late.log()
            .split("idle; ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    });
    wait_ok(client);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        local_reference(&input, cluster.dir.path())
    );
}

#[test]
fn a_peer_with_a_wrong_key_gets_nothing_and_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (dir.path().join("good.key"), dir.path().join("bad.key"));
    for key in [&good, &bad] {
        let run = wrun(&["keygen", "-o", key.to_str().unwrap()], None);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let cluster = Cluster::with_key(1, Some(good.clone()));
    // A node with another key is never welcomed.
    let stranger = start_node(
        &dir.path().join("stranger"),
        "stranger",
        &cluster.endpoint,
        Some(&bad),
        None,
        &["--slots", "1"],
    );
    stranger.wait_for("no answer from the broker");
    cluster
        .broker
        .wait_for("dropped a message from 127.0.0.1: bad authentication tag");
    // Nor is a client: nothing is submitted.
    let input = repo().join("examples/data/reads.fa");
    let run = wrun_in(
        &cluster.client(),
        &[
            "submit",
            GC_CONTENT,
            "--input",
            input.to_str().unwrap(),
            "--broker",
            &cluster.endpoint,
            "--key",
            bad.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 18, "{}", run.stderr);
    // Told apart from a broker that is not there: it connected, and the
    // advice names the key.
    assert!(
        run.stderr.contains("connected to") && run.stderr.contains("another cluster key?"),
        "{}",
        run.stderr
    );
    // The right key works, and the job ran on the welcome node only.
    let listed = cluster.wrun(&["status", "--json"]);
    assert_eq!(listed.stdout_text().trim(), "[]", "{}", listed.stderr);
    let out = dir.path().join("gc.tsv");
    let run = cluster.wrun(&gc_job(&input, &out));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!stranger.log().contains("connected"), "{}", stranger.log());
    assert!(!cluster.broker.log().contains("stranger"));
}

#[test]
fn a_client_told_of_no_broker_says_nothing_accepted_the_connection() {
    // A port that was bound and released: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let run = wrun_in(
        dir.path(),
        &["status", "--broker", &format!("tcp://127.0.0.1:{port}")],
        None,
    );
    assert_eq!(run.code, 18, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot connect to tcp://127.0.0.1:")
            && run.stderr.contains("nothing accepted a connection there"),
        "{}",
        run.stderr
    );
}

#[test]
fn garbage_and_oversized_messages_do_not_crash_the_broker() {
    let cluster = Cluster::start(1);
    let context = zmq::Context::new();
    let socket = context.socket(zmq::DEALER).unwrap();
    socket.connect(&cluster.endpoint).unwrap();
    socket.send(&b"not a frame"[..], 0).unwrap();
    socket.send(vec![1u8; 200], 0).unwrap();
    socket.send_multipart([&b"a"[..], &b"b"[..]], 0).unwrap();
    cluster.broker.wait_for("not a wrun frame");
    // Larger than any message may be: the broker drops the connection.
    socket
        .send(vec![0u8; wrun_remote::protocol::MAX_MESSAGE + 1], 0)
        .unwrap();
    // Raw bytes that are not ZeroMQ at all.
    let addr = cluster.endpoint.trim_start_matches("tcp://");
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    let _ = std::io::Write::write_all(&mut raw, &[0xff; 4096]);
    drop(raw);
    // Still serving.
    let out = cluster.dir.path().join("gc.tsv");
    let input = repo().join("examples/data/reads.fa");
    let run = cluster.wrun(&gc_job(&input, &out));
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_killed_broker_loses_no_job_and_its_nodes_come_back() {
    let mut cluster = Cluster::start(2);
    let input = slow_input(cluster.dir.path());
    let out = cluster.dir.path().join("remote.txt");
    let client = spawn_client(&cluster, &slow_job(&input, &out));
    wait_until("chunks are done", || cluster.done() >= 10);
    cluster.broker.kill();
    let output = client.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(18), "{stderr}");
    assert!(stderr.contains("lost the broker"), "{stderr}");
    // Same journal, same port.
    let port = cluster.endpoint.rsplit(':').next().unwrap().to_owned();
    let (broker, _) = start_broker(
        &cluster.dir.path().join("broker"),
        &port,
        None,
        None,
        Cluster::HEARTBEAT,
    );
    cluster.broker = broker;
    for node in &cluster.nodes {
        wait_until("the node reconnects", || {
            node.log().matches("connected to").count() >= 2
        });
    }
    assert_resumes_to_local(&cluster, &input, &out);
}

#[test]
fn a_broker_without_a_key_listens_on_loopback_only() {
    let run = wrun(&["broker", "--bind", "tcp://0.0.0.0:0"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("without a cluster key"),
        "{}",
        run.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("cluster.key");
    assert_eq!(wrun(&["keygen", "-o", key.to_str().unwrap()], None).code, 0);
    let again = wrun(&["keygen", "-o", key.to_str().unwrap()], None);
    assert_eq!(again.code, 5, "{}", again.stderr);
    assert!(
        again.stderr.contains("exists there already"),
        "{}",
        again.stderr
    );
}

/// Chunks and outputs over the inline limit: fetched from the broker by
/// the nodes, or, with a shared store, passed through it both ways.
#[test]
fn large_chunks_and_outputs_travel_through_the_store() {
    for shared in [false, true] {
        let cluster = Cluster::with(2, None, shared);
        let input = cluster.dir.path().join("big.txt");
        let lines: String = (0..120_000).map(|i| format!("line {i:>24}\n")).collect();
        std::fs::write(&input, &lines).unwrap();
        let out = cluster.dir.path().join("echo.txt");
        let run = cluster.wrun(&[
            "submit",
            TASK_PROBE,
            "--input",
            input.to_str().unwrap(),
            "--format",
            "lines",
            "--chunk-bytes",
            "1500KiB",
            "-o",
            out.to_str().unwrap(),
            "--",
            "echo",
        ]);
        assert_eq!(run.code, 0, "shared store {shared}: {}", run.stderr);
        assert!(
            std::fs::read(&out).unwrap() == lines.as_bytes(),
            "shared store {shared}"
        );
        // Two chunks of 1.5 MB went by digest, fetched into the nodes' own
        // stores or read from the shared one; shared, their outputs (the
        // same bytes: the same blobs) came back through it too.
        let big = if shared {
            large_blobs(&cluster.dir.path().join("shared"))
        } else {
            let homes = cluster
                .nodes
                .iter()
                .map(|n| cluster.dir.path().join(&n.name));
            homes.map(|home| large_blobs(&home)).sum()
        };
        assert_eq!(big, 2, "shared store {shared}");
    }
}

/// Blobs over 1 MiB in the store at `root`.
fn large_blobs(root: &Path) -> usize {
    let Ok(shards) = std::fs::read_dir(root.join("blobs")) else {
        return 0;
    };
    shards
        .flatten()
        .flat_map(|shard| {
            std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|blob| blob.metadata().is_ok_and(|m| m.len() > 1 << 20))
        .count()
}

/// A job waiting for nodes that never come can still be cancelled, and
/// resumed once a node is there.
#[test]
fn a_job_with_no_nodes_is_cancelled_and_resumed_when_one_joins() {
    let mut cluster = Cluster::start(0);
    let input = slow_input(cluster.dir.path());
    let out = cluster.dir.path().join("remote.txt");
    let client = spawn_client(&cluster, &slow_job(&input, &out));
    wait_until("the broker accepts the job", || {
        cluster
            .wrun(&["status", "--json"])
            .stdout_text()
            .contains("\"running\"")
    });
    let cancel = cluster.wrun(&["cancel", "1"]);
    assert_eq!(cancel.code, 0, "{}", cancel.stderr);
    let output = client.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    cluster.add_node();
    assert_resumes_to_local(&cluster, &input, &out);
}

#[test]
fn a_job_with_no_node_says_so_and_runs_when_one_joins() {
    let mut cluster = Cluster::start(0);
    let input = slow_input(cluster.dir.path());
    let out = cluster.dir.path().join("remote.txt");
    let args = cluster.remote(&slow_job(&input, &out));
    let mut client = Peer::start(&cluster.client(), &args);
    client.wait_for("no node is connected to the broker; the job waits for one");
    cluster.add_node();
    wait_until("the job ends", || {
        client.child.try_wait().unwrap().is_some()
    });
    let status = client.child.wait().unwrap();
    assert!(status.success(), "{}", client.log());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        local_reference(&input, cluster.dir.path())
    );
}

/// A producer that stalls for longer than three heartbeats (`--input -`
/// fed by a slow pipe) does not cost the session: the input is read on a
/// thread of its own while the session stays alive.
#[test]
fn a_stalled_input_producer_keeps_its_session() {
    let cluster = Cluster::start(1);
    let input = slow_input(cluster.dir.path());
    let out = cluster.dir.path().join("echo.txt");
    // The broker's heartbeat is 200 ms: the producer stalls for five.
    let script = format!(
        "(head -n 100 {input}; sleep 1; tail -n +101 {input}) | {wrun} submit {probe} \
         --input - --format lines --chunk-records 2 -o {out} --broker {endpoint} -- echo",
        input = input.display(),
        wrun = wrun_binary().display(),
        probe = TASK_PROBE,
        out = out.display(),
        endpoint = cluster.endpoint,
    );
    let output = Command::new("sh")
        .args(["-c", &script])
        .env("WRUN_HOME", cluster.client())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&input).unwrap());
}

/// `wrun nodes --json` against the cluster, parsed.
pub(crate) fn nodes(cluster: &Cluster) -> Vec<serde_json::Value> {
    let run = cluster.wrun(&["nodes", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_slice(&run.stdout).unwrap()
}

#[test]
fn wrun_nodes_lists_connected_nodes_and_drops_a_dead_one() {
    let mut cluster = Cluster::start(2);
    let listed = nodes(&cluster);
    let names: Vec<&str> = listed.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["n1", "n2"]);
    for node in &listed {
        assert_eq!(node["slots"], 1);
        assert_eq!(node["running"], 0);
        assert_eq!(node["version"], env!("CARGO_PKG_VERSION"));
        assert!(
            node["address"].as_str().unwrap().contains("127.0.0.1"),
            "{node}"
        );
        assert!(node["last_heard_ms"].as_u64().is_some());
        // Without a walltime, and not draining.
        assert!(node["walltime_left_ms"].is_null(), "{node}");
        assert!(node["draining"].is_null(), "{node}");
    }
    let text = cluster.wrun(&["nodes"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout_text().starts_with("node "),
        "{}",
        text.stdout_text()
    );

    // A node killed without a word is presumed dead after three heartbeat
    // intervals (200 ms here) and leaves the list.
    cluster.nodes[1].kill();
    wait_until("the killed node leaves `wrun nodes`", || {
        let names: Vec<String> = nodes(&cluster)
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect();
        names == ["n1"]
    });
}

#[test]
fn wrun_nodes_needs_a_broker() {
    let dir = tempfile::tempdir().unwrap();
    let run = wrun_in(dir.path(), &["nodes"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--broker"), "{}", run.stderr);
}

/// An RFC 3339 UTC timestamp at the start of a log line.
fn stamped(line: &str) -> bool {
    regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ")
        .unwrap()
        .is_match(line)
}

#[test]
fn broker_and_node_log_lines_carry_timestamps_as_text_or_json() {
    let cluster = Cluster::start(1);
    let broker = cluster.broker.log();
    assert!(broker.contains("joined with 1 slots"), "{broker}");
    assert!(broker.lines().all(stamped), "{broker}");
    let node = cluster.nodes[0].log();
    assert!(node.lines().all(stamped), "{node}");

    let home = cluster.dir.path().join("json-node");
    let json = Peer::start(
        &home,
        &[
            "node",
            "--connect",
            &cluster.endpoint,
            "--slots",
            "1",
            "--name",
            "j1",
            "--log-format",
            "json",
        ],
    );
    json.wait_for("connected");
    let line = json.log().lines().next().unwrap().to_owned();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        stamped(&format!("{} ", event["timestamp"].as_str().unwrap())),
        "{line}"
    );
    assert_eq!(event["fields"]["node"], "j1", "{line}");
    assert_eq!(event["level"], "INFO", "{line}");
}

/// A fixed-seed xorshift64* generator: a chaos run is random in what it
/// hits, and the same run every time.
struct Chaos(u64);

impl Chaos {
    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// Send `signal` to a peer's process.
fn signal(peer: &Peer, signal: i32) {
    signal_pid(peer.child.id(), signal);
}

/// Each live node says "connected to" once more than `before` counted.
fn wait_reconnected(cluster: &Cluster, before: &[usize]) {
    for (node, &count) in cluster.nodes.iter().zip(before) {
        wait_until("the node reconnects", || {
            node.log().matches("connected to").count() > count
        });
    }
}

#[test]
fn chaos_node_kills_and_stops_and_a_broker_kill_leave_the_output_identical() {
    let mut cluster = Cluster::start(3);
    let input = slow_input(cluster.dir.path());
    let expected = local_reference(&input, cluster.dir.path());
    let out = cluster.dir.path().join("remote.txt");
    let mut rng = Chaos(0x5eed_cafe_f00d);
    let client = spawn_client(&cluster, &slow_job(&input, &out));

    // Node faults, each once more chunks are done: a SIGKILL (the node is
    // replaced) or a SIGSTOP (presumed dead after three heartbeats, its
    // tasks run elsewhere; woken at the next fault, its late results are
    // duplicates).
    let mut stopped: Option<usize> = None;
    let (mut kills, mut stops) = (0, 0);
    for step in 1..=4 {
        wait_until("more chunks are done", || cluster.done() >= step * 12);
        if let Some(node) = stopped.take() {
            signal(&cluster.nodes[node], libc::SIGCONT);
        }
        let victim = rng.below(cluster.nodes.len());
        if rng.below(2) == 0 {
            cluster.nodes[victim].kill();
            let name = format!("spare{step}");
            let spare = start_node(
                &cluster.dir.path().join(&name),
                &name,
                &cluster.endpoint,
                None,
                None,
                &["--slots", "1"],
            );
            spare.wait_for("connected");
            cluster.nodes[victim] = spare;
            kills += 1;
        } else {
            signal(&cluster.nodes[victim], libc::SIGSTOP);
            stopped = Some(victim);
            stops += 1;
        }
    }
    // This seed's run has both kinds of fault.
    assert!(kills > 0 && stops > 0, "{kills} kills, {stops} stops");
    if let Some(node) = stopped.take() {
        signal(&cluster.nodes[node], libc::SIGCONT);
    }

    // The broker dies mid-job: the client is told (exit 18); the same
    // journal on the same port takes the nodes back and the job resumes.
    wait_until("more chunks are done", || cluster.done() >= 60);
    let connected: Vec<usize> = cluster
        .nodes
        .iter()
        .map(|n| n.log().matches("connected to").count())
        .collect();
    cluster.broker.kill();
    let output = client.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(18),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let port = cluster.endpoint.rsplit(':').next().unwrap().to_owned();
    let (broker, _) = start_broker(
        &cluster.dir.path().join("broker"),
        &port,
        None,
        None,
        Cluster::HEARTBEAT,
    );
    cluster.broker = broker;
    wait_reconnected(&cluster, &connected);
    let resumed = spawn_client(&cluster, &["resume", "1"]);

    // One more node killed during the resume.
    wait_until("more chunks are done", || cluster.done() >= 100);
    let victim = rng.below(cluster.nodes.len());
    cluster.nodes[victim].kill();
    wait_ok(resumed);
    assert_eq!(std::fs::read(&out).unwrap(), expected);

    // The journal tells the truth: every chunk's attempts are the
    // dispatches that died with their node (or with the broker) plus the
    // one that finished it, and `wrun logs` lists the same lost attempts.
    let status = cluster.wrun(&["status", "1", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let detail: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let tasks = detail["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 200);
    let mut lost_total = 0;
    for task in tasks {
        assert_eq!(task["state"], "done", "{task}");
        let (attempts, lost) = (task["attempts"].as_u64(), task["lost"].as_u64());
        assert_eq!(attempts, lost.map(|l| l + 1), "{task}");
        lost_total += lost.unwrap();
    }
    assert!(lost_total > 0, "node kills lost no dispatch?");
    let logs = cluster.wrun(&["logs", "1", "--json"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    let attempts: serde_json::Value = serde_json::from_slice(&logs.stdout).unwrap();
    let logged_lost = attempts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["outcome"] == "lost")
        .count() as u64;
    assert_eq!(logged_lost, lost_total);
}
