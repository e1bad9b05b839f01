//! The broker's [`Service`] over the job library: jobs that clients submit
//! or resume run in the broker's process, on a thread each, through the
//! same `wrun-jobs` calls as local mode, except that the input comes from
//! the client, the output goes back to it, and the tasks run on the nodes
//! (the job's [`Placement`]). Job commands are answered
//! in-process from the broker's journal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wrun_jobs::after;
use wrun_jobs::control::{self, Cancelled};
use wrun_jobs::views::{self, Filter};
use wrun_jobs::{
    Claim, Destination, Error, ErrorKind, Home, Journaled, Placement, Requeue, Result, Run, Source,
    admit,
};
use wrun_journal::{JobId, JobSpec, TaskStateKind};
use wrun_runtime::TaskRunner;
use wrun_scheduler::Executor;
use wrun_store::{BlobStore, Digest};

use crate::allocator::Allocator;
use crate::broker::{BrokerHandle, ClientLink, Notifier, Service};
use crate::executor::RemoteExecutor;
use crate::protocol::{Control, DataFile, JobProgress, Reply, Resume, Submission, ToPeer, Work};

/// The exit code a client reports for a job library error (the command
/// line's one table of codes).
pub type ExitCode = fn(&Error) -> u8;

/// Runs clients' jobs and answers their job commands with the job library,
/// on the broker's journal (`home`) and store.
pub struct JobService {
    handle: BrokerHandle,
    home: Home,
    store: Arc<BlobStore>,
    exit_code: ExitCode,
    allocator: Arc<Allocator>,
}

impl std::fmt::Debug for JobService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobService")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

/// The broker's nodes, for one job at the given priority.
struct Nodes<'a> {
    handle: &'a BrokerHandle,
    priority: i32,
}

impl Placement for Nodes<'_> {
    /// The broker itself runs the splitter and the reducer, one at a time.
    fn local_slots(&self) -> usize {
        1
    }

    fn executor(&self, spec: &JobSpec, _: TaskRunner) -> Result<Box<dyn Executor>> {
        let module = Digest::from_hex(&spec.module.digest).ok_or_else(|| {
            Error::new(
                ErrorKind::Journal,
                format!("bad module digest {:?}", spec.module.digest),
            )
        })?;
        let data = spec
            .data
            .iter()
            .map(|data| {
                Ok(DataFile {
                    name: data.name.clone(),
                    digest: *wrun_jobs::data::digest(data)?.as_bytes(),
                })
            })
            .collect::<Result<_>>()?;
        let work = Work {
            module: *module.as_bytes(),
            args: spec.args.clone(),
            limits: crate::convert::limits_to_wire(&spec.limits),
            data,
        };
        Ok(Box::new(RemoteExecutor::new(
            self.handle.clone(),
            work,
            self.priority,
        )))
    }
}

impl JobService {
    /// A service for the broker behind `handle`, on the journal in `home`
    /// and the modules and outputs in `store`, with the allocation queues
    /// of `allocator`; `exit_code` words failures as the command line's
    /// exit codes.
    pub fn new(
        handle: BrokerHandle,
        home: Home,
        store: Arc<BlobStore>,
        exit_code: ExitCode,
        allocator: Arc<Allocator>,
    ) -> Self {
        JobService {
            handle,
            home,
            store,
            exit_code,
            allocator,
        }
    }

    fn end(&self, link: &ClientLink, result: Result<()>) {
        let (code, message) = match result {
            Ok(()) => (0, String::new()),
            Err(error) => ((self.exit_code)(&error), error.message().to_owned()),
        };
        link.send(ToPeer::Ended { code, message });
    }

    /// Run `spec` with the client's input (or, for `job:N`, that job's
    /// output from the broker's journal, once the jobs it waits for are
    /// done) and output.
    fn run(
        &self,
        mut spec: JobSpec,
        priority: i32,
        size: Option<u64>,
        mut journaled: Option<Journaled>,
        link: &ClientLink,
    ) -> Result<()> {
        let placement = Nodes {
            handle: &self.handle,
            priority,
        };
        let admitted = admit::admit_recorded(&spec, placement.local_slots(), &self.store)?;
        let mut note = |line: String| link.send(ToPeer::Note(line));
        let input =
            match after::wait_and_open(&self.home, &mut spec, journaled.as_mut(), &mut note)? {
                Some(input) => input,
                None => Source {
                    reader: Box::new(link.input()),
                    mapped: None,
                    size,
                    compressed: false,
                    notices: Default::default(),
                },
            };
        // Started once the jobs it waits for are done (a job waiting for
        // another is not stuck for want of nodes); dropped when the run
        // ends, which stops it.
        let _watch = NoNodeWatch::start(self.handle.clone(), link.notifier());
        // A paired job's client sends its pairs interleaved (checked
        // there); they are checked again as they arrive.
        let input = match spec.pairs {
            Some(_) => wrun_jobs::pairs::interleave(input, "the client's input", None, &|| {
                admitted.another_splitter()
            })?,
            None => input,
        };
        let output = Destination::new(Box::new(link.output()), "the client's output".to_owned());
        let run = Run::new(spec, admitted, &placement, input, output, journaled)?;
        let job = run.job();
        let mut reporter = Reporter::new(link);
        let summary = run.execute(&mut reporter);
        reporter.flush();
        let summary = summary?;
        wrun_jobs::check(&summary, job)?;
        Ok(())
    }

    fn submission(&self, submission: Submission, link: &ClientLink) -> Result<()> {
        let mut spec: JobSpec = serde_json::from_str(&submission.spec_json).map_err(|e| {
            Error::new(
                ErrorKind::Usage,
                format!("the submitted job spec is malformed: {e}"),
            )
        })?;
        // Waiting for a job the broker's journal does not hold is refused
        // before anything is recorded.
        after::check_known(&self.home, &spec)?;
        // Kept whether journaled or not: nodes fetch the task module from
        // the store, and the broker loads every module from it.
        for bytes in &submission.modules {
            self.store.put(bytes).map_err(|e| {
                Error::new(ErrorKind::Internal, format!("cannot keep a module: {e}"))
            })?;
        }
        let journaled = match submission.journal {
            false => None,
            true => {
                let claim = Claim::new(
                    &self.home,
                    self.store.clone(),
                    &submission.fingerprint,
                    submission.fresh,
                )?;
                Some(claim.open(
                    &mut spec,
                    &submission.fingerprint,
                    submission.name.as_deref(),
                    // Kept above already.
                    &[],
                    &mut |note| link.send(ToPeer::Note(note)),
                )?)
            }
        };
        if let Some(journaled) = &journaled {
            tracing::info!(target: "wrun::broker", "job {} accepted", journaled.job());
        }
        link.send(ToPeer::Accepted {
            job: journaled.as_ref().map(|j| j.job() as u64),
            credit: link.input_credit(),
        });
        self.run(spec, submission.priority, submission.size, journaled, link)
    }

    fn resumption(&self, resume: Resume, link: &ClientLink) -> Result<()> {
        let id = resume.job as JobId;
        let mut note = |line: String| link.send(ToPeer::Note(line));
        if !control::resumable(&self.home, id, resume.add_fuel, &mut note)? {
            return Ok(());
        }
        let (spec, journaled) = control::reopen(
            &self.home,
            id,
            Requeue::Cancelled,
            self.store.clone(),
            &mut note,
        )?;
        link.send(ToPeer::Resuming {
            job: resume.job,
            spec_json: serde_json::to_string(&spec).expect("a job spec serialises"),
            credit: link.input_credit(),
        });
        let size = spec
            .input
            .as_ref()
            .filter(|input| !input.compressed)
            .and_then(|input| input.size);
        self.run(spec, resume.priority, size, Some(journaled), link)
    }

    /// Answer `control` from this broker's journal.
    fn answer(&self, control: Control) -> Result<Reply> {
        Ok(match control {
            Control::Status {
                job: Some(id),
                state,
                ..
            } => {
                let state = match state {
                    Some(state) => Some(
                        state
                            .parse::<TaskStateKind>()
                            .map_err(|e| Error::new(ErrorKind::Usage, e))?,
                    ),
                    None => None,
                };
                Reply::Job(json(&views::detail(&self.home, id, state)?))
            }
            Control::Status {
                job: None,
                state,
                name,
                since_ms,
            } => {
                let filter = Filter {
                    state,
                    name,
                    since_ms,
                };
                Reply::Jobs(json(&views::jobs(&self.home, &filter)?))
            }
            Control::Logs { job, task } => Reply::Logs(json(&views::logs(&self.home, job, task)?)),
            Control::Cancel { job } => match control::cancel(&self.home, job)? {
                Cancelled::Cancelled { unfinished } => Reply::Cancelled {
                    requested: false,
                    unfinished,
                },
                Cancelled::CancelRequested => Reply::Cancelled {
                    requested: true,
                    unfinished: 0,
                },
            },
            Control::Snapshot { job, wait_ms } => Reply::Snapshot(json(&control::snapshot(
                &self.home,
                job,
                Duration::from_millis(wait_ms),
            )?)),
            // The broker's socket thread answers it.
            Control::Nodes => Reply::Nodes(Vec::new()),
            Control::Alloc(command) => self.allocator.command(command)?,
        })
    }
}

/// How long a job waits with no node connected before its client is told.
const NO_NODE_GRACE: Duration = Duration::from_secs(3);

/// Tells a job's client, once, when no node is connected a few seconds
/// into the job: the job waits for one, it is not stuck. Its thread ends
/// when the watch is dropped (the run ended) or after telling.
struct NoNodeWatch {
    /// Dropping it wakes the thread.
    _stop: crossbeam_channel::Sender<()>,
}

impl NoNodeWatch {
    fn start(handle: BrokerHandle, client: Notifier) -> Self {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        std::thread::spawn(move || {
            if stopped
                .recv_timeout(NO_NODE_GRACE)
                .is_err_and(|e| e.is_timeout())
                && handle.nodes_connected() == 0
            {
                client.send(ToPeer::Note(
                    "wrun: no node is connected to the broker; the job waits for one \
                     (start `wrun node --connect ...` on a machine of the cluster)"
                        .to_owned(),
                ));
            }
        });
        NoNodeWatch { _stop: stop }
    }
}

/// A job library view as the JSON a reply carries.
fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("views serialise")
}

/// A broker's run shows its client how far it is, at most every
/// [`PROGRESS_EVERY`] and once at its end (the client has the output; task
/// logs stay in the journal and on the broker's standard error).
struct Reporter<'a> {
    link: &'a ClientLink,
    progress: JobProgress,
    sent: Option<Instant>,
    /// Whether `progress` has changed since it was last sent.
    unsent: bool,
}

/// How often a job's progress goes to its client, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

impl<'a> Reporter<'a> {
    fn new(link: &'a ClientLink) -> Self {
        Reporter {
            link,
            progress: JobProgress::default(),
            sent: None,
            unsent: false,
        }
    }

    /// Send the progress if it changed since it was last sent.
    fn flush(&mut self) {
        if self.unsent {
            self.sent = Some(Instant::now());
            self.unsent = false;
            self.link.send(ToPeer::Progress(self.progress));
        }
    }
}

impl wrun_jobs::Observer for Reporter<'_> {
    fn finished(&mut self, update: &wrun_jobs::Update<'_>) {
        let wrun_jobs::Update::Finished { bytes, error, .. } = update;
        self.progress.bytes += bytes;
        self.progress.tasks += 1;
        self.progress.failed += u64::from(error.is_some());
        self.unsent = true;
        if self
            .sent
            .is_none_or(|sent| sent.elapsed() >= PROGRESS_EVERY)
        {
            self.flush();
        }
    }

    fn note(&mut self, _: &str) {}
}

impl Service for JobService {
    fn submit(&self, submission: Submission, link: ClientLink) {
        let result = self.submission(submission, &link);
        self.end(&link, result);
    }

    fn resume(&self, resume: Resume, link: ClientLink) {
        let result = self.resumption(resume, &link);
        self.end(&link, result);
    }

    fn control(&self, control: Control) -> Reply {
        self.answer(control).unwrap_or_else(|error| Reply::Failed {
            code: (self.exit_code)(&error),
            message: error.message().to_owned(),
        })
    }
}
