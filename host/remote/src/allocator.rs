//! The broker's allocation queues (`wrun alloc`): a thread that, every
//! [`AllocatorConfig::poll`] and as soon as work starts waiting, notes which allocations' nodes connected,
//! polls the batch system of every queue with unfinished allocations,
//! submits batch jobs for queued work that no node (connected or pending)
//! will take, and records every change in the broker's journal. The
//! policy is `wrun_alloc::Queue`'s; this module runs the commands.
//!
//! The broker's socket thread never waits for it: it publishes its queued
//! task count and the allocations whose nodes said hello in a [`Load`].

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wrun_alloc::queue::Change;
use wrun_alloc::{AllocState, Allocation, Queue, QueueSpec, QueueState, Script};
use wrun_jobs::{Error, ErrorKind, Home, Result};
use wrun_journal::{AllocationRow, Journal, QueueRow};

use crate::protocol::{AllocCommand, Reply};

/// What the broker's socket thread tells the allocator.
#[derive(Debug, Default)]
pub struct Load {
    /// Tasks waiting in the broker's queue for a node.
    queued: AtomicU64,
    /// Allocations whose node said hello since the allocator last looked.
    joined: Mutex<Vec<String>>,
    /// Set when work starts waiting: the allocator's round comes at once.
    news: Mutex<bool>,
    wake: Condvar,
}

impl Load {
    /// `tasks` wait for a node now.
    pub fn set_queued(&self, tasks: u64) {
        let before = self.queued.swap(tasks, Ordering::Relaxed);
        if before == 0 && tasks > 0 {
            *lock(&self.news) = true;
            self.wake.notify_one();
        }
    }

    /// The node of allocation `id` said hello.
    pub fn joined(&self, id: &str) {
        lock(&self.joined).push(id.to_owned());
    }

    /// Wait until work starts waiting, or `timeout`.
    fn wait(&self, timeout: Duration) {
        let news = lock(&self.news);
        let (mut news, _) = self
            .wake
            .wait_timeout_while(news, timeout, |news| !*news)
            .unwrap_or_else(|e| e.into_inner());
        *news = false;
    }
}

/// How the allocator runs.
#[derive(Debug, Clone)]
pub struct AllocatorConfig {
    /// The broker's home: its journal, and `alloc/QUEUE/` for each queue's
    /// batch script and the batch system's output files.
    pub home: Home,
    /// The wrun executable the scripts start (the broker's own).
    pub wrun: PathBuf,
    /// The cluster key file the nodes read (none: the loopback key).
    pub key: Option<PathBuf>,
    /// How often it looks at the load and polls the batch systems.
    pub poll: Duration,
}

/// The allocation queues; cheap to share.
#[derive(Debug)]
pub struct Allocator {
    config: AllocatorConfig,
    load: Arc<Load>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    queues: Vec<Queue>,
    journal: Journal,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Allocator {
    /// The queues recorded in the broker's journal, driven by a thread of
    /// their own from now on; `load` is the broker's.
    pub fn start(config: AllocatorConfig, load: Arc<Load>) -> Result<Arc<Allocator>> {
        let journal = config.home.journal()?;
        let queues = load_queues(&journal)?;
        let allocator = Arc::new(Allocator {
            config,
            load,
            state: Mutex::new(State { queues, journal }),
        });
        let driven = allocator.clone();
        std::thread::Builder::new()
            .name("wrun-alloc".into())
            .spawn(move || {
                loop {
                    driven.load.wait(driven.config.poll);
                    driven.turn();
                }
            })
            .expect("a thread starts");
        Ok(allocator)
    }

    /// The queues with their allocations now (what `wrun alloc ls --json`
    /// shows).
    pub fn queues(&self) -> Vec<Queue> {
        lock(&self.state).queues.clone()
    }

    /// Answer a `wrun alloc` command: the queues after it.
    pub fn command(&self, command: AllocCommand) -> Result<Reply> {
        let mut state = lock(&self.state);
        let usage = |message: String| Error::new(ErrorKind::Usage, message);
        let position = |state: &State, name: &str| {
            state
                .queues
                .iter()
                .position(|q| q.spec.name == name)
                .ok_or_else(|| usage(format!("no allocation queue named {name:?}")))
        };
        match command {
            AllocCommand::Add(spec) => {
                check(&spec).map_err(usage)?;
                if state.queues.iter().any(|q| q.spec.name == spec.name) {
                    return Err(usage(format!(
                        "an allocation queue named {:?} exists already",
                        spec.name
                    )));
                }
                let queue = Queue::new(spec);
                state.journal.put_queue(&queue_row(&queue)?)?;
                self.log(format!("queue {} added", queue.spec.name));
                state.queues.push(queue);
            }
            AllocCommand::List => {}
            AllocCommand::Pause(ref name) | AllocCommand::Resume(ref name) => {
                let resume = matches!(command, AllocCommand::Resume(_));
                let name = name.clone();
                let at = position(&state, &name)?;
                let queue = &mut state.queues[at];
                match resume {
                    true => queue.resume(),
                    false => queue.pause(),
                }
                let row = queue_row(queue)?;
                state.journal.put_queue(&row)?;
            }
            AllocCommand::Remove(name) => {
                let at = position(&state, &name)?;
                let queue = state.queues.remove(at);
                // Batch jobs whose node has not come are of no use now;
                // connected nodes finish their work and leave when idle.
                for allocation in &queue.allocations {
                    if !allocation.state.ended() && !allocation.connected {
                        self.run_cancel(&queue.spec, &allocation.id);
                    }
                }
                state.journal.remove_queue(&name)?;
                self.log(format!("queue {name} removed"));
            }
        }
        let json = serde_json::to_string(&state.queues)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        Ok(Reply::Allocs(json))
    }

    fn log(&self, message: impl std::fmt::Display) {
        tracing::info!(target: "wrun::alloc", "{message}");
    }

    /// One round: connections, polls, submissions.
    fn turn(&self) {
        let joined = std::mem::take(&mut *lock(&self.load.joined));
        let queued = self.load.queued.load(Ordering::Relaxed);
        let mut state = lock(&self.state);
        let mut changes: Vec<(usize, Change)> = Vec::new();
        for id in joined {
            for (at, queue) in state.queues.iter_mut().enumerate() {
                changes.extend(queue.connected(&id, epoch_ms()).map(|c| (at, c)));
            }
        }
        for at in 0..state.queues.len() {
            let queue = &state.queues[at];
            if queue.allocations.iter().all(|a| a.state.ended()) {
                continue;
            }
            let driver = queue.spec.system.driver();
            let listing = run(driver.poll(&queue.spec.job_name()))
                .and_then(|stdout| driver.parse(&stdout).map_err(|e| e.to_string()));
            match listing {
                Ok(listing) => {
                    let observed = state.queues[at].observe(&listing, epoch_ms());
                    changes.extend(observed.into_iter().map(|c| (at, c)));
                }
                // Next round, then; the batch system may be busy.
                Err(why) => self.log(format!("queue {}: {why}", queue.spec.name)),
            }
        }
        let mut unabsorbed =
            queued.saturating_sub(state.queues.iter().map(Queue::pending_slots).sum());
        for at in 0..state.queues.len() {
            let wanted = state.queues[at].wanted(unabsorbed);
            for _ in 0..wanted {
                let queue = &mut state.queues[at];
                match self.submit(&queue.spec) {
                    Ok(id) => {
                        self.log(format!(
                            "queue {}: submitted allocation {id}",
                            queue.spec.name
                        ));
                        changes.push((at, queue.submitted(id, epoch_ms())));
                    }
                    Err(why) => {
                        self.log(format!("queue {}: {why}", queue.spec.name));
                        let failed = queue.submit_failed(&why);
                        changes.extend(failed.into_iter().map(|c| (at, c)));
                    }
                }
            }
            let slots = u64::from(state.queues[at].spec.slots);
            unabsorbed = unabsorbed.saturating_sub(u64::from(wanted) * slots);
        }
        for (at, change) in changes {
            let State { queues, journal } = &mut *state;
            let queue = &queues[at];
            let recorded = match &change {
                Change::Allocation(allocation) => {
                    self.log(format!(
                        "queue {}: allocation {} {}",
                        queue.spec.name,
                        allocation.id,
                        state_words(&allocation.state)
                    ));
                    journal.put_allocation(&queue.spec.name, &allocation_row(allocation))
                }
                Change::Cancel(id) => {
                    self.run_cancel(&queue.spec, id);
                    Ok(())
                }
                Change::Paused(why) => {
                    self.log(format!("queue {} paused: {why}", queue.spec.name));
                    Ok(())
                }
            };
            // The failure count and state change with allocations, too.
            let saved = queue_row(queue).and_then(|row| Ok(journal.put_queue(&row)?));
            if let Err(why) = recorded
                .map_err(|e| e.to_string())
                .and(saved.map_err(|e| e.to_string()))
            {
                self.log(format!("cannot record queue {}: {why}", queue.spec.name));
            }
        }
    }

    /// Write the queue's batch script and submit it: the job id, or why
    /// not.
    fn submit(&self, spec: &QueueSpec) -> std::result::Result<String, String> {
        let dir = self.config.home.root().join("alloc").join(&spec.name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let job_name = spec.job_name();
        let script = Script {
            job_name: &job_name,
            wrun: &self.config.wrun,
            connect: &spec.broker,
            key: self.config.key.as_deref(),
            slots: spec.slots,
            time: spec.time,
            idle_timeout: spec.idle_timeout,
            log_dir: &dir,
        };
        let driver = spec.system.driver();
        let path = dir.join("job.sh");
        std::fs::write(&path, driver.render(&script))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut command = driver.submit(&path, &spec.extra);
        command.current_dir(&dir);
        let stdout = run(command)?;
        driver.submitted(&stdout).map_err(|e| e.to_string())
    }

    fn run_cancel(&self, spec: &QueueSpec, id: &str) {
        if let Err(why) = run(spec.system.driver().cancel(id)) {
            self.log(format!("queue {}: {why}", spec.name));
        }
    }
}

/// Now, in milliseconds since the Unix epoch.
fn epoch_ms() -> u64 {
    wrun_journal::now().max(0) as u64
}

/// Run `command`: its standard output, or what it said when it failed.
fn run(mut command: Command) -> std::result::Result<String, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    match command.output() {
        Ok(output) if output.status.success() => {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        }
        Ok(Output { status, stderr, .. }) => {
            let stderr = String::from_utf8_lossy(&stderr);
            let said = stderr.trim().lines().collect::<Vec<_>>().join("; ");
            Err(format!("{program} failed ({status}): {said}"))
        }
        Err(e) => Err(format!("cannot run {program}: {e}")),
    }
}

/// Why a new queue's spec is refused.
fn check(spec: &QueueSpec) -> std::result::Result<(), String> {
    if !QueueSpec::valid_name(&spec.name) {
        return Err(format!(
            "--name {:?}: use 1 to 64 letters, digits, '-' and '_'",
            spec.name
        ));
    }
    for (flag, value) in [
        ("--max-nodes", spec.max_nodes),
        ("--slots", spec.slots),
        ("--backlog", spec.backlog),
    ] {
        if value == 0 {
            return Err(format!("{flag} 0: give at least 1"));
        }
    }
    if spec.time < Duration::from_secs(60) {
        return Err(format!(
            "--time {}s: batch systems count walltime in minutes; give at least 1m",
            spec.time.as_secs()
        ));
    }
    Ok(())
}

fn state_words(state: &AllocState) -> String {
    match state {
        AllocState::Queued => "queued".into(),
        AllocState::Running => "running".into(),
        AllocState::Finished => "finished".into(),
        AllocState::Failed(why) => format!("failed: {why}"),
    }
}

fn queue_row(queue: &Queue) -> Result<QueueRow> {
    Ok(QueueRow {
        name: queue.spec.name.clone(),
        spec: serde_json::to_string(&queue.spec)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?,
        paused: match &queue.state {
            QueueState::Active => None,
            QueueState::Paused(why) => Some(why.clone()),
        },
        failures: queue.failures,
    })
}

fn allocation_row(allocation: &Allocation) -> AllocationRow {
    let (state, reason) = match &allocation.state {
        AllocState::Queued => ("queued", None),
        AllocState::Running => ("running", None),
        AllocState::Finished => ("finished", None),
        AllocState::Failed(why) => ("failed", Some(why.clone())),
    };
    AllocationRow {
        id: allocation.id.clone(),
        state: state.into(),
        reason,
        connected: allocation.connected,
        submitted_at: allocation.submitted_at,
        started_at: allocation.started_at,
    }
}

/// The queues and allocations the journal holds.
fn load_queues(journal: &Journal) -> Result<Vec<Queue>> {
    let bad = |what: String| Error::new(ErrorKind::Journal, what);
    journal
        .queues()?
        .into_iter()
        .map(|row| {
            let spec: QueueSpec = serde_json::from_str(&row.spec)
                .map_err(|e| bad(format!("allocation queue {:?}: bad spec: {e}", row.name)))?;
            let allocations = journal
                .allocations(&row.name)?
                .into_iter()
                .map(|a| {
                    let state = match (a.state.as_str(), a.reason) {
                        ("queued", _) => AllocState::Queued,
                        ("running", _) => AllocState::Running,
                        ("finished", _) => AllocState::Finished,
                        ("failed", reason) => AllocState::Failed(reason.unwrap_or_default()),
                        (other, _) => {
                            return Err(bad(format!(
                                "allocation {} of queue {:?}: unknown state {other:?}",
                                a.id, row.name
                            )));
                        }
                    };
                    Ok(Allocation {
                        id: a.id,
                        state,
                        connected: a.connected,
                        submitted_at: a.submitted_at,
                        started_at: a.started_at,
                    })
                })
                .collect::<Result<_>>()?;
            Ok(Queue {
                spec,
                state: row.paused.map_or(QueueState::Active, QueueState::Paused),
                failures: row.failures,
                allocations,
            })
        })
        .collect()
}
