//! SIGTERM and SIGINT while a job runs: the Paraloop "stop before the batch
//! system kills you". The first signal asks every running task to snapshot
//! at its next call boundary and stop; the job records them `suspended` and
//! `wrun` exits with code 9, leaving a job that `wrun resume` continues. If
//! tasks are still inside a call when `--grace` runs out, or a second
//! signal comes, `wrun` exits at once: those tasks resume from their last
//! snapshot, or from their start. A `--broker` client leaves its job
//! (exit 9 too), saying how to follow it and go on.
//!
//! A node (`wrun node`) drains on SIGTERM, SIGINT and SIGUSR1 (`sbatch
//! --signal`, `scancel --signal`): it suspends its running tasks with
//! their snapshots, hands them to the broker and exits 0; a second SIGTERM
//! or SIGINT exits at once.
//!
//! The signals are blocked in every thread (the mask is set before any
//! thread starts) and taken by one thread with `sigwait`, so no handler runs
//! in async-signal context and no other thread is ever interrupted.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wrun_runtime::Requests;

use crate::exit::Code;

/// The job this process runs or streams, once it does.
static JOB: OnceLock<Attached> = OnceLock::new();

/// What a signal stops.
enum Attached {
    /// A recorded job run here: drained through its requests.
    Local(Arc<Requests>),
    /// Job `job` on the broker at `broker`: this client leaves it.
    Remote { job: u64, broker: String },
}

/// From now on a signal drains the job through `requests`.
pub(crate) fn attach(requests: Arc<Requests>) {
    let _ = JOB.set(Attached::Local(requests));
}

/// From now on a signal leaves job `job` on the broker at `broker`, saying
/// how to follow it.
pub(crate) fn attach_remote(job: u64, broker: &str) {
    let _ = JOB.set(Attached::Remote {
        job,
        broker: broker.to_owned(),
    });
}

/// The signals that drain a job: SIGTERM and SIGINT, and for a node
/// SIGUSR1 too.
fn signals() -> libc::sigset_t {
    // SAFETY: `sigemptyset` initialises the set it is given; the
    // `sigaddset` calls add valid signal numbers to it.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        if NODE.get().is_some() {
            libc::sigaddset(&mut set, libc::SIGUSR1);
        }
        set
    }
}

/// Set (before [`block_signals`]) when this process is a node.
static NODE: OnceLock<()> = OnceLock::new();

/// This process is a node: SIGUSR1 drains it too.
pub(crate) fn as_node() {
    let _ = NODE.set(());
}

/// Block the drain signals in this thread and every thread it starts.
pub(crate) fn block_signals() {
    let set = signals();
    // SAFETY: `set` is a valid, initialised signal set; a null old set is
    // allowed.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Take the signals from now on: drain the job [attached](attach), if any
/// (otherwise exit as the signal would have), and exit once `grace` has
/// passed after the first signal or a second one comes.
pub(crate) fn watch(grace: Duration) {
    let spawned = std::thread::Builder::new()
        .name("wrun-signals".into())
        .spawn(move || {
            let set = signals();
            let first = wait(&set, None).unwrap_or(libc::SIGTERM);
            let name = signal_name(first);
            let requests = match JOB.get() {
                Some(Attached::Local(requests)) => requests,
                Some(Attached::Remote { job, broker }) => {
                    eprintln!(
                        "wrun: {name}: leaving job {job} on {broker}; the broker stops it \
                         when it misses this client, keeping the chunks done (`wrun status \
                         {job} --broker {broker}`); `wrun resume {job} --broker {broker}` goes \
                         on and streams its whole output again"
                    );
                    std::process::exit(Code::Suspended as i32);
                }
                None => {
                    eprintln!("wrun: {name}: stopping");
                    std::process::exit(128 + first);
                }
            };
            eprintln!(
                "wrun: {name}: snapshotting the running chunks at their next call boundary \
                 (at most {}); a second signal exits at once",
                humantime::format_duration(grace)
            );
            requests.drain();
            match wait(&set, Some(grace)) {
                Some(second) => eprintln!(
                    "wrun: {}: exiting now; chunks still running resume from their last \
                     snapshot, or their start",
                    signal_name(second)
                ),
                None => eprintln!(
                    "wrun: the grace period ran out; chunks still running resume from their \
                     last snapshot, or their start"
                ),
            }
            std::process::exit(Code::Suspended as i32);
        });
    if let Err(error) = spawned {
        // Without the thread the signals stay blocked: say so rather than
        // ignore them silently.
        eprintln!("wrun: cannot watch for SIGTERM/SIGINT ({error}); they will be ignored");
    }
}

/// Take the signals from now on: the first drains the node through
/// `drainer`; a second SIGTERM or SIGINT exits at once (code 9), its
/// running tasks left to the broker, which queues them again from their
/// last snapshots.
pub(crate) fn watch_node(drainer: wrun_remote::node::DrainHandle) {
    let spawned = std::thread::Builder::new()
        .name("wrun-signals".into())
        .spawn(move || {
            let set = signals();
            let first = wait(&set, None).unwrap_or(libc::SIGTERM);
            drainer.drain(signal_name(first));
            loop {
                let next = wait(&set, None).unwrap_or(libc::SIGTERM);
                if next != libc::SIGUSR1 {
                    eprintln!(
                        "wrun: {}: exiting now; the broker queues the running chunks again \
                         from their last snapshots",
                        signal_name(next)
                    );
                    std::process::exit(Code::Suspended as i32);
                }
            }
        });
    if let Err(error) = spawned {
        eprintln!("wrun: cannot watch for SIGTERM/SIGUSR1 ({error}); they will be ignored");
    }
}

/// The next of the signals in `set`, or `None` after `timeout`.
fn wait(set: &libc::sigset_t, timeout: Option<Duration>) -> Option<i32> {
    loop {
        let signal = match timeout {
            None => {
                let mut signal = 0;
                // SAFETY: `set` is initialised and blocked in this thread;
                // `signal` is a valid place for the result.
                match unsafe { libc::sigwait(set, &mut signal) } {
                    0 => signal,
                    _ => continue,
                }
            }
            Some(timeout) => {
                let spec = libc::timespec {
                    tv_sec: timeout.as_secs() as libc::time_t,
                    tv_nsec: timeout.subsec_nanos() as libc::c_long,
                };
                // SAFETY: as above; a null info pointer is allowed.
                let signal = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &spec) };
                if signal < 0 {
                    match std::io::Error::last_os_error().raw_os_error() {
                        Some(libc::EINTR) => continue,
                        _ => return None,
                    }
                }
                signal
            }
        };
        return Some(signal);
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGUSR1 => "SIGUSR1",
        _ => "SIGTERM",
    }
}
