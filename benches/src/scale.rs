//! The broker at cluster scale, by simulation: many nodes on loopback,
//! simulated in this process, each a session that speaks the real
//! protocol (`wrun-protocol`: sealed hello, welcome, session frames) with
//! a few slots, and answers every task it is assigned at once with an
//! empty result, as a no-op task would. A real `wrun broker` and a real
//! `wrun submit --broker` client run the job, so what grows with the
//! node count is the broker's own work per node and per task.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wrun_remote::key::ClusterKey;
use wrun_remote::protocol::{
    self, Data, Hello, Outcome, PROTOCOL_VERSION, Role, TaskResult, ToBroker, ToPeer, Welcome,
};
use wrun_remote::transport::{self, Endpoint};
use wrun_remote::wire::{self, FrameKey, Kind, Nonce, Opener, Sealer};

use crate::cluster::{Process, median, remote_submit};
use crate::{REPEATS, Table, fmt_ms, fmt_us, input_of_lines};

/// Node counts simulated (2: as `benches/run cluster` runs real ones).
const NODES: [usize; 5] = [1, 2, 16, 64, 256];
/// Slots of each simulated node.
const SLOTS: u32 = 4;
/// Credit each simulated node keeps granted per slot, granted again as it
/// answers. A real node asks for more for tiny tasks (about 20 ms of work
/// per slot, by its measured task time; `host/remote/src/node.rs`); a
/// fixed grant keeps the credit in flight proportional to the node count.
const CREDIT_PER_SLOT: u32 = 16;
/// How long the idle heartbeat traffic is measured.
const IDLE: Duration = Duration::from_secs(3);
/// How often the simulation looks at its heartbeat timers.
const TIMER_EVERY: Duration = Duration::from_millis(10);
/// One-task jobs run at low load, for the latency percentiles.
const ONE_TASK_JOBS: usize = 11;

/// One simulated node's session.
enum State {
    /// Hello sent with this nonce; waiting for the welcome.
    Connecting(Nonce),
    /// Welcomed.
    Live {
        sealer: Sealer,
        opener: Opener,
        heartbeat: Duration,
        last_sent: Instant,
        /// When it last granted credit, while it waits for tasks.
        granted_at: Option<Instant>,
    },
}

struct SimNode {
    socket: zmq::Socket,
    state: State,
}

/// What the simulated nodes count, read by the benchmark as they run.
#[derive(Default)]
struct Counters {
    /// Nodes welcomed.
    live: AtomicUsize,
    /// Heartbeats sent to the broker, and their bytes (sealed frames).
    heartbeats: AtomicU64,
    heartbeat_bytes: AtomicU64,
    /// Heartbeats received from the broker.
    heartbeats_in: AtomicU64,
    /// Tasks answered.
    tasks: AtomicU64,
    /// From a node's grant of credit to the tasks it brought, in µs.
    turnaround_us: Mutex<Vec<u32>>,
    stop: AtomicBool,
}

/// Simulated nodes on their own thread; stopped when dropped.
struct Simulation {
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl Simulation {
    /// `count` nodes connecting to `endpoint` with the loopback default key.
    fn start(endpoint: &str, count: usize) -> Simulation {
        let counters = Arc::new(Counters::default());
        let endpoint = Endpoint::parse(endpoint).expect("the broker's endpoint");
        let shared = counters.clone();
        let thread = std::thread::spawn(move || simulate(&endpoint, count, &shared));
        Simulation {
            counters,
            thread: Some(thread),
        }
    }

    /// Wait (at most 60 s) until every node is welcomed.
    fn wait_live(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.counters.live.load(Ordering::Acquire) < count {
            assert!(
                Instant::now() < deadline,
                "{count} nodes not welcomed in 60 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Simulation {
    fn drop(&mut self) {
        self.counters.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The simulation's loop: connect every node, then answer the broker
/// until told to stop.
fn simulate(endpoint: &Endpoint, count: usize, counters: &Counters) {
    let context = zmq::Context::new();
    let key = ClusterKey::loopback_default();
    let (hello_key, welcome_key) = (FrameKey::hello(&key), FrameKey::welcome(&key));
    let mut nodes: Vec<SimNode> = (0..count)
        .map(|i| {
            let socket = transport::dealer(&context, endpoint).expect("a dealer socket");
            let nonce = wire::nonce();
            let hello = Hello {
                version: PROTOCOL_VERSION,
                role: Role::Node {
                    name: format!("sim-{i}"),
                    slots: SLOTS,
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    allocation: None,
                    walltime_left_ms: None,
                },
            };
            let frame = wire::seal(
                &hello_key,
                Kind::Hello,
                &nonce,
                0,
                &protocol::encode(&hello),
            );
            socket.send(frame, 0).expect("send a hello");
            SimNode {
                socket,
                state: State::Connecting(nonce),
            }
        })
        .collect();
    // Woken through each socket's ZMQ_FD in one epoll set, so a wake-up
    // costs the sockets that have something, not all of them (zmq_poll
    // would look at every socket each time, work that grows with the node
    // count and competes with the broker for the cores). ZMQ_FD only says
    // that a socket's state may have changed: each woken socket is read
    // until it has nothing, and every socket is swept at each timer round.
    let ready = Ready::new(&nodes);
    let mut timers_at = Instant::now();
    while !counters.stop.load(Ordering::Acquire) {
        for i in ready.wait(5) {
            nodes[i].drain(&key, &welcome_key, counters);
        }
        let now = Instant::now();
        if now.duration_since(timers_at) >= TIMER_EVERY {
            timers_at = now;
            for node in &mut nodes {
                node.heartbeat(now, counters);
                node.drain(&key, &welcome_key, counters);
            }
        }
    }
}

/// An epoll set over the simulated nodes' ZMQ_FDs.
struct Ready {
    epoll: std::os::fd::OwnedFd,
}

impl Ready {
    fn new(nodes: &[SimNode]) -> Ready {
        use std::os::fd::FromRawFd;
        // SAFETY: epoll_create1 has no preconditions; its result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(
            fd >= 0,
            "epoll_create1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let epoll = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        for (i, node) in nodes.iter().enumerate() {
            let socket_fd = node.socket.get_fd().expect("a socket's ZMQ_FD");
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: both descriptors are open and `event` outlives the call.
            let added =
                unsafe { libc::epoll_ctl(fd, libc::EPOLL_CTL_ADD, socket_fd, &raw mut event) };
            assert_eq!(added, 0, "epoll_ctl: {}", std::io::Error::last_os_error());
        }
        Ready { epoll }
    }

    /// The nodes whose sockets may have something, waiting at most
    /// `timeout_ms`.
    fn wait(&self, timeout_ms: i32) -> Vec<usize> {
        use std::os::fd::AsRawFd;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // SAFETY: `events` is writable for as many entries as passed.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout_ms,
            )
        };
        events[..n.max(0) as usize]
            .iter()
            .map(|event| event.u64 as usize)
            .collect()
    }
}

impl SimNode {
    /// Handle every message waiting on the socket.
    fn drain(&mut self, key: &ClusterKey, welcome: &FrameKey, counters: &Counters) {
        while let Ok(frame) = self.socket.recv_bytes(zmq::DONTWAIT) {
            self.receive(&frame, key, welcome, counters);
        }
    }

    fn send(&mut self, message: &ToBroker) -> usize {
        let State::Live {
            sealer, last_sent, ..
        } = &mut self.state
        else {
            return 0;
        };
        let frame = sealer.seal(&protocol::encode(message));
        *last_sent = Instant::now();
        let bytes = frame.len();
        let _ = self.socket.send(frame, 0);
        bytes
    }

    fn grant(&mut self, credit: u32) {
        self.send(&ToBroker::Credit(credit));
        if let State::Live { granted_at, .. } = &mut self.state {
            granted_at.get_or_insert_with(Instant::now);
        }
    }

    fn heartbeat(&mut self, now: Instant, counters: &Counters) {
        let State::Live {
            heartbeat,
            last_sent,
            ..
        } = &self.state
        else {
            return;
        };
        if now.duration_since(*last_sent) >= *heartbeat {
            let bytes = self.send(&ToBroker::Heartbeat);
            counters.heartbeats.fetch_add(1, Ordering::Relaxed);
            counters
                .heartbeat_bytes
                .fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    fn receive(&mut self, frame: &[u8], key: &ClusterKey, welcome: &FrameKey, counters: &Counters) {
        let message = match &mut self.state {
            State::Connecting(nonce) => {
                let Ok((header, payload)) = wire::open(welcome, frame) else {
                    return;
                };
                let Ok(Welcome::Accepted {
                    nonce: broker,
                    heartbeat_ms,
                }) = protocol::decode::<Welcome>(payload)
                else {
                    panic!("the broker refused a simulated node");
                };
                assert_eq!(header.session, *nonce, "a welcome for another hello");
                let (up, down) = FrameKey::session(key, nonce, &broker);
                self.state = State::Live {
                    sealer: Sealer::new(up, *nonce),
                    opener: Opener::new(down, *nonce),
                    heartbeat: Duration::from_millis(heartbeat_ms),
                    last_sent: Instant::now(),
                    granted_at: None,
                };
                counters.live.fetch_add(1, Ordering::AcqRel);
                self.grant(SLOTS * CREDIT_PER_SLOT);
                return;
            }
            State::Live { opener, .. } => {
                let Ok(payload) = opener.open(frame) else {
                    return;
                };
                protocol::decode::<ToPeer>(payload).expect("a message from the broker")
            }
        };
        match message {
            ToPeer::Heartbeat => {
                counters.heartbeats_in.fetch_add(1, Ordering::Relaxed);
            }
            ToPeer::Assign(assignments) => {
                if let State::Live { granted_at, .. } = &mut self.state
                    && let Some(at) = granted_at.take()
                {
                    let us = at.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    counters.turnaround_us.lock().unwrap().push(us);
                }
                let started_at = wrun_journal::now();
                let results: Vec<TaskResult> = assignments
                    .iter()
                    .flat_map(|a| &a.tasks)
                    .map(|task| TaskResult {
                        ticket: task.ticket,
                        started_at,
                        wall_us: 1,
                        outcome: Outcome::Finished {
                            output: Data::Inline(Vec::new()),
                            log: Vec::new(),
                            fuel_used: None,
                        },
                    })
                    .collect();
                let count = results.len() as u32;
                self.send(&ToBroker::Results(results));
                counters
                    .tasks
                    .fetch_add(u64::from(count), Ordering::Relaxed);
                self.grant(count);
            }
            other => panic!("a simulated node cannot handle {other:?}"),
        }
    }
}

/// User plus system CPU time so far of process `pid`, or of its thread
/// `tid` (`/proc/PID/task/TID/stat`), from fields 14 and 15 of its stat
/// line, in clock ticks of `sysconf(_SC_CLK_TCK)`.
fn cpu_time(pid: u32, tid: Option<u32>) -> Duration {
    let path = match tid {
        Some(tid) => format!("/proc/{pid}/task/{tid}/stat"),
        None => format!("/proc/{pid}/stat"),
    };
    let stat = std::fs::read_to_string(&path).expect("read /proc/PID/stat");
    // The command name, in parentheses, may hold spaces: count after it.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// The broker's CPU time so far: the whole process, and its socket
/// thread (the main thread, whose id is the process's).
fn broker_cpu(pid: u32) -> (Duration, Duration) {
    (cpu_time(pid, None), cpu_time(pid, Some(pid)))
}

/// p-th percentile (0..=100) of `samples`, sorted in place.
fn percentile(samples: &mut [u32], p: usize) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let at = (samples.len() - 1) * p / 100;
    Duration::from_micros(u64::from(samples[at]))
}

/// What one node count measured.
struct Measured {
    rate: f64,
    broker_per_task: Duration,
    socket_per_task: Duration,
    one_task: (Duration, Duration),
    idle_cpu: f64,
    heartbeats_per_s: f64,
    heartbeats_in_per_s: f64,
    heartbeat_bytes_per_s: f64,
    p50: Duration,
    p99: Duration,
}

/// Broker tasks/s, CPU, heartbeat traffic and dispatch turnaround as
/// the number of (simulated) nodes grows.
pub(crate) fn scale(table: &mut Table, dir: &Path, scale: usize) {
    let tasks = 100_000 / scale;
    let (lines, one) = (input_of_lines(dir, tasks), input_of_lines(dir, 1));
    let mut rates = HashMap::new();
    for count in NODES {
        let m = measure(dir, count, (&lines, &one), tasks);
        rates.insert(count, m.rate);
        table.row(
            &format!("scale: broker + {count} simulated node(s), no-op tasks/s"),
            format!("{:.0}", m.rate),
            &format!(
                "broker CPU {} per task ({} of it its socket thread); one-task job p50 {} \
                 p99 {}; a node's wait from credit to tasks p50 {} p99 {}",
                fmt_us(m.broker_per_task),
                fmt_us(m.socket_per_task),
                fmt_ms(m.one_task.0),
                fmt_ms(m.one_task.1),
                fmt_ms(m.p50),
                fmt_ms(m.p99),
            ),
        );
        table.row(
            &format!("  idle, {count} node(s): heartbeats to the broker per s"),
            format!("{:.0}", m.heartbeats_per_s),
            &format!(
                "{:.1} kB/s; {:.0}/s from the broker; broker CPU {:.2}% of a core",
                m.heartbeat_bytes_per_s / 1e3,
                m.heartbeats_in_per_s,
                m.idle_cpu * 100.0
            ),
        );
    }
    table.row(
        "scale: 256 simulated nodes against 2, tasks/s",
        format!("{:.2}x", rates[&256] / rates[&2]),
        "target >= 0.8x: no collapse as nodes grow",
    );
}

/// One node count: a fresh broker, `count` simulated nodes, the idle
/// heartbeat traffic, then the job of `tasks` no-op tasks in `lines`
/// [`REPEATS`] times (median), then [`ONE_TASK_JOBS`] jobs of the one
/// task in `one`.
fn measure(dir: &Path, count: usize, (lines, one): (&Path, &Path), tasks: usize) -> Measured {
    let root = dir.join(format!("scale-{count}"));
    let (broker, endpoint) = Process::broker(&root.join("broker"), &[]);
    let pid = broker.child.id();
    let simulation = Simulation::start(&endpoint, count);
    simulation.wait_live(count);
    let counters = &simulation.counters;

    // Idle: heartbeats only.
    let (beats, bytes, beats_in, cpu) = (
        counters.heartbeats.load(Ordering::Relaxed),
        counters.heartbeat_bytes.load(Ordering::Relaxed),
        counters.heartbeats_in.load(Ordering::Relaxed),
        cpu_time(pid, None),
    );
    let started = Instant::now();
    std::thread::sleep(IDLE);
    let idle = started.elapsed().as_secs_f64();
    let heartbeats_per_s = (counters.heartbeats.load(Ordering::Relaxed) - beats) as f64 / idle;
    let heartbeat_bytes_per_s =
        (counters.heartbeat_bytes.load(Ordering::Relaxed) - bytes) as f64 / idle;
    let heartbeats_in_per_s =
        (counters.heartbeats_in.load(Ordering::Relaxed) - beats_in) as f64 / idle;
    let idle_cpu = (cpu_time(pid, None) - cpu).as_secs_f64() / idle;

    let client = root.join("client");
    remote_submit(&client, &endpoint, lines); // warm the client's and broker's caches
    counters.turnaround_us.lock().unwrap().clear();
    let (mut walls, mut cpus, mut sockets) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        let (cpu, socket) = broker_cpu(pid);
        walls.push(remote_submit(&client, &endpoint, lines));
        let (cpu_after, socket_after) = broker_cpu(pid);
        cpus.push(cpu_after - cpu);
        sockets.push(socket_after - socket);
    }
    let mut turnaround = std::mem::take(&mut *counters.turnaround_us.lock().unwrap());
    // Low load: one-task jobs, one after the other.
    let mut ones: Vec<u32> = (0..ONE_TASK_JOBS)
        .map(|_| remote_submit(&client, &endpoint, one).as_micros() as u32)
        .collect();
    drop(simulation);
    drop(broker);
    Measured {
        rate: tasks as f64 / median(walls).as_secs_f64(),
        broker_per_task: median(cpus) / tasks as u32,
        socket_per_task: median(sockets) / tasks as u32,
        one_task: (percentile(&mut ones, 50), percentile(&mut ones, 99)),
        idle_cpu,
        heartbeats_per_s,
        heartbeats_in_per_s,
        heartbeat_bytes_per_s,
        p50: percentile(&mut turnaround, 50),
        p99: percentile(&mut turnaround, 99),
    }
}
